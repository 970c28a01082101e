# Every rule on a command, for both roles, in one function: check_command() says whether a
# command may go now and, if not, the Refusal: the Reply a server answers it with and the
# reason a client is given. A server wraps the reply in InvalidCommand (reply_hint); a
# client raises LocalProtocolError(reason, reply_hint=reply). Both read the same
# ConnectionState, so a client refuses exactly what a server built from the same knowledge
# would reject.
#
# The order of the checks: the session limits of a server (junk commands); the greeting
# verbs of SMTP/LMTP and STARTTLS under TLS; the transition table (TRANSITIONS, with
# OUT_OF_SEQUENCE's replies); then the rule of the command's type (_COMMAND_RULES): which
# extension it needs, the AUTH and TLS policy, MAIL/RCPT parameters and limits; last, for a
# client, PIPELINING (RFC 2920). Where the roles know different things the check says so
# with ``sending``: a client knows the server's advertised LIMITS and SIZE, a server its own
# Config (mechanisms, require_tls, max_recipients) and what it counted.
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, final

import attrs

from . import _mailparams
from ._errors import LocalProtocolError
from ._events import (
    Auth,
    Bdat,
    Command,
    Data,
    Ehlo,
    Helo,
    Lhlo,
    MailFrom,
    RcptTo,
    Reply,
    StartTLS,
)
from ._extensions import Extensions
from ._mailparams import ParamError, ParamsArg
from ._mechanisms import PLAINTEXT_MECHANISMS, binds_channel
from ._params import Params
from ._state import (
    JUNK_COMMANDS,
    JUNK_TYPES,
    TRANSITIONS,
    ConnectionState,
    ends_group,
    out_of_sequence_reply,
)
from ._util import remember
from .config import Config

__all__ = [
    "JUNK_COMMANDS",
    "Refusal",
    "advertised_limit",
    "auth_offered",
    "check_command",
    "check_content",
    "check_mail_params",
    "check_rcpt_params",
    "mail_params_refusal",
    "rcpt_params_refusal",
    "too_many_errors",
    "validate_mail_params",
    "validate_rcpt_params",
]


@final
@attrs.frozen
class Refusal:
    """Why a command may not go now: ``reply``, what a server answers it with (sendable as
    it is), and ``reason``, the message a client's LocalProtocolError carries."""

    reply: Reply
    reason: str

    def error(self) -> LocalProtocolError:
        return LocalProtocolError(self.reason, self.reply)


def _reply(code: int, enhanced: str, text: str) -> Reply:
    return Reply(code=code, lines=text, enhanced=enhanced)


_TOO_MANY_JUNK = _reply(421, "4.7.0", "Too many commands that move no mail; closing")
_TOO_MANY_ERRORS = _reply(421, "4.7.0", "Too many errors; closing")  # RFC 5321 §3.8
_UNRECOGNIZED = _reply(500, "5.5.2", "Command unrecognized")
_TLS_ACTIVE = _reply(503, "5.5.1", "TLS already active")  # RFC 3207 §4.2
_REQUIRE_TLS = _reply(530, "5.7.0", "Must issue a STARTTLS command first")  # RFC 3207 §4
_TOO_MANY_RECIPIENTS = _reply(452, "4.5.3", "Too many recipients")  # RFC 5321 §4.5.3.1.10
_TOO_MANY_TRANSACTIONS = _reply(452, "4.5.3", "Too many transactions in this session")
_SIZE_EXCEEDED = _reply(552, "5.3.4", "Message size exceeds fixed maximum message size")
_BINARYMIME_NEEDS_BDAT = _reply(503, "5.5.1", "BINARYMIME requires BDAT")  # RFC 3030 §3
_ALREADY_AUTHENTICATED = _reply(503, "5.5.1", "Already authenticated")  # RFC 4954 §4
_AUTH_FAILURES = _reply(421, "4.7.0", "Too many authentication failures")
_AUTH_UNAVAILABLE = _reply(502, "5.5.1", "AUTH not available")
# RFC 4954 §6: 538 5.7.11 Encryption required for requested authentication mechanism
_AUTH_NEEDS_TLS = _reply(538, "5.7.11", "Encryption required for authentication")
_MECHANISM_NEEDS_TLS = _reply(
    538, "5.7.11", "Encryption required for requested authentication mechanism"
)
_UNKNOWN_MECHANISM = _reply(504, "5.5.4", "Unrecognized authentication type")  # RFC 4954 §4
#: RFC 2920 §3.1: a command sent before the reply it had to wait for.
SYNC_ERROR = _reply(554, "5.5.0", "SMTP synchronization error")


