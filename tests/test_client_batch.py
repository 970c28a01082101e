"""Batch sending (``sendmail_many``) in the client flavours, against our own servers
(SyncServer, AsyncioServer), aiosmtpd and Postfix's smtp-sink.

On a PIPELINING server without CHUNKING, the content and "." of one message share a write
with the next message's MAIL/RCPT/DATA group (RFC 2920 §3.1), so N messages take N + 1
writes (and as many round trips) where sendmail takes 2N. The writes are counted from the
engine's own Write requests (a wrapper around ``ClientEngine.send_many``), which does not
depend on how the kernel splits TCP segments.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sansio_smtp import Config, MailFrom, RcptTo, Reply
from sansio_smtp.adapters import (
    AsyncioServer,
    AsyncSMTPClient,
    Envelope,
    MemoryHandler,
    OutgoingMessage,
    Reject,
    SendResult,
    Session,
    SMTPBatchInterrupted,
    SMTPClient,
    SMTPDataError,
    SMTPNotSupportedError,
    SMTPRecipientsRefused,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SyncServer,
    TLSMode,
)
from sansio_smtp.adapters._io import Write

from .test_interop_client_peers import aiosmtpd_server, as_dumped, sink_dumps, smtp_sink

DATA_ONLY = {"PIPELINING": (), "8BITMIME": (), "ENHANCEDSTATUSCODES": ()}
CHUNKING = {**DATA_ONLY, "CHUNKING": (), "BINARYMIME": ()}
NO_PIPELINING = {"8BITMIME": (), "ENHANCEDSTATUSCODES": ()}
EXTENSIONS = {"data": DATA_ONLY, "chunking": CHUNKING, "lockstep": NO_PIPELINING}

try:
    import anyio  # noqa: F401

    FLAVOURS = ["sync", "asyncio", "anyio"]
except ImportError:  # pragma: no cover - depends on the environment
    FLAVOURS = ["sync", "asyncio"]


def body(n: int, extra: bytes = b"") -> bytes:
    # RFC 5321 §4.5.2: lines starting with "." are dot-stuffed on the wire, un-stuffed after
    return (
        f"From: a@example.org\r\nSubject: message {n}\r\n\r\n".encode()
        + b".leading dot\r\n..two dots\r\n.\r\n"
        + "8-bit: grüße\r\n".encode()
        + extra
    )


# ----------------------------------------------------------------------- harness


class Handler(MemoryHandler):
    """Refuses by address: a sender or recipient whose local part is ``no<code>`` gets
    <code>; content with ``REJECT<code>`` is refused at its end with <code>."""

    def __init__(self) -> None:
        super().__init__()
        self.mails = 0

    @staticmethod
    def _code(address: object) -> int | None:
        local = str(address).partition("@")[0]
        return int(local[2:5]) if local.startswith("no") and local[2:5].isdigit() else None

    def mail(self, session: Session, event: MailFrom) -> Reply | None:
        self.mails += 1
        code = self._code(event.reverse_path)
        if code is not None:
            raise Reject(code, "sender refused")
        return None

    def rcpt(self, session: Session, event: RcptTo) -> Reply | None:
        code = self._code(event.forward_path)
        if code is not None:
            raise Reject(code, "recipient refused")
        return None

    def data(self, session: Session, envelope: Envelope) -> Reply | None:
        marker = envelope.content.find(b"REJECT")
        if marker >= 0:
            code = int(envelope.content[marker + 6 : marker + 9])
            return Reply(code=code, lines="content refused")
        return super().data(session, envelope)


@contextlib.contextmanager
def server(handler: object, extensions: dict[str, Any], **config: Any) -> Iterator[int]:
    srv = SyncServer(
        handler,
        poll_interval=0.05,
        config=Config(hostname="mx.test", extensions=extensions, **config),
    ).start()
    try:
        yield srv.port
    finally:
        srv.shutdown(2.0)


def recording(steps: Generator[Any, None, Any], writes: list[bytes]) -> Generator[Any, None, Any]:
    """Pass the engine's I/O requests through, keeping the bytes of each Write."""
    try:
        op = next(steps)
        while True:
            if isinstance(op, Write):
                writes.append(b"".join(bytes(c) for c in op.chunks))
            yield op
            op = steps.send(None)
    except StopIteration as stop:
        return stop.value


