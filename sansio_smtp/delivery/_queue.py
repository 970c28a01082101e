# The outbound queue: messages waiting for delivery, each stored once, with each recipient's
# state (queued, delivered, failed), attempts, last reply and next attempt time. The
# default store is one SQLite file (stdlib sqlite3): WAL, synchronous=FULL, one
# transaction per state change, so a message accepted into the queue survives a crash at
# any point (RFC 5321 §6.1: once a server has said 250, it "MUST NOT lose the message").
#
# Work is claimed, not taken: claim() marks the due messages with a lease (an owner and an
# expiry) in the same transaction that finds them, so two workers never attempt one message
# at once, and a worker that dies (kill -9) leaves a lease that simply expires: its
# recipients are still queued and another worker takes them. An owner named by
# worker_owner() ("host:pid:nonce") is known dead at once when it ran on this host and its
# process is gone: its leases are taken over without waiting for them to expire. A
# recipient's outcome is recorded with its own transaction as soon as it is known.
#
# Times are seconds passed in by the caller (the queue reads no clock), so tests and
# notebooks can run a queue through five days in a second.
from __future__ import annotations

import enum
import json
import os
import secrets
import socket
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, final

import attrs

__all__ = [
    "Queue",
    "QueuedMessage",
    "QueuedRecipient",
    "RecipientState",
    "SQLiteQueue",
    "dead_owner",
    "worker_owner",
]


def worker_owner() -> str:
    """A lease owner name for this process: ``host:pid:nonce``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def dead_owner(owner: str | None) -> bool:
    """``owner`` (a worker_owner() name) ran on this host and its process is gone."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, owned by another user
        return False
    return False


class RecipientState(enum.Enum):
    QUEUED = "queued"  # waiting for its next attempt
    DELIVERED = "delivered"
    FAILED = "failed"  # given up: a bounce is (or was) due


@final
@attrs.frozen(kw_only=True)
class QueuedRecipient:
    address: str
    state: RecipientState = RecipientState.QUEUED
    attempts: int = 0
    next_attempt: float = 0.0
    last_reply: str | None = None  # "451 4.3.0 Try later", or why no reply came
    warned: bool = False  # a delay warning was sent (RFC 3464 Action: delayed)
    params: Mapping[str, str] = attrs.field(factory=dict)  # RCPT parameters: NOTIFY, ORCPT

    @property
    def final(self) -> bool:
        return self.state is not RecipientState.QUEUED


@final
@attrs.frozen(kw_only=True)
class QueuedMessage:
    """One queued message: ``sender`` is the reverse-path (None for ``<>``), ``params``
    the MAIL parameters to send it with (BODY, SMTPUTF8, RET, ENVID...)."""

    id: str
    sender: str | None
    recipients: tuple[QueuedRecipient, ...]
    arrival: float
    params: Mapping[str, str] = attrs.field(factory=dict)
    content: bytes = attrs.field(default=b"", repr=lambda c: f"<{len(c)} bytes>")

    def pending(self, now: float | None = None) -> tuple[QueuedRecipient, ...]:
        """The recipients still queued (due at ``now``, when given)."""
        return tuple(
            r
            for r in self.recipients
            if r.state is RecipientState.QUEUED and (now is None or r.next_attempt <= now)
        )


def recipient_map(
    recipients: Sequence[str] | Mapping[str, Mapping[str, str]],
) -> Mapping[str, Mapping[str, str]]:
    """Recipients as address -> RCPT parameters, each address once; ValueError for none."""
    rcpts: Mapping[str, Mapping[str, str]] = (
        recipients
        if isinstance(recipients, Mapping)
        else {r: {} for r in dict.fromkeys(recipients)}
    )
    if not rcpts:
        raise ValueError("a message needs at least one recipient")
    return rcpts


def _params(value: object) -> dict[str, str]:
    """Stored parameters (JSON text, or what a driver decoded already) as a dict."""
    loaded = json.loads(value) if isinstance(value, str | bytes) else value
    return dict(loaded) if isinstance(loaded, Mapping) else {}


