"""ReadDeadline's per-read shortcuts give the deadlines of its plain calls (issue 13).

The asyncio server adds a read's size to ``octets`` instead of calling ``received()``,
and passes ``replied=True`` to ``next()`` instead of calling ``sent()`` first: for any
sequence of reads, replies, waits and states, the deadlines (and ``slow``) are the same.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sansio_smtp._events import BytesLike
from sansio_smtp._state import State, Timeout
from sansio_smtp.adapters.server._dispatcher import Dispatcher
from sansio_smtp.adapters.server._limits import ReadDeadline

from .test_server_answer_read import MORE_PIECES, serve_answering
from .test_server_fast_paths import EXTENSIONS, PIECES, NoHooks, session_chunks


class Conn:
    """What ReadDeadline reads of a Connection."""

    def __init__(self) -> None:
        self.state = State.READY
        self.in_chunk = False
        self.timeout: Timeout | None = Timeout("client", 300.0)  # type: ignore[arg-type]


STEP = st.one_of(
    st.tuples(st.just("read"), st.integers(0, 5000)),
    st.tuples(st.just("reply"), st.just(0)),
    st.tuples(st.just("wait"), st.integers(0, 3)),
    st.tuples(
        st.just("state"), st.sampled_from(["READY", "MAIL", "RCPT", "DATA", "BDAT", "CHUNK"])
    ),
    st.tuples(st.just("owes"), st.booleans()),
)


@given(
    steps=st.lists(STEP, max_size=40),
    idle=st.sampled_from([None, 10.0, 300.0]),
    rate=st.sampled_from([None, 0.0, 100.0, 5000.0]),
)
def test_octets_and_replied_as_received_and_sent(
    steps: list[tuple[str, Any]], idle: float | None, rate: float | None
) -> None:
    plain = ReadDeadline(idle_timeout=idle, min_data_rate=rate, data_rate_grace=1.0)
    short = ReadDeadline(idle_timeout=idle, min_data_rate=rate, data_rate_grace=1.0)
    conn: Any = Conn()
    now = 0.0
    replied = False
    for kind, value in steps:
        if kind == "read":
            plain.received(value)
            short.octets += value
        elif kind == "reply":
            plain.sent()
            replied = True
        elif kind == "wait":
            now += value * 0.7
            assert plain.next(conn, now) == short.next(conn, now, replied)
            assert plain.slow == short.slow
            replied = False
        elif kind == "state":
            conn.in_chunk = value == "CHUNK"
            conn.state = State.RCPT if value == "CHUNK" else State[value]
        else:
            conn.timeout = None if value else Timeout("client", 300.0)  # type: ignore[arg-type]


def _twins() -> list[tuple[ReadDeadline, ReadDeadline]]:
    return [
        (
            ReadDeadline(idle_timeout=idle, min_data_rate=rate, data_rate_grace=1.0),
            ReadDeadline(idle_timeout=idle, min_data_rate=rate, data_rate_grace=1.0),
        )
        for idle in (None, 10.0)
        for rate in (None, 100.0)
    ]


@settings(max_examples=100, deadline=None)
@given(
    pieces=st.lists(st.one_of(PIECES, st.sampled_from(MORE_PIECES)), max_size=10),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=6),
    lmtp=st.booleans(),
)
def test_needs_data_gives_the_deadline_of_asking_the_timeout(
    pieces: list[list[bytes]], cuts: list[int], lmtp: bool
) -> None:
    # the asyncio server passes needs_data=True after answer_read() gave replies: over
    # real sessions, every such deadline is the one Connection.timeout gives
    twins = _twins()
    clock = iter(range(10_000))

    class Timed(Dispatcher):
        def answer_read(self) -> list[BytesLike] | None:
            out = super().answer_read()
            if out is not None:
                now = next(clock) * 0.3
                for plain, short in twins:
                    plain.octets = short.octets = plain.octets + 7
                    expected = plain.next(self.conn, now, bool(out))
                    assert short.next(self.conn, now, bool(out), True) == expected
                    assert plain.slow == short.slow
            return out

    chunks = session_chunks(pieces, cuts)
    if lmtp:
        wire = b"L" + b"".join(chunks)[1:]
        sizes = [len(chunk) for chunk in chunks]
        chunks = [wire[sum(sizes[:i]) : sum(sizes[: i + 1])] for i in range(len(sizes))]
    extensions = {**EXTENSIONS, "STARTTLS": (), "AUTH": ("PLAIN",)}
    serve_answering(NoHooks(), chunks, extensions, dispatcher=Timed, lmtp=lmtp)
