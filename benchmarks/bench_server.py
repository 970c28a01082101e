"""Loopback server benchmark: our AsyncioServer against aiosmtpd, interleaved in one run.

Each server runs in its own subprocess (so its CPU time is its own, read with
``resource.getrusage`` before and after the load); the load generator in this process
opens N connections and sends M messages of 1 KiB on each, lock-step (MAIL, RCPT, DATA,
content, one command per reply: the same dialogue for both servers). Rounds alternate
between the servers so drifts in machine load hit both. Prints messages/s (wall), server
CPU per message, and the ratios.

    python benchmarks/bench_server.py            # 3 rounds of 50 x 100 messages
    python benchmarks/bench_server.py --quick    # 1 round of 20 x 25 messages
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_HEAD = b"From: a@bench.example\r\nTo: b@bench.example\r\nSubject: benchmark\r\n\r\n"
_LINE = b"x" * 70 + b"\r\n"
MESSAGE = _HEAD + _LINE * 12
MESSAGE = MESSAGE + b"y" * (1024 - len(MESSAGE) - 2) + b"\r\n"
assert len(MESSAGE) == 1024

EXTENSIONS = {
    "PIPELINING": (),
    "8BITMIME": (),
    "SMTPUTF8": (),
    "CHUNKING": (),
    "BINARYMIME": (),
    "DSN": (),
    "ENHANCEDSTATUSCODES": (),
}


# --------------------------------------------------------------------- server side


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _serve(kind: str) -> None:
    """Run one server; print its port; answer each stdin line with the CPU time used."""
    loop = asyncio.get_running_loop()
    if kind == "ours":
        sys.path.insert(0, str(ROOT))
        from sansio_smtp import Config
        from sansio_smtp.adapters import AsyncioServer, Handler

        # The base Handler: message content is buffered (as aiosmtpd does) and accepted.
        server = AsyncioServer(
            Handler(), port=0, config=Config(hostname="bench", extensions=EXTENSIONS)
        )
        await server.start()
        port = server.port
    else:
        from aiosmtpd.smtp import SMTP

        class Sink:
            async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
                return "250 OK"

        aio = await loop.create_server(
            lambda: SMTP(Sink(), hostname="bench"), "127.0.0.1", 0, backlog=1024
        )
        port = aio.sockets[0].getsockname()[1]
    print(port, flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.readline():
        print(json.dumps(_cpu()), flush=True)


# ----------------------------------------------------------------------- load side


async def _expect(reader: asyncio.StreamReader, code: bytes) -> None:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed")
        if line[3:4] != b"-":
            if line[:3] != code:
                raise RuntimeError(f"expected {code!r}, got {line!r}")
            return


async def _ehlo(reader: asyncio.StreamReader) -> bool:
    """Read the EHLO reply; True when it advertises PIPELINING."""
    pipelining = False
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("server closed")
        pipelining |= line[4:].strip().upper() == b"PIPELINING"
        if line[3:4] != b"-":
            return pipelining


async def _client(port: int, messages: int, pipeline: bool) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _expect(reader, b"220")
    writer.write(b"EHLO bench.client\r\n")
    # RFC 2920: a client groups MAIL, RCPT and DATA only when PIPELINING is offered
    pipeline = await _ehlo(reader) and pipeline
    for _ in range(messages):
        if pipeline:
            writer.write(b"MAIL FROM:<a@bench.example>\r\nRCPT TO:<b@bench.example>\r\nDATA\r\n")
            await _expect(reader, b"250")
            await _expect(reader, b"250")
        else:
            writer.write(b"MAIL FROM:<a@bench.example>\r\n")
            await _expect(reader, b"250")
            writer.write(b"RCPT TO:<b@bench.example>\r\n")
            await _expect(reader, b"250")
            writer.write(b"DATA\r\n")
        await _expect(reader, b"354")
        writer.write(MESSAGE + b".\r\n")
        await _expect(reader, b"250")
    writer.write(b"QUIT\r\n")
    await _expect(reader, b"221")
    writer.close()
    await writer.wait_closed()


async def _load(port: int, clients: int, messages: int, pipeline: bool = False) -> float:
    start = time.perf_counter()
    await asyncio.gather(*(_client(port, messages, pipeline) for _ in range(clients)))
    return time.perf_counter() - start


class _Server:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def cpu(self) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return float(json.loads(self.proc.stdout.readline()))

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short round")
    parser.add_argument("--clients", type=int, default=None)
    parser.add_argument("--messages", type=int, default=None, help="per client")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--serve", choices=["ours", "aiosmtpd"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
        return 0
    clients = args.clients or (20 if args.quick else 50)
    messages = args.messages or (25 if args.quick else 100)
    rounds = args.rounds or (1 if args.quick else 3)
    kinds = ["ours"]
    try:
        import aiosmtpd  # noqa: F401

        kinds.append("aiosmtpd")
    except ImportError:
        print("aiosmtpd is not installed (pip install aiosmtpd): measuring ours only")
    total = clients * messages
    print(
        f"{clients} connections x {messages} messages of 1 KiB, {rounds} round(s), "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    scenarios = {
        "lock-step": False,  # one command per round trip: the same dialogue for both
        "pipelined": True,  # MAIL/RCPT/DATA grouped where PIPELINING is offered (RFC 2920)
    }
    servers = {kind: _Server(kind) for kind in kinds}
    results: dict[tuple[str, str], list[tuple[float, float]]] = {
        (scenario, kind): [] for scenario in scenarios for kind in kinds
    }
    try:
        for kind in kinds:  # warm up: imports, first connections
            asyncio.run(_load(servers[kind].port, 4, 5))
        for _ in range(rounds):
            for scenario, pipeline in scenarios.items():
                for kind in kinds:
                    server = servers[kind]
                    before = server.cpu()
                    wall = asyncio.run(_load(server.port, clients, messages, pipeline))
                    cpu = server.cpu() - before
                    results[(scenario, kind)].append((total / wall, cpu / total))
    finally:
        for server in servers.values():
            server.stop()
    for scenario in scenarios:
        print(f"{scenario}:")
        summary: dict[str, tuple[float, float]] = {}
        for kind in kinds:
            rate = statistics.median(r for r, _ in results[(scenario, kind)])
            cpu = statistics.median(c for _, c in results[(scenario, kind)])
            summary[kind] = (rate, cpu)
            print(f"  {kind:>9}: {rate:7.0f} messages/s  {cpu * 1e6:7.1f} us server CPU/message")
        if "aiosmtpd" in summary:
            ours, theirs = summary["ours"], summary["aiosmtpd"]
            print(
                f"      ratio: {ours[0] / theirs[0]:.2f}x messages/s, "
                f"{theirs[1] / ours[1]:.2f}x less CPU per message than aiosmtpd"
            )
    print("(aiosmtpd does not offer PIPELINING, so its client stays lock-step in both)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
