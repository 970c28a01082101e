#!/usr/bin/env python
"""Every workload of issue 13 against the peers that are installed, in one run.

    python benchmarks/run_all.py                      # full: about 10-15 minutes
    python benchmarks/run_all.py --quick              # small counts: under about 2 minutes
    python benchmarks/run_all.py --only S2,C1 --out results.json   # also results.md

Workloads (ids as in the issue): S1 server, 4 connections, lock-step, 1 KiB (Postfix
``smtp-source`` when installed); S2 server, pipelined (MAIL/RCPT/DATA in one write), 4
connections; S3 server, 10 MiB messages, half the lines start with "."; S4 server, 500 idle
connections then one message each (peak RSS, memory per idle connection, msgs/s); C1
blocking client, 1 connection, to a lock-step and a PIPELINING ``smtp-sink`` (and
``sendmail_many``); C2 asyncio client, 1 and 4 connections; C3 client, 100 recipients per
message; T1 start-up (import time, ``python -m sansio_smtp send`` against a 3-line smtplib
script); P1 the core DATA reader against the ``find`` + ``replace`` floor.

Peers: aiosmtpd, smtplib, aiosmtplib, Postfix ``smtp-source``/``smtp-sink`` (``/usr/sbin``),
and ``floor_server.py`` (the least an asyncio server can do). Every server runs in its own
process (``_serve.py``, which imports only the server, so peak RSS compares the servers
and not this harness); its CPU time is read from ``/proc/<pid>/stat`` (so Linux only for the server
figures), a client's with ``time.process_time`` in this process. Each repetition runs every
subject once, rotating which goes first; the table gives medians of the repetitions
(>= 5 unless ``--repeats`` says otherwise). All sockets are on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import json
import os
import platform
import shutil
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (str(HERE), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import _serve as _serve_module  # noqa: E402
import bench_server  # noqa: E402

MESSAGE = bench_server.MESSAGE  # 1 KiB
SENDER = "a@bench.example"
RECIPIENT = "b@bench.example"
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
SMTP_SOURCE = shutil.which("smtp-source") or (
    "/usr/sbin/smtp-source" if os.path.exists("/usr/sbin/smtp-source") else None
)
SMTP_SINK = shutil.which("smtp-sink") or (
    "/usr/sbin/smtp-sink" if os.path.exists("/usr/sbin/smtp-sink") else None
)
ALL = ("S1", "S2", "S3", "S4", "C1", "C2", "C3", "T1", "P1")


@dataclass(frozen=True)
class Counts:
    messages: int = 2000  # C1, C2
    server_messages: int = 4000  # S1, S2: enough server CPU for /proc's 10 ms ticks
    big: int = 10  # S3: messages of big_size
    big_size: int = 10 * 1024 * 1024
    idle: int = 500  # S4
    wide: int = 200  # C3: messages of 100 recipients
    reader: int = 10 * 1000 * 1000  # P1 octets
    commands: int = 100_000  # S2's core figure (bench_core b)
    repeats: int = 5

    @classmethod
    def quick(cls) -> Counts:
        return cls(
            messages=200,
            server_messages=400,
            big=2,
            big_size=1024 * 1024,
            idle=100,
            wide=20,
            reader=10**6,
            commands=10_000,
        )


# ------------------------------------------------------------------ server processes


def _proc_cpu(pid: int) -> float:
    """utime + stime of a process, in seconds (Linux /proc)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _proc_kib(pid: int, key: str) -> int:
    """VmRSS or VmHWM (peak RSS) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


# A server under test runs alone in its process, from _serve.py: importing this harness
# there (smtplib, statistics, argparse...) would put it in every subject's peak RSS.
_serve = _serve_module.serve


class Server:
    """A server under test in its own process: ``port``, ``cpu()``, ``rss()``, ``peak()``."""

    def __init__(self, kind: str, *, pipelining: bool = True) -> None:
        self.kind = kind
        if kind == "smtp-sink":
            assert SMTP_SINK is not None
            self.port = _free_port()
            cmd = [SMTP_SINK, "-m", "2000"] + ([] if pipelining else ["-p"])
            if os.geteuid() == 0:
                cmd += ["-u", "nobody"]
            cmd += [f"127.0.0.1:{self.port}", "1024"]
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
            _wait_port(self.port, self.proc)
        else:
            self.proc = subprocess.Popen(
                [sys.executable, str(HERE / "_serve.py"), kind],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
            if not line.strip():
                raise RuntimeError(f"{kind} server did not start")
            self.port = int(line)

    def cpu(self) -> float:
        """CPU seconds used so far: asked of a Python server, read from /proc otherwise."""
        if self.proc.stdin is None or self.proc.stdout is None:
            return _proc_cpu(self.proc.pid)
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def rss(self) -> int:
        return _proc_kib(self.proc.pid, "VmRSS")

    def peak(self) -> int:
        return _proc_kib(self.proc.pid, "VmHWM")

    def stop(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], deadline: float = 10.0) -> None:
    import socket

    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise RuntimeError("server did not start")


@contextlib.contextmanager
def servers(kinds: list[str], *, pipelining: bool = True) -> Iterator[dict[str, Server]]:
    started: dict[str, Server] = {}
    try:
        for kind in kinds:
            started[kind] = Server(kind, pipelining=pipelining)
        yield started
    finally:
        for server in started.values():
            server.stop()


def server_kinds() -> list[str]:
    kinds = ["sansio_smtp", "floor"]
    with contextlib.suppress(ImportError):
        import aiosmtpd  # noqa: F401

        kinds.append("aiosmtpd")
    if SMTP_SINK:
        kinds.append("smtp-sink")
    return kinds


# ------------------------------------------------------------------------ results


@dataclass
class Samples:
    """Per-repetition figures of one subject in one workload."""

    rate: list[float] = field(default_factory=list)  # messages/s (wall)
    cpu: list[float] = field(default_factory=list)  # seconds of CPU per message
    extra: dict[str, list[float]] = field(default_factory=dict)

    def median(self, name: str) -> float:
        values = self.rate if name == "rate" else self.cpu if name == "cpu" else self.extra[name]
        return statistics.median(values) if values else float("nan")


Results = dict[str, dict[str, Samples]]  # workload variant -> subject -> samples


def interleave(
    subjects: list[str], repeats: int, run: Callable[[str], tuple[float, float]]
) -> dict[str, Samples]:
    """Run every subject once per repetition, rotating the order; ``run`` returns
    (messages/s, CPU seconds per message)."""
    out = {s: Samples() for s in subjects}
    for rep in range(repeats):
        for subject in subjects[rep % len(subjects) :] + subjects[: rep % len(subjects)]:
            rate, cpu = run(subject)
            out[subject].rate.append(rate)
            out[subject].cpu.append(cpu)
    return out


def timed_server(server: Server, messages: int, load: Callable[[], None]) -> tuple[float, float]:
    before = server.cpu()
    start = time.perf_counter()
    load()
    wall = time.perf_counter() - start
    return messages / wall, (server.cpu() - before) / messages


def timed_client(messages: int, load: Callable[[], None]) -> tuple[float, float]:
    cpu = time.process_time()
    start = time.perf_counter()
    load()
    wall = time.perf_counter() - start
    return messages / wall, (time.process_time() - cpu) / messages


# ------------------------------------------------------------------- server workloads


def _smtp_source(port: int, sessions: int, messages: int, size: int = 1024) -> None:
    assert SMTP_SOURCE is not None
    subprocess.run(
        [
            SMTP_SOURCE,
            *("-d", "-s", str(sessions), "-m", str(messages), "-l", str(size)),
            *("-f", SENDER, "-t", RECIPIENT, f"127.0.0.1:{port}"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=600,
    )


def s1(counts: Counts) -> Results:
    n = counts.server_messages
    with servers(server_kinds()) as running:
        warm = {k: s.port for k, s in running.items()}
        for port in warm.values():
            asyncio.run(bench_server._load(port, 2, 5))

        def run(kind: str) -> tuple[float, float]:
            port = running[kind].port
            if SMTP_SOURCE:
                return timed_server(running[kind], n, lambda: _smtp_source(port, 4, n))
            return timed_server(
                running[kind], n, lambda: asyncio.run(bench_server._load(port, 4, n // 4))
            )

        return {"S1": interleave(list(running), counts.repeats, run)}


def s2(counts: Counts) -> Results:
    n = counts.server_messages - counts.server_messages % 4
    with servers(server_kinds()) as running:
        for server in running.values():
            asyncio.run(bench_server._load(server.port, 2, 5, True))

        def run(kind: str) -> tuple[float, float]:
            load = bench_server._load(running[kind].port, 4, n // 4, True)
            return timed_server(running[kind], n, lambda: asyncio.run(load))

        out = {"S2": interleave(list(running), counts.repeats, run)}
    out.update(_core_commands(counts))
    return out


def _in_core(
    setup: Callable[[], Any],
    work: Callable[[Any], object],
    floor: tuple[str, Callable[[], object]],
    repeats: int,
    metric: str,
    of_seconds: Callable[[float], float],
) -> dict[str, Samples]:
    """A core figure (bench_core.py's way): ``work`` on a fresh ``setup()`` and the
    ``floor`` timed in turn, each repetition the best of a few calls; ``metric`` is
    ``of_seconds`` of each time."""
    import bench_core

    name, run_floor = floor
    times = bench_core.interleaved(
        {"sansio_smtp": bench_core.with_setup(setup, work), name: bench_core.plain(run_floor)},
        repeats,
        0.05,
    )
    out = {subject: Samples() for subject in times}
    for subject, values in times.items():
        out[subject].extra[metric] = [of_seconds(t) for t in values]
    return out


def _core_commands(counts: Counts) -> Results:
    """S2's second clause: a server command in the core alone, ``bench_core.py`` (b):
    MAIL/RCPT/RSET lines fed in 64 KiB chunks, each parsed, answered and sent; the floor
    only splits the lines."""
    import bench_core

    stream = bench_core.make_commands(counts.commands)
    chunks = bench_core.chunked(stream.blob, bench_core.CHUNK)
    blob = stream.blob
    out = _in_core(
        bench_core.server_ready,
        lambda s: bench_core.feed_server_commands(s, chunks),
        ("split lines", lambda: bench_core.commands_floor(blob)),
        counts.repeats,
        "us/command",
        lambda t: t / stream.lines * 1e6,
    )
    return {"S2 core (bench_core b)": out}


def dot_heavy(size: int) -> bytes:
    """``size`` octets of content whose every other line starts with ".", dot-stuffed,
    followed by the end marker: what goes on the wire after DATA."""
    plain = b"the quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrst\r\n"
    dotted = b"." + plain[1:]
    pair = plain + dotted
    content = pair * (size // len(pair))
    content += b"x" * (size - len(content) - 2) + b"\r\n"
    return content.replace(b"\r\n.", b"\r\n..") + b".\r\n"


async def _send_big(port: int, wire: bytes, messages: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await bench_server._expect(reader, b"220")
    writer.write(b"EHLO bench.client\r\n")
    await bench_server._ehlo(reader)
    for _ in range(messages):
        for command, code in (
            (b"MAIL FROM:<a@b.example>", b"250"),
            (b"RCPT TO:<c@d.example>", b"250"),
        ):
            writer.write(command + b"\r\n")
            await bench_server._expect(reader, code)
        writer.write(b"DATA\r\n")
        await bench_server._expect(reader, b"354")
        writer.write(wire)
        await writer.drain()
        await bench_server._expect(reader, b"250")
    writer.write(b"QUIT\r\n")
    await bench_server._expect(reader, b"221")
    writer.close()
    await writer.wait_closed()


def s3(counts: Counts) -> Results:
    wire = dot_heavy(counts.big_size)
    with servers(server_kinds()) as running:
        for server in running.values():
            asyncio.run(_send_big(server.port, wire[-100_000:], 1))

        def run(kind: str) -> tuple[float, float]:
            load = _send_big(running[kind].port, wire, counts.big)
            return timed_server(running[kind], counts.big, lambda: asyncio.run(load))

        return {"S3": interleave(list(running), counts.repeats, run)}


def _idle_then_one(server: Server, connections: int) -> tuple[float, float, float, float]:
    """Open ``connections`` and read each greeting; then one message on each at once.
    Returns (KiB per idle connection, msgs/s, CPU per message, peak RSS in KiB). The load
    is floor_client's: canned lines on plain sockets under one selector, so that this
    process's own cost (an asyncio stream per connection cost more than a fast server)
    does not set the pace."""
    import floor_client

    asyncio.run(bench_server._load(server.port, 1, 1))  # imports and first-connection costs
    base = server.rss()
    socks = floor_client.greeted("127.0.0.1", server.port, connections)
    time.sleep(0.2)
    per_connection = (server.rss() - base) / connections
    cpu = server.cpu()
    start = time.perf_counter()
    floor_client.one_message_each(socks, SENDER, RECIPIENT, MESSAGE)
    wall = time.perf_counter() - start
    used = server.cpu() - cpu
    return per_connection, connections / wall, used / connections, float(server.peak())


def s4(counts: Counts) -> Results:
    kinds = server_kinds()
    out = {k: Samples() for k in kinds}
    for rep in range(counts.repeats):
        for kind in kinds[rep % len(kinds) :] + kinds[: rep % len(kinds)]:
            with servers([kind]) as running:  # a fresh process: its own peak RSS
                per, rate, cpu, peak = _idle_then_one(running[kind], counts.idle)
            out[kind].rate.append(rate)
            out[kind].cpu.append(cpu)
            out[kind].extra.setdefault("KiB/idle conn", []).append(per)
            out[kind].extra.setdefault("peak RSS MiB", []).append(peak / 1024)
    return {"S4": out}


# ------------------------------------------------------------------- client workloads


def _ours_sync(port: int, n: int, rcpts: list[str], batch: bool = False) -> None:
    from sansio_smtp.adapters.client import SMTPClient, TLSMode

    with SMTPClient("127.0.0.1", port, tls=TLSMode.PLAIN, local_hostname="bench.test") as c:
        if batch:
            results = c.sendmail_many([(SENDER, rcpts, MESSAGE)] * n)
            assert len(results) == n and all(r.ok for r in results)
        else:
            for _ in range(n):
                c.sendmail(SENDER, rcpts, MESSAGE)


def _smtplib(port: int, n: int, rcpts: list[str]) -> None:
    with smtplib.SMTP("127.0.0.1", port, local_hostname="bench.test") as c:
        for _ in range(n):
            c.sendmail(SENDER, rcpts, MESSAGE)


async def _ours_async(port: int, n: int, rcpts: list[str]) -> None:
    from sansio_smtp.adapters.client import AsyncSMTPClient, TLSMode

    async with AsyncSMTPClient(
        "127.0.0.1", port, tls=TLSMode.PLAIN, local_hostname="bench.test"
    ) as c:
        for _ in range(n):
            await c.sendmail(SENDER, rcpts, MESSAGE)


async def _aiosmtplib(port: int, n: int, rcpts: list[str]) -> None:
    import aiosmtplib

    smtp = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=port, local_hostname="bench.test", use_tls=False, start_tls=False
    )
    await smtp.connect()
    for _ in range(n):
        await smtp.sendmail(SENDER, rcpts, MESSAGE)
    await smtp.quit()


def _sink_kind() -> str:
    return "smtp-sink" if SMTP_SINK else "floor"


def _floor_client(port: int, n: int, pipelining: bool) -> None:
    import floor_client

    floor_client.send_many("127.0.0.1", port, n, SENDER, RECIPIENT, MESSAGE, pipelining=pipelining)


def _c1_clients(port: int, n: int, *, batch: bool) -> dict[str, Callable[[], None]]:
    clients: dict[str, Callable[[], None]] = {
        "sansio_smtp": lambda: _ours_sync(port, n, [RECIPIENT]),
        "smtplib": lambda: _smtplib(port, n, [RECIPIENT]),
        # the least a Python client can do against this server (floor_client.py)
        "floor client": lambda: _floor_client(port, n, batch),
    }
    if batch:
        clients["sansio_smtp sendmail_many"] = lambda: _ours_sync(port, n, [RECIPIENT], batch=True)
    return clients


def c1(counts: Counts) -> Results:
    n = counts.messages
    out: Results = {}
    for pipelining, label in ((False, "C1 lock-step server"), (True, "C1 PIPELINING server")):
        if not pipelining and not SMTP_SINK:
            continue  # the floor always offers PIPELINING
        with servers([_sink_kind()], pipelining=pipelining) as running:
            port = running[_sink_kind()].port
            for warm in _c1_clients(port, 5, batch=pipelining).values():
                warm()  # imports, first connection
            clients = _c1_clients(port, n, batch=pipelining)
            out[label] = interleave(
                list(clients), counts.repeats, lambda s, c=clients: timed_client(n, c[s])
            )
    return out


def c2(counts: Counts) -> Results:
    n = counts.messages - counts.messages % 4
    out: Results = {}
    try:
        import aiosmtplib  # noqa: F401

        peers = ["aiosmtplib"]
    except ImportError:
        peers = []
    with servers([_sink_kind()]) as running:
        port = running[_sink_kind()].port
        for conns in (1, 4):

            def run(subject: str, conns: int = conns) -> tuple[float, float]:
                client = _ours_async if subject == "sansio_smtp" else _aiosmtplib

                async def load() -> None:
                    await asyncio.gather(
                        *(client(port, n // conns, [RECIPIENT]) for _ in range(conns))
                    )

                return timed_client(n, lambda: asyncio.run(load()))

            run("sansio_smtp")  # warm-up
            out[f"C2 {conns} connection{'s' if conns > 1 else ''}"] = interleave(
                ["sansio_smtp", *peers], counts.repeats, run
            )
    return out


def c3(counts: Counts) -> Results:
    n = counts.wide
    rcpts = [f"r{i}@bench.example" for i in range(100)]
    with servers([_sink_kind()]) as running:
        port = running[_sink_kind()].port
        clients: dict[str, Callable[[], None]] = {
            "sansio_smtp": lambda: _ours_sync(port, n, rcpts),
            "smtplib": lambda: _smtplib(port, n, rcpts),
        }
        _ours_sync(port, 2, rcpts)
        return {
            "C3": interleave(list(clients), counts.repeats, lambda s: timed_client(n, clients[s]))
        }


# --------------------------------------------------------------------- start-up, core


_SMTPLIB_SCRIPT = """import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1])) as s:
    s.sendmail("a@bench.example", ["b@bench.example"], open(sys.argv[2], "rb").read())
