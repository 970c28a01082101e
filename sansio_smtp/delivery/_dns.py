# DNS for delivery, through dnspython (the optional extra sansio_smtp[dns]): a domain's MX
# records and whether it has an address (for the implicit MX), and a host's addresses. The
# policy that turns those into a route is route() (pure); this module only asks.
#
# Rules (RFC 5321 §5.1): a name that does not exist has no route (5.1.2, permanent); a DNS
# server that does not answer, or answers SERVFAIL, is a transient failure (RFC 3463 X.4.3
# "Directory server failure"): the message is retried, never bounced for it. MX targets are
# names, not addresses; each is resolved to its A and AAAA records before connecting.
from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, final

import attrs

from .._status import EnhancedStatusCode
from ._classify import Classification, route_failure
from ._route import MX, Route, route

if TYPE_CHECKING:
    import dns.asyncresolver

__all__ = ["DNSError", "Resolver"]

#: RFC 3463 §3.5: 4.4.3 "Directory server failure"
DIRECTORY_FAILURE = EnhancedStatusCode(4, 4, 3)


class DNSError(Exception):
    """DNS did not answer (a timeout, SERVFAIL): try again later."""


@final
@attrs.frozen
class Lookup:
    """What DNS says of a domain: its MX records and whether it has an address."""

    mx: tuple[MX, ...]
    has_address: bool


class Resolver:
    """Asks DNS (dnspython's asyncio resolver). ``nameservers``: ``(address, port)`` pairs
    to ask instead of the system's (tests run their own on 127.0.0.1)."""

    def __init__(
        self,
        nameservers: Sequence[tuple[str, int]] | None = None,
        *,
        timeout: float = 10.0,
    ) -> None:
        try:
            import dns.asyncresolver
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("DNS lookups need dnspython: pip install 'sansio_smtp[dns]'") from exc
        if nameservers:
            import dns.nameserver

            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(address, port) for address, port in nameservers
            ]
        else:
            resolver = dns.asyncresolver.Resolver()
        resolver.lifetime = timeout
        self._resolver: dns.asyncresolver.Resolver = resolver

    async def _query(self, name: str, kind: str) -> list[object] | None:
        """The records, [] when the name exists without them, None when it does not."""
        import dns.exception
        import dns.resolver

        try:
            answer = await self._resolver.resolve(name, kind, search=False)
        except dns.resolver.NXDOMAIN:
            return None
        except dns.resolver.NoAnswer:
            return []
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
            raise DNSError(f"DNS did not answer for {name} {kind}: {exc}") from exc
        return list(answer)

    async def lookup(self, domain: str) -> Lookup:
        """The MX records of ``domain`` and, when it has none, whether it has an address.
        Raises DNSError when DNS does not answer."""
        records = await self._query(domain, "MX")
        if records is None:
            return Lookup(mx=(), has_address=False)
        mx = tuple(
            MX(int(getattr(r, "preference", 0)), str(getattr(r, "exchange", "")).rstrip("."))
            for r in records
        )
        if mx:
            return Lookup(mx=mx, has_address=True)
        return Lookup(mx=(), has_address=bool(await self.addresses(domain)))

    async def addresses(self, host: str) -> list[str]:
        """The IPv4 and IPv6 addresses of ``host`` (empty when it has none)."""
        found: list[str] = []
        for kind in ("A", "AAAA"):
            records = await self._query(host, kind)
            found.extend(str(getattr(r, "address", r)) for r in records or ())
        return found

    async def txt(self, name: str) -> list[str]:
        """The TXT records of ``name``, each its strings joined (empty when it has none).
        Raises DNSError when DNS does not answer."""
        records = await self._query(name, "TXT")
        texts: list[str] = []
        for r in records or ():
            strings = getattr(r, "strings", ())
            texts.append(b"".join(strings).decode("utf-8", "replace"))
        return texts

    async def route(
        self,
        domain: str,
        *,
        local_names: Collection[str] = (),
        rng: random.Random | None = None,
    ) -> Route | Classification:
        """route() of what DNS says of ``domain``; a transient failure when DNS does not
        answer (RFC 3463 X.4.3)."""
        if domain.startswith("["):
            return route(domain, (), local_names=local_names, rng=rng)
        try:
            found = await self.lookup(domain)
        except DNSError as exc:
            return route_failure(str(exc), DIRECTORY_FAILURE)
        return route(
            domain, found.mx, has_address=found.has_address, local_names=local_names, rng=rng
        )
