# The front-end bases of the client runtimes: ClientBase (the constructor: keyword
# arguments checked into a ClientOptions, and the engine; read-only views of the session)
# and AsyncClientCommands (the commands of the async runtimes, asyncio and AnyIO, each a
# run of engine steps through the runtime's own I/O loop).
from __future__ import annotations

import abc
import contextlib
import email.message
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

from ..._connection import Connection
from ..._events import (
    Greeting,
    Help,
    Noop,
    Reply,
    Rset,
    Vrfy,
)
from ..._extensions import Extensions
from .._io import Steps
from ._engine import ClientEngine
from ._errors import SMTPError
from ._message import MessageSpec, as_content, as_recipients, flatten_message
from ._options import DEFAULT_BDAT_CHUNK, ClientOptions, TLSMode, resolve_tls_mode
from ._results import SendResult, TranscriptEntry

if TYPE_CHECKING:
    import ssl
    from types import TracebackType

__all__ = ["AsyncClientCommands", "ClientBase"]

T = TypeVar("T")


class ClientBase(abc.ABC):
    """What every client flavour shares: the constructor (the options, checked into a
    ClientOptions, and the engine) and the read-only views of the engine. A flavour sets
    up its own transport state in ``_init_transport()`` and says whether it is
    ``connected``."""

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        tls: TLSMode | None = None,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        local_hostname: str | None = None,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        authzid: str | None = None,
        auth_mechanisms: Sequence[str] | None = None,
        allow_plaintext_auth: bool = False,
        lmtp: bool = False,
        timeout: float | None = None,
        timeouts: Mapping[str, float] | None = None,
        deadline: float | None = None,
        source_address: tuple[str, int] | None = None,
        pipelining: bool = True,
        chunking: bool = True,
        bdat_chunk_size: int = DEFAULT_BDAT_CHUNK,
        transcript: bool = False,
        on_transcript: Callable[[TranscriptEntry], None] | None = None,
    ) -> None:
        self._options = ClientOptions(
            host=host,
            port=port,
            tls=resolve_tls_mode(tls, port),
            server_hostname=server_hostname,
            local_hostname=local_hostname,
            username=username,
            password=password,
            token=token,
            authzid=authzid,
            auth_mechanisms=auth_mechanisms,
            allow_plaintext_auth=allow_plaintext_auth,
            lmtp=lmtp,
            timeout=timeout,
            timeouts=dict(timeouts or {}),
            deadline=deadline,
            pipelining=pipelining,
            chunking=chunking,
            bdat_chunk_size=bdat_chunk_size,
            transcript=transcript,
            on_transcript=on_transcript,
        )
        self._ssl_context = ssl_context
        self._source_address = source_address
        self._engine = ClientEngine(self._options)
        self._init_transport()

    @abc.abstractmethod
    def _init_transport(self) -> None:
        """The flavour's own state before connecting (socket, transport, lock...)."""

    @property
    @abc.abstractmethod
    def connected(self) -> bool:
        """A connection to the server is open."""

    def __repr__(self) -> str:
        opts = self._options
        state = "connected" if self.connected else "closed"
        return f"<{type(self).__name__} {opts.host}:{opts.port} {opts.tls.name} {state}>"

    @property
    def greeting(self) -> Greeting | None:
        """The server's greeting (RFC 5321 §4.3.2)."""
        return self._engine.greeting

    @property
    def extensions(self) -> Extensions:
        """What the server advertised in its last EHLO/LHLO reply (empty after HELO)."""
        return self._engine.conn.extensions

    @property
    def esmtp(self) -> bool:
        """The server accepted EHLO/LHLO (False after the fallback to HELO)."""
        return self._engine.esmtp

    @property
    def tls_active(self) -> bool:
        return self._engine.conn.tls_active

    @property
    def authenticated(self) -> bool:
        return self._engine.conn.authenticated

    @property
    def transcript(self) -> list[TranscriptEntry]:
        """The dialogue so far when ``transcript=True`` (AUTH data redacted): the lines of
        the client's Transcript (sansio_smtp.Transcript), each a TranscriptLine."""
        return self._engine.transcript

    @property
    def connection(self) -> Connection:
        """The core Connection (read-only use: state, pending, extensions, ...)."""
        return self._engine.conn