"""


def t1(counts: Counts) -> Results:
    # Start-up as a user's Python sees it: bytecode compiled (pip compiles an installed
    # package; an environment with PYTHONDONTWRITEBYTECODE would otherwise recompile every
    # module from source in every run and time the compiler, not the import).
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    compileall.compile_dir(str(ROOT / "sansio_smtp"), quiet=1)
    # The package, and in the same run the two imports it is judged beside: attrs (our one
    # dependency, loaded by the core) and smtplib (what a 3-line script imports).
    modules = {
        "import sansio_smtp": "sansio_smtp",
        "from sansio_smtp import Connection, Reply": None,
        "import attrs": "attrs",
        "import smtplib": "smtplib",
    }
    out: dict[str, Samples] = {name: Samples() for name in modules}
    for _ in range(counts.repeats):
        for name, module in modules.items():
            statement = f"import {module}" if module else name
            importing = (
                f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
            )
            seconds = float(
                subprocess.run(
                    [sys.executable, "-c", importing],
                    env=env,
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            out[name].extra.setdefault("ms", []).append(seconds * 1e3)
    with tempfile.TemporaryDirectory() as tmp, servers([_sink_kind()]) as running:
        port = running[_sink_kind()].port
        message = Path(tmp) / "message.eml"
        message.write_bytes(MESSAGE)
        script = Path(tmp) / "send.py"
        script.write_text(_SMTPLIB_SCRIPT)
        commands = {
            "python -m sansio_smtp send": [
                *(sys.executable, "-m", "sansio_smtp", "send"),
                *("--server", f"127.0.0.1:{port}", "--from", SENDER, "--to", RECIPIENT),
                *("--file", str(message)),
            ],
            "3-line smtplib script": [sys.executable, str(script), str(port), str(message)],
        }

        def run(subject: str) -> tuple[float, float]:
            start = time.perf_counter()
            subprocess.run(commands[subject], env=env, cwd=ROOT, check=True, capture_output=True)
            return 1 / (time.perf_counter() - start), float("nan")

        out.update(interleave(list(commands), counts.repeats, run))
    return {"T1": out}


def p1(counts: Counts) -> Results:
    import bench_core

    msg = bench_core.make_message(counts.reader)
    chunks = bench_core.chunked(msg.wire, bench_core.CHUNK)
    wire = msg.wire
    out = _in_core(
        bench_core.server_in_data_state,
        lambda s: bench_core.feed_server_data(s, chunks),
        ("find+replace", lambda: bench_core.data_floor(wire)),
        counts.repeats,
        "MB/s",
        lambda t: len(wire) / t / 1e6,
    )
    return {"P1": out}


WORKLOADS: dict[str, Callable[[Counts], Results]] = {
    "S1": s1,
    "S2": s2,
    "S3": s3,
    "S4": s4,
    "C1": c1,
    "C2": c2,
    "C3": c3,
    "T1": t1,
    "P1": p1,
}


# ------------------------------------------------------------------------- goals


@dataclass
class Goal:
    workload: str
    text: str
    measured: str
    met: bool | None  # None: a peer it needs was not measured


def _ratio(results: Results, variant: str, ours: str, peer: str, metric: str) -> float | None:
    subjects = results.get(variant, {})
    if ours not in subjects or peer not in subjects:
        return None
    a, b = subjects[ours].median(metric), subjects[peer].median(metric)
    if a == 0 or b == 0:  # below the clock's resolution (a tick is 10 ms)
        return float("nan")
    if metric == "rate":
        return a / b
    return b / a  # CPU, memory: how many times less ours uses


def goals(results: Results) -> list[Goal]:
    out: list[Goal] = []

    def both(
        workload: str, variant: str, peer: str, at_least: float, ours: str = "sansio_smtp"
    ) -> None:
        rate = _ratio(results, variant, ours, peer, "rate")
        cpu = _ratio(results, variant, ours, peer, "cpu")
        if variant not in results:
            return
        known = rate is not None and cpu is not None and rate == rate and cpu == cpu
        met = (rate or 0.0) >= at_least and (cpu or 0.0) >= at_least if known else None
        measured = (
            "-" if rate is None or cpu is None else f"{rate:.2f}x msgs/s, {cpu:.2f}x less CPU/msg"
        )
        name = ours if ours != "sansio_smtp" else ""
        out.append(
            Goal(
                workload,
                f"{variant} {name} >= {at_least}x {peer}".replace("  ", " "),
                measured,
                met,
            )
        )

    both("S1", "S1", "floor", 0.8)
    both("S2", "S2", "floor", 0.6)
    core = results.get("S2 core (bench_core b)")
    if core:
        us = core["sansio_smtp"].median("us/command")
        floor = us / core["split lines"].median("us/command")
        out.append(
            Goal(
                "S2",
                "a server command <= 8 us in bench_core.py (b)",
                f"{us:.1f} us ({floor:.0f}x the line split)",
                us <= 8,
            )
        )
    both("S3", "S3", "floor", 0.6)
    both("S3", "S3", "smtp-sink", 2.0)
    if "S4" in results:
        s4r = results["S4"]
        if "aiosmtpd" in s4r:
            peak = s4r["sansio_smtp"].median("peak RSS MiB") / s4r["aiosmtpd"].median(
                "peak RSS MiB"
            )
            per = s4r["sansio_smtp"].median("KiB/idle conn") / s4r["aiosmtpd"].median(
                "KiB/idle conn"
            )
            rate = _ratio(results, "S4", "sansio_smtp", "aiosmtpd", "rate") or 0.0
            out.append(Goal("S4", "peak RSS <= 0.8x aiosmtpd", f"{peak:.2f}x", peak <= 0.8))
            out.append(
                Goal("S4", "memory per idle connection <= 0.5x aiosmtpd", f"{per:.2f}x", per <= 0.5)
            )
            out.append(Goal("S4", "msgs/s >= 3x aiosmtpd", f"{rate:.2f}x", rate >= 3))
    for variant in ("C1 lock-step server", "C1 PIPELINING server"):
        if variant in results:
            rate = _ratio(results, variant, "sansio_smtp", "smtplib", "rate")
            cpu = _ratio(results, variant, "sansio_smtp", "smtplib", "cpu")
            assert rate is not None and cpu is not None
            floor = _ratio(results, variant, "floor client", "smtplib", "rate")
            bound = "" if floor is None else f" (the floor client: {floor:.2f}x msgs/s)"
            out.append(
                Goal(
                    "C1",
                    f"{variant}: >= 1.5x smtplib msgs/s, CPU/msg <= smtplib's",
                    f"{rate:.2f}x msgs/s, {cpu:.2f}x less CPU/msg{bound}",
                    rate >= 1.5 and cpu >= 1.0,
                )
            )
    if "C1 PIPELINING server" in results:
        rate = _ratio(
            results, "C1 PIPELINING server", "sansio_smtp sendmail_many", "smtplib", "rate"
        )
        assert rate is not None
        out.append(
            Goal("C1", "sendmail_many >= 3x smtplib (PIPELINING)", f"{rate:.2f}x msgs/s", rate >= 3)
        )
    for variant in ("C2 1 connection", "C2 4 connections"):
        both("C2", variant, "aiosmtplib", 2.5)
    both("C3", "C3", "smtplib", 3.0)
    if "T1" in results:
        t = results["T1"]
        ms = t["import sansio_smtp"].median("ms")
        attrs_ms = t["import attrs"].median("ms") if "import attrs" in t else float("nan")
        smtplib_ms = t["import smtplib"].median("ms") if "import smtplib" in t else float("nan")
        measured = f"{ms:.0f} ms (same run: import attrs {attrs_ms:.0f}, smtplib {smtplib_ms:.0f})"
        out.append(Goal("T1", "import sansio_smtp <= 40 ms", measured, ms <= 40))
        send = 1 / t["python -m sansio_smtp send"].median("rate")
        script = 1 / t["3-line smtplib script"].median("rate")
        out.append(
            Goal(
                "T1",
                "send of one message <= 1.3x a 3-line smtplib script",
                f"{send * 1e3:.0f} vs {script * 1e3:.0f} ms: {send / script:.2f}x",
                send / script <= 1.3,
            )
        )
    if "P1" in results:
        p = results["P1"]
        ratio = p["sansio_smtp"].median("MB/s") / p["find+replace"].median("MB/s")
        out.append(Goal("P1", "DATA reader >= 0.5x find+replace", f"{ratio:.2f}x", ratio >= 0.5))
    return out


# ------------------------------------------------------------------------ reports


def _fmt(value: float, scale: float = 1.0, digits: int = 0) -> str:
    return "-" if value != value else f"{value * scale:,.{digits}f}"


def markdown(results: Results, goal_list: list[Goal], header: str) -> str:
    lines = [
        header,
        "",
        "| workload | subject | msgs/s | CPU us/msg | other |",
        "|---|---|---:|---:|---|",
    ]
    for variant, subjects in results.items():
        for subject, samples in subjects.items():
            other = ", ".join(f"{k} {samples.median(k):,.1f}" for k in samples.extra)
            lines.append(
                f"| {variant} | {subject} | {_fmt(samples.median('rate'))} |"
                f" {_fmt(samples.median('cpu'), 1e6, 1)} | {other} |"
            )
    lines += ["", "| goal | measured (medians, same run) | met |", "|---|---|---|"]
    for goal in goal_list:
        verdict = "n/a" if goal.met is None else "met" if goal.met else "**NOT met**"
        lines.append(f"| {goal.workload}: {goal.text} | {goal.measured} | {verdict} |")
    return "\n".join(lines) + "\n"


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} CPUs, Linux {platform.release()}, Python"
        f" {platform.python_version()}, load average {load:.2f} at start"
    )


def _revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "sansio_smtp"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown revision"
    return head + (" (sansio_smtp/ modified)" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (under ~2 minutes)")
    parser.add_argument("--only", help=f"comma-separated workload ids (of {','.join(ALL)})")
    parser.add_argument("--repeats", type=int, help="repetitions (default 5)")
    parser.add_argument("--messages", type=int, help="messages for S1, S2, C1, C2 (and scale)")
    parser.add_argument("--out", metavar="PATH.json", help="write JSON here and Markdown beside it")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(_serve(args.serve))
        return 0
    counts = Counts.quick() if args.quick else Counts()
    if args.repeats:
        counts = Counts(**{**counts.__dict__, "repeats": args.repeats})
    if args.messages:
        scale = args.messages / counts.messages
        counts = Counts(
            **{
                **counts.__dict__,
                "messages": args.messages,
                "server_messages": args.messages,
                "idle": max(4, int(counts.idle * scale)),
                "wide": max(2, int(counts.wide * scale)),
                "big": max(1, int(counts.big * scale)),
            }
        )
    only = [w.strip().upper() for w in args.only.split(",")] if args.only else list(ALL)
    unknown = [w for w in only if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(unknown)} (of {', '.join(ALL)})")
    header = (
        f"sansio_smtp {_revision()}; {_machine()}; {counts.repeats} repetitions, medians;"
        f" peers: {', '.join(p for p in server_kinds() if p != 'sansio_smtp')}, smtplib"
        f"{', smtp-source' if SMTP_SOURCE else ''}"
    )
    print(header, flush=True)
    results: Results = {}
    for workload in only:
        start = time.perf_counter()
        results.update(WORKLOADS[workload](counts))
        print(f"{workload}: done in {time.perf_counter() - start:.1f} s", flush=True)
    goal_list = goals(results)
    table = markdown(results, goal_list, header)
    print(table)
    if args.out:
        out = Path(args.out)
        payload = {
            "header": header,
            "counts": counts.__dict__,
            "results": {
                v: {s: {"rate": x.rate, "cpu": x.cpu, **x.extra} for s, x in subj.items()}
                for v, subj in results.items()
            },
            "goals": [g.__dict__ for g in goal_list],
        }
        out.write_text(json.dumps(payload, indent=1, default=str))
        out.with_suffix(".md").write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
