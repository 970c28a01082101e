# What the three servers count to stay available under abuse: when to stop waiting for a
# client, how many connections one client address may hold or open per minute, how many
# AUTH failures it may cause before it is made to wait, and how often a resource error
# may be logged.
#
# Strategy: plain objects with no I/O and no clock of their own: every method that needs
# the time takes ``now`` (seconds, any monotonic clock, used consistently per object), so
# the rules are unit-tested without sleeping. The adapters hold one ReadDeadline per
# connection and one ClientLimits / AuthFailureBudget / LogThrottle per server; the
# blocking server guards the shared ones with its own lock.
# Rules: every table is bounded (per address, at most ``limit`` timestamps; addresses
# with nothing to remember are pruned); a command line is bounded as a whole by the idle
# timeout (bytes arriving do not extend it, a reply sent does); message content (DATA,
# every BDAT chunk) must keep the minimum data rate after a grace period.
from __future__ import annotations

import math
from collections import deque
from typing import Final

from ..._connection import Connection
from ..._state import State, server_timeout
from ..._util import remember

__all__ = [
    "AuthFailureBudget",
    "ClientLimits",
    "LogThrottle",
    "ReadDeadline",
    "client_key",
    "connection_cap",
    "in_content",
]

#: descriptors kept free for listeners, stores, logs (at least this, or 1/8 of the limit)
FD_MARGIN: Final = 32

# Enum members read once: an attribute of an Enum class costs a descriptor call each time
_DATA, _BDAT = State.DATA, State.BDAT
#: how long the core's rule has a server wait for its client (RFC 5321 §4.5.3.2.7), asked
#: once: whenever a server Connection needs data, Connection.timeout gives this wait
_client_wait = server_timeout(State.READY, owes_reply=False)
assert _client_wait is not None
_CLIENT_WAIT: Final = _client_wait.seconds


def in_content(conn: Connection) -> bool:
    """The server is reading message content: DATA, between BDAT chunks, or inside a BDAT
    chunk, including the first one (its state is still RCPT) and a refused one."""
    state = conn.state
    return state is _DATA or state is _BDAT or conn.in_chunk


class ReadDeadline:
    """When one server connection stops waiting for its client.

    - Waiting for a command (or an AUTH response): the deadline is set when the wait
      starts, i.e. after our last reply went out (``sent()``), and bytes that do not end
      a command do not move it, so a command line dripped one octet at a time is bounded
      as a whole (issue 10 item 7; RFC 5321 §4.5.3.2.7 "server timeout").
    - Reading content (``in_content``): the idle timeout runs from each read (RFC 5321
      §4.5.3.2.5-6), and after ``data_rate_grace`` seconds the content so far must have
      come at ``min_data_rate`` bytes/s at least (like Postfix's smtpd_min_data_rate),
      for DATA and for every BDAT chunk alike.

    ``slow`` says whether the last deadline given is the data-rate one.
    """

    __slots__ = (
        "_command_since",
        "_data_octets",
        "_data_since",
        "_wait",
        "data_rate_grace",
        "idle_timeout",
        "min_data_rate",
        "octets",
        "slow",
    )

    def __init__(
        self,
        *,
        idle_timeout: float | None,
        min_data_rate: float | None,
        data_rate_grace: float,
    ) -> None:
        self.idle_timeout = idle_timeout
        self.min_data_rate = min_data_rate
        self.data_rate_grace = data_rate_grace
        self.slow = False
        self._command_since: float | None = None
        self._data_since: float | None = None
        #: the octets received so far: received() adds to it, or a runtime directly (an
        #: addition per read instead of a call); the content's count since _data_since
        #: is what it grew by since _data_octets
        self.octets = 0
        self._data_octets = 0
        #: the wait while the connection needs data (next(needs_data=True))
        self._wait = _CLIENT_WAIT if idle_timeout is None else idle_timeout

    def sent(self) -> None:
        """We wrote to the client: the next wait for a command starts afresh."""
        self._command_since = None

    def received(self, count: int) -> None:
        """``count`` bytes arrived from the client."""
        self.octets += count

    def next(
        self, conn: Connection, now: float, replied: bool = False, needs_data: bool = False
    ) -> float:
        """The deadline (on the clock ``now`` is read from) for the wait that starts now,
        ``math.inf`` when the connection waits for nothing (it owes a reply). ``replied``:
        we wrote to the client since the last wait (``sent()`` first, in the same call).
        ``needs_data``: the connection's next_event() said NEED_DATA, so it waits for the
        client and ``conn.timeout`` need not be asked (one property and a rule less)."""
        if replied:
            self._command_since = None
        self.slow = False
        if needs_data:
            wait = self._wait
        else:
            timeout = conn.timeout
            if timeout is None:
                self._command_since = None
                return math.inf
            wait = timeout.seconds if self.idle_timeout is None else self.idle_timeout
        state = conn.state  # in_content(conn), inline: this runs before every read
        if state is _DATA or state is _BDAT or conn.in_chunk:
            self._command_since = None
            deadline = now + wait
            rate = self.min_data_rate
            if rate:
                if self._data_since is None:
                    self._data_since, self._data_octets = now, self.octets
                received = self.octets - self._data_octets
                slow = self._data_since + self.data_rate_grace + received / rate
                if slow < deadline:
                    self.slow = True
                    return slow
            return deadline
        self._data_since = None
        if self._command_since is None:
            self._command_since = now
        return self._command_since + wait


