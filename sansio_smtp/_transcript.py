# Transcript: an ordered C:/S: log of one SMTP dialogue, for people (notebooks, debugging).
#
# Strategy: a Connection created with ``transcript=`` reports what it does: the bytes it
# received (receive_data), the events next_event returned, and each event it sent with the
# bytes that carry it (send_with_data_passthrough). The transcript cuts the bytes of each
# direction into wire lines with a small tracker that follows just enough of the dialogue
# (a 334 challenge, a 354 reply, a BDAT chunk size) to tell commands, replies, AUTH
# responses and message content apart. A client and a server of one in-memory pair may
# record into the same Transcript: lines() then shows each wire line once, as its writer
# recorded it.
#
# Rules: AUTH payloads are redacted as they are recorded and never stored: the argument of
# an AUTH line, every AUTH response line, the text of 334 challenges, and the same fields
# of the events (Auth.initial_response, AuthResponse.data, a 334 Reply's lines, an
# InvalidCommand line that carried them). Message content is kept to max_content_lines
# lines per message, the rest is counted, and MessageData events keep only their size, so
# a recorded transcript stays small whatever the message. A line with no end is kept to
# MAX_LINE octets. What is secret is decided by _redact, the one AUTH redaction rule; reply
# lines are split by _reply's reply-line grammar.
#
# The clients' transcript and the servers' traffic log are built on this type too: a
# ``clock`` given by the caller stamps each line (``TranscriptLine.at``; the core has no
# clock of its own), ``on_line`` is called with each wire line and note as it is added
# (a live log), ``store=False`` keeps nothing (a log that only streams), and ``add_line``
# takes a line an adapter wrote itself (the client's "<message content, N octets>"),
# ``add_reply`` a reply the adapter read as an event.
# Nothing here does I/O; rendering (_repr_html_, _repr_pretty_) is registered by _repr.
from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Literal, Protocol, final

import attrs

from ._address import Address
from ._display import PrettyPrinter, html_of, pretty_of
from ._events import (
    Auth,
    AuthResponse,
    BytesLike,
    Command,
    Event,
    Greeting,
    InvalidCommand,
    MessageData,
    Reply,
)
from ._redact import REDACTED, redact_client_line, redact_server_line
from ._reply import enhanced_prefix, split_reply_line
from ._state import Role
from ._status import EnhancedStatusCode

__all__ = ["REDACTED", "Transcript", "TranscriptEvent", "TranscriptLine", "event_text"]

_REDACTED_TEXT = REDACTED.decode()
_EMPTY_CONTENT = MessageData(data=b"")

#: The longest line a transcript keeps; beyond it a line is cut and marked.
MAX_LINE = 4096

Direction = Literal["C", "S", "*"]
LineKind = Literal["command", "reply", "content", "note"]

_DIRECTION: dict[Role, Literal["C", "S"]] = {Role.CLIENT: "C", Role.SERVER: "S"}
_BDAT_RE = re.compile(rb"BDAT +([0-9]{1,18})(?: +LAST)? *\Z", re.IGNORECASE)


@final
@attrs.frozen(kw_only=True)
class TranscriptLine:
    """One line on the wire, or a note.

    - ``direction``: ``"C"`` (the client wrote it), ``"S"`` (the server wrote it) or
      ``"*"`` (a note, such as a TLS handshake).
    - ``text``: the line without its line ending, decoded as UTF-8 (undecodable octets as
      backslash escapes), AUTH payloads replaced by ``<redacted>``.
    - ``kind``: ``"command"``, ``"reply"``, ``"content"`` (message content, including the
      final ``"."``) or ``"note"``.
    - ``recorded_by``: the role of the connection that recorded it (None for notes and
      imported lines); ``sent``: True when that connection wrote it.
    - ``code``, ``enhanced``, ``last``: for reply lines, the reply code, the enhanced status
      code at the start of the text (RFC 2034) if any, and False for a ``250-``
      continuation line.
    - ``at``: the time the Transcript's ``clock`` gave when the line was added (None
      without a clock).
    """

    direction: Direction
    text: str
    kind: LineKind
    recorded_by: Role | None = None
    sent: bool = True
    code: int | None = None
    enhanced: str | None = None
    last: bool = True
    at: float | None = None

    def __str__(self) -> str:
        return f"{self.direction}: {self.text}"


