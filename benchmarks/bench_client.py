#!/usr/bin/env python
"""SMTP client throughput: our sync and asyncio clients against smtplib and aiosmtplib.

    python benchmarks/bench_client.py             # 2000 messages per run, 5 rounds
    python benchmarks/bench_client.py --quick     # 200 messages, 3 rounds (a few seconds)
    python benchmarks/bench_client.py --sink core # only our own sink (see below)

Each client opens one connection to the same loopback sink, sends N messages of 1 KiB
(one recipient each, ``sendmail`` with bytes) and QUITs; messages per second is N over the
wall time of that. The clients run interleaved in every round, rotating which goes
first, and the best (and median) round of each is reported, with our/their ratios. The
"batch" rows are our clients sending the same N messages with one ``sendmail_many`` call:
on smtp-sink (PIPELINING, DATA) the content and "." of each message share a write with the
next message's MAIL/RCPT/DATA (RFC 2920 §3.1), one round trip per message instead of two;
on the core sink (CHUNKING) each message is one round trip either way.

Sinks (each runs in its own process, so it never competes with the client for the GIL):
- ``smtp-sink``: Postfix's C test server (PIPELINING, no CHUNKING), when installed
  (``bash .ci/peers.sh``). Every client uses DATA here.
- ``core``: a minimal asyncio server on the sansio_smtp core, started from this script
  (``--serve-sink``), advertising PIPELINING and CHUNKING: our clients use BDAT there,
  smtplib and aiosmtplib do not know it.
Absolute figures depend on the machine; compare the ratios, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from sansio_smtp import (  # noqa: E402
    NEED_DATA,
    PAUSED,
    SERVER,
    Bdat,
    Config,
    Connection,
    ConnectionClosed,
    Event,
    Greeting,
    MessageData,
    Reply,
    State,
)
from sansio_smtp.adapters.client import AsyncSMTPClient, SMTPClient, TLSMode  # noqa: E402

SENDER = "bench@example.org"
RECIPIENT = "sink@example.net"


def make_message(size: int = 1024) -> bytes:
    head = (
        b"From: bench@example.org\r\nTo: sink@example.net\r\nSubject: benchmark\r\n"
        b"Message-ID: <bench@example.org>\r\n\r\n"
    )
    line = b"The quick brown fox jumps over the lazy dog. 0123456789 abcdefghijklmnopq\r\n"
    body = b""
    while len(head) + len(body) + len(line) <= size:
        body += line
    body += b"x" * (size - len(head) - len(body) - 2) + b"\r\n"
    message = head + body
    assert len(message) == size
    return message


# --------------------------------------------------------------------------- the sinks


class _SinkProtocol(asyncio.Protocol):
    """One connection of the core sink: answer everything with default_reply."""

    config = Config(
        hostname="sink.test",
        extensions={"PIPELINING": (), "CHUNKING": (), "8BITMIME": (), "ENHANCEDSTATUSCODES": ()},
    )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.conn = Connection(SERVER, self.config)
        transport.write(self.conn.send(Greeting(lines="sink.test")))

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        conn.receive_data(data)
        out: list[bytes] = []
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                break
            if event is PAUSED:
                if not conn.pending:
                    break
                event = conn.pending[0]  # a BDAT chunk that is not LAST was read
            elif isinstance(event, MessageData):
                continue
            elif isinstance(event, ConnectionClosed):
                break
            elif isinstance(event, Bdat):
                continue  # answered after its octets
            assert isinstance(event, Event)
            reply: Reply = conn.default_reply(event)
            out.append(conn.send(reply))
            if conn.state is State.CLOSED:
                break
        if out:
            self.transport.write(b"".join(out))
        if conn.state is State.CLOSED:
            self.transport.close()


def serve_sink(port_file: str) -> None:
    """Run the core sink until killed; write the port to ``port_file``."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_SinkProtocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        Path(port_file).write_text(str(port))
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"sink exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise RuntimeError("sink did not start")


