# What the sync and asyncio SMTP clients share: the public vocabulary (TLSMode, SendResult,
# TranscriptEntry, the SMTPError hierarchy) and ClientEngine, the client's dialogue logic.
#
# Strategy: ClientEngine is sans-IO like the core it drives. Each operation (open, send,
# quit, ...) is a generator that yields I/O requests - READ (read some bytes into
# ``engine.conn``), Write(chunks) and HANDSHAKE (wrap the transport in TLS) - and returns
# its result. An adapter is the short loop that serves those requests with sockets or
# asyncio; it owns the transport, the clock and TLS. Neither adapter is built on the other,
# and the protocol decisions (pipelining, BDAT, SIZE/BODY/SMTPUTF8, RCPTMAX splitting,
# STARTTLS, AUTH, HELO fallback, LMTP results, batches) are made once, here. A batch
# (send_many) writes one message's content and "." with the next message's group, then
# reads every reply before writing again (RFC 2920 §3.1).
#
# Rules: the engine writes nothing but what Connection.send() returned; it reads replies
# until no command is pending, so a reply can never be matched with the wrong command. An
# operation that fails leaves the session usable only when ``engine.usable`` says so (a
# refused transaction does; a timeout, a broken peer or a half-sent message does not), and
# adapters close the transport otherwise. Secrets never reach the transcript.
from __future__ import annotations

import abc
import contextlib
import copy
import email.generator
import email.message
import email.utils
import enum
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final, TypeVar, final, overload

import attrs

from .. import sasl
from .._connection import NEED_DATA, Connection
from .._events import (
    Auth,
    AuthResponse,
    Bdat,
    BytesLike,
    Command,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfMessage,
    Greeting,
    Helo,
    Help,
    Lhlo,
    MailFrom,
    MessageData,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
    StartTLS,
    Vrfy,
)
from .._extensions import Extensions
from .._lines import has_bare_line_ending, normalize_line_endings, scan_line_lengths
from .._params import Params
from .._rules import validate_rcpt_params
from .._state import CLIENT_TIMEOUTS, Phase, Role, State
from .._util import LocalProtocolError, RemoteProtocolError
from ..config import DEFAULT_MAX_DATA_LINE, MAX_AUTH_LINE, Config
from ._io import HANDSHAKE, READ, Steps, TLSInfo, Write, coalesce

if TYPE_CHECKING:
    import ssl
    from types import TracebackType

__all__ = [
    "DEFAULT_BDAT_CHUNK",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_TLS_TIMEOUT",
    "TIMEOUT_PHASES",
    "AsyncClientCommands",
    "ClientBase",
    "MessageSpec",
    "OutgoingMessage",
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
    "SendResult",
    "TLSMode",
    "TranscriptEntry",
    "address_literal",
    "flatten_message",
]

T = TypeVar("T")

DEFAULT_CONNECT_TIMEOUT: Final = 60.0  # TCP connect; RFC 5321 sets none
DEFAULT_TLS_TIMEOUT: Final = 60.0  # TLS handshake; RFC 5321 sets none
DEFAULT_BDAT_CHUNK: Final = 8 * 1024 * 1024  # larger messages go as several BDAT chunks
#: A write may take its phase's timeout for each block of this many octets it has started
#: (RFC 5321 §4.5.3.2.5: the timeout is per data block): a peer that reads slowly cannot
#: hold a write for longer than ``timeout * (1 + size // WRITE_BLOCK)``.
WRITE_BLOCK: Final = 1024 * 1024
#: The phases a ``timeouts=`` mapping may name: the RFC 5321 §4.5.3.2 ones of the core
#: (``Connection.timeout``), plus "connect" and "tls" (handshake), which the RFC leaves open.
TIMEOUT_PHASES: Final[frozenset[str]] = frozenset({"connect", "tls", *CLIENT_TIMEOUTS})
_HELO_FALLBACK_CODES: Final = frozenset({500, 502})  # RFC 5321 §3.2, §4.1.1.1
_EVENT_CACHE: Final = 512  # MAIL/RCPT events kept for reuse
_NO_PARAMS: Final = Params()


class TLSMode(enum.Enum):
    """How a client uses TLS.

    - PLAIN: never (even when STARTTLS is offered).
    - STARTTLS_REQUIRED: STARTTLS (RFC 3207) or fail with SMTPTLSError before any mail
      or credentials are sent.
    - STARTTLS_OPPORTUNISTIC: STARTTLS when the server offers it, plaintext otherwise
      (also when the server refuses it); a failed handshake still fails.
    - IMPLICIT: TLS from the first byte ("submissions", port 465, RFC 8314 §3.3).
    """

    PLAIN = "plain"
    STARTTLS_REQUIRED = "starttls-required"
    STARTTLS_OPPORTUNISTIC = "starttls-opportunistic"
    IMPLICIT = "implicit"


