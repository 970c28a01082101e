"""The sync and asyncio SMTP clients (sansio_smtp.adapters.client: SMTPClient / AsyncSMTPClient)
and the ``send`` CLI, against an in-test server on 127.0.0.1 built on the core's server
Connection (``FakeServer`` below: threads, TLS, scripted refusals).

Every client test runs for both flavours: the asyncio client is driven through
``AsyncFacade``, which runs each coroutine to completion on a private event loop, so one
test body checks both. Every socket call has a timeout and every server thread is joined,
so no test can hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import email.policy
import gc
import inspect
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sansio_smtp import (
    NEED_DATA,
    PAUSED,
    SERVER,
    Auth,
    AuthResponse,
    Bdat,
    Config,
    Connection,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfMessage,
    Event,
    Greeting,
    Helo,
    InvalidMessage,
    Lhlo,
    MailFrom,
    MessageData,
    RcptTo,
    Reply,
    Rset,
    StartTLS,
    State,
    sasl,
)
from sansio_smtp.adapters.client import (
    AsyncSMTPClient,
    SendResult,
    SMTPAuthError,
    SMTPClient,
    SMTPConnectError,
    SMTPDataError,
    SMTPError,
    SMTPHeloError,
    SMTPNotSupportedError,
    SMTPProtocolViolation,
    SMTPRecipientsRefused,
    SMTPReplyError,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPTimeoutError,
    SMTPTLSError,
    TLSMode,
    flatten_message,
)

from .certs import TestCerts, test_certs
from .loopback import ThreadedListener

ROOT = Path(__file__).resolve().parent.parent

MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: Bob <bob@example.net>\r\n"
    b"Subject: test\r\n"
    b"\r\n"
    b"Hello Bob,\r\n"
    b".a line that starts with a dot\r\n"
    b"Bye.\r\n"
)

# ================================================================== the test server

#: (server connection, received event) -> the reply (a list for LMTP's per-recipient
#: replies after the data), or None for the core's default_reply.
Answer = Callable[[Connection, Event], "Reply | list[Reply] | None"]


@dataclass
class Received:
    """A transaction the server accepted."""

    mail: MailFrom
    rcpts: list[RcptTo]
    content: bytes
    bdat_chunks: list[int] = field(default_factory=list)  # sizes, when sent with BDAT


@dataclass
class Session:
    """What one connection did: the raw reads (one entry per recv) and every event."""

    reads: list[bytes] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    tls: bool = False
    improper_pipelining: bool = False

    @property
    def client_bytes(self) -> bytes:
        return b"".join(self.reads)

    def commands(self) -> list[type[Event]]:
        return [type(e) for e in self.events if not isinstance(e, MessageData)]


class _Auth:
    """SASL on the server side for the tests: users -> passwords."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self.mech: sasl.ServerMechanism | None = None

    def step(self, step: sasl.ServerStep) -> Reply:
        while isinstance(step, sasl.NeedCredentials):
            assert self.mech is not None
            if isinstance(step, sasl.LookupScramKeys):
                password = self.users.get(step.authcid)
                if password is None:
                    step = self.mech.supply(sasl.Verdict.UNKNOWN_USER)
                else:
                    keys = sasl.scram_stored_keys(password, b"salt-of-16-bytes", 4096)
                    step = self.mech.supply(keys)
            elif isinstance(step, sasl.VerifyPassword):
                ok = self.users.get(step.authcid) == step.password
                step = self.mech.supply(ok)
            elif isinstance(step, sasl.VerifyToken):  # the "password" is the token here
                ok = step.token in self.users.values()
                step = self.mech.supply(ok if ok else sasl.TokenRejected())
            else:  # pragma: no cover
                raise AssertionError(step)
        if isinstance(step, sasl.Challenge):
            return Reply.auth_challenge(step.data)
        self.mech = None
        if isinstance(step, sasl.Success):
            return Reply(code=235, lines="Authentication successful", enhanced="2.7.0")
        assert isinstance(step, sasl.Failure)
        return step.reply_hint

    def answer(self, event: Event) -> Reply:
        if isinstance(event, Auth):
            self.mech = sasl.server_mechanism(event.mechanism)
            return self.step(self.mech.start(event.initial_response))
        assert isinstance(event, AuthResponse) and self.mech is not None
        if event.data is None:
            return self.step(self.mech.cancel())
        return self.step(self.mech.receive(event.data))


class FakeServer(ThreadedListener):
    """An SMTP/LMTP server on 127.0.0.1 around the core's SERVER Connection, for these
    tests: one thread per connection; STARTTLS (when ``tls`` is given and STARTTLS is in
    the extensions) and implicit TLS; ``answer`` to refuse things; ``users`` for AUTH;
    ``raw`` to replace the whole session with a script (misbehaving servers)."""

    socket_timeout = 10.0

    def __init__(
        self,
        extensions: dict[str, tuple[str, ...]] | None = None,
        *,
        answer: Answer | None = None,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        users: dict[str, str] | None = None,
        greeting: Greeting | None = None,
        raw: Callable[[socket.socket, threading.Event], None] | None = None,
        **config: Any,
    ) -> None:
        self.config = Config(hostname="mx.test", extensions=extensions or {}, **config)
        self.answer = answer
        self.tls = tls
        self.implicit_tls = implicit_tls
        self.users = users
        self.greeting = greeting or Greeting(lines="mx.test ESMTP test server")
        self.raw = raw
        self.messages: list[Received] = []
        self.sessions: list[Session] = []
        self._listen()

    def _new_connection(self) -> Session:
        session = Session()
        self.sessions.append(session)
        return session

    def _handle(self, sock: socket.socket, session: Session) -> None:
        if self.raw is not None:
            self.raw(sock, self._stopping)
        else:
            self._session(sock, session)

    def _wrap(self, sock: socket.socket, opened: list[socket.socket]) -> socket.socket:
        """TLS on ``sock`` (server side), tracked so stop() can shut it down."""
        assert self.tls is not None
        tls_sock = self.tls.wrap_socket(sock, server_side=True)
        opened.append(tls_sock)
        self._track(tls_sock)
        return tls_sock

    def _session(self, sock: socket.socket, session: Session) -> None:
        opened: list[socket.socket] = []  # TLS sockets made in this session
        try:
            self._dialogue(sock, session, opened)
        finally:
            for tls_sock in opened:
                with contextlib.suppress(OSError):
                    tls_sock.close()

    def _dialogue(self, sock: socket.socket, session: Session, opened: list[socket.socket]) -> None:
        conn = Connection(SERVER, self.config, tls=self.implicit_tls)
        if self.implicit_tls:
            sock = self._wrap(sock, opened)
            session.tls = True
        auth = _Auth(self.users or {})
        sock.sendall(conn.send(self.greeting))
        mail: MailFrom | None = None
        rcpts: list[RcptTo] = []
        chunks: list[bytes] = []
        sizes: list[int] = []
        while conn.state is not State.CLOSED:
            event = conn.next_event()
            if event is NEED_DATA:
                data = sock.recv(65536)
                session.reads.append(data)
                conn.receive_data(data)
                continue
            if event is PAUSED:
                if conn.state is State.TLS:  # RFC 3207: handshake, then start over
                    sock = self._wrap(sock, opened)
                    conn.tls_established()
                    session.tls = True
                    continue
                # RFC 3030 §2: a BDAT chunk (not LAST) was read whole; answer it now.
                assert conn.pending and isinstance(conn.pending[0], Bdat)
                event = conn.pending[0]
            else:
                assert isinstance(event, Event)
                session.events.append(event)
                session.improper_pipelining = conn.improper_pipelining
                if isinstance(event, ConnectionClosed):
                    return
                if isinstance(event, MessageData):
                    chunks.append(bytes(event.data))
                    continue
                if isinstance(event, Bdat):
                    sizes.append(event.size)
                    continue  # answered once its octets are read
            replies = self._replies(conn, event, auth)
            first = replies[0]
            if isinstance(event, MailFrom) and first.is_positive:
                mail, rcpts, chunks, sizes = event, [], [], []
            elif isinstance(event, RcptTo) and first.is_positive:
                rcpts.append(event)
            elif isinstance(event, (EndOfMessage, InvalidMessage)) or (
                isinstance(event, Bdat) and not first.is_positive
            ):
                delivered = any(r.is_positive for r in replies)
                if isinstance(event, EndOfMessage) and mail is not None and delivered:
                    with self._lock:
                        self.messages.append(Received(mail, rcpts, b"".join(chunks), sizes))
                mail, rcpts, chunks, sizes = None, [], [], []
            elif isinstance(event, Rset):
                mail, rcpts, chunks, sizes = None, [], [], []
            for reply in replies:
                sock.sendall(conn.send(reply))

    def _replies(self, conn: Connection, event: Event, auth: _Auth) -> list[Reply]:
        answer = self.answer(conn, event) if self.answer is not None else None
        if answer is None:
            if isinstance(event, (Auth, AuthResponse)) and self.users is not None:
                answer = auth.answer(event)
            elif isinstance(event, EndOfMessage) and self.config.lmtp:
                count = max(1, len(conn.accepted_recipients))
                answer = [Reply(code=250, lines="delivered", enhanced="2.0.0")] * count
            else:
                answer = conn.default_reply(event)
        return answer if isinstance(answer, list) else [answer]


