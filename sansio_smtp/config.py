# Config: the limits and policies of one Connection, frozen, with the RFC default for each.
# A Connection never changes its Config; use attrs.evolve to derive another.
from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from typing import final

import attrs

from ._extensions import Extensions

__all__ = [
    "DEFAULT_MAX_COMMAND_LINE",
    "DEFAULT_MAX_DATA_LINE",
    "DEFAULT_MAX_INVALID_COMMANDS",
    "DEFAULT_MAX_JUNK_COMMANDS",
    "DEFAULT_MAX_RECIPIENTS",
    "DEFAULT_MAX_REPLY_LINE",
    "DEFAULT_MAX_REPLY_LINES",
    "Config",
    "LineEndingPolicy",
]

DEFAULT_MAX_COMMAND_LINE = 512  # RFC 5321 §4.5.3.1.4, octets including CRLF
DEFAULT_MAX_REPLY_LINE = 512  # RFC 5321 §4.5.3.1.5, octets including CRLF
DEFAULT_MAX_DATA_LINE = 1000  # RFC 5321 §4.5.3.1.6, octets including CRLF
DEFAULT_MAX_RECIPIENTS = 1000  # RFC 5321 §4.5.3.1.8 asks for at least 100
DEFAULT_MAX_REPLY_LINES = 100  # no RFC limit; bounds a multi-line reply
DEFAULT_MAX_DATA_CHUNK = 256 * 1024  # largest MessageData a server emits
DEFAULT_MAX_JUNK_COMMANDS = 100  # as Postfix's smtpd_junk_command_limit
DEFAULT_MAX_INVALID_COMMANDS = 20  # as Postfix's smtpd_hard_error_limit
MAX_AUTH_LINE = 12288  # RFC 4954 §4: AUTH lines and responses may be this long


class LineEndingPolicy(enum.Enum):
    """What to do with a bare CR or bare LF (one not part of CRLF) in message content and
    command lines. RFC 5321 §2.3.8 forbids them; real clients still send them.

    Whatever the policy, only ``<CRLF>.<CRLF>`` ends DATA (RFC 5321 §4.1.1.4): a bare-LF
    "end of data" is content, which is what defeats SMTP smuggling (CVE-2023-51764).

    - NORMALIZE (the default, as Postfix's ``smtpd_forbid_bare_newline = normalize``):
      treat a bare CR or LF as CRLF. Accepts the LF-only clients that exist, and whatever
      we pass on is canonical, so no downstream peer can read it another way.
    - REJECT: a server answers the message with ``550 5.5.2`` and a command line with 500;
      a client raises LocalProtocolError instead of sending.
    - ALLOW: a server passes bare CR/LF through unchanged. A client treats ALLOW as
      NORMALIZE: it never puts a bare CR or LF on the wire.
    """

    NORMALIZE = "normalize"
    REJECT = "reject"
    ALLOW = "allow"


def _coerce_extensions(value: Extensions | Mapping[str, Iterable[str] | str | None]) -> Extensions:
    return Extensions.coerce(value)


