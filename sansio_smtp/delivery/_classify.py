# What a reply means for delivery: success, a transient failure (try again later) or a
# permanent one (give up and bounce), and for whom: one recipient, the whole message, or
# the connection (try the next mail exchanger). Pure policy: no I/O, no clock.
#
# Rules, each from its RFC:
# - The basic reply code decides (RFC 5321 §4.2.1: 4yz transient, 5yz permanent); the
#   enhanced code (RFC 3463) refines the explanation, and when its class contradicts the
#   reply code (a 5.x.x under a 451), the reply code still decides and the contradiction is
#   said (RFC 3463 §2: the class must agree with the reply code; SMTP clients act on the
#   reply code, RFC 5321 §4.2).
# - 421, at any stage, is about the connection: the server is closing (RFC 5321 §3.8).
# - A 552 answering RCPT with no enhanced code, or with X.5.3, is "too many recipients":
#   transient, and the rest go in another transaction (RFC 5321 §4.5.3.1.10); so is 452.
# - A failure at the greeting or EHLO/HELO is about this host: try the next MX (RFC 5321
#   §5.1: "the SMTP client SHOULD try at least two addresses"); at MAIL, DATA or the final
#   dot about the whole message; at RCPT about that recipient.
from __future__ import annotations

import enum
from typing import final

import attrs

from .. import codes
from .._events import Reply
from .._status import EnhancedStatusCode

__all__ = [
    "BAD_CONNECTION",
    "NO_ANSWER",
    "Classification",
    "Scope",
    "Stage",
    "Verdict",
    "classify",
    "connection_failure",
    "route_failure",
]


class Stage(enum.Enum):
    """Where in the session a reply came (or the connection failed)."""

    ROUTE = "route"  # no host to try: DNS said so (null MX, no such domain, a loop)
    CONNECT = "connect"  # no reply: the TCP connection or TLS handshake failed
    GREETING = "greeting"
    HELLO = "EHLO"  # EHLO/HELO/LHLO
    STARTTLS = "STARTTLS"
    AUTH = "AUTH"
    MAIL = "MAIL"
    RCPT = "RCPT"
    DATA = "DATA"  # the DATA command (354 expected) or a BDAT chunk
    DATA_END = "DATA-END"  # the reply to the final "." (or BDAT LAST)


class Verdict(enum.Enum):
    SUCCESS = "success"
    TRANSIENT = "transient"  # try again later (RFC 5321 §4.2.1 4yz)
    PERMANENT = "permanent"  # do not repeat as it is (5yz): bounce


class Scope(enum.Enum):
    RECIPIENT = "recipient"  # this recipient only
    TRANSACTION = "transaction"  # this recipient, in another transaction now (452)
    MESSAGE = "message"  # every recipient of the transaction
    CONNECTION = "connection"  # this host: the next MX may do better


@final
@attrs.frozen(kw_only=True)
class Classification:
    """What a reply means for delivery. ``reason``: a short plain-language explanation,
    from the code catalogue and the rules applied. ``reply`` is None for a connection
    that failed before any reply, or no route. ``status``: the RFC 3463 code a delivery
    status notification reports (the reply's own when its class agrees)."""

    verdict: Verdict
    scope: Scope
    stage: Stage
    reply: Reply | None
    reason: str
    status: EnhancedStatusCode

    @property
    def transient(self) -> bool:
        return self.verdict is Verdict.TRANSIENT

    @property
    def permanent(self) -> bool:
        return self.verdict is Verdict.PERMANENT


_STAGE_SCOPE = {
    Stage.ROUTE: Scope.MESSAGE,
    Stage.CONNECT: Scope.CONNECTION,
    Stage.GREETING: Scope.CONNECTION,
    Stage.HELLO: Scope.CONNECTION,
    Stage.STARTTLS: Scope.CONNECTION,
    Stage.AUTH: Scope.CONNECTION,
    Stage.MAIL: Scope.MESSAGE,
    Stage.RCPT: Scope.RECIPIENT,
    Stage.DATA: Scope.MESSAGE,
    Stage.DATA_END: Scope.MESSAGE,
}

# The codes that accept each stage (RFC 5321 §4.3.2; 354 for DATA, 334 inside AUTH).
_SUCCESS = {Stage.DATA: (354, 250), Stage.AUTH: (235, 334)}


def _explain(reply: Reply) -> str:
    parts: list[str] = []
    if reply.enhanced is not None:
        info = codes.enhanced_code_info(reply.enhanced)
        if info is not None:
            parts.append(f"{reply.enhanced}: {info.title}")
    if not parts:
        reply_info = codes.reply_code_info(reply.code)
        if reply_info is not None:
            parts.append(f"{reply.code}: {reply_info.meaning}")
    return "; ".join(parts) or f"{reply.code}: an unregistered reply code"