# ================================================================ both client flavours


class AsyncFacade:
    """The asyncio client behind the sync client's interface: each coroutine runs to
    completion on a private event loop (the same one for the client's whole life)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = AsyncSMTPClient(*args, **kwargs)

    def __enter__(self) -> AsyncFacade:
        try:
            self.loop.run_until_complete(self.client.__aenter__())
        except BaseException:
            self._close_loop()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.loop.run_until_complete(self.client.__aexit__(*exc))
        finally:
            self._close_loop()

    def _close_loop(self) -> None:
        if not self.loop.is_closed():
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def connect(self) -> None:
        try:
            self.loop.run_until_complete(self.client.connect())
        except BaseException:
            self._close_loop()
            raise

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if inspect.iscoroutinefunction(attr):

            def call(*args: Any, **kwargs: Any) -> Any:
                return self.loop.run_until_complete(attr(*args, **kwargs))

            return call
        return attr


Client = Any  # SMTPClient or AsyncFacade: the same methods, called synchronously


@pytest.fixture(params=["sync", "asyncio"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make(flavour: str) -> Callable[..., Client]:
    """make(port, **options) -> an unconnected client of this test's flavour."""

    def factory(port: int, **kwargs: Any) -> Client:
        kwargs.setdefault("timeout", 10.0)
        kwargs.setdefault("tls", TLSMode.PLAIN)
        if flavour == "sync":
            return SMTPClient("127.0.0.1", port, **kwargs)
        return AsyncFacade("127.0.0.1", port, **kwargs)

    return factory


@pytest.fixture
def certs() -> TestCerts:
    return test_certs()


def refuse(
    match: Callable[[Event], bool], reply: Reply
) -> Callable[[Connection, Event], Reply | None]:
    """An ``answer`` that refuses the events ``match`` picks with ``reply``."""

    def answer(conn: Connection, event: Event) -> Reply | None:
        return reply if match(event) else None

    return answer


def rcpt_is(*addresses: str) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, RcptTo) and str(e.forward_path) in addresses


PIPELINING = {"PIPELINING": (), "ENHANCEDSTATUSCODES": ()}
ESMTP = {"PIPELINING": (), "8BITMIME": (), "ENHANCEDSTATUSCODES": (), "SIZE": ()}
CHUNKING = {"PIPELINING": (), "CHUNKING": (), "8BITMIME": (), "ENHANCEDSTATUSCODES": ()}
USER_UNKNOWN = Reply(code=550, lines="User unknown", enhanced="5.1.1")


# ============================================================================ basics


@pytest.mark.parametrize(
    "extensions", [{}, PIPELINING, ESMTP, CHUNKING], ids=lambda e: "+".join(e) or "none"
)
def test_message_arrives_byte_identical(make: Callable[..., Client], extensions: dict) -> None:
    # RFC 5321 §4.5.2: dot-stuffing is undone by the server; BDAT (RFC 3030 §2) sends the
    # octets as they are. Either way the server gets the message we gave.
    with FakeServer(extensions) as server:
        with make(server.port) as client:
            result = client.sendmail("alice@example.org", ["bob@example.net"], MESSAGE)
            assert isinstance(result, SendResult) and result.ok
            assert list(result.accepted) == ["bob@example.net"] and not result.refused
            assert result.data_reply is not None and result.data_reply.code == 250
        server.wait_closed()
    assert server.errors == []
    (msg,) = server.messages
    assert msg.content == MESSAGE
    assert str(msg.mail.reverse_path) == "alice@example.org"
    assert [str(r.forward_path) for r in msg.rcpts] == ["bob@example.net"]
    assert bool(msg.bdat_chunks) == ("CHUNKING" in extensions)


def test_several_messages_per_connection(make: Callable[..., Client]) -> None:
    # RFC 5321 §3.3: a session may hold any number of transactions
    with FakeServer(ESMTP) as server:
        with make(server.port) as client:
            for i in range(5):
                client.sendmail(
                    "a@example.org", f"r{i}@example.net", b"Subject: %d\r\n\r\nx\r\n" % i
                )
        server.wait_closed()
    assert [m.content for m in server.messages] == [
        b"Subject: %d\r\n\r\nx\r\n" % i for i in range(5)
    ]
    assert len(server.sessions) == 1 and server.errors == []


def test_bare_line_endings_and_missing_final_crlf(make: Callable[..., Client]) -> None:
    # RFC 5321 §2.3.8: no bare CR/LF on the wire; §4.1.1.4: content ends with CRLF
    for extensions in ({}, CHUNKING):
        with FakeServer(extensions) as server:
            with make(server.port) as client:
                client.sendmail("a@example.org", ["b@example.net"], b"Subject: x\n\nline\rend")
            server.wait_closed()
        assert server.messages[0].content == b"Subject: x\r\n\r\nline\r\nend\r\n"


def test_no_pipelining_unless_advertised(make: Callable[..., Client]) -> None:
    # RFC 2920 §3.1: without PIPELINING the client waits for each reply; a server that
    # rejects improper pipelining (554) proves it.
    with FakeServer({}, reject_improper_pipelining=True) as server:
        with make(server.port) as client:
            result = client.sendmail("a@example.org", ["b@example.net", "c@example.net"], MESSAGE)
            assert len(result.accepted) == 2
        server.wait_closed()
    assert not server.sessions[0].improper_pipelining
    assert server.messages[0].content == MESSAGE


def test_pipelined_group_is_one_write(make: Callable[..., Client]) -> None:
    # RFC 2920 §3.1: MAIL, the RCPTs and DATA go as one group, and DATA ends it: the
    # message content waits for the 354.
    with FakeServer(PIPELINING, reject_improper_pipelining=True) as server:
        with make(server.port) as client:
            client.sendmail("a@example.org", ["b@example.net", "c@example.net"], MESSAGE)
        server.wait_closed()
    session = server.sessions[0]
    group = [r for r in session.reads if r.startswith(b"MAIL")]
    assert group == [
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
        b"RCPT TO:<c@example.net>\r\nDATA\r\n"
    ]
    assert not session.improper_pipelining and server.errors == []


def test_bdat_transaction_is_one_write(make: Callable[..., Client]) -> None:
    # RFC 3030 §4.2: with PIPELINING, BDAT LAST and its octets follow the RCPTs at once
    with FakeServer(CHUNKING, reject_improper_pipelining=True) as server:
        with make(server.port) as client:
            client.sendmail("a@example.org", ["b@example.net"], MESSAGE)
        server.wait_closed()
    reads = server.sessions[0].reads
    expected = (
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
        b"BDAT %d LAST\r\n" % len(MESSAGE) + MESSAGE
    )
    assert expected in reads
    assert server.messages[0].bdat_chunks == [len(MESSAGE)]


