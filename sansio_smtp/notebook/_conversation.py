# The conversation explorer: drive an in-memory client<->server pair by hand. Pick or type
# the client's next command, edit the reply the server gives (its default_reply() comes
# pre-filled), and watch both state machines, the wire and the events.
#
# Strategy: the widgets only collect text and call the MemoryPair; refresh() redraws every
# view from the pair's Connections and Transcript, so what is shown is always what the
# core says. Errors (a command the client refuses, a reply that cannot answer) are shown,
# never raised into the notebook. Every control is an attribute, so tests set values and
# click() buttons headless.
from __future__ import annotations

import html

from .._errors import SMTPProtocolError
from .._events import Bdat, EndOfMessage, Event, MessageData
from .._repr import connection_html, event_text, reply_html, state_diagram_svg
from .._state import TRANSITIONS, State
from ..config import Config
from . import _ipyw as w
from ._pair import MemoryPair
from ._parse import COMMAND_TEMPLATES, parse_auth_response, parse_command, parse_reply, reply_text

__all__ = ["DEFAULT_CONFIG", "ConversationExplorer", "conversation_explorer"]

#: The server the explorer starts with: the common ESMTP extensions; AUTH only after
#: STARTTLS (RFC 4954 §4), as real servers do.
DEFAULT_CONFIG = Config(
    hostname="mx.example.net",
    extensions={
        "PIPELINING": (),
        "SIZE": ("10240000",),
        "8BITMIME": (),
        "ENHANCEDSTATUSCODES": (),
        "CHUNKING": (),
        "STARTTLS": (),
        "AUTH": ("PLAIN", "LOGIN"),
    },
)

_CONTENT = "Subject: hello\r\n\r\nHi Bob,\r\n.a line starting with a dot\r\n"


def _allowed(state: State) -> str:
    verbs = []
    for event_type in TRANSITIONS.get(state, {}):
        verb = getattr(event_type, "verb", "") or event_type.__name__
        if verb not in verbs:
            verbs.append(verb)
    return " ".join(verbs) or "nothing"


