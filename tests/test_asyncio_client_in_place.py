"""The asyncio client serves an operation in place until a READ must wait for bytes
(sansio_smtp.adapters.client._asyncio): an operation whose reply is buffered already
returns without suspending its coroutine, with that reply, and the session goes on with
operations that wait. And the C2 profile of benchmarks/profile_hot.py runs (nothing here
is timed)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sansio_smtp import Config, Connection, Event, RcptTo, Reply
from sansio_smtp.adapters.client import (
    AsyncSMTPClient,
    SMTPRecipientsRefused,
    SMTPServerDisconnected,
    TLSMode,
)

from .loopback import LoopbackServer, default_handler
from .test_asyncio_client_pieces import ANSWERS, GREETING

ROOT = Path(__file__).resolve().parent.parent


def _in_place(coro: Any) -> Any:
    """Run ``coro`` without the event loop: what it returns; AssertionError if it
    suspends (awaits a future not done)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise AssertionError("the operation suspended")


async def _quiet_vrfy_server(seen: list[bytes]) -> asyncio.Server:
    """Answers EHLO, NOOP and QUIT; never VRFY (the test hands the client that reply)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(GREETING)
        while line := await reader.readline():
            seen.append(line)
            verb = line.split()[0].upper()
            if verb in ANSWERS:
                writer.write(ANSWERS[verb])
            if verb == b"QUIT":
                break
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


async def _buffered_session() -> tuple[list[object], list[object], list[bytes]]:
    """VRFYs whose reply is buffered before they are asked, between NOOPs that wait."""
    seen: list[bytes] = []
    server = await _quiet_vrfy_server(seen)
    port = server.sockets[0].getsockname()[1]
    in_place: list[object] = []
    waited: list[object] = []
    try:
        async with AsyncSMTPClient(
            "127.0.0.1", port, tls=TLSMode.PLAIN, local_hostname="client.test", timeout=5
        ) as client:
            protocol = client._protocol
            assert protocol is not None
            for i in range(2):
                waited.append((await client.noop()).code)
                # a reply that arrived between operations, as the transport hands it over
                early = f"252 2.1.5 early {i}\r\n".encode()
                buffer = protocol.get_buffer(-1)
                buffer[: len(early)] = early
                protocol.buffer_updated(len(early))
                reply = _in_place(client.vrfy(f"user{i}"))
                in_place.append((reply.code, reply.lines))
            waited.append((await client.noop()).code)
    except SMTPServerDisconnected as exc:  # pragma: no cover - a failure shows here
        waited.append(type(exc))
    finally:
        server.close()
        await server.wait_closed()
    return in_place, waited, seen


def test_buffered_reply_completes_without_suspending() -> None:
    in_place, waited, seen = asyncio.run(_buffered_session())
    assert in_place == [(252, ("early 0",)), (252, ("early 1",))]
    assert waited == [250, 250, 250]
    assert seen == [
        b"EHLO client.test\r\n",
        b"NOOP\r\n",
        b"VRFY user0\r\n",
        b"NOOP\r\n",
        b"VRFY user1\r\n",
        b"NOOP\r\n",
        b"QUIT\r\n",
    ]


def test_profile_hot_c2_runs() -> None:
    # issue 13 C2: the profile of the asyncio client, with calls and loop iterations per
    # message, is one command
    cmd = [sys.executable, "benchmarks/profile_hot.py", "C2", "-n", "8", "-c", "2"]
    cmd += ["--top", "5"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "asyncio client under C2: 8 messages" in done.stdout
    assert "event-loop iterations per message" in done.stdout
    assert "Ordered by: cumulative time" in done.stdout


async def _send_twice(port: int, read_after_write: bool) -> list[object]:
    out: list[object] = []
    async with AsyncSMTPClient(
        "127.0.0.1", port, tls=TLSMode.PLAIN, local_hostname="client.test", timeout=5
    ) as client:
        engine = client._engine
        assert engine is not None and engine.read_after_write  # what connect() sets
        engine.read_after_write = read_after_write
        for content in (b"Subject: 1\r\n\r\n.one\r\n", b"Subject: 2\r\n\r\ntwo\r\n"):
            result = await client.sendmail("a@b.example", ["c@d.example", "e@f.example"], content)
            out.append((result.ok, sorted(result.accepted), result.refused))
        try:
            await client.sendmail("a@b.example", ["refused@d.example"], b"x\r\n")
        except SMTPRecipientsRefused as exc:
            out.append(("refused", sorted(exc.result.refused)))
    return out


@pytest.mark.parametrize("pipelining", [False, True])
def test_reading_after_a_write_gives_the_same_session(pipelining: bool) -> None:
    # the engine's Write(read=True) served by reading before the engine resumes
    # (read_after_write, set by connect) and by resuming at once and serving its READ
    # give the same results and the same commands on the wire, lock-step (RFC 5321 §4.3)
    # and pipelined (RFC 2920 §3.1)
    def handler(conn: Connection, event: Event) -> Reply:
        if isinstance(event, RcptTo) and event.forward_path.local_part == "refused":
            return Reply(code=550, lines="no such user", enhanced="5.1.1")
        return default_handler(conn, event)

    sessions = []
    for read_after_write in (True, False):
        extensions = {"PIPELINING": ()} if pipelining else {}
        with LoopbackServer(Config(extensions=extensions), handler) as server:
            outcome = asyncio.run(_send_twice(server.port, read_after_write))
            server.wait_closed()
        assert not server.errors
        (transcript,) = server.transcripts
        sent = [data for who, data in transcript if who == "C"]
        sessions.append((outcome, sent, [m.content for m in server.messages]))
    assert sessions[0] == sessions[1]
    outcome, _, contents = sessions[0]
    assert contents == [b"Subject: 1\r\n\r\n.one\r\n", b"Subject: 2\r\n\r\ntwo\r\n"]
    assert outcome[-1] == ("refused", ["refused@d.example"])