@pytest.mark.parametrize("pipelining", [True, False])
def test_bdat_several_chunks(make: Callable[..., Client], pipelining: bool) -> None:
    # RFC 3030 §2: chunks of the given sizes, the last one marked LAST
    extensions = CHUNKING if pipelining else {"CHUNKING": ()}
    body = MESSAGE * 20
    with FakeServer(extensions, reject_improper_pipelining=True) as server:
        with make(server.port, bdat_chunk_size=1000) as client:
            client.sendmail("a@example.org", ["b@example.net"], body)
        server.wait_closed()
    (msg,) = server.messages
    assert msg.content == body
    assert msg.bdat_chunks == [1000] * (len(body) // 1000) + [len(body) % 1000]
    assert not server.sessions[0].improper_pipelining


def test_binarymime_via_bdat_only(make: Callable[..., Client]) -> None:
    # RFC 3030 §3: BODY=BINARYMIME content only with BDAT; NULs and a line longer than
    # 998 octets (RFC 5321 §4.5.3.1.6) need it, and go exactly as given.
    body = b"Subject: bin\r\n\r\n\x00\x01\xff" + b"x" * 2000 + b"\n"
    with FakeServer({**CHUNKING, "BINARYMIME": ()}) as server:
        with make(server.port) as client:
            client.sendmail("a@example.org", ["b@example.net"], body)
        server.wait_closed()
    (msg,) = server.messages
    assert msg.content == body and msg.mail.params["BODY"] == "BINARYMIME"
    with FakeServer(ESMTP) as server:
        with make(server.port) as client:
            with pytest.raises(SMTPNotSupportedError, match="BINARYMIME"):
                client.sendmail("a@example.org", ["b@example.net"], body)
            client.sendmail("a@example.org", ["b@example.net"], MESSAGE)  # still usable
        server.wait_closed()
    assert server.sessions[0].commands().count(MailFrom) == 1  # the refused one never went
    assert [m.content for m in server.messages] == [MESSAGE]


def test_8bitmime_chosen_automatically(make: Callable[..., Client]) -> None:
    # RFC 6152 §3: 8-bit content with BODY=8BITMIME, and only when offered
    body = "Subject: grüße\r\n\r\nÄpfel\r\n".encode()
    with FakeServer(ESMTP) as server:
        with make(server.port) as client:
            client.sendmail("a@example.org", ["b@example.net"], body)
            client.sendmail("a@example.org", ["b@example.net"], MESSAGE)
        server.wait_closed()
    assert server.messages[0].mail.params["BODY"] == "8BITMIME"
    assert server.messages[0].content == body
    assert "BODY" not in server.messages[1].mail.params
    with FakeServer(PIPELINING) as server:
        with make(server.port) as client, pytest.raises(SMTPNotSupportedError, match="8BITMIME"):
            client.sendmail("a@example.org", ["b@example.net"], body)
        server.wait_closed()
    assert server.messages == [] and MailFrom not in server.sessions[0].commands()


def test_size_declared_and_limit_honoured(make: Callable[..., Client]) -> None:
    # RFC 1870 §3, §6.1: SIZE=<octets> on MAIL; nothing sent when over the limit
    with FakeServer({**ESMTP, "SIZE": ("200",)}) as server:
        with make(server.port) as client:
            client.sendmail("a@example.org", ["b@example.net"], MESSAGE)
            with pytest.raises(SMTPNotSupportedError, match="SIZE"):
                client.sendmail("a@example.org", ["b@example.net"], MESSAGE * 10)
        server.wait_closed()
    (msg,) = server.messages
    assert msg.mail.params["SIZE"] == str(len(MESSAGE))
    assert server.sessions[0].commands().count(MailFrom) == 1


def test_rcptmax_splits_transactions(make: Callable[..., Client]) -> None:
    # RFC 9422 §4.2: no more than RCPTMAX recipients per transaction
    recipients = [f"r{i}@example.net" for i in range(5)]
    with FakeServer({**PIPELINING, "LIMITS": ("RCPTMAX=2",)}) as server:
        with make(server.port) as client:
            result = client.sendmail("a@example.org", recipients, MESSAGE)
        server.wait_closed()
    assert list(result.accepted) == recipients and len(result.data_replies) == 3
    assert [[str(r.forward_path) for r in m.rcpts] for m in server.messages] == [
        recipients[0:2],
        recipients[2:4],
        recipients[4:5],
    ]
    assert all(m.content == MESSAGE for m in server.messages)


# ======================================================================== refusals


@pytest.mark.parametrize(
    "extensions", [{}, PIPELINING, CHUNKING], ids=["lockstep", "pipelined", "bdat"]
)
def test_per_recipient_refusal(make: Callable[..., Client], extensions: dict) -> None:
    # RFC 5321 §4.1.1.3: each RCPT is accepted or refused on its own; with PIPELINING the
    # replies are matched to the commands in order (RFC 2920 §3.1).
    answer = refuse(rcpt_is("bad@example.net"), USER_UNKNOWN)
    rcpts = ["one@example.net", "bad@example.net", "two@example.net"]
    with FakeServer(extensions, answer=answer) as server:
        with make(server.port) as client:
            result = client.sendmail("a@example.org", rcpts, MESSAGE)
        server.wait_closed()
    assert list(result.accepted) == ["one@example.net", "two@example.net"]
    assert result.refused == {"bad@example.net": USER_UNKNOWN}
    refusal = result.refused["bad@example.net"]
    assert refusal.code == 550 and str(refusal.enhanced) == "5.1.1"
    assert [str(r.forward_path) for r in server.messages[0].rcpts] == rcpts[::2]


@pytest.mark.parametrize(
    "extensions", [{}, PIPELINING, CHUNKING], ids=["lockstep", "pipelined", "bdat"]
)
def test_all_recipients_refused_then_next_message(
    make: Callable[..., Client], extensions: dict
) -> None:
    # RFC 5321 §3.3: no valid recipient -> DATA is refused; the transaction is then reset
    # (RSET, §4.1.1.5) and the session goes on.
    answer = refuse(rcpt_is("x@example.net", "y@example.net"), USER_UNKNOWN)
    with FakeServer(extensions, answer=answer) as server:
        with make(server.port) as client:
            with pytest.raises(SMTPRecipientsRefused) as info:
                client.sendmail("a@example.org", ["x@example.net", "y@example.net"], MESSAGE)
            assert info.value.refused == {
                "x@example.net": USER_UNKNOWN,
                "y@example.net": USER_UNKNOWN,
            }
            assert info.value.reply == USER_UNKNOWN
            assert isinstance(info.value, SMTPReplyError)
            client.sendmail("a@example.org", ["ok@example.net"], MESSAGE)
        server.wait_closed()
    assert [m.content for m in server.messages] == [MESSAGE]
    assert server.errors == []


@pytest.mark.parametrize(
    "extensions", [{}, PIPELINING, CHUNKING], ids=["lockstep", "pipelined", "bdat"]
)
def test_sender_refused(make: Callable[..., Client], extensions: dict) -> None:
    # RFC 5321 §4.1.1.2; with PIPELINING the RCPTs and DATA that followed get 503
    # (RFC 2920 §3.1) and are not reported as the cause.
    reply = Reply(code=550, lines="Sender rejected", enhanced="5.7.1")
    answer = refuse(lambda e: isinstance(e, MailFrom) and "spam" in str(e.reverse_path), reply)
    with FakeServer(extensions, answer=answer) as server:
        with make(server.port) as client:
            with pytest.raises(SMTPSenderRefused) as info:
                client.sendmail("spam@example.org", ["b@example.net", "c@example.net"], MESSAGE)
            assert info.value.reply == reply and info.value.sender == "spam@example.org"
            assert info.value.result.refused == {"b@example.net": reply, "c@example.net": reply}
            client.sendmail("good@example.org", ["b@example.net"], MESSAGE)
        server.wait_closed()
    assert [str(m.mail.reverse_path) for m in server.messages] == ["good@example.org"]


@pytest.mark.parametrize(
    "extensions", [{}, PIPELINING, CHUNKING], ids=["lockstep", "pipelined", "bdat"]
)
def test_data_refused(make: Callable[..., Client], extensions: dict) -> None:
    # RFC 5321 §4.1.1.4: the reply to the end of the data decides; a 5xx means no one
    reply = Reply(code=554, lines="Message content rejected", enhanced="5.6.0")
    answer = refuse(lambda e: isinstance(e, EndOfMessage), reply)
    with FakeServer(extensions, answer=answer) as server:
        with make(server.port) as client:
            with pytest.raises(SMTPDataError) as info:
                client.sendmail("a@example.org", ["b@example.net"], MESSAGE)
            assert info.value.reply == reply
            assert info.value.result.refused == {"b@example.net": reply}
            assert client.noop().code == 250  # the session goes on
        server.wait_closed()
    assert server.messages == []


def test_data_command_refused(make: Callable[..., Client]) -> None:
    # RFC 5321 §4.1.1.4: DATA itself may be refused (e.g. 451) instead of 354
    reply = Reply(code=451, lines="Try again later", enhanced="4.3.0")
    with FakeServer(PIPELINING, answer=refuse(lambda e: isinstance(e, Data), reply)) as server:
        with make(server.port) as client:
            with pytest.raises(SMTPDataError) as info:
                client.sendmail("a@example.org", ["b@example.net"], MESSAGE)
            assert info.value.reply == reply and info.value.reply.is_transient
            assert client.noop().code == 250
        server.wait_closed()


def test_421_closes_the_session(make: Callable[..., Client]) -> None:
    # RFC 5321 §3.8: 421 at any point means the server is closing the channel
    reply = Reply(code=421, lines="Service shutting down", enhanced="4.3.2")
    with FakeServer(PIPELINING, answer=refuse(rcpt_is("b@example.net"), reply)) as server:
        client = make(server.port)
        with client:
            with pytest.raises(SMTPRecipientsRefused) as info:
                client.sendmail("a@example.org", ["b@example.net"], MESSAGE)
            assert info.value.reply.code == 421
            assert not client.connected
            with pytest.raises(SMTPServerDisconnected):
                client.sendmail("a@example.org", ["c@example.net"], MESSAGE)
        server.wait_closed()


def test_greeting_554(make: Callable[..., Client]) -> None:
    # RFC 5321 §3.1: 554 instead of 220: no service; the client may only QUIT
    greeting = Greeting(code=554, lines="mx.test no service for you")
    with FakeServer({}, greeting=greeting) as server:
        client = make(server.port)
        with pytest.raises(SMTPConnectError) as info:
            client.connect()
        assert info.value.reply is not None and info.value.reply.code == 554
        assert not client.connected
        server.wait_closed()
    assert server.sessions[0].reads[0] == b"QUIT\r\n"


def test_server_closes_mid_transaction(make: Callable[..., Client]) -> None:
    def script(sock: socket.socket, _stop: threading.Event) -> None:
        sock.sendall(b"220 mx.test ESMTP\r\n")
        assert sock.recv(1000).startswith(b"EHLO")
        sock.sendall(b"250-mx.test\r\n250 PIPELINING\r\n")
        sock.recv(1000)  # MAIL ... DATA
        sock.sendall(b"250 ok\r\n")  # then hang up

    with FakeServer(raw=script) as server:
        client = make(server.port)
        with client:
            with pytest.raises(SMTPServerDisconnected):
                client.sendmail("a@example.org", ["b@example.net"], MESSAGE)
            assert not client.connected
        server.wait_closed()


def test_malformed_reply_is_a_protocol_violation(make: Callable[..., Client]) -> None:
    # RFC 5321 §4.2: Reply-code [ SP textstring ] CRLF
    def script(sock: socket.socket, _stop: threading.Event) -> None:
        sock.sendall(b"220 mx.test ESMTP\r\n")
        sock.recv(1000)
        sock.sendall(b"250 mx.test\r\n")
        sock.recv(1000)
        sock.sendall(b"2x0 what\r\n")
        with contextlib.suppress(OSError):
            sock.recv(1000)

    with FakeServer(raw=script) as server:
        client = make(server.port)
        with client:
            with pytest.raises(SMTPProtocolViolation) as info:
                client.sendmail("a@example.org", ["b@example.net"], MESSAGE)
            assert info.value.__cause__ is not None
            assert not client.connected
        server.wait_closed()


# ==================================================================== EHLO, HELO


def test_helo_fallback(make: Callable[..., Client]) -> None:
    # RFC 5321 §3.2: a server that does not know EHLO says 500/502; the client uses HELO
    reply = Reply(code=502, lines="Command not implemented")
    with FakeServer({}, answer=refuse(lambda e: isinstance(e, Ehlo), reply)) as server:
        with make(server.port) as client:
            assert not client.esmtp and len(client.extensions) == 0
            client.sendmail("a@example.org", ["b@example.net"], MESSAGE)
        server.wait_closed()
    assert server.sessions[0].commands()[:2] == [Ehlo, Helo]
    assert server.messages[0].content == MESSAGE


def test_ehlo_refused_otherwise(make: Callable[..., Client]) -> None:
    reply = Reply(code=550, lines="Go away", enhanced="5.7.1")
    with FakeServer({}, answer=refuse(lambda e: isinstance(e, Ehlo), reply)) as server:
        client = make(server.port)
        with pytest.raises(SMTPHeloError) as info:
            client.connect()
        assert info.value.reply == reply and not client.connected
        server.wait_closed()
    assert server.sessions[0].commands() == [Ehlo, type(server.sessions[0].events[-1])]


def test_ehlo_name(make: Callable[..., Client]) -> None:
    # RFC 5321 §4.1.3: without a name we give our address literal
    with FakeServer({}) as server:
        with make(server.port):
            pass
        with make(server.port, local_hostname="client.example"):
            pass
        server.wait_closed()
    names = [s.events[0] for s in server.sessions]
    assert names == [Ehlo(domain="[127.0.0.1]"), Ehlo(domain="client.example")]


# ============================================================================== TLS


def starttls_server(certs: TestCerts, **kwargs: Any) -> FakeServer:
    extensions = {**kwargs.pop("extensions", ESMTP), "STARTTLS": ()}
    return FakeServer(extensions, tls=certs.server_context(), **kwargs)


@pytest.mark.parametrize("mode", [TLSMode.STARTTLS_REQUIRED, TLSMode.STARTTLS_OPPORTUNISTIC])
def test_starttls(make: Callable[..., Client], certs: TestCerts, mode: TLSMode) -> None:
    # RFC 3207 §4.2: after the handshake the client forgets the EHLO reply and EHLOs again
    with starttls_server(certs) as server:
        with make(server.port, tls=mode, ssl_context=certs.client_context()) as client:
            assert client.tls_active and "STARTTLS" not in client.extensions
            client.sendmail("a@example.org", ["b@example.net"], MESSAGE)
        server.wait_closed()
    session = server.sessions[0]
    assert session.tls and session.commands()[:3] == [Ehlo, StartTLS, Ehlo]
    assert server.messages[0].content == MESSAGE and server.errors == []


def test_starttls_required_but_not_offered(make: Callable[..., Client], certs: TestCerts) -> None:
    # RFC 3207 §4: a client that requires TLS must not go on in plaintext
    with FakeServer(ESMTP) as server:
        client = make(
            server.port, tls=TLSMode.STARTTLS_REQUIRED, ssl_context=certs.client_context()
        )
        with pytest.raises(SMTPTLSError, match="does not offer STARTTLS"):
            client.connect()
        assert not client.connected
        server.wait_closed()
    assert server.sessions[0].commands()[:2] == [Ehlo, type(server.sessions[0].events[1])]
    assert MailFrom not in server.sessions[0].commands()


def test_opportunistic_without_starttls(make: Callable[..., Client]) -> None:
    with FakeServer(ESMTP) as server:
        with make(server.port, tls=TLSMode.STARTTLS_OPPORTUNISTIC) as client:
            assert not client.tls_active
            client.sendmail("a@example.org", ["b@example.net"], MESSAGE)
        server.wait_closed()
    assert len(server.messages) == 1


def test_starttls_refused(make: Callable[..., Client], certs: TestCerts) -> None:
    # RFC 3207 §4: 454 TLS not available due to temporary reason
    reply = Reply(code=454, lines="TLS not available", enhanced="4.7.0")
    answer = refuse(lambda e: isinstance(e, StartTLS), reply)
    with starttls_server(certs, answer=answer) as server:
        client = make(
            server.port, tls=TLSMode.STARTTLS_REQUIRED, ssl_context=certs.client_context()
        )
        with pytest.raises(SMTPTLSError) as info:
            client.connect()
        assert info.value.reply == reply
        with make(server.port, tls=TLSMode.STARTTLS_OPPORTUNISTIC) as client:
            assert not client.tls_active
            client.sendmail("a@example.org", ["b@example.net"], MESSAGE)
        server.wait_closed()
    assert len(server.messages) == 1


def test_implicit_tls(make: Callable[..., Client], certs: TestCerts) -> None:
    # RFC 8314 §3.3: TLS from the first byte; STARTTLS is not used
    with FakeServer(ESMTP, tls=certs.server_context(), implicit_tls=True) as server:
        with make(server.port, tls=TLSMode.IMPLICIT, ssl_context=certs.client_context()) as client:
            assert client.tls_active
            client.sendmail("a@example.org", ["b@example.net"], MESSAGE)
        server.wait_closed()
    assert server.sessions[0].tls and server.messages[0].content == MESSAGE


def test_hostname_verification_failure(make: Callable[..., Client], certs: TestCerts) -> None:
    # Verification is on by default: the certificate names localhost/127.0.0.1, not this
    with starttls_server(certs) as server:
        client = make(
            server.port,
            tls=TLSMode.STARTTLS_REQUIRED,
            ssl_context=certs.client_context(),
            server_hostname="mail.example.com",
        )
        with pytest.raises(SMTPTLSError) as info:
            client.connect()
        assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
        assert not client.connected
        server.wait_closed()
    assert server.messages == []


def test_untrusted_certificate_by_default(
    make: Callable[..., Client], certs: TestCerts, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # ssl.create_default_context(): our test CA is not trusted unless SSL_CERT_FILE says so
    empty_ca = tmp_path / "other-ca.pem"
    trustme = pytest.importorskip("trustme")
    trustme.CA().cert_pem.write_to_path(str(empty_ca))
    monkeypatch.setenv("SSL_CERT_FILE", str(empty_ca))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    with FakeServer(ESMTP, tls=certs.server_context(), implicit_tls=True) as server:
        client = make(server.port, tls=TLSMode.IMPLICIT)
        with pytest.raises(SMTPTLSError) as info:
            client.connect()
        assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
        monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca_pem))
        with make(server.port, tls=TLSMode.IMPLICIT) as client:
            assert client.tls_active
        server.wait_closed()


