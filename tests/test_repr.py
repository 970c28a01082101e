"""Rich displays and the Transcript: _repr_html_ / _repr_pretty_ of events, replies,
Connection and Transcript; the C:/S: log with AUTH redacted; the state diagram drawn
from TRANSITIONS. None of this may import IPython."""

from __future__ import annotations

import base64
import html
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest

from sansio_smtp import (
    CLIENT,
    NEED_DATA,
    PAUSED,
    SERVER,
    TRANSITIONS,
    Auth,
    AuthResponse,
    Bdat,
    Config,
    Connection,
    ConnectionClosed,
    Data,
    Ehlo,
    EndOfMessage,
    Event,
    Greeting,
    InvalidCommand,
    MailFrom,
    MessageData,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
    State,
    Transcript,
    TranscriptEvent,
    TranscriptLine,
)
from sansio_smtp._repr import (
    CLASS_COLOURS,
    code_title,
    enhanced_title,
    event_text,
    explanation_html,
    state_diagram_svg,
    transcript_html,
)
from sansio_smtp.codes import explain

SECRET = b"\x00alice\x00correct horse battery staple"
SECRET_B64 = base64.b64encode(SECRET).decode()
AUTH_CONFIG = Config(
    hostname="mx.example.net",
    extensions={"PIPELINING": (), "AUTH": ("PLAIN", "LOGIN"), "CHUNKING": ()},
    allow_plaintext_auth=True,
)


# ------------------------------------------------------------------ a printer for tests


@dataclass
class FakePrinter:
    """What IPython's RepresentationPrinter offers _repr_pretty_, recording the text."""

    out: str = ""

    def text(self, obj: str) -> None:
        self.out += obj

    def breakable(self, sep: str = " ") -> None:
        self.out += sep

    def break_(self) -> None:
        self.out += "\n"

    def begin_group(self, indent: int = 0, open: str = "") -> None:
        self.out += open

    def end_group(self, dedent: int = 0, close: str = "") -> None:
        self.out += close

    def pretty(self, obj: object) -> None:
        self.out += repr(obj)


def pretty(obj: object) -> str:
    printer = FakePrinter()
    obj._repr_pretty_(printer, False)  # type: ignore[attr-defined]
    return printer.out


# ------------------------------------------------------------------ a dialogue helper


def drain(conn: Connection) -> list[Event]:
    events: list[Event] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA or event is PAUSED:
            return events
        assert isinstance(event, Event)
        events.append(event)
        if isinstance(event, ConnectionClosed):
            return events


class Pair:
    def __init__(
        self, config: Config = AUTH_CONFIG, *, client: bool = True, server: bool = True
    ) -> None:
        self.transcript = Transcript(max_content_lines=3)
        self.client = Connection(CLIENT, config, transcript=self.transcript if client else None)
        self.server = Connection(SERVER, config, transcript=self.transcript if server else None)
        self.to_client(self.server.send(Greeting(lines="mx.example.net ESMTP")))

    def to_client(self, data: bytes, bytewise: bool = False) -> list[Event]:
        for piece in [data[i : i + 1] for i in range(len(data))] if bytewise else [data]:
            self.client.receive_data(piece)
        return drain(self.client)

    def to_server(self, data: bytes, bytewise: bool = False) -> list[Event]:
        for piece in [data[i : i + 1] for i in range(len(data))] if bytewise else [data]:
            self.server.receive_data(piece)
        return drain(self.server)

    def command(self, event: Event, reply: Reply | None = None, bytewise: bool = False) -> Reply:
        [received] = self.to_server(self.client.send(event), bytewise)
        got = self.to_client(self.server.send(reply or self.server.default_reply(received)))
        assert isinstance(got[0], Reply), got
        return got[0]


# ----------------------------------------------------------------------------- replies


