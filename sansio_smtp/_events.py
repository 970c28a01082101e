# Every event class, nothing else.
#
# Events are frozen, slotted attrs classes (hashable; copy with attrs.evolve). The same
# classes flow in both directions: the client sends Ehlo and the server receives an equal
# Ehlo. Field validators are cheap type/range checks; the grammar is checked once per
# direction, by the writer on send and by the reader on receive.
#
# Command arguments are str (ASCII, or UTF-8 once SMTPUTF8 is in effect); message content
# is bytes. Names follow the SMTP verbs of RFC 5321 §4.1.1.
from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar, final

import attrs

from . import _mailparams as _mp  # imports this module back: use only at call time
from ._address import Address, coerce_address, coerce_reverse_path
from ._params import Params
from ._status import EnhancedStatusCode, ReplyClass

if TYPE_CHECKING:
    from ._repr import PrettyPrinter

__all__ = [
    "Auth",
    "AuthResponse",
    "Bdat",
    "Command",
    "ConnectionClosed",
    "Data",
    "Ehlo",
    "EndOfMessage",
    "Event",
    "Expn",
    "Greeting",
    "Helo",
    "Help",
    "InvalidCommand",
    "InvalidMessage",
    "Lhlo",
    "MailFrom",
    "MessageData",
    "Noop",
    "Quit",
    "RcptTo",
    "Reply",
    "Rset",
    "StartTLS",
    "Vrfy",
]

BytesLike = bytes | bytearray | memoryview


class Event:
    """Base class of all events."""

    __slots__ = ()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # IPython's pretty printer takes a class's own __repr__ (attrs writes one per
        # class) over an inherited _repr_pretty_, so each event class gets its own.
        if "_repr_pretty_" not in cls.__dict__:
            cls._repr_pretty_ = Event._repr_pretty_  # type: ignore[method-assign]

    # Rich display in notebooks and IPython (rendering lives in _repr, imported lazily).
    def _repr_html_(self) -> str:
        from ._repr import event_html

        return event_html(self)

    def _repr_pretty_(self, p: PrettyPrinter, cycle: bool) -> None:
        from ._repr import event_pretty

        event_pretty(self, p, cycle)


class Command(Event):
    """Base class of the commands a client sends and a server receives."""

    __slots__ = ()
    #: the SMTP verb, upper case
    verb: ClassVar[str] = ""


# ---------------------------------------------------------------------------- commands


def _coerce_params(value: Params | Mapping[str, str | None] | None) -> Params:
    return Params.coerce(value)


def _coerce_enhanced(value: EnhancedStatusCode | str | None) -> EnhancedStatusCode | None:
    return EnhancedStatusCode.coerce(value)


@final
@attrs.frozen(kw_only=True)
class Helo(Command):
    """``HELO domain`` (RFC 5321 §4.1.1.1). ``domain`` is the client's claimed identity."""

    verb: ClassVar[str] = "HELO"
    domain: str


@final
@attrs.frozen(kw_only=True)
class Ehlo(Command):
    """``EHLO domain`` (RFC 5321 §4.1.1.1): start an ESMTP session and ask for extensions."""

    verb: ClassVar[str] = "EHLO"
    domain: str


@final
@attrs.frozen(kw_only=True)
class MailFrom(Command):
    """``MAIL FROM:<reverse-path> [params]`` (RFC 5321 §4.1.1.2).

    ``reverse_path`` is None for the null path ``<>`` (bounces, RFC 5321 §4.5.5); a str is
    parsed into an Address. ``params`` maps upper-cased ESMTP keywords to values in wire
    order (a dict or pairs are converted).
    """

    verb: ClassVar[str] = "MAIL"
    reverse_path: Address | None = attrs.field(converter=coerce_reverse_path)
    params: Params = attrs.field(factory=Params, converter=_coerce_params)

    # Typed views of the parameters (ValueError when one is malformed; a server's
    # received MailFrom has been validated already).
    @property
    def size(self) -> int | None:
        """SIZE= (RFC 1870): the client's estimate of the message size."""
        return _mp.size(self.params)

    @property
    def body(self) -> _mp.Body | None:
        """BODY= 7BIT / 8BITMIME / BINARYMIME (RFC 6152, RFC 3030)."""
        return _mp.body(self.params)

    @property
    def smtputf8(self) -> bool:
        """SMTPUTF8 (RFC 6531 §3.4)."""
        return _mp.smtputf8(self.params)

    @property
    def requiretls(self) -> bool:
        """REQUIRETLS (RFC 8689)."""
        return _mp.requiretls(self.params)

    @property
    def ret(self) -> _mp.Ret | None:
        """RET= FULL / HDRS (RFC 3461 §4.3)."""
        return _mp.ret(self.params)

    @property
    def envid(self) -> str | None:
        """ENVID=, xtext-decoded (RFC 3461 §4.4)."""
        return _mp.envid(self.params)

    @property
    def auth(self) -> str | None:
        """AUTH=, xtext-decoded; None for AUTH=<> or none (RFC 4954 §5)."""
        return _mp.auth(self.params)

    @property
    def mt_priority(self) -> int | None:
        """MT-PRIORITY= -9..9 (RFC 6710)."""
        return _mp.mt_priority(self.params)

    @property
    def deliver_by(self) -> _mp.DeliverBy | None:
        """BY= (DELIVERBY, RFC 2852)."""
        return _mp.deliver_by(self.params)


