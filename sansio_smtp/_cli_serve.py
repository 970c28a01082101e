# ``python -m sansio_smtp serve``: run the asyncio server from the command line.
#
# Strategy: translate the options into a Config, a handler and AsyncioServer options, print
# "listening on HOST:PORT" (flushed: scripts wait for it, and --port 0 needs it), then serve
# until SIGINT/SIGTERM and shut down gracefully (a second signal stops at once).
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
import signal
import socket
import ssl
import sys
from collections.abc import Callable
from pathlib import Path

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


def _announce(handler: object) -> None:
    """Print a line per accepted message to stderr: sender, recipients, size, where it
    was stored. The handler's own data() still decides."""
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
        print(f"accepted {sender} -> {rcpts} ({size}){where}", file=sys.stderr, flush=True)

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
    _announce(handler)
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


async def _serve(server: AsyncioServer) -> None:
    await server.start()
    print(f"listening on {server.host}:{server.port}", flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
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
