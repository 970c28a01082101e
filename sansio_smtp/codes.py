# A catalogue of SMTP reply codes and enhanced status codes, and explain(), which turns a
# reply someone pasted from a log into a plain explanation. Pure data and pure functions.
#
# Strategy: everything is frozen data built once at import; nothing here reads or writes.
# REPLY_CODES holds every reply code of RFC 5321 §4.2.2/§4.2.3 plus the codes that SMTP
# extensions define; ENHANCED_CODES holds every entry of the IANA "SMTP Enhanced Status
# Codes" registry (RFC 5248), keyed by the registry's own "X.subject.detail" spelling.
# explain() is deliberately strict about what a reply line is (RFC 5321 §4.2: three digits,
# then "-" or " " and text) and lenient about what it finds in one: every oddity it can
# still make sense of becomes a warning instead of an exception.
#
# Sources, read for this module:
#   RFC 5321 §4.2.1 (reply classes), §4.2.2 and §4.2.3 (the codes and their wording),
#     §4.3.2 (which command may return which code);
#   RFC 3463 (enhanced status codes) through the IANA registry, which carries its
#     titles and text; the registry snapshot used is the one last updated 2018-12-21,
#     plus X.7.30 (RFC 8689), registered after it;
#   RFC 4954 §4 and §6 (AUTH: 235 334 432 454 500 530 534 535 538);
#   RFC 3207 (STARTTLS: 220 454 501 530); RFC 7504 (521, 556); RFC 1985 (ETRN: 250 251
#   252 253 458 459); RFC 2645 (ATRN: 453).
# "meaning" and "title" quote the RFC or the registry; every "description" is our own
# plain-language wording for a person debugging mail.
#
# Command names in ReplyCodeInfo.commands are the SMTP verbs, plus two pseudo-commands:
#   "CONNECT"  - the greeting the server sends when the connection opens, and
#   "DATA-END" - the reply to the message data, sent after the final "<CRLF>.<CRLF>".
# "DATA" alone means the reply to the DATA command line itself (354, 503, 554).
#
# A few reply codes (422 430 523 524 525 533) appear only in the "associated basic status
# code" column of the IANA registry; they are kept so that every code the registry names
# can be looked up, and their entries say that no RFC gives them a text.
from __future__ import annotations

import re
import types
from collections.abc import Iterable, Mapping
from typing import final

import attrs

from ._reply import split_reply_text
from ._status import EnhancedStatusCode, ReplyClass

__all__ = [
    "CONNECT",
    "DATA_END",
    "ENHANCED_CLASSES",
    "ENHANCED_CODES",
    "ENHANCED_SUBJECTS",
    "REPLY_CODES",
    "EnhancedClassInfo",
    "EnhancedCodeInfo",
    "EnhancedSubjectInfo",
    "Explanation",
    "ReplyCodeInfo",
    "enhanced_code_info",
    "explain",
    "reply_code_info",
]

CONNECT = "CONNECT"
"""Pseudo-command: the server's greeting when the connection opens."""

DATA_END = "DATA-END"
"""Pseudo-command: the reply after the end-of-data ``<CRLF>.<CRLF>``."""


# --------------------------------------------------------------------------- data types


@final
@attrs.frozen(kw_only=True)
class ReplyCodeInfo:
    """What one three-digit reply code means.

    ``meaning`` is the defining RFC's own wording; ``description`` explains it in plain
    words; ``commands`` are the commands that may return it (RFC 5321 §4.3.2 for the
    base protocol, the extension's RFC for extension commands), with the pseudo-commands
    :data:`CONNECT` and :data:`DATA_END`; ``references`` name the defining documents.
    """

    code: int
    meaning: str
    reply_class: ReplyClass
    description: str
    commands: tuple[str, ...]
    references: tuple[str, ...]

    def __attrs_post_init__(self) -> None:
        if not 200 <= self.code <= 599 or ReplyClass.of(self.code) is not self.reply_class:
            raise ValueError(f"reply class {self.reply_class} does not fit code {self.code}")


@final
@attrs.frozen(kw_only=True)
class EnhancedCodeInfo:
    """One entry of the enhanced status code registry, keyed like ``"X.1.1"``.

    ``title`` is the registry's sample text; ``reply_codes`` are the associated basic
    status codes the registry gives (empty where it gives none, says "Any", or only
    "5XX"); ``description`` explains the code in plain words.
    """

    code: str
    title: str
    description: str
    references: tuple[str, ...]
    reply_codes: tuple[int, ...]


@final
@attrs.frozen(kw_only=True)
class EnhancedClassInfo:
    """The class part of an enhanced status code: ``2.X.X``, ``4.X.X`` or ``5.X.X``."""

    code: str
    class_: int
    title: str
    description: str
    references: tuple[str, ...]


@final
@attrs.frozen(kw_only=True)
class EnhancedSubjectInfo:
    """The subject part of an enhanced status code, ``X.0.X`` to ``X.7.X``."""

    code: str
    subject: int
    title: str
    description: str
    references: tuple[str, ...]


def _index_replies(entries: Iterable[ReplyCodeInfo]) -> Mapping[int, ReplyCodeInfo]:
    table: dict[int, ReplyCodeInfo] = {}
    for entry in entries:
        if entry.code in table:
            raise ValueError(f"reply code {entry.code} listed twice")
        table[entry.code] = entry
    return types.MappingProxyType(dict(sorted(table.items())))


def _index_enhanced(entries: Iterable[EnhancedCodeInfo]) -> Mapping[str, EnhancedCodeInfo]:
    table: dict[str, EnhancedCodeInfo] = {}
    for entry in entries:
        if entry.code in table:
            raise ValueError(f"enhanced code {entry.code} listed twice")
        table[entry.code] = entry
    return types.MappingProxyType(table)


# ------------------------------------------------------------------------- reply codes

_5321 = ("RFC 5321",)
# RFC 5321 §4.3.2: "any SMTP command can return" 500, 501 and 421.
_ANY_COMMAND = (
    "EHLO", "HELO", "MAIL", "RCPT", "DATA", "RSET", "VRFY", "EXPN", "HELP", "NOOP", "QUIT",
)  # fmt: skip


