"""DNS lookups for delivery, against a DNS server on 127.0.0.1 (never the outside network)."""

from __future__ import annotations

import asyncio
import random

import pytest

from sansio_smtp.delivery import MX, Classification, Route

from .dnsserver import dns_server

pytest.importorskip("dns.asyncresolver")

from sansio_smtp.delivery._dns import Resolver

ZONE = {
    "a.test": [("MX", (20, "mx2.a.test")), ("MX", (10, "mx1.a.test"))],
    "mx1.a.test": [("A", "127.0.0.2")],
    "mx2.a.test": [("A", "127.0.0.3"), ("AAAA", "::1")],
    "implicit.test": [("A", "127.0.0.4")],  # no MX: the domain itself (RFC 5321 §5.1)
    "null.test": [("MX", (0, "."))],  # RFC 7505
    "broken.test": [("SERVFAIL", None)],
}


def _run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_lookups() -> None:
    with dns_server(ZONE) as ns:
        resolver = Resolver([ns], timeout=5)
        found = _run(resolver.lookup("a.test"))
        assert sorted(found.mx) == [MX(10, "mx1.a.test"), MX(20, "mx2.a.test")]
        assert _run(resolver.addresses("mx2.a.test")) == ["127.0.0.3", "::1"]
        assert _run(resolver.route("a.test", rng=random.Random(1))) == Route(
            domain="a.test", hosts=("mx1.a.test", "mx2.a.test")
        )
        # RFC 5321 §5.1: no MX, an address: the implicit MX
        assert _run(resolver.route("implicit.test")) == Route(
            domain="implicit.test", hosts=("implicit.test",), implicit=True
        )


@pytest.mark.parametrize(
    ("domain", "status", "permanent"),
    [
        ("null.test", "5.1.10", True),  # RFC 7505 §4.1
        ("nonexistent.test", "5.1.2", True),  # NXDOMAIN: no such domain
        ("broken.test", "4.4.3", False),  # SERVFAIL: retry, never bounce for it
    ],
)
def test_no_route(domain: str, status: str, permanent: bool) -> None:
    with dns_server(ZONE) as ns:
        got = _run(Resolver([ns], timeout=5).route(domain))
    assert isinstance(got, Classification)
    assert str(got.status) == status and got.permanent is permanent
