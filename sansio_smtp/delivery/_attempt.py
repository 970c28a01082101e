# One delivery attempt of one message to one domain: which host to try next, and, from what
# each session said, what happened to each recipient (delivered; deferred to a time; failed).
# Pure policy: the caller runs the sessions, owns the clock and the random source.
#
# Rules: hosts are tried in route order (RFC 5321 §5.1) while the failure is the
# connection's (no answer, a 4xx/5xx greeting, 421; §3.1, §3.8): a recipient moves on to the
# next host only for those. A recipient's own reply, or the message's (MAIL, DATA, the final
# dot), is final for this attempt: a backup MX is no better placed to take a message the
# primary refused or deferred. When every host failed, the recipient is deferred, unless
# every host refused it permanently (a 5xx greeting everywhere). A deferred recipient is
# retried per the RetryPolicy, and bounced once it has waited its give-up time
# (RFC 3463 §3.5: 4.4.7 "Delivery time expired").
from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import final

import attrs

from .._status import EnhancedStatusCode
from ._classify import Classification, Scope, Verdict
from ._retry import RetryPolicy
from ._route import Route

__all__ = ["Attempt", "Deferred", "Delivered", "Failed", "Outcome", "SessionResult"]

#: RFC 3463 §3.5: X.4.7 "Delivery time expired"
EXPIRED = EnhancedStatusCode(4, 4, 7)


@final
@attrs.frozen(kw_only=True)
class SessionResult:
    """What one SMTP session with ``host`` said: ``connection`` is the failure that ended
    it before the recipients' fate was known (None when it ran); ``recipients`` the
    Classification of each recipient it got as far as (RCPT, or the message's MAIL/DATA/
    final-dot reply, or LMTP's per-recipient reply after the dot)."""

    host: str
    connection: Classification | None = None
    recipients: Mapping[str, Classification] = attrs.field(factory=dict)


@final
@attrs.frozen(kw_only=True)
class Delivered:
    host: str
    result: Classification


@final
@attrs.frozen(kw_only=True)
class Deferred:
    """Try again at ``retry_at``; ``result`` is the last failure."""

    retry_at: float
    result: Classification


@final
@attrs.frozen(kw_only=True)
class Failed:
    """Give up: bounce with ``result`` (its ``status`` and ``reply`` go in the report)."""

    result: Classification
    host: str | None = None


Outcome = Delivered | Deferred | Failed


class Attempt:
    """One attempt for ``recipients`` of one domain along ``route``.

    Loop: ``host = attempt.next_host()``; while it is not None, run a session with it for
    ``attempt.pending`` and ``attempt.record(SessionResult(...))``. Then
    ``attempt.outcomes(...)`` says what happened to each recipient."""

    def __init__(self, recipients: Iterable[str], route: Route) -> None:
        self.route = route
        self.pending: list[str] = list(dict.fromkeys(recipients))
        self._hosts = list(route.hosts)
        self._done: dict[str, tuple[str | None, Classification]] = {}
        self._tried: dict[str, list[Classification]] = {r: [] for r in self.pending}

    def next_host(self) -> str | None:
        """The host to try next for the recipients still pending, or None."""
        if not self.pending or not self._hosts:
            return None
        return self._hosts.pop(0)

    def record(self, session: SessionResult) -> None:
        """What a session with the host next_host() gave said."""
        still: list[str] = []
        for rcpt in self.pending:
            result = session.recipients.get(rcpt, session.connection)
            if result is None:  # the session ran but never got to this recipient
                still.append(rcpt)
                continue
            if result.scope is Scope.CONNECTION and result.verdict is not Verdict.SUCCESS:
                self._tried[rcpt].append(result)
                still.append(rcpt)  # the next MX may do better (RFC 5321 §5.1)
                continue
            self._done[rcpt] = (session.host, result)
        self.pending = still

    def no_route(self, result: Classification) -> None:
        """There is no host to try (route() said why): that is this attempt's result for
        every recipient still pending."""
        for rcpt in self.pending:
            self._tried[rcpt].append(result)
        self.pending = []
        self._hosts = []

    def outcomes(
        self,
        *,
        policy: RetryPolicy,
        arrival: float,
        attempts: int | Mapping[str, int],
        now: float,
        rng: random.Random | None = None,
    ) -> dict[str, Outcome]:
        """Each recipient's fate after this attempt, its ``attempts``-th (1 = the first;
        one number for all, or one per recipient)."""
        out: dict[str, Outcome] = {}
        for rcpt in self._tried:
            tries = attempts if isinstance(attempts, int) else attempts.get(rcpt, 1)
            if rcpt in self._done:
                host, result = self._done[rcpt]
                if result.verdict is Verdict.SUCCESS:
                    out[rcpt] = Delivered(host=host or "", result=result)
                    continue
                if result.verdict is Verdict.PERMANENT:
                    out[rcpt] = Failed(result=result, host=host)
                    continue
            else:
                tried = self._tried[rcpt]
                if not tried:  # no host at all was tried
                    raise ValueError(f"no session was recorded for {rcpt}")
                result = tried[-1]
                if all(t.verdict is Verdict.PERMANENT for t in tried):
                    out[rcpt] = Failed(result=result)
                    continue
            out[rcpt] = self._defer(result, policy, arrival, tries, now, rng)
        return out

    @staticmethod
    def _defer(
        result: Classification,
        policy: RetryPolicy,
        arrival: float,
        attempts: int,
        now: float,
        rng: random.Random | None,
    ) -> Outcome:
        due = policy.next_attempt(arrival=arrival, attempts=attempts, now=now, rng=rng)
        if due is not None:
            return Deferred(retry_at=due, result=result)
        days = policy.give_up / 86400
        expired = attrs.evolve(
            result,
            verdict=Verdict.PERMANENT,
            status=EXPIRED,
            reason=f"gave up after {days:g} days; the last attempt: {result.reason}",
        )
        return Failed(result=expired)