def _reply(
    code: int,
    meaning: str,
    description: str,
    commands: tuple[str, ...],
    references: tuple[str, ...] = _5321,
) -> ReplyCodeInfo:
    return ReplyCodeInfo(
        code=code,
        meaning=meaning,
        reply_class=ReplyClass.of(code),
        description=description,
        commands=commands,
        references=references,
    )


def _registry_only(
    code: int, enhanced: str, title: str, commands: tuple[str, ...]
) -> ReplyCodeInfo:
    return _reply(
        code,
        f"(no text defined; the IANA registry associates it with {enhanced} {title!r})",
        f"No RFC defines this reply code; it appears only as a basic code the enhanced status "
        f"code registry lists for {enhanced} ({title}). Read it as that enhanced code.",
        commands,
        ("RFC 5248",),
    )


# fmt: off
REPLY_CODES: Mapping[int, ReplyCodeInfo] = _index_replies([
    # ---- 2yz positive completion
    _reply(211, "System status, or system help reply",
           "A status report or help summary from the server, usually in answer to HELP. "
           "Informational; nothing failed.",
           ("HELP",)),
    _reply(214, "Help message (Information on how to use the receiver or the meaning of a "
                "particular non-standard command; this reply is useful only to the human user)",
           "Help text meant for a person, in answer to HELP. Programs should not parse it.",
           ("HELP",)),
    _reply(220, "<domain> Service ready",
           "The server's greeting when the connection opens: it is ready for EHLO or HELO. "
           "In answer to STARTTLS it means the TLS handshake can start now.",
           (CONNECT, "STARTTLS"), ("RFC 5321", "RFC 3207")),
    _reply(221, "<domain> Service closing transmission channel",
           "Goodbye: the server acknowledges QUIT and closes the connection.",
           ("QUIT",)),
    _reply(235, "Authentication Succeeded",
           "AUTH worked: the client is now logged in for the rest of the session.",
           ("AUTH",), ("RFC 4954",)),
    _reply(250, "Requested mail action okay, completed",
           "The command succeeded. After the end of the message data it means the server "
           "has taken responsibility for the message. In answer to ETRN it means queue "
           "processing for the named node has started.",
           ("EHLO", "HELO", "MAIL", "RCPT", DATA_END, "RSET", "VRFY", "EXPN", "NOOP",
            "ETRN"),
           ("RFC 5321", "RFC 1985")),
    _reply(251, "User not local; will forward to <forward-path> (See Section 3.4)",
           "The recipient is accepted, but lives elsewhere; the server will forward the "
           "message to the address it names. In answer to ETRN: no messages are waiting "
           "for that node.",
           ("RCPT", "VRFY", "ETRN"), ("RFC 5321", "RFC 1985")),
    _reply(252, "Cannot VRFY user, but will accept message and attempt delivery "
                "(See Section 3.5.3)",
           "The server will not confirm whether the address exists (often a privacy "
           "policy) but will still accept mail for it. In answer to ETRN: pending messages "
           "for the node are being sent.",
           ("VRFY", "EXPN", "ETRN"), ("RFC 5321", "RFC 1985")),
    _reply(253, "OK, <n> pending messages for node <x> started",
           "Answer to ETRN: the server has started sending the given number of queued "
           "messages to the named node.",
           ("ETRN",), ("RFC 1985",)),
    # ---- 3yz positive intermediate
    _reply(334, "A server challenge is sent as a 334 reply with the text part containing "
                "the [BASE64] encoded string supplied by the SASL mechanism.",
           "An AUTH step: the server sends a base64 challenge (or nothing) and waits for "
           "the client's next base64 response line. Not an error.",
           ("AUTH",), ("RFC 4954",)),
    _reply(354, "Start mail input; end with <CRLF>.<CRLF>",
           "The server accepted DATA and now waits for the message itself, ended by a "
           "line holding a single dot. The real verdict comes after that dot.",
           ("DATA",)),
    # ---- 4yz transient negative completion
    _reply(421, "<domain> Service not available, closing transmission channel (This may be "
                "a reply to any command if the service knows it must shut down)",
           "The server is shutting down or overloaded and closes the connection. Nothing "
           "of the current command was done; connect again later.",
           (*_ANY_COMMAND, DATA_END)),
    _registry_only(422, "X.7.12", "A password transition is needed", ("AUTH",)),
    _registry_only(430, "X.5.1", "Invalid command", ()),
    _reply(432, "A password transition is needed",
           "AUTH refused for now: the user has to move to the requested mechanism, "
           "usually by logging in once with PLAIN; after that the mechanism works.",
           ("AUTH",), ("RFC 4954",)),
    _reply(450, "Requested mail action not taken: mailbox unavailable (e.g., mailbox busy "
                "or temporarily blocked for policy reasons)",
           "The mailbox cannot take mail right now (busy, locked, or a temporary policy "
           "block such as greylisting). Try again later.",
           ("RCPT", DATA_END)),
    _reply(451, "Requested action aborted: local error in processing",
           "Something went wrong on the server's side (a temporary local error). Not the "
           "sender's fault; try again later.",
           ("MAIL", "RCPT", DATA_END)),
    _reply(452, "Requested action not taken: insufficient system storage",
           "The server is short of storage, or (RFC 5321 §4.5.3.1.10) will take no more "
           "recipients in this transaction. Try again later, or send the remaining "
           "recipients in a new transaction.",
           ("MAIL", "RCPT", DATA_END)),
    _reply(453, "You have no mail",
           "Answer to ATRN (on-demand mail relay): there is no mail waiting for the "
           "client.",
           ("ATRN",), ("RFC 2645",)),
    _reply(454, "Temporary authentication failure (RFC 4954); TLS not available due to "
                "temporary reason (RFC 3207)",
           "AUTH failed because of a temporary problem on the server (do not ask for the "
           "password again), or STARTTLS cannot be done right now. Try again later.",
           ("AUTH", "STARTTLS"), ("RFC 4954", "RFC 3207")),
    _reply(455, "Server unable to accommodate parameters",
           "The server understood the MAIL or RCPT parameters but cannot honour them at "
           "the moment. Try again later.",
           ("MAIL", "RCPT")),
    _reply(458, "Unable to queue messages for node <x>",
           "Answer to ETRN: the server cannot start sending the queued mail for that node "
           "now.",
           ("ETRN",), ("RFC 1985",)),
    _reply(459, "Node <x> not allowed: <reason>",
           "Answer to ETRN: the client may not ask for that node's mail to be sent.",
           ("ETRN",), ("RFC 1985",)),
    # ---- 5yz permanent negative completion
    _reply(500, "Syntax error, command unrecognized (This may include errors such as "
                "command line too long)",
           "The server did not understand the command at all: unknown verb, garbage, or a "
           "line that was too long (during AUTH: a response longer than it can take).",
           (*_ANY_COMMAND, "AUTH"), ("RFC 5321", "RFC 4954")),
    _reply(501, "Syntax error in parameters or arguments",
           "The command is known but its arguments are malformed (for instance a broken "
           "address, or arguments to a command that takes none). Fix the command.",
           (*_ANY_COMMAND, "AUTH", "STARTTLS", "ETRN"),
           ("RFC 5321", "RFC 4954", "RFC 3207", "RFC 1985")),
    _reply(502, "Command not implemented (see Section 4.2.4)",
           "The server knows this command but does not support it (for example VRFY or "
           "EXPN switched off).",
           ("EHLO", "HELO", "VRFY", "EXPN", "HELP")),
    _reply(503, "Bad sequence of commands",
           "The command came in the wrong order, such as RCPT before MAIL, DATA with no "
           "accepted recipient, or a second AUTH.",
           ("MAIL", "RCPT", "DATA", "AUTH"), ("RFC 5321", "RFC 4954")),
    _reply(504, "Command parameter not implemented",
           "The command is supported but not with this parameter (for AUTH: the server "
           "does not offer that mechanism).",
           ("EHLO", "HELO", "VRFY", "EXPN", "HELP", "AUTH"), ("RFC 5321", "RFC 4954")),
    _reply(521, "Host does not accept mail",
           "Sent instead of a greeting: this host never accepts mail. Do not retry it; "
           "look for the right mail server (MX) instead.",
           (CONNECT,), ("RFC 7504",)),
    _registry_only(523, "X.7.10", "Encryption Needed", ("AUTH",)),
    _registry_only(524, "X.7.11", "Encryption required for requested authentication mechanism",
                   ("AUTH",)),
    _registry_only(525, "X.7.13", "User Account Disabled", ("AUTH",)),
    _reply(530, "Authentication required (RFC 4954); Must issue a STARTTLS command first "
                "(RFC 3207)",
           "Server policy requires the client to log in with AUTH, or to switch on TLS "
           "with STARTTLS, before it will accept this command.",
           ("HELO", "MAIL", "RCPT", "DATA", "RSET", "VRFY", "EXPN", "HELP", "AUTH"),
           ("RFC 4954", "RFC 3207")),
    _registry_only(533, "X.7.1", "Delivery not authorized, message refused", ()),
    _reply(534, "Authentication mechanism is too weak",
           "AUTH refused: the chosen mechanism is weaker than the server allows for this "
           "user. Use a stronger mechanism.",
           ("AUTH",), ("RFC 4954",)),
    _reply(535, "Authentication credentials invalid",
           "AUTH failed: wrong user name or password (or other credentials). Ask the user "
           "for new credentials.",
           ("AUTH",), ("RFC 4954",)),
    _reply(538, "Encryption required for requested authentication mechanism",
           "AUTH refused: this mechanism is only allowed over an encrypted connection. Use "
           "STARTTLS first. RFC 4954 keeps this code for history only.",
           ("AUTH",), ("RFC 4954",)),
    _reply(550, "Requested action not taken: mailbox unavailable (e.g., mailbox not found, "
                "no access, or command rejected for policy reasons)",
           "The server refused: the mailbox does not exist, may not be used, or policy "
           "(spam filtering, relaying denied) forbids it. The enhanced code and the text "
           "usually say which.",
           ("EHLO", "HELO", "MAIL", "RCPT", DATA_END, "VRFY", "EXPN")),
    _reply(551, "User not local; please try <forward-path> (See Section 3.4)",
           "The recipient is not handled here; the server names another address to try "
           "but will not forward the message itself.",
           ("RCPT", "VRFY")),
    _reply(552, "Requested mail action aborted: exceeded storage allocation",
           "The message is too big, or the recipient's mailbox is over quota.",
           ("MAIL", "RCPT", DATA_END)),
    _reply(553, "Requested action not taken: mailbox name not allowed (e.g., mailbox syntax "
                "incorrect)",
           "The address is not acceptable, typically because its syntax is wrong or it is "
           "not allowed here.",
           ("MAIL", "RCPT", "VRFY")),
    _reply(554, "Transaction failed (Or, in the case of a connection-opening response, "
                "\"No SMTP service here\")",
           "The transaction failed as a whole (after the message data this is often a "
           "spam or content rejection). As a greeting it means the server will not talk "
           "SMTP with this client.",
           (CONNECT, "DATA", DATA_END)),
    _reply(555, "MAIL FROM/RCPT TO parameters not recognized or not implemented",
           "The server does not know an extension parameter given on MAIL FROM or RCPT TO "
           "(for instance SIZE= or BODY= without the extension).",
           ("MAIL", "RCPT")),
    _reply(556, "Domain does not accept mail",
           "The recipient's domain declares that it accepts no mail at all (for instance "
           "with a null MX record, RFC 7505). Do not retry.",
           ("RCPT",), ("RFC 7504",)),
])
# fmt: on
"""Every reply code in the catalogue, by number (read-only)."""