@final
@attrs.frozen(kw_only=True)
class TranscriptEvent:
    """An event a connection sent (``sent=True``) or next_event() returned.

    ``direction`` is who produced it on the wire (``"C"`` or ``"S"``), ``recorded_by`` the
    role of the recording connection. AUTH payloads in ``event`` are redacted. Message
    content is not kept: a MessageData is stored empty, with its size in ``octets``."""

    direction: Literal["C", "S"]
    event: Event
    recorded_by: Role
    sent: bool
    octets: int | None = None

    @property
    def text(self) -> str:
        """The event as Python source (content shown by its size)."""
        if self.octets is not None:
            return f"{type(self.event).__name__}(data=<{self.octets} bytes>)"
        return event_text(self.event)

    def __str__(self) -> str:
        who = "client" if self.recorded_by is Role.CLIENT else "server"
        verb = "sent" if self.sent else "read"
        return f"{who} {verb} {self.text}"


Entry = TranscriptLine | TranscriptEvent


class _EntryLike(Protocol):
    @property
    def direction(self) -> str: ...
    @property
    def text(self) -> str: ...


def redact_event(event: Event, *, in_auth: bool = False) -> Event:
    """``event`` with its AUTH payload replaced by REDACTED (``in_auth``: an InvalidCommand
    read while an AUTH exchange was going on is an AUTH response)."""
    if isinstance(event, Auth) and event.initial_response is not None:
        return attrs.evolve(event, initial_response=REDACTED)
    if isinstance(event, AuthResponse) and event.data is not None:
        return attrs.evolve(event, data=REDACTED)
    if isinstance(event, Reply) and event.code == 334:
        return attrs.evolve(event, lines=(_REDACTED_TEXT,))
    if isinstance(event, InvalidCommand):
        line = redact_client_line(event.line, in_auth=in_auth)
        command = event.command
        if command is not None:
            redacted = redact_event(command)
            assert isinstance(redacted, Command)
            command = redacted
        if line != event.line or command is not event.command:
            return attrs.evolve(event, line=line, command=command)
    return event


def _decode(line: bytes) -> str:
    return line.decode("utf-8", "backslashreplace")


def _enhanced(text: str) -> str | None:
    """The enhanced status code at the start of a reply line's text, as written."""
    enhanced, _ = enhanced_prefix(text)
    return None if enhanced is None else str(enhanced)


# ------------------------------------------------------------ events as Python source


def field_text(field: attrs.Attribute[object], value: object) -> str:
    """One field of an event as Python source: its own repr= (AUTH payloads redacted),
    enhanced codes and addresses as the strings the constructors accept."""
    if callable(field.repr):
        return str(field.repr(value))
    if isinstance(value, (EnhancedStatusCode, Address)):
        return repr(str(value))
    if isinstance(value, Event):
        return event_text(value)
    return repr(value)


def event_fields(event: Event) -> list[tuple[attrs.Attribute[object], object]]:
    """The fields of ``event`` that its repr shows, with their values."""
    cls = type(event)
    if not attrs.has(cls):
        return []
    return [(f, getattr(event, f.name)) for f in attrs.fields(cls) if f.repr is not False]


def event_text(event: Event) -> str:
    """The event as Python source, like its repr but with enhanced codes and addresses as
    strings (the constructors accept them) and AUTH payloads redacted."""
    args = ", ".join(f"{f.name}={field_text(f, v)}" for f, v in event_fields(event))
    return f"{type(event).__name__}({args})"


