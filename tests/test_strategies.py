"""sansio_smtp.strategies draws what each strategy's docstring says.

- The module is public and optional: ``import sansio_smtp`` never imports Hypothesis, and
  without Hypothesis ``import sansio_smtp.strategies`` names the ``[fuzz]`` extra.
- Valid addresses parse back equal, invalid ones never parse (RFC 5321 §4.1.2).
- Every command the library knows (LHLO, STARTTLS, AUTH, BDAT...) goes through a client
  and arrives at a server equal.
- Dialogues are accepted whole by a server that gives the default replies, SMTP and LMTP.
- Smuggling payloads never end DATA early: only <CRLF>.<CRLF> does (RFC 5321 §4.1.1.4).
- Injection payloads never get a control character accepted into a command.
- STARTTLS injections are never carried over into the TLS session (RFC 3207 §4.2).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sansio_smtp import (
    CLIENT,
    NEED_DATA,
    PAUSED,
    SERVER,
    Address,
    Auth,
    AuthResponse,
    Bdat,
    Command,
    Config,
    Connection,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfMessage,
    Event,
    Extensions,
    Greeting,
    InvalidCommand,
    InvalidMessage,
    LineEndingPolicy,
    MailFrom,
    MessageData,
    RcptTo,
    RemoteProtocolError,
    Reply,
    StartTLS,
    State,
)
from sansio_smtp import strategies as s

ROOT = Path(__file__).resolve().parent.parent
CONTROL = {chr(c) for c in (*range(0x20), 0x7F)}
POLICIES = list(LineEndingPolicy)


# ------------------------------------------------------------------ the public module


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_import_sansio_smtp_does_not_import_hypothesis() -> None:
    # issue 11: the strategies are an optional extra; the core needs attrs only
    result = _python("import sys, sansio_smtp; print('hypothesis' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_without_hypothesis_the_import_error_names_the_extra() -> None:
    # issue 11: "behind an optional extra [fuzz]"
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "import sansio_smtp\n"
        "try:\n"
        "    import sansio_smtp.strategies\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert "pip install 'sansio_smtp[fuzz]'" in result.stdout


def test_the_private_copy_is_gone_and_every_public_name_is_documented() -> None:
    # issue 11: "The project's own tests use these, not a private copy."
    assert not (ROOT / "tests" / "strategies.py").exists()
    for name in s.__all__:
        obj = getattr(s, name)
        if callable(obj) and not isinstance(obj, type):
            assert obj.__doc__, f"{name} has no docstring"


# --------------------------------------------------------------------------- addresses


@given(st.booleans().flatmap(lambda u: st.tuples(st.just(u), s.addresses(utf8=u))))
def test_addresses_parse_back_equal(drawn: tuple[bool, Address]) -> None:
    # RFC 5321 §4.1.2 Mailbox; RFC 6531 §3.3 for UTF-8
    utf8, address = drawn
    assert Address.parse(str(address), utf8=utf8) == address


def test_addresses_cover_quoted_local_parts_literals_and_utf8() -> None:
    # issue 11: "quoted local parts, address literals, UTF-8"
    seen: set[str] = set()

    @given(s.addresses(utf8=True))
    def collect(address: Address) -> None:
        text = str(address)
        if text.startswith('"'):
            seen.add("quoted")
        if address.domain and address.domain.startswith("["):
            seen.add("literal")
        if not address.is_ascii:
            seen.add("utf8")

    collect()
    assert seen == {"quoted", "literal", "utf8"}


@given(s.invalid_addresses())
def test_invalid_addresses_never_parse(text: str) -> None:
    # RFC 5321 §4.1.2-3: each is a valid mailbox with one rule broken
    with pytest.raises(ValueError):
        Address.parse(text)


@given(s.invalid_addresses(utf8=False))
def test_invalid_ascii_addresses_never_parse_without_smtputf8(text: str) -> None:
    # RFC 6531 §3.4: no UTF-8 address without SMTPUTF8
    with pytest.raises(ValueError):
        Address.parse(text, utf8=False)


# ---------------------------------------------------------------------------- commands


def _greeted(client_config: Config, server_config: Config) -> tuple[Connection, Connection]:
    client, server = Connection(CLIENT, client_config), Connection(SERVER, server_config)
    client.receive_data(server.send(Greeting(lines="mx.example")))
    assert isinstance(client.next_event(), Greeting)
    return client, server


def _exchange(client: Connection, server: Connection, event: Event) -> Event:
    """Send ``event``; return what the server reads, answered with its default reply."""
    server.receive_data(b"".join(client.send_with_data_passthrough(event)))
    received = server.next_event()
    assert isinstance(received, Event)
    if server.pending:
        client.receive_data(server.send(server.default_reply(received)))
        reply = client.next_event()
        assert isinstance(reply, Reply)
    return received


@given(s.extensions(unknown=False), st.data())
def test_commands_reach_a_server_equal(ext: Extensions, data: st.DataObject) -> None:
    # RFC 5321 §4.1.1: what a client sends, a server reads as the same command
    config = Config(extensions=ext, allow_plaintext_auth=True)
    client, server = _greeted(config, config)
    _exchange(client, server, Ehlo(domain="client.example"))
    command = data.draw(s.commands(ext))
    if isinstance(command, (RcptTo, Data)):  # RFC 5321 §4.1.4: inside a transaction
        _exchange(client, server, MailFrom(reverse_path=None))
    if isinstance(command, Data):
        _exchange(client, server, RcptTo(forward_path="a@b.example"))
    assert _exchange(client, server, command) == command


@given(s.lhlos())
def test_lhlos_reach_an_lmtp_server(lhlo: Event) -> None:
    # RFC 2033 §4.1
    config = Config(lmtp=True)
    client, server = _greeted(config, config)
    assert _exchange(client, server, lhlo) == lhlo


@given(s.auths(), st.data())
def test_auths_reach_a_server_that_offers_the_mechanism(auth: Auth, data: st.DataObject) -> None:
    # RFC 4954 §4: AUTH mechanism [initial-response]; "=" for the empty response.
    # RFC 5802 §6: the -PLUS mechanisms need a TLS channel, which this test has not.
    assume(not auth.mechanism.endswith("-PLUS"))
    config = Config(extensions={"AUTH": (auth.mechanism,)}, allow_plaintext_auth=True)
    client, server = _greeted(config, config)
    _exchange(client, server, Ehlo(domain="client.example"))
    server.receive_data(client.send(auth))
    assert server.next_event() == auth
    # an AuthResponse answers a 334 challenge (RFC 4954 §4)
    client.receive_data(server.send(Reply.auth_challenge(b"challenge")))
    assert isinstance(client.next_event(), Reply)
    response = data.draw(s.auth_responses())
    assert isinstance(response, AuthResponse)
    server.receive_data(client.send(response))
    assert server.next_event() == response


@given(s.bdats(max_size=3000))
def test_bdats_reach_a_server_in_a_transaction(bdat: Bdat) -> None:
    # RFC 3030 §2: BDAT n [LAST], then exactly n octets
    config = Config(extensions={"CHUNKING": ()})
    client, server = _greeted(config, config)
    for command in (
        Ehlo(domain="c.example"),
        MailFrom(reverse_path=None),
        RcptTo(forward_path="a@b.example"),
    ):
        _exchange(client, server, command)
    server.receive_data(client.send(bdat))
    assert server.next_event() == bdat
    if bdat.size:
        server.receive_data(client.send(MessageData(data=b"x" * bdat.size)))
    content = b""
    while (event := server.next_event()) is not PAUSED:
        if isinstance(event, MessageData):
            content += bytes(event.data)
        else:  # after LAST the content ends (RFC 3030 §2)
            assert bdat.last and isinstance(event, EndOfMessage), event
    assert content == b"x" * bdat.size


@given(s.starttls_commands())
def test_starttls_and_the_command_sets(command: StartTLS) -> None:
    # RFC 3207 §4: STARTTLS takes no argument
    assert command == StartTLS()
    assert set(s.ALL_COMMAND_TYPES) >= {Auth, AuthResponse, Bdat, StartTLS}
    assert len(set(s.ALL_COMMAND_TYPES)) == len(s.ALL_COMMAND_TYPES)


# ----------------------------------------------------------------- content, chunkings


@given(st.binary(max_size=60).flatmap(lambda d: st.tuples(st.just(d), s.rechunkings(d))))
def test_rechunkings_join_back_to_the_stream(drawn: tuple[bytes, list[bytes]]) -> None:
    data, pieces = drawn
    assert b"".join(pieces) == data
    assert all(pieces)


@given(st.binary(max_size=60), s.chunkings())
def test_split_joins_back(data: bytes, sizes: list[int]) -> None:
    assert b"".join(s.split(data, sizes)) == data


@given(s.bodies(eight_bit=False))
def test_seven_bit_bodies_are_seven_bit(body: bytes) -> None:
    # RFC 6152 §3: no 8-bit content without BODY=8BITMIME
    assert body.isascii()


# ---------------------------------------------------------------------------- dialogues


def _serve(server: Connection, data: bytes) -> tuple[list[Event], bytes]:
    """Feed ``data`` and answer with the default reply when next_event() gives PAUSED,
    the way a server loop must (the core pauses once a reply is owed: after a command,
    after a whole BDAT chunk, RFC 3030 §2). Returns the events read and replies sent,
    and the replies' bytes."""
    if data:  # b"" would mean the peer closed
        server.receive_data(data)
    log: list[Event] = []
    out = b""
    while True:
        event = server.next_event()
        if event is NEED_DATA:
            return log, out
        if event is PAUSED:
            if not server.pending:
                return log, out  # TLS or closed
            reply = server.default_reply(server.pending[0])
            out += server.send(reply)
            log.append(reply)
            continue
        assert isinstance(event, Event)
        log.append(event)
        if isinstance(event, ConnectionClosed):  # after QUIT's 221, for good
            return log, out


