# The blocking SMTP/LMTP server: socketserver's ThreadingTCPServer (or its Unix-socket
# twin) with one thread per connection, each a short loop around the sans-IO core.
#
# Strategy: serve the Dispatcher's requests (its steps() generator: core events -> hooks
# -> replies) with socket calls: READ -> recv, Write -> sendall, HANDSHAKE ->
# SSLContext.wrap_socket() on the same socket after STARTTLS's 220 (nothing to drain: the
# core guarantees no plaintext was buffered, and Connection.tls_established() refuses it
# otherwise). Every recv waits at most ``poll_interval`` so a thread notices its deadline
# (RFC 5321 §4.5.3.2 via Connection.timeout, the minimum data rate) and a shutdown without
# any other thread touching its socket or its Connection.
# Rules: hooks are plain methods (an awaitable result is answered 451 and logged); every
# blocking call has a timeout; shutdown() is bounded.
from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import socket
import socketserver
import ssl
import threading
import time
import warnings
from typing import TYPE_CHECKING, Final

from ..._events import BytesLike, Reply
from .._io import CLOSE, HANDSHAKE, READ, Write
from ._dispatcher import Dispatcher
from ._handler import Session
from ._limits import LogThrottle, client_key
from ._options import BLOCKED_WRITE_WAIT, ServerBase, ServerKeywords, ServerOptions, peer_address

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["SyncServer"]

log = logging.getLogger("sansio_smtp.server")

_RECV_SIZE: Final = 65536
#: accept() errors that mean "out of descriptors or memory": wait a moment, log once
_RESOURCE_ERRORS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class _Delegating(socketserver.BaseServer):
    """socketserver hooks handed to the SyncServer: admission and the session itself."""

    outer: SyncServer
    daemon_threads = True
    block_on_close = False  # SyncServer joins its own threads, with a bound
    request_queue_size = 128

    def verify_request(self, request: socket.socket, client_address: object) -> bool:  # type: ignore[override]
        return self.outer._admit(request, client_address)

    def get_request(self) -> tuple[socket.socket, object]:
        try:
            return super().get_request()
        except OSError as exc:
            if exc.errno in _RESOURCE_ERRORS:
                self.outer._accept_failed(exc)
            raise  # socketserver drops the attempt

    def finish_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        self.outer._serve(request, client_address)


class _TCPServer(_Delegating, socketserver.ThreadingTCPServer):
    allow_reuse_address = True

    def __init__(self, outer: SyncServer, address: tuple[str, int]) -> None:
        self.outer = outer
        super().__init__(address, socketserver.BaseRequestHandler)


class _UnixServer(_Delegating, socketserver.ThreadingUnixStreamServer):
    def __init__(self, outer: SyncServer, path: str) -> None:
        self.outer = outer
        super().__init__(path, socketserver.BaseRequestHandler)


