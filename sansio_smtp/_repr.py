# Rich displays for notebooks and the IPython terminal: _repr_html_ and _repr_pretty_ of
# events, Connection and Transcript, and an SVG drawing of the state table.
#
# Rules: pure functions of their arguments; cheap (no dialogue is replayed, nothing is
# parsed twice); every piece of text goes through html.escape, attribute values too; no
# IPython import: the pretty printer is _display's Protocol of the few methods IPython's
# RepresentationPrinter has. The presentation layer: nothing of the protocol imports this
# module; it registers its renderers with _display when imported (``import sansio_smtp``
# imports it), and the objects' _repr_html_/_repr_pretty_ look them up there. HTML is
# inline-styled (frontends drop <style> blocks) and carries class names
# (``sansio-smtp-reply``, ``sansio-smtp-5xx``...) for tests and custom CSS. Reply codes are
# coloured by class (2xx green, 3xx blue, 4xx amber, 5xx red) and explained on hover from
# sansio_smtp.codes, enhanced status codes too.
from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

from . import codes
from ._address import Address
from ._connection import Connection
from ._display import PrettyPrinter, register
from ._events import (
    Command,
    EndOfMessage,
    Event,
    Greeting,
    InvalidCommand,
    InvalidMessage,
    MessageData,
    Reply,
)
from ._reply import split_reply_text
from ._state import GREETING_TRANSITIONS, TRANSITIONS, Role, State
from ._status import EnhancedStatusCode
from ._transcript import (
    Transcript,
    TranscriptEvent,
    TranscriptLine,
    event_fields,
    event_text,
    field_text,
)

__all__ = [
    "CLASS_COLOURS",
    "PrettyPrinter",
    "class_css",
    "code_colour",
    "code_title",
    "connection_html",
    "connection_pretty",
    "enhanced_title",
    "event_html",
    "event_pretty",
    "event_text",
    "explanation_html",
    "reply_html",
    "state_diagram_svg",
    "transcript_html",
    "transcript_pretty",
]


#: Reply class (first digit) -> colour, readable on light and dark backgrounds.
CLASS_COLOURS: Mapping[int, str] = {2: "#1a7f37", 3: "#0969da", 4: "#9a6700", 5: "#cf222e"}
_MUTED = "#6e7781"
_MONO = "font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:0.9em"

_CLASS_WORDS = {
    2: "2xx positive completion",
    3: "3xx positive intermediate",
    4: "4xx transient failure: retry later",
    5: "5xx permanent failure: do not retry unchanged",
}

_STATE_COLOURS: Mapping[State, str] = {
    State.GREETING: "#6e7781",
    State.CONNECTED: "#1a7f37",
    State.REJECTED: "#9a6700",
    State.READY: "#1a7f37",
    State.MAIL: "#0969da",
    State.RCPT: "#0969da",
    State.DATA: "#0969da",
    State.BDAT: "#0969da",
    State.TLS: "#8250df",
    State.AUTH: "#8250df",
    State.CLOSED: "#6e7781",
    State.ERROR: "#cf222e",
}


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


# ------------------------------------------------------------------------ reply codes


def class_css(code: int) -> str:
    """``"sansio-smtp-5xx"`` for 550 (``sansio-smtp-other`` outside 2xx-5xx)."""
    first = code // 100
    return f"sansio-smtp-{first}xx" if first in CLASS_COLOURS else "sansio-smtp-other"