@final
@attrs.frozen(kw_only=True)
class RcptTo(Command):
    """``RCPT TO:<forward-path> [params]`` (RFC 5321 §4.1.1.3).

    ``forward_path`` is an Address; ``<Postmaster>`` is ``Address("Postmaster", None)``.
    Source routes are dropped when parsed (RFC 5321 Appendix C).
    """

    verb: ClassVar[str] = "RCPT"
    forward_path: Address = attrs.field(converter=coerce_address)
    params: Params = attrs.field(factory=Params, converter=_coerce_params)

    @property
    def notify(self) -> frozenset[_mp.Notify] | None:
        """NOTIFY= (RFC 3461 §4.1)."""
        return _mp.notify(self.params)

    @property
    def orcpt(self) -> _mp.OriginalRecipient | None:
        """ORCPT=, decoded (RFC 3461 §4.2)."""
        return _mp.orcpt(self.params)


@final
@attrs.frozen(kw_only=True)
class Data(Command):
    """``DATA`` (RFC 5321 §4.1.1.4). A 354 reply opens the message content."""

    verb: ClassVar[str] = "DATA"


@final
@attrs.frozen(kw_only=True)
class Rset(Command):
    """``RSET`` (RFC 5321 §4.1.1.5): abort the current mail transaction."""

    verb: ClassVar[str] = "RSET"


@final
@attrs.frozen(kw_only=True)
class Vrfy(Command):
    """``VRFY string`` (RFC 5321 §4.1.1.6)."""

    verb: ClassVar[str] = "VRFY"
    text: str


@final
@attrs.frozen(kw_only=True)
class Expn(Command):
    """``EXPN string`` (RFC 5321 §4.1.1.7)."""

    verb: ClassVar[str] = "EXPN"
    text: str


@final
@attrs.frozen(kw_only=True)
class Help(Command):
    """``HELP [string]`` (RFC 5321 §4.1.1.8)."""

    verb: ClassVar[str] = "HELP"
    topic: str | None = None


@final
@attrs.frozen(kw_only=True)
class Noop(Command):
    """``NOOP [string]`` (RFC 5321 §4.1.1.9); the string is ignored by the server."""

    verb: ClassVar[str] = "NOOP"
    text: str | None = None


@final
@attrs.frozen(kw_only=True)
class Quit(Command):
    """``QUIT`` (RFC 5321 §4.1.1.10): the server answers 221 and closes."""

    verb: ClassVar[str] = "QUIT"


@final
@attrs.frozen(kw_only=True)
class Lhlo(Command):
    """``LHLO domain`` (RFC 2033 §4.1): LMTP's EHLO."""

    verb: ClassVar[str] = "LHLO"
    domain: str


@final
@attrs.frozen(kw_only=True)
class StartTLS(Command):
    """``STARTTLS`` (RFC 3207 §4). After its 220 both sides pause for the TLS handshake;
    the adapter calls ``Connection.tls_established()`` when it is done."""

    verb: ClassVar[str] = "STARTTLS"


def _check_chunk_size(_inst: object, _attr: object, value: int) -> None:
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"BDAT chunk size must be a non-negative int, not {value!r}")


