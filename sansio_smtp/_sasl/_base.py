# The shared vocabulary of every SASL mechanism (RFC 4422): errors, the typed steps a server
# mechanism returns, the answers an application supplies, and the two abstract bases.
#
# Strategy: a mechanism is a small state machine over raw (already base64-decoded) bytes.
# - Client: ``initial_response()`` (None: the mechanism has none), then ``respond(challenge)``
#   for each 334 challenge, then ``finish()`` on 235. A challenge the mechanism cannot accept
#   raises a SASLError; the SMTP layer then cancels with "*" (RFC 4954 §4).
# - Server: ``start(initial_response)``, then one method per step: ``receive(response)`` after
#   a Challenge, ``supply(answer)`` after a NeedCredentials, ``cancel()`` on "*". Peer mistakes
#   never raise: they end in a Failure step carrying a reply_hint. Calling a method in the
#   wrong phase is the caller's bug and raises SASLStateError.
# Rules: no I/O, clocks or randomness here; anything holding a password, token, key or proof,
# and any exchanged SASL data, has a repr showing "<redacted>".
from __future__ import annotations

import abc
import enum
import re
from collections.abc import Callable
from typing import Final, TypeAlias, final

import attrs

from .._mechanisms import PLAINTEXT_MECHANISMS, binds_channel
from .._reply import Reply

__all__ = [
    "PLAINTEXT_MECHANISMS",
    "TLS_EXPORTER",
    "TLS_SERVER_END_POINT",
    "AuthenticationRejected",
    "Challenge",
    "ChannelBinding",
    "ClientMechanism",
    "CredentialAnswer",
    "Failure",
    "FailureReason",
    "LookupPassword",
    "LookupScramKeys",
    "MutualAuthenticationError",
    "NeedCredentials",
    "PasswordVerifier",
    "SASLError",
    "SASLProtocolError",
    "SASLStateError",
    "SASLprepError",
    "ScramStoredKeys",
    "ServerMechanism",
    "ServerStep",
    "Step",
    "StoredPassword",
    "Success",
    "TokenRejected",
    "UnsupportedMechanism",
    "Verdict",
    "VerifyPassword",
    "VerifyToken",
    "binds_channel",
]

REDACTED: Final = "<redacted>"


def redact(_value: object) -> str:
    """attrs ``repr=`` hook for secret fields."""
    return REDACTED


def redact_optional(value: object) -> str:
    """Like ``redact`` but shows None, so a reader can tell absent from hidden."""
    return "None" if value is None else REDACTED


# ------------------------------------------------------------------------------- errors


class SASLError(Exception):
    """Base of every error this module raises."""


class SASLprepError(SASLError, ValueError):
    """A string failed SASLprep (RFC 4013): prohibited, unassigned or bidi-invalid input."""


class SASLProtocolError(SASLError):
    """The peer sent something the mechanism cannot accept: a malformed or unexpected
    challenge, a server nonce that does not extend ours (RFC 5802 §5.1), success before
    the exchange was complete. The SMTP client answers with "*" (RFC 4954 §4)."""


class MutualAuthenticationError(SASLProtocolError):
    """The server failed to prove it knows the credentials: a wrong SCRAM server signature,
    or success without one (RFC 5802 §5, §9)."""


class AuthenticationRejected(SASLError):
    """The server rejected the exchange with a mechanism-level error, e.g. SCRAM's
    ``e=invalid-proof`` (RFC 5802 §7). ``server_error`` is the error value as sent."""

    def __init__(self, message: str, server_error: str) -> None:
        super().__init__(message)
        self.server_error = server_error


class SASLStateError(SASLError, RuntimeError):
    """The caller used a mechanism out of order (receive() while credentials are awaited,
    anything after the exchange ended, ...). A bug in the caller, not the peer."""


