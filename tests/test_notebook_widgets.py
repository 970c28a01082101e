"""The notebook views, headless: MemoryPair, the text parsers, and the three widget
builders driven by setting widget values and clicking buttons from code. Also: the
package imports without ipywidgets, and sansio_smtp.notebook names the extra when it is
missing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sansio_smtp import (
    CLIENT,
    PAUSED,
    SERVER,
    Auth,
    AuthResponse,
    Bdat,
    Config,
    Connection,
    Data,
    Ehlo,
    EndOfMessage,
    Expn,
    Greeting,
    Helo,
    Help,
    InvalidMessage,
    Lhlo,
    LmtpDelivery,
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

# ------------------------------------------------------------- without ipywidgets


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_missing_ipywidgets_names_the_extra() -> None:
    result = _run(
        "import sys; sys.modules['ipywidgets'] = None\n"
        "try:\n"
        "    import sansio_smtp.notebook\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    raise SystemExit('imported without ipywidgets')\n"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pip install 'sansio_smtp[notebook]'" in result.stdout


def test_core_does_not_need_ipywidgets() -> None:
    result = _run(
        "import sys; sys.modules['ipywidgets'] = None\n"
        "import sansio_smtp, sansio_smtp.codes, sansio_smtp._repr, sansio_smtp._transcript\n"
        "print('ok')\n"
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


# Everything below needs ipywidgets (the [notebook] extra).
pytest.importorskip("ipywidgets")

from sansio_smtp.notebook import (  # noqa: E402
    DEFAULT_CONFIG,
    ConversationExplorer,
    MemoryPair,
    ReplyCodeExplorer,
    StateMachineView,
    conversation_explorer,
    explain,
    parse_command,
    parse_reply,
    reply_code_explorer,
    reply_text,
    search_codes,
    state_diagram,
    state_machine_view,
)

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

# ---------------------------------------------------------------------- MemoryPair


def test_pair_runs_a_transaction() -> None:
    pair = MemoryPair(Config(hostname="mx.example.net"))
    assert pair.states == (State.CONNECTED, State.CONNECTED)
    assert pair.owed is None and pair.default_reply() is None
    assert pair.exchange(Ehlo(domain="c.example")).code == 250
    assert pair.exchange(MailFrom(reverse_path="a@example.org")).code == 250
    refused = Reply(code=550, lines="No such user", enhanced="5.1.1")
    assert pair.exchange(RcptTo(forward_path="x@example.net"), refused) == refused
    assert pair.exchange(RcptTo(forward_path="b@example.net")).code == 250
    final = pair.send_message(b"Subject: x\r\n\r\n.dot\r\n")
    assert final.code == 250 and pair.states == (State.READY, State.READY)
    content = b"".join(bytes(e.data) for e in pair.server_events if isinstance(e, MessageData))
    assert content == b"Subject: x\r\n\r\n.dot\r\n"
    assert "C: ..dot" in str(pair.transcript)
    with pytest.raises(RuntimeError):
        pair.reply()
    pair.exchange(Quit())
    assert pair.states == (State.CLOSED, State.CLOSED)
    assert "sansio-smtp-transcript" in pair._repr_html_()
    assert repr(pair) == "<MemoryPair client=CLOSED server=CLOSED>"


def test_pair_without_greeting_and_custom_greeting() -> None:
    pair = MemoryPair(greet=False)
    assert pair.states == (State.GREETING, State.GREETING)
    pair.greet(Greeting(code=554, lines="go away"))
    assert pair.states == (State.REJECTED, State.REJECTED)


def test_pair_pipelining_answers_in_order() -> None:
    pair = MemoryPair(Config(extensions={"PIPELINING": ()}))
    pair.exchange(Ehlo(domain="c.example"))
    read = pair.send(MailFrom(reverse_path="a@example.org"))
    assert read == [MailFrom(reverse_path="a@example.org")]
    assert pair.send(RcptTo(forward_path="b@example.net")) == []  # server PAUSED
    assert pair.send(Data()) == []
    assert isinstance(pair.owed, MailFrom)
    pair.reply()
    assert isinstance(pair.owed, RcptTo)
    pair.reply()
    assert isinstance(pair.owed, Data)
    assert pair.reply().code == 354


def test_pair_owes_the_invalid_message_hint() -> None:
    # the client does not know the limit (no SIZE advertised): the server finds out
    pair = MemoryPair(server_config=Config(max_message_size=10))
    pair.exchange(Ehlo(domain="c.example"))
    pair.exchange(MailFrom(reverse_path="a@example.org"))
    pair.exchange(RcptTo(forward_path="b@example.net"))
    pair.exchange(Data())
    pair.send(MessageData(data=b"x" * 100 + b"\r\n"))
    pair.send(EndOfMessage())
    assert isinstance(pair.owed, InvalidMessage)
    assert pair.reply().code == 552


def test_pair_lmtp_owes_one_reply_per_recipient() -> None:
    pair = MemoryPair(Config(lmtp=True))
    pair.exchange(Lhlo(domain="c.example"))
    pair.exchange(MailFrom(reverse_path="a@example.org"))
    for name in ("b", "c"):
        pair.exchange(RcptTo(forward_path=f"{name}@example.net"))
    pair.exchange(Data())
    pair.send(MessageData(data=b"hi\r\n"))
    pair.send(EndOfMessage())
    assert isinstance(pair.owed, EndOfMessage)
    pair.reply()
    assert isinstance(pair.owed, LmtpDelivery)
    full = Reply(code=452, lines="Mailbox full", enhanced="4.2.2")
    assert pair.reply(full) == full
    last = pair.client.last_answered
    assert isinstance(last, RcptTo) and str(last.forward_path) == "c@example.net"
    assert pair.owed is None


def test_pair_bdat_and_tls() -> None:
    pair = MemoryPair(Config(extensions={"CHUNKING": (), "STARTTLS": ()}))
    pair.exchange(Ehlo(domain="c.example"))
    pair.exchange(MailFrom(reverse_path="a@example.org"))
    pair.exchange(RcptTo(forward_path="b@example.net"))
    pair.send(Bdat(size=4))
    pair.send(MessageData(data=b"abcd"))
    assert isinstance(pair.owed, Bdat)
    assert pair.reply().code == 250
    pair.send(Bdat(size=0, last=True))
    assert pair.reply().code == 250
    pair.exchange(StartTLS())
    assert pair.states == (State.TLS, State.TLS)
    pair.tls_handshake()
    assert pair.states == (State.CONNECTED, State.CONNECTED)
    assert pair.client.tls_active and pair.server.tls_active
    assert "*: TLS handshake (simulated)" in str(pair.transcript)


def test_pair_owed_stays_right_when_the_server_is_driven_directly() -> None:
    pair = MemoryPair(Config(extensions={"CHUNKING": ()}))
    pair.exchange(Ehlo(domain="c.example"))
    pair.exchange(MailFrom(reverse_path="a@example.org"))
    pair.exchange(RcptTo(forward_path="b@example.net"))
    pair.server.receive_data(pair.client.send(Bdat(size=4)))
    assert pair.server.next_event() == Bdat(size=4)
    assert pair.owed is None  # the chunk's octets are still to come
    pair.server.receive_data(pair.client.send(MessageData(data=b"abcd")))
    assert isinstance(pair.server.next_event(), MessageData)
    assert pair.server.next_event() is PAUSED  # the chunk is complete: a reply is owed
    assert pair.owed == Bdat(size=4)
    assert pair.reply().code == 250


def test_pair_close() -> None:
    pair = MemoryPair()
    pair.close()
    assert pair.states == (State.CLOSED, State.CLOSED)


# ------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("line", "event"),
    [
        ("ehlo client.example", Ehlo(domain="client.example")),
        ("HELO x", Helo(domain="x")),
        ("LHLO x", Lhlo(domain="x")),
        ("MAIL FROM:<a@example.org>", MailFrom(reverse_path="a@example.org")),
        (
            "mail from: <> SIZE=10 body=8BITMIME",
            MailFrom(reverse_path=None, params={"SIZE": "10", "BODY": "8BITMIME"}),
        ),
        (
            "RCPT TO:<b@example.net> NOTIFY=NEVER",
            RcptTo(forward_path="b@example.net", params={"NOTIFY": "NEVER"}),
        ),
        ("RCPT TO:<Postmaster>", RcptTo(forward_path="Postmaster")),
        ("DATA", Data()),
        ("rset", Rset()),
        ("QUIT", Quit()),
        ("STARTTLS", StartTLS()),
        ("NOOP", Noop()),
        ("NOOP hello", Noop(text="hello")),
        ("HELP", Help()),
        ("HELP MAIL", Help(topic="MAIL")),
        ("VRFY bob", Vrfy(text="bob")),
        ("EXPN staff", Expn(text="staff")),
        ("BDAT 10", Bdat(size=10)),
        ("BDAT 0 LAST", Bdat(size=0, last=True)),
        ("AUTH PLAIN", Auth(mechanism="PLAIN")),
        ("AUTH PLAIN =", Auth(mechanism="PLAIN", initial_response=b"")),
        ("AUTH plain AGEAYg==", Auth(mechanism="PLAIN", initial_response=b"\x00a\x00b")),
    ],
)
def test_parse_command(line: str, event: object) -> None:
    assert parse_command(line) == event


@pytest.mark.parametrize(
    "line",
    [
        "",
        "FOO bar",
        "EHLO",
        "DATA now",
        "MAIL <a@b>",
        "MAIL FROM:<a@b",
        "VRFY",
        "BDAT x",
        "BDAT 1 FIRST",
        "AUTH",
        "AUTH PLAIN !!!",
    ],
)
def test_parse_command_refuses(line: str) -> None:
    with pytest.raises(ValueError):
        parse_command(line)


def test_parse_reply_and_back() -> None:
    reply = parse_reply("550 5.1.1 No such user")
    assert reply == Reply(code=550, lines="No such user", enhanced="5.1.1")
    multi = parse_reply("250-mx.example.net\n250-PIPELINING\n250 SIZE 100")
    assert multi == Reply(code=250, lines=("mx.example.net", "PIPELINING", "SIZE 100"))
    for r in (reply, multi, Reply(code=354, lines="go ahead")):
        assert parse_reply(reply_text(r)) == r
    assert reply_text(multi) == "250-mx.example.net\n250-PIPELINING\n250 SIZE 100"
    enhanced_each_line = parse_reply("550-5.7.1 Blocked\n550 5.7.1 see https://x")
    assert enhanced_each_line.lines == ("Blocked", "see https://x")
    for bad in ("", "OK", "25 x", "250 fine\nnot a line"):
        with pytest.raises(ValueError):
            parse_reply(bad)
    with pytest.raises(ValueError):
        parse_reply("650 bad class")


# ----------------------------------------------------------- conversation explorer


def _send(ex: ConversationExplorer, line: str) -> None:
    ex.command.value = line
    ex.send_button.click()


def test_explorer_starts_greeted() -> None:
    ex = conversation_explorer()
    assert ex.pair.states == (State.CONNECTED, State.CONNECTED)
    assert ex.reply_button.disabled and ex.reply.value == ""
    assert ">S:</span> " in ex.log.value and ">220</span>" in ex.log.value
    assert ex.status.value.count("sansio-smtp-connection") == 2
    assert "client+server" in ex.diagram.value
    assert ex.pair.server.config == DEFAULT_CONFIG
    bundle = ex._repr_mimebundle_()
    assert isinstance(bundle, dict) and WIDGET_VIEW in bundle


def test_explorer_template_fills_the_command() -> None:
    ex = conversation_explorer()
    ex.template.value = "MAIL FROM:<alice@example.org>"
    assert ex.command.value == "MAIL FROM:<alice@example.org>"


def test_explorer_command_and_default_reply() -> None:
    ex = conversation_explorer()
    _send(ex, "EHLO client.example")
    assert "the server read: Ehlo(domain=&#x27;client.example&#x27;)" in ex.message.value
    assert not ex.reply_button.disabled
    assert ex.reply.value == reply_text(ex.pair.server.ehlo_reply())
    assert "the server owes a reply to" in ex.owed.value
    assert ">C:</span> EHLO client.example" in ex.log.value
    ex.reply_button.click()
    assert ex.pair.states == (State.READY, State.READY)
    assert ex.reply_button.disabled
    assert "S: 250 STARTTLS" in str(ex.pair.transcript).splitlines()  # AUTH: only after TLS
    assert 'data-state="READY"' in ex.status.value


def test_explorer_edited_reply_refuses_a_recipient() -> None:
    ex = conversation_explorer()
    for line in ("EHLO client.example", "MAIL FROM:<a@example.org>"):
        _send(ex, line)
        ex.reply_button.click()
    _send(ex, "RCPT TO:<nobody@example.net>")
    ex.reply.value = "550 5.1.1 No such user here"
    ex.reply_button.click()
    assert ex.pair.client_events[-1] == Reply(code=550, lines="No such user here", enhanced="5.1.1")
    assert ex.pair.states == (State.MAIL, State.MAIL)
    assert "sansio-smtp-5xx" in ex.log.value
    assert "Bad destination mailbox address" in ex.log.value  # explained on hover


def test_explorer_shows_client_refusals_and_bad_input() -> None:
    ex = conversation_explorer()
    _send(ex, "DATA")
    assert "LocalProtocolError" in ex.message.value
    assert ex.pair.states == (State.CONNECTED, State.CONNECTED)
    _send(ex, "FROBNICATE")
    assert "ValueError" in ex.message.value and "unknown command" in ex.message.value
    _send(ex, "EHLO client.example")
    ex.reply.value = "not a reply"
    ex.reply_button.click()
    assert "ValueError" in ex.message.value
    ex.reply.value = "354 go on"
    ex.reply_button.click()
    assert "LocalProtocolError" in ex.message.value  # 354 cannot answer EHLO
    assert ex.pair.owed == Ehlo(domain="client.example")


def test_explorer_full_session_with_tls_auth_and_content() -> None:
    ex = conversation_explorer()
    assert ex.tls_button.disabled
    _send(ex, "EHLO client.example")
    ex.reply_button.click()
    assert "AUTH" not in ex.pair.client.extensions  # not offered before TLS
    _send(ex, "STARTTLS")
    ex.reply_button.click()
    assert ex.pair.states == (State.TLS, State.TLS)
    assert not ex.tls_button.disabled and ex.send_button.disabled
    ex.tls_button.click()
    assert ex.pair.client.tls_active and "TLS handshake" in ex.log.value
    ex.auto_reply.value = True
    _send(ex, "EHLO client.example")
    assert "AUTH" in ex.pair.client.extensions
    # AUTH LOGIN by hand: a challenge, then responses typed as base64
    ex.auto_reply.value = False
    _send(ex, "AUTH LOGIN")
    ex.reply.value = "334 VXNlcm5hbWU6"
    ex.reply_button.click()
    assert ex.pair.client.state is State.AUTH
    _send(ex, "YWxpY2U=")  # "alice"
    assert isinstance(ex.pair.server_events[-1], AuthResponse)
    ex.reply.value = "235 2.7.0 Authentication successful"
    ex.reply_button.click()
    assert ex.pair.client.authenticated
    assert "YWxpY2U=" not in ex.log.value and "&lt;redacted&gt;" in ex.log.value
    ex.auto_reply.value = True
    for line in ("MAIL FROM:<alice@example.org>", "RCPT TO:<bob@example.net>", "DATA"):
        _send(ex, line)
    assert ex.pair.states == (State.DATA, State.DATA)
    assert not ex.content_button.disabled and not ex.end_button.disabled
    ex.content.value = "Subject: hi\n\n.dot\n"
    ex.content_button.click()
    ex.end_button.click()
    assert ex.pair.states == (State.READY, State.READY)
    content = b"".join(bytes(e.data) for e in ex.pair.server_events if isinstance(e, MessageData))
    assert content == b"Subject: hi\r\n\r\n.dot\r\n"
    assert "..dot" in ex.log.value
    _send(ex, "QUIT")
    assert ex.pair.states == (State.CLOSED, State.CLOSED)
    assert ex.send_button.disabled
    ex.reset_button.click()
    assert ex.pair.states == (State.CONNECTED, State.CONNECTED)
    assert ">C:</span>" not in ex.log.value


def test_explorer_bdat_size_mismatch_is_shown() -> None:
    ex = conversation_explorer()
    ex.auto_reply.value = True
    for line in ("EHLO c.example", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.net>"):
        _send(ex, line)
    _send(ex, "BDAT 5 LAST")
    assert ex.end_button.disabled and not ex.content_button.disabled
    ex.content.value = "far too long"
    ex.content_button.click()
    assert "LocalProtocolError" in ex.message.value and "BDAT" in ex.message.value
    ex.content.value = "12345"
    ex.content_button.click()
    assert ex.pair.states == (State.READY, State.READY)
    final = ex.pair.client_events[-1]
    assert isinstance(final, Reply) and final.code == 250


def test_explorer_with_its_own_config() -> None:
    ex = conversation_explorer(Config(hostname="lmtp.example", lmtp=True))
    _send(ex, "LHLO c.example")
    assert ex.reply.value == "250 lmtp.example"


# ---------------------------------------------------------------- reply codes


def test_search_codes() -> None:
    everything = search_codes()
    assert len(everything.replies) >= 40 and len(everything.enhanced) >= 80
    found = search_codes("mailbox", reply_class=5)
    assert {i.code for i in found.replies} >= {550, 553}
    assert all(i.code // 100 == 5 for i in found.replies)
    assert ("5.1.1", found.enhanced[0][1]) in found.enhanced or any(
        code == "5.1.1" for code, _ in found.enhanced
    )
    assert search_codes(reply_class=3).enhanced == ()  # RFC 3463: no class 3
    addressing = search_codes(subject=1)
    assert all(code.startswith("X.1.") for code, _ in addressing.enhanced)
    assert 550 in {i.code for i in addressing.replies}  # linked through X.1.1
    assert 354 not in {i.code for i in addressing.replies}
    assert search_codes("no such thing anywhere") == search_codes("NO SUCH THING ANYWHERE")
    assert search_codes("no such thing anywhere").replies == ()


def test_reply_code_explorer_filters() -> None:
    ex = reply_code_explorer()
    assert isinstance(ex, ReplyCodeExplorer)
    total = len(ex.matches.replies)
    ex.search.value = "storage"
    ex.reply_class.value = "4"
    assert [i.code for i in ex.matches.replies] == [452]
    assert "452 reply codes" not in ex.results.value
    assert ">452</span>" in ex.results.value and "sansio-smtp-code-row" in ex.results.value
    ex.search.value = ""
    ex.reply_class.value = ""
    assert len(ex.matches.replies) == total
    ex.subject.value = "7"
    assert all(code.startswith("X.7.") for code, _ in ex.matches.enhanced)
    assert "X.7.8" in ex.results.value


def test_reply_code_explorer_explains_pasted_lines() -> None:
    ex = reply_code_explorer(paste="550 5.1.1 <bob@example.net>: User unknown")
    assert "sansio-smtp-explanation" in ex.explanation.value
    assert "Bad destination mailbox address" in ex.explanation.value
    assert "&lt;bob@example.net&gt;" in ex.explanation.value
    ex.paste.value = "not a reply"
    assert "sansio-smtp-error" in ex.explanation.value
    ex.paste.value = "  "
    assert ex.explanation.value == ""
    assert WIDGET_VIEW in ex._repr_mimebundle_()  # type: ignore[operator]


def test_explain_displays() -> None:
    shown = explain("452 4.2.2 Mailbox full")
    assert "Mailbox full" in str(shown)
    assert "sansio-smtp-4xx" in shown._repr_html_()
    assert "452" in repr(shown)


# -------------------------------------------------------------- state machine view


def test_state_machine_view_without_connection() -> None:
    view = state_machine_view()
    assert isinstance(view, StateMachineView)
    assert view.highlights == {}
    assert 'data-state="READY"' in view.row.value
    assert "MailFrom" in view.row.value and "&rarr; MAIL" in view.row.value
    assert ">selected</text>" in view.diagram.value
    view.state.value = "DATA"
    assert "EndOfMessage" in view.row.value and "MessageData" in view.row.value
    view.state.value = "CLOSED"
    assert "no command is in sequence here" in view.row.value


def test_state_machine_view_follows_a_connection() -> None:
    server = Connection(SERVER)
    view = state_machine_view(server)
    assert view.highlights == {State.GREETING: "server"}
    assert view.state.value == "GREETING"
    server.send(Greeting(lines="mx.example.net"))
    assert view.highlights == {State.GREETING: "server"}  # not refreshed yet
    view.refresh_button.click()
    assert view.highlights == {State.CONNECTED: "server"}
    assert view.state.value == "CONNECTED"
    current = [part for part in view.diagram.value.split("<g ") if "sansio-smtp-current" in part]
    assert len(current) == 1 and 'data-state="CONNECTED"' in current[0]


def test_state_machine_view_of_a_pair() -> None:
    pair = MemoryPair(Config(extensions={"PIPELINING": ()}))
    view = state_machine_view(pair)
    assert view.highlights == {State.CONNECTED: "client+server"}
    pair.exchange(Ehlo(domain="c.example"))
    pair.send(MailFrom(reverse_path="a@example.org"))
    pair.reply()
    view.attach(pair)
    assert view.highlights == {State.MAIL: "client+server"}
    client = Connection(CLIENT)
    view.attach(client)
    assert view.highlights == {State.GREETING: "client"}
    view.attach(None)
    assert view.highlights == {}


def test_state_diagram_value() -> None:
    diagram = state_diagram({State.READY: "here"})
    assert diagram._repr_html_().startswith("<svg") and ">here</text>" in diagram.svg
