"""MTA-STS (RFC 8461): the record, the policy, its MX patterns, applying it to a route,
caching, and a policy fetched from a local HTTPS server."""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from sansio_smtp.delivery import Classification, Route
from sansio_smtp.delivery._mtasts import (
    PolicyCache,
    StsMode,
    StsPolicy,
    apply_policy,
    fetch_policy_https,
    parse_sts_record,
    policy_url,
)

POLICY = (
    "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\n"
    "max_age: 86400\r\n"
)


def test_parse_policy() -> None:
    # RFC 8461 §3.2
    policy = StsPolicy.parse(POLICY)
    assert policy == StsPolicy(
        mode=StsMode.ENFORCE, mx=("mail.example.com", "*.example.net"), max_age=86400
    )
    assert StsPolicy.parse("version: STSv1\nmode: none\nmax_age: 0\n").mode is StsMode.NONE


@pytest.mark.parametrize(
    "text",
    [
        "mode: enforce\nmx: a.example\nmax_age: 1\n",  # no version
        "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",
        "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmax_age: 1\n",  # enforce without mx
        "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n",
        "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n",
        "version: STSv1\nmode: enforce\nmx a.example\nmax_age: 1\n",
        "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n" + "x: y\n" * 20000,
    ],
)
def test_invalid_policies(text: str) -> None:
    with pytest.raises(ValueError):
        StsPolicy.parse(text)


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("mail.example.com", True),
        ("MAIL.example.com.", True),
        ("mx1.example.net", True),  # RFC 8461 §4.1: "*." is one leftmost label
        ("example.net", False),
        ("a.b.example.net", False),
        ("evil.example.org", False),
    ],
)
def test_mx_patterns(host: str, allowed: bool) -> None:
    assert StsPolicy.parse(POLICY).allows(host) is allowed


def test_record() -> None:
    # RFC 8461 §3.1
    assert parse_sts_record(["v=STSv1; id=20160831085700Z;"]) == "20160831085700Z"
    assert parse_sts_record(["v=spf1 -all", "v=STSv1;id=abc"]) == "abc"
    assert parse_sts_record(["v=STSv1; id=a", "v=STSv1; id=b"]) is None  # two: none
    assert parse_sts_record(["v=STSv1; id=not valid!"]) is None
    assert parse_sts_record([]) is None
    assert policy_url("Example.COM.") == "https://mta-sts.example.com/.well-known/mta-sts.txt"


def test_apply() -> None:
    # RFC 8461 §4.2: enforce keeps the named MX hosts and requires verified TLS
    route = Route(domain="example.net", hosts=("mx1.example.net", "rogue.example.org"))
    policy = StsPolicy.parse(POLICY)
    assert apply_policy(route, policy) == (
        Route(domain="example.net", hosts=("mx1.example.net",)),
        True,
    )
    testing = StsPolicy.parse(POLICY.replace("enforce", "testing"))
    assert apply_policy(route, testing) == (route, False)
    assert apply_policy(route, None) == (route, False)
    none_left, tls = apply_policy(Route(domain="example.net", hosts=("rogue.example.org",)), policy)
    assert isinstance(none_left, Classification) and none_left.transient and tls


def test_cache() -> None:
    # RFC 8461 §5: until max_age; a new id in the record means a new policy
    cache = PolicyCache()
    policy = StsPolicy.parse(POLICY)
    cache.put("example.net", policy, record_id="1", now=0.0)
    assert cache.get("example.net", now=10.0, record_id="1") is policy
    assert cache.get("EXAMPLE.net.", now=10.0, record_id=None) is policy
    assert cache.get("example.net", now=10.0, record_id="2") is None
    assert cache.get("example.net", now=86400.0, record_id="1") is None


@contextmanager
def https_policy_server(
    body: bytes, *, status: int = 200, content_type: str = "text/plain", location: str | None = None
) -> Iterator[tuple[int, ssl.SSLContext]]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("mta-sts.secure.test")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = ssl.create_default_context()
    ca.configure_trust(client)
    try:
        yield server.server_address[1], client
    finally:
        server.shutdown()
        server.server_close()


def _fetch(port: int, context: ssl.SSLContext) -> str:
    return fetch_policy_https(
        policy_url("secure.test"), context=context, connect_to=("127.0.0.1", port), timeout=10
    )


def test_fetch_from_a_local_https_server() -> None:
    with https_policy_server(POLICY.encode()) as (port, context):
        assert StsPolicy.parse(_fetch(port, context)).mode is StsMode.ENFORCE


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"status": 404}, "HTTP 404"),
        ({"status": 301, "location": "https://elsewhere.example/"}, "HTTP 301"),  # §3.3
        ({"content_type": "text/html"}, "text/html"),
    ],
)
def test_fetch_refuses(kwargs: dict[str, object], says: str) -> None:
    server = https_policy_server(POLICY.encode(), **kwargs)  # type: ignore[arg-type]
    with server as (port, context), pytest.raises(ValueError, match=says):
        _fetch(port, context)


def test_fetch_checks_the_certificate() -> None:
    # an untrusted CA: ssl.SSLCertVerificationError, an OSError
    with https_policy_server(POLICY.encode()) as (port, _context), pytest.raises(OSError):
        _fetch(port, ssl.create_default_context())
