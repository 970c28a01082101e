"""Attacks on the clients (issue 10, items 15 and 16), for every flavour: the blocking
SMTPClient, AsyncSMTPClient, and AnyioSMTPClient on asyncio and on trio, plus the ``send``
command in a subprocess.

- Item 15: a server that drips one octet at a time must not hold a client longer than the
  phase's timeout (RFC 5321 §4.5.3.2 bounds the wait for a reply, not for each octet);
  neither may a server that reads what we write one small piece at a time; ``deadline=``
  bounds the whole session.
- Item 16: without TLS, no credentials of any mechanism go on the wire unless
  ``allow_plaintext_auth`` (a man in the middle that strips STARTTLS and offers CRAM-MD5 or
  SCRAM-SHA-1 could crack the password offline from the response).

Every server here is a thread on 127.0.0.1 with a lifetime cap (WATCHDOG), so a client
that is not bounded makes a test fail in seconds instead of hanging it.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from sansio_smtp.adapters.client import (
    AsyncSMTPClient,
    SMTPAuthError,
    SMTPAuthNeedsTLSError,
    SMTPClient,
    SMTPError,
    SMTPTimeoutError,
    SMTPTLSError,
    TLSMode,
)
from sansio_smtp.adapters.client._anyio import AnyioSMTPClient

ROOT = Path(__file__).resolve().parent.parent
WATCHDOG = 15.0  # seconds a scripted server keeps a connection open at most
DRIP = 0.2  # seconds between the octets a dripping server sends
MESSAGE = b"Subject: reliability\r\n\r\nhello\r\n"

try:
    import trio  # noqa: F401

    HAVE_TRIO = True
except ImportError:  # pragma: no cover - trio is a test extra
    HAVE_TRIO = False

FLAVOURS = [
    "sync",
    "asyncio",
    "anyio-asyncio",
    pytest.param(
        "anyio-trio", marks=pytest.mark.skipif(not HAVE_TRIO, reason="trio is not installed")
    ),
]

Script = Callable[[socket.socket, threading.Event, list[bytes]], None]


# ==================================================================== scripted servers


class ScriptServer:
    """Accepts connections on 127.0.0.1 and runs ``script(sock, stop, lines)`` on each in a
    thread; ``lines`` collects every line the client sent. Each connection is closed after
    WATCHDOG seconds at most, and leaving the ``with`` block stops everything."""

    def __init__(self, script: Script, rcvbuf: int | None = None) -> None:
        self.script = script
        self.lines: list[bytes] = []
        self.stop = threading.Event()
        self.listener = socket.socket()
        if rcvbuf is not None:  # a small receive window, inherited by accepted sockets
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.settimeout(0.1)
        self.port: int = self.listener.getsockname()[1]
        self.threads: list[threading.Thread] = []
        self.accepter = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> ScriptServer:
        self.accepter.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.accepter.join(5)
        for thread in self.threads:
            thread.join(WATCHDOG + 5)
        self.listener.close()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        ended = threading.Event()
        timer = threading.Timer(WATCHDOG, ended.set)
        timer.start()
        stop = _Either(self.stop, ended)
        try:
            with sock:
                sock.settimeout(0.1)
                self.script(sock, stop, self.lines)
        except OSError:
            pass  # the client closed: what most tests want
        finally:
            timer.cancel()


class _Either(threading.Event):
    """Set when either of two events is."""

    def __init__(self, a: threading.Event, b: threading.Event) -> None:
        super().__init__()
        self.a, self.b = a, b

    def is_set(self) -> bool:
        return self.a.is_set() or self.b.is_set()


def read_line(sock: socket.socket, stop: threading.Event, lines: list[bytes]) -> bytes:
    """One CRLF-terminated line from the client (b"" at end of file or on stop)."""
    data = b""
    while not data.endswith(b"\n") and not stop.is_set():
        try:
            octet = sock.recv(1)
        except TimeoutError:
            continue
        if not octet:
            break
        data += octet
    if data:
        lines.append(data)
    return data


def drip(sock: socket.socket, stop: threading.Event, start: bytes) -> None:
    """Send ``start``, then one octet every DRIP seconds until stopped or disconnected."""
    sock.sendall(start)
    while not stop.is_set():
        time.sleep(DRIP)
        sock.sendall(b"x")


def dripping_greeting(sock: socket.socket, stop: threading.Event, lines: list[bytes]) -> None:
    drip(sock, stop, b"220 ")


def dripping_mail_reply(sock: socket.socket, stop: threading.Event, lines: list[bytes]) -> None:
    sock.sendall(b"220 mx.test ESMTP\r\n")
    read_line(sock, stop, lines)  # EHLO
    sock.sendall(b"250 mx.test\r\n")
    read_line(sock, stop, lines)  # MAIL
    drip(sock, stop, b"250 ")


def dripping_tls(sock: socket.socket, stop: threading.Event, lines: list[bytes]) -> None:
    """Implicit TLS: answers the ClientHello with a record header announcing 16 KiB, then
    one octet of it every DRIP seconds."""
    while not stop.is_set():
        try:
            if sock.recv(65536):  # the ClientHello
                break
        except TimeoutError:
            continue
    drip(sock, stop, b"\x16\x03\x03\x40\x00")


def slow_replies(delay: float) -> Script:
    """Answers every command after ``delay`` seconds (each reply well within a timeout)."""

    def script(sock: socket.socket, stop: threading.Event, lines: list[bytes]) -> None:
        sock.sendall(b"220 mx.test ESMTP\r\n")
        while not stop.is_set():
            line = read_line(sock, stop, lines)
            if not line:
                return
            time.sleep(delay)
            sock.sendall(b"221 bye\r\n" if line.upper().startswith(b"QUIT") else b"250 ok\r\n")

    return script


def slow_reader(sock: socket.socket, stop: threading.Event, lines: list[bytes]) -> None:
    """Accepts a transaction, then reads the content 4 KiB every 0.2 s (20 KB/s)."""
    sock.sendall(b"220 mx.test ESMTP\r\n")
    read_line(sock, stop, lines)  # EHLO
    sock.sendall(b"250 mx.test\r\n")
    for reply in (b"250 ok\r\n", b"250 ok\r\n", b"354 go ahead\r\n"):  # MAIL, RCPT, DATA
        read_line(sock, stop, lines)
        sock.sendall(reply)
    while not stop.is_set():
        time.sleep(0.2)
        try:
            if not sock.recv(4096):
                return
        except TimeoutError:
            continue


def auth_offered(mechanisms: bytes) -> Script:
    """An ESMTP server without STARTTLS (as after a man in the middle stripped it) that
    offers AUTH ``mechanisms`` and answers any AUTH with a CRAM-MD5-like challenge."""

    def script(sock: socket.socket, stop: threading.Event, lines: list[bytes]) -> None:
        sock.sendall(b"220 mx.test ESMTP\r\n")
        while not stop.is_set():
            line = read_line(sock, stop, lines)
            if not line:
                return
            verb = line.split()[0].upper() if line.split() else b""
            if verb in (b"EHLO", b"LHLO"):
                sock.sendall(b"250-mx.test\r\n250-PIPELINING\r\n250 AUTH " + mechanisms + b"\r\n")
            elif verb == b"AUTH":
                sock.sendall(b"334 PDEyMzQ1QG14LnRlc3Q+\r\n")  # <12345@mx.test>
            elif verb == b"QUIT":
                sock.sendall(b"221 bye\r\n")
                return
            elif line.startswith(b"*"):
                sock.sendall(b"501 cancelled\r\n")
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                sock.sendall(b"250 ok\r\n")
            else:
                sock.sendall(b"535 5.7.8 no\r\n")

    return script


# ======================================================================= every flavour


def attempt(
    flavour: str, port: int, *, send: bool = False, noops: int = 0, **options: Any
) -> tuple[BaseException | None, float]:
    """Connect a client of ``flavour``, then send a message and/or NOOP ``noops`` times;
    returns the exception raised (None if none) and the seconds it took."""
    options.setdefault("tls", TLSMode.PLAIN)
    if flavour == "sync":
        start = time.monotonic()
        client = SMTPClient("127.0.0.1", port, **options)
        try:
            client.connect()
            if send:
                client.sendmail("a@example.org", ["b@example.net"], MESSAGE)
            for _ in range(noops):
                client.noop()
            client.quit()
        except Exception as exc:
            return exc, time.monotonic() - start
        finally:
            client.close()
        return None, time.monotonic() - start

    async def run() -> tuple[BaseException | None, float]:
        start = time.monotonic()
        aclient: AsyncSMTPClient | AnyioSMTPClient
        if flavour == "asyncio":
            aclient = AsyncSMTPClient("127.0.0.1", port, **options)
        else:
            aclient = AnyioSMTPClient("127.0.0.1", port, **options)
        try:
            await aclient.connect()
            if send:
                await aclient.sendmail("a@example.org", ["b@example.net"], MESSAGE)
            for _ in range(noops):
                await aclient.noop()
            await aclient.quit()
        except Exception as exc:
            return exc, time.monotonic() - start
        finally:
            await aclient.aclose()
        return None, time.monotonic() - start

    if flavour == "asyncio":
        return asyncio.run(run())
    return anyio.run(run, backend=flavour.removeprefix("anyio-"))


# ========================================================= item 15: reply deadlines


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_dripping_greeting_times_out(flavour: str) -> None:
    # issue 10 item 15; RFC 5321 §4.5.3.2.1: the timeout bounds the wait for the whole 220
    # reply, not for each octet of it
    with ScriptServer(dripping_greeting) as server:
        exc, seconds = attempt(flavour, server.port, timeout=1.0)
    assert isinstance(exc, SMTPTimeoutError), exc
    assert exc.phase == "greeting"
    assert seconds < 2.5, f"held {seconds:.1f} s"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_dripping_mail_reply_times_out(flavour: str) -> None:
    # issue 10 item 15; RFC 5321 §4.5.3.2.2: a fine greeting, then a reply to MAIL that
    # comes one octet at a time
    with ScriptServer(dripping_mail_reply) as server:
        exc, seconds = attempt(flavour, server.port, send=True, timeout=1.0)
    assert isinstance(exc, SMTPTimeoutError), exc
    assert exc.phase == "MAIL"
    assert seconds < 2.5, f"held {seconds:.1f} s"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_dripping_tls_handshake_times_out(flavour: str) -> None:
    # issue 10 item 15: the "tls" timeout bounds the whole handshake, not each recv in it
    with ScriptServer(dripping_tls) as server:
        exc, seconds = attempt(
            flavour, server.port, tls=TLSMode.IMPLICIT, timeouts={"tls": 1.0}, timeout=10.0
        )
    assert isinstance(exc, SMTPTimeoutError), exc
    assert exc.phase == "tls"
    assert seconds < 2.5, f"held {seconds:.1f} s"


def plaintext_greeting_at_once(
    sock: socket.socket, stop: threading.Event, lines: list[bytes]
) -> None:
    """A server that greets in plaintext at once and offers AUTH PLAIN, accepting any."""
    sock.sendall(b"220 mx.test ESMTP\r\n")
    while not stop.is_set():
        line = read_line(sock, stop, lines)
        if not line:
            return
        verb = line.split()[0].upper() if line.split() else b""
        if verb == b"EHLO":
            sock.sendall(b"250-mx.test\r\n250 AUTH PLAIN\r\n")
        elif verb == b"AUTH":
            sock.sendall(b"235 2.7.0 ok\r\n")
        else:
            sock.sendall(b"250 ok\r\n")


class _LateHandshake(AsyncSMTPClient):
    """Starts the implicit TLS handshake 0.3 s late, so that what the server sent at once
    is surely buffered by then (the race the asyncio client lost about 1 time in 30)."""

    async def _handshake(self, *, implicit: bool = False) -> None:
        await asyncio.sleep(0.3)
        await super()._handshake(implicit=implicit)


def test_implicit_tls_refuses_plaintext_read_ahead() -> None:
    # found with issue 10 item 16 (downgrade): with tls=IMPLICIT, plaintext that arrived
    # before the handshake was handed to the core as the greeting, the handshake skipped,
    # and AUTH PLAIN sent in the clear (the core had been told TLS was on). RFC 8314 §3.3
    async def run() -> BaseException | None:
        client = _LateHandshake(
            "127.0.0.1", server.port, tls=TLSMode.IMPLICIT, username="alice",
            password="hunter2", timeout=5.0,
        )  # fmt: skip
        try:
            await client.connect()
        except SMTPError as exc:
            return exc
        finally:
            await client.aclose()
        return None

    with ScriptServer(plaintext_greeting_at_once) as server:
        exc = asyncio.run(run())
    assert isinstance(exc, SMTPTLSError), exc
    assert "before the TLS handshake" in str(exc)
    assert server.lines == []  # not even EHLO


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_session_deadline(flavour: str) -> None:
    # issue 10 item 15: each reply comes in 0.3 s, well within its timeout, but the
    # session as a whole may take 1.5 s from connect
    with ScriptServer(slow_replies(0.3)) as server:
        exc, seconds = attempt(flavour, server.port, noops=20, timeout=5.0, deadline=1.5)
    assert isinstance(exc, SMTPTimeoutError), exc
    assert exc.phase == "session"
    assert "deadline" in str(exc)
    assert 1.3 < seconds < 3.0, f"held {seconds:.1f} s"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_session_deadline_bounds_a_dripping_reply(flavour: str) -> None:
    # issue 10 item 15: the deadline also cuts a reply short whose own timeout is longer
    with ScriptServer(dripping_greeting) as server:
        exc, seconds = attempt(flavour, server.port, timeout=30.0, deadline=1.0)
    assert isinstance(exc, SMTPTimeoutError), exc
    assert exc.phase == "session"
    assert seconds < 2.5, f"held {seconds:.1f} s"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_deadline_leaves_a_quick_session_alone(flavour: str) -> None:
    # issue 10 item 15: a session that ends within its deadline is not affected
    with ScriptServer(slow_replies(0.0)) as server:
        exc, _ = attempt(flavour, server.port, noops=3, timeout=5.0, deadline=10.0)
    assert exc is None


def test_deadline_must_be_positive() -> None:
    with pytest.raises(ValueError, match="deadline"):
        SMTPClient("127.0.0.1", 25, deadline=0)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_slow_reader_bounds_the_write(flavour: str) -> None:
    # issue 10 item 15; RFC 5321 §4.5.3.2.5: a server that reads the content 4 KiB at a
    # time (20 KB/s) makes progress, but the write may take the "data block" timeout only
    # per started MiB handed to the kernel (whose buffers take a few MiB at once). A guard:
    # before the deadlines, the kernel's wake-up threshold happened to bound it too.
    content = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 16384  # 16 MiB
    with ScriptServer(slow_reader, rcvbuf=32768) as server:
        if flavour == "sync":
            start = time.monotonic()
            client = SMTPClient("127.0.0.1", server.port, tls=TLSMode.PLAIN, timeout=1.0)
            with client, pytest.raises(SMTPTimeoutError) as info:
                client.sendmail("a@example.org", ["b@example.net"], content)
            seconds = time.monotonic() - start
            exc: BaseException | None = info.value
        else:

            async def run() -> tuple[BaseException | None, float]:
                start = time.monotonic()
                client: AsyncSMTPClient | AnyioSMTPClient
                kind = AsyncSMTPClient if flavour == "asyncio" else AnyioSMTPClient
                client = kind("127.0.0.1", server.port, tls=TLSMode.PLAIN, timeout=1.0)
                try:
                    async with client:
                        await client.sendmail("a@example.org", ["b@example.net"], content)
                except SMTPError as err:
                    return err, time.monotonic() - start
                return None, time.monotonic() - start

            if flavour == "asyncio":
                exc, seconds = asyncio.run(run())
            else:
                exc, seconds = anyio.run(run, backend=flavour.removeprefix("anyio-"))
    assert isinstance(exc, SMTPTimeoutError), exc
    assert exc.phase == "data block"
    assert seconds < 10.0, f"held {seconds:.1f} s"


# ===================================================== item 16: no AUTH without TLS


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize(
    "mechanisms", [b"CRAM-MD5", b"SCRAM-SHA-1", b"SCRAM-SHA-256", b"CRAM-MD5 PLAIN LOGIN"]
)
@pytest.mark.parametrize("tls", [TLSMode.STARTTLS_OPPORTUNISTIC, TLSMode.PLAIN])
def test_no_credentials_without_tls(flavour: str, mechanisms: bytes, tls: TLSMode) -> None:
    # issue 10 item 16; RFC 4954 §4, RFC 3207 §6: a man in the middle strips STARTTLS and
    # offers a challenge-response mechanism; its response could be cracked offline, so no
    # AUTH line may reach the wire at all
    with ScriptServer(auth_offered(mechanisms)) as server:
        exc, _ = attempt(
            flavour, server.port, tls=tls, username="alice", password="hunter2", timeout=5.0
        )
    assert isinstance(exc, SMTPAuthNeedsTLSError), exc
    assert isinstance(exc, SMTPAuthError)  # what callers already catch
    assert "TLS" in str(exc) and exc.reply is None
    assert not [line for line in server.lines if line.upper().startswith(b"AUTH")]
    assert [line.split()[0] for line in server.lines] == [b"EHLO", b"QUIT"]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_allow_plaintext_auth_still_sends_auth(flavour: str) -> None:
    # issue 10 item 16: the explicit opt-in keeps working (it is the caller's choice)
    with ScriptServer(auth_offered(b"CRAM-MD5")) as server:
        exc, _ = attempt(
            flavour,
            server.port,
            username="alice",
            password="hunter2",
            allow_plaintext_auth=True,
            timeout=5.0,
        )
    assert isinstance(exc, SMTPAuthError) and not isinstance(exc, SMTPAuthNeedsTLSError)
    assert exc.reply is not None and exc.reply.code == 535
    assert any(line.startswith(b"AUTH CRAM-MD5") for line in server.lines)


# ================================================================= the send command


def send_cli(*args: str, timeout: float = 30.0) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "sansio_smtp", "send", *args],
        input=MESSAGE.decode(),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    return proc, time.monotonic() - start


ENVELOPE = ("--from", "a@example.org", "--to", "b@example.net")


def test_cli_timeout_bounds_a_dripping_server() -> None:
    # issue 10 item 15: `send --timeout 1` against a dripping server ends, non-zero
    with ScriptServer(dripping_mail_reply) as server:
        proc, seconds = send_cli("--server", f"127.0.0.1:{server.port}", *ENVELOPE,
                                 "--timeout", "1")  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "timed out" in proc.stderr
    assert seconds < 8, f"held {seconds:.1f} s"


def test_cli_deadline() -> None:
    # issue 10 item 15: `send --deadline` bounds the whole session
    with ScriptServer(dripping_greeting) as server:
        proc, seconds = send_cli("--server", f"127.0.0.1:{server.port}", *ENVELOPE,
                                 "--deadline", "1")  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "deadline" in proc.stderr
    assert seconds < 8, f"held {seconds:.1f} s"


def test_cli_user_without_tls_requires_starttls() -> None:
    # issue 10 item 16: `send --user` without --starttls/--tls does not stay in plaintext:
    # it requires STARTTLS, so a server that does not offer it gets no AUTH and no mail
    with ScriptServer(auth_offered(b"CRAM-MD5")) as server:
        proc, _ = send_cli("--server", f"127.0.0.1:{server.port}", *ENVELOPE,
                           "--user", "alice", "--password", "hunter2",
                           "--timeout", "5")  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "STARTTLS" in proc.stderr
    assert not [line for line in server.lines if line.upper().startswith((b"AUTH", b"MAIL"))]


def test_cli_help_documents_user_and_deadline() -> None:
    proc, _ = send_cli("--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "--deadline" in text
    assert "--user" in text and "implies --starttls" in text
