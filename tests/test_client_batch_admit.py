"""A batch asks the core to admit each distinct (sender, declared parameters) once: every
message is prepared at the same point of the session, so the answer for one holds for
the others like it. What it must not change: a message the server cannot take still
raises before anything of the batch is written, wherever it is in the batch.
"""

from __future__ import annotations

import pytest

from sansio_smtp.adapters.client import SMTPNotSupportedError

from .test_client_package import _opened, _send

SMALL = b"Subject: s\r\n\r\n" + b"x" * 30 + b"\r\n"
BIG = b"Subject: b\r\n\r\n" + b"x" * 300 + b"\r\n"


@pytest.mark.parametrize("where", [0, 1, 2, 3])
def test_too_big_anywhere_in_a_batch_raises_before_writing(where: int) -> None:
    # RFC 1870 §6.1: SIZE=n over the advertised limit; the others are alike and admitted
    engine = _opened(b"250-mx.example.org\r\n250-PIPELINING\r\n250 SIZE 200\r\n")
    batch = [("a@example.org", ["b@example.org"], SMALL)] * 3
    batch.insert(where, ("a@example.org", ["b@example.org"], BIG))
    written: list[bytes] = []
    with pytest.raises(SMTPNotSupportedError, match=r"SIZE|552|limit"):
        _send(engine, engine.send_many(batch), [], written)
    assert written == [] and engine.usable


def test_alike_messages_are_all_sent() -> None:
    engine = _opened(b"250-mx.example.org\r\n250-PIPELINING\r\n250 SIZE 200\r\n")
    first, then = b"250 ok\r\n250 ok\r\n354 go\r\n", b"250 sent\r\n250 ok\r\n250 ok\r\n354 go\r\n"
    replies = [first, then, then, b"250 sent\r\n"]
    results, written = _send(
        engine, engine.send_many([("a@example.org", ["b@example.org"], SMALL)] * 3), replies
    )
    assert [r.ok for r in results] == [True, True, True]
    assert sum(w.count(b"SIZE=") for w in written) == 3
