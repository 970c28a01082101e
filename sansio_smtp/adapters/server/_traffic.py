# The opt-in traffic log of a server: every byte at DEBUG level, AUTH redacted.
#
# Rules: the arguments of an AUTH line, every line of an AUTH exchange (RFC 4954 §4) and
# the text of 334 challenges never reach the log.
from __future__ import annotations

import logging


def redact_client(data: bytes, *, in_auth: bool) -> bytes:
    """Client bytes for a log: the arguments of an ``AUTH`` line and every line of an AUTH
    exchange (RFC 4954 §4 responses) become ``<redacted>``."""
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        cr = b"\r" if line.endswith(b"\r") else b""
        if line[:5].upper() == b"AUTH ":
            words = line.rstrip(b"\r").split(b" ", 2)
            lines[i] = b" ".join(words[:2]) + (b" <redacted>" if len(words) > 2 else b"") + cr
            in_auth = True
        elif in_auth and line.strip():
            lines[i] = b"<redacted>" + cr
    return b"\n".join(lines)


def redact_server(data: bytes) -> bytes:
    """Server bytes for a log: the text of 334 challenges becomes ``<redacted>``."""
    if b"334" not in data:
        return data
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        if line[:4] in (b"334 ", b"334-"):
            lines[i] = line[:4] + b"<redacted>\r"
    return b"\n".join(lines)


class TrafficLog:
    """The opt-in traffic log of a server: every byte at DEBUG level, AUTH redacted."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    @classmethod
    def from_option(cls, option: bool | logging.Logger) -> TrafficLog | None:
        if isinstance(option, logging.Logger):
            return cls(option)
        return cls(logging.getLogger("sansio_smtp.traffic")) if option else None

    def client(self, session_id: str, data: bytes, *, in_auth: bool) -> None:
        self.logger.debug("%s C: %r", session_id, redact_client(data, in_auth=in_auth))

    def server(self, session_id: str, data: bytes) -> None:
        self.logger.debug("%s S: %r", session_id, redact_server(data))
