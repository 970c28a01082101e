"""``python -m sansio_smtp send`` from the outside: a subprocess against a local SyncServer.

issue 15 "The command line": --header/--subject/--body, Date and Message-ID, the password
from the environment or a prompt, one line per recipient, no silent wait on a terminal,
and errors that name what is wrong (with the flag that fixes it).
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sansio_smtp import Config, RcptTo
from sansio_smtp.adapters import MemoryHandler, Reject, Session, SyncServer

from .certs import TestCerts, test_certs

ROOT = Path(__file__).resolve().parents[1]
USERS = {"alice": "wonder land"}
ENVELOPE = ("--from", "alice@example.org", "--to", "bob@example.net")
TIMEOUT = ("--timeout", "10")  # generous: the machine may be loaded


def send(
    *args: str,
    stdin: bytes | None = b"",
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m sansio_smtp send ARGS`` (stdin a pipe holding ``stdin``)."""
    environ = {k: v for k, v in os.environ.items() if k != "SANSIO_SMTP_PASSWORD"}
    environ.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "sansio_smtp", "send", *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        cwd=ROOT,
        env=environ,
    )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode()
    )


def parse(content: bytes) -> Any:
    return email.parser.BytesParser(policy=email.policy.default).parsebytes(content)


@pytest.fixture
def server() -> Any:
    handler = MemoryHandler()
    with SyncServer(handler, port=0) as srv:
        srv.handler_ = handler  # type: ignore[attr-defined]
        yield srv


def received(srv: Any) -> bytes:
    handler: MemoryHandler = srv.handler_
    assert handler.wait_for(1)
    return handler.messages[0].content


# ---------------------------------------------------------------- building the message


def test_body_subject_header_build_a_message(server: Any) -> None:
    # issue 15: --body, --subject, --header NAME:VALUE (repeatable); Date (RFC 5322
    # §3.6.1, required) and Message-ID (§3.6.4) added as swaks adds them
    proc = send("--server", f"127.0.0.1:{server.port}", *ENVELOPE, *TIMEOUT,
                "--body", "héllo\nsecond line", "--subject", "Grüße aus Köln",
                "--header", "X-Test: one", "--header", "Reply-To:c@example.org")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    content = received(server)
    # Subject as RFC 2047 encoded-words, the body quoted-printable (RFC 2045 §6.7): no
    # 8BITMIME needed (this server does not offer it)
    assert content.isascii()
    msg = parse(content)
    assert msg["Subject"] == "Grüße aus Köln"
    assert msg["From"] == "alice@example.org" and msg["To"] == "bob@example.net"
    assert msg["X-Test"] == "one" and msg["Reply-To"] == "c@example.org"
    assert abs(email.utils.parsedate_to_datetime(msg["Date"]).timestamp() - time.time()) < 600
    assert re.fullmatch(r"<[^<>@\s]+@example\.org>", msg["Message-ID"])
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert msg.get_content().splitlines() == ["héllo", "second line"]
    assert content.endswith(b"\r\n\r\nh=C3=A9llo\r\nsecond line\r\n")


def test_header_edits_a_given_message_and_keeps_the_rest(server: Any, tmp_path: Path) -> None:
    # --subject/--header replace the fields of that name in the header section only
    # (a folded one with its continuation, RFC 5322 §2.2.3); trace fields stay on top;
    # the body's octets are untouched; LF line endings are kept
    body = b"Subject: not a header, in the body\n\n.leading dot\n"
    original = (
        b"Received: from a by b; Thu, 1 Jan 2026 00:00:00 +0000\n"
        b"Subject: old\n  folded part\n"
        b"From: alice@example.org\n"
        b"X-Test: old\n"
        b"\n" + body
    )
    path = tmp_path / "m.eml"
    path.write_bytes(original)
    proc = send("--server", f"127.0.0.1:{server.port}", *ENVELOPE, *TIMEOUT,
                "--file", str(path), "--subject", "new", "--header", "x-test: new")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    content = received(server)
    assert content.endswith(body.replace(b"\n", b"\r\n"))  # the body as it was
    msg = parse(content)
    assert msg.get_all("Subject") == ["new"] and msg.get_all("X-Test") == ["new"]
    assert b"folded part" not in content
    assert content.startswith(b"Received: ")
    assert len(msg.get_all("Date")) == 1 and len(msg.get_all("Message-ID")) == 1


def test_message_without_header_flags_goes_as_read(server: Any) -> None:
    # the existing contract: a given message is sent as the bytes read (no Date added)
    message = b"Subject: as read\r\n\r\nhello\r\n"
    proc = send("--server", f"127.0.0.1:{server.port}", *ENVELOPE, *TIMEOUT, stdin=message)
    assert proc.returncode == 0, proc.stderr
    assert received(server) == message


