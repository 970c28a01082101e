"""The server adapters as a package of thin parts (issue 12 item 7): one responsibility per
module, one ServerOptions for the three runtimes, ``sansio_smtp.adapters`` exporting the
same objects as before."""

from __future__ import annotations

import importlib
from pathlib import Path

import attrs
import pytest

import sansio_smtp.adapters as adapters
from sansio_smtp.adapters import server
from sansio_smtp.adapters.server import (
    DEFAULT_MAX_MESSAGE_SIZE,
    AsyncioServer,
    MemoryHandler,
    ServerOptions,
    SyncServer,
)
from sansio_smtp.adapters.server._options import (
    BLOCKED_WRITE_WAIT,
    GOODBYE_WRITE,
    ServerKeywords,
    peer_address,
)

PACKAGE = Path(server.__file__).parent

# the names sansio_smtp.adapters exported from handlers / sync_server / asyncio_server /
# anyio_server before the split
SERVER_NAMES = (
    "AsyncioServer",
    "Authenticator",
    "Envelope",
    "Handler",
    "MaildirHandler",
    "MboxHandler",
    "MemoryHandler",
    "PasswordTable",
    "PrintHandler",
    "Reject",
    "RelayHandler",
    "Session",
    "SinkHandler",
    "SyncServer",
    "received_header",
    "serve",
)


def test_adapters_exports_the_server_objects() -> None:
    # issue 12 item 9: sansio_smtp.adapters keeps exporting every name it exports today
    for name in SERVER_NAMES:
        assert name in adapters.__all__, name
        assert getattr(adapters, name) is getattr(server, name), name
    assert adapters.ServerOptions is ServerOptions


def test_anyio_names_are_lazy_and_the_same() -> None:
    pytest.importorskip("anyio")
    for name in ("AnyioServer", "serve_anyio"):
        assert getattr(adapters, name) is getattr(server, name)
        assert getattr(server, name) is getattr(server._anyio, name)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "old",
    ["handlers", "sync_server", "asyncio_server", "anyio_server", "_limits"],
)
def test_old_modules_are_gone(old: str) -> None:
    # issue 12 item 7: one home per responsibility, no second copy left behind
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"sansio_smtp.adapters.{old}")


def test_no_module_is_long() -> None:
    # issue 12 item 7: none over about 600 lines
    for path in PACKAGE.glob("*.py"):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 600, (path.name, lines)


def test_keywords_name_the_options() -> None:
    # the constructors' keywords (ServerKeywords) and ServerOptions' fields stay one list
    fields = {a.name for a in attrs.fields(ServerOptions)}
    assert set(ServerKeywords.__annotations__) == fields


def test_options_object_and_keywords() -> None:
    # issue 12 item 7: one constructor: options= or keywords, keywords win
    options = ServerOptions(hostname="opts.example", idle_timeout=7.0, max_message_size=1000)
    handler = MemoryHandler()
    srv = SyncServer(handler, options=options, idle_timeout=3.0)
    try:
        assert srv.options.hostname == "opts.example"
        assert srv.config.hostname == "opts.example"
        assert srv.idle_timeout == 3.0
        assert srv.config.max_message_size == 1000
        assert srv.handler is handler
        assert srv.max_connections == min(100, srv.max_connections)  # blocking default
    finally:
        srv.close()
    aio = AsyncioServer(options=options)
    assert aio.idle_timeout == 7.0
    assert aio.config.max_message_size == 1000
    assert ServerOptions().max_message_size == DEFAULT_MAX_MESSAGE_SIZE


def test_runtime_defaults_differ_only_in_max_connections() -> None:
    srv = SyncServer()
    try:
        assert srv.max_connections <= 100
    finally:
        srv.close()
    assert AsyncioServer().max_connections <= 1000
    assert AsyncioServer(max_connections=5).max_connections == 5


def test_unknown_keywords_are_refused() -> None:
    # as before the split: SyncServer takes no backlog, AnyioServer no path; a misspelt
    # option is a TypeError, not silently ignored
    with pytest.raises(TypeError, match="backlog"):
        SyncServer(backlog=5)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="idle_timout"):
        AsyncioServer(idle_timout=5)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="backlog"):
        SyncServer(options=ServerOptions(backlog=5))
    anyio_server = pytest.importorskip("sansio_smtp.adapters.server._anyio")
    with pytest.raises(TypeError, match="path"):
        anyio_server.AnyioServer(path="/tmp/x.sock")


def test_option_checks_stay() -> None:
    with pytest.raises(ValueError, match="implicit_tls"):
        AsyncioServer(implicit_tls=True)
    with pytest.raises(ValueError, match="max_connections"):
        AsyncioServer(max_connections=0)
    with pytest.raises(ValueError, match="max_message_size"):
        AsyncioServer(max_message_size=0)


def test_peer_address() -> None:
    assert peer_address(("127.0.0.1", 25, 0, 0)) == ("127.0.0.1", 25)
    assert peer_address(b"/run/lmtp") == "/run/lmtp"
    assert peer_address("") == ""
    assert peer_address(None) is None


def test_write_timeout_policy() -> None:
    # RFC 5321 §4.5.3.2.7: 5 minutes without an idle timeout; a 421 before closing: less
    srv = AsyncioServer()
    assert srv._write_timeout(closing=False) == BLOCKED_WRITE_WAIT
    assert srv._write_timeout(closing=True) == GOODBYE_WRITE
    quick = AsyncioServer(idle_timeout=0.5)
    assert quick._write_timeout(closing=False) == 0.5
    assert quick._write_timeout(closing=True) == 0.5
    assert srv._expired_reply(True).lines != srv._expired_reply(False).lines
    assert srv._expired_reply(False).code == 421


