# Line arithmetic on message content, shared by the DATA reader and writer. Every function
# here works on a whole chunk with C-speed bytes methods and no per-line Python loop, so
# the DATA path costs a few passes over each chunk whatever its line count.
from __future__ import annotations

import re

__all__ = ["has_bare_line_ending", "normalize_line_endings", "scan_line_lengths"]

# A CR not followed by LF, or an LF not preceded by CR (RFC 5321 §2.3.8 forbids both).
_BARE_RE = re.compile(rb"\r(?!\n)|(?<!\r)\n")


def has_bare_line_ending(chunk: bytes | bytearray) -> bool:
    """True when ``chunk`` holds a CR or LF that is not part of a CRLF pair.

    A chunk must not end between the CR and LF of a pair; callers hold back a trailing CR.
    """
    # One search pass and two memchr scans beat three count() passes; CRLF pairs cannot
    # overlap, so whatever CR or LF is left was bare.
    rest = chunk.replace(b"\r\n", b"  ")
    return b"\r" in rest or b"\n" in rest


def normalize_line_endings(chunk: bytes) -> bytes:
    """Replace every bare CR and bare LF with CRLF."""
    return _BARE_RE.sub(b"\r\n", chunk)


def scan_line_lengths(chunk: bytes | bytearray, carried: int, limit: int) -> int:
    """Check that no line in ``chunk`` is longer than ``limit`` octets counting its LF.

    ``carried`` is the length of the unfinished line that ended the previous chunk. Returns
    the length of the unfinished line at the end of this chunk, or -1 when a line is too
    long. Steps from line start to line start with rfind over a ``limit``-octet window, so
    it runs about len(chunk)/limit C-level searches rather than one per line.
    """
    pos = 0
    size = len(chunk)
    while True:
        window_end = pos + limit - carried
        if window_end > size:
            last = chunk.rfind(b"\n", pos)
            carried = carried + size - pos if last < 0 else size - last - 1
            return -1 if carried >= limit else carried
        newline = chunk.rfind(b"\n", pos, window_end)
        if newline < 0:
            return -1
        pos = newline + 1
        carried = 0