# ------------------------------------------------------------------------ exceptions


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
    time, however it trickled in, or a write did not finish in time. ``phase`` is
    "session" when the session's ``deadline`` passed first (``waiting_for`` then names the
    phase it cut short). The connection is closed, so no late reply can be mistaken for
    the answer to a later command."""

    def __init__(self, phase: str, seconds: float, *, waiting_for: str | None = None) -> None:
        if phase == "session":
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


# ---------------------------------------------------------------------------- results


@final
@attrs.frozen(kw_only=True)
class SendResult:
    """What happened to one message (possibly several transactions, when LIMITS RCPTMAX
    made the client split the recipients).

    - ``sender``: the reverse-path used.
    - ``accepted``: recipient -> the Reply that accepted it: the RCPT reply, or in LMTP the
      per-recipient reply after the data (RFC 2033 §4.2). In recipient order.
    - ``refused``: recipient -> the Reply that refused it: its RCPT reply, the MAIL reply if
      the sender was refused, the final reply if the content was refused, or its LMTP
      per-recipient reply. Every refusal keeps its code and enhanced code (RFC 3463).
    - ``data_replies``: the final reply of each transaction that got as far as the content
      (the reply to ``<CRLF>.<CRLF>`` or BDAT LAST).
    """

    sender: str
    accepted: Mapping[str, Reply]
    refused: Mapping[str, Reply]
    data_replies: tuple[Reply, ...] = ()

    @property
    def data_reply(self) -> Reply | None:
        """The final reply of the last transaction (None if none got that far)."""
        return self.data_replies[-1] if self.data_replies else None

    @property
    def ok(self) -> bool:
        """At least one recipient accepted the message."""
        return bool(self.accepted)


def as_recipients(to_addrs: str | Iterable[str]) -> tuple[str, ...]:
    """A recipient argument as a tuple: one str is one recipient (as smtplib)."""
    return (to_addrs,) if isinstance(to_addrs, str) else tuple(to_addrs)


def as_content(msg: bytes | bytearray | memoryview | str) -> bytes:
    """Message content as bytes: str is encoded as UTF-8 (8-bit unless it is ASCII)."""
    if isinstance(msg, str):
        return msg.encode("utf-8")
    if isinstance(msg, (bytearray, memoryview)):
        return bytes(msg)
    if isinstance(msg, bytes):
        return msg
    raise TypeError(f"message content must be bytes or str, not {type(msg).__name__}")


@final
@attrs.frozen
class OutgoingMessage:
    """One message of a batch (``sendmail_many``), with the arguments of ``sendmail``:
    ``sender`` ("" for the null reverse-path), ``recipients`` (one str is one recipient),
    ``content`` (bytes; str is encoded as UTF-8), optional ``mail_params`` and
    ``rcpt_params`` (RFC 5321 §4.1.2 esmtp-params). A plain tuple ``(sender, recipients,
    content)`` is accepted wherever an OutgoingMessage is."""

    sender: str
    recipients: tuple[str, ...] = attrs.field(converter=as_recipients)
    content: bytes = attrs.field(converter=as_content, repr=lambda c: f"<{len(c)} octets>")
    mail_params: Mapping[str, str | None] | None = None
    rcpt_params: Mapping[str, str | None] | None = None


#: What sendmail_many takes for each message.
MessageSpec = (
    OutgoingMessage | tuple[str, str | Sequence[str], bytes | bytearray | memoryview | str]
)


@final
@attrs.frozen
class TranscriptEntry:
    """One line of the dialogue: ``direction`` "C" (client), "S" (server) or "*" (a note
    such as the TLS handshake). AUTH data and message content are never shown."""

    direction: str
    text: str

    def __str__(self) -> str:
        return f"{self.direction}: {self.text}"


# --------------------------------------------------------------------------- options


@final
@attrs.frozen(kw_only=True)
class ClientOptions:
    """Everything a client was configured with (the keyword arguments of SMTPClient and
    AsyncSMTPClient). Internal: both adapters build one and hand it to the engine."""

    host: str
    port: int
    tls: TLSMode
    server_hostname: str | None = None
    local_hostname: str | None = None
    username: str | None = attrs.field(default=None)
    password: str | None = attrs.field(default=None, repr=False)
    token: str | None = attrs.field(default=None, repr=False)
    authzid: str | None = None
    auth_mechanisms: Sequence[str] | None = None
    allow_plaintext_auth: bool = False
    lmtp: bool = False
    timeout: float | None = None
    timeouts: Mapping[str, float] = attrs.field(factory=dict)
    deadline: float | None = None
    pipelining: bool = True
    chunking: bool = True
    bdat_chunk_size: int = DEFAULT_BDAT_CHUNK
    transcript: bool = False
    on_transcript: Callable[[TranscriptEntry], None] | None = None

    def __attrs_post_init__(self) -> None:
        unknown = set(self.timeouts) - TIMEOUT_PHASES
        if unknown:
            raise ValueError(
                f"unknown timeout phase(s) {sorted(unknown)}; known: {sorted(TIMEOUT_PHASES)}"
            )
        for value in (self.timeout, *self.timeouts.values()):
            if value is not None and not value > 0:
                raise ValueError(f"timeouts must be positive seconds, not {value!r}")
        if self.deadline is not None and not self.deadline > 0:
            raise ValueError(f"deadline must be positive seconds, not {self.deadline!r}")
        if self.bdat_chunk_size <= 0:
            raise ValueError("bdat_chunk_size must be positive")
        if self.password is not None and self.token is not None:
            raise ValueError("give a password or a token, not both")
        if self.password is not None and not self.username:
            raise ValueError("a password needs a username")


def resolve_tls_mode(tls: TLSMode | None, port: int) -> TLSMode:
    """The default: IMPLICIT on port 465 (RFC 8314 §3.3), STARTTLS_OPPORTUNISTIC else."""
    if tls is not None:
        if not isinstance(tls, TLSMode):
            raise TypeError(f"tls must be a TLSMode, not {tls!r}")
        return tls
    return TLSMode.IMPLICIT if port == 465 else TLSMode.STARTTLS_OPPORTUNISTIC


# ---------------------------------------------------------------------- the messages


def flatten_message(
    msg: email.message.Message,
    from_addr: str | None = None,
    to_addrs: str | Sequence[str] | None = None,
) -> tuple[str, list[str], bytes, bool]:
    """The envelope and the wire form of ``msg``, as ``smtplib.SMTP.send_message`` builds
    them: ``(sender, recipients, content, international)``.

    With a single Resent- block (RFC 5322 §3.6.6) the Resent- fields are used. The sender
    is the Sender field, else the first From address; the recipients are those of To, Bcc
    and Cc. Bcc and Resent-Bcc are removed from what is sent. ``international`` is True
    when an envelope address is not ASCII: the message is then generated with the
    policy's ``utf8=True`` clone (RFC 6532) and needs SMTPUTF8. Lines end in CRLF.
    Raises ValueError for several Resent- blocks or a message with no sender.
    """
    resent = msg.get_all("Resent-Date")
    if resent is None:
        prefix = ""
    elif len(resent) == 1:
        prefix = "Resent-"
    else:
        raise ValueError("message has more than one 'Resent-' header block")
    if from_addr is None:
        field = msg[prefix + "Sender"] if (prefix + "Sender") in msg else msg[prefix + "From"]
        if field is None:
            raise ValueError(f"message has no {prefix}From or {prefix}Sender header")
        from_addr = email.utils.getaddresses([str(field)])[0][1]
    if to_addrs is None:
        fields = [
            str(f) for name in ("To", "Bcc", "Cc") for f in (msg.get_all(prefix + name) or ())
        ]
        recipients = [a for _name, a in email.utils.getaddresses(fields) if a]
    elif isinstance(to_addrs, str):
        recipients = [to_addrs]
    else:
        recipients = list(to_addrs)
    msg_copy = copy.copy(msg)
    del msg_copy["Bcc"]
    del msg_copy["Resent-Bcc"]
    international = not all(a.isascii() for a in (from_addr, *recipients))
    buf = io.BytesIO()
    if international:
        policy = msg.policy.clone(utf8=True)  # type: ignore[call-arg]
        gen = email.generator.BytesGenerator(buf, policy=policy)
    else:
        gen = email.generator.BytesGenerator(buf)
    gen.flatten(msg_copy, linesep="\r\n")
    return from_addr, recipients, buf.getvalue(), international


def address_literal(sockname: tuple[object, ...] | str) -> str:
    """The EHLO argument for a host with no name: its address literal (RFC 5321 §4.1.3):
    ``[192.0.2.1]`` or ``[IPv6:2001:db8::1]``."""
    host = str(sockname[0]) if isinstance(sockname, tuple) else "127.0.0.1"
    host = host.split("%", 1)[0]
    return f"[IPv6:{host}]" if ":" in host else f"[{host}]"


def rcpt_limit(extensions: Extensions) -> int | None:
    """LIMITS RCPTMAX=n (RFC 9422 §4.2): recipients per transaction, or None."""
    for word in extensions.get("LIMITS", ()):
        key, _, value = word.partition("=")
        if key.upper() == "RCPTMAX" and value.isdigit() and int(value) > 0:
            return int(value)
    return None


class _Capabilities:
    """What the server's EHLO reply allows, worked out once per reply."""

    __slots__ = (
        "binarymime",
        "chunking",
        "eightbit",
        "extensions",
        "rcptmax",
        "size",
        "size_limit",
        "smtputf8",
    )

    def __init__(self, ext: Extensions, size_limit: int | None, use_chunking: bool) -> None:
        self.extensions = ext
        self.chunking = use_chunking and "CHUNKING" in ext  # RFC 3030 §2
        self.binarymime = self.chunking and "BINARYMIME" in ext  # RFC 3030 §3
        self.eightbit = "8BITMIME" in ext  # RFC 6152
        self.smtputf8 = "SMTPUTF8" in ext  # RFC 6531
        self.size = "SIZE" in ext  # RFC 1870
        self.size_limit = size_limit
        self.rcptmax = rcpt_limit(ext)  # RFC 9422 §4.2


# ----------------------------------------------------------------------- transactions


