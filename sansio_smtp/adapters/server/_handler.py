# The server's application API: what a handler is (its hooks and what they return), the
# Session and Envelope objects it sees, Reject, and the Received: trace header.
#
# Strategy: a handler is any object with some of the hook methods of ``Handler`` (missing
# ones, and ones inherited unchanged from ``Handler``, are skipped at no cost). A hook
# returns a Reply, returns None for the RFC-correct default (``Connection.default_reply``),
# or raises ``Reject(reply)``; any other exception is logged and answered ``451 4.3.0``
# (RFC 5321 §4.2.3). Hooks are plain methods, so one handler serves the blocking and the
# async servers alike; the async servers also accept ``async def`` hooks.
# Rules: nothing here does I/O; the Dispatcher keeps Session and Envelope in step with the
# core. The email package and the SASL mechanisms are imported where they are used (a
# Received: header, ``Envelope.message``; AUTH): a plain server never loads them.
from __future__ import annotations

import itertools
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Final, TypeAlias

import attrs

if TYPE_CHECKING:
    import email.message

    from ... import sasl
    from ...proxy import ProxyHeader  # (a server without the PROXY protocol never loads it)
from ..._address import Address
from ..._events import Ehlo, Helo, Lhlo, MailFrom, Quit, RcptTo, Reply, Rset
from ..._params import Params

#: A client's address: (host, port) for TCP, the socket path (often "") for Unix sockets.
PeerAddress: TypeAlias = "tuple[str, int] | str | None"

#: What a hook may return: a Reply, None (the default reply), or, in the asyncio server, an
#: awaitable of either.
HookResult: TypeAlias = "Reply | Awaitable[Reply | None] | None"
DataResult: TypeAlias = "Reply | Sequence[Reply] | Awaitable[Reply | Sequence[Reply] | None] | None"
AuthAnswer: TypeAlias = "sasl.CredentialAnswer | None"
#: ``(session, request) -> answer``: checks credentials for AUTH (see Handler.auth).
Authenticator: TypeAlias = (
    "Callable[[Session, sasl.NeedCredentials], AuthAnswer | Awaitable[AuthAnswer]]"
)

_session_ids = itertools.count(1)
_ID_PREFIX: Final = f"{int(time.time()) & 0xFFFFFF:06X}{os.getpid() & 0xFFFF:04X}"


# ------------------------------------------------------------------------ the objects


class Reject(Exception):
    """Raise from a hook to answer with ``reply``: ``raise Reject(550, "No such user",
    "5.1.1")`` or ``raise Reject(Reply(...))``. The reply keeps its code (never only a
    string)."""

    def __init__(self, reply: Reply | int, text: str = "", enhanced: str | None = None) -> None:
        if not isinstance(reply, Reply):
            reply = Reply(code=reply, lines=text or "Rejected", enhanced=enhanced)
        super().__init__(str(reply))
        self.reply = reply