# ---------------------------------------------------------------- enhanced status codes

# fmt: off
ENHANCED_CLASSES: Mapping[int, EnhancedClassInfo] = types.MappingProxyType({
    2: EnhancedClassInfo(
        code="2.X.X", class_=2, title="Success",
        description="The message was delivered, or the action succeeded. The detail may "
                    "report a change that was made on the way (such as a conversion).",
        references=("RFC 3463",)),
    4: EnhancedClassInfo(
        code="4.X.X", class_=4, title="Persistent Transient Failure",
        description="The message itself is fine, but a temporary condition stopped or "
                    "delayed it; sending it again later may work.",
        references=("RFC 3463",)),
    5: EnhancedClassInfo(
        code="5.X.X", class_=5, title="Permanent Failure",
        description="Sending the same message again will not work; the message or the "
                    "destination has to change first.",
        references=("RFC 3463",)),
})
# fmt: on
"""The three classes of RFC 3463 §3.1, by class digit (read-only)."""

# fmt: off
ENHANCED_SUBJECTS: Mapping[int, EnhancedSubjectInfo] = types.MappingProxyType({
    0: EnhancedSubjectInfo(
        code="X.0.X", subject=0, title="Other or Undefined Status",
        description="No more is said about what the problem concerns.",
        references=("RFC 3463",)),
    1: EnhancedSubjectInfo(
        code="X.1.X", subject=1, title="Addressing Status",
        description="A problem with the sender's or the recipient's address: its syntax or "
                    "whether it exists. Usually the sender can correct it.",
        references=("RFC 3463",)),
    2: EnhancedSubjectInfo(
        code="X.2.X", subject=2, title="Mailbox Status",
        description="A problem with the recipient's mailbox, which the recipient normally "
                    "controls (full, disabled, size limits).",
        references=("RFC 3463",)),
    3: EnhancedSubjectInfo(
        code="X.3.X", subject=3, title="Mail System Status",
        description="A problem with the destination mail system, which its administrator "
                    "controls.",
        references=("RFC 3463",)),
    4: EnhancedSubjectInfo(
        code="X.4.X", subject=4, title="Network and Routing Status",
        description="A problem with the network or routing between the systems, such as "
                    "DNS, connections or loops.",
        references=("RFC 3463",)),
    5: EnhancedSubjectInfo(
        code="X.5.X", subject=5, title="Mail Delivery Protocol Status",
        description="A problem in the SMTP conversation itself: bad commands, syntax, "
                    "protocol mismatches or a broken connection.",
        references=("RFC 3463",)),
    6: EnhancedSubjectInfo(
        code="X.6.X", subject=6, title="Message Content or Media Status",
        description="A problem with the message content: media types or conversions that "
                    "sender and receiver do not both support.",
        references=("RFC 3463",)),
    7: EnhancedSubjectInfo(
        code="X.7.X", subject=7, title="Security or Policy Status",
        description="A security or policy problem: filtering, authentication, encryption "
                    "or sender checks such as SPF and DKIM.",
        references=("RFC 3463",)),
})
# fmt: on
"""The eight subjects of RFC 3463 §3.2 to §3.9, by subject number (read-only)."""

