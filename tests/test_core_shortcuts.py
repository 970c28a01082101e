"""The per-command shortcuts of the core give what the general code gives.

process_reply's table-only case against _process_reply (the general code), over any
sequence of commands and replies, both roles, SMTP and LMTP; parse_common's events, built
without attrs' __init__, against the events __init__ builds; the rules' identity test for
the empty Params.
"""

from __future__ import annotations

import contextlib
import re

import attrs
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sansio_smtp import (
    Auth,
    AuthResponse,
    Bdat,
    Data,
    Ehlo,
    Event,
    Helo,
    InvalidCommand,
    LocalProtocolError,
    MailFrom,
    MessageData,
    Quit,
    RcptTo,
    Reply,
    StartTLS,
    State,
    _abnf,
    _readers,
)
from sansio_smtp._address import coerce_address, coerce_reverse_path
from sansio_smtp._events import _coerce_params
from sansio_smtp._readers import parse_common
from sansio_smtp._state import _PLAIN_REPLY_KINDS, _REPLY_RULES, TRANSITIONS, ConnectionState

from .test_fast_paths import _COMMANDS as FAST_PATH_COMMANDS

#: test_fast_paths' commands, and a few more that the shortcuts tell apart
_COMMANDS: list[Event] = [
    *FAST_PATH_COMMANDS,
    MailFrom(reverse_path=None, params={"SMTPUTF8": None}),
    RcptTo(forward_path="c@example.org"),
    Bdat(size=0, last=True),
    InvalidCommand(
        line=b"RCPT TO:<b@example.org>",
        reply_hint=Reply(code=503, lines="x"),
        command=RcptTo(forward_path="b@example.org"),
    ),
]
_CODES = [200, 214, 220, 221, 250, 252, 259, 334, 354, 421, 450, 452, 500, 503, 535, 554]
_REPLIES = [Reply(code=code, lines="x") for code in _CODES] + [
    Reply(code=250, lines=("mx.example", "PIPELINING", "SIZE 100", "ENHANCEDSTATUSCODES"))
]
_STEPS = st.lists(
    st.one_of(
        st.sampled_from(_COMMANDS).map(lambda c: ("command", c)),
        st.sampled_from(_REPLIES).map(lambda r: ("reply", r)),
    ),
    max_size=60,
)


def _facts(session: ConnectionState) -> dict[str, object]:
    facts = dict(vars(session))
    facts["pending"] = list(session.pending)
    return facts


def _outcome(step: object) -> object:
    try:
        return step()  # type: ignore[operator]
    except LocalProtocolError as exc:
        return str(exc)


@settings(max_examples=400)  # (sessions: the cases that matter are a few steps deep)
@given(_STEPS, st.booleans(), st.booleans(), st.sampled_from([220, 554]))
def test_process_reply_shortcut_is_the_general_code(
    steps: list[tuple[str, object]], optimistic: bool, lmtp: bool, greeting: int
) -> None:
    # the same replies to the same session: the same answers, the same errors, the same
    # session facts afterwards, whether process_reply took its shortcut or not
    fast = ConnectionState(optimistic=optimistic, lmtp=lmtp)
    general = ConnectionState(optimistic=optimistic, lmtp=lmtp)
    fast.process_greeting(greeting)
    general.process_greeting(greeting)
    for what, value in steps:
        if what == "command":
            assert isinstance(value, Event)
            fast.process_command(value)
            general.process_command(value)
        else:
            assert isinstance(value, Reply)
            got = _outcome(lambda: fast.process_reply(value))  # noqa: B023
            expected = _outcome(lambda: general._process_reply(value))  # noqa: B023
            assert got == expected, (what, value)
        assert _facts(fast) == _facts(general), (what, value)


def test_the_plain_kinds_are_moved_by_the_table_alone() -> None:
    # what process_reply's shortcut leaves out never applies to these commands
    assert not _PLAIN_REPLY_KINDS & _REPLY_RULES
    assert not _PLAIN_REPLY_KINDS & {Ehlo, Helo, Auth, AuthResponse, StartTLS, Data}
    for state, row in TRANSITIONS.items():
        for kind in _PLAIN_REPLY_KINDS & set(row):
            assert row[kind] not in (State.CLOSED, State.DATA, State.TLS, State.AUTH), state


# ------------------------------------------------------------- events built by the reader


