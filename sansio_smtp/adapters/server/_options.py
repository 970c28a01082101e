# What the three servers share: their options (ServerOptions, checked once), the 421
# replies they send on their own (RFC 5321 §3.8), the per-client-address limits, the
# peer address of a socket, and the read deadline / write timeout policy.
#
# Strategy: a server is built from one frozen ServerOptions (its constructor's keywords,
# ``options=``, or both); ServerBase._configure turns it into the Config the core runs
# with, the resolved hooks, and the limits' bookkeeping. The runtimes ask this module for
# every time limit (``_read_deadline``, ``_write_timeout``, ``_expired_reply``).
# Rules: a misspelt or unsupported option is a TypeError, a contradictory one (implicit
# TLS without a context...) a ValueError, both at construction; nothing here does I/O.
from __future__ import annotations

import inspect
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Final, TypedDict

import attrs

from ..._connection import Connection
from ..._events import Greeting, Reply
from ..._state import Role
from ...config import Config
from ._credentials import (
    CertificateSource,
    PasswordTable,
    default_mechanisms,
    prepare_config,
    server_channel_binding,
)
from ._handler import Authenticator, PeerAddress, Reject, Session
from ._hooks import Hooks
from ._limits import (
    AuthFailureBudget,
    ClientLimits,
    LogThrottle,
    ReadDeadline,
    client_key,
    connection_cap,
)
from ._stores import SinkHandler
from ._traffic import TrafficLog

if TYPE_CHECKING:
    import ssl


log = logging.getLogger("sansio_smtp.server")

#: The message size limit (octets) a server applies when its Config sets none, advertised
#: as ``SIZE`` (RFC 1870 §4). Without one a client may send any amount. 32 MiB, as
#: aiosmtpd's default (Postfix's message_size_limit is 10 MB): room for the attachments
#: mail commonly carries once base64 has grown them by a third.
DEFAULT_MAX_MESSAGE_SIZE: Final = 33554432

#: connections one client address may hold at once (Postfix smtpd_client_connection_count_limit)
DEFAULT_MAX_CONNECTIONS_PER_CLIENT: Final = 50
#: AUTH failures one client address may cause per window before AUTH is refused for a while
DEFAULT_MAX_AUTH_FAILURES_PER_CLIENT: Final = 10
DEFAULT_AUTH_FAILURE_WINDOW: Final = 300.0  # seconds


#: how long our writes may stay blocked by a client that does not read, when no
#: idle_timeout is set (RFC 5321 §4.5.3.2.7's 5 minutes)
BLOCKED_WRITE_WAIT: Final = 300.0
#: seconds a 421 before closing may take to go out
GOODBYE_WRITE: Final = 2.0


def peer_address(info: object) -> PeerAddress:
    """A socket's address as a Session holds it: (host, port) for TCP, a path for a Unix
    socket, None when unknown."""
    if isinstance(info, tuple) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    if isinstance(info, (str, bytes)):
        return info.decode() if isinstance(info, bytes) else info
    return None


def _fspath(path: str | os.PathLike[str] | None) -> str | None:
    return os.fspath(path) if path is not None else None