_3463 = ("RFC 3463",)


def _enh(
    code: str,
    title: str,
    reply_codes: tuple[int, ...],
    description: str,
    references: tuple[str, ...] = _3463,
) -> EnhancedCodeInfo:
    return EnhancedCodeInfo(
        code=code,
        title=title,
        description=description,
        references=references,
        reply_codes=reply_codes,
    )


# fmt: off
ENHANCED_CODES: Mapping[str, EnhancedCodeInfo] = _index_enhanced([
    _enh("X.0.0", "Other undefined Status", (),
         "A catch-all: only the class (success, temporary or permanent failure) is known. "
         "The server's text may say more."),
    # ---- X.1 addressing
    _enh("X.1.0", "Other address status", (),
         "Something about an address in the message caused this, without a more precise "
         "reason."),
    _enh("X.1.1", "Bad destination mailbox address", (451, 550),
         "The recipient mailbox does not exist: the part before the @ is unknown at the "
         "destination. Check the address for typos; retrying will not help."),
    _enh("X.1.2", "Bad destination system address", (),
         "The recipient's domain (the part after the @) does not exist or cannot receive "
         "mail."),
    _enh("X.1.3", "Bad destination mailbox address syntax", (501,),
         "The recipient address is not syntactically valid."),
    _enh("X.1.4", "Destination mailbox address ambiguous", (),
         "The address matches more than one mailbox at the destination, for example after "
         "a fuzzy name lookup, so the server cannot tell which one is meant."),
    _enh("X.1.5", "Destination address valid", (250,),
         "The recipient address is fine; used in success replies and delivery reports."),
    _enh("X.1.6", "Destination mailbox has moved, No forwarding address", (),
         "The address used to work but no longer takes mail, and no new address is known."),
    _enh("X.1.7", "Bad sender's mailbox address syntax", (),
         "The sender address (MAIL FROM) is not syntactically valid."),
    _enh("X.1.8", "Bad sender's system address", (451, 501),
         "The sender's domain does not exist or cannot receive mail, so bounces could not "
         "be returned; the server refuses mail from it."),
    _enh("X.1.9", "Message relayed to non-compliant mailer", (),
         "The address was valid, but the message went on to a system that does not "
         "support this reporting, so nothing more can be said.",
         ("RFC 3886",)),
    _enh("X.1.10", "Recipient address has null MX", (556,),
         "The recipient's domain publishes a \"null MX\" record: it declares that it "
         "accepts no mail at all.",
         ("RFC 7505", "RFC 7504")),
    # ---- X.2 mailbox
    _enh("X.2.0", "Other or undefined mailbox status", (),
         "The mailbox exists, but something about it caused this."),
    _enh("X.2.1", "Mailbox disabled, not accepting messages", (),
         "The mailbox exists but is switched off for incoming mail: permanent if it stays "
         "off, temporary if it is only suspended."),
    _enh("X.2.2", "Mailbox full", (552,),
         "The recipient's mailbox is over its quota. The recipient can make room, so it is "
         "meant as a temporary condition."),
    _enh("X.2.3", "Message length exceeds administrative limit", (552,),
         "The message is larger than this mailbox's own size limit (lower than the "
         "system-wide one). Permanent for this message."),
    _enh("X.2.4", "Mailing list expansion problem", (450, 452),
         "The address is a mailing list, and the list could not be expanded into its "
         "members."),
    # ---- X.3 mail system
    _enh("X.3.0", "Other or undefined mail system status", (221, 250, 421, 451, 550, 554),
         "The destination system normally takes mail, but something about it caused this."),
    _enh("X.3.1", "Mail system full", (452,),
         "The destination system as a whole has run out of storage; the recipient cannot "
         "fix that. Temporary."),
    _enh("X.3.2", "System not accepting network messages", (453, 521),
         "The destination host is not taking mail, for now (shutdown, overload, "
         "maintenance) or for good.",
         ("RFC 3463", "RFC 7504")),
    _enh("X.3.3", "System not capable of selected features", (),
         "The message asks for features the destination cannot provide, for example a "
         "gateway that cannot map them to another mail system."),
    _enh("X.3.4", "Message too big for system", (552, 554),
         "The message is larger than the system's per-message size limit. Permanent: send "
         "something smaller."),
    _enh("X.3.5", "System incorrectly configured", (),
         "The destination is configured in a way that keeps it from accepting this "
         "message; a job for its administrator."),
    _enh("X.3.6", "Requested priority was changed", (250, 251),
         "The message was accepted, but not at the priority asked for (MT-PRIORITY); the "
         "reply text gives the priority used instead.",
         ("RFC 6710",)),
    # ---- X.4 network and routing
    _enh("X.4.0", "Other or undefined network or routing status", (),
         "Something went wrong with networking or routing, with no more precise reason."),
    _enh("X.4.1", "No answer from host", (451,),
         "The next host did not answer the connection attempt (busy or unreachable). "
         "Temporary."),
    _enh("X.4.2", "Bad connection", (421,),
         "A connection was made but broke down (timeout or poor link) before the transfer "
         "finished. Temporary."),
    _enh("X.4.3", "Directory server failure", (451, 550),
         "A directory service needed for routing, typically DNS, could not be reached. "
         "Temporary."),
    _enh("X.4.4", "Unable to route", (),
         "No route to the destination could be found, for example DNS has no usable "
         "record for the domain."),
    _enh("X.4.5", "Mail system congestion", (451,),
         "The mail system is congested and could not deliver now. Temporary."),
    _enh("X.4.6", "Routing loop detected", (),
         "The message was passed on too many times, usually because of a routing or "
         "forwarding loop."),
    _enh("X.4.7", "Delivery time expired", (),
         "The message became too old: it sat in a queue too long, or its time-to-live ran "
         "out."),
    # ---- X.5 mail delivery protocol
    _enh("X.5.0", "Other or undefined protocol status",
         (220, 250, 251, 252, 253, 451, 452, 454, 458, 459, 501, 502, 503, 554),
         "Something went wrong in the SMTP exchange that no more precise code covers."),
    _enh("X.5.1", "Invalid command", (430, 500, 501, 503, 530, 550, 554, 555),
         "A command came out of order or is not supported."),
    _enh("X.5.2", "Syntax error", (500, 501, 502, 550, 555),
         "A command could not be understood: bad syntax or an unknown command."),
    _enh("X.5.3", "Too many recipients", (451,),
         "There are more recipients than the server takes in one transaction; the rest "
         "should go in another transaction."),
    _enh("X.5.4", "Invalid command arguments", (451, 501, 502, 503, 504, 550, 555),
         "A valid command had invalid arguments: out of range, or naming a feature the "
         "server does not know."),
    _enh("X.5.5", "Wrong protocol version", (),
         "Client and server use protocol versions that do not match, and could not agree."),
    _enh("X.5.6", "Authentication Exchange line is too long", (500,),
         "During AUTH the client sent a base64 response longer than the server's buffer "
         "for that mechanism.",
         ("RFC 4954",)),
    # ---- X.6 message content or media
    _enh("X.6.0", "Other or undefined media error", (),
         "Something about the message content made it undeliverable."),
    _enh("X.6.1", "Media not supported", (),
         "The message's media type is not supported by the delivery protocol or by the "
         "next system."),
    _enh("X.6.2", "Conversion required and prohibited", (),
         "The content would have to be converted to be delivered, but conversion is not "
         "allowed by the sender or by the sending host's policy."),
    _enh("X.6.3", "Conversion required but not supported", (554,),
         "The content has to be converted to go further and no host on the path can do "
         "it, for example 8-bit content for a next hop that only takes 7-bit."),
    _enh("X.6.4", "Conversion with loss performed", (250,),
         "Delivered, but the content had to be converted and some of it was lost (a "
         "warning); a failure if the sender forbade lossy conversion."),
    _enh("X.6.5", "Conversion Failed", (),
         "A needed conversion was tried and did not work."),
    _enh("X.6.6", "Message content not available", (554,),
         "The message content could not be fetched from the remote system it was to come "
         "from (BURL).",
         ("RFC 4468",)),
    _enh("X.6.7", "Non-ASCII addresses not permitted for that sender/recipient", (553, 550),
         "An internationalized (non-ASCII) address was given on MAIL or RCPT where the "
         "server does not allow one.",
         ("RFC 6531",)),
    _enh("X.6.8", "UTF-8 string reply is required, but not permitted by the SMTP client",
         (252, 553, 550),
         "The server would have to answer with a UTF-8 mailbox name, but the client did "
         "not say it can take one.",
         ("RFC 6531",)),
    _enh("X.6.9", "UTF-8 header message cannot be transferred to one or more recipients, "
                  "so the message must be rejected", (550,),
         "A message with UTF-8 header fields could not be passed on to at least one "
         "recipient; it was rejected after the end of the message data.",
         ("RFC 6531",)),
    _enh("X.6.10", "(no sample text; deprecated duplicate of X.6.8)", (),
         "Registered by mistake as a copy of X.6.8 and deprecated; read it as X.6.8.",
         ("RFC 6531",)),
    # ---- X.7 security or policy
    _enh("X.7.0", "Other or undefined security status",
         (220, 235, 450, 454, 500, 501, 503, 504, 530, 535, 550),
         "A security or policy matter with no more precise reason, possibly withheld on "
         "purpose. Also used by AUTH for \"authentication succeeded\" and \"authentication "
         "required\"."),
    _enh("X.7.1", "Delivery not authorized, message refused", (451, 454, 502, 503, 533, 550, 551),
         "The sender may not send to this destination: host or recipient filtering, such "
         "as relaying denied or a blocklisted sender."),
    _enh("X.7.2", "Mailing list expansion prohibited", (550,),
         "The sender may not send to this mailing list."),
    _enh("X.7.3", "Security conversion required but not possible", (),
         "Delivery would need a conversion from one secure messaging protocol to another, "
         "which could not be done."),
    _enh("X.7.4", "Security features not supported", (504,),
         "The message uses security features, such as secure authentication, that the "
         "delivery protocol cannot support."),
    _enh("X.7.5", "Cryptographic failure", (),
         "A system that should verify or decrypt the message could not, because a key or "
         "similar information was missing or invalid."),
    _enh("X.7.6", "Cryptographic algorithm not supported", (),
         "A system that should verify or decrypt the message could not, because it does "
         "not support the algorithm used."),
    _enh("X.7.7", "Message integrity failure", (),
         "An integrity check found the message corrupted or altered."),
    _enh("X.7.8", "Authentication credentials invalid", (535, 554),
         "AUTH failed: the credentials (user name, password) are wrong or not enough. Ask "
         "the user for new ones.",
         ("RFC 4954",)),
    _enh("X.7.9", "Authentication mechanism is too weak", (534,),
         "The AUTH mechanism is weaker than the server allows for this user; use a "
         "stronger one.",
         ("RFC 4954",)),
    _enh("X.7.10", "Encryption Needed", (523,),
         "A security layer such as TLS must be switched on before this (usually "
         "plain-text) authentication mechanism may be used.",
         ("RFC 5248",)),
    _enh("X.7.11", "Encryption required for requested authentication mechanism", (524, 538),
         "This AUTH mechanism may only be used on an encrypted connection. Kept for "
         "history: servers should just not offer such mechanisms without encryption.",
         ("RFC 4954",)),
    _enh("X.7.12", "A password transition is needed", (422, 432),
         "The user has to move to the requested AUTH mechanism, usually by logging in "
         "once with PLAIN.",
         ("RFC 4954",)),
    _enh("X.7.13", "User Account Disabled", (525,),
         "The login was right but the account is disabled; only the administrator can fix "
         "it, typing the password again will not help.",
         ("RFC 5248",)),
    _enh("X.7.14", "Trust relationship required", (535, 554),
         "The submission server needs a configured trust relationship with a third-party "
         "server to fetch the message content (BURL).",
         ("RFC 5248",)),
    _enh("X.7.15", "Priority Level is too low", (450, 550),
         "The message's priority is below what the server accepts just now; may be "
         "temporary. Other 4xx or 5xx codes are allowed too.",
         ("RFC 6710",)),
    _enh("X.7.16", "Message is too big for the specified priority", (552,),
         "The message is too large for the priority asked for; may be temporary. Other "
         "4xx or 5xx codes are allowed too.",
         ("RFC 6710",)),
    _enh("X.7.17", "Mailbox owner has changed", (),
         "RRVS check: the recipient mailbox has not belonged to the same person since the "
         "date the sender gave. Sent with a 5xx code.",
         ("RFC 7293",)),
    _enh("X.7.18", "Domain owner has changed", (),
         "RRVS check: the recipient's domain has changed hands since the date the sender "
         "gave. Sent with a 5xx code.",
         ("RFC 7293",)),
    _enh("X.7.19", "RRVS test cannot be completed", (),
         "RRVS check: the server did not record the date it would need, so it cannot "
         "tell; the sender decides whether to resend without RRVS. Sent with a 5xx code.",
         ("RFC 7293",)),
    _enh("X.7.20", "No passing DKIM signature found", (550,),
         "The message has no DKIM signature that verifies.",
         ("RFC 7372", "RFC 6376")),
    _enh("X.7.21", "No acceptable DKIM signature found", (550,),
         "Some DKIM signatures verify, but the receiver accepts none of them.",
         ("RFC 7372", "RFC 6376")),
    _enh("X.7.22", "No valid author-matched DKIM signature found", (550,),
         "DKIM signatures verify, but none comes from the domain of the From: address.",
         ("RFC 7372", "RFC 6376")),
    _enh("X.7.23", "SPF validation failed", (550,),
         "The SPF check said \"fail\": the sending host is not allowed to send for the "
         "sender's domain.",
         ("RFC 7372", "RFC 7208")),
    _enh("X.7.24", "SPF validation error", (451, 550),
         "Checking SPF went wrong, for example a DNS error or a broken SPF record.",
         ("RFC 7372", "RFC 7208")),
    _enh("X.7.25", "Reverse DNS validation failed", (550,),
         "The client's IP address failed the receiver's reverse DNS (PTR) check.",
         ("RFC 7372", "RFC 7601")),
    _enh("X.7.26", "Multiple authentication checks failed", (550,),
         "The message failed more than one authentication check; which ones is not said.",
         ("RFC 7372",)),
    _enh("X.7.27", "Sender address has null MX", (550,),
         "The sender's domain publishes a null MX (it takes no mail), so bounces could not "
         "be delivered and the server refuses the message.",
         ("RFC 7505",)),
    _enh("X.7.28", "Mail flood detected", (),
         "The message looks like part of a flood of similar abusive messages (mail "
         "bombing).",
         ("draft-levine-mailbomb-header",)),
    _enh("X.7.29", "ARC validation failure", (550,),
         "The message failed ARC (Authenticated Received Chain) validation.",
         ("RFC 8617",)),
    _enh("X.7.30", "REQUIRETLS support required", (550,),
         "The message was sent with REQUIRETLS, and it could not be passed on because no "
         "next hop offers REQUIRETLS.",
         ("RFC 8689",)),
])
# fmt: on
"""Every registered enhanced status code, keyed ``"X.subject.detail"`` (read-only)."""


