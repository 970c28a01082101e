"""Delivery status notifications (RFC 3464): built, read back, and read from the shapes real
servers send, compared with flufl.bounce (Mailman's bounce detector)."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime, timedelta, timezone
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sansio_smtp import EnhancedStatusCode
from sansio_smtp.delivery import Action, DeliveryReport, RecipientStatus, build_report, parse_report

BOUNCES = Path(__file__).parent / "bounces"
ORIGINAL = (
    b"From: alice@sender.example\r\nTo: bob@rcpt.example\r\nSubject: hi\r\n"
    b"Message-ID: <m1@sender.example>\r\n\r\nthe body\r\n"
)
WHEN = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)

words = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)
texts = st.lists(words, min_size=1, max_size=6).map(" ".join)
addresses = st.builds(
    "{}@{}.example".format,
    st.text("abcdefghij0123456789.-_", min_size=1, max_size=10).filter(
        lambda s: s[0] not in ".-" and s[-1] not in ".-" and ".." not in s
    ),
    st.text("abcdefghij", min_size=1, max_size=8),
)
dates = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)
).map(lambda d: d.replace(microsecond=0))
statuses = st.builds(
    EnhancedStatusCode, st.sampled_from([2, 4, 5]), st.integers(0, 7), st.integers(0, 20)
)
recipient_blocks = st.builds(
    RecipientStatus,
    final_recipient=addresses,
    action=st.sampled_from([Action.FAILED, Action.DELAYED]),
    status=statuses,
    original_recipient=st.none() | addresses.map("rfc822;{}".format),
    remote_mta=st.none() | st.sampled_from(["mx.a.example", "mx2.b.example"]),
    diagnostic_code=st.none() | texts.map("550 {}".format),
    last_attempt_date=st.none() | dates,
    will_retry_until=st.none() | dates,
)
reports = st.builds(
    DeliveryReport,
    reporting_mta=st.sampled_from(["mx.sender.example", "relay.example"]),
    recipients=st.lists(recipient_blocks, min_size=1, max_size=4).map(tuple),
    arrival_date=st.none() | dates,
    original_envelope_id=st.none() | words,
    original=st.just(ORIGINAL),
)


@given(reports)
def test_parse_of_build_is_the_report(report: DeliveryReport) -> None:
    # parse(build(x)) == x: every RFC 3464 §2.2/§2.3 field comes back; what returns of the
    # original is its header section (RET=HDRS, RFC 3461 §4.3)
    built = build_report(report, sender="alice@sender.example", date=WHEN, message_id="<r@x>")
    assert built is not None
    parsed = parse_report(built.as_bytes())
    assert parsed == attrs.evolve(report, original=ORIGINAL.split(b"\r\n\r\n")[0] + b"\r\n")


def _report(**fields: object) -> DeliveryReport:
    rcpt = RecipientStatus(
        final_recipient="bob@rcpt.example",
        action=Action.FAILED,
        status=EnhancedStatusCode.parse("5.1.1"),
        remote_mta="mx.rcpt.example",
        diagnostic_code="550 5.1.1 User unknown",
    )
    rcpt = attrs.evolve(rcpt, **fields)
    return DeliveryReport(reporting_mta="mx.sender.example", recipients=(rcpt,), original=ORIGINAL)


def test_report_shape() -> None:
    # RFC 3464 §2, RFC 6522: multipart/report; report-type=delivery-status, three parts
    built = build_report(_report(), sender="alice@sender.example", date=WHEN, message_id="<r@x>")
    assert built is not None
    assert built.get_content_type() == "multipart/report"
    assert built.get_param("report-type") == "delivery-status"
    kinds = [p.get_content_type() for p in built.iter_parts()]
    assert kinds == ["text/plain", "message/delivery-status", "text/rfc822-headers"]
    assert built["To"].addresses[0].addr_spec == "alice@sender.example"
    assert built["Auto-Submitted"] == "auto-replied"  # RFC 3834 §5
    wire = built.as_bytes()
    assert b"Diagnostic-Code: smtp; 550 5.1.1 User unknown" in wire
    assert b"the body" not in wire  # headers only unless RET=FULL


def test_ret_full_returns_the_whole_message() -> None:
    # RFC 3461 §4.3: RET=FULL asks for the entire message
    built = build_report(
        _report(), sender="alice@sender.example", date=WHEN, message_id="<r@x>", ret="FULL"
    )
    assert built is not None
    assert [p.get_content_type() for p in built.iter_parts()][-1] == "message/rfc822"
    assert b"the body" in built.as_bytes()
    parsed = parse_report(built.as_bytes())
    assert parsed is not None and parsed.original is not None and b"the body" in parsed.original


@pytest.mark.parametrize(
    ("notify", "action", "due"),
    [
        (None, Action.FAILED, True),  # RFC 3461 §4.1: failures by default
        (("NEVER",), Action.FAILED, False),
        (("SUCCESS",), Action.FAILED, False),
        (("FAILURE", "DELAY"), Action.DELAYED, True),
        (("FAILURE",), Action.DELAYED, False),
        (("SUCCESS",), Action.DELIVERED, True),
        (None, Action.DELIVERED, False),
    ],
)
def test_notify_decides(notify: tuple[str, ...] | None, action: Action, due: bool) -> None:
    report = _report(notify=notify, action=action)
    built = build_report(report, sender="alice@sender.example", date=WHEN, message_id="<r@x>")
    assert (built is not None) is due


def test_bounces_never_bounce() -> None:
    # RFC 5321 §4.5.5, RFC 3461 §6.2: a message from the null reverse-path gets no report
    assert build_report(_report(), sender=None, date=WHEN, message_id="<r@x>") is None
    assert build_report(_report(), sender="", date=WHEN, message_id="<r@x>") is None


def test_remote_text_cannot_inject_fields() -> None:
    # a hostile server's reply text is flattened into one field line
    report = _report(diagnostic_code="550 no\r\nBcc: victim@example.org\r\n\r\nx")
    built = build_report(report, sender="alice@sender.example", date=WHEN, message_id="<r@x>")
    assert built is not None
    wire = built.as_bytes()
    assert b"\nBcc:" not in wire and b"\rBcc:" not in wire
    parsed = parse_report(wire)
    assert parsed is not None
    assert parsed.recipients[0].diagnostic_code == "550 no Bcc: victim@example.org x"


def test_delayed_report_says_until_when() -> None:
    until = WHEN + timedelta(days=5)
    report = _report(action=Action.DELAYED, status=EnhancedStatusCode.parse("4.3.0"))
    report = attrs.evolve(
        report, recipients=(attrs.evolve(report.recipients[0], will_retry_until=until),)
    )
    built = build_report(report, sender="alice@sender.example", date=WHEN, message_id="<r@x>")
    assert built is not None and "Delayed" in built["Subject"]
    parsed = parse_report(built.as_bytes())
    assert parsed is not None and parsed.recipients[0].will_retry_until == until


# ------------------------------------------------------------------ real-world shapes

# What each sample says, per RFC 3464 (or, for qmail, its text): recipient, action, Status.
SAMPLES = {
    "postfix.eml": ("nobody@rcpt.example", Action.FAILED, "5.1.1", "mail.sender.example"),
    "exim.eml": ("ghost@rcpt.example", Action.FAILED, "5.0.0", "relay.sender.example"),
    "exchange.eml": ("dave@partner.example", Action.FAILED, "5.1.10", "EX01.corp.example"),
    "gmail.eml": ("frank@slow.example", Action.DELAYED, "4.3.0", "googlemail.example"),
    "qmail.eml": ("henry@rcpt.example", Action.FAILED, "5.1.1", "old.sender.example"),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples(name: str) -> None:
    recipient, action, status, mta = SAMPLES[name]
    report = parse_report((BOUNCES / name).read_bytes())
    assert report is not None
    assert report.reporting_mta == mta
    (got,) = report.recipients
    assert (got.final_recipient, got.action, str(got.status)) == (recipient, action, status)
    assert got.diagnostic_code is not None and got.diagnostic_code[:1] in "45"
    assert report.original is not None and b"Subject:" in report.original


def test_against_flufl_bounce() -> None:
    # The same samples through flufl.bounce: both find the same recipients, and agree on
    # permanent (Action: failed) versus temporary (Action: delayed). Where they differ in
    # detail, ours follows the RFC: Exim's report says Status 5.0.0 while its diagnostic
    # says 5.1.1 - RFC 3464 §2.3.4 makes Status the reporting MTA's own verdict, so we
    # report 5.0.0 and keep 550 5.1.1 as the Diagnostic-Code; flufl.bounce reports no
    # codes at all, only addresses.
    flufl = pytest.importorskip("flufl.bounce")
    agree = []
    for name, (_recipient, action, _status, _mta) in sorted(SAMPLES.items()):
        raw = (BOUNCES / name).read_bytes()
        temporary, permanent = flufl.all_failures(email.message_from_bytes(raw))
        theirs = permanent if action is Action.FAILED else temporary
        ours = parse_report(raw)
        assert ours is not None
        assert {r.final_recipient.encode() for r in ours.recipients} == set(theirs), name
        agree.append(name)
    assert agree == sorted(SAMPLES)
