"""The client as a package of thin parts (issue 12 items 6-8): its layout, its exports, and
the transaction bookkeeping's Outcome."""

from __future__ import annotations

import importlib
import pathlib
from typing import TypeVar, cast

import pytest

import sansio_smtp.adapters as adapters
from sansio_smtp import (
    Bdat,
    Data,
    EndOfMessage,
    LocalProtocolError,
    MailFrom,
    Noop,
    PlaintextAfterStartTLS,
    RcptTo,
    RemoteProtocolError,
    Reply,
    State,
)
from sansio_smtp._state import Phase
from sansio_smtp.adapters import client
from sansio_smtp.adapters._io import HANDSHAKE, READ, Steps, Write
from sansio_smtp.adapters.client import (
    SMTPNotSupportedError,
    SMTPProtocolViolation,
    SMTPRecipientsRefused,
    SMTPSenderRefused,
    SMTPTLSError,
    TLSMode,
)
from sansio_smtp.adapters.client._engine import ClientEngine
from sansio_smtp.adapters.client._options import TIMEOUT_PHASES, ClientOptions
from sansio_smtp.adapters.client._transactions import Outcome, Transaction, send_result

T = TypeVar("T")

CLIENT_DIR = pathlib.Path(client.__file__).parent

# What sansio_smtp.adapters exported from the client modules before the split.
CLIENT_NAMES = (
    "AsyncSMTPClient",
    "OutgoingMessage",
    "SMTPAuthError",
    "SMTPAuthNeedsTLSError",
    "SMTPBatchInterrupted",
    "SMTPClient",
    "SMTPConnectError",
    "SMTPDataError",
    "SMTPError",
    "SMTPHeloError",
    "SMTPNotSupportedError",
    "SMTPProtocolViolation",
    "SMTPRecipientsRefused",
    "SMTPReplyError",
    "SMTPSenderRefused",
    "SMTPServerDisconnected",
    "SMTPTLSError",
    "SMTPTimeoutError",
    "SendResult",
    "TLSMode",
)

OK = Reply(code=250, lines=("OK",))
GO = Reply(code=354, lines=("go ahead",))
NO_USER = Reply(code=550, lines=("no such user",), enhanced="5.1.1")
NO_SENDER = Reply(code=553, lines=("sender refused",), enhanced="5.1.8")
TOO_BIG = Reply(code=552, lines=("too big",), enhanced="5.3.4")
CLOSING = Reply(code=421, lines=("closing",), enhanced="4.3.2")
MAIL = MailFrom(reverse_path="a@example.org")
RCPT = RcptTo(forward_path="b@example.org")


# issue 12 item 7: adapters keep exporting every name they exported, as the same objects
@pytest.mark.parametrize("name", CLIENT_NAMES)
def test_adapters_export_the_client_names(name: str) -> None:
    assert name in adapters.__all__
    assert getattr(adapters, name) is getattr(client, name)


# issue 12 item 7: the AnyIO client is imported on first use, from both paths
def test_anyio_client_is_lazy_and_the_same() -> None:
    pytest.importorskip("anyio")
    assert adapters.AnyioSMTPClient is client.AnyioSMTPClient  # type: ignore[attr-defined]
    assert client.AnyioSMTPClient.__module__ == "sansio_smtp.adapters.client._anyio"


# issue 12 item 7: the old flat modules are gone
@pytest.mark.parametrize("old", ["_client_common", "sync_client", "asyncio_client", "anyio_client"])
def test_old_client_modules_are_gone(old: str) -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"sansio_smtp.adapters.{old}")


# issue 12 item 7: one responsibility per file, none over about 600 lines
@pytest.mark.parametrize("path", sorted(CLIENT_DIR.glob("*.py")), ids=lambda p: p.name)
def test_client_modules_are_small(path: pathlib.Path) -> None:
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 600


# issue 12 item 8: an outcome enum, not exception classes, tags a finished transaction
def test_outcome_sender_refused() -> None:
    tx = Transaction(["b@example.org"])
    tx.record(MAIL, NO_SENDER)
    tx.record(RCPT, Reply(code=503, lines=("need MAIL",)))  # pipelined (RFC 2920 §3.1)
    assert tx.finish() is Outcome.SENDER_REFUSED
    assert tx.failure_reply == NO_SENDER
    assert tx.refused == {"b@example.org": NO_SENDER}
    result = send_result("a@example.org", tx.keys, [tx])
    assert result.data_replies == ()  # a refused MAIL has no data reply


