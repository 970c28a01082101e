# SCRAM-SHA-1 and SCRAM-SHA-256, with and without -PLUS channel binding (RFC 5802, RFC 7677,
# RFC 5056; channel binding types tls-server-end-point, RFC 5929, and tls-exporter, RFC 9266).
#
# Strategy: each side is a straight line of messages (RFC 5802 §5):
#   client-first (gs2-header + bare) -> server-first -> client-final -> server-final.
# The client proves knowledge of the password with ClientProof; the server proves its
# knowledge of the stored keys with ServerSignature, which the client MUST verify before it
# believes a 235 (MutualAuthenticationError otherwise). The server never sees the password:
# it asks the application for ScramStoredKeys (LookupScramKeys).
# Rules:
# - Formulas and names follow RFC 5802 §3; Hi() is PBKDF2-HMAC (hashlib.pbkdf2_hmac).
# - User names and passwords go through SASLprep as "stored strings" (RFC 5802 §2.2, §5.1);
#   user names and authzids are escaped as saslnames ("=" -> "=3D", "," -> "=2C").
# - The server nonce must start with the client nonce and be longer (RFC 5802 §5.1).
# - GS2 flags (RFC 5802 §6): "p=<type>" with -PLUS; "y" when the client supports channel
#   binding but the server did not advertise -PLUS; "n" otherwise. A server that has
#   channel binding data (so it advertises -PLUS) fails a "y" client: a downgrade.
# - Nonces and the mock-salt key are injected; nothing here draws randomness. SMTP has no
#   additional data with success (RFC 4954 §4), so by default the server-final message is a
#   last Challenge and the client answers it with an empty response.
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import Final, Literal

from ._base import (
    MAX_CHALLENGE,
    AuthenticationRejected,
    Challenge,
    ChannelBinding,
    ClientMechanism,
    CredentialAnswer,
    FailureReason,
    LookupScramKeys,
    MutualAuthenticationError,
    SASLprepError,
    SASLProtocolError,
    ScramStoredKeys,
    ServerMechanism,
    ServerStep,
    Success,
    Verdict,
    as_verdict,
    check_challenge_bytes,
    decode_utf8,
    escape_saslname,
    unescape_saslname,
)
from ._saslprep import saslprep

__all__ = [
    "SCRAM_MECHANISMS",
    "ScramClient",
    "ScramHash",
    "ScramServer",
    "scram_stored_keys",
]

ScramHash = Literal["sha1", "sha256"]

#: mechanism name -> (hashlib name, uses channel binding)
SCRAM_MECHANISMS: Final[dict[str, tuple[ScramHash, bool]]] = {
    "SCRAM-SHA-1": ("sha1", False),  # RFC 5802
    "SCRAM-SHA-1-PLUS": ("sha1", True),  # RFC 5802 §6
    "SCRAM-SHA-256": ("sha256", False),  # RFC 7677
    "SCRAM-SHA-256-PLUS": ("sha256", True),  # RFC 7677
}
_DIGEST_SIZE: Final[dict[str, int]] = {"sha1": 20, "sha256": 32}

DEFAULT_MIN_ITERATIONS: Final = 4096  # RFC 7677 §4: at least 4096 for SCRAM-SHA-256
DEFAULT_MAX_ITERATIONS: Final = 10_000_000  # a bound on a hostile server's demand (DoS)

# RFC 5802 §7: printable = %x21-2B / %x2D-7E (no ","); nonce = "r=" c-nonce [s-nonce]
_NONCE_RE: Final = re.compile(r"[\x21-\x2b\x2d-\x7e]+\Z")
_POSIT_RE: Final = re.compile(r"[1-9][0-9]*\Z")  # RFC 5802 §7: posit-number
# The server-first-message "r=<c-nonce><s-nonce>,s=<salt>,i=<count>" echoes the client
# nonce; what it needs besides both nonces, with a salt of up to 64 octets (88 base64
# characters) and a 10-digit count. The client nonce is bounded so that the message fits
# one 334 reply (MAX_CHALLENGE).
_MAX_SALT = 64
_SERVER_FIRST_OVERHEAD: Final = len("r=,s=,i=") + (_MAX_SALT + 2) // 3 * 4 + 10
_MIN_CLIENT_NONCE_ROOM: Final = 64
_B64_RE: Final = re.compile(  # RFC 5802 §7: base64-char / base64-4 ... with proper padding
    r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\Z"
)