@contextlib.contextmanager
def start_sink(kind: str, tmp: Path) -> Iterator[int]:
    """Yield the port of a running sink of ``kind`` ("smtp-sink" or "core")."""
    if kind == "smtp-sink":
        binary = shutil.which("smtp-sink") or (
            "/usr/sbin/smtp-sink" if os.path.exists("/usr/sbin/smtp-sink") else None
        )
        if binary is None:
            raise FileNotFoundError("smtp-sink is not installed (bash .ci/peers.sh)")
        port = _free_port()
        cmd = [binary, "-m", "64"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        cmd += [f"127.0.0.1:{port}", "128"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        port_file = tmp / "port"
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-sink", str(port_file)],
            stdout=subprocess.DEVNULL,
        )
        end = time.monotonic() + 10
        while not port_file.exists() or not port_file.read_text():
            if time.monotonic() > end or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("core sink did not start")
            time.sleep(0.02)
        port = int(port_file.read_text())
    try:
        _wait_port(port, proc)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# ------------------------------------------------------------------------- the clients


def run_ours_sync(port: int, n: int, message: bytes) -> None:
    with SMTPClient("127.0.0.1", port, tls=TLSMode.PLAIN, local_hostname="bench.test") as c:
        for _ in range(n):
            c.sendmail(SENDER, RECIPIENT, message)


def run_ours_sync_batch(port: int, n: int, message: bytes) -> None:
    with SMTPClient("127.0.0.1", port, tls=TLSMode.PLAIN, local_hostname="bench.test") as c:
        results = c.sendmail_many([(SENDER, RECIPIENT, message)] * n)
    assert len(results) == n and all(r.ok for r in results)


def run_smtplib(port: int, n: int, message: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="bench.test") as c:
        for _ in range(n):
            c.sendmail(SENDER, [RECIPIENT], message)


def run_ours_async(port: int, n: int, message: bytes) -> None:
    async def main() -> None:
        async with AsyncSMTPClient(
            "127.0.0.1", port, tls=TLSMode.PLAIN, local_hostname="bench.test"
        ) as c:
            for _ in range(n):
                await c.sendmail(SENDER, RECIPIENT, message)

    asyncio.run(main())


def run_ours_async_batch(port: int, n: int, message: bytes) -> None:
    async def main() -> None:
        async with AsyncSMTPClient(
            "127.0.0.1", port, tls=TLSMode.PLAIN, local_hostname="bench.test"
        ) as c:
            results = await c.sendmail_many([(SENDER, RECIPIENT, message)] * n)
        assert len(results) == n and all(r.ok for r in results)

    asyncio.run(main())


def run_aiosmtplib(port: int, n: int, message: bytes) -> None:
    import aiosmtplib

    async def main() -> None:
        smtp = aiosmtplib.SMTP(
            hostname="127.0.0.1",
            port=port,
            local_hostname="bench.test",
            use_tls=False,
            start_tls=False,
        )
        await smtp.connect()
        for _ in range(n):
            await smtp.sendmail(SENDER, [RECIPIENT], message)
        await smtp.quit()

    asyncio.run(main())


CLIENTS: dict[str, Callable[[int, int, bytes], None]] = {
    "sansio_smtp sync": run_ours_sync,
    "sansio_smtp asyncio": run_ours_async,
    "sansio_smtp sync batch": run_ours_sync_batch,
    "sansio_smtp asyncio batch": run_ours_async_batch,
    "smtplib": run_smtplib,
    "aiosmtplib": run_aiosmtplib,
}


def bench(port: int, n: int, rounds: int, message: bytes) -> dict[str, list[float]]:
    names = list(CLIENTS)
    try:
        import aiosmtplib  # noqa: F401
    except ImportError:
        print("  (aiosmtplib not installed: pip install aiosmtplib)")
        names.remove("aiosmtplib")
    rates: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm-up (imports, first connection), untimed
        CLIENTS[name](port, max(5, n // 20), message)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            start = time.perf_counter()
            CLIENTS[name](port, n, message)
            rates[name].append(n / (time.perf_counter() - start))
    return rates


def report(sink: str, rates: dict[str, list[float]]) -> None:
    best = {name: max(values) for name, values in rates.items()}
    print(f"\nsink: {sink}")
    print(f"  {'client':<26}{'best msg/s':>12}{'median':>10}")
    for name, values in rates.items():
        print(f"  {name:<26}{best[name]:>12,.0f}{statistics.median(values):>10,.0f}")
    for ours in (
        "sansio_smtp sync",
        "sansio_smtp asyncio",
        "sansio_smtp sync batch",
        "sansio_smtp asyncio batch",
    ):
        ratios = [
            f"{best[ours] / best[theirs]:.2f}x {theirs}"
            for theirs in ("smtplib", "aiosmtplib")
            if theirs in best
        ]
        print(f"  {ours}: {', '.join(ratios)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 messages, 3 rounds")
    parser.add_argument("-n", type=int, help="messages per client per round")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--size", type=int, default=1024, help="message size (default 1 KiB)")
    parser.add_argument(
        "--sink", choices=["smtp-sink", "core", "both"], default="both", help="default: both"
    )
    parser.add_argument("--serve-sink", metavar="PORT_FILE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_sink:
        serve_sink(args.serve_sink)
        return 0
    n = args.n or (200 if args.quick else 2000)
    rounds = args.rounds or (3 if args.quick else 5)
    message = make_message(args.size)
    print(f"{n} messages of {len(message)} octets per client per round, {rounds} rounds")
    sinks = ["smtp-sink", "core"] if args.sink == "both" else [args.sink]
    import tempfile

    for sink in sinks:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                with start_sink(sink, Path(tmp)) as port:
                    report(sink, bench(port, n, rounds, message))
            except FileNotFoundError as exc:
                print(f"\nsink: {sink}: skipped ({exc})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
