# Delivery status notifications (RFC 3464): build the report a mail host sends back to a
# message's sender when it gives up (or is delayed), and read one back into the same
# structure. Pure: the caller passes the time, the names and the original message; the
# result is a stdlib EmailMessage.
#
# Rules: the report is multipart/report; report-type=delivery-status (RFC 3462, RFC 6522)
# with a human-readable part, a message/delivery-status part (per-message fields, then one
# block per recipient: RFC 3464 §2.2, §2.3), and the original message (RET=FULL) or only its
# headers (RET=HDRS, and when the sender asked for neither: the privacy-preserving choice
# RFC 3461 §4.3 allows) as text/rfc822-headers. A recipient whose NOTIFY (RFC 3461 §4.1)
# excludes what happened is left out; NOTIFY=NEVER never gets one. A report goes to the
# original reverse-path with the null reverse-path itself (RFC 3461 §6.2, RFC 5321 §4.5.5),
# and a message that came with the null reverse-path gets no report: bounces never bounce.
from __future__ import annotations

import email
import email.message
import email.policy
import email.utils
import enum
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import final

import attrs

from .._status import EnhancedStatusCode

__all__ = ["Action", "DeliveryReport", "RecipientStatus", "build_report", "parse_report"]


class Action(enum.Enum):
    """RFC 3464 §2.3.3: what the reporting MTA did for the recipient."""

    FAILED = "failed"
    DELAYED = "delayed"
    DELIVERED = "delivered"
    RELAYED = "relayed"
    EXPANDED = "expanded"


#: RFC 3461 §4.1: the NOTIFY keyword that asks for a report of each action
_NOTIFY_FOR = {
    Action.FAILED: "FAILURE",
    Action.DELAYED: "DELAY",
    Action.DELIVERED: "SUCCESS",
    Action.RELAYED: "SUCCESS",
    Action.EXPANDED: "SUCCESS",
}


@final
@attrs.frozen(kw_only=True)
class RecipientStatus:
    """One recipient's block of a report (RFC 3464 §2.3).

    ``final_recipient`` and ``original_recipient`` are addresses (the rfc822 type is
    assumed; ORCPT's is kept as given, ``"rfc822;bob@example.org"``). ``diagnostic_code``
    is the remote reply, ``"550 5.1.1 User unknown"`` (type smtp). ``notify``: the
    recipient's NOTIFY keywords (RFC 3461 §4.1), None when it gave none."""

    final_recipient: str
    action: Action
    status: EnhancedStatusCode
    original_recipient: str | None = None
    remote_mta: str | None = None
    diagnostic_code: str | None = None
    last_attempt_date: datetime | None = None
    will_retry_until: datetime | None = None
    notify: tuple[str, ...] | None = attrs.field(default=None, eq=False)

    def wants_report(self) -> bool:
        """RFC 3461 §4.1: without NOTIFY, failures (and delays, at the MTA's choice) are
        reported; with it, only what it names; NEVER: nothing."""
        if self.notify is None:
            return self.action in (Action.FAILED, Action.DELAYED)
        names = {n.upper() for n in self.notify}
        return "NEVER" not in names and _NOTIFY_FOR[self.action] in names


@final
@attrs.frozen(kw_only=True)
class DeliveryReport:
    """A delivery status notification: the per-message fields (RFC 3464 §2.2), the
    recipients' blocks, and what came back of the original message (its headers, or
    all of it)."""

    reporting_mta: str
    recipients: tuple[RecipientStatus, ...]
    arrival_date: datetime | None = None
    original_envelope_id: str | None = None
    original: bytes | None = attrs.field(default=None, repr=False)


def _one_line(text: str) -> str:
    """A field value on one line: CR/LF and other controls never reach the report."""
    return " ".join("".join(c if c >= " " and c != "\x7f" else " " for c in text).split())


def _fields(pairs: Iterable[tuple[str, str | None]]) -> email.message.Message:
    block = email.message.Message(policy=email.policy.SMTP)
    for name, value in pairs:
        if value is not None:
            block[name] = _one_line(value)
    return block


def _date(value: datetime | None) -> str | None:
    return None if value is None else email.utils.format_datetime(value)


def _human(report: DeliveryReport, recipients: Sequence[RecipientStatus]) -> str:
    failed = [r for r in recipients if r.action is Action.FAILED]
    delayed = [r for r in recipients if r.action is Action.DELAYED]
    lines = [f"This is the mail system at {report.reporting_mta}.", ""]
    if failed:
        lines += ["Your message could not be delivered to these recipients:", ""]
        lines += [
            f"  <{r.final_recipient}>: {_one_line(r.diagnostic_code or str(r.status))}"
            for r in failed
        ]
        lines.append("")
    if delayed:
        lines += ["Delivery to these recipients is delayed; the mail system keeps trying:", ""]
        for r in delayed:
            until = f" until {_date(r.will_retry_until)}" if r.will_retry_until else ""
            said = _one_line(r.diagnostic_code or str(r.status))
            lines.append(f"  <{r.final_recipient}>: {said}{until}")
        lines.append("")
    done = [r for r in recipients if r.action not in (Action.FAILED, Action.DELAYED)]
    if done:
        lines += ["Your message was delivered (or passed on) to these recipients:", ""]
        lines += [f"  <{r.final_recipient}>: {r.action.value}" for r in done]
        lines.append("")
    lines.append("The delivery report and the original message's headers are attached.")
    return "\n".join(lines) + "\n"


