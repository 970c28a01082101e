# Typed, validated ESMTP parameters of MAIL and RCPT (RFC 5321 §4.1.2 Mail-parameters and
# Rcpt-parameters) for the extensions this library knows: SIZE, BODY, SMTPUTF8, DSN (RET,
# ENVID, NOTIFY, ORCPT), AUTH, REQUIRETLS, MT-PRIORITY and DELIVERBY (BY).
#
# Strategy: Params (_params.py) stays the generic keyword -> value mapping, exactly as on the
# wire; this module never changes it. For every parameter there is one private parser (wire
# value -> typed value, or ValueError naming the RFC rule that was broken, with its grammar
# quoted beside it) and one writer (typed value -> canonical wire value), such that
# parse(write(x)) == x. Everything public is built from those pairs:
#   - accessors (size(), body(), notify(), ...) read one parameter out of a Params;
#   - verify_mail_params / verify_rcpt_params raise ParamError (a ValueError) naming the
#     first bad parameter and the reply code a server answers it with (555 unknown or not
#     advertised, 501 malformed, 552 SIZE over the limit, 530 REQUIRETLS without TLS). They
#     build no Reply: the rule layer (_rules.py) turns a ParamError into the server's reply
#     and the client's LocalProtocolError alike;
#   - builders (mail_params, auth_mail_param, dsn_mail_params, dsn_rcpt_params) write the
#     canonical wire form, ready for MailFrom(params=...) / RcptTo(params=...).
#
# Rules: pure functions, no I/O, no state. Which extension a keyword needs is data
# (_MAIL_EXTENSIONS / _RCPT_EXTENSIONS). The checks raise nothing but ParamError, whatever
# the Params: every parser failure is a ValueError caught in one place. Reply texts never
# echo parameter values (they may hold any UTF-8); client-side error messages do, since
# the data is the caller's own. Enumerated values (BODY, RET, NOTIFY, BY modes) are ASCII
# and matched case-insensitively, as ABNF literals are (RFC 5234 §2.3); writers emit
# upper case.
from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar, final

import attrs

from . import _abnf
from ._address import Address
from ._extensions import MAIL_PARAMETERS, RCPT_PARAMETERS, Extensions
from ._params import Params
from ._util import MAX_QUOTED, LazyPattern, quote

__all__ = [
    "Body",
    "DeliverBy",
    "Notify",
    "OriginalRecipient",
    "ParamError",
    "Ret",
    "auth",
    "auth_mail_param",
    "body",
    "deliver_by",
    "dsn_mail_params",
    "dsn_rcpt_params",
    "envid",
    "mail_params",
    "mt_priority",
    "notify",
    "orcpt",
    "requiretls",
    "ret",
    "size",
    "smtputf8",
    "utf8_addr_decode",
    "utf8_addr_encode",
    "verify_mail_params",
    "verify_rcpt_params",
    "xtext_decode",
    "xtext_encode",
]

ParamsArg = Params | Mapping[str, "str | None"]
_T = TypeVar("_T")

#: RFC 3461 §4.4: the ENVID is at most 100 characters long (checked after xtext decoding).
MAX_ENVID_LENGTH = 100
#: RFC 3461 §4.2: the ORCPT esmtp-value is at most 500 characters long.
MAX_ORCPT_LENGTH = 500
#: RFC 2852 §4: by-time = ["-" / "+"] 1*9DIGIT
MAX_BY_TIME = 999_999_999


# --------------------------------------------------------------------------- value types


class Body(enum.Enum):
    """The BODY parameter of MAIL (RFC 6152 §2, RFC 3030 §3); the value is the wire token.

    ``body-value = "7BIT" / "8BITMIME"`` (RFC 6152), plus ``"BINARYMIME"`` (RFC 3030),
    which needs both the BINARYMIME and CHUNKING extensions (the content goes with BDAT).
    """

    SEVEN_BIT = "7BIT"
    EIGHT_BIT_MIME = "8BITMIME"
    BINARY_MIME = "BINARYMIME"


class Ret(enum.Enum):
    """The RET parameter of MAIL (RFC 3461 §4.3): ``ret-value = "FULL" / "HDRS"``, what a
    DSN returns of the message: all of it, or only the headers."""

    FULL = "FULL"
    HDRS = "HDRS"


class Notify(enum.Enum):
    """One element of the NOTIFY parameter of RCPT (RFC 3461 §4.1)::

        notify-esmtp-value  = "NEVER" / 1#notify-list-element
        notify-list-element = "SUCCESS" / "FAILURE" / "DELAY"

    NEVER appears by itself; the others in any combination.
    """

    NEVER = "NEVER"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    DELAY = "DELAY"


