# The password mechanisms without server authentication: PLAIN (RFC 4616), LOGIN
# (draft-murchison-sasl-login-00, de-facto) and CRAM-MD5 (RFC 2195).
#
# Strategy: each is a handful of states. PLAIN is client-first (one message); LOGIN and
# CRAM-MD5 are server-first. PLAIN/LOGIN servers hand the password to the application
# (VerifyPassword, or a ``verify_password`` callback); a CRAM-MD5 server must know the
# plaintext password because it is the HMAC key, so it asks for it (LookupPassword).
# Rules: strict UTF-8 on the server (RFC 4616 §2); malformed input is a Failure(MALFORMED),
# never an exception; the CRAM-MD5 challenge is built from injected parts (no clock here).
from __future__ import annotations

import hashlib
import hmac
import re
from typing import Final

from ._base import (
    Challenge,
    ClientMechanism,
    CredentialAnswer,
    FailureReason,
    LookupPassword,
    PasswordVerifier,
    SASLprepError,
    SASLProtocolError,
    ServerMechanism,
    ServerStep,
    StoredPassword,
    Success,
    Verdict,
    VerifyPassword,
    as_verdict,
    check_challenge_bytes,
    decode_utf8,
)
from ._saslprep import saslprep

__all__ = [
    "CramMD5Client",
    "CramMD5Server",
    "LoginClient",
    "LoginServer",
    "PlainClient",
    "PlainServer",
    "cram_md5_challenge",
    "passwords_match",
]


def utf8(value: str, what: str) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not encodable as UTF-8 (lone surrogate?)") from None


def passwords_match(supplied: str, stored: str) -> bool:
    """Compare a password a client sent (PLAIN/LOGIN) with the stored one after SASLprep
    (RFC 4013; RFC 4616 §2 leaves preparation to the server), in constant time. A string
    that SASLprep rejects matches nothing."""
    try:
        a = saslprep(supplied).encode("utf-8")
        b = saslprep(stored).encode("utf-8")
    except (SASLprepError, UnicodeEncodeError):
        return False
    return hmac.compare_digest(a, b)


# --------------------------------------------------------------- password check helper


class _PasswordServer(ServerMechanism):
    """Shared by PLAIN and LOGIN: check (authcid, authzid, password), by callback or by
    returning VerifyPassword and waiting for ``supply(bool | Verdict)``."""

    def __init__(self, name: str, verify_password: PasswordVerifier | None) -> None:
        super().__init__(name)
        self._verify = verify_password
        self._authcid = ""
        self._authzid: str | None = None

    def _check(self, authcid: str, authzid: str | None, password: str) -> ServerStep:
        self._authcid, self._authzid = authcid, authzid
        if self._verify is None:
            return VerifyPassword(
                mechanism=self.name, authcid=authcid, authzid=authzid, password=password
            )
        result = self._verify(authcid, authzid, password)
        verdict = as_verdict(result) if isinstance(result, bool | Verdict) else None
        if verdict is None:
            raise self.wrong_answer(result, "a bool or Verdict from verify_password")
        return self._conclude(verdict)

    def _supply(self, answer: CredentialAnswer) -> ServerStep:
        verdict = as_verdict(answer)
        if verdict is None:
            raise self.wrong_answer(answer, "True/False or a Verdict")
        return self._conclude(verdict)

    def _conclude(self, verdict: Verdict) -> ServerStep:
        if verdict is Verdict.OK:
            return Success(mechanism=self.name, authcid=self._authcid, authzid=self._authzid)
        return self.fail_verdict(verdict, "password check")


# ---------------------------------------------------------------------------- PLAIN


class PlainClient(ClientMechanism):
    """PLAIN (RFC 4616 §2): ``[authzid] NUL authcid NUL passwd`` in UTF-8, sent as the
    initial response. Only over TLS (RFC 4616 §6, RFC 4954 §4)."""

    def __init__(self, *, username: str, password: str, authzid: str | None = None) -> None:
        super().__init__("PLAIN")
        # RFC 4616 §2: authcid and passwd are 1*SAFE (non-empty, no NUL); authzid likewise
        # when present (an empty one is simply left out).
        fields = [("username", username), ("password", password)]
        if authzid:
            fields.append(("authzid", authzid))
        for what, value in fields:
            if not utf8(value, what):
                raise ValueError(f"PLAIN {what} must not be empty (RFC 4616 §2)")
            if "\0" in value:
                raise ValueError(f"PLAIN {what} must not contain NUL (RFC 4616 §2)")
        self._username = username
        self._message = b"\0".join(
            (utf8(authzid or "", "authzid"), utf8(username, "username"), utf8(password, "password"))
        )
        self._answered_empty = False

    def initial_response(self) -> bytes:
        self._done = True
        return self._message

    def respond(self, challenge: bytes) -> bytes:
        # RFC 4422 §5 / RFC 4954 §4: without an initial response the server sends an empty
        # challenge; PLAIN never receives any other.
        if check_challenge_bytes(challenge) or self._answered_empty:
            raise SASLProtocolError("PLAIN: unexpected server challenge")
        self._answered_empty = True
        self._done = True
        return self._message

    def _repr_fields(self) -> list[tuple[str, str]]:
        return [("username", repr(self._username)), ("password", "<redacted>")]