class UnsupportedMechanism(SASLError, ValueError):
    """The mechanism name is not one this module implements. ``reply_hint`` is the server's
    answer to ``AUTH <that name>`` (RFC 4954 §4: 504 5.5.4)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unsupported SASL mechanism {name!r}")
        self.name = name
        self.reply_hint = Reply(
            code=504, lines="Unrecognized authentication type", enhanced="5.5.4"
        )


# What the transport needs (PLAINTEXT_MECHANISMS, binds_channel) lives in _mechanisms.

# ------------------------------------------------------------------- channel binding

TLS_SERVER_END_POINT: Final = "tls-server-end-point"  # RFC 5929 §4
TLS_EXPORTER: Final = "tls-exporter"  # RFC 9266 §2

# RFC 5056 §7: cb-name = 1*(ALPHA / DIGIT / "." / "-")
_CB_NAME_RE: Final = re.compile(r"[A-Za-z0-9.\-]+\Z")


def _check_cb_type(_inst: object, _attr: object, value: str) -> None:
    if not isinstance(value, str) or not _CB_NAME_RE.match(value):
        raise ValueError(f"not a channel binding type name (RFC 5056 §7): {value!r}")


def _check_cb_data(_inst: object, _attr: object, value: bytes) -> None:
    if not isinstance(value, bytes) or not value:
        raise ValueError("channel binding data must be non-empty bytes")


@final
@attrs.frozen(kw_only=True)
class ChannelBinding:
    """Channel binding data the TLS adapter extracted from the connection (RFC 5056).

    - ``type``: the channel binding type, ``"tls-server-end-point"`` (RFC 5929 §4: hash of
      the server certificate) or ``"tls-exporter"`` (RFC 9266: 32 bytes exported with the
      label "EXPORTER-Channel-Binding" and an empty context; TLS 1.3).
    - ``data``: the raw binding bytes; shown only by length.
    """

    type: str = attrs.field(validator=_check_cb_type)
    data: bytes = attrs.field(validator=_check_cb_data, repr=lambda d: f"<{len(d)} bytes>")


# ------------------------------------------------------------ outcomes and reply hints


class Verdict(enum.Enum):
    """An application's answer about credentials it was asked to check or look up."""

    OK = "ok"  #: the credentials are right and the authzid (if any) is allowed
    BAD_CREDENTIALS = "bad-credentials"  #: wrong password / token
    UNKNOWN_USER = "unknown-user"  #: no such account (reported like BAD_CREDENTIALS)
    NOT_AUTHORIZED = "not-authorized"  #: authcid may not act as the requested authzid
    TEMPORARY_FAILURE = "temporary-failure"  #: the credential store is unavailable: 454
    MECHANISM_TOO_WEAK = "mechanism-too-weak"  #: this user may not use this mechanism: 534
    TRANSITION_NEEDED = "transition-needed"  #: no secret for this mechanism yet: 432


class FailureReason(enum.Enum):
    """Why a server mechanism failed; each maps to one RFC 4954 reply (see ``reply_hint``)."""

    CREDENTIALS_INVALID = "credentials-invalid"  # RFC 4954 §6: 535 5.7.8
    NOT_AUTHORIZED = "not-authorized"  # RFC 4954 §6: 535 5.7.8 (authzid refused)
    CHANNEL_BINDING_MISMATCH = "channel-binding-mismatch"  # RFC 5802 §6; 535 5.7.8
    MALFORMED = "malformed"  # RFC 4954 §4: 501 5.5.2
    UNEXPECTED_INITIAL_RESPONSE = "unexpected-initial-response"  # RFC 4954 §4: 501 5.7.0
    CANCELLED = "cancelled"  # RFC 4954 §4: "*" -> 501
    TEMPORARY_FAILURE = "temporary-failure"  # RFC 4954 §6: 454 4.7.0
    MECHANISM_TOO_WEAK = "mechanism-too-weak"  # RFC 4954 §6: 534 5.7.9
    ENCRYPTION_REQUIRED = "encryption-required"  # RFC 4954 §6: 538 5.7.11
    TRANSITION_NEEDED = "transition-needed"  # RFC 4954 §6: 432 4.7.12


