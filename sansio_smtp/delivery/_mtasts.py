# MTA-STS (RFC 8461): a recipient domain's published promise that its mail exchangers
# speak TLS with valid certificates. Parse the TXT record and the policy, apply a policy to
# a route, cache policies; the HTTPS fetch is injectable (a test serves a policy from a
# local HTTPS server), with a default over the standard library.
#
# Rules: the TXT record at _mta-sts.<domain> is "v=STSv1; id=...;" (§3.1; several such
# records: no policy); the policy (§3.2) is key/value lines with version STSv1, mode
# enforce|testing|none, max_age (at most 31557600 s) and mx patterns ("*." matches exactly
# one leftmost label, §4.1); it is fetched from https://mta-sts.<domain>/.well-known/
# mta-sts.txt with a valid certificate, no redirects, HTTP 200, text/plain, at most 64 KiB
# (§3.3). Under enforce, only the MX hosts the policy names are tried, each with TLS and a
# certificate valid for its name (§4.2); none left is a transient failure (the policy may
# change; reported as RFC 3463 4.7.5). Under testing the route is kept (failures would only
# be reported, RFC 8460); none: nothing.
from __future__ import annotations

import asyncio
import enum
import http.client
import re
import socket
import ssl
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Final, final

import attrs

from .._status import EnhancedStatusCode
from ._classify import Classification, route_failure
from ._dns import DNSError, Resolver
from ._route import Route

__all__ = [
    "MAX_POLICY_SIZE",
    "MtaSts",
    "PolicyCache",
    "StsMode",
    "StsPolicy",
    "apply_policy",
    "fetch_policy_https",
    "parse_sts_record",
    "policy_url",
]

MAX_POLICY_SIZE: Final = 64 * 1024  # RFC 8461 §3.2: "MUST NOT be larger than 64 KB"
MAX_AGE: Final = 31_557_600  # §3.2: at most about a year
_ID = re.compile(r"[A-Za-z0-9]{1,32}\Z")
#: no MX the policy allows (RFC 3463 X.7.5 "Cryptographic failure": no secure route)
NO_VALID_MX = EnhancedStatusCode(4, 7, 5)


class StsMode(enum.Enum):
    ENFORCE = "enforce"
    TESTING = "testing"
    NONE = "none"


def _name(host: str) -> str:
    return host.rstrip(".").lower()


@final
@attrs.frozen(kw_only=True)
class StsPolicy:
    """An MTA-STS policy (RFC 8461 §3.2)."""

    mode: StsMode
    mx: tuple[str, ...]
    max_age: int

    @classmethod
    def parse(cls, text: str) -> StsPolicy:
        """Parse a policy file; ValueError when it is not a valid STSv1 policy."""
        if len(text.encode("utf-8", "replace")) > MAX_POLICY_SIZE:
            raise ValueError("an MTA-STS policy holds at most 64 KiB")
        fields: dict[str, str] = {}
        mx: list[str] = []
        for line in text.replace("\r\n", "\n").split("\n"):
            if not line.strip():
                continue
            key, sep, value = line.partition(":")
            if not sep:
                raise ValueError(f"not a key: value line: {line[:60]!r}")
            key, value = key.strip(), value.strip()
            if key == "mx":
                mx.append(_name(value))
            else:
                fields.setdefault(key, value)  # §3.2: the first of repeated keys
        if fields.get("version") != "STSv1":
            raise ValueError("an MTA-STS policy starts with version: STSv1")
        try:
            mode = StsMode(fields.get("mode", ""))
        except ValueError:
            raise ValueError(
                f"mode must be enforce, testing or none, not {fields.get('mode')!r}"
            ) from None
        age = fields.get("max_age", "")
        if not age.isdigit() or len(age) > 10 or int(age) > MAX_AGE:
            raise ValueError(f"max_age must be 0 to {MAX_AGE} seconds, not {age!r}")
        if mode is not StsMode.NONE and not mx:
            raise ValueError("an enforce or testing policy names at least one mx")
        return cls(mode=mode, mx=tuple(mx), max_age=int(age))

    def allows(self, host: str) -> bool:
        """``host`` matches one of the policy's mx patterns (RFC 8461 §4.1)."""
        name = _name(host)
        for pattern in self.mx:
            if pattern.startswith("*."):
                first, _, rest = name.partition(".")
                if first and rest == pattern[2:]:
                    return True
            elif name == pattern:
                return True
        return False


def parse_sts_record(texts: list[str]) -> str | None:
    """The policy id the TXT records at ``_mta-sts.<domain>`` announce, or None when
    they announce none (none, several, or malformed: RFC 8461 §3.1)."""
    found = [t for t in texts if t.strip().startswith("v=STSv1")]
    if len(found) != 1:
        return None
    fields: dict[str, str] = {}
    for part in found[0].split(";"):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    record_id = fields.get("id", "")
    return record_id if _ID.match(record_id) else None


