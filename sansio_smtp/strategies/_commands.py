# Command, reply, body and chunking strategies.
#
# Every command strategy draws a value that a client Connection may send in *some* state
# (sequencing is the caller's business, or dialogues()'): arguments follow the grammar,
# MAIL/RCPT parameters are drawn for the advertised Extensions. COMMAND_TYPES are the
# commands legal in isolation once greeted; ESMTP_COMMAND_TYPES need a state of their own
# (STARTTLS, AUTH and its responses, BDAT) or an LMTP session (LHLO).
from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from functools import cache

from hypothesis import strategies as st

from .. import (
    Auth,
    AuthResponse,
    Bdat,
    Data,
    Ehlo,
    EnhancedStatusCode,
    Event,
    Expn,
    Extensions,
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
from ..sasl import SUPPORTED_MECHANISMS
from ._values import (
    LET_DIG,
    PRINTABLE_ASCII,
    TEXTSTRING,
    Draw,
    address_literals,
    addresses,
    domains,
    draw_mail_params,
    draw_rcpt_params,
    null_reverse_path,
    postmasters,
    utf8_chars,
)

# -------------------------------------------------------------------------- commands


@cache
def string_args(edge_spaces: bool = False) -> st.SearchStrategy[str]:
    """Arguments of VRFY/EXPN/HELP/NOOP: String = Atom / Quoted-string (RFC 5321 §4.1.2),
    as the library accepts it: printable ASCII and inner spaces. With ``edge_spaces``,
    leading/trailing spaces too (still accepted by the writer's grammar)."""
    text = st.text(st.sampled_from(PRINTABLE_ASCII), min_size=1, max_size=40)
    if edge_spaces:
        return text
    return text.filter(lambda s: s.strip(" ") == s)


@cache
def helos() -> st.SearchStrategy[Helo]:
    """``HELO domain`` with a domain name or an address literal (RFC 5321 §4.1.1.1)."""
    return st.builds(Helo, domain=domains() | address_literals())


@cache
def ehlos() -> st.SearchStrategy[Ehlo]:
    """``EHLO domain`` with a domain name or an address literal (RFC 5321 §4.1.1.1)."""
    return st.builds(Ehlo, domain=domains() | address_literals())


_REVERSE_PATHS = {utf8: null_reverse_path() | addresses(utf8=utf8) for utf8 in (False, True)}
_FORWARD_PATHS = {utf8: addresses(utf8=utf8) | postmasters() for utf8 in (False, True)}


def draw_mail_from(draw: Draw, ext: Extensions) -> MailFrom:
    """Draw a MAIL FROM with parameters legal under ``ext``; a UTF-8 reverse path when the
    drawn parameters include SMTPUTF8; sometimes the null reverse path."""
    params = draw_mail_params(draw, ext)
    path = draw(_REVERSE_PATHS["SMTPUTF8" in params])
    return MailFrom(reverse_path=path, params=params)


def draw_rcpt_to(draw: Draw, ext: Extensions, utf8: bool = False) -> RcptTo:
    """Draw a RCPT TO with parameters legal under ``ext``, a UTF-8 path when ``utf8``
    (the transaction's MAIL had SMTPUTF8), sometimes ``<Postmaster>``."""
    params = draw_rcpt_params(draw, ext, utf8)
    return RcptTo(forward_path=draw(_FORWARD_PATHS[utf8]), params=params)


@cache
def mail_froms(ext: Extensions | None = None) -> st.SearchStrategy[MailFrom]:
    """Strategy form of draw_mail_from (no extensions: no parameters)."""
    e = ext if ext is not None else Extensions()
    return st.composite(lambda draw: draw_mail_from(draw, e))()


@cache
def rcpt_tos(ext: Extensions | None = None, utf8: bool = False) -> st.SearchStrategy[RcptTo]:
    """Strategy form of draw_rcpt_to (no extensions: no parameters)."""
    e = ext if ext is not None else Extensions()
    return st.composite(lambda draw: draw_rcpt_to(draw, e, utf8))()


@cache
def data_commands() -> st.SearchStrategy[Data]:
    """``DATA`` (RFC 5321 §4.1.1.4)."""
    return st.just(Data())


@cache
def rsets() -> st.SearchStrategy[Rset]:
    """``RSET`` (RFC 5321 §4.1.1.5)."""
    return st.just(Rset())


@cache
def quits() -> st.SearchStrategy[Quit]:
    """``QUIT`` (RFC 5321 §4.1.1.10)."""
    return st.just(Quit())


@cache
def noops(edge_spaces: bool = False) -> st.SearchStrategy[Noop]:
    """``NOOP [string]`` (RFC 5321 §4.1.1.9)."""
    return st.builds(Noop, text=st.none() | string_args(edge_spaces))


@cache
def vrfys(edge_spaces: bool = False) -> st.SearchStrategy[Vrfy]:
    """``VRFY string`` (RFC 5321 §4.1.1.6)."""
    return st.builds(Vrfy, text=string_args(edge_spaces))


@cache
def expns(edge_spaces: bool = False) -> st.SearchStrategy[Expn]:
    """``EXPN string`` (RFC 5321 §4.1.1.7)."""
    return st.builds(Expn, text=string_args(edge_spaces))


@cache
def helps(edge_spaces: bool = False) -> st.SearchStrategy[Help]:
    """``HELP [string]`` (RFC 5321 §4.1.1.8)."""
    return st.builds(Help, topic=st.none() | string_args(edge_spaces))


@cache
def anytime_commands() -> st.SearchStrategy[Event]:
    """Commands valid in any state once greeted (RFC 5321 §4.1.4): NOOP, VRFY, EXPN,
    HELP, RSET."""
    return st.one_of(noops(), vrfys(), expns(), helps(), rsets())


@cache
def lhlos() -> st.SearchStrategy[Lhlo]:
    """``LHLO domain``, LMTP's EHLO (RFC 2033 §4.1), with a domain name or an address
    literal."""
    return st.builds(Lhlo, domain=domains() | address_literals())


@cache
def starttls_commands() -> st.SearchStrategy[StartTLS]:
    """``STARTTLS`` (RFC 3207 §4): it takes no argument."""
    return st.just(StartTLS())


# SASL mechanism names (RFC 4422 §3.1): 1-20 of upper-case letters, digits, "-" and "_";
# the library's own mechanisms often, made-up ones too (Auth upper-cases the name).
_SASL_NAME = st.text(st.sampled_from(LET_DIG + "-_"), min_size=1, max_size=20)
_MECHANISMS = (
    st.sampled_from(sorted(SUPPORTED_MECHANISMS))
    | st.sampled_from(["EXTERNAL", "ANONYMOUS", "GSSAPI", "NTLM", "DIGEST-MD5"])
    | _SASL_NAME
)
# SASL payloads: empty, short printable, binary; decoded bytes, base64-encoded on the
# wire, far below the 12288-octet AUTH line limit (RFC 4954 §4).
_SASL_DATA = (
    st.just(b"")
    | st.binary(max_size=300)
    | st.sampled_from(
        [b"\x00user\x00pencil", b"user", b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", b"=", b"*"]
    )
)


@cache
def auths(mechanisms: tuple[str, ...] | None = None) -> st.SearchStrategy[Auth]:
    """``AUTH mechanism [initial-response]`` (RFC 4954 §4): a mechanism from
    ``mechanisms`` (default: the library's SASL mechanisms, a few others and made-up
    names), and no initial response (None), the empty one (b"", sent as "=") or bytes."""
    mech = _MECHANISMS if mechanisms is None else st.sampled_from(mechanisms)
    return st.builds(Auth, mechanism=mech, initial_response=st.none() | _SASL_DATA)


@cache
def auth_responses() -> st.SearchStrategy[AuthResponse]:
    """A client's answer to a 334 challenge during AUTH (RFC 4954 §4): bytes (empty
    too), or None, the "*" that cancels the exchange."""
    return st.builds(AuthResponse, data=st.none() | _SASL_DATA)


@cache
def bdats(max_size: int = 10**6) -> st.SearchStrategy[Bdat]:
    """``BDAT chunk-size [LAST]`` (RFC 3030 §2): sizes 0..max_size (0 is legal, mostly
    with LAST), with and without LAST. The sender must then send exactly ``size``
    octets of MessageData."""
    size = st.sampled_from([0, 1, 5]) | st.integers(0, max_size)
    return st.builds(Bdat, size=size, last=st.booleans())


#: Commands legal in isolation once greeted (sequencing aside): what commands() draws.
COMMAND_TYPES: tuple[type[Event], ...] = (
    Helo,
    Ehlo,
    MailFrom,
    RcptTo,
    Data,
    Rset,
    Quit,
    Noop,
    Vrfy,
    Expn,
    Help,
)
#: Commands that need an extension, a state of their own or an LMTP session.
ESMTP_COMMAND_TYPES: tuple[type[Event], ...] = (Lhlo, StartTLS, Auth, AuthResponse, Bdat)
#: Every command the library knows.
ALL_COMMAND_TYPES: tuple[type[Event], ...] = COMMAND_TYPES + ESMTP_COMMAND_TYPES

_SIMPLE_COMMANDS: dict[type[Event], Callable[[], st.SearchStrategy[Event]]] = {
    Helo: helos,
    Ehlo: ehlos,
    Data: data_commands,
    Rset: rsets,
    Quit: quits,
    Noop: noops,
    Vrfy: vrfys,
    Expn: expns,
    Help: helps,
    Lhlo: lhlos,
    StartTLS: starttls_commands,
    Auth: auths,
    AuthResponse: auth_responses,
    Bdat: bdats,
}


def draw_command(
    draw: Draw, cls: type[Event], ext: Extensions | None = None, utf8: bool = False
) -> Event:
    """Draw a command of class ``cls``; MAIL/RCPT get parameters legal under ``ext`` and
    RCPT a UTF-8 path when ``utf8``."""
    e = ext if ext is not None else Extensions()
    if cls is MailFrom:
        return draw_mail_from(draw, e)
    if cls is RcptTo:
        return draw_rcpt_to(draw, e, utf8)
    return draw(_SIMPLE_COMMANDS[cls]())


def command_of_type(
    cls: type[Event], ext: Extensions | None = None, utf8: bool = False
) -> st.SearchStrategy[Event]:
    """Strategy form of draw_command."""
    return st.composite(lambda draw: draw_command(draw, cls, ext, utf8))()


@cache
def commands(ext: Extensions | None = None) -> st.SearchStrategy[Event]:
    """Any single command of COMMAND_TYPES (legal in isolation once greeted; sequencing
    is up to the caller), MAIL/RCPT with parameters legal under ``ext``."""
    return st.one_of([command_of_type(cls, ext) for cls in COMMAND_TYPES])


@cache
def all_commands(ext: Extensions | None = None) -> st.SearchStrategy[Event]:
    """Any command the library knows (ALL_COMMAND_TYPES): COMMAND_TYPES plus LHLO,
    STARTTLS, AUTH with mechanisms and initial responses, AUTH responses and BDAT. Most
    need a state, an extension or LMTP to be legal: for a server's reader, not a
    client's send() in any state."""
    return st.one_of([command_of_type(cls, ext) for cls in ALL_COMMAND_TYPES])


# --------------------------------------------------------------------------- replies


@cache
def reply_codes(first: tuple[int, ...] = (2, 3, 4, 5)) -> st.SearchStrategy[int]:
    """Reply-code = %x32-35 %x30-35 %x30-39 (RFC 5321 §4.2)."""
    return st.builds(
        lambda a, b, c: 100 * a + 10 * b + c,
        st.sampled_from(list(first)),
        st.integers(0, 5),
        st.integers(0, 9),
    )


@cache
def enhanced_codes(class_: int) -> st.SearchStrategy[EnhancedStatusCode]:
    """class.subject.detail with the given class (RFC 3463 §2)."""
    part = st.integers(0, 999)
    return st.builds(EnhancedStatusCode, st.just(class_), part, part)


@cache
def reply_texts(max_size: int = 60) -> st.SearchStrategy[str]:
    """A reply line's text: textstring (HT, SP..~; RFC 5321 §4.2) plus some UTF-8
    (RFC 6531 §3.7.4.2); possibly empty. At most 4*max_size octets."""
    char = st.sampled_from(TEXTSTRING) | utf8_chars()
    return st.lists(char, max_size=max_size).map("".join)


_LOOKS_ENHANCED = re.compile(r"[245]\.[0-9]+\.[0-9]+(?: |\Z)")


@st.composite
def replies(
    draw: st.DrawFn,
    codes: st.SearchStrategy[int] | None = None,
    max_lines: int = 6,
    enhanced: bool | None = None,
) -> Reply:
    """Reply values: a code from ``codes``, 1..max_lines lines of text, and an enhanced
    status code of the matching class (RFC 3463 §2) or None (``enhanced`` forces one or
    the other; 3xx never gets one). Without an enhanced code the first line never starts
    with something that reads as one (it would be parsed as one, RFC 2034 §4)."""
    code = draw(codes if codes is not None else reply_codes())
    cls = code // 100
    lines = draw(st.lists(reply_texts(), min_size=1, max_size=max_lines))
    want = draw(st.booleans()) if enhanced is None else enhanced
    esc = draw(enhanced_codes(cls)) if want and cls in (2, 4, 5) else None
    if esc is None and _LOOKS_ENHANCED.match(lines[0]):
        lines[0] = "x" + lines[0]
    return Reply(code=code, lines=tuple(lines), enhanced=esc)


@cache
def negative_replies() -> st.SearchStrategy[Reply]:
    """4xx / 5xx replies, 421 (closing) among them."""
    return replies(codes=st.just(421) | reply_codes(first=(4, 5)), max_lines=2)


@cache
def greetings(codes: tuple[int, ...] = (220, 554, 421)) -> st.SearchStrategy[Greeting]:
    """Greeting values (RFC 5321 §4.3.2: 220, 554; §3.8: 421) with 1..4 text lines (no
    enhanced status code: RFC 2034 §3 leaves it out of the greeting)."""
    return st.builds(
        lambda code, lines: Greeting(code=code, lines=tuple(lines)),
        st.sampled_from(codes),
        st.lists(reply_texts(), min_size=1, max_size=4),
    )


# ---------------------------------------------------------------------------- bodies

_BODY_TOKENS = [
    b".",
    b"..",
    b"...",
    b"\r\n",
    b"\r",
    b"\n",
    b"\n\r",
    b"\r\r\n",
    b"\r\n.\r\n",  # the terminator, inside the content
    b"\r\n.",
    b".\r\n",
    b"\n.\n",  # bare-LF "end of data" (SMTP smuggling)
    b"\r.\r",
    b"\r\n..\r\n",
    b" ",
    b"From x\r\n",
    b"\x00",
    b"\xff\xfe\x80",
]


@cache
def bodies(max_tokens: int = 30, eight_bit: bool = True) -> st.SearchStrategy[bytes]:
    """Message bodies aimed at dot-stuffing and line endings (RFC 5321 §4.5.2, §2.3.8):
    leading dots, lines that are exactly "." or "..", bare CR, bare LF, LF CR, CR CR LF,
    the terminator ``<CRLF>.<CRLF>`` itself inside the content, NUL; 8-bit bytes unless
    ``eight_bit`` is False (a client sends 8-bit content only with BODY=8BITMIME or
    SMTPUTF8, RFC 6152 §3); empty, and with or without a final CRLF. Lines stay far below
    1000 octets (RFC 5321 §4.5.3.1.6)."""
    tokens = _BODY_TOKENS if eight_bit else [t for t in _BODY_TOKENS if t.isascii()]
    raw = st.binary(min_size=1, max_size=20)
    if not eight_bit:
        raw = raw.map(lambda b: bytes(x & 0x7F for x in b))
    token = st.one_of(
        st.sampled_from(tokens),
        raw,
        st.text(st.sampled_from(PRINTABLE_ASCII), min_size=1, max_size=20).map(str.encode),
    )
    return st.just(b"") | st.lists(token, max_size=max_tokens).map(b"".join)


# ---------------------------------------------------------------------------- chunkings


@cache
def chunkings(max_size: int = 40) -> st.SearchStrategy[list[int]]:
    """Split sizes for ``split(data, sizes)`` (cycled): byte by byte, whole, or a list
    of sizes in 1..max_size."""
    return st.one_of(
        st.just([1]),
        st.just([1 << 30]),
        st.lists(st.integers(1, max_size), min_size=1, max_size=8),
    )


def split(data: bytes, sizes: Sequence[int]) -> list[bytes]:
    """Cut ``data`` into pieces of the given sizes, cycled (sizes of 0 are skipped); the
    pieces join back to ``data``, and empty data gives no pieces."""
    usable = [n for n in sizes if n > 0] or [len(data) or 1]
    out: list[bytes] = []
    i = k = 0
    while i < len(data):
        n = usable[k % len(usable)]
        out.append(data[i : i + n])
        i += n
        k += 1
    return out


def rechunkings(data: bytes) -> st.SearchStrategy[list[bytes]]:
    """Re-chunkings of one byte stream, as a network may deliver it: the pieces (none
    empty) join back to ``data``. Whole, byte by byte, cut at random points, and cut
    right inside every CRLF and every ``<CRLF>.<CRLF>`` (where readers must look back)."""
    n = len(data)
    edges = sorted(
        {m.start() + k for m in re.finditer(rb"\r\n", data) for k in (1, 2)}
        | {m.start() + 3 for m in re.finditer(rb"\r\n\.\r\n", data)}
    )

    def cut(points: list[int]) -> list[bytes]:
        bounds = [0, *sorted({p for p in points if 0 < p < n}), n]
        return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]

    whole = [data] if data else []
    return st.one_of(
        st.just(whole),
        st.just([data[i : i + 1] for i in range(n)]),
        st.just(cut(edges)),
        st.lists(st.integers(0, n), max_size=12).map(cut),
    )
