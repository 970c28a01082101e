"""The server's fast paths answer exactly as its general ones (issue 13).

- A command whose hook is missing or plain is answered without a generator; one whose hook
  returns an awaitable goes through an Await request. For any input, in any chunking, the
  three kinds of handler put the same bytes on the wire and keep the same messages.
- A Write that says the Dispatcher reads next (``Write.read``) may be followed by that
  read before the Dispatcher is resumed (as the three servers do): the same bytes go out
  and the same messages are kept as when it is resumed at once, with fewer resumptions.
- The asyncio server reads every connection into one shared buffer: what a connection
  has buffered but not yet parsed is its own copy, so reads on other connections in
  between cannot change it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Coroutine
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sansio_smtp import Config, Connection, Role
from sansio_smtp.adapters._io import CLOSE, HANDSHAKE, READ, Await, Write
from sansio_smtp.adapters.server import AsyncioServer, Envelope, Handler, MemoryHandler, Session
from sansio_smtp.adapters.server._dispatcher import Dispatcher
from sansio_smtp.adapters.server._hooks import Hooks

EXTENSIONS = {"PIPELINING": (), "8BITMIME": (), "CHUNKING": (), "ENHANCEDSTATUSCODES": ()}

LINES = [
    b"EHLO c.test",
    b"HELO c.test",
    b"MAIL FROM:<a@b.test>",
    b"MAIL FROM:<a@b.test> BODY=8BITMIME",
    b"MAIL FROM:<bad",
    b"RCPT TO:<c@d.test>",
    b"RCPT TO:<e@f.test>",
    b"RCPT TO:<>",
    b"DATA",
    b"Subject: hi",
    b"",
    b"..leading dot",
    b".",
    b"BDAT 5 LAST\r\n12345",
    b"BDAT 3\r\nabc",
    b"RSET",
    b"NOOP",
    b"VRFY someone",
    b"FOO bar",
    b"QUIT",
]


class Collecting:
    """Keeps each message's content, like MemoryHandler (without its lock)."""

    def __init__(self) -> None:
        self.contents: list[bytes] = []


class Plain(Collecting):
    """Every hook present, plain, and answering None (the default reply)."""

    def ehlo(self, session: Session, event: object) -> None:
        return None

    def helo(self, session: Session, event: object) -> None:
        return None

    def mail(self, session: Session, event: object) -> None:
        return None

    def rcpt(self, session: Session, event: object) -> None:
        return None

    def rset(self, session: Session, event: object) -> None:
        return None

    def quit(self, session: Session, event: object) -> None:
        return None

    def data_chunk(self, session: Session, envelope: Envelope, chunk: bytes) -> None:
        return None

    def data(self, session: Session, envelope: Envelope) -> None:
        self.contents.append(envelope.content)


class Awaited(Collecting):
    """The same hooks as coroutines: each goes through an Await request."""

    async def ehlo(self, session: Session, event: object) -> None:
        return None

    async def helo(self, session: Session, event: object) -> None:
        return None

    async def mail(self, session: Session, event: object) -> None:
        return None

    async def rcpt(self, session: Session, event: object) -> None:
        return None

    async def rset(self, session: Session, event: object) -> None:
        return None

    async def quit(self, session: Session, event: object) -> None:
        return None

    async def data_chunk(self, session: Session, envelope: Envelope, chunk: bytes) -> None:
        return None

    async def data(self, session: Session, envelope: Envelope) -> None:
        self.contents.append(envelope.content)


class NoHooks(Collecting, Handler):
    """Only ``data`` (to see the content): every command goes to the default."""

    def data(self, session: Session, envelope: Envelope) -> None:
        self.contents.append(envelope.content)


def _finish(awaitable: Awaitable[object]) -> object:
    """Run a coroutine that never suspends (the hooks above) to its value."""
    assert isinstance(awaitable, Coroutine)
    coro: Coroutine[Any, Any, object] = awaitable
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the hook suspended")  # pragma: no cover


