# The bookkeeping of mail transactions: which recipient each reply is about (record),
# what a 421 ends (closed_by), and, once the transaction is over (finish), which
# recipients got the message and its Outcome. No I/O and no protocol decisions: the engine
# (_engine) sends the commands and passes each reply in with the command it answered
# (``Connection.last_answered``).
from __future__ import annotations

import enum
from collections.abc import Sequence

from ..._events import Bdat, Data, EndOfMessage, Event, MailFrom, RcptTo, Reply
from ._message import OutgoingMessage
from ._results import SendResult

__all__ = ["Outcome", "Prepared", "Transaction", "send_result"]


class Outcome(enum.Enum):
    """How a finished transaction ended for its recipients."""

    DELIVERED = "delivered"  # at least one recipient accepted the message
    NO_REPLY = "no reply"  # nothing was refused: the session ended before any reply
    SENDER_REFUSED = "sender refused"  # MAIL refused (SMTPSenderRefused)
    RECIPIENTS_REFUSED = "recipients refused"  # no RCPT (or LMTP delivery) accepted
    DATA_REFUSED = "data refused"  # DATA, the end of data or a BDAT chunk refused

    @property
    def refused(self) -> bool:
        """The server refused the message (SMTPSenderRefused, SMTPRecipientsRefused or
        SMTPDataError when no other transaction of the message delivered it)."""
        return self in (Outcome.SENDER_REFUSED, Outcome.RECIPIENTS_REFUSED, Outcome.DATA_REFUSED)


class Transaction:
    """Bookkeeping for one mail transaction's replies."""

    __slots__ = (
        "accepted",
        "closed",
        "data_reply",
        "deliveries",
        "delivery_queue",
        "failure_reply",
        "keys",
        "lmtp",
        "mail_reply",
        "outcome",
        "rcpt_seen",
        "refused",
        "start_reply",
    )

    def __init__(self, keys: list[str], *, lmtp: bool = False) -> None:
        self.keys = keys
        self.lmtp = lmtp  # RFC 2033 §4.2: one reply per accepted recipient after the data
        self.rcpt_seen = 0  # RCPT replies read
        self.deliveries = 0  # LMTP per-recipient replies read
        self.accepted: dict[str, Reply] = {}
        self.refused: dict[str, Reply] = {}
        self.delivery_queue: list[str] = []  # LMTP: accepted recipients awaiting delivery
        self.mail_reply: Reply | None = None
        self.start_reply: Reply | None = None  # the reply to DATA (354 or a refusal)
        self.data_reply: Reply | None = None  # the final reply (or a refused BDAT chunk)
        self.outcome: Outcome | None = None  # set by finish()
        self.failure_reply: Reply | None = None  # the reply of a refused outcome
        self.closed: Reply | None = None  # a 421 ended the session before the data

    def record(self, answered: Event | None, reply: Reply) -> None:
        """Note ``reply``, the answer to ``answered`` (``Connection.last_answered``)."""
        # The event classes are final: their type() is exact, and cheaper than isinstance.
        kind = type(answered)
        if kind is RcptTo:
            if self.rcpt_seen < len(self.keys):  # RCPT replies come first, in order
                key = self.keys[self.rcpt_seen]
                self.rcpt_seen += 1
                if reply.is_positive:
                    self.accepted[key] = reply
                    if self.lmtp:
                        self.delivery_queue.append(key)
                else:
                    self.refused[key] = reply
            else:  # LMTP: one reply per accepted recipient (RFC 2033 §4.2)
                key = self.delivery_queue.pop(0)
                self.deliveries += 1
                if self.data_reply is None:
                    self.data_reply = reply
                if reply.is_positive:
                    self.accepted[key] = reply
                else:
                    del self.accepted[key]
                    self.refused[key] = reply
        elif kind is MailFrom:
            self.mail_reply = reply
        elif kind is Data:
            self.start_reply = reply
        elif kind is EndOfMessage:
            self.data_reply = reply
            self.delivery_queue.clear()
        elif isinstance(answered, Bdat) and (answered.last or not reply.is_positive):
            if self.data_reply is None or self.data_reply.is_positive:
                self.data_reply = reply
            self.delivery_queue.clear()

    def closed_by(self, reply: Reply) -> None:
        """The session closed (421, RFC 5321 §3.8) with ``reply``: nothing more will come,
        so what was awaited is refused with it."""
        if self.mail_reply is None:
            self.mail_reply = reply
        elif self.accepted and self.data_reply is None:
            self.data_reply = reply
        for key in self.delivery_queue:  # LMTP deliveries never reported
            self.accepted.pop(key, None)
            self.refused[key] = reply
        self.delivery_queue.clear()
        if self.rcpt_seen < len(self.keys):  # RCPTs never answered: no message sent
            for key in self.keys[self.rcpt_seen :]:
                self.refused[key] = reply
            self.rcpt_seen = len(self.keys)
            self.closed = reply

    def _refuse(self, outcome: Outcome, reply: Reply) -> None:
        self.outcome, self.failure_reply = outcome, reply

    def finish(self) -> Outcome:
        """Decide which recipients got the message, and why the others did not; the
        transaction's Outcome (also kept in ``outcome``)."""
        self._decide()
        assert self.outcome is not None
        return self.outcome

    def _decide(self) -> None:
        mail = self.mail_reply
        if mail is not None and not mail.is_positive:
            self._refuse(Outcome.SENDER_REFUSED, mail)
            for key in self.keys:  # the RCPTs were never considered (503 if pipelined)
                self.refused[key] = mail
            self.accepted.clear()
            return
        if self.closed is not None:  # 421 among the RCPT replies: nothing was sent
            for key in self.accepted:
                self.refused[key] = self.closed
            self.accepted.clear()
        if not self.accepted and not self.deliveries:
            if self.refused:
                self._refuse(Outcome.RECIPIENTS_REFUSED, list(self.refused.values())[-1])
            else:
                self.outcome = Outcome.NO_REPLY
            return
        failed = None
        start = self.start_reply
        if start is not None and start.code != 354:
            failed = start  # DATA refused (RFC 5321 §4.1.1.4)
        elif self.deliveries:  # LMTP: each recipient has its own final reply
            if self.accepted:
                self.outcome = Outcome.DELIVERED
            else:
                self._refuse(Outcome.RECIPIENTS_REFUSED, list(self.refused.values())[-1])
            return
        elif self.data_reply is not None and not self.data_reply.is_positive:
            failed = self.data_reply
        if failed is not None:
            self._refuse(Outcome.DATA_REFUSED, failed)
            for key in self.accepted:
                self.refused[key] = failed
            self.accepted.clear()
        else:
            self.outcome = Outcome.DELIVERED


