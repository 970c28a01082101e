"""One of each (issue 12 items 5, 9, 10): one AUTH redaction rule, one reply-line grammar,
one Transcript type that logs can be built on, rendering registered from above the
protocol, and a public API without internals."""

from __future__ import annotations

import base64
import importlib
import re

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import sansio_smtp
from sansio_smtp import (
    CLIENT,
    SERVER,
    Auth,
    AuthResponse,
    Config,
    Connection,
    Ehlo,
    Event,
    Greeting,
    InvalidCommand,
    MailFrom,
    RcptTo,
    Reply,
    Transcript,
    TranscriptLine,
    codes,
)
from sansio_smtp._display import html_of, pretty_of, register
from sansio_smtp._readers import ReplyReader
from sansio_smtp._receivebuffer import ReceiveBuffer
from sansio_smtp._redact import (
    redact_client_data,
    redact_client_line,
    redact_server_data,
    redact_server_line,
)
from sansio_smtp._reply import split_reply_line, split_reply_text

from .helpers import drain

AUTH_CONFIG = Config(
    hostname="mx.example.net",
    extensions={"AUTH": ("PLAIN", "LOGIN")},
    allow_plaintext_auth=True,
)

# ------------------------------------------------------------------- AUTH redaction


@pytest.mark.parametrize(
    ("line", "in_auth", "shown"),
    [
        # RFC 4954 §4: the initial response is a secret, the verb and mechanism are not
        (b"AUTH PLAIN AGFsaWNlAHNlY3JldA==", False, b"AUTH PLAIN <redacted>"),
        (b"auth plain AGFsaWNlAHNlY3JldA==", False, b"auth plain <redacted>"),
        (b"AUTH LOGIN", False, b"AUTH LOGIN"),
        (b"AUTH PLAIN =", False, b"AUTH PLAIN <redacted>"),
        # RFC 4954 §4: a response line is a secret; "*" cancels and is not
        (b"YWxpY2U=", True, b"<redacted>"),
        (b"", True, b"<redacted>"),
        (b"*", True, b"*"),
        (b"MAIL FROM:<a@example.org>", False, b"MAIL FROM:<a@example.org>"),
    ],
)
def test_client_line_rule(line: bytes, in_auth: bool, shown: bytes) -> None:
    assert redact_client_line(line, in_auth=in_auth) == shown


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        # RFC 4954 §4: a 334 challenge's text may carry data of the exchange
        (b"334 VXNlcm5hbWU6", b"334 <redacted>"),
        (b"334-VXNlcm5hbWU6", b"334-<redacted>"),
        (b"334", b"334 <redacted>"),
        (b"3345 x", b"3345 x"),
        (b"250 OK", b"250 OK"),
    ],
)
def test_server_line_rule(line: bytes, shown: bytes) -> None:
    assert redact_server_line(line) == shown


def test_log_chunks_keep_line_endings() -> None:
    # issue 12 item 5: what the servers' traffic log will call on raw chunks
    assert redact_client_data(b"AUTH PLAIN AHUAcA==\r\n") == (b"AUTH PLAIN <redacted>\r\n", True)
    assert redact_client_data(b"dXNlcg==\r\n", in_auth=True) == (b"<redacted>\r\n", True)
    assert redact_client_data(b"*\r\n", in_auth=True) == (b"*\r\n", False)
    assert redact_client_data(b"EHLO c\r\nNOOP\r\n") == (b"EHLO c\r\nNOOP\r\n", False)
    assert redact_server_data(b"334 VXNlcm5hbWU6\r\n") == b"334 <redacted>\r\n"
    assert redact_server_data(b"250-a\r\n250 b\r\n") == b"250-a\r\n250 b\r\n"


_B64 = st.binary(min_size=6, max_size=60).map(lambda b: base64.b64encode(b))


@given(initial=_B64, responses=st.lists(_B64, max_size=3))
def test_no_secret_survives_a_log_chunk(initial: bytes, responses: list[bytes]) -> None:
    # RFC 4954 §4: whatever the secrets, a redacted chunk holds none of them
    data = b"AUTH PLAIN " + initial + b"\r\n" + b"".join(r + b"\r\n" for r in responses)
    shown, _ = redact_client_data(data)
    for secret in (initial, *responses):
        assume(secret not in b"AUTH PLAIN <redacted>\r\n")
        assert secret not in shown


def test_event_reprs_use_the_rule() -> None:
    auth = Auth(mechanism="PLAIN", initial_response=b"secret")
    assert repr(auth) == "Auth(mechanism='PLAIN', initial_response=<redacted>)"
    assert repr(AuthResponse(data=None)) == "AuthResponse(data=None)"
    line = b"AUTH PLAIN c2VjcmV0"
    bad = InvalidCommand(line=line, reply_hint=Reply(code=501, lines="no"))
    assert repr(redact_client_line(line)) in repr(bad) and b"c2VjcmV0".decode() not in repr(bad)