# ---------------------------------------------------------------------------- lookups


def reply_code_info(code: int) -> ReplyCodeInfo | None:
    """The catalogue entry for a reply code such as ``550``, or None if it has none."""
    return REPLY_CODES.get(code)


_X_FORM_RE = re.compile(r"[Xx]\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})")


def enhanced_code_info(code: EnhancedStatusCode | str) -> EnhancedCodeInfo | None:
    """The registry entry for ``5.1.1``, ``"5.1.1"`` or ``"X.1.1"``; None if unregistered.

    Raises ValueError for a string that is not an enhanced status code at all.
    """
    if isinstance(code, EnhancedStatusCode):
        return ENHANCED_CODES.get(f"X.{code.subject_detail}")
    text = code.strip()
    m = _X_FORM_RE.fullmatch(text)
    if m is not None:
        return ENHANCED_CODES.get(f"X.{m[1]}.{m[2]}")
    return ENHANCED_CODES.get(f"X.{EnhancedStatusCode.parse(text).subject_detail}")


# ---------------------------------------------------------------------------- explain

_OUTCOME = {
    ReplyClass.POSITIVE_COMPLETION: ("Success (2xx): the command was accepted. Nothing to retry."),
    ReplyClass.POSITIVE_INTERMEDIATE: (
        "Intermediate (3xx): the server accepted the command and waits for more input "
        "(the message data after DATA, or the next AUTH step). Not an error."
    ),
    ReplyClass.TRANSIENT_NEGATIVE: (
        "Temporary failure (4xx): nothing was done, but the same command may work later. "
        "Retry later (keep the message queued); do not bounce it yet."
    ),
    ReplyClass.PERMANENT_NEGATIVE: (
        "Permanent failure (5xx): do not retry unchanged. Bounce the message to its "
        "sender, or fix the address, content or configuration first."
    ),
}

