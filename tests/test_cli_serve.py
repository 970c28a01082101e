"""`python -m sansio_smtp serve` as a user meets it: errors that name what is wrong, a line
per accepted message, your own handler, chosen AUTH mechanisms, traffic logging."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sansio_smtp", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


@contextmanager
def serving(*args: str, env: dict[str, str] | None = None) -> Iterator[tuple[int, list[str]]]:
    """Run serve --port 0; yields its port and the stderr lines so far (filled at exit)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sansio_smtp", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("listening on "), (line, proc.stderr.read() if proc.stderr else "")
    port = int(line.rsplit(":", 1)[1])
    errors: list[str] = []
    try:
        yield port, errors
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
        errors.extend(err.splitlines())


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"],
         "--tls-cert /nonexistent/cert.pem: no such file"),
        (["--handler", "nosuchmodule:Handler"], "--handler: cannot import nosuchmodule"),
        (["--handler", "json"], "--handler wants MODULE:CLASS"),
        (["--auth", "u:p", "--auth-mechanisms", "NOPE"], "--auth-mechanisms: NOPE"),
        (["--auth-mechanisms", "PLAIN"], "--auth-mechanisms needs --auth"),
        (["--max-connections", "0"], "--max-connections must be positive"),
    ],
)  # fmt: skip
def test_errors_name_what_is_wrong(args: list[str], says: str) -> None:
    done = _serve(*args)
    assert done.returncode == 2
    assert says in done.stderr
    assert "Traceback" not in done.stderr


def test_maildir_and_mbox_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for flag in ("--maildir", "--mbox"):
        done = _serve(flag, str(blocker / "sub"))
        assert done.returncode == 2, done.stderr
        assert f"cannot use {flag} {blocker / 'sub'}" in done.stderr
        assert "Traceback" not in done.stderr


def test_a_line_per_accepted_message(tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    with (
        serving("--maildir", str(maildir)) as (port, errors),
        smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp,
    ):
        smtp.sendmail(
            "a@example.org", ["b@example.org", "c@example.org"], b"Subject: x\r\n\r\nhi\r\n"
        )
    (stored,) = list((maildir / "new").iterdir())
    accepted = [line for line in errors if line.startswith("accepted ")]
    assert accepted == [
        f"accepted <a@example.org> -> <b@example.org>, <c@example.org> (streamed) into {stored}"
    ]


def test_your_own_handler_and_auth_mechanisms(tmp_path: Path) -> None:
    (tmp_path / "myhandlers.py").write_text(
        "from sansio_smtp import Reply\n"
        "class Picky:\n"
        "    def rcpt(self, session, event):\n"
        "        if event.forward_path.local_part == 'nobody':\n"
        "            return Reply(code=550, lines='no such user', enhanced='5.1.1')\n"
    )
    env = {"PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}"}
    args = ["--handler", "myhandlers:Picky", "--auth", "alice:s3cret"]
    args += ["--auth-mechanisms", "CRAM-MD5,PLAIN", "--allow-plaintext-auth"]
    with serving(*args, env=env) as (port, errors):  # noqa: SIM117 - the server outlives smtp
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.ehlo()
            assert smtp.esmtp_features["auth"].split() == ["CRAM-MD5", "PLAIN"]
            smtp.login("alice", "s3cret")  # smtplib prefers CRAM-MD5 when offered
            refused = smtp.sendmail(
                "a@example.org", ["nobody@example.org", "b@example.org"], b"x\r\n"
            )
    assert refused == {"nobody@example.org": (550, b"5.1.1 no such user")}
    assert any(line.startswith("accepted <a@example.org> -> <b@example.org>") for line in errors)


def test_log_traffic_redacts_auth() -> None:
    args = ["--sink", "--auth", "alice:s3cret", "--allow-plaintext-auth", "--log-traffic"]
    with serving(*args) as (port, errors):
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.login("alice", "s3cret")
            smtp.sendmail("a@example.org", ["b@example.org"], b"x\r\n")
        time.sleep(0.2)
    log = "\n".join(errors)
    assert "from:<a@example.org>" in log.lower()
    assert "AUTH" in log and "s3cret" not in log
    import base64

    assert base64.b64encode(b"\0alice\0s3cret").decode() not in log


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.skipif(not hasattr(__import__("socket"), "SO_REUSEPORT"), reason="no SO_REUSEPORT")
def test_workers_share_one_port_and_stop_together() -> None:
    # issue 13 "Scale past one process": serve --workers N runs N processes on one port
    # with SO_REUSEPORT; the kernel spreads connections; SIGTERM stops them all
    proc = subprocess.Popen(
        [sys.executable, "-m", "sansio_smtp", "serve", "--port", "0", "--sink", "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on "), line
        port = int(line.rsplit(":", 1)[1])
        pids = [int(p) for p in proc.stderr.readline().split(":", 1)[1].split()]
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
        # a new connection each time: its source port changes the kernel's hash, so 40
        # connections all landing on one of two workers would be a 1 in 2**39 chance
        for _ in range(40):
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.sendmail("a@example.org", ["b@example.net"], b"Subject: w\r\n\r\nhi\r\n")
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    served = {ln.split(":", 1)[0] for ln in err.splitlines() if "accepted <a@example.org>" in ln}
    assert served == {f"worker {pid}" for pid in pids}, err
    assert not any(_alive(pid) for pid in pids)


def test_workers_must_be_positive() -> None:
    result = _serve("--workers", "0")
    assert result.returncode == 2
    assert "--workers must be 1 or more" in result.stderr


@pytest.mark.skipif(not hasattr(__import__("socket"), "SO_REUSEPORT"), reason="no SO_REUSEPORT")
def test_workers_report_a_port_they_cannot_share() -> None:
    # issue 13 "Scale past one process": a port held without SO_REUSEPORT cannot be
    # joined; the workers' error is reported once and the command exits 1
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        command = [sys.executable, "-m", "sansio_smtp", "serve", "--sink", "--workers", "2"]
        result = subprocess.run(
            [*command, "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    assert result.returncode == 1, result.stderr
    assert f"error: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "listening on" not in result.stdout