# ----------------------------------------------------------- MAIL and RCPT parameters

#: The empty Params that MAIL and RCPT events share when they have none (their default;
#: the server's reader gives it too): a rule asks for it by identity before it asks
#: Params.__len__.
_NO_PARAMS = MailFrom(reverse_path=None).params


def _param_refusal(exc: ParamError, what: str) -> Refusal:
    reply = Reply(code=exc.code, lines=exc.text, enhanced=exc.enhanced)
    return Refusal(reply, f"{what} parameter refused: {exc.detail}")


def mail_params_refusal(
    params: ParamsArg, *, extensions: Extensions, tls: bool, size_limit: int | None = None
) -> Refusal | None:
    """The refusal of MAIL parameters (_mailparams.verify_mail_params), or None."""
    try:
        _mailparams.verify_mail_params(
            params, extensions=extensions, tls=tls, size_limit=size_limit
        )
    except ParamError as exc:
        return _param_refusal(exc, "MAIL")
    return None


def rcpt_params_refusal(params: ParamsArg, *, extensions: Extensions) -> Refusal | None:
    """The refusal of RCPT parameters (_mailparams.verify_rcpt_params), or None."""
    try:
        _mailparams.verify_rcpt_params(params, extensions=extensions)
    except ParamError as exc:
        return _param_refusal(exc, "RCPT")
    return None


# The two views of the same refusals: a server's reply, a client's error.
def check_mail_params(
    params: ParamsArg, *, extensions: Extensions, tls: bool, size_limit: int | None = None
) -> Reply | None:
    """The reply a server gives to MAIL parameters it refuses, or None. Never raises."""
    refused = mail_params_refusal(params, extensions=extensions, tls=tls, size_limit=size_limit)
    return None if refused is None else refused.reply


def check_rcpt_params(params: ParamsArg, *, extensions: Extensions) -> Reply | None:
    """The reply a server gives to RCPT parameters it refuses, or None. Never raises."""
    refused = rcpt_params_refusal(params, extensions=extensions)
    return None if refused is None else refused.reply


def validate_mail_params(params: ParamsArg, *, extensions: Extensions, tls: bool) -> None:
    """For a client: raise LocalProtocolError (the server's reply as ``reply_hint``) for
    MAIL parameters the server would refuse, the SIZE limit being the one it advertised
    (RFC 1870 §3 (3))."""
    refused = mail_params_refusal(params, extensions=extensions, tls=tls)
    if refused is not None:
        raise refused.error()


def validate_rcpt_params(params: ParamsArg, *, extensions: Extensions) -> None:
    """For a client: raise LocalProtocolError for RCPT parameters the server would refuse."""
    refused = rcpt_params_refusal(params, extensions=extensions)
    if refused is not None:
        raise refused.error()


# ------------------------------------------------------------------------ the check


def advertised_limit(extensions: Extensions, name: str) -> int | None:
    """A value of the LIMITS extension (RFC 9422 §4): RCPTMAX, MAILMAX."""
    for word in extensions.get("LIMITS", ()):
        key, _, value = word.partition("=")
        if key.upper() == name and value.isdigit() and int(value) > 0:
            return int(value)
    return None


def auth_offered(config: Config, *, tls: bool) -> bool:
    """A server offers AUTH under TLS, or before it only when allowed (RFC 4954 §6)."""
    return "AUTH" in config.extensions and (tls or config.allow_plaintext_auth)


# A rule's first parameter is the command of the type it is registered for (the tables
# below are keyed by it): each rule names that type itself, with no isinstance per call.
_Rule = Callable[[Any, ConnectionState, Config, bool], "Refusal | None"]