# The canonical order in which dsn_rcpt_params writes NOTIFY elements.
_NOTIFY_ORDER = (Notify.SUCCESS, Notify.FAILURE, Notify.DELAY)

# The patterns of this module compile on first use (LazyPattern): most programs never
# read most of these parameters.
# RFC 3461 §4.2: addr-type = atom (RFC 822 atom: the same characters as RFC 5322 atext).
_ATOM_RE = LazyPattern(_abnf.ATEXT + r"+\Z")


def _check_addr_type(_inst: object, _attr: object, value: str) -> None:
    if not isinstance(value, str) or not _ATOM_RE.match(value):
        raise ValueError(f"ORCPT addr-type must be an atom (RFC 3461 §4.2), not {value!r}")


def _check_orcpt_address(_inst: object, _attr: object, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError("the ORCPT address must be a non-empty str")


@final
@attrs.frozen
class OriginalRecipient:
    """The ORCPT parameter of RCPT (RFC 3461 §4.2)::

        orcpt-parameter            = "ORCPT=" original-recipient-address
        original-recipient-address = addr-type ";" xtext
        addr-type                  = atom

    - ``addr_type``: the address type as written, typically ``"rfc822"`` or ``"utf-8"``
      (IANA "Address Types" registry); compare it case-insensitively.
    - ``address``: the decoded address. For ``rfc822`` and other types it is the xtext
      decoding of the wire value; for ``utf-8`` (RFC 6533 §3) the wire value is a
      utf-8-addr-xtext or utf-8-addr-unitext (``\\x{HEX}`` escapes) and the address must be
      a mailbox.
    """

    addr_type: str = attrs.field(validator=_check_addr_type)
    address: str = attrs.field(validator=_check_orcpt_address)

    @property
    def is_utf8(self) -> bool:
        """True for the ``utf-8`` address type of RFC 6533."""
        return self.addr_type.lower() == "utf-8"


def _check_by_time(_inst: object, _attr: object, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"DeliverBy.seconds must be an int, not {value!r}")
    if not -MAX_BY_TIME <= value <= MAX_BY_TIME:
        raise ValueError(f"by-time is at most 9 digits (RFC 2852 §4), not {value!r}")


def _coerce_mode(value: str) -> str:
    return value.upper() if isinstance(value, str) and value.isascii() else value


def _check_mode(inst: DeliverBy, _attr: object, value: str) -> None:
    if value not in ("N", "R"):
        raise ValueError(f'by-mode is "N" or "R" (RFC 2852 §4), not {value!r}')
    if value == "R" and inst.seconds <= 0:
        raise ValueError('a by-time <= 0 is not allowed with by-mode "R" (RFC 2852 §4)')


@final
@attrs.frozen
class DeliverBy:
    """The BY parameter of MAIL (DELIVERBY, RFC 2852 §4)::

        by-value = by-time ";" by-mode [ by-trace ]
        by-time  = ["-" / "+"] 1*9DIGIT  ; a <= zero value is not allowed with "R"
        by-mode  = "N" / "R"             ; "Notify" or "Return"
        by-trace = "T"                   ; "Trace"

    - ``seconds``: the by-time, -999999999..999999999.
    - ``mode``: ``"N"`` (notify when late) or ``"R"`` (return when late); lower case is
      upper-cased.
    - ``trace``: whether the by-trace flag ``T`` is set.
    """

    seconds: int = attrs.field(validator=_check_by_time)
    mode: str = attrs.field(converter=_coerce_mode, validator=_check_mode)
    trace: bool = False


# ------------------------------------------------------------------------------- xtext

# RFC 3461 §4:
#   xtext   = *( xchar / hexchar )
#   xchar   = any ASCII CHAR between "!" (33) and "~" (126) inclusive, except for "+" and "="
#   hexchar = ASCII "+" immediately followed by two upper case hexadecimal digits
_XCHARS = frozenset(range(0x21, 0x7F)) - {ord("+"), ord("=")}
_XTEXT_RE = LazyPattern(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*\Z")
_HEXCHAR_RE = LazyPattern(r"\+([0-9A-F]{2})")


def xtext_encode(text: str) -> str:
    """Encode ``text`` as RFC 3461 §4 xtext: its UTF-8 octets, each one outside
    ``"!"``..``"~"`` and each ``"+"`` and ``"="`` written as ``"+HH"`` (upper-case hex).

    ``xtext_decode(xtext_encode(s)) == s`` for every str that UTF-8 can encode; a lone
    surrogate raises ValueError (UnicodeEncodeError).
    """
    return "".join(chr(b) if b in _XCHARS else f"+{b:02X}" for b in text.encode("utf-8"))


def xtext_decode(value: str) -> str:
    """Decode RFC 3461 §4 xtext. Raise ValueError when ``value`` is not xtext (a character
    outside ``%d33-126``, a ``"="``, a ``"+"`` not followed by two UPPER-case hex digits)
    or when the decoded octets are not UTF-8."""
    if not _XTEXT_RE.match(value):
        raise ValueError(
            "not xtext: only %d33-126 except '+' and '=', and '+' followed by two "
            "upper-case hex digits (RFC 3461 §4)"
        )
    raw = _HEXCHAR_RE.sub(lambda m: chr(int(m[1], 16)), value)
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("xtext decodes to octets that are not UTF-8") from None


# RFC 6533 §3 (the 7-bit and the UTF-8 form of an address of type "utf-8"):
#   utf-8-addr-xtext    = 1*(QCHAR / EmbeddedUnicodeChar)   ; ORCPT without SMTPUTF8
#   utf-8-addr-unitext  = 1*(QUCHAR / EmbeddedUnicodeChar)  ; ORCPT with SMTPUTF8
#   QCHAR               = %x21-2a / %x2c-3c / %x3e-5b / %x5d-7e
#                         ; ASCII printable characters except CTLs, SP, '\', '+', '='
#   QUCHAR              = QCHAR / UTF8-2 / UTF8-3 / UTF8-4
#   EmbeddedUnicodeChar = %x5C.78 "{" HEXPOINT "}"           ; "\x{" HEXPOINT "}"
#   HEXPOINT            = 2 hex digits for the xtext-specials, "\" and U+0080..U+00FF;
#                         3 to 6 hex digits without leading zeros, no surrogates,
#                         at most 10FFFF
# Decoding accepts lower-case hex digits (ABNF strings are case-insensitive) and any
# control character in the 2-digit form (the RFC's list of specials is narrower); it
# rejects a \x{..} for a QCHAR, which must be written as itself. Encoding writes upper case.
_QCHARS = frozenset(range(0x21, 0x7F)) - {ord("+"), ord("="), ord("\\")}
_UTF8_ADDR_RE = LazyPattern(
    r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x5b\x5d-\x7e]|[^\x00-\x7f]|\\x\{[0-9A-Fa-f]{2,6}\})+\Z"
)
_EMBEDDED_RE = LazyPattern(r"\\x\{([0-9A-Fa-f]{2,6})\}")


