"""All Hypothesis strategies of the test suite: addresses, parameters, commands, replies,
message bodies and chunkings.

Strategy factories are cached (``functools.cache``): tests draw from them inside loops,
and building and validating a fresh strategy tree per draw dominated the run time. Pass
hashable arguments (tuples, Extensions).

Every strategy generates values that are *legal to send*: what the RFC grammar (RFC 5321
§4.1.2, RFC 6531 §3.3) allows, sized so that no command or reply line goes over the 512
octet limits (RFC 5321 §4.5.3.1.4-5). Parameters are drawn for an Extensions set, since
a MAIL/RCPT parameter is only legal when the server advertised its extension
(RFC 5321 §4.1.1.11). UTF-8 (addresses, parameter values) only appears where SMTPUTF8 is
in effect (RFC 6531 §3.4).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from functools import cache
from typing import Protocol, TypeVar

from hypothesis import strategies as st

from sansio_smtp import (
    Address,
    Data,
    Ehlo,
    EnhancedStatusCode,
    Event,
    Expn,
    Extensions,
    Greeting,
    Helo,
    Help,
    MailFrom,
    Noop,
    Params,
    Quit,
    RcptTo,
    Reply,
    Rset,
    Vrfy,
)

__all__ = [
    "COMMAND_TYPES",
    "address_literals",
    "addresses",
    "anytime_commands",
    "ascii_local_parts",
    "bodies",
    "chunkings",
    "command_of_type",
    "commands",
    "data_commands",
    "domains",
    "dot_atoms",
    "draw_command",
    "draw_mail_from",
    "draw_mail_params",
    "draw_rcpt_params",
    "draw_rcpt_to",
    "ehlos",
    "enhanced_codes",
    "expns",
    "extensions",
    "greetings",
    "helos",
    "helps",
    "hostile_lines",
    "mail_froms",
    "mail_params",
    "negative_replies",
    "noops",
    "null_reverse_path",
    "postmasters",
    "quits",
    "quoted_local_parts",
    "rcpt_params",
    "rcpt_tos",
    "replies",
    "reply_codes",
    "reply_texts",
    "rsets",
    "string_args",
    "utf8_chars",
    "utf8_local_parts",
    "vrfys",
    "xtext",
]

_T = TypeVar("_T")


class Draw(Protocol):
    """What the draw_* helpers take: a composite's ``draw`` or ``st.data()``'s
    ``data.draw``."""

    def __call__(self, strategy: st.SearchStrategy[_T], /) -> _T: ...


# ------------------------------------------------------------------------- characters

ATEXT = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-"  # RFC 5322 §3.2.3
LET_DIG = string.ascii_letters + string.digits
LDH = LET_DIG + "-"
PRINTABLE_ASCII = "".join(chr(c) for c in range(0x20, 0x7F))  # qtextSMTP + quoted-pair
TEXTSTRING = "\t" + PRINTABLE_ASCII  # RFC 5321 §4.2 textstring = 1*(%d09 / %d32-126)


# Non-ASCII characters that trip up str methods: Unicode whitespace (str.split,
# str.strip), line separators (str.splitlines), C1 controls, BOM, zero-width space.
TRICKY_UTF8 = "\u0085\u00a0\u1680\u2000\u2028\u2029\u202f\u3000\u0080\u009f\ufeff\u200b"


@cache
def utf8_chars() -> st.SearchStrategy[str]:
    """One non-ASCII code point that UTF-8 can encode (RFC 6531 UTF8-non-ascii): no
    surrogates, everything else; the tricky ones above often."""
    non_surrogate = st.characters(min_codepoint=0x80, max_codepoint=0xD7FF) | st.characters(
        min_codepoint=0xE000
    )
    return st.sampled_from(TRICKY_UTF8) | non_surrogate


# --------------------------------------------------------------------------- domains


@cache
def _label(utf8: bool) -> st.SearchStrategy[str]:
    # sub-domain = Let-dig [Ldh-str] (RFC 5321 §4.1.2); U-label characters with SMTPUTF8.
    end = st.sampled_from(LET_DIG) | utf8_chars() if utf8 else st.sampled_from(LET_DIG)
    mid = st.sampled_from(LDH) | utf8_chars() if utf8 else st.sampled_from(LDH)
    one = end
    more = st.tuples(end, st.lists(mid, max_size=6).map("".join), end).map("".join)
    return one | more


@cache
def domains(utf8: bool = False) -> st.SearchStrategy[str]:
    """Domain = sub-domain *("." sub-domain), 1-3 labels of at most 8 characters."""
    return st.lists(_label(utf8), min_size=1, max_size=3).map(".".join)


@cache
def address_literals() -> st.SearchStrategy[str]:
    """``[192.0.2.1]`` and ``[IPv6:2001:db8::1]`` (RFC 5321 §4.1.3), the IPv6 tag in any
    case (ABNF strings are case-insensitive), compressed or exploded."""
    v4 = st.ip_addresses(v=4).map(lambda a: f"[{a}]")
    v6 = st.builds(
        lambda tag, a, exploded: f"[{tag}:{a.exploded if exploded else a.compressed}]",
        st.sampled_from(["IPv6", "ipv6", "IPV6"]),
        st.ip_addresses(v=6),
        st.booleans(),
    )
    return v4 | v6


# ------------------------------------------------------------------------ local parts


@cache
def dot_atoms(utf8: bool = False) -> st.SearchStrategy[str]:
    """Dot-string = Atom *("." Atom), 1-3 atoms of 1-8 characters."""
    char = st.sampled_from(ATEXT) | utf8_chars() if utf8 else st.sampled_from(ATEXT)
    atom = st.lists(char, min_size=1, max_size=8).map("".join)
    return st.lists(atom, min_size=1, max_size=3).map(".".join)


@cache
def quoted_local_parts(utf8: bool = False) -> st.SearchStrategy[str]:
    """Any printable-ASCII local part (0-20 characters), biased towards characters that
    force a Quoted-string: space, quote, backslash, dots in odd places, specials."""
    special = st.sampled_from(' "\\.@<>()[],;:')
    char = special | st.sampled_from(PRINTABLE_ASCII)
    if utf8:
        char = char | utf8_chars()
    return st.lists(char, max_size=20).map("".join)


@cache
def ascii_local_parts() -> st.SearchStrategy[str]:
    return dot_atoms() | quoted_local_parts()


@cache
def utf8_local_parts() -> st.SearchStrategy[str]:
    """Local parts for SMTPUTF8 (RFC 6531 §3.3): UTF-8 dot-atoms or quoted strings."""
    return dot_atoms(utf8=True) | quoted_local_parts(utf8=True)


@cache
def addresses(utf8: bool = False) -> st.SearchStrategy[Address]:
    """Address values: local part @ (domain / address literal); UTF-8 when ``utf8``."""
    local = ascii_local_parts()
    domain = domains() | address_literals()
    if utf8:
        local = utf8_local_parts() | local
        domain = domains(utf8=True) | domain
    return st.builds(Address, local, domain)


@cache
def postmasters() -> st.SearchStrategy[Address]:
    """``<Postmaster>`` without a domain (RFC 5321 §4.1.1.3), in any case."""
    return st.sampled_from(["Postmaster", "postmaster", "POSTMASTER", "PostMaster"]).map(
        lambda s: Address(s, None)
    )


@cache
def null_reverse_path() -> st.SearchStrategy[None]:
    """The null reverse-path ``<>`` (RFC 5321 §4.5.5) is ``reverse_path=None``."""
    return st.none()


# ------------------------------------------------------------------------- extensions

# keyword -> strategy for its EHLO parameters (RFC 5321 §4.1.1.1 ehlo-param = 1*(%d33-126))
_EHLO_PARAM = st.lists(
    st.sampled_from([chr(c) for c in range(0x21, 0x7F)]), min_size=1, max_size=12
).map("".join)
KNOWN_EXTENSIONS: dict[str, st.SearchStrategy[tuple[str, ...]]] = {
    "PIPELINING": st.just(()),  # RFC 2920
    # RFC 1870: no number or 0 (no limit), or a limit far above what the tests send
    "SIZE": st.one_of(
        st.just(()), st.just(("0",)), st.integers(10**6, 10**9).map(lambda n: (str(n),))
    ),
    "8BITMIME": st.just(()),  # RFC 6152
    "SMTPUTF8": st.just(()),  # RFC 6531
    "DSN": st.just(()),  # RFC 3461
    "ENHANCEDSTATUSCODES": st.just(()),  # RFC 2034
    "AUTH": st.lists(st.sampled_from(["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"]), unique=True).map(
        tuple
    ),  # RFC 4954
    "REQUIRETLS": st.just(()),  # RFC 8689
    "MT-PRIORITY": st.sampled_from([(), ("MIXER",), ("STANAG4406",), ("NSEP",)]),  # RFC 6710
    "DELIVERBY": st.one_of(st.just(()), st.integers(0, 10**6).map(lambda n: (str(n),))),
    "HELP": st.just(()),
    "CHUNKING": st.just(()),  # RFC 3030
    "STARTTLS": st.just(()),  # RFC 3207
}
# Keywords some code may know: made-up keywords avoid them, so they stay meaningless.
_RESERVED = frozenset(KNOWN_EXTENSIONS) | frozenset(
    [
        "BINARYMIME",
        "LIMITS",
        "ETRN",
        "EXPN",
        "VRFY",
        "ATRN",
        "SEND",
        "SOML",
        "SAML",
        "TURN",
        "VERB",
        "ONEX",
        "XUSR",
        "X-EXPS",
        "FUTURERELEASE",
        "RRVS",
    ]
)
_KEYWORD = (
    st.tuples(st.sampled_from(LET_DIG), st.lists(st.sampled_from(LDH), max_size=11).map("".join))
    .map("".join)
    .filter(lambda k: k.upper() not in _RESERVED)
)


def _shuffled(draw: Draw, items: list[_T]) -> list[_T]:
    # Fisher-Yates with cached integer strategies (st.permutations of a fresh list builds
    # a new strategy per draw, which Hypothesis must validate: slow in loops).
    items = list(items)
    for i in range(len(items) - 1, 0, -1):
        j = draw(st.integers(0, i))
        items[i], items[j] = items[j], items[i]
    return items


_UNKNOWN_EXTENSIONS = st.lists(
    st.tuples(_KEYWORD, st.lists(_EHLO_PARAM, max_size=3).map(tuple)), max_size=4
)


@cache
def extensions(
    known: tuple[str, ...] | None = None, unknown: bool = True
) -> st.SearchStrategy[Extensions]:
    """An Extensions set: some of the known keywords (or of ``known``) with plausible
    parameters, plus (when ``unknown``) made-up keywords with arbitrary ehlo-params."""
    names = tuple(KNOWN_EXTENSIONS) if known is None else known

    @st.composite
    def build(draw: st.DrawFn) -> Extensions:
        items: list[tuple[str, tuple[str, ...]]] = [
            (name, draw(KNOWN_EXTENSIONS.get(name, st.just(())))) for name in names
        ]
        items = [item for item in items if draw(st.booleans())]
        if unknown:
            items += draw(_UNKNOWN_EXTENSIONS)
        return Extensions(dict(_shuffled(draw, items)))

    return build()


# ---------------------------------------------------------------------------- params

_XCHARS = frozenset(range(0x21, 0x7F)) - {ord("+"), ord("=")}
_QCHARS = frozenset(range(0x21, 0x7F)) - {ord("+"), ord("="), ord("\\")}


def xtext(text: str) -> str:
    """RFC 3461 §4 xtext of ``text``'s UTF-8 octets: xchar as is, others "+" 2HEXDIG."""
    return "".join(chr(b) if b in _XCHARS else f"+{b:02X}" for b in text.encode("utf-8"))