class _Transaction:
    """Bookkeeping for one mail transaction's replies."""

    __slots__ = (
        "accepted",
        "closed",
        "data_reply",
        "deliveries",
        "delivery_queue",
        "failure",
        "failure_reply",
        "keys",
        "mail_reply",
        "rcpt_seen",
        "refused",
        "start_reply",
    )

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.rcpt_seen = 0  # RCPT replies read
        self.deliveries = 0  # LMTP per-recipient replies read
        self.accepted: dict[str, Reply] = {}
        self.refused: dict[str, Reply] = {}
        self.delivery_queue: list[str] = []  # LMTP: accepted recipients awaiting delivery
        self.mail_reply: Reply | None = None
        self.start_reply: Reply | None = None  # the reply to DATA (354 or a refusal)
        self.data_reply: Reply | None = None  # the final reply (or a refused BDAT chunk)
        self.failure: type[SMTPReplyError] | None = None
        self.failure_reply: Reply | None = None
        self.closed: Reply | None = None  # a 421 ended the session before the data

    def finish(self) -> None:
        """Decide which recipients got the message, and why the others did not."""
        mail = self.mail_reply
        if mail is not None and not mail.is_positive:
            self.failure, self.failure_reply = SMTPSenderRefused, mail
            for key in self.keys:  # the RCPTs were never considered (503 if pipelined)
                self.refused[key] = mail
            self.accepted.clear()
            return
        if self.closed is not None:  # 421 among the RCPT replies: nothing was sent
            for key in self.accepted:
                self.refused[key] = self.closed
            self.accepted.clear()
        if not self.accepted and not self.deliveries:
            if self.refused:
                self.failure = SMTPRecipientsRefused
                self.failure_reply = list(self.refused.values())[-1]
            return
        failed = None
        start = self.start_reply
        if start is not None and start.code != 354:
            failed = start  # DATA refused (RFC 5321 §4.1.1.4)
        elif self.deliveries:  # LMTP: each recipient has its own final reply
            if not self.accepted:
                self.failure = SMTPRecipientsRefused
                self.failure_reply = list(self.refused.values())[-1]
            return
        elif self.data_reply is not None and not self.data_reply.is_positive:
            failed = self.data_reply
        if failed is not None:
            self.failure, self.failure_reply = SMTPDataError, failed
            for key in self.accepted:
                self.refused[key] = failed
            self.accepted.clear()


def _send_result(sender: str, keys: Sequence[str], txs: Sequence[_Transaction]) -> SendResult:
    """The SendResult of a message from its finished transactions (more than one when
    LIMITS RCPTMAX split the recipients), in recipient order."""
    accepted: dict[str, Reply] = {}
    refused: dict[str, Reply] = {}
    for tx in txs:
        accepted.update(tx.accepted)
        refused.update(tx.refused)
    return SendResult(
        sender=sender,
        accepted={k: accepted[k] for k in keys if k in accepted},
        refused={k: refused[k] for k in keys if k in refused and k not in accepted},
        data_replies=tuple(
            tx.data_reply
            for tx in txs
            if tx.data_reply is not None and tx.failure is not SMTPSenderRefused
        ),
    )


class _Prepared:
    """One message of a batch, prepared (ClientEngine.prepare) before anything is sent."""

    __slots__ = ("bdat", "data", "keys", "mail", "message", "rcpts")

    def __init__(
        self, message: OutgoingMessage, mail: MailFrom, rcpts: list[RcptTo], data: bytes, bdat: bool
    ) -> None:
        self.message = message
        self.keys = list(message.recipients)
        self.mail = mail
        self.rcpts = rcpts
        self.data = data
        self.bdat = bdat


# -------------------------------------------------------------------------- the engine