def test_outcome_recipients_refused() -> None:
    tx = Transaction(["b@example.org", "c@example.org"])
    tx.record(MAIL, OK)
    tx.record(RCPT, NO_USER)
    tx.record(RCPT, NO_USER)
    assert tx.finish() is Outcome.RECIPIENTS_REFUSED
    assert tx.finish().refused


def test_outcome_data_refused_and_delivered() -> None:
    refused = Transaction(["b@example.org"])
    refused.record(MAIL, OK)
    refused.record(RCPT, OK)
    refused.record(Data(), GO)
    refused.record(EndOfMessage(), TOO_BIG)
    assert refused.finish() is Outcome.DATA_REFUSED
    assert refused.refused == {"b@example.org": TOO_BIG}

    delivered = Transaction(["b@example.org"])
    delivered.record(MAIL, OK)
    delivered.record(RCPT, OK)
    delivered.record(Bdat(size=3, last=True), OK)
    assert delivered.finish() is Outcome.DELIVERED
    assert not Outcome.DELIVERED.refused


def test_outcome_lmtp_per_recipient() -> None:
    # RFC 2033 §4.2: one reply per accepted recipient after the data
    tx = Transaction(["b@example.org", "c@example.org"], lmtp=True)
    tx.record(MAIL, OK)
    tx.record(RCPT, OK)
    tx.record(RCPT, OK)
    tx.record(Data(), GO)
    tx.record(RCPT, OK)  # Connection.last_answered for an LMTP delivery reply
    tx.record(RCPT, NO_USER)
    assert tx.finish() is Outcome.DELIVERED
    assert list(tx.accepted) == ["b@example.org"]
    assert tx.refused == {"c@example.org": NO_USER}


def test_outcome_closed_before_any_reply() -> None:
    # RFC 5321 §3.8: a 421 ends the session; the RCPTs never answered are refused with it
    tx = Transaction(["b@example.org"])
    tx.record(MAIL, OK)
    tx.closed_by(CLOSING)
    assert tx.finish() is Outcome.RECIPIENTS_REFUSED
    assert tx.refused == {"b@example.org": CLOSING}
    assert Transaction(["b@example.org"]).finish() is Outcome.NO_REPLY


def _run(engine: ClientEngine, steps: Steps[T], incoming: list[bytes]) -> T:
    """Serve the engine's I/O requests from ``incoming`` (one chunk per READ)."""
    try:
        op = next(steps)
        while True:
            if op is READ:
                engine.conn.receive_data(incoming.pop(0) if incoming else b"")
            elif op is HANDSHAKE:
                raise AssertionError("no handshake expected")
            op = steps.send(None)
    except StopIteration as stop:
        return cast(T, stop.value)


def _engine(tls: TLSMode = TLSMode.PLAIN) -> ClientEngine:
    return ClientEngine(ClientOptions(host="mx.example.org", port=25, tls=tls))


# issue 12 item 8: plaintext after STARTTLS is known by its type (PlaintextAfterStartTLS),
# not by the text of the error: a malformed reply that quotes "STARTTLS" is a protocol
# violation, not a TLS failure
def test_malformed_reply_mentioning_starttls_is_a_protocol_violation() -> None:
    engine = _engine()
    _run(engine, engine.open(), [b"220 mx.example.org\r\n", b"250 mx.example.org\r\n"])
    with pytest.raises(SMTPProtocolViolation) as info:
        _run(engine, engine.command(Noop()), [b"2x0 STARTTLS\r\n"])
    assert type(info.value.__cause__) is RemoteProtocolError
    assert not engine.usable


# RFC 3207 §4.2, CVE-2011-0411: bytes after the 220 to STARTTLS fail TLS setup
def test_plaintext_after_starttls_is_a_tls_error() -> None:
    engine = _engine(TLSMode.STARTTLS_REQUIRED)
    incoming = [
        b"220 mx.example.org\r\n",
        b"250-mx.example.org\r\n250 STARTTLS\r\n",
        b"220 go ahead\r\n250 injected\r\n",
    ]
    with pytest.raises(SMTPTLSError) as info:
        _run(engine, engine.open(), incoming)
    assert isinstance(info.value.__cause__, PlaintextAfterStartTLS)
    assert not engine.usable


