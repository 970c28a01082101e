# Message shaping: the arguments of sendmail/sendmail_many/send_message as the envelope
# and the octets the engine sends (OutgoingMessage, flatten_message, as_content,
# as_recipients), and an address's ASCII form for a server without SMTPUTF8
# (a_label_address). No protocol decisions: the engine chooses parameters and transfer,
# and when an address goes as A-labels.
from __future__ import annotations

import copy
import email.generator
import email.message
import email.utils
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import final

import attrs

from ..._address import Address

__all__ = [
    "MessageSpec",
    "OutgoingMessage",
    "a_label_address",
    "as_content",
    "as_recipients",
    "flatten_message",
    "header_is_ascii",
]

#: Characters that IDNA 2003 (the stdlib "idna" codec, RFC 3490/3491) maps to others or
#: removes while IDNA 2008 (RFC 5892) keeps them: ß, final sigma, ZWNJ, ZWJ (the UTS #46
#: §4 "deviations"). "faß.de" would go to "fass.de" under one and "xn--fa-hia.de" under
#: the other: two domains, so such a domain is not converted.
_IDNA_DEVIATIONS = frozenset("\u00df\u03c2\u200c\u200d")


def as_recipients(to_addrs: str | Iterable[str]) -> tuple[str, ...]:
    """A recipient argument as a tuple: one str is one recipient (as smtplib)."""
    return (to_addrs,) if isinstance(to_addrs, str) else tuple(to_addrs)


def as_content(msg: bytes | bytearray | memoryview | str) -> bytes:
    """Message content as bytes: str is encoded as UTF-8 (8-bit unless it is ASCII)."""
    if isinstance(msg, bytes):  # the usual case first: one isinstance per message
        return msg
    if isinstance(msg, str):
        return msg.encode("utf-8")
    if isinstance(msg, (bytearray, memoryview)):
        return bytes(msg)
    raise TypeError(f"message content must be bytes or str, not {type(msg).__name__}")


@final
@attrs.frozen
class OutgoingMessage:
    """One message of a batch (``sendmail_many``), with the arguments of ``sendmail``:
    ``sender`` ("" for the null reverse-path), ``recipients`` (one str is one recipient),
    ``content`` (bytes; str is encoded as UTF-8), optional ``mail_params`` and
    ``rcpt_params`` (RFC 5321 §4.1.2 esmtp-params). A plain tuple ``(sender, recipients,
    content)`` is accepted wherever an OutgoingMessage is."""

    sender: str
    recipients: tuple[str, ...] = attrs.field(converter=as_recipients)
    content: bytes = attrs.field(converter=as_content, repr=lambda c: f"<{len(c)} octets>")
    mail_params: Mapping[str, str | None] | None = None
    rcpt_params: Mapping[str, str | None] | None = None


#: What sendmail_many takes for each message.
MessageSpec = (
    OutgoingMessage | tuple[str, str | Sequence[str], bytes | bytearray | memoryview | str]
)


def flatten_message(
    msg: email.message.Message,
    from_addr: str | None = None,
    to_addrs: str | Sequence[str] | None = None,
) -> tuple[str, list[str], bytes, bool]:
    """The envelope and the wire form of ``msg``, as ``smtplib.SMTP.send_message`` builds
    them: ``(sender, recipients, content, international)``.

    With a single Resent- block (RFC 5322 §3.6.6) the Resent- fields are used. The sender
    is the Sender field, else the first From address; the recipients are those of To, Bcc
    and Cc. Bcc and Resent-Bcc are removed from what is sent. ``international`` is True
    when an envelope address is not ASCII: the message is then generated with the
    policy's ``utf8=True`` clone (RFC 6532) and needs SMTPUTF8. Lines end in CRLF.
    Raises ValueError for several Resent- blocks or a message with no sender.
    """
    resent = msg.get_all("Resent-Date")
    if resent is None:
        prefix = ""
    elif len(resent) == 1:
        prefix = "Resent-"
    else:
        raise ValueError("message has more than one 'Resent-' header block")
    if from_addr is None:
        field = msg[prefix + "Sender"] if (prefix + "Sender") in msg else msg[prefix + "From"]
        if field is None:
            raise ValueError(f"message has no {prefix}From or {prefix}Sender header")
        from_addr = email.utils.getaddresses([str(field)])[0][1]
    if to_addrs is None:
        fields = [
            str(f) for name in ("To", "Bcc", "Cc") for f in (msg.get_all(prefix + name) or ())
        ]
        recipients = [a for _name, a in email.utils.getaddresses(fields) if a]
    elif isinstance(to_addrs, str):
        recipients = [to_addrs]
    else:
        recipients = list(to_addrs)
    msg_copy = copy.copy(msg)
    del msg_copy["Bcc"]
    del msg_copy["Resent-Bcc"]
    international = not all(a.isascii() for a in (from_addr, *recipients))
    buf = io.BytesIO()
    if international:
        policy = msg.policy.clone(utf8=True)  # type: ignore[call-arg]
        gen = email.generator.BytesGenerator(buf, policy=policy)
    else:
        gen = email.generator.BytesGenerator(buf)
    gen.flatten(msg_copy, linesep="\r\n")
    return from_addr, recipients, buf.getvalue(), international


def a_label_address(address: str) -> str:
    """``address`` with its domain as A-labels (RFC 5890 §2.3.2.1), for a server that does
    not offer SMTPUTF8: a U-label must not go there, its A-label may (RFC 6531 §3.2;
    RFC 5321 §2.3.5). The conversion is the stdlib "idna" codec (IDNA 2003, nameprep and
    punycode, RFC 3490-3492); a domain with a character on which IDNA 2003 and IDNA 2008
    disagree is refused rather than sent to what may be another domain. An ASCII address
    comes back as given; the local part is never changed.

    Raises UnicodeError saying why when there is no ASCII form: a non-ASCII local part
    (only SMTPUTF8 carries it), or a domain without an A-label form here; ValueError for
    a malformed address."""
    if address.isascii():
        return address
    parsed = Address.parse(address)
    if not parsed.local_part.isascii():
        raise UnicodeError(
            f"{address!r} has a non-ASCII local part, which has no ASCII form: only a server"
            " that offers SMTPUTF8 can take it (RFC 6531 §3.2)"
        )
    domain = parsed.domain or ""
    if _IDNA_DEVIATIONS.intersection(domain):
        raise UnicodeError(
            f"{address!r}: IDNA 2003 and IDNA 2008 give this domain different A-labels"
            " (UTS #46 §4 deviations); give the A-label form you mean"
        )
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise UnicodeError(f"{address!r}: the domain has no A-label form ({exc})") from None
    return str(attrs.evolve(parsed, domain=ascii_domain))


def header_is_ascii(content: bytes) -> bool:
    """Whether the header section of ``content`` (up to the first empty line) is ASCII:
    if not, it is an RFC 6532 header section, which needs SMTPUTF8 (RFC 6531 §3.2)."""
    end = content.find(b"\r\n\r\n")
    return (content if end < 0 else content[:end]).isascii()
