# AUTH redaction: the one rule for what of an AUTH exchange may be shown, in a repr, a
# transcript or a traffic log.
#
# RFC 4954 §4: ``AUTH mechanism [initial-response]``, then client lines answering 334
# challenges, each base64 data or "*" to cancel. Secret: the initial response, every
# response line except "*", and the text of every 334 challenge (it may carry a
# server nonce or, for some mechanisms, data derived from the credentials). Shown: the
# verb and the mechanism, "*", and the 334 code itself.
#
# Rules: pure functions on bytes and values; the lowest layer (imports nothing of the
# package), so events' reprs, Connection, the Transcript and the adapters' logs all call
# these. Lines are given without their line ending; the *_data functions take raw
# chunks, line endings included, and keep them.
from __future__ import annotations

__all__ = [
    "REDACTED",
    "redact_client_data",
    "redact_client_line",
    "redact_server_data",
    "redact_server_line",
    "redacted_value",
]

#: What replaces an AUTH payload.
REDACTED = b"<redacted>"
_REDACTED_TEXT = REDACTED.decode("ascii")


def redacted_value(value: object) -> str:
    """A field's repr: ``"None"`` for None (absent, which is no secret), else
    ``"<redacted>"``."""
    return "None" if value is None else _REDACTED_TEXT


def is_auth_command(line: bytes) -> bool:
    """``line`` is an AUTH command (RFC 4954 §4), case-insensitive."""
    return line[:5].upper() == b"AUTH "


def redact_client_line(line: bytes, *, in_auth: bool = False) -> bytes:
    """A client line for display: ``AUTH PLAIN <redacted>`` for an AUTH command with an
    initial response (``AUTH PLAIN`` alone stays); with ``in_auth`` (the line answers a
    334 challenge) ``<redacted>`` unless it is the cancelling ``*``. Other lines as
    they are."""
    if is_auth_command(line):
        words = line.split(b" ", 2)
        return b" ".join(words[:2]) + (b" " + REDACTED if len(words) > 2 else b"")
    if in_auth:
        return b"*" if line.strip() == b"*" else REDACTED
    return line


def redact_server_line(line: bytes) -> bytes:
    """A server line for display: ``334 <redacted>`` for a 334 challenge line (its
    separator kept), other lines as they are."""
    if line[:3] == b"334" and line[3:4] in (b"", b" ", b"-"):
        return b"334" + (line[3:4] or b" ") + REDACTED
    return line


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def redact_client_data(data: bytes, *, in_auth: bool = False) -> tuple[bytes, bool]:
    """Client bytes (any chunk of whole or partial lines) for a log, each line through
    redact_client_line, line endings kept. ``in_auth``: the first line answers a 334
    challenge. Returns the redacted bytes and whether the chunk ends inside an AUTH
    exchange it opened (an AUTH command with no initial response, or one the server may
    challenge): then the next client line is a response, pass ``in_auth=True``."""
    pieces = _lines(data)
    out: list[bytes] = []
    for i, piece in enumerate(pieces):
        line, cr = (piece[:-1], b"\r") if piece.endswith(b"\r") else (piece, b"")
        if not line and i == len(pieces) - 1:
            out.append(piece)  # the empty rest after the last line ending: no line
            continue
        redacted = redact_client_line(line, in_auth=in_auth)
        in_auth = is_auth_command(line) or (in_auth and line.strip() != b"*")
        out.append(redacted + cr)
    return b"\n".join(out), in_auth


def redact_server_data(data: bytes) -> bytes:
    """Server bytes for a log, each line through redact_server_line, line endings
    kept."""
    if b"334" not in data:
        return data
    out: list[bytes] = []
    for piece in _lines(data):
        line, cr = (piece[:-1], b"\r") if piece.endswith(b"\r") else (piece, b"")
        out.append(redact_server_line(line) + cr)
    return b"\n".join(out)
