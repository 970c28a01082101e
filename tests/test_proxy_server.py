"""PROXY protocol on every server (ServerOptions.proxy_protocol, serve --proxy-protocol):
the handler sees the real client; a connection without a valid header gets no SMTP."""

from __future__ import annotations

import socket
import time

import pytest

from sansio_smtp.adapters import MemoryHandler
from sansio_smtp.proxy import ProxyHeader

from . import test_server_adapters as _adapters
from .test_server_adapters import TIMEOUT, Peer

make_server = _adapters.make_server  # the servers fixture: asyncio, sync, anyio

KINDS = ["asyncio", "sync", "anyio"]


def _send_one(peer: Peer) -> None:
    peer.expect(220)
    peer.expect(250, "EHLO client.example")
    peer.expect(250, "MAIL FROM:<a@example.org>")
    peer.expect(250, "RCPT TO:<b@example.org>")
    peer.expect(354, "DATA")
    peer.expect(250, "Subject: x\r\n\r\nhi\r\n.")
    peer.expect(221, "QUIT")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("version", [1, 2])
def test_the_handler_sees_the_real_client(make_server: object, kind: str, version: int) -> None:
    if kind == "anyio":
        pytest.importorskip("anyio")
    handler = MemoryHandler()
    server = make_server(kind, handler, proxy_protocol=True)  # type: ignore[operator]
    header = ProxyHeader(source=("192.0.2.7", 40000), destination=("198.51.100.1", 25))
    wire = header.to_bytes(version=version)
    peer = Peer(server.port)
    # in two pieces, the second with the first command: the header's end is found exactly
    peer.send(wire[:5])
    time.sleep(0.05)
    peer.send(wire[5:])
    _send_one(peer)
    assert handler.wait_for(1, TIMEOUT)
    (envelope,) = handler.messages
    assert envelope.peer == ("192.0.2.7", 40000)
    assert b"192.0.2.7" in envelope.received_header()  # RFC 5321 §4.4 trace: the real client


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "opening",
    [
        b"EHLO client.example\r\n",  # no header: never guessed (no greeting, no SMTP)
        b"PROXY TCP4 192.0.2.7 not-an-address 1 2\r\n",
        b"\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c",  # v2 signature, version 3
    ],
)
def test_no_valid_header_no_smtp(make_server: object, kind: str, opening: bytes) -> None:
    if kind == "anyio":
        pytest.importorskip("anyio")
    handler = MemoryHandler()
    server = make_server(kind, handler, proxy_protocol=True)  # type: ignore[operator]
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(opening)
        received = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    assert received == b""  # closed without a greeting


@pytest.mark.parametrize("kind", ["asyncio", "sync"])
def test_local_command_keeps_the_socket_address(make_server: object, kind: str) -> None:
    # v2 LOCAL (a balancer's health check): the connection's own address stands
    handler = MemoryHandler()
    server = make_server(kind, handler, proxy_protocol=True)  # type: ignore[operator]
    peer = Peer(server.port)
    peer.send(b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00")
    _send_one(peer)
    assert handler.wait_for(1, TIMEOUT)
    assert handler.messages[0].peer[0] == "127.0.0.1"  # type: ignore[index]
