# Small helpers shared by every module of the core.
#
# quote() is the one place where text from the peer is put into a reply or an error
# message: escaped to printable ASCII and truncated, so that any reply quoting it stays
# within the 512-octet reply line (RFC 5321 §4.5.3.1.5) whatever the peer sent.
from __future__ import annotations

__all__ = ["MAX_QUOTED", "quote"]

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