def test_existing_date_and_message_id_are_kept(server: Any) -> None:
    # RFC 5322 §3.6: Date and Message-ID at most once; ours only when there is none
    message = b"Date: Thu, 1 Jan 2026 00:00:00 +0000\r\nMessage-ID: <x@y>\r\n\r\nhi\r\n"
    proc = send("--server", f"127.0.0.1:{server.port}", *ENVELOPE, *TIMEOUT,
                "--header", "X-A: 1", stdin=message)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    msg = parse(received(server))
    assert msg.get_all("Date") == ["Thu, 01 Jan 2026 00:00:00 +0000"]
    assert msg.get_all("Message-ID") == ["<x@y>"] and msg["X-A"] == "1"


def test_message_without_header_section_gets_one(server: Any) -> None:
    proc = send("--server", f"127.0.0.1:{server.port}", *ENVELOPE, *TIMEOUT,
                "--subject", "s", stdin=b"just a body line\r\n")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    content = received(server)
    assert content.endswith(b"\r\n\r\njust a body line\r\n")
    assert parse(content)["Subject"] == "s"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--header", "X-Evil: a\r\nBcc: victim@example.net"), "line break"),  # injection
        (("--header", "Bad Name: x"), "NAME:VALUE"),  # RFC 5322 §3.6.8
        (("--header", "novalue"), "NAME:VALUE"),
        (("--subject", "a\nb"), "line break"),
        (("--subject", "a\x1bb"), "control character"),  # RFC 5322 §2.2
        (("--header", "X-Long: " + "x" * 1000), "998"),  # RFC 5322 §2.1.1
        (("--body", "x", "--file", "-"), "--body and --file"),
    ],
)
def test_bad_header_options_are_usage_errors(args: tuple[str, ...], says: str) -> None:
    proc = send("--server", "127.0.0.1:9", *ENVELOPE, *args)
    assert proc.returncode == 2
    assert says in proc.stderr and "Traceback" not in proc.stderr