@pytest.mark.parametrize("injected", [b"250 injected\r\n", b"250-fa", b"x"])
def test_plaintext_after_220_is_rejected(
    make: Callable[..., Client], certs: TestCerts, injected: bytes
) -> None:
    # RFC 3207 §4.2, CVE-2011-0411: bytes after "220" and before the handshake are an
    # attacker's; the client must not carry them into the TLS session.
    seen: list[bytes] = []

    def script(sock: socket.socket, _stop: threading.Event) -> None:
        sock.sendall(b"220 mx.test ESMTP\r\n")
        sock.recv(1000)
        sock.sendall(b"250-mx.test\r\n250 STARTTLS\r\n")
        assert sock.recv(1000) == b"STARTTLS\r\n"
        sock.sendall(b"220 2.0.0 go ahead\r\n" + injected)
        with contextlib.suppress(OSError):
            while data := sock.recv(1000):
                seen.append(data)

    with FakeServer(raw=script) as server:
        client = make(
            server.port, tls=TLSMode.STARTTLS_REQUIRED, ssl_context=certs.client_context()
        )
        with pytest.raises(SMTPTLSError, match="plaintext"):
            client.connect()
        assert not client.connected
        server.wait_closed()
    assert seen == []  # no handshake, no QUIT: the connection was just closed


