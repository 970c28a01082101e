# The AUTH exchange of a server session (RFC 4954): the Dispatcher's steps from an AUTH
# command to its outcome, asking the application's credential check on the way.
#
# Strategy: a mixin of the Dispatcher, in its own module so that the Dispatcher's module
# is the per-command hot path; the SASL mechanisms (``sansio_smtp.sasl``, imported at the
# first AUTH: a server without AUTH never loads them) do the exchange, this only answers
# each step and asks the ``auth`` hook (plain or awaited, through the Dispatcher's
# ``_called``).
# Rules: what the server offers is the core's rule (Connection.ehlo_reply); a mechanism
# error is a 454 4.7.0, never a crash; secrets never reach a log or a repr.
from __future__ import annotations

import functools
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Final, TypeAlias

from ..._events import Auth, AuthResponse, Event, Reply
from ..._extensions import Extensions
from .._io import ServerOp
from ._handler import Reject

if TYPE_CHECKING:
    from ... import sasl
    from ..._connection import Connection
    from ._handler import Session
    from ._hooks import Hooks

__all__ = ["AUTH_TEMPFAIL", "AuthSteps", "Outcome", "Steps"]

# RFC 4954 §6: 454 4.7.0 Temporary authentication failure.
AUTH_TEMPFAIL: Final = Reply(code=454, lines="Temporary authentication failure", enhanced="4.7.0")

#: a hook's value, or the exception it raised
Outcome: TypeAlias = "tuple[object, BaseException | None]"
#: steps (I/O requests, ``.._io``) that end with a hook's Outcome
Steps: TypeAlias = "Generator[ServerOp, object, Outcome]"


class AuthSteps:
    """The AUTH part of the Dispatcher (which provides what is declared here)."""

    __slots__ = ("_mech",)  # the SASL exchange in progress

    _mech: sasl.ServerMechanism | None

    if TYPE_CHECKING:
        conn: Connection
        hooks: Hooks
        session: Session

        def _answer(self, event: Event, reply: Reply) -> None: ...

        def _report(self, exc: BaseException) -> None: ...

        def _called(self, fn: Callable[..., object], args: tuple[object, ...]) -> Steps: ...

    def _auth_start(self, event: Auth) -> Generator[ServerOp, object, None]:
        from ... import sasl

        conn = self.conn
        config = conn.config
        binding = self.hooks.channel_binding
        # What this server offers now is the core's rule (Connection.ehlo_reply: -PLUS
        # only under TLS, RFC 5802 §6), asked here rather than worked out again.
        offered = Extensions.from_ehlo_lines(conn.ehlo_reply().lines[1:]).get("AUTH", ())
        plus = any(sasl.binds_channel(m) for m in offered)
        try:
            mech = sasl.server_mechanism(
                event.mechanism,
                hostname=config.hostname,
                timestamp=int(time.time()),
                # RFC 5802 §6: binding data iff -PLUS was advertised (a "y" client is
                # then a downgrade), which the core does only under TLS
                channel_bindings=(binding,) if plus and binding is not None else (),
                mock_key=self.hooks.scram_mock_key,
            )
        except sasl.UnsupportedMechanism as exc:
            self._answer(event, exc.reply_hint)
            return
        except ValueError as exc:  # e.g. a hostname CRAM-MD5 cannot use
            self._report(exc)
            self._answer(event, AUTH_TEMPFAIL)
            return
        self._mech = mech
        initial = event.initial_response
        yield from self._auth_step(event, lambda: mech.start(initial))

    def _auth_response(self, event: AuthResponse) -> Generator[ServerOp, object, None]:
        mech = self._mech
        if mech is None:  # pragma: no cover - the core only emits it during AUTH
            self._answer(event, AUTH_TEMPFAIL)
            return
        data = event.data
        if data is None:
            yield from self._auth_step(event, mech.cancel)  # RFC 4954 §4: "*" -> 501
        else:
            yield from self._auth_step(event, lambda: mech.receive(data))

    def _auth_step(
        self, event: Event, advance: Callable[[], sasl.ServerStep]
    ) -> Generator[ServerOp, object, None]:
        """Advance the SASL exchange until it has something to say: a challenge, the
        outcome, or a question for the application (the credential check) first."""
        from ... import sasl

        mech = self._mech
        assert mech is not None
        while True:
            try:
                step = advance()
            except (sasl.SASLError, TypeError, ValueError) as exc:
                self._report(exc)
                self._mech = None
                self._answer(event, AUTH_TEMPFAIL)
                return
            if isinstance(step, sasl.Challenge):
                self._answer(event, Reply.auth_challenge(step.data))
                return
            if isinstance(step, sasl.Success):
                self._mech = None
                session = self.session
                session.authenticated_user = step.authzid or step.authcid or ""
                session.auth_mechanism = step.mechanism
                self._answer(event, step.reply_hint)
                return
            if isinstance(step, sasl.Failure):
                self._mech = None
                self._answer(event, step.reply_hint)
                return
            # NeedCredentials: ask the application
            answer: object = sasl.Verdict.UNKNOWN_USER
            fn = self.hooks.auth
            if fn is not None:
                value, error = yield from self._called(fn, (self.session, step))
                if isinstance(error, Reject):
                    self._mech = None
                    self._answer(event, error.reply)
                    return
                if error is not None:
                    self._report(error)
                    answer = sasl.Verdict.TEMPORARY_FAILURE
                elif value is not None:
                    answer = value
            advance = functools.partial(mech.supply, answer)  # type: ignore[arg-type]
