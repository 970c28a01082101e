# Where to deliver a domain's mail (RFC 5321 §5.1, RFC 7505): from the MX records the caller
# resolved, the ordered hosts to try. Pure policy: the caller does DNS and passes the random
# source that orders equal preferences.
#
# Rules: lowest preference first; equal preferences in random order ("MUST randomize them
# to spread the load", §5.1); no MX records but an address record: the domain itself is the
# one host, with preference 0 (implicit MX); a lone MX of "." is a null MX: the domain takes
# no mail (RFC 7505 §3; 5.1.10); when this host is one of the exchangers, only those more
# preferred than itself may be tried ("MUST discard all MX RRs with preference values equal
# to or greater than its own", §5.1), and none left is a loop (5.4.6); an address literal
# names its host (§4.1.3).
from __future__ import annotations

import ipaddress
import random
from collections.abc import Collection, Sequence
from itertools import groupby
from typing import final

import attrs

from .._status import EnhancedStatusCode
from ._classify import Classification, route_failure

__all__ = ["MX", "Route", "route"]


@final
@attrs.frozen(order=True)
class MX:
    """One MX record: ``preference`` (lower is tried first) and the exchanger's name."""

    preference: int
    host: str


@final
@attrs.frozen(kw_only=True)
class Route:
    """The hosts to try, in order; ``implicit`` when the domain had no MX records and its
    own address stands in (RFC 5321 §5.1)."""

    domain: str
    hosts: tuple[str, ...]
    implicit: bool = False


def _name(host: str) -> str:
    return host.rstrip(".").lower()


def _literal(domain: str) -> str | None:
    """The host of an address literal (RFC 5321 §4.1.3), None for a domain name."""
    if not (domain.startswith("[") and domain.endswith("]")):
        return None
    inner = domain[1:-1]
    if inner[:5].lower() == "ipv6:":
        inner = inner[5:]
    try:
        return str(ipaddress.ip_address(inner))
    except ValueError:
        return None


def route(
    domain: str,
    mx_records: Sequence[MX],
    *,
    has_address: bool = False,
    local_names: Collection[str] = (),
    rng: random.Random | None = None,
) -> Route | Classification:
    """The hosts to try for ``domain``, or the Classification of why there are none.

    ``mx_records``: the domain's MX records (empty when it has none); ``has_address``: it
    has an A or AAAA record (for the implicit MX); ``local_names``: the names this host is
    known by, to spot itself among the exchangers; ``rng``: orders equal preferences (a
    seeded ``random.Random`` makes the order reproducible)."""
    literal = _literal(domain)
    if literal is not None:
        return Route(domain=domain, hosts=(literal,))
    if len(mx_records) == 1 and _name(mx_records[0].host) == "":
        # RFC 7505 §3, §4.1: 556 5.1.10 "Recipient address has null MX"
        return route_failure(f"{domain} accepts no mail (null MX)", EnhancedStatusCode(5, 1, 10))
    records = [mx for mx in mx_records if _name(mx.host)]  # a "." among others is ignored
    if not records:
        if has_address:
            return Route(domain=domain, hosts=(_name(domain),), implicit=True)
        # RFC 3463 §3.2: X.1.2 "Bad destination system address"
        return route_failure(
            f"{domain} has no MX and no address record", EnhancedStatusCode(5, 1, 2)
        )
    records.sort(key=lambda mx: mx.preference)
    ours = {_name(n) for n in local_names}
    mine = [mx.preference for mx in records if _name(mx.host) in ours]
    if mine:
        records = [mx for mx in records if mx.preference < min(mine)]
        if not records:
            # RFC 3463 §3.5: X.4.6 "Routing loop detected"
            return route_failure(
                f"mail for {domain} loops back to this host (it is its best MX)",
                EnhancedStatusCode(5, 4, 6),
            )
    shuffle = (rng or random.Random()).shuffle
    hosts: list[str] = []
    for _pref, group in groupby(records, key=lambda mx: mx.preference):
        names = list(dict.fromkeys(_name(mx.host) for mx in group))
        shuffle(names)
        hosts.extend(n for n in names if n not in hosts)
    return Route(domain=domain, hosts=tuple(hosts))