_REPLIES: Final[dict[FailureReason, tuple[int, str, str]]] = {
    FailureReason.CREDENTIALS_INVALID: (535, "5.7.8", "Authentication credentials invalid"),
    FailureReason.NOT_AUTHORIZED: (535, "5.7.8", "Authentication credentials invalid"),
    FailureReason.CHANNEL_BINDING_MISMATCH: (535, "5.7.8", "Authentication credentials invalid"),
    FailureReason.MALFORMED: (501, "5.5.2", "Malformed authentication data"),
    FailureReason.UNEXPECTED_INITIAL_RESPONSE: (
        501,
        "5.7.0",
        "Client initiated Authentication Exchange",
    ),
    FailureReason.CANCELLED: (501, "5.7.0", "Authentication cancelled"),
    FailureReason.TEMPORARY_FAILURE: (454, "4.7.0", "Temporary authentication failure"),
    FailureReason.MECHANISM_TOO_WEAK: (534, "5.7.9", "Authentication mechanism is too weak"),
    FailureReason.ENCRYPTION_REQUIRED: (
        538,
        "5.7.11",
        "Encryption required for requested authentication mechanism",
    ),
    FailureReason.TRANSITION_NEEDED: (432, "4.7.12", "A password transition is needed"),
}

VERDICT_FAILURES: Final[dict[Verdict, FailureReason]] = {
    Verdict.BAD_CREDENTIALS: FailureReason.CREDENTIALS_INVALID,
    Verdict.UNKNOWN_USER: FailureReason.CREDENTIALS_INVALID,
    Verdict.NOT_AUTHORIZED: FailureReason.NOT_AUTHORIZED,
    Verdict.TEMPORARY_FAILURE: FailureReason.TEMPORARY_FAILURE,
    Verdict.MECHANISM_TOO_WEAK: FailureReason.MECHANISM_TOO_WEAK,
    Verdict.TRANSITION_NEEDED: FailureReason.TRANSITION_NEEDED,
}


def failure_reply(reason: FailureReason) -> Reply:
    """The RFC 4954 reply a server sends for ``reason``."""
    code, enhanced, text = _REPLIES[reason]
    return Reply(code=code, lines=text, enhanced=enhanced)


SUCCESS_REPLY: Final = Reply(code=235, lines="Authentication Succeeded", enhanced="2.7.0")

#: The most octets a challenge can have in SMTP: a 334 reply line is limited like any
#: reply line (RFC 4954 §4), to 512 octets with "334 ", the base64 text and CRLF
#: (RFC 5321 §4.5.3.1.5). A mechanism that echoes client input in a challenge bounds it.
MAX_CHALLENGE: Final = (512 - len("334 ") - len("\r\n")) // 4 * 3


# ------------------------------------------------------------------------------- steps


class Step:
    """Base of what a server mechanism returns."""

    __slots__ = ()


@final
@attrs.frozen(kw_only=True)
class Challenge(Step):
    """Send ``data`` to the client as a challenge (SMTP: ``334 <base64>``; empty data is
    ``"334 "``, RFC 4954 §4), then pass its answer to ``receive()``."""

    data: bytes = attrs.field(repr=redact)


@attrs.frozen(kw_only=True)
class NeedCredentials(Step):
    """Base of the requests for the application: look something up or check something,
    then answer with ``mechanism.supply(answer)``.

    - ``mechanism``: the mechanism name, upper case.
    - ``authzid``: the authorization identity the client asked for, or None (RFC 4422 §3.4.1):
      the application decides whether the authenticated user may act as it.
    """

    mechanism: str
    authzid: str | None


@final
@attrs.frozen(kw_only=True)
class VerifyPassword(NeedCredentials):
    """PLAIN (RFC 4616) and LOGIN: is ``password`` right for ``authcid`` (and may it act as
    ``authzid``)? Answer ``True``/``False`` or a ``Verdict``. The strings are as the client
    sent them; compare with ``passwords_match`` to apply SASLprep (RFC 4013)."""

    authcid: str
    password: str = attrs.field(repr=redact)


