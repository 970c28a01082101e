# Mailbox addresses as they appear in SMTP paths (RFC 5321 §4.1.2), parsed into a value type.
#
# Strategy: an Address keeps the *meaning* of the address - the local part unquoted, the
# domain as written (a domain name or a bracketed address literal) - so equal addresses
# compare equal however they were quoted. str(address) writes the canonical form: the
# local part as a Dot-string when it is one, else as a Quoted-string (RFC 5321 §4.1.2
# says senders SHOULD NOT quote needlessly). parse(str(a)) == a for every Address.
#
# Paths: the null reverse-path "<>" is None; "<Postmaster>" is Address("Postmaster", None)
# (RFC 5321 §4.1.1.3); source routes "<@a,@b:user@c>" are parsed and dropped (RFC 5321
# §4.1.1.3 and Appendix C: a server SHOULD ignore them).
from __future__ import annotations

from typing import final

import attrs

from . import _abnf
from ._util import LazyPattern

__all__ = ["Address"]

# Compiled on first use (the mailbox patterns are the largest the package has): a program
# pays for the ones it uses, most only for _SIMPLE_MAILBOX_RE and _DOT_STRING_UTF8_RE.
_DOT_STRING_UTF8_RE = LazyPattern(_abnf.DOT_STRING_UTF8 + r"\Z")
_DOMAIN_UTF8_RE = LazyPattern(_abnf.DOMAIN_UTF8 + r"\Z")
_LITERAL_RE = LazyPattern(_abnf.ADDRESS_LITERAL + r"\Z")
# Local-part "@" ( Domain / address-literal ), optionally after a source route. The UTF-8
# forms only (RFC 6531): on ASCII text they match exactly as the ASCII ones, so Address.parse
# checks "ASCII only" by itself and a server compiles one pattern, not two.
_MAILBOX_RE = LazyPattern(
    rf"(?:{_abnf.ADL_UTF8}:)?(?P<local>{_abnf.DOT_STRING_UTF8}|{_abnf.QUOTED_STRING_UTF8})"
    rf"@(?P<domain>{_abnf.DOMAIN_UTF8}|{_abnf.ADDRESS_LITERAL})\Z"
)
# The common mailbox, Dot-string "@" Domain, has a pattern of its own, compiled in a
# fifth of the time: the full grammar (source route, quoted local part, address literal)
# is compiled only when an address needs it. Whatever the short pattern matches, the full
# one matches with the same groups (tests/test_startup.py).
_SIMPLE_MAILBOX_RE = LazyPattern(
    rf"(?P<local>{_abnf.DOT_STRING_UTF8})@(?P<domain>{_abnf.DOMAIN_UTF8})\Z"
)
_QUOTED_PAIR_RE = LazyPattern(r"\\(.)")
_NEEDS_ESCAPE_RE = LazyPattern(r'(["\\])')


def _check_literal(domain: str) -> bool:
    if not _LITERAL_RE.match(domain):
        return False
    inner = domain[1:-1]
    if inner[:5].lower() == "ipv6:":
        import ipaddress  # only for IPv6 address literals, which are rare

        try:
            ipaddress.IPv6Address(inner[5:])
        except ValueError:
            return False
    return True


def _validate_local(inst: Address, _attr: object, value: str) -> None:
    # Any qtextSMTP / quoted-pairSMTP character can be quoted, so the local part may hold
    # any printable ASCII character (and UTF-8 beyond ASCII, RFC 6531). Never controls.
    bad = _abnf.CONTROL_RE.search(value)
    if bad is not None:
        raise ValueError(f"control character {bad[0]!r} in local part")
    if inst.domain is None and value.lower() != "postmaster":
        raise ValueError("only Postmaster may stand without a domain (RFC 5321 §4.1.1.3)")


def _validate_domain(_inst: Address, _attr: object, value: str | None) -> None:
    if value is None:
        return
    if value.startswith("["):
        if not _check_literal(value):
            raise ValueError(f"invalid address literal {value!r}")
    elif not _DOMAIN_UTF8_RE.match(value):
        raise ValueError(f"invalid domain {value!r}")


