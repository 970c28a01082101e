# ``python -m sansio_smtp serve``: run the asyncio server from the command line.
#
# Strategy: translate the options into a Config, a handler and AsyncioServer options, print
# "listening on HOST:PORT" (flushed: scripts wait for it, and --port 0 needs it), then serve
# until SIGINT/SIGTERM and shut down gracefully (a second signal stops at once).
# With --workers N the parent process serves nothing itself: it starts N worker processes
# that each bind the same port with SO_REUSEPORT (the kernel spreads connections over
# them), prints "listening on" once all are up, and forwards SIGINT/SIGTERM to them.
# Rules: the option set is a contract shared with __main__ (add_arguments/run); bad
# combinations are usage errors (exit 2) found before anything binds.
"""The ``serve`` subcommand: an SMTP/LMTP server that stores, prints or discards mail."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import logging
import multiprocessing
import os
import signal
import socket
import ssl
import sys
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection as Pipe
from multiprocessing.connection import wait as wait_for_any
from pathlib import Path
from typing import Any

from . import sasl
from ._events import Reply
from .adapters.server import (
    DEFAULT_AUTH_FAILURE_WINDOW,
    DEFAULT_MAX_AUTH_FAILURES_PER_CLIENT,
    DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
    DEFAULT_MAX_MESSAGE_SIZE,
    AsyncioServer,
    Envelope,
    MaildirHandler,
    MboxHandler,
    PrintHandler,
    Session,
    SinkHandler,
)
from .adapters.server._credentials import server_channel_binding
from .config import Config

__all__ = ["DEFAULT_EXTENSIONS", "add_arguments", "build", "run"]

#: advertised by default (SIZE with the --max-size limit, STARTTLS with a certificate, AUTH
#: with --auth: SCRAM-SHA-256-PLUS when the certificate allows channel binding,
#: SCRAM-SHA-256, PLAIN, LOGIN)
DEFAULT_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "PIPELINING": (),  # RFC 2920
    "8BITMIME": (),  # RFC 6152
    "SMTPUTF8": (),  # RFC 6531
    "CHUNKING": (),  # RFC 3030
    "BINARYMIME": (),  # RFC 3030
    "DSN": (),  # RFC 3461
    "ENHANCEDSTATUSCODES": (),  # RFC 2034
}
SHUTDOWN_TIMEOUT = 30.0  # seconds transactions in flight get after SIGINT/SIGTERM
PRINT_FLUSH_TIMEOUT = 5.0  # seconds queued --print output gets to go out at exit


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` options to ``parser``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=8025, help="port to listen on (0: any free port)"
    )
    store = parser.add_mutually_exclusive_group()
    store.add_argument("--maildir", metavar="DIR", help="deliver into this Maildir")
    store.add_argument("--mbox", metavar="FILE", help="append to this mbox file")
    store.add_argument("--print", action="store_true", help="print each message (the default)")
    store.add_argument("--sink", action="store_true", help="accept and discard messages")
    store.add_argument(
        "--handler",
        metavar="MODULE:CLASS",
        help="use your own Handler: MODULE:CLASS, built with no arguments (as aiosmtpd's -c)",
    )
    parser.add_argument("--tls-cert", metavar="PEM", help="certificate chain (PEM)")
    parser.add_argument("--tls-key", metavar="PEM", help="private key (PEM)")
    parser.add_argument(
        "--implicit-tls",
        action="store_true",
        help="TLS from the first byte (port 465 style) instead of STARTTLS",
    )
    parser.add_argument(
        "--require-tls", action="store_true", help="refuse mail before STARTTLS (530)"
    )
    parser.add_argument(
        "--auth",
        metavar="USER:PASSWORD",
        action="append",
        default=[],
        help="accept AUTH (SCRAM-SHA-256[-PLUS], PLAIN, LOGIN) with this account (repeatable)",
    )
    parser.add_argument(
        "--auth-mechanisms",
        metavar="LIST",
        help="what AUTH offers, comma-separated, e.g. SCRAM-SHA-256,PLAIN,LOGIN,CRAM-MD5"
        f" (of {', '.join(sorted(_PASSWORD_MECHANISMS))}; default: SCRAM-SHA-256-PLUS with"
        " a certificate, SCRAM-SHA-256, PLAIN, LOGIN)",
    )
    parser.add_argument(
        "--allow-plaintext-auth",
        action="store_true",
        help="offer AUTH without TLS too (passwords then cross the network in clear)",
    )
    parser.add_argument(
        "--max-size",
        metavar="BYTES",
        type=int,
        default=DEFAULT_MAX_MESSAGE_SIZE,
        help="refuse messages over BYTES octets, advertised as SIZE (default: %(default)s)",
    )
    parser.add_argument(
        "--max-connections-per-client",
        metavar="N",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
        help="connections one client address may hold at once; 0: no limit (default: %(default)s)",
    )
    parser.add_argument(
        "--max-connection-rate",
        metavar="N",
        type=int,
        default=0,
        help="new connections one client address may open per minute; 0: no limit"
        " (default: %(default)s)",
    )
    parser.add_argument(
        "--max-auth-failures",
        metavar="N",
        type=int,
        default=DEFAULT_MAX_AUTH_FAILURES_PER_CLIENT,
        help=f"failed AUTH attempts one client address may make per"
        f" {int(DEFAULT_AUTH_FAILURE_WINDOW)} s before AUTH is refused (454) for a while;"
        " 0: no limit (default: %(default)s)",
    )
    parser.add_argument(
        "--max-connections",
        metavar="N",
        type=int,
        default=1000,
        help="connections at once; beyond them a client gets 421",
    )
    parser.add_argument("--lmtp", action="store_true", help="speak LMTP (RFC 2033)")
    parser.add_argument(
        "--log-traffic",
        action="store_true",
        help="print every line each way to stderr (AUTH exchanges redacted)",
    )
    parser.add_argument(
        "--proxy-protocol",
        action="store_true",
        help="behind a load balancer: each connection starts with a PROXY protocol v1/v2"
        " header naming the real client (connections without one are closed)",
    )
    parser.add_argument("--hostname", metavar="NAME", help="our name in the greeting")
    parser.add_argument(
        "--workers",
        metavar="N",
        type=int,
        default=1,
        help="serve from N processes sharing the port (SO_REUSEPORT: Linux, BSD, macOS);"
        " the kernel spreads connections over them (default: %(default)s)",
    )


class UsageError(ValueError):
    """A bad option combination."""


#: the AUTH mechanisms a {user: password} table can check (the token ones need a verifier)
_PASSWORD_MECHANISMS = frozenset(sasl.SUPPORTED_MECHANISMS) - set(sasl.TOKEN_MECHANISMS)


def _handler(args: argparse.Namespace) -> object:
    try:
        if args.maildir:
            return MaildirHandler(args.maildir)
        if args.mbox:
            return MboxHandler(args.mbox)
    except OSError as exc:
        flag = "--maildir" if args.maildir else "--mbox"
        raise UsageError(f"cannot use {flag} {exc.filename or ''}: {exc.strerror}") from None
    if args.handler:
        return _load_handler(args.handler)
    if args.sink:
        return SinkHandler()
    return PrintHandler()


def _load_handler(spec: str) -> object:
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise UsageError(f"--handler wants MODULE:CLASS, not {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"--handler: cannot import {module_name}: {exc}") from None
    cls = getattr(module, class_name, None)
    if not callable(cls):
        raise UsageError(f"--handler: {module_name} has no class {class_name}")
    return cls()


def _announce(handler: object, *, worker: bool = False) -> None:
    """Print a line per accepted message to stderr: sender, recipients, size, where it
    was stored (prefixed with "worker PID: " in a --workers process). The handler's own
    data() still decides."""
    base = type(handler)
    data: Callable[..., object] = getattr(base, "data", None) or (lambda *_: None)

    def line(envelope: Envelope, result: object) -> None:
        replies = result if isinstance(result, list) else [result]
        if not any(r is None or (isinstance(r, Reply) and r.is_positive) for r in replies):
            return
        sender = f"<{envelope.mail_from}>" if envelope.mail_from is not None else "<>"
        rcpts = ", ".join(f"<{r}>" for r in envelope.rcpt_tos)
        where = f" into {envelope.stored}" if envelope.stored else ""
        size = f"{len(envelope.content)} octets" if envelope.content else "streamed"
        who = f"worker {os.getpid()}: " if worker else ""
        print(f"{who}accepted {sender} -> {rcpts} ({size}){where}", file=sys.stderr, flush=True)

    def announced(self: object, session: Session, envelope: Envelope) -> object:
        result = data(self, session, envelope)
        if inspect.isawaitable(result):

            async def later() -> object:
                value = await result
                line(envelope, value)
                return value

            return later()
        line(envelope, result)
        return result

    handler.__class__ = type(base.__name__, (base,), {"data": announced})


def _mechanisms(text: str, *, certificate: bool) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(m.strip().upper() for m in text.split(",") if m.strip()))
    unknown = [m for m in names if m not in _PASSWORD_MECHANISMS]
    if unknown or not names:
        raise UsageError(
            f"--auth-mechanisms: {', '.join(unknown) or 'none given'}; a password table"
            f" checks {', '.join(sorted(_PASSWORD_MECHANISMS))}"
        )
    if any(sasl.binds_channel(m) for m in names) and not certificate:
        raise UsageError("--auth-mechanisms: -PLUS mechanisms need --tls-cert/--tls-key")
    return names


def _users(values: list[str]) -> dict[str, str]:
    users: dict[str, str] = {}
    for value in values:
        user, sep, password = value.partition(":")  # split at the FIRST colon
        if not sep or not user:
            raise UsageError(f"--auth wants USER:PASSWORD, not {value!r}")
        users[user] = password
    return users


def build(args: argparse.Namespace) -> AsyncioServer:
    """The AsyncioServer the options describe (not started). Raises UsageError."""
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    if (args.implicit_tls or args.require_tls) and not args.tls_cert:
        raise UsageError("--implicit-tls and --require-tls need --tls-cert/--tls-key")
    if args.max_size <= 0:
        raise UsageError("--max-size must be positive")
    for flag in ("max_connections_per_client", "max_connection_rate", "max_auth_failures"):
        if getattr(args, flag) < 0:
            raise UsageError(f"--{flag.replace('_', '-')} must be 0 (no limit) or more")
    if not 0 <= args.port <= 65535:
        raise UsageError("--port must be 0-65535")
    if args.max_connections <= 0:
        raise UsageError("--max-connections must be positive")
    workers = getattr(args, "workers", 1)
    if workers < 1:
        raise UsageError("--workers must be 1 or more")
    if workers > 1 and not hasattr(socket, "SO_REUSEPORT"):
        raise UsageError(
            "--workers needs SO_REUSEPORT (Linux, BSD, macOS), which this platform lacks:"
            " run one server per port instead"
        )
    if args.auth_mechanisms and not args.auth:
        raise UsageError("--auth-mechanisms needs --auth USER:PASSWORD")
    context: ssl.SSLContext | None = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        for flag, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
            if not Path(path).is_file():
                raise UsageError(f"{flag} {path}: no such file")
        try:
            context.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(
                f"cannot load the certificate {args.tls_cert} with the key {args.tls_key}: {exc}"
            ) from None
    extensions = dict(DEFAULT_EXTENSIONS)
    extensions["SIZE"] = ()  # the core fills in max_message_size (RFC 1870 §4)
    if args.mbox:
        del extensions["BINARYMIME"]  # an mbox cannot keep binary content exactly
    users = _users(args.auth)
    if args.auth_mechanisms:
        extensions["AUTH"] = _mechanisms(args.auth_mechanisms, certificate=bool(args.tls_cert))
    certificate: bytes | None = None
    if args.tls_cert:
        try:
            certificate = Path(args.tls_cert).read_bytes()
            server_channel_binding(certificate)
        except (OSError, ValueError) as exc:
            # AUTH still works; only SCRAM-SHA-256-PLUS is not offered
            print(f"warning: no channel binding for SCRAM -PLUS: {exc}", file=sys.stderr)
            certificate = None
    config = Config(
        hostname=args.hostname or socket.gethostname() or "localhost",
        extensions=extensions,
        max_message_size=args.max_size,
        lmtp=args.lmtp,
        require_tls=args.require_tls and not args.implicit_tls,
        allow_plaintext_auth=args.allow_plaintext_auth,
    )
    handler = _handler(args)
    _announce(handler, worker=getattr(args, "workers", 1) > 1)
    if args.log_traffic:
        traffic = logging.getLogger("sansio_smtp.traffic")
        traffic.setLevel(logging.DEBUG)
        if not traffic.handlers:
            traffic.addHandler(logging.StreamHandler(sys.stderr))
    return AsyncioServer(
        handler,
        host=args.host,
        port=args.port,
        config=config,
        tls_context=context,
        implicit_tls=args.implicit_tls,
        auth=users or None,
        tls_certificate=certificate,
        max_connections_per_client=args.max_connections_per_client or None,
        max_connection_rate_per_client=args.max_connection_rate or None,
        max_auth_failures_per_client=args.max_auth_failures or None,
        proxy_protocol=args.proxy_protocol,
        max_connections=args.max_connections,
        traffic_log=args.log_traffic,
    )


async def _serve(
    server: AsyncioServer,
    *,
    signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM),
    ready: Callable[[], None] | None = None,
) -> None:
    """Serve until one of ``signals``; ``ready`` replaces the "listening on" line."""
    await server.start()
    if ready is None:
        print(f"listening on {server.host}:{server.port}", flush=True)
    else:
        ready()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in signals:
        _on_signal(loop, sig, stop.set)
    try:
        await stop.wait()
        for sig in signals:  # a second signal: stop at once
            _on_signal(loop, sig, server.close)
        print("shutting down", file=sys.stderr, flush=True)
        await server.shutdown(SHUTDOWN_TIMEOUT)
    finally:
        for sig in signals:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        server.close()


def _on_signal(loop: asyncio.AbstractEventLoop, sig: int, callback: Callable[[], None]) -> None:
    """loop.add_signal_handler where the loop has it; elsewhere (Windows) signal.signal,
    handing the callback to the loop."""
    try:
        loop.add_signal_handler(sig, callback)
    except (NotImplementedError, AttributeError, RuntimeError):
        with contextlib.suppress(ValueError, OSError):  # SIGTERM may not exist to catch
            signal.signal(sig, lambda _signum, _frame: loop.call_soon_threadsafe(callback))


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM. Exit status: 0, 1 (cannot listen), 2 (usage)."""
    try:
        server = build(args)
    except (UsageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.auth and not (args.tls_cert or args.allow_plaintext_auth):
        print(
            "warning: AUTH is offered only under TLS: add --tls-cert/--tls-key"
            " (or --allow-plaintext-auth)",
            file=sys.stderr,
        )
    if getattr(args, "workers", 1) > 1:
        return _run_workers(args)
    try:
        asyncio.run(_serve(server))
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        server.close()
        return 1
    finally:
        if isinstance(server.handler, PrintHandler):  # what is still queued, if stdout moves
            server.handler.flush(PRINT_FLUSH_TIMEOUT)
    return 0


# ------------------------------------------------------------------------ --workers N

WORKER_START_TIMEOUT = 60.0  # seconds a worker gets to import, build and bind
ORPHAN_CHECK_INTERVAL = 1.0  # seconds between a worker's checks that its parent lives


class _ReusePortLoop(asyncio.SelectorEventLoop):
    """The standard selector loop, except that its TCP servers bind with SO_REUSEPORT, so
    the listening sockets of all --workers processes share one port (on Linux the kernel
    spreads new connections over them by a hash of the addresses; only processes of the
    same user may join)."""

    async def create_server(self, *args: Any, **kwargs: Any) -> asyncio.Server:
        kwargs["reuse_port"] = True
        return await super().create_server(*args, **kwargs)


def _reserve_port(host: str) -> socket.socket:
    """A socket bound (not listening) with SO_REUSEPORT to a free port on ``host``: the
    port --port 0 gives every worker. Unlistened, it gets no connections."""
    family, kind, proto, _, address = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _worker(args: argparse.Namespace, port: int, pipe: Pipe, parent: int) -> None:
    """One --workers process: serve ``port`` with SO_REUSEPORT until SIGTERM (the parent
    forwards SIGINT as SIGTERM, so a terminal's Ctrl-C is not counted twice); tell the
    parent "ready" or the error on ``pipe``; stop too if the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    args.port = port
    server = build(args)

    def ready() -> None:
        pipe.send("ready")

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def orphaned() -> None:
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
            else:
                loop.call_later(ORPHAN_CHECK_INTERVAL, orphaned)

        loop.call_later(ORPHAN_CHECK_INTERVAL, orphaned)
        await _serve(server, signals=(signal.SIGTERM,), ready=ready)

    loop = _ReusePortLoop()
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main())
        loop.run_until_complete(loop.shutdown_asyncgens())
    except OSError as exc:
        pipe.send(f"cannot listen on {args.host}:{port}: {exc}")
        server.close()
        sys.exit(1)
    finally:
        asyncio.set_event_loop(None)
        loop.close()
        if isinstance(server.handler, PrintHandler):
            server.handler.flush(PRINT_FLUSH_TIMEOUT)


def _run_workers(args: argparse.Namespace) -> int:
    """Start ``args.workers`` worker processes on one port; print "listening on" when all
    are up; forward SIGINT/SIGTERM to them (a second signal stops them at once) and wait
    for all. A worker that fails to start or dies stops the others. Exit 0 or 1."""
    try:
        reserved = _reserve_port(args.host) if args.port == 0 else None
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    port = reserved.getsockname()[1] if reserved is not None else args.port
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    workers: list[multiprocessing.process.BaseProcess] = []
    signalled: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        signalled.append(signum)
        for worker in workers:
            if worker.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        pipes: list[Pipe] = []
        for _ in range(args.workers):
            receiver, sender = context.Pipe(duplex=False)
            worker: multiprocessing.process.BaseProcess = context.Process(
                target=_worker, args=(args, port, sender, os.getpid()), daemon=False
            )
            worker.start()
            sender.close()
            workers.append(worker)
            pipes.append(receiver)
        failure = _await_ready(pipes)
        if reserved is not None:
            reserved.close()
        if failure is None and not signalled:
            print(f"listening on {args.host}:{port}", flush=True)
            pids = " ".join(str(w.pid) for w in workers)
            print(f"{len(workers)} workers (SO_REUSEPORT): {pids}", file=sys.stderr, flush=True)
        elif failure is not None:
            print(f"error: {failure}", file=sys.stderr, flush=True)
            forward(signal.SIGTERM, None)
        while any(w.is_alive() for w in workers):
            wait_for_any([w.sentinel for w in workers if w.is_alive()], ORPHAN_CHECK_INTERVAL)
            if not signalled and any(w.exitcode is not None for w in workers):
                failure = failure or "a worker stopped; stopping the others"
                print(f"error: {failure}", file=sys.stderr, flush=True)
                forward(signal.SIGTERM, None)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for worker in workers:
            worker.join(SHUTDOWN_TIMEOUT)
            if worker.is_alive():
                worker.kill()
                worker.join()
    return 0 if failure is None and all(w.exitcode == 0 for w in workers) else 1


def _await_ready(pipes: list[Pipe]) -> str | None:
    """Wait until every worker said "ready"; the first error otherwise (or None)."""
    for pipe in pipes:
        try:
            if not pipe.poll(WORKER_START_TIMEOUT):
                return f"a worker did not start within {WORKER_START_TIMEOUT:.0f} s"
            message = pipe.recv()
        except (EOFError, OSError):
            return "a worker stopped while starting"
        if message != "ready":
            return str(message)
    return None