@final
@attrs.frozen(kw_only=True)
class Bdat(Command):
    """``BDAT chunk-size [LAST]`` (RFC 3030 §2): the next ``size`` octets are message
    content, sent as MessageData, with no dot-stuffing and no line-length limit. The
    reply comes after the chunk; after ``last`` it is the transaction's final reply."""

    verb: ClassVar[str] = "BDAT"
    size: int = attrs.field(validator=_check_chunk_size)
    last: bool = False


def _upper(value: str) -> str:
    return value.upper()


def _redacted(value: object) -> str:
    return "None" if value is None else "<redacted>"


@final
@attrs.frozen(kw_only=True)
class Auth(Command):
    """``AUTH mechanism [initial-response]`` (RFC 4954 §4).

    ``mechanism`` is a SASL mechanism name, upper-cased (RFC 4422 §3.1).
    ``initial_response`` is the decoded initial response: None when absent, b"" for the
    empty one (sent as "="). Shown redacted in reprs.
    """

    verb: ClassVar[str] = "AUTH"
    mechanism: str = attrs.field(converter=_upper)
    initial_response: bytes | None = attrs.field(default=None, repr=_redacted)


@final
@attrs.frozen(kw_only=True)
class AuthResponse(Command):
    """The client's answer to a 334 challenge during AUTH (RFC 4954 §4): ``data`` decoded
    from base64, or None to cancel the exchange (sent as "*"; the server answers 501).
    Shown redacted in reprs."""

    verb: ClassVar[str] = "AUTH response"
    data: bytes | None = attrs.field(repr=_redacted)


def _line_repr(line: bytes) -> str:
    """An AUTH line's initial response is a secret: show only the verb and mechanism."""
    if line[:5].upper() == b"AUTH ":
        words = line.split(b" ", 2)
        return repr(b" ".join(words[:2]) + (b" <redacted>" if len(words) > 2 else b""))
    return repr(line)


@final
@attrs.frozen(kw_only=True)
class InvalidCommand(Event):
    """A command line the server could not accept: unknown verb (500), bad syntax (501),
    out of sequence (503), unknown parameter (555), line too long (500)...

    Only ever *received* by a server. The dialogue goes on: answer it (usually with
    ``reply_hint``) and read the next command. ``line`` is the raw line without its line
    ending, possibly truncated when it was too long. ``command`` is the command the line
    parsed to when it was refused for a rule rather than its syntax (sequence, policy,
    parameters, limits); the state then moves on the reply exactly as the client's does
    for that command.
    """

    line: bytes = attrs.field(repr=_line_repr)
    reply_hint: Reply
    command: Command | None = None


# ----------------------------------------------------------------------------- replies


