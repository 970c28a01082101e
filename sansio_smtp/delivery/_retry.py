# When to try a deferred message again, and when to give up (RFC 5321 §4.5.4.1). Pure
# policy: times are seconds (any epoch) passed in by the caller, and the jitter comes from
# the caller's random source.
#
# RFC 5321 §4.5.4.1: "the retry interval SHOULD be at least 30 minutes"; "retries continue
# until the message is transmitted or the sender gives up; the give-up time generally needs
# to be at least 4-5 days". Between those: back off (each interval ``backoff`` times the
# last, up to ``max_interval``), so a destination that is down for days costs few
# attempts; a delay warning (RFC 3464 Action: delayed) once the message has waited
# ``warn_after``, as Postfix's delay_warning_time does; and the last attempt at the give-up
# time itself, so that no message waits past it.
from __future__ import annotations

import random
from typing import Final, final

import attrs

__all__ = ["DEFAULT_GIVE_UP", "DEFAULT_WARN_AFTER", "MIN_RETRY", "RetryPolicy"]

MIN_RETRY: Final = 30 * 60.0  # RFC 5321 §4.5.4.1: at least 30 minutes
DEFAULT_GIVE_UP: Final = 5 * 24 * 3600.0  # §4.5.4.1: at least 4-5 days
DEFAULT_WARN_AFTER: Final = 4 * 3600.0


def _positive(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attr.name} must be positive, not {value!r}")


@final
@attrs.frozen(kw_only=True)
class RetryPolicy:
    """The retry schedule of one recipient.

    - ``first_retry``: the wait after the first failed attempt (RFC 5321 §4.5.4.1: at
      least 30 minutes; tests may use less);
    - ``backoff``/``max_interval``: each later wait is ``backoff`` times the one before, at
      most ``max_interval``;
    - ``give_up``: how long after its arrival a message is bounced as undeliverable;
    - ``warn_after``: when a delay warning is due (None: never);
    - ``jitter``: each wait is stretched by up to this fraction, from the caller's random
      source, so that messages deferred together do not all come back together.
    """

    first_retry: float = attrs.field(default=MIN_RETRY, validator=_positive)
    backoff: float = attrs.field(default=2.0, validator=attrs.validators.ge(1.0))
    max_interval: float = attrs.field(default=4 * 3600.0, validator=_positive)
    give_up: float = attrs.field(default=DEFAULT_GIVE_UP, validator=_positive)
    warn_after: float | None = DEFAULT_WARN_AFTER
    jitter: float = attrs.field(
        default=0.0,
        validator=attrs.validators.and_(attrs.validators.ge(0.0), attrs.validators.le(1.0)),
    )

    def interval(self, attempts: int) -> float:
        """The wait after ``attempts`` failed attempts (1 = the first), without jitter."""
        if attempts < 1:
            raise ValueError("attempts counts the failed attempts: 1 or more")
        grown = self.first_retry * self.backoff ** min(attempts - 1, 64)
        return min(max(grown, self.first_retry), max(self.max_interval, self.first_retry))

    def next_attempt(
        self, *, arrival: float, attempts: int, now: float, rng: random.Random | None = None
    ) -> float | None:
        """When to try again after ``attempts`` failed attempts, the last one at ``now``;
        None when the message has waited ``give_up`` and must be bounced."""
        deadline = arrival + self.give_up
        if now >= deadline:
            return None
        wait = self.interval(attempts)
        if self.jitter:
            wait *= 1.0 + (rng or random.Random()).random() * self.jitter
        return min(now + wait, deadline)

    def warning_due(self, *, arrival: float, now: float, warned: bool) -> bool:
        """A delay warning is due now (at most one per recipient: ``warned``)."""
        return not warned and self.warn_after is not None and now - arrival >= self.warn_after

    def plan(self, arrival: float) -> tuple[float, ...]:
        """Every attempt time, the first at ``arrival``, if each attempt fails at once:
        the schedule a notebook draws as a timeline."""
        times = [arrival]
        while True:
            due = self.next_attempt(arrival=arrival, attempts=len(times), now=times[-1])
            if due is None:
                return tuple(times)
            times.append(due)
