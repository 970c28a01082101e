# The OAuth 2.0 bearer-token mechanisms: OAUTHBEARER (RFC 7628) and XOAUTH2 (Google's and
# Microsoft's older format, https://developers.google.com/gmail/imap/xoauth2-protocol).
#
# Strategy: both are client-first with one message; on a bad token the server sends a JSON
# error as a challenge, the client acknowledges it (OAUTHBEARER: a single %x01, RFC 7628
# §3.2.3; XOAUTH2: an empty response) and the server then fails (SMTP: 535). The server asks
# the application to validate the token (VerifyToken) and turns a rejection into that error
# challenge. Rules: tokens must be RFC 6750 b64tokens and kvpair values may not contain
# %x01, so the framing cannot be forged; bearer tokens are as good as passwords, so choose
# these mechanisms only over TLS (RFC 7628 §5).
from __future__ import annotations

import abc
import json
import re
from typing import Final, final

import attrs

from ._base import (
    Challenge,
    ClientMechanism,
    CredentialAnswer,
    FailureReason,
    SASLProtocolError,
    ServerMechanism,
    ServerStep,
    Success,
    TokenRejected,
    Verdict,
    VerifyToken,
    as_verdict,
    check_challenge_bytes,
    decode_utf8,
    escape_saslname,
    redact,
    unescape_saslname,
)
from ._simple import utf8

__all__ = [
    "OAuthBearerClient",
    "OAuthBearerServer",
    "OAuthErrorDetails",
    "XOAuth2Client",
    "XOAuth2Server",
]

KVSEP: Final = "\x01"  # RFC 7628 §3.1
# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN_RE: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*\Z")
# RFC 7628 §3.1: auth-value is an HTTP Authorization value: "Bearer" 1*SP b64token
_AUTH_VALUE_RE: Final = re.compile(r"(?i:bearer) +([A-Za-z0-9\-._~+/]+=*)\Z")
_KEY_RE: Final = re.compile(r"[A-Za-z]+\Z")  # RFC 7628 §3.1: key = 1*(ALPHA)
# RFC 7628 §3.1: value = *(VCHAR / SP / HTAB / CR / LF)
_VALUE_RE: Final = re.compile(r"[\x21-\x7e \t\r\n]*\Z")
_HOST_RE: Final = re.compile(r"[\x21-\x7e]+\Z")


def _check_token(token: str) -> str:
    if not isinstance(token, str) or not _B64TOKEN_RE.match(token):
        raise ValueError("an OAuth bearer token must be an RFC 6750 b64token")
    return token


@final
@attrs.frozen(kw_only=True)
class OAuthErrorDetails:
    """The JSON error a server sent instead of accepting the token (RFC 7628 §3.2.2;
    XOAUTH2 adds ``schemes``). Fields are None when absent or not strings; ``raw`` is the
    challenge as received."""

    status: str | None = None
    scope: str | None = None
    openid_configuration: str | None = None
    schemes: str | None = None
    raw: bytes = attrs.field(default=b"", repr=redact)

    @classmethod
    def parse(cls, data: bytes) -> OAuthErrorDetails:
        try:
            obj = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return cls(raw=data)
        if not isinstance(obj, dict):
            return cls(raw=data)

        def text(key: str) -> str | None:
            value = obj.get(key)
            return value if isinstance(value, str) else None

        return cls(
            status=text("status"),
            scope=text("scope"),
            openid_configuration=text("openid-configuration"),
            schemes=text("schemes"),
            raw=data,
        )


class _OAuthClient(ClientMechanism):
    """One client-first message; a later non-empty challenge is the server's JSON error,
    acknowledged with ``_ack``. ``error`` holds the parsed details."""

    _ack: bytes

    def __init__(self, name: str, message: bytes) -> None:
        super().__init__(name)
        self._message = message
        self._answered_empty = False
        self.error: OAuthErrorDetails | None = None

    def initial_response(self) -> bytes:
        self._done = True
        return self._message

    def respond(self, challenge: bytes) -> bytes:
        challenge = check_challenge_bytes(challenge)
        if self.error is not None:
            raise SASLProtocolError(f"{self.name}: challenge after the error challenge")
        if not challenge:
            # RFC 4422 §5: the server wants the initial response it did not get.
            if self._answered_empty:
                raise SASLProtocolError(f"{self.name}: unexpected empty challenge")
            self._answered_empty = True
            self._done = True
            return self._message
        self.error = OAuthErrorDetails.parse(challenge)
        self._done = True
        return self._ack

    def finish(self, additional_data: bytes | None = None) -> None:
        if self.error is not None:
            raise SASLProtocolError(f"{self.name}: success after an error challenge")
        super().finish(additional_data)


