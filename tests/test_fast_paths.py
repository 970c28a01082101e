"""The core's fast paths give what the general paths give.

Each shortcut on the per-command path (a server's common command lines, the table-only
case of after_reply, the pre-written default replies, the inline reply-fit check of
process_reply) is checked here against the general code it stands in for, over any input.
"""

from __future__ import annotations

import contextlib

import attrs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sansio_smtp import (
    Auth,
    AuthResponse,
    Bdat,
    Config,
    Data,
    Ehlo,
    EndOfMessage,
    Event,
    Expn,
    Helo,
    Help,
    InvalidCommand,
    InvalidMessage,
    Lhlo,
    LineEndingPolicy,
    LocalProtocolError,
    MailFrom,
    MessageData,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
    StartTLS,
    State,
    Vrfy,
)
from sansio_smtp._extensions import Extensions
from sansio_smtp._readers import (
    CommandRejected,
    Context,
    DataReader,
    parse_command,
    parse_common,
)
from sansio_smtp._receivebuffer import ReceiveBuffer
from sansio_smtp._replies import DEFAULT_REPLIES
from sansio_smtp._state import (
    TRANSITIONS,
    LmtpDelivery,
    after_reply,
    check_reply_fits,
    positive_reply_code,
)
from sansio_smtp._writers import PREBUILT_REPLIES, write_reply

# ------------------------------------------------------------------ command lines

_PIECES = st.sampled_from(
    [
        "MAIL",
        "RCPT",
        "mail",
        "Rcpt",
        "DATA",
        "RSET",
        "QUIT",
        "NOOP",
        "EHLO",
        " ",
        "  ",
        "\t",
        "FROM:",
        "TO:",
        "from:",
        "<",
        ">",
        "<>",
        "@",
        ".",
        "..",
        '"',
        "\\",
        "a",
        "Z9",
        "x-y",
        "ex.org",
        "[192.0.2.1]",
        "Postmaster",
        "é",
        "\u017f",
        "\u212a",
        "SIZE=100",
        "BODY=8BITMIME",
        "SMTPUTF8",
        "=",
        "NOTIFY=NEVER",
        "\r",
        "\x00",
        "-",
    ]
)
_TEXT_LINES = st.lists(_PIECES, max_size=12).map("".join)
_COMMON_LINES = st.builds(
    lambda verb, local, domain, params: f"{verb}<{local}@{domain}>{params}",
    st.sampled_from(["MAIL FROM:", "RCPT TO:", "MAIL FROM: ", "RCPT TO:  "]),
    st.from_regex(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9_-]+)*", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[a-z0-9]+)*", fullmatch=True),
    st.sampled_from(["", " ", " SIZE=10", " BODY=8BITMIME SIZE=1 ", " X=\u00e9", " =", " A=1 A=2"]),
)
_LINES = st.one_of(
    _TEXT_LINES.map(lambda t: t.encode("utf-8", "surrogatepass")),
    _COMMON_LINES.map(str.encode),
    st.binary(max_size=40),
    st.sampled_from([b"DATA", b"RSET", b"QUIT", b"NOOP", b"MAIL FROM:<>", b"RCPT TO:<a@b>"]),
)


def _outcome(parse: object, *args: object) -> object:
    try:
        return parse(*args)  # type: ignore[operator]
    except CommandRejected as exc:
        return exc.reply


@given(_LINES, st.booleans(), st.booleans())
def test_a_common_line_parses_as_parse_command_parses_it(
    line: bytes, utf8: bool, lmtp: bool
) -> None:
    # parse_common answers for a line only where parse_command, in any context, gives the
    # same: an equal event, or the same refusal.
    fast = _outcome(parse_common, line)
    if fast is None:
        return
    ctx = Context(Extensions(), utf8, lmtp=lmtp)
    assert _outcome(parse_command, line, ctx) == fast


@given(_COMMON_LINES)
def test_common_forms_take_the_fast_path(text: str) -> None:
    # the lines the fast path exists for do take it
    if " X=" in text or " =" in text or "A=1 A=2" in text:
        return  # (refused parameters: the same refusal either way, tested above)
    assert isinstance(parse_common(text.encode()), (MailFrom, RcptTo))


