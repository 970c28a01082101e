# The errors the SMTP clients raise: SMTPError and its subclasses. A refusal keeps the
# server's whole Reply (code, enhanced status code, lines); errors that end the session
# say so in their docstring. Raised by the engine, caught by no one inside the package.
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..._events import Reply
from ..._state import Phase

if TYPE_CHECKING:
    from ._results import SendResult

__all__ = [
    "SMTPAuthError",
    "SMTPAuthNeedsTLSError",
    "SMTPBatchInterrupted",
    "SMTPConnectError",
    "SMTPDataError",
    "SMTPError",
    "SMTPHeloError",
    "SMTPNotSupportedError",
    "SMTPProtocolViolation",
    "SMTPRecipientsRefused",
    "SMTPReplyError",
    "SMTPSenderRefused",
    "SMTPServerDisconnected",
    "SMTPTLSError",
    "SMTPTimeoutError",
]


class SMTPError(Exception):
    """Base of every error the SMTP clients raise. ``reply`` is the server's Reply when
    one caused the error (always set on SMTPReplyError), else None."""

    def __init__(self, message: str, reply: Reply | None = None) -> None:
        super().__init__(message)
        self.reply = reply

    def __str__(self) -> str:
        text = super().__str__()
        if self.reply is not None and str(self.reply) not in text:
            return f"{text}: {_one_line(self.reply)}"
        return text


class SMTPReplyError(SMTPError):
    """The server refused something with a 4xx/5xx ``reply`` (kept whole: code, enhanced
    status code, every line). ``reply.is_transient`` tells whether a retry may work."""

    reply: Reply

    def __init__(self, message: str, reply: Reply) -> None:
        super().__init__(message, reply)


class SMTPHeloError(SMTPReplyError):
    """EHLO/LHLO (and HELO, when tried) was refused."""


class SMTPSenderRefused(SMTPReplyError):
    """MAIL FROM was refused. ``sender`` is the reverse-path; ``result`` the SendResult
    (every recipient refused with this reply)."""

    def __init__(self, reply: Reply, sender: str, result: SendResult) -> None:
        super().__init__(f"sender {sender!r} refused", reply)
        self.sender = sender
        self.result = result


class SMTPRecipientsRefused(SMTPReplyError):
    """No recipient accepted the message. ``refused`` maps each recipient to its Reply
    (RCPT, or in LMTP the per-recipient reply after the data); ``reply`` is the last."""

    def __init__(self, result: SendResult) -> None:
        reply = list(result.refused.values())[-1]
        super().__init__(f"all {len(result.refused)} recipient(s) refused", reply)
        self.result = result

    @property
    def refused(self) -> Mapping[str, Reply]:
        return self.result.refused


class SMTPDataError(SMTPReplyError):
    """The message content was refused (DATA, the end of data, or a BDAT chunk)."""

    def __init__(self, reply: Reply, result: SendResult) -> None:
        super().__init__("message content refused", reply)
        self.result = result


class SMTPConnectError(SMTPError):
    """No session: the TCP connection failed, or the server's greeting was not 220
    (``reply`` then holds it: 554 no service, 421 closing; RFC 5321 §3.1)."""


class SMTPServerDisconnected(SMTPError):
    """The connection is closed (by the server, or by this client after an error)."""


class SMTPProtocolViolation(SMTPError):
    """The server broke the protocol (a malformed reply, a reply no command asked for...);
    the core's RemoteProtocolError is the ``__cause__``. The connection is closed."""


class SMTPTimeoutError(SMTPError, TimeoutError):
    """The timeout of ``phase`` passed (RFC 5321 §4.5.3.2): a whole reply did not come in
    time, however it trickled in, or a write did not finish in time. ``phase`` is a
    sansio_smtp._state.Phase (equal to its string: "MAIL", "data block", ...):
    Phase.SESSION ("session") when the session's ``deadline`` passed first
    (``waiting_for`` then names the phase it cut short). The connection is closed, so no
    late reply can be mistaken for the answer to a later command."""

    def __init__(self, phase: Phase, seconds: float, *, waiting_for: Phase | None = None) -> None:
        if phase == Phase.SESSION:
            during = f" (waiting for {waiting_for})" if waiting_for else ""
            text = f"timed out: the session deadline of {seconds:g} s passed{during}"
        else:
            text = f"timed out after {seconds:g} s waiting for {phase}"
        super().__init__(text)
        self.phase = phase
        self.seconds = seconds
        self.waiting_for = waiting_for or phase


class SMTPTLSError(SMTPError):
    """TLS could not be set up: STARTTLS missing or refused under STARTTLS_REQUIRED
    (``reply`` set when refused), a failed handshake or certificate/hostname check
    (the ssl error is the ``__cause__``), or plaintext received after the 220 to STARTTLS
    (RFC 3207 §4.2, CVE-2011-0411). The connection is closed."""


class SMTPAuthError(SMTPError):
    """AUTH failed (RFC 4954): no usable mechanism (``reply`` None), the server refused
    the credentials (``reply`` the 535/454/534...), or the server could not prove itself
    (SCRAM; the connection is then closed)."""


class SMTPAuthNeedsTLSError(SMTPAuthError):
    """Credentials were given but the connection is not encrypted (no STARTTLS offered,
    STARTTLS refused, or TLSMode.PLAIN), and ``allow_plaintext_auth`` is not set: no AUTH
    of any mechanism was sent. Challenge-response mechanisms (CRAM-MD5, SCRAM) do not send
    the password, but what they send lets an eavesdropper, or a man in the middle that
    stripped STARTTLS, guess it offline (RFC 4954 §4, §14; RFC 3207 §6). ``reply`` is
    None."""


class SMTPNotSupportedError(SMTPError):
    """The message needs something the server does not offer: SMTPUTF8 for a non-ASCII
    address (RFC 6531 §3.4), 8BITMIME for 8-bit content (RFC 6152 §3), BINARYMIME with
    CHUNKING for NULs or over-long lines (RFC 3030 §3), or a SIZE within the server's limit
    (RFC 1870 §6). Nothing was sent; the session is still usable."""


class SMTPBatchInterrupted(SMTPError):
    """A batch (``sendmail_many``) stopped before every message had an outcome: the
    connection was lost or closed (a 421 too), timed out, or the server broke the
    protocol. ``results`` holds the SendResults of the messages whose outcome is known, in
    order (the first ``len(results)`` messages); the others may or may not have been
    delivered. The original error is the ``__cause__``; ``reply`` is its reply, if any.
    The connection is closed."""

    def __init__(self, results: Sequence[SendResult], total: int, cause: BaseException) -> None:
        reply = cause.reply if isinstance(cause, SMTPError) else None
        super().__init__(
            f"batch interrupted with {len(results)} of {total} message(s) done: {cause}", reply
        )
        self.results: list[SendResult] = list(results)
        self.total = total


def _one_line(reply: Reply) -> str:
    esc = f" {reply.enhanced}" if reply.enhanced is not None else ""
    return f"{reply.code}{esc} {' / '.join(reply.lines)}".rstrip()
