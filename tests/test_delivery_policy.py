"""Delivery policy without I/O: reply classification, routes, retries, one attempt."""

from __future__ import annotations

import doctest
import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sansio_smtp.delivery
from sansio_smtp import EnhancedStatusCode, Reply
from sansio_smtp.delivery import (
    MX,
    Attempt,
    Classification,
    Deferred,
    Delivered,
    Failed,
    RetryPolicy,
    Route,
    Scope,
    SessionResult,
    Stage,
    Verdict,
    classify,
    connection_failure,
    route,
)

HOUR = 3600.0
DAY = 24 * HOUR


def test_docstring_examples() -> None:
    assert doctest.testmod(sansio_smtp.delivery).failed == 0


# ------------------------------------------------------------------- classification

enhanced_codes = st.builds(
    EnhancedStatusCode, st.sampled_from([2, 4, 5]), st.integers(0, 7), st.integers(0, 20)
)


reply_codes = st.integers(200, 559).filter(lambda c: (c // 10) % 10 <= 5)  # RFC 5321 §4.2


@given(reply_codes, st.sampled_from(list(Stage)), st.none() | enhanced_codes)
def test_the_reply_code_decides_and_the_status_agrees(
    code: int, stage: Stage, enhanced: EnhancedStatusCode | None
) -> None:
    # RFC 5321 §4.2.1: 4yz transient, 5yz permanent; RFC 3463 §2: the status reported has
    # the class of the verdict, whatever enhanced code came with the reply (one of another
    # class stays in the text, where the reader leaves it)
    if enhanced is not None and enhanced.class_ == code // 100:
        reply = Reply(code=code, lines="x", enhanced=enhanced)
    else:
        reply = Reply(code=code, lines=f"{enhanced or ''} x".strip())
    result = classify(reply, stage)
    klass = {Verdict.SUCCESS: 2, Verdict.TRANSIENT: 4, Verdict.PERMANENT: 5}[result.verdict]
    assert result.status.class_ == klass
    if code >= 500 and not (stage is Stage.RCPT and code == 552):
        assert result.verdict is Verdict.PERMANENT
    if 400 <= code < 500:
        assert result.verdict is Verdict.TRANSIENT
    if code == 421:  # RFC 5321 §3.8
        assert result.scope is Scope.CONNECTION


@pytest.mark.parametrize(
    ("code", "enhanced", "stage", "verdict", "scope"),
    [
        (250, "2.1.5", Stage.RCPT, Verdict.SUCCESS, Scope.RECIPIENT),
        (354, None, Stage.DATA, Verdict.SUCCESS, Scope.MESSAGE),
        (354, None, Stage.MAIL, Verdict.TRANSIENT, Scope.CONNECTION),  # §4.3.2: not MAIL's
        (550, "5.1.1", Stage.RCPT, Verdict.PERMANENT, Scope.RECIPIENT),
        (451, "4.3.0", Stage.RCPT, Verdict.TRANSIENT, Scope.RECIPIENT),
        # RFC 5321 §4.5.3.1.10: too many recipients, in either spelling
        (452, "4.5.3", Stage.RCPT, Verdict.TRANSIENT, Scope.TRANSACTION),
        (552, None, Stage.RCPT, Verdict.TRANSIENT, Scope.TRANSACTION),
        (552, "5.5.3", Stage.RCPT, Verdict.TRANSIENT, Scope.TRANSACTION),
        (552, "5.2.2", Stage.RCPT, Verdict.PERMANENT, Scope.RECIPIENT),  # mailbox full
        (552, "5.3.4", Stage.DATA_END, Verdict.PERMANENT, Scope.MESSAGE),
        (421, "4.4.2", Stage.RCPT, Verdict.TRANSIENT, Scope.CONNECTION),  # §3.8
        (451, None, Stage.DATA_END, Verdict.TRANSIENT, Scope.MESSAGE),  # 4xx to the dot
        (554, None, Stage.GREETING, Verdict.PERMANENT, Scope.CONNECTION),  # §3.1
        (550, "5.7.1", Stage.MAIL, Verdict.PERMANENT, Scope.MESSAGE),
    ],
)
def test_rules(
    code: int, enhanced: str | None, stage: Stage, verdict: Verdict, scope: Scope
) -> None:
    result = classify(Reply(code=code, lines="text", enhanced=enhanced), stage)
    assert (result.verdict, result.scope) == (verdict, scope)


def test_a_contradicting_enhanced_code_is_said_and_overruled() -> None:
    # RFC 3463 §2: a 5.x.x under a 451 - the reply code decides
    result = classify(Reply(code=451, lines="5.1.1 later"), Stage.RCPT)
    assert result.verdict is Verdict.TRANSIENT
    assert str(result.status) == "4.1.1"
    assert "contradicts" in result.reason


def test_the_reason_comes_from_the_catalogue() -> None:
    result = classify(Reply(code=550, lines="x", enhanced="5.1.1"), Stage.RCPT)
    assert "Bad destination mailbox address" in result.reason


# --------------------------------------------------------------------------- routes

mx_lists = st.lists(
    st.builds(MX, st.integers(0, 3), st.sampled_from(["a.", "b", "c", "d", "e"]).map(str)),
    min_size=1,
    max_size=6,
)


@given(mx_lists, st.integers())
def test_route_orders_by_preference_and_lists_each_host_once(mxs: list[MX], seed: int) -> None:
    # RFC 5321 §5.1: lowest preference first; each exchanger tried once
    got = route("example.org", mxs, rng=random.Random(seed))
    assert isinstance(got, Route)
    best = {}
    for mx in mxs:
        name = mx.host.rstrip(".").lower()
        best[name] = min(best.get(name, mx.preference), mx.preference)
    assert sorted(got.hosts) == sorted(best)
    prefs = [best[h] for h in got.hosts]
    assert prefs == sorted(prefs)
    assert got == route("example.org", mxs, rng=random.Random(seed))  # the caller's randomness


def test_equal_preferences_are_shuffled() -> None:
    # RFC 5321 §5.1: "the sender-SMTP MUST randomize them to spread the load"
    mxs = [MX(10, "a"), MX(10, "b"), MX(20, "c")]
    orders = set()
    for seed in range(50):
        got = route("example.org", mxs, rng=random.Random(seed))
        assert isinstance(got, Route)
        assert got.hosts[-1] == "c"
        orders.add(got.hosts)
    assert orders == {("a", "b", "c"), ("b", "a", "c")}


def test_implicit_mx_null_mx_no_domain_and_literals() -> None:
    # RFC 5321 §5.1: no MX, an address record: the domain itself, preference 0
    assert route("example.org", [], has_address=True) == Route(
        domain="example.org", hosts=("example.org",), implicit=True
    )
    # RFC 7505 §4.1: a null MX: permanent, 5.1.10
    null = route("example.org", [MX(0, ".")])
    assert isinstance(null, Classification) and null.permanent
    assert str(null.status) == "5.1.10"
    none = route("nowhere.example", [], has_address=False)
    assert isinstance(none, Classification) and str(none.status) == "5.1.2"
    # RFC 5321 §4.1.3: an address literal names its host
    assert route("[192.0.2.1]", []) == Route(domain="[192.0.2.1]", hosts=("192.0.2.1",))
    assert route("[IPv6:2001:db8::1]", []) == Route(
        domain="[IPv6:2001:db8::1]", hosts=("2001:db8::1",)
    )


def test_a_host_listed_among_the_exchangers_tries_only_better_ones() -> None:
    # RFC 5321 §5.1: "MUST discard all MX RRs with preference values equal to or greater
    # than its own"; none left is a routing loop (RFC 3463 X.4.6)
    mxs = [MX(10, "primary.example"), MX(20, "me.example"), MX(20, "peer.example")]
    got = route("example.org", mxs, local_names={"ME.example."})
    assert got == Route(domain="example.org", hosts=("primary.example",))
    loop = route("example.org", [MX(10, "me.example")], local_names={"me.example"})
    assert isinstance(loop, Classification) and str(loop.status) == "5.4.6"


# -------------------------------------------------------------------------- retries


@given(
    st.floats(60, 7200),
    st.floats(1, 4),
    st.floats(600, 86400),
    st.floats(3600, 10 * DAY),
)
def test_plan_is_monotone_bounded_and_ends_at_the_give_up_time(
    first: float, backoff: float, cap: float, give_up: float
) -> None:
    policy = RetryPolicy(first_retry=first, backoff=backoff, max_interval=cap, give_up=give_up)
    plan = policy.plan(1000.0)
    gaps = [b - a for a, b in itertools.pairwise(plan)]
    assert all(g > 0 for g in gaps)
    assert plan[-1] == pytest.approx(1000.0 + give_up)
    assert all(g <= max(cap, first) + 1e-6 for g in gaps)
    assert gaps[0] == pytest.approx(min(first, give_up))  # §4.5.4.1: the first wait
    assert len(plan) <= give_up / first + 2


def test_default_schedule() -> None:
    # RFC 5321 §4.5.4.1: at least 30 minutes, give up after 4-5 days
    policy = RetryPolicy()
    plan = policy.plan(0.0)
    assert plan[1] == 30 * 60
    assert plan[-1] == 5 * DAY
    assert policy.next_attempt(arrival=0.0, attempts=3, now=5 * DAY) is None
    assert policy.warning_due(arrival=0.0, now=4 * HOUR, warned=False)
    assert not policy.warning_due(arrival=0.0, now=4 * HOUR, warned=True)
    assert not policy.warning_due(arrival=0.0, now=3 * HOUR, warned=False)
    jittered = RetryPolicy(jitter=0.5).next_attempt(
        arrival=0.0, attempts=1, now=0.0, rng=random.Random(3)
    )
    assert jittered is not None and 30 * 60 <= jittered <= 45 * 60


# -------------------------------------------------------------------------- attempts


def _r(code: int, stage: Stage, enhanced: str | None = None) -> Classification:
    return classify(Reply(code=code, lines="t", enhanced=enhanced), stage)


def _outcomes(attempt: Attempt, attempts: int = 1, now: float = 0.0) -> dict[str, object]:
    return dict(attempt.outcomes(policy=RetryPolicy(), arrival=0.0, attempts=attempts, now=now))


def test_next_mx_after_a_connection_failure_only() -> None:
    # RFC 5321 §5.1: try the next address when one does not answer
    attempt = Attempt(["a@x", "b@x"], Route(domain="x", hosts=("mx1", "mx2", "mx3")))
    assert attempt.next_host() == "mx1"
    attempt.record(SessionResult(host="mx1", connection=connection_failure("refused")))
    assert attempt.pending == ["a@x", "b@x"]
    assert attempt.next_host() == "mx2"
    attempt.record(
        SessionResult(
            host="mx2",
            recipients={"a@x": _r(250, Stage.DATA_END), "b@x": _r(451, Stage.RCPT)},
        )
    )
    # a recipient's own 451 is final for this attempt: no backup MX for it
    assert attempt.pending == []
    assert attempt.next_host() is None
    got = _outcomes(attempt)
    assert got["a@x"] == Delivered(host="mx2", result=_r(250, Stage.DATA_END))
    deferred = got["b@x"]
    assert isinstance(deferred, Deferred) and deferred.retry_at == 30 * 60


def test_permanent_everywhere_fails_transient_anywhere_defers() -> None:
    # a 554 greeting on every host (RFC 5321 §3.1): bounce; one 421 among them: retry
    attempt = Attempt(["a@x"], Route(domain="x", hosts=("mx1", "mx2")))
    for host in ("mx1", "mx2"):
        assert attempt.next_host() == host
        attempt.record(SessionResult(host=host, connection=_r(554, Stage.GREETING)))
    assert isinstance(_outcomes(attempt)["a@x"], Failed)
    attempt = Attempt(["a@x"], Route(domain="x", hosts=("mx1", "mx2")))
    attempt.next_host()
    attempt.record(SessionResult(host="mx1", connection=_r(554, Stage.GREETING)))
    attempt.next_host()
    attempt.record(SessionResult(host="mx2", connection=_r(421, Stage.MAIL)))
    assert isinstance(_outcomes(attempt)["a@x"], Deferred)


def test_a_permanent_reply_bounces_and_time_runs_out() -> None:
    attempt = Attempt(["a@x", "b@x"], Route(domain="x", hosts=("mx1",)))
    attempt.next_host()
    attempt.record(
        SessionResult(
            host="mx1",
            recipients={"a@x": _r(550, Stage.RCPT, "5.1.1"), "b@x": _r(451, Stage.DATA_END)},
        )
    )
    got = _outcomes(attempt, attempts=30, now=5 * DAY)
    failed = got["a@x"]
    assert isinstance(failed, Failed) and str(failed.result.status) == "5.1.1"
    # RFC 3463 §3.5: 4.4.7 delivery time expired, after the give-up time
    expired = got["b@x"]
    assert isinstance(expired, Failed)
    assert str(expired.result.status) == "4.4.7"
    assert "gave up after 5 days" in expired.result.reason
