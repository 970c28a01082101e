"""The outbound queue (SQLite): durable, leased, one transaction per state change."""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sansio_smtp.delivery import Queue, RecipientState, SQLiteQueue
from sansio_smtp.delivery._pgqueue import PostgresQueue

from .pgserver import postgres_server

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Queue]:
    """Each Queue implementation, fresh: a file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        q: Queue = SQLiteQueue(tmp_path / "queue.sqlite")
    else:
        url = request.getfixturevalue("postgres_url")
        q = PostgresQueue(_fresh_database(url))
    yield q
    q.close()


def _fresh_database(url: str) -> str:
    import psycopg

    name = f"q_{secrets.token_hex(6)}"
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + f"/{name}"


def test_enqueue_and_read_back(queue: Queue) -> None:
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


def test_claims_are_leases(queue: Queue) -> None:
    # one message is attempted by one worker at a time; a dead worker's lease expires
    mid = queue.enqueue(None, ["c@d.example"], b"x", now=0.0)
    assert [m.id for m in queue.claim(now=10.0, owner="w1", lease=60.0)] == [mid]
    assert queue.claim(now=20.0, owner="w2", lease=60.0) == []
    assert [m.id for m in queue.claim(now=71.0, owner="w2", lease=60.0)] == [mid]
    queue.release(mid, "w1")  # not w1's any more: no effect
    assert queue.claim(now=72.0, owner="w3", lease=60.0) == []
    queue.release(mid, "w2")
    assert [m.id for m in queue.claim(now=72.0, owner="w3", lease=60.0)] == [mid]


def test_due_recipients_and_flush(queue: Queue) -> None:
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


def test_remove(queue: Queue) -> None:
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


def test_two_workers_share_a_postgres_queue(postgres_url: str, tmp_path: Path) -> None:
    # issue 14: several workers on one PostgreSQL queue; FOR UPDATE SKIP LOCKED and the
    # leases give each message to one of them: every recipient delivered exactly once
    from sansio_smtp import Config
    from sansio_smtp.adapters import MemoryHandler, SyncServer

    from .dnsserver import dns_server

    pytest.importorskip("dns.asyncresolver")
    url = _fresh_database(postgres_url)

    class Slow(MemoryHandler):  # so that the second worker starts before the work is done
        def data(self, session: object, envelope: object) -> None:
            time.sleep(0.1)
            return super().data(session, envelope)  # type: ignore[arg-type]

    handler = Slow()
    server = SyncServer(handler, host="127.0.0.1", port=0, config=Config(hostname="mx.a.test"))
    server.start()
    zone = {"a.test": [("MX", (10, "mx.a.test"))], "mx.a.test": [("A", "127.0.0.1")]}
    expected = [f"user{i}@a.test" for i in range(40)]
    with PostgresQueue(url) as queue:
        for i, rcpt in enumerate(expected):
            queue.enqueue("s@s.test", [rcpt], b"Subject: %d\r\n\r\nx\r\n" % i, now=0.0)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        with dns_server(zone) as (ns_host, ns_port):
            argv = [sys.executable, "-m", "sansio_smtp", "queue", "run", "--queue", url]
            argv += ["--dns-server", f"{ns_host}:{ns_port}", "--port", str(server.port)]
            workers = [
                subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)
            ]
            outputs = [w.communicate(timeout=120)[0] for w in workers]
    finally:
        server.shutdown(timeout=2)
    delivered = sorted(str(r) for m in handler.messages for r in m.rcpt_tos)
    assert delivered == sorted(expected)  # each exactly once
    lines = [line for out in outputs for line in out.splitlines()]
    assert len(lines) == len(expected) and all(": delivered: 250" in line for line in lines)
    assert all(outputs), "one worker did all the work"
    with PostgresQueue(url) as queue:
        assert queue.messages() == []
