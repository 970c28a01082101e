"""Interop: the stdlib's smtplib.SMTP client against the SERVER core on loopback.

The server is tests/loopback.py: a blocking socket loop that answers every event with
``conn.default_reply(event)`` unless a test's handler says otherwise. Every socket has a
timeout (smtplib's ``timeout=``, the server's SOCKET_TIMEOUT), so nothing here can hang.

smtplib facts the expectations rely on (CPython Lib/smtplib.py, SMTP.data / sendmail):
- a str message has bare CR and LF turned into CRLF (``_fix_eols``) and must be ASCII;
  a bytes message "is transmitted as is" - no line-ending conversion at all;
- lines starting with "." get another "." (``_quote_periods``, ``re.sub(rb'(?m)^\\.',
  b'..', msg)``; ``(?m)^`` matches at the start and after every LF);
- if the message does not end with CRLF, CRLF is appended, then ".CRLF";
- with SIZE advertised, sendmail adds ``size=<len(msg)>`` to MAIL FROM.
So for a bytes message with only CRLF line endings the server must deliver exactly
``msg`` (plus CRLF if msg does not end with one).
"""

from __future__ import annotations

import copy
import email
import email.policy
import io
import re
import smtplib
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email.generator import BytesGenerator
from email.message import EmailMessage

import pytest

from sansio_smtp import Config, Connection, Ehlo, Event, RcptTo, Reply

from .loopback import Handler, LoopbackServer

TIMEOUT = 5.0
HOSTNAME = "mx.loopback.test"
CLIENT_NAME = "client.example"  # passed to smtplib so it never calls socket.getfqdn()
EXTENSIONS = {
    "8BITMIME": (),
    "PIPELINING": (),
    "ENHANCEDSTATUSCODES": (),
    "SIZE": ("10000000",),
}
CONFIG = Config(hostname=HOSTNAME, extensions=EXTENSIONS)
UTF8_CONFIG = Config(hostname=HOSTNAME, extensions={**EXTENSIONS, "SMTPUTF8": ()})

SENDER = "sender@example.org"
RCPT = "rcpt@example.org"

# RFC 2034 §3 / RFC 3463 §2: once ENHANCEDSTATUSCODES is advertised, the text of a 2xx,
# 4xx or 5xx reply starts with class.subject.detail.
ENHANCED_RE = re.compile(rb"[245]\.\d{1,3}\.\d{1,3} ")


@contextmanager
def serve(config: Config = CONFIG, handler: Handler | None = None) -> Iterator[LoopbackServer]:
    """A loopback server that must end the test without errors in its threads."""
    with LoopbackServer(config, handler) as server:
        yield server
    assert server.errors == [], (server.errors, server.transcripts)


def connect(server: LoopbackServer) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", server.port, local_hostname=CLIENT_NAME, timeout=TIMEOUT)


def reject(address: str) -> Handler:
    """A handler that refuses one recipient with 550 5.1.1 and accepts everything else."""

    def handler(conn: Connection, event: Event) -> Reply:
        if isinstance(event, RcptTo) and str(event.forward_path) == address:
            # RFC 5321 §4.2.2 / §3.3: 550 mailbox unavailable;
            # RFC 3463 §3.2: X.1.1 Bad destination mailbox address
            return Reply(code=550, lines="No such user here", enhanced="5.1.1")
        return conn.default_reply(event)

    return handler


# ------------------------------------------------------------------ message content

BIG_BODY = b"".join(b".%06d dotted line\r\n" % i if i % 3 else b".\r\n" for i in range(40_000))

