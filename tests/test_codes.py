# Tests for sansio_smtp.codes: the reply-code and enhanced-status-code catalogue and
# explain(). Each rule test names the RFC section it checks.
from __future__ import annotations

import re

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sansio_smtp._status import EnhancedStatusCode, ReplyClass
from sansio_smtp.codes import (
    CONNECT,
    DATA_END,
    ENHANCED_CLASSES,
    ENHANCED_CODES,
    ENHANCED_SUBJECTS,
    REPLY_CODES,
    EnhancedCodeInfo,
    Explanation,
    ReplyCodeInfo,
    enhanced_code_info,
    explain,
    reply_code_info,
)

# RFC 5321 §4.2.3, "Reply Codes in Numeric Order", sorted by the classes of §4.2.1.
RFC5321_POSITIVE_COMPLETION = (211, 214, 220, 221, 250, 251, 252)
RFC5321_POSITIVE_INTERMEDIATE = (354,)
RFC5321_TRANSIENT_NEGATIVE = (421, 450, 451, 452, 455)
RFC5321_PERMANENT_NEGATIVE = (500, 501, 502, 503, 504, 550, 551, 552, 553, 554, 555)

RFC5321_CODES = [
    *((c, ReplyClass.POSITIVE_COMPLETION) for c in RFC5321_POSITIVE_COMPLETION),
    *((c, ReplyClass.POSITIVE_INTERMEDIATE) for c in RFC5321_POSITIVE_INTERMEDIATE),
    *((c, ReplyClass.TRANSIENT_NEGATIVE) for c in RFC5321_TRANSIENT_NEGATIVE),
    *((c, ReplyClass.PERMANENT_NEGATIVE) for c in RFC5321_PERMANENT_NEGATIVE),
]


# ------------------------------------------------------------------------- reply codes


@pytest.mark.parametrize(("code", "reply_class"), RFC5321_CODES)
def test_every_rfc5321_code_is_present_with_its_class(code: int, reply_class: ReplyClass) -> None:
    # RFC 5321 §4.2.3 lists these codes; §4.2.1 gives the class by the first digit.
    info = REPLY_CODES[code]
    assert info.code == code
    assert info.reply_class is reply_class
    assert "RFC 5321" in info.references
    assert info.meaning and info.description
    assert info.commands, f"{code} has no commands"


def test_rfc5321_list_is_complete() -> None:
    # RFC 5321 §4.2.3 has exactly 24 codes.
    assert len(RFC5321_CODES) == 24
    assert {c for c, _ in RFC5321_CODES} <= set(REPLY_CODES)


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        (354, "Start mail input; end with <CRLF>.<CRLF>"),
        (451, "Requested action aborted: local error in processing"),
        (
            550,
            "Requested action not taken: mailbox unavailable (e.g., mailbox not found, no "
            "access, or command rejected for policy reasons)",
        ),
        (
            554,
            'Transaction failed (Or, in the case of a connection-opening response, "No SMTP '
            'service here")',
        ),
        (555, "MAIL FROM/RCPT TO parameters not recognized or not implemented"),
    ],
)
def test_meaning_quotes_rfc5321(code: int, meaning: str) -> None:
    # RFC 5321 §4.2.3 wording, quoted exactly.
    assert REPLY_CODES[code].meaning == meaning


def test_354_is_only_for_data() -> None:
    # RFC 5321 §4.3.2: DATA  I: 354 -> data -> ...
    assert REPLY_CODES[354].commands == ("DATA",)


def test_251_is_a_rcpt_reply() -> None:
    # RFC 5321 §4.3.2: RCPT  S: 250, 251; VRFY  S: 250, 251, 252
    assert "RCPT" in REPLY_CODES[251].commands
    assert "VRFY" in REPLY_CODES[251].commands
    assert "MAIL" not in REPLY_CODES[251].commands


