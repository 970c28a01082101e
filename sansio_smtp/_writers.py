# Events -> bytes. Every string is checked against the grammar (or at least for control
# characters) here, once, before it can reach the wire: CR, LF and other controls in an
# argument raise LocalProtocolError, so command injection is impossible by construction.
# WRITERS[event type] gives the writer of each command's line.
#
# Message content: DataWriter normalises bare CR/LF to CRLF (or refuses them), dot-stuffs
# (RFC 5321 §4.5.2), and writes the terminator. A chunk that needs no change is returned as
# the caller's own object, so large bodies are not copied. ChunkWriter counts the octets of
# a BDAT chunk (RFC 3030 §2), which go out as they are.
from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping

from . import _abnf
from ._address import Address
from ._errors import LocalProtocolError
from ._events import (
    Auth,
    AuthResponse,
    Bdat,
    BytesLike,
    Command,
    Data,
    Ehlo,
    Expn,
    Greeting,
    Helo,
    Help,
    Lhlo,
    MailFrom,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
    StartTLS,
    Vrfy,
)
from ._extensions import Extensions
from ._lines import has_bare_line_ending, normalize_line_endings, scan_line_lengths
from ._params import Params
from ._replies import DEFAULT_REPLIES
from ._util import remember
from .config import DEFAULT_MAX_REPLY_LINE, MAX_AUTH_LINE, Config, LineEndingPolicy

__all__ = [
    "PREBUILT_REPLIES",
    "WRITERS",
    "ChunkWriter",
    "DataWriter",
    "write_command",
    "write_reply",
]

_TOKEN_RE = re.compile(_abnf.TOKEN + r"\Z")
_STRING_RE = re.compile(_abnf.STRING + r"\Z")
_MECHANISM_RE = re.compile(r"[A-Z0-9_-]{1,20}\Z")  # RFC 4422 §3.1
# RFC 5321 §4.2 textstring = 1*(%d09 / %d32-126); RFC 6531 §3.7.4.2 allows UTF-8 text.
_BAD_REPLY_TEXT_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _path(address: Address | None, *, utf8: bool) -> str:
    if address is None:
        return "<>"
    if not utf8 and not address.is_ascii:
        raise LocalProtocolError(
            f"{address} needs SMTPUTF8: add the SMTPUTF8 parameter to MAIL (RFC 6531 §3.4)"
        )
    return f"<{address}>"


def _params(params: Params) -> str:
    return " " + params.to_wire() if params else ""


