# The delivery worker (asyncio): takes due messages from a Queue, finds each recipient
# domain's mail exchangers, runs SMTP sessions with the library's client, records each
# recipient's fate, schedules retries, and sends delay warnings and bounces through the same
# queue. The decisions are the pure policy's (classify, route, Attempt, RetryPolicy,
# build_report); this module only does the I/O and the bookkeeping.
#
# Rules: STARTTLS is opportunistic between mail hosts (RFC 3207 §4, RFC 7435: encrypt when
# offered, without requiring a certificate the sender cannot check), and required, with the
# certificate and name verified, for a message sent with REQUIRETLS (RFC 8689 §4.2.1).
# Concurrency is bounded overall and per destination host. A message's lease is released
# when its attempt ends, whatever happened; if the worker dies, the lease expires and the
# recipients are still queued. Reports are enqueued with the null reverse-path and never
# reported on themselves (RFC 3461 §6.2).
from __future__ import annotations

import asyncio
import contextlib
import email.utils
import ipaddress
import logging
import random
import ssl
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timezone
from typing import final

import attrs

from .._address import Address
from .._events import Reply
from .._status import EnhancedStatusCode
from ._attempt import Attempt, Deferred, Delivered, Failed, Outcome, SessionResult
from ._classify import (
    BAD_CONNECTION,
    Classification,
    Scope,
    Stage,
    Verdict,
    classify,
    connection_failure,
)
from ._dns import Resolver
from ._dsn import Action, DeliveryReport, RecipientStatus, build_report
from ._mtasts import MtaSts, apply_policy
from ._queue import Queue, QueuedMessage, RecipientState, worker_owner
from ._retry import RetryPolicy
from ._route import Route

__all__ = ["DeliveryWorker", "RecipientReport"]

log = logging.getLogger("sansio_smtp.delivery")

#: MAIL parameters passed on to the next hop as they came (the DSN ones are acted on here).
_PASSED_ON = ("BODY", "SMTPUTF8", "REQUIRETLS")
#: RFC 3463 §3.7: X.6.3 "Conversion required but not supported"
_CONVERSION = EnhancedStatusCode(5, 6, 3)


@final
@attrs.frozen(kw_only=True)
class RecipientReport:
    """What one attempt did for one recipient: ``outcome`` is Delivered, Deferred (with
    ``retry_at``) or Failed; ``bounce`` the report enqueued for the sender, if any."""

    message_id: str
    recipient: str
    outcome: Outcome
    bounce: str | None = None

    @property
    def reply(self) -> str:
        return reply_text(self.outcome.result)


def reply_text(result: Classification) -> str:
    """``451 4.3.0 Try again later``, or why no reply came."""
    reply = result.reply
    if reply is None:
        return result.reason
    enhanced = f" {reply.enhanced}" if reply.enhanced is not None else ""
    return f"{reply.code}{enhanced} {' '.join(reply.lines)}".rstrip()


def _domain(recipient: str) -> str | None:
    try:
        address = Address.parse(recipient)
    except ValueError:
        return None
    return None if address.domain is None else address.domain.lower()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _session_result(host: str, recipients: Sequence[str], error: BaseException) -> SessionResult:
    """What a failed sendmail() says about each recipient."""
    from ..adapters import (
        SMTPConnectError,
        SMTPDataError,
        SMTPHeloError,
        SMTPNotSupportedError,
        SMTPRecipientsRefused,
        SMTPSenderRefused,
        SMTPTLSError,
    )

    if isinstance(error, SMTPSenderRefused):
        return SessionResult(
            host=host, recipients=dict.fromkeys(recipients, classify(error.reply, Stage.MAIL))
        )
    if isinstance(error, SMTPRecipientsRefused):
        return SessionResult(
            host=host,
            recipients={r: classify(reply, Stage.RCPT) for r, reply in error.refused.items()},
        )
    if isinstance(error, SMTPDataError):
        result = error.result
        out = {r: classify(reply, Stage.RCPT) for r, reply in result.refused.items()}
        for r in recipients:
            out.setdefault(r, classify(error.reply, Stage.DATA_END))
        return SessionResult(host=host, recipients=out)
    if isinstance(error, SMTPConnectError) and error.reply is not None:
        return SessionResult(host=host, connection=classify(error.reply, Stage.GREETING))
    if isinstance(error, SMTPHeloError):
        return SessionResult(host=host, connection=classify(error.reply, Stage.HELLO))
    if isinstance(error, SMTPNotSupportedError):
        # RFC 6152 §3 / RFC 6531 §3.4: this host cannot take the message as it is; another
        # exchanger may (permanent here, so only the last one turns it into a bounce)
        failure = Classification(
            verdict=Verdict.PERMANENT,
            scope=Scope.CONNECTION,
            stage=Stage.MAIL,
            reply=error.reply,
            reason=str(error),
            status=_CONVERSION,
        )
        return SessionResult(host=host, connection=failure)
    if isinstance(error, SMTPTLSError):
        return SessionResult(
            host=host,
            connection=connection_failure(f"TLS with {host} failed: {error}", BAD_CONNECTION),
        )
    reply = getattr(error, "reply", None)
    if isinstance(reply, Reply) and reply.code == 421:  # RFC 5321 §3.8
        return SessionResult(host=host, connection=classify(reply, Stage.MAIL))
    return SessionResult(
        host=host,
        connection=connection_failure(f"{host}: {error or type(error).__name__}", BAD_CONNECTION),
    )


