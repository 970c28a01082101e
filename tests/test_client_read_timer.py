"""Reply timeouts when one timer serves read after read (the asyncio client keeps the timer
set for an earlier read while it fires no later than the read awaited now).

RFC 5321 §4.5.3.2: each reply is bounded by its own phase's timeout, whatever the phase of
the reply before it: a short timeout after a long one still fires on time, and a short
one that has passed does not cut a later, longer wait short. Run for every flavour, as the
rule is the same for all.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from sansio_smtp.adapters.client import SMTPTimeoutError

from .test_reliability_client import (
    FLAVOURS,
    ScriptServer,
    attempt,
    dripping_mail_reply,
    read_line,
)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_short_timeout_after_long_ones_fires(flavour: str) -> None:
    # the greeting and EHLO replies are awaited with 30 s; the MAIL reply with 0.5 s
    with ScriptServer(dripping_mail_reply) as server:
        exc, _ = attempt(flavour, server.port, send=True, timeout=30.0, timeouts={"MAIL": 0.5})
    assert isinstance(exc, SMTPTimeoutError), exc
    assert exc.phase == "MAIL"


def _quick_greeting_slow_replies(
    sock: socket.socket, stop: threading.Event, lines: list[bytes]
) -> None:
    """Greets at once, then answers each command after 0.6 s."""
    sock.sendall(b"220 mx.test ESMTP\r\n")
    while not stop.is_set():
        line = read_line(sock, stop, lines)
        if not line:
            return
        time.sleep(0.6)
        sock.sendall(b"221 bye\r\n" if line.upper().startswith(b"QUIT") else b"250 ok\r\n")


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_passed_short_timeout_leaves_a_later_reply_alone(flavour: str) -> None:
    # the greeting (0.3 s allowed) comes at once; each later reply takes 0.6 s of the 30 s
    # allowed for it, so the greeting's time passes while the EHLO reply is awaited
    with ScriptServer(_quick_greeting_slow_replies) as server:
        exc, _ = attempt(flavour, server.port, noops=1, timeout=30.0, timeouts={"greeting": 0.3})
    assert exc is None, exc