def test_common_events_have_only_the_fields_parse_common_sets() -> None:
    # parse_common sets these fields itself and skips __init__: that is the same only while
    # the events have exactly these fields, with these converters, and nothing else runs
    for cls, path, coerce in (
        (MailFrom, "reverse_path", coerce_reverse_path),
        (RcptTo, "forward_path", coerce_address),
    ):
        fields = attrs.fields(cls)
        assert [f.name for f in fields] == [path, "params"]
        assert getattr(fields, path).converter is coerce
        assert fields.params.converter is _coerce_params
        assert all(f.validator is None for f in fields)
        assert not hasattr(cls, "__attrs_post_init__")
        assert not hasattr(cls, "__attrs_pre_init__")


_LOCAL = st.from_regex(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9_-]+)*", fullmatch=True)
_DOMAIN = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[a-z0-9]+)*", fullmatch=True)
_PARAMS = st.sampled_from(["", " SIZE=10", " BODY=8BITMIME SIZE=1 ", " SMTPUTF8", "  "])


@given(st.sampled_from(["MAIL FROM:", "RCPT TO:", "MAIL FROM: "]), _LOCAL, _DOMAIN, _PARAMS)
def test_common_events_equal_the_events_init_builds(
    verb: str, local: str, domain: str, params: str
) -> None:
    event = parse_common(f"{verb}<{local}@{domain}>{params}".encode())
    assert isinstance(event, (MailFrom, RcptTo))
    if isinstance(event, MailFrom):
        built: Event = MailFrom(reverse_path=event.reverse_path, params=event.params)
    else:
        built = RcptTo(forward_path=event.forward_path, params=event.params)
    assert event == built
    assert hash(event) == hash(built)
    assert repr(event) == repr(built)
    assert attrs.evolve(event) == built
    with contextlib.suppress(attrs.exceptions.FrozenInstanceError):
        event.params = built.params  # type: ignore[misc]
        raise AssertionError("the event is not frozen")
    if not params.strip():  # no parameters: the one empty Params the events share
        assert event.params is MailFrom(reverse_path=None).params


def test_the_events_share_one_empty_params() -> None:
    # the rules ask for it by identity before they ask its length
    assert RcptTo(forward_path="a@example.org").params is MailFrom(reverse_path=None).params
    assert parse_common(b"MAIL FROM:<>").params is MailFrom(reverse_path=None).params  # type: ignore[union-attr]


# ------------------------------------------------------------- what is buffered


@given(st.lists(st.binary(max_size=30), max_size=8), st.booleans())
def test_buffered_and_peer_closed_say_what_trailing_data_says(
    chunks: list[bytes], close: bool
) -> None:
    from sansio_smtp import CLIENT, NEED_DATA, Connection, RemoteProtocolError

    client = Connection(CLIENT)
    for chunk in [*chunks, b""] if close else chunks:
        with contextlib.suppress(RuntimeError):  # (data after the close)
            client.receive_data(chunk)
        with contextlib.suppress(RemoteProtocolError):
            for _ in range(10):  # (after the close: ConnectionClosed, again and again)
                if client.next_event() is NEED_DATA:
                    break
        data, closed = client.trailing_data
        assert client.buffered == len(data)
        assert client.peer_closed is closed
        assert client.awaiting_replies == len(client.pending)


def test_awaiting_replies_counts_what_is_pending() -> None:
    from sansio_smtp import CLIENT, Connection

    client = Connection(CLIENT)
    client.receive_data(b"220 mx.example ESMTP\r\n")
    client.next_event()
    assert client.awaiting_replies == len(client.pending) == 0
    client.send(Ehlo(domain="c.example"))
    assert client.awaiting_replies == len(client.pending) == 1
    client.receive_data(b"250-mx.example\r\n250 PIPELINING\r\n")
    client.next_event()
    for command in (MailFrom(reverse_path="a@example.org"), RcptTo(forward_path="b@example.org")):
        client.send(command)
    assert client.awaiting_replies == len(client.pending) == 2


# ------------------------------------------------------------- the common lines' grammar