header_line = st.tuples(
    st.sampled_from(["Subject", "X-Test", "Date", "Message-ID", "Received", "To"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
).map(lambda nv: f"{nv[0]}: {nv[1]}".encode())


@given(
    lines=st.lists(header_line, max_size=6),
    body=st.binary(max_size=200),
    eol=st.sampled_from([b"\r\n", b"\n"]),
    subject=st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40),
)
def test_edit_keeps_the_body_and_sets_each_field_once(
    lines: list[bytes], body: bytes, eol: bytes, subject: str
) -> None:
    # RFC 5322 §2.1: the body after the first empty line is not touched; the field asked
    # for is there once (replacing the message's own); Date and Message-ID at most once
    # (§3.6: max 1), added when missing
    import argparse

    from sansio_smtp._cli_send import _edit

    message = b"".join(line + eol for line in lines) + eol + body
    args = argparse.Namespace(from_addr="a@example.org", ehlo=None)
    edited = _edit(message, [("Subject", subject)], args)
    head, sep, rest = edited.partition(eol + eol)
    assert sep and rest == body
    msg = parse(head.replace(eol, b"\r\n") + b"\r\n\r\n")
    # RFC 2047 §5 and RFC 5322 §2.2.3 folding: equal up to runs of white space
    assert " ".join(str(msg["Subject"]).split()) == " ".join(subject.split())
    assert len(msg.get_all("Subject")) == 1
    assert len(msg.get_all("Date")) == max(1, sum(x.startswith(b"Date:") for x in lines))
    kept = [x for x in lines if not x.startswith(b"Subject:")]
    assert all(x in head for x in kept)


# --------------------------------------------------------------------- per recipient


class RefuseBad(MemoryHandler):
    def rcpt(self, session: Session, event: RcptTo) -> None:
        if str(event.forward_path).startswith("bad@"):
            raise Reject(550, "No such user here", "5.1.1")


def test_one_line_per_recipient() -> None:
    # issue 15: a one-line summary per recipient, accepted or refused, with the reply
    handler = RefuseBad()
    with SyncServer(handler, port=0) as srv:
        proc = send("--server", f"127.0.0.1:{srv.port}", "--from", "a@example.org",
                    "--to", "good@example.net", "--to", "bad@example.net",
                    "--to", "also@example.net", *TIMEOUT, "--body", "hi")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert re.fullmatch(r"accepted good@example\.net: 250 2\.1\.5 .+", out[0])
    assert re.fullmatch(r"accepted also@example\.net: 250 2\.1\.5 .+", out[1])
    assert out[2].startswith("accepted by 2 of 3 recipient(s): 250")
    assert "refused bad@example.net: 550 5.1.1 No such user here" in proc.stderr


# ------------------------------------------------------------------------ the password


@pytest.fixture
def tls_server() -> Any:
    certs = test_certs()
    handler = MemoryHandler()
    with SyncServer(handler, port=0, tls_context=certs.server_context(), auth=USERS) as srv:
        srv.handler_ = handler  # type: ignore[attr-defined]
        srv.certs_ = certs  # type: ignore[attr-defined]
        yield srv


def auth_args(srv: Any) -> tuple[str, ...]:
    certs: TestCerts = srv.certs_
    return ("--server", f"127.0.0.1:{srv.port}", *ENVELOPE, *TIMEOUT,
            "--cafile", str(certs.ca_pem), "--user", "alice", "--body", "hi")  # fmt: skip


def test_password_from_a_named_environment_variable(tls_server: Any) -> None:
    # issue 15: the password from the environment, not the command line (ps shows argv)
    proc = send(*auth_args(tls_server), "--password-env", "MY_PW", "--transcript",
                env={"MY_PW": "wonder land"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "C: AUTH " in proc.stdout and "wonder land" not in proc.stdout
    assert received(tls_server)


def test_password_from_sansio_smtp_password(tls_server: Any) -> None:
    proc = send(*auth_args(tls_server), env={"SANSIO_SMTP_PASSWORD": "wonder land"})
    assert proc.returncode == 0, proc.stderr


def test_password_missing_is_a_usage_error() -> None:
    base = ("--server", "127.0.0.1:9", *ENVELOPE, "--user", "alice", "--body", "hi")
    proc = send(*base, "--password-env", "NOT_SET_ANYWHERE")
    assert proc.returncode == 2 and "NOT_SET_ANYWHERE" in proc.stderr
    proc = send(*base)  # stdin is a pipe: no prompt, say how to give it
    assert proc.returncode == 2
    assert "--password-env" in proc.stderr and "SANSIO_SMTP_PASSWORD" in proc.stderr
    proc = send(*base, "--password", "p", "--password-env", "X")
    assert proc.returncode == 2 and "not allowed with" in proc.stderr  # argparse


def run_on_a_terminal(
    args: list[str], typed: bytes = b"", after: bytes = b"", timeout: float = 30
) -> tuple[int, str, str]:
    """Run the send command with a pseudo-terminal as its stdin; once its stderr shows
    ``after``, type ``typed`` (getpass flushes what was typed before it asked, TCSAFLUSH).
    Returns (status, stdout, stderr)."""
    pty = pytest.importorskip("pty")
    import select

    master, slave = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if k != "SANSIO_SMTP_PASSWORD"}
    err = b""
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sansio_smtp", "send", *args],
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=environ,
            start_new_session=True,  # no controlling terminal: getpass uses stdin's
        )
        os.close(slave)
        assert proc.stderr is not None
        if typed:
            deadline = time.monotonic() + timeout
            while after not in err and time.monotonic() < deadline:
                if select.select([proc.stderr], [], [], 0.5)[0]:
                    chunk = os.read(proc.stderr.fileno(), 4096)
                    if not chunk:
                        break
                    err += chunk
            os.write(master, typed)
        out, rest = proc.communicate(timeout=timeout)
    finally:
        os.close(master)
    return proc.returncode, out.decode(), (err + rest).decode()


@pytest.mark.skipif(sys.platform == "win32", reason="pty is POSIX")
def test_password_prompt_on_a_terminal(tls_server: Any, tmp_path: Path) -> None:
    # issue 15: "or a prompt": getpass, no echo, when stdin is a terminal
    path = tmp_path / "m.eml"
    path.write_bytes(b"Subject: prompted\r\n\r\nhi\r\n")
    certs: TestCerts = tls_server.certs_
    status, out, err = run_on_a_terminal(
        ["--server", f"127.0.0.1:{tls_server.port}", *ENVELOPE, *TIMEOUT,
         "--cafile", str(certs.ca_pem), "--user", "alice", "--file", str(path)],
        typed=b"wonder land\n",
        after=b"password for alice:",
    )  # fmt: skip
    assert status == 0, err
    assert "password for alice:" in err and "wonder land" not in out + err
    assert received(tls_server).endswith(b"\r\n\r\nhi\r\n")


@pytest.mark.skipif(sys.platform == "win32", reason="pty is POSIX")
def test_file_dash_reads_the_terminal_and_says_so(server: Any) -> None:
    # --file - on a terminal: the user asked for it; say how to end, then read to EOF
    status, _, err = run_on_a_terminal(
        ["--server", f"127.0.0.1:{server.port}", *ENVELOPE, *TIMEOUT, "--file", "-"],
        typed=b"Subject: typed\n\nhi\n\x04",  # Ctrl-D at a line's start: end of file
        after=b"Ctrl-D",
    )
    assert status == 0, err
    assert "type the message" in err
    assert received(server) == b"Subject: typed\r\n\r\nhi\r\n"


@pytest.mark.skipif(sys.platform == "win32", reason="pty is POSIX")
def test_terminal_on_stdin_without_file_is_refused() -> None:
    # issue 15: "refuse to wait silently on a terminal with no --file"
    start = time.monotonic()
    status, _, err = run_on_a_terminal(["--server", "127.0.0.1:9", *ENVELOPE])
    assert status == 2
    assert "stdin is a terminal" in err and "--file" in err and "--body" in err
    assert time.monotonic() - start < 20


# -------------------------------------------------------- errors that name what is wrong


def test_missing_cafile_names_the_file() -> None:
    # issue 15: not "[Errno 2] No such file or directory" without the file
    proc = send("--server", "127.0.0.1:9", *ENVELOPE, "--starttls",
                "--cafile", "/nonexistent/dir/ca.pem", "--body", "hi")  # fmt: skip
    assert proc.returncode == 2
    assert "--cafile /nonexistent/dir/ca.pem" in proc.stderr
    assert "No such file or directory" in proc.stderr


@pytest.mark.parametrize("port", ["abc", "0", "65536", "²", "-1"])
def test_bad_port_says_the_range(port: str) -> None:
    # issue 15: `--server 127.0.0.1:abc` says "the port must be 1-65535"
    proc = send("--server", f"127.0.0.1:{port}", *ENVELOPE, "--body", "hi")
    assert proc.returncode == 2
    assert "the port must be 1-65535" in proc.stderr and "Traceback" not in proc.stderr


def test_user_without_starttls_where_auth_comes_after_starttls(tls_server: Any) -> None:
    # issue 15 / RFC 4954 §4, RFC 3207 §4.2: a server that offers AUTH only after
    # STARTTLS. --user without --starttls requires STARTTLS, so AUTH happens over TLS
    proc = send(*auth_args(tls_server), "--password-env", "PW", "--transcript",
                env={"PW": "wonder land"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("C: ")]
    commands = [line.split()[1] for line in lines]
    assert commands.index("STARTTLS") < commands.index("AUTH") < commands.index("MAIL")


def test_mail_refused_before_tls_suggests_starttls() -> None:
    # RFC 3207 §4: 530 5.7.0 "Must issue a STARTTLS command first" -> say --starttls
    certs = test_certs()
    config = Config(require_tls=True)
    with SyncServer(MemoryHandler(), port=0, config=config,
                    tls_context=certs.server_context()) as srv:  # fmt: skip
        proc = send("--server", f"127.0.0.1:{srv.port}", *ENVELOPE, *TIMEOUT, "--body", "hi")
        assert proc.returncode == 1
        assert "530 5.7.0" in proc.stderr and "hint:" in proc.stderr
        assert "--starttls" in proc.stderr
        ok = send("--server", f"127.0.0.1:{srv.port}", *ENVELOPE, *TIMEOUT, "--body", "hi",
                  "--starttls", "--cafile", str(certs.ca_pem))  # fmt: skip
        assert ok.returncode == 0, ok.stderr


def test_tls_against_a_starttls_server_suggests_starttls(tls_server: Any) -> None:
    certs: TestCerts = tls_server.certs_
    proc = send("--server", f"127.0.0.1:{tls_server.port}", *ENVELOPE, *TIMEOUT,
                "--tls", "--cafile", str(certs.ca_pem), "--body", "hi")  # fmt: skip
    assert proc.returncode == 1
    assert "hint:" in proc.stderr and "use --starttls, not --tls" in proc.stderr


def test_untrusted_certificate_suggests_cafile(tls_server: Any, tmp_path: Path) -> None:
    env = {"SSL_CERT_FILE": str(tmp_path / "none.pem"), "SSL_CERT_DIR": str(tmp_path)}
    proc = send("--server", f"127.0.0.1:{tls_server.port}", *ENVELOPE, *TIMEOUT,
                "--starttls", "--body", "hi", env=env)  # fmt: skip
    assert proc.returncode == 1
    assert "certificate verify failed" in proc.stderr and "--cafile" in proc.stderr


def test_help_keeps_every_flag() -> None:
    # the existing flags are a contract; the new ones are listed beside them
    proc = send("--help")
    assert proc.returncode == 0
    for flag in ("--server", "--from", "--to", "--file", "--starttls", "--tls", "--user",
                 "--password", "--ehlo", "--cafile", "--insecure", "--lmtp", "--timeout",
                 "--deadline", "--transcript", "--body", "--subject", "--header",
                 "--password-env"):  # fmt: skip
        assert flag in proc.stdout
