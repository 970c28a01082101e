# Rules the transition table cannot express: which extension a command needs, the TLS
# policy, the LMTP/SMTP greeting verbs, message parameters and limits. Each rule is a named
# function. Server rules return the Reply that refuses a received command (None: accept);
# client rules raise LocalProtocolError before anything is sent. Both read the same facts,
# so a client refuses exactly what a server built from the same knowledge would reject.
from __future__ import annotations

import attrs

from . import _mailparams
from ._errors import LocalProtocolError
from ._events import (
    Auth,
    Bdat,
    Command,
    Data,
    Ehlo,
    Event,
    Expn,
    Helo,
    Help,
    Lhlo,
    MailFrom,
    Noop,
    RcptTo,
    Reply,
    Rset,
    StartTLS,
    Vrfy,
)
from ._extensions import Extensions
from ._sasl._base import PLAINTEXT_MECHANISMS, binds_channel
from ._state import TRANSITIONS, State, out_of_sequence_reply
from .config import Config

__all__ = ["JUNK_COMMANDS", "Facts", "check_received", "check_to_send", "too_many_errors"]


@attrs.define
class Facts:
    """What a session knows beyond its table state."""

    config: Config
    extensions: Extensions  # as advertised in the last positive EHLO/LHLO reply
    tls: bool  # TLS is active (STARTTLS done, or implicit TLS)
    mail: MailFrom | None = None  # the MAIL of the current transaction
    recipients: int = 0  # RCPTs accepted (server) / sent (client) in this transaction
    transactions: int = 0  # MAIL commands accepted (server) / sent (client) this session
    authenticated: bool = False  # AUTH succeeded (235)
    auth_failures: int = 0  # AUTH exchanges that ended in failure
    junk_commands: int = 0  # JUNK_COMMANDS read since a message was accepted
    invalid_commands: int = 0  # command lines refused since a message was accepted

    @property
    def size_limit(self) -> int | None:
        """The message size limit in force: Config.max_message_size and/or the SIZE value
        advertised (RFC 1870 §4: 0 means no fixed limit)."""
        limits = []
        if self.config.max_message_size is not None:
            limits.append(self.config.max_message_size)
        advertised = self.extensions.get("SIZE", ())
        if advertised and advertised[0].isdigit() and int(advertised[0]) > 0:
            limits.append(int(advertised[0]))
        return min(limits) if limits else None

    @property
    def eight_bit_ok(self) -> bool:
        """8-bit content may be sent in this transaction: BODY=8BITMIME/BINARYMIME
        (RFC 6152 §3, RFC 3030 §3) or SMTPUTF8 (RFC 6531 §3.4) was declared."""
        if self.mail is None:
            return False
        params = self.mail.params
        return "SMTPUTF8" in params or (params.get("BODY") or "").upper() in (
            "8BITMIME",
            "BINARYMIME",
        )

    @property
    def binarymime(self) -> bool:
        return self.mail is not None and (self.mail.params.get("BODY") or "").upper() == (
            "BINARYMIME"
        )


def _reply(code: int, enhanced: str, text: str) -> Reply:
    return Reply(code=code, lines=text, enhanced=enhanced)


def _extension_needed(command: Event) -> str | None:
    if isinstance(command, StartTLS):
        return "STARTTLS"  # RFC 3207 §4
    if isinstance(command, Bdat):
        return "CHUNKING"  # RFC 3030 §2
    return None


def _limit(extensions: Extensions, name: str) -> int | None:
    """A value of the LIMITS extension (RFC 9422 §4): RCPTMAX, MAILMAX."""
    for word in extensions.get("LIMITS", ()):
        key, _, value = word.partition("=")
        if key.upper() == name and value.isdigit() and int(value) > 0:
            return int(value)
    return None


def auth_offered(facts: Facts) -> bool:
    """A server offers AUTH under TLS, or before it only when allowed (RFC 4954 §6)."""
    return "AUTH" in facts.config.extensions and (facts.tls or facts.config.allow_plaintext_auth)


