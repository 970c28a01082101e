"""One home for every rule (issue 12 items 2-4): out-of-sequence replies as data beside
TRANSITIONS, one check for both roles, readers chosen from a table."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sansio_smtp import (
    CLIENT,
    SERVER,
    Auth,
    Bdat,
    Config,
    Connection,
    Data,
    Ehlo,
    Extensions,
    Greeting,
    InvalidCommand,
    LocalProtocolError,
    MailFrom,
    MessageData,
    Quit,
    RcptTo,
    Reply,
    Rset,
    StartTLS,
    State,
)
from sansio_smtp._connection import READERS
from sansio_smtp._mailparams import ParamError, verify_mail_params
from sansio_smtp._rules import check_command
from sansio_smtp._state import (
    LMTP_OUT_OF_SEQUENCE,
    OUT_OF_SEQUENCE,
    TRANSITIONS,
    ConnectionState,
    Role,
)

from .helpers import drain

NEED_MAIL = Reply(code=503, lines="Need MAIL command", enhanced="5.5.1")


def _server(**config: object) -> Connection:
    conn = Connection(SERVER, Config(**config))  # type: ignore[arg-type]
    conn.send(Greeting(lines="mx"))
    conn.receive_data(b"EHLO c.example\r\n")
    drain(conn)
    conn.send(conn.default_reply(conn.pending[0]))
    return conn


def _client(extensions: str = "PIPELINING") -> Connection:
    client = Connection(CLIENT)
    client.receive_data(b"220 mx\r\n")
    drain(client)
    client.send(Ehlo(domain="c.example"))
    lines = extensions.split()
    ehlo = "".join(f"250-{e}\r\n" for e in ["mx", *lines[:-1]]) + f"250 {lines[-1]}\r\n"
    client.receive_data(ehlo.encode())
    drain(client)
    return client


def test_rcpt_before_mail_is_two_adjacent_table_entries() -> None:
    # RFC 5321 §4.1.4 / issue 12 item 2: the table says RCPT is out of sequence in READY,
    # the table beside it says what a server answers.
    assert RcptTo not in TRANSITIONS[State.READY]
    assert OUT_OF_SEQUENCE[State.READY][RcptTo] == NEED_MAIL
    server = _server()
    server.receive_data(b"RCPT TO:<b@example.org>\r\n")
    event = server.next_event()
    assert isinstance(event, InvalidCommand) and event.reply_hint == NEED_MAIL


def test_client_refusal_carries_the_servers_reply() -> None:
    # issue 12 item 3: the client's LocalProtocolError has the reply a server would send.
    client = _client()
    with pytest.raises(LocalProtocolError, match="cannot send RCPT") as raised:
        client.send(RcptTo(forward_path="b@example.org"))
    assert raised.value.reply_hint == NEED_MAIL
    error = client.check(RcptTo(forward_path="b@example.org"))
    assert error is not None and error.reply_hint == NEED_MAIL


def test_lmtp_answers_data_without_recipients_503() -> None:
    # RFC 2033 §4.2: 503 in LMTP where SMTP may answer 554 (RFC 5321 §3.3)
    assert OUT_OF_SEQUENCE[State.MAIL][Data].code == 554
    assert LMTP_OUT_OF_SEQUENCE[State.MAIL][Data].code == 503
    assert LMTP_OUT_OF_SEQUENCE[State.READY] is OUT_OF_SEQUENCE[State.READY]


_SAMPLE = [
    MailFrom(reverse_path="a@example.org"),
    RcptTo(forward_path="b@example.org"),
    Data(),
    Bdat(size=1, last=True),
    Rset(),
    Quit(),
    StartTLS(),
    Auth(mechanism="PLAIN"),
]
_STATES = [State.CONNECTED, State.REJECTED, State.READY, State.MAIL, State.RCPT, State.BDAT]


@given(st.sampled_from(_STATES), st.sampled_from(_SAMPLE), st.booleans())
def test_one_check_gives_both_roles_the_same_sequence_reply(
    state: State, command: object, lmtp: bool
) -> None:
    # issue 12 item 3: out of sequence, the server's reply and the client's hint are one.
    session = ConnectionState(lmtp=lmtp)
    session.state = session.projected = state
    config = Config(lmtp=lmtp)
    received = check_command(command, session, config, sending=False)  # type: ignore[arg-type]
    sent = check_command(command, session, config, sending=True)  # type: ignore[arg-type]
    if type(command) in TRANSITIONS[state]:
        return
    assert received is not None and sent is not None
    assert received.reply == sent.reply
    assert received.reply.code == 503 or (received.reply.code == 554 and not lmtp)


def test_every_role_and_state_has_a_reader() -> None:
    # issue 12 item 4: READERS[(role, state)], as h11's
    assert {(role, state) for role in Role for state in State} <= set(READERS)


def test_typed_params_raise_value_error_and_build_no_reply() -> None:
    # issue 12 item 3: the typed parameters raise ValueError; the rule layer replies.
    with pytest.raises(ValueError, match="SIZE") as raised:
        verify_mail_params({"SIZE": "x"}, extensions=Extensions({"SIZE": ()}), tls=True)
    assert isinstance(raised.value, ParamError)
    assert (raised.value.code, raised.value.enhanced) == (501, "5.5.4")


_CORE = Path(__file__).resolve().parent.parent / "sansio_smtp"


def _imports(module: str) -> set[str]:
    tree = ast.parse((_CORE / f"{module}.py").read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = node.module or ""
            found.add(base)
            found.update(f"{base}.{a.name}".lstrip(".") for a in node.names if not base)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_mailparams_imports_no_events_and_rules_no_sasl() -> None:
    # issue 12 items 1 and 4: lower layers never import upper ones, at any level.
    assert not any(name.endswith("_events") for name in _imports("_mailparams"))
    for module in ("_state", "_rules"):
        assert not any("_sasl" in name for name in _imports(module)), module


def _client_in_transaction(extensions: str, params: str) -> Connection:
    client = _client(extensions)
    body = {"BODY": params} if params else {}
    client.send(MailFrom(reverse_path="a@example.org", params=body))
    client.receive_data(b"250 ok\r\n")
    drain(client)
    client.send(RcptTo(forward_path="b@example.org"))
    client.receive_data(b"250 ok\r\n")
    drain(client)
    return client


def test_check_leaves_the_data_writer_alone() -> None:
    # RFC 5321 §4.5.2: a line-start "." is doubled; check() must not move the writer past
    # the start of a line, or the next send would leave the dot unstuffed.
    client = _client_in_transaction("PIPELINING", "")
    client.send(Data())
    client.receive_data(b"354 go\r\n")
    drain(client)
    assert client.check(MessageData(data=b"no line end")) is None
    assert client.send(MessageData(data=b".x")) == b"..x"


def test_8bit_bdat_last_content_keeps_its_body_parameter() -> None:
    # RFC 6152 §3, RFC 3030 §2 (issue 12 item 6): the MAIL's BODY=8BITMIME holds until the
    # last chunk's octets are sent, so the client core accepts them without an override.
    client = _client_in_transaction("8BITMIME CHUNKING PIPELINING", "8BITMIME")
    client.send(Bdat(size=3, last=True))
    assert client.send(MessageData(data=b"\xe9\r\n")) == b"\xe9\r\n"
    # and without BODY=8BITMIME the same octets are refused
    client = _client_in_transaction("8BITMIME CHUNKING PIPELINING", "")
    client.send(Bdat(size=3, last=True))
    with pytest.raises(LocalProtocolError, match="8BITMIME"):
        client.send(MessageData(data=b"\xe9\r\n"))
