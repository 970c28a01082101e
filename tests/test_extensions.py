"""ESMTP extensions in the core, both roles: PIPELINING, SIZE, 8BITMIME, SMTPUTF8,
ENHANCEDSTATUSCODES, STARTTLS, CHUNKING/BDAT, LMTP, LIMITS, timeouts."""

from __future__ import annotations

import pytest

from sansio_smtp import (
    CLIENT,
    NEED_DATA,
    PAUSED,
    SERVER,
    Bdat,
    Config,
    Connection,
    Data,
    Ehlo,
    EndOfMessage,
    Greeting,
    InvalidCommand,
    InvalidMessage,
    Lhlo,
    LocalProtocolError,
    MailFrom,
    MessageData,
    Noop,
    Quit,
    RcptTo,
    RemoteProtocolError,
    Reply,
    Rset,
    StartTLS,
    State,
)
from sansio_smtp._events import Event

from .helpers import ConnectionPair, drain

ALL = {
    "PIPELINING": (),
    "8BITMIME": (),
    "SMTPUTF8": (),
    "CHUNKING": (),
    "BINARYMIME": (),
    "ENHANCEDSTATUSCODES": (),
    "DSN": (),
    "STARTTLS": (),
}


def pair(extensions: dict[str, tuple[str, ...]] | None = None, **config: object) -> ConnectionPair:
    server_config = Config(extensions=ALL if extensions is None else extensions, **config)  # type: ignore[arg-type]
    client_config = Config(lmtp=bool(config.get("lmtp", False)))
    p = ConnectionPair(client_config, server_config, greeting=Greeting(lines="mx"))
    hello: Event = Lhlo(domain="c") if config.get("lmtp") else Ehlo(domain="c")
    assert p.exchange(hello).code == 250  # type: ignore[attr-defined]
    return p


def server_answers_all(p: ConnectionPair) -> list[Reply]:
    """The server answers every pending command with its default reply."""
    replies: list[Reply] = []
    while True:
        event = p.server.next_event()
        if event is NEED_DATA:
            return replies
        if event is PAUSED:
            if not p.server.pending:
                return replies
            replies_read = p.server_sends(p.server.default_reply(p.server.pending[0]))
            replies.extend(r for r in replies_read if isinstance(r, Reply))
            continue
        assert isinstance(event, Event)
        if isinstance(event, (InvalidCommand, InvalidMessage)):
            replies_read = p.server_sends(p.server.default_reply(event))
            replies.extend(r for r in replies_read if isinstance(r, Reply))


# ----------------------------------------------------------------------- PIPELINING


def test_pipelined_and_lockstep_dialogues_agree() -> None:
    # RFC 2920 §3.1: the same commands give the same replies pipelined or not
    def run(pipelined: bool) -> list[tuple[int, str]]:
        p = pair()
        cmds: list[Event] = [
            MailFrom(reverse_path="a@b.example"),
            RcptTo(forward_path="c@d.example"),
            RcptTo(forward_path="e@d.example"),
            Data(),
        ]
        out = []
        if pipelined:
            wire = b"".join(p.client.send(c) for c in cmds)
            p.server.receive_data(wire)
            for _ in cmds:
                ev = p.server.next_event()
                assert isinstance(ev, Event)
                reply = p.server.default_reply(ev)
                p.client.receive_data(p.server.send(reply))
            for _ in cmds:
                r = p.client.next_event()
                assert isinstance(r, Reply)
                out.append((r.code, type(p.client.last_answered).__name__))
        else:
            for c in cmds:
                r = p.exchange(c)
                assert isinstance(r, Reply)
                out.append((r.code, type(p.client.last_answered).__name__))
        assert p.client.state is p.server.state is State.DATA
        return out

    assert run(True) == run(False)


def test_server_answers_pipelined_commands_in_order() -> None:
    # RFC 2920 §3.2: the server answers each command in turn and loses none
    p = pair()
    p.server.receive_data(
        b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nRCPT TO:<x@d.example>\r\nNOOP\r\n"
    )
    seen = []
    while (ev := p.server.next_event()) not in (NEED_DATA, PAUSED):
        seen.append(type(ev).__name__)
        assert p.server.next_event() is PAUSED
        p.server.send(p.server.default_reply(ev))  # type: ignore[arg-type]
    assert seen == ["MailFrom", "RcptTo", "RcptTo", "Noop"]
    assert not p.server.improper_pipelining