class SyncServer(ServerBase):
    """A blocking, thread-per-connection SMTP (or LMTP) server with the same handler API
    and options as AsyncioServer (hooks must be plain methods here).

    It binds when constructed (``port`` is known at once); ``start()`` serves from a
    background thread, ``serve_forever()`` from the calling one; ``shutdown()`` is graceful
    (idle clients get ``421 4.3.2`` at once, transactions may finish within the timeout).
    ``with SyncServer(handler) as server:`` starts it and shuts it down. A write to a
    client that does not read is bounded by the idle timeout (``sendall`` with a total
    timeout), then the connection is dropped.
    """

    _hooks_may_await = False

    _unsupported = frozenset({"backlog"})
    _default_max_connections = 100

    def __init__(
        self,
        handler: object = None,
        *,
        options: ServerOptions | None = None,
        **keywords: Unpack[ServerKeywords],
    ) -> None:
        self._configure(handler, self._options(options, keywords))
        self._accept_log = LogThrottle()
        self.poll_interval = self.options.poll_interval
        self._server: _TCPServer | _UnixServer
        if self.path is not None:
            self._server = _UnixServer(self, self.path)
        else:
            self._server = _TCPServer(self, (self.host, self.options.port))
        self._port: int = 0 if self.path is not None else self._server.socket.getsockname()[1]
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._active = 0
        self._threads: set[threading.Thread] = set()
        self._thread: threading.Thread | None = None
        self._serving = False
        self._shutting_down = False
        self._abort = False
        self._closed = False

    # ---------------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        """The bound TCP port (the one the OS chose for port 0)."""
        return self._port

    @property
    def address(self) -> tuple[str, int] | str:
        if self.path is not None:
            return self.path
        return (self.host, self.port)

    @property
    def connections(self) -> int:
        with self._lock:
            return self._active

    def _begin_serving(self) -> None:
        with self._lock:
            if self._closed or self._serving or self._shutting_down:
                raise RuntimeError("the server is closed or already serving")
            self._serving = True

    def serve_forever(self) -> None:
        """Accept connections in this thread until shutdown()/close()."""
        self._begin_serving()
        self._server.serve_forever(poll_interval=0.05)

    def start(self) -> SyncServer:
        """Serve from a background thread; returns self."""
        self._begin_serving()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"smtp-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def __enter__(self) -> SyncServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop accepting; idle clients get ``421 4.3.2`` now, clients in a transaction
        within ``timeout`` seconds, after it has ended (RFC 5321 §3.8)."""
        if self._closed:
            return
        self._shutting_down = True
        self._stop_accepting()
        deadline = time.monotonic() + timeout
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, max(0.0, deadline - time.monotonic()))
        self.close()

    def close(self) -> None:
        """Stop now: every connection gets 421 at its next poll; threads are joined
        (bounded)."""
        if self._closed:
            return
        self._shutting_down = self._abort = True
        self._stop_accepting()
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, self.poll_interval * 4 + 1.0)
            threads = list(self._threads)
        for thread in threads:
            thread.join(1.0)
        if self._thread is not None:
            self._thread.join(1.0)
        self._closed = True
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def _stop_accepting(self) -> None:
        if self._serving:
            self._serving = False
            self._server.shutdown()
        self._server.server_close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True) and getattr(self, "_server", None) is not None:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, source=self, stacklevel=1)
            with contextlib.suppress(Exception):
                self._server.server_close()

    def __repr__(self) -> str:
        where = self.path if self.path is not None else f"{self.host}:{self._port}"
        return f"<SyncServer {where} connections={self._active}>"

    def record_error(self, exc: BaseException) -> None:
        """Keep ``exc`` in ``errors`` and log it (handler bugs, broken connections)."""
        self.errors.append(exc)
        log.error("SMTP server error: %r", exc, exc_info=exc)

    # ---------------------------------------------------------------- connections

    def _admit(self, sock: socket.socket, client_address: object) -> bool:
        reply = self._busy
        with self._lock:
            admitted = not self._shutting_down and self._active < self.max_connections
            if admitted:
                self._active += 1
        if admitted:
            admitted = self._admit_client(peer_address(client_address))[1]
            if admitted:
                return True
            reply = self._busy_client
            with self._idle:
                self._active -= 1
                self._idle.notify_all()
        # RFC 5321 §3.1 / §3.8: 421 means try again later (in clear only without TLS)
        if not self.implicit_tls:
            with contextlib.suppress(OSError):
                sock.settimeout(0.5)
                sock.sendall(reply)
        return False

    def _accept_failed(self, exc: OSError) -> None:
        """accept() ran out of descriptors (or memory): log it once per interval and let
        connections end before trying again."""
        if self._accept_log.ready(time.monotonic()):
            log.error(
                "cannot accept connections: %s (%d more not logged)", exc, self._accept_log.take()
            )
        time.sleep(0.1)

    def _serve(self, sock: socket.socket, client_address: object) -> None:
        thread = threading.current_thread()
        with self._lock:
            self._threads.add(thread)
        try:
            self._session(sock, client_address)
        except Exception as exc:
            self.record_error(exc)
        finally:
            self._release_client(client_key(peer_address(client_address)))
            with self._idle:
                self._active -= 1
                self._threads.discard(thread)
                self._idle.notify_all()

    def _session(self, sock: socket.socket, client_address: object) -> None:
        tls = self.implicit_tls
        if tls:
            assert self.tls_context is not None
            sock.settimeout(self.tls_handshake_timeout)
            try:
                sock = self.tls_context.wrap_socket(sock, server_side=True)
            except (OSError, ssl.SSLError) as exc:
                log.debug("TLS handshake failed: %r", exc)
                return
        try:
            local = sock.getsockname()
        except OSError:
            local = None
        session = Session(
            peer=peer_address(client_address),
            local=peer_address(local),
            hostname=self.config.hostname,
            lmtp=self.config.lmtp,
            tls=tls,
        )
        if isinstance(sock, ssl.SSLSocket):
            session.tls_version = sock.version()
            session.tls_cipher = (sock.cipher() or (None,))[0]
        d = Dispatcher(
            self._connection(session, tls=tls),
            self._hooks,
            session,
            greeting=self.greeting,
            proxy_protocol=self.proxy_protocol,
            allow_await=False,
            on_error=self.record_error,
        )
        current = [sock]
        try:
            self._loop(current, d)
        finally:
            for s in current:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            hook = self._hooks.disconnect
            if hook is not None:
                try:
                    hook(session)
                except Exception as exc:
                    self.record_error(exc)

    def _loop(self, current: list[socket.socket], d: Dispatcher) -> None:
        """Serve the Dispatcher's requests for one connection; ``current`` holds the
        socket in use (TLS replaces it)."""
        sock = current[0]
        rd = self._read_deadline()
        conn = d.conn
        steps = d.steps()
        try:
            op = next(steps)
            while True:
                if type(op) is Write:
                    if not self._send(sock, d, op.chunks):
                        return
                    rd.sent()
                    if not op.read:
                        op = steps.send(None)
                        continue
                    op = READ  # served here: the Dispatcher resumes once data came
                if op is READ:
                    # the core's timeout for what it waits for (RFC 5321 §4.5.3.2), from
                    # our last reply for a command, with the minimum data rate for content
                    data = self._recv(sock, d, rd.next(conn, time.monotonic()), rd.slow)
                    if type(data) is not bytes:  # a deadline or a shutdown: say 421
                        assert isinstance(data, Reply)
                        self._send(sock, d, [d.goodbye(data)])
                        return
                    rd.received(len(data))
                    d.feed(data)
                elif op is HANDSHAKE:
                    wrapped = self._starttls(sock)
                    if wrapped is None:
                        return
                    sock = current[0] = wrapped
                    op = steps.send(wrapped)
                    continue
                elif op is CLOSE:
                    return
                else:  # pragma: no cover - allow_await=False: nothing is awaited here
                    raise RuntimeError(f"unexpected {op!r}")
                op = steps.send(None)
        except StopIteration:
            return
        finally:
            steps.close()

    def _recv(
        self, sock: socket.socket, d: Dispatcher, deadline: float, slow: bool
    ) -> bytes | Reply:
        """The next bytes (b"" when the client closed), or the 421 to end with (timeout,
        slow client, shutdown)."""
        if deadline == math.inf:  # pragma: no cover - READ always has a timeout
            deadline = time.monotonic() + (self.idle_timeout or BLOCKED_WRITE_WAIT)
        while True:
            if self._abort or (self._shutting_down and d.idle):
                return self._shutdown_reply
            now = time.monotonic()
            if now >= deadline:
                return self._expired_reply(slow)
            sock.settimeout(min(self.poll_interval, deadline - now))
            try:
                return sock.recv(_RECV_SIZE)
            except TimeoutError:
                continue
            except (OSError, ssl.SSLError):
                return b""

    def _send(self, sock: socket.socket, d: Dispatcher, chunks: list[BytesLike]) -> bool:
        data = b"".join(chunks)
        if not data:
            return True
        try:
            # since Python 3.5 the timeout bounds the whole sendall: a client that does not
            # read holds this thread at most the idle timeout (a 421 before closing: less)
            sock.settimeout(self._write_timeout(closing=d.closing))
            sock.sendall(data)
        except (OSError, ssl.SSLError):
            return False
        return True

    def _starttls(self, sock: socket.socket) -> ssl.SSLSocket | None:
        assert self.tls_context is not None
        sock.settimeout(self.tls_handshake_timeout)
        try:
            return self.tls_context.wrap_socket(sock, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            log.debug("STARTTLS handshake failed: %r", exc)
            with contextlib.suppress(OSError):
                sock.close()
            return None