def utf8_addr_encode(address: str, *, unitext: bool = False) -> str:
    """Encode an address for the ``utf-8`` address type (RFC 6533 §3).

    Characters outside QCHAR become ``\\x{HEX}`` (upper case, at least two digits). With
    ``unitext=False`` (utf-8-addr-xtext, 7-bit: for ORCPT when SMTPUTF8 was not
    advertised) non-ASCII characters are escaped too; with ``unitext=True``
    (utf-8-addr-unitext) they are kept as they are. Raise ValueError for an empty string,
    U+0000 or a surrogate, which HEXPOINT cannot express.
    """
    if not address:
        raise ValueError("utf-8-addr-xtext is at least one character (RFC 6533 §3)")
    out: list[str] = []
    for ch in address:
        o = ord(ch)
        if o in _QCHARS or (unitext and o > 0x7F and not 0xD800 <= o <= 0xDFFF):
            out.append(ch)
        elif o == 0 or 0xD800 <= o <= 0xDFFF:
            raise ValueError(f"HEXPOINT cannot express U+{o:04X} (RFC 6533 §3)")
        else:
            out.append(f"\\x{{{o:02X}}}")
    return "".join(out)


def _decode_hexpoint(m: re.Match[str]) -> str:
    digits = m[1]
    o = int(digits, 16)
    if len(digits) == 2:
        if o in _QCHARS:
            raise ValueError(f"\\x{{{digits}}} stands for a QCHAR, which is written as itself")
    elif digits[0] == "0":
        raise ValueError("a HEXPOINT of 3 to 6 digits has no leading zero (RFC 6533 §3)")
    if o == 0 or 0xD800 <= o <= 0xDFFF or o > 0x10FFFF:
        raise ValueError(f"\\x{{{digits}}} is not a Unicode scalar value HEXPOINT allows")
    return chr(o)


def utf8_addr_decode(value: str) -> str:
    """Decode a utf-8-addr-xtext or utf-8-addr-unitext (RFC 6533 §3): ``\\x{HEX}`` escapes
    become the characters they stand for. Raise ValueError when ``value`` is neither."""
    if not _UTF8_ADDR_RE.match(value):
        raise ValueError(
            "not a utf-8-addr-xtext/unitext: printable characters except '\\', '+' and '=', "
            "UTF-8, and \\x{HEX} escapes (RFC 6533 §3)"
        )
    return _EMBEDDED_RE.sub(_decode_hexpoint, value)


