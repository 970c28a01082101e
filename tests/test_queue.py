"""The outbound queue (SQLite): durable, leased, one transaction per state change."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sansio_smtp.delivery import RecipientState, SQLiteQueue

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[SQLiteQueue]:
    q = SQLiteQueue(tmp_path / "queue.sqlite")
    yield q
    q.close()


def test_enqueue_and_read_back(queue: SQLiteQueue) -> None:
    mid = queue.enqueue(
        "a@b.example",
        {"c@d.example": {"NOTIFY": "FAILURE"}, "e@f.example": {}},
        b"Subject: x\r\n\r\nbody\r\n",
        now=100.0,
        params={"BODY": "8BITMIME"},
    )
    msg = queue.get(mid)
    assert msg is not None
    assert msg.sender == "a@b.example" and msg.params == {"BODY": "8BITMIME"}
    assert [r.address for r in msg.recipients] == ["c@d.example", "e@f.example"]
    assert msg.recipients[0].params == {"NOTIFY": "FAILURE"}
    assert msg.content == b"Subject: x\r\n\r\nbody\r\n" and msg.arrival == 100.0
    assert all(r.state is RecipientState.QUEUED and r.attempts == 0 for r in msg.recipients)
    with pytest.raises(ValueError):
        queue.enqueue(None, [], b"x", now=0.0)


def test_claims_are_leases(queue: SQLiteQueue) -> None:
    # one message is attempted by one worker at a time; a dead worker's lease expires
    mid = queue.enqueue(None, ["c@d.example"], b"x", now=0.0)
    assert [m.id for m in queue.claim(now=10.0, owner="w1", lease=60.0)] == [mid]
    assert queue.claim(now=20.0, owner="w2", lease=60.0) == []
    assert [m.id for m in queue.claim(now=71.0, owner="w2", lease=60.0)] == [mid]
    queue.release(mid, "w1")  # not w1's any more: no effect
    assert queue.claim(now=72.0, owner="w3", lease=60.0) == []
    queue.release(mid, "w2")
    assert [m.id for m in queue.claim(now=72.0, owner="w3", lease=60.0)] == [mid]


def test_due_recipients_and_flush(queue: SQLiteQueue) -> None:
    mid = queue.enqueue("a@b.example", ["c@d.example", "e@f.example"], b"x", now=0.0)
    queue.record(mid, "c@d.example", state=RecipientState.DELIVERED, reply="250 ok")
    queue.record(
        mid, "e@f.example", state=RecipientState.QUEUED, reply="451 4.3.0 later", next_attempt=1800
    )
    assert queue.claim(now=100.0, owner="w", lease=1.0) == []  # nothing due
    flushed = queue.claim(now=100.0, owner="w", lease=1.0, due_only=False)  # `queue flush`
    assert [m.id for m in flushed] == [mid]
    (msg,) = flushed
    assert [r.address for r in msg.pending()] == ["e@f.example"]
    assert msg.pending(now=100.0) == ()
    assert msg.recipients[1].last_reply == "451 4.3.0 later" and msg.recipients[1].attempts == 1
    assert queue.remove_finished() == []
    queue.record(mid, "e@f.example", state=RecipientState.FAILED, reply="550 5.1.1 no")
    assert queue.remove_finished() == [mid]
    assert queue.messages() == []
    with pytest.raises(KeyError):
        queue.record(mid, "e@f.example", state=RecipientState.FAILED, reply=None)


def test_remove(queue: SQLiteQueue) -> None:
    mid = queue.enqueue(None, ["c@d.example"], b"x", now=0.0)
    assert queue.remove(mid) and not queue.remove(mid)
    assert queue.get(mid) is None


_WRITER = textwrap.dedent(
    """
    import hashlib, sys
    from sansio_smtp.delivery import RecipientState, SQLiteQueue
    q = SQLiteQueue(sys.argv[1])
    i = 0
    while True:
        content = (b"message %d\\r\\n" % i) * (1 + i % 50)
        mid = q.enqueue("a@b.example", ["r1@x.example", "r2@x.example", "r3@x.example"],
                        content, now=float(i))
        q.record(mid, "r1@x.example", state=RecipientState.DELIVERED, reply="250 ok")
        print(mid, hashlib.sha256(content).hexdigest(), flush=True)
        i += 1
    """
)


def test_nothing_accepted_is_lost_to_kill_9(tmp_path: Path) -> None:
    # RFC 5321 §6.1: once enqueue() returned (the server may say 250), a crash at any
    # point loses nothing, and leaves no half-written message
    path = tmp_path / "queue.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, env=env
    )
    assert child.stdout is not None
    reported: dict[str, str] = {}
    deadline = time.monotonic() + 60
    while len(reported) < 40 and time.monotonic() < deadline:
        line = child.stdout.readline().decode()
        if not line:
            break
        mid, digest = line.split()
        reported[mid] = digest
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert len(reported) >= 40
    with SQLiteQueue(path) as queue:
        stored = {m.id: m for m in queue.messages()}
    for mid, digest in reported.items():
        assert hashlib.sha256(stored[mid].content).hexdigest() == digest
        assert stored[mid].recipients[0].state is RecipientState.DELIVERED
    for msg in stored.values():  # including one cut short by the kill: whole or absent
        assert [r.address for r in msg.recipients] == [
            "r1@x.example",
            "r2@x.example",
            "r3@x.example",
        ]