def batch(
    flavour: str,
    port: int,
    messages: list[Any],
    *,
    writes: list[bytes] | None = None,
    after: Callable[[Any], None] | None = None,
    **kwargs: Any,
) -> list[SendResult]:
    """Open a session with ``flavour``, sendmail_many(messages) (recording the writes
    when ``writes`` is a list), QUIT."""
    kwargs.setdefault("timeout", 5.0)
    kwargs.setdefault("tls", TLSMode.PLAIN)
    if flavour == "sync":
        with SMTPClient("127.0.0.1", port, **kwargs) as client:
            try:
                if writes is None:
                    return client.sendmail_many(messages)
                return client._run(recording(client._engine.send_many(messages), writes))
            finally:
                if after is not None:
                    after(client)

    async def main() -> list[SendResult]:
        if flavour == "anyio":
            from sansio_smtp.adapters.client._anyio import AnyioSMTPClient

            cls: Any = AnyioSMTPClient
        else:
            cls = AsyncSMTPClient
        async with cls("127.0.0.1", port, **kwargs) as client:
            try:
                if writes is None:
                    return list(await client.sendmail_many(messages))
                steps = recording(client._engine.send_many(messages), writes)
                return list(await client._locked(steps))
            finally:
                if after is not None:
                    after(client)

    if flavour == "anyio":
        import anyio

        return list(anyio.run(main))
    return asyncio.run(asyncio.wait_for(main(), 30))


def summary(result: SendResult) -> tuple[object, ...]:
    return (
        {k: r.code for k, r in result.accepted.items()},
        {k: r.code for k, r in result.refused.items()},
        [r.code for r in result.data_replies],
    )


def received(handler: MemoryHandler) -> list[tuple[str, list[str], bytes]]:
    return [(str(e.mail_from), [str(r) for r in e.rcpt_tos], e.content) for e in handler.messages]


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ----------------------------------------------------------------------- our servers


@pytest.mark.parametrize("kind", list(EXTENSIONS))
def test_messages_arrive_in_order(flavour: str, kind: str) -> None:
    # Every message arrives octet for octet, in order; tuples and OutgoingMessage mixed
    handler = Handler()
    messages: list[Any] = [
        ("s@example.org", [f"r{n}@example.net", "x@example.net"], body(n)) for n in range(5)
    ]
    messages.append(OutgoingMessage("s@example.org", "last@example.net", body(5).decode()))
    with server(handler, EXTENSIONS[kind]) as port:
        results = batch(flavour, port, messages)
    assert [r.ok for r in results] == [True] * 6
    assert all(r.data_reply is not None and r.data_reply.code == 250 for r in results)
    assert received(handler) == [
        ("s@example.org", [f"r{n}@example.net", "x@example.net"], body(n)) for n in range(5)
    ] + [("s@example.org", ["last@example.net"], body(5))]


def test_asyncio_client_against_asyncio_server() -> None:
    handler = Handler()

    async def main() -> list[SendResult]:
        config = Config(hostname="mx.test", extensions=DATA_ONLY)
        async with (
            AsyncioServer(handler, port=0, config=config) as srv,
            AsyncSMTPClient("127.0.0.1", srv.port, tls=TLSMode.PLAIN, timeout=5.0) as client,
        ):
            return await client.sendmail_many(
                [("s@example.org", ["r@example.net"], body(n)) for n in range(4)]
            )

    results = asyncio.run(asyncio.wait_for(main(), 30))
    assert [r.ok for r in results] == [True] * 4
    assert [m[2] for m in received(handler)] == [body(n) for n in range(4)]


@pytest.mark.parametrize("kind", list(EXTENSIONS))
def test_per_message_refusals(flavour: str, kind: str) -> None:
    # RFC 5321 §4.1.1.2/§4.1.1.3/§4.1.1.4: a refused recipient, a refused sender, refused
    # content and a message nobody accepted are results, not exceptions; the messages
    # after them go through (a failed transaction is ended by RSET, RFC 5321 §4.1.1.5)
    handler = Handler()
    messages = [
        ("s@example.org", ["a@example.net"], body(0)),
        ("s@example.org", ["a@example.net", "no550@example.net", "b@example.net"], body(1)),
        ("no553@example.org", ["a@example.net", "b@example.net"], body(2)),
        ("s@example.org", ["a@example.net"], body(3, b"REJECT554\r\n")),
        ("s@example.org", ["no551@example.net", "no450@example.net"], body(4)),
        ("s@example.org", ["a@example.net"], body(5)),
    ]
    with server(handler, EXTENSIONS[kind]) as port:
        results = batch(flavour, port, messages)
    ok = [r.ok for r in results]
    assert ok == [True, True, False, False, False, True]
    assert summary(results[1])[:2] == (
        {"a@example.net": 250, "b@example.net": 250},
        {"no550@example.net": 550},
    )
    # sender refused: every recipient refused with the MAIL reply, no data reply
    assert summary(results[2]) == ({}, {"a@example.net": 553, "b@example.net": 553}, [])
    # content refused: the accepted recipient moved to refused with the final reply
    assert summary(results[3]) == ({}, {"a@example.net": 554}, [554])
    assert summary(results[4])[:2] == ({}, {"no551@example.net": 551, "no450@example.net": 450})
    assert results[4].refused["no450@example.net"].is_transient
    assert [m[2] for m in received(handler)] == [body(0), body(1), body(5)]
    assert received(handler)[1][1] == ["a@example.net", "b@example.net"]