# ============================================================================= AUTH

AUTH_EXTENSIONS = {**ESMTP, "STARTTLS": (), "AUTH": ("PLAIN", "LOGIN", "SCRAM-SHA-256")}


def auth_server(certs: TestCerts, mechanisms: tuple[str, ...], **kwargs: Any) -> FakeServer:
    return FakeServer(
        {**ESMTP, "STARTTLS": (), "AUTH": mechanisms},
        tls=certs.server_context(),
        users={"alice": "wonderland"},
        **kwargs,
    )


@pytest.mark.parametrize(
    ("offered", "expected"),
    [
        (("PLAIN", "LOGIN", "SCRAM-SHA-256"), "SCRAM-SHA-256"),
        (("LOGIN", "PLAIN"), "PLAIN"),
        (("LOGIN",), "LOGIN"),
    ],
)
def test_auth_strongest_common_mechanism(
    make: Callable[..., Client], certs: TestCerts, offered: tuple[str, ...], expected: str
) -> None:
    # RFC 4954 §4; sansio_smtp.sasl.choose_mechanism picks the strongest both support
    with auth_server(certs, offered) as server:
        with make(
            server.port,
            tls=TLSMode.STARTTLS_REQUIRED,
            ssl_context=certs.client_context(),
            username="alice",
            password="wonderland",
            transcript=True,
        ) as client:
            assert client.authenticated
            client.sendmail("alice@example.org", ["b@example.net"], MESSAGE)
            transcript = "\n".join(map(str, client.transcript))
        server.wait_closed()
    auths = [e for e in server.sessions[0].events if isinstance(e, Auth)]
    assert [a.mechanism for a in auths] == [expected]
    assert "wonderland" not in transcript and "d29uZGVybGFuZA" not in transcript
    assert f"C: AUTH {expected}" in transcript and "<redacted>" in transcript
    assert len(server.messages) == 1


def test_auth_wrong_password(make: Callable[..., Client], certs: TestCerts) -> None:
    # RFC 4954 §6: 535 5.7.8 Authentication credentials invalid
    with auth_server(certs, ("PLAIN",)) as server:
        client = make(
            server.port,
            tls=TLSMode.STARTTLS_REQUIRED,
            ssl_context=certs.client_context(),
            username="alice",
            password="wrong",
        )
        with pytest.raises(SMTPAuthError) as info:
            client.connect()
        assert info.value.reply is not None and info.value.reply.code == 535
        assert str(info.value.reply.enhanced) == "5.7.8"
        server.wait_closed()
    assert server.messages == []


def test_no_plaintext_credentials_without_tls(make: Callable[..., Client]) -> None:
    # RFC 4954 §4: PLAIN/LOGIN only under TLS unless explicitly allowed
    extensions = {**ESMTP, "AUTH": ("PLAIN", "LOGIN")}
    with FakeServer(extensions, users={"alice": "wonderland"}, allow_plaintext_auth=True) as server:
        client = make(server.port, username="alice", password="wonderland")
        with pytest.raises(SMTPAuthError, match="no usable AUTH mechanism") as info:
            client.connect()
        assert info.value.reply is None
        with make(
            server.port, username="alice", password="wonderland", allow_plaintext_auth=True
        ) as client:
            assert client.authenticated
        server.wait_closed()
    first, second = server.sessions
    assert Auth not in first.commands() and Auth in second.commands()


def test_auth_not_offered(make: Callable[..., Client]) -> None:
    with FakeServer(ESMTP) as server:
        client = make(server.port, username="alice", password="wonderland")
        with pytest.raises(SMTPAuthError, match="does not offer AUTH"):
            client.connect()
        server.wait_closed()


# ========================================================================= timeouts


def silent_after(lines: list[bytes]) -> Callable[[socket.socket, threading.Event], None]:
    """A server that answers each read with the next of ``lines`` and then goes silent
    (until the client hangs up or the test ends)."""

    def script(sock: socket.socket, stop: threading.Event) -> None:
        sock.settimeout(0.05)
        if lines:
            sock.sendall(lines[0])
        for line in lines[1:]:
            while not stop.is_set():
                try:
                    if not sock.recv(1000):
                        return
                    break
                except TimeoutError:
                    continue
            sock.sendall(line)
        while not stop.is_set():
            try:
                if not sock.recv(1000):
                    return  # the client closed: what the test checks
            except TimeoutError:
                continue
            except OSError:
                return

    return script