def send_result(sender: str, keys: Sequence[str], txs: Sequence[Transaction]) -> SendResult:
    """The SendResult of a message from its finished transactions (more than one when
    LIMITS RCPTMAX split the recipients), in recipient order."""
    if len(txs) == 1 and not txs[0].refused and len(txs[0].accepted) == len(keys):
        # Every recipient accepted, each once: the one transaction's replies are the
        # result, already in recipient order (record() adds them in RCPT order).
        tx = txs[0]
        return SendResult(
            sender=sender,
            accepted=tx.accepted,
            refused={},
            data_replies=(tx.data_reply,) if tx.data_reply is not None else (),
        )
    accepted: dict[str, Reply] = {}
    refused: dict[str, Reply] = {}
    for tx in txs:
        accepted.update(tx.accepted)
        refused.update(tx.refused)
    return SendResult(
        sender=sender,
        accepted={k: accepted[k] for k in keys if k in accepted},
        refused={k: refused[k] for k in keys if k in refused and k not in accepted},
        data_replies=tuple(
            tx.data_reply
            for tx in txs
            if tx.data_reply is not None and tx.outcome is not Outcome.SENDER_REFUSED
        ),
    )


class Prepared:
    """One message of a batch, prepared (ClientEngine.prepare) before anything is sent."""

    __slots__ = ("bdat", "data", "keys", "mail", "message", "rcpts")

    def __init__(
        self, message: OutgoingMessage, mail: MailFrom, rcpts: list[RcptTo], data: bytes, bdat: bool
    ) -> None:
        self.message = message
        self.keys = list(message.recipients)
        self.mail = mail
        self.rcpts = rcpts
        self.data = data
        self.bdat = bdat
