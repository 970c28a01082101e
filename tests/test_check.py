"""Connection.check(): the error send() would raise, asked without sending; and the typed
error for plaintext after STARTTLS."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sansio_smtp import (
    CLIENT,
    SERVER,
    Config,
    Connection,
    Data,
    Ehlo,
    EndOfMessage,
    Greeting,
    LocalProtocolError,
    MailFrom,
    MessageData,
    PlaintextAfterStartTLS,
    RcptTo,
    RemoteProtocolError,
    Reply,
    Rset,
    StartTLS,
    State,
)

from .helpers import drain


def _client(ext: tuple[str, ...] = ("PIPELINING", "8BITMIME")) -> Connection:
    conn = Connection(CLIENT)
    conn.receive_data(b"220 mx\r\n")
    drain(conn)
    conn.send(Ehlo(domain="c.example"))
    lines = "".join(f"\r\n250-{e}" for e in ext[:-1])
    conn.receive_data(f"250-mx{lines}\r\n250 {ext[-1]}\r\n".encode())
    drain(conn)
    return conn


_COMMANDS = [
    MailFrom(reverse_path="a@example.org"),
    RcptTo(forward_path="b@example.org"),
    Data(),
    Rset(),
    StartTLS(),
    MessageData(data=b"x\r\n"),
    EndOfMessage(),
]


@given(st.lists(st.sampled_from(_COMMANDS), max_size=6), st.sampled_from(_COMMANDS))
def test_check_agrees_with_send_and_changes_nothing(prefix: list[object], event: object) -> None:
    # Whatever was sent before, check(event) is None exactly when send(event) succeeds,
    # and asking leaves the connection as it was (RFC 5321 §4.1.4 sequence rules).
    conn = _client()
    for earlier in prefix:
        with contextlib.suppress(LocalProtocolError):
            conn.send(earlier)  # type: ignore[arg-type]
    before = (conn.state, conn.pending, conn.extensions, conn.tls_active)
    verdict = conn.check(event)  # type: ignore[arg-type]
    assert (conn.state, conn.pending, conn.extensions, conn.tls_active) == before
    try:
        conn.send(event)  # type: ignore[arg-type]
    except LocalProtocolError as exc:
        assert verdict is not None
        assert str(verdict) == str(exc)
    else:
        assert verdict is None


def test_check_says_why() -> None:
    conn = _client()
    error = conn.check(RcptTo(forward_path="b@example.org"))  # RFC 5321 §4.1.4: MAIL first
    assert isinstance(error, LocalProtocolError)
    assert "RCPT" in str(error)
    assert conn.check(MailFrom(reverse_path="a@example.org")) is None
    assert conn.state is State.READY and conn.pending == ()


@pytest.mark.parametrize("role", ["server", "client"])
def test_plaintext_after_starttls_is_a_typed_remote_error(role: str) -> None:
    # RFC 3207 §5, CVE-2011-0411: bytes buffered behind STARTTLS never reach the TLS session
    config = Config(extensions={"STARTTLS": ()})
    if role == "server":
        conn = Connection(SERVER, config)
        conn.send(Greeting(lines="mx"))
        conn.receive_data(b"EHLO c\r\n")
        drain(conn)
        conn.send(conn.default_reply(conn.pending[0]))
        conn.receive_data(b"STARTTLS\r\n")
        drain(conn)
        conn.send(Reply(code=220, lines="go ahead"))
        conn.receive_data(b"MAIL FROM:<evil@example.org>\r\n")
        with pytest.raises(PlaintextAfterStartTLS) as raised:
            conn.next_event()
    else:
        conn = _client(("STARTTLS",))
        conn.send(StartTLS())
        conn.receive_data(b"220 go ahead\r\n")
        drain(conn)
        conn.receive_data(b"250 injected\r\n")  # before the handshake
        with pytest.raises(PlaintextAfterStartTLS) as raised:
            conn.tls_established()
    assert isinstance(raised.value, RemoteProtocolError)
    assert conn.state is State.ERROR
