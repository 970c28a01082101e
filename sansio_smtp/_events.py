# Every event class, nothing else.
#
# Events are frozen, slotted attrs classes (hashable; copy with attrs.evolve). The same
# classes flow in both directions: the client sends Ehlo and the server receives an equal
# Ehlo. Field validators are cheap type/range checks; the grammar is checked once per
# direction, by the writer on send and by the reader on receive.
#
# Command arguments are str (ASCII, or UTF-8 once SMTPUTF8 is in effect); message content
# is bytes. Names follow the SMTP verbs of RFC 5321 §4.1.1.
#
# Event, Reply and Greeting live one layer down, in _reply, with the reply-line grammar
# (everything that speaks of a reply needs them, the errors too); they are re-exported
# here. Event classes are declared repr=False: Event.__repr__ writes attrs' repr for all
# of them, and Event's _repr_html_/_repr_pretty_ look their renderer up in _display.
# AUTH payloads are shown redacted by the one rule of _redact.
from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, final

import attrs

from . import _mailparams as _mp
from ._address import Address, coerce_address, coerce_reverse_path
from ._params import Params
from ._redact import redact_client_line, redacted_value
from ._reply import Event, Greeting, Reply

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


class Command(Event):
    """Base class of the commands a client sends and a server receives."""

    __slots__ = ()
    #: the SMTP verb, upper case
    verb: ClassVar[str] = ""


# ---------------------------------------------------------------------------- commands


# MAIL and RCPT are built once per command on a server: their converters are one call
# each, and a command without parameters shares one empty Params (it is immutable).
_NO_PARAMS = Params()


def _coerce_params(value: Params | Mapping[str, str | None] | None) -> Params:
    return value if isinstance(value, Params) else Params(value)


@final
@attrs.frozen(kw_only=True, repr=False)
class Helo(Command):
    """``HELO domain`` (RFC 5321 §4.1.1.1). ``domain`` is the client's claimed identity."""

    verb: ClassVar[str] = "HELO"
    domain: str


@final
@attrs.frozen(kw_only=True, repr=False)
class Ehlo(Command):
    """``EHLO domain`` (RFC 5321 §4.1.1.1): start an ESMTP session and ask for extensions."""

    verb: ClassVar[str] = "EHLO"
    domain: str


@final
@attrs.frozen(kw_only=True, repr=False)
class MailFrom(Command):
    """``MAIL FROM:<reverse-path> [params]`` (RFC 5321 §4.1.1.2).

    ``reverse_path`` is None for the null path ``<>`` (bounces, RFC 5321 §4.5.5); a str is
    parsed into an Address. ``params`` maps upper-cased ESMTP keywords to values in wire
    order (a dict or pairs are converted).
    """

    verb: ClassVar[str] = "MAIL"
    reverse_path: Address | None = attrs.field(converter=coerce_reverse_path)
    params: Params = attrs.field(default=_NO_PARAMS, converter=_coerce_params)

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
@attrs.frozen(kw_only=True, repr=False)
class RcptTo(Command):
    """``RCPT TO:<forward-path> [params]`` (RFC 5321 §4.1.1.3).

    ``forward_path`` is an Address; ``<Postmaster>`` is ``Address("Postmaster", None)``.
    Source routes are dropped when parsed (RFC 5321 Appendix C).
    """

    verb: ClassVar[str] = "RCPT"
    forward_path: Address = attrs.field(converter=coerce_address)
    params: Params = attrs.field(default=_NO_PARAMS, converter=_coerce_params)

    @property
    def notify(self) -> frozenset[_mp.Notify] | None:
        """NOTIFY= (RFC 3461 §4.1)."""
        return _mp.notify(self.params)

    @property
    def orcpt(self) -> _mp.OriginalRecipient | None:
        """ORCPT=, decoded (RFC 3461 §4.2)."""
        return _mp.orcpt(self.params)


@final
@attrs.frozen(kw_only=True, repr=False)
class Data(Command):
    """``DATA`` (RFC 5321 §4.1.1.4). A 354 reply opens the message content."""

    verb: ClassVar[str] = "DATA"


@final
@attrs.frozen(kw_only=True, repr=False)
class Rset(Command):
    """``RSET`` (RFC 5321 §4.1.1.5): abort the current mail transaction."""

    verb: ClassVar[str] = "RSET"


@final
@attrs.frozen(kw_only=True, repr=False)
class Vrfy(Command):
    """``VRFY string`` (RFC 5321 §4.1.1.6)."""

    verb: ClassVar[str] = "VRFY"
    text: str


