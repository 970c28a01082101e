"""The asyncio client serves the engine's reads and writes from the transport's callbacks
(sansio_smtp.adapters.client._asyncio): a reply may reach ``buffer_updated`` whole, with
the next ones, or in pieces. Whatever the pieces, the client writes the same bytes and
returns the same results; bytes that arrive between operations wait for the next one."""

from __future__ import annotations

import asyncio

import pytest

from sansio_smtp.adapters.client import AsyncSMTPClient, SMTPServerDisconnected, TLSMode

MESSAGE = b"Subject: t\r\n\r\nbody\r\n"
GREETING = b"220 mx.test ESMTP\r\n"
EHLO = b"250-mx.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
ANSWERS = {
    b"EHLO": EHLO,
    b"MAIL": b"250 2.1.0 ok\r\n",
    b"RCPT": b"250 2.1.5 ok\r\n",
    b"DATA": b"354 go on\r\n",
    b".": b"250 2.0.0 queued\r\n",
    b"NOOP": b"250 2.0.0 ok\r\n",
    b"QUIT": b"221 2.0.0 bye\r\n",
}


def pieces(data: bytes, how: str) -> list[bytes]:
    if how == "whole":
        return [data]
    if how == "octets":
        return [data[i : i + 1] for i in range(len(data))]
    # "lines": each line alone, the last split in the middle of its CRLF
    lines = data.splitlines(keepends=True)
    return [*lines[:-1], lines[-1][:-1], lines[-1][-1:]]


async def scripted(how: str, seen: list[bytes], extra: bytes = b"") -> asyncio.Server:
    """A server that answers each command line (and the "." of the content), sending
    each reply in pieces ``how``, one write and one loop turn apart; ``extra`` goes
    out after the reply to the first "."."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def say(data: bytes) -> None:
            for piece in pieces(data, how):
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.002)

        await say(GREETING)
        in_data = False
        while line := await reader.readline():
            seen.append(line)
            if in_data:
                if line != b".\r\n":
                    continue
                in_data = False
                await say(ANSWERS[b"."] + extra)
                continue
            verb = line.split()[0].upper()
            reply = ANSWERS[verb]
            in_data = verb == b"DATA"
            # a pipelined group is answered as a whole once its DATA arrives
            if verb in (b"MAIL", b"RCPT"):
                writer.write(reply)
                continue
            await say(reply)
            if verb == b"QUIT":
                break
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


async def session(how: str, extra: bytes = b"") -> tuple[list[object], list[bytes]]:
    seen: list[bytes] = []
    server = await scripted(how, seen, extra)
    port = server.sockets[0].getsockname()[1]
    out: list[object] = []
    try:
        async with AsyncSMTPClient(
            "127.0.0.1", port, tls=TLSMode.PLAIN, local_hostname="client.test", timeout=5
        ) as client:
            for i in range(3):
                result = await client.sendmail("a@example.org", [f"r{i}@example.net"], MESSAGE)
                out.append((result.ok, result.refused))
                out.append((await client.noop()).code)
    except SMTPServerDisconnected as exc:
        out.append(type(exc))
    finally:
        server.close()
        await server.wait_closed()
    return out, seen


@pytest.mark.parametrize("how", ["octets", "lines"])
def test_replies_in_pieces_give_what_whole_replies_give(how: str) -> None:
    whole = asyncio.run(session("whole"))
    assert whole[0] == [(True, {}), 250] * 3
    assert asyncio.run(session(how)) == whole


def test_bytes_between_operations_reach_the_next_one() -> None:
    # a 421 sent while no operation waits (RFC 5321 §3.8) is buffered, then read as the
    # reply to the next command: the session ends there, as when the 421 arrives later
    out, seen = asyncio.run(session("whole", extra=b"421 4.3.2 shutting down\r\n"))
    assert out[0] == (True, {})
    assert out[1] == 421
    assert out[2] is SMTPServerDisconnected
    assert seen[-1] != b"QUIT\r\n"  # the session was closed, not ended
