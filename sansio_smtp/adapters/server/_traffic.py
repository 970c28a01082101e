# The opt-in traffic log of a server: each session's dialogue, line by line, at DEBUG
# level, AUTH redacted.
#
# Strategy: the log is the core's Transcript. Each session's Connection records into a
# Transcript(store=False) whose on_line writes the line to the logger, prefixed by the
# session id, as the line is cut: the commands and replies as they are on the wire, the
# first lines of each message's content and a count of the rest (Transcript's
# max_content_lines), nothing kept in memory. What is secret in an AUTH exchange (RFC
# 4954 §4) is decided by _redact, the one AUTH redaction rule, which the Transcript
# applies before a line reaches the log. The Transcript is imported when a log is made:
# a server without the traffic log does not load it.
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..._redact import redact_client_data, redact_server_data

if TYPE_CHECKING:
    from ..._transcript import Transcript, TranscriptLine

__all__ = ["TrafficLog", "redact_client", "redact_server"]


def redact_client(data: bytes, *, in_auth: bool) -> bytes:
    """Client bytes for a log of raw chunks: ``_redact.redact_client_data``'s bytes."""
    return redact_client_data(data, in_auth=in_auth)[0]


def redact_server(data: bytes) -> bytes:
    """Server bytes for a log of raw chunks: ``_redact.redact_server_data``."""
    return redact_server_data(data)


class TrafficLog:
    """The opt-in traffic log of a server: every line of every session at DEBUG level,
    AUTH redacted."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    @classmethod
    def from_option(cls, option: bool | logging.Logger) -> TrafficLog | None:
        if isinstance(option, logging.Logger):
            return cls(option)
        return cls(logging.getLogger("sansio_smtp.traffic")) if option else None

    def transcript(self, session_id: str) -> Transcript:
        """The Transcript a session's Connection records into: it keeps nothing and logs
        each line as ``<session id> C: <line>`` (``S:`` for ours, ``*:`` for notes)."""
        from ..._transcript import Transcript

        logger = self.logger

        def log(line: TranscriptLine) -> None:
            logger.debug("%s %s", session_id, line)

        return Transcript(store=False, on_line=log)