def test_timeout_waiting_for_greeting(make: Callable[..., Client]) -> None:
    # RFC 5321 §4.5.3.2.1: the client gives up waiting for the 220; and closes
    with FakeServer(raw=silent_after([])) as server:
        client = make(server.port, timeouts={"greeting": 0.3})
        start = time.monotonic()
        with pytest.raises(SMTPTimeoutError) as info:
            client.connect()
        assert 0.25 < time.monotonic() - start < 5
        assert info.value.phase == "greeting" and info.value.seconds == 0.3
        assert isinstance(info.value, TimeoutError) and not client.connected
        server.wait_closed()  # returns only once the client closed its end


def test_timeout_closes_the_connection(make: Callable[..., Client]) -> None:
    # RFC 5321 §4.5.3.2.2: MAIL times out; the connection is closed so that a late reply
    # can never be taken for the answer to a later command
    script = silent_after([b"220 mx.test\r\n", b"250 mx.test\r\n"])
    with FakeServer(raw=script) as server:
        client = make(server.port, timeout=0.3)
        with client:
            with pytest.raises(SMTPTimeoutError) as info:
                client.sendmail("a@example.org", ["b@example.net"], MESSAGE)
            assert info.value.phase == "MAIL"
            assert not client.connected
            with pytest.raises(SMTPServerDisconnected):
                client.noop()
        server.wait_closed()


def test_per_phase_timeouts() -> None:
    client = SMTPClient("127.0.0.1", 25, timeout=7, timeouts={"end of data": 1.5})
    engine = client._engine
    assert engine.timeout("end of data") == 1.5 and engine.timeout("MAIL") == 7
    default = SMTPClient("127.0.0.1", 25)._engine
    # RFC 5321 §4.5.3.2: 5 min greeting/MAIL/RCPT, 2 min DATA, 3 min blocks, 10 min end
    assert [default.timeout(p) for p in ("greeting", "MAIL", "RCPT", "DATA")] == [
        300,
        300,
        300,
        120,
    ]
    assert default.timeout("data block") == 180 and default.timeout("end of data") == 600
    with pytest.raises(ValueError, match="unknown timeout phase"):
        SMTPClient("127.0.0.1", 25, timeouts={"mail": 1})


# ============================================================================= LMTP


@pytest.mark.parametrize("extensions", [PIPELINING, CHUNKING], ids=["data", "bdat"])
def test_lmtp_per_recipient_results(make: Callable[..., Client], extensions: dict) -> None:
    # RFC 2033 §4.2: after the data, one reply per accepted recipient, in RCPT order
    full = Reply(code=452, lines="Mailbox full", enhanced="4.2.2")

    def answer(conn: Connection, event: Event) -> Reply | list[Reply] | None:
        if isinstance(event, RcptTo) and event.forward_path.local_part == "nobody":
            return USER_UNKNOWN
        if isinstance(event, EndOfMessage):
            return [
                full if r.forward_path.local_part == "full" else Reply(code=250, lines="ok")
                for r in conn.accepted_recipients
            ]
        return None

    rcpts = ["one@example.net", "nobody@example.net", "full@example.net", "two@example.net"]
    with FakeServer(extensions, answer=answer, lmtp=True) as server:
        with make(server.port, lmtp=True) as client:
            result = client.sendmail("a@example.org", rcpts, MESSAGE)
        server.wait_closed()
    assert server.sessions[0].commands()[0] is Lhlo
    assert list(result.accepted) == ["one@example.net", "two@example.net"]
    assert result.refused == {"nobody@example.net": USER_UNKNOWN, "full@example.net": full}
    assert server.errors == []


def test_lmtp_every_delivery_refused(make: Callable[..., Client]) -> None:
    full = Reply(code=452, lines="Mailbox full", enhanced="4.2.2")

    def answer(conn: Connection, event: Event) -> Reply | list[Reply] | None:
        first = conn.accepted_recipients[:1]
        if isinstance(event, EndOfMessage) and first[0].forward_path.local_part == "x":
            return [full] * len(conn.accepted_recipients)
        return None

    with FakeServer(PIPELINING, answer=answer, lmtp=True) as server:
        with make(server.port, lmtp=True) as client:
            with pytest.raises(SMTPRecipientsRefused) as info:
                client.sendmail("a@example.org", ["x@example.net", "y@example.net"], MESSAGE)
            assert info.value.refused == {"x@example.net": full, "y@example.net": full}
            client.sendmail("a@example.org", ["z@example.net"], MESSAGE)  # still in step
        server.wait_closed()


# ==================================================================== send_message


def test_send_message_envelope_like_smtplib(make: Callable[..., Client]) -> None:
    # smtplib.send_message: sender from Sender/From, recipients To+Cc+Bcc, Bcc not sent
    msg = email.message.EmailMessage()
    msg["From"] = "Alice <alice@example.org>"
    msg["To"] = "Bob <bob@example.net>, carol@example.net"
    msg["Cc"] = "dave@example.net"
    msg["Bcc"] = "eve@example.net"
    msg["Subject"] = "hello"
    msg.set_content("Hi all\n.\n")
    with FakeServer(ESMTP) as server:
        with make(server.port) as client:
            result = client.send_message(msg)
        server.wait_closed()
    expected = ["bob@example.net", "carol@example.net", "eve@example.net", "dave@example.net"]
    assert list(result.accepted) == expected
    (got,) = server.messages
    assert str(got.mail.reverse_path) == "alice@example.org"
    assert b"Bcc" not in got.content and b"eve@" not in got.content
    assert b"\r\n..\r\n" not in got.content and b"Hi all\r\n.\r\n" in got.content
    assert msg["Bcc"] == "eve@example.net"  # the caller's message is unchanged


def test_send_message_resent_headers() -> None:
    # RFC 5322 §3.6.6: a single Resent- block gives the envelope
    msg = email.message.EmailMessage()
    msg["From"] = "alice@example.org"
    msg["To"] = "bob@example.net"
    msg["Resent-Date"] = "Mon, 1 Jan 2024 00:00:00 +0000"
    msg["Resent-From"] = "fwd@example.org"
    msg["Resent-To"] = "new@example.net"
    msg["Resent-Bcc"] = "hidden@example.net"
    msg.set_content("x")
    sender, rcpts, content, intl = flatten_message(msg)
    assert sender == "fwd@example.org" and rcpts == ["new@example.net", "hidden@example.net"]
    assert b"hidden@" not in content and not intl and content.endswith(b"\r\n")
    msg["Resent-Date"] = "Tue, 2 Jan 2024 00:00:00 +0000"
    with pytest.raises(ValueError, match="more than one"):
        flatten_message(msg)


def test_send_message_smtputf8(make: Callable[..., Client]) -> None:
    # RFC 6531 §3.4: a non-ASCII address needs SMTPUTF8; the headers go as UTF-8 (RFC 6532)
    msg = email.message.EmailMessage()
    msg["From"] = "jörg@example.org"
    msg["To"] = "pépé@example.net"
    msg["Subject"] = "grüße"
    msg.set_content("Ünïcödé\n")
    with FakeServer({**ESMTP, "SMTPUTF8": ()}) as server:
        with make(server.port) as client:
            client.send_message(msg)
        server.wait_closed()
    (got,) = server.messages
    assert "SMTPUTF8" in got.mail.params and got.mail.params["BODY"] == "8BITMIME"
    assert str(got.rcpts[0].forward_path) == "pépé@example.net"
    assert "Subject: grüße".encode() in got.content
    with FakeServer(ESMTP) as server:
        with make(server.port) as client, pytest.raises(SMTPNotSupportedError, match="SMTPUTF8"):
            client.send_message(msg)
        server.wait_closed()
    assert server.messages == []


# ================================================================= odds and ends


def test_transcript_and_callback(make: Callable[..., Client]) -> None:
    lines: list[str] = []
    with FakeServer(PIPELINING) as server:
        with make(server.port, transcript=True, on_transcript=lambda e: lines.append(str(e))) as c:
            c.sendmail("a@example.org", ["b@example.net"], MESSAGE)
        server.wait_closed()
    assert [str(e) for e in c.transcript] == lines
    assert "C: MAIL FROM:<a@example.org>" in lines and "C: QUIT" in lines
    assert f"C: <message content, {len(MESSAGE)} octets>" in lines
    assert lines[1] == "S: 220 mx.test ESMTP test server"