_ENHANCED_OUTCOME = {
    2: "Success (enhanced class 2): delivered or done. Nothing to retry.",
    4: (
        "Temporary failure (enhanced class 4): retry later (keep the message queued); do "
        "not bounce it yet."
    ),
    5: (
        "Permanent failure (enhanced class 5): do not retry unchanged. Bounce the message "
        "to its sender, or fix the cause first."
    ),
}

_CLASS_WORDS = {
    ReplyClass.POSITIVE_COMPLETION: "positive completion",
    ReplyClass.POSITIVE_INTERMEDIATE: "positive intermediate",
    ReplyClass.TRANSIENT_NEGATIVE: "transient negative completion",
    ReplyClass.PERMANENT_NEGATIVE: "permanent negative completion",
}


@final
@attrs.frozen(kw_only=True)
class Explanation:
    """What :func:`explain` found in a reply; ``str()`` gives a text for a person.

    ``reply_code`` and ``reply_info`` describe the three-digit code (None when only an
    enhanced code was given); ``enhanced`` and ``enhanced_info`` the enhanced status code
    if there is one, with the titles of its class and subject in ``enhanced_class`` and
    ``enhanced_subject`` (set even when the code itself is not registered); ``text`` is
    the human text after the codes (one line per reply line); ``reply_class`` is the
    reply code's class (None without a reply code or when its first digit is not 2-5);
    ``warnings`` lists whatever is wrong or unusual about the reply.
    """

    reply_code: int | None
    reply_info: ReplyCodeInfo | None
    enhanced: EnhancedStatusCode | None
    enhanced_info: EnhancedCodeInfo | None
    enhanced_class: str | None
    enhanced_subject: str | None
    text: str
    reply_class: ReplyClass | None
    warnings: tuple[str, ...]

    def __str__(self) -> str:
        lines: list[str] = []
        if self.reply_code is not None:
            head = f"Reply code {self.reply_code:03d}"
            if self.reply_class is not None:
                head += f" ({_CLASS_WORDS[self.reply_class]})"
            if self.reply_info is not None:
                lines.append(f"{head}: {self.reply_info.meaning}")
                lines.append(f"  {self.reply_info.description}")
            else:
                lines.append(f"{head}: not a code in the catalogue.")
        if self.enhanced is not None:
            where = " / ".join(t for t in (self.enhanced_class, self.enhanced_subject) if t)
            head = f"Enhanced status code {self.enhanced}"
            if where:
                head += f" ({where})"
            if self.enhanced_info is not None:
                lines.append(f"{head}: {self.enhanced_info.title}")
                lines.append(f"  {self.enhanced_info.description}")
            else:
                lines.append(f"{head}: not a registered code.")
                klass = ENHANCED_CLASSES[self.enhanced.class_]
                lines.append(f"  Class {klass.code}: {klass.description}")
                subject = ENHANCED_SUBJECTS.get(self.enhanced.subject)
                if subject is not None:
                    lines.append(f"  Subject {subject.code}: {subject.description}")
                else:
                    lines.append(f"  Subject {self.enhanced.subject}: not defined by RFC 3463.")
        if self.text:
            first, *rest = self.text.split("\n")
            lines.append(f"Server text: {first}")
            lines.extend(f"             {line}" for line in rest)
        lines.append(f"What to do: {self._outcome()}")
        if self.warnings:
            lines.append("Warnings:")
            lines.extend(f"  - {warning}" for warning in self.warnings)
        return "\n".join(lines)

    def _outcome(self) -> str:
        if self.reply_class is not None:
            return _OUTCOME[self.reply_class]
        if self.reply_code is None and self.enhanced is not None:
            return _ENHANCED_OUTCOME[self.enhanced.class_]
        return (
            "Unknown: the first digit is not 2, 3, 4 or 5, so this is not a valid SMTP "
            "reply and no retry rule applies; treat it as an error."
        )