class _Tracker:
    """Cuts one recording connection's bytes, both directions, into TranscriptLines."""

    def __init__(self, role: Role, transcript: Transcript) -> None:
        self.role = role
        self.out = transcript
        self.buf: dict[str, bytearray] = {"C": bytearray(), "S": bytearray()}
        self.cutting: dict[str, bool] = {"C": False, "S": False}  # dropping an over-long line
        self.after_334 = False  # the next client line answers an AUTH challenge
        self.auth_response = False  # the last client line was an AUTH response
        self.in_data = False  # after 354: client lines are content up to "."
        self.bdat_left = 0  # octets of a BDAT chunk still to come
        self.content_lines = 0  # content lines shown in this message
        self.skipped_lines = 0  # content lines counted but not shown
        self.skipped_octets = 0

    def feed(self, direction: Literal["C", "S"], data: BytesLike) -> None:
        buf = self.buf[direction]
        buf += data
        sent = _DIRECTION[self.role] == direction
        if direction == "C":
            self._client_lines(buf, sent)
        else:
            while (line := self._take_line("S", buf)) is not None:
                self._reply_line(line, sent)

    def _take_line(self, direction: str, buf: bytearray) -> bytes | None:
        while True:
            end = buf.find(b"\n")
            if end < 0:
                if len(buf) > MAX_LINE:  # keep the start, drop the rest up to the line end
                    if not self.cutting[direction]:
                        self.cutting[direction] = True
                        head = bytes(buf[:MAX_LINE]) + b"... (line cut)"
                        del buf[:]
                        return head
                    del buf[:]
                return None
            line = bytes(buf[:end]).rstrip(b"\r")
            del buf[: end + 1]
            if self.cutting[direction]:
                self.cutting[direction] = False
                continue
            return line

    def _client_lines(self, buf: bytearray, sent: bool) -> None:
        while buf:
            if self.bdat_left:
                count = min(self.bdat_left, len(buf))
                chunk = bytes(buf[:count])
                del buf[:count]
                self.bdat_left -= count
                lines = chunk.split(b"\n")
                if lines[-1] == b"":
                    lines.pop()
                for piece in lines:
                    self._content(piece.rstrip(b"\r"), sent)
                if not self.bdat_left:
                    self._content_summary(sent)
                continue
            if self.in_data and self.content_lines >= self.out.max_content_lines:
                self._skip_content(buf)
            line = self._take_line("C", buf)
            if line is None:
                return
            self._client_line(line, sent)

    def _skip_content(self, buf: bytearray) -> None:
        """Count the content lines beyond the limit without cutting them one by one."""
        if buf.startswith(b".\r\n") or buf.startswith(b".\n"):
            return
        end = buf.find(b"\n.\r\n")
        if end < 0:
            end = buf.find(b"\n.\n")
        stop = end + 1 if end >= 0 else buf.rfind(b"\n") + 1
        if stop > 0:
            self.skipped_lines += buf.count(b"\n", 0, stop)
            self.skipped_octets += stop
            del buf[:stop]

    def _client_line(self, line: bytes, sent: bool) -> None:
        self.auth_response = False
        if self.in_data:
            if line == b".":
                self.in_data = False
                self._content_summary(sent)
                self._line("C", ".", "content", sent)
            else:
                self._content(line, sent)
            return
        if self.after_334:
            self.after_334 = False
            self.auth_response = True
            self._line("C", _decode(redact_client_line(line, in_auth=True)), "command", sent)
            return
        head = line[:5].upper()
        if head == b"AUTH ":
            line = redact_client_line(line)
        elif head == b"MAIL ":
            self.content_lines = 0
        elif head == b"BDAT ":
            m = _BDAT_RE.match(line)
            if m is not None:
                self.bdat_left = int(m[1])
        self._line("C", _decode(line), "command", sent)

    def _content(self, line: bytes, sent: bool) -> None:
        if self.content_lines < self.out.max_content_lines:
            self.content_lines += 1
            self._line("C", _decode(line), "content", sent)
        else:
            self.skipped_lines += 1
            self.skipped_octets += len(line) + 2

    def _content_summary(self, sent: bool) -> None:
        if self.skipped_lines:
            text = f"... {self.skipped_lines} more lines ({self.skipped_octets} octets) of content"
            self._line("C", text, "content", sent)
            self.skipped_lines = self.skipped_octets = 0

    def _reply_line(self, line: bytes, sent: bool) -> None:
        line = redact_server_line(line)
        parts = split_reply_line(line)
        if parts is None:
            self._line("S", _decode(line), "reply", sent)
            return
        code, separator, text = parts
        last = separator != b"-"
        self.out._add(
            TranscriptLine(
                direction="S",
                text=_decode(line),
                kind="reply",
                recorded_by=self.role,
                sent=sent,
                code=code,
                enhanced=_enhanced(_decode(text)),
                last=last,
            )
        )
        if last:
            self.after_334 = code == 334
            if code == 354:
                self.in_data = True
                self.content_lines = 0

    def _line(self, direction: Direction, text: str, kind: LineKind, sent: bool) -> None:
        self.out._add(
            TranscriptLine(
                direction=direction, text=text, kind=kind, recorded_by=self.role, sent=sent
            )
        )


