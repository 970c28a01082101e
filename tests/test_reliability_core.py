"""Issue 10, the core's part: reliability fixes found by attacks on `serve`.

- item 1: an LMTP message refused as a whole (too large, a line too long, BDAT over the
  size) is refused for every recipient (RFC 2033 §4.2), in the core and over the wire.
- item 2: LMTP DATA/BDAT without an accepted recipient gets 503 (RFC 2033 §4.2).
- item 12: a SCRAM client nonce too long for the 334 challenge gets 501 (RFC 4954 §4).
- item 13: peer text quoted into a reply is escaped and cut so the reply can be sent
  (RFC 5321 §4.5.3.1.5); the property version is in test_fuzz.py.
- item 14: an over-long line during AUTH gets the same reply however it is split.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from sansio_smtp import (
    NEED_DATA,
    PAUSED,
    SERVER,
    Auth,
    Config,
    Connection,
    Event,
    Greeting,
    InvalidCommand,
    InvalidMessage,
    LmtpDelivery,
    Reply,
    State,
)
from sansio_smtp import sasl as sasl_mod
from sansio_smtp.adapters import MemoryHandler

from .helpers import chunked
from .test_server_adapters import KINDS, Peer, Server, _close_peers, make_server

__all__ = ["_close_peers", "make_server"]  # fixtures used here, defined there

LMTP_EXT = {"PIPELINING": (), "CHUNKING": (), "ENHANCEDSTATUSCODES": (), "SIZE": ()}
RECIPIENTS = ("one", "two", "three")


class ReplyingServer:
    """A server Connection that answers everything with default_reply and records the
    replies it sent, in order."""

    def __init__(self, config: Config, answers: dict[type[Event], Reply] | None = None) -> None:
        self.conn = Connection(SERVER, config)
        self.conn.send(Greeting(lines="mx.example LMTP"))
        self.replies: list[Reply] = []
        self.events: list[Event] = []
        self.answers = answers or {}

    def feed(self, data: bytes, sizes: list[int] | None = None) -> None:
        for piece in chunked(data, sizes) if sizes else [data]:
            self.conn.receive_data(piece)
            self.serve()

    def serve(self) -> None:
        conn = self.conn
        owed: Event | None = None
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                return
            if event is PAUSED:
                question = owed if owed is not None else conn.pending[0]
                reply = self.answers.get(type(question)) or conn.default_reply(question)
                owed = None
                conn.send(reply)
                self.replies.append(reply)
                continue
            assert isinstance(event, Event)
            self.events.append(event)
            if not isinstance(event, Reply):
                owed = event


def _lmtp_config() -> Config:
    return Config(lmtp=True, extensions=LMTP_EXT, max_message_size=1000)


def _envelope() -> list[bytes]:
    return [
        b"LHLO c.example\r\n",
        b"MAIL FROM:<a@b.example>\r\n",
        *(f"RCPT TO:<{r}@d.example>\r\n".encode() for r in RECIPIENTS),
    ]


_TOO_LARGE = b"x" * 80 + b"\r\n"
REFUSED_CONTENT: dict[str, tuple[bytes, int]] = {
    # RFC 1870 §6.1: 552 5.3.4 over the size
    "DATA too large": (b"DATA\r\n" + _TOO_LARGE * 20 + b".\r\n", 552),
    # RFC 5321 §4.5.3.1.6 / §4.5.3.1.10: 500 Line too long
    "DATA line too long": (b"DATA\r\n" + b"y" * 1200 + b"\r\n.\r\n", 500),
    # RFC 3030 §2 / RFC 1870 §6.1: BDAT over the size, 552
    "BDAT too large": (b"BDAT 1500 LAST\r\n" + b"z" * 1500, 552),
}


def _lmtp_refused(content: bytes, *, pipelined: bool, sizes: list[int] | None) -> ReplyingServer:
    server = ReplyingServer(_lmtp_config())
    lines = [*_envelope(), content, b"NOOP\r\n"]
    if pipelined:
        server.feed(b"".join(lines), sizes)
    else:
        for line in lines:
            server.feed(line, sizes)
    return server


@pytest.mark.parametrize("case", REFUSED_CONTENT)
@pytest.mark.parametrize("pipelined", [False, True])
@pytest.mark.parametrize("sizes", [None, [1], [7, 300]])
def test_lmtp_refused_message_is_refused_for_every_recipient(
    case: str, pipelined: bool, sizes: list[int] | None
) -> None:
    # issue 10 item 1; RFC 2033 §4.2: one reply per accepted recipient after the message;
    # a message the server refuses is delivered to none of them, so none may get 250.
    content, code = REFUSED_CONTENT[case]
    server = _lmtp_refused(content, pipelined=pipelined, sizes=sizes)
    assert any(isinstance(e, InvalidMessage) for e in server.events)
    codes = [r.code for r in server.replies]
    # LHLO, MAIL, 3 x RCPT, (DATA 354), then one reply per recipient, then NOOP
    per_recipient = codes[-1 - len(RECIPIENTS) : -1]
    assert per_recipient == [code] * len(RECIPIENTS), codes
    assert codes[-1] == 250  # the session goes on (NOOP)
    assert server.conn.state is State.READY
    assert not server.conn.pending


def test_lmtp_refusal_follows_the_reply_sent_about_the_first_recipient() -> None:
    # issue 10 item 1: an application that answers the InvalidMessage with its own
    # refusal gets that refusal repeated for the other recipients (RFC 2033 §4.2).
    conn = Connection(SERVER, _lmtp_config())
    conn.send(Greeting(lines="mx"))
    for line in _envelope():
        conn.receive_data(line)
        conn.send(conn.default_reply(conn.next_event()))
    conn.receive_data(REFUSED_CONTENT["DATA too large"][0])
    conn.send(conn.default_reply(conn.next_event()))  # 354
    event = conn.next_event()
    while not isinstance(event, InvalidMessage):
        event = conn.next_event()
    own = Reply(code=552, lines="Too big for us", enhanced="5.3.4")
    conn.send(own)
    for _ in RECIPIENTS[1:]:
        assert conn.next_event() is PAUSED
        owed = conn.pending[0]
        assert isinstance(owed, LmtpDelivery)
        assert conn.default_reply(owed) == own
        conn.send(conn.default_reply(owed))
    assert conn.state is State.READY and not conn.pending


def test_lmtp_accepted_message_still_delivered_to_each() -> None:
    # RFC 2033 §4.2: an accepted message gets a 250 per recipient, naming it
    server = ReplyingServer(_lmtp_config())
    server.feed(b"".join([*_envelope(), b"DATA\r\nhi\r\n.\r\n"]))
    assert [r.code for r in server.replies[-len(RECIPIENTS) :]] == [250] * len(RECIPIENTS)
    texts = [r.lines[0] for r in server.replies[-len(RECIPIENTS) + 1 :]]
    assert texts == [f"<{r}@d.example> delivered" for r in RECIPIENTS[1:]]
    # the next message, refused, does not inherit anything from this one and vice versa
    server.feed(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<x@d.example>\r\nRCPT TO:<y@d.example>\r\n")
    server.feed(REFUSED_CONTENT["BDAT too large"][0])
    assert [r.code for r in server.replies[-2:]] == [552, 552]
    server.feed(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<x@d.example>\r\nRCPT TO:<y@d.example>\r\n")
    server.feed(b"BDAT 2 LAST\r\nok")
    assert [r.code for r in server.replies[-2:]] == [250, 250]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", REFUSED_CONTENT)
def test_lmtp_refused_message_over_the_wire(
    kind: str, case: str, make_server: Callable[..., Server]
) -> None:
    # issue 10 item 1: `serve --lmtp --max-size 1000` answered 552, then 250 "delivered"
    # for recipients 2..n of a message it had not stored. RFC 2033 §4.2.
    content, code = REFUSED_CONTENT[case]
    handler = MemoryHandler()
    config = Config(hostname="mx.test", lmtp=True, extensions=LMTP_EXT, max_message_size=1000)
    server = make_server(kind, handler, config=config)
    peer = Peer(server.port)
    peer.expect(220)
    peer.expect(250, "LHLO c.example")
    peer.expect(250, "MAIL FROM:<a@b.example>")
    for r in RECIPIENTS:
        peer.expect(250, f"RCPT TO:<{r}@d.example>")
    if content.startswith(b"DATA"):
        peer.expect(354, "DATA")
        content = content[len(b"DATA\r\n") :]
    peer.send(content)
    for _ in RECIPIENTS:
        got, lines = peer.read_reply()
        assert got == code, lines
    peer.expect(250, "NOOP")
    assert handler.messages == []


# ------------------------------------------------------------------------ item 2


@pytest.mark.parametrize("command", [b"DATA\r\n", b"BDAT 3 LAST\r\nabc"])
def test_lmtp_data_without_recipient_is_503(command: bytes) -> None:
    # issue 10 item 2; RFC 2033 §4.2: "If there were no successful RCPT commands in the
    # mail transaction, the DATA command MUST fail with a 503 reply code." BDAT stands
    # for DATA (RFC 3030 §2) and gets the same.
    server = ReplyingServer(_lmtp_config())
    server.feed(b"LHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<bad>\r\n" + command)
    refused = server.events[-1]
    assert isinstance(refused, InvalidCommand)
    assert refused.reply_hint.code == 503
    assert server.replies[-1].code == 503


def test_smtp_data_without_recipient_is_still_554() -> None:
    # RFC 5321 §3.3: SMTP may answer 503 or 554; this library keeps 554 there.
    conn = Connection(SERVER, Config())
    conn.send(Greeting(lines="mx"))
    for line in (b"EHLO c\r\n", b"MAIL FROM:<a@b.example>\r\n"):
        conn.receive_data(line)
        conn.send(conn.default_reply(conn.next_event()))
    conn.receive_data(b"DATA\r\n")
    event = conn.next_event()
    assert isinstance(event, InvalidCommand) and event.reply_hint.code == 554


# ----------------------------------------------------------------------- item 12


def _scram_client_first(nonce_length: int) -> bytes:
    return b"n,,n=carol,r=" + b"N" * nonce_length


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-1", "SCRAM-SHA-256"])
def test_scram_long_client_nonce_is_refused_with_501(mechanism: str) -> None:
    # issue 10 item 12: the server-first-message repeats the client nonce; a 334 line is
    # limited like any reply line (RFC 4954 §4, RFC 5321 §4.5.3.1.5), so a nonce that
    # cannot fit is refused as malformed (501 5.5.2), not answered with a 451.
    server = sasl_mod.server_mechanism(mechanism, mock_key=b"k" * 32)
    step = server.start(_scram_client_first(300))
    assert isinstance(step, sasl_mod.Failure)
    assert step.reply_hint.code == 501
    assert str(step.reply_hint.enhanced) == "5.5.2"


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-1", "SCRAM-SHA-256"])
def test_scram_longest_accepted_nonce_fits_a_334_line(mechanism: str) -> None:
    # issue 10 item 12: every nonce the server accepts gives a challenge that can be sent
    # (with a 64-octet salt and a 10-digit iteration count, the worst the bound allows).
    for length in range(200, 320):
        server = sasl_mod.server_mechanism(mechanism, mock_key=b"k" * 32)
        step = server.start(_scram_client_first(length))
        if isinstance(step, sasl_mod.Failure):
            break
        keys = sasl_mod.scram_stored_keys(
            "pw", b"s" * 64, 1, hash="sha1" if mechanism == "SCRAM-SHA-1" else "sha256"
        )
        keys = sasl_mod.ScramStoredKeys(
            salt=keys.salt,
            iterations=2_000_000_000,
            stored_key=keys.stored_key,
            server_key=keys.server_key,
        )
        challenge = server.supply(keys)
        assert isinstance(challenge, sasl_mod.Challenge)
        assert len(b"334 " + base64.b64encode(challenge.data) + b"\r\n") <= 512
    else:
        raise AssertionError("no nonce length was refused")
    assert length > 200  # ordinary nonces (24-48 characters) are far below the bound


@pytest.mark.parametrize("kind", KINDS)
def test_scram_long_nonce_over_the_wire(kind: str, make_server: Callable[..., Server]) -> None:
    # issue 10 item 12: the client got 451 and the server logged a traceback per attempt;
    # now 501 and nothing is logged.
    config = Config(
        hostname="mx.test",
        extensions={"AUTH": ("SCRAM-SHA-256",), "ENHANCEDSTATUSCODES": ()},
        allow_plaintext_auth=True,
    )
    server = make_server(kind, None, auth={"carol": "s3cret"}, config=config)
    peer = Peer(server.port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    first = base64.b64encode(_scram_client_first(400)).decode()
    assert peer.expect(501, f"AUTH SCRAM-SHA-256 {first}") == [
        "5.5.2 Malformed authentication data"
    ]
    peer.expect(250, "NOOP")
    assert not server.errors


# ----------------------------------------------------------------------- item 13

_JUNK = "\x01" * 130


def _ehlo_server(config: Config) -> Connection:
    conn = Connection(SERVER, config)
    conn.send(Greeting(lines="mx"))
    hello = b"LHLO c\r\n" if config.lmtp else b"EHLO c\r\n"
    conn.receive_data(hello)
    conn.send(conn.default_reply(conn.next_event()))
    return conn


FULL_EXT = {
    "PIPELINING": (),
    "SIZE": (),
    "8BITMIME": (),
    "DSN": (),
    "SMTPUTF8": (),
    "CHUNKING": (),
    "MT-PRIORITY": (),
    "DELIVERBY": (),
    "ENHANCEDSTATUSCODES": (),
    "AUTH": ("PLAIN",),
}


@pytest.mark.parametrize(
    "line",
    [
        f"MAIL FROM:<a@b.example> X={_JUNK}",
        f"MAIL FROM:<a@b.example> SIZE={_JUNK}",
        f"MAIL FROM:<a@b.example> ENVID={_JUNK}",
        f"MAIL FROM:<a@b.example> {_JUNK}=1",
        f"MAIL FROM:<a@b.example> {'K' * 480}=1",
        f"MAIL FROM:<a@b.example> {'K' * 480}",
        f"MAIL FROM:<a@b.example> BODY={'B' * 470}",
        f"MAIL FROM:<a@b.example> MT-PRIORITY={'9' * 470}",
        f"MAIL FROM:<a@b.example> SIZE=1 SIZE={'1' * 200} {'S' * 200}",
        f"FOO{_JUNK}",
        f"STARTTLS {_JUNK}",
        f"HELP {_JUNK}",
    ],
)
def test_reply_hint_quoting_peer_text_can_be_sent(line: str) -> None:
    # issue 10 item 13: a hint quoting 130 escaped controls was 590 octets and send()
    # refused it (serve answered 451). RFC 5321 §4.5.3.1.5: a reply line is at most 512
    # octets with CRLF, so what is quoted is escaped and cut.
    conn = _ehlo_server(Config(extensions=FULL_EXT))
    conn.receive_data(line.encode() + b"\r\n")
    event = conn.next_event()
    assert isinstance(event, InvalidCommand)
    wire = conn.send(conn.default_reply(event))
    assert len(wire) <= 512 and wire.isascii()


def test_rcpt_notify_junk_reply_can_be_sent() -> None:
    # issue 10 item 13: NOTIFY= followed by junk
    conn = _ehlo_server(Config(extensions=FULL_EXT))
    conn.receive_data(b"MAIL FROM:<a@b.example>\r\n")
    conn.send(conn.default_reply(conn.next_event()))
    for value in (_JUNK, "N" * 480):
        conn.receive_data(f"RCPT TO:<c@d.example> NOTIFY={value}\r\n".encode())
        event = conn.next_event()
        assert isinstance(event, InvalidCommand)
        assert len(conn.send(conn.default_reply(event))) <= 512


def test_lmtp_delivery_reply_with_a_long_path_can_be_sent() -> None:
    # issue 10 item 13: the per-recipient 250 names the recipient, the peer's text
    conn = _ehlo_server(Config(lmtp=True))
    long_path = "l" * 64 + "@" + ".".join(["d" * 60] * 7)
    for line in (b"MAIL FROM:<a@b.example>", b"RCPT TO:<x@y.example>", f"RCPT TO:<{long_path}>"):
        conn.receive_data((line if isinstance(line, bytes) else line.encode()) + b"\r\n")
        conn.send(conn.default_reply(conn.next_event()))
    conn.receive_data(b"DATA\r\n")
    conn.send(conn.default_reply(conn.next_event()))
    conn.receive_data(b"hi\r\n.\r\n")
    while conn.next_event() is not PAUSED:
        pass
    conn.send(conn.default_reply(conn.pending[0]))
    assert conn.next_event() is PAUSED
    wire = conn.send(conn.default_reply(conn.pending[0]))
    assert wire.startswith(b"250 ") and len(wire) <= 512


# ----------------------------------------------------------------------- item 14


def _auth_events(wire: bytes, sizes: list[int] | None) -> list[Event]:
    config = Config(extensions={"AUTH": ("PLAIN", "LOGIN")}, allow_plaintext_auth=True)
    # AUTH LOGIN is answered with a challenge, so the next line is inside the exchange
    server = ReplyingServer(config, {Auth: Reply.auth_challenge(b"Username:")})
    server.feed(wire, sizes)
    return server.events


@pytest.mark.parametrize(
    "wire",
    [
        # an over-long response inside the exchange (RFC 4954 §4: 12288 octets at most)
        b"EHLO c\r\nAUTH LOGIN\r\n" + b"A" * 13000 + b"\r\nNOOP\r\n",
        # an over-long AUTH command line
        b"EHLO c\r\nAUTH PLAIN " + b"A" * 13000 + b"\r\nNOOP\r\n",
        # an over-long ordinary command line (RFC 5321 §4.5.3.1.4)
        b"EHLO c\r\nNOOP " + b"x" * 700 + b"\r\nNOOP\r\n",
    ],
)
def test_overlong_line_gets_the_same_events_however_split(wire: bytes) -> None:
    # issue 10 item 14: 5.5.2 when chunked, 5.5.6 in one write; now the same events
    # (and the same reply) for any split.
    whole = _auth_events(wire, None)
    refused = [e for e in whole if isinstance(e, InvalidCommand)]
    assert len(refused) == 1 and refused[0].reply_hint.code == 500
    for sizes in ([1], [100], [4096], [511, 2, 7]):
        assert _auth_events(wire, sizes) == whole, sizes