# (id, bytes given to smtplib.sendmail, bytes the server must deliver)
CONTENT_CASES = [
    (
        "dots-8bit-no-final-crlf",
        b"From: sender@example.org\r\n"
        b"Subject: transparency\r\n"
        b"\r\n"
        b".leading dot\r\n"
        b"..two leading dots\r\n"
        b".\r\n"
        b". dot space\r\n"
        b"8-bit: caf\xc3\xa9 \x80\xfe\xff\r\n"
        b"last line, no CRLF",
        # smtplib appends the missing CRLF before ".CRLF" (SMTP.data)
        b"From: sender@example.org\r\n"
        b"Subject: transparency\r\n"
        b"\r\n"
        b".leading dot\r\n"
        b"..two leading dots\r\n"
        b".\r\n"
        b". dot space\r\n"
        b"8-bit: caf\xc3\xa9 \x80\xfe\xff\r\n"
        b"last line, no CRLF\r\n",
    ),
    # RFC 5321 §4.5.2: a first line that is exactly "." is sent as ".." and un-stuffed.
    ("only-a-dot-line", b".\r\n", b".\r\n"),
    # The last line is "." without CRLF: smtplib sends "..CRLF.CRLF".
    ("ends-with-bare-dot", b"text\r\n.", b"text\r\n.\r\n"),
    # Lines that look like the terminator, twice, must stay content (§4.1.1.4, §4.5.2).
    ("fake-terminators", b"a\r\n.\r\n.\r\n\r\n.\r\nb\r\n", b"a\r\n.\r\n.\r\n\r\n.\r\nb\r\n"),
    ("dot-dot-crlf-lines", b"..\r\n...\r\n", b"..\r\n...\r\n"),
    # An empty message: smtplib sends "CRLF.CRLF", which is one empty line.
    ("empty", b"", b"\r\n"),
    ("crlf-terminated", b"a\r\nb\r\n", b"a\r\nb\r\n"),
    # Larger than one recv() and than Config.max_data_chunk (256 KiB): dots at every
    # chunk boundary the server happens to see.
    ("big-dotty", BIG_BODY, BIG_BODY),
]


@pytest.mark.parametrize(
    ("body", "expected"), [c[1:] for c in CONTENT_CASES], ids=[c[0] for c in CONTENT_CASES]
)
def test_sendmail_content_is_byte_identical(body: bytes, expected: bytes) -> None:
    with serve() as server, connect(server) as smtp:
        # RFC 6152 §3: BODY=8BITMIME declares 8-bit content (server advertised 8BITMIME)
        refused = smtp.sendmail(SENDER, [RCPT], body, mail_options=["BODY=8BITMIME"])
        assert refused == {}
        assert len(server.messages) == 1
        msg = server.messages[0]
        assert msg.content == expected
        assert str(msg.sender) == SENDER
        assert [str(r) for r in msg.recipients] == [RCPT]
        # RFC 1870 §4: smtplib declares the size; RFC 5321 §4.1.2 params are case-insensitive
        assert msg.mail_params["SIZE"] == str(len(body))
        assert msg.mail_params["BODY"] == "8BITMIME"
        code, _ = smtp.quit()
        assert code == 221


def test_sendmail_str_message_line_endings_fixed_by_smtplib() -> None:
    # A str message: smtplib converts bare LF and bare CR to CRLF (_fix_eols) before
    # dot-stuffing, so the server sees canonical CRLF lines (RFC 5321 §2.3.8).
    body = "Subject: str\n\n.dot after LF\nbare CR\rend\r\n.\nlast"
    expected = b"Subject: str\r\n\r\n.dot after LF\r\nbare CR\r\nend\r\n.\r\nlast\r\n"
    with serve() as server, connect(server) as smtp:
        assert smtp.sendmail(SENDER, [RCPT], body) == {}
        assert [m.content for m in server.messages] == [expected]


def test_sendmail_bytes_with_bare_lf_is_normalized() -> None:
    # smtplib sends bytes "as is", bare LFs included (which RFC 5321 §2.3.8 forbids a
    # client to send). Under the default LineEndingPolicy.NORMALIZE the server treats each
    # bare LF as CRLF, so what it delivers is canonical CRLF text.
    body = b"Subject: unix\n\nline one\nline two\r\nlast"
    expected = b"Subject: unix\r\n\r\nline one\r\nline two\r\nlast\r\n"
    with serve() as server, connect(server) as smtp:
        assert smtp.sendmail(SENDER, [RCPT], body) == {}
        assert [m.content for m in server.messages] == [expected]


def test_sendmail_bytes_with_bare_lf_dot_lines_not_doubled() -> None:
    # smtplib dot-stuffs after *every* LF ((?m)^ in _quote_periods), bare LFs included:
    # b"x\n.y" goes on the wire as b"x\n..y". NORMALIZE promises to treat a bare LF as
    # CRLF (as Postfix's smtpd_forbid_bare_newline=normalize does), so the line after it is
    # a dot-stuffed line and RFC 5321 §4.5.2 says its first "." is deleted. Delivering
    # "..dot line" would double the dot of every such line an LF-only file sends.
    body = b"Subject: unix dots\n\n.dot line\n.\nend"
    expected = b"Subject: unix dots\r\n\r\n.dot line\r\n.\r\nend\r\n"
    with serve() as server, connect(server) as smtp:
        assert smtp.sendmail(SENDER, [RCPT], body) == {}
        assert [m.content for m in server.messages] == [expected]


