# Command line: `deliver` (send a message to its recipients' mail hosts, now or through a
# queue) and `queue {run,flush,list,remove}` (work a queue file). The flags are a contract:
#   deliver --from A --to B [--to C ...] --file MSG [--dns-server HOST:PORT] [--port N]
#           [--queue FILE] [--hostname NAME]
#   queue {run,flush,list,remove} --queue FILE [--dns-server HOST:PORT] [--port N]
#           [--hostname NAME] [--forever] [ID]
# Output: one line per recipient attempted, "<address>: delivered|deferred|failed: <reply>".
from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
import time
from collections.abc import Awaitable
from datetime import datetime, timezone
from typing import TextIO

from .delivery import (
    Deferred,
    Delivered,
    DeliveryWorker,
    Queue,
    RecipientReport,
    Resolver,
    SQLiteQueue,
    open_queue,
)

#: messages claimed per pass: small enough that workers sharing a queue share the work
_BATCH = 10

__all__ = ["add_deliver_arguments", "add_queue_arguments", "run_deliver", "run_queue"]


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (a port from 1 to 65535)")
    return host.strip("[]") or "127.0.0.1", int(port)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: the port must be 1-65535")
    return int(text)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dns-server",
        type=_host_port,
        metavar="HOST:PORT",
        help="ask this DNS server (default: the system's resolvers)",
    )
    parser.add_argument(
        "--port", type=_port, default=25, help="the mail hosts' SMTP port (default: %(default)s)"
    )
    parser.add_argument(
        "--hostname",
        default=None,
        help="our name in EHLO and in bounces (default: this machine's FQDN)",
    )


def add_deliver_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="sender", required=True, help="the reverse-path")
    parser.add_argument(
        "--to", dest="recipients", action="append", required=True, help="a recipient (repeat)"
    )
    parser.add_argument("--file", required=True, help="the message (RFC 5322), - for stdin")
    parser.add_argument(
        "--queue",
        metavar="FILE",
        help="store the message in this queue (a file, or a postgresql:// URL) and exit",
    )
    _common(parser)


def add_queue_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["run", "flush", "list", "remove"])
    parser.add_argument("id", nargs="?", help="the message to remove")
    parser.add_argument(
        "--queue", metavar="FILE", required=True, help="the queue: a file or a postgresql:// URL"
    )
    parser.add_argument(
        "--forever", action="store_true", help="run: keep running, a pass every 30 s"
    )
    _common(parser)


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _line(report: RecipientReport) -> str:
    outcome = report.outcome
    if isinstance(outcome, Delivered):
        return f"{report.recipient}: delivered: {report.reply}"
    if isinstance(outcome, Deferred):
        return (
            f"{report.recipient}: deferred: {report.reply} (next attempt {_when(outcome.retry_at)})"
        )
    return f"{report.recipient}: failed: {report.reply}"


def _worker(args: argparse.Namespace, queue: Queue) -> DeliveryWorker:
    hostname = args.hostname or socket.getfqdn()
    resolver = Resolver([args.dns_server] if args.dns_server else None)
    return DeliveryWorker(queue, resolver=resolver, hostname=hostname, port=args.port)


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as f:
        return f.read()


def run_deliver(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        content = _read(args.file)
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    sender = None if args.sender in ("", "<>") else args.sender
    if args.queue:
        with contextlib.closing(open_queue(args.queue)) as queue:
            mid = queue.enqueue(sender, args.recipients, content, now=time.time())
        print(f"queued {mid} for {len(args.recipients)} recipient(s)", file=out)
        return 0
    with SQLiteQueue(":memory:") as queue:
        queue.enqueue(sender, args.recipients, content, now=time.time())
        reports = asyncio.run(_worker(args, queue).run())
        for report in reports:
            print(_line(report), file=out)
        bounces = [m for m in queue.messages() if m.sender is None]
        for bounce in bounces:  # one attempt only: show the report instead of sending it
            print(f"\nthe bounce that would be sent to <{bounce.recipients[0].address}>:", file=out)
            print(bounce.content.decode("utf-8", "replace").replace("\r\n", "\n"), file=out)
    return 0 if reports and all(isinstance(r.outcome, Delivered) for r in reports) else 1


def _list(queue: Queue, out: TextIO) -> None:
    messages = queue.messages()
    if not messages:
        print("the queue is empty", file=out)
    for msg in messages:
        sender = f"<{msg.sender}>" if msg.sender else "<>"
        print(
            f"{msg.id}  from {sender}  {len(msg.content)} octets  arrived {_when(msg.arrival)}",
            file=out,
        )
        for r in msg.recipients:
            detail = f", next attempt {_when(r.next_attempt)}" if not r.final else ""
            last = f": {r.last_reply}" if r.last_reply else ""
            print(
                f"  {r.address}: {r.state.value}, {r.attempts} attempt(s){detail}{last}", file=out
            )


async def _passes(worker: DeliveryWorker, *, flush: bool, out: TextIO) -> None:
    """Attempt every due message once (every queued one with ``flush``), a batch at a
    time so that workers sharing a queue share the work; then the reports those attempts
    enqueued, which are due at once (a report is never reported on: this ends)."""
    if flush:
        await _report(worker.run(due_only=False, limit=1_000_000), out)
    while await _report(worker.run(limit=_BATCH), out):
        pass


async def _report(run: Awaitable[list[RecipientReport]], out: TextIO) -> bool:
    reports = await run
    for report in reports:
        print(_line(report), file=out, flush=True)
    return bool(reports)


def run_queue(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    with contextlib.closing(open_queue(args.queue)) as queue:
        if args.action == "list":
            _list(queue, out)
            return 0
        if args.action == "remove":
            if not args.id:
                print("error: queue remove needs the message's ID", file=sys.stderr)
                return 2
            if not queue.remove(args.id):
                print(f"error: no message {args.id} in the queue", file=sys.stderr)
                return 1
            print(f"removed {args.id}", file=out)
            return 0
        worker = _worker(args, queue)
        forever = args.action == "run" and args.forever
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_run(worker, flush=args.action == "flush", forever=forever, out=out))
    return 0


async def _run(worker: DeliveryWorker, *, flush: bool, forever: bool, out: TextIO) -> None:
    await _passes(worker, flush=flush, out=out)
    while forever:
        await asyncio.sleep(30.0)
        await _passes(worker, flush=False, out=out)
