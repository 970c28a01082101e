"""The benchmark scripts run: run_all.py end to end on one cheap workload with tiny counts,
and the floor server's framing. Nothing here is timed (issue 13: never timed assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"


def test_run_all_quick_one_workload(tmp_path: Path) -> None:
    # issue 13 "Show it": one command runs the workloads and writes Markdown and JSON
    out = tmp_path / "results.json"
    cmd = [sys.executable, str(BENCHMARKS / "run_all.py"), "--quick", "--only", "S2"]
    cmd += ["--messages", "8", "--repeats", "1", "--out", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    payload = json.loads(out.read_text())
    subjects = payload["results"]["S2"]
    assert {"sansio_smtp", "floor"} <= set(subjects)
    assert all(len(s["rate"]) == 1 and s["rate"][0] > 0 for s in subjects.values())
    assert [g["workload"] for g in payload["goals"]] == ["S2"]
    assert "| S2 | sansio_smtp |" in out.with_suffix(".md").read_text()


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True


def _floor() -> tuple[object, _Transport]:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import floor_server
    finally:
        sys.path.remove(str(BENCHMARKS))
    protocol = floor_server.FloorProtocol()
    transport = _Transport()
    protocol.transport = transport  # type: ignore[assignment]
    return protocol, transport


def test_floor_answers_one_read_with_one_write() -> None:
    # issue 13 "The floor": canned replies by the first four octets; RFC 2920 §3.1 grouping
    protocol, transport = _floor()
    protocol.data_received(  # type: ignore[attr-defined]
        b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n.\r\nQUIT\r\n"
    )
    (write,) = transport.writes
    fs = sys.modules["floor_server"]
    assert write == fs.EHLO + fs.OK * 2 + b"354 go ahead\r\n" + fs.OK + b"221 bye\r\n"
    assert transport.closed


def test_floor_finds_the_end_across_reads() -> None:
    # issue 13 "The floor": bytes.find for <CRLF>.<CRLF>, nothing stored but its tail
    protocol, transport = _floor()
    protocol.data_received(b"DATA\r\n..stuffed\r\nline\r")  # type: ignore[attr-defined]
    protocol.data_received(b"\n.")  # type: ignore[attr-defined]
    assert transport.writes == [b"354 go ahead\r\n"]
    assert len(protocol.buffer) <= 4  # type: ignore[attr-defined]
    protocol.data_received(b"\r\nNOOP\r\n")  # type: ignore[attr-defined]
    assert transport.writes[1:] == [b"250 2.0.0 OK\r\n250 2.0.0 OK\r\n"]


def test_profile_hot_runs() -> None:
    # issue 13 "Make it fast": the profile of the server under S2 is one command
    cmd = [sys.executable, str(BENCHMARKS / "profile_hot.py"), "S2", "-n", "8", "--top", "5"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "server under S2: 8 messages" in done.stdout
    assert "Ordered by: cumulative time" in done.stdout


def test_served_subjects_carry_no_harness() -> None:
    # issue 13 S4: a server process holds its subject, not run_all's harness, so peak RSS
    # compares the servers; and it advertises what bench_server's server does
    code = "import _serve, bench_server\nassert _serve.EXTENSIONS == bench_server.EXTENSIONS\n"
    done = subprocess.run([sys.executable, "-c", code], cwd=BENCHMARKS, timeout=60)
    assert done.returncode == 0
    probe = (
        "import asyncio, sys, _serve\n"
        "async def main():\n"
        "    await _serve.start('sansio_smtp')\n"
        "asyncio.run(main())\n"
        "print(' '.join(sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=BENCHMARKS, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert "sansio_smtp.adapters.server" in loaded
    for harness in ("smtplib", "statistics", "argparse", "run_all", "bench_server", "email"):
        assert harness not in loaded, harness