# Anything shaped like class.subject.detail, valid or not (validity is checked apart).
_DOTTED_RE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")
_LINE_BREAK_RE = re.compile(r"\r\n|\r|\n")

_WHAT_WE_TAKE = (
    "expected a reply code (550), an enhanced status code (5.1.1) or SMTP reply lines "
    "(550 5.1.1 User unknown)"
)


def _short(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _split_word(text: str) -> tuple[str, str, str]:
    """``("5.1.1", " ", "rest")`` for ``"5.1.1 rest"``; any whitespace separates."""
    m = re.match(r"(\S*)(\s*)(.*)", text, re.DOTALL)
    assert m is not None  # the pattern matches every string
    return m[1], m[2], m[3]


@attrs.frozen
class _Line:
    code: int
    separator: str | None
    enhanced: EnhancedStatusCode | None
    text: str


def _split_enhanced(text: str, warnings: list[str]) -> tuple[EnhancedStatusCode | None, str]:
    """Take a leading enhanced status code off a reply text (RFC 2034 puts it first)."""
    first, _, rest = _split_word(text)
    if _DOTTED_RE.fullmatch(first) is None:
        return None, text
    try:
        enhanced = EnhancedStatusCode.parse(first)
    except ValueError:
        warnings.append(
            f"{_short(first)} looks like an enhanced status code but is not one: RFC 3463 §2 "
            "needs class 2, 4 or 5 and subject and detail of 0-999 without leading zeros; "
            "it is kept as part of the text"
        )
        return None, text
    return enhanced, rest.strip()


def _parse_lines(lines: list[str], warnings: list[str]) -> list[_Line]:
    parsed: list[_Line] = []
    for number, line in enumerate(lines, 1):
        parts = split_reply_text(line)  # RFC 5321 §4.2 Reply-line, as the reader reads it
        if parts is None:
            where = f"line {number} " if len(lines) > 1 else ""
            raise ValueError(f"not an SMTP reply: {where}{_short(line)}; {_WHAT_WE_TAKE}")
        code, separator, rest = parts
        enhanced, text = _split_enhanced(rest.strip(), warnings)
        parsed.append(_Line(code, separator, enhanced, text))
    return parsed


def _check_sequence(parsed: list[_Line], warnings: list[str]) -> None:
    first = parsed[0]
    for number, line in enumerate(parsed[1:], 2):
        if line.code != first.code:
            # RFC 5321 §4.2.1: every line of a multiline reply carries the same code.
            warnings.append(
                f"line {number} has reply code {line.code:03d} but line 1 has "
                f"{first.code:03d}; RFC 5321 §4.2.1 requires the same code on every line "
                "of a multi-line reply"
            )
        if (
            line.enhanced is not None
            and first.enhanced is not None
            and line.enhanced != first.enhanced
        ):
            warnings.append(
                f"line {number} has enhanced code {line.enhanced} but line 1 has {first.enhanced}"
            )
    if len(parsed) > 1:
        for number, line in enumerate(parsed[:-1], 1):
            if line.separator != "-":
                warnings.append(
                    f"line {number} ends a reply (no '-' after the code) but more lines "
                    "follow; this may be several replies pasted together (RFC 5321 §4.2)"
                )
        if parsed[-1].separator == "-":
            warnings.append(
                "the last line is a continuation line ('-' after the code); the reply "
                "looks cut short (RFC 5321 §4.2)"
            )


def _reply_warnings(code: int, warnings: list[str]) -> ReplyClass | None:
    if not 2 <= code // 100 <= 5:
        # RFC 5321 §4.3.2: servers MUST NOT send codes that do not start with 2 to 5.
        warnings.append(
            f"reply code {code:03d} does not start with 2, 3, 4 or 5, which RFC 5321 "
            "§4.3.2 forbids; it cannot be classified"
        )
        return None
    reply_class = ReplyClass.of(code)
    if code not in REPLY_CODES:
        # RFC 5321 §4.3.2: unknown codes are interpreted by their first digit only.
        warnings.append(
            f"reply code {code:03d} is not in the catalogue; RFC 5321 §4.3.2 says to read "
            f"an unknown code by its first digit ({_CLASS_WORDS[reply_class]})"
        )
    return reply_class


def _enhanced_warnings(
    enhanced: EnhancedStatusCode, reply_code: int | None, warnings: list[str]
) -> EnhancedCodeInfo | None:
    if reply_code is not None and reply_code // 100 != enhanced.class_:
        # RFC 3463 §2 gives the class the same meaning as the reply code's first digit
        # (2 success, 4 transient, 5 permanent); a client acts on the reply code.
        warnings.append(
            f"enhanced code {enhanced} has class {enhanced.class_} but the reply code "
            f"{reply_code:03d} is {reply_code // 100}xx; the class should match the reply "
            "code's first digit (RFC 3463), and a client goes by the reply code"
        )
    info = enhanced_code_info(enhanced)
    if info is None:
        subject = ENHANCED_SUBJECTS.get(enhanced.subject)
        if subject is None:
            warnings.append(
                f"enhanced code {enhanced} is not registered and its subject "
                f"{enhanced.subject} is not one RFC 3463 defines (0-7); only its class "
                "is known"
            )
        else:
            warnings.append(
                f"enhanced code {enhanced} is not registered; only its class and subject "
                f"({subject.title}) are known"
            )
    return info


def _explain_int(code: int) -> Explanation:
    if not 0 <= code <= 999:
        raise ValueError(f"not a reply code: {code!r}; a reply code has three digits")
    return _build(code, None, "", [])


def _build(
    reply_code: int | None, enhanced: EnhancedStatusCode | None, text: str, warnings: list[str]
) -> Explanation:
    reply_class = None if reply_code is None else _reply_warnings(reply_code, warnings)
    enhanced_info = None
    enhanced_class = enhanced_subject = None
    if enhanced is not None:
        enhanced_info = _enhanced_warnings(enhanced, reply_code, warnings)
        enhanced_class = ENHANCED_CLASSES[enhanced.class_].title
        subject = ENHANCED_SUBJECTS.get(enhanced.subject)
        enhanced_subject = None if subject is None else subject.title
    return Explanation(
        reply_code=reply_code,
        reply_info=None if reply_code is None else REPLY_CODES.get(reply_code),
        enhanced=enhanced,
        enhanced_info=enhanced_info,
        enhanced_class=enhanced_class,
        enhanced_subject=enhanced_subject,
        text=text,
        reply_class=reply_class,
        warnings=tuple(warnings),
    )


def explain(text: str | int) -> Explanation:
    """Explain a reply code, an enhanced status code, or pasted SMTP reply lines.

    Accepts ``550``, ``"550"``, ``"5.1.1"`` (optionally followed by text), a full reply
    line such as ``"550 5.1.1 <bob@example.org>: User unknown"``, a continuation line
    such as ``"250-8BITMIME"``, or a multi-line reply with lines separated by ``\\n`` or
    ``\\r\\n``. Oddities (a class mismatch, an unknown code, a bad first digit, mixed
    codes across lines) become ``warnings``; input that is not a reply at all raises
    ValueError. ``str()`` of the result is an explanation for a person.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise TypeError(f"explain() takes a str or an int, not {type(text).__name__}")
    if isinstance(text, int):
        return _explain_int(text)
    lines = [line.strip() for line in _LINE_BREAK_RE.split(text)]
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError(f"nothing to explain: the input is empty; {_WHAT_WE_TAKE}")
    warnings: list[str] = []
    if len(lines) == 1:
        first, _, rest = _split_word(lines[0])
        if _DOTTED_RE.fullmatch(first) is not None:
            # A bare enhanced status code, possibly with text (as in a DSN Status: field).
            try:
                bare = EnhancedStatusCode.parse(first)
            except ValueError:
                raise ValueError(
                    f"not an enhanced status code: {_short(first)}; RFC 3463 §2 needs class "
                    "2, 4 or 5 and subject and detail of 0-999 without leading zeros"
                ) from None
            return _build(None, bare, rest.strip(), warnings)
        if _X_FORM_RE.fullmatch(first) is not None:
            raise ValueError(
                f"{_short(first)} names a registry entry, not a status; give a class "
                "(for instance 5.1.1) or use enhanced_code_info()"
            )
    parsed = _parse_lines(lines, warnings)
    _check_sequence(parsed, warnings)
    enhanced = next((line.enhanced for line in parsed if line.enhanced is not None), None)
    body = "\n".join(line.text for line in parsed if line.text)
    return _build(parsed[0].code, enhanced, body, warnings)
