# The Event base class, Reply and Greeting, and the one reply-line grammar.
#
# Strategy: the layer just above the value types (_status, _util...), so that everything
# that speaks of a reply (errors' reply_hint, the typed parameters, events, the readers,
# the transcript, codes.explain, the notebook) imports it from below. The reply-line
# grammar of RFC 5321 §4.2 is written once here, one function for bytes (the reader, the
# transcript) and str (codes.explain, the notebook), with the RFC 2034
# enhanced-status-code prefix beside it.
#
# Rules: no import from a higher layer, not even for display: Event's _repr_html_ and
# _repr_pretty_ look their renderer up in _display, where the presentation layer
# (_repr) registers it. Event classes are attrs classes with repr=False: Event.__repr__
# writes the same text attrs would (ClassName(field=value, ...), honouring each field's
# repr=), and IPython's pretty printer, which prefers a class's own __repr__ to an
# inherited _repr_pretty_, then finds Event._repr_pretty_.
from __future__ import annotations

import base64
import binascii
import functools
import re
from typing import final

import attrs

from ._display import PrettyPrinter, html_of, pretty_of
from ._status import EnhancedStatusCode, ReplyClass

__all__ = [
    "VALID_REPLY_CODES",
    "Event",
    "Greeting",
    "Reply",
    "enhanced_prefix",
    "make_reply",
    "split_enhanced",
    "split_reply_line",
    "split_reply_text",
    "valid_reply_code",
]


class Event:
    """Base class of all events."""

    __slots__ = ()

    def __repr__(self) -> str:
        # attrs' repr, written once for every event class (they are declared repr=False)
        cls = type(self)
        if not attrs.has(cls):
            return f"{cls.__name__}()"
        parts = []
        for field in attrs.fields(cls):
            if field.repr is False:
                continue
            value = getattr(self, field.name)
            shown = repr(value) if field.repr is True else field.repr(value)
            parts.append(f"{field.name}={shown}")
        return f"{cls.__qualname__.rsplit('>.', 1)[-1]}({', '.join(parts)})"

    # Rich display in notebooks and IPython: the renderer _repr registers.
    def _repr_html_(self) -> str:
        return html_of(self)

    def _repr_pretty_(self, p: PrettyPrinter, cycle: bool) -> None:
        pretty_of(self, p, cycle)


# ------------------------------------------------------------------ reply-line grammar

# RFC 5321 §4.2:  Reply-line = *( Reply-code "-" [ textstring ] CRLF )
#                              Reply-code [ SP textstring ] CRLF
# Read here as: three ASCII digits, then the end of the line, or a separator ("-" on a
# continuation line, else SP) and the text. Whether the digits are a valid Reply-code
# (2-5, 0-5, 0-9) is valid_reply_code's question: codes.explain and the transcript
# show other codes too. One function on bytes (the reader, the transcript), which text
# (codes.explain, the notebook) goes through encoded; slicing, not a regex, as it runs
# on every reply line.


_SEPARATORS = (b"", b" ", b"-")