# ---------------------------------------------------------------- RFC 5802 §3 formulas


def _hmac(name: str, key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, name).digest()


def _h(name: str, data: bytes) -> bytes:
    return hashlib.new(name, data).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _salted_password(name: str, password: str, salt: bytes, iterations: int) -> bytes:
    # SaltedPassword := Hi(Normalize(password), salt, i); Hi is PBKDF2 with HMAC (RFC 5802
    # §2.2); Normalize is SASLprep with unassigned code points prohibited.
    return hashlib.pbkdf2_hmac(name, saslprep(password).encode("utf-8"), salt, iterations)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes | None:
    if not _B64_RE.match(text):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):  # pragma: no cover - excluded by the regex
        return None


def scram_stored_keys(
    password: str, salt: bytes, iterations: int, hash: ScramHash = "sha256"
) -> ScramStoredKeys:
    """Derive what a SCRAM server stores for ``password`` (RFC 5802 §3):
    StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey = HMAC(SaltedPassword,
    "Server Key"). ``salt`` should be at least 16 random bytes, ``iterations`` at least 4096
    (RFC 7677 §4). ``hash`` is "sha1" (SCRAM-SHA-1) or "sha256" (SCRAM-SHA-256)."""
    if hash not in _DIGEST_SIZE:
        raise ValueError(f"hash must be 'sha1' or 'sha256', not {hash!r}")
    if not isinstance(salt, bytes) or not salt:
        raise ValueError("salt must be non-empty bytes")
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1:
        raise ValueError("iterations must be a positive int")
    salted = _salted_password(hash, password, salt, iterations)
    return ScramStoredKeys(
        salt=salt,
        iterations=iterations,
        stored_key=_h(hash, _hmac(hash, salted, b"Client Key")),
        server_key=_hmac(hash, salted, b"Server Key"),
    )


def _attributes(message: str) -> list[tuple[str, str]] | None:
    """``attr-val *("," attr-val)`` with attr-val = ALPHA "=" 1*value-char (RFC 5802 §7);
    None when malformed. Values never contain "," or NUL."""
    result: list[tuple[str, str]] = []
    for part in message.split(","):
        if len(part) < 3 or part[1] != "=" or not (part[0].isascii() and part[0].isalpha()):
            return None
        if "\0" in part:
            return None
        result.append((part[0], part[2:]))
    return result


def _mechanism(name: str) -> tuple[str, ScramHash, bool]:
    key = name.upper() if isinstance(name, str) else name
    if key not in SCRAM_MECHANISMS:
        raise ValueError(f"not a SCRAM mechanism: {name!r}")
    hash_name, plus = SCRAM_MECHANISMS[key]
    return key, hash_name, plus


def _prepare_name(value: str, what: str) -> str:
    prepared = saslprep(value)
    if not prepared:
        raise SASLprepError(f"SCRAM {what} is empty after SASLprep (RFC 5802 §5.1)")
    return prepared


# ------------------------------------------------------------------------------ client


