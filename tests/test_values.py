"""Value types: addresses, parameters, extension sets, status codes, config."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sansio_smtp import (
    Address,
    Config,
    EnhancedStatusCode,
    Extensions,
    MailFrom,
    Params,
    Reply,
    ReplyClass,
)
from sansio_smtp._lines import scan_line_lengths


@pytest.mark.parametrize(
    ("text", "local", "domain"),
    [
        ("user@example.org", "user", "example.org"),
        ("first.last+tag@sub.example.org", "first.last+tag", "sub.example.org"),
        ('"john doe"@example.org', "john doe", "example.org"),
        ('"a\\"b\\\\c"@example.org', 'a"b\\c', "example.org"),  # RFC 5321 §4.1.2 quoted-pairSMTP
        ('""@example.org', "", "example.org"),
        ("u@[192.0.2.1]", "u", "[192.0.2.1]"),  # RFC 5321 §4.1.3 address literals
        ("u@[IPv6:2001:db8::1]", "u", "[IPv6:2001:db8::1]"),
        ("Postmaster", "Postmaster", None),  # RFC 5321 §4.1.1.3
        ("@a.example,@b.example:u@c.example", "u", "c.example"),  # source route dropped
    ],
)
def test_address_parse(text: str, local: str, domain: str | None) -> None:
    address = Address.parse(text)
    assert (address.local_part, address.domain) == (local, domain)
    assert Address.parse(str(address)) == address


@pytest.mark.parametrize(
    "text",
    [
        "no-at-sign",
        "a@",
        "@example.org",
        "a..b@example.org",  # RFC 5321 §4.1.2 Dot-string: no empty atoms
        ".a@example.org",
        "a@example..org",
        "a@-example.org",
        "a@[999.1.1.1]",
        "a@[IPv6:zz::1]",
        "a b@example.org",
        'a"b@example.org',
    ],
)
def test_address_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        Address.parse(text)


def test_address_canonical_form() -> None:
    # RFC 5321 §4.1.2: a local part that is a Dot-string is sent unquoted
    assert str(Address.parse('"abc"@example.org')) == "abc@example.org"
    assert str(Address("a b", "example.org")) == '"a b"@example.org'


def test_utf8_addresses() -> None:
    # RFC 6531 §3.3: UTF-8 in local parts and domains once SMTPUTF8 is in effect
    address = Address.parse("jörg@bücher.example")
    assert not address.is_ascii
    with pytest.raises(ValueError):
        Address.parse("jörg@bücher.example", utf8=False)


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30))
def test_any_printable_local_part_round_trips(local: str) -> None:
    # RFC 5321 §4.1.2: any qtextSMTP / quoted-pairSMTP content can be quoted
    address = Address(local, "example.org")
    assert Address.parse(str(address)) == address


def test_reverse_path_coercion() -> None:
    assert MailFrom(reverse_path="").reverse_path is None
    assert MailFrom(reverse_path="<>").reverse_path is None
    assert MailFrom(reverse_path="<a@b.example>").reverse_path == Address("a", "b.example")


def test_params() -> None:
    params = Params([("size", "100"), ("SMTPUTF8", None)])
    assert params["SIZE"] == "100" and "smtputf8" in params
    assert list(params) == ["SIZE", "SMTPUTF8"]
    assert params.to_wire() == "SIZE=100 SMTPUTF8"
    assert params == {"Size": "100", "smtputf8": None}
    assert hash(params) == hash(Params({"SIZE": "100", "SMTPUTF8": None}))
    for bad in ([("SIZE", "1"), ("size", "2")], [("BAD KEY", None)], [("X", "a=b")], [("X", "")]):
        with pytest.raises(ValueError):
            Params(bad)  # type: ignore[arg-type]


def test_extensions() -> None:
    ext = Extensions({"size": "1000", "AUTH": ["PLAIN", "LOGIN"], "PIPELINING": None})
    assert ext["SIZE"] == ("1000",) and "pipelining" in ext
    assert ext.ehlo_lines() == ["SIZE 1000", "AUTH PLAIN LOGIN", "PIPELINING"]
    assert Extensions.from_ehlo_lines(ext.ehlo_lines()) == ext
    # junk lines in an EHLO reply are skipped, not fatal
    assert Extensions.from_ehlo_lines(["", "   ", "-bad", "OK"]) == Extensions(["OK"])
    with pytest.raises(ValueError):
        Extensions({"SI ZE": ()})


def test_enhanced_status_code() -> None:
    # RFC 3463 §2: class.subject.detail, class 2/4/5, up to three digits each
    code = EnhancedStatusCode.parse("5.1.1")
    assert (code.class_, code.subject, code.detail, str(code)) == (5, 1, 1, "5.1.1")
    assert code.subject_detail == "1.1"
    for bad in ("3.1.1", "5.1", "5.01.1", "5.1.1000", "x.y.z", "5.1.1 "):
        with pytest.raises(ValueError):
            EnhancedStatusCode.parse(bad)


def test_reply_values() -> None:
    # RFC 5321 §4.2: first digit 2-5, second 0-5
    reply = Reply(code=550, lines="a\nb", enhanced="5.1.1")
    assert reply.lines == ("a", "b") and reply.is_permanent
    assert reply.reply_class is ReplyClass.PERMANENT_NEGATIVE
    # str() is the wire form, "550-" on all lines but the last (RFC 5321 §4.2.1; issue 15)
    assert str(reply) == "550-5.1.1 a\n550 5.1.1 b"
    for bad in (199, 600, 260, 2500):
        with pytest.raises(ValueError):
            Reply(code=bad)


def test_config_defaults_and_floors() -> None:
    config = Config()
    # RFC 5321 §4.5.3.1.4-8
    assert config.max_command_line == 512
    assert config.max_reply_line == 512
    assert config.max_data_line == 1000
    assert config.max_recipients >= 100
    with pytest.raises(ValueError):
        Config(max_recipients=99)
    with pytest.raises(ValueError):
        Config(max_command_line=100)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.max_recipients = 5  # type: ignore[misc]


def _naive_longest(data: bytes) -> int:
    return max(len(line) + 1 for line in data.split(b"\n"))


@given(
    st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=20),
    st.integers(2, 50),
    st.lists(st.integers(1, 30), min_size=1, max_size=5),
)
def test_scan_line_lengths_matches_naive(lines: list[bytes], limit: int, cuts: list[int]) -> None:
    data = b"\n".join(lines) + b"\n"
    expected_ok = _naive_longest(data[:-1]) <= limit if lines else True
    carried = 0
    pos = 0
    ok = True
    k = 0
    while pos < len(data):
        piece = data[pos : pos + cuts[k % len(cuts)]]
        pos += len(piece)
        k += 1
        carried = scan_line_lengths(piece, carried, limit)
        if carried < 0:
            ok = False
            break
    assert ok == expected_ok
