"""The benchmark scripts run: run_all.py end to end on one cheap workload with tiny counts,
and the floor server's framing. Nothing here is timed (issue 13: never timed assertions)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sansio_smtp import Address, Config

from .loopback import LoopbackServer

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
    # S2's two goal lines: against the floor, and a server command in the core (bench_core b)
    assert [g["workload"] for g in payload["goals"]] == ["S2", "S2"]
    assert payload["results"]["S2 core (bench_core b)"]["sansio_smtp"]["us/command"][0] > 0
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


@pytest.mark.parametrize("pipelining", [False, True])
def test_floor_client_delivers_to_a_real_server(pipelining: bool) -> None:
    # issue 13 C1: the client floor sends real SMTP, one command per write in lock-step
    # (RFC 5321 §4.3) and MAIL/RCPT/DATA as one group with PIPELINING (RFC 2920 §3.1),
    # content dot-stuffed (RFC 5321 §4.5.2)
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import floor_client
    finally:
        sys.path.remove(str(BENCHMARKS))
    content = b"Subject: x\r\n\r\n.leading dot\r\nbody\r\n"
    extensions = {"PIPELINING": ()} if pipelining else {}
    with LoopbackServer(Config(extensions=extensions)) as server:
        floor_client.send_many(
            "127.0.0.1",
            server.port,
            3,
            "a@b.example",
            "c@d.example",
            content,
            pipelining=pipelining,
        )
        server.wait_closed()
    assert not server.errors
    assert [m.content for m in server.messages] == [content] * 3
    assert [m.recipients for m in server.messages] == [[Address.parse("c@d.example")]] * 3
    (transcript,) = server.transcripts
    mails = [data for who, data in transcript if who == "C" and data.startswith(b"MAIL")]
    group = b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n"
    assert mails == [group if pipelining else b"MAIL FROM:<a@b.example>\r\n"] * 3


_LINES = st.sampled_from([b"line\r\n", b"..dot\r\n", b"\r\n", b".\r\n".join([b"a", b"b"]), b"x"])


@settings(max_examples=200, deadline=None)
@given(
    bodies=st.lists(st.lists(_LINES, max_size=40).map(b"".join), min_size=1, max_size=3),
    cuts=st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=50),
)
def test_floor_reads_into_its_buffer_as_it_parses_bytes(
    bodies: list[bytes], cuts: list[int]
) -> None:
    # issue 13 "The floor": the BufferedProtocol path gives the replies that the bytes path
    # gives for the same session, however the reads cut it
    session = (
        b"EHLO x\r\n"
        + b"".join(
            b"MAIL FROM:<a@b>\r\nDATA\r\n" + body.replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n"
            for body in bodies
        )
        + b"NOOP\r\nQUIT\r\n"
    )
    reference, expected = _floor()
    reference.data_received(session)  # type: ignore[attr-defined]
    protocol, transport = _floor()
    fs = sys.modules["floor_server"]
    start = 0
    for cut in itertools.cycle(cuts):
        piece = session[start : start + cut]
        if not piece:
            break
        view = protocol.get_buffer(len(piece))  # type: ignore[attr-defined]
        view[: len(piece)] = piece
        assert view.obj is fs._READ
        protocol.buffer_updated(len(piece))  # type: ignore[attr-defined]
        start += cut
    assert b"".join(transport.writes) == b"".join(expected.writes)
    assert transport.closed
