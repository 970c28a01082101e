"""send_mail drives a message's one transaction itself (no LIMITS RCPTMAX split), without
the layer of ClientEngine._send_prepared, which holds the general path (the split) and
serves send_many's messages. For any server replies the two give the same bytes, the same
transaction record and the same SendResult."""

from __future__ import annotations

import pytest

from sansio_smtp.adapters._io import READ, Steps, Write
from sansio_smtp.adapters.client import SendResult, TLSMode
from sansio_smtp.adapters.client._engine import ClientEngine
from sansio_smtp.adapters.client._errors import SMTPError
from sansio_smtp.adapters.client._options import ClientOptions
from sansio_smtp.adapters.client._transactions import send_result

SENDER = "a@example.org"
RECIPIENTS = ["b@example.org", "c@example.org"]
CONTENT = b"Subject: x\r\n\r\nhello\r\n.dot\r\n"
OK = b"250 ok\r\n"
NO_RCPT = b"550 no such user\r\n"

# The replies to MAIL, RCPT, RCPT, DATA, "." in order (fewer when the transaction ends
# early): every reply in turn, answered one read at a time.
SCRIPTS = {
    "accepted": [OK, OK, OK, b"354 go\r\n", b"250 queued\r\n"],
    "one recipient refused": [OK, NO_RCPT, OK, b"354 go\r\n", b"250 queued\r\n"],
    "every recipient refused": [OK, NO_RCPT, NO_RCPT, b"554 no valid recipients\r\n"],
    "sender refused": [b"553 sender refused\r\n"] + [b"503 no MAIL\r\n"] * 3,
    "content refused": [OK, OK, OK, b"354 go\r\n", b"554 rejected\r\n"],
    "DATA refused": [OK, OK, OK, b"451 try later\r\n"],
    "421 after MAIL": [OK, b"421 closing\r\n"],
}


def _opened(pipelining: bool) -> ClientEngine:
    engine = ClientEngine(ClientOptions(host="mx.example.org", port=25, tls=TLSMode.PLAIN))
    ehlo = b"250-mx.example.org\r\n" + (b"250 PIPELINING\r\n" if pipelining else b"250 HELP\r\n")
    replies = [b"220 mx.example.org\r\n", ehlo]
    _drive(engine, engine.open(), replies, [])
    return engine


def _drive(
    engine: ClientEngine, steps: Steps[object], replies: list[bytes], out: list[bytes]
) -> object:
    """Run ``steps``, answering each READ with the next reply (or the end of the
    connection when none is left); the octets written go to ``out``."""
    try:
        op = next(steps)
        while True:
            if op is READ:
                engine.conn.receive_data(replies.pop(0) if replies else b"")
            elif type(op) is Write:
                out.append(b"".join(bytes(c) for c in op.chunks))
            op = steps.send(None)
    except StopIteration as stop:
        return stop.value


def _direct(pipelining: bool, script: list[bytes]) -> tuple[list[bytes], SendResult | None, str]:
    engine = _opened(pipelining)
    out: list[bytes] = []
    try:
        result = _drive(engine, engine.send_mail(SENDER, RECIPIENTS, CONTENT), list(script), out)
    except SMTPError as exc:
        return out, getattr(exc, "result", None), type(exc).__name__
    assert isinstance(result, SendResult)
    return out, result, ""


def _general(pipelining: bool, script: list[bytes]) -> tuple[list[bytes], SendResult | None]:
    engine = _opened(pipelining)
    out: list[bytes] = []
    mail, rcpts, data, bdat, _ = engine.prepare(
        SENDER, RECIPIENTS, CONTENT, None, None, admit=False, checked=True
    )
    keys = list(RECIPIENTS)
    try:
        txs = _drive(
            engine, engine._send_prepared(keys, mail, rcpts, data, bdat), list(script), out
        )
    except SMTPError:
        return out, None
    assert isinstance(txs, list) and len(txs) == 1
    return out, send_result(SENDER, keys, txs)


@pytest.mark.parametrize("pipelining", [False, True])
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_send_mail_direct_path_matches_the_general_path(pipelining: bool, name: str) -> None:
    script = SCRIPTS[name]
    written, result, raised = _direct(pipelining, script)
    general_written, general_result = _general(pipelining, script)
    assert written == general_written
    if general_result is None:  # the general path raised: so did send_mail, with no result
        assert raised and result is None
        return
    assert result == general_result
    assert (raised == "") is general_result.ok


@pytest.mark.parametrize("pipelining", [False, True])
def test_the_next_message_after_a_refusal_is_the_same_on_both_paths(pipelining: bool) -> None:
    # the refusal leaves an RSET due (RFC 5321 §4.1.1.5): both paths send it the same way
    refused = SCRIPTS["every recipient refused"]
    accepted = [OK, *SCRIPTS["accepted"]]  # the RSET's reply first
    direct = _opened(pipelining)
    out: list[bytes] = []
    with pytest.raises(SMTPError):
        _drive(direct, direct.send_mail(SENDER, RECIPIENTS, CONTENT), list(refused), out)
    result = _drive(direct, direct.send_mail(SENDER, RECIPIENTS, CONTENT), list(accepted), out)
    general = _opened(pipelining)
    general_out: list[bytes] = []
    keys = list(RECIPIENTS)
    results = []
    for script in (refused, accepted):
        replies = list(script)
        _drive(general, general.settle(), replies, general_out)  # as send_mail does first
        mail, rcpts, data, bdat, _ = general.prepare(
            SENDER, RECIPIENTS, CONTENT, None, None, admit=general._reset_due, checked=True
        )
        steps = general._send_prepared(keys, mail, rcpts, data, bdat)
        txs = _drive(general, steps, replies, general_out)
        assert isinstance(txs, list)
        results.append(send_result(SENDER, keys, txs))
    assert out == general_out
    assert any(w.startswith(b"RSET\r\n") for w in out)
    assert isinstance(result, SendResult) and result.ok and result == results[1]