def utf8_addr_unitext(address: str) -> str:
    """RFC 6533 §3 utf-8-addr-unitext: QCHAR and non-ASCII as is, others \\x{HEX}."""
    return "".join(
        ch if ord(ch) in _QCHARS or ord(ch) > 0x7F else f"\\x{{{ord(ch):02X}}}" for ch in address
    )


def _mailbox_text(utf8: bool = False) -> st.SearchStrategy[str]:
    # a <mailbox> with a dot-atom local part and a domain name (RFC 5321 §4.1.2)
    local = dot_atoms(utf8=True) | dot_atoms() if utf8 else dot_atoms()
    domain = domains(utf8=True) | domains() if utf8 else domains()
    return st.builds(lambda lp, d: str(Address(lp, d)), local, domain)


def _by_values() -> st.SearchStrategy[str]:
    # RFC 2852 §4: by-time ";" by-mode ["T"]; by-time <= 0 is not allowed with "R"
    notify = st.tuples(st.integers(-999_999_999, 999_999_999), st.just("N"))
    ret = st.tuples(st.integers(1, 999_999_999), st.just("R"))
    return st.builds(lambda tm, t: f"{tm[0]};{tm[1]}{t}", notify | ret, st.sampled_from(["", "T"]))


def _size_limit(ext: Extensions) -> int | None:
    # RFC 1870 §3: "SIZE" [SP 1*DIGIT]; 0 or no number means no fixed limit.
    args = ext.get("SIZE", ())
    if args and args[0].isdigit() and int(args[0]) > 0:
        return int(args[0])
    return None


