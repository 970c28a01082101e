"""Shared test helpers: drain a connection, feed bytes in chunks, and an in-memory
client<->server pair."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sansio_smtp import (
    CLIENT,
    NEED_DATA,
    PAUSED,
    SERVER,
    Config,
    Connection,
    ConnectionClosed,
    Event,
    Greeting,
)


def drain(conn: Connection) -> list[Event]:
    """Every event next_event() has now, stopping at NEED_DATA, PAUSED or ConnectionClosed."""
    events: list[Event] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA or event is PAUSED:
            return events
        assert isinstance(event, Event)
        events.append(event)
        if isinstance(event, ConnectionClosed):
            return events


def chunked(data: bytes, sizes: Sequence[int]) -> list[bytes]:
    """Split ``data`` at the given chunk sizes (cycled); sizes of 0 are skipped."""
    out: list[bytes] = []
    i = 0
    k = 0
    usable = [s for s in sizes if s > 0] or [len(data) or 1]
    while i < len(data):
        n = usable[k % len(usable)]
        out.append(data[i : i + n])
        i += n
        k += 1
    return out


def feed(conn: Connection, data: bytes, sizes: Sequence[int] | None = None) -> list[Event]:
    """Feed ``data`` (whole, or in chunks of ``sizes``) and drain after each chunk."""
    events: list[Event] = []
    for piece in chunked(data, sizes) if sizes else [data]:
        conn.receive_data(piece)
        events.extend(drain(conn))
    return events


def feed_ways(data: bytes) -> Iterable[tuple[str, list[bytes]]]:
    """h11's habit: the input whole and byte by byte."""
    yield "whole", [data]
    yield "bytewise", [data[i : i + 1] for i in range(len(data))]


class ConnectionPair:
    """A client and a server wired back to back in memory."""

    def __init__(
        self,
        client_config: Config | None = None,
        server_config: Config | None = None,
        greeting: Greeting | None = None,
    ) -> None:
        self.client = Connection(CLIENT, client_config)
        self.server = Connection(SERVER, server_config)
        self.wire: list[tuple[str, bytes]] = []  # ("C"|"S", bytes) as written
        if greeting is not None:
            self.server_sends(greeting)

    def client_sends(self, event: Event) -> list[Event]:
        """Client sends ``event``; returns what the server reads."""
        data = self.client.send(event)
        self.wire.append(("C", data))
        return feed(self.server, data)

    def server_sends(self, event: Event) -> list[Event]:
        """Server sends ``event``; returns what the client reads."""
        data = self.server.send(event)
        self.wire.append(("S", data))
        return feed(self.client, data)

    def exchange(self, command: Event) -> Event:
        """Client sends a command, the server answers with its default reply; returns
        the reply event the client read."""
        received = self.client_sends(command)
        assert len(received) == 1, received
        read = self.server_sends(self.server.default_reply(received[0]))
        # after a 221 or 421 the client also reads ConnectionClosed
        assert len(read) == 1 or self.client.state.value == "CLOSED", read
        return read[0]