@final
@attrs.frozen(kw_only=True)
class LookupPassword(NeedCredentials):
    """CRAM-MD5 (RFC 2195): the server needs the plaintext password (it is the HMAC key) of
    ``authcid``. Answer ``StoredPassword(...)`` or a failure ``Verdict``."""

    authcid: str


@final
@attrs.frozen(kw_only=True)
class LookupScramKeys(NeedCredentials):
    """SCRAM (RFC 5802 §5.1): the stored salted keys of ``authcid`` (SASLprep'd, unescaped).
    Answer ``ScramStoredKeys(...)`` (created once with ``scram_stored_keys``) or a failure
    ``Verdict``; ``UNKNOWN_USER`` continues the exchange with a mock salt and fails at the
    end, so an attacker cannot tell unknown users from wrong passwords (RFC 5802 §9)."""

    authcid: str


@final
@attrs.frozen(kw_only=True)
class VerifyToken(NeedCredentials):
    """XOAUTH2 and OAUTHBEARER (RFC 7628 §3.2): validate the bearer ``token``.

    - ``authcid``: XOAUTH2's ``user=``; None for OAUTHBEARER, whose identity is the token's
      subject (``authzid`` carries its optional ``a=``).
    - ``host``/``port``: OAUTHBEARER's optional kvpairs (RFC 7628 §3.1), else None.
    Answer ``True``/``False``, a ``Verdict`` or ``TokenRejected(...)`` (error details).
    """

    authcid: str | None
    token: str = attrs.field(repr=redact)
    host: str | None = None
    port: int | None = None


@final
@attrs.frozen(kw_only=True)
class Success(Step):
    """The client is authenticated: the SMTP server replies 235 (``reply_hint``).

    - ``authcid``: the authentication identity (None for OAUTHBEARER, see VerifyToken).
    - ``authzid``: the authorization identity the client asked for, or None (act as authcid).
    - ``final_data``: additional data with success (RFC 4422 §3.6), or None. Only a SCRAM
      server built with ``final_data_with_success=True`` sets it; SMTP does not support it
      (RFC 4954 §4), so by default SCRAM sends its server-final message as a last Challenge.
    """

    mechanism: str
    authcid: str | None
    authzid: str | None
    final_data: bytes | None = attrs.field(default=None, repr=redact_optional)

    @property
    def reply_hint(self) -> Reply:
        """``235 2.7.0 Authentication Succeeded`` (RFC 4954 §6)."""
        return SUCCESS_REPLY


@final
@attrs.frozen(kw_only=True)
class Failure(Step):
    """The exchange failed; the SMTP server sends ``reply_hint``.

    - ``reason``: a FailureReason; it determines the default reply_hint (RFC 4954 §4, §6).
    - ``message``: a diagnostic for logs (never contains secrets; not meant for the peer).
    """

    mechanism: str
    reason: FailureReason
    message: str = ""
    reply_hint: Reply = attrs.field(
        default=attrs.Factory(lambda self: failure_reply(self.reason), takes_self=True)
    )


ServerStep: TypeAlias = (
    Challenge | VerifyPassword | LookupPassword | LookupScramKeys | VerifyToken | Success | Failure
)


# ----------------------------------------------------------------------------- answers


def _check_positive(_inst: object, _attr: object, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"must be a positive int, not {value!r}")


def _check_nonempty_bytes(_inst: object, attr: attrs.Attribute[bytes], value: bytes) -> None:
    if not isinstance(value, bytes) or not value:
        raise ValueError(f"{attr.name} must be non-empty bytes")


