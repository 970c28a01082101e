# MemoryPair: a client and a server Connection wired back to back in memory, sharing one
# Transcript, so a notebook can run a whole SMTP dialogue with no network.
#
# Strategy: every method is one step a person would name ("the client sends RCPT", "the
# server answers"), made of the core's own calls: send() / send_with_data_passthrough() on
# one side, receive_data() and next_event() on the other. Nothing is hidden: the
# Connections, their events and the wire are all reachable. The server answers in order,
# as the core makes it: after a command it reads nothing more until the reply is sent, and
# then reads on (pipelined commands).
from __future__ import annotations

from .._connection import NEED_DATA, PAUSED, Connection
from .._events import (
    Bdat,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Greeting,
    InvalidMessage,
    MessageData,
    Reply,
)
from .._state import Role, State
from .._transcript import Transcript
from ..config import Config

__all__ = ["MemoryPair"]


def _drain(conn: Connection) -> tuple[list[Event], bool]:
    """The events ``conn`` can read now, and whether it stopped PAUSED."""
    events: list[Event] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA or event is PAUSED:
            return events, event is PAUSED
        assert isinstance(event, Event)
        events.append(event)
        if isinstance(event, ConnectionClosed):
            return events, False


class MemoryPair:
    """A client and a server back to back in memory.

    ``config`` configures both sides (``client_config``/``server_config`` one side each).
    The server sends ``greeting`` (default: 220 and its hostname) at once, unless
    ``greet=False`` (then call greet()). All traffic is recorded in ``transcript``.

    ``pair.exchange(Ehlo(domain="client.example"))`` sends a command and returns the
    Reply the client read; ``send()`` and ``reply()`` are the two halves.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        client_config: Config | None = None,
        server_config: Config | None = None,
        greeting: Greeting | None = None,
        greet: bool = True,
        transcript: Transcript | None = None,
    ) -> None:
        self.transcript = transcript if transcript is not None else Transcript()
        self.client = Connection(Role.CLIENT, client_config or config, transcript=self.transcript)
        self.server = Connection(Role.SERVER, server_config or config, transcript=self.transcript)
        #: every event the server has read, and every event the client has read
        self.server_events: list[Event] = []
        self.client_events: list[Event] = []
        self._invalid: InvalidMessage | None = None  # read in place of EndOfMessage
        if greet:
            self.greet(greeting)

    # ------------------------------------------------------------------ steps

    def greet(self, greeting: Greeting | None = None) -> Greeting:
        """The server sends its greeting (default: 220 with its hostname)."""
        if greeting is None:
            greeting = Greeting(lines=f"{self.server.config.hostname} ESMTP sansio_smtp")
        self.client.receive_data(self.server.send(greeting))
        self.client_events += _drain(self.client)[0]
        return greeting

    def send(self, event: Event) -> list[Event]:
        """The client sends ``event``; returns what the server read as a result."""
        for chunk in self.client.send_with_data_passthrough(event):
            self.server.receive_data(chunk)
        return self._server_reads()

    def _server_reads(self) -> list[Event]:
        events = _drain(self.server)[0]
        for event in events:
            if isinstance(event, InvalidMessage):
                self._invalid = event
        self.server_events += events
        return events

    @property
    def owed(self) -> Event | None:
        """What the server must answer now: the oldest command it read and has not
        answered (an InvalidCommand, EndOfMessage, Bdat..., or the InvalidMessage that
        replaced the end of a message), an LmtpDelivery for LMTP's later per-recipient
        replies; None when it owes nothing, also while it still reads a command's data
        (message content, a BDAT chunk). Read from the server itself (``pending`` and
        ``timeout``), so it stays right when the server is driven directly."""
        server = self.server
        pending = server.pending
        if not pending or server.timeout is not None:
            return None  # a server that waits for the client has a timeout running
        if server.state in (State.GREETING, State.TLS, State.CLOSED, State.ERROR):
            return None
        first = pending[0]
        if self._invalid is not None and isinstance(first, (EndOfMessage, Bdat)):
            return self._invalid
        return first

    def default_reply(self) -> Reply | None:
        """The reply an accept-everything server gives to ``owed`` (None: nothing owed)."""
        owed = self.owed
        return None if owed is None else self.server.default_reply(owed)

    def reply(self, reply: Reply | None = None) -> Reply:
        """The server answers what it owes, with ``reply`` or its default reply; returns
        the Reply the client read. The server then reads on (pipelined commands)."""
        if reply is None:
            reply = self.default_reply()
            if reply is None:
                raise RuntimeError("the server owes no reply now")
        answered = self.owed
        self.client.receive_data(self.server.send(reply))
        if answered is self._invalid:
            self._invalid = None
        got = _drain(self.client)[0]
        self.client_events += got
        if self.server.state is not State.CLOSED:
            self._server_reads()
        replies = [e for e in got if isinstance(e, Reply)]
        assert replies, got
        return replies[-1]

    def exchange(self, command: Event, reply: Reply | None = None) -> Reply:
        """send(command), then reply(reply): one command and its answer."""
        self.send(command)
        return self.reply(reply)

    def send_message(self, content: bytes, *, reply: Reply | None = None) -> Reply:
        """DATA, the content, and the end of the message, each answered by the server
        (``reply`` answers the end of the message); returns that final reply. The
        envelope (MAIL, RCPT) must be in place."""
        answer = self.exchange(Data())
        if answer.code != 354:
            return answer
        self.send(MessageData(data=content))
        self.send(EndOfMessage())
        return self.reply(reply)

    def tls_handshake(self) -> None:
        """Stand-in for the TLS handshake after STARTTLS's 220: both sides call
        tls_established(), as an adapter does once its handshake succeeds."""
        self.server.tls_established()
        self.client.tls_established()
        self.transcript.note("TLS handshake (simulated): both sides call tls_established()")

    def close(self) -> None:
        """Both sides see the connection close."""
        self.server.receive_data(b"")
        self.client.receive_data(b"")
        self.server_events += _drain(self.server)[0]
        self.client_events += _drain(self.client)[0]

    # ------------------------------------------------------------------ views

    @property
    def states(self) -> tuple[State, State]:
        """(client state, server state)."""
        return self.client.state, self.server.state

    def _repr_html_(self) -> str:
        from .._repr import connection_html

        return (
            "<div>"
            + connection_html(self.client)
            + " "
            + connection_html(self.server)
            + "</div>"
            + self.transcript._repr_html_()
        )

    def __repr__(self) -> str:
        return f"<MemoryPair client={self.client.state.value} server={self.server.state.value}>"
