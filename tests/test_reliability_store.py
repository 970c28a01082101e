"""Issue 10, the stores: a default message size, content streamed to disk with bounded
memory, durable Maildir delivery, binary content kept or refused, store I/O off the event
loop, an mbox appended without re-reading it, and a terminal-safe, non-blocking
PrintHandler."""

from __future__ import annotations

import contextlib
import io
import itertools
import mailbox
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sansio_smtp import Address, Config
from sansio_smtp.adapters import AnyioServer, SyncServer
from sansio_smtp.adapters.server import (
    DEFAULT_MAX_MESSAGE_SIZE,
    Envelope,
    Handler,
    MaildirHandler,
    MboxHandler,
    PrintHandler,
    Session,
    SinkHandler,
)
from sansio_smtp.adapters.server._stores import printable

from .test_server_adapters import CLI, EXT, Peer, ThreadedAsyncioServer, transaction

ROOT = Path(__file__).resolve().parent.parent
KINDS = ["asyncio", "sync", "anyio"]


@pytest.fixture
def serve() -> Iterator[Callable[..., Any]]:
    """Start a server of a kind in the background; returns something with ``port``."""
    stack = contextlib.ExitStack()

    def start(kind: str, handler: object, **options: Any) -> Any:
        options.setdefault("config", Config(hostname="mx.test", extensions=EXT))
        if kind == "asyncio":
            server = ThreadedAsyncioServer(handler, **options)
            stack.callback(server.shutdown, 2.0)
            return server
        if kind == "sync":
            sync = SyncServer(handler, poll_interval=0.05, **options).start()
            stack.callback(sync.shutdown, 2.0)
            return sync
        portal = stack.enter_context(anyio.from_thread.start_blocking_portal())
        return stack.enter_context(
            portal.wrap_async_context_manager(AnyioServer(handler, **options))
        )

    with stack:
        yield start


@pytest.fixture
def peers() -> Iterator[Callable[[int], Peer]]:
    opened: list[Peer] = []

    def connect(port: int) -> Peer:
        opened.append(Peer(port))
        return opened[-1]

    yield connect
    for peer in opened:
        peer.close()


@pytest.fixture
def cli() -> Iterator[Callable[..., CLI]]:
    running: list[CLI] = []

    def start(*args: str) -> CLI:
        running.append(CLI(*args))
        return running[-1]

    yield start
    for proc in running:
        if proc.proc.poll() is None:
            proc.stop()


def _envelope(**kw: Any) -> Envelope:
    kw.setdefault("mail_from", Address.parse("a@b.example"))
    kw.setdefault("rcpt_tos", [Address.parse("c@d.example")])
    return Envelope(**kw)


def _deliver(handler: Handler, chunks: list[bytes], **kw: Any) -> None:
    """Drive a store's hooks as the Dispatcher does, without a server."""
    session, envelope = Session(), _envelope(**kw)
    for chunk in chunks:
        handler.data_chunk(session, envelope, chunk)
    assert handler.data(session, envelope) is None


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _stored(path: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((path / "new").iterdir())]


def _body(stored: bytes, sep: bytes) -> bytes:
    """The stored message without its Received: header."""
    assert stored.startswith(b"Received: ")
    end = stored.index(b";", stored.index(b" id ")) + 1
    return stored[stored.index(sep, end) + len(sep) :]


# ------------------------------------------------------- item 3: a default size limit


