# ClientEngine: the client's mail transactions and batches, on the session of
# SessionEngine (_session). The engine's choices for a message are made once, here: which
# MAIL parameters to declare (SMTPUTF8, BODY, SIZE), DATA or BDAT, pipelining, RCPTMAX
# splitting, LMTP's per-recipient replies, and batches. Whether the server can take what
# is declared is the core's rule, asked before anything of the message is written: the
# MAIL's own send() (atomic) when the MAIL opens its write, Connection.check when an RSET
# goes first or for a batch; the core checks every command and the content as they go.
# A batch (send_many) writes one message's content and "." with the next message's
# group, then reads every reply before writing again (RFC 2920 §3.1).
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final, overload

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
from ..._extensions import Extensions
from ..._lines import has_bare_line_ending, normalize_line_endings, scan_line_lengths
from ..._params import Params
from ..._rules import advertised_limit, validate_rcpt_params
from ..._state import Phase, State
from ...config import DEFAULT_MAX_DATA_LINE
from .._io import Steps, Write, coalesce
from ._errors import (
    SMTPBatchInterrupted,
    SMTPDataError,
    SMTPError,
    SMTPNotSupportedError,
    SMTPProtocolViolation,
    SMTPRecipientsRefused,
    SMTPReplyError,
    SMTPSenderRefused,
    SMTPServerDisconnected,
)
from ._message import MessageSpec, OutgoingMessage, a_label_address, header_is_ascii
from ._options import ClientOptions
from ._results import SendResult
from ._session import SessionEngine
from ._transactions import Outcome, Prepared, Transaction, send_result

__all__ = ["ClientEngine"]

_EVENT_CACHE: Final = 512  # MAIL/RCPT events kept for reuse
_NO_PARAMS: Final = Params()
_DATA, _END, _RSET = Data(), EndOfMessage(), Rset()  # immutable: one serves every message
_OPEN: Final = frozenset({State.MAIL, State.RCPT, State.BDAT})  # settle() ends the transaction
#: Reply codes of a core refusal that mean the server does not offer what a message
#: needs: 555 (a MAIL parameter not recognized or not implemented, RFC 5321 §4.1.1.11)
#: and 552 (over the SIZE limit, RFC 1870 §6.1).
_NOT_SUPPORTED: Final = frozenset({552, 555})


class _Capabilities:
    """What the engine chooses from the server's EHLO reply, worked out once per reply:
    BDAT or DATA, which optional parameters to declare, how to split recipients."""

    __slots__ = ("chunking", "eightbit", "extensions", "rcptmax", "size", "smtputf8")

    def __init__(self, ext: Extensions, use_chunking: bool) -> None:
        self.extensions = ext
        self.chunking = use_chunking and "CHUNKING" in ext  # RFC 3030 §2
        self.eightbit = "8BITMIME" in ext  # RFC 6152
        self.size = "SIZE" in ext  # RFC 1870
        self.smtputf8 = "SMTPUTF8" in ext  # RFC 6531
        self.rcptmax = advertised_limit(ext, "RCPTMAX")  # RFC 9422 §4.2, the core's reading