# issue 12 item 8: the engine's timeouts and writes name sansio_smtp._state.Phase members,
# and a timeouts= mapping may still name them by their strings
def test_phases_are_phase_members() -> None:
    engine = ClientEngine(
        ClientOptions(
            host="mx.example.org",
            port=25,
            tls=TLSMode.PLAIN,
            timeouts={"MAIL": 5, Phase.DATA_BLOCK: 7, "connect": 3},
        )
    )
    assert engine.timeout(Phase.MAIL) == 5
    assert engine.timeout(Phase.DATA_BLOCK) == 7
    assert engine.timeout(Phase.CONNECT) == 3
    assert all(isinstance(p, Phase) for p in TIMEOUT_PHASES)
    phase, seconds = engine.read_timeout()
    assert phase is Phase.GREETING and seconds == 300.0  # RFC 5321 §4.5.3.2.1
    error = engine.timed_out(Phase.MAIL, 0.0)
    assert error.phase is Phase.MAIL and error.phase == "MAIL"
    with pytest.raises(ValueError, match="unknown timeout phase"):
        ClientOptions(host="h", port=25, tls=TLSMode.PLAIN, timeouts={"mail": 5})


def test_writes_carry_phases() -> None:
    engine = _engine()
    _run(engine, engine.open(), [b"220 mx.example.org\r\n", b"250 mx.example.org\r\n"])
    steps = engine.send_mail("a@example.org", ["b@example.org"], b"Subject: x\r\n\r\nhi\r\n")
    incoming = [b"250 ok\r\n", b"250 ok\r\n", b"354 go\r\n", b"250 queued\r\n"]
    phases = []
    try:
        op = next(steps)
        while True:
            if op is READ:
                engine.conn.receive_data(incoming.pop(0))
            elif isinstance(op, Write):
                phases.append(op.phase)
            op = steps.send(None)
    except StopIteration as stop:
        assert stop.value.ok
    assert all(isinstance(p, Phase) for p in phases)
    assert phases[-1] is Phase.DATA_BLOCK  # the content and "." (RFC 5321 §4.5.3.2.5)


def _opened(ehlo: bytes, **options: object) -> ClientEngine:
    engine = ClientEngine(
        ClientOptions(host="mx.example.org", port=25, tls=TLSMode.PLAIN, **options)  # type: ignore[arg-type]
    )
    _run(engine, engine.open(), [b"220 mx.example.org\r\n", ehlo])
    return engine


def _send(
    engine: ClientEngine, steps: Steps[T], replies: list[bytes], written: list[bytes] | None = None
) -> tuple[T, list[bytes]]:
    """Run ``steps`` answering each READ with the next of ``replies``; the octets written
    (also appended to ``written``)."""
    out = [] if written is None else written
    try:
        op = next(steps)
        while True:
            if op is READ:
                engine.conn.receive_data(replies.pop(0))
            elif isinstance(op, Write):
                out.append(b"".join(bytes(c) for c in op.chunks))
            op = steps.send(None)
    except StopIteration as stop:
        return cast(T, stop.value), out


EIGHT_BIT = "Subject: grüße\r\n\r\nÄpfel\r\n".encode()