def _check_auth(command: Auth, facts: Facts) -> Reply | None:
    config = facts.config
    if facts.auth_failures >= config.max_auth_failures:
        return _reply(421, "4.7.0", "Too many authentication failures")
    if facts.authenticated:
        return _reply(503, "5.5.1", "Already authenticated")  # RFC 4954 §4
    if "AUTH" not in config.extensions:
        return _reply(502, "5.5.1", "AUTH not available")
    if not auth_offered(facts):
        # RFC 4954 §6: 538 5.7.11 Encryption required for requested authentication mechanism
        return _reply(538, "5.7.11", "Encryption required for authentication")
    if command.mechanism not in {m.upper() for m in config.extensions["AUTH"]}:
        return _reply(504, "5.5.4", "Unrecognized authentication type")  # RFC 4954 §4
    if binds_channel(command.mechanism) and not facts.tls:
        # RFC 5802 §6: -PLUS binds to the TLS channel; there is none to bind to.
        return _reply(538, "5.7.11", "Encryption required for requested authentication mechanism")
    return None


#: Commands that move no mail (Postfix's "junk": NOOP, VRFY, ETRN, RSET; ours adds EXPN,
#: HELP and the greetings, which a client needs once, twice around STARTTLS): a session
#: that sends nothing else is only using the server's time.
JUNK_COMMANDS = (Noop, Vrfy, Expn, Help, Rset, Ehlo, Helo, Lhlo)


def too_many_errors(facts: Facts) -> Reply | None:
    """421 once the session has had Config.max_invalid_commands command lines refused
    (as Postfix's smtpd_hard_error_limit), None before."""
    limit = facts.config.max_invalid_commands
    if limit is not None and facts.invalid_commands >= limit:
        # RFC 5321 §3.8: 421, and the server closes
        return _reply(421, "4.7.0", "Too many errors; closing")
    return None


def check_received(command: Command, state: State, facts: Facts) -> Reply | None:
    """The reply refusing ``command`` received in ``state``, or None to accept it."""
    config = facts.config
    junk_limit = config.max_junk_commands
    if (
        junk_limit is not None
        and facts.junk_commands >= junk_limit
        and isinstance(command, JUNK_COMMANDS)
    ):
        # RFC 5321 §3.8: 421, and the server closes
        return _reply(421, "4.7.0", "Too many commands that move no mail; closing")
    if isinstance(command, Auth) and state is State.READY:
        refused = _check_auth(command, facts)
        if refused is not None:
            return refused
    if isinstance(command, StartTLS) and facts.tls:
        return _reply(503, "5.5.1", "TLS already active")  # RFC 3207 §4.2
    if type(command) not in TRANSITIONS[state]:
        return out_of_sequence_reply(state, command, lmtp=config.lmtp)
    needed = _extension_needed(command)
    if needed is not None and needed not in facts.extensions:
        return _reply(502, "5.5.1", f"{command.verb} not available")  # RFC 5321 §4.2.4
    if isinstance(command, MailFrom):
        if config.require_tls and not facts.tls:
            return _reply(530, "5.7.0", "Must issue a STARTTLS command first")  # RFC 3207 §4
        return _mailparams.check_mail_params(
            command.params, extensions=facts.extensions, tls=facts.tls, size_limit=facts.size_limit
        )
    if isinstance(command, RcptTo):
        refused = _mailparams.check_rcpt_params(command.params, extensions=facts.extensions)
        if refused is not None:
            return refused
        if facts.recipients >= config.max_recipients:
            # RFC 5321 §4.5.3.1.10: "452 too many recipients"
            return _reply(452, "4.5.3", "Too many recipients")
    if isinstance(command, Data) and facts.binarymime:
        return _reply(503, "5.5.1", "BINARYMIME requires BDAT")  # RFC 3030 §3
    return None