class PlainServer(_PasswordServer):
    """PLAIN server (RFC 4616 §2): parses the message and asks for a password check."""

    def __init__(self, *, verify_password: PasswordVerifier | None = None) -> None:
        super().__init__("PLAIN", verify_password)

    def _start(self, initial_response: bytes | None) -> ServerStep:
        if initial_response is None:
            return Challenge(data=b"")  # RFC 4422 §5: ask for the client's first message
        return self._parse(initial_response)

    def _receive(self, response: bytes) -> ServerStep:
        return self._parse(response)

    def _parse(self, data: bytes) -> ServerStep:
        # RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd, all UTF-8.
        text = decode_utf8(data)
        if text is None:
            return self.fail(FailureReason.MALFORMED, "PLAIN message is not UTF-8")
        parts = text.split("\0")
        if len(parts) != 3:
            return self.fail(FailureReason.MALFORMED, "PLAIN message needs exactly two NULs")
        authzid, authcid, password = parts
        if not authcid:
            return self.fail(FailureReason.MALFORMED, "PLAIN authcid is empty")
        if not password:
            return self.fail(FailureReason.MALFORMED, "PLAIN passwd is empty")
        return self._check(authcid, authzid or None, password)


# ---------------------------------------------------------------------------- LOGIN

_USERNAME_PROMPTS: Final = frozenset(
    {"username", "user", "login", "loginname", "name", "userid", "account"}
)
_PASSWORD_PROMPTS: Final = frozenset({"password", "pass", "passwd", "passphrase", "secret"})


def _login_prompt(challenge: bytes) -> str | None:
    """ "username", "password" or None (unrecognised: go by position). Tolerates case,
    spaces, a trailing colon and the NUL terminator of draft-murchison-sasl-login §2
    ("User Name\\0", "Password\\0")."""
    text = challenge.decode("latin-1").replace("\0", "").strip().rstrip(":").lower()
    key = re.sub(r"[\s_\-]+", "", text)
    if key in _USERNAME_PROMPTS:
        return "username"
    if key in _PASSWORD_PROMPTS:
        return "password"
    return None


class LoginClient(ClientMechanism):
    """LOGIN (draft-murchison-sasl-login-00): the server prompts for the user name and then
    the password; each answer is the bare UTF-8 value. Prompts are recognised loosely
    ("Username:", "username", "User Name\\0", ...); an empty or unknown prompt is answered
    by position (first the user name, then the password). Only over TLS."""

    def __init__(self, *, username: str, password: str) -> None:
        super().__init__("LOGIN")
        self._username = utf8(username, "username")
        self._password = utf8(password, "password")
        if not self._username or not self._password:
            raise ValueError("LOGIN username and password must not be empty")
        self._sent: set[str] = set()

    def initial_response(self) -> bytes | None:
        return None  # server-first: the draft has no initial response

    def respond(self, challenge: bytes) -> bytes:
        kind = _login_prompt(check_challenge_bytes(challenge))
        if kind is None:
            kind = "username" if "username" not in self._sent else "password"
        if kind in self._sent:
            raise SASLProtocolError(f"LOGIN: the server asked for the {kind} twice")
        self._sent.add(kind)
        self._done = len(self._sent) == 2
        return self._username if kind == "username" else self._password

    def _repr_fields(self) -> list[tuple[str, str]]:
        return [("username", repr(self._username.decode())), ("password", "<redacted>")]


class LoginServer(_PasswordServer):
    """LOGIN server: challenges ``Username:`` then ``Password:`` (the de-facto prompts; the
    draft's are "User Name" and "Password"). An initial response is taken as the user name,
    as deployed servers do."""

    def __init__(
        self,
        *,
        verify_password: PasswordVerifier | None = None,
        username_prompt: bytes = b"Username:",
        password_prompt: bytes = b"Password:",
    ) -> None:
        super().__init__("LOGIN", verify_password)
        self._prompts = (username_prompt, password_prompt)
        self._username: str | None = None

    def _start(self, initial_response: bytes | None) -> ServerStep:
        if initial_response is None:
            return Challenge(data=self._prompts[0])
        return self._take_username(initial_response)

    def _receive(self, response: bytes) -> ServerStep:
        if self._username is None:
            return self._take_username(response)
        password = decode_utf8(response)
        if password is None:
            return self.fail(FailureReason.MALFORMED, "LOGIN password is not UTF-8")
        if not password:
            return self.fail(FailureReason.MALFORMED, "LOGIN password is empty")
        return self._check(self._username, None, password)

    def _take_username(self, data: bytes) -> ServerStep:
        username = decode_utf8(data)
        if username is None:
            return self.fail(FailureReason.MALFORMED, "LOGIN user name is not UTF-8")
        if not username or "\0" in username:
            return self.fail(FailureReason.MALFORMED, "LOGIN user name is empty or has NUL")
        self._username = username
        return Challenge(data=self._prompts[1])