class ClientEngine(SessionEngine):
    """The client dialogue without I/O: the session (SessionEngine) and its mail. One per
    connection."""

    def __init__(self, options: ClientOptions) -> None:
        super().__init__(options)
        self._reset_due = False  # send RSET before the next MAIL
        self._caps: _Capabilities | None = None
        self._events: dict[tuple[type, str, Params], MailFrom | RcptTo] = {}
        self._mails: dict[tuple[str, tuple[tuple[str, str | None], ...], Params], MailFrom] = {}
        # why the last message prepared could not go in ASCII to a server without
        # SMTPUTF8 (RFC 6531 §3.2), for the error when the core refuses its SMTPUTF8
        self._no_ascii_form: str | None = None

    # ------------------------------------------------------------------- sending

    def prepare(
        self,
        sender: str,
        recipients: Sequence[str],
        content: bytes,
        mail_params: Mapping[str, str | None] | None,
        rcpt_params: Mapping[str, str | None] | None,
        *,
        international: bool = False,
        admit: bool = True,
        checked: bool = False,  # the caller ran _check_can_send() already
    ) -> tuple[MailFrom, list[RcptTo], bytes, bool, dict[str, str | None]]:
        """Choose the parameters and the transfer for a message (nothing is sent):
        declare SMTPUTF8 for a non-ASCII address (RFC 6531 §3.4) when the server offers
        it, else send its domain as A-labels (RFC 6531 §3.2), BODY=8BITMIME for 8-bit
        content (RFC 6152) or BINARYMIME for NULs and over-long lines (RFC 3030 §3), SIZE
        (RFC 1870); BDAT when CHUNKING is offered. Whether the server can take what is
        declared is the core's rule: with ``admit`` it is asked now (``_admit``), which
        needs the session at rest (State.READY: ``settle()``). Returns (MAIL, RCPTs,
        content, use BDAT, the parameters declared). Raises SMTPNotSupportedError,
        ValueError for bad addresses."""
        if not checked:
            self._check_can_send(recipients)
        conn = self.conn
        caps = self._capabilities()
        user = _NO_PARAMS if not mail_params else Params(mail_params)
        auto: dict[str, str | None] = {}
        utf8 = international or not sender.isascii() or not all(map(str.isascii, recipients))
        self._no_ascii_form = None
        if utf8 and not caps.smtputf8 and "SMTPUTF8" not in user:
            # RFC 6531 §3.2: no U-label and no RFC 6532 header section to a server without
            # SMTPUTF8; the domains may go as A-labels (RFC 5890). When some address has no
            # ASCII form, SMTPUTF8 is declared as before and the core refuses it (555);
            # the reason goes with the SMTPNotSupportedError (_admit)
            try:
                if international and not header_is_ascii(content):
                    raise UnicodeError(
                        "the message's header section is UTF-8 (RFC 6532: non-ASCII"
                        " addresses in its fields)"
                    )
                ascii_sender = a_label_address(sender)
                ascii_recipients = [a_label_address(r) for r in recipients]
            except UnicodeError as exc:
                self._no_ascii_form = str(exc)
            else:
                sender, recipients, utf8 = ascii_sender, ascii_recipients, False
        if utf8 and "SMTPUTF8" not in user:
            auto["SMTPUTF8"] = None
        data = content
        binary = b"\0" in content
        if not binary and has_bare_line_ending(content):
            data = normalize_line_endings(content)  # RFC 5321 §2.3.8, as the core does
        if not binary:
            binary = scan_line_lengths(data, 0, DEFAULT_MAX_DATA_LINE) < 0
        body = user.get("BODY") if user else None
        if binary:
            data = content  # BINARYMIME: the octets exactly as given
            if body is None:
                auto["BODY"] = "BINARYMIME"
        else:
            if data and not data.endswith(b"\r\n"):
                data += b"\r\n"  # what DATA would add (RFC 5321 §4.1.1.4); same for BDAT
            if body is None and not data.isascii():
                # SMTPUTF8 alone lets 8-bit content go (RFC 6531 §3.4); else BODY=8BITMIME
                if caps.eightbit or not utf8:
                    auto["BODY"] = "8BITMIME"
            elif body is not None and body.upper() == "7BIT" and not data.isascii():
                raise SMTPNotSupportedError("BODY=7BIT given for 8-bit content (RFC 6152 §3)")
        if caps.size and "SIZE" not in user:
            auto["SIZE"] = str(len(data))
        if auto and admit:
            self._admit(sender, auto)
        binary = binary or (body or "").upper() == "BINARYMIME"
        if binary and not self.options.chunking:  # the server's side is the core's rule
            raise SMTPNotSupportedError("BODY=BINARYMIME needs CHUNKING (RFC 3030 §3)")
        limit = conn.size_limit if user and "SIZE" in user else None
        if limit is not None and len(data) > limit:
            # The core refuses content over the limit as it goes (RFC 1870 §6.1), after
            # the MAIL; a SIZE the caller declared does not say how big it is.
            raise SMTPNotSupportedError(
                f"the message ({len(data)} octets) is over the server's SIZE limit of"
                f" {limit} (RFC 1870 §6.1)"
            )
        mail = self._mail_event(sender, auto, user)
        rparams = _NO_PARAMS if not rcpt_params else Params(rcpt_params)
        if rcpt_params:
            validate_rcpt_params(rparams, extensions=conn.extensions)
        rcpts = [self._event(RcptTo, r, rparams) for r in recipients]
        return mail, rcpts, data, caps.chunking, auto

    def _mail_event(self, sender: str, auto: dict[str, str | None], user: Params) -> MailFrom:
        """The MAIL with the engine's parameters (``auto``) then the caller's, kept by
        what it is made of: a message like the last builds no Params and no event."""
        key = (sender, tuple(auto.items()), user)
        mail = self._mails.get(key)
        if mail is None:
            if len(self._mails) >= _EVENT_CACHE:
                self._mails.clear()
            params = Params({**auto, **dict(user)}) if auto else user
            mail = self._mails[key] = self._event(MailFrom, sender, params)
        return mail

    def _check_can_send(self, recipients: Sequence[str]) -> None:
        if not self.usable:
            raise SMTPServerDisconnected("the session is not usable (closed or broken)")
        if self.conn.state in (State.CONNECTED, State.REJECTED):
            raise SMTPError("no session: the server did not accept our EHLO/HELO")
        if not recipients:
            raise ValueError("no recipients")

    def _admit(self, sender: str, declared: dict[str, str | None]) -> None:
        """Ask the core whether a MAIL with the parameters the engine ``declared`` may be
        sent (what the server advertised: SMTPUTF8, 8BITMIME, BINARYMIME with CHUNKING,
        the SIZE limit); raise SMTPNotSupportedError when the server does not offer what
        they need (555, RFC 5321 §4.1.1.11) or the message is too big (552, RFC 1870
        §6.1). Other refusals (the caller's own parameters, LIMITS MAILMAX) come from
        ``Connection.send`` as they always did."""
        error = self.conn.check(self._event(MailFrom, sender, Params(declared)))
        hint = error.reply_hint if error is not None else None
        if hint is not None and hint.code in _NOT_SUPPORTED:
            why = self._no_ascii_form if "SMTPUTF8" in declared else None
            note = f"; {why}" if why else ""
            raise SMTPNotSupportedError(
                f"the server cannot take this message: {error}{note}"
            ) from error

    def settle(self) -> Steps[None]:
        """End a transaction still open after a refusal (RSET, RFC 5321 §4.1.1.5), so the
        session is at rest (State.READY) and the core can judge the next MAIL
        (``prepare``). Nothing when it is at rest already, or not usable."""
        if self.usable and self.conn.state in _OPEN:
            reply = yield from self._exchange(_RSET)
            if not reply.is_positive:
                raise SMTPReplyError("RSET refused", reply)
            self._reset_due = False

    @overload
    def _event(self, kind: type[MailFrom], address: str, params: Params) -> MailFrom: ...
    @overload
    def _event(self, kind: type[RcptTo], address: str, params: Params) -> RcptTo: ...
    def _event(
        self, kind: type[MailFrom] | type[RcptTo], address: str, params: Params
    ) -> MailFrom | RcptTo:
        """MAIL/RCPT for ``address``: events are immutable, so the parsed ones are kept
        (bounded) for the next message to the same addresses."""
        key = (kind, address, params)
        event = self._events.get(key)
        if event is None:
            if len(self._events) >= _EVENT_CACHE:
                self._events.clear()
            if kind is MailFrom:
                event = MailFrom(reverse_path=address, params=params)
            else:
                event = RcptTo(forward_path=address, params=params)
            self._events[key] = event
        return event

    def _capabilities(self) -> _Capabilities:
        ext = self.conn.extensions
        caps = self._caps
        if caps is None or caps.extensions is not ext:
            caps = self._caps = _Capabilities(ext, self.options.chunking)
        return caps

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
        try:
            result, failures = yield from self._send_prepared(
                sender, list(recipients), mail, rcpts, data, bdat
            )
        except LocalProtocolError:
            if declared and not self.broken:  # nothing was sent: the MAIL was refused
                # the server lacks what the message needs? (the sender as the MAIL has it:
                # its domain may be A-labels)
                self._admit(str(mail.reverse_path or ""), declared)
            raise
        if result.ok:
            return result
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
        sender: str,
        keys: list[str],
        mail: MailFrom,
        rcpts: list[RcptTo],
        data: bytes,
        bdat: bool,
    ) -> Steps[tuple[SendResult, list[tuple[Outcome, Reply]]]]:
        """send_mail's transactions for a prepared message: the SendResult, and the
        Outcome and reply of each refused transaction (first first)."""
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
        failures = [
            (tx.outcome, tx.failure_reply)
            for tx in txs
            if tx.outcome is not None and tx.failure_reply is not None
        ]
        return send_result(sender, keys, txs), failures

    def _transaction(
        self, tx: Transaction, mail: MailFrom, rcpts: list[RcptTo], data: bytes, bdat: bool
    ) -> Steps[None]:
        conn = self.conn
        pipelining = self.options.pipelining and "PIPELINING" in conn.extensions
        # After a failed transaction, end it for sure (RFC 5321 §4.1.1.5): after a refused
        # BDAT the two sides may disagree on whether it is still open (RFC 3030 §2).
        reset = self._reset_due or conn.state is not State.READY
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
                yield Write(coalesce(wire), Phase.DATA_BLOCK if bdat else Phase.COMMAND)
                yield from self._collect(tx)
            else:
                yield Write(wire, Phase.COMMAND)
                yield from self._collect(tx)
                if self.broken or tx.mail_reply is None or not tx.mail_reply.is_positive:
                    return
                for rcpt in rcpts:
                    yield Write([send(rcpt)], Phase.COMMAND)
                    yield from self._collect(tx)
                    if self.broken:
                        return
                if not tx.accepted or conn.state is not State.RCPT:
                    return
                if bdat:
                    for chunk_wire in self._bdat_chunks(data):
                        yield Write(coalesce(chunk_wire), Phase.DATA_BLOCK)
                        yield from self._collect(tx)
                        if self.broken or not tx.accepted or tx.data_reply is not None:
                            break  # the last chunk was answered, or a chunk failed
                    return
                yield Write([send(_DATA)], Phase.COMMAND)
                yield from self._collect(tx)
        except LocalProtocolError:
            if not wire:
                raise  # nothing changed: Connection.send() is atomic
            conn.send_failed()  # part of a group was sent to the core but not written
            self.broken = True
            raise
        if self.broken or bdat or conn.state is not State.DATA:
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
        yield Write(coalesce(out), Phase.DATA_BLOCK)
        yield from self._collect(tx)

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

    def _collect(self, tx: Transaction) -> Steps[None]:
        """Read replies until no command is pending, matching each to what it answers
        (``conn.last_answered``)."""
        conn = self.conn
        look = True  # right after a write: usually nothing is buffered yet
        # One reply answers one pending command: counted, not a new ``pending`` tuple per
        # reply; in LMTP asked again at 0 (one more per accepted recipient after the ".")
        left = len(conn.pending)
        while left:
            reply = yield from self._reply(look=look)
            look = False
            tx.record(conn.last_answered, reply)
            if conn.state is State.CLOSED:  # 421 (RFC 5321 §3.8): nothing more will come
                self.broken = True
                tx.closed_by(reply)
                return
            left -= 1
            if not left and tx.lmtp:
                left = len(conn.pending)

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
        prepared = [
            Prepared(
                m,
                *self.prepare(m.sender, m.recipients, m.content, m.mail_params, m.rcpt_params)[:4],
            )
            for m in batch
        ]
        results: list[SendResult] = []
        conn = self.conn
        try:
            if (
                prepared
                and self.options.pipelining
                and "PIPELINING" in conn.extensions
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
        if self.broken or self.conn.state in (State.CLOSED, State.ERROR):
            self.broken = True
            raise SMTPServerDisconnected("the session ended before the rest of the batch")

    def _send_one(self, item: Prepared, results: list[SendResult]) -> Steps[None]:
        """One message as send_mail sends it; its result, whatever it is."""
        result, failures = yield from self._send_prepared(
            item.message.sender, item.keys, item.mail, item.rcpts, item.data, item.bdat
        )
        if not result.ok and (not failures or not result.refused):
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
        for item in prepared:
            self._check_going()
            if rcptmax is not None and len(item.rcpts) > rcptmax:
                if held is not None:  # finish the pipeline, then send_mail's splitting
                    yield Write(coalesce(tail), Phase.DATA_BLOCK)
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
            reset = self._reset_due or (held is None and conn.state is not State.READY)
            self._reset_due = False
            wire, tail = tail, []
            try:
                if reset:
                    wire.append(self.send(_RSET))
                wire.append(self.send(item.mail))
                wire.extend(self.send(r) for r in item.rcpts)
                wire.append(self.send(_DATA))
            except LocalProtocolError:
                if wire:  # Connection.send() is atomic: only a partial group is lost
                    conn.send_failed()
                    self.broken = True
                raise
            yield Write(coalesce(wire), Phase.COMMAND if held is None else Phase.DATA_BLOCK)
            if held is not None:
                yield from self._end_held(held, results)
                held = None
                self._check_going()  # a 421 to the ".": the group got no reply
            yield from self._collect(tx)
            if not self.broken and conn.state is State.DATA:
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
            yield Write(coalesce(tail), Phase.DATA_BLOCK)
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
        if self.conn.state is State.CLOSED:  # 421 (RFC 5321 §3.8)
            self.broken = True
        tx.finish()
        results.append(send_result(item.message.sender, item.keys, [tx]))
