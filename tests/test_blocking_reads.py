"""The blocking client's reads: each waits on a poll object of its own (the selector
where there is no select.poll), bounded by the time left for the reply (RFC 5321
§4.5.3.2), plaintext and TLS alike, while writes and the TLS handshake wait on the
selector.

These scripted servers check the paths the other tests reach less directly: a reply that
never comes after STARTTLS (the read's wait on the TLS socket, whose descriptor the poll
object keeps), and a write that must wait for the peer right after a read.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from sansio_smtp.adapters import SMTPClient, SMTPTimeoutError, TLSMode

from .certs import test_certs

_Handler = Callable[[socket.socket, threading.Event], None]


def _serve_one(handler: _Handler) -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def run() -> None:
        try:
            sock, _ = listener.accept()
        except OSError:
            return
        with sock:
            sock.settimeout(10)
            with contextlib.suppress(OSError):
                handler(sock, done)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        listener.close()
        thread.join(10)


def _read_line(sock: socket.socket) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        octet = sock.recv(1)
        if not octet:
            return line
        line += octet
    return line


def _silent_after_starttls(sock: socket.socket, done: threading.Event) -> None:
    sock.sendall(b"220 mx.test ESMTP\r\n")
    _read_line(sock)  # EHLO
    sock.sendall(b"250-mx.test\r\n250 STARTTLS\r\n")
    _read_line(sock)  # STARTTLS
    sock.sendall(b"220 go ahead\r\n")
    tls = test_certs().server_context().wrap_socket(sock, server_side=True)
    _read_line(tls)  # EHLO again: never answered
    done.wait(10)


@pytest.fixture
def silent_tls_server() -> Iterator[int]:
    yield from _serve_one(_silent_after_starttls)


def test_tls_reply_timeout(silent_tls_server: int) -> None:
    # the EHLO reply after the handshake is awaited on the TLS socket: still bounded
    client = SMTPClient(
        "127.0.0.1",
        silent_tls_server,
        tls=TLSMode.STARTTLS_REQUIRED,
        ssl_context=test_certs().client_context(),
        server_hostname="localhost",
        timeout=10.0,
        timeouts={"command": 0.5},
    )
    start = time.monotonic()
    with pytest.raises(SMTPTimeoutError) as info:
        client.connect()
    assert time.monotonic() - start < 8
    assert info.value.phase == "command"
    assert not client.connected  # closed: a late reply cannot be read as another's


def _slow_reader(sock: socket.socket, done: threading.Event) -> None:
    """Answers at once, but reads the message content slowly, so the client's write of it
    must wait for room in the socket buffers."""
    sock.sendall(b"220 mx.test ESMTP\r\n")
    while not done.is_set():
        line = _read_line(sock).upper()
        if not line:
            return
        if line.startswith(b"EHLO"):
            sock.sendall(b"250-mx.test\r\n250 8BITMIME\r\n")
        elif line.startswith(b"DATA"):
            sock.sendall(b"354 go\r\n")
            received = b""
            while not received.endswith(b"\r\n.\r\n"):
                time.sleep(0.001)
                piece = sock.recv(65536)
                if not piece:
                    return
                received += piece
            sock.sendall(b"250 queued\r\n")
        elif line.startswith(b"QUIT"):
            sock.sendall(b"221 bye\r\n")
            return
        else:
            sock.sendall(b"250 ok\r\n")


@pytest.fixture
def slow_reader() -> Iterator[int]:
    yield from _serve_one(_slow_reader)


def test_write_waits_after_a_read(slow_reader: int) -> None:
    # the 354 is read; the content (larger than the socket buffers) is then written,
    # waiting on the selector for room as it goes
    body = b"".join(b"line %07d of a long message\r\n" % i for i in range(200_000))
    message = b"Subject: big\r\n\r\n" + body
    with SMTPClient("127.0.0.1", slow_reader, tls=TLSMode.PLAIN, timeout=20.0) as client:
        result = client.sendmail("a@example.org", ["b@example.net"], message)
        assert result.ok
        assert client.noop().code == 250
