# Text a person types in a widget -> events, and replies -> text to edit.
#
# Strategy: a forgiving reading of what a person types ("mail from:<a@b> SIZE=10", "250
# 2.1.0 OK"), turned into the core's events; whether the event may be *sent* is left to
# Connection.send(), whose LocalProtocolError the views show. Nothing here touches the
# readers: the server still parses the bytes the client writes.
from __future__ import annotations

import base64
import binascii
import re

from .._events import (
    Auth,
    AuthResponse,
    Bdat,
    Data,
    Ehlo,
    Event,
    Expn,
    Helo,
    Help,
    Lhlo,
    MailFrom,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
    StartTLS,
    Vrfy,
)
from .._reply import enhanced_prefix, split_reply_text
from .._status import EnhancedStatusCode

__all__ = ["COMMAND_TEMPLATES", "parse_auth_response", "parse_command", "parse_reply", "reply_text"]

#: (label, command line) choices offered by the conversation explorer.
COMMAND_TEMPLATES: tuple[tuple[str, str], ...] = (
    ("EHLO", "EHLO client.example"),
    ("HELO", "HELO client.example"),
    ("LHLO (LMTP)", "LHLO client.example"),
    ("MAIL FROM", "MAIL FROM:<alice@example.org>"),
    ("MAIL FROM (null sender)", "MAIL FROM:<>"),
    ("RCPT TO", "RCPT TO:<bob@example.net>"),
    ("DATA", "DATA"),
    ("BDAT (CHUNKING)", "BDAT 13 LAST"),
    ("RSET", "RSET"),
    ("NOOP", "NOOP"),
    ("VRFY", "VRFY bob"),
    ("EXPN", "EXPN staff"),
    ("HELP", "HELP"),
    ("STARTTLS", "STARTTLS"),
    ("AUTH PLAIN", "AUTH PLAIN AGFsaWNlAHNlY3JldA=="),
    ("QUIT", "QUIT"),
)

_PATH_RE = re.compile(r"(MAIL\s+FROM|RCPT\s+TO)\s*:\s*(<[^>]*>|\S+)\s*(.*)", re.I | re.S)
_SIMPLE = {"DATA": Data, "RSET": Rset, "QUIT": Quit, "STARTTLS": StartTLS}
_HELLO = {"EHLO": Ehlo, "HELO": Helo, "LHLO": Lhlo}


def _params(text: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for word in text.split():
        key, eq, value = word.partition("=")
        params[key.upper()] = value if eq else None
    return params


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError(f"{what} must be base64, not {text!r}") from None


def parse_command(line: str) -> Event:
    """``"MAIL FROM:<a@example.org> SIZE=100"`` -> ``MailFrom(...)``. Raises ValueError
    for text that is no command this knows (the message says why)."""
    line = line.strip()
    if not line:
        raise ValueError("type a command, for instance EHLO client.example")
    verb, _, rest = line.partition(" ")
    verb, rest = verb.upper(), rest.strip()
    if verb in _SIMPLE:
        if rest:
            raise ValueError(f"{verb} takes no argument")
        return _SIMPLE[verb]()
    if verb in _HELLO:
        if not rest:
            raise ValueError(f"{verb} needs a domain: {verb} client.example")
        return _HELLO[verb](domain=rest)
    if verb in ("MAIL", "RCPT"):
        m = _PATH_RE.match(line)
        if m is None or m[2].startswith("<") != m[2].endswith(">"):
            example = "MAIL FROM:<alice@example.org>" if verb == "MAIL" else "RCPT TO:<b@c>"
            raise ValueError(f"write it as {example}")
        path = m[2][1:-1] if m[2].startswith("<") else m[2]
        params = _params(m[3])
        if verb == "MAIL":
            return MailFrom(reverse_path=path or None, params=params)
        return RcptTo(forward_path=path, params=params)
    if verb == "NOOP":
        return Noop(text=rest or None)
    if verb == "HELP":
        return Help(topic=rest or None)
    if verb in ("VRFY", "EXPN"):
        if not rest:
            raise ValueError(f"{verb} needs an argument")
        return Vrfy(text=rest) if verb == "VRFY" else Expn(text=rest)
    if verb == "BDAT":
        words = rest.split()
        if not words or not words[0].isdigit() or words[1:] not in ([], ["LAST"], ["last"]):
            raise ValueError("write it as BDAT <size> [LAST]")
        return Bdat(size=int(words[0]), last=len(words) == 2)
    if verb == "AUTH":
        words = rest.split()
        if not 1 <= len(words) <= 2:
            raise ValueError("write it as AUTH <mechanism> [initial response in base64]")
        initial = None
        if len(words) == 2:
            initial = b"" if words[1] == "=" else _b64(words[1], "the initial response")
        return Auth(mechanism=words[0], initial_response=initial)
    raise ValueError(f"unknown command {verb!r}")


def parse_auth_response(line: str) -> AuthResponse:
    """A line typed during AUTH: base64 data, or ``*`` to cancel (RFC 4954 §4)."""
    line = line.strip()
    if line == "*":
        return AuthResponse(data=None)
    return AuthResponse(data=_b64(line, "an AUTH response"))


def parse_reply(text: str) -> Reply:
    """``"550 5.1.1 No such user"`` (or several ``250-...`` lines) -> Reply. The code of
    the first line counts; an enhanced code after it is taken off every line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        raise ValueError("type a reply, for instance 250 OK")
    code: int | None = None
    enhanced: EnhancedStatusCode | None = None
    texts = []
    for number, line in enumerate(lines, 1):
        parts = split_reply_text(line)  # RFC 5321 §4.2 Reply-line, as the reader reads it
        if parts is None:
            raise ValueError(f"line {number} does not start with a 3-digit reply code: {line!r}")
        if code is None:
            code = parts[0]
        rest = parts[2]
        found, after = enhanced_prefix(rest)
        if found is not None and number == 1:
            enhanced = found
        if enhanced is not None and found == enhanced:
            rest = after.lstrip()
        texts.append(rest)
    assert code is not None
    return Reply(code=code, lines=tuple(texts), enhanced=enhanced)


def reply_text(reply: Reply) -> str:
    """A Reply as its wire lines (without CRLF), to show and edit."""
    esc = f"{reply.enhanced} " if reply.enhanced is not None else ""
    last = len(reply.lines) - 1
    return "\n".join(
        f"{reply.code}{'-' if i < last else ' '}{esc}{line}".rstrip()
        for i, line in enumerate(reply.lines)
    )
