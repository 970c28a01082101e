# ClientEngine: the client's mail transactions and batches, on the session of
# SessionEngine (_session), for messages as MessageEngine (_prepare) chose to send them.
# Here: pipelining, RCPTMAX splitting, LMTP's per-recipient replies, and batches. Whether
# the server can take what is declared is the core's rule, asked before anything of the
# message is written: the MAIL's own send() (atomic) when the MAIL opens its write,
# Connection.check (MessageEngine._admit) when an RSET goes first or for a batch; the
# core checks every command and the content as they go. A batch (send_many) writes one
# message's content and "." with the next message's group, then reads every reply
# before writing again (RFC 2920 §3.1).
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from ..._errors import LocalProtocolError
from ..._events import (
    Bdat,
    BytesLike,
    Data,
    EndOfMessage,
    MailFrom,
    MessageData,
    RcptTo,
    Reply,
    Rset,
)
from ..._state import Phase, State
from .._io import READ, Steps, Write, coalesce
from ._errors import (
    SMTPBatchInterrupted,
    SMTPDataError,
    SMTPError,
    SMTPProtocolViolation,
    SMTPRecipientsRefused,
    SMTPReplyError,
    SMTPSenderRefused,
    SMTPServerDisconnected,
)
from ._message import MessageSpec, OutgoingMessage
from ._options import ClientOptions
from ._prepare import MessageEngine, _Verdict
from ._results import SendResult
from ._session import _REPLY_STATES
from ._transactions import Outcome, Prepared, Transaction, send_result

__all__ = ["ClientEngine"]

_DATA, _END, _RSET = Data(), EndOfMessage(), Rset()  # immutable: one serves every message
_OPEN: Final = frozenset({State.MAIL, State.RCPT, State.BDAT})  # settle() ends the transaction
_ENDED: Final = frozenset({State.CLOSED, State.ERROR})
# The states and phases read on every round trip: an Enum member read from its class costs
# about ten times a module global's lookup (as the core's _state does).
_READY, _RCPT, _IN_DATA, _CLOSED = State.READY, State.RCPT, State.DATA, State.CLOSED
_COMMAND, _DATA_BLOCK = Phase.COMMAND, Phase.DATA_BLOCK


