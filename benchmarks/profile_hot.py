#!/usr/bin/env python
"""cProfile of our server under the S1, S2, S3 or S4 load and of our blocking client under C1.

    python benchmarks/profile_hot.py S1            # server, smtp-source -d -s 4 (lock-step)
    python benchmarks/profile_hot.py S2            # server, 4 connections, pipelined
    python benchmarks/profile_hot.py S3 -n 5       # server, 10 MiB dot-heavy messages
    python benchmarks/profile_hot.py S4            # server, short sessions: one message each
    python benchmarks/profile_hot.py C1 --top 40   # blocking client to smtp-sink (or the floor)
    python benchmarks/profile_hot.py C1 --batch    # the same with sendmail_many
    python benchmarks/profile_hot.py S2 --save s2.prof   # for snakeviz, pstats, ...

The server runs in its own process under cProfile (the load comes from this process, as in
run_all.py); the client runs here under cProfile. Prints the top functions by cumulative
time, then by own time. The profiler slows Python code (about 2x), so compare shares of the
total, not absolute times, with run_all.py's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import bench_server  # noqa: E402
import run_all  # noqa: E402


def _report(stats: pstats.Stats, top: int) -> str:
    out = io.StringIO()
    stats.stream = out
    stats.strip_dirs().sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def _layer(filename: str) -> str:
    """Where a profiled function lives: our server adapter, the core, asyncio, or C."""
    # attrs-generated methods are named "<attrs generated methods sansio_smtp._events...>"
    path = filename.replace("\\", "/").replace("sansio_smtp.", "sansio_smtp/")
    path = path.replace("adapters.server.", "adapters/server/")
    if "sansio_smtp/adapters/server/" in path:
        return "server adapter"
    if "sansio_smtp/" in path:
        return "sansio_smtp (core, other adapters)"
    if "/asyncio/" in path or path.endswith("selectors.py"):
        return "asyncio"
    if path == "~":
        return "built-in (C) functions"
    return "other Python"


def _per_message(stats: pstats.Stats, messages: int) -> str:
    """Function calls per message, in all and by layer, and the server adapter's
    functions called at least once per message: a figure that does not depend on the
    machine's load, to compare before and after a change."""
    layers: dict[str, int] = {}
    ours: list[tuple[float, str]] = []
    for (filename, line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        calls = row[1]
        layer = _layer(filename)
        layers[layer] = layers.get(layer, 0) + calls
        if layer == "server adapter" and calls >= messages:
            ours.append((calls / messages, f"{Path(filename).name}:{line}({name})"))
    total = sum(layers.values())
    lines = [f"calls per message: {total / messages:.1f}"]
    lines += [f"  {n / messages:7.1f}  {layer}" for layer, n in sorted(layers.items())]
    lines.append("server adapter functions per message:")
    lines += [f"  {per:7.2f}  {where}" for per, where in sorted(ours, reverse=True)]
    return "\n".join(lines) + "\n"


def _serve_profiled(path: str) -> None:
    """Serve as run_all.py does; profile from SIGUSR1 on (after the warm-up)."""
    profile = cProfile.Profile()
    signal.signal(signal.SIGUSR1, lambda _signum, _frame: profile.enable())
    try:
        asyncio.run(run_all._serve("sansio_smtp"))
    finally:
        profile.disable()
        profile.dump_stats(path)


def _s1_load(port: int, messages: int) -> str:
    """smtp-source -d -s 4 as run_all.py's S1 (our own lock-step load without it)."""
    if run_all.SMTP_SOURCE:
        run_all._smtp_source(port, 4, messages)
        return f"server under S1: {messages} messages, smtp-source -d -s 4 (lock-step)\n"
    asyncio.run(bench_server._load(port, 4, messages // 4))
    return f"server under S1: {messages} messages, 4 connections, lock-step (no smtp-source)\n"


def _s2_load(port: int, messages: int) -> str:
    asyncio.run(bench_server._load(port, 4, messages // 4, True))
    return f"server under S2: {messages} messages, 4 connections, pipelined\n"


def _s3_load(port: int, messages: int) -> str:
    wire = run_all.dot_heavy(10 * 1024 * 1024)
    asyncio.run(run_all._send_big(port, wire, messages))
    return f"server under S3: {messages} x 10 MiB dot-heavy, 1 connection\n"


def _s4_load(port: int, messages: int) -> str:
    """S4's per-session part: connections of one message each, 100 at a time."""
    for start in range(0, messages, 100):
        asyncio.run(bench_server._load(port, min(100, messages - start), 1))
    return f"server under S4: {messages} sessions of one message, 100 at a time\n"


_LOADS = {"S1": _s1_load, "S2": _s2_load, "S3": _s3_load, "S4": _s4_load}


def profile_server(workload: str, messages: int, top: int, save: str | None) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = save or str(Path(tmp) / "server.prof")
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-profiled", path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=run_all.ROOT,
        )
        assert proc.stdin is not None and proc.stdout is not None
        port = int(proc.stdout.readline())
        n = messages - messages % 4 if workload in ("S1", "S2") else messages
        asyncio.run(bench_server._load(port, 2, 10, True))  # imports, first connections
        proc.send_signal(signal.SIGUSR1)
        time.sleep(0.2)
        title = _LOADS[workload](port, n)
        proc.stdin.close()
        proc.wait(60)
        stats = pstats.Stats(path)
        return title + _per_message(stats, n) + _report(stats, top)


def profile_client(
    messages: int, top: int, save: str | None, pipelining: bool = True, batch: bool = False
) -> str:
    kind = run_all._sink_kind()
    rcpts = [run_all.RECIPIENT]
    with run_all.servers([kind], pipelining=pipelining) as running:
        port = running[kind].port
        run_all._ours_sync(port, 5, rcpts, batch=batch)  # imports, first connection
        profile = cProfile.Profile()
        profile.runcall(run_all._ours_sync, port, messages, rcpts, batch=batch)
    if save:
        profile.dump_stats(save)
    stats = pstats.Stats(profile)
    server = "PIPELINING" if pipelining else "lock-step"
    how = "sendmail_many" if batch else "sendmail"
    title = (
        f"blocking client under C1 ({how}): {messages} messages to {kind} ({server}),"
        f" {stats.total_calls / messages:.1f} function calls per message"  # type: ignore[attr-defined]
        " (with the session's own)\n"
    )
    return title + _report(stats, top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", nargs="?", choices=["S1", "S2", "S3", "S4", "C1"])
    parser.add_argument("-n", "--messages", type=int, default=2000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--lock-step", action="store_true", help="C1: a server without PIPELINING (smtp-sink only)"
    )
    parser.add_argument("--batch", action="store_true", help="C1: sendmail_many")
    parser.add_argument("--save", metavar="FILE.prof", help="also keep the raw profile")
    parser.add_argument("--serve-profiled", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_profiled:
        with contextlib.suppress(KeyboardInterrupt):
            _serve_profiled(args.serve_profiled)
        return 0
    if args.workload is None:
        parser.error("name a workload: S1, S2, S3, S4 or C1")
    if args.workload == "C1":
        print(profile_client(args.messages, args.top, args.save, not args.lock_step, args.batch))
    else:
        print(profile_server(args.workload, args.messages, args.top, args.save))
    return 0


# ------------------------------------------------------------- C2: the asyncio client
# python benchmarks/profile_hot.py C2 [-c 4] [-n 2000] [--top 30] [--save c2.prof]: our
# asyncio client to smtp-sink (or the floor), as run_all.py's C2, under cProfile; heads the
# profile with the calls and event-loop iterations (each one epoll_wait and the handles it
# runs) per message, counted in a run of its own.


def profile_async_client(messages: int, top: int, save: str | None, connections: int = 1) -> str:
    import asyncio.base_events

    kind = run_all._sink_kind()
    n = messages - messages % connections

    def load(port: int, count: int) -> None:
        async def clients() -> None:
            await asyncio.gather(
                *(
                    run_all._ours_async(port, count // connections, [run_all.RECIPIENT])
                    for _ in range(connections)
                )
            )

        asyncio.run(clients())

    loop_class = asyncio.base_events.BaseEventLoop
    run_once = loop_class._run_once
    turns = 0

    def counted(loop: asyncio.AbstractEventLoop) -> None:
        nonlocal turns
        turns += 1
        run_once(loop)

    with run_all.servers([kind]) as running:
        port = running[kind].port
        load(port, 5 * connections)  # imports, first connections
        loop_class._run_once = counted
        try:
            load(port, n)
        finally:
            loop_class._run_once = run_once
        profile = cProfile.Profile()
        profile.runcall(load, port, n)
    if save:
        profile.dump_stats(save)
    stats = pstats.Stats(profile)
    title = (
        f"asyncio client under C2: {n} messages to {kind}, {connections} connection(s): "
        f"{stats.total_calls / n:.1f} calls and {turns / n:.2f} event-loop iterations "
        "per message\n"
    )
    return title + _report(stats, top)


def _main_c2(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] != ["C2"]:
        return main(argv)
    parser = argparse.ArgumentParser(description="cProfile of our asyncio client under C2")
    parser.add_argument("-n", "--messages", type=int, default=2000)
    parser.add_argument("-c", "--connections", type=int, default=1)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--save", metavar="FILE.prof", help="also keep the raw profile")
    opts = parser.parse_args(args[1:])
    print(profile_async_client(opts.messages, opts.top, opts.save, opts.connections))
    return 0


if __name__ == "__main__":
    sys.exit(_main_c2())