#: the client key of the peer hosts seen lately: ipaddress takes 8 us (IPv4) to 45 us
#: (IPv6) per host, per connection, and a server sees the same hosts again; a
#: bounded cache (_util.remember), at most a few hundred KiB
_KEYS: dict[str, str] = {}
_KEYS_MAX: Final = 1024


def client_key(peer: object) -> str | None:
    """The address the per-client limits count: the IP address of a TCP peer (an IPv6
    peer by its /64, which one host usually has whole; an IPv4-mapped one as IPv4), None
    for a Unix-socket peer (not limited)."""
    if not isinstance(peer, tuple) or not peer:
        return None
    host = str(peer[0])
    key = _KEYS.get(host)
    if key is None:
        key = remember(_KEYS, host, _key_of(host), _KEYS_MAX)
    return key


def _key_of(host: str) -> str:
    """client_key() of a TCP peer whose host is ``host``, worked out."""
    import ipaddress  # here: a server without per-client limits never needs it

    try:
        ip = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class _Window:
    """The times of the last ``limit`` events of one kind for one address."""

    __slots__ = ("times",)

    def __init__(self, limit: int) -> None:
        self.times: deque[float] = deque(maxlen=limit)

    def full(self, now: float, window: float, limit: int) -> bool:
        times = self.times
        return len(times) >= limit and now - times[0] < window

    def stale(self, now: float, window: float) -> bool:
        return not self.times or now - self.times[-1] >= window


class ClientLimits:
    """Per-client-address connection limits: at most ``max_connections`` at once (Postfix
    smtpd_client_connection_count_limit, default 50) and at most ``max_rate`` new
    connections per ``window`` seconds (Postfix smtpd_client_connection_rate_limit per
    anvil_rate_time_unit, 60 s). None disables a limit. Refused attempts count towards the
    rate, so a client that keeps hammering stays refused."""

    def __init__(
        self, *, max_connections: int | None, max_rate: int | None, window: float = 60.0
    ) -> None:
        if max_connections is not None and max_connections < 1:
            raise ValueError("max_connections_per_client must be at least 1 (or None)")
        if max_rate is not None and max_rate < 1:
            raise ValueError("max_connection_rate_per_client must be at least 1 (or None)")
        self.max_connections = max_connections
        self.max_rate = max_rate
        self.window = window
        self._active: dict[str, int] = {}
        self._recent: dict[str, _Window] = {}
        self._pruned = -math.inf

    def admit(self, key: str | None, now: float) -> str | None:
        """Count a new connection from ``key``: None if admitted (``release`` it later),
        else why not ("connections" or "rate")."""
        if key is None:
            return None
        rate = self.max_rate
        if rate is not None:
            if now - self._pruned >= self.window:
                self._prune(now)
            recent = self._recent.get(key)
            if recent is None:
                recent = self._recent[key] = _Window(rate)
            over = recent.full(now, self.window, rate)
            recent.times.append(now)
            if over:
                return "rate"
        active = self._active.get(key, 0)
        if self.max_connections is not None and active >= self.max_connections:
            return "connections"
        self._active[key] = active + 1
        return None

    def release(self, key: str | None) -> None:
        """A connection ``admit`` accepted has ended."""
        if key is None:
            return
        active = self._active.get(key, 0) - 1
        if active > 0:
            self._active[key] = active
        else:
            self._active.pop(key, None)

    def connections(self, key: str | None) -> int:
        return self._active.get(key, 0) if key is not None else 0

    def _prune(self, now: float) -> None:
        self._pruned = now
        stale = [k for k, w in self._recent.items() if w.stale(now, self.window)]
        for key in stale:
            del self._recent[key]