class ClientEngine(MessageEngine):
    """The client dialogue without I/O: the session (SessionEngine), the choices for each
    message (MessageEngine) and its mail. One per connection."""

    def __init__(self, options: ClientOptions) -> None:
        super().__init__(options)
        self._reset_due = False  # send RSET before the next MAIL

    # ------------------------------------------------------------------- sending

    def settle(self) -> Steps[None]:
        """End a transaction still open after a refusal (RSET, RFC 5321 §4.1.1.5), so the
        session is at rest (State.READY) and the core can judge the next MAIL
        (``prepare``). Nothing when it is at rest already, or not usable."""
        if self.usable and self.conn.state in _OPEN:
            reply = yield from self._exchange(_RSET)
            if not reply.is_positive:
                raise SMTPReplyError("RSET refused", reply)
            self._reset_due = False

    def send_mail(
        self,
        sender: str,
        recipients: Sequence[str],
        content: bytes,
        mail_params: Mapping[str, str | None] | None = None,
        rcpt_params: Mapping[str, str | None] | None = None,
        *,
        international: bool = False,
    ) -> Steps[SendResult]:
        """Send one message to ``recipients``; split across transactions by LIMITS
        RCPTMAX (RFC 9422 §4.2). Raises when no recipient got it (SMTPSenderRefused,
        SMTPRecipientsRefused, SMTPDataError); else returns the SendResult."""
        self._check_can_send(recipients)
        if self.conn.state in _OPEN:
            yield from self.settle()
        # The core judges what is declared: here by the MAIL's own send(), which is atomic
        # when the MAIL is the first command of its write (a refusal leaves nothing sent);
        # up front when an RSET goes before it, after a refused transaction.
        mail, rcpts, data, bdat, declared = self.prepare(
            sender,
            recipients,
            content,
            mail_params,
            rcpt_params,
            international=international,
            admit=self._reset_due,
            checked=True,
        )
        keys = list(recipients)
        rcptmax = self._capabilities().rcptmax
        try:
            if not rcptmax or rcptmax >= len(rcpts):
                # One transaction, the usual case: driven from here, as _send_prepared
                # would, without its layer (this generator is resumed on every I/O step)
                tx = Transaction(keys, lmtp=self.options.lmtp)
                yield from self._transaction(tx, mail, rcpts, data, bdat)
                if tx.finish().refused:
                    self._reset_due = True
                txs = [tx]
            else:
                txs = yield from self._send_prepared(keys, mail, rcpts, data, bdat)
        except LocalProtocolError:
            if declared and not self.broken:  # nothing was sent: the MAIL was refused
                # the server lacks what the message needs? (the sender as the MAIL has it:
                # its domain may be A-labels)
                self._admit(str(mail.reverse_path or ""), declared)
            raise
        result = send_result(sender, keys, txs)
        if result.ok:
            return result
        failures = _failures(txs)
        if not failures or not result.refused:
            raise SMTPServerDisconnected("the connection closed before the message was sent")
        outcome, reply = failures[0]
        if outcome is Outcome.SENDER_REFUSED:
            raise SMTPSenderRefused(reply, sender, result)
        if outcome is Outcome.DATA_REFUSED:
            raise SMTPDataError(reply, result)
        raise SMTPRecipientsRefused(result)

    def _send_prepared(
        self,
        keys: list[str],
        mail: MailFrom,
        rcpts: list[RcptTo],
        data: bytes,
        bdat: bool,
    ) -> Steps[list[Transaction]]:
        """The transactions of a prepared message, finished: more than one when LIMITS
        RCPTMAX splits the recipients (RFC 9422 §4.2)."""
        step = self._capabilities().rcptmax or len(rcpts)
        split = step < len(rcpts)  # by RCPTMAX; else one transaction of the lists as given
        txs: list[Transaction] = []
        for start in range(0, len(rcpts), step):
            tx = Transaction(keys[start : start + step] if split else keys, lmtp=self.options.lmtp)
            yield from self._transaction(
                tx, mail, rcpts[start : start + step] if split else rcpts, data, bdat
            )
            if tx.finish().refused:
                self._reset_due = True
            txs.append(tx)
            if split and not self.usable:
                break
        return txs

    def _transaction(
        self, tx: Transaction, mail: MailFrom, rcpts: list[RcptTo], data: bytes, bdat: bool
    ) -> Steps[None]:
        conn = self.conn
        pipelining = self._capabilities().pipelining
        # After a failed transaction, end it for sure (RFC 5321 §4.1.1.5): after a refused
        # BDAT the two sides may disagree on whether it is still open (RFC 3030 §2).
        reset = self._reset_due or conn.state is not _READY
        self._reset_due = False
        if reset and not pipelining:
            reply = yield from self._exchange(_RSET)
            if not reply.is_positive:
                raise SMTPReplyError("RSET refused", reply)
            reset = False
        wire: list[BytesLike] = []
        send = self.send if self._log else conn.send
        try:
            if reset:
                wire.append(send(_RSET))  # pipelined with the group (RFC 2920 §3.1)
            wire.append(send(mail))
            if pipelining:
                # RFC 2920 §3.1: MAIL, every RCPT and DATA (or BDAT with its chunks,
                # RFC 3030 §4.2) as one group; the replies come back in order.
                for rcpt in rcpts:
                    wire.append(send(rcpt))
                if bdat:
                    wire.extend(p for chunk in self._bdat_chunks(data) for p in chunk)
                else:
                    wire.append(send(_DATA))
                yield Write(coalesce(wire), _DATA_BLOCK if bdat else _COMMAND, read=True)
                yield from self._collect(tx)
            else:  # lock-step: one reply awaited after each write
                yield Write(wire, _COMMAND, read=True)
                yield from self._collect(tx, 1)
                if self.broken or tx.mail_reply is None or not tx.mail_reply.is_positive:
                    return
                for rcpt in rcpts:
                    yield Write([send(rcpt)], _COMMAND, read=True)
                    yield from self._collect(tx, 1)
                    if self.broken:
                        return
                if not tx.accepted or conn.state is not _RCPT:
                    return
                if bdat:
                    for chunk_wire in self._bdat_chunks(data):
                        yield Write(coalesce(chunk_wire), _DATA_BLOCK, read=True)
                        yield from self._collect(tx)
                        if self.broken or not tx.accepted or tx.data_reply is not None:
                            break  # the last chunk was answered, or a chunk failed
                    return
                yield Write([send(_DATA)], _COMMAND, read=True)
                yield from self._collect(tx, 1)
        except LocalProtocolError:
            if not wire:
                raise  # nothing changed: Connection.send() is atomic
            conn.send_failed()  # part of a group was sent to the core but not written
            self.broken = True
            raise
        if self.broken or bdat or conn.state is not _IN_DATA:
            if not self.broken and tx.start_reply is not None and tx.start_reply.code == 354:
                # 354 with no recipient accepted (RFC 2920 §3.1 says send only "."); the
                # core cannot, so the session cannot go on.
                self.broken = True
                raise SMTPProtocolViolation("354 after every recipient was refused")
            return
        out = conn.send_with_data_passthrough(MessageData(data=data))
        out.append(conn.send(_END))
        if self._log:
            self._record("C", f"<message content, {len(data)} octets>", "content")
            self._record("C", ".", "content")
        yield Write(coalesce(out), _DATA_BLOCK, read=True)
        yield from self._collect(tx, 1)  # (LMTP: then one per accepted recipient)

    def _bdat_chunks(self, data: bytes) -> Iterable[list[BytesLike]]:
        """BDAT command + octets per chunk (RFC 3030 §2); one LAST chunk when it fits."""
        size = self.options.bdat_chunk_size
        view = memoryview(data)
        total = len(data)
        start = 0
        while True:
            end = min(start + size, total)
            last = end == total
            chunk = view[start:end]
            wire: list[BytesLike] = [self.send(Bdat(size=end - start, last=last))]
            if end > start:
                wire.extend(self.conn.send_with_data_passthrough(MessageData(data=chunk)))
            if self._log and end > start:
                self._record("C", f"<message content, {end - start} octets>", "content")
            yield wire
            if last:
                return
            start = end

    def _collect(self, tx: Transaction, left: int = 0) -> Steps[None]:
        """Read replies until no command is pending, matching each to what it answers
        (``conn.last_answered``). _reply's loop, written out here: this generator is
        resumed on every READ of a send, so one frame less on each of them. ``left``:
        the replies awaited when the caller knows (1 after one command: every earlier
        reply was read), else 0 for as many as commands are pending."""
        conn = self.conn
        # Right after a write usually nothing is buffered yet: look first, unless the
        # runtime read after the write (read_after_write)
        look = not self.read_after_write
        # One reply answers one pending command: counted, not a new ``pending`` tuple per
        # reply; in LMTP asked again at 0 (one more per accepted recipient after the ".")
        if not left:
            left = conn.awaiting_replies
        while left:
            # Nothing buffered: the reply reader could only say NEED_DATA
            if look and conn.state in _REPLY_STATES and not conn.buffered and not conn.peer_closed:
                yield READ
            look = False  # the rest of a run of replies: usually buffered already
            reply = self._next_reply()
            while reply is None:
                yield READ
                reply = self._next_reply()
            tx.record(conn.last_answered, reply)
            if conn.state is _CLOSED:  # 421 (RFC 5321 §3.8): nothing more will come
                self.broken = True
                tx.closed_by(reply)
                return
            left -= 1
            if not left and tx.lmtp:
                left = conn.awaiting_replies

    # ---------------------------------------------------------------------- batches

    def send_many(self, messages: Iterable[MessageSpec]) -> Steps[list[SendResult]]:
        """Send several messages on this session, one SendResult each, in order.

        A refused message is not an exception: its SendResult has ``ok`` False and the
        refusals (as send_mail's exceptions carry them). Every message is prepared first,
        so a local error (SMTPNotSupportedError, ValueError for a bad address, no
        recipients) raises before anything of the batch is written. A connection-level
        failure raises SMTPBatchInterrupted with the results known so far.

        With PIPELINING and DATA, the content and "." of one message go in the same write
        as the next message's [RSET] MAIL RCPT... DATA group (RFC 2920 §3.1: the content
        may be the first "command" of a group): about one round trip per message instead
        of two. Each message goes as send_mail sends it (its own round trips) otherwise:
        without PIPELINING, in LMTP (RFC 2033 §4.2: a variable number of per-recipient
        replies after the ".", which would make routing the next group's replies depend
        on them; not done), with CHUNKING (MAIL RCPT... BDAT LAST is already one round
        trip, and the core ends a pipelined group at BDAT LAST, so the next message's MAIL
        cannot share the write), and for a message split by LIMITS RCPTMAX.
        """
        batch = [m if isinstance(m, OutgoingMessage) else OutgoingMessage(*m) for m in messages]
        for m in batch:
            self._check_can_send(m.recipients)
        if batch:
            yield from self.settle()
        admitted: set[_Verdict] = set()  # the core's answer for one message holds for all
        prepared = [
            Prepared(
                m,
                *self.prepare(
                    m.sender,
                    m.recipients,
                    m.content,
                    m.mail_params,
                    m.rcpt_params,
                    checked=True,
                    admitted=admitted,
                )[:4],
            )
            for m in batch
        ]
        results: list[SendResult] = []
        try:
            if (
                prepared
                and self._capabilities().pipelining
                and not self.options.lmtp
                and not prepared[0].bdat  # CHUNKING offered (and not disabled)
            ):
                yield from self._send_pipelined(prepared, results)
            else:
                for item in prepared:
                    self._check_going()
                    yield from self._send_one(item, results)
        except (SMTPError, LocalProtocolError) as exc:
            raise SMTPBatchInterrupted(results, len(prepared), exc) from exc
        return results

    def _check_going(self) -> None:
        if self.broken or self.conn.state in _ENDED:
            self.broken = True
            raise SMTPServerDisconnected("the session ended before the rest of the batch")

    def _send_one(self, item: Prepared, results: list[SendResult]) -> Steps[None]:
        """One message as send_mail sends it; its result, whatever it is."""
        txs = yield from self._send_prepared(item.keys, item.mail, item.rcpts, item.data, item.bdat)
        result = send_result(item.message.sender, item.keys, txs)
        if not result.ok and (not _failures(txs) or not result.refused):
            raise SMTPServerDisconnected("the connection closed before the message was sent")
        results.append(result)

    def _send_pipelined(self, prepared: list[Prepared], results: list[SendResult]) -> Steps[None]:
        """The batch over PIPELINING and DATA: write ``content + "." of message i`` and
        ``[RSET] MAIL RCPT... DATA of message i+1`` together (RFC 2920 §3.1), then read
        the replies: the first answers the "." (replies come in command order), the rest
        the group (``_collect``). Each write holds at most one message's content and one
        group, and every reply is read before the next write, so the server is never
        left with unread replies piling up (the RFC 2920 §3.2 deadlock)."""
        conn = self.conn
        rcptmax = self._capabilities().rcptmax
        tail: list[BytesLike] = []  # content and "." of `held`, not yet written
        held: tuple[Prepared, Transaction] | None = None
        send = self.send if self._log else conn.send  # (as _transaction: no log, no layer)
        for item in prepared:
            self._check_going()
            if rcptmax is not None and len(item.rcpts) > rcptmax:
                if held is not None:  # finish the pipeline, then send_mail's splitting
                    yield Write(coalesce(tail), _DATA_BLOCK, read=True)
                    tail = []
                    yield from self._end_held(held, results)
                    held = None
                    self._check_going()
                yield from self._send_one(item, results)
                continue
            tx = Transaction(item.keys, lmtp=self.options.lmtp)
            # A failed transaction is ended before the next MAIL (RFC 5321 §4.1.1.5), by an
            # RSET at the head of the group. After the "." none is needed: the end of the
            # content ends the transaction whatever its reply (RFC 5321 §4.1.1.4).
            reset = self._reset_due or (held is None and conn.state is not _READY)
            self._reset_due = False
            wire, tail = tail, []
            try:
                if reset:
                    wire.append(send(_RSET))
                wire.append(send(item.mail))
                for rcpt in item.rcpts:
                    wire.append(send(rcpt))
                wire.append(send(_DATA))
            except LocalProtocolError:
                if wire:  # Connection.send() is atomic: only a partial group is lost
                    conn.send_failed()
                    self.broken = True
                raise
            phase = _COMMAND if held is None else _DATA_BLOCK
            yield Write(coalesce(wire), phase, read=True)
            if held is not None:
                yield from self._end_held(held, results)
                held = None
                self._check_going()  # a 421 to the ".": the group got no reply
            yield from self._collect(tx)
            if not self.broken and conn.state is _IN_DATA:
                if not tx.accepted:  # as _transaction: the core cannot send a lone "."
                    self.broken = True
                    raise SMTPProtocolViolation("354 after every recipient was refused")
                try:
                    tail = conn.send_with_data_passthrough(MessageData(data=item.data))
                    tail.append(conn.send(_END))
                except LocalProtocolError:
                    conn.send_failed()
                    self.broken = True
                    raise
                if self._log:
                    self._record("C", f"<message content, {len(item.data)} octets>", "content")
                    self._record("C", ".", "content")
                held = (item, tx)
                continue
            # refused before the content, or a 421 closed the session
            if tx.finish().refused:
                self._reset_due = True
            results.append(send_result(item.message.sender, item.keys, [tx]))
        if held is not None:
            yield Write(coalesce(tail), _DATA_BLOCK, read=True)
            yield from self._end_held(held, results)

    def _end_held(
        self, held: tuple[Prepared, Transaction], results: list[SendResult]
    ) -> Steps[None]:
        """Read the reply to the "." of the held message (the oldest command pending)."""
        item, tx = held
        tx.data_reply = yield from self._reply()
        if not isinstance(self.conn.last_answered, EndOfMessage):  # pragma: no cover - a bug
            self.broken = True
            raise SMTPProtocolViolation("a reply out of order in the batch")
        if self.conn.state is _CLOSED:  # 421 (RFC 5321 §3.8)
            self.broken = True
        tx.finish()
        results.append(send_result(item.message.sender, item.keys, [tx]))


def _failures(txs: list[Transaction]) -> list[tuple[Outcome, Reply]]:
    """The Outcome and reply of each refused transaction of a message (first first)."""
    return [
        (tx.outcome, tx.failure_reply)
        for tx in txs
        if tx.outcome is not None and tx.failure_reply is not None
    ]