def test_unclosed_client_warns(flavour: str) -> None:
    with FakeServer({}) as server:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if flavour == "sync":
                client: Any = SMTPClient("127.0.0.1", server.port, tls=TLSMode.PLAIN, timeout=5)
                client.connect()
            else:
                loop = asyncio.new_event_loop()
                client = AsyncSMTPClient("127.0.0.1", server.port, tls=TLSMode.PLAIN, timeout=5)
                loop.run_until_complete(client.connect())
            del client
            gc.collect()
            if flavour != "sync":
                loop.run_until_complete(asyncio.sleep(0))  # let the abort close the socket
                loop.close()
        server.wait_closed()
    assert any(
        issubclass(w.category, ResourceWarning) and "unclosed <" in str(w.message) for w in caught
    )


def test_exception_hierarchy() -> None:
    for cls in (SMTPSenderRefused, SMTPRecipientsRefused, SMTPDataError, SMTPHeloError):
        assert issubclass(cls, SMTPReplyError)
    for cls in (
        SMTPReplyError,
        SMTPConnectError,
        SMTPTimeoutError,
        SMTPTLSError,
        SMTPAuthError,
        SMTPServerDisconnected,
        SMTPProtocolViolation,
        SMTPNotSupportedError,
    ):
        assert issubclass(cls, SMTPError)
    assert issubclass(SMTPTimeoutError, TimeoutError)
    err = SMTPReplyError("RSET refused", Reply(code=451, lines="later", enhanced="4.3.0"))
    assert str(err) == "RSET refused: 451 4.3.0 later" and err.reply.is_transient


def test_connection_refused(make: Callable[..., Client]) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    client = make(port)
    with pytest.raises(SMTPConnectError, match="cannot connect"):
        client.connect()


def test_async_concurrent_sends_are_serialised() -> None:
    # one session, two tasks: the lock keeps each transaction whole
    async def main(port: int) -> list[SendResult]:
        async with AsyncSMTPClient("127.0.0.1", port, tls=TLSMode.PLAIN, timeout=10) as c:
            return list(
                await asyncio.gather(
                    *(c.sendmail("a@example.org", [f"r{i}@example.net"], MESSAGE) for i in range(4))
                )
            )

    with FakeServer(PIPELINING) as server:
        results = asyncio.run(main(server.port))
        server.wait_closed()
    assert all(r.ok for r in results) and len(server.messages) == 4
    assert server.errors == []


def test_async_cancellation_closes() -> None:
    # a cancelled operation leaves the session in an unknown state: it is closed
    async def main(port: int) -> None:
        client = AsyncSMTPClient("127.0.0.1", port, tls=TLSMode.PLAIN, timeout=10)
        await client.connect()
        task = asyncio.ensure_future(client.sendmail("a@example.org", ["b@example.net"], MESSAGE))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not client.connected
        await client.aclose()

    with FakeServer(raw=silent_after([b"220 mx.test\r\n", b"250 mx.test\r\n"])) as server:
        asyncio.run(main(server.port))
        server.wait_closed()


# ============================================================================== CLI


def cli(*argv: str) -> int:
    """Parse ``argv`` with the send command's options and run it."""
    import argparse

    from sansio_smtp._cli_send import add_arguments, run

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return run(parser.parse_args(list(argv)))


@pytest.fixture
def message_file(tmp_path: Any) -> str:
    path = tmp_path / "message.eml"
    path.write_bytes(MESSAGE)
    return str(path)