def serve(handler: object, chunks: list[bytes]) -> tuple[bytes, int]:
    """Drive a Dispatcher over ``chunks`` (then the client closes); the bytes written and
    how many Await requests were served."""
    config = Config(hostname="mx.test", extensions=EXTENSIONS)
    session = Session(id="fixed", hostname="mx.test")
    d = Dispatcher(Connection(Role.SERVER, config), Hooks(handler), session)
    steps = d.steps()
    pending = [*chunks, b""]
    wire = bytearray()
    awaited = 0
    op = next(steps)
    try:
        while True:
            if op is READ:
                if not pending:
                    break
                d.feed(pending.pop(0))
                op = steps.send(None)
            elif type(op) is Write:
                wire += b"".join(op.chunks)
                op = steps.send(None)
            elif type(op) is Await:
                awaited += 1
                op = steps.send(_finish(op.awaitable))
            else:
                assert op is CLOSE
                break
    except StopIteration:
        pass
    return bytes(wire), awaited


def serve_reading_after_write(
    handler: object,
    chunks: list[bytes],
    extensions: object = EXTENSIONS,
    *,
    answer_reads: bool = False,
    dispatcher: type[Dispatcher] = Dispatcher,
    lmtp: bool = False,
    close_with_last: bool = False,
) -> tuple[bytes, int, Dispatcher]:
    """``serve``, as the servers drive a Dispatcher: after a Write with ``read`` set, the
    next chunk is fed before it is resumed. ``answer_reads``: as the asyncio server does,
    while the Dispatcher waits for READ in its session loop each chunk goes to
    answer_read(), and steps() is resumed only when that returns None.
    ``close_with_last``: the client's close arrives with its last chunk, before
    answer_read() is called. The bytes written, the resumptions of steps(), and the
    Dispatcher."""
    config = Config(hostname="mx.test", extensions=extensions, lmtp=lmtp)  # type: ignore[arg-type]
    session = Session(id="fixed", hostname="mx.test")
    d = dispatcher(Connection(Role.SERVER, config), Hooks(handler), session)
    steps = d.steps()
    pending = [*chunks, b""]
    if close_with_last and chunks:
        pending[-2:] = [chunks[-1] + b"\0eof"]
    wire = bytearray()
    resumed = 0
    op = next(steps)
    try:
        while True:
            if type(op) is Write:
                wire += b"".join(op.chunks)
                if not op.read:
                    resumed += 1
                    op = steps.send(None)
                    continue
                op = READ
            if op is READ:
                if not pending:
                    break
                data = pending.pop(0)
                if answer_reads and d.answering and data:  # in the session loop: no resumption
                    if data.endswith(b"\0eof"):  # (close_with_last)
                        d.conn.receive_data(data[:-4])
                        d.conn.receive_data(b"")
                    else:
                        d.conn.receive_data(data)
                    out = d.answer_read()
                    if out is not None:
                        wire += b"".join(out)
                        continue  # still waiting for READ
                else:
                    d.feed(data)
            elif type(op) is Await:
                resumed += 1
                op = steps.send(_finish(op.awaitable))
                continue
            elif op is HANDSHAKE:  # (no TLS here: the session ends)
                break
            else:
                assert op is CLOSE, op
                break
            resumed += 1
            op = steps.send(None)
    except StopIteration:
        pass
    return bytes(wire), resumed, d


#: whole transactions, so that most examples get past MAIL and RCPT to the content
TRANSACTIONS = [
    [b"MAIL FROM:<a@b.test>", b"RCPT TO:<c@d.test>", b"DATA", b"Subject: hi", b"", b"."],
    [b"MAIL FROM:<a@b.test>", b"RCPT TO:<c@d.test>", b"BDAT 3\r\nabc", b"BDAT 2 LAST\r\nde"],
    [b"MAIL FROM:<a@b.test>", b"RCPT TO:<c@d.test>", b"RCPT TO:<e@f.test>", b"RSET"],
]
PIECES = st.one_of(st.sampled_from(LINES).map(lambda line: [line]), st.sampled_from(TRANSACTIONS))


