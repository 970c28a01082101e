"""Security regression suite: one test per known attack, each citing its source.

Core-level tests drive a server or client ``Connection`` directly (whole input and byte
by byte); wire tests run against an ``AsyncioServer`` on 127.0.0.1 started once per
module. Everything is bounded: sockets time out after SOCKET_TIMEOUT seconds.

The findings of issue 10 (items 1-16) are covered where they were fixed; the last test
here checks that each named regression test still exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from sansio_smtp import (
    NEED_DATA,
    PAUSED,
    SERVER,
    Address,
    Auth,
    Config,
    Connection,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfMessage,
    Event,
    Expn,
    Greeting,
    Helo,
    Help,
    InvalidMessage,
    LocalProtocolError,
    MailFrom,
    MessageData,
    Noop,
    RcptTo,
    RemoteProtocolError,
    Reply,
    StartTLS,
    Vrfy,
)
from sansio_smtp.adapters import AsyncioServer, MemoryHandler

from .certs import test_certs
from .helpers import ConnectionPair, feed_ways

SOCKET_TIMEOUT = 5.0
EXT = {"PIPELINING": (), "8BITMIME": (), "SMTPUTF8": (), "CHUNKING": (), "STARTTLS": ()}
ENVELOPE = b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n"
SMUGGLED = b"MAIL FROM:<evil@smuggler.example>\r\nRCPT TO:<victim@d.example>\r\nDATA\r\n"


# ----------------------------------------------------------------------- the core


def serve(config: Config, chunks: list[bytes]) -> tuple[list[Event], list[int]]:
    """Feed ``chunks`` to a fresh server core that answers every command with its
    default reply (one per recipient after an LMTP message); the events and the codes."""
    conn = Connection(SERVER, config)
    conn.send(Greeting())
    events: list[Event] = []
    codes: list[int] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        while True:
            event = conn.next_event()
            if event is NEED_DATA or (event is PAUSED and not conn.pending):
                break
            if event is PAUSED:
                reply = conn.default_reply(conn.pending[0])
                conn.send(reply)
                codes.append(reply.code)
                continue
            assert isinstance(event, Event)
            events.append(event)
            if isinstance(event, ConnectionClosed):
                return events, codes
    return events, codes


def _hello(lmtp: bool) -> bytes:
    return b"LHLO c.example\r\n" if lmtp else b"EHLO c.example\r\n"


# Every bare-CR/LF form of "end of data" (CVE-2023-51764 Postfix, CVE-2023-51765
# Sendmail, CVE-2023-51766 Exim, CVE-2024-27305 aiosmtpd): <x>.<y> for each pair of
# line endings but <CRLF>.<CRLF>, "\r\r\n" condensing (CR CR LF read as CR LF), and at
# the start of DATA, where the CRLF before the dot is the one ending DATA's line.
_ENDINGS = [b"\r\n", b"\n", b"\r", b"\r\r\n", b"\n\r"]
# (a variant that contains <CRLF>.<CRLF>, such as "\r\r\n.\r\n", really ends the data)
AFTER_CONTENT = [
    p + b"." + s for p in _ENDINGS for s in _ENDINGS if b"\r\n.\r\n" not in p + b"." + s
]
AT_START = [b"." + s for s in _ENDINGS if s != b"\r\n"]
SMUGGLING = [("after content", b"first line" + v) for v in AFTER_CONTENT] + [
    ("at start", v) for v in AT_START
]


@pytest.mark.parametrize("lmtp", [False, True], ids=["smtp", "lmtp"])
@pytest.mark.parametrize(("where", "variant"), SMUGGLING, ids=repr)
def test_smtp_smuggling_core(lmtp: bool, where: str, variant: bytes) -> None:
    # RFC 5321 §4.1.1.4 (and RFC 2033 §4.2 for LMTP): only <CRLF>.<CRLF> ends the mail
    # data; SMTP smuggling (the CVEs above) hides a second transaction behind a bare
    # CR/LF "end". Whole and byte by byte: one message, ended only by the real <CRLF>.<CRLF>.
    wire = _hello(lmtp) + ENVELOPE + b"DATA\r\n" + variant + SMUGGLED + b"x\r\n.\r\nQUIT\r\n"
    config = Config(lmtp=lmtp, extensions=EXT)
    for way, chunks in feed_ways(wire):
        events, _codes = serve(config, chunks)
        names = [type(e).__name__ for e in events]
        content = b"".join(bytes(e.data) for e in events if isinstance(e, MessageData))
        assert names.count("MailFrom") == 1 and names.count("RcptTo") == 1, (way, names)
        assert not any(isinstance(e, Data) for e in events[names.index("Data") + 1 :]), way
        ends = [e for e in events if isinstance(e, (EndOfMessage, InvalidMessage))]
        assert len(ends) == 1, (way, names)
        assert names[-2:] == ["Quit", "ConnectionClosed"], (way, names)
        if isinstance(ends[0], EndOfMessage):
            assert b"evil@smuggler.example" in content, way


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, MemoryHandler]]:
    """An AsyncioServer (PIPELINING, CHUNKING, STARTTLS, max_recipients=100) on 127.0.0.1."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    handler = MemoryHandler()
    srv = AsyncioServer(
        handler,
        config=Config(hostname="mx.test", extensions=EXT, max_recipients=100),
        tls_context=test_certs().server_context(),
        idle_timeout=10.0,
        max_connections_per_client=None,
    )
    try:
        asyncio.run_coroutine_threadsafe(srv.start(), loop).result(10)
        yield srv.port, handler
    finally:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(srv.shutdown(2.0), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


class Peer:
    """A raw client: bytes out, whole replies (code, text) in; None once closed."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT)
        self.reader = self.sock.makefile("rb")

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.reader.close()
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> tuple[int, bytes] | None:
        text = b""
        try:
            while True:
                line = self.reader.readline(4096)
                if len(line) < 4:
                    return None
                text += line[4:]
                if line[3:4] != b"-":
                    return int(line[:3]), text
        except OSError:
            return None

    def codes(self, count: int) -> list[int | None]:
        return [r[0] if (r := self.reply()) else None for _ in range(count)]


@pytest.mark.parametrize(("where", "variant"), SMUGGLING, ids=repr)
def test_smtp_smuggling_over_the_wire(
    server: tuple[int, MemoryHandler], where: str, variant: bytes
) -> None:
    # CVE-2023-51764 / CVE-2024-27305 against the running server: the smuggled MAIL,
    # RCPT and DATA stay content of the one message; no second message is delivered.
    port, handler = server
    before = len(handler.messages)
    with Peer(port) as peer:
        assert peer.codes(1) == [220]
        peer.send(b"EHLO c.example\r\n" + ENVELOPE + b"DATA\r\n")
        assert peer.codes(4) == [250, 250, 250, 354]
        peer.send(variant + SMUGGLED + b"x\r\n.\r\nNOOP\r\n")
        assert peer.codes(2) == [250, 250]  # the message, then NOOP: nothing in between
    assert handler.wait_for(before + 1)
    assert len(handler.messages) == before + 1
    assert b"evil@smuggler.example" in handler.messages[-1].content


# ------------------------------------------------------------- STARTTLS injection


@pytest.mark.parametrize(
    "injected", [b"MAIL FROM:<injected@evil.example>\r\n", b"MAIL FR", b"N"], ids=repr
)
def test_starttls_injection_server(server: tuple[int, MemoryHandler], injected: bytes) -> None:
    # CVE-2011-0411 (Postfix), aiosmtpd CVE-2024-34083 (fixed in 1.4.6): plaintext
    # pipelined behind STARTTLS, a whole line or a fragment without CRLF, must not reach
    # the TLS session; the server answers 220 and drops the connection.
    port, _ = server
    with Peer(port) as peer:
        assert peer.codes(1) == [220]
        peer.send(b"EHLO c.example\r\n")
        assert peer.codes(1) == [250]
        peer.send(b"STARTTLS\r\n" + injected)
        assert peer.codes(1) == [220]
        assert peer.reply() is None  # closed, nothing answered in the clear


@pytest.mark.parametrize("injected", [b"250 fake\r\n", b"250-fa", b"x"], ids=repr)
@pytest.mark.parametrize("together", [True, False], ids=["with-220", "after-220"])
def test_starttls_injection_client_core(injected: bytes, together: bool) -> None:
    # CVE-2021-38371 (Exim as a client), aiosmtplib GHSA-vxj7-4xrp-5vr4: response injection:
    # bytes after the 220 to STARTTLS, in the same read or later, fragment or line, are
    # a RemoteProtocolError, never read as the TLS session's first reply.
    pair = ConnectionPair(greeting=Greeting(), server_config=Config(extensions=EXT))
    pair.exchange(Ehlo(domain="c.example"))
    client = pair.client
    client.send(StartTLS())
    if together:
        client.receive_data(b"220 2.0.0 go ahead\r\n" + injected)
        assert isinstance(client.next_event(), Reply)
        with pytest.raises(RemoteProtocolError):
            client.next_event()
    else:
        client.receive_data(b"220 2.0.0 go ahead\r\n")
        assert isinstance(client.next_event(), Reply)
        client.receive_data(injected)
        with pytest.raises(RemoteProtocolError):
            client.tls_established()


# -------------------------------------------------------------- command injection

BAD_CHARS = [chr(c) for c in range(0x20)] + ["\x7f"]  # C0 controls (CR, LF too) and DEL

#: every string argument of every client command: (state to reach, event factory)
ARGUMENTS: dict[str, tuple[str, Callable[[str], Event]]] = {
    "Helo.domain": ("greeted", lambda x: Helo(domain=f"a{x}b")),
    "Ehlo.domain": ("greeted", lambda x: Ehlo(domain=f"a{x}b")),
    "Vrfy.text": ("ready", lambda x: Vrfy(text=f"a{x}b")),
    "Expn.text": ("ready", lambda x: Expn(text=f"a{x}b")),
    "Help.topic": ("ready", lambda x: Help(topic=f"a{x}b")),
    "Noop.text": ("ready", lambda x: Noop(text=f"a{x}b")),
    "Auth.mechanism": ("ready", lambda x: Auth(mechanism=f"PLAIN{x}")),
    "MailFrom.local-part": ("ready", lambda x: MailFrom(reverse_path=Address(f"a{x}b", "c.ex"))),
    "MailFrom.domain": ("ready", lambda x: MailFrom(reverse_path=Address("a", f"c{x}.ex"))),
    "MailFrom.param-keyword": (
        "ready",
        lambda x: MailFrom(reverse_path="a@c.ex", params={f"BODY{x}": "8BITMIME"}),
    ),
    "MailFrom.param-value": (
        "ready",
        lambda x: MailFrom(reverse_path="a@c.ex", params={"BODY": f"8BITMIME{x}"}),
    ),
    "MailFrom.envid": (
        "ready",
        lambda x: MailFrom(reverse_path="a@c.ex", params={"ENVID": f"i{x}d"}),
    ),
    "RcptTo.local-part": ("mail", lambda x: RcptTo(forward_path=Address(f"a{x}b", "c.ex"))),
    "RcptTo.domain": ("mail", lambda x: RcptTo(forward_path=Address("a", f"c{x}.ex"))),
    "RcptTo.param-value": (
        "mail",
        lambda x: RcptTo(forward_path="a@c.ex", params={"NOTIFY": f"NEVER{x}"}),
    ),
}


def _client_in(state: str) -> ConnectionPair:
    config = Config(extensions={**EXT, "DSN": (), "AUTH": ("PLAIN",)}, allow_plaintext_auth=True)
    pair = ConnectionPair(Config(allow_plaintext_auth=True), config)
    if state != "greeted":
        pair.server_sends(Greeting())
        pair.exchange(Ehlo(domain="c.example"))
    else:
        pair.server_sends(Greeting())
    if state == "mail":
        pair.exchange(MailFrom(reverse_path="a@b.example"))
    return pair


@pytest.mark.parametrize("argument", sorted(ARGUMENTS))
def test_command_injection_through_any_argument(argument: str) -> None:
    # CRLF injection through command arguments (CPython gh-87290 / bpo-43124 in smtplib);
    # RFC 5321 §2.3.8 (CRLF only ends a line) and §4.1.2 (no C0 control or DEL in any
    # argument). CR or LF would start an attacker's command: refused before any byte.
    state, make = ARGUMENTS[argument]
    pair = _client_in(state)
    assert pair.client.send(make(""))  # the argument without the character is fine
    for char in BAD_CHARS:
        pair = _client_in(state)
        before = pair.client.state
        with pytest.raises((LocalProtocolError, ValueError)):
            pair.client.send(make(char))
        assert pair.client.state is before, repr(char)