_ABNF_MAILBOX = rf"(?P<local>{_abnf.DOT_STRING})@(?P<domain>{_abnf.DOMAIN})"
_ABNF_TAIL = r"(?: +(?P<params>.*?))? *\Z"
_ABNF_COMMON = {
    _readers._COMMON_MAIL_RE: re.compile(
        rf"MAIL FROM: *<(?:{_ABNF_MAILBOX})?>{_ABNF_TAIL}", re.DOTALL
    ),
    _readers._COMMON_RCPT_RE: re.compile(rf"RCPT TO: *<{_ABNF_MAILBOX}>{_ABNF_TAIL}", re.DOTALL),
}
_PART = st.text(alphabet="aZ9-._@<> =!/\u017f\u212aé\n", max_size=12)
_LOCAL_TEXT = st.text(alphabet="a9-._!\u017f", min_size=1, max_size=8)
_DOMAIN_TEXT = st.text(alphabet="aZ9-.\u212a", min_size=1, max_size=8)


@settings(max_examples=300)
@example("RCPT TO:", "a", "x--y.b", "", "")  # hyphens in runs
@example("RCPT TO:", "a", "x-.b", "", "")  # a label that ends in one
@example("MAIL FROM:", "a.b", "-x", "", "")  # or starts with one
@given(
    st.sampled_from(["MAIL FROM:", "RCPT TO:", "MAIL FROM: ", "RCPT TO:  "]),
    _LOCAL_TEXT,
    _DOMAIN_TEXT,
    st.sampled_from(["", " ", " SIZE=1", ">"]),
    _PART,
)
def test_the_common_regexes_are_the_abnf_grammar(
    verb: str, local: str, domain: str, tail: str, rest: str
) -> None:
    # the possessive, hyphen-run form of the mailbox accepts what _abnf's Dot-string "@"
    # Domain accepts, with the same groups
    for fast, reference in _ABNF_COMMON.items():
        for text in (f"{verb}<{local}@{domain}>{tail}", verb + rest, f"{verb}<{rest}>"):
            got, want = fast.match(text), reference.match(text)
            assert (got is None) == (want is None), text
            if got is not None and want is not None:
                assert got.groupdict() == want.groupdict(), text


def test_the_timeout_is_the_rule_of_the_role() -> None:
    from sansio_smtp import CLIENT, SERVER, Connection, Greeting
    from sansio_smtp._state import client_timeout, server_timeout

    client, server = Connection(CLIENT), Connection(SERVER)

    def check() -> None:
        st = client._state
        assert client.timeout == client_timeout(st.state, st.pending)
        st = server._state
        owes = bool(st.pending) and server._chunk_reader is None
        assert server.timeout == server_timeout(st.state, owes_reply=owes)

    check()
    client.receive_data(server.send(Greeting(lines="mx.example")))
    client.next_event()
    for command in (Ehlo(domain="c.example"), MailFrom(reverse_path=None), Data(), Quit()):
        check()
        with contextlib.suppress(LocalProtocolError):
            server.receive_data(client.send(command))
        check()
        event = server.next_event()
        check()
        if isinstance(event, Event):
            client.receive_data(server.send(server.default_reply(event)))
            check()
            client.next_event()
            check()


def test_process_reply_refuses_exactly_the_replies_that_do_not_fit() -> None:
    # the inline fit check (354 for DATA, 2xx for the rest, any 4xx/5xx) is
    # check_reply_fits's answer
    from sansio_smtp._state import check_reply_fits

    for command in _COMMANDS:
        if isinstance(command, MessageData):
            continue  # (content awaits no reply)
        for reply in _REPLIES:
            for state in (State.READY, State.RCPT, State.AUTH):
                session = ConnectionState()
                session.state = session.projected = state
                session.process_command(command)
                entry = command
                if isinstance(command, InvalidCommand) and command.command is not None:
                    entry = command.command
                try:
                    check_reply_fits(entry, reply)
                except LocalProtocolError:
                    fits = False
                else:
                    fits = True
                try:
                    session.process_reply(reply)
                except LocalProtocolError:
                    assert not fits, (command, reply, state)
                    assert list(session.pending) == [command]  # nothing changed
                else:
                    assert fits, (command, reply, state)


# ------------------------------------------------------------- the memo tables


def test_remember_keeps_a_memo_table_bounded() -> None:
    from sansio_smtp._util import remember

    memo: dict[int, str] = {}
    for n in range(10):
        assert remember(memo, n, str(n), 4) == str(n)
        assert len(memo) <= 4
        assert memo[n] == str(n)  # the newest is always kept