def test_two_messages_in_one_session_are_separate_transactions() -> None:
    # RFC 5321 §3.3 / §4.1.1.4: the end of data ends the transaction; buffers are cleared.
    with serve() as server, connect(server) as smtp:
        assert smtp.sendmail(SENDER, ["a@example.org"], b"first\r\n") == {}
        assert smtp.sendmail("other@example.org", ["b@example.org"], b"second\r\n") == {}
        got = [(str(m.sender), [str(r) for r in m.recipients], m.content) for m in server.messages]
        assert got == [
            (SENDER, ["a@example.org"], b"first\r\n"),
            ("other@example.org", ["b@example.org"], b"second\r\n"),
        ]


def test_null_reverse_path() -> None:
    # RFC 5321 §4.5.5: bounces use the null reverse-path "<>".
    with serve() as server, connect(server) as smtp:
        assert smtp.sendmail("<>", [RCPT], b"bounce\r\n") == {}
        assert server.messages[0].sender is None


# -------------------------------------------------------------------------- SMTPUTF8


def test_send_message_smtputf8() -> None:
    msg = EmailMessage()
    msg["From"] = "Absender <用户@例子.广告>"
    msg["To"] = "δοκιμή@παράδειγμα.δοκιμή, plain@example.org"
    msg["Bcc"] = "hidden@example.org"
    msg["Subject"] = "Grüße, ünïcödé"
    msg.set_content("Body with ü and 中文 and a\n.leading dot line\n")

    # What send_message serialises (smtplib.SMTP.send_message): Bcc removed, utf8 policy,
    # CRLF line endings; data() then appends CRLF only if missing.
    copied = copy.copy(msg)
    del copied["Bcc"]
    buf = io.BytesIO()
    assert msg.policy is email.policy.default  # so msg.policy.clone(...) is this:
    policy = email.policy.default.clone(utf8=True)
    BytesGenerator(buf, policy=policy).flatten(copied, linesep="\r\n")
    expected = buf.getvalue()
    if not expected.endswith(b"\r\n"):
        expected += b"\r\n"
    assert "用户".encode() in expected  # really sent as raw UTF-8, not encoded words

    with serve(UTF8_CONFIG) as server, connect(server) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("smtputf8")
        assert smtp.send_message(msg) == {}
        assert len(server.messages) == 1
        got = server.messages[0]
        # RFC 6531 §3.4: SMTPUTF8 on MAIL allows UTF-8 in the envelope addresses
        assert "SMTPUTF8" in got.mail_params
        assert got.mail_params["BODY"] == "8BITMIME"
        assert str(got.sender) == "用户@例子.广告"
        assert [str(r) for r in got.recipients] == [
            "δοκιμή@παράδειγμα.δοκιμή",
            "plain@example.org",
            "hidden@example.org",
        ]
        assert got.content == expected
        parsed = email.message_from_bytes(got.content, policy=email.policy.default)
        assert parsed["Subject"] == "Grüße, ünïcödé"
        assert parsed["Bcc"] is None
        # (the parser keeps the CRLF line endings it was given)
        body = parsed.get_content().replace("\r\n", "\n")
        assert body == "Body with ü and 中文 and a\n.leading dot line\n"


def test_utf8_address_without_smtputf8_is_refused() -> None:
    # RFC 6531 §3.7.4.1 (553 5.6.7 / 5.1.x): a non-ASCII path without SMTPUTF8 on MAIL.
    with serve(UTF8_CONFIG) as server, connect(server) as smtp:
        smtp.ehlo()
        smtp.command_encoding = "utf-8"  # make smtplib put raw UTF-8 on the wire anyway
        code, _ = smtp.docmd("MAIL FROM:<用户@例子.广告>")
        assert code == 553
        assert server.messages == []


# ------------------------------------------------------------------ refused recipient


