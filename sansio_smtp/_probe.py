# ``python -m sansio_smtp probe``: test a running SMTP server with the library's own reply
# parser. Each check opens its own short session (so one check's confusion cannot leak into
# the next), sends raw bytes - deliberately out of sequence, over-long or smuggling-shaped -
# and judges what comes back.
#
# Rules: only the server the user names is contacted; every read has a timeout and the
# whole run an overall deadline; the number of connections is fixed by the list of checks;
# mail goes only to the test addresses given (--from/--to, default postmaster, which every
# server must accept, RFC 5321 §4.5.1). A check says PASS, FAIL (not as the RFC says),
# VULNERABLE (the server can be attacked), NOT_APPLICABLE (e.g. no STARTTLS) or ERROR (the
# check could not be completed), each with the evidence: what the server answered.
"""Probe a running SMTP server for conformance and known attacks (SMTP smuggling,
STARTTLS command injection)."""

from __future__ import annotations

import enum
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import attrs

from ._errors import LocalProtocolError
from ._events import Reply
from ._extensions import Extensions
from ._readers import ReplyReader, make_reply
from ._receivebuffer import ReceiveBuffer
from .config import Config

__all__ = ["SMUGGLING_VARIANTS", "Check", "Probe", "Status"]


class Status(enum.Enum):
    PASS = "pass"
    FAIL = "FAIL"
    VULNERABLE = "VULNERABLE"
    NOT_APPLICABLE = "not applicable"
    ERROR = "error"


@attrs.frozen
class Check:
    """One check's verdict: ``name``, ``status`` and the ``evidence`` (what was sent and
    what the server answered, as text)."""

    name: str
    status: Status
    evidence: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status.name, "evidence": self.evidence}


#: End-of-data look-alikes that only a server which does not insist on <CRLF>.<CRLF>
#: (RFC 5321 §4.1.1.4) takes as the end of the message: SMTP smuggling (CVE-2023-51764,
#: CVE-2023-51765, CVE-2023-51766, CVE-2024-27305). Each is placed after some content.
SMUGGLING_VARIANTS: dict[str, bytes] = {
    "<LF>.<LF>": b"\n.\n",
    "<LF>.<CRLF>": b"\n.\r\n",
    "<CRLF>.<LF>": b"\r\n.\n",
    "<CR>.<CR>": b"\r.\r",
    "<CR>.<CRLF>": b"\r.\r\n",
    "<CRLF>.<CR>": b"\r\n.\r",
    "<LF>.<CR>": b"\n.\r",
    "<CR><CR><LF>.<CR><CR><LF>": b"\r\r\n.\r\r\n",
}


class _Closed(Exception):
    """The server closed the connection."""


