# Value strategies: characters, domains, address literals, local parts, addresses (valid
# and near-miss invalid), EHLO extension sets, MAIL/RCPT parameters.
#
# Strategy factories are cached (functools.cache): harnesses draw from them inside loops,
# and building and validating a fresh strategy tree per draw dominated the run time. Pass
# hashable arguments (tuples, Extensions).
#
# Valid values are *legal to send*: what the RFC grammar (RFC 5321 §4.1.2, RFC 6531 §3.3)
# allows, sized so that no command line goes over 512 octets (RFC 5321 §4.5.3.1.4).
# Parameters are drawn for an Extensions set, since a MAIL/RCPT parameter is only legal
# when the server advertised its extension (RFC 5321 §4.1.1.11). UTF-8 (addresses,
# parameter values) only appears where SMTPUTF8 is in effect (RFC 6531 §3.4).
from __future__ import annotations

import string
from functools import cache
from typing import Protocol, TypeVar

from hypothesis import strategies as st

from .. import Address, Extensions, Params

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
    """ASCII local parts: dot-atoms or anything that needs a Quoted-string (RFC 5321
    §4.1.2)."""
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


def shuffled(draw: Draw, items: list[_T]) -> list[_T]:
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
        return Extensions(dict(shuffled(draw, items)))

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
    return Params(shuffled(draw, items))


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
    return Params(shuffled(draw, items))


@cache
def mail_params(ext: Extensions, smtputf8: bool | None = None) -> st.SearchStrategy[Params]:
    """Strategy form of draw_mail_params."""
    return st.composite(lambda draw: draw_mail_params(draw, ext, smtputf8))()


@cache
def rcpt_params(ext: Extensions, utf8: bool = False) -> st.SearchStrategy[Params]:
    """Strategy form of draw_rcpt_params."""
    return st.composite(lambda draw: draw_rcpt_params(draw, ext, utf8))()


# ------------------------------------------------------------------ invalid addresses

# One-character breakages of a valid mailbox, each naming the rule it breaks.
_UNQUOTED_SPECIALS = ' "(),:;<>[]\\'  # not atext (RFC 5322 §3.2.3) outside a Quoted-string
_CONTROLS = [chr(c) for c in range(0x20)] + ["\x7f"]  # never in qtextSMTP (RFC 5321 §4.1.2)
_BAD_LITERALS = [
    "[256.1.1.1]",  # Snum is 0-255 (RFC 5321 §4.1.3)
    "[1.2.3]",  # IPv4-address-literal has four Snums
    "[1.2.3.4.5]",
    "[IPv6:1::2::3]",  # two "::" (RFC 4291 §2.2)
    "[IPv6:12345::1]",  # a 16-bit piece has at most 4 hex digits
    "[IPv6:zz]",
    "[IPv6:1:2:3:4:5:6:7:8:9]",
    "[]",
    "[1.2.3.4",  # unclosed
    "[ 1.2.3.4]",
]


@cache
def invalid_addresses(utf8: bool = True) -> st.SearchStrategy[str]:
    """Near-miss mailbox strings (``local@domain`` without angle brackets) that
    ``Address.parse(text, utf8=utf8)`` rejects: a valid address with one thing broken.

    Missing, empty or doubled "@"; a leading, trailing or doubled dot in a Dot-string; an
    unquoted special (space, quote, parentheses, comma, colon, brackets, backslash); a
    control character (C0, DEL) inside a Quoted-string, raw or as a quoted-pair; an
    unbalanced quote; a domain label that starts or ends with "-", holds "_" or is empty;
    an address literal with a bad IPv4 or IPv6 address (RFC 5321 §4.1.2-3). With
    ``utf8=False`` also valid UTF-8 addresses, which need SMTPUTF8 (RFC 6531 §3.4)."""
    local = dot_atoms()
    domain = domains()

    def special(lp: str, pos: int, ch: str) -> str:
        pos %= len(lp) + 1
        return lp[:pos] + ch + lp[pos:]

    families: list[st.SearchStrategy[str]] = [
        st.builds(lambda lp, d: lp + d, local, domain),  # no "@"
        st.builds(lambda d: "@" + d, domain),  # empty local part
        st.builds(lambda lp: lp + "@", local),  # empty domain
        st.builds(lambda lp, d: f"{lp}@@{d}", local, domain),
        st.builds(lambda lp, d: f".{lp}@{d}", local, domain),
        st.builds(lambda lp, d: f"{lp}.@{d}", local, domain),
        st.builds(lambda lp, d: f"{lp}..{lp}@{d}", local, domain),
        st.builds(
            lambda lp, pos, ch, d: f"{special(lp, pos, ch)}@{d}",
            local,
            st.integers(0, 20),
            st.sampled_from(_UNQUOTED_SPECIALS),
            domain,
        ),
        st.builds(
            lambda lp, pos, ch, esc, d: f'"{special(lp, pos, esc + ch)}"@{d}',
            local,
            st.integers(0, 20),
            st.sampled_from(_CONTROLS),
            st.sampled_from(["", "\\"]),
            domain,
        ),
        st.builds(lambda lp, d: f'"{lp}@{d}', local, domain),  # unbalanced quote
        st.builds(
            lambda lp, d, bad: f"{lp}@{bad.format(d)}",
            local,
            domain,
            st.sampled_from(["-{}", "{}-", "{}..x", "{}.", ".{}", "{}_x", "{} x"]),
        ),
        st.builds(lambda lp, lit: f"{lp}@{lit}", local, st.sampled_from(_BAD_LITERALS)),
    ]
    if not utf8:
        families.append(
            st.builds(lambda a: str(a), addresses(utf8=True)).filter(lambda t: not t.isascii())
        )
    return st.one_of(families).filter(lambda t: t.lower() != "postmaster")