@attrs.define(eq=False)
class Envelope:
    """One mail transaction (RFC 5321 §3.3), as the handler sees it.

    - ``mail_from``: the reverse-path, None for the null path ``<>``; ``mail_params``.
    - ``rcpt_tos``: the accepted recipients, in order, with their ``rcpt_params``.
    - ``content``: the message as received (CRLF line endings, dot-stuffing removed), set
      when the message ends (empty while streaming, and for handlers that set
      ``buffer_content = False``).
    - Copied from the session when MAIL was accepted, for trace headers: ``peer``,
      ``helo_name``, ``hostname`` (ours), ``protocol`` (RFC 3848: ESMTP, ESMTPS, ESMTPSA,
      LMTP...), ``authenticated_user``, ``session_id``.
    """

    mail_from: Address | None
    mail_params: Params = attrs.field(factory=Params)
    rcpt_tos: list[Address] = attrs.field(factory=list)
    rcpt_params: list[Params] = attrs.field(factory=list)
    content: bytes = attrs.field(default=b"", repr=lambda c: f"<{len(c)} bytes>")
    peer: PeerAddress = None
    helo_name: str | None = None
    hostname: str = "localhost"
    protocol: str = "ESMTP"
    authenticated_user: str | None = None
    session_id: str = ""
    #: where a store put the message (a Maildir file, an mbox), once it has
    stored: str | None = None

    def received_header(self, *, date: str | None = None) -> bytes:
        """This transaction's ``Received:`` trace header (RFC 5321 §4.4), CRLF-terminated."""
        return received_header(self, date=date)

    def with_trace(self) -> bytes:
        """``content`` with the Received: header prepended (RFC 5321 §4.4: a relay or final
        delivery MUST insert it at the top of the message)."""
        return received_header(self) + self.content

    @property
    def message(self) -> email.message.EmailMessage:
        """``content`` parsed (``email.policy.default``): headers and body as a test or a
        handler reads them."""
        import email
        import email.message
        import email.policy

        parsed = email.message_from_bytes(self.content, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed


@attrs.define(eq=False)
class Session:
    """One client connection, as the handler sees it; updated as the dialogue goes on.

    - ``peer`` / ``local``: the addresses of the two ends; ``hostname``: our name.
    - ``id``: a short unique id (used as the Received: ``id``).
    - ``helo_name``, ``esmtp`` (EHLO/LHLO rather than HELO), ``lmtp``.
    - ``tls`` (with ``tls_version`` and ``tls_cipher``), ``authenticated_user`` and
      ``auth_mechanism``: forgotten on STARTTLS, which starts the session over (RFC 3207
      §4.2), except ``tls``.
    - ``envelope``: the transaction in progress, or None; ``transactions``: messages
      accepted so far; ``extra``: the handler's own per-session state.
    """

    peer: PeerAddress = None
    local: PeerAddress = None
    #: the PROXY protocol header the connection began with (ServerOptions.proxy_protocol)
    proxy: ProxyHeader | None = None
    hostname: str = "localhost"
    lmtp: bool = False
    id: str = attrs.field(factory=lambda: f"{_ID_PREFIX}{next(_session_ids):X}")
    helo_name: str | None = None
    esmtp: bool = False
    tls: bool = False
    tls_version: str | None = None
    tls_cipher: str | None = None
    authenticated_user: str | None = None
    auth_mechanism: str | None = None
    envelope: Envelope | None = None
    transactions: int = 0
    extra: dict[str, object] = attrs.field(factory=dict)

    @property
    def protocol(self) -> str:
        """The RFC 3848 ``with`` keyword for this session: SMTP (HELO), ESMTP, LMTP, plus
        S under TLS and A once authenticated (ESMTPSA, LMTPS...)."""
        if not self.esmtp and not self.lmtp:
            return "SMTP"
        base = "LMTP" if self.lmtp else "ESMTP"
        return base + ("S" if self.tls else "") + ("A" if self.authenticated_user else "")


def _tcp_info(peer: PeerAddress) -> str:
    # RFC 5321 §4.4 TCP-info: an address-literal (§4.1.3), "IPv6:" for IPv6.
    if isinstance(peer, tuple):
        host = peer[0]
        return f"[IPv6:{host}]" if ":" in host else f"[{host}]"
    return "localhost"


def received_header(envelope: Envelope, *, date: str | None = None) -> bytes:
    """``Received: from HELO (TCP-info) by HOST with PROTOCOL id ID [for <rcpt>]; DATE``
    (RFC 5321 §4.4 Time-stamp-line; RFC 3848 protocol names). ``for`` appears only with a
    single recipient, so a copy does not reveal the other recipients (§7.2)."""
    if date is None:
        import email.utils

        date = email.utils.formatdate(localtime=False, usegmt=False)
    helo = envelope.helo_name or "unknown"
    parts = [f"Received: from {helo} ({_tcp_info(envelope.peer)})"]
    parts.append(f"\tby {envelope.hostname} with {envelope.protocol} id {envelope.session_id}")
    if len(envelope.rcpt_tos) == 1:
        parts.append(f"\tfor <{envelope.rcpt_tos[0]}>; {date}")
    else:
        parts[-1] += ";"
        parts.append(f"\t{date}")
    return ("\r\n".join(parts) + "\r\n").encode("utf-8")


# --------------------------------------------------------------------------- handlers


class Handler:
    """Base class of server handlers: every hook is optional and does the default.

    Hooks run in order, one at a time per connection, and may be ``async def`` in the
    asyncio server (reading stops while one runs). Each returns a Reply, None for the
    default (``Connection.default_reply``), or raises ``Reject``.

    - ``connect(session)``: None greets with 220; a 554 reply refuses service (the client
      may only QUIT, RFC 5321 §3.1), a 421 closes.
    - ``ehlo/helo/lhlo(session, event)``, ``mail(session, event)``, ``rcpt(session, event)``,
      ``rset(session, event)``, ``quit(session, event)``: answer that command.
      ``session.envelope`` is the transaction so far.
    - ``data_chunk(session, envelope, chunk)``: each piece of message content as it arrives
      (DATA or BDAT); raise Reject to fail the message (the reply is sent at its end).
    - ``data(session, envelope)``: the message has ended; ``envelope.content`` holds it
      unless ``buffer_content`` is False. LMTP (RFC 2033 §4.2): return one Reply per
      recipient in ``envelope.rcpt_tos`` order, or one Reply for all.
    - ``auth(session, request)``: check credentials for AUTH: ``request`` is a
      ``sasl.VerifyPassword`` (answer True/False), ``LookupPassword`` (``StoredPassword``),
      ``LookupScramKeys`` (``ScramStoredKeys``) or ``VerifyToken`` (True/False); None
      fails. A server built with a ``{user: password}`` mapping uses that instead.
    - ``disconnect(session)``: the connection is gone (no reply).

    Set ``blocking_io = True`` when ``data_chunk`` and ``data`` block on I/O (files,
    fsync): the async servers then run them in a worker thread, so other clients are
    served meanwhile; they must then be plain methods, safe to call from another thread.
    """

    #: keep the message content for ``data`` (False: only ``data_chunk`` sees it)
    buffer_content: bool = True
    #: ``data_chunk`` and ``data`` block: the async servers run them in a worker thread
    blocking_io: bool = False

    def connect(self, session: Session) -> HookResult:
        return None

    def ehlo(self, session: Session, event: Ehlo) -> HookResult:
        return None

    def helo(self, session: Session, event: Helo) -> HookResult:
        return None

    def lhlo(self, session: Session, event: Lhlo) -> HookResult:
        return None

    def mail(self, session: Session, event: MailFrom) -> HookResult:
        return None

    def rcpt(self, session: Session, event: RcptTo) -> HookResult:
        return None

    def data_chunk(
        self, session: Session, envelope: Envelope, chunk: bytes
    ) -> Awaitable[None] | None:
        return None

    def data(self, session: Session, envelope: Envelope) -> DataResult:
        return None

    def auth(
        self, session: Session, request: sasl.NeedCredentials
    ) -> AuthAnswer | Awaitable[AuthAnswer]:
        return None

    def rset(self, session: Session, event: Rset) -> HookResult:
        return None

    def quit(self, session: Session, event: Quit) -> HookResult:
        return None

    def disconnect(self, session: Session) -> Awaitable[None] | None:
        return None
