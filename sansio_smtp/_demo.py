# The in-memory session behind ``python -m sansio_smtp demo``: a client and a server
# Connection wired back to back, every byte printed with what it means.
from __future__ import annotations

from collections.abc import Callable

from ._address import Address
from ._connection import NEED_DATA, PAUSED, Connection
from ._events import (
    Data,
    Ehlo,
    EndOfMessage,
    Event,
    Greeting,
    MailFrom,
    MessageData,
    Quit,
    RcptTo,
    Reply,
)
from ._state import Role
from .config import Config

_NOTES: dict[type[Event], str] = {
    Greeting: "the server is ready (RFC 5321 §3.1)",
    Ehlo: "the client asks for ESMTP and the server's extensions (§4.1.1.1)",
    MailFrom: "a mail transaction starts with the reverse-path (§4.1.1.2)",
    RcptTo: "one recipient per RCPT; each is accepted or refused on its own (§4.1.1.3)",
    Data: "the client asks to send the message content (§4.1.1.4)",
    MessageData: "content, dot-stuffed: a line starting with '.' gets another (§4.5.2)",
    EndOfMessage: "only <CRLF>.<CRLF> ends the content (§4.1.1.4)",
    Quit: "the client says goodbye; the server answers 221 and closes (§4.1.1.10)",
}

_MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: Bob <bob@example.net>\r\n"
    b"Subject: sans-IO\r\n"
    b"\r\n"
    b"Hello Bob,\r\n"
    b".this line starts with a dot, so the client doubles it\r\n"
    b".\r\n"
    b"The line above is a lone dot: content, not the end.\r\n"
)


def _wire_lines(data: bytes) -> list[str]:
    text = data.decode("utf-8", errors="replace")
    return [line + "\\r\\n" for line in text.split("\r\n")[:-1]] or [text]


def run_demo(out: Callable[[str], None] = print) -> list[tuple[str, bytes]]:
    """Run the demo session, write the transcript with ``out``, return the raw wire."""
    config = Config(
        hostname="mx.example.net",
        extensions={"PIPELINING": (), "8BITMIME": (), "ENHANCEDSTATUSCODES": ()},
    )
    client = Connection(Role.CLIENT, config)
    server = Connection(Role.SERVER, config)
    wire: list[tuple[str, bytes]] = []

    def show(who: str, event: Event, data: bytes) -> None:
        wire.append((who, data))
        note = _NOTES.get(type(event))
        if isinstance(event, Reply):
            from .codes import reply_code_info

            info = reply_code_info(event.code)
            note = info.meaning if info is not None else None
        for i, line in enumerate(_wire_lines(data)):
            suffix = f"    # {note}" if note and i == 0 else ""
            out(f"{who}: {line}{suffix}")

    def server_reads() -> Event:
        while True:
            event = server.next_event()
            if event is NEED_DATA or event is PAUSED:
                raise AssertionError("the server should have a complete event")
            assert isinstance(event, Event)
            if not isinstance(event, MessageData):
                return event

    def answer(event: Event, reply: Reply | None = None) -> Reply:
        reply = reply if reply is not None else server.default_reply(event)
        data = server.send(reply)
        show("S", reply, data)
        client.receive_data(data)
        got = client.next_event()
        assert got == reply, (got, reply)
        return reply

    def command(event: Event, reply: Reply | None = None) -> Reply:
        data = client.send(event)
        show("C", event, data)
        server.receive_data(data)
        return answer(server_reads(), reply)

    greeting = Greeting(lines="mx.example.net ESMTP sansio_smtp demo")
    data = server.send(greeting)
    show("S", greeting, data)
    client.receive_data(data)
    client.next_event()

    command(Ehlo(domain="client.example.org"))
    command(MailFrom(reverse_path="alice@example.org"))
    command(RcptTo(forward_path="bob@example.net"))
    refused = Reply(code=550, lines="No such user here", enhanced="5.1.1")
    command(RcptTo(forward_path=Address("nobody", "example.net")), refused)
    command(Data())
    for piece in client.send_with_data_passthrough(MessageData(data=_MESSAGE)):
        show("C", MessageData(data=bytes(piece)), bytes(piece))
        server.receive_data(piece)
    end = client.send(EndOfMessage())
    show("C", EndOfMessage(), end)
    server.receive_data(end)
    received = b""
    while True:
        event = server.next_event()
        if isinstance(event, MessageData):
            received += bytes(event.data)
        elif isinstance(event, EndOfMessage):
            break
        else:
            raise AssertionError(f"unexpected {event!r}")
    answer(event)
    command(Quit())
    out("")
    out(f"The server received {len(received)} octets, un-stuffed, for 1 of 2 recipients;")
    out(f"both sides end in state {client.state.value} / {server.state.value}.")
    assert received == _MESSAGE
    return wire
