# The Queue on PostgreSQL (psycopg, the optional extra sansio_smtp[postgres]), for several
# delivery workers on several machines sharing one queue.
#
# Rules: each state change is one transaction; claim() finds due, unleased messages with
# SELECT ... FOR UPDATE SKIP LOCKED and leases them in the same statement, so two workers
# never claim one message and neither waits for the other's rows; a worker that dies leaves
# a lease that expires (``lease`` seconds), after which its recipients, still queued, are
# claimed by another, at once when the dead worker ran on the claiming host (as for the
# SQLite queue). The schema is created when missing.
from __future__ import annotations

import json
import secrets
import socket
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._queue import (
    QueuedMessage,
    RecipientState,
    dead_owner,
    message_from_rows,
    recipient_map,
)

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresQueue"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS smtp_messages (
    id TEXT PRIMARY KEY,
    sender TEXT,
    params JSONB NOT NULL,
    arrival DOUBLE PRECISION NOT NULL,
    content BYTEA NOT NULL,
    owner TEXT,
    lease_until DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS smtp_recipients (
    message_id TEXT NOT NULL REFERENCES smtp_messages(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    address TEXT NOT NULL,
    params JSONB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt DOUBLE PRECISION NOT NULL,
    last_reply TEXT,
    warned BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (message_id, address)
);
CREATE INDEX IF NOT EXISTS smtp_recipients_due ON smtp_recipients(state, next_attempt);
"""

_QUEUED = RecipientState.QUEUED.value


class PostgresQueue:
    """The Queue in a PostgreSQL database (``postgresql://user@host:port/dbname``)."""

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "a PostgreSQL queue needs psycopg: pip install 'sansio_smtp[postgres]'"
            ) from exc
        self.url = url
        self._lock = threading.RLock()
        self._db: psycopg.Connection[Any] = psycopg.connect(url, autocommit=True)
        with self._db.transaction():
            # one creator at a time: CREATE ... IF NOT EXISTS races between sessions
            self._db.execute("SELECT pg_advisory_xact_lock(7259)")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> PostgresQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------- writing

    def enqueue(
        self,
        sender: str | None,
        recipients: Sequence[str] | Mapping[str, Mapping[str, str]],
        content: bytes,
        *,
        now: float,
        params: Mapping[str, str] | None = None,
    ) -> str:
        rcpts = recipient_map(recipients)
        message_id = secrets.token_hex(8)
        with self._lock, self._db.transaction():
            self._db.execute(
                "INSERT INTO smtp_messages (id, sender, params, arrival, content)"
                " VALUES (%s, %s, %s, %s, %s)",
                (message_id, sender, json.dumps(dict(params or {})), now, bytes(content)),
            )
            with self._db.cursor() as cur:
                cur.executemany(
                    "INSERT INTO smtp_recipients (message_id, position, address, params, state,"
                    " next_attempt) VALUES (%s, %s, %s, %s, %s, %s)",
                    [
                        (message_id, i, a, json.dumps(dict(p)), _QUEUED, now)
                        for i, (a, p) in enumerate(rcpts.items())
                    ],
                )
        return message_id

    def claim(
        self, *, now: float, owner: str, lease: float, limit: int = 100, due_only: bool = True
    ) -> list[QueuedMessage]:
        due = now if due_only else float("inf")
        with self._lock, self._db.transaction():
            # the leases of workers known dead (this host, their process gone) end now
            held = self._db.execute(
                "SELECT DISTINCT owner FROM smtp_messages WHERE lease_until > %s"
                " AND owner LIKE %s AND owner <> %s",
                (now, f"{socket.gethostname()}:%", owner),
            ).fetchall()
            dead = [row[0] for row in held if dead_owner(row[0])]
            if dead:
                self._db.execute(
                    "UPDATE smtp_messages SET owner = NULL, lease_until = 0 WHERE owner = ANY(%s)",
                    (dead,),
                )
            rows = self._db.execute(
                "WITH due AS (SELECT m.id FROM smtp_messages m WHERE m.lease_until <= %s"
                " AND EXISTS (SELECT 1 FROM smtp_recipients r WHERE r.message_id = m.id"
                " AND r.state = %s AND r.next_attempt <= %s)"
                " ORDER BY m.arrival LIMIT %s FOR UPDATE SKIP LOCKED)"
                " UPDATE smtp_messages SET owner = %s, lease_until = %s FROM due"
                " WHERE smtp_messages.id = due.id RETURNING smtp_messages.id",
                (now, _QUEUED, due, limit, owner, now + lease),
            ).fetchall()
            return [m for m in (self._load(row[0]) for row in rows) if m is not None]

    def record(
        self,
        message_id: str,
        recipient: str,
        *,
        state: RecipientState,
        reply: str | None,
        next_attempt: float | None = None,
        warned: bool | None = None,
    ) -> None:
        with self._lock, self._db.transaction():
            changed = self._db.execute(
                "UPDATE smtp_recipients SET state = %s, last_reply = %s,"
                " attempts = attempts + 1, next_attempt = COALESCE(%s, next_attempt),"
                " warned = COALESCE(%s, warned) WHERE message_id = %s AND address = %s",
                (state.value, reply, next_attempt, warned, message_id, recipient),
            ).rowcount
            if changed != 1:
                raise KeyError(f"no recipient {recipient!r} in message {message_id!r}")

    def mark_warned(self, message_id: str, recipients: Iterable[str]) -> None:
        with self._lock, self._db.transaction(), self._db.cursor() as cur:
            cur.executemany(
                "UPDATE smtp_recipients SET warned = TRUE WHERE message_id = %s AND address = %s",
                [(message_id, r) for r in recipients],
            )

    def release(self, message_id: str, owner: str) -> None:
        with self._lock, self._db.transaction():
            self._db.execute(
                "UPDATE smtp_messages SET owner = NULL, lease_until = 0"
                " WHERE id = %s AND owner = %s",
                (message_id, owner),
            )

    def remove(self, message_id: str) -> bool:
        with self._lock, self._db.transaction():
            cur = self._db.execute("DELETE FROM smtp_messages WHERE id = %s", (message_id,))
            return cur.rowcount == 1

    def remove_finished(self) -> list[str]:
        with self._lock, self._db.transaction():
            rows = self._db.execute(
                "DELETE FROM smtp_messages m WHERE NOT EXISTS (SELECT 1 FROM smtp_recipients r"
                " WHERE r.message_id = m.id AND r.state = %s)"
                " RETURNING m.id",
                (_QUEUED,),
            ).fetchall()
            return [row[0] for row in rows]

    # ----------------------------------------------------------------------- reading

    def get(self, message_id: str) -> QueuedMessage | None:
        with self._lock:
            return self._load(message_id)

    def messages(self) -> list[QueuedMessage]:
        with self._lock:
            ids = self._db.execute("SELECT id FROM smtp_messages ORDER BY arrival").fetchall()
            return [m for m in (self._load(row[0]) for row in ids) if m is not None]

    def _load(self, message_id: str) -> QueuedMessage | None:
        row = self._db.execute(
            "SELECT sender, params, arrival, content FROM smtp_messages WHERE id = %s",
            (message_id,),
        ).fetchone()
        if row is None:
            return None
        rcpts = self._db.execute(
            "SELECT address, params, state, attempts, next_attempt, last_reply, warned"
            " FROM smtp_recipients WHERE message_id = %s ORDER BY position",
            (message_id,),
        ).fetchall()
        return message_from_rows(message_id, row, rcpts)
