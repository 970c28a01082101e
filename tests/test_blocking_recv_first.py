"""The blocking client's reads try recv() before waiting while the peer answers as fast
as they read, and wait first once a reply had to be waited for (a recv() before it could
only say EAGAIN): the dialogue is the same either way, and so are its timeouts."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from sansio_smtp.adapters import SMTPClient, SMTPTimeoutError, TLSMode

from .test_blocking_reads import _read_line, _serve_one

PAUSE = 0.05  # seconds the slow server waits before each reply: far longer than a read


def _slow_replies(sock: socket.socket, done: threading.Event) -> None:
    """Answers every command, each reply after PAUSE; the content's "." too."""
    sock.sendall(b"220 mx.test ESMTP\r\n")
    while not done.is_set():
        line = _read_line(sock).upper()
        if not line:
            return
        time.sleep(PAUSE)
        if line.startswith(b"EHLO"):
            sock.sendall(b"250-mx.test\r\n250 8BITMIME\r\n")
        elif line.startswith(b"DATA"):
            sock.sendall(b"354 go\r\n")
            while _read_line(sock) not in (b".\r\n", b""):
                pass
            time.sleep(PAUSE)
            sock.sendall(b"250 queued\r\n")
        elif line.startswith(b"QUIT"):
            sock.sendall(b"221 bye\r\n")
            return
        elif line.startswith(b"NOOP"):
            sock.sendall(b"250 ok\r\n")
            time.sleep(10 * PAUSE)  # the next command's reply comes very late
        else:
            sock.sendall(b"250 ok\r\n")


@pytest.fixture
def slow_server() -> Iterator[int]:
    yield from _serve_one(_slow_replies)


def test_a_slow_peer_is_waited_for_first(slow_server: int) -> None:
    client = SMTPClient("127.0.0.1", slow_server, tls=TLSMode.PLAIN, timeout=10.0)
    assert client._recv_first  # until a reply has to be waited for
    with client:
        assert not client._recv_first  # the EHLO reply came PAUSE late
        result = client.sendmail("a@example.org", ["b@example.net"], b"Subject: x\r\n\r\nhi\r\n")
        assert result.ok and result.data_reply is not None
        assert result.data_reply.code == 250
        assert not client._recv_first  # each reply came PAUSE after its command
        assert client.noop().code == 250


def test_waiting_first_keeps_the_reply_timeout(slow_server: int) -> None:
    # after the NOOP the server is silent for 10 x PAUSE: the RSET's reply, awaited
    # with a wait first, times out (its 0.2 s pass before the reply comes)
    client = SMTPClient(
        "127.0.0.1", slow_server, tls=TLSMode.PLAIN, timeout=10.0, timeouts={"command": 0.2}
    )
    with client:
        assert client.noop().code == 250
        assert not client._recv_first
        with pytest.raises(SMTPTimeoutError) as info:
            client.rset()
        assert info.value.phase == "command"
        assert not client.connected
