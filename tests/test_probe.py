"""``python -m sansio_smtp probe`` against real servers on 127.0.0.1.

- Our own ``serve`` (plain, and with STARTTLS) must come out clean: exit status 0, no
  VULNERABLE line.
- aiosmtpd 1.4.4 must be flagged: SMTP smuggling (CVE-2024-27305, fixed in 1.4.5: it took
  <LF>.<CRLF> as the end of DATA) and STARTTLS command injection (fixed in 1.4.6). It runs
  from its own directory (``.ci/run`` installs it with ``pip install --target``; the test
  skips with the reason when it is missing), in a subprocess, so the suite's own aiosmtpd
  stays the current one.
- A tiny hand-made server that ends DATA at a bare LF is flagged too (no download needed),
  and one that keeps plaintext across STARTTLS is flagged for injection.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sansio_smtp._probe import SMUGGLING_VARIANTS, Probe, Status

from .certs import test_certs

ROOT = Path(__file__).resolve().parent.parent
#: where .ci/run installs the vulnerable aiosmtpd release (pip install --target)
AIOSMTPD_144 = Path(os.environ.get("AIOSMTPD_144", ROOT / ".peers" / "aiosmtpd-1.4.4"))
TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[str], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.communicate()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not start listening")


@contextmanager
def running(args: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[None]:
    proc = subprocess.Popen(
        args,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    try:
        wait_listening(port, proc)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def probe(port: int, *extra: str) -> tuple[int, dict[str, object]]:
    result = subprocess.run(
        [sys.executable, "-m", "sansio_smtp", "probe", "--server", f"127.0.0.1:{port}",
         "--timeout", "3", "--json", *extra],
        capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT,
    )  # fmt: skip
    return result.returncode, json.loads(result.stdout)


def statuses(report: dict[str, object]) -> dict[str, str]:
    checks = report["checks"]
    assert isinstance(checks, list)
    return {c["name"]: c["status"] for c in checks}


def test_probe_reports_our_server_clean() -> None:
    certs = test_certs()
    port = free_port()
    serve = [sys.executable, "-m", "sansio_smtp", "serve", "--port", str(port),
             "--tls-cert", str(certs.cert_pem), "--tls-key", str(certs.key_pem)]  # fmt: skip
    with running(serve, port):
        code, report = probe(port)
        code_tls, report_tls = probe(port, "--starttls")
    found = statuses(report)
    assert code == 0, report
    assert "VULNERABLE" not in found.values(), report
    assert all(s == "PASS" for s in found.values()), report  # STARTTLS offered: all apply
    assert len([n for n in found if n.startswith("smuggling")]) == len(SMUGGLING_VARIANTS)
    assert found["STARTTLS injection"] == "PASS"
    assert found["STARTTLS injection (fragment)"] == "PASS"
    assert code_tls == 0, report_tls
    assert "VULNERABLE" not in statuses(report_tls).values(), report_tls


AIOSMTPD_RUNNER = textwrap.dedent(
    """
    import ssl, sys, time
    import aiosmtpd
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink
    assert aiosmtpd.__version__ == sys.argv[4], aiosmtpd.__version__
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    c = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]), tls_context=ctx,
                   require_starttls=False)
    c.start()
    try:
        sys.stdin.read()  # until the test closes our stdin or terminates us
    finally:
        c.stop()
    """
)


def test_probe_flags_aiosmtpd_144() -> None:
    # CVE-2024-27305 (aiosmtpd < 1.4.5: SMTP smuggling) and the STARTTLS injection fixed
    # in aiosmtpd 1.4.6 (CVE-2011-0411 family, RFC 3207 §5)
    if not (AIOSMTPD_144 / "aiosmtpd").is_dir():
        pytest.skip(f"aiosmtpd 1.4.4 is not installed in {AIOSMTPD_144} (.ci/run installs it)")
    certs = test_certs()
    port = free_port()
    args = [sys.executable, "-c", AIOSMTPD_RUNNER, str(port), str(certs.cert_pem),
            str(certs.key_pem), "1.4.4"]  # fmt: skip
    with running(args, port, env={"PYTHONPATH": str(AIOSMTPD_144)}):
        code, report = probe(port)
    found = statuses(report)
    assert code == 1, report
    smuggling = [n for n, s in found.items() if "smuggling" in n and s == "VULNERABLE"]
    assert smuggling, report
    assert any("STARTTLS" in n and s == "VULNERABLE" for n, s in found.items()), report


# ------------------------------------------------------------- in-process checks


class SloppyServer:
    """A deliberately broken SMTP server for the probe's own tests: it ends DATA at a
    bare ``\\n.\\n``-style line (``lf_dot``) and keeps plaintext across STARTTLS
    (``keeps_plaintext``)."""

    def __init__(self, *, lf_dot: bool, keeps_plaintext: bool) -> None:
        self.lf_dot, self.keeps_plaintext = lf_dot, keeps_plaintext
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.certs = test_certs() if keeps_plaintext else None
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        f: object = conn
        buf = b""

        def write(data: bytes) -> None:
            f.sendall(data)  # type: ignore[attr-defined]

        try:
            write(b"220 sloppy ESMTP\r\n")
            in_data = False
            while True:
                if in_data:
                    ends = [b"\r\n.\r\n"] + ([b"\n.\r\n", b"\n.\n"] if self.lf_dot else [])
                    hits = [(buf.find(e), e) for e in ends if buf.find(e) >= 0]
                    if hits:
                        at, end = min(hits)
                        buf = buf[at + len(end) :]
                        in_data = False
                        write(b"250 queued\r\n")
                        continue
                elif b"\n" in buf:
                    line, _, buf = buf.partition(b"\n")
                    verb = line.strip().upper()[:4]
                    if verb == b"EHLO":
                        tls = b"250-STARTTLS\r\n" if self.certs else b""
                        write(b"250-sloppy\r\n" + tls + b"250 PIPELINING\r\n")
                    elif verb == b"DATA":
                        in_data = True
                        write(b"354 go\r\n")
                    elif verb == b"STAR" and self.certs is not None:
                        write(b"220 go ahead\r\n")
                        kept = buf if self.keeps_plaintext else b""
                        f = self.certs.server_context().wrap_socket(conn, server_side=True)
                        buf = kept
                    elif verb == b"QUIT":
                        write(b"221 bye\r\n")
                        return
                    elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                        write(b"250 ok\r\n")
                    else:
                        write(b"500 what\r\n")
                    continue
                data = f.recv(65536)  # type: ignore[attr-defined]
                if not data:
                    return
                buf += data
        except (OSError, ssl.SSLError):
            return
        finally:
            conn.close()

    def close(self) -> None:
        self.sock.close()


def test_probe_flags_bare_lf_end_of_data_and_plaintext_after_starttls() -> None:
    server = SloppyServer(lf_dot=True, keeps_plaintext=True)
    try:
        checks = {c.name: c for c in Probe("127.0.0.1", server.port, timeout=2).checks()}
    finally:
        server.close()
    # RFC 5321 §4.1.1.4: only <CRLF>.<CRLF> ends DATA
    assert checks["smuggling <LF>.<CRLF>"].status is Status.VULNERABLE
    assert checks["smuggling <LF>.<LF>"].status is Status.VULNERABLE
    assert "answered" in checks["smuggling <LF>.<LF>"].evidence
    assert checks["smuggling <CR>.<CR>"].status is Status.PASS
    # RFC 3207 §5 / CVE-2011-0411
    assert checks["STARTTLS injection"].status is Status.VULNERABLE
    assert checks["STARTTLS injection (fragment)"].status is Status.VULNERABLE


def test_probe_passes_a_careful_server_and_times_out_bounded() -> None:
    server = SloppyServer(lf_dot=False, keeps_plaintext=False)
    started = time.monotonic()
    try:
        checks = list(Probe("127.0.0.1", server.port, timeout=2).checks())
    finally:
        server.close()
    assert not [c for c in checks if c.status is Status.VULNERABLE]
    assert time.monotonic() - started < 60


def test_probe_unreachable_server_exits_2() -> None:
    port = free_port()  # nothing listens there
    result = subprocess.run(
        [sys.executable, "-m", "sansio_smtp", "probe", "--server", f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 2
    assert "error" in result.stdout


def test_probe_usage_errors() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sansio_smtp", "probe", "--server", "127.0.0.1:abc"],
        capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 2
    assert "1-65535" in result.stderr