@pytest.mark.parametrize("kind", KINDS)
def test_default_size_limit_advertised_and_enforced(
    kind: str, serve: Callable[..., Any], peers: Callable[[int], Peer]
) -> None:
    # issue 10 item 3: a server without a configured limit accepted any size; RFC 1870 §4
    assert Config().max_message_size is None  # the core (and so clients) stays unlimited
    server = serve(kind, SinkHandler())
    peer = peers(server.port)
    peer.expect(220)
    assert f"SIZE {DEFAULT_MAX_MESSAGE_SIZE}" in peer.expect(250, "EHLO c.example")
    # RFC 1870 §6.1: a declared size over the limit gets 552 at MAIL
    peer.expect(552, f"MAIL FROM:<a@b.example> SIZE={DEFAULT_MAX_MESSAGE_SIZE + 1}")
    small = serve(kind, SinkHandler(), max_message_size=1000)
    peer = peers(small.port)
    peer.expect(220)
    assert "SIZE 1000" in peer.expect(250, "EHLO c.example")
    peer.expect(250, "MAIL FROM:<a@b.example>")
    peer.expect(250, "RCPT TO:<c@d.example>")
    peer.expect(354, "DATA")
    peer.send((b"x" * 76 + b"\r\n") * 30 + b".\r\n")
    peer.expect(552)  # RFC 5321 §4.5.3.1.10


@pytest.mark.parametrize("kind", ["asyncio", "sync"])
def test_config_limit_wins_and_none_disables(
    kind: str, serve: Callable[..., Any], peers: Callable[[int], Peer]
) -> None:
    # issue 10 item 3: the user's Config decides when it sets a limit
    config = Config(hostname="mx.test", extensions=EXT, max_message_size=5000)
    peer = peers(serve(kind, SinkHandler(), config=config).port)
    peer.expect(220)
    assert "SIZE 5000" in peer.expect(250, "EHLO c.example")
    peer = peers(serve(kind, SinkHandler(), max_message_size=None).port)
    peer.expect(220)
    assert not any(line.startswith("SIZE") for line in peer.expect(250, "EHLO c.example"))


