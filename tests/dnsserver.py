"""A DNS server on 127.0.0.1 for the delivery tests (dnslib): answers from a dict, so no
test ever asks the outside network."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import pytest

dnslib = pytest.importorskip("dnslib")
dnslib_server = pytest.importorskip("dnslib.server")

#: name -> [(type, value)], e.g. {"a.test": [("MX", (10, "mx1.a.test"))], "mx1.a.test":
#: [("A", "127.0.0.2")]}; a name listed with [("SERVFAIL", None)] fails.
Zone = Mapping[str, Sequence[tuple[str, object]]]


class _Resolver:
    def __init__(self, zone: Zone) -> None:
        self.zone = {k.rstrip(".").lower(): v for k, v in zone.items()}

    def resolve(self, request: object, handler: object) -> object:
        reply = request.reply()  # type: ignore[attr-defined]
        qname = str(request.q.qname).rstrip(".").lower()  # type: ignore[attr-defined]
        qtype = dnslib.QTYPE[request.q.qtype]  # type: ignore[attr-defined]
        records = self.zone.get(qname)
        if records is None:
            reply.header.rcode = dnslib.RCODE.NXDOMAIN
            return reply
        for kind, value in records:
            if kind == "SERVFAIL":
                reply.header.rcode = dnslib.RCODE.SERVFAIL
                return reply
            if kind != qtype:
                continue
            if kind == "MX":
                pref, host = value  # type: ignore[misc]
                rdata = dnslib.MX(host, pref)
            elif kind == "A":
                rdata = dnslib.A(value)
            elif kind == "AAAA":
                rdata = dnslib.AAAA(value)
            elif kind == "TXT":
                rdata = dnslib.TXT(value)
            else:
                raise ValueError(kind)
            reply.add_answer(dnslib.RR(qname, getattr(dnslib.QTYPE, kind), rdata=rdata, ttl=60))
        return reply


@contextmanager
def dns_server(zone: Zone) -> Iterator[tuple[str, int]]:
    """Serve ``zone`` over UDP on 127.0.0.1; yields (address, port)."""
    quiet = dnslib_server.DNSLogger(logf=lambda _line: None)
    server = dnslib_server.DNSServer(_Resolver(zone), address="127.0.0.1", port=0, logger=quiet)
    server.start_thread()
    try:
        yield server.server.server_address[:2]
    finally:
        server.stop()
        server.server.server_close()