def test_bare_commands_take_the_fast_path() -> None:
    for line, kind in ((b"DATA", Data), (b"RSET", Rset), (b"QUIT", Quit), (b"NOOP", Noop)):
        assert type(parse_common(line)) is kind
    assert parse_common(b"rset") is None
    assert parse_common(b"MAIL FROM:<Postmaster>") is None  # no domain: the general path
    assert parse_common(b"RCPT TO:<\xc3\xa9@example.org>") is None  # non-ASCII: idem


# ------------------------------------------------------------------ after_reply


def _after_reply_rules(state: State, command: Event, reply: Reply) -> State:
    """after_reply's rules, each in order, without its shortcut for the common case."""
    if reply.code == 421 or isinstance(command, Quit):
        return State.CLOSED
    if state is State.AUTH and reply.code != 334:
        return State.READY
    if isinstance(command, EndOfMessage):
        return State.READY
    if reply.code == 334 and isinstance(command, (Auth, AuthResponse)):
        return State.AUTH
    if isinstance(command, Data) and reply.code == 354:
        return State.DATA
    low, high = positive_reply_code(command)
    positive = low <= reply.code < high
    if isinstance(command, AuthResponse) and not positive:
        return State.READY
    if isinstance(command, Bdat) and (command.last or not positive):
        return State.READY
    if positive:
        return TRANSITIONS[state].get(type(command), state)
    return state


_COMMANDS: list[Event] = [
    Ehlo(domain="c.example"),
    Helo(domain="c.example"),
    Lhlo(domain="c.example"),
    MailFrom(reverse_path="a@example.org"),
    RcptTo(forward_path="b@example.org"),
    Data(),
    Rset(),
    Noop(),
    Help(),
    Vrfy(text="x"),
    Expn(text="x"),
    Quit(),
    StartTLS(),
    Auth(mechanism="PLAIN"),
    AuthResponse(data=b"x"),
    Bdat(size=1, last=False),
    Bdat(size=1, last=True),
    EndOfMessage(),
    MessageData(data=b"x"),
    InvalidCommand(line=b"x", reply_hint=Reply(code=500, lines="x")),
    LmtpDelivery(recipient=RcptTo(forward_path="b@example.org")),
]
_CODES = sorted({200, 214, 220, 221, 250, 252, 259, 334, 354, 421, 450, 500, 503, 535, 554})


@pytest.mark.parametrize("state", list(State))
def test_after_reply_shortcut_agrees_with_the_rules(state: State) -> None:
    for command in _COMMANDS:
        for code in _CODES:
            reply = Reply(code=code, lines="x")
            assert after_reply(state, command, reply) is _after_reply_rules(
                state, command, reply
            ), (state, command, code)


# ------------------------------------------------------------------ replies


def test_prebuilt_replies_are_what_write_reply_writes() -> None:
    assert len(PREBUILT_REPLIES) == len(DEFAULT_REPLIES)
    for reply in DEFAULT_REPLIES.values():
        for config in (Config(), Config(max_reply_line=512), Config(max_reply_line=4096)):
            assert PREBUILT_REPLIES[id(reply)] == write_reply(reply, config)


def _fits(command: Event, reply: Reply) -> bool:
    try:
        check_reply_fits(command, reply)
    except LocalProtocolError:
        return False
    return True


@pytest.mark.parametrize("code", _CODES)
def test_a_server_refuses_exactly_the_replies_that_do_not_fit(code: int) -> None:
    # process_reply checks the fit inline for the common codes; check_reply_fits says
    from sansio_smtp import SERVER, Connection, Greeting

    for line, command in (
        (b"MAIL FROM:<a@example.org>\r\n", MailFrom(reverse_path="a@example.org")),
        (b"RCPT TO:<b@example.org>\r\n", RcptTo(forward_path="b@example.org")),
        (b"DATA\r\n", Data()),
        (b"RSET\r\n", Rset()),
        (b"NOOP\r\n", Noop()),
    ):
        server = Connection(SERVER, Config(hostname="mx.example"))
        server.send(Greeting(lines="mx.example"))
        server.receive_data(b"EHLO c.example\r\n")
        server.send(server.default_reply(server.next_event()))  # type: ignore[arg-type]
        if not isinstance(command, (MailFrom, Rset, Noop)):
            server.receive_data(b"MAIL FROM:<a@example.org>\r\n")
            server.send(server.default_reply(server.next_event()))  # type: ignore[arg-type]
        if isinstance(command, Data):
            server.receive_data(b"RCPT TO:<b@example.org>\r\n")
            server.send(server.default_reply(server.next_event()))  # type: ignore[arg-type]
        server.receive_data(line)
        assert server.next_event() == command
        reply = Reply(code=code, lines="x")
        if _fits(command, reply):
            server.send(reply)
        else:
            with pytest.raises(LocalProtocolError):
                server.send(reply)
            assert server.pending == (command,)  # refused, nothing changed