@attrs.frozen(kw_only=True)
class ServerOptions:
    """The options of every server (SyncServer, AsyncioServer, AnyioServer), each also a
    keyword argument of their constructors.

    - ``host``/``port`` (port 0: the OS picks one, see ``server.port``), or ``path`` for
      a Unix socket (LMTP's usual home, RFC 2033 §5; not AnyioServer).
    - ``config``: the core Config (hostname, extensions, limits, ``lmtp``...);
      ``hostname`` overrides ``config.hostname``.
    - ``tls_context``: a server-side ssl.SSLContext. Offered with STARTTLS (RFC 3207), or
      from the first byte with ``implicit_tls=True`` (RFC 8314 submissions on port 465).
    - ``tls_certificate``: the certificate the context presents (its file path, or the
      file's bytes, PEM or DER). With it the server knows its tls-server-end-point
      channel binding (RFC 5929 §4.1) and, with a ``{user: password}`` ``auth``, also
      offers SCRAM-SHA-256-PLUS (RFC 5802 §6), which defeats TLS-terminating MITMs.
    - ``auth``: a ``{user: password}`` mapping or an Authenticator; default: the handler's
      ``auth`` hook if it has one. AUTH is advertised only under TLS unless
      ``config.allow_plaintext_auth`` (RFC 4954 §4); unless ``config`` names the
      mechanisms, a mapping gets SCRAM-SHA-256, PLAIN and LOGIN, a hook PLAIN and LOGIN.
    - ``max_connections``: beyond it a new client gets ``421`` and is closed; connections
      still in their implicit-TLS handshake count. None: 100 for SyncServer (a thread
      each), 1000 for the async servers. Lowered to leave descriptors free under
      RLIMIT_NOFILE.
    - ``max_connections_per_client`` (50), ``max_connection_rate_per_client`` (per
      minute, None: off), ``max_auth_failures_per_client`` (10) per
      ``auth_failure_window`` (300 s): per-client-address limits, see ServerBase.
    - ``idle_timeout``: seconds to wait for the client's next command (counted from our
      last reply, so a command dripped octet by octet is bounded as a whole) or between
      reads of content (default ``Connection.timeout``, RFC 5321 §4.5.3.2.7: 5
      minutes). It also bounds how long a client that does not read may keep our
      writes blocked: at the deadline the connection is aborted. ``tls_handshake_timeout``.
    - ``min_data_rate``: bytes/second a client must sustain while sending content (DATA,
      every BDAT chunk) after ``data_rate_grace`` seconds (slow-client protection, as
      Postfix's smtpd_min_data_rate); None to disable.
    - ``max_message_size``: the size limit (octets, advertised as SIZE, RFC 1870) when
      ``config`` sets none: DEFAULT_MAX_MESSAGE_SIZE (32 MiB) unless given; None: none.
    - ``greeting``: the 220 text after our hostname; ``traffic_log``: True (logger
      ``sansio_smtp.traffic``) or a Logger to log each session's dialogue line by line at
      DEBUG (a Transcript: the first lines of each message's content, a count of the
      rest), AUTH redacted.
    - ``proxy_protocol``: each connection starts with a PROXY protocol header (v1 or v2,
      HAProxy's; sent by a load balancer) naming the real client, which ``session.peer``
      then holds; a connection without a valid one is closed before the greeting.
    - ``backlog``: the listen() backlog of the async servers (SyncServer: 128);
      ``poll_interval``: how often a SyncServer thread checks its deadline and a shutdown.
    """

    host: str = "127.0.0.1"
    port: int = 0
    path: str | None = attrs.field(default=None, converter=_fspath)
    config: Config | None = None
    hostname: str | None = None
    tls_context: ssl.SSLContext | None = None
    implicit_tls: bool = False
    tls_certificate: CertificateSource | None = None
    auth: Mapping[str, str] | Authenticator | None = None
    max_connections: int | None = None
    max_connections_per_client: int | None = DEFAULT_MAX_CONNECTIONS_PER_CLIENT
    max_connection_rate_per_client: int | None = None
    max_auth_failures_per_client: int | None = DEFAULT_MAX_AUTH_FAILURES_PER_CLIENT
    auth_failure_window: float = DEFAULT_AUTH_FAILURE_WINDOW
    idle_timeout: float | None = None
    tls_handshake_timeout: float = 30.0
    min_data_rate: float | None = 1024.0
    data_rate_grace: float = 30.0
    greeting: str | None = None
    traffic_log: bool | logging.Logger = False
    proxy_protocol: bool = False
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE
    backlog: int = 1024
    poll_interval: float = 0.25


class ServerKeywords(TypedDict, total=False):
    """The keyword arguments of the server constructors: ServerOptions' fields (a test
    keeps the two in step)."""

    host: str
    port: int
    path: str | os.PathLike[str] | None
    config: Config | None
    hostname: str | None
    tls_context: ssl.SSLContext | None
    implicit_tls: bool
    tls_certificate: CertificateSource | None
    auth: Mapping[str, str] | Authenticator | None
    max_connections: int | None
    max_connections_per_client: int | None
    max_connection_rate_per_client: int | None
    max_auth_failures_per_client: int | None
    auth_failure_window: float
    idle_timeout: float | None
    tls_handshake_timeout: float
    min_data_rate: float | None
    data_rate_grace: float
    greeting: str | None
    traffic_log: bool | logging.Logger
    proxy_protocol: bool
    max_message_size: int | None
    backlog: int
    poll_interval: float