def test_one_round_trip_per_message_on_data_servers(flavour: str) -> None:
    # RFC 2920 §3.1: the content and "." of message i lead the write of message i+1's
    # MAIL/RCPT/DATA group: N messages, N + 1 writes (sendmail: 2 per message)
    handler = Handler()
    writes: list[bytes] = []
    count = 6
    messages = [("s@example.org", ["r@example.net"], body(n)) for n in range(count)]
    with server(handler, DATA_ONLY) as port:
        results = batch(flavour, port, messages, writes=writes)
    assert all(r.ok for r in results)
    assert len(writes) == count + 1
    assert writes[0].startswith(b"MAIL FROM:") and writes[0].endswith(b"DATA\r\n")
    for n, wire in enumerate(writes[1:-1], start=1):
        assert wire.count(b"MAIL FROM:") == 1 and wire.endswith(b"DATA\r\n")
        assert b"Subject: message %d\r\n" % (n - 1) in wire
        assert b"\r\n.\r\nMAIL FROM:<s@example.org>" in wire  # "." and MAIL in one write
    assert writes[-1].endswith(b"\r\n.\r\n") and b"MAIL" not in writes[-1]
    assert [m[2] for m in received(handler)] == [body(n) for n in range(count)]


def test_reset_pipelined_after_a_failed_transaction(flavour: str) -> None:
    # RFC 5321 §4.1.1.5: the RSET that ends a refused transaction heads the next group
    handler = Handler()
    writes: list[bytes] = []
    messages = [
        ("no550@example.org", ["r@example.net"], body(0)),
        ("s@example.org", ["r@example.net"], body(1)),
    ]
    with server(handler, DATA_ONLY) as port:
        results = batch(flavour, port, messages, writes=writes)
    assert [r.ok for r in results] == [False, True]
    assert writes[1].startswith(b"RSET\r\nMAIL FROM:<s@example.org>")
    assert len(writes) == 3


def test_chunking_one_round_trip_per_message(flavour: str) -> None:
    # RFC 3030 §4.2: MAIL, RCPT and BDAT LAST with its octets are one group. The core ends
    # a pipelined group at BDAT LAST, so each write holds exactly one message
    handler = Handler()
    writes: list[bytes] = []
    count = 4
    messages = [("s@example.org", ["r@example.net"], body(n)) for n in range(count)]
    with server(handler, CHUNKING) as port:
        results = batch(flavour, port, messages, writes=writes)
    assert all(r.ok for r in results)
    assert len(writes) == count
    for n, wire in enumerate(writes):
        assert wire.count(b"MAIL FROM:") == 1 and wire.count(b" LAST\r\n") == 1
        assert wire.endswith(body(n))  # BDAT: the octets as they are, no dot-stuffing
    assert [m[2] for m in received(handler)] == [body(n) for n in range(count)]


@pytest.mark.parametrize("how", ["server", "option"])
def test_fallback_without_pipelining(flavour: str, how: str) -> None:
    # No PIPELINING (RFC 2920 §3): lock-step, each command waits for its reply
    handler = Handler()
    writes: list[bytes] = []
    messages = [
        ("s@example.org", ["r@example.net", "no550@example.net"], body(0)),
        ("no553@example.org", ["r@example.net"], body(1)),
        ("s@example.org", ["r@example.net"], body(2)),
    ]
    extensions = NO_PIPELINING if how == "server" else DATA_ONLY
    kwargs = {"pipelining": False} if how == "option" else {}
    with server(handler, extensions) as port:
        results = batch(flavour, port, messages, writes=writes, **kwargs)
    assert [r.ok for r in results] == [True, False, True]
    assert summary(results[1]) == ({}, {"r@example.net": 553}, [])
    assert all(w.count(b"\r\n") == 1 or w.endswith(b"\r\n.\r\n") for w in writes)
    assert [m[2] for m in received(handler)] == [body(0), body(2)]