def policy_url(domain: str) -> str:
    return f"https://mta-sts.{_name(domain)}/.well-known/mta-sts.txt"


def apply_policy(route: Route, policy: StsPolicy | None) -> tuple[Route | Classification, bool]:
    """The route to use under ``policy``, and whether each session must use TLS with a
    certificate valid for the MX host's name (RFC 8461 §4.2)."""
    if policy is None or policy.mode is not StsMode.ENFORCE:
        return route, False
    hosts = tuple(h for h in route.hosts if policy.allows(h))
    if not hosts:
        return (
            route_failure(
                f"no MX of {route.domain} is one its MTA-STS policy names (RFC 8461 §4.1)",
                NO_VALID_MX,
            ),
            True,
        )
    return attrs.evolve(route, hosts=hosts), True


@final
@attrs.frozen
class _Cached:
    policy: StsPolicy
    record_id: str
    expires: float


class PolicyCache:
    """Policies by domain, each until its max_age passes (RFC 8461 §5), replaced when
    the TXT record's id changes."""

    def __init__(self) -> None:
        self._entries: dict[str, _Cached] = {}

    def get(self, domain: str, *, now: float, record_id: str | None) -> StsPolicy | None:
        entry = self._entries.get(_name(domain))
        if entry is None or entry.expires <= now:
            return None
        if record_id is not None and record_id != entry.record_id:
            return None  # a new policy was published
        return entry.policy

    def put(self, domain: str, policy: StsPolicy, *, record_id: str, now: float) -> None:
        self._entries[_name(domain)] = _Cached(policy, record_id, now + policy.max_age)


class _HTTPS(http.client.HTTPSConnection):
    """HTTPS to ``host`` (its name checked in the certificate), the TCP connection made to
    ``connect_to`` when given (as curl's --connect-to): tests and split-horizon setups."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        context: ssl.SSLContext,
        timeout: float,
        connect_to: tuple[str, int] | None,
    ) -> None:
        super().__init__(host, port, context=context, timeout=timeout)
        self._tls = context
        self._connect_to = connect_to

    def connect(self) -> None:
        address = self._connect_to or (self.host, self.port)
        sock = socket.create_connection(address, self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def fetch_policy_https(
    url: str,
    *,
    context: ssl.SSLContext | None = None,
    timeout: float = 60.0,
    connect_to: tuple[str, int] | None = None,
) -> str:
    """GET a policy the way RFC 8461 §3.3 says: a certificate valid for the host, no
    redirects followed, HTTP 200, text/plain, at most 64 KiB. Blocking (run it in a
    thread). Raises ValueError, or OSError (ssl errors included), when there is no valid
    policy there."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"{url}: an MTA-STS policy is fetched over HTTPS")
    conn = _HTTPS(
        parts.hostname,
        parts.port or 443,
        context=context or ssl.create_default_context(),
        timeout=timeout,
        connect_to=connect_to,
    )
    try:
        conn.request("GET", parts.path or "/")
        response = conn.getresponse()
        if response.status != 200:  # a redirect too: never followed
            raise ValueError(f"{url}: HTTP {response.status}")
        kind = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
        if kind != "text/plain":
            raise ValueError(f"{url}: {kind or 'no content type'}, not text/plain")
        body = response.read(MAX_POLICY_SIZE + 1)
    except http.client.HTTPException as exc:
        raise ValueError(f"{url}: {exc!r}") from None
    finally:
        conn.close()
    if len(body) > MAX_POLICY_SIZE:
        raise ValueError(f"{url}: a policy over 64 KiB")
    return body.decode("utf-8", "replace")


class MtaSts:
    """MTA-STS policies for the delivery worker: the TXT record through the Resolver, the
    policy through ``fetch`` (default: fetch_policy_https in a worker thread), cached
    (RFC 8461 §5). A domain without a policy, or whose policy cannot be fetched and was
    never cached, gets None: delivery goes on as without MTA-STS (§5.1)."""

    def __init__(
        self,
        resolver: Resolver,
        *,
        fetch: Callable[[str], Awaitable[str]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.resolver = resolver
        self.fetch = fetch or (lambda url: asyncio.to_thread(fetch_policy_https, url))
        self.clock = clock
        self.cache = PolicyCache()

    async def policy(self, domain: str) -> StsPolicy | None:
        now = self.clock()
        try:
            record_id = parse_sts_record(await self.resolver.txt(f"_mta-sts.{_name(domain)}"))
        except DNSError:
            record_id = None
        cached = self.cache.get(domain, now=now, record_id=record_id)
        if cached is not None or record_id is None:
            return cached
        try:
            policy = StsPolicy.parse(await self.fetch(policy_url(domain)))
        except (ValueError, OSError):
            return self.cache.get(domain, now=now, record_id=None)
        self.cache.put(domain, policy, record_id=record_id, now=now)
        return policy