def test_552_is_for_mail_rcpt_and_the_end_of_data() -> None:
    # RFC 5321 §4.3.2: MAIL E: 552 ...; RCPT E: 552 ...; DATA ... data -> E: 552
    commands = REPLY_CODES[552].commands
    assert {"MAIL", "RCPT", DATA_END} <= set(commands)
    assert "DATA" not in commands  # the DATA line itself gets only 354, 503 or 554


def test_connection_establishment_codes() -> None:
    # RFC 5321 §4.3.2: CONNECTION ESTABLISHMENT  S: 220  E: 554; RFC 7504 adds 521.
    assert CONNECT in REPLY_CODES[220].commands
    assert CONNECT in REPLY_CODES[554].commands
    assert REPLY_CODES[521].commands == (CONNECT,)
    assert CONNECT not in REPLY_CODES[250].commands


def test_data_replies() -> None:
    # RFC 5321 §4.3.2: DATA  E: 503, 554; after the data S: 250, E: 552 554 451 452 450 550
    for code in (503, 554):
        assert "DATA" in REPLY_CODES[code].commands
    for code in (250, 552, 554, 451, 452, 450, 550):
        assert DATA_END in REPLY_CODES[code].commands


def test_any_command_may_get_500_501_421() -> None:
    # RFC 5321 §4.3.2: "any SMTP command can return" 500, 501 and 421.
    for code in (500, 501, 421):
        assert {"EHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT"} <= set(
            REPLY_CODES[code].commands
        )


def test_quit_gets_221_and_help_gets_211_214() -> None:
    # RFC 5321 §4.3.2: HELP S: 211, 214; QUIT S: 221
    assert REPLY_CODES[221].commands == ("QUIT",)
    assert REPLY_CODES[211].commands == ("HELP",)
    assert REPLY_CODES[214].commands == ("HELP",)