_OPTION_DEFAULTS: Final[dict[str, object]] = {
    a.name: a.default for a in attrs.fields(ServerOptions)
}
_OPTION_NAMES: Final = frozenset(_OPTION_DEFAULTS)


def _nofile_limit() -> int | None:
    """The soft RLIMIT_NOFILE of this process, None if unlimited or unknown."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


class ServerBase:
    """What the three servers share: the options every flavour takes, checked once, the
    421 replies they send on their own (RFC 5321 §3.8), and the per-client-address limits.

    - ``max_connections`` is lowered (with a warning) to leave descriptors free under the
      process's RLIMIT_NOFILE: max(32, limit/8) of them.
    - ``max_connections_per_client`` (default 50, as Postfix's
      smtpd_client_connection_count_limit) and ``max_connection_rate_per_client`` (new
      connections per minute, default None: off, as Postfix's
      smtpd_client_connection_rate_limit): a connection over either gets 421 and is
      closed (before any TLS handshake). A client is its IP address (IPv6: its /64);
      Unix-socket clients are not limited.
    - ``max_auth_failures_per_client`` (default 10; None: off) failed AUTH attempts
      within ``auth_failure_window`` seconds (default 300), after which that address's
      AUTH gets ``454 4.7.0`` until the oldest failure is that old, so guessing across
      connections is held to 10 per 5 minutes.
    """

    handler: object
    config: Config
    tls_context: ssl.SSLContext | None
    implicit_tls: bool
    max_connections: int
    max_connections_per_client: int | None
    max_connection_rate_per_client: int | None
    max_auth_failures_per_client: int | None
    auth_failure_window: float
    idle_timeout: float | None
    tls_handshake_timeout: float
    min_data_rate: float | None
    data_rate_grace: float
    greeting: str | None
    proxy_protocol: bool
    traffic: TrafficLog | None
    #: exceptions from handlers and connections (most recent 100), also logged
    errors: deque[BaseException]

    options: ServerOptions
    host: str
    path: str | None

    #: the option names this runtime does not take (a TypeError, as for any unknown keyword)
    _unsupported: frozenset[str] = frozenset()
    #: max_connections when the options leave it None
    _default_max_connections: int = 1000

    def _options(self, options: ServerOptions | None, keywords: ServerKeywords) -> ServerOptions:
        """The options a server runs with: ``options`` (or the defaults) with the keyword
        arguments given to the constructor on top."""
        for name in keywords:
            if name in self._unsupported or name not in _OPTION_NAMES:
                raise TypeError(
                    f"{type(self).__name__}() got an unexpected keyword argument {name!r}"
                )
        base = options if options is not None else ServerOptions()
        for name in self._unsupported:
            if getattr(base, name) != _OPTION_DEFAULTS[name]:
                raise TypeError(f"{type(self).__name__} does not take the {name!r} option")
        return attrs.evolve(base, **keywords) if keywords else base

    def _configure(self, handler: object, options: ServerOptions) -> None:
        self.options = options
        tls_context = options.tls_context
        implicit_tls = options.implicit_tls
        tls_certificate = options.tls_certificate
        auth = options.auth
        max_connections = options.max_connections
        if max_connections is None:
            max_connections = self._default_max_connections
        if implicit_tls and tls_context is None:
            raise ValueError("implicit_tls needs a tls_context")
        if tls_certificate is not None and tls_context is None:
            raise ValueError("tls_certificate needs a tls_context")
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        max_auth_failures_per_client = options.max_auth_failures_per_client
        authenticator = PasswordTable(auth) if isinstance(auth, Mapping) else auth
        self.handler = handler if handler is not None else SinkHandler()
        hooks = self._hooks = Hooks(self.handler, authenticator)
        self._limits_lock = threading.Lock()  # the blocking server's threads share these
        self._client_limits = ClientLimits(
            max_connections=options.max_connections_per_client,
            max_rate=options.max_connection_rate_per_client,
        )
        self._auth_budget = AuthFailureBudget(
            limit=max_auth_failures_per_client, window=options.auth_failure_window
        )
        self._refusals_log = LogThrottle()
        self._auth_unsettled: dict[str, str | None] = {}  # session id -> client key
        if tls_certificate is not None:
            hooks.channel_binding = server_channel_binding(tls_certificate)
        self.config = prepare_config(
            options.config,
            starttls=tls_context is not None and not implicit_tls,
            auth=hooks.auth is not None,
            hostname=options.hostname,
            mechanisms=default_mechanisms(
                scram=isinstance(authenticator, PasswordTable),
                channel_binding=hooks.channel_binding is not None,
            ),
            channel_binding=hooks.channel_binding is not None,
        )
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self.max_connections = connection_cap(max_connections, _nofile_limit())
        if self.max_connections < max_connections:
            log.warning(
                "max_connections lowered from %d to %d to stay under RLIMIT_NOFILE",
                max_connections,
                self.max_connections,
            )
        self.max_connections_per_client = options.max_connections_per_client
        self.max_connection_rate_per_client = options.max_connection_rate_per_client
        self.max_auth_failures_per_client = max_auth_failures_per_client
        self.auth_failure_window = options.auth_failure_window
        self.idle_timeout = options.idle_timeout
        self.tls_handshake_timeout = options.tls_handshake_timeout
        self.min_data_rate = options.min_data_rate
        self.data_rate_grace = options.data_rate_grace
        self.greeting = options.greeting
        self.proxy_protocol = options.proxy_protocol
        self.traffic = TrafficLog.from_option(options.traffic_log)
        self.host = options.host
        self.path = options.path
        self.errors = deque(maxlen=100)
        name = self.config.hostname
        self._busy = Connection(Role.SERVER, self.config).send(
            Greeting(code=421, lines=f"{name} Too many connections, try again later")
        )
        self._timeout_reply = Reply(
            code=421, lines=f"{name} Error: timeout exceeded", enhanced="4.4.2"
        )
        self._slow_reply = Reply(
            code=421, lines=f"{name} Error: minimum data rate not met", enhanced="4.4.2"
        )
        self._shutdown_reply = Reply(
            code=421, lines=f"{name} Service shutting down", enhanced="4.3.2"
        )
        # RFC 2034 §3: no enhanced status code in a greeting, so none here either
        self._busy_client = Connection(Role.SERVER, self.config).send(
            Greeting(code=421, lines=f"{name} Too many connections from your address")
        )
        self._auth_refusal = Reply(
            code=454,
            lines="Too many authentication failures, try again later",
            enhanced="4.7.0",
        )
        if hooks.auth is not None and max_auth_failures_per_client is not None:
            hooks.auth = self._budgeted_auth(hooks.auth)
            hooks.disconnect = self._settling_disconnect(hooks.disconnect)
        self._limit_size(options.max_message_size)

    def _connection(self, session: Session, *, tls: bool) -> Connection:
        """The server Connection of ``session``; with the traffic log on it records into
        the session's log (TrafficLog.transcript)."""
        traffic = self.traffic
        transcript = None if traffic is None else traffic.transcript(session.id)
        return Connection(Role.SERVER, self.config, tls=tls, transcript=transcript)

    # ------------------------------------------------------------ deadlines and timeouts

    def _read_deadline(self) -> ReadDeadline:
        """A connection's read deadline policy: the core's timeout (RFC 5321 §4.5.3.2) or
        ``idle_timeout``, and the minimum data rate while content arrives."""
        return ReadDeadline(
            idle_timeout=self.idle_timeout,
            min_data_rate=self.min_data_rate,
            data_rate_grace=self.data_rate_grace,
        )

    def _expired_reply(self, slow: bool) -> Reply:
        """The 421 for a deadline that passed: the data-rate one if ``slow``."""
        return self._slow_reply if slow else self._timeout_reply

    def _write_timeout(self, *, closing: bool) -> float:
        """Seconds one write may wait for a client that does not read: the idle timeout
        (RFC 5321 §4.5.3.2.7's 5 minutes without one), less for a 421 before closing."""
        limit = self.idle_timeout or BLOCKED_WRITE_WAIT
        return min(limit, GOODBYE_WRITE) if closing else limit

    # --------------------------------------------------------- per-client-address limits

    def _admit_client(self, peer: PeerAddress) -> tuple[str | None, bool]:
        """Count a new connection from ``peer`` against the per-client limits: its key
        (for ``_release_client``) and whether it is admitted (if not, it was not counted:
        send ``_busy_client`` and close)."""
        limits = self._client_limits
        if limits.max_connections is None and limits.max_rate is None:
            return None, True  # nothing to count: no address to work out
        key = client_key(peer)
        if key is None:
            return None, True
        now = time.monotonic()
        with self._limits_lock:
            why = self._client_limits.admit(key, now)
            if why is None:
                return key, True
            say = self._refusals_log.ready(now)
            held = self._refusals_log.take() if say else 0
        if say:
            log.warning(
                "refusing a connection from %s: too many %s from that address"
                " (%d more refusals not logged)",
                key,
                "connections" if why == "connections" else "new connections per minute",
                held,
            )
        return key, False

    def _release_client(self, key: str | None) -> None:
        if key is not None:
            with self._limits_lock:
                self._client_limits.release(key)

    _hooks_may_await: bool = True  # False where hooks must be plain (the blocking server)

    def _budgeted_auth(self, fn: Callable[..., object]) -> Callable[..., object]:
        """``fn`` (the credential check) behind the per-client AUTH failure budget: a
        client over it gets 454 4.7.0 without its credentials being checked. Every check
        counts as a failure up front (so parallel guesses are held too) and is taken back
        when it succeeds; a looked-up secret (CRAM-MD5, SCRAM) is settled at disconnect,
        once the session shows whether AUTH succeeded."""
        from ... import sasl  # only servers that check credentials need it

        budget, lock, unsettled = self._auth_budget, self._limits_lock, self._auth_unsettled
        refusal = self._auth_refusal
        may_await = self._hooks_may_await

        def settle(key: str | None, session: Session, value: object) -> None:
            if value is True or value is sasl.Verdict.OK:
                ok = True
            elif value is None or isinstance(value, (bool, sasl.Verdict)):
                ok = value is sasl.Verdict.TEMPORARY_FAILURE
            else:  # a stored secret: the mechanism decides later
                with lock:
                    unsettled[session.id] = key
                return
            if ok:
                with lock:
                    budget.forgive(key)

        def budgeted(session: Session, request: object) -> object:
            key = client_key(session.peer)
            with lock:
                now = time.monotonic()
                if budget.blocked(key, now):
                    raise Reject(refusal)
                budget.failed(key, now)
            try:
                result = fn(session, request)
            except Exception:  # the application's failure, not a guess
                with lock:
                    budget.forgive(key)
                raise
            if type(result) is not Reply and inspect.isawaitable(result):
                if not may_await:  # answered 451 by the Dispatcher: not a guess
                    with lock:
                        budget.forgive(key)
                    return result
                return settle_later(key, session, result)
            settle(key, session, result)
            return result

        async def settle_later(
            key: str | None, session: Session, result: Awaitable[object]
        ) -> object:
            try:
                value = await result
            except Exception:
                with lock:
                    budget.forgive(key)
                raise
            settle(key, session, value)
            return value

        return budgeted

    def _settling_disconnect(self, fn: Callable[..., object] | None) -> Callable[..., object]:
        """The disconnect hook, first settling a looked-up-secret AUTH of the session."""
        budget, lock, unsettled = self._auth_budget, self._limits_lock, self._auth_unsettled

        def disconnect(session: Session) -> object:
            with lock:
                if session.id in unsettled:
                    key = unsettled.pop(session.id)
                    if session.authenticated_user is not None:
                        budget.forgive(key)
            return fn(session) if fn is not None else None

        return disconnect

    def _limit_size(self, max_message_size: int | None) -> None:
        """Apply ``max_message_size`` (the server option, DEFAULT_MAX_MESSAGE_SIZE unless
        given) when the Config sets no limit, and advertise the limit in force as SIZE
        (RFC 1870 §4) unless the Config names SIZE itself."""
        if max_message_size is not None and max_message_size < 1:
            raise ValueError("max_message_size must be positive (or None: no limit)")
        config = self.config
        if config.max_message_size is None and max_message_size is not None:
            config = attrs.evolve(config, max_message_size=max_message_size)
        if config.max_message_size is not None and "SIZE" not in config.extensions:
            config = attrs.evolve(config, extensions={**config.extensions, "SIZE": ()})
        self.config = config