# issue 12 item 6: the engine no longer turns the core's 8-bit rule off (RFC 6152 §3): the
# core checks 8-bit content against the declared BODY, over DATA, BDAT LAST and several
# BDAT chunks (the "core issue" the override's comment named does not reproduce)
@pytest.mark.parametrize("chunk", [None, 10])
@pytest.mark.parametrize("chunking", [False, True])
def test_eight_bit_content_with_the_core_rule_in_force(chunking: bool, chunk: int | None) -> None:
    ehlo = b"250-mx.example.org\r\n250-8BITMIME\r\n" + (
        b"250 CHUNKING\r\n" if chunking else b"250 HELP\r\n"
    )
    engine = _opened(ehlo, bdat_chunk_size=chunk or 1 << 20)
    assert engine.conn.config.allow_8bit_without_8bitmime is False
    if chunking:
        chunks = -(-len(EIGHT_BIT) // (chunk or len(EIGHT_BIT)))
        replies = [b"250 ok\r\n", b"250 ok\r\n"] + [b"250 ok\r\n"] * chunks
    else:
        replies = [b"250 ok\r\n", b"250 ok\r\n", b"354 go\r\n", b"250 queued\r\n"]
    result, written = _send(
        engine, engine.send_mail("a@example.org", ["b@example.org"], EIGHT_BIT), replies
    )
    assert result.ok and engine.usable
    assert written[0].startswith(b"MAIL FROM:<a@example.org> BODY=8BITMIME")
    if chunk is None:
        assert EIGHT_BIT in b"".join(written)


# issue 12 item 6: whether the server can take what a message declares is the core's
# rule (Connection.check), not the engine's: the refusal carries the core's error
@pytest.mark.parametrize(
    ("sender", "content", "ehlo", "code", "needs"),
    [
        ("pépé@example.org", b"Subject: x\r\n\r\nx\r\n", b"250 8BITMIME\r\n", 555, "SMTPUTF8"),
        ("a@example.org", EIGHT_BIT, b"250 HELP\r\n", 555, "8BITMIME"),
        (
            "a@example.org",
            b"\x00\x01" + b"x" * 2000 + b"\r\n",
            b"250 8BITMIME\r\n",
            555,
            "BINARYMIME",
        ),
        ("a@example.org", b"x" * 300 + b"\r\n", b"250 SIZE 200\r\n", 552, "SIZE"),
    ],
)
def test_the_core_judges_what_is_declared(
    sender: str, content: bytes, ehlo: bytes, code: int, needs: str
) -> None:
    engine = _opened(b"250-mx.example.org\r\n" + ehlo)
    with pytest.raises(SMTPNotSupportedError, match=needs) as info:
        _send(engine, engine.send_mail(sender, ["b@example.org"], content), [])
    cause = info.value.__cause__
    assert isinstance(cause, LocalProtocolError)
    assert cause.reply_hint is not None and cause.reply_hint.code == code
    assert engine.usable and engine.conn.state is State.READY  # nothing was sent


# RFC 5321 §4.1.1.5: after a transaction that every recipient refused, the session is
# settled (RSET) before the core judges the next message; nothing of it is sent
def test_refusal_after_an_open_transaction_sends_nothing_of_the_message() -> None:
    engine = _opened(b"250-mx.example.org\r\n250 PIPELINING\r\n")
    replies = [b"250 ok\r\n", b"550 5.1.1 no such user\r\n", b"554 no valid recipients\r\n"]
    with pytest.raises(SMTPRecipientsRefused):
        _send(engine, engine.send_mail("a@example.org", ["b@example.org"], b"x\r\n"), replies)
    assert engine.conn.state is not State.READY and engine.usable
    written: list[bytes] = []
    with pytest.raises(SMTPNotSupportedError, match="8BITMIME"):
        _send(
            engine,
            engine.send_mail("a@example.org", ["b@example.org"], EIGHT_BIT),
            [b"250 ok\r\n"],
            written,
        )
    assert written == [b"RSET\r\n"]  # the open transaction ended; no MAIL went
    assert engine.usable and engine.conn.state is State.READY
    _, written = _send(
        engine,
        engine.send_mail("a@example.org", ["b@example.org"], b"x\r\n"),
        [b"250 ok\r\n", b"250 ok\r\n", b"354 go\r\n", b"250 queued\r\n"],
    )
    assert written[0].startswith(b"MAIL FROM:<a@example.org>")  # the RSET went already


# RFC 5321 §4.1.1.5: after a refused MAIL an RSET goes before the next MAIL in the same
# write (RFC 2920 §3.1), so the core judges the next message up front: nothing is written
def test_refusal_after_a_refused_sender_writes_nothing() -> None:
    engine = _opened(b"250-mx.example.org\r\n250 PIPELINING\r\n")
    replies = [b"550 5.7.1 sender refused\r\n", b"503 no MAIL\r\n", b"503 no MAIL\r\n"]
    with pytest.raises(SMTPSenderRefused):
        _send(engine, engine.send_mail("a@example.org", ["b@example.org"], b"x\r\n"), replies)
    assert engine.conn.state is State.READY and engine.usable
    written: list[bytes] = []
    with pytest.raises(SMTPNotSupportedError, match="8BITMIME") as info:
        _send(engine, engine.send_mail("a@example.org", ["b@example.org"], EIGHT_BIT), [], written)
    assert written == [] and engine.usable
    assert isinstance(info.value.__cause__, LocalProtocolError)


# the batch contract: a message the server cannot take raises before anything is written
def test_batch_refusal_before_anything_is_written() -> None:
    engine = _opened(b"250-mx.example.org\r\n250 PIPELINING\r\n")
    written: list[bytes] = []
    batch = [
        ("a@example.org", ["b@example.org"], b"x\r\n"),
        ("a@example.org", ["b@example.org"], EIGHT_BIT),
    ]
    with pytest.raises(SMTPNotSupportedError, match="8BITMIME"):
        _send(engine, engine.send_many(batch), [], written)
    assert written == [] and engine.usable