@pytest.mark.parametrize(
    ("code", "reference"),
    [
        (235, "RFC 4954"),
        (334, "RFC 4954"),
        (432, "RFC 4954"),
        (454, "RFC 4954"),
        (530, "RFC 4954"),
        (534, "RFC 4954"),
        (535, "RFC 4954"),
        (538, "RFC 4954"),
        (521, "RFC 7504"),
        (556, "RFC 7504"),
        (458, "RFC 1985"),
        (459, "RFC 1985"),
    ],
)
def test_extension_codes_name_their_rfc(code: int, reference: str) -> None:
    # RFC 4954 §6 (AUTH), RFC 7504 (521/556), RFC 1985 (ETRN).
    assert reference in REPLY_CODES[code].references
    assert REPLY_CODES[code].reply_class is ReplyClass(code // 100)


def test_auth_replies_list_auth() -> None:
    # RFC 4954 §4: the AUTH exchange uses 334 challenges and ends in 235 or 535.
    for code in (334, 235, 535, 534, 432):
        assert "AUTH" in REPLY_CODES[code].commands


def test_reply_code_info() -> None:
    assert reply_code_info(550) is REPLY_CODES[550]
    assert reply_code_info(299) is None
    assert reply_code_info(999) is None


def test_catalogue_is_read_only() -> None:
    with pytest.raises(TypeError):
        REPLY_CODES[299] = REPLY_CODES[250]  # type: ignore[index]
    with pytest.raises(TypeError):
        ENHANCED_CODES["X.9.9"] = ENHANCED_CODES["X.0.0"]  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        REPLY_CODES[250].meaning = "x"  # type: ignore[misc]


def test_reply_code_info_rejects_a_wrong_class() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        ReplyCodeInfo(
            code=550,
            meaning="m",
            reply_class=ReplyClass.TRANSIENT_NEGATIVE,
            description="d",
            commands=(),
            references=(),
        )


# ---------------------------------------------------------------- enhanced status codes

_KEY_RE = re.compile(r"X\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})")


@pytest.mark.parametrize("key", sorted(ENHANCED_CODES))
def test_every_enhanced_key_is_x_s_d(key: str) -> None:
    # RFC 5248 §2 registry keys are "X.subject.detail"; RFC 3463 §2 gives the syntax.
    assert _KEY_RE.fullmatch(key), key
    info = ENHANCED_CODES[key]
    assert info.code == key
    assert info.title and info.description and info.references
    for class_ in (2, 4, 5):
        parsed = EnhancedStatusCode.parse(f"{class_}{key[1:]}")
        assert enhanced_code_info(parsed) is info
    assert int(key.split(".")[1]) in ENHANCED_SUBJECTS


@pytest.mark.parametrize("key", sorted(ENHANCED_CODES))
def test_every_listed_reply_code_is_in_the_catalogue(key: str) -> None:
    # IANA registry (RFC 5248): "Associated basic status code" must name real codes.
    for code in ENHANCED_CODES[key].reply_codes:
        assert code in REPLY_CODES, f"{key} lists {code}"


def test_registry_is_complete() -> None:
    # RFC 3463 §3.2-§3.9 plus the registrations of RFC 3886, 4468, 4954, 5248, 6531,
    # 6710, 7293, 7372, 7504/7505, 8617 and 8689.
    expected = (
        ["X.0.0"]
        + [f"X.1.{d}" for d in range(11)]
        + [f"X.2.{d}" for d in range(5)]
        + [f"X.3.{d}" for d in range(7)]
        + [f"X.4.{d}" for d in range(8)]
        + [f"X.5.{d}" for d in range(7)]
        + [f"X.6.{d}" for d in range(11)]
        + [f"X.7.{d}" for d in range(31)]
    )
    assert sorted(ENHANCED_CODES) == sorted(expected)


@pytest.mark.parametrize(
    ("key", "title", "reply_codes", "reference"),
    [
        ("X.1.1", "Bad destination mailbox address", (451, 550), "RFC 3463"),
        ("X.1.10", "Recipient address has null MX", (556,), "RFC 7505"),
        ("X.2.2", "Mailbox full", (552,), "RFC 3463"),
        ("X.5.6", "Authentication Exchange line is too long", (500,), "RFC 4954"),
        ("X.6.7", "Non-ASCII addresses not permitted for that sender/recipient", (553, 550),
         "RFC 6531"),
        ("X.6.10", None, (), "RFC 6531"),
        ("X.7.8", "Authentication credentials invalid", (535, 554), "RFC 4954"),
        ("X.7.9", "Authentication mechanism is too weak", (534,), "RFC 4954"),
        ("X.7.11", "Encryption required for requested authentication mechanism", (524, 538),
         "RFC 4954"),
        ("X.7.13", "User Account Disabled", (525,), "RFC 5248"),
        ("X.7.17", "Mailbox owner has changed", (), "RFC 7293"),
        ("X.7.23", "SPF validation failed", (550,), "RFC 7372"),
        ("X.7.27", "Sender address has null MX", (550,), "RFC 7505"),
        ("X.7.30", "REQUIRETLS support required", (550,), "RFC 8689"),
    ],
)  # fmt: skip
def test_registry_entries(
    key: str, title: str | None, reply_codes: tuple[int, ...], reference: str
) -> None:
    # IANA SMTP Enhanced Status Codes registry (RFC 5248), "Enumerated Status Codes".
    info = ENHANCED_CODES[key]
    if title is not None:
        assert info.title == title
    assert info.reply_codes == reply_codes
    assert reference in info.references


def test_classes_and_subjects() -> None:
    # RFC 3463 §3.1 (classes) and §3.2-§3.9 (subjects).
    assert {c: i.title for c, i in ENHANCED_CLASSES.items()} == {
        2: "Success",
        4: "Persistent Transient Failure",
        5: "Permanent Failure",
    }
    assert [ENHANCED_CLASSES[c].code for c in (2, 4, 5)] == ["2.X.X", "4.X.X", "5.X.X"]
    assert {s: i.title for s, i in ENHANCED_SUBJECTS.items()} == {
        0: "Other or Undefined Status",
        1: "Addressing Status",
        2: "Mailbox Status",
        3: "Mail System Status",
        4: "Network and Routing Status",
        5: "Mail Delivery Protocol Status",
        6: "Message Content or Media Status",
        7: "Security or Policy Status",
    }
    assert all(info.code == f"X.{s}.X" for s, info in ENHANCED_SUBJECTS.items())


def test_enhanced_code_info_accepts_every_spelling() -> None:
    info = ENHANCED_CODES["X.1.1"]
    assert enhanced_code_info("5.1.1") is info
    assert enhanced_code_info("4.1.1") is info
    assert enhanced_code_info("X.1.1") is info
    assert enhanced_code_info(" x.1.1 ") is info
    assert enhanced_code_info(EnhancedStatusCode(5, 1, 1)) is info
    assert enhanced_code_info("5.1.99") is None
    assert enhanced_code_info("X.9.0") is None


@pytest.mark.parametrize("bad", ["", "5.1", "3.1.1", "5.01.1", "X.1", "X.1.1.1", "hello"])
def test_enhanced_code_info_rejects_garbage(bad: str) -> None:
    # RFC 3463 §2: class "." subject "." detail, class 2/4/5, no leading zeros.
    with pytest.raises(ValueError):
        enhanced_code_info(bad)


# ---------------------------------------------------------------------------- explain


def test_explain_a_full_bounce_line() -> None:
    # RFC 5321 §4.2 reply line; RFC 3463 §3.2 X.1.1.
    e = explain("550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown")
    assert e.reply_code == 550
    assert e.reply_info is REPLY_CODES[550]
    assert e.reply_class is ReplyClass.PERMANENT_NEGATIVE
    assert e.enhanced == EnhancedStatusCode(5, 1, 1)
    assert e.enhanced_info is ENHANCED_CODES["X.1.1"]
    assert e.enhanced_class == "Permanent Failure"
    assert e.enhanced_subject == "Addressing Status"
    assert e.text == "<bob@example.org>: Recipient address rejected: User unknown"
    assert e.warnings == ()
    text = str(e)
    assert "550" in text and "5.1.1" in text
    assert "Bad destination mailbox address" in text
    assert "do not retry" in text.lower()
    assert "bounce" in text.lower()


def test_explain_a_bare_code() -> None:
    # RFC 5321 §4.2.1: 4yz is transient; the client may retry.
    for given_code in (421, "421", " 421 \n"):
        e = explain(given_code)
        assert e.reply_code == 421
        assert e.reply_info is REPLY_CODES[421]
        assert e.reply_class is ReplyClass.TRANSIENT_NEGATIVE
        assert e.enhanced is None and e.enhanced_info is None
        assert e.enhanced_class is None and e.enhanced_subject is None
        assert e.text == ""
        assert e.warnings == ()
        assert "retry later" in str(e).lower()


def test_explain_success_and_intermediate() -> None:
    # RFC 5321 §4.2.1: 2yz completion, 3yz intermediate.
    assert "nothing to retry" in str(explain(250)).lower()
    e = explain("354 End data with <CR><LF>.<CR><LF>")
    assert e.reply_class is ReplyClass.POSITIVE_INTERMEDIATE
    assert "intermediate" in str(e).lower()
    assert "not an error" in str(e).lower()


def test_explain_an_enhanced_code_alone() -> None:
    # RFC 3463 §3.3 X.2.2 Mailbox full; no reply code was given.
    e = explain("4.2.2")
    assert e.reply_code is None and e.reply_info is None and e.reply_class is None
    assert e.enhanced == EnhancedStatusCode(4, 2, 2)
    assert e.enhanced_info is ENHANCED_CODES["X.2.2"]
    assert e.enhanced_class == "Persistent Transient Failure"
    assert e.enhanced_subject == "Mailbox Status"
    assert e.warnings == ()
    assert "retry later" in str(e).lower()


def test_explain_an_enhanced_code_with_text() -> None:
    # RFC 3464 DSN "Status:" values are bare enhanced codes; text may follow.
    e = explain("5.7.1 Relaying denied")
    assert e.enhanced == EnhancedStatusCode(5, 7, 1)
    assert e.text == "Relaying denied"


def test_explain_a_continuation_line() -> None:
    # RFC 5321 §4.2: "250-" starts a line of a multi-line reply.
    e = explain("250-8BITMIME")
    assert e.reply_code == 250
    assert e.text == "8BITMIME"
    assert e.enhanced is None
    assert e.warnings == ()


def test_explain_a_multi_line_reply() -> None:
    # RFC 5321 §4.2.1: same code on every line; "-" on all but the last.
    e = explain(
        "550-5.7.1 The user you are trying to contact is not receiving mail\r\n"
        "550-5.7.1 at this time.\r\n"
        "550 5.7.1 Please try again never."
    )
    assert e.reply_code == 550
    assert e.enhanced == EnhancedStatusCode(5, 7, 1)
    assert e.enhanced_info is ENHANCED_CODES["X.7.1"]
    assert e.text.split("\n") == [
        "The user you are trying to contact is not receiving mail",
        "at this time.",
        "Please try again never.",
    ]
    assert e.warnings == ()


def test_explain_an_ehlo_reply_with_bare_newlines() -> None:
    e = explain("250-mx.example.org\n250-PIPELINING\n250 SIZE 1000\n")
    assert e.reply_code == 250
    assert e.text == "mx.example.org\nPIPELINING\nSIZE 1000"
    assert e.warnings == ()


def test_explain_mixed_codes_warns() -> None:
    # RFC 5321 §4.2.1: "the reply code on each of the lines MUST be the same".
    e = explain("250-first\n550 second")
    assert e.reply_code == 250
    assert any("same code" in w for w in e.warnings)


def test_explain_truncated_or_concatenated_reply_warns() -> None:
    # RFC 5321 §4.2: the last line has SP after the code, the others "-".
    assert any("cut short" in w for w in explain("250-a\n250-b").warnings)
    assert any("pasted together" in w for w in explain("250 a\n250 b").warnings)


def test_explain_class_mismatch_warns() -> None:
    # RFC 3463 §2/§3.1: the class means what the reply's first digit means; 5xx with 4.x.x
    # contradicts itself. The reply code decides what a client does.
    e = explain("550 4.2.2 Mailbox full")
    assert e.reply_class is ReplyClass.PERMANENT_NEGATIVE
    assert e.enhanced == EnhancedStatusCode(4, 2, 2)
    assert e.enhanced_info is ENHANCED_CODES["X.2.2"]
    assert any("class 4" in w and "550" in w for w in e.warnings)
    assert "class 4" in str(e)
    assert "Permanent failure" in str(e)


def test_matching_class_does_not_warn() -> None:
    assert explain("452 4.2.2 Mailbox full").warnings == ()


def test_explain_unknown_but_well_formed_enhanced_code() -> None:
    # RFC 3463 §3.1 and §3.2: class 5 and subject 1 are defined even when detail 99 is not.
    e = explain("550 5.1.99 something new")
    assert e.enhanced == EnhancedStatusCode(5, 1, 99)
    assert e.enhanced_info is None
    assert e.enhanced_class == "Permanent Failure"
    assert e.enhanced_subject == "Addressing Status"
    assert any("not registered" in w for w in e.warnings)
    text = str(e)
    assert ENHANCED_CLASSES[5].description in text
    assert ENHANCED_SUBJECTS[1].description in text


def test_explain_unknown_subject() -> None:
    # RFC 3463 §3 defines subjects 0 to 7 only.
    e = explain("5.9.1")
    assert e.enhanced_class == "Permanent Failure"
    assert e.enhanced_subject is None
    assert any("subject 9" in w for w in e.warnings)
    str(e)


def test_explain_unknown_reply_code() -> None:
    # RFC 5321 §4.3.2: read an unrecognized code by its first digit.
    e = explain("299 whatever")
    assert e.reply_info is None
    assert e.reply_class is ReplyClass.POSITIVE_COMPLETION
    assert any("first digit" in w for w in e.warnings)


@pytest.mark.parametrize("code", ["100 hi", "600", 199, 0, "999 x"])
def test_explain_first_digit_out_of_range(code: str | int) -> None:
    # RFC 5321 §4.3.2: servers MUST NOT send codes not starting with 2 to 5.
    e = explain(code)
    assert e.reply_class is None
    assert e.reply_info is None
    assert any("2, 3, 4 or 5" in w for w in e.warnings)
    assert "Unknown" in str(e)


def test_invalid_enhanced_code_in_a_line_is_kept_as_text() -> None:
    # RFC 3463 §2: class is 2, 4 or 5.
    e = explain("550 3.1.1 odd")
    assert e.enhanced is None
    assert e.text == "3.1.1 odd"
    assert any("looks like an enhanced status code" in w for w in e.warnings)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "   \r\n  ",
        "hello world",
        "User unknown 550",
        "55",
        "5500",
        "550:5.1.1",
        "3.1.1",
        "5.01.1",
        "X.1.1",
        "550 ok\nnot a reply line",
        "\u0665\u0665\u0660 Arabic-Indic digits",
    ],
)
def test_garbage_raises_value_error(garbage: str) -> None:
    with pytest.raises(ValueError):
        explain(garbage)