class ScramClient(ClientMechanism):
    """The client side of SCRAM-SHA-1/-256[-PLUS] (RFC 5802 §5, RFC 7677).

    - ``nonce``: the client nonce, printable ASCII without "," (RFC 5802 §5.1); inject it
      (the factory ``client_mechanism()`` draws one from ``secrets`` if you do not).
    - ``channel_binding``: required for -PLUS (flag "p="); given to a non-PLUS mechanism it
      means "the client supports channel binding but the server did not offer -PLUS" (flag
      "y", RFC 5802 §6), so pass it only when the server did not advertise -PLUS.
    - ``min_iterations``/``max_iterations``: the iteration counts the client accepts.
    """

    def __init__(
        self,
        *,
        mechanism: str = "SCRAM-SHA-256",
        username: str,
        password: str,
        nonce: str,
        authzid: str | None = None,
        channel_binding: ChannelBinding | None = None,
        min_iterations: int = DEFAULT_MIN_ITERATIONS,
        max_iterations: int = DEFAULT_MAX_ITERATIONS,
    ) -> None:
        name, self._hash, plus = _mechanism(mechanism)
        super().__init__(name)
        if plus and channel_binding is None:
            raise ValueError(f"{name} needs channel binding data")
        if channel_binding is not None and not isinstance(channel_binding, ChannelBinding):
            raise TypeError("channel_binding must be a ChannelBinding")
        if not isinstance(nonce, str) or not _NONCE_RE.match(nonce):
            raise ValueError("the SCRAM nonce must be printable ASCII without ',' (RFC 5802 §7)")
        self._username = _prepare_name(username, "username")
        self._password = saslprep(password)  # RFC 5802 §2.2: fail early, not mid-exchange
        self._authzid = _prepare_name(authzid, "authzid") if authzid else None
        self._nonce = nonce
        self._min_iterations, self._max_iterations = min_iterations, max_iterations
        # RFC 5802 §5.1/§6/§7: gs2-header = gs2-cbind-flag "," [authzid] ","
        if plus:
            assert channel_binding is not None
            flag = f"p={channel_binding.type}"
            cb_data = channel_binding.data
        else:
            flag = "n" if channel_binding is None else "y"
            cb_data = b""
        authz = f"a={escape_saslname(self._authzid)}" if self._authzid else ""
        self._gs2_header = f"{flag},{authz},"
        self._cbind_input = self._gs2_header.encode("utf-8") + cb_data
        self._first_bare = f"n={escape_saslname(self._username)},r={nonce}"
        self._stage = "first"  # first -> final (client-final sent) -> done
        self._first_given = False
        self._answered_empty = False
        self._server_signature = b""

    def initial_response(self) -> bytes:
        self._first_given = True
        return (self._gs2_header + self._first_bare).encode("utf-8")

    def respond(self, challenge: bytes) -> bytes:
        challenge = check_challenge_bytes(challenge)
        if self._stage == "first":
            if not challenge:
                # RFC 4422 §5: no initial response was sent; the server asks for it.
                if self._answered_empty:
                    raise SASLProtocolError(f"{self.name}: unexpected empty challenge")
                self._answered_empty = True
                return self.initial_response()
            if not self._first_given:
                raise SASLProtocolError(f"{self.name}: challenge before client-first-message")
            return self._server_first(challenge)
        if self._stage == "final":
            self._server_final(challenge)
            return b""  # RFC 4422 §5: empty response to the final challenge
        raise SASLProtocolError(f"{self.name}: challenge after the exchange was complete")

    def finish(self, additional_data: bytes | None = None) -> None:
        if additional_data is not None:
            if self._stage != "final":
                raise SASLProtocolError(f"{self.name}: unexpected additional data")
            self._server_final(check_challenge_bytes(additional_data))
        if not self._done:
            # RFC 5802 §5/§9: success without a verified ServerSignature proves nothing.
            raise MutualAuthenticationError(
                f"{self.name}: the server did not prove its knowledge of the credentials"
            )

    def _server_first(self, challenge: bytes) -> bytes:
        text = decode_utf8(challenge)
        attrs = _attributes(text) if text is not None else None
        if text is None or attrs is None:
            raise SASLProtocolError(f"{self.name}: malformed server-first-message")
        if attrs[0][0] == "e":
            raise AuthenticationRejected(f"{self.name}: server error {attrs[0][1]!r}", attrs[0][1])
        if attrs[0][0] == "m":
            # RFC 5802 §5.1: an unknown mandatory extension makes the client fail.
            raise SASLProtocolError(f"{self.name}: unsupported mandatory extension")
        if len(attrs) < 3 or [k for k, _ in attrs[:3]] != ["r", "s", "i"]:
            raise SASLProtocolError(f"{self.name}: server-first-message needs r, s, i")
        nonce, salt_text, iter_text = (v for _, v in attrs[:3])
        # RFC 5802 §5.1: the combined nonce starts with the client nonce and adds to it.
        if (
            not _NONCE_RE.match(nonce)
            or not nonce.startswith(self._nonce)
            or len(nonce) == len(self._nonce)
        ):
            raise SASLProtocolError(f"{self.name}: server nonce does not extend ours")
        salt = _unb64(salt_text)
        if not salt:
            raise SASLProtocolError(f"{self.name}: bad salt")
        if not _POSIT_RE.match(iter_text):
            raise SASLProtocolError(f"{self.name}: bad iteration count")
        iterations = int(iter_text)
        if not self._min_iterations <= iterations <= self._max_iterations:
            raise SASLProtocolError(
                f"{self.name}: iteration count {iterations} outside "
                f"[{self._min_iterations}, {self._max_iterations}]"
            )
        h = self._hash
        salted = _salted_password(h, self._password, salt, iterations)
        self._password = ""  # no longer needed: keep the secret's lifetime short
        without_proof = f"c={_b64(self._cbind_input)},r={nonce}"
        auth_message = f"{self._first_bare},{text},{without_proof}".encode()
        client_key = _hmac(h, salted, b"Client Key")
        client_signature = _hmac(h, _h(h, client_key), auth_message)
        proof = _xor(client_key, client_signature)
        self._server_signature = _hmac(h, _hmac(h, salted, b"Server Key"), auth_message)
        self._stage = "final"
        return f"{without_proof},p={_b64(proof)}".encode("ascii")

    def _server_final(self, data: bytes) -> None:
        text = decode_utf8(data)
        attrs = _attributes(text) if text else None
        if attrs is None:
            raise SASLProtocolError(f"{self.name}: malformed server-final-message")
        key, value = attrs[0]
        if key == "e":  # RFC 5802 §7: server-error
            self._stage = "done"
            raise AuthenticationRejected(f"{self.name}: server error {value!r}", value)
        signature = _unb64(value) if key == "v" else None
        if signature is None:
            raise SASLProtocolError(f"{self.name}: server-final-message needs v=")
        if not hmac.compare_digest(signature, self._server_signature):
            self._stage = "done"
            raise MutualAuthenticationError(f"{self.name}: wrong server signature")
        self._stage = "done"
        self._done = True

    def _repr_fields(self) -> list[tuple[str, str]]:
        return [("username", repr(self._username)), ("password", "<redacted>")]


