# The protocol errors, above Reply (they carry a reply_hint) and below everything that
# raises them.
#
# Rules (h11's): the caller gets LocalProtocolError when it asks for something illegal and
# RemoteProtocolError when the peer broke the protocol. Internals raise LocalProtocolError;
# Connection.next_event() re-raises it as RemoteProtocolError, the one place remote errors
# appear. Both carry an optional reply_hint: the Reply a server would send about it.
from __future__ import annotations

from typing import NoReturn

from ._reply import Reply

__all__ = [
    "LocalProtocolError",
    "PlaintextAfterStartTLS",
    "RemoteProtocolError",
    "SMTPProtocolError",
]


class SMTPProtocolError(Exception):
    """Base of the two protocol errors. Never raised itself.

    ``reply_hint`` is the reply a server would send to the peer about the problem, when
    there is one that fits (for instance ``500 5.5.2 Line too long``).
    """

    def __init__(self, msg: str, reply_hint: Reply | None = None) -> None:
        if type(self) is SMTPProtocolError:
            raise TypeError("SMTPProtocolError is abstract; raise a subclass")
        super().__init__(msg)
        self.reply_hint = reply_hint

    def _reraise_as_remote_protocol_error(self) -> NoReturn:
        # Same trick as h11: keep the traceback, change only the type.
        self.__class__ = RemoteProtocolError
        raise self


class LocalProtocolError(SMTPProtocolError):
    """The caller asked for something the protocol forbids (wrong state, bad argument,
    a control character headed for the wire...)."""


class RemoteProtocolError(SMTPProtocolError):
    """The peer broke the protocol in a way the dialogue cannot recover from."""


class PlaintextAfterStartTLS(RemoteProtocolError):
    """The peer sent bytes after STARTTLS's 220 and before the TLS handshake: plaintext
    an attacker may have injected to run as a post-TLS command (CVE-2011-0411, RFC 3207
    §5). They are never carried over into the TLS session; the connection is unusable."""

    def __init__(self, msg: str = "plaintext received after STARTTLS (CVE-2011-0411)") -> None:
        super().__init__(msg)


# Shown as sansio_smtp.LocalProtocolError in tracebacks: where users import them from.
for _cls in (SMTPProtocolError, LocalProtocolError, RemoteProtocolError, PlaintextAfterStartTLS):
    _cls.__module__ = "sansio_smtp"