def code_colour(code: int) -> str:
    return CLASS_COLOURS.get(code // 100, _MUTED)


def code_title(code: int) -> str:
    """Hover text for a reply code: its class and the catalogue's meaning."""
    words = _CLASS_WORDS.get(code // 100, "not a valid reply class")
    info = codes.reply_code_info(code)
    if info is None:
        return f"{code}: {words}; not in the catalogue"
    return f"{code} ({words}): {info.meaning}. {info.description}"


def enhanced_title(enhanced: EnhancedStatusCode | str) -> str:
    """Hover text for an enhanced status code (RFC 3463): the registry's title and our
    description, or its class and subject when the code is not registered."""
    try:
        code = EnhancedStatusCode.coerce(enhanced)
    except ValueError:
        return f"{enhanced}: not an enhanced status code"
    assert code is not None
    info = codes.enhanced_code_info(code)
    if info is not None:
        return f"{code} {info.title}: {info.description}"
    klass = codes.ENHANCED_CLASSES[code.class_]
    subject = codes.ENHANCED_SUBJECTS.get(code.subject)
    where = f"{klass.title}" + (f" / {subject.title}" if subject is not None else "")
    return f"{code} (not registered; {where})"


def _code_span(code: int) -> str:
    return (
        f'<span class="sansio-smtp-code" style="color:{code_colour(code)};font-weight:600;'
        f'cursor:help" title="{_e(code_title(code))}">{code}</span>'
    )


def _enhanced_span(enhanced: EnhancedStatusCode | str, code: int) -> str:
    return (
        f'<span class="sansio-smtp-enhanced" style="color:{code_colour(code)};'
        f'text-decoration:underline dotted;cursor:help" title="{_e(enhanced_title(enhanced))}">'
        f"{_e(enhanced)}</span>"
    )


def _reply_lines_html(code: int, lines: Sequence[str], enhanced: object) -> str:
    out = []
    for i, line in enumerate(lines):
        sep = "-" if i < len(lines) - 1 else " "
        esc = ""
        if isinstance(enhanced, EnhancedStatusCode):
            esc = _enhanced_span(enhanced, code) + " "
        out.append(f"{_code_span(code)}{sep}{esc}{_e(line)}")
    return "<br>".join(out)


def reply_html(reply: Reply | Greeting) -> str:
    """A Reply or Greeting as it goes on the wire, coloured by class, codes explained on
    hover."""
    code = reply.code
    enhanced = reply.enhanced if isinstance(reply, Reply) else None
    kind = "greeting" if isinstance(reply, Greeting) else "reply"
    return (
        f'<div class="sansio-smtp sansio-smtp-{kind} {class_css(code)}" '
        f'style="{_MONO};white-space:pre-wrap;border-left:3px solid {code_colour(code)};'
        f'padding-left:6px">{_reply_lines_html(code, reply.lines, enhanced)}</div>'
    )


# ----------------------------------------------------------------------------- events


def event_html(event: Event) -> str:
    """Replies as on the wire; other events as code, with the reply a server would give
    (reply_hint) for InvalidCommand and InvalidMessage."""
    if isinstance(event, (Reply, Greeting)):
        return reply_html(event)
    name = type(event).__name__
    args = ", ".join(
        f'<span style="color:{_MUTED}">{_e(f.name)}=</span>{_e(field_text(f, v))}'
        for f, v in event_fields(event)
        if f.name != "reply_hint"
    )
    verb = f' title="{_e(event.verb)} command"' if isinstance(event, Command) else ""
    body = f"<b{verb}>{_e(name)}</b>({args})"
    if isinstance(event, (InvalidCommand, InvalidMessage)):
        hint = event.reply_hint
        body += (
            f' <span style="color:{_MUTED}">&rarr; hint:</span> '
            f'<span class="sansio-smtp-reply {class_css(hint.code)}">'
            f"{_reply_lines_html(hint.code, hint.lines, hint.enhanced)}</span>"
        )
    return (
        f'<div class="sansio-smtp sansio-smtp-event sansio-smtp-{_e(name.lower())}" '
        f'style="{_MONO}">{body}</div>'
    )


def event_pretty(event: Event, p: PrettyPrinter, cycle: bool) -> None:
    """``Reply(code=550, lines=('No such user',), enhanced='5.1.1')``, broken over lines
    when long."""
    name = type(event).__name__
    if cycle:
        p.text(f"{name}(...)")
        return
    fields = event_fields(event)
    p.begin_group(4, f"{name}(")
    for i, (field, value) in enumerate(fields):
        if i:
            p.text(",")
            p.breakable()
        else:
            p.breakable("")
        p.text(f"{field.name}=")
        if callable(field.repr) or isinstance(value, (EnhancedStatusCode, Address)):
            p.text(field_text(field, value))
        else:
            p.pretty(value)
    p.end_group(4, ")")


# ------------------------------------------------------------------------- connection


def _state_badge(state: State, extra: str = "") -> str:
    colour = _STATE_COLOURS.get(state, _MUTED)
    return (
        f'<span class="sansio-smtp-state sansio-smtp-state-{_e(state.value.lower())}" '
        f'style="background:{colour};color:#fff;border-radius:3px;padding:0 5px;'
        f'font-weight:600"{extra}>{_e(state.value)}</span>'
    )


def _pending_names(conn: Connection) -> list[str]:
    names = []
    for event in conn.pending:
        verb = getattr(event, "verb", None)
        names.append(verb if isinstance(verb, str) and verb else type(event).__name__)
    return names


def connection_html(conn: Connection) -> str:
    """One line: role, state, what awaits a reply, TLS/AUTH, the extensions in effect."""
    role = conn.our_role.value
    parts = [f"<b>{_e(role)}</b>", _state_badge(conn.state)]
    pending = _pending_names(conn)
    parts.append(
        f'<span style="color:{_MUTED}">awaiting reply:</span> '
        + (_e(", ".join(pending)) if pending else "&mdash;")
    )
    flags = [flag for flag, on in (("TLS", conn.tls_active), ("AUTH", conn.authenticated)) if on]
    if flags:
        parts.append(_e(" ".join(flags)))
    if conn.extensions:
        exts = " ".join(" ".join((k, *v)) for k, v in conn.extensions.items())
        parts.append(f'<span style="color:{_MUTED}" title="{_e(exts)}">ext: {_e(exts)}</span>')
    return (
        f'<div class="sansio-smtp sansio-smtp-connection sansio-smtp-{_e(role)}" '
        f'data-state="{_e(conn.state.value)}" style="{_MONO};display:inline-block;'
        f'border:1px solid #d0d7de;border-radius:6px;padding:2px 8px">'
        + " &middot; ".join(parts)
        + "</div>"
    )


def connection_pretty(conn: Connection, p: PrettyPrinter, cycle: bool) -> None:
    if cycle:
        p.text("<Connection ...>")
        return
    p.begin_group(4, f"<Connection {conn.our_role.value}")
    items = [f"state={conn.state.value}", f"pending=({', '.join(_pending_names(conn))})"]
    if conn.tls_active:
        items.append("tls")
    if conn.authenticated:
        items.append("authenticated")
    if conn.extensions:
        items.append(f"extensions=[{', '.join(conn.extensions)}]")
    for item in items:
        p.breakable()
        p.text(item)
    p.end_group(4, ">")


# ------------------------------------------------------------------------- transcript


def _line_html(line: TranscriptLine) -> str:
    who = f'<span style="color:{_MUTED};user-select:none">{_e(line.direction)}:</span> '
    if line.kind == "note":
        return (
            f'<div class="sansio-smtp-line sansio-smtp-note" style="color:#8250df;'
            f'font-style:italic">{who}{_e(line.text)}</div>'
        )
    parts = split_reply_text(line.text) if line.kind == "reply" else None
    if parts is not None and line.code is not None:
        code, sep, rest = line.code, parts[1], parts[2]
        esc = ""
        if line.enhanced is not None and rest.startswith(line.enhanced):
            esc = _enhanced_span(line.enhanced, code)
            rest = rest[len(line.enhanced) :]
        return (
            f'<div class="sansio-smtp-line sansio-smtp-s sansio-smtp-reply {class_css(code)}">'
            f"{who}{_code_span(code)}{_e(sep)}{esc}{_e(rest)}</div>"
        )
    side = "sansio-smtp-c" if line.direction == "C" else "sansio-smtp-s"
    style = f' style="color:{_MUTED}"' if line.kind == "content" else ""
    return (
        f'<div class="sansio-smtp-line {side} sansio-smtp-{line.kind}"{style}>'
        f"{who}{_e(line.text)}</div>"
    )


def _transcript_event_html(entry: TranscriptEvent) -> str:
    who = "client" if entry.recorded_by is Role.CLIENT else "server"
    return (
        f'<div class="sansio-smtp-line sansio-smtp-ev" style="color:{_MUTED};'
        f'padding-left:2.5em;font-size:0.9em">&#8627; {who} read '
        f"{_e(entry.text)}</div>"
    )


def transcript_html(transcript: Transcript, *, events: bool = True) -> str:
    """The dialogue as a C:/S: log: replies coloured by class with codes explained on
    hover, message content muted, notes in italics and, with ``events``, what each
    recording connection read, below the line."""
    rows = []
    for entry in transcript.view(events=events):
        if isinstance(entry, TranscriptLine):
            rows.append(_line_html(entry))
        else:
            rows.append(_transcript_event_html(entry))
    if not rows:
        rows.append(f'<div style="color:{_MUTED}"><i>empty transcript</i></div>')
    return (
        f'<div class="sansio-smtp sansio-smtp-transcript" style="{_MONO};line-height:1.4;'
        f'white-space:pre-wrap;border-left:3px solid #d0d7de;padding-left:6px">'
        + "".join(rows)
        + "</div>"
    )


def transcript_pretty(transcript: Transcript, p: PrettyPrinter, cycle: bool) -> None:
    lines = transcript.lines()
    p.text(f"<Transcript, {len(lines)} lines>")
    for line in lines:
        p.break_()
        p.text(str(line))


# ---------------------------------------------------------------------------- explain


def explanation_html(expl: codes.Explanation) -> str:
    """codes.explain()'s result as a small card: codes coloured, meanings, what to do,
    warnings."""
    rows = []
    colour = _MUTED
    if expl.reply_code is not None:
        code = expl.reply_code
        colour = code_colour(code)
        info = expl.reply_info
        meaning = info.meaning if info is not None else "not a code in the catalogue"
        rows.append(f"{_code_span(code)} <b>{_e(meaning)}</b>")
        if info is not None:
            rows.append(f'<span style="color:{_MUTED}">{_e(info.description)}</span>')
    if expl.enhanced is not None:
        anchor = expl.reply_code if expl.reply_code is not None else expl.enhanced.class_ * 100
        if expl.reply_code is None:
            colour = code_colour(anchor)
        title = expl.enhanced_info.title if expl.enhanced_info else "not a registered code"
        where = " / ".join(t for t in (expl.enhanced_class, expl.enhanced_subject) if t)
        rows.append(
            f"{_enhanced_span(expl.enhanced, anchor)} <b>{_e(title)}</b>"
            + (f' <span style="color:{_MUTED}">({_e(where)})</span>' if where else "")
        )
        if expl.enhanced_info is not None:
            rows.append(f'<span style="color:{_MUTED}">{_e(expl.enhanced_info.description)}</span>')
    if expl.text:
        rows.append(f"Server text: <code>{_e(expl.text)}</code>")
    rows.append(f"<b>What to do:</b> {_e(expl._outcome())}")
    for warning in expl.warnings:
        rows.append(f'<span style="color:#9a6700">&#9888; {_e(warning)}</span>')
    klass = class_css(expl.reply_code) if expl.reply_code is not None else ""
    return (
        f'<div class="sansio-smtp sansio-smtp-explanation {klass}" style="border-left:3px '
        f'solid {colour};padding-left:8px;line-height:1.5">' + "<br>".join(rows) + "</div>"
    )


# ---------------------------------------------------------------------- state diagram

# Where each state sits (column, row): the main path runs down the middle column. States
# added to the table later go in a last row.
_LAYOUT: Mapping[State, tuple[int, int]] = {
    State.GREETING: (1, 0),
    State.REJECTED: (0, 1),
    State.CONNECTED: (1, 1),
    State.TLS: (0, 2),
    State.READY: (1, 2),
    State.AUTH: (2, 2),
    State.MAIL: (1, 3),
    State.ERROR: (2, 3),
    State.RCPT: (1, 4),
    State.CLOSED: (2, 4),
    State.DATA: (1, 5),
    State.BDAT: (2, 5),
}
_COL_W, _ROW_H, _NODE_W, _NODE_H = 260, 96, 176, 34
_PAD_X, _PAD_Y = 20, 30
_LOOP_CHARS = 30  # characters per line of the commands listed in a node

#: Moves the state table cannot hold, drawn dashed: (from, to, label).
_OUTSIDE_TABLE: tuple[tuple[State, State, str], ...] = (
    (State.READY, State.AUTH, "AUTH \u2192 334"),
    (State.TLS, State.CONNECTED, "tls_established()"),
)
_NOTES = (
    "Any 421 reply closes the session (RFC 5321 \u00a73.8); any protocol error: ERROR.",
    "Arrows: the command whose positive reply moves the session; dashed: moves outside "
    "the table. Listed in a state: commands that keep it.",
)


def _label(event_type: type[Event]) -> str:
    verb = getattr(event_type, "verb", "")
    if isinstance(verb, str) and verb:
        return "AUTH-resp" if verb == "AUTH response" else verb
    if event_type is MessageData:
        return "content"
    if event_type is EndOfMessage:
        return "CRLF.CRLF"
    return event_type.__name__


def _wrap(words: Sequence[str], width: int) -> list[str]:
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


class _Box:
    def __init__(self, x: float, y: float, h: float) -> None:
        self.x, self.y, self.h = x, y, h  # centre and height


def _border(box: _Box, tx: float, ty: float) -> tuple[float, float]:
    """Where the line from the centre of ``box`` towards (tx, ty) leaves it."""
    dx, dy = tx - box.x, ty - box.y
    if dx == 0 and dy == 0:
        return box.x, box.y
    hw, hh = _NODE_W / 2 + 2, box.h / 2 + 2
    t = min(hw / abs(dx) if dx else math.inf, hh / abs(dy) if dy else math.inf)
    return box.x + t * dx, box.y + t * dy


def _edge_svg(a: _Box, b: _Box, label: str, *, bend: float, css: str, dashed: bool) -> str:
    mx, my = (a.x + b.x) / 2, (a.y + b.y) / 2
    # control point: perpendicular to the chord, ``bend`` chord lengths away
    cx, cy = mx - (b.y - a.y) * bend, my + (b.x - a.x) * bend
    sx, sy = _border(a, cx, cy)
    ex, ey = _border(b, cx, cy)
    lx, ly = (sx + 2 * cx + ex) / 4, (sy + 2 * cy + ey) / 4
    anchor = "middle"
    if abs(ex - sx) < 1:  # vertical: the label beside the line
        lx, anchor = lx + 6, "start"
    dash = ' stroke-dasharray="5 3"' if dashed else ""
    return (
        f'<g class="{css}"><path d="M{sx:.1f},{sy:.1f} Q{cx:.1f},{cy:.1f} {ex:.1f},{ey:.1f}" '
        f'fill="none" stroke="#57606a" stroke-width="1.3"{dash} '
        f'marker-end="url(#sansio-smtp-arrow)"/>'
        f'<text x="{lx:.1f}" y="{ly + 3.5:.1f}" text-anchor="{anchor}" font-size="10" '
        f'fill="#24292f" stroke="#fff" stroke-width="3" paint-order="stroke">{_e(label)}</text>'
        "</g>"
    )


def state_diagram_svg(
    highlight: Mapping[State, str] | None = None,
    *,
    transitions: Mapping[State, Mapping[type[Event], State]] = TRANSITIONS,
) -> str:
    """The state table as an SVG drawing, generated here (no graphviz).

    Every arrow is read from ``transitions``: (state, event type) -> another state, the
    command whose *positive* reply makes the move; commands that keep the state are listed
    in its box. The same move from three states or more (QUIT, RSET) is one note below
    instead of a fan of arrows. Dashed arrows are moves the table cannot hold (the
    greeting's code, a 334 challenge, the TLS handshake). ``highlight`` maps states to a
    tag (e.g. ``"client"``) to mark them as current.
    """
    highlight = highlight or {}
    states = list(transitions)
    loops: dict[State, list[str]] = {s: [] for s in states}
    edges: dict[tuple[State, State], list[str]] = {}
    for src, moves_from in transitions.items():
        for event_type, dst in moves_from.items():
            if dst is src:
                loops[src].append(_label(event_type))
            elif dst in loops:
                edges.setdefault((src, dst), []).append(_label(event_type))
    fans: dict[tuple[State, str], list[State]] = {}
    for (src, dst), labels in edges.items():
        fans.setdefault((dst, " ".join(labels)), []).append(src)
    notes = []
    for (dst, label), sources in fans.items():
        if len(sources) >= 3:
            for src in sources:
                del edges[(src, dst)]
            names = ", ".join(s.value for s in sources)
            notes.append(f"{label} from {names} \u2192 {dst.value}")
    notes.extend(_NOTES)

    boxes: dict[State, _Box] = {}
    extra = 0
    for state in states:
        col, row = _LAYOUT.get(state, (extra, 6))
        if state not in _LAYOUT:
            extra += 1
        height = _NODE_H + 11 * len(_wrap(loops[state], _LOOP_CHARS))
        boxes[state] = _Box(
            _PAD_X + col * _COL_W + _NODE_W / 2, _PAD_Y + row * _ROW_H + _NODE_H / 2 + 8, height
        )
    width = int(_PAD_X * 2 + 2 * _COL_W + _NODE_W)
    bottom = max(b.y + b.h / 2 for b in boxes.values())
    height = int(bottom + 24 + 14 * len(notes))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sansio-smtp sansio-smtp-states" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="Helvetica,Arial,sans-serif" role="img">',
        "<title>SMTP session states (sansio_smtp.TRANSITIONS)</title>",
        '<defs><marker id="sansio-smtp-arrow" viewBox="0 0 10 10" refX="9" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#57606a"/></marker></defs>',
    ]
    moves = [(src, dst, " ".join(labels), False) for (src, dst), labels in edges.items()]
    moves += [(State.GREETING, dst, str(code), True) for code, dst in GREETING_TRANSITIONS.items()]
    moves += [(src, dst, label, True) for src, dst, label in _OUTSIDE_TABLE]
    pairs = {(src, dst) for src, dst, _l, _d in moves}
    for src, dst, label, dashed in moves:
        if src not in boxes or dst not in boxes or (dashed and dst is State.CLOSED):
            continue  # the 421 greeting is in the notes
        a, b = boxes[src], boxes[dst]
        if (dst, src) in pairs:
            bend = 0.12  # a move and its way back: two arcs
        elif a.x == b.x and abs(a.y - b.y) > _ROW_H * 1.5:
            bend = -0.7 if b.y < a.y else 0.7  # long moves down the middle: round the left
        else:
            bend = 0.0
        css = f"sansio-smtp-edge edge-{src.value}-{dst.value}"
        out.append(_edge_svg(a, b, label, bend=bend, css=css, dashed=dashed))
    for state in states:
        out.append(_node_svg(state, boxes[state], loops[state], highlight.get(state)))
    for i, note in enumerate(notes):
        out.append(
            f'<text class="sansio-smtp-note" x="{_PAD_X}" y="{bottom + 22 + 14 * i:.1f}" '
            f'font-size="10.5" fill="#57606a">{_e(note)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _node_svg(state: State, box: _Box, loops: list[str], tag: str | None) -> str:
    x, y = box.x - _NODE_W / 2, box.y - box.h / 2
    colour = _STATE_COLOURS.get(state, _MUTED)
    current = tag is not None
    css = "sansio-smtp-node" + (" sansio-smtp-current" if current else "")
    parts = [
        f'<g class="{css}" data-state="{_e(state.value)}">',
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{_NODE_W}" height="{box.h:.0f}" rx="8" '
        f'fill="{"#fff8c5" if current else "#ffffff"}" stroke="{colour}" '
        f'stroke-width="{3 if current else 1.5}"/>',
        f'<text x="{box.x:.1f}" y="{y + 22:.1f}" text-anchor="middle" font-size="13" '
        f'font-weight="bold" fill="{colour}">{_e(state.value)}</text>',
    ]
    for i, line in enumerate(_wrap(loops, _LOOP_CHARS)):
        mark = "\u21ba " if i == 0 else ""
        parts.append(
            f'<text x="{box.x:.1f}" y="{y + 36 + 11 * i:.1f}" text-anchor="middle" '
            f'font-size="9" fill="#57606a">{_e(mark + line)}</text>'
        )
    if current:
        assert tag is not None
        w = 8 + 6.5 * len(tag)
        parts.append(
            f'<g class="sansio-smtp-tag"><rect x="{x + _NODE_W - w + 6:.1f}" y="{y - 9:.1f}" '
            f'width="{w:.1f}" height="16" rx="8" fill="#9a6700"/>'
            f'<text x="{x + _NODE_W - w / 2 + 6:.1f}" y="{y + 3:.1f}" text-anchor="middle" '
            f'font-size="10.5" font-weight="bold" fill="#fff">{_e(tag)}</text></g>'
        )
    parts.append("</g>")
    return "".join(parts)


# ---------------------------------------------------------------------- registration

# Event, Connection and Transcript look their renderers up in _display (subclasses of
# Event, Reply and Greeting among them, find Event's).
register(Event, html=event_html, pretty=event_pretty)
register(Connection, html=connection_html, pretty=connection_pretty)
register(Transcript, html=transcript_html, pretty=transcript_pretty)
