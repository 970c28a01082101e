"""Internationalized domains through a server without SMTPUTF8.

issue 15 "IDNA": sending to ``bob@bücher.example`` through a server that does not offer
SMTPUTF8 failed with SMTPNotSupportedError. RFC 6531 §3.2: no U-label goes to such a
server, but the domain may go in its A-label form (RFC 5890 §2.3.2.1); only a non-ASCII
local part has no ASCII form, and fails clearly, before anything is sent (as smtplib's
send_message raises SMTPNotSupportedError). Real local servers: SyncServer with and
without SMTPUTF8.
"""

from __future__ import annotations

import asyncio
import email.message
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sansio_smtp import Config, LocalProtocolError
from sansio_smtp.adapters import (
    AsyncSMTPClient,
    MemoryHandler,
    SMTPClient,
    SMTPNotSupportedError,
    SyncServer,
    TLSMode,
)
from sansio_smtp.adapters.client._message import a_label_address

ROOT = Path(__file__).resolve().parents[1]
MESSAGE = b"Subject: idna\r\n\r\nhello\r\n"
TIMEOUT = 10.0  # generous: the machine may be loaded
BUCHER = "xn--bcher-kva.example"  # "bücher.example".encode("idna")


@pytest.fixture
def plain() -> Iterator[tuple[SyncServer, MemoryHandler]]:
    """A server that does not offer SMTPUTF8 (nor 8BITMIME)."""
    handler = MemoryHandler()
    with SyncServer(handler, port=0) as server:
        yield server, handler


@pytest.fixture
def utf8() -> Iterator[tuple[SyncServer, MemoryHandler]]:
    """A server that offers SMTPUTF8 and 8BITMIME (RFC 6531 requires 8BITMIME)."""
    handler = MemoryHandler()
    config = Config(extensions={"SMTPUTF8": (), "8BITMIME": ()})
    with SyncServer(handler, port=0, config=config) as server:
        yield server, handler


def client(server: SyncServer) -> SMTPClient:
    return SMTPClient("127.0.0.1", server.port, tls=TLSMode.PLAIN, timeout=TIMEOUT, transcript=True)


def commands(c: SMTPClient) -> list[str]:
    return [e.text for e in c.transcript if e.direction == "C"]


def test_domain_goes_as_a_labels_without_smtputf8(plain: tuple[SyncServer, MemoryHandler]):
    # RFC 6531 §3.2, RFC 5890 §2.3.2.1: the example
    server, handler = plain
    with client(server) as c:
        result = c.sendmail("alice@exämple.org", ["bob@bücher.example"], MESSAGE)
        sent = commands(c)
    assert result.ok
    # the result speaks of the addresses as the caller gave them
    assert list(result.accepted) == ["bob@bücher.example"]
    assert f"MAIL FROM:<alice@xn--exmple-cua.org> SIZE={len(MESSAGE)}" in sent  # no SMTPUTF8
    assert f"RCPT TO:<bob@{BUCHER}>" in sent
    assert handler.wait_for(1)
    envelope = handler.messages[0]
    assert str(envelope.mail_from) == "alice@xn--exmple-cua.org"
    assert [str(r) for r in envelope.rcpt_tos] == [f"bob@{BUCHER}"]
    assert envelope.content == MESSAGE


def test_u_labels_go_as_given_with_smtputf8(utf8: tuple[SyncServer, MemoryHandler]) -> None:
    # RFC 6531 §3.4: where SMTPUTF8 is offered, the address goes as written, declared
    server, handler = utf8
    with client(server) as c:
        assert c.sendmail("alice@example.org", ["bob@bücher.example"], MESSAGE).ok
        sent = commands(c)
    assert any(line.startswith("MAIL FROM:<alice@example.org> SMTPUTF8") for line in sent)
    assert "RCPT TO:<bob@bücher.example>" in sent
    assert handler.wait_for(1)
    assert [str(r) for r in handler.messages[0].rcpt_tos] == ["bob@bücher.example"]