#: RFC 5321 §4.2: Reply-code = %x32-35 %x30-35 %x30-39
VALID_REPLY_CODES = frozenset(c for c in range(200, 560) if (c // 10) % 10 <= 5)


def valid_reply_code(code: int) -> bool:
    """RFC 5321 §4.2: the first digit is 2-5 and the second 0-5."""
    return code in VALID_REPLY_CODES


def split_reply_line(line: bytes) -> tuple[int, bytes, bytes] | None:
    """``b"250-SIZE 100"`` -> ``(250, b"-", b"SIZE 100")``: the code, the separator (b""
    when the line is the code alone) and the text, or None when ``line`` (without its
    line ending) is not a reply line. The code's range is not checked here."""
    separator = line[3:4]
    if separator not in _SEPARATORS or not line[:3].isdigit() or len(line) < 3:
        return None  # (bytes.isdigit is true only for ASCII digits)
    return int(line[:3]), separator, line[4:]


def split_reply_text(line: str) -> tuple[int, str, str] | None:
    """``split_reply_line`` for text: ``"550 5.1.1 No"`` -> ``(550, " ", "5.1.1 No")``."""
    parts = split_reply_line(line.encode("utf-8", "surrogatepass"))
    if parts is None:
        return None
    code, separator, text = parts
    return code, separator.decode("ascii"), text.decode("utf-8", "surrogatepass")


# RFC 2034 §4 / RFC 3463 §2: an enhanced status code at the start of a reply line's text,
# class 2, 4 or 5, subject and detail 0-999 without leading zeros, then a space or the end.
_ENHANCED_PREFIX_RE = re.compile(r"([245]\.(?:0|[1-9][0-9]{0,2})\.(?:0|[1-9][0-9]{0,2}))(?: |\Z)")


@functools.lru_cache(maxsize=512)
def _enhanced_token(token: str) -> EnhancedStatusCode | None:
    # The few codes a server uses come back on every reply: parse each once.
    m = _ENHANCED_PREFIX_RE.match(token)
    return None if m is None else EnhancedStatusCode.parse(m[1])


def enhanced_prefix(text: str) -> tuple[EnhancedStatusCode | None, str]:
    """The RFC 2034 enhanced status code at the start of a reply line's text and the text
    after it, or ``(None, text)`` when the text starts with none."""
    token, _, rest = text.partition(" ")
    enhanced = _enhanced_token(token) if token[:1] in ("2", "4", "5") else None
    return (None, text) if enhanced is None else (enhanced, rest)


def split_enhanced(code: int, text: str) -> tuple[EnhancedStatusCode | None, str]:
    """Take an RFC 2034 enhanced status code off the front of a reply line's text when its
    class matches the reply code's first digit (RFC 3463 §2)."""
    token, _, rest = text.partition(" ")  # enhanced_prefix, inline: once per reply
    enhanced = _enhanced_token(token) if token[:1] in ("2", "4", "5") else None
    if enhanced is None or enhanced.class_ != code // 100:
        return None, text
    return enhanced, rest


def make_reply(code: int, texts: list[str]) -> Reply:
    """A Reply from a checked code and the raw texts of its lines, with the enhanced
    status code of the first line taken off each line that repeats it."""
    # The caller checked the code; split_enhanced the class: build without re-validating.
    enhanced, first = split_enhanced(code, texts[0])
    if enhanced is None:
        return Reply._trusted(code, tuple(texts), None)
    prefix = str(enhanced)
    lines = [first]
    for text in texts[1:]:
        if text == prefix:
            lines.append("")
        elif text.startswith(prefix + " "):
            lines.append(text[len(prefix) + 1 :])
        else:
            lines.append(text)
    return Reply._trusted(code, tuple(lines), enhanced)


# ----------------------------------------------------------------------------- replies


# Reply's converter and validators run for every Reply a program builds (a server's
# handler: one per command), so the usual cases take no further call.


def _coerce_enhanced(value: EnhancedStatusCode | str | None) -> EnhancedStatusCode | None:
    if value is None or isinstance(value, EnhancedStatusCode):
        return value
    return EnhancedStatusCode.coerce(value)


def _check_code(_inst: object, _attr: object, code: int) -> None:
    # RFC 5321 §4.2: first digit 2-5, second digit 0-5 (valid_reply_code, inline).
    if not isinstance(code, int) or code not in VALID_REPLY_CODES:
        raise ValueError(f"invalid reply code {code!r}")


def _check_enhanced_class(inst: Reply, _attr: object, value: EnhancedStatusCode | None) -> None:
    # RFC 3463 §2 / RFC 2034 §4: the class matches the reply code's first digit (2, 4, 5);
    # 3xx replies carry none.
    if value is not None and value.class_ != inst.code // 100:
        raise ValueError(f"enhanced status code {value} cannot go with reply code {inst.code}")


def _coerce_lines(value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split("\n"))
    lines = tuple(value)
    return lines if lines else ("",)


class _ReplyFields(Event):
    __slots__ = ()
    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """All text lines joined with newlines (enhanced status codes removed)."""
        return "\n".join(self.lines)

    @property
    def reply_class(self) -> ReplyClass:
        return ReplyClass.of(self.code)

    @property
    def is_positive(self) -> bool:
        """2xx: the command succeeded."""
        return 200 <= self.code < 300

    @property
    def is_intermediate(self) -> bool:
        """3xx: go on (354 after DATA, 334 during AUTH)."""
        return 300 <= self.code < 400

    @property
    def is_transient(self) -> bool:
        """4xx: failed for now; the same command may work later (RFC 5321 §4.2.1)."""
        return 400 <= self.code < 500

    @property
    def is_permanent(self) -> bool:
        """5xx: failed; do not repeat the same command unchanged (RFC 5321 §4.2.1)."""
        return self.code >= 500


@final
@attrs.frozen(kw_only=True, repr=False)
class Reply(_ReplyFields):
    """A server reply (RFC 5321 §4.2): ``Reply(code=250, lines="OK")``.

    - ``code``: three digits, first 2-5, second 0-5.
    - ``lines``: the text of each line of a multi-line reply, without code, separator or
      enhanced status code. A str is split at newlines. At least one line (maybe empty).
    - ``enhanced``: the RFC 3463 enhanced status code (RFC 2034 puts it at the start of
      every line's text), or None. A str such as ``"5.1.1"`` is parsed.
    """

    code: int = attrs.field(validator=_check_code)
    lines: tuple[str, ...] = attrs.field(default=("",), converter=_coerce_lines)
    enhanced: EnhancedStatusCode | None = attrs.field(
        default=None, converter=_coerce_enhanced, validator=_check_enhanced_class
    )

    @property
    def challenge(self) -> bytes:
        """The decoded SASL challenge of a 334 reply during AUTH (RFC 4954 §4).
        Raises ValueError for another code or text that is not base64."""
        if self.code != 334:
            raise ValueError(f"a {self.code} reply is not an AUTH challenge")
        try:
            return base64.b64decode(self.lines[0].strip(), validate=True)
        except binascii.Error as exc:
            raise ValueError(f"334 challenge is not base64: {exc}") from None

    @classmethod
    def _trusted(
        cls, code: int, lines: tuple[str, ...], enhanced: EnhancedStatusCode | None
    ) -> Reply:
        """A Reply from values the reply reader has already checked (code range, enhanced
        class): skips the validators on the client's hot path."""
        self = object.__new__(cls)
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "lines", lines)
        object.__setattr__(self, "enhanced", enhanced)
        return self

    @classmethod
    def auth_challenge(cls, data: bytes) -> Reply:
        """``334 <base64 data>``: a SASL challenge from the server (RFC 4954 §4)."""
        return cls(code=334, lines=base64.b64encode(data).decode("ascii"))

    def __str__(self) -> str:
        """The reply as it goes on the wire (RFC 5321 §4.2.1: ``250-`` on every line but
        the last), one line per line, without CRLF."""
        return _wire_text(self.code, self.lines, self.enhanced)


def _wire_text(code: int, lines: tuple[str, ...], enhanced: object) -> str:
    """The lines write_reply puts on the wire, without their CRLFs."""
    esc = f"{enhanced} " if enhanced else ""
    last = len(lines) - 1
    out = []
    for i, text in enumerate(lines):
        sep = "-" if i < last else " "
        body = esc + text if text else esc.rstrip(" ")
        out.append(f"{code}{sep}{body}" if body else f"{code}{sep.strip()}")
    return "\n".join(out)


def _check_greeting_code(_inst: object, _attr: object, code: int) -> None:
    # RFC 5321 §4.3.2: connection establishment S: 220, E: 554; §3.8: 421 at any time.
    if code not in (220, 421, 554):
        raise ValueError(f"a greeting is 220, 554 or 421, not {code!r}")


@final
@attrs.frozen(kw_only=True, repr=False)
class Greeting(_ReplyFields):
    """The server's opening reply (RFC 5321 §3.1, §4.3.2): 220 ready, 554 no service
    (the server then only accepts QUIT), 421 closing. ``lines[0]`` starts with the server's
    domain (RFC 5321 §4.2 Greeting). No enhanced status code: RFC 2034 §3 leaves it out of
    the greeting."""

    code: int = attrs.field(default=220, validator=_check_greeting_code)
    lines: tuple[str, ...] = attrs.field(default=("",), converter=_coerce_lines)

    def __str__(self) -> str:
        """The greeting as it goes on the wire, without CRLF."""
        return _wire_text(self.code, self.lines, None)
