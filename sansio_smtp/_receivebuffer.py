# ReceiveBuffer: the bytes received and not yet turned into events. The only code that
# searches for line endings.
#
# Strategy (h11's): a bytearray that remembers how far it has searched, so feeding one byte
# at a time stays linear; a search resumes where the last one stopped minus (delimiter
# length - 1). Extraction slices once (through a memoryview, one copy) and deletes the
# prefix. Nothing here knows SMTP beyond "lines end in LF".
from __future__ import annotations

__all__ = ["ReceiveBuffer"]


class ReceiveBuffer:
    __slots__ = ("_data", "_searched")

    def __init__(self) -> None:
        self._data = bytearray()
        # Bytes at the front already known to hold no LF.
        self._searched = 0

    def __iadd__(self, data: bytes | bytearray | memoryview) -> ReceiveBuffer:
        self._data += data
        return self

    def __len__(self) -> int:
        return len(self._data)

    def __bool__(self) -> bool:
        return bool(self._data)

    def __bytes__(self) -> bytes:
        return bytes(self._data)

    @property
    def raw(self) -> bytearray:
        """The underlying bytearray, for readers that scan it in place (never resize it)."""
        return self._data

    def extract(self, count: int) -> bytes:
        """Remove and return the first ``count`` bytes."""
        with memoryview(self._data) as view:
            out = bytes(view[:count])
        del self._data[:count]
        self._searched = 0
        return out

    def discard(self, count: int) -> None:
        del self._data[:count]
        self._searched = 0

    def clear(self) -> None:
        self._data.clear()
        self._searched = 0

    def find_line_end(self) -> int:
        """Index just past the first LF, or -1 when no complete line is buffered.

        Only the bytes not searched before are scanned."""
        idx = self._data.find(b"\n", self._searched)
        if idx < 0:
            self._searched = len(self._data)
            return -1
        return idx + 1

    def maybe_extract_line(self) -> bytes | None:
        """Remove and return the first line including its LF, or None."""
        end = self.find_line_end()
        if end < 0:
            return None
        return self.extract(end)