def test_cli_partial_refusal(message_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    # exit 0 when at least one recipient accepted; each refusal on stderr with its code,
    # enhanced code and text
    with FakeServer(PIPELINING, answer=refuse(rcpt_is("bad@example.net"), USER_UNKNOWN)) as server:
        status = cli(
            "--server", f"127.0.0.1:{server.port}", "--from", "a@example.org",
            "--to", "good@example.net", "--to", "bad@example.net", "--file", message_file,
        )  # fmt: skip
        server.wait_closed()
    out, err = capsys.readouterr()
    assert status == 0
    assert "refused bad@example.net: 550 5.1.1 User unknown" in err
    assert "accepted by 1 of 2 recipient(s)" in out
    assert server.messages[0].content == MESSAGE


def test_cli_all_refused(message_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeServer(PIPELINING, answer=refuse(rcpt_is("bad@example.net"), USER_UNKNOWN)) as server:
        status = cli(
            "--server", f"127.0.0.1:{server.port}", "--from", "a@example.org",
            "--to", "bad@example.net", "--file", message_file,
        )  # fmt: skip
        server.wait_closed()
    _, err = capsys.readouterr()
    assert status == 1
    assert "refused bad@example.net: 550 5.1.1 User unknown" in err
    assert server.messages == []


def test_cli_data_refused(message_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    reply = Reply(code=554, lines="Spam detected", enhanced="5.7.1")
    with FakeServer(PIPELINING, answer=refuse(lambda e: isinstance(e, EndOfMessage), reply)) as s:
        status = cli("--server", f"127.0.0.1:{s.port}", "--from", "a@example.org",
                     "--to", "b@example.net", "--file", message_file)  # fmt: skip
        s.wait_closed()
    _, err = capsys.readouterr()
    assert status == 1 and "554 5.7.1 Spam detected" in err


def test_cli_starttls_auth_transcript(
    message_file: str, certs: TestCerts, capsys: pytest.CaptureFixture[str]
) -> None:
    # --starttls --cafile --user/--password --transcript: the dialogue, AUTH redacted
    with auth_server(certs, ("PLAIN",)) as server:
        status = cli(
            "--server", f"127.0.0.1:{server.port}", "--from", "alice@example.org",
            "--to", "b@example.net", "--file", message_file, "--starttls",
            "--cafile", str(certs.ca_pem), "--user", "alice", "--password", "wonderland",
            "--ehlo", "cli.example", "--transcript",
        )  # fmt: skip
        server.wait_closed()
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "C: EHLO cli.example" in out and "C: STARTTLS" in out
    assert "C: AUTH PLAIN <redacted>" in out and "S: 235 2.7.0" in out
    assert "wonderland" not in out and "d29uZGVybGFuZA" not in out
    assert "C: QUIT" in out and server.sessions[0].tls


def test_cli_tls_verification(
    message_file: str,
    certs: TestCerts,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: Any,
    tmp_path: Any,
) -> None:
    # --tls verifies against the system CAs (here: none that know our CA) unless --cafile;
    # --insecure skips verification
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "none.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    with FakeServer(ESMTP, tls=certs.server_context(), implicit_tls=True) as server:
        base = ["--server", f"127.0.0.1:{server.port}", "--from", "a@example.org",
                "--to", "b@example.net", "--file", message_file, "--tls"]  # fmt: skip
        assert cli(*base) == 1
        assert "certificate verify failed" in capsys.readouterr().err
        assert cli(*base, "--cafile", str(certs.ca_pem)) == 0
        assert cli(*base, "--insecure") == 0
        server.wait_closed()
    assert len(server.messages) == 2


def test_cli_lmtp(message_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    full = Reply(code=452, lines="Mailbox full", enhanced="4.2.2")

    def answer(conn: Connection, event: Event) -> Reply | list[Reply] | None:
        if isinstance(event, EndOfMessage):
            return [Reply(code=250, lines="ok"), full]
        return None

    with FakeServer(PIPELINING, answer=answer, lmtp=True) as server:
        status = cli("--server", f"127.0.0.1:{server.port}", "--from", "a@example.org",
                     "--to", "one@example.net", "--to", "two@example.net",
                     "--file", message_file, "--lmtp")  # fmt: skip
        server.wait_closed()
    _, err = capsys.readouterr()
    assert status == 0 and "refused two@example.net: 452 4.2.2 Mailbox full" in err
    assert server.sessions[0].commands()[0] is Lhlo


def test_cli_timeout(message_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeServer(raw=silent_after([])) as server:
        start = time.monotonic()
        status = cli("--server", f"127.0.0.1:{server.port}", "--from", "a@example.org",
                     "--to", "b@example.net", "--file", message_file,
                     "--timeout", "0.3")  # fmt: skip
        assert time.monotonic() - start < 5
        server.wait_closed()
    assert status == 1 and "timed out" in capsys.readouterr().err


def test_cli_usage_errors(message_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--from", "a@example.org", "--to", "b@example.net", "--file", message_file]
    assert cli("--server", "127.0.0.1:notaport", *common) == 2
    assert cli("--server", "::1:25", *common) == 2
    assert cli("--server", "127.0.0.1:25", "--user", "u", *common) == 2
    assert cli("--server", "127.0.0.1:25", *common[:-1], "/nonexistent/file") == 2
    with pytest.raises(SystemExit):  # argparse: --starttls and --tls exclude each other
        cli("--server", "127.0.0.1:25", "--starttls", "--tls", *common)
    assert "error:" in capsys.readouterr().err


def test_cli_reads_stdin_in_a_subprocess() -> None:
    # the message from stdin (--file - is the default), through a real process
    import subprocess
    import sys

    code = (
        "import sys, argparse\n"
        "from sansio_smtp._cli_send import add_arguments, run\n"
        "p = argparse.ArgumentParser(); add_arguments(p)\n"
        "sys.exit(run(p.parse_args(sys.argv[1:])))\n"
    )
    with FakeServer(ESMTP) as server:
        proc = subprocess.run(
            [sys.executable, "-c", code, "--server", f"127.0.0.1:{server.port}",
             "--from", "a@example.org", "--to", "b@example.net", "--transcript"],
            input=MESSAGE, capture_output=True, timeout=60, cwd=str(ROOT),
        )  # fmt: skip
        server.wait_closed()
    assert proc.returncode == 0, proc.stderr
    assert b"C: MAIL FROM:<a@example.org>" in proc.stdout
    assert server.messages[0].content == MESSAGE


def test_421_during_lmtp_deliveries(make: Callable[..., Client]) -> None:
    # RFC 2033 §4.2 with RFC 5321 §3.8: a 421 among the per-recipient replies; the
    # recipients after it were never delivered and must not be reported as accepted
    closing = Reply(code=421, lines="Shutting down", enhanced="4.3.2")

    def answer(conn: Connection, event: Event) -> Reply | list[Reply] | None:
        if isinstance(event, EndOfMessage):
            return [Reply(code=250, lines="ok"), closing]
        return None

    rcpts = ["one@example.net", "two@example.net", "three@example.net"]
    with FakeServer(PIPELINING, answer=answer, lmtp=True) as server:
        client = make(server.port, lmtp=True)
        with client:
            result = client.sendmail("a@example.org", rcpts, MESSAGE)
            assert not client.connected
        server.wait_closed()
    assert list(result.accepted) == ["one@example.net"]
    assert result.refused == {"two@example.net": closing, "three@example.net": closing}


def test_421_to_a_pipelined_rcpt(make: Callable[..., Client]) -> None:
    # the RCPTs after the 421 get no reply at all; they are refused with it
    closing = Reply(code=421, lines="Too busy", enhanced="4.3.2")
    with FakeServer(PIPELINING, answer=refuse(rcpt_is("two@example.net"), closing)) as server:
        client = make(server.port)
        with client, pytest.raises(SMTPRecipientsRefused) as info:
            client.sendmail("a@example.org", ["one@example.net", "two@example.net",
                                              "three@example.net"], MESSAGE)  # fmt: skip
        server.wait_closed()
    # one@ was accepted at RCPT but the message never went: it is refused with the 421
    assert info.value.refused == {
        "one@example.net": closing, "two@example.net": closing, "three@example.net": closing
    }  # fmt: skip


@pytest.mark.parametrize("extensions", [PIPELINING, CHUNKING], ids=["data", "bdat"])
def test_large_message(make: Callable[..., Client], extensions: dict) -> None:
    # several MB: the socket buffers fill, so writes are partial and wait for the reader
    line = b"0123456789" * 7 + b"\r\n"
    body = b"Subject: big\r\n\r\n" + line * (4 * 1024 * 1024 // len(line))
    with FakeServer(extensions) as server:
        with make(server.port, bdat_chunk_size=1024 * 1024) as client:
            client.sendmail("a@example.org", ["b@example.net"], body)
        server.wait_closed()
    (msg,) = server.messages
    assert msg.content == body
    chunks = -(-len(body) // (1024 * 1024))  # RFC 3030 §2: the last one marked LAST
    assert msg.bdat_chunks == ([1024 * 1024] * chunks if "CHUNKING" in extensions else [])


def test_timeout_while_sending(make: Callable[..., Client]) -> None:
    # RFC 5321 §4.5.3.2.5: a data block that cannot be written in time; the server
    # accepted DATA and then stopped reading
    def script(sock: socket.socket, stop: threading.Event) -> None:
        sock.sendall(b"220 mx.test\r\n")
        sock.recv(1000)
        sock.sendall(b"250-mx.test\r\n250 PIPELINING\r\n")
        sock.recv(1000)
        sock.sendall(b"250 ok\r\n250 ok\r\n354 go ahead\r\n")
        stop.wait(10)  # read nothing more

    body = b"Subject: stuck\r\n\r\n" + (b"x" * 70 + b"\r\n") * 600_000  # ~43 MB
    with FakeServer(raw=script) as server:
        client = make(server.port, timeouts={"data block": 0.5})
        with client:
            start = time.monotonic()
            with pytest.raises(SMTPTimeoutError) as info:
                client.sendmail("a@example.org", ["b@example.net"], body)
            assert info.value.phase == "data block" and time.monotonic() - start < 8
            assert not client.connected
        server.stop()


@pytest.mark.parametrize("offered", [("OAUTHBEARER", "PLAIN"), ("XOAUTH2",)])
def test_auth_with_a_token(
    make: Callable[..., Client], certs: TestCerts, offered: tuple[str, ...]
) -> None:
    # RFC 7628 / XOAUTH2: token= picks a token mechanism, never PLAIN
    with auth_server(certs, offered) as server:
        with make(
            server.port,
            tls=TLSMode.STARTTLS_REQUIRED,
            ssl_context=certs.client_context(),
            username="alice",
            token="wonderland",
            transcript=True,
        ) as client:
            assert client.authenticated
            assert "wonderland" not in "\n".join(map(str, client.transcript))
        server.wait_closed()
    (auth,) = [e for e in server.sessions[0].events if isinstance(e, Auth)]
    assert auth.mechanism == offered[0]


def test_null_reverse_path(make: Callable[..., Client]) -> None:
    # RFC 5321 §4.5.5: bounces are sent with MAIL FROM:<>
    with FakeServer(ESMTP) as server:
        with make(server.port) as client:
            client.sendmail("", ["b@example.net"], MESSAGE)
        server.wait_closed()
    assert server.messages[0].mail.reverse_path is None
    assert b"MAIL FROM:<> SIZE=" in server.sessions[0].client_bytes


def test_auth_bad_challenge_is_cancelled(make: Callable[..., Client]) -> None:
    # RFC 4954 §4: a client that cannot answer a challenge sends "*"; the server says 501.
    # Without TLS only with allow_plaintext_auth (issue 10 item 16: a CRAM-MD5 response
    # can be cracked offline, so it is not sent in the clear by default).
    lines: list[bytes] = []

    def script(sock: socket.socket, stop: threading.Event) -> None:
        reader = sock.makefile("rb")
        sock.sendall(b"220 mx.test\r\n")
        lines.append(reader.readline())
        sock.sendall(b"250-mx.test\r\n250 AUTH CRAM-MD5\r\n")
        lines.append(reader.readline())
        sock.sendall(b"334 \r\n")  # CRAM-MD5 needs a non-empty challenge (RFC 2195 §2)
        lines.append(reader.readline())
        sock.sendall(b"501 5.7.0 Authentication cancelled\r\n")
        lines.append(reader.readline())
        sock.sendall(b"221 bye\r\n")

    with FakeServer(raw=script) as server:
        client = make(
            server.port, username="alice", password="wonderland", allow_plaintext_auth=True
        )
        with pytest.raises(SMTPAuthError, match="cancelled") as info:
            client.connect()
        assert info.value.reply is not None and info.value.reply.code == 501
        server.wait_closed()
    assert lines[1:] == [b"AUTH CRAM-MD5\r\n", b"*\r\n", b"QUIT\r\n"]
