"""Security regression suite: one test per known attack, each citing its source.

Core-level tests drive a server or client ``Connection`` directly (whole input and byte
by byte); wire tests run against an ``AsyncioServer`` on 127.0.0.1 started once per
module. Everything is bounded: sockets time out after SOCKET_TIMEOUT seconds.

The findings of issue 10 (items 1-16) are covered where they were fixed; the last test
here checks that each named regression test still exists.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

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
    InvalidCommand,
    InvalidMessage,
    LocalProtocolError,
    MailFrom,
    MessageData,
    Noop,
    RcptTo,
    RemoteProtocolError,
    Reply,
    StartTLS,
    State,
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


# ------------------------------------------------------------------ endless lines

CHUNK = 64 * 1024


@pytest.mark.parametrize("where", ["command", "content"])
def test_endless_line_keeps_memory_bounded(where: str) -> None:
    # RFC 5321 §4.5.3.1.4-6 (512-octet command lines, 1000-octet text lines): an endless
    # line (16 MiB without CRLF) is discarded as it comes, not buffered; the session
    # survives with 500 (command) or an InvalidMessage (content) and goes on.
    config = Config(max_message_size=None)
    conn = Connection(SERVER, config)
    conn.send(Greeting())
    if where == "content":
        conn.receive_data(b"EHLO c\r\n" + ENVELOPE + b"DATA\r\n")
        for _ in range(4):
            conn.send(conn.default_reply(conn.next_event()))  # type: ignore[arg-type]
        assert conn.state is State.DATA
    most = 0
    for _ in range(256):
        conn.receive_data(b"x" * CHUNK)
        while conn.next_event() not in (NEED_DATA, PAUSED):
            pass
        most = max(most, len(conn.trailing_data[0]))
    assert most <= 8192, most  # bounded by a line limit, not by the input
    conn.receive_data(b"\r\n.\r\n" if where == "content" else b"\r\n")
    event = conn.next_event()
    if where == "content":
        while isinstance(event, MessageData):
            event = conn.next_event()
        assert isinstance(event, InvalidMessage)
    else:
        assert isinstance(event, InvalidCommand) and event.reply_hint.code == 500
    conn.send(conn.default_reply(event))
    conn.receive_data(b"NOOP\r\n")
    assert isinstance(conn.next_event(), Noop)


def test_endless_line_over_the_wire(server: tuple[int, MemoryHandler]) -> None:
    # the same against the running server: 8 MiB without CRLF, then 500 and the session
    # goes on (RFC 5321 §4.2.4 500 "line too long", §4.5.3.1.4)
    port, _ = server
    with Peer(port) as peer:
        assert peer.codes(1) == [220]
        for _ in range(128):
            peer.send(b"N" * CHUNK)
        peer.send(b"\r\nNOOP\r\n")
        assert peer.codes(2) == [500, 250]


# ------------------------------------------------------------------------- floods


def test_recipient_flood_gets_452(server: tuple[int, MemoryHandler]) -> None:
    # RFC 5321 §4.5.3.1.8 (at least 100 recipients) and §4.5.3.1.10: beyond the limit,
    # 452 "too many recipients", not 5xx; the transaction goes on with those accepted.
    port, _ = server
    rcpts = b"".join(b"RCPT TO:<r%d@d.example>\r\n" % i for i in range(105))
    with Peer(port) as peer:
        assert peer.codes(1) == [220]
        peer.send(b"EHLO c.example\r\nMAIL FROM:<a@b.example>\r\n" + rcpts + b"RSET\r\n")
        codes = peer.codes(2 + 105 + 1)
    assert codes == [250, 250] + [250] * 100 + [452] * 5 + [250]


def test_command_flood_is_answered_in_order_then_cut(server: tuple[int, MemoryHandler]) -> None:
    # RFC 2920 §3.1 (pipelining): commands in one write are each answered, in order; a
    # flood of commands that move no mail or are refused ends with 421 (RFC 5321 §3.8) at
    # the error limit (Config.max_invalid_commands, Postfix's smtpd_hard_error_limit 20)
    # and nothing after it is read. A client that does not read its replies is cut off
    # (issue 10 item 6, listed below).
    port, _ = server
    count = 5000
    with Peer(port) as peer:
        assert peer.codes(1) == [220]
        peer.send(b"EHLO c.example\r\n" + b"NOOP\r\nXYZZY\r\n" * (count // 2))
        codes = peer.codes(1 + 42 + 1)  # the last: None, the server closed
    assert codes == [250] + [250, 500] * 20 + [250, 421, None]


# ----------------------------------------------------------- NUL and invalid UTF-8


def test_nul_bytes() -> None:
    # RFC 5321 §4.1.2 / §2.4: NUL is no part of any command; in a command line it gets
    # 501/500 and the session goes on; in content it is an ordinary octet and cannot end
    # the data ("\r\n\x00.\r\n" is content, RFC 5321 §4.1.1.4).
    wire = (
        b"EHLO c\r\nNOOP \x00\r\nMAIL FROM:<a\x00@b.example>\r\n\x00\r\n"
        + ENVELOPE
        + b"DATA\r\n\x00nul\r\n\x00.\r\n.\r\nNOOP\r\n"
    )
    for way, chunks in feed_ways(wire):
        events, codes = serve(Config(), chunks)
        assert codes == [250, 501, 501, 500, 250, 250, 354, 250, 250], way
        content = b"".join(bytes(e.data) for e in events if isinstance(e, MessageData))
        assert content == b"\x00nul\r\n\x00.\r\n", way


def test_invalid_utf8() -> None:
    # RFC 5321 §2.4 (commands are ASCII) and RFC 6531 §3.3 (UTF-8 only, and only with
    # SMTPUTF8): invalid UTF-8 or 8-bit octets in a command get 500 or 553 without
    # SMTPUTF8, 500 with it for malformed UTF-8; the session goes on.
    wire = b"EHLO c\r\nNOOP \xff\r\nMAIL FROM:<\xc3@b.example>\r\n\xfe\xff\r\nNOOP\r\n"
    for way, chunks in feed_ways(wire):
        assert serve(Config(), chunks)[1] == [250, 500, 500, 500, 250], way
    utf8 = Config(extensions={"SMTPUTF8": ()})
    wire = b"EHLO c\r\nMAIL FROM:<\xc3@b.example> SMTPUTF8\r\nNOOP\r\n"
    for way, chunks in feed_ways(wire):
        assert serve(utf8, chunks)[1] == [250, 500, 250], way


# -------------------------------------------------------------------- early talker


def test_early_talker_core() -> None:
    # RFC 5321 §3.1 / §4.3.1: the client waits for the greeting; one that speaks first is
    # a spam-bot tell (Postfix postscreen_greet_action). The core notes it, and with
    # reject_improper_pipelining answers its first command 554.
    for reject, code in ((False, 250), (True, 554)):
        conn = Connection(SERVER, Config(reject_improper_pipelining=reject))
        conn.receive_data(b"EHLO too.early\r\n")
        assert conn.next_event() is PAUSED  # nothing is read before the greeting
        conn.send(Greeting())
        assert conn.improper_pipelining
        event = conn.next_event()
        assert conn.default_reply(event).code == code  # type: ignore[arg-type]


def test_early_talker_over_the_wire(server: tuple[int, MemoryHandler]) -> None:
    # RFC 5321 §4.3.1: whatever the client does, the 220 greeting comes first and the
    # early command is answered after it, once
    port, _ = server
    with Peer(port) as peer:
        peer.send(b"EHLO too.early\r\nNOOP\r\n")
        assert peer.codes(3) == [220, 250, 250]


# ------------------------------------------------------------- issue 10 findings

#: issue 10 item -> (test file, regression test that covers it)
ISSUE_10 = {
    1: ("test_reliability_core.py", "test_lmtp_refused_message_is_refused_for_every_recipient"),
    2: ("test_reliability_core.py", "test_lmtp_data_without_recipient_is_503"),
    3: ("test_reliability_store.py", "test_maildir_memory_stays_bounded"),
    4: ("test_reliability_store.py", "test_maildir_fsyncs_file_and_new_directory_before_250"),
    5: ("test_reliability_store.py", "test_maildir_keeps_binarymime_octets_exactly"),
    6: ("test_reliability_server.py", "test_client_that_never_reads_is_dropped_at_the_deadline"),
    7: ("test_reliability_server.py", "test_dripped_command_line_is_bounded_as_a_whole"),
    8: ("test_reliability_server.py", "test_connections_per_client"),
    9: ("test_reliability_server.py", "test_auth_failures_across_connections_are_budgeted"),
    10: ("test_reliability_store.py", "test_slow_store_does_not_stall_other_clients"),
    11: ("test_reliability_store.py", "test_print_handler_escapes_terminal_controls"),
    12: ("test_reliability_core.py", "test_scram_long_client_nonce_is_refused_with_501"),
    13: ("test_fuzz.py", "test_every_suggested_reply_can_be_sent"),
    14: ("test_reliability_core.py", "test_overlong_line_gets_the_same_events_however_split"),
    15: ("test_reliability_client.py", "test_dripping_mail_reply_times_out"),
    16: ("test_reliability_client.py", "test_no_credentials_without_tls"),
}


@pytest.mark.parametrize("item", sorted(ISSUE_10))
def test_issue_10_finding_has_its_regression_test(item: int) -> None:
    # issue 10 items 1-16: each finding keeps the regression test that reproduced it
    filename, name = ISSUE_10[item]
    tree = ast.parse((Path(__file__).parent / filename).read_text(encoding="utf-8"))
    tests = {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    assert name in tests, f"issue 10 item {item}: {name} is missing from {filename}"