@final
@attrs.frozen(kw_only=True)
class ScramStoredKeys:
    """What a SCRAM server stores per user instead of the password (RFC 5802 §3):
    ``salt``, ``iterations``, ``stored_key`` = H(ClientKey), ``server_key`` =
    HMAC(SaltedPassword, "Server Key"). Build it with ``scram_stored_keys()``; the key
    lengths (20 for SHA-1, 32 for SHA-256) must fit the mechanism it is supplied to."""

    salt: bytes = attrs.field(validator=_check_nonempty_bytes)
    iterations: int = attrs.field(validator=_check_positive)
    stored_key: bytes = attrs.field(validator=_check_nonempty_bytes, repr=redact)
    server_key: bytes = attrs.field(validator=_check_nonempty_bytes, repr=redact)


@final
@attrs.frozen(kw_only=True)
class StoredPassword:
    """The plaintext password a CRAM-MD5 server needs (RFC 2195 §2: it is the HMAC-MD5 key).
    A str is encoded as UTF-8; bytes are used as the key as they are."""

    password: str | bytes = attrs.field(repr=redact)


@final
@attrs.frozen(kw_only=True)
class TokenRejected:
    """An OAuth token check failed; the server sends these details as a JSON error challenge
    (RFC 7628 §3.2.2; Google's XOAUTH2). ``status`` defaults to ``"invalid_token"``
    (OAUTHBEARER) or ``"401"`` (XOAUTH2); None fields are left out of the JSON."""

    status: str | None = None
    scope: str | None = None
    openid_configuration: str | None = None


CredentialAnswer: TypeAlias = bool | Verdict | ScramStoredKeys | StoredPassword | TokenRejected

#: ``verify_password(authcid, authzid, password)`` for PLAIN/LOGIN servers.
PasswordVerifier: TypeAlias = Callable[[str, str | None, str], bool | Verdict]


# ------------------------------------------------------------------------ client base


class ClientMechanism(abc.ABC):
    """A client-side mechanism. Feed it the decoded challenges; send what it returns.

    - ``initial_response()``: the response to send with ``AUTH <name>`` (None: none; b"": an
      empty one, written "=" in SMTP, RFC 4954 §4). Calling it does not commit: if the AUTH
      line would be too long, send no initial response and answer the server's empty
      challenge with ``respond(b"")``, which returns the same bytes (RFC 4422 §5).
    - ``respond(challenge)``: the response to a 334 challenge; raises SASLProtocolError (or a
      subclass) when the challenge is unacceptable, and the caller then sends "*".
    - ``done``: nothing is left to send and everything the server had to prove was checked.
    - ``finish(additional_data=None)``: call on 235; raises unless the exchange is complete
      (for SCRAM: the server signature was verified, RFC 5802 §5).
    """

    name: str

    def __init__(self, name: str) -> None:
        self.name = name
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    @abc.abstractmethod
    def initial_response(self) -> bytes | None: ...

    @abc.abstractmethod
    def respond(self, challenge: bytes) -> bytes: ...

    def finish(self, additional_data: bytes | None = None) -> None:
        if additional_data is not None:
            raise SASLProtocolError(f"{self.name} has no additional data with success")
        if not self._done:
            raise SASLProtocolError(
                f"{self.name}: the server reported success before the exchange was complete"
            )

    def _repr_fields(self) -> list[tuple[str, str]]:
        return []

    def __repr__(self) -> str:
        fields = [("name", repr(self.name)), *self._repr_fields(), ("done", repr(self._done))]
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in fields)})"


def check_challenge_bytes(challenge: object) -> bytes:
    if not isinstance(challenge, bytes | bytearray | memoryview):
        raise TypeError(f"a challenge is bytes, not {type(challenge).__name__}")
    return bytes(challenge)


# ------------------------------------------------------------------------ server base


class _Phase(enum.Enum):
    START = "start"  # start() next
    CHALLENGED = "challenged"  # receive() next
    NEED = "need-credentials"  # supply() next
    DONE = "done"  # Success or Failure returned