# ------------------------------------------------------------------- parsers / writers
# Each parser takes the wire value (never None: a missing value is caught before) and
# returns the typed value or raises ValueError with a reason that does not quote the value.

_SIZE_RE = LazyPattern(r"[0-9]{1,20}\Z")  # RFC 1870 §3 (4): size-value ::= 1*20DIGIT
_MT_PRIORITY_RE = LazyPattern(r"[+-]?[0-9]\Z")  # RFC 6710 §3: -9..9, optional sign
_INTEGER_RE = LazyPattern(r"[+-]?[0-9]+\Z")
_BY_VALUE_RE = LazyPattern(r"([+-]?[0-9]{1,9});([NRnr])([Tt]?)\Z")  # RFC 2852 §4


def _ascii_upper(value: str, what: str) -> str:
    # str.upper() maps some non-ASCII letters to ASCII ("ß" -> "SS"): refuse them first.
    if not value.isascii():
        raise ValueError(f"{what} is ASCII")
    return value.upper()


def _parse_size(value: str) -> int:
    if not _SIZE_RE.match(value):
        raise ValueError("size-value is 1 to 20 decimal digits (RFC 1870 §3)")
    return int(value)


def _parse_body(value: str) -> Body:
    token = _ascii_upper(value, "a BODY value")
    for member in Body:
        if member.value == token:
            return member
    raise ValueError('BODY is "7BIT" / "8BITMIME" (RFC 6152 §2) or "BINARYMIME" (RFC 3030 §3)')


def _parse_ret(value: str) -> Ret:
    token = _ascii_upper(value, "a RET value")
    if token == "FULL":
        return Ret.FULL
    if token == "HDRS":
        return Ret.HDRS
    raise ValueError('ret-value = "FULL" / "HDRS" (RFC 3461 §4.3)')


def _parse_envid(value: str) -> str:
    decoded = xtext_decode(value)
    if len(decoded) > MAX_ENVID_LENGTH:
        raise ValueError(f"ENVID is at most {MAX_ENVID_LENGTH} characters (RFC 3461 §4.4)")
    return decoded


def _write_envid(value: str) -> str:
    if not value:
        raise ValueError("ENVID cannot be empty: an esmtp-value is 1*character (RFC 5321)")
    if len(value) > MAX_ENVID_LENGTH:
        raise ValueError(f"ENVID is at most {MAX_ENVID_LENGTH} characters (RFC 3461 §4.4)")
    return xtext_encode(value)


_NOTIFY_LIST = {n.value: n for n in _NOTIFY_ORDER}


def _parse_notify(value: str) -> frozenset[Notify]:
    token = _ascii_upper(value, "a NOTIFY value")
    if token == "NEVER":
        return frozenset((Notify.NEVER,))
    result: set[Notify] = set()
    for item in token.split(","):
        if item == "NEVER":
            raise ValueError("NEVER must appear by itself (RFC 3461 §4.1)")
        element = _NOTIFY_LIST.get(item)
        if element is None:
            raise ValueError(
                'notify-esmtp-value = "NEVER" / 1#notify-list-element, '
                'notify-list-element = "SUCCESS" / "FAILURE" / "DELAY" (RFC 3461 §4.1)'
            )
        if element in result:
            raise ValueError(f"{element.value} appears twice in NOTIFY (RFC 3461 §4.1)")
        result.add(element)
    return frozenset(result)


def _write_notify(value: Iterable[Notify]) -> str:
    items = set(value)
    if not items:
        raise ValueError("NOTIFY needs at least one element (RFC 3461 §4.1)")
    for item in items:
        if not isinstance(item, Notify):
            raise TypeError(f"NOTIFY elements are Notify members, not {item!r}")
    if Notify.NEVER in items:
        if len(items) > 1:
            raise ValueError("NEVER cannot be combined with other NOTIFY elements (RFC 3461 §4.1)")
        return Notify.NEVER.value
    return ",".join(n.value for n in _NOTIFY_ORDER if n in items)


def _parse_mailbox(text: str, what: str) -> Address:
    try:
        address = Address.parse(text)
    except ValueError:
        raise ValueError(f"{what} is not a mailbox (RFC 5321 §4.1.2)") from None
    if address.domain is None:
        raise ValueError(f"{what} is not a mailbox: it has no domain (RFC 5321 §4.1.2)")
    return address