def test_lmtp_falls_back_to_one_by_one(flavour: str) -> None:
    # RFC 2033 §4.2: one reply per accepted recipient after the "."; the batch sends
    # each message as sendmail does and keeps the per-recipient outcomes
    class Lmtp(Handler):
        def data(self, session: Session, envelope: Envelope) -> Any:
            super().data(session, envelope)
            return [
                Reply(code=452, lines="mailbox full")
                if "full" in str(r)
                else Reply(code=250, lines="delivered")
                for r in envelope.rcpt_tos
            ]

    handler = Lmtp()
    messages = [
        ("s@example.org", ["a@example.net", "full@example.net"], body(0)),
        ("s@example.org", ["full@example.net"], body(1)),
        ("s@example.org", ["a@example.net"], body(2)),
    ]
    with server(handler, {"PIPELINING": (), "8BITMIME": ()}, lmtp=True) as port:
        results = batch(flavour, port, messages, lmtp=True)
    assert [summary(r)[:2] for r in results] == [
        ({"a@example.net": 250}, {"full@example.net": 452}),
        ({}, {"full@example.net": 452}),
        ({"a@example.net": 250}, {}),
    ]


def test_rcptmax_message_split(flavour: str) -> None:
    # LIMITS RCPTMAX (RFC 9422 §4.2): that message goes as sendmail splits it
    handler = Handler()
    rcpts = [f"r{n}@example.net" for n in range(5)]
    messages = [
        ("s@example.org", ["a@example.net"], body(0)),
        ("s@example.org", rcpts, body(1)),
        ("s@example.org", ["a@example.net"], body(2)),
    ]
    with server(handler, {**DATA_ONLY, "LIMITS": ("RCPTMAX=2",)}) as port:
        results = batch(flavour, port, messages)
    assert list(results[1].accepted) == rcpts and len(results[1].data_replies) == 3
    got = received(handler)
    assert [m[1] for m in got[1:4]] == [rcpts[:2], rcpts[2:4], rcpts[4:]]
    assert [m[2] for m in got] == [body(0)] + [body(1)] * 3 + [body(2)]


def test_local_errors_before_anything_is_sent(flavour: str) -> None:
    # RFC 6152 §3: 8-bit content without 8BITMIME cannot be sent; nothing of the batch is
    handler = Handler()
    with server(handler, {"PIPELINING": ()}) as port:
        with pytest.raises(SMTPNotSupportedError):
            batch(
                flavour,
                port,
                [
                    ("s@example.org", ["r@example.net"], b"Subject: ascii\r\n\r\nok\r\n"),
                    ("s@example.org", ["r@example.net"], body(1)),
                ],
            )
        with pytest.raises(ValueError, match="invalid mailbox"):
            batch(flavour, port, [("s@example.org", ["not an address"], b"x\r\n")])
    assert handler.mails == 0 and handler.messages == []


@pytest.mark.parametrize("kind", ["data", "chunking", "lockstep"])
def test_server_closes_mid_batch(flavour: str, kind: str) -> None:
    # RFC 5321 §3.8: a 421 to the end of message 2 closes the session: message 2 is
    # refused with it (a known outcome), message 3 has none: SMTPBatchInterrupted
    handler = Handler()
    closed: list[bool] = []
    messages = [
        ("s@example.org", ["r@example.net"], body(0)),
        ("s@example.org", ["r@example.net"], body(1, b"REJECT421\r\n")),
        ("s@example.org", ["r@example.net"], body(2)),
    ]
    with server(handler, EXTENSIONS[kind]) as port, pytest.raises(SMTPBatchInterrupted) as info:
        batch(flavour, port, messages, after=lambda c: closed.append(c.connected))
    results = info.value.results
    assert [r.ok for r in results] == [True, False]
    assert summary(results[1]) == ({}, {"r@example.net": 421}, [421])
    assert isinstance(info.value.__cause__, SMTPServerDisconnected)
    assert info.value.total == 3
    assert closed == [False]  # the client closed its end
    assert [m[2] for m in received(handler)] == [body(0)]


