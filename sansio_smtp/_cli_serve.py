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
import signal
import socket
import ssl
import sys
from pathlib import Path

from .adapters.server import (
    DEFAULT_AUTH_FAILURE_WINDOW,
    DEFAULT_MAX_AUTH_FAILURES_PER_CLIENT,
    DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
    DEFAULT_MAX_MESSAGE_SIZE,
    AsyncioServer,
    Handler,
    MaildirHandler,
    MboxHandler,
    PrintHandler,
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
    parser.add_argument("--lmtp", action="store_true", help="speak LMTP (RFC 2033)")
    parser.add_argument(
        "--proxy-protocol",
        action="store_true",
        help="behind a load balancer: each connection starts with a PROXY protocol v1/v2"
        " header naming the real client (connections without one are closed)",
    )
    parser.add_argument("--hostname", metavar="NAME", help="our name in the greeting")


class UsageError(ValueError):
    """A bad option combination."""


def _handler(args: argparse.Namespace) -> Handler:
    if args.maildir:
        return MaildirHandler(args.maildir)
    if args.mbox:
        return MboxHandler(args.mbox)
    if args.sink:
        return SinkHandler()
    return PrintHandler()


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
    context: ssl.SSLContext | None = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"cannot load the certificate: {exc}") from None
    extensions = dict(DEFAULT_EXTENSIONS)
    extensions["SIZE"] = ()  # the core fills in max_message_size (RFC 1870 §4)
    if args.mbox:
        del extensions["BINARYMIME"]  # an mbox cannot keep binary content exactly
    users = _users(args.auth)
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
    return AsyncioServer(
        _handler(args),
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
    )


async def _serve(server: AsyncioServer) -> None:
    await server.start()
    print(f"listening on {server.host}:{server.port}", flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        for sig in signals:  # a second signal: stop at once
            loop.add_signal_handler(sig, server.close)
        print("shutting down", file=sys.stderr, flush=True)
        await server.shutdown(SHUTDOWN_TIMEOUT)
    finally:
        for sig in signals:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        server.close()


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
