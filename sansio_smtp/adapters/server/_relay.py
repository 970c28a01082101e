# RelayHandler: forwards each accepted message to a smart host through the client
# adapters, with a Received: header (RFC 5321 §4.4), and answers with the upstream outcome.
#
# Strategy: under a running event loop it uses AsyncSMTPClient, else SMTPClient (imported
# when first used, from the adapters package); one upstream connection per message.
# Rules: replies keep the upstream code and enhanced code; LMTP gets one reply per
# recipient (RFC 2033 §4.2); an unreachable upstream is 451 4.4.1.
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

from ..._events import Reply
from ._handler import DataResult, Envelope, Handler, Session

if TYPE_CHECKING:
    import ssl

    from ..client import SendResult, TLSMode

log = logging.getLogger("sansio_smtp.server")

# RFC 3463 4.4.1: no answer from host
UPSTREAM_DOWN: Final = Reply(
    code=451, lines="Upstream server unavailable, try again later", enhanced="4.4.1"
)
# DSN parameters a relay passes on (RFC 3461 §4.3-4.4); BODY, SMTPUTF8 and SIZE are chosen
# by the client adapter from the content itself.
_RELAYED_MAIL_PARAMS: Final = ("RET", "ENVID")


class RelayHandler(Handler):
    """Forward each accepted message to another server (a smart host) through the client
    adapters, with a ``Received:`` header added (RFC 5321 §4.4), and answer the client
    with the outcome. The same object works in both servers: under a running event loop
    (AsyncioServer) it uses AsyncSMTPClient, else SMTPClient. One upstream connection
    per message.

    Replies: all recipients accepted upstream -> 250; all refused -> the upstream refusal
    (its code and enhanced code); some refused -> 250 (the refusals are logged: this
    relay generates no bounces). In LMTP each recipient gets its own upstream outcome
    (RFC 2033 §4.2). Upstream unreachable or timing out -> ``451 4.4.1``.
    """

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        tls: TLSMode | None = None,
        ssl_context: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
        local_hostname: str | None = None,
        timeout: float | None = 60.0,
    ) -> None:
        self.host, self.port = host, port
        self._options: dict[str, object] = {
            "tls": tls,
            "ssl_context": ssl_context,
            "username": username,
            "password": password,
            "local_hostname": local_hostname,
            "timeout": timeout,
        }

    def data(self, session: Session, envelope: Envelope) -> DataResult:
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._replies(session, envelope, self._send_blocking(envelope))
        return self._send_async(session, envelope)

    def _arguments(self, envelope: Envelope) -> tuple[str, list[str], bytes, dict[str, str | None]]:
        sender = "" if envelope.mail_from is None else str(envelope.mail_from)
        params = {k: v for k, v in envelope.mail_params.items() if k in _RELAYED_MAIL_PARAMS}
        return sender, [str(r) for r in envelope.rcpt_tos], envelope.with_trace(), params

    def _send_blocking(self, envelope: Envelope) -> SendResult | Reply:
        from ..client import SMTPClient, SMTPError

        sender, rcpts, content, params = self._arguments(envelope)
        try:
            with SMTPClient(self.host, self.port, **self._options) as client:  # type: ignore[arg-type]
                return client.sendmail(sender, rcpts, content, mail_params=params)
        except SMTPError as exc:
            return self._failure(exc)

    async def _send_async(self, session: Session, envelope: Envelope) -> Reply | list[Reply]:
        from ..client import AsyncSMTPClient, SMTPError

        sender, rcpts, content, params = self._arguments(envelope)
        outcome: SendResult | Reply
        try:
            async with AsyncSMTPClient(self.host, self.port, **self._options) as client:  # type: ignore[arg-type]
                outcome = await client.sendmail(sender, rcpts, content, mail_params=params)
        except SMTPError as exc:
            outcome = self._failure(exc)
        return self._replies(session, envelope, outcome)

    @staticmethod
    def _failure(exc: Exception) -> SendResult | Reply:
        result = getattr(exc, "result", None)
        if result is not None:
            return result  # type: ignore[no-any-return]
        reply = getattr(exc, "reply", None)
        if isinstance(reply, Reply) and reply.code >= 400:
            return reply
        log.warning("relay failed: %s", exc)
        return UPSTREAM_DOWN

    def _replies(
        self, session: Session, envelope: Envelope, outcome: SendResult | Reply
    ) -> Reply | list[Reply]:
        rcpts = [str(r) for r in envelope.rcpt_tos]
        if isinstance(outcome, Reply):
            return [outcome] * len(rcpts) if session.lmtp else outcome
        ok = Reply(code=250, lines=f"Relayed to {self.host}", enhanced="2.0.0")
        per_rcpt = [outcome.refused.get(r, ok) for r in rcpts]
        if session.lmtp:
            return per_rcpt
        if not outcome.accepted:
            return list(outcome.refused.values())[-1]
        if outcome.refused:
            log.warning("relay: recipients refused upstream: %s", dict(outcome.refused))
        return ok