class _Session:
    """One connection: raw writes, replies parsed by the library's ReplyReader."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.timeout = timeout
        self.buf = ReceiveBuffer()
        self.reader = ReplyReader(Config())
        self.closed = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, timeout: float) -> bool:
        """Read once; False on timeout. Raises _Closed at end of stream."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            return False
        except ssl.SSLError as exc:
            raise _Closed(f"TLS error: {exc}") from exc
        except OSError as exc:
            raise _Closed(str(exc)) from exc
        if not chunk:
            self.closed = True
            raise _Closed("connection closed by the server")
        self.buf += chunk
        return True

    def reply(self, timeout: float | None = None) -> Reply | None:
        """The next whole reply, or None when none came within ``timeout`` (a whole-reply
        deadline, not per read)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            got = self.reader.read(self.buf)
            if got is not None:
                return make_reply(*got)
            left = deadline - time.monotonic()
            if left <= 0 or not self._fill(left):
                return None

    def expect(self, what: str) -> Reply:
        reply = self.reply()
        if reply is None:
            raise _Closed(f"no reply to {what} within {self.timeout:g} s")
        return reply

    def command(self, line: str) -> Reply:
        self.send(line.encode() + b"\r\n")
        return self.expect(line.split(" ")[0])

    def collect(self, expected: int, settle: float, limit: int = 20) -> tuple[list[Reply], str]:
        """The ``expected`` replies (each within the timeout), then any more that come
        before the line has been quiet for ``settle`` seconds (at most ``limit``); and how
        it ended: "quiet", "limit", "timeout" or why the connection ended."""
        got: list[Reply] = []
        try:
            while len(got) < limit:
                reply = self.reply(None if len(got) < expected else settle)
                if reply is None:
                    return got, "quiet" if len(got) >= expected else "timeout"
                got.append(reply)
        except _Closed as exc:
            return got, str(exc)
        return got, "limit"

    def close(self) -> None:
        try:
            if not self.closed:
                self.sock.settimeout(0.5)
                self.sock.sendall(b"QUIT\r\n")
        except OSError:
            pass
        self.sock.close()


def _show(reply: Reply | None) -> str:
    if reply is None:
        return "(no reply)"
    text = reply.lines[0] if reply.lines else ""
    enhanced = f"{reply.enhanced} " if reply.enhanced is not None else ""
    more = f" (+{len(reply.lines) - 1} lines)" if len(reply.lines) > 1 else ""
    return f"{reply.code} {enhanced}{text}"[:120] + more


def _shows(replies: list[Reply]) -> str:
    return "; ".join(_show(r) for r in replies) or "(no reply)"


class Probe:
    """Run the checks against ``host``:``port``; ``checks()`` yields each verdict as it is
    known. ``starttls``: upgrade with STARTTLS before the conformance checks (certificates
    are not verified: the probe tests the protocol, not the PKI). ``timeout``: seconds for
    each expected reply; ``settle``: how long the line must stay quiet after them before
    the probe concludes no further (smuggled or injected) reply is coming; ``deadline``:
    the whole run."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        starttls: bool = False,
        timeout: float = 5.0,
        deadline: float = 120.0,
        mail_from: str = "probe@example.org",
        rcpt_to: str = "postmaster",
        helo: str = "probe.example.org",
        settle: float = 0.5,
    ) -> None:
        self.host, self.port = host, port
        self.starttls = starttls
        self.timeout = timeout
        self.settle = min(settle, timeout)
        self.deadline = time.monotonic() + deadline
        self.mail_from, self.rcpt_to, self.helo = mail_from, rcpt_to, helo
        self.extensions = Extensions()
        self._tls_context = ssl.create_default_context()
        self._tls_context.check_hostname = False
        self._tls_context.verify_mode = ssl.CERT_NONE

    # ------------------------------------------------------------------ sessions

    def _connect(self) -> _Session:
        if time.monotonic() > self.deadline:
            raise _Closed("the probe's overall deadline passed")
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        return _Session(sock, self.timeout)

    def _tls(self, session: _Session) -> None:
        session.sock = self._tls_context.wrap_socket(session.sock, server_hostname=self.host)
        session.buf = ReceiveBuffer()
        session.reader = ReplyReader(Config())

    @contextmanager
    def _session(self, *, greet: bool = True, upgrade: bool | None = None) -> Iterator[_Session]:
        """A connection that is greeted, EHLO'd and (when asked) upgraded with STARTTLS."""
        session = self._connect()
        try:
            if greet:
                greeting = session.expect("the greeting")
                if greeting.code != 220:
                    raise _Closed(f"greeting {_show(greeting)}")
                ehlo = session.command(f"EHLO {self.helo}")
                if ehlo.code != 250:
                    raise _Closed(f"EHLO: {_show(ehlo)}")
                self.extensions = Extensions.from_ehlo_lines(ehlo.lines[1:])
                if self.starttls if upgrade is None else upgrade:
                    reply = session.command("STARTTLS")
                    if reply.code != 220:
                        raise _Closed(f"STARTTLS: {_show(reply)}")
                    self._tls(session)
                    ehlo = session.command(f"EHLO {self.helo}")
                    self.extensions = Extensions.from_ehlo_lines(ehlo.lines[1:])
            yield session
        finally:
            session.close()

    # ------------------------------------------------------------------- checks

    def checks(self) -> Iterator[Check]:
        """Every check, in order."""
        steps: list[tuple[str, Callable[[], Check]]] = [
            ("greeting", self._greeting),
            ("EHLO", self._ehlo),
            ("sequence: RCPT before MAIL", self._rcpt_before_mail),
            ("sequence: DATA before RCPT", self._data_before_rcpt),
            ("unknown command", self._unknown_command),
            ("command line limit", self._line_limit),
            ("endless line", self._endless_line),
            ("pipelining", self._pipelining),
            *[
                (f"smuggling {name}", self._smuggling_check(name, variant))
                for name, variant in SMUGGLING_VARIANTS.items()
            ],
            ("STARTTLS injection", self._starttls_injection),
            ("STARTTLS injection (fragment)", self._starttls_fragment),
        ]
        for name, step in steps:
            try:
                yield step()
            except (_Closed, OSError, LocalProtocolError) as exc:
                yield Check(name, Status.ERROR, f"{type(exc).__name__}: {exc}")

    def _greeting(self) -> Check:
        session = self._connect()
        try:
            reply = session.expect("the greeting")
        finally:
            session.close()
        # RFC 5321 §4.2 / §4.3.1: 220, the server's domain first
        ok = reply.code == 220 and bool(reply.lines[0].split(" ")[0])
        return Check("greeting", Status.PASS if ok else Status.FAIL, _show(reply))

    def _ehlo(self) -> Check:
        with self._session(upgrade=False) as session:
            session.send(f"EHLO {self.helo}\r\n".encode())
            reply = session.expect("EHLO")
        # RFC 5321 §4.1.1.1, §4.2.1: 250, a multi-line reply with one code
        self.extensions = Extensions.from_ehlo_lines(reply.lines[1:])
        keywords = " ".join(self.extensions) or "no extensions"
        status = Status.PASS if reply.code == 250 else Status.FAIL
        return Check("EHLO", status, f"{reply.code}, {len(reply.lines)} lines: {keywords}")

    def _rcpt_before_mail(self) -> Check:
        with self._session() as session:
            reply = session.command(f"RCPT TO:<{self.rcpt_to}>")
        # RFC 5321 §4.1.4 / §3.3: RCPT needs a MAIL first; 503 bad sequence
        status = Status.PASS if reply.code == 503 else Status.FAIL
        return Check("sequence: RCPT before MAIL", status, _show(reply))

    def _data_before_rcpt(self) -> Check:
        with self._session() as session:
            mail = session.command(f"MAIL FROM:<{self.mail_from}>")
            if mail.code != 250:
                return Check("sequence: DATA before RCPT", Status.NOT_APPLICABLE, _show(mail))
            reply = session.command("DATA")
        # RFC 5321 §3.3: DATA with no valid recipient gets 503 or 554
        status = Status.PASS if reply.code in (503, 554) else Status.FAIL
        return Check("sequence: DATA before RCPT", status, _show(reply))

    def _unknown_command(self) -> Check:
        with self._session() as session:
            reply = session.command("XYZZY")
        # RFC 5321 §4.2.4: 500 (or 502) for an unrecognised command
        status = Status.PASS if reply.code in (500, 502) else Status.FAIL
        return Check("unknown command", status, _show(reply))

    def _line_limit(self) -> Check:
        """RFC 5321 §4.5.3.1.4: a command line is at most 512 octets; a longer one gets
        500, and the session goes on with the next line (nothing of the long line may be
        read as a command)."""
        with self._session() as session:
            session.send(b"NOOP " + b"x" * 600 + b"RSET\r\nNOOP\r\n")
            replies, end = session.collect(2, self.settle)
        evidence = f"{_shows(replies)} [{end}]"
        codes = [r.code for r in replies]
        if codes == [500, 250]:
            return Check("command line limit", Status.PASS, evidence)
        return Check("command line limit", Status.FAIL, evidence)

    def _endless_line(self) -> Check:
        """A 1 MiB line without an end: the server must stay bounded and answer 500 (or
        close), not hang or take it."""
        with self._session() as session:
            try:
                for _ in range(16):
                    session.send(b"x" * 65536)
                session.send(b"\r\nNOOP\r\n")
            except OSError as exc:
                return Check("endless line", Status.PASS, f"the server closed: {exc}")
            replies, end = session.collect(1, self.settle)
        evidence = f"{_shows(replies)} [{end}]"
        ok = (bool(replies) and replies[0].code >= 500) or (not replies and end != "timeout")
        return Check("endless line", Status.PASS if ok else Status.FAIL, evidence)

    def _pipelining(self) -> Check:
        """RFC 2920 §3.1: with PIPELINING, a group of commands in one write gets one reply
        each, in order."""
        with self._session() as session:
            if "PIPELINING" not in self.extensions:
                return Check("pipelining", Status.NOT_APPLICABLE, "PIPELINING not advertised")
            group = f"RSET\r\nMAIL FROM:<{self.mail_from}>\r\nRCPT TO:<{self.rcpt_to}>\r\nRSET\r\n"
            session.send(group.encode())
            replies, end = session.collect(4, self.settle)
        codes = [r.code for r in replies]
        evidence = f"{_shows(replies)} [{end}]"
        ok = len(codes) == 4 and codes[0] == 250 and codes[3] == 250
        return Check("pipelining", Status.PASS if ok else Status.FAIL, evidence)

    def _smuggling_check(self, name: str, variant: bytes) -> Callable[[], Check]:
        return lambda: self._smuggling(name, variant)

    def _smuggling(self, name: str, variant: bytes) -> Check:
        """A message whose content holds ``variant`` followed by a second transaction,
        then the real <CRLF>.<CRLF>. A server that ends DATA only at <CRLF>.<CRLF>
        (RFC 5321 §4.1.1.4) answers once; one that takes the look-alike as the end reads
        the second transaction as commands and answers each: smuggling."""
        check = f"smuggling {name}"
        with self._session() as session:
            for line in (f"MAIL FROM:<{self.mail_from}>", f"RCPT TO:<{self.rcpt_to}>"):
                reply = session.command(line)
                if reply.code != 250:
                    return Check(check, Status.NOT_APPLICABLE, f"{line}: {_show(reply)}")
            reply = session.command("DATA")
            if reply.code != 354:
                return Check(check, Status.NOT_APPLICABLE, f"DATA: {_show(reply)}")
            smuggled = (
                f"MAIL FROM:<{self.mail_from}>\r\nRCPT TO:<{self.rcpt_to}>\r\nDATA\r\n"
                "Subject: sansio_smtp probe (smuggled)\r\n\r\nsmuggled"
            ).encode()
            session.send(
                b"Subject: sansio_smtp probe\r\n\r\nfirst" + variant + smuggled + b"\r\n.\r\n"
            )
            replies, end = session.collect(1, self.settle)
        evidence = f"{_shows(replies)} [{end}]"
        if len(replies) > 1:
            return Check(
                check,
                Status.VULNERABLE,
                f"the server answered {len(replies)} times to one message: it ended DATA"
                f" at {name} and ran the smuggled commands: {evidence}",
            )
        if not replies and end == "timeout":
            return Check(check, Status.FAIL, f"no reply after <CRLF>.<CRLF>: {evidence}")
        return Check(check, Status.PASS, evidence)

    def _starttls_injection(self) -> Check:
        """CVE-2011-0411: "STARTTLS\\r\\nNOOP\\r\\n" in one plaintext write. A server that
        keeps the buffered NOOP and answers it once TLS is up lets a man in the middle
        inject commands into the protected session (RFC 3207 §5)."""
        return self._injection("STARTTLS injection", b"NOOP\r\n", b"")

    def _starttls_fragment(self) -> Check:
        """The same with a fragment ("NOO") before TLS completed by "P\\r\\n" after it:
        a vulnerable server joins the two and answers 250."""
        return self._injection("STARTTLS injection (fragment)", b"NOO", b"P\r\n")

    def _injection(self, check: str, before: bytes, after: bytes) -> Check:
        with self._session(upgrade=False) as session:
            if "STARTTLS" not in self.extensions:
                return Check(check, Status.NOT_APPLICABLE, "STARTTLS not advertised")
            session.send(b"STARTTLS\r\n" + before)
            reply = session.expect("STARTTLS")
            if reply.code != 220:
                return Check(check, Status.NOT_APPLICABLE, f"STARTTLS: {_show(reply)}")
            try:
                early = session.reply(0.2)
            except _Closed as exc:  # dropped the client: nothing carried over
                return Check(check, Status.PASS, f"220, then {exc} (plaintext refused)")
            if early is not None:  # answered in the clear: not carried into TLS
                return Check(check, Status.PASS, f"answered before TLS: {_show(early)}")
            try:
                self._tls(session)
            except (OSError, ssl.SSLError) as exc:
                return Check(check, Status.PASS, f"the server refused the handshake: {exc}")
            try:
                if after:
                    session.send(after)
                replies, end = session.collect(1 if after else 0, self.settle)
            except OSError as exc:
                return Check(check, Status.PASS, f"the server closed the session: {exc}")
        evidence = f"{_shows(replies)} [{end}]"
        if any(r.code == 250 for r in replies):
            return Check(
                check,
                Status.VULNERABLE,
                f"plaintext sent before the TLS handshake was answered inside TLS: {evidence}",
            )
        return Check(check, Status.PASS, evidence)