def _check_hello(
    command: Command, st: ConnectionState, config: Config, sending: bool
) -> Refusal | None:
    # RFC 2033 §4.1: LMTP has LHLO where SMTP has HELO and EHLO (a server's parser does
    # not know the other verbs: 500).
    if config.lmtp and type(command) is not Lhlo:
        return Refusal(_UNRECOGNIZED, f"LMTP uses LHLO, not {command.verb} (RFC 2033 §4.1)")
    if not config.lmtp and type(command) is Lhlo:
        return Refusal(_UNRECOGNIZED, "LHLO is LMTP's; set Config(lmtp=True) (RFC 2033 §4.1)")
    return None


def _check_starttls_first(
    command: Command, st: ConnectionState, config: Config, sending: bool
) -> Refusal | None:
    if st.tls:
        return Refusal(_TLS_ACTIVE, "TLS is already active (RFC 3207 §4.2)")
    return None


#: Rules that come before the transition table.
_BEFORE_SEQUENCE: Mapping[type[Command], _Rule] = {
    Ehlo: _check_hello,
    Helo: _check_hello,
    Lhlo: _check_hello,
    StartTLS: _check_starttls_first,
}


#: Commands that need an extension advertised (RFC 3207 §4, RFC 3030 §2).
_EXTENSION_NEEDED: Mapping[type[Command], str] = {StartTLS: "STARTTLS", Bdat: "CHUNKING"}


def _check_extension(
    command: Command, st: ConnectionState, config: Config, sending: bool
) -> Refusal | None:
    needed = _EXTENSION_NEEDED[type(command)]
    if needed not in st.extensions:
        # RFC 5321 §4.2.4: 502 for a command not implemented
        reply = _reply(502, "5.5.1", f"{command.verb} not available")
        return Refusal(reply, f"the server did not advertise {needed}")
    return None


def _check_auth(
    command: Auth, st: ConnectionState, config: Config, sending: bool
) -> Refusal | None:
    mechanism = command.mechanism
    if not sending and st.auth_failures >= config.max_auth_failures:
        return Refusal(_AUTH_FAILURES, "too many authentication failures")
    if st.authenticated:
        return Refusal(_ALREADY_AUTHENTICATED, "already authenticated (RFC 4954 §4)")
    if sending:  # the mechanisms the server advertised
        advertised = st.extensions.get("AUTH")
        offered = () if advertised is None else advertised
    else:  # the mechanisms this server offers
        if "AUTH" not in config.extensions:
            return Refusal(_AUTH_UNAVAILABLE, "AUTH is not offered")
        if not auth_offered(config, tls=st.tls):
            return Refusal(_AUTH_NEEDS_TLS, "AUTH is offered under TLS only (RFC 4954 §6)")
        offered = config.extensions["AUTH"]
    if mechanism not in {m.upper() for m in offered}:
        reply = _UNKNOWN_MECHANISM if "AUTH" in st.extensions or not sending else _AUTH_UNAVAILABLE
        return Refusal(reply, f"the server does not offer AUTH {mechanism}")
    if binds_channel(mechanism) and not st.tls:
        # RFC 5802 §6: -PLUS binds to the TLS channel; there is none to bind to.
        return Refusal(
            _MECHANISM_NEEDS_TLS,
            f"AUTH {mechanism} binds to a TLS channel: there is none (RFC 5802 §6)",
        )
    if sending and not st.tls and not config.allow_plaintext_auth:
        # Not only PLAIN/LOGIN/tokens: what CRAM-MD5 or SCRAM send without TLS can be
        # cracked offline, and a man in the middle who stripped STARTTLS chooses the
        # mechanism (RFC 4954 §4, §6; RFC 3207 §6). The same rule as auth_offered().
        plain = mechanism in PLAINTEXT_MECHANISMS
        what = "credentials in the clear" if plain else "a crackable proof without TLS"
        return Refusal(
            _AUTH_NEEDS_TLS,
            f"AUTH {mechanism} would send {what}: use TLS, or set"
            " Config(allow_plaintext_auth=True)",
        )
    return None