def _stray_enhanced(reply: Reply) -> EnhancedStatusCode | None:
    """An enhanced code of another class than the reply code's at the start of the text
    ("451 5.1.1 ..."), which the reader leaves in the text."""
    if reply.enhanced is not None or not reply.lines:
        return None
    word = reply.lines[0].split(" ", 1)[0]
    try:
        code = EnhancedStatusCode.parse(word)
    except ValueError:
        return None
    return code if code.class_ != reply.code // 100 else None


def _status(
    reply: Reply, verdict: Verdict, enhanced: EnhancedStatusCode | None
) -> EnhancedStatusCode:
    """The enhanced code when its class agrees with the verdict, else its subject and
    detail under the verdict's class, else X.0.0 (RFC 3463 §3.1: "Other undefined
    status")."""
    klass = {Verdict.SUCCESS: 2, Verdict.TRANSIENT: 4, Verdict.PERMANENT: 5}[verdict]
    if enhanced is not None and enhanced.class_ == klass:
        return enhanced
    if enhanced is not None:
        return EnhancedStatusCode(klass, enhanced.subject, enhanced.detail)
    return EnhancedStatusCode(klass, 0, 0)


def classify(reply: Reply, stage: Stage) -> Classification:
    """What ``reply``, answering ``stage``, means for delivery."""
    code = reply.code
    reason = _explain(reply)
    scope = _STAGE_SCOPE[stage]
    enhanced = reply.enhanced
    if code == 421:
        # RFC 5321 §3.8: the server is closing the transmission channel, whatever the stage
        verdict, scope = Verdict.TRANSIENT, Scope.CONNECTION
        reason = f"the server is closing the connection ({reason})"
    elif code < 400:
        ok = _SUCCESS.get(stage)
        if (ok is None and 200 <= code < 300) or (ok is not None and code in ok):
            verdict = Verdict.SUCCESS
        else:
            # a 3yz where none is due is a protocol violation: do not count on it
            verdict, scope = Verdict.TRANSIENT, Scope.CONNECTION
            reason = f"{code} does not answer {stage.value} (RFC 5321 §4.3.2)"
    else:
        verdict = Verdict.TRANSIENT if code < 500 else Verdict.PERMANENT
        stray = _stray_enhanced(reply)
        if stray is not None:
            # a Reply holds no enhanced code of another class: the text starts with it
            reason += (
                f"; the enhanced code {stray} contradicts the reply code {code}: the"
                " reply code decides (RFC 3463 §2)"
            )
            enhanced = stray
        if stage is Stage.RCPT and (
            code == 452 or (code == 552 and (enhanced is None or enhanced.subject_detail == "5.3"))
        ):
            # RFC 5321 §4.5.3.1.10: "too many recipients"; 552 is RFC 821's mistake for 452
            verdict, scope = Verdict.TRANSIENT, Scope.TRANSACTION
            reason += "; too many recipients: send the rest in another transaction"
    return Classification(
        verdict=verdict,
        scope=scope,
        stage=stage,
        reply=reply,
        reason=reason,
        status=_status(reply, verdict, enhanced),
    )


#: RFC 3463 §3.5: 4.4.1 "No answer from host", 4.4.2 "Bad connection"
NO_ANSWER = EnhancedStatusCode(4, 4, 1)
BAD_CONNECTION = EnhancedStatusCode(4, 4, 2)


def connection_failure(reason: str, status: EnhancedStatusCode = NO_ANSWER) -> Classification:
    """No reply at all: the connection could not be made or broke (RFC 5321 §4.5.4.1:
    retry later; §5.1: try the next address first)."""
    return Classification(
        verdict=Verdict.TRANSIENT,
        scope=Scope.CONNECTION,
        stage=Stage.CONNECT,
        reply=None,
        reason=reason,
        status=status,
    )


def route_failure(reason: str, status: EnhancedStatusCode) -> Classification:
    """No host to try (RFC 5321 §5.1, RFC 7505): permanent when ``status`` is 5.x.x (no
    such domain, null MX, a loop), transient when 4.x.x (DNS did not answer)."""
    verdict = Verdict.PERMANENT if status.class_ == 5 else Verdict.TRANSIENT
    return Classification(
        verdict=verdict,
        scope=Scope.MESSAGE,
        stage=Stage.ROUTE,
        reply=None,
        reason=reason,
        status=status,
    )
