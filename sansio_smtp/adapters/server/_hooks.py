# A handler's hooks, resolved once per server: the Dispatcher calls what is there and
# skips, at no cost, what is missing or only Handler's default.
from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from ..._events import Ehlo, Event, Helo, Lhlo, MailFrom, Quit, RcptTo, Rset
from ._handler import Authenticator, Handler

if TYPE_CHECKING:
    from ... import sasl

__all__ = ["Hooks"]

_HOOKS: Final = (
    "connect",
    "ehlo",
    "helo",
    "lhlo",
    "mail",
    "rcpt",
    "data_chunk",
    "data",
    "auth",
    "rset",
    "quit",
    "disconnect",
)


class Hooks:
    """A handler's hooks, resolved once per server: None where the handler has none or
    inherits Handler's default, so the Dispatcher skips the call."""

    def __init__(self, handler: object, authenticator: Authenticator | None = None) -> None:
        self.handler = handler
        found: dict[str, Callable[..., object] | None] = {}
        for name in _HOOKS:
            fn = getattr(handler, name, None)
            default = getattr(Handler, name)
            if getattr(type(handler), name, None) is default or not callable(fn):
                fn = None
            found[name] = fn
        self.connect = found["connect"]
        self.ehlo = found["ehlo"]
        self.helo = found["helo"]
        self.lhlo = found["lhlo"]
        self.mail = found["mail"]
        self.rcpt = found["rcpt"]
        self.data_chunk = found["data_chunk"]
        self.data = found["data"]
        self.rset = found["rset"]
        self.quit = found["quit"]
        self.disconnect = found["disconnect"]
        self.auth: Callable[..., object] | None = authenticator or found["auth"]
        #: the hook of each command a hook answers (Dispatcher._on_command), by event type
        self.commands: dict[type[Event], Callable[..., object] | None] = {
            Ehlo: self.ehlo,
            Helo: self.helo,
            Lhlo: self.lhlo,
            MailFrom: self.mail,
            RcptTo: self.rcpt,
            Rset: self.rset,
            Quit: self.quit,
        }
        #: the Dispatcher's handler of each event type for these hooks (its first
        #: connection builds it: _dispatcher._handlers_for)
        self.dispatch: dict[type, Callable[..., Any]] | None = None
        self.buffer_content = bool(getattr(handler, "buffer_content", True))
        self.blocking_io = bool(getattr(handler, "blocking_io", False))
        #: the server certificate's tls-server-end-point data, for SCRAM -PLUS
        self.channel_binding: sasl.ChannelBinding | None = None
        #: one secret per server for unknown users' SCRAM mock salts, so a prober cannot
        #: tell them apart by a salt that changes between attempts (RFC 5802 §5.1)
        self.scram_mock_key = os.urandom(32)  # as secrets.token_bytes(32)