def _check_mail(
    command: MailFrom, st: ConnectionState, config: Config, sending: bool
) -> Refusal | None:
    if not sending and config.require_tls and not st.tls:
        return Refusal(_REQUIRE_TLS, "MAIL before STARTTLS (Config.require_tls, RFC 3207 §4)")
    params = command.params
    if not sending:
        if params is _NO_PARAMS or not params:
            return None
        # A server's limit is its own (Config.max_message_size and the SIZE it advertised).
        limit = st.size_limit(config.max_message_size)
        return mail_params_refusal(params, extensions=st.extensions, tls=st.tls, size_limit=limit)
    # A client compares with what the server advertised, then with the limit in force.
    refused, declared = _client_mail_params(params, st.extensions, st.tls)
    if refused is not None:
        return refused
    if declared is not None:
        limit = st.size_limit(config.max_message_size)
        if limit is not None and declared > limit:
            return Refusal(
                _SIZE_EXCEEDED,
                f"SIZE={declared} is over the server's limit of {limit} (RFC 1870 §6)",
            )
    mailmax = _client_limits(st.extensions)[0]
    if mailmax is not None and st.transactions >= mailmax:
        return Refusal(
            _TOO_MANY_TRANSACTIONS,
            f"the server accepts {mailmax} transactions per session (LIMITS MAILMAX,"
            " RFC 9422 §4.1): open a new session",
        )
    return None


#: The LIMITS a client obeys, MAILMAX and RCPTMAX (RFC 9422 §4), by the id of the
#: Extensions they were read from (each entry keeps it, so the id is not reused while it
#: is kept): read once per EHLO reply, not for every MAIL and RCPT; bounded.
_LIMITS: dict[int, tuple[Extensions, int | None, int | None]] = {}
_LIMITS_MAX = 64


def _client_limits(extensions: Extensions) -> tuple[int | None, int | None]:
    """advertised_limit(extensions, "MAILMAX"), and "RCPTMAX"."""
    entry = _LIMITS.get(id(extensions))
    if entry is None:
        mailmax = advertised_limit(extensions, "MAILMAX")
        rcptmax = advertised_limit(extensions, "RCPTMAX")
        entry = remember(_LIMITS, id(extensions), (extensions, mailmax, rcptmax), _LIMITS_MAX)
    return entry[1], entry[2]


#: A client's verdicts on MAIL parameters (_client_mail_params), by the ids of the Params
#: and of the Extensions they were checked against, and TLS. Each entry keeps the two
#: objects, so their ids are not reused while it is kept; bounded, emptied when full.
_MAIL_VERDICTS: dict[
    tuple[int, int, bool], tuple[Params, Extensions, Refusal | None, int | None]
] = {}
_MAIL_VERDICTS_MAX = 256


def _client_mail_params(
    params: Params, extensions: Extensions, tls: bool
) -> tuple[Refusal | None, int | None]:
    """What a client's MAIL parameters amount to: their refusal against what the server
    advertised (None: none), and the SIZE they declare. Params and Extensions are
    immutable and a client sends the same parameters message after message (the client
    engine keeps its MAIL events), so each is checked once per EHLO reply, not per MAIL."""
    key = (id(params), id(extensions), tls)
    entry = _MAIL_VERDICTS.get(key)
    if entry is None:
        refused = declared = None
        if params:
            refused = mail_params_refusal(params, extensions=extensions, tls=tls)
            if refused is None:
                declared = _mailparams.size(params)
        entry = (params, extensions, refused, declared)
        remember(_MAIL_VERDICTS, key, entry, _MAIL_VERDICTS_MAX)
    return entry[2], entry[3]


def _check_rcpt(
    command: RcptTo, st: ConnectionState, config: Config, sending: bool
) -> Refusal | None:
    if command.params is not _NO_PARAMS and command.params:
        refused = rcpt_params_refusal(command.params, extensions=st.extensions)
        if refused is not None:
            return refused
    if sending:
        rcptmax = _client_limits(st.extensions)[1]
        if rcptmax is not None and st.recipients >= rcptmax:
            return Refusal(
                _TOO_MANY_RECIPIENTS,
                f"the server accepts {rcptmax} recipients per transaction (LIMITS RCPTMAX,"
                " RFC 9422 §4.2): send the rest in another transaction",
            )
    elif st.recipients >= config.max_recipients:
        return Refusal(_TOO_MANY_RECIPIENTS, "too many recipients (Config.max_recipients)")
    return None