def test_rejected_recipient_reported_and_other_delivered() -> None:
    with serve(handler=reject("nobody@example.org")) as server, connect(server) as smtp:
        refused = smtp.sendmail(SENDER, [RCPT, "nobody@example.org"], b"hello\r\n")
        # smtplib.sendmail: "returns a dictionary, with one entry for each recipient that
        # was refused", value (code, message); the enhanced code is part of the text.
        assert refused == {"nobody@example.org": (550, b"5.1.1 No such user here")}
        assert len(server.messages) == 1
        assert [str(r) for r in server.messages[0].recipients] == [RCPT]
        assert server.messages[0].content == b"hello\r\n"


def test_all_recipients_rejected_no_message() -> None:
    # RFC 5321 §3.3: no accepted RCPT -> no DATA; smtplib raises and sends RSET.
    with serve(handler=reject("nobody@example.org")) as server, connect(server) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            smtp.sendmail(SENDER, ["nobody@example.org"], b"hello\r\n")
        assert info.value.recipients == {"nobody@example.org": (550, b"5.1.1 No such user here")}
        assert server.messages == []
        # The session is still usable after smtplib's RSET.
        assert smtp.sendmail(SENDER, [RCPT], b"again\r\n") == {}
        assert [m.content for m in server.messages] == [b"again\r\n"]


# --------------------------------------------------------------------- EHLO / HELO


def test_ehlo_reply_parsed_by_smtplib() -> None:
    with serve() as server, connect(server) as smtp:
        code, text = smtp.ehlo()
        # RFC 5321 §4.1.1.1: 250, first line the server's domain, then one ehlo-line per
        # extension: ehlo-keyword *( SP ehlo-param )
        assert code == 250
        assert text.split(b"\n")[0] == HOSTNAME.encode()
        assert smtp.does_esmtp
        assert smtp.esmtp_features == {
            "8bitmime": "",
            "pipelining": "",
            "enhancedstatuscodes": "",
            "size": "10000000",
        }
        assert smtp.has_extn("size")
        assert smtp.has_extn("SIZE")
        assert smtp.has_extn("pipelining")
        assert not smtp.has_extn("smtputf8")
        assert not smtp.has_extn("starttls")


def test_greeting_read_by_smtplib() -> None:
    # RFC 5321 §3.1, §4.3.2: the server speaks first with 220 <domain>.
    with serve() as server:
        smtp = smtplib.SMTP(timeout=TIMEOUT, local_hostname=CLIENT_NAME)
        try:
            code, text = smtp.connect("127.0.0.1", server.port)
            assert code == 220
            assert text.split()[0] == HOSTNAME.encode()
        finally:
            smtp.close()


def test_helo_explicit() -> None:
    with serve() as server, connect(server) as smtp:
        code, text = smtp.helo()  # RFC 5321 §4.1.1.1: HELO still works
        assert (code, text) == (250, HOSTNAME.encode())
        assert not smtp.does_esmtp
        assert smtp.sendmail(SENDER, [RCPT], b"via HELO\r\n") == {}
        assert [m.content for m in server.messages] == [b"via HELO\r\n"]
        assert len(server.messages[0].mail_params) == 0  # no ESMTP options after HELO
        # After HELO no extension is in effect, so an ESMTP parameter is not recognised:
        # RFC 5321 §4.1.1.11 -> 555.
        code, _ = smtp.docmd("MAIL FROM:<a@example.org> SIZE=10")
        assert code == 555


def test_helo_fallback_when_ehlo_refused() -> None:
    def no_ehlo(conn: Connection, event: Event) -> Reply:
        if isinstance(event, Ehlo):
            # RFC 5321 §4.2.4: 502 for a recognised command that is not implemented;
            # RFC 5321 §3.2: a client then falls back to HELO.
            return Reply(code=502, lines="EHLO not implemented")
        return conn.default_reply(event)

    with serve(handler=no_ehlo) as server, connect(server) as smtp:
        assert smtp.sendmail(SENDER, [RCPT], b"fallback\r\n") == {}
        assert not smtp.does_esmtp
        assert smtp.helo_resp == HOSTNAME.encode()
        assert [m.content for m in server.messages] == [b"fallback\r\n"]
    client_lines = b"".join(d for who, d in server.transcripts[0] if who == "C").split(b"\r\n")
    assert client_lines[:2] == [b"ehlo " + CLIENT_NAME.encode(), b"helo " + CLIENT_NAME.encode()]