# ------------------------------------------------------------------------- CRAM-MD5

# RFC 2195 §2 / RFC 5322 msg-id: the host part must not break the <...@...> framing.
_HOSTNAME_RE: Final = re.compile(r"[!-~]+\Z")
_DIGEST_RE: Final = re.compile(r"[0-9a-f]{32}\Z")


def cram_md5_challenge(*, nonce: int | str, timestamp: int, hostname: str) -> bytes:
    """RFC 2195 §2: ``<nonce.timestamp@hostname>``, e.g. ``<1896.697170952@postoffice...>``.
    ``nonce`` is the random part (digits), ``timestamp`` the caller's clock reading."""
    nonce_text = str(nonce)
    if not nonce_text.isdigit() or not nonce_text.isascii():
        raise ValueError("the CRAM-MD5 nonce must be digits")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0:
        raise ValueError("the CRAM-MD5 timestamp must be a non-negative int")
    if not _HOSTNAME_RE.match(hostname) or any(c in hostname for c in "<>@"):
        raise ValueError(f"not usable as the CRAM-MD5 host name: {hostname!r}")
    return f"<{nonce_text}.{timestamp}@{hostname}>".encode("ascii")


def _cram_md5_digest(key: bytes, challenge: bytes) -> str:
    # RFC 2195 §2: digest = HMAC-MD5(password, challenge) (RFC 2104), 32 lowercase hex digits.
    return hmac.new(key, challenge, hashlib.md5).hexdigest()


class CramMD5Client(ClientMechanism):
    """CRAM-MD5 (RFC 2195 §2): answers the challenge with ``user SP hex(HMAC-MD5)``, keyed
    with the UTF-8 password (no SASLprep: RFC 2195 defines none). It does not authenticate
    the server and allows offline dictionary attacks on a captured exchange."""

    def __init__(self, *, username: str, password: str) -> None:
        super().__init__("CRAM-MD5")
        self._username = utf8(username, "username")
        self._key = utf8(password, "password")
        if not self._username:
            raise ValueError("CRAM-MD5 username must not be empty")

    def initial_response(self) -> bytes | None:
        return None  # server-first (RFC 2195 §2)

    def respond(self, challenge: bytes) -> bytes:
        challenge = check_challenge_bytes(challenge)
        if self._done:
            raise SASLProtocolError("CRAM-MD5: more than one challenge")
        if not challenge:
            raise SASLProtocolError("CRAM-MD5: empty challenge")
        self._done = True
        return self._username + b" " + _cram_md5_digest(self._key, challenge).encode("ascii")

    def _repr_fields(self) -> list[tuple[str, str]]:
        return [("username", repr(self._username.decode())), ("password", "<redacted>")]


class CramMD5Server(ServerMechanism):
    """CRAM-MD5 server (RFC 2195 §2). Needs the plaintext password of the user (or the raw
    HMAC key bytes), asked for with LookupPassword and supplied as StoredPassword."""

    def __init__(self, *, hostname: str, timestamp: int, nonce: int | str) -> None:
        super().__init__("CRAM-MD5")
        self._challenge = cram_md5_challenge(nonce=nonce, timestamp=timestamp, hostname=hostname)
        self._authcid = ""
        self._digest = ""

    def _start(self, initial_response: bytes | None) -> ServerStep:
        if initial_response is not None:
            # RFC 4954 §4: an initial response with a server-first mechanism: 501 5.7.0.
            return self.fail(FailureReason.UNEXPECTED_INITIAL_RESPONSE, "CRAM-MD5 is server-first")
        return Challenge(data=self._challenge)

    def _receive(self, response: bytes) -> ServerStep:
        text = decode_utf8(response)
        if text is None:
            return self.fail(FailureReason.MALFORMED, "CRAM-MD5 response is not UTF-8")
        user, sep, digest = text.rpartition(" ")
        digest = digest.lower()
        if not sep or not user or not _DIGEST_RE.match(digest):
            return self.fail(FailureReason.MALFORMED, "CRAM-MD5 response is not 'user digest'")
        self._authcid, self._digest = user, digest
        return LookupPassword(mechanism=self.name, authcid=user, authzid=None)

    def _supply(self, answer: CredentialAnswer) -> ServerStep:
        if isinstance(answer, StoredPassword):
            pw = answer.password
            key = pw if isinstance(pw, bytes) else utf8(pw, "password")
            expected = _cram_md5_digest(key, self._challenge)
            if hmac.compare_digest(expected.encode(), self._digest.encode()):
                return Success(mechanism=self.name, authcid=self._authcid, authzid=None)
            return self.fail(FailureReason.CREDENTIALS_INVALID, "CRAM-MD5 digest mismatch")
        verdict = as_verdict(answer)
        if verdict is None or verdict is Verdict.OK:
            raise self.wrong_answer(answer, "StoredPassword or a failure Verdict")
        return self.fail_verdict(verdict, "password lookup")