def _client_reads(client: Connection, data: bytes) -> list[Event]:
    if data:  # b"" would mean the peer closed
        client.receive_data(data)
    events: list[Event] = []
    while (event := client.next_event()) is not NEED_DATA and event is not PAUSED:
        if isinstance(event, ConnectionClosed):  # after QUIT's 221, for good
            break
        assert isinstance(event, Event)
        events.append(event)
    return events


@given(s.extensions(known=s.DIALOGUE_EXTENSIONS, unknown=False), st.booleans(), st.data())
def test_dialogues_are_accepted_by_a_default_server(
    ext: Extensions, lmtp: bool, data: st.DataObject
) -> None:
    # issue 11: "whole valid dialogues"; every reply positive (RFC 5321 §4.2.1)
    config = Config(extensions=ext, lmtp=lmtp)
    events = data.draw(s.dialogues(ext, lmtp=lmtp))
    client, server = _greeted(config, config)
    for event in events:
        log, replies = _serve(server, b"".join(client.send_with_data_passthrough(event)))
        for item in log:
            assert not isinstance(item, (InvalidCommand, InvalidMessage)), (event, item)
            assert not isinstance(item, Reply) or item.code < 400, (event, item)
        for reply in _client_reads(client, replies):
            assert isinstance(reply, Reply) and reply.code < 400, (event, reply)
    assert client.state is server.state
    assert not server.pending


