"""Delivery between mail hosts, as policy without I/O: what a reply means for each
recipient (``classify``), where a domain's mail goes (``route``, RFC 5321 §5.1 and RFC
7505), when to try again and when to give up (``RetryPolicy``, RFC 5321 §4.5.4.1), and what
one attempt along a route did to each recipient (``Attempt``), and the bounce that tells
the sender (``build_report``, RFC 3464) and reads one back (``parse_report``).

>>> from sansio_smtp import Reply
>>> result = classify(Reply(code=550, lines="No such user", enhanced="5.1.1"), Stage.RCPT)
>>> result.verdict, result.scope, str(result.status)
(<Verdict.PERMANENT: 'permanent'>, <Scope.RECIPIENT: 'recipient'>, '5.1.1')
>>> import random
>>> route("example.org", [MX(10, "b.example.org"), MX(5, "a.example.org")], rng=random.Random(1))
Route(domain='example.org', hosts=('a.example.org', 'b.example.org'), implicit=False)
"""

import os

from ._attempt import Attempt, Deferred, Delivered, Failed, Outcome, SessionResult
from ._classify import (
    Classification,
    Scope,
    Stage,
    Verdict,
    classify,
    connection_failure,
    route_failure,
)
from ._dns import Resolver
from ._dsn import Action, DeliveryReport, RecipientStatus, build_report, parse_report
from ._mtasts import MtaSts, StsMode, StsPolicy, apply_policy, fetch_policy_https
from ._queue import (
    Queue,
    QueuedMessage,
    QueuedRecipient,
    RecipientState,
    SQLiteQueue,
)
from ._retry import RetryPolicy
from ._route import MX, Route, route
from ._worker import DeliveryWorker, RecipientReport

__all__ = [
    "MX",
    "Action",
    "Attempt",
    "Classification",
    "Deferred",
    "Delivered",
    "DeliveryReport",
    "DeliveryWorker",
    "Failed",
    "MtaSts",
    "Outcome",
    "Queue",
    "QueuedMessage",
    "QueuedRecipient",
    "RecipientReport",
    "RecipientState",
    "RecipientStatus",
    "Resolver",
    "RetryPolicy",
    "Route",
    "SQLiteQueue",
    "Scope",
    "SessionResult",
    "Stage",
    "StsMode",
    "StsPolicy",
    "Verdict",
    "apply_policy",
    "build_report",
    "classify",
    "connection_failure",
    "fetch_policy_https",
    "open_queue",
    "parse_report",
    "route",
    "route_failure",
]


def open_queue(spec: str | os.PathLike[str]) -> Queue:
    """The queue ``spec`` names: a ``postgresql://`` URL (PostgresQueue, the [postgres]
    extra) or a file path (SQLiteQueue)."""
    text = os.fspath(spec)
    if text.startswith(("postgresql://", "postgres://")):
        from ._pgqueue import PostgresQueue

        return PostgresQueue(text)
    return SQLiteQueue(text)
