# The EHLO extension set (RFC 5321 §4.1.1.1): what a server advertises and a client learns.
#
# An Extensions value is an immutable, case-insensitive, ordered mapping of ehlo-keyword ->
# tuple of ehlo-params. The server builds its EHLO reply from one (declarative: list what
# you support, the reply follows); the client parses the reply lines back into an equal one.
#
# Which MAIL/RCPT parameters are legal follows from the set: a parameter belongs to an
# extension, and RFC 5321 §4.1.1.11 says a server answers 555 to a parameter it does not
# recognise - which includes one whose extension it did not advertise.
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar, final, overload

from . import _abnf
from ._util import remember

__all__ = ["Extensions"]

_KEYWORD_RE = re.compile(_abnf.EHLO_KEYWORD + r"\Z")
_PARAM_RE = re.compile(_abnf.EHLO_PARAM + r"\Z")

_T = TypeVar("_T")

#: EHLO reply lines -> their Extensions. A server's own reply is parsed back (the state
#: machine learns what is in force from the reply it sends, as a client does from the one
#: it reads), and a server gives most sessions the same reply; a client meets the same few
#: servers again and again. Extensions are immutable, so one value serves every session.
#: Bounded: cleared when full (a cache, never a record).
_PARSED: dict[tuple[str, ...], Extensions] = {}
_PARSED_MAX = 64

ExtensionsLike = (
    Mapping[str, "Iterable[str] | str | None"] | Iterable[str | tuple[str, Iterable[str]]] | None
)

#: MAIL FROM parameters and the extension that defines each.
MAIL_PARAMETERS: Mapping[str, str] = {
    "SIZE": "SIZE",  # RFC 1870
    "BODY": "8BITMIME",  # RFC 6152 (BODY=BINARYMIME: RFC 3030)
    "SMTPUTF8": "SMTPUTF8",  # RFC 6531
    "RET": "DSN",  # RFC 3461
    "ENVID": "DSN",  # RFC 3461
    "AUTH": "AUTH",  # RFC 4954 §5
    "REQUIRETLS": "REQUIRETLS",  # RFC 8689
    "MT-PRIORITY": "MT-PRIORITY",  # RFC 6710
    "BY": "DELIVERBY",  # RFC 2852
}
#: RCPT TO parameters and the extension that defines each.
RCPT_PARAMETERS: Mapping[str, str] = {
    "NOTIFY": "DSN",  # RFC 3461
    "ORCPT": "DSN",  # RFC 3461
}


@final
class Extensions(Mapping[str, tuple[str, ...]]):
    """``Extensions({"SIZE": ["10240000"], "PIPELINING": ()})``, or an iterable of keywords
    and ``(keyword, params)`` pairs. A str value is split at spaces. Keys are looked up
    case-insensitively and stored upper-cased (RFC 5321 §2.4)."""

    __slots__ = ("_items",)
    _items: dict[str, tuple[str, ...]]

    def __init__(self, items: ExtensionsLike = None) -> None:
        result: dict[str, tuple[str, ...]] = {}
        pairs: Iterable[tuple[str, Iterable[str] | str | None]]
        if items is None:
            pairs = ()
        elif isinstance(items, Mapping):
            pairs = items.items()
        else:
            pairs = ((i, ()) if isinstance(i, str) else i for i in items)
        for key, raw in pairs:
            if not isinstance(key, str) or not _KEYWORD_RE.match(key):
                raise ValueError(f"invalid EHLO keyword {key!r}")
            params = tuple(raw.split()) if isinstance(raw, str) else tuple(raw or ())
            for p in params:
                if not isinstance(p, str) or not _PARAM_RE.match(p):
                    raise ValueError(f"invalid EHLO parameter {p!r} for {key}")
            result[key.upper()] = params
        object.__setattr__(self, "_items", result)

    @classmethod
    def coerce(cls, value: Extensions | ExtensionsLike) -> Extensions:
        return value if isinstance(value, Extensions) else cls(value)

    @classmethod
    def from_ehlo_lines(cls, lines: Iterable[str]) -> Extensions:
        """Parse the lines after the first of a 250 EHLO reply. Lines that are not
        ``keyword *(SP param)`` are skipped, as clients must tolerate junk here; a keyword
        seen twice keeps its first parameters."""
        key = lines if type(lines) is tuple else tuple(lines)
        cached = _PARSED.get(key)
        if cached is not None:
            return cached
        result: dict[str, tuple[str, ...]] = {}
        for line in key:
            words = line.split()
            if not words or not _KEYWORD_RE.match(words[0]):
                continue
            params = tuple(w for w in words[1:] if _PARAM_RE.match(w))
            result.setdefault(words[0].upper(), params)
        # every keyword and parameter was matched just above: not a second time in __init__
        parsed = cls.__new__(cls)
        object.__setattr__(parsed, "_items", result)
        return remember(_PARSED, key, parsed, _PARSED_MAX)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Extensions is immutable")

    def __getitem__(self, key: str) -> tuple[str, ...]:
        return self._items[key.upper()]

    @overload
    def get(self, key: str, /) -> tuple[str, ...] | None: ...
    @overload
    def get(self, key: str, /, default: tuple[str, ...] | _T) -> tuple[str, ...] | _T: ...

    def get(self, key: str, /, default: object = None) -> object:
        # one dict lookup (Mapping.get would call __getitem__ and catch its KeyError)
        return self._items.get(key.upper(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.upper() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Extensions):
            return self._items == other._items
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))

    def __repr__(self) -> str:
        return f"Extensions({self._items!r})"

    def ehlo_lines(self) -> list[str]:
        """The extension lines of an EHLO reply, one per keyword."""
        return [" ".join((k, *v)) for k, v in self._items.items()]