@pytest.mark.parametrize("number", [-1, 1000, 12345])
def test_out_of_range_int_raises_value_error(number: int) -> None:
    with pytest.raises(ValueError, match="three digits"):
        explain(number)


def test_non_str_raises_type_error() -> None:
    with pytest.raises(TypeError):
        explain(5.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        explain(True)


def test_value_error_message_is_clear() -> None:
    with pytest.raises(ValueError, match="not an SMTP reply") as caught:
        explain("hello world")
    assert "550 5.1.1" in str(caught.value)


def test_explanation_is_frozen() -> None:
    e = explain(550)
    assert isinstance(e, Explanation)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        e.text = "x"  # type: ignore[misc]


@given(st.text())
def test_explain_any_text_raises_only_value_error(text: str) -> None:
    try:
        e = explain(text)
    except ValueError:
        return
    assert isinstance(str(e), str)


_reply_alphabet = st.sampled_from("0123456789.- \r\nX" + "abc<>@:;")


@given(st.text(alphabet=_reply_alphabet, max_size=40))
def test_explain_reply_shaped_text_raises_only_value_error(text: str) -> None:
    # Text made of the characters replies are made of reaches the deeper parsing paths.
    try:
        e = explain(text)
    except ValueError:
        return
    assert e.reply_code is not None or e.enhanced is not None
    assert isinstance(str(e), str)


@given(st.integers())
def test_explain_any_int_raises_only_value_error(number: int) -> None:
    try:
        e = explain(number)
    except ValueError:
        assert not 0 <= number <= 999
        return
    assert e.reply_code == number
    str(e)


@given(
    code=st.integers(min_value=200, max_value=599),
    enhanced=st.sampled_from(sorted(ENHANCED_CODES)),
    words=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20),
)
def test_explain_round_trips_well_formed_lines(code: int, enhanced: str, words: str) -> None:
    # RFC 5321 §4.2 reply line with an RFC 3463 code in front of the text.
    line = f"{code} {code // 100 if code // 100 != 3 else 2}{enhanced[1:]} {words}"
    e = explain(line)
    assert e.reply_code == code
    assert e.enhanced is not None
    assert e.enhanced_info is ENHANCED_CODES[enhanced]
    assert e.text == words
    assert (e.reply_info is None) == (code not in REPLY_CODES)


def test_types_are_final_and_frozen() -> None:
    for cls in (ReplyCodeInfo, EnhancedCodeInfo, Explanation):
        assert attrs.has(cls)
        assert getattr(cls, "__final__", False) is True
        assert all(field.kw_only for field in attrs.fields(cls))
