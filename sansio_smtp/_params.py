# ESMTP parameters of MAIL and RCPT (RFC 5321 §4.1.2 Mail-parameters / Rcpt-parameters):
# an immutable, hashable, ordered mapping keyword -> value.
#
# Keywords are case-insensitive (RFC 5321 §2.4) and stored upper-cased; values keep their
# case (their meaning is up to the extension) and are None for a bare keyword such as
# SMTPUTF8. Order is the order on the wire, so writing a parsed command gives the same line.
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import final

from . import _abnf
from ._util import quote

__all__ = ["Params"]

_KEYWORD_RE = re.compile(_abnf.ESMTP_KEYWORD + r"\Z")
_VALUE_RE = re.compile(_abnf.ESMTP_VALUE_UTF8 + r"\Z")

ParamsLike = Mapping[str, "str | None"] | Iterable[tuple[str, "str | None"]] | None


@final
class Params(Mapping[str, "str | None"]):
    """ESMTP parameters: ``Params({"SIZE": "1000", "SMTPUTF8": None})``.

    Keys are looked up case-insensitively. Construction validates the RFC 5321 grammar
    (esmtp-keyword, esmtp-value) and rejects duplicates with ValueError.
    """

    __slots__ = ("_index", "_items")
    _items: tuple[tuple[str, str | None], ...]
    _index: dict[str, str | None]  # the same, for lookups (never handed out)

    def __init__(self, items: ParamsLike = None) -> None:
        pairs: Iterable[tuple[str, str | None]]
        if items is None:
            pairs = ()
        elif isinstance(items, list):  # what the reader passes: skip the slower ABC check
            pairs = items
        elif isinstance(items, Mapping):
            pairs = items.items()
        else:
            pairs = items
        seen: dict[str, str | None] = {}
        for key, value in pairs:
            if not isinstance(key, str) or not _KEYWORD_RE.match(key):
                shown = quote(key) if isinstance(key, str) else repr(key)
                raise ValueError(f"invalid ESMTP keyword {shown}")
            if value is not None and (not isinstance(value, str) or not _VALUE_RE.match(value)):
                shown = quote(value) if isinstance(value, str) else repr(value)
                raise ValueError(f"invalid value {shown} for ESMTP parameter {quote(key)}")
            upper = key.upper()
            if upper in seen:
                raise ValueError(f"duplicate ESMTP parameter {quote(upper)}")
            seen[upper] = value
        object.__setattr__(self, "_items", tuple(seen.items()))
        object.__setattr__(self, "_index", seen)

    @classmethod
    def coerce(cls, value: Params | ParamsLike) -> Params:
        return value if isinstance(value, Params) else cls(value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Params is immutable")

    def __getitem__(self, key: str) -> str | None:
        try:
            return self._index[key.upper()]
        except KeyError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.upper() in self._index

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return self._index.get(key.upper(), default)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Params):
            return self._items == other._items
        if isinstance(other, Mapping):
            return dict(self._items) == {str(k).upper(): v for k, v in other.items()}
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Params({dict(self._items)!r})"

    def to_wire(self) -> str:
        """``"SIZE=1000 SMTPUTF8"``: the parameters as written after the path."""
        return " ".join(k if v is None else f"{k}={v}" for k, v in self._items)