class Transcript:
    """An ordered ``C:``/``S:`` log of one SMTP dialogue: the wire lines each way and the
    events, AUTH payloads redacted.

    Record with a connection, ``Connection(CLIENT, transcript=t)`` (a client and a server
    of an in-memory pair may share one), add notes with ``note()``, or import an adapter's
    log with ``from_entries()``. ``str(t)`` is the plain-text dialogue; in a notebook the
    transcript displays as a coloured log.

    ``max_content_lines``: message content lines kept per message (the rest are
    counted); ``max_entries``: keep only the newest entries (None: all); ``store=False``:
    keep none, for a transcript that only feeds ``on_line`` (a server's traffic log).

    For logs: ``clock`` (the caller's, e.g. ``time.time``) stamps each wire line and note
    in ``TranscriptLine.at``; ``on_line`` is called with each wire line and note as it
    is added, AUTH payloads already redacted (events are not passed).
    """

    def __init__(
        self,
        *,
        max_content_lines: int = 20,
        max_entries: int | None = None,
        clock: Callable[[], float] | None = None,
        on_line: Callable[[TranscriptLine], object] | None = None,
        store: bool = True,
    ) -> None:
        if max_content_lines < 0:
            raise ValueError("max_content_lines must be >= 0")
        if max_entries is not None and max_entries < 1:
            raise ValueError("max_entries must be >= 1 or None")
        self.max_content_lines = max_content_lines
        self.clock = clock
        self.on_line = on_line
        self._entries: deque[Entry] = deque(maxlen=max_entries if store else 0)
        self._trackers: dict[Role, _Tracker] = {}

    # ---------------------------------------------------------------- recording

    def _tracker(self, role: Role) -> _Tracker:
        tracker = self._trackers.get(role)
        if tracker is None:
            tracker = self._trackers[role] = _Tracker(role, self)
        return tracker

    def _add(self, entry: Entry) -> None:
        if isinstance(entry, TranscriptLine):
            self._add_line(entry)
        else:
            self._entries.append(entry)

    def _add_line(self, line: TranscriptLine) -> TranscriptLine:
        if self.clock is not None and line.at is None:
            line = attrs.evolve(line, at=self.clock())
        if self.on_line is not None:
            self.on_line(line)
        self._entries.append(line)
        return line

    def _add_event(
        self, direction: Literal["C", "S"], event: Event, role: Role, sent: bool
    ) -> None:
        octets = None
        if isinstance(event, MessageData):  # keep the size, not the content
            octets, event = len(event.data), _EMPTY_CONTENT
        self._add(
            TranscriptEvent(
                direction=direction, event=event, recorded_by=role, sent=sent, octets=octets
            )
        )

    def record_received(self, role: Role, data: BytesLike) -> None:
        """The connection of ``role`` received ``data`` (``b""``: the peer closed)."""
        tracker = self._tracker(role)
        peer: Literal["C", "S"] = "S" if role is Role.CLIENT else "C"
        if data:
            tracker.feed(peer, data)
        else:
            who = "server" if role is Role.CLIENT else "client"
            text = f"the {who} closed the connection"
            note = TranscriptLine(direction="*", text=text, kind="note", recorded_by=role)
            self._add(attrs.evolve(note, sent=False))

    def record_event(self, role: Role, event: object) -> None:
        """next_event() of the connection of ``role`` returned ``event`` (sentinels are
        ignored)."""
        if not isinstance(event, Event):
            return
        tracker = self._tracker(role)
        peer: Literal["C", "S"] = "S" if role is Role.CLIENT else "C"
        self._add_event(peer, redact_event(event, in_auth=tracker.auth_response), role, False)

    def record_sent(self, role: Role, event: Event, data: Iterable[BytesLike]) -> None:
        """The connection of ``role`` sent ``event`` as ``data``."""
        tracker = self._tracker(role)
        ours = _DIRECTION[role]
        self._add_event(ours, redact_event(event), role, True)
        for chunk in data:
            if chunk:
                tracker.feed(ours, chunk)

    def note(self, text: str) -> None:
        """Add a ``*`` line, e.g. ``t.note("TLS handshake done")``."""
        self._add(TranscriptLine(direction="*", text=text, kind="note"))

    def clear(self) -> None:
        """Forget every entry and what the trackers were in the middle of."""
        self._entries.clear()
        self._trackers.clear()

    def add_line(
        self, direction: str, text: str, *, kind: LineKind | None = None
    ) -> TranscriptLine:
        """Add a line logged elsewhere (an adapter's own account of the dialogue): its
        ``direction`` ``"C"``, ``"S"`` (a reply line's code is read) or anything else for
        a note; ``kind`` defaults to command, reply or note. It is stamped and passed to
        ``on_line`` like a recorded line, and returned. The text is kept as given: redact
        it first (sansio_smtp._redact) if it may hold AUTH data."""
        where: Direction = "C" if direction == "C" else "S" if direction == "S" else "*"
        line = TranscriptLine(
            direction=where,
            text=text,
            kind=kind or ("command" if where == "C" else "reply" if where == "S" else "note"),
        )
        if where == "S":
            parts = split_reply_line(text.encode("utf-8", "surrogateescape"))
            if parts is not None:
                code, separator, rest = parts
                line = attrs.evolve(
                    line, code=code, enhanced=_enhanced(_decode(rest)), last=separator != b"-"
                )
        return self._add_line(line)

    def add_reply(self, reply: Reply | Greeting) -> None:
        """Add the lines of a reply an adapter read itself (the event, not its bytes), as
        they stand on the wire: ``code-text`` for all but the last, the enhanced status
        code before each text (RFC 5321 §4.2.1, RFC 2034 §3). A 334 challenge's text is
        redacted. Each line is stamped and passed to ``on_line`` like a recorded one."""
        code = reply.code
        enhanced = reply.enhanced if type(reply) is Reply else None
        esc = "" if enhanced is None else f"{enhanced} "
        last = len(reply.lines) - 1
        for i, text in enumerate(reply.lines):
            line = f"{code}{'-' if i < last else ' '}{esc}{text}".rstrip()
            if code == 334:
                line = redact_server_line(line.encode("utf-8")).decode("utf-8")
            self._add_line(
                TranscriptLine(
                    direction="S",
                    text=line,
                    kind="reply",
                    code=code,
                    enhanced=None if enhanced is None else str(enhanced),
                    last=i == last,
                )
            )

    @classmethod
    def from_entries(cls, entries: Iterable[_EntryLike]) -> Transcript:
        """A transcript of lines that were logged elsewhere: any objects with ``direction``
        (``"C"``, ``"S"`` or ``"*"``) and ``text``, such as the ``TranscriptEntry`` list of
        the client adapters (``SMTPClient(..., transcript=True).transcript``)."""
        out = cls()
        for entry in entries:
            out.add_line(entry.direction, entry.text)
        return out

    # ---------------------------------------------------------------- reading

    @property
    def entries(self) -> tuple[Entry, ...]:
        """Every line and event in the order recorded."""
        return tuple(self._entries)

    def _shown(self, entry: Entry) -> bool:
        """A line the writer and the reader both recorded is shown once, as written."""
        if entry.sent or entry.recorded_by is None:
            return True
        writer = Role.CLIENT if entry.direction == "C" else Role.SERVER
        return writer not in self._trackers

    def lines(self) -> list[TranscriptLine]:
        """The wire lines (and notes), each once."""
        return [e for e in self._entries if isinstance(e, TranscriptLine) and self._shown(e)]

    def events(self, *, sent: bool | None = None) -> list[TranscriptEvent]:
        """The recorded events; ``sent=False``: only those next_event() returned."""
        return [
            e
            for e in self._entries
            if isinstance(e, TranscriptEvent) and (sent is None or e.sent is sent)
        ]

    def view(self, *, events: bool = True) -> list[Entry]:
        """What a display shows: each wire line once and, with ``events``, the events the
        recording connections read, in order."""
        out: list[Entry] = []
        for e in self._entries:
            if isinstance(e, TranscriptLine):
                if self._shown(e):
                    out.append(e)
            elif events and not e.sent:
                out.append(e)
        return out

    def __iter__(self) -> Iterator[Entry]:
        return iter(tuple(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __str__(self) -> str:
        return "\n".join(str(line) for line in self.lines())

    def __repr__(self) -> str:
        roles = "+".join(sorted(r.value for r in self._trackers)) or "nobody"
        return f"<Transcript {len(self.lines())} lines, recorded by {roles}>"

    # Rich display in notebooks and IPython: the renderer _repr registers.
    def _repr_html_(self) -> str:
        return html_of(self)

    def _repr_pretty_(self, p: PrettyPrinter, cycle: bool) -> None:
        pretty_of(self, p, cycle)