# ------------------------------------------------------------ errors and sequencing


def test_rcpt_before_mail_is_503() -> None:
    with serve() as server, connect(server) as smtp:
        # Before EHLO/HELO: RFC 5321 §4.1.4 - a session with mail transactions must
        # start with EHLO/HELO; out of order -> 503.
        code, _ = smtp.docmd("RCPT TO:<a@b>")
        assert code == 503
        smtp.ehlo()
        # RFC 5321 §4.1.4: "If the commands in a transaction are out of order ..., a 503
        # failure reply MUST be returned and the SMTP server MUST stay in the same state."
        code, text = smtp.docmd("RCPT TO:<a@b>")
        assert code == 503
        assert text.startswith(b"5.5.1 ")  # RFC 3463 §3.6: 5.5.1 invalid command
        # Stayed in the same state: a whole transaction still works.
        assert smtp.sendmail(SENDER, [RCPT], b"after 503\r\n") == {}
        assert [m.content for m in server.messages] == [b"after 503\r\n"]


def test_data_without_recipients() -> None:
    with serve() as server, connect(server) as smtp:
        smtp.ehlo()
        assert smtp.mail(SENDER)[0] == 250
        # RFC 5321 §3.3: DATA with no accepted RCPT gets 503 or 554.
        code, _ = smtp.docmd("DATA")
        assert code in (503, 554)
        assert smtp.rcpt(RCPT)[0] == 250  # still in the transaction
        code, _ = smtp.data(b"late\r\n")
        assert code == 250
        assert [m.content for m in server.messages] == [b"late\r\n"]


def test_nested_mail_is_503() -> None:
    with serve() as server, connect(server) as smtp:
        smtp.ehlo()
        assert smtp.mail(SENDER)[0] == 250
        # RFC 5321 §4.1.4: MAIL inside an open transaction is out of sequence.
        code, _ = smtp.docmd("MAIL FROM:<other@example.org>")
        assert code == 503
        assert smtp.rcpt(RCPT)[0] == 250
        assert smtp.data(b"x\r\n")[0] == 250
        assert str(server.messages[0].sender) == SENDER  # the first MAIL still holds


def test_unknown_command_is_500() -> None:
    with serve() as server, connect(server) as smtp:
        smtp.ehlo()
        # RFC 5321 §4.2.4: a command that is not recognised gets 500 (not 502).
        code, text = smtp.docmd("FOO")
        assert code == 500
        assert ENHANCED_RE.match(text + b" "), text  # RFC 2034 §3
        assert smtp.noop()[0] == 250
        assert server.messages == []


def test_unknown_mail_parameter_is_555() -> None:
    with serve() as server, connect(server) as smtp:
        smtp.ehlo()
        # RFC 5321 §4.1.1.11: an unrecognised MAIL parameter gets 555.
        code, text = smtp.docmd("MAIL FROM:<a@b> BOGUS=1")
        assert code == 555
        assert ENHANCED_RE.match(text), text
        # The MAIL was refused, so no transaction is open (§4.1.4: same state).
        code, _ = smtp.docmd("RCPT TO:<a@b>")
        assert code == 503
        assert smtp.sendmail(SENDER, [RCPT], b"ok\r\n") == {}
        assert len(server.messages) == 1


def test_command_line_too_long_is_500() -> None:
    # RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF;
    # §4.5.3.1.10: "500 Line too long".
    long_line = "NOOP " + "x" * (600 - len("NOOP ") - 2)
    assert len(long_line) + 2 == 600
    at_limit = "NOOP " + "y" * (512 - len("NOOP ") - 2)
    assert len(at_limit) + 2 == 512
    with serve() as server, connect(server) as smtp:
        smtp.ehlo()
        code, text = smtp.docmd(long_line)
        assert code == 500
        assert ENHANCED_RE.match(text), text
        # The rest of the line was discarded, not read as another command.
        assert smtp.noop()[0] == 250
        # Exactly 512 octets is allowed.
        assert smtp.docmd(at_limit)[0] == 250
        # A too-long MAIL is refused too and opens no transaction.
        code, _ = smtp.docmd("MAIL FROM:<" + "a" * 600 + "@example.org>")
        assert code == 500
        assert smtp.docmd("RCPT TO:<a@b>")[0] == 503
        assert smtp.sendmail(SENDER, [RCPT], b"still fine\r\n") == {}
        assert [m.content for m in server.messages] == [b"still fine\r\n"]