def test_with_enhanced_status_codes_a_default_reply_is_still_prebuilt() -> None:
    # ENHANCEDSTATUSCODES adds class.0.0 to replies without one; every default reply has
    # one or is 3xx, so its pre-written bytes stay right (RFC 2034 §3)
    for reply in DEFAULT_REPLIES.values():
        assert reply.enhanced is not None or reply.code // 100 == 3
    assert attrs.evolve(DEFAULT_REPLIES[Rset]) is not DEFAULT_REPLIES[Rset]


# ------------------------------------------------------------------ replies read


_REPLY_LINES = st.sampled_from(
    [
        b"250 2.1.0 Sender OK\r\n",
        b"250 OK\r\n",
        b"250-mx.example\r\n",
        b"250-PIPELINING\r\n",
        b"250 SIZE 1000\r\n",
        b"354 go ahead\r\n",
        b"550 5.1.1 No such user\r\n",
        b"550-5.1.1 first\r\n",
        b"250 2.1.0 Sender OK\r\n",
        b"451 4.3.0 later\n",
    ]
)


@given(st.lists(_REPLY_LINES, max_size=12), st.integers(1, 7))
def test_read_reply_remembers_replies_without_changing_them(lines: list[bytes], step: int) -> None:
    # read_reply's memo of single-line replies gives what read() + make_reply give,
    # whatever was read before and however the bytes arrive
    from sansio_smtp._readers import ReplyReader, make_reply
    from sansio_smtp._receivebuffer import ReceiveBuffer

    wire = b"".join(lines)
    fresh, memo = ReplyReader(Config()), ReplyReader(Config())
    buf_fresh, buf_memo = ReceiveBuffer(), ReceiveBuffer()
    expected: list[object] = []
    got: list[object] = []
    for i in range(0, len(wire), step):
        for buf in (buf_fresh, buf_memo):
            buf += wire[i : i + step]
        for reader, buf, out in ((fresh, buf_fresh, expected), (memo, buf_memo, got)):
            while True:
                try:
                    if reader is fresh:
                        parts = reader.read(buf)
                        reply = None if parts is None else make_reply(*parts)
                    else:
                        reply = reader.read_reply(buf)
                except LocalProtocolError as exc:
                    out.append(str(exc))
                    break
                if reply is None:
                    break
                out.append(reply)
    assert got == expected
    assert bytes(buf_memo) == bytes(buf_fresh)


# ------------------------------------------------------------------ the projection


def _projection(session: object) -> State:
    """What ``projected`` means: the state once every pending command succeeds."""
    from sansio_smtp._state import ConnectionState

    assert isinstance(session, ConnectionState)
    projected = session.state
    for event in session.pending:
        if type(event) is not InvalidCommand:
            projected = TRANSITIONS[projected].get(type(event), projected)
    return projected


_STEPS = st.lists(
    st.one_of(
        st.sampled_from(_COMMANDS).map(lambda c: ("command", c)),
        st.sampled_from(_CODES).map(lambda code: ("reply", code)),
    ),
    max_size=40,
)


@given(_STEPS, st.booleans(), st.booleans(), st.sampled_from([220, 554]))
def test_process_reply_keeps_the_projection(
    steps: list[tuple[str, object]], optimistic: bool, lmtp: bool, greeting: int
) -> None:
    # process_reply projects again only when a reply moved the state other than the
    # projection assumed; the projection is still the fold over what is pending
    from sansio_smtp._state import ConnectionState

    session = ConnectionState(optimistic=optimistic, lmtp=lmtp)
    session.process_greeting(greeting)
    for what, value in steps:
        if what == "command":
            assert isinstance(value, Event)
            session.process_command(value)
        else:
            assert isinstance(value, int)
            with contextlib.suppress(LocalProtocolError):
                session.process_reply(Reply(code=value, lines="x"))
        assert session.projected is _projection(session), (what, value)


# ------------------------------------------------------------- DATA: pieces without a find