class ConversationExplorer:
    """The widgets of conversation_explorer(); display it, or use its parts:

    - ``template`` (Dropdown) fills ``command`` (Text); ``send_button`` makes the client
      send it. During AUTH the line is an AUTH response (base64 or ``*``).
    - ``reply`` (Textarea) holds the server's next reply, pre-filled with
      ``server.default_reply(event)``; ``reply_button`` sends it. With ``auto_reply``
      checked the server answers every command with its default reply at once.
    - ``content`` (Textarea), ``content_button``, ``end_button``: message content after
      354 (or a BDAT chunk's octets) and the end of the message.
    - ``tls_button``: after STARTTLS's 220, both sides call tls_established().
    - ``status``, ``diagram``, ``log``, ``message``: HTML views; ``pair``: the MemoryPair.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        client_config: Config | None = None,
        server_config: Config | None = None,
    ) -> None:
        self._configs = (config or DEFAULT_CONFIG, client_config, server_config)
        self.pair = self._new_pair()
        self.template = w.dropdown(COMMAND_TEMPLATES, description="command", width="18em")
        self.command = w.text(
            COMMAND_TEMPLATES[0][1], placeholder="EHLO client.example", width="26em"
        )
        self.send_button = w.button(
            "client sends", style="primary", tooltip="Connection.send(event) on the client"
        )
        self.reply = w.textarea(rows=3, width="32em", placeholder="the server owes no reply")
        self.reply_button = w.button(
            "server replies", style="success", tooltip="Connection.send(reply) on the server"
        )
        self.auto_reply = w.checkbox(False, description="server replies at once (default)")
        self.content = w.textarea(_CONTENT.replace("\r\n", "\n"), rows=4, width="32em")
        self.content_button = w.button("client sends content")
        self.end_button = w.button("client ends message")
        self.tls_button = w.button("TLS handshake", tooltip="tls_established() on both sides")
        self.reset_button = w.button("start over", style="warning")
        self.status = w.html()
        self.owed = w.html()
        self.message = w.html()
        self.diagram = w.html()
        self.log = w.html()
        self.template.observe(self._on_template, names="value")
        self.send_button.on_click(lambda _b: self.send_command())
        self.reply_button.on_click(lambda _b: self.send_reply())
        self.content_button.on_click(lambda _b: self.send_content())
        self.end_button.on_click(lambda _b: self.end_message())
        self.tls_button.on_click(lambda _b: self.tls_handshake())
        self.reset_button.on_click(lambda _b: self.reset())
        self.widget = w.box(
            [
                self.status,
                w.box([self.template, self.command, self.send_button], vertical=False),
                self.owed,
                w.box([self.reply, w.box([self.reply_button, self.auto_reply])], vertical=False),
                w.box(
                    [self.content, w.box([self.content_button, self.end_button])], vertical=False
                ),
                w.box([self.tls_button, self.reset_button], vertical=False),
                self.message,
                self.log,
                self.diagram,
            ]
        )
        self.refresh()

    def _new_pair(self) -> MemoryPair:
        config, client_config, server_config = self._configs
        return MemoryPair(config, client_config=client_config, server_config=server_config)

    # ------------------------------------------------------------------ actions

    def _on_template(self, change: w.Change) -> None:
        value = change.get("new")
        if isinstance(value, str):
            self.command.value = value

    def _fail(self, exc: Exception) -> None:
        kind = type(exc).__name__
        self.message.value = (
            f'<div class="sansio-smtp-error" style="color:#cf222e"><b>{html.escape(kind)}</b>: '
            f"{html.escape(str(exc))}</div>"
        )

    def _ok(self, text: str) -> None:
        self.message.value = f'<div style="color:#57606a">{html.escape(text)}</div>'

    def _after_client(self, read: list[Event]) -> None:
        names = ", ".join(event_text(e) for e in read if not isinstance(e, MessageData))
        self._ok(f"the server read: {names}" if names else "the server read nothing yet")
        if self.auto_reply.value:
            try:
                while self.pair.owed is not None:
                    self.pair.reply()
            except SMTPProtocolError as exc:
                self._fail(exc)
        self.refresh()

    def send_command(self) -> None:
        """The client sends what ``command`` says."""
        try:
            if self.pair.client.state is State.AUTH:
                event: Event = parse_auth_response(self.command.value)
            else:
                event = parse_command(self.command.value)
            read = self.pair.send(event)
        except (ValueError, SMTPProtocolError) as exc:
            self._fail(exc)
            self.refresh()
            return
        self._after_client(read)

    def send_reply(self) -> None:
        """The server sends what ``reply`` says."""
        try:
            reply = parse_reply(self.reply.value)
            got = self.pair.reply(reply)
        except (ValueError, SMTPProtocolError, RuntimeError) as exc:
            self._fail(exc)
            self.refresh()
            return
        self._ok(f"the client read: {event_text(got)}")
        self.refresh()

    def send_content(self) -> None:
        """The client sends ``content`` as MessageData (newlines become CRLF)."""
        data = self.content.value.replace("\r\n", "\n").replace("\n", "\r\n").encode()
        try:
            read = self.pair.send(MessageData(data=data))
        except SMTPProtocolError as exc:
            self._fail(exc)
            self.refresh()
            return
        self._after_client(read)

    def end_message(self) -> None:
        """The client sends EndOfMessage (``<CRLF>.<CRLF>``)."""
        try:
            read = self.pair.send(EndOfMessage())
        except SMTPProtocolError as exc:
            self._fail(exc)
            self.refresh()
            return
        self._after_client(read)

    def tls_handshake(self) -> None:
        """Both sides finish a (simulated) TLS handshake."""
        try:
            self.pair.tls_handshake()
        except SMTPProtocolError as exc:
            self._fail(exc)
            self.refresh()
            return
        self._ok("TLS is up on both sides: the session starts over, send EHLO again")
        self.refresh()

    def reset(self) -> None:
        """A new pair, greeted."""
        self.pair = self._new_pair()
        self._ok("a new session")
        self.refresh()

    # ------------------------------------------------------------------ views

    def refresh(self) -> None:
        """Redraw every view from the pair."""
        pair = self.pair
        client, server = pair.client, pair.server
        self.status.value = (
            "<div>"
            + connection_html(client)
            + " "
            + connection_html(server)
            + f'<div style="color:#57606a;font-size:0.85em">in {client.state.value} the '
            f"table lets the client send: {html.escape(_allowed(client.state))}</div></div>"
        )
        owed = pair.owed
        default = pair.default_reply()
        if owed is not None and default is not None:
            self.owed.value = (
                '<div style="font-size:0.9em">the server owes a reply to '
                f"<code>{html.escape(event_text(owed))}</code>; its default reply:</div>"
                + reply_html(default)
            )
            self.reply.value = reply_text(default)
            self.reply_button.disabled = False
        else:
            self.owed.value = (
                '<div style="color:#57606a;font-size:0.9em">the server owes no reply</div>'
            )
            self.reply.value = ""
            self.reply_button.disabled = True
        pending = client.pending
        in_chunk = bool(pending) and isinstance(pending[-1], Bdat)  # its octets follow
        in_data = client.state is State.DATA and not pending
        self.content_button.disabled = not (in_data or in_chunk)
        self.end_button.disabled = client.state is not State.DATA or bool(client.pending)
        self.tls_button.disabled = not (client.state is State.TLS and server.state is State.TLS)
        self.send_button.disabled = client.state in (State.CLOSED, State.ERROR, State.TLS)
        self.log.value = (
            '<div style="max-height:32em;overflow:auto">' + pair.transcript._repr_html_() + "</div>"
        )
        self.diagram.value = state_diagram_svg(_highlights(client.state, server.state))

    def _repr_mimebundle_(self, **kwargs: object) -> object:
        method = getattr(self.widget, "_repr_mimebundle_", None)
        return method(**kwargs) if callable(method) else None


def _highlights(client: State, server: State) -> dict[State, str]:
    if client is server:
        return {client: "client+server"}
    return {client: "client", server: "server"}


def conversation_explorer(
    config: Config | None = None,
    *,
    client_config: Config | None = None,
    server_config: Config | None = None,
) -> ConversationExplorer:
    """A client and a server in memory, stepped by hand (see ConversationExplorer).
    ``config`` configures both sides (default DEFAULT_CONFIG)."""
    return ConversationExplorer(config, client_config=client_config, server_config=server_config)