class ServerMechanism(abc.ABC):
    """A server-side mechanism: ``start()``, then ``receive()`` after each Challenge and
    ``supply()`` after each NeedCredentials, until Success or Failure (``done``).
    ``cancel()`` turns the client's "*" into a Failure (RFC 4954 §4)."""

    name: str

    def __init__(self, name: str) -> None:
        self.name = name
        self._phase = _Phase.START

    @property
    def done(self) -> bool:
        return self._phase is _Phase.DONE

    def start(self, initial_response: bytes | None = None) -> ServerStep:
        """Begin; ``initial_response`` is the decoded AUTH argument (b"" for "=") or None."""
        self._expect(_Phase.START, "start()")
        if initial_response is not None:
            initial_response = check_challenge_bytes(initial_response)
        return self._advance(self._start(initial_response))

    def receive(self, response: bytes) -> ServerStep:
        """The client's decoded answer to the last Challenge."""
        self._expect(_Phase.CHALLENGED, "receive()")
        return self._advance(self._receive(check_challenge_bytes(response)))

    def supply(self, answer: CredentialAnswer) -> ServerStep:
        """The application's answer to the last NeedCredentials step."""
        self._expect(_Phase.NEED, "supply()")
        return self._advance(self._supply(answer))

    def cancel(self) -> Failure:
        """The client sent "*": the exchange ends with 501 (RFC 4954 §4)."""
        if self._phase is _Phase.DONE:
            raise SASLStateError(f"{self.name}: the exchange is already over")
        step = self.fail(FailureReason.CANCELLED, "the client cancelled the exchange")
        self._advance(step)
        return step

    def fail(self, reason: FailureReason, message: str) -> Failure:
        return Failure(mechanism=self.name, reason=reason, message=message)

    def fail_verdict(self, verdict: Verdict, message: str) -> Failure:
        return self.fail(VERDICT_FAILURES[verdict], f"{message}: {verdict.value}")

    def wrong_answer(self, answer: object, wanted: str) -> TypeError:
        return TypeError(f"{self.name} needs {wanted}, not {type(answer).__name__}")

    @abc.abstractmethod
    def _start(self, initial_response: bytes | None) -> ServerStep: ...

    @abc.abstractmethod
    def _receive(self, response: bytes) -> ServerStep: ...

    def _supply(self, answer: CredentialAnswer) -> ServerStep:  # pragma: no cover - abstract
        raise SASLStateError(f"{self.name} asks for no credentials")

    def _expect(self, phase: _Phase, what: str) -> None:
        if self._phase is not phase:
            raise SASLStateError(
                f"{self.name}: {what} is not allowed now (phase {self._phase.value})"
            )

    def _advance(self, step: ServerStep) -> ServerStep:
        if isinstance(step, Challenge):
            self._phase = _Phase.CHALLENGED
        elif isinstance(step, NeedCredentials):
            self._phase = _Phase.NEED
        else:
            self._phase = _Phase.DONE
        return step

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, phase={self._phase.value!r})"


# ------------------------------------------------------------------------------ helpers


def decode_utf8(data: bytes) -> str | None:
    """Strict UTF-8 decoding (RFC 3629); None when ``data`` is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def as_verdict(answer: CredentialAnswer) -> Verdict | None:
    """``True``/``False``/Verdict as a Verdict; None for the other answer types."""
    if isinstance(answer, bool):
        return Verdict.OK if answer else Verdict.BAD_CREDENTIALS
    if isinstance(answer, Verdict):
        return answer
    return None


def escape_saslname(name: str) -> str:
    """RFC 5802 §5.1 / RFC 5801 §4: "=" -> "=3D", "," -> "=2C" (in that order)."""
    return name.replace("=", "=3D").replace(",", "=2C")


_SASLNAME_BAD_ESCAPE_RE: Final = re.compile(r"=(?!2C|3D)")
_SASLNAME_ESCAPE_RE: Final = re.compile(r"=(2C|3D)")


def unescape_saslname(name: str) -> str | None:
    """Inverse of ``escape_saslname``; None when an "=" is not followed by 2C or 3D."""
    if _SASLNAME_BAD_ESCAPE_RE.search(name):
        return None
    return _SASLNAME_ESCAPE_RE.sub(lambda m: "," if m[1] == "2C" else "=", name)