def _headers_of(original: bytes) -> bytes:
    end = original.find(b"\r\n\r\n")
    if end < 0:
        end = original.find(b"\n\n")
    return original if end < 0 else original[: end + 2]


def build_report(
    report: DeliveryReport,
    *,
    sender: str | None,
    date: datetime,
    message_id: str,
    ret: str | None = None,
) -> email.message.EmailMessage | None:
    """The RFC 3464 report for ``sender`` (the original reverse-path), or None when none
    is due: ``sender`` is the null reverse-path (a report about a report), or no recipient
    asked for one (NOTIFY). Send it with ``MAIL FROM:<>`` (RFC 3461 §6.2). ``ret``:
    RET=FULL or HDRS (RFC 3461 §4.3); ``report.original`` holds the message."""
    if not sender:
        return None  # RFC 5321 §4.5.5 / RFC 3461 §6.2: never report on a report
    recipients = [r for r in report.recipients if r.wants_report()]
    if not recipients:
        return None
    failed = any(r.action is Action.FAILED for r in recipients)
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    msg["From"] = f"Mail Delivery System <MAILER-DAEMON@{_one_line(report.reporting_mta)}>"
    msg["To"] = f"<{_one_line(sender)}>"
    msg["Subject"] = (
        "Undelivered Mail Returned to Sender" if failed else "Delayed Mail (still being retried)"
    )
    msg["Date"] = email.utils.format_datetime(date)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-replied"  # RFC 3834 §5
    msg["MIME-Version"] = "1.0"
    msg.set_type("multipart/report")
    msg.set_param("report-type", "delivery-status")

    human = email.message.EmailMessage(policy=email.policy.SMTP)
    human.set_content(_human(report, recipients), charset="utf-8")
    del human["MIME-Version"]

    status = email.message.Message(policy=email.policy.SMTP)
    status.set_type("message/delivery-status")
    del status["MIME-Version"]
    blocks: list[email.message.Message | str] = [
        _fields(
            [
                ("Reporting-MTA", f"dns; {report.reporting_mta}"),
                ("Original-Envelope-Id", report.original_envelope_id),
                ("Arrival-Date", _date(report.arrival_date)),
            ]
        )
    ]
    for r in recipients:
        blocks.append(
            _fields(
                [
                    ("Original-Recipient", r.original_recipient),
                    ("Final-Recipient", f"rfc822; {r.final_recipient}"),
                    ("Action", r.action.value),
                    ("Status", str(r.status)),
                    ("Remote-MTA", None if r.remote_mta is None else f"dns; {r.remote_mta}"),
                    (
                        "Diagnostic-Code",
                        None if r.diagnostic_code is None else f"smtp; {r.diagnostic_code}",
                    ),
                    ("Last-Attempt-Date", _date(r.last_attempt_date)),
                    ("Will-Retry-Until", _date(r.will_retry_until)),
                ]
            )
        )
    status.set_payload(blocks)
    parts: list[email.message.Message | str] = [human, status]

    if report.original is not None:
        if (ret or "").upper() == "FULL":
            returned = email.message.Message(policy=email.policy.SMTP)
            returned.set_type("message/rfc822")
            del returned["MIME-Version"]
            inner: list[email.message.Message | str] = [
                email.message_from_bytes(report.original, policy=email.policy.SMTP)
            ]
            returned.set_payload(inner)
        else:
            returned = email.message.Message(policy=email.policy.SMTP)
            returned.set_type("text/rfc822-headers")
            del returned["MIME-Version"]
            returned.set_payload(_headers_of(report.original).decode("utf-8", "surrogateescape"))
        parts.append(returned)
    msg.set_payload(parts)
    msg.set_boundary(f"=_report_{message_id.strip('<>').replace('@', '.')}")
    return msg


# ---------------------------------------------------------------------------- parsing


def _value(block: email.message.Message, name: str) -> str | None:
    raw = block.get(name)
    return None if raw is None else " ".join(str(raw).split())


def _typed(value: str | None) -> str | None:
    """``rfc822; bob@example.org`` -> ``bob@example.org`` (the address type dropped)."""
    if value is None:
        return None
    _kind, sep, rest = value.partition(";")
    return rest.strip() if sep else value.strip()


