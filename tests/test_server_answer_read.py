"""The Dispatcher's answer_read() serves a read without resuming steps() (issue 13).

A runtime whose Dispatcher waits for READ in its session loop (``answering``) may feed the
bytes and call ``answer_read()`` itself, and resume ``steps()`` only when that returns
None (a hook to wait for, the STARTTLS handshake, the end), as the asyncio server does.
For any input, in any chunking, with plain, awaited or missing hooks, that puts the same
bytes on the wire and keeps the same messages as resuming ``steps()`` after every read.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sansio_smtp import NEED_DATA, Config, Connection, Reply, Role
from sansio_smtp._events import BytesLike
from sansio_smtp.adapters._io import CLOSE, HANDSHAKE, READ, ServerSteps, Write
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
    handler: object,
    chunks: list[bytes],
    extensions: object = EXTENSIONS,
    *,
    dispatcher: type[Dispatcher] = Dispatcher,
    lmtp: bool = False,
    close_with_last: bool = False,
) -> tuple[bytes, int, Dispatcher]:
    """Drive a Dispatcher as the asyncio server does: while it waits for READ in its
    session loop, each chunk goes to answer_read(). The bytes written, the resumptions
    of steps(), and the Dispatcher."""
    return serve_reading_after_write(
        handler,
        chunks,
        extensions,
        answer_reads=True,
        dispatcher=dispatcher,
        lmtp=lmtp,
        close_with_last=close_with_last,
    )


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


class Checked(Dispatcher):
    """A Dispatcher whose answer_read() checks, each time it returns replies to write,
    that the Connection then needs more data: what it returns without asking
    next_event() (_DRAINED) is what asking would have given. So does its steps() at each
    READ of its session loop (``answering``), the greeting's included: the asyncio
    server's read deadline counts on it (ReadDeadline.next's ``needs_data``)."""

    def answer_read(self) -> list[BytesLike] | None:
        out = super().answer_read()
        if out is not None:
            assert self.conn.next_event() is NEED_DATA
        return out

    def steps(self) -> ServerSteps:
        inner = super().steps()
        op = next(inner)
        while True:
            if self.answering and (op is READ or (type(op) is Write and op.read)):
                assert self.conn.next_event() is NEED_DATA
            try:
                op = inner.send((yield op))
            except StopIteration:
                return


#: pieces beyond session_chunks' own: BDAT 0 LAST, a BDAT outside a transaction (its
#: chunk is skipped), STARTTLS, AUTH, a bare LF, and two recipients (LMTP's replies)
MORE_PIECES = [
    *([line] for line in (b"BDAT 0 LAST", b"BDAT 4\r\nwxyz", b"STARTTLS", b"AUTH PLAIN")),
    [b"MAIL FROM:<a@b.test>\nRCPT TO:<c@d.test>"],
    [b"MAIL FROM:<a@b.test>", b"RCPT TO:<c@d.test>", b"RCPT TO:<e@f.test>", b"DATA", b"."],
]


@settings(max_examples=150, deadline=None)
@given(
    pieces=st.lists(st.one_of(PIECES, st.sampled_from(MORE_PIECES)), max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=6),
    lock_step=st.booleans(),
    lmtp=st.booleans(),
    close_with_last=st.booleans(),
)
def test_replies_returned_without_next_event_are_where_it_needs_data(
    pieces: list[list[bytes]], cuts: list[int], lock_step: bool, lmtp: bool, close_with_last: bool
) -> None:
    chunks = session_chunks(pieces, cuts)
    if lock_step:  # one read per line, as a client waiting for each reply sends them
        chunks = [line + b"\r\n" for line in b"".join(chunks).split(b"\r\n")[:-1]]
    if lmtp:  # LMTP's greeting command, in the same cuts
        wire = b"L" + b"".join(chunks)[1:]
        sizes = [len(chunk) for chunk in chunks]
        chunks = [wire[sum(sizes[:i]) : sum(sizes[: i + 1])] for i in range(len(sizes))]
    extensions = {**EXTENSIONS, "STARTTLS": (), "AUTH": ("PLAIN",)}
    for kind in (NoHooks, Plain, Awaited):
        checked, general = kind(), kind()
        options: dict[str, Any] = {"lmtp": lmtp, "close_with_last": close_with_last}
        wire = serve_answering(checked, chunks, extensions, dispatcher=Checked, **options)[0]
        assert (
            wire == serve_answering(general, chunks, extensions, dispatcher=General, **options)[0]
        )
        assert checked.contents == general.contents


class General(Dispatcher):
    """A Dispatcher that asks next_event() after every reply (no _DRAINED command)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._drained = frozenset()


class Refusing(NoHooks):
    """Greets with 554: the client may only QUIT (RFC 5321 §3.1)."""

    def connect(self, session: Session) -> Reply:
        return Reply(code=554, lines="mx.test no service")


@settings(max_examples=50, deadline=None)
@given(
    pieces=st.lists(st.one_of(PIECES, st.sampled_from(MORE_PIECES)), max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=6),
)
def test_after_a_refusing_greeting_too(pieces: list[list[bytes]], cuts: list[int]) -> None:
    chunks = session_chunks(pieces, cuts)
    wire = serve_answering(Refusing(), chunks, dispatcher=Checked)[0]
    assert wire.startswith(b"554 ")
    assert wire == serve_answering(Refusing(), chunks, dispatcher=General)[0]


def test_what_came_with_the_proxy_header_is_answered_with_the_greeting() -> None:
    # bytes buffered behind the PROXY header when the greeting goes out: steps() answers
    # them before its first READ
    config = Config(hostname="mx.test")
    conn = Connection(Role.SERVER, config)
    d = Checked(conn, Hooks(NoHooks()), Session(), proxy_protocol=True)
    steps = d.steps()
    assert next(steps) is READ  # the header
    d.feed(b"PROXY TCP4 192.0.2.7 192.0.2.1 1234 25\r\nEHLO c.test\r\n")
    op = steps.send(None)
    assert type(op) is Write and op.read
    wire = b"".join(op.chunks)
    assert wire == b"220 mx.test ESMTP ready\r\n250 mx.test\r\n"
