# What a Connection calls on the recorder it is given (``Connection(transcript=...)``):
# the presentation layer's Transcript is one. A Protocol, so that Connection, below the
# presentation layer, never imports it.
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._events import BytesLike, Event
    from ._state import Role

__all__ = ["Recorder"]


class Recorder(Protocol):
    """Told what a connection received, read and sent (see Transcript)."""

    def record_received(self, role: Role, data: BytesLike) -> None: ...
    def record_event(self, role: Role, event: object) -> None: ...
    def record_sent(self, role: Role, event: Event, data: Iterable[BytesLike]) -> None: ...
