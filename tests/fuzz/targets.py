"""Coverage-guided fuzz targets: each takes arbitrary bytes and drives one part of the
library the way a peer or a user could, raising only for a bug.

The same functions serve three runners: ``python -m tests.fuzz.run TARGET`` (atheris,
coverage-guided, for long runs), ``tests/test_fuzz_targets.py`` (a short atheris run of
each in CI, Hypothesis over each, and every file of ``corpus/`` and ``crashers/`` replayed
as a regression test), and anyone's own harness (``TARGETS[name](data)``).

What counts as a bug: any exception other than the library's own typed errors for bad
input (RemoteProtocolError from a Connection reading a broken peer, ValueError from a
parser, SASLError from a client mechanism), and any broken invariant asserted below:
every reply a server suggests can be sent, buffers stay bounded, a parsed value
round-trips.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from sansio_smtp import (
    CLIENT,
    NEED_DATA,
    PAUSED,
    SERVER,
    Address,
    Auth,
    Command,
    Config,
    Connection,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfMessage,
    EnhancedStatusCode,
    Event,
    Greeting,
    InvalidCommand,
    InvalidMessage,
    Lhlo,
    LineEndingPolicy,
    MailFrom,
    MessageData,
    Noop,
    RcptTo,
    RemoteProtocolError,
    Reply,
    State,
    Transcript,
    sasl,
)
from sansio_smtp.codes import explain

__all__ = ["TARGETS"]

# The most a server buffers of an unfinished command line (AUTH lines: RFC 4954 §4).
_MAX_BUFFERED = 12288
_EXTENSIONS = {
    "PIPELINING": (),
    "8BITMIME": (),
    "SMTPUTF8": (),
    "CHUNKING": (),
    "BINARYMIME": (),
    "DSN": (),
    "ENHANCEDSTATUSCODES": (),
    "SIZE": ("1000",),
    "AUTH": ("PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256"),
    "REQUIRETLS": (),
    "MT-PRIORITY": (),
    "DELIVERBY": (),
    "LIMITS": ("RCPTMAX=5",),
}
_POLICIES = list(LineEndingPolicy)


def _split(data: bytes) -> tuple[int, int, bytes]:
    """(flags, chunk size 1..64, payload) from the first two octets."""
    if len(data) < 2:
        return 0, 64, data
    return data[0], data[1] % 64 + 1, data[2:]


def _chunks(payload: bytes, size: int) -> list[bytes]:
    return [payload[i : i + size] for i in range(0, len(payload), size)]


_OWES_REPLY = (Command, InvalidCommand, EndOfMessage, InvalidMessage)


def server(data: bytes) -> None:
    """A server answering every command with its default reply, fed ``data`` in chunks.
    Flags: LMTP, STARTTLS advertised, implicit TLS, plaintext AUTH, line-ending policy."""
    flags, size, payload = _split(data)
    extensions = dict(_EXTENSIONS)
    if flags & 2:
        extensions["STARTTLS"] = ()
    config = Config(
        hostname="mx.example",
        extensions=extensions,
        lmtp=bool(flags & 1),
        allow_plaintext_auth=bool(flags & 8),
        line_endings=_POLICIES[(flags >> 4) % 3],
        max_data_chunk=64,
    )
    conn = Connection(SERVER, config, tls=bool(flags & 4))
    conn.send(Greeting(lines="mx.example ESMTP"))
    owed: Event | None = None
    try:
        for piece in [*_chunks(payload, size), b""]:
            conn.receive_data(piece)
            for _ in range(100_000):
                event = conn.next_event()
                if event is NEED_DATA:
                    buffered, _ = conn.trailing_data
                    assert len(buffered) <= _MAX_BUFFERED, (conn.state, len(buffered))
                    break
                if event is PAUSED:
                    if conn.state is State.TLS:
                        conn.tls_established()  # raises for plaintext after STARTTLS
                        continue
                    assert conn.pending, "PAUSED though no reply is owed"
                    item = owed if owed is not None else conn.pending[0]
                    owed = None
                    conn.send(conn.default_reply(item))  # every suggested reply can be sent
                    continue
                if isinstance(event, ConnectionClosed):
                    return
                if isinstance(event, _OWES_REPLY):
                    owed = event
            else:
                raise AssertionError("the server makes no progress")
    except RemoteProtocolError:
        # the one remote error a server raises: plaintext after STARTTLS (CVE-2011-0411)
        assert flags & 2 and conn.state is State.ERROR


def client(data: bytes) -> None:
    """A client that sent EHLO (and then a pipelined MAIL/RCPT/DATA group and content),
    reading ``data`` as the server's replies in chunks."""
    flags, size, payload = _split(data)
    conn = Connection(CLIENT, Config(lmtp=bool(flags & 1)))
    sent_ehlo = sent_group = sent_content = False
    try:
        for piece in [*_chunks(payload, size), b""]:
            conn.receive_data(piece)
            while True:
                event = conn.next_event()
                if event is NEED_DATA or event is PAUSED or isinstance(event, ConnectionClosed):
                    break
            state = conn.state
            if state is State.CONNECTED and not sent_ehlo and not conn.pending:
                conn.send(Lhlo(domain="c.example") if flags & 1 else Ehlo(domain="c.example"))
                sent_ehlo = True
            elif state is State.READY and not sent_group and not conn.pending:
                group: list[Event] = [
                    MailFrom(reverse_path="a@b.example"),
                    RcptTo(forward_path="c@d.example"),
                    Data(),
                ]
                if "PIPELINING" not in conn.extensions:
                    group = [Noop()]
                for command in group:
                    conn.send(command)
                sent_group = True
            elif state is State.DATA and not sent_content and not conn.pending:
                conn.send(MessageData(data=b"Subject: x\r\n\r\n.body\r\n"))
                conn.send(EndOfMessage())
                sent_content = True
    except RemoteProtocolError:
        assert conn.state is State.ERROR