def test_improper_pipelining_is_detected_and_optionally_refused() -> None:
    # RFC 2920 §3.1 / Postfix smtpd_forbid_unauth_pipelining
    for reject in (False, True):
        p = pair(extensions={}, reject_improper_pipelining=reject)
        p.server.receive_data(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n")
        first = p.server.next_event()
        assert p.server.improper_pipelining
        if reject:
            assert isinstance(first, InvalidCommand) and first.reply_hint.code == 554
        else:
            assert isinstance(first, MailFrom)


def test_data_pipelined_before_354_is_improper() -> None:
    # RFC 2920 §3.1: DATA ends a group; the client must wait for 354
    p = pair(reject_improper_pipelining=True)
    p.exchange(MailFrom(reverse_path="a@b.example"))
    p.exchange(RcptTo(forward_path="c@d.example"))
    p.server.receive_data(b"DATA\r\nSubject: early\r\n\r\n.\r\n")
    ev = p.server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code == 554


def test_early_talker() -> None:
    server = Connection(SERVER, Config(reject_improper_pipelining=True))
    server.receive_data(b"EHLO too.early\r\n")
    server.send(Greeting())
    assert server.improper_pipelining
    ev = server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code == 554


def test_client_pipeline_mail_failure() -> None:
    # RFC 2920 §3.1: MAIL fails, the RCPTs and DATA that followed get 503/554
    p = pair()
    for c in (MailFrom(reverse_path="a@b.example"), RcptTo(forward_path="c@d.example"), Data()):
        p.server.receive_data(p.client.send(c))
    ev = p.server.next_event()
    p.client.receive_data(p.server.send(Reply(code=550, lines="no", enhanced="5.7.1")))
    codes = []
    while (ev := p.server.next_event()) not in (NEED_DATA, PAUSED):
        assert isinstance(ev, InvalidCommand)
        p.client.receive_data(p.server.send(ev.reply_hint))
    while (r := p.client.next_event()) is not NEED_DATA:
        codes.append(r.code)  # type: ignore[union-attr]
    assert codes == [550, 503, 503]
    assert p.client.state is p.server.state is State.READY


# ----------------------------------------------------------------------------- SIZE


def test_size_advertised_from_config() -> None:
    # RFC 1870 §4: SIZE [number]
    p = pair(extensions={"SIZE": ()}, max_message_size=1000)
    assert p.client.extensions["SIZE"] == ("1000",)
    assert p.client.size_limit == 1000


def test_size_declared_over_limit_gets_552() -> None:
    # RFC 1870 §6.1: 552 5.3.4 when the declared size exceeds the fixed maximum
    p = pair(extensions={"SIZE": ("1000",)})
    p.server.receive_data(b"MAIL FROM:<a@b.example> SIZE=2000\r\n")
    ev = p.server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code == 552
    assert str(ev.reply_hint.enhanced) == "5.3.4"


def test_client_refuses_size_over_limit() -> None:
    p = pair(extensions={"SIZE": ("1000",)})
    with pytest.raises(LocalProtocolError):
        p.client.send(MailFrom(reverse_path="a@b.example", params={"SIZE": "2000"}))
    p.exchange(MailFrom(reverse_path="a@b.example", params={"SIZE": "900"}))
    p.exchange(RcptTo(forward_path="c@d.example"))
    p.exchange(Data())
    with pytest.raises(LocalProtocolError):
        p.client.send(MessageData(data=b"x" * 1001))


def test_size_enforced_on_received_data() -> None:
    # RFC 1870 §6.3: the server enforces its limit on the data actually received
    p = pair(extensions={"SIZE": ("100",)})
    p.exchange(MailFrom(reverse_path="a@b.example"))
    p.exchange(RcptTo(forward_path="c@d.example"))
    p.exchange(Data())
    p.server.receive_data(b"y" * 200 + b"\r\n.\r\n")
    events = drain(p.server)
    assert isinstance(events[-1], InvalidMessage) and events[-1].reply_hint.code == 552


# ------------------------------------------------------------------ 8BITMIME, UTF8


def test_8bit_content_needs_8bitmime() -> None:
    # RFC 6152 §3: 8-bit content only with BODY=8BITMIME
    p = pair()
    p.exchange(MailFrom(reverse_path="a@b.example"))
    p.exchange(RcptTo(forward_path="c@d.example"))
    p.exchange(Data())
    with pytest.raises(LocalProtocolError):
        p.client.send(MessageData(data="grüße\r\n".encode()))
    p.client.send(MessageData(data=b"plain\r\n"))


def test_8bit_content_with_body_8bitmime() -> None:
    p = pair()
    p.exchange(MailFrom(reverse_path="a@b.example", params={"BODY": "8BITMIME"}))
    p.exchange(RcptTo(forward_path="c@d.example"))
    p.exchange(Data())
    got = p.client_sends(MessageData(data="grüße\r\n".encode()))
    got += p.client_sends(EndOfMessage())
    assert got[0] == MessageData(data="grüße\r\n".encode())


def test_opt_in_8bit_without_8bitmime() -> None:
    p = ConnectionPair(
        Config(allow_8bit_without_8bitmime=True), Config(), greeting=Greeting(lines="mx")
    )
    for c in (
        Ehlo(domain="c"),
        MailFrom(reverse_path="a@b.example"),
        RcptTo(forward_path="c@d.example"),
        Data(),
    ):
        p.exchange(c)
    p.client.send(MessageData(data=b"\xe9\r\n"))


def test_body_value_validated() -> None:
    # RFC 6152 §3: BODY=7BIT / 8BITMIME
    p = pair()
    p.server.receive_data(b"MAIL FROM:<a@b.example> BODY=9BIT\r\n")
    ev = p.server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code == 501


# -------------------------------------------------------------- ENHANCEDSTATUSCODES


def test_enhanced_codes_synthesised() -> None:
    # RFC 2034 §3: every reply but greeting and EHLO/HELO carries an enhanced code
    p = pair()
    p.client_sends(Noop())
    (reply,) = p.server_sends(Reply(code=250, lines="OK"))
    assert isinstance(reply, Reply) and str(reply.enhanced) == "2.0.0"
    p.client_sends(Ehlo(domain="c"))
    (reply,) = p.server_sends(p.server.ehlo_reply())
    assert isinstance(reply, Reply) and reply.enhanced is None


def test_no_enhanced_codes_unless_advertised() -> None:
    p = pair(extensions={})
    p.client_sends(Noop())
    (reply,) = p.server_sends(Reply(code=250, lines="OK"))
    assert isinstance(reply, Reply) and reply.enhanced is None


# ---------------------------------------------------------------------------- STARTTLS


def starttls_pair() -> ConnectionPair:
    p = pair()
    (ev,) = p.client_sends(StartTLS())
    assert ev == StartTLS()
    (reply,) = p.server_sends(p.server.default_reply(ev))
    assert isinstance(reply, Reply) and reply.code == 220
    assert p.client.state is p.server.state is State.TLS
    return p


def test_starttls_pause_and_restart() -> None:
    # RFC 3207 §4.2: after TLS both sides forget the EHLO knowledge; EHLO again
    p = starttls_pair()
    assert p.client.next_event() is PAUSED and p.server.next_event() is PAUSED
    with pytest.raises(LocalProtocolError):
        p.client.send(Noop())
    p.client.tls_established()
    p.server.tls_established()
    assert p.client.state is p.server.state is State.CONNECTED
    assert len(p.client.extensions) == 0 and p.client.tls_active
    with pytest.raises(LocalProtocolError):
        p.client.send(MailFrom(reverse_path="a@b.example"))
    p.exchange(Ehlo(domain="c"))
    assert "STARTTLS" not in p.client.extensions  # not offered twice
    with pytest.raises(LocalProtocolError):
        p.client.send(StartTLS())


def test_server_plaintext_after_starttls_is_an_error() -> None:
    # CVE-2011-0411, aiosmtpd CVE-2024-34083: commands injected after STARTTLS
    p = pair()
    p.server.receive_data(b"STARTTLS\r\nRSET\r\n")
    ev = p.server.next_event()
    p.server.send(p.server.default_reply(ev))  # type: ignore[arg-type]
    with pytest.raises(RemoteProtocolError):
        p.server.next_event()


def test_server_plaintext_fragment_after_starttls() -> None:
    p = pair()
    p.server.receive_data(b"STARTTLS\r\nMAIL FR")  # no CRLF
    ev = p.server.next_event()
    p.server.send(p.server.default_reply(ev))  # type: ignore[arg-type]
    with pytest.raises(RemoteProtocolError):
        p.server.tls_established()
    assert p.server.state is State.ERROR


@pytest.mark.parametrize("injected", [b"250 fake\r\n", b"250-fa", b"x"])
def test_client_plaintext_after_220_is_an_error(injected: bytes) -> None:
    # aiosmtplib GHSA-vxj7-4xrp-5vr4; nodemailer: a fragment without CRLF too
    p = pair()
    p.client.send(StartTLS())
    p.client.receive_data(b"220 2.0.0 go ahead\r\n" + injected)
    assert isinstance(p.client.next_event(), Reply)
    with pytest.raises(RemoteProtocolError):
        p.client.next_event()
    p2 = pair()
    p2.client.send(StartTLS())
    p2.client.receive_data(b"220 2.0.0 go ahead\r\n")
    p2.client.next_event()
    p2.client.receive_data(injected)
    with pytest.raises(RemoteProtocolError):
        p2.client.tls_established()


def test_starttls_refused_keeps_plaintext_session() -> None:
    p = pair()
    p.client_sends(StartTLS())
    (_reply,) = p.server_sends(Reply(code=454, lines="TLS not available", enhanced="4.7.0"))
    assert p.client.state is p.server.state is State.READY


def test_starttls_not_advertised() -> None:
    p = pair(extensions={})
    with pytest.raises(LocalProtocolError):
        p.client.send(StartTLS())
    p.server.receive_data(b"STARTTLS\r\n")
    ev = p.server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code == 502


def test_require_tls_policy() -> None:
    # RFC 3207 §4: 530 5.7.0 Must issue a STARTTLS command first
    p = pair(require_tls=True)
    p.server.receive_data(b"MAIL FROM:<a@b.example>\r\n")
    ev = p.server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code == 530


# --------------------------------------------------------------------- CHUNKING / BDAT


def bdat_pair(**config: object) -> ConnectionPair:
    p = pair(**config)
    p.exchange(MailFrom(reverse_path="a@b.example"))
    p.exchange(RcptTo(forward_path="c@d.example"))
    return p


def test_bdat_chunks_round_trip_exactly() -> None:
    # RFC 3030 §2: chunk octets are sent as they are: no dot-stuffing, no line limits
    p = bdat_pair()
    body = b".leading dot\r\nbare\nlf\r\n.\r\n" + b"z" * 3000
    got: list[Event] = []
    got += p.client_sends(Bdat(size=10))
    got += p.client_sends(MessageData(data=body[:10]))
    (reply,) = p.server_sends(p.server.default_reply(got[0]))
    assert isinstance(reply, Reply) and reply.code == 250
    rest = body[10:]
    got2 = p.client_sends(Bdat(size=len(rest), last=True)) + p.client_sends(MessageData(data=rest))
    assert got2[-1] == EndOfMessage()
    content = b"".join(bytes(e.data) for e in got + got2 if isinstance(e, MessageData))
    assert content == body
    (reply,) = p.server_sends(p.server.default_reply(got2[0]))
    assert p.client.state is p.server.state is State.READY


def test_bdat_zero_last() -> None:
    # RFC 3030 §2: BDAT 0 LAST ends the message
    p = bdat_pair()
    got = p.client_sends(Bdat(size=0, last=True))
    assert got == [Bdat(size=0, last=True), EndOfMessage()]


def test_bdat_refused_still_consumes_chunk() -> None:
    # RFC 3030 §2: the server must consume the announced octets even when refusing
    p = pair()
    p.server.receive_data(b"BDAT 13\r\nRCPT TO:<x>\r\nNOOP\r\n")
    ev = p.server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code == 503
    p.server.send(ev.reply_hint)
    assert p.server.next_event() == Noop()


def test_bdat_failure_ends_transaction() -> None:
    # RFC 3030 §2: after a failed chunk no more BDAT; the client must RSET
    p = bdat_pair()
    p.client_sends(Bdat(size=3))
    p.client_sends(MessageData(data=b"abc"))
    p.server_sends(Reply(code=452, lines="no room", enhanced="4.3.1"))
    assert p.client.state is p.server.state is State.READY
    with pytest.raises(LocalProtocolError):
        p.client.send(Bdat(size=1, last=True))


def test_bdat_line_limits_restored_after_transaction() -> None:
    # Command line limits apply again after BDAT (a known go-smtp bug)
    p = bdat_pair()
    p.client_sends(Bdat(size=2000, last=True))
    p.client_sends(MessageData(data=b"q" * 2000))
    p.server_sends(Reply(code=250, lines="ok"))
    p.server.receive_data(b"NOOP " + b"x" * 600 + b"\r\n")
    ev = p.server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code == 500


def test_data_after_bdat_is_refused() -> None:
    # RFC 3030 §2: DATA and BDAT cannot be mixed in a transaction
    p = bdat_pair()
    p.client_sends(Bdat(size=1))
    p.client_sends(MessageData(data=b"a"))
    p.server_sends(Reply(code=250, lines="ok"))
    with pytest.raises(LocalProtocolError):
        p.client.send(Data())
    p.server.receive_data(b"DATA\r\n")
    ev = p.server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code == 503


def test_binarymime_needs_bdat() -> None:
    # RFC 3030 §3: BINARYMIME content only with BDAT
    p = pair()
    p.exchange(MailFrom(reverse_path="a@b.example", params={"BODY": "BINARYMIME"}))
    p.exchange(RcptTo(forward_path="c@d.example"))
    with pytest.raises(LocalProtocolError):
        p.client.send(Data())
    p.server.receive_data(b"DATA\r\n")
    ev = p.server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code == 503


def test_bdat_size_limit() -> None:
    # RFC 1870 §6.3 with RFC 3030 §2: the limit holds for chunks; 552 after the chunk
    p = bdat_pair(max_message_size=10)
    p.server.receive_data(b"BDAT 20 LAST\r\n" + b"x" * 20)
    events = drain(p.server)
    assert isinstance(events[0], Bdat) and isinstance(events[-1], InvalidMessage)
    assert events[-1].reply_hint.code == 552


def test_bdat_not_advertised() -> None:
    p = pair(extensions={})
    p.exchange(MailFrom(reverse_path="a@b.example"))
    p.exchange(RcptTo(forward_path="c@d.example"))
    with pytest.raises(LocalProtocolError):
        p.client.send(Bdat(size=1, last=True))
    p.server.receive_data(b"BDAT 1 LAST\r\nxNOOP\r\n")
    ev = p.server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code == 502


# ------------------------------------------------------------------------------- LMTP


def test_lmtp_one_reply_per_recipient() -> None:
    # RFC 2033 §4.2: after the message, one reply per accepted recipient, in order
    p = pair(extensions={"PIPELINING": (), "ENHANCEDSTATUSCODES": ()}, lmtp=True)
    p.exchange(MailFrom(reverse_path="a@b.example"))
    p.exchange(RcptTo(forward_path="one@d.example"))
    p.client_sends(RcptTo(forward_path="bad@d.example"))
    p.server_sends(Reply(code=550, lines="no such user", enhanced="5.1.1"))
    p.exchange(RcptTo(forward_path="two@d.example"))
    p.exchange(Data())
    p.client_sends(MessageData(data=b"hi\r\n"))
    p.client_sends(EndOfMessage())
    assert len(p.server.pending) == 1
    p.server_sends(Reply(code=250, lines="delivered"))
    assert len(p.server.pending) == 1  # one more reply owed
    assert p.client.last_answered == RcptTo(forward_path="one@d.example")
    p.server_sends(Reply(code=452, lines="mailbox full", enhanced="4.2.2"))
    assert p.client.last_answered == RcptTo(forward_path="two@d.example")
    assert p.server.pending == () and p.client.pending == ()
    assert p.client.state is p.server.state is State.READY


def test_lmtp_uses_lhlo() -> None:
    # RFC 2033 §4.1
    server = Connection(SERVER, Config(lmtp=True))
    server.send(Greeting())
    server.receive_data(b"EHLO c\r\n")
    ev = server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code == 500
    client = Connection(CLIENT, Config(lmtp=True))
    client.receive_data(b"220 hi\r\n")
    client.next_event()
    with pytest.raises(LocalProtocolError):
        client.send(Ehlo(domain="c"))
    assert client.send(Lhlo(domain="c")) == b"LHLO c\r\n"


# ---------------------------------------------------------------------------- LIMITS


def test_limits_rcptmax_and_mailmax_honoured_by_client() -> None:
    # RFC 9422 §4.1, §4.2
    p = pair(extensions={"LIMITS": ("RCPTMAX=2", "MAILMAX=1")})
    p.exchange(MailFrom(reverse_path="a@b.example"))
    p.exchange(RcptTo(forward_path="1@d.example"))
    p.exchange(RcptTo(forward_path="2@d.example"))
    with pytest.raises(LocalProtocolError):
        p.client.send(RcptTo(forward_path="3@d.example"))
    p.exchange(Rset())
    with pytest.raises(LocalProtocolError):
        p.client.send(MailFrom(reverse_path="a@b.example"))


# -------------------------------------------------------------------------- timeouts


def test_timeouts_follow_rfc_5321() -> None:
    # RFC 5321 §4.5.3.2
    client = Connection(CLIENT, Config())
    assert client.timeout is not None and client.timeout.seconds == 300  # initial 220
    p = pair()
    assert p.client.timeout is None
    p.client.send(MailFrom(reverse_path="a@b.example"))
    assert p.client.timeout is not None and p.client.timeout.phase == "MAIL"
    p = pair()
    p.exchange(MailFrom(reverse_path="a@b.example"))
    p.exchange(RcptTo(forward_path="c@d.example"))
    p.client.send(Data())
    assert p.client.timeout is not None and p.client.timeout.seconds == 120
    p = pair()
    p.exchange(MailFrom(reverse_path="a@b.example"))
    p.exchange(RcptTo(forward_path="c@d.example"))
    p.exchange(Data())
    assert p.client.timeout is not None and p.client.timeout.seconds == 180  # data block
    p.client_sends(EndOfMessage())
    assert p.client.timeout is not None and p.client.timeout.seconds == 600
    assert p.server.timeout is None  # the server owes the reply
    p.server_sends(Reply(code=250, lines="ok"))
    assert p.server.timeout is not None and p.server.timeout.seconds == 300


def test_quit_is_the_end() -> None:
    p = pair()
    p.exchange(Quit())
    assert p.client.state is p.server.state is State.CLOSED


# -------------------------------------------------------------------------------- DSN


def test_dsn_parameters_typed_and_written_back_exactly() -> None:
    # RFC 3461 §4.1-4.4: RET, ENVID (xtext), NOTIFY, ORCPT (addr-type ";" xtext)
    from sansio_smtp._mailparams import (
        Notify,
        OriginalRecipient,
        Ret,
        dsn_mail_params,
        dsn_rcpt_params,
    )

    p = pair()
    mail = MailFrom(
        reverse_path="a@b.example", params=dsn_mail_params(ret=Ret.HDRS, envid="QQ 314+159")
    )
    (got,) = p.client_sends(mail)
    assert got == mail and isinstance(got, MailFrom)
    assert got.ret is Ret.HDRS and got.envid == "QQ 314+159"
    assert p.wire[-1][1] == b"MAIL FROM:<a@b.example> RET=HDRS ENVID=QQ+20314+2B159\r\n"
    p.server_sends(p.server.default_reply(got))
    rcpt = RcptTo(
        forward_path="c@d.example",
        params=dsn_rcpt_params(
            notify={Notify.DELAY, Notify.FAILURE},
            orcpt=OriginalRecipient("rfc822", "c@d.example"),
        ),
    )
    (got,) = p.client_sends(rcpt)
    assert isinstance(got, RcptTo) and got == rcpt
    assert got.notify == {Notify.FAILURE, Notify.DELAY}
    assert got.orcpt == OriginalRecipient("rfc822", "c@d.example")
    assert p.wire[-1][1] == (
        b"RCPT TO:<c@d.example> NOTIFY=FAILURE,DELAY ORCPT=rfc822;c@d.example\r\n"
    )


def test_dsn_parameters_validated() -> None:
    p = pair()
    p.server.receive_data(b"MAIL FROM:<a@b.example> RET=MAYBE\r\n")
    ev = p.server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code == 501
    p.server.send(ev.reply_hint)
    with pytest.raises(LocalProtocolError):
        p.client.send(MailFrom(reverse_path="a@b.example", params={"RET": "MAYBE"}))
    p.exchange(MailFrom(reverse_path="a@b.example"))
    p.server.receive_data(b"RCPT TO:<c@d.example> NOTIFY=NEVER,SUCCESS\r\n")
    ev = p.server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code == 501


def test_requiretls_only_over_tls() -> None:
    # RFC 8689 §4.1: REQUIRETLS only on a TLS session; not advertised before TLS
    p = pair(extensions={"REQUIRETLS": ()})
    assert "REQUIRETLS" not in p.client.extensions
    p.server.receive_data(b"MAIL FROM:<a@b.example> REQUIRETLS\r\n")
    ev = p.server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code in (530, 555)


def test_mt_priority_and_deliverby_parsed() -> None:
    # RFC 6710 §3 (MT-PRIORITY -9..9), RFC 2852 §4 (BY=time;mode)
    p = pair(extensions={"MT-PRIORITY": (), "DELIVERBY": ("60",)})
    (got,) = p.client_sends(
        MailFrom(reverse_path="a@b.example", params={"MT-PRIORITY": "-3", "BY": "120;RT"})
    )
    assert isinstance(got, MailFrom) and got.mt_priority == -3
    assert got.deliver_by is not None and got.deliver_by.seconds == 120
    assert got.deliver_by.mode == "R" and got.deliver_by.trace
    p.server.send(Reply(code=250, lines="ok"))
    p.client.next_event()
    p.server.receive_data(b"RSET\r\n")
    p.server.send(p.server.default_reply(p.server.next_event()))  # type: ignore[arg-type]
    p.server.receive_data(b"MAIL FROM:<a@b.example> MT-PRIORITY=12\r\n")
    ev = p.server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.reply_hint.code == 501


# ------------------------------------------------------------------- regressions


def test_bdat_last_chunk_may_carry_8bit() -> None:
    # RFC 6152 §3 / RFC 3030 §3: the declared BODY holds until the last chunk is sent
    p = pair()
    p.exchange(MailFrom(reverse_path="a@b.example", params={"BODY": "8BITMIME"}))
    p.exchange(RcptTo(forward_path="c@d.example"))
    body = "grüße\r\n".encode()
    got = p.client_sends(Bdat(size=len(body), last=True)) + p.client_sends(MessageData(data=body))
    assert got[-1] == EndOfMessage()


def test_refused_bdat_leaves_both_sides_agreeing() -> None:
    # RFC 3030 §2: after a refused chunk the transaction is over on both sides
    p = pair(extensions={"PIPELINING": ()})  # no CHUNKING: the server core refuses BDAT
    p.exchange(MailFrom(reverse_path="a@b.example"))
    p.exchange(RcptTo(forward_path="c@d.example"))
    p.server.receive_data(b"BDAT 3 LAST\r\nabc")
    ev = p.server.next_event()
    assert isinstance(ev, InvalidCommand) and ev.command == Bdat(size=3, last=True)
    p.server.send(ev.reply_hint)
    client = Connection(CLIENT, Config())
    client.receive_data(b"220 mx\r\n")
    client.next_event()
    client.send(Ehlo(domain="c"))
    client.receive_data(b"250-mx\r\n250 CHUNKING\r\n")
    client.next_event()
    for cmd in (MailFrom(reverse_path="a@b.example"), RcptTo(forward_path="c@d.example")):
        client.send(cmd)
        client.receive_data(b"250 ok\r\n")
        client.next_event()
    client.send(Bdat(size=3, last=True))
    client.send(MessageData(data=b"abc"))
    client.receive_data(b"502 5.5.1 BDAT not available\r\n")
    client.next_event()
    assert client.state is p.server.state is State.READY


def test_transparency_dot_does_not_count_towards_line_limit() -> None:
    # RFC 5321 §4.5.3.1.6: the 1000 octets do not count the leading dot doubled for
    # transparency
    p = pair()
    p.exchange(MailFrom(reverse_path="a@b.example"))
    p.exchange(RcptTo(forward_path="c@d.example"))
    p.exchange(Data())
    line = b"." + b"x" * 997 + b"\r\n"
    got = p.client_sends(MessageData(data=line)) + p.client_sends(EndOfMessage())
    assert got[-1] == EndOfMessage()
    assert b"".join(bytes(e.data) for e in got if isinstance(e, MessageData)) == line


def test_354_after_all_recipients_refused() -> None:
    # RFC 2920 §3.1: a server may answer 354 even after refusing every recipient; the
    # client then ends the (empty) content with a lone "."
    p = pair()
    for cmd in (MailFrom(reverse_path="a@b.example"), RcptTo(forward_path="c@d.example"), Data()):
        p.client.send(cmd)
    p.client.receive_data(b"250 ok\r\n550 no such user\r\n354 go ahead\r\n")
    drain(p.client)
    assert p.client.state is State.DATA
    assert p.client.send(EndOfMessage()) == b".\r\n"
