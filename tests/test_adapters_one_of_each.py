"""The adapters ask the core and use its types (issue 12 items 5, 6 and 8): one Transcript
for the clients' transcript and the servers' traffic log, one AUTH redaction, the core's
LIMITS reading, and ``Phase`` members for write phases."""

from __future__ import annotations

import ast
import inspect
import logging
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sansio_smtp
from sansio_smtp import Config, Greeting, RcptTo, Reply, Transcript, TranscriptLine
from sansio_smtp._state import LmtpDelivery, Phase
from sansio_smtp.adapters import (
    MemoryHandler,
    SMTPClient,
    SyncServer,
    TLSMode,
    _io,
)
from sansio_smtp.adapters.client import TranscriptEntry
from sansio_smtp.adapters.server._traffic import TrafficLog

ADAPTERS = Path(sansio_smtp.__file__).parent / "adapters"


def test_write_phase_is_a_phase() -> None:
    # issue 12 item 8: types, not strings; the runtimes use Write.phase as it is
    assert _io.Write([b"x"]).phase is Phase.COMMAND
    assert _io.Write([b"x"], Phase.DATA_BLOCK).phase is Phase.DATA_BLOCK
    hints = inspect.signature(_io.Write.__init__).parameters["phase"].annotation
    assert hints == "Phase"
    for path in (ADAPTERS / "client").glob("*.py"):
        assert "Phase(op.phase)" not in path.read_text(encoding="utf-8"), path.name


def test_adapters_import_errors_from_their_home() -> None:
    # issue 12 item 8 / STYLE.md "Layers": the errors live in _errors; _util re-exports none
    for path in ADAPTERS.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("_util"):
                assert not any(a.name.endswith("Error") for a in node.names), path
    from sansio_smtp import _util

    assert not hasattr(_util, "LocalProtocolError")


def test_lmtp_delivery_uses_the_event_renderer() -> None:
    # issue 12 item 10: like every event, LmtpDelivery gets its repr from Event, so
    # IPython's pretty printer finds the registered renderer (addresses as strings)
    pretty = pytest.importorskip("IPython.lib.pretty")
    assert "__repr__" not in LmtpDelivery.__dict__
    delivery = LmtpDelivery(recipient=RcptTo(forward_path="a@example.org"))
    assert repr(delivery).startswith("LmtpDelivery(recipient=RcptTo(")
    assert "forward_path='a@example.org'" in pretty.pretty(delivery)


# ------------------------------------------------ one Transcript, one AUTH redaction


def _literals(path: Path) -> list[str | bytes]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes))
    ]


def test_the_adapters_write_no_redaction_of_their_own() -> None:
    # issue 12 item 5: AUTH redaction lives in _redact; no adapter spells "<redacted>"
    # or picks 334 lines out of the bytes itself
    for path in ADAPTERS.rglob("*.py"):
        for value in _literals(path):
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            assert "<redacted>" not in text, path
            assert not text.startswith(("334 ", "334-")), path


MECHANISMS = {"AUTH": ("LOGIN",), "PIPELINING": (), "ENHANCEDSTATUSCODES": ()}
SECRET = "wonder land"


def _server(**options: object) -> SyncServer:
    config = Config(hostname="mx.test", extensions=MECHANISMS, allow_plaintext_auth=True)
    return SyncServer(MemoryHandler(), port=0, config=config, auth={"alice": SECRET}, **options)  # type: ignore[arg-type]


def test_client_transcript_is_the_core_transcript() -> None:
    # issue 12 items 5 and 6: the clients' transcript=True/on_transcript are a core
    # Transcript's lines; TranscriptEntry is the core's TranscriptLine
    assert TranscriptEntry is TranscriptLine
    streamed: list[TranscriptLine] = []
    with (
        _server() as srv,
        SMTPClient(
            "127.0.0.1",
            srv.port,
            tls=TLSMode.PLAIN,
            username="alice",
            password=SECRET,
            allow_plaintext_auth=True,
            transcript=True,
            on_transcript=streamed.append,
        ) as client,
    ):
        client.sendmail("a@example.org", ["b@example.net"], b"Subject: x\r\n\r\nhi\r\n")
    lines = client.transcript
    assert lines == streamed and all(type(line) is TranscriptLine for line in lines)
    text = [str(line) for line in lines]
    # RFC 4954 §4: the LOGIN exchange, challenges and responses redacted by _redact
    start = text.index("C: AUTH LOGIN")
    assert text[start + 1 : start + 5] == [
        "S: 334 <redacted>",
        "C: <redacted>",
        "S: 334 <redacted>",
        "C: <redacted>",
    ]
    assert SECRET not in "\n".join(text)
    kinds = {line.text: line.kind for line in lines}
    assert kinds["<message content, 18 octets>"] == kinds["."] == "content"
    [accepted] = [line for line in lines if line.code == 235]
    assert accepted.enhanced == "2.7.0" and accepted.last
    ehlo = [line for line in lines if line.code == 250 and line.text.startswith("250-")]
    assert ehlo and not any(line.last for line in ehlo)


def test_client_without_transcript_keeps_none() -> None:
    with _server() as srv, SMTPClient("127.0.0.1", srv.port, tls=TLSMode.PLAIN) as client:
        client.noop()
        assert client.transcript == []