def session_chunks(pieces: list[list[bytes]], cuts: list[int]) -> list[bytes]:
    """An EHLO then the pieces' lines, CRLF-ended, cut at the given offsets."""
    lines = [b"EHLO c.test", *(line for piece in pieces for line in piece)]
    wire = b"".join(line + b"\r\n" for line in lines)
    points = sorted({0, len(wire), *(c for c in cuts if c < len(wire))})
    return [wire[a:b] for a, b in itertools.pairwise(points)]


@settings(max_examples=150, deadline=None)
@given(
    pieces=st.lists(PIECES, max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=6),
)
def test_plain_awaited_and_missing_hooks_answer_alike(
    pieces: list[list[bytes]], cuts: list[int]
) -> None:
    chunks = session_chunks(pieces, cuts)
    handlers = [NoHooks(), Plain(), Awaited()]
    results = [serve(h, chunks) for h in handlers]
    assert results[0][0] == results[1][0] == results[2][0]
    assert handlers[0].contents == handlers[1].contents == handlers[2].contents
    assert results[0][1] == results[1][1] == 0  # no hook waited for: no Await request


def test_awaited_hooks_are_awaited() -> None:
    wire, awaited = serve(Awaited(), [b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\n"])
    assert awaited == 2
    assert wire.count(b"\r\n250 ") == 2  # the EHLO reply's last line and MAIL's 250


def test_connections_do_not_share_what_they_have_buffered() -> None:
    # Each connection's half-received command survives reads on the other connections,
    # which go through the same read buffer.
    handler = MemoryHandler()

    async def main() -> None:
        async with AsyncioServer(handler, port=0, hostname="mx.test") as server:
            peers = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(3)]
            for reader, _ in peers:
                assert (await reader.readline()).startswith(b"220")
            for i, (_, writer) in enumerate(peers):  # each sends half a transaction
                writer.write(b"HELO c%d.test\r\nMAIL FROM:<a%d@b.test>\r\nRCPT TO:<r%d" % (i, i, i))
                await writer.drain()
            await asyncio.sleep(0.05)
            for i, (reader, writer) in enumerate(reversed(peers)):  # the rest, reversed
                n = len(peers) - 1 - i
                writer.write(b"@d.test>\r\nDATA\r\n")
                for code in (b"250", b"250", b"250", b"354"):
                    assert (await reader.readline()).startswith(code)
                writer.write(b"message %d\r\n.\r\nQUIT\r\n" % n)
                assert (await reader.readline()).startswith(b"250")
                assert (await reader.readline()).startswith(b"221")
                writer.close()
                await writer.wait_closed()

    asyncio.run(main())
    assert handler.wait_for(3)
    seen = sorted(
        (str(m.mail_from), [str(r) for r in m.rcpt_tos], m.content) for m in handler.messages
    )
    assert seen == [(f"a{i}@b.test", [f"r{i}@d.test"], b"message %d\r\n" % i) for i in range(3)]


@settings(max_examples=100, deadline=None)
@given(
    pieces=st.lists(PIECES, max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=6),
)
def test_reading_before_resuming_after_a_write_changes_nothing(
    pieces: list[list[bytes]], cuts: list[int]
) -> None:
    chunks = session_chunks(pieces, cuts)
    for kind in (NoHooks, Plain, Awaited):
        resumed_at_once, served_first = kind(), kind()
        assert (
            serve(resumed_at_once, chunks)[0] == serve_reading_after_write(served_first, chunks)[0]
        )
        assert resumed_at_once.contents == served_first.contents


def test_a_lock_step_read_resumes_the_dispatcher_once() -> None:
    # greeting, then one command per read: each read is served after the reply's Write
    # without a resumption in between
    reads = [b"EHLO c.test\r\n", b"MAIL FROM:<a@b.test>\r\n", b"RCPT TO:<c@d.test>\r\n"]
    wire, resumed, _ = serve_reading_after_write(NoHooks(), reads)
    assert wire.startswith(b"220 ") and wire.count(b"\r\n250 ") == 3  # EHLO, MAIL, RCPT
    assert resumed == len(reads) + 1  # one per read, and one for the close
