# The message content of a server session: the Dispatcher's steps from the first piece of
# content (DATA or BDAT) to the reply that ends the transaction, asking the data_chunk
# and data hooks on the way; LMTP's per-recipient replies (RFC 2033 §4.2).
#
# Strategy: a mixin of the Dispatcher, in its own module so that the Dispatcher's module
# is the session loop and the per-command path; a piece of content costs one handler
# call (kept, or passed to data_chunk), and the content is joined once, at its end.
# Rules: one reply per message in SMTP, one per accepted recipient in LMTP; a hook error
# becomes a 451 (LOCAL_ERROR) or the Reject's reply, never a crash.
from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Final

from ..._events import EndOfMessage, Event, MessageData, Reply
from ..._state import LmtpDelivery
from .._io import ServerOp

if TYPE_CHECKING:
    from ..._connection import Connection
    from ._auth_steps import Outcome, Steps
    from ._handler import Session
    from ._hooks import Hooks

__all__ = ["LOCAL_ERROR", "ContentSteps"]

# RFC 5321 §4.2.3: 451 Requested action aborted: local error in processing.
LOCAL_ERROR: Final = Reply(
    code=451, lines="Requested action aborted: local error in processing", enhanced="4.3.0"
)


class ContentSteps:
    """The content part of the Dispatcher (which provides what is declared here)."""

    if not TYPE_CHECKING:  # (mypy checks assignments against a class's own __slots__)
        __slots__ = ()  # the Dispatcher's slots hold the attributes declared below

    if TYPE_CHECKING:
        conn: Connection
        hooks: Hooks
        session: Session
        _chunks: list[bytes]
        _data_error: BaseException | None
        _lmtp_replies: list[Reply | None]

        def _answer(self, event: Event, reply: Reply) -> None: ...

        def _report(self, exc: BaseException) -> None: ...

        def _default(self, event: Event) -> Generator[ServerOp, object, None] | None: ...

        def _call(
            self, fn: Callable[..., object], args: tuple[object, ...], blocking: bool = False
        ) -> Outcome | Steps: ...

        def _reply_from(
            self, event: Event, value: object, error: BaseException | None
        ) -> Reply: ...

    def _on_content(self, event: MessageData) -> Generator[ServerOp, object, None] | None:
        """A piece of message content (DATA or BDAT): the hot path of a message."""
        hooks = self.hooks
        fn = hooks.data_chunk
        if fn is None and not hooks.buffer_content:
            return None  # nobody keeps it (SinkHandler)
        data = event.data
        chunk = data if type(data) is bytes else bytes(data)
        if hooks.buffer_content:
            self._chunks.append(chunk)  # joined once, at the end (_on_end)
        envelope = self.session.envelope
        if fn is None or self._data_error is not None or envelope is None:
            return None
        outcome = self._call(fn, (self.session, envelope, chunk), True)
        if isinstance(outcome, tuple):
            self._data_error = outcome[1]
            return None
        return self._chunk_after(outcome)

    def _chunk_after(self, call: Steps) -> Generator[ServerOp, object, None]:
        _, error = yield from call
        if error is not None:
            self._data_error = error

    def _owed(self, item: Event) -> None:
        """A reply owed without a new event: a BDAT chunk was read (RFC 3030 §2), or the
        next LMTP per-recipient reply (RFC 2033 §4.2)."""
        if isinstance(item, LmtpDelivery):
            reply = self._lmtp_replies.pop(0) if self._lmtp_replies else None
            self._answer(item, reply if reply is not None else self.conn.default_reply(item))
            return
        error = self._data_error
        if error is not None:
            self._answer(item, self._reply_from(item, None, error))
        else:
            self._default(item)

    def _on_end(self, event: EndOfMessage) -> Generator[ServerOp, object, None] | None:
        envelope = self.session.envelope
        conn = self.conn
        owed = conn.pending[0]  # EndOfMessage (DATA) or the last Bdat
        if envelope is None:  # pragma: no cover - the core allows content only in a txn
            self._default(owed)
            return None
        if self.hooks.buffer_content:
            chunks = self._chunks
            envelope.content = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            self._chunks = []
        error = self._data_error
        fn = self.hooks.data
        if error is not None or fn is None:
            if error is None and not conn.config.lmtp:
                # SMTP without a data hook: the default reply (_finish_data's first case)
                self._answer(owed, conn.default_reply(owed))
            else:
                self._finish_data(owed, None, error)
            return None
        outcome = self._call(fn, (self.session, envelope), True)
        if isinstance(outcome, tuple):
            self._finish_data(owed, *outcome)
            return None
        return self._finish_after(owed, outcome)

    def _finish_after(self, owed: Event, call: Steps) -> Generator[ServerOp, object, None]:
        value, error = yield from call
        self._finish_data(owed, value, error)

    def _finish_data(self, owed: Event, value: object, error: BaseException | None) -> None:
        lmtp = self.conn.config.lmtp
        if not lmtp and error is None and (value is None or type(value) is Reply):
            # SMTP: one reply for the message (the common case, no per-recipient list)
            reply = self.conn.default_reply(owed) if value is None else value
            assert isinstance(reply, Reply)
            self._answer(owed, reply)
            return
        recipients = len(self.conn.accepted_recipients)
        replies: list[Reply | None]
        if error is None and value is None:
            replies = [None] * max(recipients, 1)  # the default, per recipient in LMTP
        elif error is not None or isinstance(value, Reply):
            replies = [self._reply_from(owed, value, error)] * max(recipients, 1)
        elif isinstance(value, Sequence) and all(isinstance(r, Reply) for r in value):
            replies = list(value)
            wanted = recipients if lmtp else 1
            if len(replies) != wanted:
                self._report(ValueError(f"data returned {len(replies)} replies, not {wanted}"))
                replies = [LOCAL_ERROR] * max(recipients, 1)
        else:
            replies = [self._reply_from(owed, value, None)] * max(recipients, 1)
        if lmtp:
            self._lmtp_replies.extend(replies[1:])
        first = replies[0]
        if first is None:
            accepted = self.conn.accepted_recipients
            if lmtp and accepted:  # RFC 2033 §4.2: about the first RCPT
                first = self.conn.default_reply(LmtpDelivery(recipient=accepted[0]))
            else:
                first = self.conn.default_reply(owed)
        self._answer(owed, first)