def test_server_traffic_log_is_a_transcript(caplog: pytest.LogCaptureFixture) -> None:
    # issue 12 item 5: each session's Connection records into a Transcript(store=False)
    # whose lines go to the traffic log; AUTH redacted by _redact (RFC 4954 §4)
    import smtplib

    with (
        caplog.at_level(logging.DEBUG, logger="sansio_smtp.traffic"),
        _server(traffic_log=True) as srv,
    ):
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as smtp:
            smtp.ehlo("c.example")
            smtp.login("alice", SECRET)
            smtp.sendmail("a@example.org", ["b@example.net"], b"Subject: x\r\n\r\nhi\r\n")
        time.sleep(0.2)
    messages = [r.getMessage() for r in caplog.records if r.name == "sansio_smtp.traffic"]
    ids = {m.split(" ", 1)[0] for m in messages}
    assert len(ids) == 1  # one session, every line prefixed by its id
    lines = [m.split(" ", 1)[1] for m in messages]
    # smtplib sends LOGIN's user name as an initial response, the password after a 334
    start = lines.index("C: AUTH LOGIN <redacted>")
    assert lines[start + 1 : start + 3] == ["S: 334 <redacted>", "C: <redacted>"]
    assert lines[start + 3].startswith("S: 235 ")
    assert "C: mail FROM:<a@example.org> size=18" in lines
    assert "C: Subject: x" in lines and "C: ." in lines
    assert SECRET not in caplog.text


def test_traffic_log_transcript_keeps_nothing() -> None:
    logger = logging.getLogger("test_adapters_one_of_each")
    t = TrafficLog(logger).transcript("S1")
    assert isinstance(t, Transcript)
    t.note("x")
    assert len(t) == 0


def test_transcript_add_reply_writes_wire_lines() -> None:
    # RFC 5321 §4.2.1: code "-" text for all but the last line; RFC 2034 §3: the enhanced
    # code before each text; RFC 4954 §4: a 334 challenge's text redacted
    t = Transcript()
    t.add_reply(Reply(code=250, lines=("mx.test", "PIPELINING"), enhanced="2.0.0"))
    t.add_reply(Greeting(lines="mx.test ESMTP"))
    t.add_reply(Reply(code=334, lines="VXNlcm5hbWU6"))
    t.add_reply(Reply(code=334, lines=""))
    assert str(t).splitlines() == [
        "S: 250-2.0.0 mx.test",
        "S: 250 2.0.0 PIPELINING",
        "S: 220 mx.test ESMTP",
        "S: 334 <redacted>",
        "S: 334 <redacted>",
    ]
    first, second = t.lines()[:2]
    assert (first.code, first.enhanced, first.last) == (250, "2.0.0", False)
    assert (second.kind, second.last) == ("reply", True)


# ------------------------------------------- the adapters decide nothing the core does

LIMITS_WORDS = st.lists(
    st.one_of(
        st.sampled_from(["RCPTMAX=2", "rcptmax=10", "RCPTMAX=0", "RCPTMAX=x", "MAILMAX=3"]),
        st.from_regex(r"\A[A-Za-z]{1,8}=[0-9]{0,3}\Z"),
    ),
    max_size=4,
)


@given(LIMITS_WORDS)
def test_the_client_splits_by_the_cores_rcptmax(words: list[str]) -> None:
    # issue 12 item 6 (RFC 9422 §4.2): the engine's RCPTMAX is the core's reading of
    # LIMITS, the one the rules refuse a RCPT over
    from sansio_smtp._extensions import Extensions
    from sansio_smtp._rules import advertised_limit
    from sansio_smtp.adapters.client import _engine, _prepare

    assert not hasattr(_engine, "rcpt_limit")
    assert not hasattr(_prepare, "rcpt_limit")
    ext = Extensions.from_ehlo_lines(["LIMITS " + " ".join(words)] if words else [])
    caps = _prepare._Capabilities(ext, use_chunking=True)
    assert caps.rcptmax == advertised_limit(ext, "RCPTMAX")


@pytest.mark.parametrize(
    ("params", "binary"),
    [
        ({"BODY": "BINARYMIME"}, True),
        ({"BODY": "binarymime"}, True),
        ({"BODY": "8BITMIME"}, False),
        ({"BODY": "7BIT"}, False),
        ({"BODY": "NONSENSE"}, False),
        ({"BODY": None}, False),
        ({}, False),
    ],
)
def test_the_stores_read_body_by_the_core(
    params: dict[str, str | None], binary: bool, tmp_path: Path
) -> None:
    # RFC 3030 §3: an mbox cannot keep BINARYMIME content; BODY is read by the core's
    # parameter grammar (sansio_smtp.params.Body), not by the store
    from sansio_smtp import MailFrom, Params
    from sansio_smtp.adapters import MboxHandler
    from sansio_smtp.adapters.server import _stores
    from sansio_smtp.adapters.server._handler import Session

    assert _stores._binary_body(Params(params)) is binary
    handler = MboxHandler(tmp_path / "mbox")
    reply = handler.mail(Session(), MailFrom(reverse_path="a@example.org", params=params))
    assert (reply is not None and reply.code == 555) is binary