def _case(keyword: str) -> st.SearchStrategy[str]:
    # Keywords are case-insensitive (RFC 5321 §2.4); Params upper-cases them.
    return st.sampled_from((keyword, keyword.lower(), keyword.title()))


_NOTIFY = st.one_of(
    st.just("NEVER"),
    st.lists(st.sampled_from(["SUCCESS", "FAILURE", "DELAY"]), min_size=1, unique=True).map(
        ",".join
    ),
)
# keyword -> (extension that must be advertised, value strategy; None: a bare keyword)
_MAIL_VALUES: dict[str, tuple[str, st.SearchStrategy[str | None]]] = {
    "BODY": ("8BITMIME", st.sampled_from(["7BIT", "8BITMIME", "8bitmime"])),  # RFC 6152 §2
    "RET": ("DSN", st.sampled_from(["FULL", "HDRS"])),  # RFC 3461 §4.3
    "ENVID": (  # RFC 3461 §4.4: xtext, at most 100 characters
        "DSN",
        st.text(st.sampled_from(PRINTABLE_ASCII), min_size=1, max_size=20).map(xtext),
    ),
    "AUTH": ("AUTH", st.just("<>") | _mailbox_text().map(xtext)),  # RFC 4954 §5
    "MT-PRIORITY": ("MT-PRIORITY", st.integers(-9, 9).map(str)),  # RFC 6710 §3
    "BY": ("DELIVERBY", _by_values()),  # RFC 2852 §4
}
_ORCPT_ASCII = _mailbox_text().map(lambda a: f"rfc822;{xtext(a)}")
_ORCPT_UTF8 = _ORCPT_ASCII | _mailbox_text(utf8=True).map(lambda a: f"utf-8;{utf8_addr_unitext(a)}")