def _check_code(_inst: object, _attr: object, code: int) -> None:
    # RFC 5321 §4.2: first digit 2-5, second digit 0-5.
    if not isinstance(code, int) or not (200 <= code <= 559 and (code // 10) % 10 <= 5):
        raise ValueError(f"invalid reply code {code!r}")


def _check_enhanced_class(inst: Reply, _attr: object, value: EnhancedStatusCode | None) -> None:
    # RFC 3463 §2 / RFC 2034 §4: the class matches the reply code's first digit (2, 4, 5);
    # 3xx replies carry none.
    if value is not None and value.class_ != inst.code // 100:
        raise ValueError(f"enhanced status code {value} cannot go with reply code {inst.code}")


def _coerce_lines(value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split("\n"))
    lines = tuple(value)
    return lines if lines else ("",)


class _ReplyFields(Event):
    __slots__ = ()
    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """All text lines joined with newlines (enhanced status codes removed)."""
        return "\n".join(self.lines)

    @property
    def reply_class(self) -> ReplyClass:
        return ReplyClass.of(self.code)

    @property
    def is_positive(self) -> bool:
        """2xx: the command succeeded."""
        return 200 <= self.code < 300

    @property
    def is_intermediate(self) -> bool:
        """3xx: go on (354 after DATA, 334 during AUTH)."""
        return 300 <= self.code < 400

    @property
    def is_transient(self) -> bool:
        """4xx: failed for now; the same command may work later (RFC 5321 §4.2.1)."""
        return 400 <= self.code < 500

    @property
    def is_permanent(self) -> bool:
        """5xx: failed; do not repeat the same command unchanged (RFC 5321 §4.2.1)."""
        return self.code >= 500


@final
@attrs.frozen(kw_only=True)
class Reply(_ReplyFields):
    """A server reply (RFC 5321 §4.2): ``Reply(code=250, lines="OK")``.

    - ``code``: three digits, first 2-5, second 0-5.
    - ``lines``: the text of each line of a multi-line reply, without code, separator or
      enhanced status code. A str is split at newlines. At least one line (maybe empty).
    - ``enhanced``: the RFC 3463 enhanced status code (RFC 2034 puts it at the start of
      every line's text), or None. A str such as ``"5.1.1"`` is parsed.
    """

    code: int = attrs.field(validator=_check_code)
    lines: tuple[str, ...] = attrs.field(default=("",), converter=_coerce_lines)
    enhanced: EnhancedStatusCode | None = attrs.field(
        default=None, converter=_coerce_enhanced, validator=_check_enhanced_class
    )

    @property
    def challenge(self) -> bytes:
        """The decoded SASL challenge of a 334 reply during AUTH (RFC 4954 §4).
        Raises ValueError for another code or text that is not base64."""
        if self.code != 334:
            raise ValueError(f"a {self.code} reply is not an AUTH challenge")
        try:
            return base64.b64decode(self.lines[0].strip(), validate=True)
        except binascii.Error as exc:
            raise ValueError(f"334 challenge is not base64: {exc}") from None

    @classmethod
    def _trusted(
        cls, code: int, lines: tuple[str, ...], enhanced: EnhancedStatusCode | None
    ) -> Reply:
        """A Reply from values the reply reader has already checked (code range, enhanced
        class): skips the validators on the client's hot path."""
        self = object.__new__(cls)
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "lines", lines)
        object.__setattr__(self, "enhanced", enhanced)
        return self

    @classmethod
    def auth_challenge(cls, data: bytes) -> Reply:
        """``334 <base64 data>``: a SASL challenge from the server (RFC 4954 §4)."""
        return cls(code=334, lines=base64.b64encode(data).decode("ascii"))

    def __str__(self) -> str:
        esc = f"{self.enhanced} " if self.enhanced else ""
        return "\n".join(f"{self.code} {esc}{line}".rstrip() for line in self.lines)


def _check_greeting_code(_inst: object, _attr: object, code: int) -> None:
    # RFC 5321 §4.3.2: connection establishment S: 220, E: 554; §3.8: 421 at any time.
    if code not in (220, 421, 554):
        raise ValueError(f"a greeting is 220, 554 or 421, not {code!r}")


@final
@attrs.frozen(kw_only=True)
class Greeting(_ReplyFields):
    """The server's opening reply (RFC 5321 §3.1, §4.3.2): 220 ready, 554 no service
    (the server then only accepts QUIT), 421 closing. ``lines[0]`` starts with the server's
    domain (RFC 5321 §4.2 Greeting). No enhanced status code: RFC 2034 §3 leaves it out of
    the greeting."""

    code: int = attrs.field(default=220, validator=_check_greeting_code)
    lines: tuple[str, ...] = attrs.field(default=("",), converter=_coerce_lines)

    def __str__(self) -> str:
        return "\n".join(f"{self.code} {line}".rstrip() for line in self.lines)


# --------------------------------------------------------------------- message content


@final
@attrs.frozen(kw_only=True)
class MessageData(Event):
    """A piece of message content (after DATA's 354).

    Sent by the client as the caller's bytes (any chunking; dot-stuffing and line-ending
    normalisation happen in the writer). Received by the server un-stuffed, in chunks of
    at most ``Config.max_data_chunk`` bytes.
    """

    data: BytesLike = attrs.field(repr=lambda d: f"<{len(d)} bytes>")


@final
@attrs.frozen(kw_only=True)
class EndOfMessage(Event):
    """The end of the message content: the client writes ``<CRLF>.<CRLF>``; the server
    emits this when it read one, and then answers with the transaction's final reply."""


@final
@attrs.frozen(kw_only=True)
class InvalidMessage(Event):
    """Emitted by a server *instead of* EndOfMessage when the content broke a rule (too
    large, a line too long, a bare CR/LF under the reject policy). The content up to the
    terminator has been consumed; MessageData already emitted must be discarded. Answer it,
    usually with ``reply_hint``; the transaction is over either way."""

    reason: str
    reply_hint: Reply


@final
@attrs.frozen(kw_only=True)
class ConnectionClosed(Event):
    """The peer closed the connection (``receive_data(b"")``)."""