_CONTENT_TOKENS = st.sampled_from(
    [b"a", b"xyz", b".", b"..", b"\r", b"\n", b"\r\n", b"\r\n.", b"\r\n..", b"\r\n.\r\n", b"\t"]
)


def _read_all(
    reader_cls: type[DataReader], config: Config, wire: bytes, cuts: list[int]
) -> list[object]:
    """What a reader gives for ``wire`` fed at ``cuts``: each result of read() with the
    bytes still buffered after it."""
    reader = reader_cls(config, size_limit=24)
    buf = ReceiveBuffer()
    seen: list[object] = []
    start = 0
    for stop in [*sorted(cuts), len(wire)]:
        buf += wire[start:stop]
        start = max(start, stop)
        while True:
            event = reader.read(buf)
            seen.append((event, bytes(buf)))
            if not isinstance(event, MessageData):
                break
        if event is not None:
            break
    return seen


class _FindFirst(DataReader):
    """The general path alone: every piece found by a find of the terminator."""

    def _read_piece(self, buf: ReceiveBuffer) -> Event | None:
        data = buf.raw
        if self._bol and data[:1] == b".":
            if len(data) < 3:
                return None
            if self._after_crlf and data[:3] == b".\r\n":
                buf.discard(3)
                self._done = True
                return None
        return self._read_to_end(buf)


@given(
    st.lists(_CONTENT_TOKENS, max_size=30).map(b"".join),
    st.lists(st.integers(0, 120), max_size=6),
    st.integers(5, 12),
    st.sampled_from(list(LineEndingPolicy)),
    st.sampled_from([None, 6, 1000]),
)
def test_data_pieces_without_a_find_agree_with_the_find(
    wire: bytes, cuts: list[int], chunk: int, policy: LineEndingPolicy, max_line: int | None
) -> None:
    # DataReader finds the terminator only in a piece that may hold one (by the split
    # it un-stuffs with); a find over every piece gives the same events and leaves the
    # same bytes buffered, at every chunk boundary and piece size
    config = Config(max_data_chunk=chunk, line_endings=policy, max_data_line=max_line)
    assert _read_all(DataReader, config, wire, cuts) == _read_all(_FindFirst, config, wire, cuts)


@given(
    st.lists(
        st.sampled_from([b"a", b"xyz", b".", b"..", b"\r\n", b"\r\n.", b"\r\n.."]), max_size=40
    ).map(b"".join),
    st.lists(st.integers(0, 200), max_size=6),
    st.integers(5, 40),
    st.integers(3, 8),
)
@example(b"xyzab\r\n..a", [], 40, 5)  # a part of the limit's length, its CRLF past it
@example(b"xyz\r\n..a", [], 40, 5)  # a part and its CRLF at the limit
def test_data_line_limit_agrees_with_the_lines(
    wire: bytes, cuts: list[int], chunk: int, limit: int
) -> None:
    # The line limit applies to the un-stuffed lines (RFC 5321 §4.5.3.1.6): a message
    # fails exactly when one of its lines before the first terminator, counted with its
    # CRLF and without its transparency dot, is longer, whatever the chunking and piece
    # size (a line carried across pieces, a part of a split piece at the limit)
    wire += b"\r\n.\r\n"
    body = wire[: (b"\r\n" + wire).find(b"\r\n.\r\n")]  # the content and its last CRLF
    lines = [line[1:] if line[:1] == b"." else line for line in body.split(b"\r\n")[:-1]]
    too_long = any(len(line) + 2 > limit for line in lines)
    config = Config(max_data_chunk=chunk, max_data_line=limit)
    reader = DataReader(config, size_limit=None)
    buf = ReceiveBuffer()
    events: list[Event] = []
    start = 0
    for stop in [*sorted(cuts), len(wire)]:
        buf += wire[start:stop]
        start = max(start, stop)
        while (event := reader.read(buf)) is not None:
            events.append(event)
            if not isinstance(event, MessageData):
                break
        if events and not isinstance(events[-1], MessageData):
            break
    last = events[-1]
    if too_long:
        assert isinstance(last, InvalidMessage)
        assert last.reason == "line too long"
    else:
        assert isinstance(last, EndOfMessage)
        content = b"".join(e.data for e in events if isinstance(e, MessageData))
        assert content == b"".join(line + b"\r\n" for line in lines)