# ------------------------------------------------------------------------------ attacks


def _in_data(config: Config) -> Connection:
    server = Connection(SERVER, config)
    server.send(Greeting(lines="mx.example"))
    _serve(server, b"EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n")
    _serve(server, b"DATA\r\n")
    assert server.state is State.DATA
    return server


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.value)
@given(payload=s.smuggling_payloads(), data=st.data())
def test_smuggling_payloads_never_end_data_early(
    policy: LineEndingPolicy, payload: bytes, data: st.DataObject
) -> None:
    # RFC 5321 §4.1.1.4: only <CRLF>.<CRLF> ends DATA; SMTP smuggling (CVE-2023-51764)
    server = _in_data(Config(line_endings=policy))
    before: list[Event] = []
    for piece in data.draw(s.rechunkings(payload)):
        log, _ = _serve(server, piece)
        before += log
    assert all(isinstance(e, MessageData) for e in before), before
    assert server.state is State.DATA
    log, _ = _serve(server, s.END_OF_DATA)
    ends = [e for e in log if isinstance(e, (EndOfMessage, InvalidMessage))]
    assert len(ends) == 1
    assert not any(isinstance(e, Command) for e in log)
    assert server.state is State.READY


def _fields(event: Event) -> str:
    return repr(attrs.asdict(event, recurse=True)) if attrs.has(type(event)) else ""


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.value)
@given(line=s.injection_payloads())
def test_injection_payloads_never_get_a_control_character_accepted(
    policy: LineEndingPolicy, line: bytes
) -> None:
    # RFC 5321 §4.1.2: no control character in any argument; §2.3.8 bare CR/LF
    config = Config(
        line_endings=policy,
        lmtp=line.startswith(b"LHLO"),
        extensions={"DSN": (), "8BITMIME": (), "SIZE": (), "AUTH": ("PLAIN", "LOGIN")},
        allow_plaintext_auth=True,
    )
    server = Connection(SERVER, config)
    server.send(Greeting(lines="mx.example"))
    prefix = (
        b""
        if line[:4] in (b"EHLO", b"HELO", b"LHLO")
        else b"LHLO c\r\n"
        if config.lmtp
        else b"EHLO c\r\n"
    )
    if line.startswith((b"RCPT", b"BDAT")):
        prefix += b"MAIL FROM:<>\r\n"
    _serve(server, prefix)
    try:
        log, _ = _serve(server, line)
    except RemoteProtocolError:
        return
    accepted = [e for e in log if isinstance(e, Command) and not isinstance(e, InvalidCommand)]
    for event in accepted:
        assert not CONTROL & set(_fields(event)), event
        assert "\\x" not in _fields(event) or isinstance(event, (Auth, AuthResponse)), event
    if policy is LineEndingPolicy.REJECT:
        # the line holding the control character or bare CR/LF is refused; text after a
        # bare line break is read as the next line (the core treats it as a line end)
        assert isinstance(log[0], InvalidCommand), log