def test_connection_lost_mid_batch(flavour: str) -> None:
    # The server drops the connection without a word: the results known so far
    class Dropper(Handler):
        def rcpt(self, session: Session, event: RcptTo) -> Reply | None:
            if str(event.forward_path).startswith("drop"):
                return Reply(code=421, lines="going away")
            return super().rcpt(session, event)

    handler = Dropper()
    messages = [
        ("s@example.org", ["r@example.net"], body(0)),
        ("s@example.org", ["r@example.net"], body(1)),
        ("s@example.org", ["drop@example.net"], body(2)),
        ("s@example.org", ["r@example.net"], body(3)),
    ]
    with server(handler, DATA_ONLY) as port, pytest.raises(SMTPBatchInterrupted) as info:
        batch(flavour, port, messages)
    # message 3's RCPT got 421: refused with it; message 4 was never sent
    assert [summary(r)[:2] for r in info.value.results] == [
        ({"r@example.net": 250}, {}),
        ({"r@example.net": 250}, {}),
        ({}, {"drop@example.net": 421}),
    ]


# ----------------------------------------------------------------------- property


ADDRESSES = ["a@example.net", "b@example.net", "no550@example.net", "no450@example.net"]
MESSAGE = st.tuples(
    st.sampled_from(["s@example.org", "s@example.org", "no553@example.org"]),
    st.lists(st.sampled_from(ADDRESSES), min_size=1, max_size=3, unique=True),
    st.sampled_from([b"", b"REJECT554\r\n", b"line\r\n.dot\r\n"]),
)


def test_batch_equals_one_by_one() -> None:
    # For any sequence of messages and refusals (sender, recipients, content), the batch
    # gives the same SendResults as sendmail one by one (its exceptions' results for the
    # refused ones), and the server receives the same messages
    handlers = {kind: Handler() for kind in ("data", "chunking")}
    with (
        server(handlers["data"], DATA_ONLY) as data_port,
        server(handlers["chunking"], CHUNKING) as chunking_port,
    ):
        ports = {"data": data_port, "chunking": chunking_port}

        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            derandomize=True,
        )
        @given(st.sampled_from(["data", "chunking"]), st.lists(MESSAGE, min_size=1, max_size=5))
        def check(kind: str, specs: list[tuple[str, list[str], bytes]]) -> None:
            handler = handlers[kind]
            messages = [(s, r, body(n, extra)) for n, (s, r, extra) in enumerate(specs)]
            one_by_one: list[SendResult] = []
            handler.messages.clear()
            with SMTPClient("127.0.0.1", ports[kind], tls=TLSMode.PLAIN, timeout=5.0) as c:
                for message in messages:
                    try:
                        one_by_one.append(c.sendmail(*message))
                    except (SMTPSenderRefused, SMTPRecipientsRefused, SMTPDataError) as exc:
                        one_by_one.append(exc.result)
            expected = received(handler)
            handler.messages.clear()
            results = batch("sync", ports[kind], messages)
            assert [summary(r) for r in results] == [summary(r) for r in one_by_one]
            assert [r.sender for r in results] == [m[0] for m in messages]
            assert received(handler) == expected

        check()


# ----------------------------------------------------------------------- real peers


def test_aiosmtpd(flavour: str) -> None:
    # aiosmtpd offers no PIPELINING (RFC 2920): the batch goes lock-step; the messages
    # arrive octet for octet and in order, with a refused recipient in the middle
    messages = [
        ("alice@example.org", ["bob@example.net"], body(0)),
        ("alice@example.org", ["bob@example.net", "x@refused.example"], body(1)),
        ("alice@example.org", ["y@refused.example"], body(2)),
        ("alice@example.org", ["carol@example.net"], body(3)),
    ]
    with aiosmtpd_server() as (port, handler):
        results = batch(flavour, port, messages, timeout=10.0)
    assert [r.ok for r in results] == [True, True, False, True]
    assert results[1].refused["x@refused.example"].code == 550
    assert [e.content for e in handler.envelopes] == [body(0), body(1), body(3)]
    assert [e.rcpt_tos for e in handler.envelopes] == [
        ["bob@example.net"],
        ["bob@example.net"],
        ["carol@example.net"],
    ]


def test_smtp_sink(flavour: str, tmp_path: Path) -> None:
    # Postfix smtp-sink: PIPELINING with DATA only; one write per message plus one
    count = 5
    writes: list[bytes] = []
    messages = [("alice@example.org", ["bob@example.net"], body(n)) for n in range(count)]
    with smtp_sink(tmp_path) as (port, dump):
        results = batch(flavour, port, messages, writes=writes, timeout=10.0)
        dumps = sink_dumps(dump, count)
    assert all(r.ok for r in results)
    assert len(writes) == count + 1
    assert sorted(d[1] for d in dumps) == sorted(as_dumped(body(n)) for n in range(count))