@pytest.mark.parametrize("address", ["pelé@example.com", "pelé@bücher.example"])
def test_non_ascii_local_part_fails_clearly(
    plain: tuple[SyncServer, MemoryHandler], address: str
) -> None:
    # RFC 6531 §3.2: a non-ASCII local part has no ASCII form. smtplib's send_message
    # raises SMTPNotSupportedError here too; nothing is sent and the session goes on
    server, handler = plain
    with client(server) as c:
        with pytest.raises(SMTPNotSupportedError) as info:
            c.sendmail("alice@example.org", ["ok@bücher.example", address], MESSAGE)
        text = str(info.value)
        assert repr(address) in text and "local part" in text and "SMTPUTF8" in text
        # issue 12 item 6: the refusal is still the core's (555, SMTPUTF8 not offered)
        assert isinstance(info.value.__cause__, LocalProtocolError)
        assert not [line for line in commands(c) if line.startswith(("MAIL", "RCPT"))]
        assert c.sendmail("alice@example.org", ["bob@bücher.example"], MESSAGE).ok
    assert handler.wait_for(1) and len(handler.messages) == 1


def test_non_ascii_sender_local_part_fails_clearly(plain: tuple[SyncServer, MemoryHandler]):
    server, _ = plain
    with client(server) as c, pytest.raises(SMTPNotSupportedError, match="local part"):
        c.sendmail("álice@example.org", ["bob@example.net"], MESSAGE)


def test_deviation_characters_are_not_guessed(plain: tuple[SyncServer, MemoryHandler]) -> None:
    # UTS #46 §4: IDNA 2003 maps "ß" to "ss", IDNA 2008 keeps it: "faß.de" would reach
    # fass.de or xn--fa-hia.de depending on the standard; refuse rather than pick one
    server, _ = plain
    with client(server) as c:
        with pytest.raises(SMTPNotSupportedError, match="IDNA 2003 and IDNA 2008"):
            c.sendmail("alice@example.org", ["bob@faß.de"], MESSAGE)
        assert c.noop().code == 250


def test_send_message_with_utf8_headers_needs_smtputf8(
    plain: tuple[SyncServer, MemoryHandler], utf8: tuple[SyncServer, MemoryHandler]
) -> None:
    # RFC 6531 §3.2: no RFC 6532 header section to a server without SMTPUTF8. A message
    # whose To field holds the U-label is generated with UTF-8 fields (as smtplib does),
    # so it fails as smtplib's send_message fails; with the envelope given and ASCII
    # fields it goes, the envelope as A-labels
    msg = email.message.EmailMessage()
    msg["From"] = "alice@example.org"
    msg["To"] = "bob@bücher.example"
    msg["Subject"] = "idna"
    msg.set_content("hello")
    server, handler = plain
    with client(server) as c:
        with pytest.raises(SMTPNotSupportedError, match="header section is UTF-8"):
            c.send_message(msg)
        del msg["To"]
        msg["To"] = f"bob@{BUCHER}"
        assert c.send_message(msg, to_addrs=["bob@bücher.example"]).ok
    assert handler.wait_for(1)
    assert [str(r) for r in handler.messages[0].rcpt_tos] == [f"bob@{BUCHER}"]
    server8, handler8 = utf8
    del msg["To"]
    msg["To"] = "bob@bücher.example"
    with client(server8) as c:
        assert c.send_message(msg).ok
    assert handler8.wait_for(1)
    assert "To: bob@bücher.example".encode() in handler8.messages[0].content


def test_asyncio_client_converts_too(plain: tuple[SyncServer, MemoryHandler]) -> None:
    # the engine is shared by the runtimes
    server, handler = plain

    async def main() -> None:
        async with AsyncSMTPClient(
            "127.0.0.1", server.port, tls=TLSMode.PLAIN, timeout=TIMEOUT
        ) as c:
            assert (await c.sendmail("a@example.org", ["bob@bücher.example"], MESSAGE)).ok

    asyncio.run(main())
    assert handler.wait_for(1)
    assert [str(r) for r in handler.messages[0].rcpt_tos] == [f"bob@{BUCHER}"]


def test_batch_converts(plain: tuple[SyncServer, MemoryHandler]) -> None:
    server, handler = plain
    with client(server) as c:
        results = c.sendmail_many(
            [("a@example.org", ["bob@bücher.example"], MESSAGE),
             ("a@example.org", ["eve@example.net"], MESSAGE)]
        )  # fmt: skip
    assert [r.ok for r in results] == [True, True]
    assert handler.wait_for(2)
    assert [str(r) for r in handler.messages[0].rcpt_tos] == [f"bob@{BUCHER}"]