def message_from_rows(
    message_id: str, row: Sequence[Any], recipient_rows: Iterable[Sequence[Any]]
) -> QueuedMessage:
    """A QueuedMessage from a stored message row (sender, params, arrival, content) and
    its recipients' rows (address, params, state, attempts, next_attempt, last_reply,
    warned), as both stores keep them."""
    return QueuedMessage(
        id=message_id,
        sender=row[0],
        params=_params(row[1]),
        arrival=row[2],
        content=bytes(row[3]),
        recipients=tuple(
            QueuedRecipient(
                address=address,
                params=_params(params),
                state=RecipientState(state),
                attempts=attempts,
                next_attempt=next_attempt,
                last_reply=last_reply,
                warned=bool(warned),
            )
            for address, params, state, attempts, next_attempt, last_reply, warned in (
                recipient_rows
            )
        ),
    )


class Queue(Protocol):
    """What a delivery worker needs of a queue."""

    def enqueue(
        self,
        sender: str | None,
        recipients: Sequence[str] | Mapping[str, Mapping[str, str]],
        content: bytes,
        *,
        now: float,
        params: Mapping[str, str] | None = None,
    ) -> str: ...

    def claim(
        self, *, now: float, owner: str, lease: float, limit: int = 100, due_only: bool = True
    ) -> list[QueuedMessage]: ...

    def record(
        self,
        message_id: str,
        recipient: str,
        *,
        state: RecipientState,
        reply: str | None,
        next_attempt: float | None = None,
        warned: bool | None = None,
    ) -> None: ...

    def release(self, message_id: str, owner: str) -> None: ...

    def mark_warned(self, message_id: str, recipients: Iterable[str]) -> None: ...

    def remove_finished(self) -> list[str]: ...

    def get(self, message_id: str) -> QueuedMessage | None: ...

    def messages(self) -> list[QueuedMessage]: ...

    def remove(self, message_id: str) -> bool: ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    sender TEXT,
    params TEXT NOT NULL,
    arrival REAL NOT NULL,
    content BLOB NOT NULL,
    owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS recipients (
    message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    address TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    last_reply TEXT,
    warned INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (message_id, address)
);
CREATE INDEX IF NOT EXISTS recipients_due ON recipients(state, next_attempt);
"""


class SQLiteQueue:
    """The Queue in one SQLite file (``":memory:"`` for a throw-away one). Safe to share
    between threads of one process; several processes may open the same file (SQLite's
    locking serialises their transactions, the leases keep their work apart)."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 10.0) -> None:
        self.path = os.fspath(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA foreign_keys = ON")
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")  # durable before enqueue() returns
        with self._transaction() as db:  # executescript() would commit on its own
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SQLiteQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One state change: BEGIN IMMEDIATE (the write lock at once, so claim()'s read and
        its update are one step), COMMIT, or ROLLBACK on any error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

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
        """Store a message for delivery now; returns its id. ``recipients``: addresses, or
        address -> RCPT parameters (NOTIFY, ORCPT). Durable when this returns."""
        rcpts = recipient_map(recipients)
        message_id = secrets.token_hex(8)
        with self._transaction() as db:
            db.execute(
                "INSERT INTO messages (id, sender, params, arrival, content) VALUES (?,?,?,?,?)",
                (message_id, sender, json.dumps(dict(params or {})), now, bytes(content)),
            )
            db.executemany(
                "INSERT INTO recipients (message_id, position, address, params, state,"
                " next_attempt) VALUES (?,?,?,?,?,?)",
                [
                    (message_id, i, a, json.dumps(dict(p)), RecipientState.QUEUED.value, now)
                    for i, (a, p) in enumerate(rcpts.items())
                ],
            )
        return message_id

    def claim(
        self, *, now: float, owner: str, lease: float, limit: int = 100, due_only: bool = True
    ) -> list[QueuedMessage]:
        """Up to ``limit`` messages with a recipient due at ``now`` (any queued recipient,
        with ``due_only=False``), leased to ``owner`` until ``now + lease``: no other
        claim returns them before that, unless the owner releases them."""
        due = now if due_only else float("inf")
        with self._transaction() as db:
            rows = db.execute(
                "SELECT DISTINCT m.id, m.arrival, m.lease_until, m.owner FROM messages m"
                " JOIN recipients r ON r.message_id = m.id"
                " WHERE r.state = ? AND r.next_attempt <= ?"
                " AND (m.lease_until <= ? OR m.owner LIKE ?) ORDER BY m.arrival",
                (RecipientState.QUEUED.value, due, now, f"{socket.gethostname()}:%"),
            ).fetchall()
            ids = [
                row[0] for row in rows if row[2] <= now or (row[3] != owner and dead_owner(row[3]))
            ][:limit]
            db.executemany(
                "UPDATE messages SET owner = ?, lease_until = ? WHERE id = ?",
                [(owner, now + lease, i) for i in ids],
            )
            return [m for m in (self._load(db, i) for i in ids) if m is not None]

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
        """One recipient's attempt: its new state, the reply, and (queued) when next."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE recipients SET state = ?, last_reply = ?, attempts = attempts + 1,"
                " next_attempt = COALESCE(?, next_attempt), warned = COALESCE(?, warned)"
                " WHERE message_id = ? AND address = ?",
                (
                    state.value,
                    reply,
                    next_attempt,
                    None if warned is None else int(warned),
                    message_id,
                    recipient,
                ),
            ).rowcount
            if changed != 1:
                raise KeyError(f"no recipient {recipient!r} in message {message_id!r}")

    def mark_warned(self, message_id: str, recipients: Iterable[str]) -> None:
        """A delay warning went out for ``recipients`` (not an attempt)."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE recipients SET warned = 1 WHERE message_id = ? AND address = ?",
                [(message_id, r) for r in recipients],
            )

    def release(self, message_id: str, owner: str) -> None:
        """End ``owner``'s lease on a message (its attempt is over)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE messages SET owner = NULL, lease_until = 0 WHERE id = ? AND owner = ?",
                (message_id, owner),
            )

    def remove(self, message_id: str) -> bool:
        """Delete a message and its recipients; False when there was none."""
        with self._transaction() as db:
            return db.execute("DELETE FROM messages WHERE id = ?", (message_id,)).rowcount == 1

    def remove_finished(self) -> list[str]:
        """Delete the messages whose every recipient is delivered or failed; their ids."""
        with self._transaction() as db:
            ids = [
                row[0]
                for row in db.execute(
                    "SELECT id FROM messages WHERE NOT EXISTS (SELECT 1 FROM recipients r"
                    " WHERE r.message_id = messages.id AND r.state = ?)",
                    (RecipientState.QUEUED.value,),
                )
            ]
            db.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in ids])
            return ids

    # ----------------------------------------------------------------------- reading

    def get(self, message_id: str) -> QueuedMessage | None:
        with self._lock:
            return self._load(self._db, message_id)

    def messages(self) -> list[QueuedMessage]:
        """Every queued message, oldest first."""
        with self._lock:
            ids = [r[0] for r in self._db.execute("SELECT id FROM messages ORDER BY arrival")]
            return [m for m in (self._load(self._db, i) for i in ids) if m is not None]

    @staticmethod
    def _load(db: sqlite3.Connection, message_id: str) -> QueuedMessage | None:
        row = db.execute(
            "SELECT sender, params, arrival, content FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        if row is None:
            return None
        recipient_rows = db.execute(
            "SELECT address, params, state, attempts, next_attempt, last_reply, warned"
            " FROM recipients WHERE message_id = ? ORDER BY position",
            (message_id,),
        )
        return message_from_rows(message_id, row, recipient_rows)
