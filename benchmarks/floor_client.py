#!/usr/bin/env python
"""The client floor: the least a blocking SMTP client in Python can do, for benchmarks only.

The counterpart of ``floor_server.py`` for C1. Every command line is written in advance;
the message content is dot-stuffed once, before the clock starts; a reply is "read" by
``recv`` until the buffer ends in a line whose fourth octet is a space (a final reply line),
and its code is the only thing looked at (the first octet, "2" or "3"). Nothing is
parsed, checked, logged or timed out. With ``pipelining`` MAIL, RCPT and DATA go in one
write (RFC 2920 §3.1) and their three replies are awaited together; without it each
command waits for its reply, as any client must with a server that does not offer
PIPELINING. No real client on a blocking socket can do less per message, so its figures
bound what any Python client can reach against a given server: in lock-step the round
trips (the same four for every client) and the system calls set the pace.

It is NOT an SMTP client: it trusts the server to say yes.

    from floor_client import send_many
    send_many("127.0.0.1", port, 2000, sender, recipient, content, pipelining=True)
"""

from __future__ import annotations

import socket

_RECV = 65536


def _await_replies(sock: socket.socket, count: int) -> None:
    """Read until ``count`` final reply lines have arrived (a final line: "NNN " + text;
    continuation lines "NNN-" are not counted). Raise unless every one is 2xx or 3xx."""
    buf = b""
    while True:
        data = sock.recv(_RECV)
        if not data:
            raise ConnectionError("the server closed the connection")
        buf += data
        if buf.endswith(b"\r\n"):
            finals = [line for line in buf.split(b"\r\n")[:-1] if line[3:4] == b" "]
            if len(finals) >= count:
                if any(line[:1] not in (b"2", b"3") for line in finals):
                    raise RuntimeError(f"refused: {buf!r}")
                return


def send_many(
    host: str,
    port: int,
    messages: int,
    sender: str,
    recipient: str,
    content: bytes,
    *,
    pipelining: bool,
) -> None:
    """One connection: greeting, EHLO, ``messages`` transactions of ``content`` (CRLF line
    endings), QUIT."""
    stuffed = content if content.endswith(b"\r\n") else content + b"\r\n"
    stuffed = (b"." + stuffed if stuffed.startswith(b".") else stuffed).replace(
        b"\r\n.", b"\r\n.."
    ) + b".\r\n"
    mail = f"MAIL FROM:<{sender}>\r\n".encode()
    rcpt = f"RCPT TO:<{recipient}>\r\n".encode()
    data = b"DATA\r\n"
    group = mail + rcpt + data
    with socket.create_connection((host, port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _await_replies(sock, 1)  # greeting
        sock.sendall(b"EHLO floor.client\r\n")
        _await_replies(sock, 1)
        for _ in range(messages):
            if pipelining:
                sock.sendall(group)
                _await_replies(sock, 3)
            else:
                for line in (mail, rcpt, data):
                    sock.sendall(line)
                    _await_replies(sock, 1)
            sock.sendall(stuffed)
            _await_replies(sock, 1)
        sock.sendall(b"QUIT\r\n")
        _await_replies(sock, 1)


def _finals(buf: bytes) -> int:
    """Final reply lines ("NNN " + text) in ``buf``, which ends in CRLF."""
    return sum(1 for line in buf.split(b"\r\n")[:-1] if line[3:4] == b" ")


def greeted(host: str, port: int, connections: int) -> list[socket.socket]:
    """``connections`` open connections whose greetings have been read. (Blocking sockets:
    one_message_each reads only what select() says is there.)"""
    socks = [socket.create_connection((host, port)) for _ in range(connections)]
    for sock in socks:
        _await_replies(sock, 1)
    return socks


def one_message_each(
    socks: list[socket.socket], sender: str, recipient: str, content: bytes
) -> None:
    """On every connection at once (greeted already): EHLO, MAIL, RCPT, DATA, the content,
    QUIT, each command waiting for its reply; then close. One ``selectors`` loop drives
    them all, with canned lines and nothing parsed but the count of final reply lines and
    their first digit, so the load costs this process as little as it can: the server's
    speed, not the load's, sets the pace."""
    import selectors

    stuffed = content if content.endswith(b"\r\n") else content + b"\r\n"
    stuffed = stuffed.replace(b"\r\n.", b"\r\n..") + b".\r\n"
    script = [
        b"EHLO floor.client\r\n",
        f"MAIL FROM:<{sender}>\r\n".encode(),
        f"RCPT TO:<{recipient}>\r\n".encode(),
        b"DATA\r\n",
        stuffed,
        b"QUIT\r\n",
    ]
    step = dict.fromkeys(socks, 0)
    buffers = dict.fromkeys(socks, b"")
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            sock.sendall(script[0])  # a few octets into an empty socket buffer
            selector.register(sock, selectors.EVENT_READ)
        while step:
            for key, _ in selector.select(30):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                data = sock.recv(_RECV)
                if not data:
                    raise ConnectionError("the server closed the connection")
                buf = buffers[sock] + data
                if not buf.endswith(b"\r\n") or not _finals(buf):
                    buffers[sock] = buf
                    continue
                if buf[:-2].rsplit(b"\r\n", 1)[-1][:1] not in (b"2", b"3"):
                    raise RuntimeError(f"refused: {buf!r}")
                buffers[sock] = b""
                n = step[sock] + 1
                if n == len(script):
                    selector.unregister(sock)
                    sock.close()
                    del step[sock]
                    continue
                step[sock] = n
                sock.sendall(script[n])