class OAuthBearerClient(_OAuthClient):
    """OAUTHBEARER (RFC 7628 §3.1): ``n,[a=authzid],`` %x01 ``host=``/``port=`` kvpairs
    ``auth=Bearer <token>`` %x01 %x01. Answers an error challenge with %x01 (§3.2.3)."""

    _ack = KVSEP.encode()

    def __init__(
        self,
        *,
        token: str,
        authzid: str | None = None,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        # RFC 7628 §3.1: gs2-header of RFC 5801 §4 with flag "n" (no channel binding).
        gs2 = f"n,{'a=' + escape_saslname(authzid) if authzid else ''},"
        if authzid and ("\0" in authzid or KVSEP in authzid):
            raise ValueError("OAUTHBEARER authzid must not contain NUL or %x01")
        pairs = []
        if host is not None:
            if not _HOST_RE.match(host):
                raise ValueError(f"not usable as an OAUTHBEARER host: {host!r}")
            pairs.append(f"host={host}")
        if port is not None:
            if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
                raise ValueError(f"not a port number: {port!r}")
            pairs.append(f"port={port}")
        pairs.append(f"auth=Bearer {_check_token(token)}")
        message = gs2 + KVSEP + "".join(p + KVSEP for p in pairs) + KVSEP
        super().__init__("OAUTHBEARER", utf8(message, "authzid"))
        self._authzid = authzid

    def _repr_fields(self) -> list[tuple[str, str]]:
        return [("authzid", repr(self._authzid)), ("token", "<redacted>")]


class XOAuth2Client(_OAuthClient):
    """XOAUTH2: ``user=<username>`` %x01 ``auth=Bearer <token>`` %x01 %x01. Answers an
    error challenge with an empty response, after which the server replies 535."""

    _ack = b""

    def __init__(self, *, username: str, token: str) -> None:
        if not username or KVSEP in username or "\0" in username:
            raise ValueError("XOAUTH2 username must be non-empty without NUL or %x01")
        message = f"user={username}{KVSEP}auth=Bearer {_check_token(token)}{KVSEP}{KVSEP}"
        super().__init__("XOAUTH2", utf8(message, "username"))
        self._username = username

    def _repr_fields(self) -> list[tuple[str, str]]:
        return [("username", repr(self._username)), ("token", "<redacted>")]


# ------------------------------------------------------------------------------ server


def _parse_kvpairs(body: str) -> dict[str, str] | None:
    """``*(key "=" value %x01)`` (RFC 7628 §3.1) -> dict; None if malformed/duplicated."""
    if not body:
        return {}
    if not body.endswith(KVSEP):
        return None
    result: dict[str, str] = {}
    for pair in body[:-1].split(KVSEP):
        key, eq, value = pair.partition("=")
        if not eq or not _KEY_RE.match(key) or not _VALUE_RE.match(value) or key in result:
            return None
        result[key] = value
    return result


class _OAuthServer(ServerMechanism):
    """Shared: parse the client message, ask VerifyToken, send the JSON error challenge on
    rejection and fail once the client acknowledged it."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._authcid: str | None = None
        self._authzid: str | None = None
        self._rejected: FailureReason | None = None

    def _start(self, initial_response: bytes | None) -> ServerStep:
        if initial_response is None:
            return Challenge(data=b"")  # RFC 4422 §5: client-first, ask for the message
        return self._parse(initial_response)

    def _receive(self, response: bytes) -> ServerStep:
        if self._rejected is None:
            return self._parse(response)
        # RFC 7628 §3.2.3: the exchange fails either way; note a malformed acknowledgement.
        note = "" if response == self._ack else f" (malformed acknowledgement, not {self._ack!r})"
        return self.fail(self._rejected, f"{self.name}: token rejected{note}")

    def _supply(self, answer: CredentialAnswer) -> ServerStep:
        if isinstance(answer, TokenRejected):
            return self._reject(answer, FailureReason.CREDENTIALS_INVALID)
        verdict = as_verdict(answer)
        if verdict is None:
            raise self.wrong_answer(answer, "True/False, a Verdict or TokenRejected")
        if verdict is Verdict.OK:
            return Success(mechanism=self.name, authcid=self._authcid, authzid=self._authzid)
        if verdict is Verdict.NOT_AUTHORIZED:
            return self._reject(TokenRejected(), FailureReason.NOT_AUTHORIZED)
        if verdict in (Verdict.BAD_CREDENTIALS, Verdict.UNKNOWN_USER):
            return self._reject(TokenRejected(), FailureReason.CREDENTIALS_INVALID)
        return self.fail_verdict(verdict, "token check")  # 454 / 534 / 432: no error JSON

    def _reject(self, details: TokenRejected, reason: FailureReason) -> ServerStep:
        self._rejected = reason
        return Challenge(data=self._error_json(details))

    _ack: bytes

    @abc.abstractmethod
    def _error_json(self, details: TokenRejected) -> bytes: ...

    @abc.abstractmethod
    def _parse(self, data: bytes) -> ServerStep: ...


def _dump(obj: dict[str, str]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


class OAuthBearerServer(_OAuthServer):
    """OAUTHBEARER server (RFC 7628 §3). No channel binding: a "p" GS2 flag fails."""

    _ack = KVSEP.encode()

    def __init__(self) -> None:
        super().__init__("OAUTHBEARER")

    def _error_json(self, details: TokenRejected) -> bytes:
        # RFC 7628 §3.2.2: status (required), scope, openid-configuration.
        obj = {"status": details.status or "invalid_token"}
        if details.scope is not None:
            obj["scope"] = details.scope
        if details.openid_configuration is not None:
            obj["openid-configuration"] = details.openid_configuration
        return _dump(obj)

    def _parse(self, data: bytes) -> ServerStep:
        text = decode_utf8(data)
        if text is None:
            return self.fail(FailureReason.MALFORMED, "OAUTHBEARER message is not UTF-8")
        # RFC 7628 §3.1: client-resp = (gs2-header kvsep *kvpair kvsep) / kvsep
        gs2_header, sep, rest = text.partition(KVSEP)
        parts = gs2_header.split(",")
        if not sep or len(parts) != 3 or parts[2] != "":
            return self.fail(FailureReason.MALFORMED, "OAUTHBEARER: bad GS2 header")
        flag, authz, _ = parts
        if flag not in ("n", "y"):
            # RFC 7628 §3.1: OAUTHBEARER has no -PLUS variant, so no "p=".
            return self.fail(FailureReason.MALFORMED, "OAUTHBEARER: bad channel binding flag")
        if authz:
            name = unescape_saslname(authz[2:]) if authz.startswith("a=") else None
            if not name:
                return self.fail(FailureReason.MALFORMED, "OAUTHBEARER: bad authzid")
            self._authzid = name
        if not rest.endswith(KVSEP):
            return self.fail(FailureReason.MALFORMED, "OAUTHBEARER: missing final %x01")
        pairs = _parse_kvpairs(rest[:-1])
        if pairs is None:
            return self.fail(FailureReason.MALFORMED, "OAUTHBEARER: bad kvpairs")
        auth = _AUTH_VALUE_RE.match(pairs.get("auth", ""))
        if auth is None:
            return self.fail(FailureReason.MALFORMED, "OAUTHBEARER: no 'auth=Bearer <token>'")
        port: int | None = None
        if "port" in pairs:
            if not (pairs["port"].isdigit() and pairs["port"].isascii()):
                return self.fail(FailureReason.MALFORMED, "OAUTHBEARER: bad port")
            port = int(pairs["port"])
        return VerifyToken(
            mechanism=self.name,
            authcid=None,
            authzid=self._authzid,
            token=auth[1],
            host=pairs.get("host"),
            port=port,
        )


class XOAuth2Server(_OAuthServer):
    """XOAUTH2 server: ``user=...`` %x01 ``auth=Bearer ...`` %x01 %x01."""

    _ack = b""

    def __init__(self) -> None:
        super().__init__("XOAUTH2")

    def _error_json(self, details: TokenRejected) -> bytes:
        # Google's format: {"status":"401","schemes":"bearer","scope":"..."}
        obj = {"status": details.status or "401", "schemes": "bearer"}
        if details.scope is not None:
            obj["scope"] = details.scope
        return _dump(obj)

    def _parse(self, data: bytes) -> ServerStep:
        text = decode_utf8(data)
        if text is None:
            return self.fail(FailureReason.MALFORMED, "XOAUTH2 message is not UTF-8")
        if not text.endswith(KVSEP * 2):
            return self.fail(FailureReason.MALFORMED, "XOAUTH2: missing final %x01 %x01")
        fields: dict[str, str] = {}
        for pair in text[:-2].split(KVSEP):
            key, eq, value = pair.partition("=")
            if not eq or key in fields:
                return self.fail(FailureReason.MALFORMED, "XOAUTH2: bad or repeated field")
            fields[key] = value
        user = fields.get("user", "")
        auth = _AUTH_VALUE_RE.match(fields.get("auth", ""))
        if not user or "\0" in user or auth is None:
            return self.fail(
                FailureReason.MALFORMED, "XOAUTH2: needs 'user=' and 'auth=Bearer <token>'"
            )
        self._authcid = user
        return VerifyToken(mechanism=self.name, authcid=user, authzid=None, token=auth[1])
