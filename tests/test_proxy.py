"""The PROXY protocol header reader/writer (HAProxy proxy-protocol.txt, v1 and v2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sansio_smtp.proxy import (
    MAX_V1_LENGTH,
    V2_SIGNATURE,
    ProxyCommand,
    ProxyHeader,
    ProxyProtocolError,
    parse_proxy_header,
)

ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
ports = st.integers(0, 65535)


@st.composite
def headers(draw: st.DrawFn, version: int | None = None) -> ProxyHeader:
    version = version or draw(st.sampled_from([1, 2]))
    if version == 1:
        ips = draw(st.sampled_from([ipv4, ipv6]))
        return ProxyHeader(
            version=1,
            source=(draw(ips), draw(ports)),
            destination=(draw(ips), draw(ports)),
        )
    kind = draw(st.sampled_from(["inet", "unix", "local"]))
    tlvs = tuple(draw(st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=4)))
    if kind == "local":
        return ProxyHeader(version=2, command=ProxyCommand.LOCAL, transport="UNSPEC", tlvs=tlvs)
    if kind == "unix":
        path = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
        src, dst = draw(path), draw(path)
        return ProxyHeader(version=2, source=src, destination=dst, tlvs=tlvs)
    ips = draw(st.sampled_from([ipv4, ipv6]))
    return ProxyHeader(
        version=2,
        source=(draw(ips), draw(ports)),
        destination=(draw(ips), draw(ports)),
        transport=draw(st.sampled_from(["STREAM", "DGRAM"])),
        tlvs=tlvs,
    )


@given(headers(), st.binary(max_size=20))
def test_parse_of_write_is_identity_and_leaves_the_rest(header: ProxyHeader, rest: bytes) -> None:
    # parse(serialise(x)) == x; the octets after the header are SMTP's, untouched
    if header.version == 1 and header.source is not None:
        same = isinstance(header.destination, tuple) and (":" in header.source[0]) == (
            ":" in header.destination[0]
        )
        if not same:
            with pytest.raises(ValueError):
                header.to_bytes()
            return
    if header.version == 2 and isinstance(header.source, tuple):
        assert isinstance(header.destination, tuple)
        if (":" in header.source[0]) != (":" in header.destination[0]):
            with pytest.raises(ValueError):
                header.to_bytes()
            return
    wire = header.to_bytes()
    got = parse_proxy_header(wire + rest)
    assert got == (header, len(wire))


@given(headers(), st.data())
def test_any_prefix_asks_for_more_and_then_the_same(
    header: ProxyHeader, data: st.DataObject
) -> None:
    # h11's law for a stream reader: a cut anywhere before the end only asks for more
    try:
        wire = header.to_bytes()
    except ValueError:
        return
    cut = data.draw(st.integers(0, len(wire) - 1))
    assert parse_proxy_header(wire[:cut]) is None
    assert parse_proxy_header(wire) == (header, len(wire))


@given(st.binary(max_size=300))
def test_any_input_gives_a_header_none_or_the_typed_error(data: bytes) -> None:
    try:
        got = parse_proxy_header(data)
    except ProxyProtocolError:
        return
    if got is None:
        # bounded: undecided only while the header could still be shorter than the limit
        assert len(data) < MAX_V1_LENGTH or data.startswith(V2_SIGNATURE)
        return
    _, used = got
    assert 0 < used <= len(data)


@pytest.mark.parametrize(
    ("wire", "source"),
    [
        (b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\n", ("192.0.2.7", 40000)),
        (b"PROXY TCP6 2001:db8::1 2001:db8::2 4 25\r\n", ("2001:db8::1", 4)),
        (b"PROXY UNKNOWN\r\n", None),
        (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", None),
        # v2, as HAProxy writes it: PROXY, TCP over IPv4, 12 octets of addresses
        (
            V2_SIGNATURE + bytes.fromhex("2111000cac130001ac130003a6520050"),
            ("172.19.0.1", 42578),
        ),
        (V2_SIGNATURE + bytes.fromhex("20000000"), None),  # LOCAL: a health check
    ],
)
def test_examples(wire: bytes, source: object) -> None:
    got = parse_proxy_header(wire + b"EHLO x\r\n")
    assert got is not None
    header, used = got
    assert used == len(wire)
    assert header.source == source


@pytest.mark.parametrize(
    "wire",
    [
        b"EHLO client.example\r\n",  # no header where one is required: never guessed
        b"GET / HTTP/1.1\r\n",
        b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 025\r\n",  # leading zero
        b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 65536\r\n",
        b"PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n",  # family mismatch
        b"PROXY TCP4  192.0.2.7 198.51.100.1 1 2\r\n",  # two spaces
        b"PROXY TCP4 192.0.2.7 198.51.100.1 1 2\n",  # bare LF
        b"PROXY TCP4 192.0.2.7\r198.51.100.1 1 2\r\n",  # bare CR
        b"PROXY " + b"A" * MAX_V1_LENGTH,  # no CRLF within 107 octets
        V2_SIGNATURE + bytes.fromhex("3111000c"),  # version 3
        V2_SIGNATURE + bytes.fromhex("2211000c"),  # command 2
        V2_SIGNATURE + bytes.fromhex("2141000c"),  # family 4
        V2_SIGNATURE + bytes.fromhex("21110004") + b"\x00" * 4,  # address block too short
        V2_SIGNATURE + bytes.fromhex("21000003") + b"\x01\x00\x05",  # TLV overruns
        V2_SIGNATURE + bytes.fromhex("2100ffff"),  # longer than max_length
    ],
)
def test_refused(wire: bytes) -> None:
    with pytest.raises(ProxyProtocolError):
        parse_proxy_header(wire)


def test_refused_at_the_first_octet_that_shows_it() -> None:
    # a server need not wait for 107 octets to know "EHLO" is not a PROXY header
    with pytest.raises(ProxyProtocolError):
        parse_proxy_header(b"E")
    assert parse_proxy_header(b"PRO") is None
    assert parse_proxy_header(V2_SIGNATURE[:5]) is None