def _parse_date(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def _status(value: str | None) -> EnhancedStatusCode | None:
    if value is None:
        return None
    try:
        return EnhancedStatusCode.parse(value.split()[0] if value.split() else value)
    except ValueError:
        return None


def _blocks(part: email.message.Message) -> list[email.message.Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [b for b in payload if isinstance(b, email.message.Message)]
    # a parser that left the fields as text: split them into blocks ourselves
    text = payload if isinstance(payload, str) else ""
    chunks = text.replace("\r\n", "\n").split("\n\n")
    return [email.message_from_string(c.strip() + "\n") for c in chunks if c.strip()]


def parse_report(message: bytes | email.message.Message) -> DeliveryReport | None:
    """The DeliveryReport in a bounce: an RFC 3464 report's message/delivery-status part,
    or, for the plain-text bounces some servers still send (qmail, old Exim), what can be
    read from the text: each failed address with the reply that follows it. None when
    ``message`` is neither."""
    if isinstance(message, bytes | bytearray):
        message = email.message_from_bytes(bytes(message), policy=email.policy.compat32)
    status_part = next(
        (p for p in message.walk() if p.get_content_type() == "message/delivery-status"), None
    )
    if status_part is None:
        return _parse_text_bounce(message)
    blocks = _blocks(status_part)
    if not blocks:
        return None
    head, rest = blocks[0], blocks[1:]
    recipients: list[RecipientStatus] = []
    for block in rest:
        final = _typed(_value(block, "Final-Recipient"))
        action_text = (_value(block, "Action") or "").lower().split(" ")[0]
        status = _status(_value(block, "Status"))
        if final is None or status is None:
            continue
        try:
            action = Action(action_text)
        except ValueError:
            action = Action.FAILED if status.class_ == 5 else Action.DELAYED
        diagnostic = _value(block, "Diagnostic-Code")
        recipients.append(
            RecipientStatus(
                final_recipient=final.strip("<>"),
                action=action,
                status=status,
                original_recipient=_value(block, "Original-Recipient"),
                remote_mta=_typed(_value(block, "Remote-MTA")),
                diagnostic_code=_typed(diagnostic),
                last_attempt_date=_parse_date(_value(block, "Last-Attempt-Date")),
                will_retry_until=_parse_date(_value(block, "Will-Retry-Until")),
            )
        )
    original: bytes | None = None
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            original = raw if isinstance(raw, bytes) and raw else None
            break
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], email.message.Message):
                original = inner[0].as_bytes(policy=email.policy.SMTP)
            break
    return DeliveryReport(
        reporting_mta=_typed(_value(head, "Reporting-MTA")) or "",
        recipients=tuple(recipients),
        arrival_date=_parse_date(_value(head, "Arrival-Date")),
        original_envelope_id=_value(head, "Original-Envelope-Id"),
        original=original,
    )


# --------------------------------------------------------------- plain-text bounces

# Where a plain-text bounce starts quoting the original message.
_COPY_MARKER = re.compile(
    r"^-+ *(?:Below this line is a copy of the message|This is a copy of the message"
    r"|Original message follows)[^\n]*$",
    re.IGNORECASE | re.MULTILINE,
)
# An address alone on its line, as qmail ("<a@b>:") and Exim ("  a@b") list failures.
_ADDRESS_LINE = re.compile(r"^[ \t]*<?([^\s<>@]+@[^\s<>:]+?)>?:?[ \t]*$", re.MULTILINE)
# A reply in the text: 4yz/5yz, then an optional enhanced code (RFC 5321 §4.2, RFC 3463).
_REPLY_IN_TEXT = re.compile(r"\b([45][0-5][0-9])[ -](?:([245]\.[0-9]{1,3}\.[0-9]{1,3})\b)?")


def _text_of(message: email.message.Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                charset = part.get_content_charset() or "utf-8"
                try:
                    return raw.decode(charset, "replace")
                except LookupError:
                    return raw.decode("utf-8", "replace")
    return ""


def _parse_text_bounce(message: email.message.Message) -> DeliveryReport | None:
    text = _text_of(message).replace("\r\n", "\n")
    marker = _COPY_MARKER.search(text)
    report_text = text if marker is None else text[: marker.start()]
    found = list(_ADDRESS_LINE.finditer(report_text))
    recipients: list[RecipientStatus] = []
    for i, match in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(report_text)
        block = report_text[match.end() : end]
        reply = _REPLY_IN_TEXT.search(block)
        if reply is None:
            continue
        code = int(reply[1])
        status = _status(reply[2]) if reply[2] else None
        if status is None or status.class_ != code // 100:
            status = EnhancedStatusCode(code // 100, 0, 0)
        line_end = block.find("\n", reply.start())
        diagnostic = " ".join(block[reply.start() : None if line_end < 0 else line_end].split())
        recipients.append(
            RecipientStatus(
                final_recipient=match[1],
                action=Action.FAILED if code >= 500 else Action.DELAYED,
                status=status,
                diagnostic_code=diagnostic,
            )
        )
    if not recipients:
        return None
    sender = email.utils.parseaddr(str(message.get("From", "")))[1]
    original = None
    if marker is not None:
        original = text[marker.end() :].lstrip("\n").encode("utf-8", "surrogateescape") or None
    return DeliveryReport(
        reporting_mta=sender.rpartition("@")[2],
        recipients=tuple(recipients),
        original=original,
    )