def _parse_orcpt(value: str) -> OriginalRecipient:
    if len(value) > MAX_ORCPT_LENGTH:
        raise ValueError(f"ORCPT is at most {MAX_ORCPT_LENGTH} characters (RFC 3461 §4.2)")
    addr_type, sep, encoded = value.partition(";")
    if not sep or not _ATOM_RE.match(addr_type):
        raise ValueError('ORCPT is addr-type ";" xtext with an atom addr-type (RFC 3461 §4.2)')
    if not encoded:
        raise ValueError("the ORCPT address is empty (RFC 3461 §4.2)")
    if addr_type.lower() == "utf-8":
        address = utf8_addr_decode(encoded)
        _parse_mailbox(address, "a utf-8 ORCPT address")  # RFC 6533 §3: utf-8-address
    else:
        address = xtext_decode(encoded)
    return OriginalRecipient(addr_type, address)


def _write_orcpt(value: OriginalRecipient, *, utf8: bool) -> str:
    if value.is_utf8:
        _parse_mailbox(value.address, "a utf-8 ORCPT address")
        encoded = utf8_addr_encode(value.address, unitext=utf8)
    else:
        encoded = xtext_encode(value.address)
    wire = f"{value.addr_type};{encoded}"
    if len(wire) > MAX_ORCPT_LENGTH:
        raise ValueError(f"ORCPT is at most {MAX_ORCPT_LENGTH} characters (RFC 3461 §4.2)")
    return wire


def _parse_auth(value: str) -> str | None:
    # RFC 4954 §8: auth-param = "AUTH=" xtext; the decoded xtext MUST be a <mailbox> or "<>".
    decoded = xtext_decode(value)
    if decoded == "<>":
        return None
    _parse_mailbox(decoded, "the AUTH value")
    return decoded


def _write_auth(mailbox: str | None) -> str:
    if mailbox is None:
        return "<>"
    _parse_mailbox(mailbox, "the AUTH mailbox")
    return xtext_encode(mailbox)


def _parse_mt_priority(value: str) -> int:
    if _MT_PRIORITY_RE.match(value):
        return int(value)
    if _INTEGER_RE.match(value):
        raise ValueError("MT-PRIORITY is out of range -9..9 (RFC 6710 §3)")
    raise ValueError("MT-PRIORITY is an integer -9..9 with an optional sign (RFC 6710 §3)")