_AsyncClient = TypeVar("_AsyncClient", bound="AsyncClientCommands")


class AsyncClientCommands(ClientBase):
    """The commands of the async flavours (asyncio, AnyIO): each runs engine steps through
    the flavour's own ``_locked`` I/O loop; ``async with`` connects, and QUITs and closes
    at the end."""

    @abc.abstractmethod
    async def _locked(self, steps: Steps[T]) -> T:
        """Run ``steps`` on the connection, one operation at a time."""

    @abc.abstractmethod
    async def connect(self) -> None:
        """Connect, read the greeting, EHLO, STARTTLS and AUTH as configured."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the connection (no QUIT). Safe to call more than once."""

    async def __aenter__(self: _AsyncClient) -> _AsyncClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.connected and self._engine.usable:
                with contextlib.suppress(SMTPError):
                    await self.quit()
        finally:
            await self.aclose()

    async def quit(self) -> Reply | None:
        """QUIT (RFC 5321 §4.1.1.10) and close. Returns the 221 reply, or None when the
        session was not in a state to QUIT or the server closed first."""
        if not self.connected:
            return None
        try:
            return await self._locked(self._engine.quit())
        finally:
            await self.aclose()

    async def send_message(
        self,
        msg: email.message.Message,
        from_addr: str | None = None,
        to_addrs: str | Sequence[str] | None = None,
        *,
        mail_params: Mapping[str, str | None] | None = None,
        rcpt_params: Mapping[str, str | None] | None = None,
    ) -> SendResult:
        """Send an email.message.Message, envelope from its headers (as
        ``smtplib.SMTP.send_message``); see SMTPClient.send_message."""
        sender, recipients, content, international = flatten_message(msg, from_addr, to_addrs)
        return await self._locked(
            self._engine.send_mail(
                sender, recipients, content, mail_params, rcpt_params, international=international
            )
        )

    async def sendmail(
        self,
        from_addr: str,
        to_addrs: str | Iterable[str],
        msg: bytes | bytearray | memoryview | str,
        *,
        mail_params: Mapping[str, str | None] | None = None,
        rcpt_params: Mapping[str, str | None] | None = None,
    ) -> SendResult:
        """Send RFC 5322 message content; see SMTPClient.sendmail."""
        return await self._locked(
            self._engine.send_mail(
                from_addr, as_recipients(to_addrs), as_content(msg), mail_params, rcpt_params
            )
        )

    async def sendmail_many(self, messages: Iterable[MessageSpec]) -> list[SendResult]:
        """Send a batch of messages, about one round trip each on a PIPELINING server;
        one SendResult per message, refusals included; see SMTPClient.sendmail_many.
        Raises SMTPBatchInterrupted (with ``.results``) when the connection fails."""
        return await self._locked(self._engine.send_many(messages))

    async def noop(self) -> Reply:
        """NOOP (RFC 5321 §4.1.1.9); the reply whatever its code."""
        return await self._locked(self._engine.command(Noop()))

    async def rset(self) -> Reply:
        """RSET (RFC 5321 §4.1.1.5): abort the current transaction."""
        return await self._locked(self._engine.command(Rset()))

    async def vrfy(self, text: str) -> Reply:
        """VRFY (RFC 5321 §4.1.1.6)."""
        return await self._locked(self._engine.command(Vrfy(text=text)))

    async def help(self, topic: str | None = None) -> Reply:
        """HELP (RFC 5321 §4.1.1.8)."""
        return await self._locked(self._engine.command(Help(topic=topic)))