def test_cli_sends_to_an_idn(plain: tuple[SyncServer, MemoryHandler]) -> None:
    # issue 15: `send --to bob@bücher.example` through a server without SMTPUTF8; the
    # To field it builds holds the A-label too, so the header section stays ASCII
    server, handler = plain
    environ = {k: v for k, v in os.environ.items() if k != "SANSIO_SMTP_PASSWORD"}
    proc = subprocess.run(
        [sys.executable, "-m", "sansio_smtp", "send", "--server", f"127.0.0.1:{server.port}",
         "--from", "alice@example.org", "--to", "bob@bücher.example", "--body", "hi",
         "--timeout", "10"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=environ,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "accepted bob@bücher.example: 250" in proc.stdout
    assert handler.wait_for(1)
    content = handler.messages[0].content
    assert content.isascii() and f"To: bob@{BUCHER}".encode() in content
    proc = subprocess.run(
        [sys.executable, "-m", "sansio_smtp", "send", "--server", f"127.0.0.1:{server.port}",
         "--from", "alice@example.org", "--to", "pelé@example.com", "--body", "hi",
         "--timeout", "10"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=environ,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "non-ASCII local part" in proc.stderr and "Traceback" not in proc.stderr


# ----------------------------------------------------------------- the conversion itself

LETTERS = "abcdefghijklmnopqrstuvwxyzäöüéèçñåø"


@given(
    local=st.from_regex(r"[a-z0-9][a-z0-9.+_-]{0,20}", fullmatch=True).filter(
        lambda s: ".." not in s and not s.endswith(".")
    ),
    labels=st.lists(st.text(LETTERS, min_size=1, max_size=20), min_size=1, max_size=3),
)
def test_a_label_address_round_trips(local: str, labels: list[str]) -> None:
    # RFC 5890 §2.3.2.1: the A-label decodes to the U-label; the local part is untouched
    domain = ".".join(labels) + ".example"
    converted = a_label_address(f"{local}@{domain}")
    assert converted.isascii()
    got_local, _, got_domain = converted.rpartition("@")
    assert got_local == local
    assert got_domain.encode("ascii").decode("idna") == domain


def test_a_label_address_examples() -> None:
    assert a_label_address("bob@example.net") == "bob@example.net"  # ASCII as given
    assert a_label_address("Bob@BÜCHER.example") == f"Bob@{BUCHER}"  # nameprep folds case
    assert a_label_address('"a@b"@bücher.example') == f'"a@b"@{BUCHER}'  # quoted local
    assert a_label_address("Postmaster") == "Postmaster"
    with pytest.raises(ValueError, match="invalid mailbox"):
        a_label_address("bob@@bücher.example")


def test_smtplib_expectations(plain: tuple[SyncServer, MemoryHandler]) -> None:
    # smtplib's send_message raises SMTPNotSupportedError for any non-ASCII address to a
    # server without SMTPUTF8, before MAIL; ours raises its SMTPNotSupportedError (also
    # before MAIL) only where there is no ASCII form, and sends an IDN domain as A-labels
    import smtplib

    server, handler = plain
    for address, ours_fails in (("pelé@example.com", True), ("bob@bücher.example", False)):
        msg = email.message.EmailMessage()
        msg["From"] = "alice@example.org"
        msg["Subject"] = "compare"
        msg.set_content("hello")
        with (
            smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT) as s,
            pytest.raises(smtplib.SMTPNotSupportedError),
        ):
            s.send_message(msg, to_addrs=[address])
        with client(server) as c:
            if ours_fails:
                with pytest.raises(SMTPNotSupportedError):
                    c.send_message(msg, to_addrs=[address])
            else:
                assert c.send_message(msg, to_addrs=[address]).ok
            if ours_fails:
                assert not [x for x in commands(c) if x.startswith("MAIL")]
    assert handler.wait_for(1) and len(handler.messages) == 1
    assert [str(r) for r in handler.messages[0].rcpt_tos] == [f"bob@{BUCHER}"]