def _write_mt_priority(value: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not -9 <= value <= 9:
        raise ValueError(f"MT-PRIORITY is an integer -9..9 (RFC 6710 §3), not {value!r}")
    return str(value)


def _parse_deliver_by(value: str) -> DeliverBy:
    m = _BY_VALUE_RE.match(value)
    if m is None:
        raise ValueError(
            'by-value = by-time ";" by-mode [by-trace]: a signed integer of at most 9 '
            'digits, ";", "N" or "R", an optional "T" (RFC 2852 §4)'
        )
    return DeliverBy(int(m[1]), m[2].upper(), bool(m[3]))


def _write_deliver_by(value: DeliverBy) -> str:
    return f"{value.seconds};{value.mode}{'T' if value.trace else ''}"


def _parse_no_value(_value: str) -> None:
    raise ValueError("takes no value")


# ------------------------------------------------------------------------ extension table

#: MAIL / RCPT parameters and the extension that makes each legal, shared with
#: _extensions (RFC 5321 §4.1.1.11: anything else gets 555): SIZE
#: (RFC 1870), BODY (RFC 6152; special-cased by value for BINARYMIME, RFC 3030, see
#: _body_extension_problem), SMTPUTF8 (RFC 6531), RET/ENVID/NOTIFY/ORCPT (DSN, RFC 3461),
#: AUTH (RFC 4954), REQUIRETLS (RFC 8689), MT-PRIORITY (RFC 6710), BY (DELIVERBY, RFC 2852).
#: A keyword listed there without a parser below is accepted without a value check.
_MAIL_EXTENSIONS: Mapping[str, str] = MAIL_PARAMETERS
_RCPT_EXTENSIONS: Mapping[str, str] = RCPT_PARAMETERS
# Parsers per keyword; those in _FLAGS take no value, the others need one.
_PARSERS: Mapping[str, Callable[[str], object]] = {
    "SIZE": _parse_size,
    "BODY": _parse_body,
    "SMTPUTF8": _parse_no_value,
    "RET": _parse_ret,
    "ENVID": _parse_envid,
    "AUTH": _parse_auth,
    "REQUIRETLS": _parse_no_value,
    "MT-PRIORITY": _parse_mt_priority,
    "BY": _parse_deliver_by,
    "NOTIFY": _parse_notify,
    "ORCPT": _parse_orcpt,
}
_FLAGS = frozenset({"SMTPUTF8", "REQUIRETLS"})  # RFC 6531 §3.4, RFC 8689 §2


# ---------------------------------------------------------------------------- accessors


def _value(params: ParamsArg, keyword: str) -> str | None:
    p = Params.coerce(params)
    if keyword not in p:
        return None
    value = p[keyword]
    if value is None:
        raise ValueError(f"the {keyword} parameter needs a value")
    return value


def _typed(params: ParamsArg, keyword: str, parse: Callable[[str], _T]) -> _T | None:
    value = _value(params, keyword)
    if value is None:
        return None
    try:
        return parse(value)
    except ValueError as exc:
        raise ValueError(f"invalid {keyword}={quote(value)}: {exc}") from None


def _flag(params: ParamsArg, keyword: str) -> bool:
    p = Params.coerce(params)
    if keyword not in p:
        return False
    if p[keyword] is not None:
        raise ValueError(f"the {keyword} parameter takes no value")
    return True


def size(params: ParamsArg) -> int | None:
    """The declared message size in octets, ``SIZE=`` (RFC 1870 §3 (4), §6), or None."""
    return _typed(params, "SIZE", _parse_size)


def body(params: ParamsArg) -> Body | None:
    """The ``BODY=`` type (RFC 6152 §2, RFC 3030 §3), or None."""
    return _typed(params, "BODY", _parse_body)


def smtputf8(params: ParamsArg) -> bool:
    """Whether the bare ``SMTPUTF8`` parameter is present (RFC 6531 §3.4)."""
    return _flag(params, "SMTPUTF8")


def requiretls(params: ParamsArg) -> bool:
    """Whether the bare ``REQUIRETLS`` parameter is present (RFC 8689 §2)."""
    return _flag(params, "REQUIRETLS")


def ret(params: ParamsArg) -> Ret | None:
    """The DSN ``RET=`` value (RFC 3461 §4.3), or None."""
    return _typed(params, "RET", _parse_ret)


def envid(params: ParamsArg) -> str | None:
    """The DSN envelope identifier, ``ENVID=`` xtext decoded (RFC 3461 §4.4), or None."""
    return _typed(params, "ENVID", _parse_envid)


def notify(params: ParamsArg) -> frozenset[Notify] | None:
    """The DSN ``NOTIFY=`` set (RFC 3461 §4.1): ``{Notify.NEVER}`` or a non-empty subset of
    SUCCESS / FAILURE / DELAY; None when absent."""
    return _typed(params, "NOTIFY", _parse_notify)


def orcpt(params: ParamsArg) -> OriginalRecipient | None:
    """The DSN original recipient, ``ORCPT=`` (RFC 3461 §4.2, RFC 6533 §3), decoded."""
    return _typed(params, "ORCPT", _parse_orcpt)


def auth(params: ParamsArg) -> str | None:
    """The submitter mailbox of ``AUTH=`` (RFC 4954 §5), xtext decoded.

    None both for ``AUTH=<>`` (submitter unknown) and for no AUTH parameter; use
    ``"AUTH" in params`` to tell them apart.
    """
    return _typed(params, "AUTH", _parse_auth)


def mt_priority(params: ParamsArg) -> int | None:
    """The message transfer priority ``MT-PRIORITY=`` (RFC 6710 §3), -9..9, or None."""
    return _typed(params, "MT-PRIORITY", _parse_mt_priority)


def deliver_by(params: ParamsArg) -> DeliverBy | None:
    """The DELIVERBY request ``BY=`` (RFC 2852 §4), or None."""
    return _typed(params, "BY", _parse_deliver_by)


# ----------------------------------------------------------------------------- builders


def mail_params(
    *,
    size: int | None = None,
    body: Body | None = None,
    smtputf8: bool = False,
    ret: Ret | None = None,
    envid: str | None = None,
    requiretls: bool = False,
    mt_priority: int | None = None,
    deliver_by: DeliverBy | None = None,
) -> dict[str, str | None]:
    """MAIL parameters in their canonical wire form, in this order: SIZE, BODY, SMTPUTF8,
    RET, ENVID, REQUIRETLS, MT-PRIORITY, BY. Arguments left at their default are omitted.
    For AUTH see :func:`auth_mail_param`. Raise ValueError for values the grammar cannot
    carry. Reading the result back with the accessors gives the arguments again."""
    result: dict[str, str | None] = {}
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < 10**20:
            raise ValueError(f"SIZE is 0..10**20-1 (RFC 1870 §3), not {size!r}")
        result["SIZE"] = str(size)
    if body is not None:
        result["BODY"] = Body(body).value
    if smtputf8:
        result["SMTPUTF8"] = None
    result.update(dsn_mail_params(ret=ret, envid=envid))
    if requiretls:
        result["REQUIRETLS"] = None
    if mt_priority is not None:
        result["MT-PRIORITY"] = _write_mt_priority(mt_priority)
    if deliver_by is not None:
        result["BY"] = _write_deliver_by(deliver_by)
    return result


def auth_mail_param(mailbox: str | None) -> dict[str, str]:
    """``{"AUTH": ...}`` for MAIL (RFC 4954 §5): the submitter's mailbox as xtext, or
    ``<>`` for None (submitter unknown). Raise ValueError when ``mailbox`` is not a mailbox.
    ``auth(auth_mail_param(m)) == m``."""
    return {"AUTH": _write_auth(mailbox)}


def dsn_mail_params(*, ret: Ret | None = None, envid: str | None = None) -> dict[str, str]:
    """The DSN parameters of MAIL (RFC 3461 §4.3, §4.4): ``RET=FULL|HDRS`` and
    ``ENVID=xtext``, e.g. ``dsn_mail_params(ret=Ret.HDRS, envid="QQ314159")`` gives
    ``{"RET": "HDRS", "ENVID": "QQ314159"}``. None arguments are omitted."""
    result: dict[str, str] = {}
    if ret is not None:
        result["RET"] = Ret(ret).value
    if envid is not None:
        result["ENVID"] = _write_envid(envid)
    return result


def dsn_rcpt_params(
    *,
    notify: Iterable[Notify] | None = None,
    orcpt: OriginalRecipient | None = None,
    utf8: bool = False,
) -> dict[str, str]:
    """The DSN parameters of RCPT (RFC 3461 §4.1, §4.2).

    ``NOTIFY`` is written in the canonical order SUCCESS,FAILURE,DELAY (or NEVER alone);
    ``ORCPT`` as ``addr-type;xtext``, except for the ``utf-8`` address type, written as a
    utf-8-addr-xtext, or a utf-8-addr-unitext when ``utf8`` is true (only when the server
    advertised SMTPUTF8) (RFC 6533 §3). Raise ValueError for what the grammar cannot carry.
    """
    result: dict[str, str] = {}
    if notify is not None:
        result["NOTIFY"] = _write_notify(notify)
    if orcpt is not None:
        result["ORCPT"] = _write_orcpt(orcpt, utf8=utf8)
    return result


# ------------------------------------------------------------------------------- checks


class ParamError(ValueError):
    """A MAIL or RCPT parameter a server refuses, and how it answers.

    ``code`` and ``enhanced``: the reply code and RFC 3463 code; ``text``: the reply text
    (ASCII, RFC 5321 §4.2; it never quotes the value); ``detail``: ``text`` with the
    offending parameter quoted, for a client's error message (``str()`` of the error)."""

    def __init__(self, code: int, enhanced: str, text: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.enhanced = enhanced
        self.text = text
        self.detail = detail


def _shown_keyword(keyword: str) -> str:
    # A keyword passed the esmtp-keyword grammar (letters, digits, "-"), but a peer can
    # make it ~500 characters long: quote() cuts it so that the reply line fits.
    return keyword if len(keyword) <= MAX_QUOTED else quote(keyword)


def _problem(code: int, enhanced: str, text: str, keyword: str, value: str | None) -> ParamError:
    shown = (
        _shown_keyword(keyword) if value is None else f"{_shown_keyword(keyword)}={quote(value)}"
    )
    # Reply text is ASCII (RFC 5321 §4.2): spell out the section sign of RFC citations.
    ascii_text = text.replace("§", "section ").encode("ascii", "replace").decode("ascii")
    return ParamError(code, enhanced, ascii_text, f"{text}: {shown}")


def _unsupported(keyword: str, value: str | None, why: str) -> ParamError:
    # RFC 5321 §4.1.1.11: a parameter the server does not recognise or cannot implement.
    text = f"{_shown_keyword(keyword)} parameter not supported{why}"
    return _problem(555, "5.5.4", text, keyword, value)


def _malformed(keyword: str, value: str | None, reason: str) -> ParamError:
    text = f"Invalid {_shown_keyword(keyword)} parameter: {reason}"
    return _problem(501, "5.5.4", text, keyword, value)


def _advertised_size_limit(extensions: Extensions) -> int | None:
    # RFC 1870 §3 (3): "SIZE" [1*DIGIT], the fixed maximum message size; 0 = no limit.
    if "SIZE" not in extensions:
        return None
    args = extensions["SIZE"]
    if args and args[0].isascii() and args[0].isdigit():
        return int(args[0]) or None
    return None


def _body_extension_problem(
    value: Body, extensions: Extensions, keyword: str, raw: str
) -> ParamError | None:
    if value is Body.BINARY_MIME:
        # RFC 3030 §3: BINARYMIME content is sent with BDAT, so both are needed.
        if "BINARYMIME" not in extensions or "CHUNKING" not in extensions:
            return _unsupported(keyword, raw, " (BINARYMIME needs BINARYMIME and CHUNKING)")
    elif value is Body.EIGHT_BIT_MIME and "8BITMIME" not in extensions:
        return _unsupported(keyword, raw, " (8BITMIME not advertised)")
    return None


def _check_one(
    keyword: str,
    value: str | None,
    *,
    table: Mapping[str, str],
    extensions: Extensions,
    tls: bool,
    size_limit: int | None,
) -> ParamError | None:
    # 1. Known and advertised? (RFC 5321 §4.1.1.11 -> 555)
    needed = table.get(keyword)
    if needed is None:
        return _unsupported(keyword, value, "")
    if keyword == "BODY":
        known = "8BITMIME" in extensions or "BINARYMIME" in extensions
    else:
        known = needed in extensions
    if not known:
        return _unsupported(keyword, value, f" ({needed} not advertised)")
    parse = _PARSERS.get(keyword)
    if parse is None:  # an extension's keyword we have no grammar for: accept as is
        return None
    # 2. Well-formed? (-> 501)
    if keyword in _FLAGS:
        if value is not None:
            return _malformed(keyword, value, "it takes no value")
        typed: object = None
    else:
        if value is None:
            return _malformed(keyword, value, "it needs a value")
        try:
            typed = parse(value)
        except ValueError as exc:
            return _malformed(keyword, value, str(exc))
    # 3. Acceptable here?
    if isinstance(typed, Body):
        return _body_extension_problem(typed, extensions, keyword, value or "")
    if keyword == "SIZE" and isinstance(typed, int):
        limit = _advertised_size_limit(extensions) if size_limit is None else size_limit
        if limit and typed > limit:
            # RFC 1870 §6.1 (2); RFC 3463 X.3.4 "Message too big for system".
            return _problem(
                552, "5.3.4", "Message size exceeds fixed maximum message size", keyword, value
            )
    if keyword == "REQUIRETLS" and not tls:
        # RFC 8689 §2: REQUIRETLS only on a session that negotiated TLS; 530 5.7.10.
        return _problem(530, "5.7.10", "REQUIRETLS needs a TLS connection", keyword, value)
    if (
        keyword == "ORCPT"
        and value is not None
        and not value.isascii()
        and "SMTPUTF8" not in extensions
    ):
        # RFC 6533 §3: utf-8-addr-unitext only when SMTPUTF8 is advertised.
        return _malformed(keyword, value, "non-ASCII ORCPT needs SMTPUTF8 (RFC 6533 §3)")
    return None


def _first_problem(
    params: ParamsArg,
    *,
    table: Mapping[str, str],
    extensions: Extensions,
    tls: bool,
    size_limit: int | None,
) -> ParamError | None:
    if not params:
        return None
    p = Params.coerce(params)
    for keyword in p:
        problem = _check_one(
            keyword,
            p[keyword],
            table=table,
            extensions=extensions,
            tls=tls,
            size_limit=size_limit,
        )
        if problem is not None:
            return problem
    return None


def verify_mail_params(
    params: ParamsArg,
    *,
    extensions: Extensions,
    tls: bool,
    size_limit: int | None = None,
) -> None:
    """Raise ParamError when a server refuses a MAIL command's parameters.

    ``extensions`` is what the server advertised; ``tls`` whether the session runs over
    TLS; ``size_limit`` the fixed maximum message size (None: the number advertised with
    SIZE, if any; 0: no limit). Parameters are checked in wire order; the first problem
    wins:

    - a keyword this library does not know, or whose extension was not advertised:
      ``555 5.5.4`` (RFC 5321 §4.1.1.11); BODY=8BITMIME needs 8BITMIME, BODY=BINARYMIME
      needs BINARYMIME and CHUNKING (RFC 3030 §3);
    - a malformed value, a value on SMTPUTF8 / REQUIRETLS, a missing value elsewhere, an
      MT-PRIORITY outside -9..9: ``501 5.5.4``;
    - SIZE over the limit: ``552 5.3.4`` (RFC 1870 §6.1);
    - REQUIRETLS on a session without TLS: ``530 5.7.10`` (RFC 8689).

    Raises nothing else for any Params.
    """
    problem = _first_problem(
        params, table=_MAIL_EXTENSIONS, extensions=extensions, tls=tls, size_limit=size_limit
    )
    if problem is not None:
        raise problem


def verify_rcpt_params(params: ParamsArg, *, extensions: Extensions) -> None:
    """Raise ParamError when a server refuses a RCPT command's parameters: 555 for a
    keyword other than NOTIFY / ORCPT or without DSN advertised (RFC 5321 §4.1.1.11), 501
    for a malformed NOTIFY (RFC 3461 §4.1) or ORCPT (RFC 3461 §4.2, RFC 6533 §3). Raises
    nothing else for any Params."""
    problem = _first_problem(
        params, table=_RCPT_EXTENSIONS, extensions=extensions, tls=True, size_limit=None
    )
    if problem is not None:
        raise problem
