"""A runtime that reads right after a Write marked ``read`` (before resuming the engine,
``read_after_write``: the blocking client) drives the engine through the same dialogue as
one that resumes at once and serves the READ that follows (the async runtimes): the same
writes and reads in the same order, each read with the same phase and due time, the same
results and errors, the same session state after. For any server replies, in any
chunking, in lock-step and with PIPELINING, for one message, a batch and a command."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sansio_smtp import Noop
from sansio_smtp.adapters._io import READ, Steps, Write
from sansio_smtp.adapters.client import OutgoingMessage, TLSMode
from sansio_smtp.adapters.client._engine import ClientEngine
from sansio_smtp.adapters.client._options import ClientOptions

SENDER = "a@example.org"
RECIPIENTS = ["b@example.org", "c@example.org"]
CONTENT = b"Subject: x\r\n\r\nhello\r\n.dot\r\n"
REPLIES = [
    b"250 ok\r\n",
    b"250-first\r\n250 last\r\n",
    b"354 go\r\n",
    b"250 queued\r\n",
    b"550 no such user\r\n",
    b"553 sender refused\r\n",
    b"451 try later\r\n",
    b"503 bad sequence\r\n",
    b"421 closing\r\n",
]
Trace = list[tuple[object, ...]]


def _opened(pipelining: bool, read_after_write: bool) -> ClientEngine:
    engine = ClientEngine(ClientOptions(host="mx.example.org", port=25, tls=TLSMode.PLAIN))
    engine.read_after_write = read_after_write
    engine.start_clock(0.0)
    ehlo = b"250-mx.example.org\r\n" + (b"250 PIPELINING\r\n" if pipelining else b"250 HELP\r\n")
    _drive(engine, engine.open(), [b"220 mx.example.org\r\n", ehlo], [])
    return engine


def _drive(engine: ClientEngine, steps: Steps[Any], pieces: list[bytes], trace: Trace) -> Any:
    """Serve ``steps`` as the runtime ``engine.read_after_write`` says: each read takes
    the next piece (the end of the connection when none is left) at the clock value of
    its place in the trace."""

    def read() -> None:
        now = float(len(trace))
        trace.append(("read", *engine.read_due(now)))
        engine.conn.receive_data(pieces.pop(0) if pieces else b"")

    op = next(steps)
    while True:
        if type(op) is Write:
            trace.append(("write", b"".join(bytes(c) for c in op.chunks), op.phase))
            if engine.read_after_write and op.read:
                buffered, closed = engine.conn.trailing_data
                if not buffered and not closed:
                    read()
        elif op is READ:
            read()
        try:
            op = steps.send(None)
        except StopIteration as stop:
            return stop.value


def _run(
    read_after_write: bool, pipelining: bool, operation: str, pieces: list[bytes]
) -> tuple[Trace, object, tuple[object, ...]]:
    engine = _opened(pipelining, read_after_write)
    trace: Trace = []
    if operation == "send_mail":
        steps: Steps[Any] = engine.send_mail(SENDER, RECIPIENTS, CONTENT)
    elif operation == "send_many":
        message = OutgoingMessage(SENDER, RECIPIENTS, CONTENT)
        steps = engine.send_many([message, message, message])
    else:
        steps = engine.command(Noop())
    try:
        outcome: object = _drive(engine, steps, list(pieces), trace)
    except Exception as exc:  # the same error, with the same results, either way
        outcome = (type(exc), str(exc), getattr(exc, "result", None), getattr(exc, "results", None))
    conn = engine.conn
    return trace, outcome, (conn.state, engine.broken, engine.usable, conn.trailing_data)


@st.composite
def _pieces(draw: st.DrawFn) -> list[bytes]:
    """Some server replies, cut at arbitrary points."""
    stream = b"".join(draw(st.lists(st.sampled_from(REPLIES), max_size=16)))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=6)))
    bounds = [0, *(c for c in cuts if c < len(stream)), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@given(
    pipelining=st.booleans(),
    operation=st.sampled_from(["send_mail", "send_many", "command"]),
    pieces=_pieces(),
)
def test_reading_after_the_write_is_the_same_dialogue(
    pipelining: bool, operation: str, pieces: list[bytes]
) -> None:
    resumed = _run(False, pipelining, operation, pieces)
    read_first = _run(True, pipelining, operation, pieces)
    assert read_first == resumed


def test_every_reply_awaited_after_a_write_is_read_before_resuming() -> None:
    # lock-step, every reply whole: the engine never asks for a READ itself, and each
    # read is the first for its reply, so its whole timeout runs from then (RFC 5321
    # §4.5.3.2), not from the read of an earlier reply
    replies = [b"250 ok\r\n", b"250 ok\r\n", b"250 ok\r\n", b"354 go\r\n", b"250 queued\r\n"]
    engine = _opened(False, True)
    ops: list[object] = []
    steps = engine.send_mail(SENDER, RECIPIENTS, CONTENT)
    op = next(steps)
    while True:
        ops.append(op)
        assert type(op) is Write and op.read
        now = 1000.0 * len(ops)
        phase, due = engine.read_due(now)
        assert due == now + engine.timeout(phase)
        engine.conn.receive_data(replies.pop(0))
        try:
            op = steps.send(None)
        except StopIteration as stop:
            assert stop.value.ok
            break
    assert len(ops) == 5 and not replies