class AuthFailureBudget:
    """Per-client-address AUTH failures (like Postfix's smtpd_client_auth_rate_limit):
    after ``limit`` failures within ``window`` seconds, the address is refused AUTH (454
    4.7.0) until the oldest of them is ``window`` seconds old. So guessing across
    connections is held to ``limit`` per ``window``. ``limit=None`` disables it."""

    def __init__(self, *, limit: int | None, window: float) -> None:
        if limit is not None and limit < 1:
            raise ValueError("max_auth_failures_per_client must be at least 1 (or None)")
        if window <= 0:
            raise ValueError("auth_failure_window must be positive")
        self.limit = limit
        self.window = window
        self._failures: dict[str, _Window] = {}
        self._pruned = -math.inf

    def blocked(self, key: str | None, now: float) -> bool:
        """``key`` has used its budget: refuse AUTH for now."""
        if key is None or self.limit is None:
            return False
        failures = self._failures.get(key)
        return failures is not None and failures.full(now, self.window, self.limit)

    def retry_after(self, key: str | None, now: float) -> float:
        """Seconds until ``key`` may try again (0 if it may now)."""
        if not self.blocked(key, now):
            return 0.0
        assert key is not None
        return self._failures[key].times[0] + self.window - now

    def failed(self, key: str | None, now: float) -> None:
        """Count one failure for ``key``."""
        if key is None or self.limit is None:
            return
        if now - self._pruned >= self.window:
            self._pruned = now
            stale = [k for k, w in self._failures.items() if w.stale(now, self.window)]
            for k in stale:
                del self._failures[k]
        failures = self._failures.get(key)
        if failures is None:
            failures = self._failures[key] = _Window(self.limit)
        failures.times.append(now)

    def forgive(self, key: str | None) -> None:
        """Take back the most recent failure counted for ``key`` (it turned out a success)."""
        if key is None:
            return
        failures = self._failures.get(key)
        if failures is not None and failures.times:
            failures.times.pop()


class LogThrottle:
    """At most one log record per ``interval`` seconds for a recurring error (e.g. EMFILE
    on accept); ``suppressed`` counts what was held back since the last one."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self.suppressed = 0
        self._last = -math.inf

    def ready(self, now: float) -> bool:
        """True if a record may be written now (then ``suppressed`` is reset by the caller
        reading it through ``take()``)."""
        if now - self._last >= self.interval:
            self._last = now
            return True
        self.suppressed += 1
        return False

    def take(self) -> int:
        count, self.suppressed = self.suppressed, 0
        return count


def connection_cap(requested: int, nofile: int | None) -> int:
    """``requested`` lowered so that connections leave descriptors free under the
    process's RLIMIT_NOFILE soft limit ``nofile`` (None: unlimited/unknown): a margin of
    max(FD_MARGIN, nofile // 8) stays for listeners, store files and logs."""
    if nofile is None or nofile <= 0:
        return requested
    usable = nofile - max(FD_MARGIN, nofile // 8)
    return max(1, min(requested, usable))