def draw_mail_params(draw: Draw, ext: Extensions, smtputf8: bool | None = None) -> Params:
    """Draw MAIL FROM parameters legal under the advertised ``ext``, each value following
    its extension's grammar: SIZE (RFC 1870, at most the advertised limit), BODY
    (RFC 6152), RET/ENVID (RFC 3461), AUTH (RFC 4954 §5), MT-PRIORITY (RFC 6710), BY
    (RFC 2852). REQUIRETLS is left out (it needs TLS, RFC 8689). SMTPUTF8 (RFC 6531) is
    included when ``smtputf8`` is True (it must be advertised), left out when False,
    drawn when None."""
    items: list[tuple[str, str | None]] = []
    if "SIZE" in ext and draw(st.booleans()):
        items.append((draw(_case("SIZE")), str(draw(st.integers(0, _size_limit(ext) or 10**12)))))
    for keyword, (needed, values) in _MAIL_VALUES.items():
        if needed in ext and draw(st.booleans()):
            items.append((draw(_case(keyword)), draw(values)))
    if smtputf8 is None:
        smtputf8 = "SMTPUTF8" in ext and draw(st.booleans())
    if smtputf8:
        items.append((draw(_case("SMTPUTF8")), None))
    return Params(_shuffled(draw, items))


def draw_rcpt_params(draw: Draw, ext: Extensions, utf8: bool = False) -> Params:
    """Draw RCPT TO parameters legal under the advertised ``ext``: NOTIFY and ORCPT when
    DSN is advertised (RFC 3461 §4.1-2). ORCPT is ``rfc822;xtext``, or in an SMTPUTF8
    transaction also ``utf-8;`` utf-8-addr-unitext with the UTF-8 as is (RFC 6533 §3)."""
    items: list[tuple[str, str | None]] = []
    if "DSN" in ext:
        if draw(st.booleans()):
            items.append((draw(_case("NOTIFY")), draw(_NOTIFY)))
        if draw(st.booleans()):
            items.append((draw(_case("ORCPT")), draw(_ORCPT_UTF8 if utf8 else _ORCPT_ASCII)))
    return Params(_shuffled(draw, items))


