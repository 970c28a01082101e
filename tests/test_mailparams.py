"""Typed, validated ESMTP MAIL/RCPT parameters (sansio_smtp._mailparams).

One example test per RFC rule, with the section cited, then Hypothesis properties: xtext
and utf-8-addr-xtext round trips, builders round-tripping through the accessors, and the
server checks never raising for any Params the RFC 5321 grammar allows.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sansio_smtp import Extensions, LocalProtocolError, Params, Reply
from sansio_smtp._mailparams import (
    MAX_ENVID_LENGTH,
    MAX_ORCPT_LENGTH,
    Body,
    DeliverBy,
    Notify,
    OriginalRecipient,
    Ret,
    auth,
    auth_mail_param,
    body,
    deliver_by,
    dsn_mail_params,
    dsn_rcpt_params,
    envid,
    mail_params,
    mt_priority,
    notify,
    orcpt,
    requiretls,
    ret,
    size,
    smtputf8,
    utf8_addr_decode,
    utf8_addr_encode,
    xtext_decode,
    xtext_encode,
)
from sansio_smtp._rules import (
    check_mail_params,
    check_rcpt_params,
    validate_mail_params,
    validate_rcpt_params,
)

# Every extension whose parameters this module knows, advertised at once.
ALL = Extensions(
    {
        "SIZE": (),
        "8BITMIME": (),
        "BINARYMIME": (),
        "CHUNKING": (),
        "SMTPUTF8": (),
        "DSN": (),
        "AUTH": ("PLAIN",),
        "REQUIRETLS": (),
        "MT-PRIORITY": (),
        "DELIVERBY": (),
    }
)
NONE = Extensions()

XTEXT_RE = re.compile(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*")


def P(**kwargs: str | None) -> Params:
    """Params from keyword arguments; "_" in a name stands for "-" (MT_PRIORITY)."""
    return Params({k.replace("_", "-"): v for k, v in kwargs.items()})


# ---------------------------------------------------------------- xtext (RFC 3461 §4)


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("QQ314159", "QQ314159"),  # RFC 3461 §4.4 example ENVID
        ("e=mc2@example.com", "e+3Dmc2@example.com"),  # RFC 4954 §5.1 example
        ("a+b", "a+2Bb"),  # "+" is not an xchar (RFC 3461 §4)
        ("a b", "a+20b"),  # SP is outside "!".."~"
        ("tab\t", "tab+09"),
        ("\x7f", "+7F"),
        ("é", "+C3+A9"),  # octets of the UTF-8 encoding
        ("<>", "<>"),
        ("", ""),  # xtext = *( xchar / hexchar )
    ],
)
def test_xtext_encode_examples(text: str, wire: str) -> None:
    assert xtext_encode(text) == wire
    assert xtext_decode(wire) == text


@pytest.mark.parametrize(
    "wire",
    [
        "a+2b",  # RFC 3461 §4: hexchar is "+" and two UPPER case hex digits
        "a+2",  # "+" not followed by two hex digits
        "a+",
        "+G0",
        "a=b",  # "=" is not an xchar
        "a b",  # SP is not an xchar
        "é",  # non-ASCII is only allowed as hexchar
        "+FF",  # decodes to an octet that is not UTF-8
        "+C3",  # truncated UTF-8 sequence
    ],
)
def test_xtext_decode_rejects(wire: str) -> None:
    with pytest.raises(ValueError):
        xtext_decode(wire)


def test_xtext_encode_rejects_lone_surrogate() -> None:
    with pytest.raises(ValueError):
        xtext_encode("\ud800")


@given(st.text())
def test_xtext_round_trip(text: str) -> None:
    # RFC 3461 §4: any octet string can be carried as xtext.
    assert xtext_decode(xtext_encode(text)) == text


@given(st.text())
def test_xtext_encode_uses_only_xchars_and_hexchars(text: str) -> None:
    wire = xtext_encode(text)
    assert XTEXT_RE.fullmatch(wire)
    # Outside "+HH" escapes only %d33-126 appears, and never "+" or "=".
    bare = re.sub(r"\+[0-9A-F]{2}", "", wire)
    assert all(33 <= ord(c) <= 126 and c not in "+=" for c in bare)
    # and it is a valid esmtp-value whenever non-empty (RFC 5321 §4.1.2)
    if wire:
        Params({"ENVID": wire})


# ------------------------------------------------- utf-8-addr-xtext (RFC 6533 §3)


@pytest.mark.parametrize(
    ("address", "xtext", "unitext"),
    [
        ("e=mc2@example.com", "e\\x{3D}mc2@example.com", "e\\x{3D}mc2@example.com"),
        ("jöe@example.org", "j\\x{F6}e@example.org", "jöe@example.org"),
        ("用户@例子.广告", "\\x{7528}\\x{6237}@\\x{4F8B}\\x{5B50}.\\x{5E7F}\\x{544A}", None),
        ("a+b@example.org", "a\\x{2B}b@example.org", None),
        ("a\\b@example.org", "a\\x{5C}b@example.org", None),
        ("a b@example.org", "a\\x{20}b@example.org", None),
        ("\U0001f600@example.org", "\\x{1F600}@example.org", None),
    ],
)
def test_utf8_addr_examples(address: str, xtext: str, unitext: str | None) -> None:
    # RFC 6533 §3: QCHAR excludes CTLs, SP, "\", "+" and "="; EmbeddedUnicodeChar is
    # "\x{" HEXPOINT "}"; utf-8-addr-xtext is 7-bit, utf-8-addr-unitext keeps UTF-8.
    assert utf8_addr_encode(address) == xtext
    assert utf8_addr_decode(xtext) == address
    if unitext is not None:
        assert utf8_addr_encode(address, unitext=True) == unitext
        assert utf8_addr_decode(unitext) == address


def test_utf8_addr_decode_accepts_lower_case_hex() -> None:
    # ABNF strings are case-insensitive (RFC 5234 §2.3), so HEXDIG may be "a".."f".
    assert utf8_addr_decode("j\\x{f6}e@example.org") == "jöe@example.org"


@pytest.mark.parametrize(
    "wire",
    [
        "",  # 1*(QCHAR / EmbeddedUnicodeChar)
        "a+b",  # "+" is not a QCHAR
        "a=b",
        "a\\b",  # a lone "\" is not a QCHAR
        "a\\x{}b",
        "a\\x{41}b",  # "A" is a QCHAR: HEXPOINT has no 2-digit form for it
        "a\\x{0F6}b",  # 3+ digit forms have no leading zero
        "a\\x{D800}b",  # surrogates are excluded
        "a\\x{110000}b",  # beyond U+10FFFF
        "a\\x{00}b",
        "a\\X{F6}b",  # "\x" is %x5C.78: lower-case x
        "a b",
    ],
)
def test_utf8_addr_decode_rejects(wire: str) -> None:
    with pytest.raises(ValueError):
        utf8_addr_decode(wire)


@pytest.mark.parametrize("address", ["", "a\x00b", "a\ud800b"])
def test_utf8_addr_encode_rejects(address: str) -> None:
    with pytest.raises(ValueError):
        utf8_addr_encode(address)


_ADDR_TEXT = st.text(
    alphabet=st.characters(exclude_characters="\x00", exclude_categories=["Cs"]),
    min_size=1,
)


@given(_ADDR_TEXT, st.booleans())
def test_utf8_addr_round_trip(address: str, unitext: bool) -> None:
    wire = utf8_addr_encode(address, unitext=unitext)
    assert utf8_addr_decode(wire) == address
    if not unitext:
        assert wire.isascii()  # utf-8-addr-xtext is the 7-bit form
    Params({"ORCPT": "utf-8;" + wire})  # always a valid esmtp-value (RFC 6531 §3.3)


# -------------------------------------------------------------- SIZE (RFC 1870)


@pytest.mark.parametrize(
    ("wire", "value"),
    [("0", 0), ("500000", 500000), ("00012", 12), ("9" * 20, 10**20 - 1)],
)
def test_size(wire: str, value: int) -> None:
    # RFC 1870 §3 (4): size-value ::= 1*20DIGIT
    assert size(P(SIZE=wire)) == value


@pytest.mark.parametrize(
    "wire", ["1" * 21, "-1", "+1", "1e3", "0x10", "\uff11\uff12", "\u0661\u0662", "1_000"]
)
def test_size_rejects(wire: str) -> None:
    with pytest.raises(ValueError, match="SIZE"):
        size(P(SIZE=wire))


def test_size_absent_and_without_value() -> None:
    assert size(P()) is None
    with pytest.raises(ValueError, match="needs a value"):
        size(P(SIZE=None))


def test_size_over_limit_is_552() -> None:
    # RFC 1870 §6.1 (2): larger than the fixed maximum message size -> 552.
    reply = check_mail_params(P(SIZE="1001"), extensions=ALL, tls=True, size_limit=1000)
    assert reply is not None
    assert (reply.code, str(reply.enhanced)) == (552, "5.3.4")
    assert check_mail_params(P(SIZE="1000"), extensions=ALL, tls=True, size_limit=1000) is None


def test_size_limit_from_ehlo_parameter() -> None:
    # RFC 1870 §3 (3): the EHLO SIZE parameter is the fixed maximum; 0 means no limit.
    ext = Extensions({"SIZE": ("1000",)})
    reply = check_mail_params(P(SIZE="1001"), extensions=ext, tls=True)
    assert reply is not None and reply.code == 552
    assert check_mail_params(P(SIZE="1001"), extensions=ext, tls=True, size_limit=0) is None
    unlimited = Extensions({"SIZE": ("0",)})
    assert check_mail_params(P(SIZE="9" * 20), extensions=unlimited, tls=True) is None


# ----------------------------------------------------- BODY (RFC 6152, RFC 3030)


@pytest.mark.parametrize(
    ("wire", "value"),
    [
        ("7BIT", Body.SEVEN_BIT),  # RFC 6152 §2 body-value
        ("8BITMIME", Body.EIGHT_BIT_MIME),
        ("8bitmime", Body.EIGHT_BIT_MIME),  # ABNF literals are case-insensitive
        ("BINARYMIME", Body.BINARY_MIME),  # RFC 3030 §3
    ],
)
def test_body(wire: str, value: Body) -> None:
    assert body(P(BODY=wire)) is value


@pytest.mark.parametrize("wire", ["9BITMIME", "8BIT", "BINARY", "7BİT"])
def test_body_rejects(wire: str) -> None:
    with pytest.raises(ValueError, match="BODY"):
        body(P(BODY=wire))


def test_binarymime_needs_chunking_and_binarymime() -> None:
    # RFC 3030 §3: BODY=BINARYMIME only when both BINARYMIME and CHUNKING are advertised.
    for ext in (
        Extensions({"8BITMIME": ()}),
        Extensions({"8BITMIME": (), "BINARYMIME": ()}),
        Extensions({"8BITMIME": (), "CHUNKING": ()}),
    ):
        reply = check_mail_params(P(BODY="BINARYMIME"), extensions=ext, tls=True)
        assert reply is not None and reply.code == 555
    both = Extensions({"BINARYMIME": (), "CHUNKING": ()})
    assert check_mail_params(P(BODY="BINARYMIME"), extensions=both, tls=True) is None


def test_8bitmime_value_needs_8bitmime() -> None:
    # RFC 6152 §2: BODY=8BITMIME belongs to the 8BITMIME extension.
    ext = Extensions({"BINARYMIME": (), "CHUNKING": ()})
    reply = check_mail_params(P(BODY="8BITMIME"), extensions=ext, tls=True)
    assert reply is not None and reply.code == 555
    assert check_mail_params(P(BODY="7BIT"), extensions=ext, tls=True) is None


def test_body_without_extension_is_555() -> None:
    reply = check_mail_params(P(BODY="7BIT"), extensions=NONE, tls=True)
    assert reply is not None and (reply.code, str(reply.enhanced)) == (555, "5.5.4")


# ---------------------------------------------------------- SMTPUTF8 (RFC 6531)


def test_smtputf8_flag() -> None:
    # RFC 6531 §3.4: SMTPUTF8 is a MAIL parameter without a value.
    assert smtputf8(P(SMTPUTF8=None)) is True
    assert smtputf8(P()) is False
    with pytest.raises(ValueError, match="no value"):
        smtputf8(P(SMTPUTF8="yes"))


def test_smtputf8_with_value_is_501() -> None:
    reply = check_mail_params(P(SMTPUTF8="yes"), extensions=ALL, tls=True)
    assert reply is not None and (reply.code, str(reply.enhanced)) == (501, "5.5.4")
    assert check_mail_params(P(SMTPUTF8=None), extensions=ALL, tls=True) is None


# ------------------------------------------------------------- DSN (RFC 3461)


@pytest.mark.parametrize(
    ("wire", "value"), [("FULL", Ret.FULL), ("HDRS", Ret.HDRS), ("hdrs", Ret.HDRS)]
)
def test_ret(wire: str, value: Ret) -> None:
    # RFC 3461 §4.3: ret-value = "FULL" / "HDRS"
    assert ret(P(RET=wire)) is value


@pytest.mark.parametrize("wire", ["BODY", "FULLY", "HEADERS"])
def test_ret_rejects(wire: str) -> None:
    with pytest.raises(ValueError, match="RET"):
        ret(P(RET=wire))


def test_envid() -> None:
    # RFC 3461 §4.4: envid-parameter = "ENVID=" xtext
    assert envid(P(ENVID="QQ314159")) == "QQ314159"
    assert envid(P(ENVID="a+2Bb+3Dc")) == "a+b=c"
    assert envid(P(ENVID="x" * MAX_ENVID_LENGTH)) == "x" * 100
    assert envid(P()) is None


@pytest.mark.parametrize("wire", ["x" * 101, "a+2bb", "a+"])
def test_envid_rejects(wire: str) -> None:
    # RFC 3461 §4.4: at most 100 characters; xtext grammar of §4.
    with pytest.raises(ValueError, match="ENVID"):
        envid(P(ENVID=wire))


@pytest.mark.parametrize(
    ("wire", "value"),
    [
        ("NEVER", {Notify.NEVER}),  # RFC 3461 §4.1
        ("SUCCESS", {Notify.SUCCESS}),
        ("SUCCESS,FAILURE", {Notify.SUCCESS, Notify.FAILURE}),
        ("delay,failure", {Notify.FAILURE, Notify.DELAY}),
        ("FAILURE,DELAY,SUCCESS", {Notify.SUCCESS, Notify.FAILURE, Notify.DELAY}),
    ],
)
def test_notify(wire: str, value: set[Notify]) -> None:
    assert notify(P(NOTIFY=wire)) == frozenset(value)


@pytest.mark.parametrize(
    "wire",
    [
        "NEVER,SUCCESS",  # RFC 3461 §4.1: "the NEVER keyword MUST appear by itself"
        "FAILURE,NEVER",
        "SUCCESS,SUCCESS",  # no duplicates
        "SUCCESS,",  # no empty list elements
        ",SUCCESS",
        "ALWAYS",
    ],
)
def test_notify_rejects(wire: str) -> None:
    with pytest.raises(ValueError, match="NOTIFY"):
        notify(P(NOTIFY=wire))


@pytest.mark.parametrize(
    ("wire", "value"),
    [
        # RFC 3461 §4.2: original-recipient-address = addr-type ";" xtext
        ("rfc822;bob@example.org", OriginalRecipient("rfc822", "bob@example.org")),
        ("rfc822;e+3Dmc2@example.com", OriginalRecipient("rfc822", "e=mc2@example.com")),
        ("x400;any+20thing", OriginalRecipient("x400", "any thing")),
        # RFC 6533 §3: utf-8 type with utf-8-addr-xtext / utf-8-addr-unitext
        ("UTF-8;e\\x{3D}mc2@example.com", OriginalRecipient("UTF-8", "e=mc2@example.com")),
        ("utf-8;j\\x{F6}e@example.org", OriginalRecipient("utf-8", "jöe@example.org")),
        ("utf-8;jöe@example.org", OriginalRecipient("utf-8", "jöe@example.org")),
    ],
)
def test_orcpt(wire: str, value: OriginalRecipient) -> None:
    assert orcpt(P(ORCPT=wire)) == value


@pytest.mark.parametrize(
    "wire",
    [
        "bob@example.org",  # no addr-type
        ";bob@example.org",  # addr-type = atom: at least one character
        "rfc(822);bob@example.org",  # "(" is not atext
        "rfc822;",  # no address
        "rfc822;a+2b",  # bad xtext
        "utf-8;e+3Dmc2@example.com",  # RFC 6533 §3: "+" is not a QCHAR
        "utf-8;no-domain",  # RFC 6533 §3: utf-8-address = Mailbox
        "rfc822;" + "x" * MAX_ORCPT_LENGTH,  # RFC 3461 §4.2: at most 500 characters
    ],
)
def test_orcpt_rejects(wire: str) -> None:
    with pytest.raises(ValueError, match="ORCPT"):
        orcpt(P(ORCPT=wire))


def test_original_recipient_validates() -> None:
    with pytest.raises(ValueError):
        OriginalRecipient("rfc 822", "bob@example.org")
    with pytest.raises(ValueError):
        OriginalRecipient("rfc822", "")
    assert OriginalRecipient("UTF-8", "a@b.example").is_utf8


def test_dsn_parameters_need_dsn() -> None:
    # RFC 3461 §4: RET/ENVID/NOTIFY/ORCPT belong to DSN; RFC 5321 §4.1.1.11 -> 555.
    reply = check_mail_params(P(RET="FULL"), extensions=NONE, tls=True)
    assert reply is not None and reply.code == 555
    reply = check_rcpt_params(P(NOTIFY="NEVER"), extensions=NONE)
    assert reply is not None and reply.code == 555
    assert check_rcpt_params(P(NOTIFY="NEVER", ORCPT="rfc822;a@b.example"), extensions=ALL) is None


def test_rcpt_only_knows_rcpt_parameters() -> None:
    # MAIL parameters are not RCPT parameters and vice versa (RFC 5321 §4.1.1.11).
    reply = check_rcpt_params(P(RET="FULL"), extensions=ALL)
    assert reply is not None and reply.code == 555
    reply = check_mail_params(P(NOTIFY="NEVER"), extensions=ALL, tls=True)
    assert reply is not None and reply.code == 555


def test_non_ascii_orcpt_needs_smtputf8() -> None:
    # RFC 6533 §3: utf-8-addr-unitext only when SMTPUTF8 is advertised.
    params = P(ORCPT="utf-8;jöe@example.org")
    reply = check_rcpt_params(params, extensions=Extensions({"DSN": ()}))
    assert reply is not None and reply.code == 501
    assert check_rcpt_params(params, extensions=ALL) is None


# ------------------------------------------------------------- AUTH (RFC 4954)


@pytest.mark.parametrize(
    ("wire", "value"),
    [
        ("e+3Dmc2@example.com", "e=mc2@example.com"),  # RFC 4954 §5.1 example
        ("<>", None),  # RFC 4954 §5: submitter unknown
        ("+3C+3E", None),  # §8: it is the *decoded* xtext that is "<>"
        ("john+2B@example.org", "john+@example.org"),
    ],
)
def test_auth(wire: str, value: str | None) -> None:
    assert auth(P(AUTH=wire)) == value


@pytest.mark.parametrize("wire", ["nobody", "postmaster", "a@", "<a@b.example>", "a+2b@b.example"])
def test_auth_rejects(wire: str) -> None:
    # RFC 4954 §8: the decoded xtext MUST be a <mailbox> or "<>".
    with pytest.raises(ValueError, match="AUTH"):
        auth(P(AUTH=wire))


def test_auth_absent() -> None:
    assert auth(P()) is None


# -------------------------------------------------------- REQUIRETLS (RFC 8689)


def test_requiretls_flag() -> None:
    # RFC 8689 §2: requiretls-param = "REQUIRETLS", without a value.
    assert requiretls(P(REQUIRETLS=None)) is True
    assert requiretls(P()) is False
    with pytest.raises(ValueError):
        requiretls(P(REQUIRETLS="yes"))


def test_requiretls_without_tls_is_530() -> None:
    # RFC 8689: REQUIRETLS only on a TLS session; 530 5.7.10 (as mox and gumdrop answer).
    reply = check_mail_params(P(REQUIRETLS=None), extensions=ALL, tls=False)
    assert reply is not None and (reply.code, str(reply.enhanced)) == (530, "5.7.10")
    assert check_mail_params(P(REQUIRETLS=None), extensions=ALL, tls=True) is None


def test_requiretls_not_advertised_is_555() -> None:
    ext = Extensions({"STARTTLS": ()})
    reply = check_mail_params(P(REQUIRETLS=None), extensions=ext, tls=True)
    assert reply is not None and reply.code == 555


def test_requiretls_with_value_is_501() -> None:
    reply = check_mail_params(P(REQUIRETLS="yes"), extensions=ALL, tls=True)
    assert reply is not None and reply.code == 501


# ------------------------------------------------------- MT-PRIORITY (RFC 6710)


@pytest.mark.parametrize(
    ("wire", "value"), [("-9", -9), ("+9", 9), ("9", 9), ("0", 0), ("-0", 0), ("3", 3)]
)
def test_mt_priority(wire: str, value: int) -> None:
    # RFC 6710 §3: an integer -9..9 with an optional sign.
    assert mt_priority(P(MT_PRIORITY=wire)) == value


@pytest.mark.parametrize(("wire", "match"), [("10", "range"), ("-10", "range"), ("ab", "integer")])
def test_mt_priority_rejects(wire: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        mt_priority(P(MT_PRIORITY=wire))


def test_mt_priority_out_of_range_is_501() -> None:
    reply = check_mail_params(P(MT_PRIORITY="10"), extensions=ALL, tls=True)
    assert reply is not None and (reply.code, str(reply.enhanced)) == (501, "5.5.4")


# ---------------------------------------------------------- DELIVERBY (RFC 2852)


@pytest.mark.parametrize(
    ("wire", "value"),
    [
        ("120;R", DeliverBy(120, "R")),  # RFC 2852 §4 by-value
        ("-60;N", DeliverBy(-60, "N")),  # by-time may be negative with "N"
        ("+0;NT", DeliverBy(0, "N", True)),
        ("60;rt", DeliverBy(60, "R", True)),  # ABNF literals are case-insensitive
        ("999999999;N", DeliverBy(999_999_999, "N")),
    ],
)
def test_deliver_by(wire: str, value: DeliverBy) -> None:
    assert deliver_by(P(BY=wire)) == value


@pytest.mark.parametrize(
    "wire",
    [
        "0;R",  # RFC 2852 §4: "a <= zero value is not allowed with a by-mode of R"
        "-5;R",
        "1000000000;N",  # by-time is at most 9 digits
        "60",  # by-mode is required
        "60;X",
        "60;RTT",
        "60;T",
        ";R",
    ],
)
def test_deliver_by_rejects(wire: str) -> None:
    with pytest.raises(ValueError, match="BY"):
        deliver_by(P(BY=wire))


def test_deliver_by_value_type() -> None:
    assert DeliverBy(5, "n").mode == "N"
    with pytest.raises(ValueError):
        DeliverBy(0, "R")
    with pytest.raises(ValueError):
        DeliverBy(10**9, "N")
    with pytest.raises(ValueError):
        DeliverBy(5, "X")


# --------------------------------------------------------- server-side checks


def test_unknown_keyword_is_555() -> None:
    # RFC 5321 §4.1.1.11: a parameter the server does not recognise -> 555.
    reply = check_mail_params(P(X_FOO="1"), extensions=ALL, tls=True)
    assert reply is not None and (reply.code, str(reply.enhanced)) == (555, "5.5.4")
    assert "X-FOO" in reply.text


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (P(SIZE="100"), 555),  # SIZE not advertised
        (P(SMTPUTF8=None), 555),
        (P(AUTH="<>"), 555),
        (P(MT_PRIORITY="1"), 555),
        (P(BY="60;N"), 555),
        (P(ENVID="x"), 555),
    ],
)
def test_unadvertised_extension_is_555(params: Params, code: int) -> None:
    reply = check_mail_params(params, extensions=NONE, tls=True)
    assert reply is not None and reply.code == code


@pytest.mark.parametrize(
    "params",
    [
        P(SIZE="big"),
        P(SIZE=None),  # a value is required
        P(BODY="9BITMIME"),
        P(RET="BODY"),
        P(ENVID="a+2b"),
        P(AUTH="nobody"),
        P(MT_PRIORITY="11"),
        P(BY="0;R"),
    ],
)
def test_malformed_mail_value_is_501(params: Params) -> None:
    reply = check_mail_params(params, extensions=ALL, tls=True)
    assert reply is not None and (reply.code, str(reply.enhanced)) == (501, "5.5.4")
    assert reply.text.isascii()  # reply text is ASCII, and never echoes the value


@pytest.mark.parametrize(
    "params", [P(NOTIFY="NEVER,SUCCESS"), P(NOTIFY=None), P(ORCPT="nothing"), P(ORCPT="a;b+")]
)
def test_malformed_rcpt_value_is_501(params: Params) -> None:
    reply = check_rcpt_params(params, extensions=ALL)
    assert reply is not None and reply.code == 501


def test_good_mail_parameters_pass() -> None:
    params = P(
        SIZE="1000",
        BODY="8BITMIME",
        SMTPUTF8=None,
        RET="HDRS",
        ENVID="QQ314159",
        AUTH="e+3Dmc2@example.com",
        REQUIRETLS=None,
        MT_PRIORITY="-3",
        BY="120;RT",
    )
    assert check_mail_params(params, extensions=ALL, tls=True) is None
    assert check_mail_params(P(), extensions=NONE, tls=False) is None


def test_first_problem_in_wire_order_wins() -> None:
    reply = check_mail_params(Params([("SIZE", "x"), ("X-FOO", "1")]), extensions=ALL, tls=True)
    assert reply is not None and reply.code == 501
    reply = check_mail_params(Params([("X-FOO", "1"), ("SIZE", "x")]), extensions=ALL, tls=True)
    assert reply is not None and reply.code == 555


def test_checks_accept_plain_mappings() -> None:
    assert check_mail_params({"size": "10"}, extensions=ALL, tls=True) is None
    assert size({"size": "10"}) == 10


# --------------------------------------------------------- client-side validation


def test_validate_mail_params_raises_with_reply_hint() -> None:
    with pytest.raises(LocalProtocolError, match="SIZE") as info:
        validate_mail_params(P(SIZE="2000"), extensions=Extensions({"SIZE": "1000"}), tls=True)
    hint = info.value.reply_hint
    assert isinstance(hint, Reply) and hint.code == 552
    with pytest.raises(LocalProtocolError, match="REQUIRETLS") as info:
        validate_mail_params(P(REQUIRETLS=None), extensions=ALL, tls=False)
    assert info.value.reply_hint is not None and info.value.reply_hint.code == 530
    with pytest.raises(LocalProtocolError, match="8BITMIME"):
        validate_mail_params(P(BODY="8BITMIME"), extensions=NONE, tls=True)
    validate_mail_params(P(SIZE="1000", BODY="7BIT"), extensions=ALL, tls=False)


def test_validate_rcpt_params() -> None:
    with pytest.raises(LocalProtocolError, match="NOTIFY") as info:
        validate_rcpt_params(P(NOTIFY="NEVER,DELAY"), extensions=ALL)
    assert info.value.reply_hint is not None and info.value.reply_hint.code == 501
    with pytest.raises(LocalProtocolError, match="DSN"):
        validate_rcpt_params(P(NOTIFY="NEVER"), extensions=NONE)
    validate_rcpt_params(P(NOTIFY="NEVER"), extensions=ALL)


# ------------------------------------------------------------------------ builders


def test_dsn_builders_examples() -> None:
    # RFC 3461 §4.3, §4.4, §4.1, §4.2
    assert dsn_mail_params(ret=Ret.HDRS, envid="QQ314159") == {"RET": "HDRS", "ENVID": "QQ314159"}
    assert dsn_mail_params() == {}
    built = dsn_rcpt_params(
        notify={Notify.DELAY, Notify.FAILURE},
        orcpt=OriginalRecipient("rfc822", "bob@example.org"),
    )
    assert built == {"NOTIFY": "FAILURE,DELAY", "ORCPT": "rfc822;bob@example.org"}
    assert dsn_rcpt_params(notify=[Notify.NEVER]) == {"NOTIFY": "NEVER"}
    assert dsn_rcpt_params(orcpt=OriginalRecipient("utf-8", "jöe@example.org")) == {
        "ORCPT": "utf-8;j\\x{F6}e@example.org"
    }
    assert dsn_rcpt_params(orcpt=OriginalRecipient("utf-8", "jöe@example.org"), utf8=True) == {
        "ORCPT": "utf-8;jöe@example.org"
    }


@pytest.mark.parametrize(
    "build",
    [
        lambda: dsn_rcpt_params(notify={Notify.NEVER, Notify.SUCCESS}),  # RFC 3461 §4.1
        lambda: dsn_rcpt_params(notify=set()),
        lambda: dsn_mail_params(envid=""),  # esmtp-value is 1*character
        lambda: dsn_mail_params(envid="x" * 101),  # RFC 3461 §4.4
        lambda: dsn_rcpt_params(orcpt=OriginalRecipient("utf-8", "not a mailbox")),
        lambda: dsn_rcpt_params(orcpt=OriginalRecipient("rfc822", "x" * 500)),
        lambda: auth_mail_param("not a mailbox"),  # RFC 4954 §5
        lambda: auth_mail_param("<>"),
        lambda: mail_params(size=-1),
        lambda: mail_params(size=10**20),  # RFC 1870 §3: at most 20 digits
        lambda: mail_params(mt_priority=10),  # RFC 6710 §3
    ],
)
def test_builders_reject(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        build()


def test_mail_params_wire_form() -> None:
    built = mail_params(
        size=1000,
        body=Body.EIGHT_BIT_MIME,
        smtputf8=True,
        ret=Ret.FULL,
        envid="a b",
        requiretls=True,
        mt_priority=-3,
        deliver_by=DeliverBy(120, "R", True),
    )
    assert built == {
        "SIZE": "1000",
        "BODY": "8BITMIME",
        "SMTPUTF8": None,
        "RET": "FULL",
        "ENVID": "a+20b",
        "REQUIRETLS": None,
        "MT-PRIORITY": "-3",
        "BY": "120;RT",
    }
    assert list(built) == list(Params(built))  # the order is the wire order
    assert mail_params() == {}
    assert auth_mail_param(None) == {"AUTH": "<>"}
    assert auth_mail_param("e=mc2@example.com") == {"AUTH": "e+3Dmc2@example.com"}


# Hypothesis strategies for typed values.

_atoms = st.text(
    alphabet=string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=10
)
_utf8_atoms = st.text(
    alphabet=st.characters(min_codepoint=0xA1, exclude_categories=("Cs", "Cc", "Zs")),
    min_size=1,
    max_size=5,
)
_mailboxes = st.builds(
    lambda local, extra, domain: f"{local}{extra}@{domain}.example",
    _atoms,
    st.one_of(st.just(""), _utf8_atoms),
    st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True),
)
_addr_types = st.sampled_from(["rfc822", "RFC822", "x400", "unknown", "x-local"])
_orcpts = st.one_of(
    st.builds(OriginalRecipient, _addr_types, st.text(min_size=1, max_size=40)),
    st.builds(OriginalRecipient, st.sampled_from(["utf-8", "UTF-8"]), _mailboxes),
)
_deliver_bys = st.builds(
    lambda seconds, mode, trace: DeliverBy(
        abs(seconds) or 1 if mode == "R" else seconds, mode, trace
    ),
    st.integers(-999_999_999, 999_999_999),
    st.sampled_from(["N", "R"]),
    st.booleans(),
)
_NOTIFY = [Notify.SUCCESS, Notify.FAILURE, Notify.DELAY]
_envids = st.text(min_size=1, max_size=MAX_ENVID_LENGTH)


@given(
    size_=st.none() | st.integers(0, 10**20 - 1),
    body_=st.none() | st.sampled_from(Body),
    smtputf8_=st.booleans(),
    ret_=st.none() | st.sampled_from(Ret),
    envid_=st.none() | _envids,
    requiretls_=st.booleans(),
    mt_priority_=st.none() | st.integers(-9, 9),
    deliver_by_=st.none() | _deliver_bys,
    auth_=st.none() | _mailboxes,
)
def test_mail_builders_round_trip(
    size_: int | None,
    body_: Body | None,
    smtputf8_: bool,
    ret_: Ret | None,
    envid_: str | None,
    requiretls_: bool,
    mt_priority_: int | None,
    deliver_by_: DeliverBy | None,
    auth_: str | None,
) -> None:
    built = mail_params(
        size=size_,
        body=body_,
        smtputf8=smtputf8_,
        ret=ret_,
        envid=envid_,
        requiretls=requiretls_,
        mt_priority=mt_priority_,
        deliver_by=deliver_by_,
    )
    params = Params({**built, **auth_mail_param(auth_)})  # valid RFC 5321 esmtp-params
    assert size(params) == size_
    assert body(params) == body_
    assert smtputf8(params) == smtputf8_
    assert ret(params) == ret_
    assert envid(params) == envid_
    assert requiretls(params) == requiretls_
    assert mt_priority(params) == mt_priority_
    assert deliver_by(params) == deliver_by_
    assert auth(params) == auth_
    # what the builders write, a server advertising everything accepts
    assert check_mail_params(params, extensions=ALL, tls=True, size_limit=0) is None
    validate_mail_params(params, extensions=ALL, tls=True)


@given(
    notify_=st.none()
    | st.just(frozenset({Notify.NEVER}))
    | st.frozensets(st.sampled_from(_NOTIFY), min_size=1),
    orcpt_=st.none() | _orcpts,
    utf8=st.booleans(),
)
def test_rcpt_builders_round_trip(
    notify_: frozenset[Notify] | None, orcpt_: OriginalRecipient | None, utf8: bool
) -> None:
    built = dsn_rcpt_params(notify=notify_, orcpt=orcpt_, utf8=utf8)
    params = Params(built)
    assert notify(params) == notify_
    assert orcpt(params) == orcpt_
    if notify_ is not None:
        # canonical order SUCCESS,FAILURE,DELAY (RFC 3461 §4.1 leaves it open)
        order = [n.value for n in (Notify.NEVER, *_NOTIFY) if n in notify_]
        assert built["NOTIFY"] == ",".join(order)
    assert check_rcpt_params(params, extensions=ALL) is None
    if not utf8:
        # without SMTPUTF8 the builders write 7-bit values (RFC 6533 §3)
        assert all(v.isascii() for v in built.values())
        assert check_rcpt_params(params, extensions=Extensions({"DSN": ()})) is None


# ---------------------------------------- the checks never raise (any valid Params)

_KNOWN_KEYWORDS = [
    "SIZE",
    "BODY",
    "SMTPUTF8",
    "RET",
    "ENVID",
    "AUTH",
    "REQUIRETLS",
    "MT-PRIORITY",
    "BY",
    "NOTIFY",
    "ORCPT",
]
_keywords = st.sampled_from(_KNOWN_KEYWORDS) | st.from_regex(
    r"[A-Z0-9][A-Z0-9-]{0,10}", fullmatch=True
)
# esmtp-value = 1*(%d33-60 / %d62-126), plus UTF8-non-ascii (RFC 5321 §4.1.2, RFC 6531 §3.3)
_esmtp_chars = st.characters(
    exclude_characters="=", exclude_categories=["Cs"], min_codepoint=0x21
).filter(lambda c: c != "\x7f")
_near_values = st.sampled_from(
    [
        "0",
        "-1",
        "9" * 21,
        "7BIT",
        "BINARYMIME",
        "FULL",
        "hdrs",
        "NEVER",
        "NEVER,DELAY",
        "SUCCESS,,DELAY",
        "rfc822;a+2Bb",
        "utf-8;j\\x{F6}e@x.example",
        "utf-8;\\x{D800}",
        "utf-8;\\x{FFFFFFF}",
        "utf-8;\\x{0}",
        "<>",
        "+3C+3E",
        "+FF",
        "a+2",
        "-9",
        "+10",
        "0;R",
        "60;NT",
        "-999999999;N",
        "ß",
        "İ",
        "x" * 600,
    ]
)
_values = st.none() | _near_values | st.text(alphabet=_esmtp_chars, min_size=1, max_size=40)
_params = st.dictionaries(_keywords, _values, max_size=6).map(Params)
_extensions = st.builds(
    lambda names, size_param: Extensions({n: (size_param if n == "SIZE" else ()) for n in names}),
    st.sets(st.sampled_from([*ALL, "STARTTLS"])),
    st.sampled_from([(), ("0",), ("1000",), ("junk",)]),
)


@given(_params, _extensions, st.booleans(), st.none() | st.integers(0, 10**21))
def test_check_mail_params_never_raises(
    params: Params, extensions: Extensions, tls: bool, size_limit: int | None
) -> None:
    reply = check_mail_params(params, extensions=extensions, tls=tls, size_limit=size_limit)
    assert reply is None or isinstance(reply, Reply)
    if reply is not None:
        assert reply.code in (501, 530, 552, 555)
        assert reply.text.isascii()
    # the client-side check agrees with the server-side one (same SIZE limit source)
    expected = check_mail_params(params, extensions=extensions, tls=tls)
    if expected is None:
        validate_mail_params(params, extensions=extensions, tls=tls)
    else:
        with pytest.raises(LocalProtocolError):
            validate_mail_params(params, extensions=extensions, tls=tls)


@given(_params, _extensions)
def test_check_rcpt_params_never_raises(params: Params, extensions: Extensions) -> None:
    reply = check_rcpt_params(params, extensions=extensions)
    assert reply is None or reply.code in (501, 555)
    if reply is None:
        validate_rcpt_params(params, extensions=extensions)
    else:
        with pytest.raises(LocalProtocolError):
            validate_rcpt_params(params, extensions=extensions)