def _positive(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or value <= 0:
        raise ValueError(f"{attr.name} must be a positive int, not {value!r}")


def _optional_positive(_inst: object, attr: attrs.Attribute[int], value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or value <= 0):
        raise ValueError(f"{attr.name} must be a positive int or None, not {value!r}")


def _at_least(minimum: int, cite: str) -> Callable[[object, attrs.Attribute[int], int], None]:
    def check(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
        if not isinstance(value, int) or value < minimum:
            raise ValueError(f"{attr.name} must be at least {minimum} ({cite}), not {value!r}")

    return check


@final
@attrs.frozen(kw_only=True)
class Config:
    """Limits and policies of a Connection. Every field has an RFC-correct default.

    - ``hostname``: the server's name in its greeting and EHLO reply.
    - ``extensions``: what a server advertises in its EHLO reply (``Connection.ehlo_reply``),
      which also decides which MAIL/RCPT parameters it accepts (others get 555).
    - ``max_command_line``: octets in a command line with CRLF; longer lines get
      ``500 5.5.2`` (RFC 5321 §4.5.3.1.4: at least 512).
    - ``max_reply_line``: octets in a reply line with CRLF (RFC 5321 §4.5.3.1.5); a longer
      one is a RemoteProtocolError on a client and a LocalProtocolError for a server's send.
    - ``max_reply_lines``: lines in one multi-line reply.
    - ``max_data_line``: octets in a line of message content with CRLF (RFC 5321
      §4.5.3.1.6), or None for no limit; a longer line makes the message ``500 5.5.2``.
    - ``max_message_size``: octets of message content a server accepts, or None; more
      makes the message ``552 5.3.4`` (RFC 5321 §4.5.3.1.10, RFC 1870).
    - ``max_recipients``: accepted RCPTs per transaction before ``452 4.5.3`` (RFC 5321
      §4.5.3.1.8 asks for at least 100).
    - ``max_data_chunk``: the largest MessageData a server emits.
    - ``line_endings``: see LineEndingPolicy.
    - ``lmtp``: speak LMTP (RFC 2033): LHLO instead of EHLO/HELO, and one reply per
      accepted recipient after the message.
    - ``require_tls``: a server refuses MAIL before TLS with ``530 5.7.0`` (RFC 3207 §4).
    - ``reject_improper_pipelining``: a server answers ``554 5.5.0`` to a command sent
      before the reply it had to wait for (no PIPELINING advertised, or after a command
      that ends a group, RFC 2920 §3.1), and to the first command of a client that spoke
      before the greeting. Off by default; ``Connection.improper_pipelining`` tells.
    - ``allow_8bit_without_8bitmime``: a client sends 8-bit content even when the
      transaction did not declare BODY=8BITMIME or SMTPUTF8 (RFC 6152 §3 says it must).
    - ``allow_plaintext_auth``: AUTH without TLS. Off by default: a server neither
      advertises nor accepts AUTH before TLS (``538 5.7.11``, RFC 4954 §6), and a client
      sends no AUTH of any mechanism in the clear (what CRAM-MD5 and SCRAM send can be
      cracked offline, and a man in the middle who strips STARTTLS picks the mechanism).
    - ``max_auth_failures``: failed AUTH exchanges before a server answers further AUTH
      with ``421 4.7.0`` and closes.
    - ``max_junk_commands``: NOOP, VRFY, EXPN, HELP, RSET, EHLO, HELO and LHLO commands
      a server reads before it answers the next one ``421 4.7.0`` and closes; the count
      starts again once a message is accepted (Postfix's ``smtpd_junk_command_limit``,
      default 100). None: no limit. A client flooding them only burns the server's time.
    - ``max_invalid_commands``: command lines a server refuses (InvalidCommand: bad
      syntax, out of sequence, too many recipients...) before it answers the next one
      ``421 4.7.0`` and closes; reset like the junk count (Postfix's
      ``smtpd_hard_error_limit``, 20). None: no limit.
    """

    hostname: str = "localhost"
    extensions: Extensions = attrs.field(factory=Extensions, converter=_coerce_extensions)
    max_command_line: int = attrs.field(
        default=DEFAULT_MAX_COMMAND_LINE, validator=_at_least(512, "RFC 5321 §4.5.3.1.4")
    )
    max_reply_line: int = attrs.field(
        default=DEFAULT_MAX_REPLY_LINE, validator=_at_least(512, "RFC 5321 §4.5.3.1.5")
    )
    max_reply_lines: int = attrs.field(default=DEFAULT_MAX_REPLY_LINES, validator=_positive)
    max_data_line: int | None = attrs.field(
        default=DEFAULT_MAX_DATA_LINE, validator=_optional_positive
    )
    max_message_size: int | None = attrs.field(default=None, validator=_optional_positive)
    max_recipients: int = attrs.field(
        default=DEFAULT_MAX_RECIPIENTS, validator=_at_least(100, "RFC 5321 §4.5.3.1.8")
    )
    max_data_chunk: int = attrs.field(
        default=DEFAULT_MAX_DATA_CHUNK, validator=_at_least(5, "room for the terminator")
    )
    line_endings: LineEndingPolicy = LineEndingPolicy.NORMALIZE
    lmtp: bool = False
    require_tls: bool = False
    reject_improper_pipelining: bool = False
    allow_8bit_without_8bitmime: bool = False
    allow_plaintext_auth: bool = False
    max_auth_failures: int = attrs.field(default=3, validator=_positive)
    max_junk_commands: int | None = attrs.field(
        default=DEFAULT_MAX_JUNK_COMMANDS, validator=_optional_positive
    )
    max_invalid_commands: int | None = attrs.field(
        default=DEFAULT_MAX_INVALID_COMMANDS, validator=_optional_positive
    )
