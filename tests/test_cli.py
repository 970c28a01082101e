"""The command line: demo and explain."""

from __future__ import annotations

import subprocess
import sys

from sansio_smtp.__main__ import main
from sansio_smtp._demo import run_demo


def test_demo_session(capsys: object) -> None:
    lines: list[str] = []
    wire = run_demo(lines.append)
    text = "\n".join(lines)
    client = b"".join(d for who, d in wire if who == "C")
    server = b"".join(d for who, d in wire if who == "S")
    # the steps the issue asks for, in order
    assert server.startswith(b"220 ")
    assert b"EHLO client.example.org\r\n" in client
    assert client.count(b"RCPT TO:") == 2
    assert b"550 5.1.1" in server  # one recipient refused
    assert b"\r\n..this line starts with a dot" in client  # RFC 5321 §4.5.2 dot-stuffing
    assert client.endswith(b"QUIT\r\n") and server.endswith(b"closing connection\r\n")
    assert "C: QUIT" in text and "221" in text


def test_cli_demo_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sansio_smtp", "demo"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "S: 220 " in result.stdout and "C: DATA" in result.stdout


def test_cli_explain(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["explain", "550 5.1.1 user unknown"]) == 0
    out = capsys.readouterr().out
    assert "550" in out and "5.1.1" in out and "Bad destination mailbox address" in out
    assert main(["explain", "not a reply"]) == 2
