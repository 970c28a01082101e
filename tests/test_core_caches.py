"""What the core builds once gives what it built every time before (issue 13).

- The timeouts are constants: for every state and every command awaited they are the
  RFC 5321 §4.5.3.2 table's.
- ``Extensions.from_ehlo_lines`` parses each distinct reply once: for any lines its result
  is what the validating constructor makes of the same keywords and parameters.
- ``Connection.ehlo_reply`` is built and written once per Config, TLS and greeting: the
  reply and its bytes are those built afresh, for every Config.
"""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sansio_smtp import Config, Connection, Ehlo, Greeting, Role
from sansio_smtp._errors import LocalProtocolError
from sansio_smtp._events import (
    Bdat,
    Data,
    EndOfMessage,
    Event,
    MailFrom,
    Noop,
    Quit,
    RcptTo,
    Rset,
)
from sansio_smtp._extensions import Extensions
from sansio_smtp._state import (
    CLIENT_TIMEOUTS,
    SERVER_TIMEOUT,
    LmtpDelivery,
    Phase,
    State,
    Timeout,
    client_timeout,
    server_timeout,
)
from sansio_smtp._writers import write_reply

PENDING: list[Event] = [
    MailFrom(reverse_path="a@b.test"),
    RcptTo(forward_path="c@d.test"),
    Data(),
    EndOfMessage(),
    Bdat(size=3, last=True),
    LmtpDelivery(recipient=RcptTo(forward_path="c@d.test")),
    Rset(),
    Noop(),
    Quit(),
    Ehlo(domain="c.test"),
]


def _rfc_client_timeout(state: State, pending: deque[Event]) -> Timeout | None:
    # RFC 5321 §4.5.3.2.1-7 as an isinstance chain: the reference the table must match
    if state is State.GREETING:
        phase = Phase.GREETING
    elif pending:
        first = pending[0]
        if isinstance(first, MailFrom):
            phase = Phase.MAIL
        elif isinstance(first, RcptTo):
            phase = Phase.RCPT
        elif isinstance(first, Data):
            phase = Phase.DATA
        elif isinstance(first, (EndOfMessage, Bdat, LmtpDelivery)):
            phase = Phase.END_OF_DATA
        else:
            phase = Phase.COMMAND
    elif state is State.DATA:
        phase = Phase.DATA_BLOCK
    else:
        return None
    return Timeout(phase, CLIENT_TIMEOUTS[phase])


@pytest.mark.parametrize("state", list(State))
def test_client_timeouts_are_the_rfc_table(state: State) -> None:
    assert client_timeout(state, deque()) == _rfc_client_timeout(state, deque())
    for event in PENDING:
        pending = deque([event])
        assert client_timeout(state, pending) == _rfc_client_timeout(state, pending), event


@pytest.mark.parametrize("state", list(State))
def test_server_timeouts_are_the_rfc_table(state: State) -> None:
    assert server_timeout(state, owes_reply=True) is None
    waits = state not in (State.GREETING, State.CLOSED, State.ERROR, State.TLS)
    expected = Timeout(Phase.CLIENT, SERVER_TIMEOUT) if waits else None
    assert server_timeout(state, owes_reply=False) == expected


_WORD = st.text(alphabet="ABCZaz09-=+.", min_size=1, max_size=8)
_LINE = st.one_of(
    st.lists(_WORD, min_size=0, max_size=4).map(" ".join),
    st.text(alphabet="AZ az09=-\t\x00é", max_size=12),
)


@given(st.lists(_LINE, max_size=8))
def test_parsed_ehlo_lines_are_what_the_constructor_makes(lines: list[str]) -> None:
    parsed = Extensions.from_ehlo_lines(lines)
    # the same keywords and parameters through the validating constructor
    assert Extensions(dict(parsed.items())) == parsed
    # parsed again, from a tuple or any iterable: an equal value (the cached one)
    assert Extensions.from_ehlo_lines(tuple(lines)) == parsed
    assert Extensions.from_ehlo_lines(iter(lines)) == parsed
    assert list(parsed) == list(dict(parsed.items()))


def test_parsed_ehlo_lines_skip_junk_and_keep_the_first() -> None:
    lines = ["SIZE 100", "8bitmime", "bad_kw x", "", "SIZE 200", "AUTH PLAIN LOGIN"]
    parsed = Extensions.from_ehlo_lines(lines)
    assert parsed == Extensions({"SIZE": ["100"], "8BITMIME": (), "AUTH": ["PLAIN", "LOGIN"]})
    assert Extensions.from_ehlo_lines(lines) is parsed  # once per distinct reply


def _fresh_ehlo_reply(conn: Connection, greeting: str | None) -> object:
    return conn._build_ehlo_reply(greeting)


