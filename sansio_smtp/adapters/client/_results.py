# What the clients return: SendResult for a message (accepted and refused recipients,
# each with its Reply), and TranscriptEntry for a line of the dialogue: the core's
# TranscriptLine (the clients keep their transcript in the core's Transcript).
from __future__ import annotations

from collections.abc import Mapping
from typing import final

import attrs

from ..._events import Reply
from ..._transcript import TranscriptLine

__all__ = ["SendResult", "TranscriptEntry"]


@final
@attrs.frozen(kw_only=True)
class SendResult:
    """What happened to one message (possibly several transactions, when LIMITS RCPTMAX
    made the client split the recipients).

    - ``sender``: the reverse-path used.
    - ``accepted``: recipient -> the Reply that accepted it: the RCPT reply, or in LMTP the
      per-recipient reply after the data (RFC 2033 §4.2). In recipient order.
    - ``refused``: recipient -> the Reply that refused it: its RCPT reply, the MAIL reply if
      the sender was refused, the final reply if the content was refused, or its LMTP
      per-recipient reply. Every refusal keeps its code and enhanced code (RFC 3463).
    - ``data_replies``: the final reply of each transaction that got as far as the content
      (the reply to ``<CRLF>.<CRLF>`` or BDAT LAST).
    """

    sender: str
    accepted: Mapping[str, Reply]
    refused: Mapping[str, Reply]
    data_replies: tuple[Reply, ...] = ()

    @property
    def data_reply(self) -> Reply | None:
        """The final reply of the last transaction (None if none got that far)."""
        return self.data_replies[-1] if self.data_replies else None

    @property
    def ok(self) -> bool:
        """At least one recipient accepted the message."""
        return bool(self.accepted)


#: One line of a client's transcript (``client.transcript``, ``on_transcript``): the core's
#: TranscriptLine, ``direction`` "C", "S" or "*" (a note such as the TLS handshake) and
#: ``text``, AUTH data redacted and message content shown by its size; ``str()`` is
#: ``"C: text"``. The name stays for the clients' users.
TranscriptEntry = TranscriptLine
