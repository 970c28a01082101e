# Bytes -> events. One reader per thing a peer sends: a server reads command lines
# (COMMAND_PARSERS, by verb), message content (DataReader) and BDAT chunks (ChunkReader),
# a client reads replies (ReplyReader). Readers parse and check grammar and limits; they
# never look at or change the state table (Connection.READERS[(role, state)] decides which
# reader runs).
#
# A command a server cannot accept is not an exception: parse_command raises
# CommandRejected carrying the reply, and Connection turns it into an InvalidCommand event.
# Only broken framing (an over-long reply line, mismatched codes in a multi-line reply) is a
# LocalProtocolError, which Connection.next_event re-raises as RemoteProtocolError.
from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from itertools import islice

from . import _abnf
from ._address import Address
from ._errors import LocalProtocolError
from ._events import (
    Auth,
    AuthResponse,
    Bdat,
    Command,
    Data,
    Ehlo,
    EndOfMessage,
    Event,
    Expn,
    Helo,
    Help,
    InvalidCommand,
    InvalidMessage,
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
from ._extensions import Extensions
from ._lines import has_bare_line_ending, normalize_line_endings, scan_line_lengths
from ._params import Params
from ._receivebuffer import ReceiveBuffer
from ._reply import VALID_REPLY_CODES, split_reply_line
from ._reply import make_reply as make_reply  # the Connection's and the probe's
from .config import MAX_AUTH_LINE, Config, LineEndingPolicy

__all__ = [
    "ChunkReader",
    "CommandRejected",
    "DataReader",
    "ReplyReader",
    "parse_command",
    "parse_common",
]


class CommandRejected(Exception):
    """A received command line that must be answered with ``reply``."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply))
        self.reply = reply


def _reject(code: int, enhanced: str, text: str) -> CommandRejected:
    return CommandRejected(Reply(code=code, lines=text, enhanced=enhanced))


# ------------------------------------------------------------------------ command lines

_TOKEN_RE = re.compile(_abnf.TOKEN + r"\Z")
_STRING_RE = re.compile(_abnf.STRING + r"\Z")
# RFC 5321 §4.1.1.2 "MAIL FROM:" Reverse-path [SP Mail-parameters]. We accept spaces after
# the colon (real clients send them). A quoted local part may hold ">" and spaces.
_PATH = r'<(?P<path>(?:"(?:[^"\\]|\\.)*"|[^>" ])*)>'
_MAIL_RE = re.compile(rf"FROM: *{_PATH}(?: +(?P<params>.*?))? *\Z", re.IGNORECASE | re.DOTALL)
_RCPT_RE = re.compile(rf"TO: *{_PATH}(?: +(?P<params>.*?))? *\Z", re.IGNORECASE | re.DOTALL)


#: the empty Params of a MAIL or RCPT without parameters: the events' own default, shared
_NO_PARAMS = MailFrom(reverse_path=None).params


def _parse_params(text: str | None) -> Params:
    if not text:
        return _NO_PARAMS
    pairs: list[tuple[str, str | None]] = []
    for word in text.split(" "):  # SP separates (RFC 5321 §4.1.2); UTF-8 values may hold
        if not word:  # other white space (RFC 6531 §3.3)
            continue
        key, eq, value = word.partition("=")
        pairs.append((key, value if eq else None))
    try:
        params = Params(pairs)
    except ValueError as exc:
        raise _reject(501, "5.5.4", f"Invalid parameters: {exc}") from None
    return params


def _parse_path(text: str, *, utf8: bool) -> Address:
    if not text.isascii() and not utf8:
        # RFC 6531 §3.7.4.1: 553 when a non-ASCII address arrives without SMTPUTF8
        raise _reject(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")
    try:
        return Address.parse(text, utf8=utf8)
    except ValueError:
        raise _reject(501, "5.1.3", "Bad address syntax") from None


def _no_argument(
    cls: type[Data] | type[Rset] | type[Quit] | type[StartTLS],
) -> Callable[[str, Context], Command]:
    def parse(arg: str, ctx: Context) -> Command:
        if arg.strip():
            raise _reject(501, "5.5.4", f"Syntax: {cls.verb}")
        return cls()

    return parse


class Context:
    """What a server knows when it parses a command."""

    __slots__ = ("extensions", "lmtp", "utf8_transaction")

    def __init__(self, extensions: Extensions, utf8_transaction: bool, *, lmtp: bool) -> None:
        self.extensions = extensions
        self.utf8_transaction = utf8_transaction
        self.lmtp = lmtp


def _hello(cls: type[Helo] | type[Ehlo] | type[Lhlo]) -> Callable[[str, Context], Command]:
    def parse(arg: str, ctx: Context) -> Command:
        domain = arg.strip(" ")
        if not _TOKEN_RE.match(domain):
            raise _reject(501, "5.5.4", f"Syntax: {cls.verb} hostname")
        return cls(domain=domain)

    return parse


def _mail(arg: str, ctx: Context) -> Command:
    m = _MAIL_RE.match(arg)
    if m is None:
        raise _reject(501, "5.5.4", "Syntax: MAIL FROM:<address>")
    params = _parse_params(m["params"])
    path = m["path"]
    utf8 = "SMTPUTF8" in params  # RFC 6531 §3.4
    return MailFrom(reverse_path=_parse_path(path, utf8=utf8) if path else None, params=params)


def _rcpt(arg: str, ctx: Context) -> Command:
    m = _RCPT_RE.match(arg)
    if m is None or not m["path"]:
        raise _reject(501, "5.5.4", "Syntax: RCPT TO:<address>")
    params = _parse_params(m["params"])
    return RcptTo(forward_path=_parse_path(m["path"], utf8=ctx.utf8_transaction), params=params)


def _string_arg(
    cls: type[Vrfy] | type[Expn], required: bool = True
) -> Callable[[str, Context], Command]:
    def parse(arg: str, ctx: Context) -> Command:
        text = arg.strip(" ")
        if not _STRING_RE.match(text):
            raise _reject(501, "5.5.4", f"Syntax: {cls.verb} string")
        return cls(text=text)

    return parse


def _optional_string(cls: type[Help] | type[Noop]) -> Callable[[str, Context], Command]:
    def parse(arg: str, ctx: Context) -> Command:
        text = arg.strip(" ")
        if not text:
            return cls()
        if not _STRING_RE.match(text):
            raise _reject(501, "5.5.4", f"Syntax: {cls.verb} [string]")
        return Help(topic=text) if cls is Help else Noop(text=text)

    return parse


# RFC 4954 §4: "AUTH" SP sasl-mech [SP initial-response]; RFC 4422 §3.1 sasl-mech =
# 1*20 (UPPER-ALPHA / DIGIT / "-" / "_"), compared case-insensitively here.
_AUTH_RE = re.compile(r"([A-Za-z0-9_-]{1,20})(?: +(\S+))? *\Z")


def decode_base64(text: str) -> bytes:
    """Strict base64 (RFC 4648 §4) of an AUTH response or initial response; raises
    CommandRejected(501) otherwise (RFC 4954 §4)."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _reject(501, "5.5.2", "Cannot decode base64") from None


def _auth(arg: str, ctx: Context) -> Command:
    m = _AUTH_RE.match(arg)
    if m is None:
        raise _reject(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]")
    initial = m[2]
    data = None if initial is None else b"" if initial == "=" else decode_base64(initial)
    return Auth(mechanism=m[1], initial_response=data)


def parse_auth_response(line: bytes) -> AuthResponse:
    """A line received while an AUTH exchange waits for the client (RFC 4954 §4)."""
    text = line.decode("ascii", errors="replace").strip()
    if text == "*":
        return AuthResponse(data=None)
    return AuthResponse(data=decode_base64(text))


# RFC 3030 §2: bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CR LF
_BDAT_RE = re.compile(r"([0-9]{1,20})(?: +(LAST))? *\Z", re.IGNORECASE)


def _bdat(arg: str, ctx: Context) -> Command:
    m = _BDAT_RE.match(arg)
    if m is None:
        raise _reject(501, "5.5.4", "Syntax: BDAT chunk-size [LAST]")
    return Bdat(size=int(m[1]), last=m[2] is not None)


#: verb -> parser of the rest of the line (RFC 5321 §4.1.1)
COMMAND_PARSERS: dict[str, Callable[[str, Context], Command]] = {
    "HELO": _hello(Helo),
    "EHLO": _hello(Ehlo),
    "MAIL": _mail,
    "RCPT": _rcpt,
    "DATA": _no_argument(Data),
    "RSET": _no_argument(Rset),
    "QUIT": _no_argument(Quit),
    "VRFY": _string_arg(Vrfy),
    "EXPN": _string_arg(Expn),
    "HELP": _optional_string(Help),
    "NOOP": _optional_string(Noop),
    "STARTTLS": _no_argument(StartTLS),
    "BDAT": _bdat,
    "AUTH": _auth,
}
# RFC 2033 §4.1: LMTP has LHLO where SMTP has HELO and EHLO.
LMTP_PARSERS = {**COMMAND_PARSERS, "LHLO": _hello(Lhlo)}
del LMTP_PARSERS["HELO"], LMTP_PARSERS["EHLO"]


# The common command lines, each recognised by one regex that validates all of it (verb,
# path and the grammar of the mailbox, RFC 5321 §4.1.2), so nothing downstream validates
# it again: upper-case verbs, an ASCII Dot-string@Domain path (or "<>" for MAIL), optional
# parameters. Such a line means the same whatever the context (SMTPUTF8, LMTP), so
# parse_common needs none. Every other line (lower case, quoted local parts, address
# literals, Postmaster, non-ASCII, other verbs) is parse_command's; for the lines
# parse_common accepts, parse_command gives an equal event (tests/test_fast_paths.py).
# No IGNORECASE: with it, [A-Za-z] would also match "\u017f" and "\u212a".
#
# The mailbox is _abnf's Dot-string "@" Domain written for speed, the same language and
# groups (tests/test_core_shortcuts.py): possessive quantifiers, as no backtracking could
# help (each run ends where the next character cannot continue it: "." or "@" after an
# atom, "." or ">" after a label), and a sub-domain as letters and digits in runs joined
# by hyphens (_abnf.SUB_DOMAIN's let-dig [ldh-str], without its backtracking).
_ATOM = rf"{_abnf.ATEXT}++"
_LABEL = r"[A-Za-z0-9]++(?:-++[A-Za-z0-9]++)*+"
_MAILBOX = rf"(?P<local>{_ATOM}(?:\.{_ATOM})*+)@(?P<domain>{_LABEL}(?:\.{_LABEL})*+)"
_TAIL = r"(?: +(?P<params>.*?))? *\Z"  # as in _MAIL_RE and _RCPT_RE
_COMMON_MAIL_RE = re.compile(rf"MAIL FROM: *<(?:{_MAILBOX})?>{_TAIL}", re.DOTALL)
_COMMON_RCPT_RE = re.compile(rf"RCPT TO: *<{_MAILBOX}>{_TAIL}", re.DOTALL)


#: A whole line -> the command it is, for the commands without an argument.
_COMMON_BARE: dict[bytes, type[Data] | type[Rset] | type[Quit] | type[Noop]] = {
    b"DATA": Data,
    b"RSET": Rset,
    b"QUIT": Quit,
    b"NOOP": Noop,
}

# parse_common builds its MailFrom and RcptTo as attrs' __init__ would, without it: the
# converters (coerce_address, _coerce_params) hand back an Address or a Params as they
# are, and the regex made exactly those, so the event is the same (a test checks that
# these are still the only fields and that nothing else runs on construction).
_new = object.__new__
_set = object.__setattr__


def parse_common(line: bytes) -> Command | None:
    """The command of a common command line (without its line ending), or None when the
    line is not in one of the common forms: then parse_command has the answer. Raises
    CommandRejected, as parse_command does, for refused MAIL/RCPT parameters."""
    if line in _COMMON_BARE:  # (``in``, not get(): most lines are MAIL and RCPT)
        return _COMMON_BARE[line]()
    verb = line[:5]
    if verb != b"RCPT " and verb != b"MAIL ":
        return None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None
    # The regex validated the mailbox's grammar, which is all Address's validators check.
    if verb == b"RCPT ":
        m = _COMMON_RCPT_RE.match(text)
        if m is None:
            return None
        local, domain, params = m.groups()
        event: Command = _new(RcptTo)
        _set(event, "forward_path", Address._trusted(local, domain))
    else:
        m = _COMMON_MAIL_RE.match(text)
        if m is None:
            return None
        local, domain, params = m.groups()
        event = _new(MailFrom)
        _set(event, "reverse_path", None if local is None else Address._trusted(local, domain))
    _set(event, "params", _NO_PARAMS if params is None else _parse_params(params))
    return event


def parse_command(line: bytes, ctx: Context) -> Command:
    """Parse one command line without its line ending. Raises CommandRejected."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise _reject(500, "5.5.2", "Invalid UTF-8 in command") from None
    verb, _, arg = text.partition(" ")
    parser = (LMTP_PARSERS if ctx.lmtp else COMMAND_PARSERS).get(verb.upper())
    if parser is None:
        raise _reject(500, "5.5.2", "Command unrecognized")
    return parser(arg, ctx)


#: How much of an over-long command line its InvalidCommand keeps (``line``): the start,
#: which is all a server keeps of a line it drops as it arrives.
OVERLONG_LINE_KEPT = 64


def is_auth_line(start: bytes | bytearray, *, in_auth: bool) -> bool:
    """A line allowed MAX_AUTH_LINE octets: an AUTH command or a response within an AUTH
    exchange (RFC 4954 §4); ``start`` is the line's first octets."""
    return in_auth or start[:5].upper() == b"AUTH "


def line_too_long(*, auth: bool) -> CommandRejected:
    """The refusal of an over-long command line, the same however the line arrived."""
    if auth:  # RFC 4954 §4, RFC 3463 X.5.6
        return _reject(500, "5.5.6", "Authentication exchange line is too long")
    return _reject(500, "5.5.2", "Line too long")  # RFC 5321 §4.5.3.1.10


def split_command_line(
    raw: bytes, config: Config, *, auth: bool = False
) -> tuple[bytes, CommandRejected | None]:
    """Strip the line ending of a complete line; apply the line length limit and the
    line-ending policy. Returns the line and the rejection, if any. ``auth``: the line is
    an AUTH response, allowed MAX_AUTH_LINE octets like an AUTH command (RFC 4954 §4).
    An over-long line is cut to its first OVERLONG_LINE_KEPT octets."""
    line = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
    auth = is_auth_line(raw, in_auth=auth)
    if len(raw) > (MAX_AUTH_LINE if auth else config.max_command_line):  # §4.5.3.1.4
        return line[:OVERLONG_LINE_KEPT], line_too_long(auth=auth)
    if config.line_endings is LineEndingPolicy.REJECT and not raw.endswith(b"\r\n"):
        return line, _reject(500, "5.5.2", "Bare LF not allowed")
    return line, None


# ------------------------------------------------------------------------------ replies


#: How many distinct single-line replies a ReplyReader remembers (read_reply).
_KNOWN_REPLIES = 32


class ReplyReader:
    """Assembles multi-line replies (RFC 5321 §4.2.1) line by line, so the buffer never has
    to hold more than one line.

    read_reply() remembers the Reply of each distinct single-line reply it read (up to
    _KNOWN_REPLIES of them): a server answers a client with the same few lines over and
    over ("250 2.1.5 Recipient OK"), and a Reply is immutable, so an equal line is the
    equal Reply without parsing it again."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._code = 0
        self._lines: list[str] = []
        self._known: dict[bytes, Reply] = {}  # a reply's line, with its line ending

    def read_reply(self, buf: ReceiveBuffer) -> Reply | None:
        """The next complete reply as a Reply, or None (read() and make_reply)."""
        while True:
            raw = buf.maybe_extract_line()
            if raw is None:
                self._check_partial(buf)
                return None
            if not self._lines:  # the first line of a reply: is it one seen before?
                known = self._known.get(raw)
                if known is not None:
                    return known
            got = self._read_line(raw)
            if got is not None:
                code, texts = got
                reply = make_reply(code, texts)
                if len(texts) == 1 and len(self._known) < _KNOWN_REPLIES:
                    self._known[raw] = reply
                return reply

    def read(self, buf: ReceiveBuffer) -> tuple[int, list[str]] | None:
        """Return (code, raw text lines) of the next complete reply, or None."""
        while True:
            raw = buf.maybe_extract_line()
            if raw is None:
                self._check_partial(buf)
                return None
            got = self._read_line(raw)
            if got is not None:
                return got

    def _check_partial(self, buf: ReceiveBuffer) -> None:
        """No complete line is buffered: fine, unless the partial line is already over
        the limit."""
        if len(buf.raw) >= self._config.max_reply_line:
            raise LocalProtocolError("reply line too long (RFC 5321 §4.5.3.1.5)")

    def _read_line(self, raw: bytes) -> tuple[int, list[str]] | None:
        """One reply line, with its line ending: (code, text lines) when it ends the
        reply, else None."""
        if len(raw) > self._config.max_reply_line:
            raise LocalProtocolError("reply line too long (RFC 5321 §4.5.3.1.5)")
        line = raw.rstrip(b"\r\n")
        parts = split_reply_line(line)  # RFC 5321 §4.2 Reply-line
        if parts is None:
            raise LocalProtocolError(f"malformed reply line {bytes(line[:40])!r}")
        code, separator, text = parts
        if code not in VALID_REPLY_CODES:
            raise LocalProtocolError(f"invalid reply code {code} (RFC 5321 §4.2)")
        if self._lines and code != self._code:
            raise LocalProtocolError(
                f"multi-line reply changes code from {self._code} to {code} (RFC 5321 §4.2.1)"
            )
        self._code = code
        self._lines.append(text.decode("utf-8", errors="replace"))
        if separator != b"-":
            lines, self._lines = self._lines, []
            return code, lines
        if len(self._lines) >= self._config.max_reply_lines:
            raise LocalProtocolError("too many lines in a multi-line reply")
        return None


# ------------------------------------------------------------------------ message content

_TERMINATOR = b"\r\n.\r\n"  # RFC 5321 §4.1.1.4: the only end of the mail data
# RFC 5321 §4.5.2: delete the first "." of a line when other characters follow it. Lines
# start after any LF here: a client that sends bare LFs (smtplib given LF-only bytes)
# stuffs the dots of those lines too. Used only for chunks with bare line endings.
_UNSTUFF_ANY_LF_RE = re.compile(rb"\n\.(?=[^\r\n])")


def _safe_cut(data: bytearray, end: int) -> int:
    """Move a cut point back so that it splits neither a CRLF nor a line-start "." from
    the byte after it (needed to tell "." + CRLF, the terminator, from a stuffed dot)."""
    if data[end - 3 : end] == b"\n.\r":
        return end - 2
    if data[end - 2 : end] == b"\n.":
        return end - 1
    if data[end - 1 : end] == b"\r":
        return end - 1
    return end


class DataReader:
    """Reads message content after 354: un-stuffs dots (RFC 5321 §4.5.2), ends only at
    <CRLF>.<CRLF>, applies the line-ending policy and the size and line limits, and
    emits MessageData chunks of at most ``max_data_chunk`` bytes.

    Each call consumes everything buffered except at most three bytes that might start the
    terminator, so the work is linear in the input whatever its chunking. A chunk with only
    CRLF line endings (the common case) costs a split, a min() over its parts, a replace,
    a join and a line-length scan of about one rfind per ``max_data_line`` octets, all in
    C; only chunks with bare CR or LF take a regex path.
    """

    # One per message: slots make it cheap to build and its attributes quick to read.
    __slots__ = (
        "_after_crlf",
        "_bol",
        "_config",
        "_done",
        "_error",
        "_line",
        "_size",
        "_size_limit",
    )

    def __init__(self, config: Config, *, size_limit: int | None) -> None:
        self._config = config
        self._size_limit = size_limit
        self._after_crlf = True  # the next byte starts a line after CRLF (or the 354)
        self._bol = True  # the next byte starts a line after any LF
        self._line = 0  # octets of the unfinished line so far
        self._size = 0  # un-stuffed content octets so far
        self._error: InvalidMessage | None = None
        self._done = False

    def _fail(self, reason: str, code: int, enhanced: str, text: str) -> None:
        if self._error is None:
            reply = Reply(code=code, lines=text, enhanced=enhanced)
            self._error = InvalidMessage(reason=reason, reply_hint=reply)

    def read(self, buf: ReceiveBuffer) -> Event | None:
        """The next MessageData, then EndOfMessage (or InvalidMessage); None when more
        bytes are needed."""
        raw = buf.raw
        while not self._done:
            if not raw:  # (as after each piece of a message that arrives in pieces)
                return None
            before = len(raw)
            event = self._read_piece(buf)
            if event is not None:
                return event
            if len(raw) == before:
                return None
        return self._error or EndOfMessage()

    def _read_piece(self, buf: ReceiveBuffer) -> Event | None:
        data = buf.raw
        size = len(data)
        if self._bol and data[:1] == b".":
            if size < 3:
                return None  # "." or ".\r": the terminator, or a stuffed line?
            if self._after_crlf and data[:3] == b".\r\n":
                buf.discard(3)
                self._done = True
                return None
        # The piece ends where it would without a terminator, or before the terminator
        # that ends the buffered bytes (a message that arrives whole); a find over the
        # last few octets tells which. Any other terminator would lie within the piece,
        # and that is proved absent without a find over all of it: every terminator in
        # the piece begins at one of the "\r\n." that the un-stuffing split cuts at (an
        # occurrence that overlapped an earlier one would have to start with its "\n" or
        # "."), so the part after it starts with CRLF, or is empty when a "\r\n." follows
        # at once; when no part after the first sorts at or below CRLF in its first two
        # octets, none is either: one min() in C. A piece that may hold one, or a
        # terminator past the chunk cap: _read_to_end, which finds the first.
        cut = min(size, self._config.max_data_chunk)
        end = _safe_cut(data, cut)
        if end <= 0:
            return None  # (a terminator has 5 octets: then none is buffered whole)
        at = data.find(_TERMINATOR, end - 5 if end > 5 else 0, cut + 5)
        final = at >= 0
        if final:
            if at + 2 > cut:
                return self._read_to_end(buf)
            end = at + 2  # the content ends with the terminator's CRLF
        piece = buf.peek(end)
        parts = piece.split(b"\r\n.")
        if len(parts) > 1 and min(islice(parts, 1, None))[:2] <= b"\r\n":
            return self._read_to_end(buf)
        buf.discard(end + 3 if final else end)  # and the ".\r\n" of the end
        self._done = final
        return self._process(piece, parts)

    def _read_to_end(self, buf: ReceiveBuffer) -> Event | None:
        """The piece before the first terminator buffered (the last piece of the content),
        or the longest piece that keeps a terminator whole for the next call."""
        data = buf.raw
        size = len(data)
        chunk_cap = self._config.max_data_chunk
        at = data.find(_TERMINATOR, 0, min(size, chunk_cap + 5))
        final = at >= 0 and at + 2 <= chunk_cap
        end = at + 2 if final else _safe_cut(data, min(size, chunk_cap))
        if end <= 0:
            return None
        if final:
            piece = buf.extract(end, skip=3)  # the content, then the ".\r\n" of the end
            self._done = True
        else:
            piece = buf.extract(end)
        return self._process(piece, piece.split(b"\r\n."))

    def _process(self, piece: bytes, parts: list[bytes]) -> MessageData | None:
        """Check and un-stuff ``piece``; ``parts``: piece.split(b"\r\n.")."""
        config = self._config
        bol = self._bol
        self._bol = piece.endswith(b"\n") or (not piece and bol)
        self._after_crlf = piece.endswith(b"\r\n") or (not piece and self._after_crlf)
        # A stuffed dot that starts the piece (no "\r\n" before it in the piece)
        stuffed = bol and piece[:1] == b"." and piece[1:2] not in (b"\r", b"\n")
        bare = has_bare_line_ending(piece)
        if not bare:
            # split/join scans once; a shrinking replace() scans twice
            if stuffed:  # its "." is the first octet of the first part
                parts[0] = parts[0][1:]
            piece = b"\r\n".join(parts)
        else:
            piece = _UNSTUFF_ANY_LF_RE.sub(b"\n", piece[1:] if stuffed else piece)
        if config.max_data_line is not None and self._error is None:
            # Measured un-stuffed: the transparency dot does not count (RFC 5321 §4.5.3.1.6)
            self._line = scan_line_lengths(piece, self._line, config.max_data_line)
            if self._line < 0:
                self._line = 0
                # RFC 5321 §4.5.3.1.10: "500 Line too long"
                self._fail("line too long", 500, "5.5.2", "Line too long")
        if bare:
            policy = config.line_endings
            if policy is LineEndingPolicy.REJECT:
                self._fail("bare CR or LF", 550, "5.5.2", "Bare CR or LF not allowed")
            elif policy is LineEndingPolicy.NORMALIZE:
                piece = normalize_line_endings(piece)
        self._size += len(piece)
        if self._size_limit is not None and self._size > self._size_limit:
            # RFC 1870 §6.1, RFC 5321 §4.5.3.1.10
            self._fail("message too large", 552, "5.3.4", "Message size exceeds fixed maximum")
        if self._error is not None or not piece:
            return None
        return MessageData(data=piece)


# ------------------------------------------------------------------------- BDAT chunks


class ChunkReader:
    """Reads the octets of one BDAT chunk (RFC 3030 §2): exactly ``size`` of them, as they
    are, in MessageData pieces of at most ``max_data_chunk``. The octets follow the BDAT
    line whatever its reply will be, so a refused BDAT (``held``: its InvalidCommand) has
    them skipped, then is emitted; so is a chunk that takes the message over
    ``size_limit`` (552, RFC 1870 §6.1), whose InvalidMessage comes at its end.

    read() returns MessageData, then the held InvalidCommand, the InvalidMessage,
    EndOfMessage (for LAST) or None with ``done`` set (a chunk that awaits its reply);
    None without ``done`` when more bytes are needed. ``content_size``: the content octets
    of the transaction before this chunk."""

    __slots__ = ("_limit", "_max", "_size", "done", "error", "held", "last", "remaining")

    def __init__(
        self,
        config: Config,
        size: int,
        *,
        last: bool,
        held: InvalidCommand | None = None,
        size_limit: int | None = None,
        content_size: int = 0,
    ) -> None:
        self.remaining = size
        self.last = last
        self.held = held
        self.error: InvalidMessage | None = None
        self.done = False
        self._max = config.max_data_chunk
        self._limit = size_limit
        self._size = content_size

    def read(self, buf: ReceiveBuffer) -> Event | None:
        while self.remaining:
            count = min(self.remaining, len(buf), self._max)
            if not count:
                return None
            data = buf.extract(count)
            self.remaining -= count
            if self.held is not None or self.error is not None:
                continue
            self._size += count
            if self._limit is not None and self._size > self._limit:
                # RFC 1870 §6.1 / RFC 3030 §2: 552, and the chunk is still consumed
                hint = Reply(code=552, lines="Message size exceeds fixed maximum", enhanced="5.3.4")
                self.error = InvalidMessage(reason="message too large", reply_hint=hint)
                continue
            return MessageData(data=data)
        self.done = True
        if self.held is not None:
            return self.held
        if self.error is not None:
            return self.error
        if self.last:
            return EndOfMessage()
        return None