@final
@attrs.frozen(kw_only=True, repr=False)
class Expn(Command):
    """``EXPN string`` (RFC 5321 §4.1.1.7)."""

    verb: ClassVar[str] = "EXPN"
    text: str


@final
@attrs.frozen(kw_only=True, repr=False)
class Help(Command):
    """``HELP [string]`` (RFC 5321 §4.1.1.8)."""

    verb: ClassVar[str] = "HELP"
    topic: str | None = None


@final
@attrs.frozen(kw_only=True, repr=False)
class Noop(Command):
    """``NOOP [string]`` (RFC 5321 §4.1.1.9); the string is ignored by the server."""

    verb: ClassVar[str] = "NOOP"
    text: str | None = None


@final
@attrs.frozen(kw_only=True, repr=False)
class Quit(Command):
    """``QUIT`` (RFC 5321 §4.1.1.10): the server answers 221 and closes."""

    verb: ClassVar[str] = "QUIT"


@final
@attrs.frozen(kw_only=True, repr=False)
class Lhlo(Command):
    """``LHLO domain`` (RFC 2033 §4.1): LMTP's EHLO."""

    verb: ClassVar[str] = "LHLO"
    domain: str


@final
@attrs.frozen(kw_only=True, repr=False)
class StartTLS(Command):
    """``STARTTLS`` (RFC 3207 §4). After its 220 both sides pause for the TLS handshake;
    the adapter calls ``Connection.tls_established()`` when it is done."""

    verb: ClassVar[str] = "STARTTLS"


def _check_chunk_size(_inst: object, _attr: object, value: int) -> None:
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"BDAT chunk size must be a non-negative int, not {value!r}")


@final
@attrs.frozen(kw_only=True, repr=False)
class Bdat(Command):
    """``BDAT chunk-size [LAST]`` (RFC 3030 §2): the next ``size`` octets are message
    content, sent as MessageData, with no dot-stuffing and no line-length limit. The
    reply comes after the chunk; after ``last`` it is the transaction's final reply."""

    verb: ClassVar[str] = "BDAT"
    size: int = attrs.field(validator=_check_chunk_size)
    last: bool = False


def _upper(value: str) -> str:
    return value.upper()


@final
@attrs.frozen(kw_only=True, repr=False)
class Auth(Command):
    """``AUTH mechanism [initial-response]`` (RFC 4954 §4).

    ``mechanism`` is a SASL mechanism name, upper-cased (RFC 4422 §3.1).
    ``initial_response`` is the decoded initial response: None when absent, b"" for the
    empty one (sent as "="). Shown redacted in reprs.
    """

    verb: ClassVar[str] = "AUTH"
    mechanism: str = attrs.field(converter=_upper)
    initial_response: bytes | None = attrs.field(default=None, repr=redacted_value)


@final
@attrs.frozen(kw_only=True, repr=False)
class AuthResponse(Command):
    """The client's answer to a 334 challenge during AUTH (RFC 4954 §4): ``data`` decoded
    from base64, or None to cancel the exchange (sent as "*"; the server answers 501).
    Shown redacted in reprs."""

    verb: ClassVar[str] = "AUTH response"
    data: bytes | None = attrs.field(repr=redacted_value)


def _line_repr(line: bytes) -> str:
    """An AUTH line's initial response is a secret: show only the verb and mechanism."""
    return repr(redact_client_line(line))


@final
@attrs.frozen(kw_only=True, repr=False)
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


# --------------------------------------------------------------------- message content


@final
@attrs.frozen(kw_only=True, repr=False)
class MessageData(Event):
    """A piece of message content (after DATA's 354).

    Sent by the client as the caller's bytes (any chunking; dot-stuffing and line-ending
    normalisation happen in the writer). Received by the server un-stuffed, in chunks of
    at most ``Config.max_data_chunk`` bytes.
    """

    data: BytesLike = attrs.field(repr=lambda d: f"<{len(d)} bytes>")


@final
@attrs.frozen(kw_only=True, repr=False)
class EndOfMessage(Event):
    """The end of the message content: the client writes ``<CRLF>.<CRLF>``; the server
    emits this when it read one, and then answers with the transaction's final reply."""


@final
@attrs.frozen(kw_only=True, repr=False)
class InvalidMessage(Event):
    """Emitted by a server *instead of* EndOfMessage when the content broke a rule (too
    large, a line too long, a bare CR/LF under the reject policy). The content up to the
    terminator has been consumed; MessageData already emitted must be discarded. Answer it,
    usually with ``reply_hint``; the transaction is over either way."""

    reason: str
    reply_hint: Reply


@final
@attrs.frozen(kw_only=True, repr=False)
class ConnectionClosed(Event):
    """The peer closed the connection (``receive_data(b"")``)."""
