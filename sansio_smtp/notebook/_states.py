# The state-machine view: sansio_smtp.TRANSITIONS drawn as SVG (generated in _repr, no
# graphviz), the current state of a live connection (or of both sides of a MemoryPair)
# highlighted, and the table row of a chosen state spelled out.
#
# Strategy: the drawing is redrawn from the table and the connection on refresh(); the
# core calls nothing back, so a live view refreshes when asked (refresh(), or the
# "refresh" button; the conversation explorer refreshes its own after every step).
from __future__ import annotations

import html

from .._connection import Connection
from .._repr import state_diagram_svg
from .._state import TRANSITIONS, State
from . import _ipyw as w
from ._pair import MemoryPair

__all__ = ["StateMachineView", "state_machine_view", "transitions_html"]


def transitions_html(state: State) -> str:
    """The row of TRANSITIONS for ``state``: each event type and where a positive reply
    to it leads."""
    row = TRANSITIONS.get(state, {})
    cell = 'style="padding:1px 8px;text-align:left"'
    rows = "".join(
        f"<tr><td {cell}><code>{html.escape(t.__name__)}</code></td>"
        f"<td {cell}>&rarr; {html.escape(dst.value)}"
        f"{' (stays)' if dst is state else ''}</td></tr>"
        for t, dst in row.items()
    )
    if not rows:
        rows = f"<tr><td {cell}><i>no command is in sequence here</i></td></tr>"
    return (
        f'<div class="sansio-smtp sansio-smtp-row" data-state="{html.escape(state.value)}">'
        f"<b>TRANSITIONS[State.{html.escape(state.name)}]</b>"
        f'<table style="border-collapse:collapse">{rows}</table></div>'
    )


class StateMachineView:
    """The widgets of state_machine_view(): ``diagram`` (HTML with the SVG), ``state``
    (Dropdown: the state whose table row ``row`` shows), ``refresh_button``.
    ``highlights`` maps the states drawn as current to their tags."""

    def __init__(self, conn: Connection | MemoryPair | None = None) -> None:
        self.conn = conn
        options = [(s.value, s.value) for s in TRANSITIONS]
        self.state = w.dropdown(options, value=State.READY.value, description="state", width="16em")
        self.diagram = w.html()
        self.row = w.html()
        self.refresh_button = w.button("refresh", tooltip="redraw from the connection")
        self.highlights: dict[State, str] = {}
        self.state.observe(lambda _change: self._draw(), names="value")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.widget = w.box(
            [w.box([self.state, self.refresh_button], vertical=False), self.diagram, self.row]
        )
        self.refresh()

    def attach(self, conn: Connection | MemoryPair | None) -> None:
        """Follow another connection (or pair), or none."""
        self.conn = conn
        self.refresh()

    def refresh(self) -> None:
        """Redraw: the connection's current state is highlighted and selected."""
        conn = self.conn
        if isinstance(conn, MemoryPair):
            client, server = conn.states
            self.highlights = (
                {client: "client+server"}
                if client is server
                else {client: "client", server: "server"}
            )
            current: State | None = client
        elif isinstance(conn, Connection):
            self.highlights = {conn.state: conn.our_role.value}
            current = conn.state
        else:
            self.highlights = {}
            current = None
        if current is not None and self.state.value != current.value:
            self.state.value = current.value  # observe() redraws
        else:
            self._draw()

    def _draw(self) -> None:
        chosen = State(self.state.value)
        highlights = self.highlights or {chosen: "selected"}
        self.diagram.value = state_diagram_svg(highlights)
        self.row.value = transitions_html(chosen)

    def _repr_mimebundle_(self, **kwargs: object) -> object:
        method = getattr(self.widget, "_repr_mimebundle_", None)
        return method(**kwargs) if callable(method) else None


def state_machine_view(conn: Connection | MemoryPair | None = None) -> StateMachineView:
    """TRANSITIONS as a diagram; with ``conn`` (a Connection or MemoryPair) its current
    state is highlighted (call ``refresh()`` after it moves)."""
    return StateMachineView(conn)