class DeliveryWorker:
    """Delivers a Queue's messages. ``run()`` makes one pass over the due messages (all
    queued ones with ``due_only=False``) and returns a RecipientReport per recipient
    attempted; ``run_forever()`` repeats it.

    - ``resolver``: DNS (Resolver); ``port``: the SMTP port of every exchanger (25;
      tests use another); ``hostname``: our name (EHLO, Reporting-MTA, MAILER-DAEMON).
    - ``policy``, ``rng``, ``clock``: the RetryPolicy, the random source of MX order and
      jitter, and the clock (``time.time``), all replaceable for tests.
    - ``mta_sts``: an MtaSts: domains that publish an enforce policy (RFC 8461) get only
      the MX hosts it names, each with verified TLS.
    - ``max_sessions`` / ``max_sessions_per_host``: concurrency bounds; ``timeout``: the
      client's per-reply timeout; ``lease``: how long a claim keeps other workers off.
    """

    def __init__(
        self,
        queue: Queue,
        *,
        resolver: Resolver,
        hostname: str,
        port: int = 25,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        local_names: Collection[str] = (),
        max_sessions: int = 20,
        max_sessions_per_host: int = 2,
        timeout: float = 300.0,
        lease: float = 3600.0,
        owner: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        mta_sts: MtaSts | None = None,
    ) -> None:
        self.queue = queue
        self.resolver = resolver
        self.hostname = hostname
        self.port = port
        self.policy = policy or RetryPolicy()
        self.rng = rng or random.Random()
        self.clock = clock
        self.local_names = {hostname, *local_names}
        self.timeout = timeout
        self.lease = lease
        self.owner = owner or worker_owner()
        self._sessions = asyncio.Semaphore(max_sessions)
        self._per_host_limit = max_sessions_per_host
        self._per_host: dict[str, asyncio.Semaphore] = {}
        self.mta_sts = mta_sts
        self._verified = ssl_context or ssl.create_default_context()
        self._opportunistic = ssl.create_default_context()
        self._opportunistic.check_hostname = False
        self._opportunistic.verify_mode = ssl.CERT_NONE

    # ----------------------------------------------------------------------- passes

    async def run(self, *, due_only: bool = True, limit: int = 100) -> list[RecipientReport]:
        """One pass: attempt every claimed message once."""
        now = self.clock()
        claimed = self.queue.claim(
            now=now, owner=self.owner, lease=self.lease, limit=limit, due_only=due_only
        )
        results = await asyncio.gather(
            *(self._attempt_message(m, due_only=due_only) for m in claimed)
        )
        if claimed:
            self.queue.remove_finished()
        return [r for group in results for r in group]

    async def run_forever(
        self, *, interval: float = 30.0, stop: asyncio.Event | None = None
    ) -> None:
        """Pass after pass, ``interval`` seconds apart, until ``stop`` is set."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            await self.run()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    # ------------------------------------------------------------------ one message

    async def _attempt_message(
        self, msg: QueuedMessage, *, due_only: bool
    ) -> list[RecipientReport]:
        try:
            pending = msg.pending(self.clock() if due_only else None)
            by_domain: dict[str | None, list[str]] = {}
            for r in pending:
                by_domain.setdefault(_domain(r.address), []).append(r.address)
            groups = await asyncio.gather(
                *(self._attempt_domain(msg, d, rcpts) for d, rcpts in by_domain.items())
            )
            outcomes: dict[str, Outcome] = {}
            for group in groups:
                outcomes.update(group)
            return self._record(msg, outcomes)
        finally:
            self.queue.release(msg.id, self.owner)

    async def _attempt_domain(
        self, msg: QueuedMessage, domain: str | None, recipients: list[str]
    ) -> dict[str, Outcome]:
        """Each recipient's fate; an unexpected error (a bug, a handler's exception) defers
        this domain's recipients like a failed connection, so one bad message can neither
        stop the queue nor be retried without backing off."""
        try:
            return await self._route_and_send(msg, domain, recipients)
        except Exception as exc:  # the worker keeps going: logged, retried later
            log.exception("delivery of %s to %s failed unexpectedly", msg.id, domain)
            attempt = Attempt(recipients, Route(domain=domain or "", hosts=()))
            attempt.no_route(connection_failure(f"internal error: {exc!r}"))
            return attempt.outcomes(
                policy=self.policy,
                arrival=msg.arrival,
                attempts={r.address: r.attempts + 1 for r in msg.recipients},
                now=self.clock(),
                rng=self.rng,
            )

    async def _route_and_send(
        self, msg: QueuedMessage, domain: str | None, recipients: list[str]
    ) -> dict[str, Outcome]:
        attempts = {r.address: r.attempts + 1 for r in msg.recipients}
        if domain is None:
            bad = Classification(
                verdict=Verdict.PERMANENT,
                scope=Scope.RECIPIENT,
                stage=Stage.ROUTE,
                reply=None,
                reason="not a deliverable address",
                status=EnhancedStatusCode(5, 1, 3),  # RFC 3463: bad destination syntax
            )
            return {r: Failed(result=bad) for r in recipients}
        found = await self.resolver.route(domain, local_names=self.local_names, rng=self.rng)
        verify = False
        if self.mta_sts is not None and not isinstance(found, Classification):
            # RFC 8461 §4.2: under enforce, only the named MX hosts, each with verified TLS
            found, verify = apply_policy(found, await self.mta_sts.policy(domain))
        if isinstance(found, Classification):
            attempt = Attempt(recipients, Route(domain=domain, hosts=()))
            attempt.no_route(found)
        else:
            attempt = Attempt(recipients, found)
            while (host := attempt.next_host()) is not None:
                attempt.record(await self._session(host, msg, list(attempt.pending), verify=verify))
        return attempt.outcomes(
            policy=self.policy,
            arrival=msg.arrival,
            attempts=attempts,
            now=self.clock(),
            rng=self.rng,
        )

    async def _session(
        self, host: str, msg: QueuedMessage, recipients: list[str], *, verify: bool = False
    ) -> SessionResult:
        from ..adapters import AsyncSMTPClient, SMTPError, TLSMode

        addresses = [host] if _is_ip(host) else await self.resolver.addresses(host)
        if not addresses:
            return SessionResult(host=host, connection=connection_failure(f"{host} has no address"))
        # RFC 8689 §4.2.1 (REQUIRETLS) and RFC 8461 §4.2 (MTA-STS enforce): TLS with a
        # certificate valid for the MX host's name, or no delivery to that host
        require_tls = verify or "REQUIRETLS" in {k.upper() for k in msg.params}
        params = {k: v for k, v in msg.params.items() if k.upper() in _PASSED_ON} or None
        semaphore = self._per_host.setdefault(host, asyncio.Semaphore(self._per_host_limit))
        result = SessionResult(
            host=host, connection=connection_failure(f"{host}: no address answered")
        )
        async with self._sessions, semaphore:
            for address in addresses:
                client = AsyncSMTPClient(
                    host=address,
                    port=self.port,
                    local_hostname=self.hostname,
                    server_hostname=host,
                    tls=TLSMode.STARTTLS_REQUIRED
                    if require_tls
                    else TLSMode.STARTTLS_OPPORTUNISTIC,
                    ssl_context=self._verified if require_tls else self._opportunistic,
                    timeout=self.timeout,
                )
                try:
                    async with client:
                        sent = await client.sendmail(
                            msg.sender or "", recipients, msg.content, mail_params=params
                        )
                except (SMTPError, OSError) as exc:
                    result = _session_result(host, recipients, exc)
                    if result.connection is not None and result.connection.stage is Stage.CONNECT:
                        continue  # the next address of this host (RFC 5321 §5.1)
                    return result
                out = {r: classify(reply, Stage.DATA_END) for r, reply in sent.accepted.items()}
                data_reply = sent.data_reply
                if data_reply is not None:
                    out = {r: classify(data_reply, Stage.DATA_END) for r in sent.accepted}
                out.update({r: classify(reply, Stage.RCPT) for r, reply in sent.refused.items()})
                return SessionResult(host=host, recipients=out)
        return result

    # -------------------------------------------------------------- bookkeeping

    def _record(self, msg: QueuedMessage, outcomes: Mapping[str, Outcome]) -> list[RecipientReport]:
        now = self.clock()
        by_address = {r.address: r for r in msg.recipients}
        failed: list[RecipientStatus] = []
        delayed: list[RecipientStatus] = []
        for rcpt, outcome in outcomes.items():
            text = reply_text(outcome.result)
            if isinstance(outcome, Delivered):
                self.queue.record(msg.id, rcpt, state=RecipientState.DELIVERED, reply=text)
            elif isinstance(outcome, Deferred):
                queued = by_address[rcpt]
                warn = self.policy.warning_due(arrival=msg.arrival, now=now, warned=queued.warned)
                self.queue.record(
                    msg.id,
                    rcpt,
                    state=RecipientState.QUEUED,
                    reply=text,
                    next_attempt=outcome.retry_at,
                    warned=True if warn else None,
                )
                if warn:
                    until = msg.arrival + self.policy.give_up
                    delayed.append(self._status(msg, rcpt, outcome, Action.DELAYED, until))
            else:
                self.queue.record(msg.id, rcpt, state=RecipientState.FAILED, reply=text)
                failed.append(self._status(msg, rcpt, outcome, Action.FAILED, None))
        bounce = self._report(msg, failed) if failed else None
        if delayed:
            self._report(msg, delayed)
        return [
            RecipientReport(
                message_id=msg.id,
                recipient=rcpt,
                outcome=outcome,
                bounce=bounce if isinstance(outcome, Failed) else None,
            )
            for rcpt, outcome in outcomes.items()
        ]

    def _status(
        self,
        msg: QueuedMessage,
        rcpt: str,
        outcome: Outcome,
        action: Action,
        until: float | None,
    ) -> RecipientStatus:
        result = outcome.result
        params = next((r.params for r in msg.recipients if r.address == rcpt), {})
        notify = params.get("NOTIFY")
        host = getattr(outcome, "host", None)
        return RecipientStatus(
            final_recipient=rcpt,
            action=action,
            status=result.status,
            original_recipient=params.get("ORCPT"),
            remote_mta=host if result.reply is not None else None,
            diagnostic_code=reply_text(result) if result.reply is not None else None,
            last_attempt_date=_datetime(self.clock()),
            will_retry_until=None if until is None else _datetime(until),
            notify=None if notify is None else tuple(notify.upper().split(",")),
        )

    def _report(self, msg: QueuedMessage, recipients: list[RecipientStatus]) -> str | None:
        """Enqueue the RFC 3464 report for ``msg``'s sender; its queue id, or None."""
        report = DeliveryReport(
            reporting_mta=self.hostname,
            recipients=tuple(recipients),
            arrival_date=_datetime(msg.arrival),
            original_envelope_id=msg.params.get("ENVID"),
            original=msg.content,
        )
        message_id = email.utils.make_msgid(domain=self.hostname)
        built = build_report(
            report,
            sender=msg.sender,
            date=_datetime(self.clock()),
            message_id=message_id,
            ret=msg.params.get("RET"),
        )
        if built is None or msg.sender is None:
            return None
        return self.queue.enqueue(None, [msg.sender], built.as_bytes(), now=self.clock())


def _datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).replace(microsecond=0)