CONFIGS = [
    Config(hostname="mx.test"),
    Config(hostname="mx.test", extensions={"PIPELINING": (), "SIZE": (), "STARTTLS": ()}),
    Config(
        hostname="other.test",
        extensions={"AUTH": ["PLAIN", "SCRAM-SHA-256-PLUS"], "REQUIRETLS": (), "STARTTLS": ()},
        max_message_size=12345,
        allow_plaintext_auth=True,
    ),
    Config(hostname="mx.test", extensions={"SIZE": ()}, max_message_size=None),
]


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("tls", [False, True])
@pytest.mark.parametrize("greeting", [None, "hello c.test"])
def test_ehlo_reply_is_built_once_and_is_the_fresh_one(
    config: Config, tls: bool, greeting: str | None
) -> None:
    first = Connection(Role.SERVER, config, tls=tls)
    again = Connection(Role.SERVER, config, tls=tls)
    reply = first.ehlo_reply(greeting)
    assert reply == _fresh_ehlo_reply(first, greeting)
    assert again.ehlo_reply(greeting) is reply
    # an equal Config that is another object gets its own, equal, reply
    twin = Config(**{f: getattr(config, f) for f in ("hostname", "extensions", "lmtp")})
    if twin == config:
        assert Connection(Role.SERVER, twin, tls=tls).ehlo_reply(greeting) == reply


@pytest.mark.parametrize("config", CONFIGS)
def test_the_ehlo_reply_goes_out_as_write_reply_writes_it(config: Config) -> None:
    for _ in range(2):  # written the first time, looked up the second
        server = Connection(Role.SERVER, config)
        server.send(Greeting(lines="mx.test ESMTP"))
        server.receive_data(b"EHLO c.test\r\n")
        event = server.next_event()
        assert isinstance(event, Ehlo)
        reply = server.default_reply(event)
        assert server.send(reply) == write_reply(reply, config)
        assert server.extensions == Extensions.from_ehlo_lines(reply.lines[1:])


def test_a_cached_ehlo_reply_is_checked_against_each_config_limit() -> None:
    # the bytes written for one Config are not reused by a Config with a smaller limit
    roomy = Config(hostname="mx.test", extensions={"X-LONG": ["p" * 600]}, max_reply_line=2000)
    strict = Config(hostname="mx.test", extensions={"X-LONG": ["p" * 600]})
    servers = []
    for config in (roomy, strict):
        server = Connection(Role.SERVER, config)
        server.send(Greeting(lines="mx.test ESMTP"))
        server.receive_data(b"EHLO c.test\r\n")
        server.next_event()
        servers.append(server)
    reply = servers[0].ehlo_reply()
    assert servers[0].send(reply) == write_reply(reply, roomy)
    with pytest.raises(LocalProtocolError):
        servers[1].send(reply)


@pytest.mark.parametrize("config", CONFIGS)
def test_shared_greeting_helo_and_quit_go_out_as_write_reply_writes_them(
    config: Config,
) -> None:
    # The greeting, HELO and QUIT replies a server's sessions share are written once:
    # every session sends what write_reply writes, and gets the same objects.
    greeting = Greeting(lines=f"{config.hostname} ESMTP")
    seen: list[Event] = []
    for _ in range(3):  # written the first time, looked up after
        server = Connection(Role.SERVER, config)
        assert server.send(greeting) == write_reply(greeting, config)
        server.receive_data(b"HELO c.test\r\n")
        helo = server.next_event()
        reply = server.default_reply(helo)
        assert server.send(reply) == write_reply(reply, config)
        server.receive_data(b"QUIT\r\n")
        bye = server.default_reply(server.next_event())
        assert server.send(bye) == write_reply(bye, config)
        assert bye.code == 221 and bye.lines == (f"{config.hostname} closing connection",)
        seen += [reply, bye]
    assert all(r is seen[0] for r in seen[::2]) and all(r is seen[1] for r in seen[1::2])


def test_a_written_greeting_is_checked_against_each_config_limit() -> None:
    roomy = Config(hostname="mx.test", max_reply_line=2000)
    greeting = Greeting(lines="mx.test " + "x" * 600)
    assert Connection(Role.SERVER, roomy).send(greeting) == write_reply(greeting, roomy)
    for _ in range(2):  # refused every time, never from the bytes written for roomy
        with pytest.raises(LocalProtocolError):
            Connection(Role.SERVER, Config(hostname="mx.test")).send(greeting)


def test_a_server_connection_has_no_reply_reader() -> None:
    # a server reads commands, never replies: it does not carry a client's reply reader
    assert not hasattr(Connection(Role.SERVER), "_reply_reader")
    assert hasattr(Connection(Role.CLIENT), "_reply_reader")