class ClientEngine:
    """The client dialogue without I/O (see the module comment). One per connection."""

    def __init__(self, options: ClientOptions) -> None:
        self.options = options
        # prepare() enforces RFC 6152 §3 itself, before anything is sent; the core's own
        # check is off because sending BDAT LAST forgets the MAIL parameters before the
        # chunk's octets are sent (a core issue), which would refuse 8-bit BDAT content.
        config = Config(
            lmtp=options.lmtp,
            allow_plaintext_auth=options.allow_plaintext_auth,
            allow_8bit_without_8bitmime=True,
        )
        self.conn = Connection(Role.CLIENT, config, tls=options.tls is TLSMode.IMPLICIT)
        self.greeting: Greeting | None = None
        self.esmtp = False  # EHLO/LHLO was accepted (not HELO)
        self.broken = False  # an operation left the session in an unknown state
        self.local_hostname = options.local_hostname or "localhost"
        self.transcript: list[TranscriptEntry] = []
        self._log = options.transcript or options.on_transcript is not None
        self._in_auth = False
        self._reset_due = False  # send RSET before the next MAIL
        self._caps: _Capabilities | None = None
        defaults: dict[Phase, float] = {
            Phase.CONNECT: DEFAULT_CONNECT_TIMEOUT,
            Phase.TLS: DEFAULT_TLS_TIMEOUT,
            **CLIENT_TIMEOUTS,  # RFC 5321 §4.5.3.2
        }
        self._timeouts: dict[str, float] = {
            phase: options.timeouts.get(phase, options.timeout or seconds)
            for phase, seconds in defaults.items()
        }
        # The clock belongs to the adapter, which passes its monotonic "now" in: the clock
        # value the session must end by (``deadline``), and the one by which the reply
        # awaited now must be complete (set at the first read for it, cleared when a new
        # reply is awaited), so a reply that trickles in cannot restart its timeout.
        self._session_end: float | None = None
        self._reply_due: float | None = None
        self._events: dict[tuple[type, str, Params], MailFrom | RcptTo] = {}
        #: tls-server-end-point data of the server's certificate once TLS is up (RFC
        #: 5929 §4), for SCRAM -PLUS; None without TLS or for a certificate whose
        #: signature algorithm leaves the binding undefined (e.g. Ed25519).
        self.channel_binding: sasl.ChannelBinding | None = None

    # ----------------------------------------------------------------- bookkeeping

    @property
    def usable(self) -> bool:
        """The session can take another command: nothing half-done, not closed."""
        if self.broken:
            return False
        conn = self.conn
        return not conn.pending and conn.state in (
            State.CONNECTED,
            State.READY,
            State.MAIL,
            State.RCPT,
            State.BDAT,
            State.REJECTED,
        )

    def timeout(self, phase: str) -> float:
        """Seconds allowed for ``phase``: the ``timeouts`` mapping, else ``timeout``, else
        the RFC 5321 §4.5.3.2 value (60 s for "connect" and "tls")."""
        seconds = self._timeouts.get(phase)
        return seconds if seconds is not None else self._timeouts["command"]

    def read_timeout(self) -> tuple[str, float]:
        """What the connection waits for now, and the whole timeout for it."""
        awaited = self.conn.timeout
        phase = awaited.phase if awaited is not None else "command"
        return phase, self._timeouts.get(phase) or self._timeouts["command"]

    # --------------------------------------------------------------- deadlines
    # Adapters pass their monotonic clock's "now" and get back clock values ("due") by
    # which a step must be done; when one passes, timed_out() builds the error.

    def start_clock(self, now: float) -> None:
        """The adapter starts connecting at ``now``: the session deadline runs from here."""
        deadline = self.options.deadline
        self._session_end = None if deadline is None else now + deadline
        self._reply_due = None

    def _cap(self, due: float) -> float:
        end = self._session_end
        return due if end is None or due < end else end

    def step_due(self, phase: str, now: float) -> float:
        """When a step starting at ``now`` ("connect", "tls") must be done."""
        return self._cap(now + self.timeout(phase))

    def read_due(self, now: float) -> tuple[str, float]:
        """The phase of the READ asked for now and when it must be done: the whole reply
        awaited is due ``timeout(phase)`` after the first read for it (RFC 5321
        §4.5.3.2), not after the last octet received."""
        phase, seconds = self.read_timeout()
        if self._reply_due is None:
            self._reply_due = now + seconds
        return phase, self._cap(self._reply_due)

    def write_due(self, phase: str, started: float, sent: int) -> float:
        """When a Write of ``phase`` begun at ``started``, with ``sent`` octets written so
        far, must be done: the phase's timeout for each block of WRITE_BLOCK octets it
        has started (RFC 5321 §4.5.3.2.5)."""
        return self._cap(started + self.timeout(phase) * (1 + sent // WRITE_BLOCK))

    def timed_out(self, phase: str, due: float) -> SMTPTimeoutError:
        """The error for a step of ``phase`` whose ``due`` time passed; the session
        cannot go on (``broken``)."""
        self.broken = True
        if due == self._session_end and self.options.deadline is not None:
            return SMTPTimeoutError("session", self.options.deadline, waiting_for=phase)
        return SMTPTimeoutError(phase, self.timeout(phase))

    def tls_ready(self, tls: TLSInfo) -> None:
        """The adapter finished a TLS handshake (implicit TLS, or after STARTTLS): note it
        and take channel binding data from the server's certificate (RFC 5929 §4.1)."""
        self.note(f"TLS established: {tls.version()} {(tls.cipher() or ('',))[0]}")
        certificate = tls.getpeercert(binary_form=True)
        self.channel_binding = None
        if certificate:
            try:
                self.channel_binding = sasl.tls_server_end_point(certificate)
            except ValueError as exc:
                self.note(f"no channel binding: {exc}")

    def note(self, text: str) -> None:
        """Add a "*" line to the transcript (adapters: connection and TLS events)."""
        if self._log:
            self._record("*", text)

    def _record(self, direction: str, text: str) -> None:
        entry = TranscriptEntry(direction, text)
        if self.options.transcript:
            self.transcript.append(entry)
        callback = self.options.on_transcript
        if callback is not None:
            callback(entry)

    def _log_command(self, command: Command, wire: bytes) -> None:
        if isinstance(command, Auth):
            text = f"AUTH {command.mechanism}"
            if command.initial_response is not None:
                text += " <redacted>"
        elif isinstance(command, AuthResponse):
            text = "*" if command.data is None else "<redacted>"
        else:
            text = wire.decode("utf-8", "replace").rstrip("\r\n")
        self._record("C", text)

    def _log_reply(self, reply: Reply | Greeting) -> None:
        if self._in_auth and reply.code == 334:
            self._record("S", "334 <redacted>")
            return
        esc = f"{reply.enhanced} " if isinstance(reply, Reply) and reply.enhanced else ""
        last = len(reply.lines) - 1
        for i, text in enumerate(reply.lines):
            sep = "-" if i < last else " "
            self._record("S", f"{reply.code}{sep}{esc}{text}".rstrip())

    def send(self, command: Command) -> bytes:
        """``conn.send(command)``, logged."""
        wire = self.conn.send(command)
        if self._log:
            self._log_command(command, wire)
        return wire

    def _violation(self, exc: RemoteProtocolError) -> SMTPError:
        self.broken = True
        if self.conn.state is State.TLS or "STARTTLS" in str(exc):
            return SMTPTLSError(f"plaintext received after the 220 to STARTTLS: {exc}")
        return SMTPProtocolViolation(f"the server broke the protocol: {exc}")

    def _reply(self) -> Steps[Reply]:
        """Read the next reply."""
        conn = self.conn
        self._reply_due = None  # a new reply: its timeout starts at the first read
        while True:
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                raise self._violation(exc) from exc
            if type(event) is Reply:
                if self._log:
                    self._log_reply(event)
                return event
            if event is NEED_DATA:
                yield READ
                continue
            if isinstance(event, ConnectionClosed):
                self.broken = True
                raise SMTPServerDisconnected("the server closed the connection")
            # Greetings are read by open(); PAUSED comes only in State.TLS, handled there.
            self.broken = True  # pragma: no cover - a bug in the engine
            raise SMTPProtocolViolation(f"unexpected {event!r}")  # pragma: no cover

    def _exchange(self, command: Command, phase: str = "command") -> Steps[Reply]:
        """Send one command and read its reply (lock-step)."""
        yield Write([self.send(command)], phase)
        return (yield from self._reply())

    # ------------------------------------------------------------------------ open

    def open(self) -> Steps[None]:
        """Greeting, EHLO/LHLO (or HELO), STARTTLS per the TLS mode, AUTH if credentials
        were given. Raises SMTPConnectError, SMTPHeloError, SMTPTLSError, SMTPAuthError."""
        conn = self.conn
        self._reply_due = None
        while True:
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                self.broken = True
                raise SMTPConnectError(f"malformed greeting: {exc}") from exc
            if event is NEED_DATA:
                yield READ
                continue
            break
        if isinstance(event, ConnectionClosed):
            self.broken = True
            raise SMTPConnectError("the server closed the connection before its greeting")
        assert isinstance(event, Greeting)
        self.greeting = event
        if self._log:
            self._log_reply(event)
        if event.code != 220:  # RFC 5321 §3.1: 554 (only QUIT allowed) or 421
            reply = Reply(code=event.code, lines=event.lines)
            raise SMTPConnectError("the server refused the session", reply)
        yield from self.hello()
        mode = self.options.tls
        if mode in (TLSMode.STARTTLS_REQUIRED, TLSMode.STARTTLS_OPPORTUNISTIC):
            if "STARTTLS" in conn.extensions:
                yield from self.starttls(required=mode is TLSMode.STARTTLS_REQUIRED)
            elif mode is TLSMode.STARTTLS_REQUIRED:
                raise SMTPTLSError("the server does not offer STARTTLS (RFC 3207 §4)")
        if self.options.username is not None or self.options.token is not None:
            yield from self.authenticate()

    def hello(self) -> Steps[Reply]:
        """EHLO (LHLO in LMTP); HELO when EHLO is not recognised (RFC 5321 §3.2)."""
        name = self.local_hostname
        if self.options.lmtp:
            reply = yield from self._exchange(Lhlo(domain=name))
        else:
            reply = yield from self._exchange(Ehlo(domain=name))
            if reply.code in _HELO_FALLBACK_CODES:
                reply = yield from self._exchange(Helo(domain=name))
                if reply.is_positive:
                    self.esmtp = False
                    return reply
        if not reply.is_positive:
            raise SMTPHeloError("the server refused our greeting", reply)
        self.esmtp = True
        return reply

    def starttls(self, *, required: bool = True) -> Steps[None]:
        """STARTTLS, the handshake, and EHLO again (RFC 3207 §4.2)."""
        conn = self.conn
        reply = yield from self._exchange(StartTLS())
        if reply.code != 220:
            if required:
                raise SMTPTLSError("the server refused STARTTLS", reply)
            self.note("STARTTLS refused; continuing without TLS")
            return
        try:
            conn.next_event()  # PAUSED, or RemoteProtocolError for plaintext after 220
        except RemoteProtocolError as exc:
            raise self._violation(exc) from exc
        yield HANDSHAKE
        try:
            conn.tls_established()
        except RemoteProtocolError as exc:
            raise self._violation(exc) from exc
        yield from self.hello()

    # ------------------------------------------------------------------------ AUTH

    def authenticate(self) -> Steps[None]:
        """AUTH with the strongest mechanism both sides support that the transport allows
        (sansio_smtp.sasl.choose_mechanism; RFC 4954)."""
        opts = self.options
        conn = self.conn
        offered = conn.extensions.get("AUTH")
        if offered is None:
            where = "" if conn.tls_active else " without TLS"
            raise SMTPAuthError(f"the server does not offer AUTH{where} (RFC 4954 §3)")
        if not conn.tls_active and not opts.allow_plaintext_auth:
            # Any mechanism, not only PLAIN/LOGIN: a CRAM-MD5 or SCRAM response lets
            # whoever sees it (a man in the middle that stripped STARTTLS) guess the
            # password offline (RFC 4954 §4, §14; RFC 3207 §6).
            raise SMTPAuthNeedsTLSError(
                f"no usable AUTH mechanism without TLS (offered: {' '.join(offered)}):"
                " credentials are sent only over TLS (use STARTTLS or implicit TLS) unless"
                " allow_plaintext_auth=True"
            )
        binding = self.channel_binding if conn.tls_active else None
        name = sasl.choose_mechanism(
            offered,
            tls=conn.tls_active,
            allow_plaintext=opts.allow_plaintext_auth,
            have_password=opts.password is not None,
            have_token=opts.token is not None,
            have_channel_binding=binding is not None,
            preference=tuple(opts.auth_mechanisms or sasl.DEFAULT_PREFERENCE),
        )
        if name is None:
            raise SMTPAuthError(f"no usable AUTH mechanism among {' '.join(offered)}")
        if not sasl.binds_channel(name) and any(sasl.binds_channel(m) for m in offered):
            # RFC 5802 §6: flag "y" (we could bind, the server seems unable to) makes a
            # server that offers -PLUS fail us as a downgrade; it is for servers without.
            binding = None
        mech = sasl.client_mechanism(
            name,
            username=opts.username,
            password=opts.password,
            token=opts.token,
            authzid=opts.authzid,
            host=opts.server_hostname or opts.host,
            port=opts.port,
            channel_binding=binding,
        )
        initial = mech.initial_response()
        if initial is not None and (len(initial) + 2) // 3 * 4 + len(name) + 8 > MAX_AUTH_LINE:
            initial = None  # RFC 4954 §4: too long for the AUTH line; answer the 334 instead
        self._in_auth = True
        try:
            reply = yield from self._exchange(Auth(mechanism=name, initial_response=initial))
            while reply.code == 334:
                try:
                    response: bytes | None = mech.respond(reply.challenge)
                    problem = None
                except (sasl.SASLError, ValueError) as exc:
                    response, problem = None, exc  # RFC 4954 §4: cancel with "*"
                reply = yield from self._exchange(AuthResponse(data=response))
                if problem is not None:
                    raise SMTPAuthError(f"AUTH {name} cancelled: {problem}", reply) from problem
        finally:
            self._in_auth = False
        if not reply.is_positive:
            raise SMTPAuthError(f"AUTH {name} refused", reply)
        try:
            mech.finish()
        except sasl.SASLError as exc:
            self.broken = True  # the server claims success but did not prove itself
            raise SMTPAuthError(f"AUTH {name}: {exc}", reply) from exc

    # ------------------------------------------------------------------- sending

    def prepare(
        self,
        sender: str,
        recipients: Sequence[str],
        content: bytes,
        mail_params: Mapping[str, str | None] | None,
        rcpt_params: Mapping[str, str | None] | None,
        *,
        international: bool = False,
    ) -> tuple[MailFrom, list[RcptTo], bytes, bool]:
        """Choose the parameters and the transfer for a message (nothing is sent):
        SMTPUTF8 (RFC 6531 §3.4), BODY=8BITMIME (RFC 6152) or BINARYMIME (RFC 3030 §3),
        SIZE (RFC 1870), BDAT when CHUNKING is offered. Returns (MAIL, RCPTs, content,
        use BDAT). Raises SMTPNotSupportedError, ValueError for bad addresses."""
        conn = self.conn
        if not self.usable:
            raise SMTPServerDisconnected("the session is not usable (closed or broken)")
        if conn.state in (State.CONNECTED, State.REJECTED):
            raise SMTPError("no session: the server did not accept our EHLO/HELO")
        if not recipients:
            raise ValueError("no recipients")
        caps = self._capabilities()
        user = _NO_PARAMS if not mail_params else Params(mail_params)
        auto: dict[str, str | None] = {}
        utf8 = international or not sender.isascii() or not all(r.isascii() for r in recipients)
        if utf8 and "SMTPUTF8" not in user:
            if not caps.smtputf8:
                raise SMTPNotSupportedError(
                    "a non-ASCII address needs SMTPUTF8, which the server does not offer"
                    " (RFC 6531 §3.4)"
                )
            auto["SMTPUTF8"] = None
        data = content
        binary = b"\0" in content
        if not binary and has_bare_line_ending(content):
            data = normalize_line_endings(content)  # RFC 5321 §2.3.8, as the core does
        if not binary:
            binary = scan_line_lengths(data, 0, DEFAULT_MAX_DATA_LINE) < 0
        body = user.get("BODY") if user else None
        if binary:
            data = content  # BINARYMIME: the octets exactly as given
            if body is None:
                if not caps.binarymime:
                    raise SMTPNotSupportedError(
                        "content with NULs or lines over 998 octets needs BINARYMIME and"
                        " CHUNKING, which the server does not offer (RFC 3030 §3,"
                        " RFC 5321 §4.5.3.1.6)"
                    )
                auto["BODY"] = "BINARYMIME"
        else:
            if data and not data.endswith(b"\r\n"):
                data += b"\r\n"  # what DATA would add (RFC 5321 §4.1.1.4); same for BDAT
            if body is None and not data.isascii():
                if caps.eightbit:
                    auto["BODY"] = "8BITMIME"
                elif not utf8:
                    raise SMTPNotSupportedError(
                        "8-bit content needs 8BITMIME, which the server does not offer"
                        " (RFC 6152 §3)"
                    )
            elif body is not None and body.upper() == "7BIT" and not data.isascii():
                raise SMTPNotSupportedError("BODY=7BIT given for 8-bit content (RFC 6152 §3)")
        binary = binary or (body or "").upper() == "BINARYMIME"
        if binary and not caps.chunking:
            raise SMTPNotSupportedError("BODY=BINARYMIME needs CHUNKING (RFC 3030 §3)")
        limit = caps.size_limit
        if limit is not None and len(data) > limit:
            raise SMTPNotSupportedError(
                f"the message ({len(data)} octets) is over the server's SIZE limit of"
                f" {limit} (RFC 1870 §6.1)"
            )
        if caps.size and "SIZE" not in user:
            auto["SIZE"] = str(len(data))
        params = Params({**auto, **dict(user)}) if auto else user
        mail = self._event(MailFrom, sender, params)
        rparams = _NO_PARAMS if not rcpt_params else Params(rcpt_params)
        if rparams:
            validate_rcpt_params(rparams, extensions=conn.extensions)
        rcpts = [self._event(RcptTo, r, rparams) for r in recipients]
        return mail, rcpts, data, caps.chunking

    @overload
    def _event(self, kind: type[MailFrom], address: str, params: Params) -> MailFrom: ...
    @overload
    def _event(self, kind: type[RcptTo], address: str, params: Params) -> RcptTo: ...
    def _event(
        self, kind: type[MailFrom] | type[RcptTo], address: str, params: Params
    ) -> MailFrom | RcptTo:
        """MAIL/RCPT for ``address``: events are immutable, so the parsed ones are kept
        (bounded) for the next message to the same addresses."""
        key = (kind, address, params)
        event = self._events.get(key)
        if event is None:
            if len(self._events) >= _EVENT_CACHE:
                self._events.clear()
            if kind is MailFrom:
                event = MailFrom(reverse_path=address, params=params)
            else:
                event = RcptTo(forward_path=address, params=params)
            self._events[key] = event
        return event

    def _capabilities(self) -> _Capabilities:
        ext = self.conn.extensions
        caps = self._caps
        if caps is None or caps.extensions is not ext:
            caps = self._caps = _Capabilities(ext, self.conn.size_limit, self.options.chunking)
        return caps

    def send_mail(
        self,
        sender: str,
        recipients: Sequence[str],
        content: bytes,
        mail_params: Mapping[str, str | None] | None = None,
        rcpt_params: Mapping[str, str | None] | None = None,
        *,
        international: bool = False,
    ) -> Steps[SendResult]:
        """Send one message to ``recipients``; split across transactions by LIMITS
        RCPTMAX (RFC 9422 §4.2). Raises when no recipient got it (SMTPSenderRefused,
        SMTPRecipientsRefused, SMTPDataError); else returns the SendResult."""
        mail, rcpts, data, bdat = self.prepare(
            sender, recipients, content, mail_params, rcpt_params, international=international
        )
        result, failures = yield from self._send_prepared(
            sender, list(recipients), mail, rcpts, data, bdat
        )
        if result.ok:
            return result
        if not failures or not result.refused:
            raise SMTPServerDisconnected("the connection closed before the message was sent")
        kind, reply = failures[0]
        if kind is SMTPSenderRefused:
            raise SMTPSenderRefused(reply, sender, result)
        if kind is SMTPDataError:
            raise SMTPDataError(reply, result)
        raise SMTPRecipientsRefused(result)

    def _send_prepared(
        self,
        sender: str,
        keys: list[str],
        mail: MailFrom,
        rcpts: list[RcptTo],
        data: bytes,
        bdat: bool,
    ) -> Steps[tuple[SendResult, list[tuple[type[SMTPReplyError], Reply]]]]:
        """send_mail's transactions for a prepared message: the SendResult, and what
        failed in each failed transaction (first first)."""
        step = self._capabilities().rcptmax or len(rcpts)
        txs: list[_Transaction] = []
        for start in range(0, len(rcpts), step):
            tx = _Transaction(keys[start : start + step])
            yield from self._transaction(tx, mail, rcpts[start : start + step], data, bdat)
            tx.finish()
            if tx.failure is not None:
                self._reset_due = True
            txs.append(tx)
            if not self.usable:
                break
        failures = [
            (tx.failure, tx.failure_reply)
            for tx in txs
            if tx.failure is not None and tx.failure_reply is not None
        ]
        return _send_result(sender, keys, txs), failures

    def _transaction(
        self, tx: _Transaction, mail: MailFrom, rcpts: list[RcptTo], data: bytes, bdat: bool
    ) -> Steps[None]:
        conn = self.conn
        pipelining = self.options.pipelining and "PIPELINING" in conn.extensions
        # After a failed transaction, end it for sure (RFC 5321 §4.1.1.5): after a refused
        # BDAT the two sides may disagree on whether it is still open (RFC 3030 §2).
        reset = self._reset_due or conn.state is not State.READY
        self._reset_due = False
        if reset and not pipelining:
            reply = yield from self._exchange(Rset())
            if not reply.is_positive:
                raise SMTPReplyError("RSET refused", reply)
            reset = False
        wire: list[BytesLike] = []
        try:
            if reset:
                wire.append(self.send(Rset()))  # pipelined with the group (RFC 2920 §3.1)
            wire.append(self.send(mail))
            if pipelining:
                # RFC 2920 §3.1: MAIL, every RCPT and DATA (or BDAT with its chunks,
                # RFC 3030 §4.2) as one group; the replies come back in order.
                wire.extend(self.send(r) for r in rcpts)
                if bdat:
                    wire.extend(self._bdat_wire(data))
                else:
                    wire.append(self.send(Data()))
                yield Write(coalesce(wire), "data block" if bdat else "command")
                yield from self._collect(tx)
            else:
                yield Write(wire)
                yield from self._collect(tx)
                if self.broken or tx.mail_reply is None or not tx.mail_reply.is_positive:
                    return
                for rcpt in rcpts:
                    yield Write([self.send(rcpt)])
                    yield from self._collect(tx)
                    if self.broken:
                        return
                if not tx.accepted or conn.state is not State.RCPT:
                    return
                if bdat:
                    for chunk_wire in self._bdat_chunks(data):
                        yield Write(coalesce(chunk_wire), "data block")
                        yield from self._collect(tx)
                        if self.broken or not tx.accepted or tx.data_reply is not None:
                            break  # the last chunk was answered, or a chunk failed
                    return
                yield Write([self.send(Data())])
                yield from self._collect(tx)
        except LocalProtocolError:
            if not wire:
                raise  # nothing changed: Connection.send() is atomic
            conn.send_failed()  # part of a group was sent to the core but not written
            self.broken = True
            raise
        if self.broken or bdat or conn.state is not State.DATA:
            if not self.broken and tx.start_reply is not None and tx.start_reply.code == 354:
                # 354 with no recipient accepted (RFC 2920 §3.1 says send only "."); the
                # core cannot, so the session cannot go on.
                self.broken = True
                raise SMTPProtocolViolation("354 after every recipient was refused")
            return
        out = conn.send_with_data_passthrough(MessageData(data=data))
        out.append(conn.send(EndOfMessage()))
        if self._log:
            self._record("C", f"<message content, {len(data)} octets>")
            self._record("C", ".")
        yield Write(coalesce(out), "data block")
        yield from self._collect(tx)

    def _bdat_chunks(self, data: bytes) -> Iterable[list[BytesLike]]:
        """BDAT command + octets per chunk (RFC 3030 §2); one LAST chunk when it fits."""
        size = self.options.bdat_chunk_size
        view = memoryview(data)
        total = len(data)
        start = 0
        while True:
            end = min(start + size, total)
            last = end == total
            chunk = view[start:end]
            wire: list[BytesLike] = [self.send(Bdat(size=end - start, last=last))]
            if end > start:
                wire.extend(self.conn.send_with_data_passthrough(MessageData(data=chunk)))
            if self._log and end > start:
                self._record("C", f"<message content, {end - start} octets>")
            yield wire
            if last:
                return
            start = end

    def _bdat_wire(self, data: bytes) -> list[BytesLike]:
        out: list[BytesLike] = []
        for chunk in self._bdat_chunks(data):
            out.extend(chunk)
        return out

    def _collect(self, tx: _Transaction) -> Steps[None]:
        """Read replies until no command is pending, matching each to what it answers
        (``conn.last_answered``)."""
        conn = self.conn
        while conn.pending:
            reply = yield from self._reply()
            answered = conn.last_answered
            if isinstance(answered, RcptTo):
                if tx.rcpt_seen < len(tx.keys):  # RCPT replies come first, in order
                    key = tx.keys[tx.rcpt_seen]
                    tx.rcpt_seen += 1
                    if reply.is_positive:
                        tx.accepted[key] = reply
                        if self.options.lmtp:
                            tx.delivery_queue.append(key)
                    else:
                        tx.refused[key] = reply
                else:  # LMTP: one reply per accepted recipient (RFC 2033 §4.2)
                    key = tx.delivery_queue.pop(0)
                    tx.deliveries += 1
                    if tx.data_reply is None:
                        tx.data_reply = reply
                    if reply.is_positive:
                        tx.accepted[key] = reply
                    else:
                        del tx.accepted[key]
                        tx.refused[key] = reply
            elif isinstance(answered, MailFrom):
                tx.mail_reply = reply
            elif isinstance(answered, Data):
                tx.start_reply = reply
            elif isinstance(answered, EndOfMessage):
                tx.data_reply = reply
                tx.delivery_queue.clear()
            elif isinstance(answered, Bdat) and (answered.last or not reply.is_positive):
                if tx.data_reply is None or tx.data_reply.is_positive:
                    tx.data_reply = reply
                tx.delivery_queue.clear()
            if conn.state is State.CLOSED:  # 421 (RFC 5321 §3.8): nothing more will come
                self.broken = True
                if tx.mail_reply is None:
                    tx.mail_reply = reply
                elif tx.accepted and tx.data_reply is None:
                    tx.data_reply = reply
                for key in tx.delivery_queue:  # LMTP deliveries never reported
                    tx.accepted.pop(key, None)
                    tx.refused[key] = reply
                tx.delivery_queue.clear()
                if tx.rcpt_seen < len(tx.keys):  # RCPTs never answered: no message sent
                    for key in tx.keys[tx.rcpt_seen :]:
                        tx.refused[key] = reply
                    tx.rcpt_seen = len(tx.keys)
                    tx.closed = reply
                return

    # ---------------------------------------------------------------------- batches

    def send_many(self, messages: Iterable[MessageSpec]) -> Steps[list[SendResult]]:
        """Send several messages on this session, one SendResult each, in order.

        A refused message is not an exception: its SendResult has ``ok`` False and the
        refusals (as send_mail's exceptions carry them). Every message is prepared first,
        so a local error (SMTPNotSupportedError, ValueError for a bad address, no
        recipients) raises before anything of the batch is written. A connection-level
        failure raises SMTPBatchInterrupted with the results known so far.

        With PIPELINING and DATA, the content and "." of one message go in the same write
        as the next message's [RSET] MAIL RCPT... DATA group (RFC 2920 §3.1: the content
        may be the first "command" of a group): about one round trip per message instead
        of two. Each message goes as send_mail sends it (its own round trips) otherwise:
        without PIPELINING, in LMTP (RFC 2033 §4.2: a variable number of per-recipient
        replies after the ".", which would make routing the next group's replies depend
        on them; not done), with CHUNKING (MAIL RCPT... BDAT LAST is already one round
        trip, and the core ends a pipelined group at BDAT LAST, so the next message's MAIL
        cannot share the write), and for a message split by LIMITS RCPTMAX.
        """
        batch = [m if isinstance(m, OutgoingMessage) else OutgoingMessage(*m) for m in messages]
        prepared = [
            _Prepared(
                m, *self.prepare(m.sender, m.recipients, m.content, m.mail_params, m.rcpt_params)
            )
            for m in batch
        ]
        results: list[SendResult] = []
        conn = self.conn
        try:
            if (
                prepared
                and self.options.pipelining
                and "PIPELINING" in conn.extensions
                and not self.options.lmtp
                and not prepared[0].bdat  # CHUNKING offered (and not disabled)
            ):
                yield from self._send_pipelined(prepared, results)
            else:
                for item in prepared:
                    self._check_going()
                    yield from self._send_one(item, results)
        except (SMTPError, LocalProtocolError) as exc:
            raise SMTPBatchInterrupted(results, len(prepared), exc) from exc
        return results

    def _check_going(self) -> None:
        if self.broken or self.conn.state in (State.CLOSED, State.ERROR):
            self.broken = True
            raise SMTPServerDisconnected("the session ended before the rest of the batch")

    def _send_one(self, item: _Prepared, results: list[SendResult]) -> Steps[None]:
        """One message as send_mail sends it; its result, whatever it is."""
        result, failures = yield from self._send_prepared(
            item.message.sender, item.keys, item.mail, item.rcpts, item.data, item.bdat
        )
        if not result.ok and (not failures or not result.refused):
            raise SMTPServerDisconnected("the connection closed before the message was sent")
        results.append(result)

    def _send_pipelined(self, prepared: list[_Prepared], results: list[SendResult]) -> Steps[None]:
        """The batch over PIPELINING and DATA: write ``content + "." of message i`` and
        ``[RSET] MAIL RCPT... DATA of message i+1`` together (RFC 2920 §3.1), then read
        the replies: the first answers the "." (replies come in command order), the rest
        the group (``_collect``). Each write holds at most one message's content and one
        group, and every reply is read before the next write, so the server is never
        left with unread replies piling up (the RFC 2920 §3.2 deadlock)."""
        conn = self.conn
        rcptmax = self._capabilities().rcptmax
        tail: list[BytesLike] = []  # content and "." of `held`, not yet written
        held: tuple[_Prepared, _Transaction] | None = None
        for item in prepared:
            self._check_going()
            if rcptmax is not None and len(item.rcpts) > rcptmax:
                if held is not None:  # finish the pipeline, then send_mail's splitting
                    yield Write(coalesce(tail), "data block")
                    tail = []
                    yield from self._end_held(held, results)
                    held = None
                    self._check_going()
                yield from self._send_one(item, results)
                continue
            tx = _Transaction(item.keys)
            # A failed transaction is ended before the next MAIL (RFC 5321 §4.1.1.5), by an
            # RSET at the head of the group. After the "." none is needed: the end of the
            # content ends the transaction whatever its reply (RFC 5321 §4.1.1.4).
            reset = self._reset_due or (held is None and conn.state is not State.READY)
            self._reset_due = False
            wire, tail = tail, []
            try:
                if reset:
                    wire.append(self.send(Rset()))
                wire.append(self.send(item.mail))
                wire.extend(self.send(r) for r in item.rcpts)
                wire.append(self.send(Data()))
            except LocalProtocolError:
                if wire:  # Connection.send() is atomic: only a partial group is lost
                    conn.send_failed()
                    self.broken = True
                raise
            yield Write(coalesce(wire), "command" if held is None else "data block")
            if held is not None:
                yield from self._end_held(held, results)
                held = None
                self._check_going()  # a 421 to the ".": the group got no reply
            yield from self._collect(tx)
            if not self.broken and conn.state is State.DATA:
                if not tx.accepted:  # as _transaction: the core cannot send a lone "."
                    self.broken = True
                    raise SMTPProtocolViolation("354 after every recipient was refused")
                try:
                    tail = conn.send_with_data_passthrough(MessageData(data=item.data))
                    tail.append(conn.send(EndOfMessage()))
                except LocalProtocolError:
                    conn.send_failed()
                    self.broken = True
                    raise
                if self._log:
                    self._record("C", f"<message content, {len(item.data)} octets>")
                    self._record("C", ".")
                held = (item, tx)
                continue
            tx.finish()  # refused before the content, or a 421 closed the session
            if tx.failure is not None:
                self._reset_due = True
            results.append(_send_result(item.message.sender, item.keys, [tx]))
        if held is not None:
            yield Write(coalesce(tail), "data block")
            yield from self._end_held(held, results)

    def _end_held(
        self, held: tuple[_Prepared, _Transaction], results: list[SendResult]
    ) -> Steps[None]:
        """Read the reply to the "." of the held message (the oldest command pending)."""
        item, tx = held
        tx.data_reply = yield from self._reply()
        if not isinstance(self.conn.last_answered, EndOfMessage):  # pragma: no cover - a bug
            self.broken = True
            raise SMTPProtocolViolation("a reply out of order in the batch")
        if self.conn.state is State.CLOSED:  # 421 (RFC 5321 §3.8)
            self.broken = True
        tx.finish()
        results.append(_send_result(item.message.sender, item.keys, [tx]))

    # --------------------------------------------------------------- other commands

    def command(self, command: Command) -> Steps[Reply]:
        """Send any command outside a transaction (NOOP, RSET, VRFY, HELP...) and return
        its reply, whatever the code."""
        if not self.usable:
            raise SMTPServerDisconnected("the session is not usable (closed or broken)")
        return (yield from self._exchange(command))

    def quit(self) -> Steps[Reply | None]:
        """QUIT (RFC 5321 §4.1.1.10) when the session allows it; None when it does not or
        the server closed without answering."""
        if not self.usable:
            return None
        try:
            reply = yield from self._exchange(Quit())
        except SMTPServerDisconnected:
            return None
        return reply


# ------------------------------------------------------------------ client front ends


class ClientBase(abc.ABC):
    """What every client flavour shares: the constructor (the options, checked into a
    ClientOptions, and the engine) and the read-only views of the engine. A flavour sets
    up its own transport state in ``_init_transport()`` and says whether it is
    ``connected``."""

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        tls: TLSMode | None = None,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        local_hostname: str | None = None,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        authzid: str | None = None,
        auth_mechanisms: Sequence[str] | None = None,
        allow_plaintext_auth: bool = False,
        lmtp: bool = False,
        timeout: float | None = None,
        timeouts: Mapping[str, float] | None = None,
        deadline: float | None = None,
        source_address: tuple[str, int] | None = None,
        pipelining: bool = True,
        chunking: bool = True,
        bdat_chunk_size: int = DEFAULT_BDAT_CHUNK,
        transcript: bool = False,
        on_transcript: Callable[[TranscriptEntry], None] | None = None,
    ) -> None:
        self._options = ClientOptions(
            host=host,
            port=port,
            tls=resolve_tls_mode(tls, port),
            server_hostname=server_hostname,
            local_hostname=local_hostname,
            username=username,
            password=password,
            token=token,
            authzid=authzid,
            auth_mechanisms=auth_mechanisms,
            allow_plaintext_auth=allow_plaintext_auth,
            lmtp=lmtp,
            timeout=timeout,
            timeouts=dict(timeouts or {}),
            deadline=deadline,
            pipelining=pipelining,
            chunking=chunking,
            bdat_chunk_size=bdat_chunk_size,
            transcript=transcript,
            on_transcript=on_transcript,
        )
        self._ssl_context = ssl_context
        self._source_address = source_address
        self._engine = ClientEngine(self._options)
        self._init_transport()

    @abc.abstractmethod
    def _init_transport(self) -> None:
        """The flavour's own state before connecting (socket, transport, lock...)."""

    @property
    @abc.abstractmethod
    def connected(self) -> bool:
        """A connection to the server is open."""

    def __repr__(self) -> str:
        opts = self._options
        state = "connected" if self.connected else "closed"
        return f"<{type(self).__name__} {opts.host}:{opts.port} {opts.tls.name} {state}>"

    @property
    def greeting(self) -> Greeting | None:
        """The server's greeting (RFC 5321 §4.3.2)."""
        return self._engine.greeting

    @property
    def extensions(self) -> Extensions:
        """What the server advertised in its last EHLO/LHLO reply (empty after HELO)."""
        return self._engine.conn.extensions

    @property
    def esmtp(self) -> bool:
        """The server accepted EHLO/LHLO (False after the fallback to HELO)."""
        return self._engine.esmtp

    @property
    def tls_active(self) -> bool:
        return self._engine.conn.tls_active

    @property
    def authenticated(self) -> bool:
        return self._engine.conn.authenticated

    @property
    def transcript(self) -> list[TranscriptEntry]:
        """The dialogue so far when ``transcript=True`` (AUTH data redacted)."""
        return self._engine.transcript

    @property
    def connection(self) -> Connection:
        """The core Connection (read-only use: state, pending, extensions, ...)."""
        return self._engine.conn


_AsyncClient = TypeVar("_AsyncClient", bound="AsyncClientCommands")


class AsyncClientCommands(ClientBase):
    """The commands of the async flavours (asyncio, AnyIO): each runs engine steps through
    the flavour's own ``_locked`` I/O loop; ``async with`` connects, and QUITs and closes
    at the end."""

    @abc.abstractmethod
    async def _locked(self, steps: Steps[T]) -> T:
        """Run ``steps`` on the connection, one operation at a time."""

    @abc.abstractmethod
    async def connect(self) -> None:
        """Connect, read the greeting, EHLO, STARTTLS and AUTH as configured."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the connection (no QUIT). Safe to call more than once."""

    async def __aenter__(self: _AsyncClient) -> _AsyncClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.connected and self._engine.usable:
                with contextlib.suppress(SMTPError):
                    await self.quit()
        finally:
            await self.aclose()

    async def quit(self) -> Reply | None:
        """QUIT (RFC 5321 §4.1.1.10) and close. Returns the 221 reply, or None when the
        session was not in a state to QUIT or the server closed first."""
        if not self.connected:
            return None
        try:
            return await self._locked(self._engine.quit())
        finally:
            await self.aclose()

    async def send_message(
        self,
        msg: email.message.Message,
        from_addr: str | None = None,
        to_addrs: str | Sequence[str] | None = None,
        *,
        mail_params: Mapping[str, str | None] | None = None,
        rcpt_params: Mapping[str, str | None] | None = None,
    ) -> SendResult:
        """Send an email.message.Message, envelope from its headers (as
        ``smtplib.SMTP.send_message``); see SMTPClient.send_message."""
        sender, recipients, content, international = flatten_message(msg, from_addr, to_addrs)
        return await self._locked(
            self._engine.send_mail(
                sender, recipients, content, mail_params, rcpt_params, international=international
            )
        )

    async def sendmail(
        self,
        from_addr: str,
        to_addrs: str | Iterable[str],
        msg: bytes | bytearray | memoryview | str,
        *,
        mail_params: Mapping[str, str | None] | None = None,
        rcpt_params: Mapping[str, str | None] | None = None,
    ) -> SendResult:
        """Send RFC 5322 message content; see SMTPClient.sendmail."""
        return await self._locked(
            self._engine.send_mail(
                from_addr, as_recipients(to_addrs), as_content(msg), mail_params, rcpt_params
            )
        )

    async def sendmail_many(self, messages: Iterable[MessageSpec]) -> list[SendResult]:
        """Send a batch of messages, about one round trip each on a PIPELINING server;
        one SendResult per message, refusals included; see SMTPClient.sendmail_many.
        Raises SMTPBatchInterrupted (with ``.results``) when the connection fails."""
        return await self._locked(self._engine.send_many(messages))

    async def noop(self) -> Reply:
        """NOOP (RFC 5321 §4.1.1.9); the reply whatever its code."""
        return await self._locked(self._engine.command(Noop()))

    async def rset(self) -> Reply:
        """RSET (RFC 5321 §4.1.1.5): abort the current transaction."""
        return await self._locked(self._engine.command(Rset()))

    async def vrfy(self, text: str) -> Reply:
        """VRFY (RFC 5321 §4.1.1.6)."""
        return await self._locked(self._engine.command(Vrfy(text=text)))

    async def help(self, topic: str | None = None) -> Reply:
        """HELP (RFC 5321 §4.1.1.8)."""
        return await self._locked(self._engine.command(Help(topic=topic)))