@cache
def mail_params(ext: Extensions, smtputf8: bool | None = None) -> st.SearchStrategy[Params]:
    """Strategy form of draw_mail_params."""
    return st.composite(lambda draw: draw_mail_params(draw, ext, smtputf8))()


@cache
def rcpt_params(ext: Extensions, utf8: bool = False) -> st.SearchStrategy[Params]:
    """Strategy form of draw_rcpt_params."""
    return st.composite(lambda draw: draw_rcpt_params(draw, ext, utf8))()


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
    return st.builds(Helo, domain=domains() | address_literals())


@cache
def ehlos() -> st.SearchStrategy[Ehlo]:
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
    return st.just(Data())


@cache
def rsets() -> st.SearchStrategy[Rset]:
    return st.just(Rset())


@cache
def quits() -> st.SearchStrategy[Quit]:
    return st.just(Quit())


@cache
def noops(edge_spaces: bool = False) -> st.SearchStrategy[Noop]:
    return st.builds(Noop, text=st.none() | string_args(edge_spaces))


@cache
def vrfys(edge_spaces: bool = False) -> st.SearchStrategy[Vrfy]:
    return st.builds(Vrfy, text=string_args(edge_spaces))


@cache
def expns(edge_spaces: bool = False) -> st.SearchStrategy[Expn]:
    return st.builds(Expn, text=string_args(edge_spaces))


@cache
def helps(edge_spaces: bool = False) -> st.SearchStrategy[Help]:
    return st.builds(Help, topic=st.none() | string_args(edge_spaces))