def _check_data(
    command: Command, st: ConnectionState, config: Config, sending: bool
) -> Refusal | None:
    if st.binarymime:
        return Refusal(
            _BINARYMIME_NEEDS_BDAT, "BODY=BINARYMIME content must be sent with BDAT (RFC 3030 §3)"
        )
    return None


#: Rules for a command in sequence, by its type.
_COMMAND_RULES: Mapping[type[Command], _Rule] = {
    StartTLS: _check_extension,
    Bdat: _check_extension,
    Auth: _check_auth,
    MailFrom: _check_mail,
    RcptTo: _check_rcpt,
    Data: _check_data,
}


def check_command(
    command: Command, st: ConnectionState, config: Config, *, sending: bool
) -> Refusal | None:
    """Whether ``command`` may go now: None, or why not.

    ``sending``: True when a client is about to send it (checked against the state it will
    reach once its pending commands succeed, and against PIPELINING), False when a server
    received it."""
    kind = type(command)
    if (
        not sending
        and kind in JUNK_TYPES
        and config.max_junk_commands is not None
        and st.junk_commands >= config.max_junk_commands
    ):
        return Refusal(_TOO_MANY_JUNK, "too many commands that move no mail")  # RFC 5321 §3.8
    # (``in`` then the item, not get(): most commands have no such rule)
    if kind in _BEFORE_SEQUENCE:
        refused = _BEFORE_SEQUENCE[kind](command, st, config, sending)
        if refused is not None:
            return refused
    state = st.projected
    if kind not in TRANSITIONS[state]:
        return Refusal(
            out_of_sequence_reply(state, command, lmtp=config.lmtp),
            f"cannot send {command.verb} in state {state.value} (RFC 5321 §4.1.4)",
        )
    if kind in _COMMAND_RULES:
        refused = _COMMAND_RULES[kind](command, st, config, sending)
        if refused is not None:
            return refused
    # RFC 2920 §3.1: a client pipelines only with PIPELINING, never after a group's end
    # (ConnectionState.pipelining_allows, inline: this runs for every command sent)
    if sending and st.pending and not (st.pipelining and not ends_group(st.pending[-1])):
        return Refusal(
            SYNC_ERROR,
            f"cannot send {command.verb} before the reply to"
            f" {type(st.pending[-1]).__name__} (RFC 2920)",
        )
    return None


def too_many_errors(st: ConnectionState, config: Config) -> Reply | None:
    """421 once the session has had Config.max_invalid_commands command lines refused
    (as Postfix's smtpd_hard_error_limit), None before."""
    limit = config.max_invalid_commands
    if limit is not None and st.invalid_commands >= limit:
        return _TOO_MANY_ERRORS  # RFC 5321 §3.8: 421, and the server closes
    return None


def check_content(
    data: bytes | bytearray | memoryview, st: ConnectionState, config: Config, sent: int
) -> None:
    """Client rules for message content: 8-bit only when declared (RFC 6152 §3), and no
    more than the server's SIZE limit (RFC 1870 §6); ``sent`` counts the content so far.
    A memoryview is copied only when the 8-bit rule applies."""
    if (
        # ASCII bytes first (one C pass, the common case), a memoryview last (a copy)
        (isinstance(data, memoryview) or not data.isascii())
        and not (st.eight_bit_ok or config.allow_8bit_without_8bitmime)
        and not (data.tobytes() if isinstance(data, memoryview) else data).isascii()
    ):
        raise LocalProtocolError(
            "8-bit content needs BODY=8BITMIME (RFC 6152 §3) or SMTPUTF8; set"
            " Config(allow_8bit_without_8bitmime=True) to send it anyway"
        )
    limit = st.size_limit(config.max_message_size)
    if limit is not None and sent > limit:
        raise LocalProtocolError(
            f"the message is over the server's SIZE limit of {limit} octets (RFC 1870 §6)",
            _SIZE_EXCEEDED,
        )
