# Small helpers shared by every module of the core.
#
# quote() is the one place where text from the peer is put into a reply or an error
# message: escaped to printable ASCII and truncated, so that any reply quoting it stays
# within the 512-octet reply line (RFC 5321 §4.5.3.1.5) whatever the peer sent.
#
# remember() is how every memo table of the core stays bounded (see its docstring).
#
# LazyPattern is a regular expression compiled on first use: compiling the grammar's
# patterns was a fifth of the time ``import sansio_smtp`` took, for patterns many programs
# never use (address literals, ASCII-only mailboxes, xtext).
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TypeVar

__all__ = ["MAX_QUOTED", "LazyPattern", "quote", "remember"]

_K = TypeVar("_K")
_V = TypeVar("_V")

#: The most characters of peer text a reply or error message shows (after escaping). A
#: reply text quotes at most two such pieces besides its own words, far below the 512
#: octets of a reply line (RFC 5321 §4.5.3.1.5).
MAX_QUOTED = 64


def quote(text: str, limit: int = MAX_QUOTED) -> str:
    """``text`` between single quotes for a reply or an error message: characters outside
    printable ASCII escaped as ``ascii()`` does (``\\x01``, ``\\u2028``), and cut to at
    most ``limit`` characters inside the quotes, followed by ``...`` when cut."""
    out: list[str] = []
    size = 0
    for ch in text:
        piece = ch if " " <= ch <= "~" else ascii(ch)[1:-1]
        size += len(piece)
        if size > limit:
            return "'" + "".join(out) + "'..."
        out.append(piece)
    return "'" + "".join(out) + "'"


def remember(memo: dict[_K, _V], key: _K, value: _V, size: int) -> _V:
    """Keep ``value`` under ``key`` in ``memo`` and return it. ``memo`` is one of the
    core's memo tables: what an immutable object (a Reply, an event, Extensions, Params,
    a Config) amounts to, computed once. A table is a plain dict, looked up with get() in
    C; it stays bounded by being emptied when it holds ``size`` entries (a cache, never a
    record). Most are keyed by ``id()``, as hashing those objects costs more than what is
    kept: such a value holds the object itself, so no other object can have its id while
    the entry is there (and the reader checks it is the same object)."""
    if len(memo) >= size:
        memo.clear()
    memo[key] = value
    return value


class LazyPattern:
    """``re.compile(source)`` put off until one of its methods is first used.

    The first use compiles the pattern and stores its bound methods on the instance, so
    from then on ``pattern.match(text)`` finds the compiled pattern's own method by a plain
    attribute lookup (``__getattr__`` runs only for missing attributes): no extra call.
    """

    # set on first use (see __getattr__); annotated here for the type checker
    match: Callable[[str], re.Match[str] | None]
    fullmatch: Callable[[str], re.Match[str] | None]
    search: Callable[[str], re.Match[str] | None]
    finditer: Callable[[str], Iterator[re.Match[str]]]
    sub: Callable[[str | Callable[[re.Match[str]], str], str], str]

    def __init__(self, source: str, flags: int = 0) -> None:
        self.source = source
        self.flags = flags

    def __getattr__(self, name: str) -> object:
        if name not in _PATTERN_METHODS:
            raise AttributeError(name)
        compiled = re.compile(self.source, self.flags)
        for method in _PATTERN_METHODS:
            setattr(self, method, getattr(compiled, method))
        return getattr(compiled, name)

    def __repr__(self) -> str:
        return f"LazyPattern({self.source!r})"


_PATTERN_METHODS = ("match", "fullmatch", "search", "finditer", "sub")