@given(s.starttls_injections())
def test_starttls_injections_are_never_carried_over(payload: bytes) -> None:
    # RFC 3207 §4.2; CVE-2011-0411: plaintext behind STARTTLS is an attack
    server = Connection(SERVER, Config(extensions={"STARTTLS": ()}))
    server.send(Greeting(lines="mx.example"))
    _serve(server, b"EHLO c.example\r\n")
    with pytest.raises(RemoteProtocolError):
        log, _ = _serve(server, payload)
        assert [type(e) for e in log][:1] == [StartTLS]
        assert not any(isinstance(e, Command) for e in log[1:] if not isinstance(e, Reply))
        server.tls_established()
    assert server.state is State.ERROR


@given(s.starttls_reply_injections())
def test_starttls_reply_injections_are_never_carried_over(payload: bytes) -> None:
    # RFC 3207 §4.2, the client's side
    client = Connection(CLIENT)
    client.receive_data(b"220 mx.example\r\n")
    client.next_event()
    client.send(Ehlo(domain="c.example"))
    _client_reads(client, b"250-mx.example\r\n250 STARTTLS\r\n")
    client.send(StartTLS())
    with pytest.raises(RemoteProtocolError):
        replies = _client_reads(client, payload)
        assert len(replies) <= 1
        client.tls_established()
    assert client.state is State.ERROR


@given(s.hostile_lines())
def test_hostile_lines_get_a_reply_that_can_be_sent(line: bytes) -> None:
    # STYLE.md "Errors": every suggested reply can be sent (RFC 5321 §4.5.3.1.5)
    config = Config(extensions={"DSN": (), "SIZE": (), "8BITMIME": ()})
    server = Connection(SERVER, config)
    server.send(Greeting(lines="mx.example"))
    _serve(server, b"EHLO c.example\r\n")
    with contextlib.suppress(RemoteProtocolError):
        _serve(server, line)