def test_cli_max_size_default_in_help() -> None:
    # issue 10 item 3: serve --max-size has a default, shown in --help
    out = subprocess.run(
        [sys.executable, "-m", "sansio_smtp", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    ).stdout
    assert f"(default: {DEFAULT_MAX_MESSAGE_SIZE})" in " ".join(out.split())


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_maildir_memory_stays_bounded(cli: Callable[..., CLI], tmp_path: Path) -> None:
    # issue 10 item 3: one 300 MB message peaked at 930 MB RSS (3 copies held); the
    # content now streams to tmp/, so the peak grows by chunks, not by the message.
    size = 64 * 1024 * 1024
    server = cli("--maildir", str(tmp_path / "md"), "--max-size", str(2 * size))
    pid = server.proc.pid
    peer = Peer(server.port)
    peer.sock.settimeout(20)
    try:
        peer.expect(220)
        peer.expect(250, "EHLO c.example")
        base = _rss_kib(pid, "VmRSS")
        peer.expect(250, "MAIL FROM:<a@b.example>")
        peer.expect(250, "RCPT TO:<c@d.example>")
        peer.expect(354, "DATA")
        block = (b"y" * 998 + b"\r\n") * 1049  # ~1 MiB of 1000-octet lines
        for _ in range(size // len(block)):
            peer.send(block)
        peer.send(b".\r\n")
        peer.expect(250)
        growth = (_rss_kib(pid, "VmHWM") - base) * 1024
    finally:
        peer.close()
    assert growth < size // 4, f"peak RSS grew by {growth} octets for a {size}-octet message"
    (stored,) = _stored(tmp_path / "md")
    assert len(stored) > size - size // 16  # all of it, with LF line ends


# ------------------------------------------------------------ item 4: durability


@pytest.mark.parametrize("kind", KINDS)
def test_maildir_fsyncs_file_and_new_directory_before_250(
    kind: str,
    serve: Callable[..., Any],
    peers: Callable[[int], Peer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # issue 10 item 4, RFC 5321 §6.1: a 250 promises the message survives a crash, so the
    # file and the directory entry in new/ are on disk before it is sent
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    md = tmp_path / "md"
    server = serve(kind, MaildirHandler(md))
    peer = peers(server.port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    peer.expect(250, "MAIL FROM:<a@b.example>")
    peer.expect(250, "RCPT TO:<c@d.example>")
    peer.expect(354, "DATA")
    peer.send(b"Subject: durable\r\n\r\nx\r\n.\r\n")
    peer.expect(250)
    seen_at_250 = list(synced)  # the reply comes after the store step returned
    (name,) = os.listdir(md / "new")
    assert str(md / "tmp" / name) in seen_at_250  # the content (fsynced before the link)
    assert str(md / "new") in seen_at_250  # the directory holding the new name
    assert seen_at_250.index(str(md / "tmp" / name)) < seen_at_250.index(str(md / "new"))


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_kill_9_right_after_250_loses_nothing(cli: Callable[..., CLI], tmp_path: Path) -> None:
    # issue 10 item 4: the message is in new/ when the 250 is sent; kill -9 keeps it
    md = tmp_path / "md"
    server = cli("--maildir", str(md))
    peer = Peer(server.port)
    try:
        peer.expect(220)
        peer.expect(250, "EHLO c.example")
        transaction(peer, b"Subject: kept\r\n\r\nafter kill -9\r\n")
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
    finally:
        peer.close()
    (stored,) = _stored(md)
    assert stored.endswith(b"Subject: kept\n\nafter kill -9\n")
    assert not os.listdir(md / "tmp")


# ---------------------------------------------------------------- item 5: binary


def _bdat_binary(peer: Peer, content: bytes, cut: int) -> None:
    peer.expect(250, "MAIL FROM:<a@b.example> BODY=BINARYMIME")
    peer.expect(250, "RCPT TO:<c@d.example>")
    first, last = content[:cut], content[cut:]
    peer.send(b"BDAT %d\r\n" % len(first) + first)
    peer.expect(250)
    peer.send(b"BDAT %d LAST\r\n" % len(last) + last)
    peer.expect(250)


# 272 octets: every octet value, CRLF pairs, bare CR and LF, a CR at a BDAT boundary
BINARY = bytes(range(256)) + b"\r\n\r\r\nFrom \r\n.\r\n\r"


@pytest.mark.parametrize("kind", KINDS)
def test_maildir_keeps_binarymime_octets_exactly(
    kind: str, serve: Callable[..., Any], peers: Callable[[int], Peer], tmp_path: Path
) -> None:
    # issue 10 item 5: 272 binary octets were stored as 269 (CRLF -> LF); RFC 3030 §3
    assert len(BINARY) == 272
    md = tmp_path / "md"
    peer = peers(serve(kind, MaildirHandler(md)).port)
    peer.expect(220)
    assert "BINARYMIME" in peer.expect(250, "EHLO c.example")
    _bdat_binary(peer, BINARY, BINARY.index(b"\r\r") + 1)  # the cut falls after a CR
    (stored,) = _stored(md)
    assert _body(stored, b"\r\n") == BINARY


@settings(max_examples=60, deadline=None)
@given(content=st.binary(max_size=600), cuts=st.lists(st.integers(0, 600), max_size=6))
def test_maildir_store_property(content: bytes, cuts: list[int], tmp_path_factory: Any) -> None:
    # issue 10 item 5: whatever the chunking, BINARYMIME is stored exactly and text with
    # CRLF -> LF (the local form a Maildir reader expects)
    md = tmp_path_factory.mktemp("md")
    handler = MaildirHandler(md)
    _deliver(handler, _split(content, cuts), mail_params={"BODY": "BINARYMIME"})
    _deliver(handler, _split(content, cuts))
    stored = _stored(md)
    binary = [s for s in stored if b"\r\n\tby " in s]  # its header kept CRLF too
    text = [s for s in stored if s not in binary]
    assert [_body(s, b"\r\n") for s in binary] == [content]
    assert [_body(s, b"\n") for s in text] == [content.replace(b"\r\n", b"\n")]
    assert not os.listdir(md / "tmp")


@pytest.mark.parametrize("kind", ["asyncio", "sync"])
def test_mbox_refuses_binarymime(
    kind: str, serve: Callable[..., Any], peers: Callable[[int], Peer], tmp_path: Path
) -> None:
    # issue 10 item 5: an mbox (LF lines, From-quoting) cannot keep binary octets
    peer = peers(serve(kind, MboxHandler(tmp_path / "mbox")).port)
    peer.expect(220)
    peer.expect(250, "EHLO c.example")
    code, lines = peer.cmd("MAIL FROM:<a@b.example> BODY=BINARYMIME")
    assert code == 555 and lines[0].startswith("5.6.1")
    transaction(peer)


def test_cli_mbox_does_not_advertise_binarymime(cli: Callable[..., CLI], tmp_path: Path) -> None:
    # issue 10 item 5: stop advertising what the store cannot keep (RFC 3030 §3)
    server = cli("--mbox", str(tmp_path / "mbox"))
    peer = Peer(server.port)
    try:
        peer.expect(220)
        ehlo = peer.expect(250, "EHLO c.example")
    finally:
        peer.close()
    assert "CHUNKING" in ehlo and "BINARYMIME" not in ehlo


def _mboxrd_messages(raw: bytes) -> list[bytes]:
    """Read an mboxrd file back: split at From lines, drop the separator blank line,
    remove one '>' from quoted From lines."""
    out = []
    for part in re.split(rb"(?m)^From [^\n]*\n", raw)[1:]:
        assert part.endswith(b"\n\n")
        body = part[:-1]
        out.append(re.sub(rb"(?m)^>(>*From )", rb"\1", body))
    return out


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(
        st.sampled_from([b"From x", b">From y", b">>From z", b"text", b"", b" From", b"From"]),
        max_size=8,
    ),
    cuts=st.lists(st.integers(0, 80), max_size=4),
)
def test_mbox_mboxrd_round_trip(lines: list[bytes], cuts: list[int], tmp_path_factory: Any) -> None:
    # issue 10 item 10: the mbox is appended with mboxrd quoting (reversible)
    path = tmp_path_factory.mktemp("mb") / "mbox"
    handler = MboxHandler(path)
    content = b"".join(line + b"\r\n" for line in lines)
    _deliver(handler, _split(content, cuts))
    _deliver(handler, [b"Subject: second\r\n\r\nlast line without CRLF"])
    first, second = _mboxrd_messages(path.read_bytes())
    assert _body(first, b"\n") == content.replace(b"\r\n", b"\n")
    assert _body(second, b"\n") == b"Subject: second\n\nlast line without CRLF\n"
    assert [m["Subject"] for m in mailbox.mbox(path, create=False)] == [None, "second"]


# ------------------------------------------------------- item 10: off the event loop


class SlowStore(Handler):
    """A store whose step blocks for a while (a slow disk, a big fsync)."""

    blocking_io = True

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.threads: list[str] = []

    def data(self, session: Session, envelope: Envelope) -> None:
        self.threads.append(threading.current_thread().name)
        time.sleep(self.seconds)


@pytest.mark.parametrize("kind", ["asyncio", "anyio"])
def test_slow_store_does_not_stall_other_clients(
    kind: str, serve: Callable[..., Any], peers: Callable[[int], Peer]
) -> None:
    # issue 10 item 10: storing one 200 MB message stalled every client for 2 s
    handler = SlowStore(2.5)
    server = serve(kind, handler)
    first = peers(server.port)
    first.expect(220)
    first.expect(250, "EHLO c.example")
    first.expect(250, "MAIL FROM:<a@b.example>")
    first.expect(250, "RCPT TO:<c@d.example>")
    first.expect(354, "DATA")
    first.send(b"Subject: slow\r\n\r\nx\r\n.\r\n")
    deadline = time.monotonic() + 2.0
    while not handler.threads and time.monotonic() < deadline:
        time.sleep(0.01)
    assert handler.threads, "the store step did not start"
    started = time.monotonic()
    second = peers(server.port)
    second.expect(220)
    second.expect(250, "NOOP")
    assert time.monotonic() - started < 1.5  # well under the store's 2.5 s
    first.expect(250)
    assert handler.threads[0] != "MainThread"


def _rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("rchar")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs /proc/self/io")
def test_mbox_delivery_does_not_read_the_mailbox(tmp_path: Path) -> None:
    # issue 10 item 10: each delivery re-parsed the whole mbox (170 ms at 7.7 MB)
    path = tmp_path / "mbox"
    message = b"From old@example Thu Jan  1 00:00:00 1970\nSubject: old\n\n" + b"z" * 998 + b"\n"
    path.write_bytes((message + b"\n") * 8000)  # ~8 MB
    handler = MboxHandler(path)
    before = _rchar()
    _deliver(handler, [b"Subject: new\r\n\r\nbody\r\n"])
    assert _rchar() - before < 256 * 1024  # the spool and the mbox's last 2 octets
    raw = path.read_bytes()
    assert raw.endswith(b"\nSubject: new\n\nbody\n\n")
    assert raw.count(b"\n\nFrom ") == 8000  # a blank line before each new From line


# --------------------------------------------------------------- item 11: printing


def test_print_handler_escapes_terminal_controls() -> None:
    # issue 10 item 11: ESC/OSC sequences and C1 controls reached the operator's terminal
    out = io.StringIO()
    handler = PrintHandler(out)
    content = (
        b"Subject: \x1b]0;pwned\x07\r\n\r\n"
        b"\x1b[2J\x1b]52;c;aGVsbG8=\x07 clear+clipboard\r\n"
        b"c1 \xc2\x9b31m and raw \x9b31m, DEL \x7f, CR \roverwrite, tab\tok\r\n"
    )
    handler.data(Session(helo_name="evil\x1b[31m"), _envelope(content=content))
    assert handler.flush(5.0)
    text = out.getvalue()
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", text)
    assert "\\x1b]52;c;aGVsbG8=\\x07" in text and "\\x9b31m" in text and "\\x0doverwrite" in text
    assert "tab\tok\n" in text  # TAB and line ends stay, the message stays readable


@given(st.text() | st.binary().map(lambda b: b.decode("latin-1")))
def test_printable_never_passes_controls(text: str) -> None:
    # issue 10 item 11
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", printable(text))


def test_print_handler_drops_when_the_stream_is_stuck() -> None:
    # issue 10 item 11: bounded memory when stdout does not move; the drop is reported
    gate = threading.Event()

    class Stuck(io.StringIO):
        def write(self, s: str) -> int:
            gate.wait(10)
            return super().write(s)

    out = Stuck()
    handler = PrintHandler(out, max_queued=10_000)
    env = _envelope(content=b"x" * 3000 + b"\r\n")
    for _ in range(10):
        handler.data(Session(), env)  # never blocks
    assert handler.dropped >= 6
    gate.set()
    assert handler.flush(5.0)
    handler.data(Session(), env)
    assert handler.flush(5.0)
    assert f"{handler.dropped} message(s) not printed" in out.getvalue()


@pytest.mark.skipif(sys.platform == "win32", reason="pipe buffering")
def test_cli_print_to_a_pipe_nobody_reads_keeps_serving(cli: Callable[..., CLI]) -> None:
    # issue 10 item 11: with stdout a pipe nobody drains, one 300 KB message blocked the
    # whole server (a second client got no greeting)
    server = cli()  # --print is the default; the test never reads its stdout
    first = Peer(server.port)
    second: Peer | None = None
    try:
        first.expect(220)
        first.expect(250, "EHLO c.example")
        transaction(first, b"Subject: big\r\n\r\n" + (b"p" * 998 + b"\r\n") * 300)
        transaction(first, b"Subject: again\r\n\r\n" + (b"q" * 998 + b"\r\n") * 300)
        started = time.monotonic()
        second = Peer(server.port)
        second.sock.settimeout(2.0)
        second.expect(220)
        second.expect(250, "NOOP")
        assert time.monotonic() - started < 2.0
    finally:
        first.close()
        if second is not None:
            second.close()