def test_connection_redacts_a_refused_auth_response_by_the_rule() -> None:
    # issue 12 item 5: Connection's own InvalidCommand for a bad AUTH response line
    server = Connection(SERVER, AUTH_CONFIG)
    server.send(Greeting(lines="mx.example.net"))
    server.receive_data(b"EHLO c.example\r\n")
    [ehlo] = drain(server)
    server.send(server.default_reply(ehlo))
    server.receive_data(b"AUTH LOGIN\r\n")
    drain(server)
    server.send(Reply.auth_challenge(b"Username:"))
    secret = b"not base64 but a password!"
    server.receive_data(secret + b"\r\n")
    [bad] = drain(server)
    assert isinstance(bad, InvalidCommand)
    assert bad.line == redact_client_line(secret, in_auth=True) == b"<redacted>"


# ------------------------------------------------------------------ reply-line grammar

_LINE_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)


@given(
    code=st.integers(200, 559).filter(lambda c: (c // 10) % 10 <= 5),
    sep=st.sampled_from([" ", "-", ""]),
    text=_LINE_TEXT,
)
def test_every_reader_of_reply_lines_agrees(code: int, sep: str, text: str) -> None:
    # RFC 5321 §4.2 Reply-line, read by the reader, the transcript, explain, the notebook
    text = text if sep else ""
    line = f"{code}{sep}{text}"
    assert split_reply_line(line.encode()) == (code, sep.encode(), text.encode())
    assert split_reply_text(line) == (code, sep, text)
    reader = ReplyReader(Config())
    buf = ReceiveBuffer()
    buf += line.encode() + b"\r\n"
    if sep == "-":
        buf += f"{code} end\r\n".encode()
    got = reader.read(buf)
    assert got is not None and got[0] == code and got[1][0] == text
    [logged] = Transcript.from_entries([TranscriptLine(direction="S", text=line, kind="reply")])
    assert isinstance(logged, TranscriptLine)
    assert (logged.code, logged.last) == (code, sep != "-")
    if text.strip():
        assert codes.explain(line).reply_code == code


@given(st.binary(max_size=12))
def test_transcript_reads_a_reply_line_only_where_the_reader_does(raw: bytes) -> None:
    # RFC 5321 §4.2: "250x" is no reply line, for the transcript as for the reader
    raw = raw.replace(b"\n", b"").replace(b"\r", b"")
    reader = ReplyReader(Config())
    buf = ReceiveBuffer()
    buf += raw + b"\r\n"
    try:
        reader_code: int | None = None
        got = reader.read(buf)
        if got is not None:
            reader_code = got[0]
    except sansio_smtp.LocalProtocolError:
        reader_code = None
    t = Transcript()
    t.record_received(CLIENT, raw + b"\r\n")
    [line] = t.lines()
    parts = split_reply_line(raw)
    assert line.code == (None if parts is None else parts[0])
    if reader_code is not None:
        assert line.code == reader_code


def test_malformed_reply_line_has_no_code_in_the_transcript() -> None:
    t = Transcript()
    t.record_received(CLIENT, b"250x\r\n250 OK\r\n")
    assert [(line.text, line.code) for line in t.lines()] == [("250x", None), ("250 OK", 250)]


# ---------------------------------------------------------- one Transcript for logs


def test_transcript_streams_stamped_lines_for_a_log() -> None:
    # issue 12 item 5: the clock is the caller's; on_line streams; store=False keeps none
    ticks = iter(range(100))
    streamed: list[TranscriptLine] = []
    log = Transcript(clock=lambda: float(next(ticks)), on_line=streamed.append, store=False)
    client = Connection(CLIENT, AUTH_CONFIG, transcript=log)
    client.receive_data(b"220 mx.example.net\r\n")
    drain(client)
    client.send(Ehlo(domain="c.example"))
    client.receive_data(b"250-mx.example.net\r\n250 AUTH PLAIN\r\n")
    drain(client)
    client.send(Auth(mechanism="PLAIN", initial_response=b"\0alice\0secret"))
    log.note("a note")
    assert [str(line) for line in streamed] == [
        "S: 220 mx.example.net",
        "C: EHLO c.example",
        "S: 250-mx.example.net",
        "S: 250 AUTH PLAIN",
        "C: AUTH PLAIN <redacted>",
        "*: a note",
    ]
    assert [line.at for line in streamed] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert len(log) == 0 and log.lines() == []


def test_transcript_takes_an_adapters_own_lines() -> None:
    # issue 12 item 5: the client's TranscriptEntry log, on the core type: same str()
    ticks = iter(range(100))
    streamed: list[str] = []
    t = Transcript(
        clock=lambda: float(next(ticks)), on_line=lambda line: streamed.append(str(line))
    )
    t.add_line("*", "connected to mx.example.net:25")
    t.add_line("C", redact_client_line(b"AUTH PLAIN AHUAcA==").decode())
    reply = t.add_line("S", "250-2.0.0 first")
    t.add_line("C", "<message content, 5 octets>", kind="content")
    assert (reply.code, reply.enhanced, reply.last, reply.at) == (250, "2.0.0", False, 2.0)
    assert streamed == [
        "*: connected to mx.example.net:25",
        "C: AUTH PLAIN <redacted>",
        "S: 250-2.0.0 first",
        "C: <message content, 5 octets>",
    ]
    assert [line.kind for line in t.lines()] == ["note", "command", "reply", "content"]


def test_transcript_without_clock_has_no_time() -> None:
    t = Transcript()
    t.note("x")
    assert t.lines()[0].at is None


# ------------------------------------------------------------- presentation on top

EVENT_TYPES = [
    cls
    for cls in (getattr(sansio_smtp, name) for name in sansio_smtp.__all__)
    if isinstance(cls, type) and issubclass(cls, Event) and attrs.has(cls)
]


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda c: c.__name__)
def test_event_classes_carry_no_display_machinery(cls: type[Event]) -> None:
    # issue 12 item 10: nothing patched onto each class; IPython's pretty printer, which
    # takes a class's own __repr__ over an inherited _repr_pretty_, finds Event's
    assert "_repr_pretty_" not in cls.__dict__
    assert "_repr_html_" not in cls.__dict__
    assert "__repr__" not in cls.__dict__


def test_event_reprs_are_attrs_reprs() -> None:
    assert repr(Reply(code=250, lines="OK")) == "Reply(code=250, lines=('OK',), enhanced=None)"
    assert repr(Greeting(lines="mx")) == "Greeting(code=220, lines=('mx',))"
    mail = MailFrom(reverse_path=None, params={"SIZE": "10"})
    assert repr(mail) == "MailFrom(reverse_path=None, params=Params({'SIZE': '10'}))"


def test_ipython_pretty_uses_the_registered_renderer() -> None:
    pretty = pytest.importorskip("IPython.lib.pretty")
    text = pretty.pretty(Reply(code=550, lines="No such user", enhanced="5.1.1"))
    assert text == "Reply(code=550, lines=('No such user',), enhanced='5.1.1')"
    assert pretty.pretty(Connection(CLIENT)).startswith("<Connection client")


def test_display_registry_falls_back_to_the_escaped_repr() -> None:
    class Thing:
        def __repr__(self) -> str:
            return "<thing & co>"

    assert html_of(Thing()) == "<pre>&lt;thing &amp; co&gt;</pre>"
    register(Thing, html=lambda _t: "<b>thing</b>")
    assert html_of(Thing()) == "<b>thing</b>"

    class Printer:
        out = ""

        def text(self, obj: str) -> None:
            self.out += obj

    p = Printer()
    pretty_of(Thing(), p, False)  # type: ignore[arg-type]
    assert p.out == "<thing & co>"


# ------------------------------------------------------------------------ public API


def test_all_is_the_protocol_without_internals() -> None:
    # issue 12 item 9
    assert "Sentinel" not in sansio_smtp.__all__
    assert "LmtpDelivery" not in sansio_smtp.__all__
    assert "codes" in sansio_smtp.__all__ and sansio_smtp.codes.explain(550).reply_code == 550
    for name in sansio_smtp.__all__:
        assert hasattr(sansio_smtp, name), name
    # still importable where they live
    from sansio_smtp._connection import Sentinel
    from sansio_smtp._state import LmtpDelivery

    assert sansio_smtp.NEED_DATA is Sentinel.NEED_DATA
    assert sansio_smtp.Sentinel is Sentinel and sansio_smtp.LmtpDelivery is LmtpDelivery


def test_property_value_types_have_a_public_path() -> None:
    params = importlib.import_module("sansio_smtp.params")
    mail = MailFrom(
        reverse_path="a@example.org",
        params=params.mail_params(
            body=params.Body.EIGHT_BIT_MIME,
            ret=params.Ret.HDRS,
            deliver_by=params.DeliverBy(seconds=60, mode="R"),
        ),
    )
    assert mail.body is params.Body.EIGHT_BIT_MIME and mail.ret is params.Ret.HDRS
    assert isinstance(mail.deliver_by, params.DeliverBy)
    rcpt = RcptTo(
        forward_path="b@example.org",
        params=params.dsn_rcpt_params(
            notify=[params.Notify.FAILURE],
            orcpt=params.OriginalRecipient(addr_type="rfc822", address="b@example.org"),
        ),
    )
    assert rcpt.notify == frozenset({params.Notify.FAILURE})
    assert isinstance(rcpt.orcpt, params.OriginalRecipient)
    assert isinstance(mail.params, params.Params)
    for name in params.__all__:
        assert not re.match(r"_", name)


def test_widgets_are_public() -> None:
    pytest.importorskip("ipywidgets")
    notebook = importlib.import_module("sansio_smtp.notebook")
    assert callable(notebook.conversation_explorer) and notebook.MemoryPair