@pytest.mark.parametrize("code", [250, 354, 451, 550])
def test_reply_html_is_coloured_by_class(code: int) -> None:
    page = Reply(code=code, lines="text")._repr_html_()
    assert f"sansio-smtp-{code // 100}xx" in page
    assert CLASS_COLOURS[code // 100] in page
    assert f">{code}</span>" in page


def test_reply_html_explains_codes_on_hover() -> None:
    page = Reply(code=550, lines="No such user here", enhanced="5.1.1")._repr_html_()
    assert 'class="sansio-smtp-enhanced"' in page
    assert html.escape(enhanced_title("5.1.1"), quote=True) in page
    assert "Bad destination mailbox address" in enhanced_title("5.1.1")
    assert html.escape(code_title(550), quote=True) in page
    assert "mailbox unavailable" in code_title(550)


def test_reply_html_escapes_everything() -> None:
    page = Reply(code=550, lines=['<script>alert("x")</script> & more'])._repr_html_()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in page


def test_multiline_reply_html_marks_continuation_lines() -> None:
    page = Reply(code=250, lines=("mx.example.net", "PIPELINING", "SIZE 1000"))._repr_html_()
    assert page.count('class="sansio-smtp-code"') == 3
    assert "</span>-mx.example.net" in page
    assert "</span> SIZE 1000" in page


def test_greeting_html() -> None:
    page = Greeting(code=554, lines="no service for you")._repr_html_()
    assert "sansio-smtp-greeting" in page and "sansio-smtp-5xx" in page


def test_unregistered_enhanced_code_gets_class_and_subject() -> None:
    assert "not registered" in enhanced_title("5.1.99")
    assert "Addressing" in enhanced_title("5.1.99")
    assert "not an enhanced status code" in enhanced_title("9.9")


# ------------------------------------------------------------------------------ events


def test_event_html_escapes_addresses() -> None:
    page = MailFrom(reverse_path="a&b@example.org")._repr_html_()
    assert "<b" in page and "MailFrom</b>" in page
    assert "a&amp;b@example.org" in page


def test_invalid_command_html_shows_the_hint() -> None:
    event = InvalidCommand(line=b"FOO <x>", reply_hint=Reply(code=500, lines="Unknown"))
    page = event._repr_html_()
    assert "FOO &lt;x&gt;" in page
    assert "sansio-smtp-5xx" in page and ">500</span>" in page


def test_auth_payloads_are_redacted_in_reprs() -> None:
    for event in (Auth(mechanism="PLAIN", initial_response=SECRET), AuthResponse(data=SECRET)):
        for shown in (event._repr_html_(), pretty(event), event_text(event)):
            assert "correct horse" not in shown
            assert "redacted" in shown


def test_event_pretty_is_python() -> None:
    reply = Reply(code=550, lines="No such user", enhanced="5.1.1")
    assert pretty(reply) == "Reply(code=550, lines=('No such user',), enhanced='5.1.1')"
    assert eval(event_text(reply)) == reply
    mail = MailFrom(reverse_path="a@example.org", params={"SIZE": "10"})
    assert "reverse_path='a@example.org'" in event_text(mail)


def test_ipython_uses_the_events_pretty_printer() -> None:
    ipython_pretty = pytest.importorskip("IPython.lib.pretty")
    long = Reply(code=250, lines=["mx.example.net"] + ["X-EXTENSION-NUMBER"] * 8)
    text = ipython_pretty.pretty(long)
    assert text.startswith("Reply(\n    code=250,\n    lines=(")
    assert text.endswith("enhanced=None)")
    assert ipython_pretty.pretty(Reply(code=250, lines="OK", enhanced="2.0.0")) == (
        "Reply(code=250, lines=('OK',), enhanced='2.0.0')"
    )
    assert "redacted" in ipython_pretty.pretty(Auth(mechanism="PLAIN", initial_response=b"x"))


# -------------------------------------------------------------------------- connection


def test_connection_html_and_pretty() -> None:
    pair = Pair()
    pair.command(Ehlo(domain="c.example"))
    pair.client.send(MailFrom(reverse_path="a@example.org"))
    page = pair.client._repr_html_()
    assert 'data-state="READY"' in page and "sansio-smtp-client" in page
    assert "awaiting reply:</span> MAIL" in page
    assert "PIPELINING AUTH PLAIN LOGIN CHUNKING" in page
    text = pretty(pair.client)
    assert text.startswith("<Connection client")
    assert "state=READY" in text and "pending=(MAIL)" in text and "PIPELINING" in text


# -------------------------------------------------------------------------- transcript


def test_client_transcript_plain_text() -> None:
    pair = Pair(Config(hostname="mx.example.net"), server=False)
    pair.command(Ehlo(domain="client.example"))
    pair.command(MailFrom(reverse_path="alice@example.org"))
    pair.command(
        RcptTo(forward_path="nobody@example.net"),
        Reply(code=550, lines="No such user", enhanced="5.1.1"),
    )
    pair.command(Quit())
    assert str(pair.transcript).splitlines() == [
        "S: 220 mx.example.net ESMTP",
        "C: EHLO client.example",
        "S: 250 mx.example.net",
        "C: MAIL FROM:<alice@example.org>",
        "S: 250 2.1.0 Sender OK",
        "C: RCPT TO:<nobody@example.net>",
        "S: 550 5.1.1 No such user",
        "C: QUIT",
        "S: 221 2.0.0 mx.example.net closing connection",
    ]
    read = [e.event for e in pair.transcript.events(sent=False)]
    assert isinstance(read[0], Greeting) and isinstance(read[-1], ConnectionClosed)
    first_sent = next(e.event for e in pair.transcript.events(sent=True))
    assert first_sent == Ehlo(domain="client.example")


@pytest.mark.parametrize("bytewise", [False, True])
def test_shared_transcript_shows_each_line_once(bytewise: bool) -> None:
    shared = Pair()
    alone = Pair(server=False)
    for pair in (shared, alone):
        pair.command(Ehlo(domain="client.example"), bytewise=bytewise)
        pair.command(Noop(), bytewise=bytewise)
    assert str(shared.transcript) == str(alone.transcript)
    lines = shared.transcript.lines()
    assert all(line.sent for line in lines)
    assert {line.recorded_by for line in lines} == {CLIENT, SERVER}
    # both views were recorded: the server's copy of the client's lines is kept too
    received = [e for e in shared.transcript.entries if isinstance(e, TranscriptLine)]
    assert len(received) == 2 * len(lines)


def test_server_only_transcript_reads_the_client_lines() -> None:
    pair = Pair(client=False)
    pair.command(Ehlo(domain="client.example"))
    assert "C: EHLO client.example" in str(pair.transcript)
    [ev] = [e for e in pair.transcript.events(sent=False)]
    assert ev.event == Ehlo(domain="client.example") and ev.recorded_by is SERVER


def _auth_dialogue(pair: Pair, bytewise: bool) -> None:
    pair.command(Ehlo(domain="client.example"), bytewise=bytewise)
    # AUTH PLAIN with an initial response
    pair.command(
        Auth(mechanism="PLAIN", initial_response=SECRET),
        Reply(code=535, lines="Authentication credentials invalid", enhanced="5.7.8"),
        bytewise=bytewise,
    )
    # AUTH LOGIN: two challenges, two responses
    pair.command(Auth(mechanism="LOGIN"), Reply.auth_challenge(b"Username:"), bytewise=bytewise)
    pair.command(AuthResponse(data=b"alice"), Reply.auth_challenge(SECRET), bytewise=bytewise)
    pair.command(
        AuthResponse(data=SECRET),
        Reply(code=235, lines="Authentication successful", enhanced="2.7.0"),
        bytewise=bytewise,
    )


@pytest.mark.parametrize("who", ["client", "server", "both"])
@pytest.mark.parametrize("bytewise", [False, True])
def test_auth_payloads_are_never_recorded(who: str, bytewise: bool) -> None:
    pair = Pair(client=who != "server", server=who != "client")
    _auth_dialogue(pair, bytewise)
    t = pair.transcript
    everything = "\n".join(
        [str(t), repr(t.entries), t._repr_html_(), transcript_html(t), pretty(t)]
        + [repr(e.event) + repr(getattr(e.event, "__dict__", "")) for e in t.events()]
    )
    for secret in ("correct horse", SECRET_B64, base64.b64encode(b"alice").decode()):
        assert secret not in everything
    for e in t.events():
        assert SECRET not in attrs_values(e.event)
    lines = str(t).splitlines()
    assert "C: AUTH PLAIN <redacted>" in lines
    assert "C: AUTH LOGIN" in lines
    assert lines.count("S: 334 <redacted>") == 2
    assert lines.count("C: <redacted>") == 2
    assert "S: 235 2.7.0 Authentication successful" in lines


def attrs_values(event: Event) -> tuple[object, ...]:
    import attrs

    cls = type(event)
    return tuple(getattr(event, f.name) for f in attrs.fields(cls)) if attrs.has(cls) else ()


def test_auth_cancel_is_shown() -> None:
    pair = Pair()
    pair.command(Ehlo(domain="client.example"))
    pair.command(Auth(mechanism="LOGIN"), Reply.auth_challenge(b"Username:"))
    pair.command(AuthResponse(data=None))
    assert "C: *" in str(pair.transcript).splitlines()


def test_invalid_auth_response_line_is_redacted() -> None:
    pair = Pair(client=False)
    pair.command(Ehlo(domain="client.example"))
    pair.to_server(b"AUTH LOGIN\r\n")
    pair.server.send(Reply.auth_challenge(b"Username:"))
    [bad] = pair.to_server(b"not base64 but a password!\r\n")
    assert isinstance(bad, InvalidCommand)
    [recorded] = [e.event for e in pair.transcript.events(sent=False)][-1:]
    assert isinstance(recorded, InvalidCommand) and recorded.line == b"<redacted>"
    assert "password" not in str(pair.transcript) + repr(pair.transcript.entries)


def test_refused_auth_command_is_redacted() -> None:
    # AUTH is advertised, but not without TLS: the server refuses the line, and the
    # InvalidCommand it reads carries the parsed Auth (with the secret) as ``command``.
    config = Config(extensions={"AUTH": ("PLAIN",)})
    pair = Pair(config, client=False)
    pair.command(Ehlo(domain="client.example"))
    [refused] = pair.to_server(b"AUTH PLAIN " + SECRET_B64.encode() + b"\r\n")
    assert isinstance(refused, InvalidCommand)
    [recorded] = [e.event for e in pair.transcript.events(sent=False)][-1:]
    assert isinstance(recorded, InvalidCommand)
    assert recorded.line == b"AUTH PLAIN <redacted>"
    if refused.command is not None:  # the core says what the line parsed to
        assert isinstance(refused.command, Auth)
        assert recorded.command == Auth(mechanism="PLAIN", initial_response=b"<redacted>")
    everything = str(pair.transcript) + repr(pair.transcript.entries)
    assert SECRET_B64 not in everything and "correct horse" not in everything


def test_redaction_does_not_swallow_the_next_command() -> None:
    pair = Pair()
    pair.command(Ehlo(domain="client.example"))
    pair.command(Auth(mechanism="PLAIN", initial_response=SECRET), Reply(code=235, lines="ok"))
    pair.command(MailFrom(reverse_path="alice@example.org"))
    assert "C: MAIL FROM:<alice@example.org>" in str(pair.transcript)


@pytest.mark.parametrize("bytewise", [False, True])
def test_message_content_is_capped_and_dot_stuffed(bytewise: bool) -> None:
    pair = Pair()
    pair.command(Ehlo(domain="client.example"))
    pair.command(MailFrom(reverse_path="alice@example.org"))
    pair.command(RcptTo(forward_path="bob@example.net"))
    pair.command(Data())
    body = b".leading dot\r\n" + b"".join(b"line %d\r\n" % i for i in range(50))
    pair.to_server(pair.client.send(MessageData(data=body)), bytewise)
    [*_, end] = pair.to_server(pair.client.send(EndOfMessage()), bytewise)
    pair.to_client(pair.server.send(pair.server.default_reply(end)))
    lines = str(pair.transcript).splitlines()
    start = lines.index("S: 354 End data with <CR><LF>.<CR><LF>")
    assert lines[start + 1 : start + 6] == [
        "C: ..leading dot",
        "C: line 0",
        "C: line 1",
        "C: ... 48 more lines (424 octets) of content",
        "C: .",
    ]
    assert lines[start + 6].startswith("S: 250")
    kinds = {line.kind for line in pair.transcript.lines()[start + 1 : start + 6]}
    assert kinds == {"content"}


def test_bdat_content_is_not_taken_for_commands() -> None:
    pair = Pair()
    pair.command(Ehlo(domain="client.example"))
    pair.command(MailFrom(reverse_path="alice@example.org"))
    pair.command(RcptTo(forward_path="bob@example.net"))
    chunk = b"QUIT\r\n.\r\nAUTH PLAIN x\r\n"
    pair.to_server(pair.client.send(Bdat(size=len(chunk), last=True)))
    [*_, end] = pair.to_server(pair.client.send(MessageData(data=chunk)))
    pair.to_client(pair.server.send(pair.server.default_reply(end)))
    pair.command(Rset())
    lines = [(line.text, line.kind) for line in pair.transcript.lines()]
    assert (f"BDAT {len(chunk)} LAST", "command") in lines
    assert ("QUIT", "content") in lines and (".", "content") in lines
    assert ("AUTH PLAIN x", "content") in lines
    assert ("RSET", "command") in lines


def test_over_long_line_is_cut() -> None:
    t = Transcript()
    t.record_received(SERVER, b"NOOP " + b"x" * 10000)
    t.record_received(SERVER, b"y" * 10000 + b"\r\nRSET\r\n")
    texts = [line.text for line in t.lines()]
    assert len(texts) == 2 and texts[1] == "RSET"
    assert texts[0].endswith("... (line cut)") and len(texts[0]) < 4200


def test_peer_close_is_a_note() -> None:
    pair = Pair(server=False)
    pair.client.receive_data(b"")
    assert str(pair.transcript).splitlines()[-1] == "*: the server closed the connection"


def test_notes_limits_and_clear() -> None:
    t = Transcript(max_entries=3)
    for i in range(5):
        t.note(f"note {i}")
    assert str(t) == "*: note 2\n*: note 3\n*: note 4"
    assert len(t) == 3 and len(list(t)) == 3
    t.clear()
    assert str(t) == "" and "empty transcript" in t._repr_html_()
    with pytest.raises(ValueError):
        Transcript(max_entries=0)
    with pytest.raises(ValueError):
        Transcript(max_content_lines=-1)


def test_from_entries() -> None:
    @dataclass
    class Entry:
        direction: str
        text: str

    t = Transcript.from_entries(
        [
            Entry("*", "connected"),
            Entry("C", "EHLO x"),
            Entry("S", "250-mx"),
            Entry("S", "250 4.2.2 full"),
            Entry("S", "garbage"),
        ]
    )
    assert str(t) == "*: connected\nC: EHLO x\nS: 250-mx\nS: 250 4.2.2 full\nS: garbage"
    replies = [line for line in t.lines() if line.code is not None]
    assert [(r.code, r.last, r.enhanced) for r in replies] == [
        (250, False, None),
        (250, True, "4.2.2"),
    ]


def test_transcript_html() -> None:
    pair = Pair()
    pair.command(Ehlo(domain="client.example"))
    pair.command(MailFrom(reverse_path="alice@example.org"))
    pair.command(
        RcptTo(forward_path="bob@example.net"),
        Reply(code=550, lines="<bob@example.net>: no such user", enhanced="5.1.1"),
    )
    page = pair.transcript._repr_html_()
    assert "sansio-smtp-transcript" in page
    assert 'class="sansio-smtp-line sansio-smtp-s sansio-smtp-reply sansio-smtp-5xx"' in page
    assert "&lt;bob@example.net&gt;: no such user" in page
    assert "RCPT TO:&lt;bob@example.net&gt;" in page
    assert html.escape(enhanced_title("5.1.1"), quote=True) in page
    assert "server read RcptTo(" in page  # the events each side read
    assert "server read" not in transcript_html(pair.transcript, events=False)


def test_transcript_entries_types() -> None:
    pair = Pair()
    pair.command(Ehlo(domain="client.example"))
    kinds = {type(e) for e in pair.transcript.entries}
    assert kinds == {TranscriptLine, TranscriptEvent}
    [ehlo] = [e for e in pair.transcript.events(sent=True) if e.recorded_by is CLIENT]
    assert str(ehlo) == "client sent Ehlo(domain='client.example')"
    assert str(pair.transcript.events(sent=False)[0]).startswith("client read Greeting(")
    assert "recorded by client+server" in repr(pair.transcript)


def test_connection_without_transcript_behaves_the_same() -> None:
    recorded = Pair()
    plain = Pair(client=False, server=False)
    assert plain.client._transcript is None
    wires = []
    for pair in (recorded, plain):
        out = [pair.client.send(Ehlo(domain="client.example"))]
        pair.to_server(out[0])
        out.append(pair.server.send(pair.server.default_reply(Ehlo(domain="client.example"))))
        pair.to_client(out[1])
        out.append(b"".join(pair.client.send_with_data_passthrough(Noop())))
        wires.append(out)
    assert wires[0] == wires[1]
    assert len(plain.transcript) == 0 and len(recorded.transcript) > 0


def test_passthrough_buffer_is_still_the_callers_object() -> None:
    pair = Pair()
    pair.command(Ehlo(domain="client.example"))
    pair.command(MailFrom(reverse_path="a@example.org"))
    pair.command(RcptTo(forward_path="b@example.net"))
    content = b"plain line\r\n"
    pair.to_server(pair.client.send(Bdat(size=len(content))))
    [chunk] = pair.client.send_with_data_passthrough(MessageData(data=content))
    assert chunk is content


# ---------------------------------------------------------------------------- explain


def test_explanation_html() -> None:
    page = explanation_html(explain("550 4.2.2 <x@y>: Mailbox full"))
    assert "sansio-smtp-explanation sansio-smtp-5xx" in page
    assert "Mailbox full" in page and "&lt;x@y&gt;" in page
    assert "&#9888;" in page  # the class mismatch warning
    bare = explanation_html(explain("4.7.1"))
    assert CLASS_COLOURS[4] in bare


# ---------------------------------------------------------------------- state diagram


def _svg(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def test_state_diagram_draws_the_table() -> None:
    svg = state_diagram_svg()
    root = _svg(svg)
    ns = "{http://www.w3.org/2000/svg}"
    nodes = {g.get("data-state") for g in root.iter(f"{ns}g") if g.get("data-state")}
    assert nodes == {s.value for s in TRANSITIONS}
    edges = {
        g.get("class", "").split()[-1]
        for g in root.iter(f"{ns}g")
        if "sansio-smtp-edge" in g.get("class", "")
    }
    notes = " ".join(
        t.text or "" for t in root.iter(f"{ns}text") if t.get("class") == "sansio-smtp-note"
    )
    for src, row in TRANSITIONS.items():
        for dst in set(row.values()) - {src}:
            assert f"edge-{src.value}-{dst.value}" in edges or (
                src.value in notes and dst.value in notes
            ), (src, dst)
    assert "edge-READY-MAIL" in edges and "edge-RCPT-DATA" in edges
    assert "QUIT from" in notes


def test_state_diagram_follows_the_table_it_is_given() -> None:
    table: dict[State, dict[type[Event], State]] = {
        State.READY: {Noop: State.CLOSED},
        State.CLOSED: {},
    }
    svg = state_diagram_svg(transitions=table)
    assert "edge-READY-CLOSED" in svg and ">NOOP</text>" in svg
    assert "edge-READY-MAIL" not in svg and 'data-state="MAIL"' not in svg


def test_state_diagram_highlights() -> None:
    svg = state_diagram_svg({State.RCPT: "client", State.DATA: "server"})
    root = _svg(svg)
    ns = "{http://www.w3.org/2000/svg}"
    current = {
        g.get("data-state")
        for g in root.iter(f"{ns}g")
        if "sansio-smtp-current" in g.get("class", "")
    }
    assert current == {"RCPT", "DATA"}
    assert ">client</text>" in svg and ">server</text>" in svg
    assert "sansio-smtp-current" not in state_diagram_svg()


def test_state_diagram_escapes_tags() -> None:
    svg = state_diagram_svg({State.READY: "<b>&"})
    assert "&lt;b&gt;&amp;" in svg
    _svg(svg)


# ------------------------------------------------------------------------- no IPython


def test_the_package_never_imports_ipython_or_ipywidgets() -> None:
    code = """
import sys
from sansio_smtp import *
from sansio_smtp._repr import state_diagram_svg
t = Transcript()
c = Connection(CLIENT, transcript=t)
s = Connection(SERVER, transcript=t)
c.receive_data(s.send(Greeting(lines="x")))
c.next_event()
for obj in (c, Reply(code=250, lines="OK"), t):
    obj._repr_html_()
state_diagram_svg()
bad = [m for m in ("IPython", "ipywidgets", "ipykernel") if m in sys.modules]
assert not bad, bad
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