# ------------------------------------------------------------------------------ server


class ScramServer(ServerMechanism):
    """The server side of SCRAM-SHA-1/-256[-PLUS] (RFC 5802 §5, RFC 7677).

    - ``nonce``: the server's nonce part, printable ASCII without "," (RFC 5802 §5.1).
    - ``channel_bindings``: the binding data of this connection, one per supported type;
      pass it iff you advertised the -PLUS variants (required for a -PLUS mechanism).
    - ``mock_key``: a secret for the mock salts of unknown users (RFC 5802 §9); keep it
      stable across connections so repeated probes see the same salt.
    - ``final_data_with_success``: put the server-final message into Success.final_data
      (protocols with additional data with success) instead of a last Challenge (SMTP).
    """

    def __init__(
        self,
        *,
        mechanism: str = "SCRAM-SHA-256",
        nonce: str,
        mock_key: bytes,
        channel_bindings: Iterable[ChannelBinding] = (),
        final_data_with_success: bool = False,
        mock_iterations: int = DEFAULT_MIN_ITERATIONS,
    ) -> None:
        name, self._hash, self._plus = _mechanism(mechanism)
        super().__init__(name)
        if not isinstance(nonce, str) or not _NONCE_RE.match(nonce):
            raise ValueError("the SCRAM nonce must be printable ASCII without ',' (RFC 5802 §7)")
        if not isinstance(mock_key, bytes) or not mock_key:
            raise ValueError("mock_key must be non-empty bytes")
        self._max_c_nonce = MAX_CHALLENGE - _SERVER_FIRST_OVERHEAD - len(nonce)
        if self._max_c_nonce < _MIN_CLIENT_NONCE_ROOM:
            raise ValueError(
                f"a server nonce of {len(nonce)} characters leaves too little room for the"
                " client's in a 334 challenge (RFC 4954 §4)"
            )
        self._bindings = {cb.type: cb.data for cb in channel_bindings}
        if self._plus and not self._bindings:
            raise ValueError(f"{name} needs channel binding data")
        self._s_nonce = nonce
        self._mock_key = mock_key
        self._mock_iterations = mock_iterations
        self._final_with_success = final_data_with_success
        self._stage = "first"  # first -> keys -> final -> ack -> done
        self._gs2_header = ""
        self._cb_data = b""
        self._first_bare = ""
        self._c_nonce = ""
        self._authcid = ""
        self._authzid: str | None = None
        self._server_first = ""
        self._keys: ScramStoredKeys | None = None

    def __repr__(self) -> str:
        return (
            f"ScramServer(name={self.name!r}, phase={self._phase.value!r}, "
            f"keys={'None' if self._keys is None else '<redacted>'})"
        )

    def _start(self, initial_response: bytes | None) -> ServerStep:
        if initial_response is None:
            return Challenge(data=b"")  # RFC 4422 §5: client-first, ask for the message
        return self._client_first(initial_response)

    def _receive(self, response: bytes) -> ServerStep:
        if self._stage == "first":
            return self._client_first(response)
        if self._stage == "final":
            return self._client_final(response)
        # "ack": the answer to the server-final challenge must be empty (RFC 4422 §5).
        if response:
            return self.fail(
                FailureReason.MALFORMED,
                f"{self.name}: non-empty response to the server-final-message",
            )
        return self._success(None)

    def _client_first(self, data: bytes) -> ServerStep:
        text = decode_utf8(data)
        if text is None:
            return self.fail(FailureReason.MALFORMED, "client-first-message is not UTF-8")
        first = text.find(",")
        second = text.find(",", first + 1) if first >= 0 else -1
        if second < 0:
            return self.fail(FailureReason.MALFORMED, "client-first-message lacks a GS2 header")
        flag, authz, bare = text[:first], text[first + 1 : second], text[second + 1 :]
        failed = self._check_flag(flag)
        if failed is not None:
            return failed
        if authz:
            name = unescape_saslname(authz[2:]) if authz.startswith("a=") else None
            try:
                self._authzid = _prepare_name(name, "authzid") if name else None
            except SASLprepError:
                self._authzid = None
            if self._authzid is None:
                return self.fail(FailureReason.MALFORMED, "bad authzid in the GS2 header")
        attrs = _attributes(bare)
        if attrs is None:
            return self.fail(FailureReason.MALFORMED, "malformed client-first-message-bare")
        if attrs[0][0] == "m":
            # RFC 5802 §5.1: "m" is reserved; the server fails (extensions-not-supported).
            return self.fail(FailureReason.MALFORMED, "e=extensions-not-supported")
        if len(attrs) < 2 or [k for k, _ in attrs[:2]] != ["n", "r"]:
            return self.fail(FailureReason.MALFORMED, "client-first-message needs n, r")
        username = unescape_saslname(attrs[0][1])
        try:
            username = _prepare_name(username, "username") if username else None
        except SASLprepError:
            username = None
        if username is None:
            return self.fail(FailureReason.MALFORMED, "e=invalid-username-encoding")
        if not _NONCE_RE.match(attrs[1][1]):
            return self.fail(FailureReason.MALFORMED, "bad client nonce")
        if len(attrs[1][1]) > self._max_c_nonce:
            # The server-first-message repeats it: it must fit a 334 reply line (RFC 4954
            # §4, RFC 5321 §4.5.3.1.5). 501 like any malformed client message.
            return self.fail(
                FailureReason.MALFORMED,
                f"client nonce over {self._max_c_nonce} characters: no room in a 334 reply",
            )
        self._gs2_header = text[: second + 1]  # as sent: it is part of the c= check
        self._first_bare, self._c_nonce, self._authcid = bare, attrs[1][1], username
        self._stage = "keys"
        return LookupScramKeys(mechanism=self.name, authcid=username, authzid=self._authzid)

    def _check_flag(self, flag: str) -> ServerStep | None:
        mismatch = FailureReason.CHANNEL_BINDING_MISMATCH
        if flag == "n":
            if self._plus:  # RFC 5802 §6: -PLUS means the client must bind
                return self.fail(mismatch, f"{self.name} used without channel binding")
            return None
        if flag == "y":
            if self._plus:
                return self.fail(mismatch, f"{self.name} used without channel binding")
            if self._bindings:
                # RFC 5802 §6: the client thinks we do not support channel binding, but we
                # advertised -PLUS: a downgrade attack.
                return self.fail(mismatch, "e=server-does-support-channel-binding")
            return None
        if flag.startswith("p="):
            if not self._plus:
                return self.fail(mismatch, f"channel binding requested with {self.name}")
            cb_type = flag[2:]
            if cb_type not in self._bindings:
                return self.fail(mismatch, "e=unsupported-channel-binding-type")
            self._cb_data = self._bindings[cb_type]
            return None
        return self.fail(FailureReason.MALFORMED, "bad GS2 channel binding flag")

    def _supply(self, answer: CredentialAnswer) -> ServerStep:
        if isinstance(answer, ScramStoredKeys):
            size = _DIGEST_SIZE[self._hash]
            if len(answer.stored_key) != size or len(answer.server_key) != size:
                raise ValueError(f"{self.name} needs {size}-byte keys (wrong hash?)")
            keys = answer
        else:
            verdict = as_verdict(answer)
            if verdict is None or verdict is Verdict.OK:
                raise self.wrong_answer(answer, "ScramStoredKeys or a failure Verdict")
            if verdict is not Verdict.UNKNOWN_USER:
                return self.fail_verdict(verdict, "SCRAM key lookup")
            keys = self._mock_keys()
        self._keys = keys
        self._server_first = (
            f"r={self._c_nonce}{self._s_nonce},s={_b64(keys.salt)},i={keys.iterations}"
        )
        self._stage = "final"
        return Challenge(data=self._server_first.encode("utf-8"))

    def _mock_keys(self) -> ScramStoredKeys:
        # RFC 5802 §9: answer an unknown user like a known one (a salt that is stable for the
        # name), then fail the proof, so the exchange does not reveal which users exist.
        seed = self._authcid.encode("utf-8")
        size = _DIGEST_SIZE[self._hash]
        return ScramStoredKeys(
            salt=_hmac("sha256", self._mock_key, b"salt\0" + seed)[:16],
            iterations=self._mock_iterations,
            stored_key=_hmac("sha256", self._mock_key, b"stored\0" + seed)[:size],
            server_key=_hmac("sha256", self._mock_key, b"server\0" + seed)[:size],
        )

    def _client_final(self, data: bytes) -> ServerStep:
        assert self._keys is not None
        text = decode_utf8(data)
        cut = text.rfind(",p=") if text is not None else -1
        if text is None or cut < 0:
            return self.fail(FailureReason.MALFORMED, "client-final-message lacks p=")
        without_proof, proof = text[:cut], _unb64(text[cut + 3 :])
        attrs = _attributes(without_proof)
        if attrs is None or len(attrs) < 2 or [k for k, _ in attrs[:2]] != ["c", "r"]:
            return self.fail(FailureReason.MALFORMED, "client-final-message needs c, r, p")
        size = _DIGEST_SIZE[self._hash]
        if proof is None or len(proof) != size:
            return self.fail(FailureReason.MALFORMED, "bad ClientProof")
        # RFC 5802 §5.1 c=: base64 of the GS2 header plus, with "p", the binding data.
        cbind = _unb64(attrs[0][1])
        expected = self._gs2_header.encode("utf-8") + self._cb_data
        if cbind is None or not hmac.compare_digest(cbind, expected):
            return self.fail(
                FailureReason.CHANNEL_BINDING_MISMATCH, "e=channel-bindings-dont-match"
            )
        if attrs[1][1] != self._c_nonce + self._s_nonce:  # RFC 5802 §5.1 r=
            return self.fail(FailureReason.MALFORMED, "e=other-error (nonce mismatch)")
        h, keys = self._hash, self._keys
        auth_message = f"{self._first_bare},{self._server_first},{without_proof}".encode()
        client_key = _xor(proof, _hmac(h, keys.stored_key, auth_message))
        # For an unknown user the mock StoredKey has no known preimage: this always fails.
        if not hmac.compare_digest(_h(h, client_key), keys.stored_key):
            return self.fail(FailureReason.CREDENTIALS_INVALID, "e=invalid-proof")
        server_final = f"v={_b64(_hmac(h, keys.server_key, auth_message))}".encode("ascii")
        if self._final_with_success:
            return self._success(server_final)
        self._stage = "ack"
        return Challenge(data=server_final)

    def _success(self, final_data: bytes | None) -> ServerStep:
        self._stage = "done"
        return Success(
            mechanism=self.name, authcid=self._authcid, authzid=self._authzid, final_data=final_data
        )