def check_to_send(command: Command, projected: State, facts: Facts) -> None:
    """Raise LocalProtocolError when a client must not send ``command`` now."""
    config = facts.config
    if isinstance(command, (Ehlo, Helo)) and config.lmtp:
        raise LocalProtocolError(f"LMTP uses LHLO, not {command.verb} (RFC 2033 §4.1)")
    if isinstance(command, Lhlo) and not config.lmtp:
        raise LocalProtocolError("LHLO is LMTP's; set Config(lmtp=True) (RFC 2033 §4.1)")
    if isinstance(command, StartTLS) and facts.tls:
        raise LocalProtocolError("TLS is already active (RFC 3207 §4.2)")
    if type(command) not in TRANSITIONS[projected]:
        raise LocalProtocolError(
            f"cannot send {command.verb} in state {projected.value} (RFC 5321 §4.1.4)"
        )
    needed = _extension_needed(command)
    if needed is not None and needed not in facts.extensions:
        raise LocalProtocolError(f"the server did not advertise {needed}")
    if isinstance(command, Auth):
        _check_auth_to_send(command, facts)
    if isinstance(command, MailFrom):
        _mailparams.validate_mail_params(command.params, extensions=facts.extensions, tls=facts.tls)
        declared = _mailparams.size(command.params)
        limit = facts.size_limit
        if declared is not None and limit is not None and declared > limit:
            raise LocalProtocolError(
                f"SIZE={declared} is over the server's limit of {limit} (RFC 1870 §6)"
            )
        mailmax = _limit(facts.extensions, "MAILMAX")
        if mailmax is not None and facts.transactions >= mailmax:
            raise LocalProtocolError(
                f"the server accepts {mailmax} transactions per session (LIMITS MAILMAX,"
                " RFC 9422 §4.1): open a new session"
            )
    elif isinstance(command, RcptTo):
        _mailparams.validate_rcpt_params(command.params, extensions=facts.extensions)
        rcptmax = _limit(facts.extensions, "RCPTMAX")
        if rcptmax is not None and facts.recipients >= rcptmax:
            raise LocalProtocolError(
                f"the server accepts {rcptmax} recipients per transaction (LIMITS RCPTMAX,"
                " RFC 9422 §4.2): send the rest in another transaction"
            )
    elif isinstance(command, Data) and facts.binarymime:
        raise LocalProtocolError("BODY=BINARYMIME content must be sent with BDAT (RFC 3030 §3)")


def _check_auth_to_send(command: Auth, facts: Facts) -> None:
    if facts.authenticated:
        raise LocalProtocolError("already authenticated (RFC 4954 §4)")
    offered = {m.upper() for m in facts.extensions.get("AUTH", ())}
    if command.mechanism not in offered:
        raise LocalProtocolError(f"the server does not offer AUTH {command.mechanism}")
    if binds_channel(command.mechanism) and not facts.tls:
        raise LocalProtocolError(
            f"AUTH {command.mechanism} binds to a TLS channel: there is none (RFC 5802 §6)"
        )
    if not facts.tls and not facts.config.allow_plaintext_auth:
        # Not only PLAIN/LOGIN/tokens: what CRAM-MD5 or SCRAM send without TLS can be
        # cracked offline, and a man in the middle who stripped STARTTLS chooses the
        # mechanism (RFC 4954 §4, §6; RFC 3207 §6). The same rule as auth_offered().
        plain = command.mechanism in PLAINTEXT_MECHANISMS
        what = "credentials in the clear" if plain else "a crackable proof without TLS"
        raise LocalProtocolError(
            f"AUTH {command.mechanism} would send {what}: use TLS, or set"
            " Config(allow_plaintext_auth=True)"
        )


def check_content(data: bytes | bytearray | memoryview, facts: Facts, sent: int) -> None:
    """Client rules for message content: 8-bit only when declared (RFC 6152 §3), and no
    more than the server's SIZE limit (RFC 1870 §6); ``sent`` counts the content so far.
    A memoryview is copied only when the 8-bit rule applies."""
    eight_bit_ok = facts.eight_bit_ok or facts.config.allow_8bit_without_8bitmime
    if (
        not eight_bit_ok
        and not (data.tobytes() if isinstance(data, memoryview) else data).isascii()
    ):
        raise LocalProtocolError(
            "8-bit content needs BODY=8BITMIME (RFC 6152 §3) or SMTPUTF8; set"
            " Config(allow_8bit_without_8bitmime=True) to send it anyway"
        )
    limit = facts.size_limit
    if limit is not None and sent > limit:
        raise LocalProtocolError(
            f"the message is over the server's SIZE limit of {limit} octets (RFC 1870 §6)"
        )
