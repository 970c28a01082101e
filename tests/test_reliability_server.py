"""Denial-of-service protections of the three servers (issue 10 items 6-9).

Each wire test reproduces an attack on 127.0.0.1 against AsyncioServer, SyncServer and
AnyioServer with short timeouts, so it takes seconds; the sans-IO accounting in
``sansio_smtp.adapters.server._limits`` is tested with a fake clock.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sansio_smtp import Config
from sansio_smtp.adapters.server import DEFAULT_MAX_CONNECTIONS_PER_CLIENT
from sansio_smtp.adapters.server._limits import (
    AuthFailureBudget,
    ClientLimits,
    LogThrottle,
    ReadDeadline,
    client_key,
    connection_cap,
)

from . import test_server_adapters as _adapters
from .certs import test_certs
from .test_server_adapters import EXT, Peer

KINDS = ["asyncio", "sync", "anyio"]
TIMEOUT = 5.0


make_server = _adapters.make_server  # the fixture: an asyncio, sync or anyio server


def _wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _raw(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


def _answered(sock: socket.socket, seconds: float) -> bytes:
    """What the server says within ``seconds`` (b"" if it closed or said nothing)."""
    sock.settimeout(seconds)
    with contextlib.suppress(OSError):
        return sock.recv(65536)
    return b""


# --------------------------------------------------------------- sans-IO accounting


class FakeConn:
    """The Connection properties ReadDeadline reads; inside a BDAT chunk when it owes a
    reply (``pending``) and still waits for the client (``timeout``), as a real one."""

    def __init__(self, state: str = "READY", pending: tuple[object, ...] = ()) -> None:
        from sansio_smtp._state import State, Timeout

        self.state = State[state]
        self.pending = pending
        self.timeout: Timeout | None = Timeout("client", 300.0)

    @property
    def in_chunk(self) -> bool:
        return bool(self.pending) and self.timeout is not None


def test_read_deadline_command_is_bounded_as_a_whole() -> None:
    # issue 10 item 7: bytes inside a command line do not move the deadline; a reply does
    rd = ReadDeadline(idle_timeout=10.0, min_data_rate=None, data_rate_grace=30.0)
    conn: Any = FakeConn()
    assert rd.next(conn, 100.0) == 110.0
    rd.received(1)
    assert rd.next(conn, 105.0) == 110.0  # a partial line: the same deadline
    rd.sent()
    assert rd.next(conn, 106.0) == 116.0  # a reply went out: a new command wait


def test_read_deadline_first_bdat_chunk_is_content() -> None:
    # issue 10 item 7: inside the first BDAT chunk the state is still RCPT, yet the
    # minimum data rate applies (RFC 3030 §2 chunk octets are message content)
    rd = ReadDeadline(idle_timeout=300.0, min_data_rate=100.0, data_rate_grace=1.0)
    conn: Any = FakeConn("RCPT", pending=(object(),))  # owes the BDAT reply, still reads
    assert rd.next(conn, 0.0) == 1.0 and rd.slow
    rd.received(50)
    assert rd.next(conn, 0.9) == 1.5 and rd.slow
    conn.timeout = None  # the chunk is read: the reply is owed, no wait
    assert rd.next(conn, 2.0) == float("inf")


@given(st.lists(st.sampled_from(["a", "r"]), max_size=60), st.integers(1, 5))
def test_client_limits_never_exceed_the_concurrency_limit(ops: list[str], limit: int) -> None:
    # issue 10 item 8: at most ``limit`` connections per address, whatever the order
    limits = ClientLimits(max_connections=limit, max_rate=None)
    held = 0
    for op in ops:
        if op == "a":
            if limits.admit("192.0.2.1", 0.0) is None:
                held += 1
        elif held:
            limits.release("192.0.2.1")
            held -= 1
        assert held == limits.connections("192.0.2.1") <= limit
    assert limits.admit("192.0.2.2", 0.0) is None  # another address is not affected


def test_client_limits_rate_per_minute() -> None:
    # issue 10 item 8: Postfix smtpd_client_connection_rate_limit, per 60 s
    limits = ClientLimits(max_connections=None, max_rate=3)
    for t in (0.0, 1.0, 2.0):
        assert limits.admit("198.51.100.7", t) is None
        limits.release("198.51.100.7")
    assert limits.admit("198.51.100.7", 3.0) == "rate"
    assert limits.admit("198.51.100.7", 59.0) == "rate"  # refused attempts count too
    assert limits.admit("198.51.100.7", 200.0) is None  # a quiet minute later
    limits.admit("203.0.113.1", 400.0)  # prunes the stale addresses
    assert set(limits._recent) == {"203.0.113.1"}


def test_auth_failure_budget_with_back_off() -> None:
    # issue 10 item 9: like Postfix smtpd_client_auth_rate_limit
    budget = AuthFailureBudget(limit=3, window=60.0)
    for t in (0.0, 1.0, 2.0):
        assert not budget.blocked("192.0.2.9", t)
        budget.failed("192.0.2.9", t)
    assert budget.blocked("192.0.2.9", 3.0)
    assert budget.retry_after("192.0.2.9", 3.0) == pytest.approx(57.0)
    assert not budget.blocked("192.0.2.10", 3.0)
    assert not budget.blocked("192.0.2.9", 60.5)  # the oldest failure aged out
    budget.forgive("192.0.2.9")
    assert not budget.blocked("192.0.2.9", 10.0)


def test_client_key_and_caps() -> None:
    assert client_key(("192.0.2.1", 25)) == "192.0.2.1"
    assert client_key(("2001:db8::1:2:3:4", 25)) == client_key(("2001:db8::ffff", 1))
    assert client_key(("::ffff:192.0.2.1", 25, 0, 0)) == "192.0.2.1"
    assert client_key("/run/lmtp.sock") is None
    # issue 10 item 8: stay under RLIMIT_NOFILE with a margin
    assert connection_cap(1000, 1024) == 1024 - 128
    assert connection_cap(1000, 20000) == 1000
    assert connection_cap(1000, None) == 1000
    throttle = LogThrottle(10.0)
    assert throttle.ready(0.0) and not throttle.ready(5.0) and not throttle.ready(6.0)
    assert throttle.ready(10.0) and throttle.take() == 2


# ------------------------------------------------- item 6: clients that never read


@pytest.mark.parametrize("kind", KINDS)
def test_client_that_never_reads_is_dropped_at_the_deadline(
    kind: str, make_server: Callable[..., Any]
) -> None:
    # issue 10 item 6: pipelined commands whose replies are never read fill our write
    # buffer; transport.close() waited for it to drain forever. Bounded by the idle timeout.
    # (the junk-command limit would close it long before: off, to test the writes)
    config = Config(hostname="mx.test", extensions=EXT, max_junk_commands=None)
    server = make_server(kind, None, idle_timeout=1.0, config=config)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    # EHLO (not a junk command): each 8-octet line earns a reply many times longer, so
    # our writes block after a few thousand of them
    payload = b"EHLO x\r\n" * 200_000
    sent, start = 0, time.monotonic()
    while sent < len(payload) and time.monotonic() - start < 4.0:
        try:
            sent += sock.send(payload[sent : sent + 65536])
        except BlockingIOError:
            time.sleep(0.01)
    assert _wait_for(lambda: server.connections == 0, 15.0), server.connections
    sock.close()


# ---------------------------------------------------------------- item 7: slow drip


def _drip(sock: socket.socket, data: bytes, every: float, limit: float) -> float:
    """Send ``data`` one octet per ``every`` seconds until the server answers or closes,
    or ``limit`` seconds pass; the seconds it took."""
    start = time.monotonic()
    for octet in data:
        if time.monotonic() - start > limit:
            break
        try:
            sock.sendall(bytes([octet]))
        except OSError:
            break
        sock.settimeout(every)
        try:
            got = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            break
        assert got.startswith(b"421"), got
        break
    return time.monotonic() - start


@pytest.mark.parametrize("kind", KINDS)
def test_dripped_command_line_is_bounded_as_a_whole(
    kind: str, make_server: Callable[..., Any]
) -> None:
    # issue 10 item 7: one octet at a time inside a command line used to restart the idle
    # timer forever; the whole line is now bounded (RFC 5321 §4.5.3.2.7)
    server = make_server(kind, None, idle_timeout=1.0)
    peer = Peer(server.port)
    peer.expect(220)
    took = _drip(peer.sock, b"NOOP " + b"x" * 400, 0.1, 6.0)
    assert took < 4.0


@pytest.mark.parametrize("kind", KINDS)
def test_dripped_first_bdat_chunk_meets_the_data_rate(
    kind: str, make_server: Callable[..., Any]
) -> None:
    # issue 10 item 7: inside the first BDAT chunk the state is still RCPT, and the
    # minimum data rate did not apply (RFC 3030 §2: the chunk is message content)
    server = make_server(kind, None, idle_timeout=30.0, min_data_rate=1000.0, data_rate_grace=0.5)
    peer = Peer(server.port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    peer.expect(250, "MAIL FROM:<a@b.example>")
    peer.expect(250, "RCPT TO:<c@d.example>")
    peer.send(b"BDAT 100000 LAST\r\n")
    start = time.monotonic()
    took = _drip(peer.sock, b"y" * 400, 0.05, 8.0)
    assert took < 4.0, time.monotonic() - start


# --------------------------------------------------------- item 8: per-client limits


@pytest.mark.parametrize("kind", KINDS)
def test_connections_per_client(kind: str, make_server: Callable[..., Any]) -> None:
    # issue 10 item 8: one address may hold at most N connections (Postfix
    # smtpd_client_connection_count_limit); over it, 421 and close
    server = make_server(kind, None, max_connections_per_client=2)
    first, second = Peer(server.port), Peer(server.port)
    first.expect(220)
    second.expect(220)
    third = Peer(server.port)
    code, lines = third.read_reply()
    assert code == 421 and "from your address" in lines[0]
    assert third.closed()
    first.expect(221, "QUIT")
    assert _wait_for(lambda: server.connections <= 1, TIMEOUT)
    Peer(server.port).expect(220)  # a slot of this address is free again


@pytest.mark.parametrize("kind", KINDS)
def test_connection_rate_per_client(kind: str, make_server: Callable[..., Any]) -> None:
    # issue 10 item 8: new connections per minute per address
    server = make_server(kind, None, max_connection_rate_per_client=3)
    for _ in range(3):
        peer = Peer(server.port)
        peer.expect(220)
        peer.expect(221, "QUIT")
    code, lines = Peer(server.port).read_reply()
    assert code == 421 and "from your address" in lines[0]


def test_default_per_client_limit_is_postfix_like() -> None:
    assert DEFAULT_MAX_CONNECTIONS_PER_CLIENT == 50


@pytest.mark.parametrize("kind", KINDS)
def test_implicit_tls_handshakes_are_counted(kind: str, make_server: Callable[..., Any]) -> None:
    # issue 10 item 8: connections still in their implicit-TLS handshake took no slot,
    # so silent ones exhausted the descriptors
    certs = test_certs()
    server = make_server(
        kind,
        None,
        tls_context=certs.server_context(),
        implicit_tls=True,
        max_connections=2,
        max_connections_per_client=None,
        tls_handshake_timeout=10.0,
    )
    silent = [_raw(server.port), _raw(server.port)]
    assert _wait_for(lambda: server.connections == 2, TIMEOUT), server.connections
    third = _raw(server.port)
    assert _answered(third, 2.0) == b""  # closed at once, nothing said in clear
    assert server.connections == 2
    for sock in [*silent, third]:
        sock.close()


_FD_SERVER = textwrap.dedent(
    """
    import asyncio, logging, resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    from sansio_smtp.adapters import AsyncioServer

    async def main():
        server = AsyncioServer(None, max_connections=1000, max_connections_per_client=None)
        await server.start()
        print(server.port, server.max_connections, flush=True)
        await asyncio.sleep(float(sys.argv[1]))
        server.close()

    asyncio.run(main())
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX descriptor limits")
def test_max_connections_stays_under_the_descriptor_limit(tmp_path: Any) -> None:
    # issue 10 item 8: 1,100 silent connections against a 1,024-descriptor limit made
    # asyncio log "Too many open files" over and over; max_connections is now derived down
    # from RLIMIT_NOFILE (here 128), so accept() never runs out of descriptors
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.Popen(
        [sys.executable, "-c", _FD_SERVER, "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    socks: list[socket.socket] = []
    try:
        assert proc.stdout is not None
        port, cap = map(int, proc.stdout.readline().split())
        assert cap == 128 - 32
        for _ in range(150):
            with contextlib.suppress(OSError):
                socks.append(_raw(port))
        time.sleep(1.0)
        greeted = sum(1 for s in socks if _answered(s, 0.1).startswith(b"220"))
        assert greeted == cap
    finally:
        for s in socks:
            s.close()
        _out, err = proc.communicate(timeout=20)
    # asyncio logged a traceback per failed accept(): now one line per interval
    assert err.count("Too many open files") <= 2, err[-2000:]
    assert "Traceback" not in err, err[-2000:]


# ---------------------------------------------------- item 9: AUTH guessing budget


def _plain(user: str, password: str) -> str:
    return "AUTH PLAIN " + base64.b64encode(f"\0{user}\0{password}".encode()).decode()


@pytest.mark.parametrize("kind", KINDS)
def test_auth_failures_across_connections_are_budgeted(
    kind: str, make_server: Callable[..., Any]
) -> None:
    # issue 10 item 9: 3 failures closed one session, but reconnecting allowed unbounded
    # guessing; now N failures per window per address, then 454 4.7.0 (RFC 4954 §6)
    config = Config(hostname="mx.test", extensions=EXT, allow_plaintext_auth=True)
    server = make_server(
        kind,
        None,
        config=config,
        auth={"user": "secret"},
        max_auth_failures_per_client=3,
        auth_failure_window=60.0,
    )
    peer = Peer(server.port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    peer.expect(235, _plain("user", "secret"))  # a success does not count
    for _ in range(3):
        peer = Peer(server.port)
        peer.expect(220)
        peer.expect(250, "EHLO c.example")
        peer.expect(535, _plain("user", "guess"))
    peer = Peer(server.port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    lines = peer.expect(454, _plain("user", "secret"))  # not even checked now
    assert lines[0].startswith("4.7.0")