# ------------------------------------------------------------- NOOP RSET VRFY QUIT


def test_noop() -> None:
    with serve() as server, connect(server) as smtp:
        assert smtp.noop()[0] == 250  # RFC 5321 §4.1.1.9, also before EHLO
        smtp.ehlo()
        code, text = smtp.noop()
        assert code == 250
        assert ENHANCED_RE.match(text + b" "), text
        # §4.1.1.9: the parameter string "SHOULD be ignored"
        assert smtp.docmd("NOOP", "hello there")[0] == 250
        assert server.messages == []


def test_rset_aborts_transaction() -> None:
    with serve() as server, connect(server) as smtp:
        smtp.ehlo()
        assert smtp.mail(SENDER)[0] == 250
        assert smtp.rcpt(RCPT)[0] == 250
        # RFC 5321 §4.1.1.5: RSET aborts the transaction, clears all buffers, replies 250
        code, _ = smtp.rset()
        assert code == 250
        assert smtp.docmd("DATA")[0] == 503  # no transaction any more
        assert smtp.docmd("RCPT TO:<a@b>")[0] == 503
        assert smtp.rset()[0] == 250  # RSET without a transaction is fine too
        assert smtp.sendmail(SENDER, ["new@example.org"], b"x\r\n") == {}
        assert [[str(r) for r in m.recipients] for m in server.messages] == [["new@example.org"]]


def test_vrfy_252() -> None:
    with serve() as server, connect(server) as smtp:
        smtp.ehlo()
        # RFC 5321 §3.5.3: 252 "Cannot VRFY user, but will accept message and attempt
        # delivery" when the server will not verify.
        code, _ = smtp.verify("someone@example.org")
        assert code == 252
        assert smtp.verify("Smith")[0] == 252
        assert server.messages == []


def test_quit_221_and_server_closes() -> None:
    with serve() as server, connect(server) as smtp:
        smtp.ehlo()
        # RFC 5321 §4.1.1.10: QUIT -> 221, then the server closes the channel.
        code, text = smtp.quit()
        assert code == 221
        assert text.split()[-3:] == [HOSTNAME.encode(), b"closing", b"connection"]
        server.wait_closed(TIMEOUT)
    assert server.transcripts[0][-1][0] == "S"  # the 221 was the last thing said


def test_quit_raw_socket_server_closes_channel() -> None:
    with (
        serve() as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock,
    ):
        sock.sendall(b"EHLO raw.example\r\nQUIT\r\n")
        received = b""
        while True:
            data = sock.recv(4096)  # a timeout here fails the test instead of hanging
            if not data:
                break  # the server closed after 221
            received += data
        lines = received.split(b"\r\n")
        assert lines[0].startswith(b"220 ")
        assert lines[-2].startswith(b"221 ")
        assert lines[-1] == b""


def test_pipelined_group() -> None:
    # RFC 2920 §3.1: with PIPELINING advertised a client may send MAIL, RCPTs and DATA in
    # one write; the server answers each in order (§3.2).
    with (
        serve() as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock,
    ):
        rfile = sock.makefile("rb")

        def reply() -> list[bytes]:
            lines: list[bytes] = []
            while True:
                line = rfile.readline(1024)
                assert line.endswith(b"\r\n"), [*lines, line]
                lines.append(line)
                if line[3:4] == b" ":
                    return lines

        assert reply()[0][:3] == b"220"
        sock.sendall(b"EHLO raw.example\r\n")
        assert reply()[0][:3] == b"250"
        sock.sendall(
            b"MAIL FROM:<p@example.org>\r\nRCPT TO:<q@example.org>\r\n"
            b"RCPT TO:<r@example.org>\r\nDATA\r\n"
        )
        assert [reply()[0][:3] for _ in range(4)] == [b"250", b"250", b"250", b"354"]
        sock.sendall(b"pipelined\r\n.\r\nQUIT\r\n")
        assert reply()[0][:3] == b"250"
        assert reply()[0][:3] == b"221"
        assert rfile.read() == b""
        rfile.close()
    assert [m.content for m in server.messages] == [b"pipelined\r\n"]
    assert [str(r) for r in server.messages[0].recipients] == ["q@example.org", "r@example.org"]