def test_plaintext_after_starttls_is_typed() -> None:
    # issue 12 item 8; CVE-2011-0411: a command pipelined behind STARTTLS closes the
    # connection, and the error says why by its type, not by its message text
    from sansio_smtp import Config, Connection, PlaintextAfterStartTLS, Role
    from sansio_smtp.adapters._io import CLOSE, READ, Write
    from sansio_smtp.adapters.server import Session
    from sansio_smtp.adapters.server._dispatcher import Dispatcher, Hooks

    config = Config(hostname="mx.test", extensions={"STARTTLS": ()})
    d = Dispatcher(Connection(Role.SERVER, config), Hooks(MemoryHandler()), Session())
    steps = d.steps()
    assert type(next(steps)) is Write  # the greeting
    assert steps.send(None) is READ
    d.feed(b"EHLO c.test\r\n")
    assert type(steps.send(None)) is Write
    assert steps.send(None) is READ
    d.feed(b"STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n")
    op = steps.send(None)
    assert type(op) is Write and b"".join(op.chunks).startswith(b"220")
    assert steps.send(None) is CLOSE
    assert isinstance(d.error, PlaintextAfterStartTLS)


def _dispatcher(handler: object, **config: object) -> object:
    from sansio_smtp import Config, Connection, Role
    from sansio_smtp.adapters.server import Session
    from sansio_smtp.adapters.server._dispatcher import Dispatcher, Hooks

    conf = Config(hostname="mx.test", **config)  # type: ignore[arg-type]
    return Dispatcher(Connection(Role.SERVER, conf), Hooks(handler), Session())


def test_pipelined_replies_go_out_in_one_write() -> None:
    # RFC 2920 §3.1: the replies to a pipelined group may go out together; the Dispatcher
    # collects them and yields one Write before it waits for the client again
    from sansio_smtp.adapters._io import READ, Write
    from sansio_smtp.adapters.server._dispatcher import Dispatcher

    d = _dispatcher(MemoryHandler(), extensions={"PIPELINING": ()})
    assert isinstance(d, Dispatcher)
    steps = d.steps()
    next(steps)
    assert steps.send(None) is READ
    d.feed(b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n")
    op = steps.send(None)
    assert type(op) is Write
    wire = b"".join(op.chunks)
    assert [line[:3] for line in wire.split(b"\r\n") if line[3:4] == b" "] == [
        b"250",
        b"250",
        b"250",
        b"354",
    ]
    assert steps.send(None) is READ


def test_awaitable_hook_is_an_await_request() -> None:
    # issue 12 item 7: an awaitable hook result is an Await request; its value is sent
    # back in, its exception thrown in (a handler error: 451 4.3.0, RFC 5321 §4.2.3)
    from sansio_smtp.adapters._io import READ, Await, Write
    from sansio_smtp.adapters.server._dispatcher import Dispatcher

    class Async:
        async def mail(self, session: object, event: object) -> None:
            return None

    errors: list[BaseException] = []
    d = _dispatcher(Async())
    assert isinstance(d, Dispatcher)
    d._on_error = errors.append
    steps = d.steps()
    next(steps)
    assert steps.send(None) is READ
    d.feed(b"HELO c.test\r\nMAIL FROM:<a@b.test>\r\n")
    op = steps.send(None)
    assert type(op) is Write  # the HELO reply goes out before the wait
    op = steps.send(None)
    assert type(op) is Await and d.awaiting is op.awaitable and not d.idle
    op.awaitable.close()  # type: ignore[attr-defined]
    op = steps.throw(RuntimeError("store down"))
    assert type(op) is Write and b"".join(op.chunks).startswith(b"451 4.3.0")
    assert d.awaiting is None
    assert [type(e) for e in errors] == [RuntimeError]


def test_adapters_finds_each_name_on_its_side() -> None:
    # adapters.__getattr__ looks a server name up without importing the client package
    client = importlib.import_module("sansio_smtp.adapters.client")
    table = adapters._SERVER_NAMES  # type: ignore[attr-defined]
    assert table - {"AnyioServer", "serve_anyio"} == set(adapters.__all__) & set(server.__all__)
    assert set(adapters.__all__) - table <= set(client.__all__)
    assert not set(client.__all__) & table


def test_a_server_import_loads_no_client_and_a_client_import_no_server() -> None:
    import subprocess
    import sys

    def loaded_after(code: str) -> set[str]:
        out = subprocess.run(
            [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
            capture_output=True,
            text=True,
            check=True,
            cwd=PACKAGE.parent.parent.parent,
        ).stdout
        return set(out.split())

    served = loaded_after("from sansio_smtp.adapters import AsyncioServer, Handler")
    assert "sansio_smtp.adapters.server" in served
    assert "sansio_smtp.adapters.client" not in served
    assert "email" not in served
    # nor what only some servers need: the blocking server's threads, the PROXY protocol,
    # per-client limits (ipaddress), stores on disk (pathlib)
    for deferred in (
        "sansio_smtp.adapters.server._blocking",
        "socketserver",
        "sansio_smtp.proxy",
        "ipaddress",
        "pathlib",
    ):
        assert deferred not in served, deferred
    sent = loaded_after("from sansio_smtp.adapters import SMTPClient")
    assert "sansio_smtp.adapters.client" in sent
    assert "sansio_smtp.adapters.server" not in sent