def address(data: bytes) -> None:
    """Address.parse of any text: a value or ValueError; a value round-trips."""
    text = data.decode("utf-8", "replace")
    for utf8 in (False, True):
        try:
            parsed = Address.parse(text, utf8=utf8)
        except ValueError:
            continue
        assert Address.parse(str(parsed), utf8=utf8) == parsed, (text, parsed)


def reply(data: bytes) -> None:
    """Reply-ish text through ``codes.explain`` and ``EnhancedStatusCode.parse``: a value
    or ValueError."""
    text = data.decode("utf-8", "replace")
    for parse in (explain, EnhancedStatusCode.parse):
        with contextlib.suppress(ValueError):
            parse(text)


_SERVER_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER", "SCRAM-SHA-1",
                      "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS")  # fmt: skip
_SCRAM_KEYS = {
    "sha1": sasl.scram_stored_keys("pencil", b"0123456789abcdef", 4096, "sha1"),
    "sha256": sasl.scram_stored_keys("pencil", b"0123456789abcdef", 4096, "sha256"),
}


def _answer(step: sasl.NeedCredentials, mechanism: str, good: bool) -> sasl.CredentialAnswer:
    if not good:
        return sasl.Verdict.UNKNOWN_USER
    if isinstance(step, sasl.LookupScramKeys):
        return _SCRAM_KEYS["sha1" if "SHA-1" in mechanism else "sha256"]
    if isinstance(step, sasl.LookupPassword):
        return sasl.StoredPassword("pencil")
    return True


def sasl_server(data: bytes) -> None:
    """A server mechanism fed the client's messages (``data`` split at NUL NUL): peer
    mistakes end in a Failure step with a reply that can be sent, never an exception."""
    flags, _, payload = _split(data)
    mechanism = _SERVER_MECHANISMS[flags % len(_SERVER_MECHANISMS)]
    binding = sasl.ChannelBinding(type="tls-server-end-point", data=b"\x01" * 32)
    mech = sasl.server_mechanism(
        mechanism,
        hostname="mx.example",
        timestamp=1,
        nonce="1234" if mechanism == "CRAM-MD5" else "srvnonce",
        channel_bindings=(binding,) if mechanism.endswith("-PLUS") else (),
        mock_key=b"k" * 32,
    )
    messages = payload.split(b"\0\0")
    first = messages.pop(0) if flags & 0x80 else None
    step: object = mech.start(first)
    for _ in range(20):
        if isinstance(step, sasl.NeedCredentials):
            step = mech.supply(_answer(step, mechanism, bool(flags & 0x40)))
        elif isinstance(step, sasl.Challenge):
            if not messages:
                step = mech.cancel()
                continue
            step = mech.receive(messages.pop(0))
        else:
            break
    assert isinstance(step, (sasl.Success, sasl.Failure)), step
    if isinstance(step, sasl.Failure):
        _sendable(step.reply_hint)


def _sendable(reply: Reply) -> None:
    """``reply`` can answer an AUTH command on the wire."""
    config = Config(extensions={"AUTH": ("PLAIN",)}, allow_plaintext_auth=True)
    server_conn = Connection(SERVER, config)
    server_conn.send(Greeting())
    server_conn.receive_data(b"EHLO c\r\nAUTH PLAIN\r\n")
    assert isinstance(server_conn.next_event(), Ehlo)
    server_conn.send(server_conn.ehlo_reply())
    assert isinstance(server_conn.next_event(), Auth)
    server_conn.send(reply)


def sasl_client(data: bytes) -> None:
    """A client mechanism answering the server's challenges (``data`` split at NUL NUL):
    a response, or a SASLError."""
    flags, _, payload = _split(data)
    mechanism = _SERVER_MECHANISMS[flags % len(_SERVER_MECHANISMS)]
    binding = sasl.ChannelBinding(type="tls-server-end-point", data=b"\x01" * 32)
    mech = sasl.client_mechanism(
        mechanism,
        username="user",
        password="pencil",
        token="tok",
        nonce="clientnonce",
        channel_binding=binding if mechanism.endswith("-PLUS") else None,
    )
    try:
        mech.initial_response()
        for challenge in payload.split(b"\0\0"):
            mech.respond(challenge)
        mech.finish()
    except sasl.SASLError:
        pass


def transcript(data: bytes) -> None:
    """Arbitrary bytes recorded both ways, then rendered as text and HTML."""
    flags, size, payload = _split(data)
    t = Transcript(max_content_lines=flags % 8, max_entries=None if flags & 8 else 50)
    for i, piece in enumerate(_chunks(payload, size)):
        t.record_received(SERVER if (i + flags) % 2 else CLIENT, piece)
    str(t)
    t._repr_html_()


TARGETS: dict[str, Callable[[bytes], None]] = {
    "server": server,
    "client": client,
    "address": address,
    "reply": reply,
    "sasl_server": sasl_server,
    "sasl_client": sasl_client,
    "transcript": transcript,
}
