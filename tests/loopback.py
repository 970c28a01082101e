"""A tiny blocking SMTP server on 127.0.0.1 around the SERVER core, for interop tests.

A test helper, not a product adapter: one background thread accepts connections, one thread
per connection runs the sans-IO loop (recv -> receive_data -> next_event -> handler ->
send). Every blocking call has a timeout, and stop() (or leaving the ``with`` block) shuts
every socket down and joins every thread, so a broken test cannot hang the suite.

    with LoopbackServer(Config(extensions={"8BITMIME": ()})) as server:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=5) as smtp:
            smtp.sendmail(...)
    assert server.errors == []
    server.messages[0].content
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sansio_smtp import (
    NEED_DATA,
    PAUSED,
    SERVER,
    Address,
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
    MailFrom,
    MessageData,
    Params,
    RcptTo,
    Reply,
    Rset,
    State,
)

__all__ = ["Handler", "LoopbackServer", "ReceivedMessage", "default_handler"]

#: (server connection, received event) -> the reply to send. Events passed are commands,
#: InvalidCommand, EndOfMessage and InvalidMessage.
Handler = Callable[[Connection, Event], Reply]

SOCKET_TIMEOUT = 5.0  # seconds any single recv/send may block
JOIN_TIMEOUT = 10.0  # seconds stop() waits for each thread


def default_handler(conn: Connection, event: Event) -> Reply:
    return conn.default_reply(event)


@dataclass
class ReceivedMessage:
    """One accepted mail transaction (the end of its content was answered 2xx)."""

    sender: Address | None  # None for the null reverse-path <>
    mail_params: Params
    recipients: list[Address]  # only the recipients whose RCPT was answered 2xx
    content: bytes  # the un-stuffed message content, as the core emitted it


@dataclass
class _Transaction:
    sender: Address | None
    mail_params: Params
    recipients: list[Address] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)


_Listener = TypeVar("_Listener", bound="ThreadedListener")


class ThreadedListener:
    """A listener on 127.0.0.1 (port chosen by the OS) with one thread per connection,
    shared by the test servers: a subclass calls ``_listen()`` at the end of its
    ``__init__`` and implements ``_new_connection()`` (per-connection state, recorded as
    the subclass likes) and ``_handle(sock, state)``. Errors raised in connection threads
    go to ``errors`` (tests should assert it is empty); ``stop()`` is bounded."""

    errors: list[BaseException]
    socket_timeout = SOCKET_TIMEOUT  # seconds any single recv/send of a connection may block

    def _listen(self) -> None:
        self.errors = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # so the accept loop notices stop() quickly
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def _new_connection(self) -> Any:
        raise NotImplementedError

    def _handle(self, sock: socket.socket, state: Any) -> None:
        raise NotImplementedError

    def __enter__(self: _Listener) -> _Listener:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop accepting, shut down open connections, join all threads (bounded)."""
        self._stopping.set()
        self._acceptor.join(JOIN_TIMEOUT)
        self._listener.close()
        with self._lock:
            socks, threads = list(self._socks), list(self._threads)
        for sock in socks:
            with contextlib.suppress(OSError):  # already closed by its thread
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(JOIN_TIMEOUT)
        alive = [t for t in (self._acceptor, *threads) if t.is_alive()]
        if alive:  # pragma: no cover - only when something is badly wrong
            raise RuntimeError(f"test server threads did not stop: {alive}")

    def wait_closed(self, timeout: float = JOIN_TIMEOUT) -> None:
        """Wait until every connection accepted so far has finished."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)

    def _track(self, sock: socket.socket) -> None:
        """Let stop() shut ``sock`` down too (e.g. a TLS socket made mid-session)."""
        with self._lock:
            self._socks.append(sock)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _addr = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:  # pragma: no cover
                if not self._stopping.is_set():
                    self._record_error(exc)
                return
            sock.settimeout(self.socket_timeout)
            with self._lock:
                state = self._new_connection()
                thread = threading.Thread(target=self._serve, args=(sock, state), daemon=True)
                self._socks.append(sock)
                self._threads.append(thread)
            thread.start()

    def _record_error(self, exc: BaseException) -> None:
        with self._lock:
            self.errors.append(exc)

    def _serve(self, sock: socket.socket, state: Any) -> None:
        try:
            self._handle(sock, state)
        except Exception as exc:
            if not self._stopping.is_set():
                self._record_error(exc)
        finally:
            with contextlib.suppress(OSError):
                sock.close()


class LoopbackServer(ThreadedListener):
    """Listen on 127.0.0.1 (port chosen by the OS) until stop().

    - ``port``: the bound port.
    - ``messages``: ReceivedMessage per accepted transaction, in order. A message is added
      *before* its 2xx reply is sent, so a client that has read the reply can look.
    - ``errors``: exceptions raised in server threads (protocol errors, timeouts, bugs).
      Tests should assert it is empty.
    - ``transcripts``: per connection, a list of ("C"|"S", bytes) as read / written.
    """

    def __init__(
        self,
        config: Config | None = None,
        handler: Handler | None = None,
        greeting: Greeting | None = None,
    ) -> None:
        self.config = config if config is not None else Config()
        self.handler: Handler = handler if handler is not None else default_handler
        self.greeting = greeting or Greeting(lines=f"{self.config.hostname} ESMTP loopback")
        self.messages: list[ReceivedMessage] = []
        self.transcripts: list[list[tuple[str, bytes]]] = []
        self._listen()

    def _new_connection(self) -> list[tuple[str, bytes]]:
        transcript: list[tuple[str, bytes]] = []
        self.transcripts.append(transcript)
        return transcript

    def _handle(self, sock: socket.socket, transcript: list[tuple[str, bytes]]) -> None:
        conn = Connection(SERVER, self.config)

        def write(data: bytes) -> None:
            transcript.append(("S", data))
            sock.sendall(data)

        write(conn.send(self.greeting))  # RFC 5321 §3.1: the server speaks first
        txn: _Transaction | None = None
        while True:
            if conn.state is State.CLOSED:  # QUIT answered (§4.1.1.10) or 421 sent
                return
            event = conn.next_event()
            if event is NEED_DATA:
                data = sock.recv(65536)  # raises TimeoutError after SOCKET_TIMEOUT
                transcript.append(("C", data))
                conn.receive_data(data)
                continue
            if event is PAUSED:  # pragma: no cover - we answer every command at once
                raise AssertionError("server core PAUSED with no reply outstanding")
            assert isinstance(event, Event)
            if isinstance(event, ConnectionClosed):
                return
            if isinstance(event, MessageData):
                if txn is not None:
                    txn.chunks.append(bytes(event.data))
                continue
            reply = self.handler(conn, event)
            txn = self._bookkeep(txn, event, reply)
            write(conn.send(reply))

    def _bookkeep(
        self, txn: _Transaction | None, event: Event, reply: Reply
    ) -> _Transaction | None:
        """Track the mail transaction (RFC 5321 §3.3) from a command and its reply."""
        ok = reply.is_positive
        if isinstance(event, MailFrom):
            return _Transaction(event.reverse_path, event.params) if ok else txn
        if isinstance(event, RcptTo):
            if ok and txn is not None:
                txn.recipients.append(event.forward_path)
            return txn
        if isinstance(event, Data):
            return txn
        if isinstance(event, EndOfMessage):
            if ok and txn is not None:
                message = ReceivedMessage(
                    sender=txn.sender,
                    mail_params=txn.mail_params,
                    recipients=list(txn.recipients),
                    content=b"".join(txn.chunks),
                )
                with self._lock:
                    self.messages.append(message)
            return None  # RFC 5321 §4.1.1.4: the transaction ends either way
        if isinstance(event, InvalidMessage):
            return None
        if isinstance(event, (Rset, Ehlo, Helo)) and ok:  # §4.1.1.5, §4.1.4
            return None
        return txn  # InvalidCommand and the anytime commands leave it as it was