@cache
def anytime_commands() -> st.SearchStrategy[Event]:
    """Commands valid in any state once greeted (RFC 5321 §4.1.4): NOOP, VRFY, EXPN,
    HELP, RSET."""
    return st.one_of(noops(), vrfys(), expns(), helps(), rsets())


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
    """Any single command event (legal in isolation; sequencing is up to the caller)."""
    return st.one_of([command_of_type(cls, ext) for cls in COMMAND_TYPES])


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
def bodies(max_tokens: int = 30) -> st.SearchStrategy[bytes]:
    """Message bodies: leading dots, lines that are exactly "." or "..", bare CR, bare LF,
    CRLF, the terminator itself, 8-bit bytes; empty, and with or without a final CRLF.
    Lines stay far below 1000 octets."""
    token = st.one_of(
        st.sampled_from(_BODY_TOKENS),
        st.binary(min_size=1, max_size=20),
        st.text(st.sampled_from(PRINTABLE_ASCII), min_size=1, max_size=20).map(str.encode),
    )
    return st.just(b"") | st.lists(token, max_size=max_tokens).map(b"".join)


# ---------------------------------------------------------------------------- chunkings


@cache
def chunkings(max_size: int = 40) -> st.SearchStrategy[list[int]]:
    """Split sizes for tests.helpers.chunked (cycled): byte by byte, whole, or a list of
    sizes in 1..max_size."""
    return st.one_of(
        st.just([1]),
        st.just([1 << 30]),
        st.lists(st.integers(1, max_size), min_size=1, max_size=8),
    )


# ------------------------------------------------------------------- hostile peer text

# Where a server may quote what the peer sent: parameter keywords and values, addresses,
# verbs and arguments (issue 10 item 13: hints quoting them went over 512 octets).
_QUOTING_PREFIXES = [
    b"MAIL FROM:<a@b.example> ",
    b"MAIL FROM:<a@b.example> X=",
    b"MAIL FROM:<a@b.example> SIZE=",
    b"MAIL FROM:<a@b.example> ENVID=",
    b"MAIL FROM:<a@b.example> BODY=",
    b"MAIL FROM:<a@b.example> RET=",
    b"MAIL FROM:<a@b.example> AUTH=",
    b"MAIL FROM:<a@b.example> MT-PRIORITY=",
    b"MAIL FROM:<a@b.example> BY=",
    b"MAIL FROM:<a@b.example> SMTPUTF8=",
    b"MAIL FROM:<a@b.example> SIZE=1 SIZE=",
    b"MAIL FROM:<",
    b"RCPT TO:<c@d.example> NOTIFY=",
    b"RCPT TO:<c@d.example> ORCPT=rfc822;",
    b"RCPT TO:<c@d.example> ",
    b"RCPT TO:<",
    b"STARTTLS ",
    b"HELP ",
    b"NOOP ",
    b"VRFY ",
    b"EHLO ",
    b"LHLO ",
    b"AUTH ",
    b"AUTH PLAIN ",
    b"BDAT ",
    b"",
]
# What the quoted text is made of: controls (escaped to 4 characters each), non-ASCII
# UTF-8 (escaped to 4-6), invalid UTF-8, and plain characters that pass the grammar.
_QUOTED_UNITS = [
    b"\x01",
    b"\x7f",
    b"\xc2\x85",
    b"\xe2\x80\xa8",
    b"\xf0\x9f\x98\x80",
    b"\xff",
    b"K",
    b"1",
    b"=",
    b" ",
    b"@",
    b">",
    b"+2B",
    b"\\",
    b"'",
]


@cache
def hostile_lines() -> st.SearchStrategy[bytes]:
    """One command line (with CRLF) that puts long runs of hostile text where a server
    may quote it, up to about the 512-octet command line limit and past it."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        prefix = draw(st.sampled_from(_QUOTING_PREFIXES))
        units = draw(st.lists(st.sampled_from(_QUOTED_UNITS), min_size=1, max_size=3))
        count = draw(st.integers(1, 520))
        body = (b"".join(units) * count)[: draw(st.integers(1, 530))]
        tail = draw(st.sampled_from([b"", b">", b"=1", b" SIZE=1"]))
        return prefix + body + tail + b"\r\n"

    return build()