@final
@attrs.frozen(eq=False)
class Address:
    """A mailbox in an SMTP path.

    - ``local_part``: the local part with any quoting removed (``"john doe"`` for
      ``"john doe"@example.org``); case is kept (RFC 5321 §2.4: the local part MAY be
      case-sensitive).
    - ``domain``: a domain name (kept as written; compare case-insensitively yourself) or an
      address literal in brackets, ``[192.0.2.1]`` / ``[IPv6:2001:db8::1]``. None only for
      the special recipient ``<Postmaster>``.

    An Address equals another with the same parts, and the text it is written as
    (``str(address)``), so ``envelope.rcpt_tos == ["bob@example.org"]`` reads as it says.
    """

    local_part: str = attrs.field(validator=_validate_local)
    domain: str | None = attrs.field(default=None, validator=_validate_domain)

    @classmethod
    def parse(cls, text: str, *, utf8: bool = True) -> Address:
        """Parse ``local@domain`` (no angle brackets; a source route is accepted and
        dropped). With ``utf8=False`` only ASCII is allowed (no SMTPUTF8).

        Raises ValueError on any syntax error.
        """
        # (parsed for every MAIL and RCPT a server reads: no call or copy it can skip)
        if len(text) == 10 and text.lower() == "postmaster":
            return cls(text, None)
        if not utf8 and not text.isascii():
            raise ValueError("non-ASCII address without SMTPUTF8 (RFC 6531 §3.4)")
        m = _SIMPLE_MAILBOX_RE.match(text)
        if m is not None:  # no quotes to undo, no address literal to check
            return cls._trusted(*m.group("local", "domain"))
        m = _MAILBOX_RE.match(text)
        if m is None:
            raise ValueError(f"invalid mailbox {text!r}")
        local, domain = m.group("local", "domain")
        if local[0] == '"':
            local = _QUOTED_PAIR_RE.sub(r"\1", local[1:-1])
        if domain[0] == "[" and not _check_literal(domain):
            raise ValueError(f"invalid address literal {domain!r}")
        # The mailbox grammar admits no control characters and only valid domains, which
        # is all the validators check: skip running them a second time.
        return cls._trusted(local, domain)

    @classmethod
    def _trusted(cls, local_part: str, domain: str) -> Address:
        self = object.__new__(cls)
        object.__setattr__(self, "local_part", local_part)
        object.__setattr__(self, "domain", domain)
        return self

    @property
    def is_postmaster(self) -> bool:
        """True for ``<Postmaster>`` (no domain), the one address every server accepts."""
        return self.domain is None

    @property
    def is_ascii(self) -> bool:
        """False when the address needs SMTPUTF8 (RFC 6531) to be sent."""
        return self.local_part.isascii() and (self.domain is None or self.domain.isascii())

    @property
    def quoted_local_part(self) -> str:
        """The local part as it goes on the wire: a Dot-string when possible."""
        if _DOT_STRING_UTF8_RE.match(self.local_part):
            return self.local_part
        return '"' + _NEEDS_ESCAPE_RE.sub(r"\\\1", self.local_part) + '"'

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Address):
            return self.local_part == other.local_part and self.domain == other.domain
        if isinstance(other, str):
            return str(self) == other
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        # equal to its text, so hashed as its text
        return hash(str(self))

    def __str__(self) -> str:
        if self.domain is None:
            return self.local_part
        return f"{self.quoted_local_part}@{self.domain}"


def coerce_address(value: Address | str) -> Address:
    """Converter for event fields: accept an Address or its string form."""
    if isinstance(value, Address):
        return value
    if isinstance(value, str):
        text = value[1:-1] if value.startswith("<") and value.endswith(">") else value
        return Address.parse(text)
    raise TypeError(f"expected an Address or str, not {type(value).__name__}")


def coerce_reverse_path(value: Address | str | None) -> Address | None:
    """Converter for MAIL FROM: "" and "<>" mean the null reverse-path (None)."""
    if value is None or isinstance(value, Address):
        return value  # the common case first: `in ("", "<>")` would format an Address
    if value in ("", "<>"):
        return None
    return coerce_address(value)
