"""The Dispatcher's answer_read() serves a read without resuming steps() (issue 13).

A runtime whose Dispatcher waits for READ in its session loop (``answering``) may feed the
bytes and call ``answer_read()`` itself, and resume ``steps()`` only when that returns
None (a hook to wait for, the STARTTLS handshake, the end), as the asyncio server does.
For any input, in any chunking, with plain, awaited or missing hooks, that puts the same
bytes on the wire and keeps the same messages as resuming ``steps()`` after every read.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sansio_smtp import Config, Connection, Role
from sansio_smtp.adapters._io import CLOSE, HANDSHAKE, Write
from sansio_smtp.adapters.server import Session
from sansio_smtp.adapters.server._dispatcher import Dispatcher
from sansio_smtp.adapters.server._hooks import Hooks

from .test_server_fast_paths import (
    EXTENSIONS,
    PIECES,
    Awaited,
    NoHooks,
    Plain,
    serve,
    serve_reading_after_write,
    session_chunks,
)


def serve_answering(
    handler: object, chunks: list[bytes], extensions: object = EXTENSIONS
) -> tuple[bytes, int, Dispatcher]:
    """Drive a Dispatcher as the asyncio server does (answer_read() while it waits for
    READ in its session loop). The bytes written, the resumptions of steps(), and the
    Dispatcher."""
    return serve_reading_after_write(handler, chunks, extensions, answer_reads=True)


@settings(max_examples=150, deadline=None)
@given(
    pieces=st.lists(PIECES, max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=6),
)
def test_answering_reads_changes_nothing(pieces: list[list[bytes]], cuts: list[int]) -> None:
    chunks = session_chunks(pieces, cuts)
    for kind in (NoHooks, Plain, Awaited):
        resumed, answered = kind(), kind()
        assert serve(resumed, chunks)[0] == serve_answering(answered, chunks)[0]
        assert resumed.contents == answered.contents


def test_a_lock_step_session_resumes_steps_only_to_start_and_end() -> None:
    reads = [
        b"EHLO c.test\r\n",
        b"MAIL FROM:<a@b.test>\r\n",
        b"RCPT TO:<c@d.test>\r\n",
        b"DATA\r\n",
        b"hello\r\n.\r\n",
        b"QUIT\r\n",
    ]
    handler = NoHooks()
    wire, resumed, d = serve_answering(handler, reads)
    assert wire.startswith(b"220 ") and wire.count(b"\r\n250 ") == 4  # EHLO..end of data
    assert b"\r\n354 " in wire and wire.endswith(b"\r\n") and b"\r\n221 " in wire
    assert handler.contents == [b"hello\r\n"]
    # only at the end: QUIT's reply is steps()' last Write, then CLOSE (the greeting came
    # from the first next())
    assert resumed == 2
    assert d.answering


def test_hooks_to_wait_for_resume_steps() -> None:
    # each awaited hook is left to steps() (answer_read() returns None), in order
    reads = [b"EHLO c.test\r\n", b"MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\n"]
    wire, resumed, _ = serve_answering(Awaited(), reads)
    assert wire.count(b"\r\n250 ") == 3
    assert resumed >= 3
    assert serve(Awaited(), reads)[0] == wire
    # plain hooks: none but the one for the client's close (fed as the asyncio server's
    # eof_received does)
    assert serve_answering(Plain(), reads)[1] == 1


def test_starttls_is_left_to_steps() -> None:
    config = Config(hostname="mx.test", extensions={"STARTTLS": ()})
    d = Dispatcher(Connection(Role.SERVER, config), Hooks(NoHooks()), Session())
    steps = d.steps()
    op = next(steps)
    assert type(op) is Write and op.read and d.answering
    d.conn.receive_data(b"EHLO c.test\r\n")
    out = d.answer_read()
    assert out is not None and b"".join(out).startswith(b"250-mx.test")
    d.conn.receive_data(b"STARTTLS\r\n")
    assert d.answer_read() is None  # the handshake is steps()'s
    op = steps.send(None)
    assert type(op) is Write and b"".join(op.chunks).startswith(b"220") and not op.read
    assert steps.send(None) is HANDSHAKE


def test_a_broken_client_ends_the_session_in_steps() -> None:
    # plaintext behind STARTTLS (CVE-2011-0411): answer_read() leaves the end to steps()
    config = Config(hostname="mx.test", extensions={"STARTTLS": ()})
    d = Dispatcher(Connection(Role.SERVER, config), Hooks(NoHooks()), Session())
    steps = d.steps()
    next(steps)
    d.conn.receive_data(b"EHLO c.test\r\n")
    assert d.answer_read()
    d.conn.receive_data(b"STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n")
    assert d.answer_read() is None
    op = steps.send(None)
    assert type(op) is Write and b"".join(op.chunks).startswith(b"220")
    assert steps.send(None) is CLOSE
    assert d.error is not None