def _checked(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.match(value):
        raise LocalProtocolError(f"invalid {what}: {value!r}")
    return value


def _hello_line(event: Command, utf8_transaction: bool) -> str:
    assert isinstance(event, (Ehlo, Helo, Lhlo))
    return f"{event.verb} {_checked(event.domain, _TOKEN_RE, 'HELO/EHLO domain')}"


def _mail_line(event: Command, utf8_transaction: bool) -> str:
    assert isinstance(event, MailFrom)
    utf8 = "SMTPUTF8" in event.params
    return f"MAIL FROM:{_path(event.reverse_path, utf8=utf8)}{_params(event.params)}"


def _rcpt_line(event: Command, utf8_transaction: bool) -> str:
    assert isinstance(event, RcptTo)
    path = _path(event.forward_path, utf8=utf8_transaction)
    return f"RCPT TO:{path}{_params(event.params)}"


def _string_line(event: Command, utf8_transaction: bool) -> str:
    assert isinstance(event, (Vrfy, Expn))
    return f"{event.verb} {_checked(event.text, _STRING_RE, event.verb + ' argument')}"


def _help_line(event: Command, utf8_transaction: bool) -> str:
    assert isinstance(event, Help)
    if event.topic is None:
        return "HELP"
    return f"HELP {_checked(event.topic, _STRING_RE, 'HELP argument')}"


def _noop_line(event: Command, utf8_transaction: bool) -> str:
    assert isinstance(event, Noop)
    if event.text is None:
        return "NOOP"
    return f"NOOP {_checked(event.text, _STRING_RE, 'NOOP argument')}"


def _verb_line(event: Command, utf8_transaction: bool) -> str:
    return event.verb


def _auth_line(event: Command, utf8_transaction: bool) -> str:
    assert isinstance(event, Auth)
    _checked(event.mechanism, _MECHANISM_RE, "SASL mechanism name")
    if event.initial_response is None:
        return f"AUTH {event.mechanism}"
    initial = base64.b64encode(event.initial_response).decode("ascii") or "="
    return f"AUTH {event.mechanism} {initial}"


def _auth_response_line(event: Command, utf8_transaction: bool) -> str:
    assert isinstance(event, AuthResponse)
    if event.data is None:
        return "*"
    return base64.b64encode(event.data).decode("ascii")


def _bdat_line(event: Command, utf8_transaction: bool) -> str:
    assert isinstance(event, Bdat)
    return f"BDAT {event.size} LAST" if event.last else f"BDAT {event.size}"


#: event type -> the writer of its command line, without CRLF (as h11's WRITERS).
WRITERS: Mapping[type[Command], Callable[[Command, bool], str]] = {
    Ehlo: _hello_line,
    Helo: _hello_line,
    Lhlo: _hello_line,
    MailFrom: _mail_line,
    RcptTo: _rcpt_line,
    Vrfy: _string_line,
    Expn: _string_line,
    Help: _help_line,
    Noop: _noop_line,
    Data: _verb_line,
    Rset: _verb_line,
    Quit: _verb_line,
    StartTLS: _verb_line,
    Auth: _auth_line,
    AuthResponse: _auth_response_line,
    Bdat: _bdat_line,
}


def command_line(event: Command, *, extensions: Extensions, utf8_transaction: bool) -> str:
    """The command line for ``event``, without CRLF."""
    writer = WRITERS.get(type(event))
    if writer is None:
        raise LocalProtocolError(f"cannot write {type(event).__name__}")
    return writer(event, utf8_transaction)


def _encode(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates have no UTF-8 form
        raise LocalProtocolError(f"{what} text is not valid Unicode: {exc.reason}") from None


#: The lines of the MAIL and RCPT commands written last (write_command), by the event's id,
#: the transaction's SMTPUTF8 and the line limit: events are immutable and a client sends
#: the same ones message after message (the client engine keeps them), so each is
#: formatted and checked once. Each entry keeps its event, so the id is not reused while
#: it is kept; bounded, emptied when full. Other commands are cheap to write, and AUTH
#: lines carry credentials, which are not kept.
_WRITTEN: dict[tuple[int, bool, int], tuple[Command, bytes]] = {}
_WRITTEN_MAX = 512
_KEPT_LINES: frozenset[type[Command]] = frozenset((MailFrom, RcptTo))


def write_command(
    event: Command, config: Config, *, extensions: Extensions, utf8_transaction: bool
) -> bytes:
    """The command line for ``event`` with its CRLF; raises LocalProtocolError for one
    that cannot be written (not a command, a control character, over the line limit, an
    address that needs SMTPUTF8 outside an SMTPUTF8 transaction)."""
    if type(event) not in _KEPT_LINES:
        return _write_command(event, config.max_command_line, utf8_transaction)
    key = (id(event), utf8_transaction, config.max_command_line)
    entry = _WRITTEN.get(key)
    if entry is None:
        wire = _write_command(event, config.max_command_line, utf8_transaction)
        entry = remember(_WRITTEN, key, (event, wire), _WRITTEN_MAX)
    return entry[1]


def _write_command(event: Command, max_command_line: int, utf8_transaction: bool) -> bytes:
    # command_line and _encode, inline: this runs for every command a client sends
    writer = WRITERS.get(type(event))
    if writer is None:
        raise LocalProtocolError(f"cannot write {type(event).__name__}")
    line = writer(event, utf8_transaction)
    if _abnf.CONTROL_RE.search(line):  # belt and braces: never a control on the wire
        raise LocalProtocolError(f"control character in {event.verb} command")
    try:
        wire = line.encode("utf-8") + b"\r\n"
    except UnicodeEncodeError:  # lone surrogates have no UTF-8 form
        wire = _encode(line, event.verb)  # (raises LocalProtocolError, saying why)
    limit = MAX_AUTH_LINE if isinstance(event, (Auth, AuthResponse)) else max_command_line
    if len(wire) > limit:
        raise LocalProtocolError(
            f"{event.verb} command is {len(wire)} octets, over the limit of {limit}"
            " (RFC 5321 §4.5.3.1.4, RFC 4954 §4)"
        )
    return wire


def write_reply(reply: Reply | Greeting, config: Config) -> bytes:
    """``code SP text CRLF``, or ``code "-" text CRLF`` for all but the last line
    (RFC 5321 §4.2.1), each text prefixed with the enhanced status code (RFC 2034)."""
    return _reply_wire(reply, config.max_reply_line)


def _reply_wire(reply: Reply | Greeting, max_reply_line: int) -> bytes:
    code = str(reply.code)
    enhanced = reply.enhanced if isinstance(reply, Reply) else None
    esc = f"{enhanced} " if enhanced is not None else ""
    out = []
    last = len(reply.lines) - 1
    for i, text in enumerate(reply.lines):
        if _BAD_REPLY_TEXT_RE.search(text):
            raise LocalProtocolError(f"control character in reply text {text!r}")
        body = esc + text if text else esc.rstrip(" ")
        sep = "-" if i < last else " "
        line = f"{code}{sep}{body}\r\n" if body else f"{code}{sep.strip()}\r\n"
        raw = _encode(line, "reply")
        if len(raw) > max_reply_line:
            raise LocalProtocolError(
                f"reply line of {len(raw)} octets is over the limit of {max_reply_line}"
                " (RFC 5321 §4.5.3.1.5)"
            )
        out.append(raw)
    return b"".join(out)


#: id(reply) -> write_reply(reply, config) for the default replies (DEFAULT_REPLIES), which
#: a server sends far more often than any other: written once here, not once per reply.
#: Keyed by identity, as hashing a Reply costs more than writing it; _PREBUILT keeps the
#: replies alive as long as the table, so no other object can ever have their ids. Their
#: lines are within RFC 5321's 512 octets, the least any Config allows, so the bytes hold
#: for every Config.
_PREBUILT = tuple(DEFAULT_REPLIES.values())
PREBUILT_REPLIES: Mapping[int, bytes] = {
    id(reply): _reply_wire(reply, DEFAULT_MAX_REPLY_LINE) for reply in _PREBUILT
}


class DataWriter:
    """Turns message content into what goes on the wire after 354.

    Bare CR and LF become CRLF (or raise, under LineEndingPolicy.REJECT), a trailing CR is
    held back until we know whether LF follows, lines starting with "." get another
    (RFC 5321 §4.5.2), and end() adds the missing final CRLF and ".CRLF".
    """

    def __init__(self, config: Config) -> None:
        self._config = config
        self._bol = True  # the next byte written starts a line
        self._held_cr = False
        self._line = 0

    def write(self, data: BytesLike) -> list[BytesLike]:
        """The wire form of ``data``. Raises LocalProtocolError, changing nothing, for a
        bare CR/LF under REJECT or a line over ``max_data_line``."""
        if not data:
            return []
        chunk: bytes | bytearray = data.tobytes() if isinstance(data, memoryview) else data
        if self._held_cr:
            chunk = b"\r" + chunk
        held_cr = chunk[-1:] == b"\r"
        if held_cr:
            chunk = chunk[:-1]
        if has_bare_line_ending(chunk):
            if self._config.line_endings is LineEndingPolicy.REJECT:
                raise LocalProtocolError("bare CR or LF in message content (RFC 5321 §2.3.8)")
            chunk = normalize_line_endings(bytes(chunk))
        # Measured before stuffing: the transparency dot does not count (§4.5.3.1.6).
        line = self._scan(chunk)
        if b"\n." in chunk or (self._bol and chunk[:1] == b"."):
            stuffed = b"\r\n..".join(chunk.split(b"\r\n."))
            chunk = b"." + stuffed if self._bol and stuffed[:1] == b"." else stuffed
        self._held_cr = held_cr
        self._line = line
        if not chunk:
            return []
        self._bol = chunk[-2:] == b"\r\n"
        return [chunk]

    def _scan(self, content: bytes | bytearray) -> int:
        """The length of the unfinished last line after ``content``; raises when a line is
        over the limit (RFC 5321 §4.5.3.1.6)."""
        limit = self._config.max_data_line
        if limit is None:
            return 0
        line = scan_line_lengths(content, self._line, limit)
        if line < 0:
            raise LocalProtocolError(
                f"a line of the message is longer than {limit} octets (RFC 5321 §4.5.3.1.6)"
            )
        return line

    def end(self) -> bytes:
        tail = b""
        if self._held_cr:
            if self._config.line_endings is LineEndingPolicy.REJECT:
                raise LocalProtocolError("bare CR at the end of the message (RFC 5321 §2.3.8)")
            tail = b"\r\n"
        elif not self._bol:
            tail = b"\r\n"
        if tail:  # (an empty tail ends no line: write() checked the one carried already)
            self._scan(tail)
        return tail + b".\r\n"


class ChunkWriter:
    """Counts the octets of a BDAT chunk being sent (RFC 3030 §2): exactly the size the
    BDAT command declared, sent as they are."""

    __slots__ = ("last", "remaining")

    def __init__(self, size: int, *, last: bool) -> None:
        self.remaining = size
        self.last = last

    def check(self, data: BytesLike) -> None:
        """Raise LocalProtocolError when ``data`` is more than the chunk has left."""
        if len(data) > self.remaining:
            raise LocalProtocolError(
                f"{len(data)} octets sent where the BDAT chunk has {self.remaining} left"
            )
