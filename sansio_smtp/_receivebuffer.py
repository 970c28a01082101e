# ReceiveBuffer: the bytes received and not yet turned into events. The only code that
# searches for line endings.
#
# Strategy (h11's): a bytearray that remembers how far it has searched, so feeding one byte
# at a time stays linear; a search resumes where the last one stopped minus (delimiter
# length - 1). Extraction slices once (through a memoryview, one copy) and deletes the
# prefix (CPython deletes a bytearray's prefix by moving its start: no copy). Nothing here
# knows SMTP beyond "lines end in LF".
#
# maybe_extract_line runs once per command or reply line: it searches and extracts in one
# call, without helper calls (find_line_end and extract say the same in two steps).
from __future__ import annotations

__all__ = ["ReceiveBuffer"]


class ReceiveBuffer:
    #: ``raw``: the underlying bytearray, a plain attribute (no property call), for readers
    #: that scan it in place and for appending (``buf.raw += data`` is ``buf += data``
    #: without a method call); it is never replaced, and only this class removes bytes.
    __slots__ = ("_searched", "raw")

    def __init__(self) -> None:
        self.raw = bytearray()
        # Bytes at the front already known to hold no LF.
        self._searched = 0

    def __iadd__(self, data: bytes | bytearray | memoryview) -> ReceiveBuffer:
        self.raw += data
        return self

    def __len__(self) -> int:
        return len(self.raw)

    def __bool__(self) -> bool:
        return bool(self.raw)

    def __bytes__(self) -> bytes:
        return bytes(self.raw)

    def extract(self, count: int) -> bytes:
        """Remove and return the first ``count`` bytes."""
        with memoryview(self.raw) as view:
            out = bytes(view[:count])
        del self.raw[:count]
        self._searched = 0
        return out

    def discard(self, count: int) -> None:
        del self.raw[:count]
        self._searched = 0

    def clear(self) -> None:
        self.raw.clear()
        self._searched = 0

    def find_line_end(self) -> int:
        """Index just past the first LF, or -1 when no complete line is buffered.

        Only the bytes not searched before are scanned."""
        idx = self.raw.find(b"\n", self._searched)
        if idx < 0:
            self._searched = len(self.raw)
            return -1
        return idx + 1

    def maybe_extract_line(self) -> bytes | None:
        """Remove and return the first line including its LF, or None (find_line_end and
        extract in one step)."""
        data = self.raw
        idx = data.find(b"\n", self._searched)
        if idx < 0:
            self._searched = len(data)
            return None
        # A line is short: slicing the bytearray and converting is cheaper than a view.
        line = bytes(data[: idx + 1])
        del data[: idx + 1]
        self._searched = 0
        return line
