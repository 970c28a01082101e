"""SASL mechanisms (sansio_smtp.sasl): RFC vectors, client<->server round trips, every
failure path, interop with the independent ``scramp`` implementation, Hypothesis over
credentials, and redacted reprs.

Each test names the rule it checks with its RFC section in a comment.
"""

from __future__ import annotations

import base64
import json
import stringprep
from collections.abc import Callable

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sansio_smtp.sasl import (
    DEFAULT_PREFERENCE,
    TLS_EXPORTER,
    TLS_SERVER_END_POINT,
    AuthenticationRejected,
    Challenge,
    ChannelBinding,
    ClientMechanism,
    CramMD5Client,
    CramMD5Server,
    CredentialAnswer,
    Failure,
    FailureReason,
    LoginClient,
    LoginServer,
    LookupPassword,
    LookupScramKeys,
    MutualAuthenticationError,
    NeedCredentials,
    OAuthBearerClient,
    OAuthBearerServer,
    OAuthErrorDetails,
    PlainClient,
    PlainServer,
    SASLError,
    SASLprepError,
    SASLProtocolError,
    SASLStateError,
    ScramClient,
    ScramHash,
    ScramServer,
    ScramStoredKeys,
    ServerMechanism,
    ServerStep,
    StoredPassword,
    Success,
    TokenRejected,
    UnsupportedMechanism,
    Verdict,
    VerifyPassword,
    VerifyToken,
    XOAuth2Client,
    XOAuth2Server,
    advertised_mechanisms,
    choose_mechanism,
    client_mechanism,
    cram_md5_challenge,
    passwords_match,
    policy_failure,
    saslprep,
    scram_stored_keys,
    server_mechanism,
)

scramp = pytest.importorskip("scramp")
# scramp >= 1.5 keeps saslprep in scramp.utils, 1.4 (the last for Python 3.10) in scramp.core.
scramp_saslprep: Callable[[str], str] = (
    getattr(pytest.importorskip("scramp.utils"), "saslprep", None)
    or pytest.importorskip("scramp.core").saslprep
)

b64d = base64.b64decode
CB_DATA = bytes(range(32))
MOCK_KEY = b"test mock key"

# ----------------------------------------------------------------------------- driver


class Outcome:
    """What an exchange ended with: the server's last step and the client's error, if any."""

    def __init__(
        self,
        step: Success | Failure,
        client_error: SASLError | None,
        transcript: list[tuple[str, bytes | None]],
    ) -> None:
        self.step = step
        self.client_error = client_error
        self.transcript = transcript

    @property
    def ok(self) -> bool:
        return isinstance(self.step, Success) and self.client_error is None


Answer = Callable[[NeedCredentials], CredentialAnswer]


def drive(
    client: ClientMechanism, server: ServerMechanism, answer: Answer, *, initial: bool = True
) -> Outcome:
    """Run an exchange the way the SMTP layer would (RFC 4954 §4): the initial response goes
    with AUTH, each Challenge becomes a 334 and the client's answer comes back, a client
    SASLError becomes "*", and on Success the client checks the 235 with finish()."""
    transcript: list[tuple[str, bytes | None]] = []
    ir = client.initial_response() if initial else None
    transcript.append(("C", ir))
    step: ServerStep = server.start(ir)
    while True:
        if isinstance(step, Challenge):
            transcript.append(("S", step.data))
            try:
                response = client.respond(step.data)
            except SASLError as exc:
                transcript.append(("C", b"*"))
                failure = server.cancel()
                return Outcome(failure, exc, transcript)
            transcript.append(("C", response))
            step = server.receive(response)
        elif isinstance(step, NeedCredentials):
            step = server.supply(answer(step))
        elif isinstance(step, Success):
            try:
                client.finish(step.final_data)
            except SASLError as exc:
                return Outcome(step, exc, transcript)
            return Outcome(step, None, transcript)
        else:
            return Outcome(step, None, transcript)


def _prepared(text: str) -> str | None:
    try:
        return saslprep(text) or None
    except SASLprepError:
        return None


def database(
    users: dict[str, str], *, salt: bytes = b"0123456789abcdef", iterations: int = 4096
) -> Answer:
    """An application answering every NeedCredentials kind from ``users`` (name: password),
    comparing names after SASLprep as RFC 4013 intends."""

    def lookup(name: str) -> str | None:
        prepared = _prepared(name)
        for user, password in users.items():
            if prepared is not None and _prepared(user) == prepared:
                return password
        return None

    def answer(step: NeedCredentials) -> CredentialAnswer:
        if isinstance(step, VerifyPassword):
            stored = lookup(step.authcid)
            if stored is None:
                return Verdict.UNKNOWN_USER
            return passwords_match(step.password, stored)
        if isinstance(step, LookupPassword):
            stored = users.get(step.authcid)  # CRAM-MD5: no preparation (RFC 2195)
            return Verdict.UNKNOWN_USER if stored is None else StoredPassword(password=stored)
        if isinstance(step, LookupScramKeys):
            stored = lookup(step.authcid)
            if stored is None:
                return Verdict.UNKNOWN_USER
            hash_name: ScramHash = "sha1" if step.mechanism.startswith("SCRAM-SHA-1") else "sha256"
            return scram_stored_keys(stored, salt, iterations, hash_name)
        assert isinstance(step, VerifyToken)
        return step.token == users.get(step.authcid or step.authzid or "")

    return answer


def scram_server(
    mechanism: str = "SCRAM-SHA-256", channel_bindings: tuple[ChannelBinding, ...] = ()
) -> ScramServer:
    return ScramServer(
        mechanism=mechanism, nonce="srvnonce", mock_key=MOCK_KEY, channel_bindings=channel_bindings
    )


ALL = (
    "PLAIN",
    "LOGIN",
    "CRAM-MD5",
    "XOAUTH2",
    "OAUTHBEARER",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-256-PLUS",
)
CB = ChannelBinding(type=TLS_SERVER_END_POINT, data=CB_DATA)


def pair(
    mechanism: str,
    *,
    username: str = "user",
    password: str = "pencil",
    token: str = "tok3n",
    authzid: str | None = None,
) -> tuple[ClientMechanism, ServerMechanism]:
    """A client and a server for ``mechanism``; -PLUS variants share the binding CB."""
    plus = mechanism.endswith("-PLUS")
    client = client_mechanism(
        mechanism,
        username=username,
        password=password,
        token=token,
        authzid=authzid,
        channel_binding=CB if plus else None,
        nonce="clinonce",
    )
    server = server_mechanism(
        mechanism,
        hostname="mx.example.org",
        timestamp=1700000000,
        nonce="98765" if mechanism == "CRAM-MD5" else "srvnonce",
        channel_bindings=(CB,) if plus else (),
        mock_key=MOCK_KEY,
    )
    return client, server


USERS = {"user": "pencil"}
TOKENS = {"user": "tok3n"}


def answer_for(mechanism: str) -> Answer:
    return database(TOKENS if mechanism in ("XOAUTH2", "OAUTHBEARER") else USERS)


# ------------------------------------------------------------------------- RFC vectors


def test_scram_sha1_rfc5802_client_messages() -> None:
    # RFC 5802 §5: the example exchange, client side, message by message.
    c = ScramClient(
        mechanism="SCRAM-SHA-1",
        username="user",
        password="pencil",
        nonce="fyko+d2lbbFgONRv9qkxdawL",
    )
    assert c.initial_response() == b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
    assert (
        c.respond(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
        == b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
    )
    assert not c.done
    assert c.respond(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=") == b""
    assert c.done
    c.finish()


def test_scram_sha1_rfc5802_server_messages() -> None:
    # RFC 5802 §5: the same exchange, server side, from stored keys only (§3).
    s = ScramServer(mechanism="SCRAM-SHA-1", nonce="3rfcNHYJY1ZVvWVs7j", mock_key=MOCK_KEY)
    step = s.start(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL")
    assert step == LookupScramKeys(mechanism="SCRAM-SHA-1", authcid="user", authzid=None)
    step = s.supply(scram_stored_keys("pencil", b64d("QSXCR+Q6sek8bf92"), 4096, "sha1"))
    assert step == Challenge(
        data=b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
    )
    step = s.receive(
        b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
    )
    # RFC 4954 §4: SMTP has no additional data with success, so server-final is a 334.
    assert step == Challenge(data=b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
    assert s.receive(b"") == Success(mechanism="SCRAM-SHA-1", authcid="user", authzid=None)
    assert s.done


def test_scram_sha256_rfc7677_client_messages() -> None:
    # RFC 7677 §3: the SCRAM-SHA-256 example exchange, client side.
    c = ScramClient(
        mechanism="SCRAM-SHA-256", username="user", password="pencil", nonce="rOprNGfwEbeRWgbNEkqO"
    )
    assert c.initial_response() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    assert c.respond(
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    ) == (
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    assert c.respond(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=") == b""
    assert c.done
    c.finish()


def test_scram_sha256_rfc7677_server_messages() -> None:
    # RFC 7677 §3: the same exchange, server side.
    s = ScramServer(
        mechanism="SCRAM-SHA-256", nonce="%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", mock_key=MOCK_KEY
    )
    assert isinstance(s.start(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"), LookupScramKeys)
    step = s.supply(scram_stored_keys("pencil", b64d("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096))
    assert step == Challenge(
        data=b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    )
    step = s.receive(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    assert step == Challenge(data=b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    assert s.receive(b"") == Success(mechanism="SCRAM-SHA-256", authcid="user", authzid=None)


def test_scram_final_data_with_success() -> None:
    # RFC 4422 §3.6 / RFC 5802 §5: where the protocol carries additional data with success,
    # the server-final message rides on the outcome and the client checks it in finish().
    s = ScramServer(
        mechanism="SCRAM-SHA-256",
        nonce="%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        mock_key=MOCK_KEY,
        final_data_with_success=True,
    )
    c = ScramClient(
        mechanism="SCRAM-SHA-256", username="user", password="pencil", nonce="rOprNGfwEbeRWgbNEkqO"
    )
    s.start(c.initial_response())
    step = s.supply(scram_stored_keys("pencil", b64d("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096))
    assert isinstance(step, Challenge)
    step = s.receive(c.respond(step.data))
    assert isinstance(step, Success)
    assert step.final_data == b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    assert not c.done
    c.finish(step.final_data)
    assert c.done


def test_scram_stored_keys_match_rfc_derivation_and_scramp() -> None:
    # RFC 5802 §3: StoredKey = H(ClientKey), ServerKey = HMAC(SaltedPassword, "Server Key");
    # an independent implementation must derive the same bytes.
    salt = b64d("W22ZaJ0SNY7soEsUEjb6gQ==")
    ours = scram_stored_keys("pencil", salt, 4096, "sha256")
    theirs = scramp.ScramMechanism("SCRAM-SHA-256").make_auth_info(
        "pencil", iteration_count=4096, salt=salt
    )
    assert (ours.salt, ours.stored_key, ours.server_key, ours.iterations) == theirs
    assert len(scram_stored_keys("pencil", salt, 4096, "sha1").stored_key) == 20


def test_cram_md5_rfc2195_vector() -> None:
    # RFC 2195 §2: challenge <1896.697170952@postoffice.reston.mci.net>, user tim, password
    # tanstaaftanstaaf -> "tim b913a602c7eda7a495b4e6e7334d3890", and the base64 forms.
    challenge = cram_md5_challenge(
        nonce=1896, timestamp=697170952, hostname="postoffice.reston.mci.net"
    )
    assert challenge == b"<1896.697170952@postoffice.reston.mci.net>"
    assert base64.b64encode(challenge) == (
        b"PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"
    )
    client = CramMD5Client(username="tim", password="tanstaaftanstaaf")
    assert client.initial_response() is None  # server-first
    response = client.respond(challenge)
    assert response == b"tim b913a602c7eda7a495b4e6e7334d3890"
    assert base64.b64encode(response) == b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"
    server = CramMD5Server(hostname="postoffice.reston.mci.net", timestamp=697170952, nonce=1896)
    assert server.start(None) == Challenge(data=challenge)
    assert server.receive(response) == LookupPassword(
        mechanism="CRAM-MD5", authcid="tim", authzid=None
    )
    step = server.supply(StoredPassword(password="tanstaaftanstaaf"))
    assert step == Success(mechanism="CRAM-MD5", authcid="tim", authzid=None)


def test_cram_md5_server_accepts_the_raw_hmac_key() -> None:
    # RFC 2195 §2 / RFC 2104: the key is the password's bytes; bytes are used as they are.
    server = CramMD5Server(hostname="postoffice.reston.mci.net", timestamp=697170952, nonce=1896)
    server.start()
    server.receive(b"tim b913a602c7eda7a495b4e6e7334d3890")
    assert isinstance(server.supply(StoredPassword(password=b"tanstaaftanstaaf")), Success)


@pytest.mark.parametrize(
    ("authzid", "authcid", "password", "wire"),
    [
        # RFC 4616 §4 examples.
        (None, "tim", "tanstaaftanstaaf", b"\0tim\0tanstaaftanstaaf"),
        ("Ursel", "Kurt", "xipj3plmq", b"Ursel\0Kurt\0xipj3plmq"),
        # RFC 4954 §4.1: "AUTH PLAIN dGVzdAB0ZXN0ADEyMzQ=".
        ("test", "test", "1234", b64d("dGVzdAB0ZXN0ADEyMzQ=")),
    ],
)
def test_plain_rfc4616_examples(
    authzid: str | None, authcid: str, password: str, wire: bytes
) -> None:
    client = PlainClient(username=authcid, password=password, authzid=authzid)
    assert client.initial_response() == wire
    assert PlainServer().start(wire) == VerifyPassword(
        mechanism="PLAIN", authcid=authcid, authzid=authzid, password=password
    )


RFC7628_IR = (
    "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9"
    "QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB"
)
RFC7628_ERROR = (
    "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3BlIiwib3BlbmlkLW"
    "NvbmZpZ3VyYXRpb24iOiJodHRwczovL2V4YW1wbGUuY29tLy53ZWxsLWtub3duL29wZW5pZC1jb25m"
    "aWd1cmF0aW9uIn0="
)
RFC7628_TOKEN = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="


def test_oauthbearer_rfc7628_success_vector() -> None:
    # RFC 7628 §4.1: the initial client response, byte for byte, both roles.
    client = OAuthBearerClient(
        token=RFC7628_TOKEN, authzid="user@example.com", host="server.example.com", port=143
    )
    assert base64.b64encode(client.initial_response()).decode() == RFC7628_IR
    step = OAuthBearerServer().start(b64d(RFC7628_IR))
    assert step == VerifyToken(
        mechanism="OAUTHBEARER",
        authcid=None,
        authzid="user@example.com",
        token=RFC7628_TOKEN,
        host="server.example.com",
        port=143,
    )


def test_oauthbearer_rfc7628_failure_vector() -> None:
    # RFC 7628 §4.3 (SMTP): the server's JSON error challenge, the client's %x01 ("AQ=="),
    # then 535 5.7.8.
    server = OAuthBearerServer()
    server.start(b64d(RFC7628_IR))
    step = server.supply(
        TokenRejected(
            scope="example_scope",
            openid_configuration="https://example.com/.well-known/openid-configuration",
        )
    )
    assert isinstance(step, Challenge)
    assert base64.b64encode(step.data).decode() == RFC7628_ERROR
    client = OAuthBearerClient(
        token=RFC7628_TOKEN, authzid="user@example.com", host="server.example.com", port=143
    )
    client.initial_response()
    ack = client.respond(step.data)
    assert base64.b64encode(ack) == b"AQ=="
    assert client.error == OAuthErrorDetails(
        status="invalid_token",
        scope="example_scope",
        openid_configuration="https://example.com/.well-known/openid-configuration",
        raw=step.data,
    )
    final = server.receive(ack)
    assert isinstance(final, Failure)
    assert (final.reply_hint.code, str(final.reply_hint.enhanced)) == (535, "5.7.8")
    with pytest.raises(SASLProtocolError):
        client.finish()  # a 235 after an error challenge is not believable


def test_xoauth2_google_vector_and_error_step() -> None:
    # Google XOAUTH2 protocol: "user=...^Aauth=Bearer ...^A^A"; on failure a 334 with a JSON
    # error, an empty client response, then 535.
    wire = b64d(
        "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk"
        "52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
    )
    token = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
    client = XOAuth2Client(username="someuser@example.com", token=token)
    assert client.initial_response() == wire
    server = XOAuth2Server()
    assert server.start(wire) == VerifyToken(
        mechanism="XOAUTH2", authcid="someuser@example.com", authzid=None, token=token
    )
    step = server.supply(TokenRejected(scope="https://mail.google.com/"))
    assert isinstance(step, Challenge)
    assert json.loads(step.data) == {
        "status": "401",
        "schemes": "bearer",
        "scope": "https://mail.google.com/",
    }
    assert client.respond(step.data) == b""
    assert client.error is not None and client.error.status == "401"
    assert client.error.schemes == "bearer"
    final = server.receive(b"")
    assert isinstance(final, Failure) and final.reply_hint.code == 535


@pytest.mark.parametrize(
    ("text", "prepared"),
    [
        ("I\u00adX", "IX"),  # RFC 4013 §3 #1: SOFT HYPHEN mapped to nothing
        ("user", "user"),  # #2: no transformation
        ("USER", "USER"),  # #3: case preserved
        ("\u00aa", "a"),  # #4: NFKC
        ("\u2168", "IX"),  # #5: NFKC
        ("a\u00a0b", "a b"),  # RFC 4013 §2.1: non-ASCII space mapped to SPACE
        ("\u05d0\u05d1", "\u05d0\u05d1"),  # RFC 3454 §6: all-RandALCat is fine
        ("", ""),
    ],
)
def test_saslprep_rfc4013_examples(text: str, prepared: str) -> None:
    assert saslprep(text) == prepared


@pytest.mark.parametrize(
    "text",
    [
        "\u0007",  # RFC 4013 §3 #6: prohibited character
        "\u0627\u0031",  # RFC 4013 §3 #7: bidi check (RandALCat not last)
        "\u05d0a\u05d1",  # RFC 3454 §6: RandALCat and LCat mixed
        "a\u200eb",  # RFC 3454 C.8: LEFT-TO-RIGHT MARK
        "\ue000",  # C.3 private use
        "\ufffe",  # C.4 non-character
        "\ud800",  # C.5 surrogate
        "a\x00b",  # C.2.1 control
        "\u0221",  # A.1: unassigned in Unicode 3.2 (stored strings, RFC 5802 §2.2)
    ],
)
def test_saslprep_rejects(text: str) -> None:
    with pytest.raises(SASLprepError):
        saslprep(text)


def test_saslprep_allow_unassigned_for_queries() -> None:
    # RFC 3454 §7: queries may contain unassigned code points.
    assert saslprep("\u0221", allow_unassigned=True) == "\u0221"


@settings(max_examples=300)
@given(st.text(max_size=12))
def test_saslprep_agrees_with_scramp(text: str) -> None:
    # RFC 4013: an independent implementation prepares the same way (or fails alike).
    try:
        theirs: str | None = scramp_saslprep(text)
    except scramp.ScramException:
        theirs = None
    try:
        ours: str | None = saslprep(text)
    except SASLprepError:
        ours = None
    assert ours == theirs


# ------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("mechanism", ALL)
@pytest.mark.parametrize("initial", [True, False])
def test_round_trip(mechanism: str, initial: bool) -> None:
    # RFC 4954 §4 / RFC 4422 §5: with or without an initial response, each mechanism
    # authenticates (client-first mechanisms answer the empty challenge with their first
    # message).
    client, server = pair(mechanism)
    outcome = drive(client, server, answer_for(mechanism), initial=initial)
    assert outcome.ok, outcome.step
    assert isinstance(outcome.step, Success)
    assert outcome.step.reply_hint.code == 235  # RFC 4954 §6
    expected_authcid = None if mechanism == "OAUTHBEARER" else "user"
    assert outcome.step.authcid == expected_authcid
    assert client.done and server.done


def test_round_trip_transcript_for_smtp() -> None:
    # RFC 4954 §4: SCRAM in SMTP is AUTH+IR, 334 server-first, client-final, 334 server-final,
    # an empty response, then 235.
    client, server = pair("SCRAM-SHA-256")
    outcome = drive(client, server, answer_for("SCRAM-SHA-256"))
    kinds = [(who, data[:2] if data else data) for who, data in outcome.transcript]
    assert kinds == [("C", b"n,"), ("S", b"r="), ("C", b"c="), ("S", b"v="), ("C", b"")]


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_authzid_round_trip(mechanism: str) -> None:
    # RFC 4616 §2 / RFC 5802 §5.1 "a=": the authorization identity reaches the server, with
    # "=" and "," escaped on the SCRAM wire.
    client, server = pair(mechanism, authzid="admin=x,y")
    seen: list[str | None] = []

    def answer(step: NeedCredentials) -> CredentialAnswer:
        seen.append(step.authzid)
        return database(USERS)(step)

    outcome = drive(client, server, answer)
    assert outcome.ok
    assert isinstance(outcome.step, Success) and outcome.step.authzid == "admin=x,y"
    assert seen == ["admin=x,y"]
    if mechanism == "SCRAM-SHA-256":
        assert outcome.transcript[0][1] == b"n,a=admin=3Dx=2Cy,n=user,r=clinonce"


def test_scram_username_escaping() -> None:
    # RFC 5802 §5.1: "=" and "," in saslname are sent as "=3D" and "=2C".
    client, server = pair("SCRAM-SHA-256", username="a=b,c")
    assert client.initial_response() == b"n,,n=a=3Db=2Cc,r=clinonce"
    outcome = drive(client, server, database({"a=b,c": "pencil"}))
    assert outcome.ok
    assert isinstance(outcome.step, Success) and outcome.step.authcid == "a=b,c"


def test_scram_saslprep_applies_to_username_and_password() -> None:
    # RFC 5802 §2.2 and §5.1: Normalize() is SASLprep; "I<SOFT HYPHEN>X" equals "IX".
    client, server = pair("SCRAM-SHA-1", username="I\u00adX", password="p\u00aass")
    assert client.initial_response() == b"n,,n=IX,r=clinonce"
    assert drive(client, server, database({"IX": "pass"})).ok


def test_plain_verify_password_callback() -> None:
    # RFC 4616 §2: the server verifies (authcid, passwd) and authorizes authzid; here with
    # the callback instead of VerifyPassword steps.
    calls: list[tuple[str, str | None, str]] = []

    def verify(authcid: str, authzid: str | None, password: str) -> bool:
        calls.append((authcid, authzid, password))
        return password == "pencil"

    for password, ok in (("pencil", True), ("wrong", False)):
        step = PlainServer(verify_password=verify).start(b"\0user\0" + password.encode())
        assert isinstance(step, Success if ok else Failure)
    assert calls == [("user", None, "pencil"), ("user", None, "wrong")]
    login = LoginServer(verify_password=lambda a, z, p: Verdict.NOT_AUTHORIZED)
    login.start(b"user")
    step = login.receive(b"pencil")
    assert isinstance(step, Failure) and step.reason is FailureReason.NOT_AUTHORIZED


@pytest.mark.parametrize(
    ("username_prompt", "password_prompt"),
    [
        (b"Username:", b"Password:"),  # de-facto (what most servers send)
        (b"username", b"password"),
        (b"User Name\0", b"Password\0"),  # draft-murchison-sasl-login-00 §2
        (b"User Name", b"Password"),
        (b"", b""),  # empty challenges: go by position
        (b"Login:", b"Passwd:"),
        (b"whatever", b"something else"),  # unknown text: go by position
    ],
)
def test_login_client_tolerates_prompt_variants(
    username_prompt: bytes, password_prompt: bytes
) -> None:
    # draft-murchison-sasl-login-00 §2: user name first, then password, whatever the text.
    client = LoginClient(username="user", password="pencil")
    assert client.initial_response() is None
    assert client.respond(username_prompt) == b"user"
    assert not client.done
    assert client.respond(password_prompt) == b"pencil"
    assert client.done
    with pytest.raises(SASLProtocolError):
        client.respond(b"Password:")  # a third prompt


def test_login_client_follows_recognised_prompts() -> None:
    # A server that asks for the password by name gets the password, not the user name.
    client = LoginClient(username="user", password="pencil")
    assert client.respond(b"Password:") == b"pencil"
    assert client.respond(b"") == b"user"
    assert client.done
    # Asking for the same thing twice is a protocol error (the SMTP layer then sends "*").
    again = LoginClient(username="user", password="pencil")
    again.respond(b"Username:")
    with pytest.raises(SASLProtocolError):
        again.respond(b"Username:")


def test_login_server_accepts_username_as_initial_response() -> None:
    # De-facto LOGIN: "AUTH LOGIN <base64 user name>" skips the first prompt.
    server = LoginServer()
    assert server.start(b"user") == Challenge(data=b"Password:")
    assert server.receive(b"pencil") == VerifyPassword(
        mechanism="LOGIN", authcid="user", authzid=None, password="pencil"
    )


# ------------------------------------------------------------------------ failure paths


def assert_failure(outcome: Outcome, reason: FailureReason, code: int, enhanced: str) -> None:
    assert isinstance(outcome.step, Failure), outcome.step
    assert outcome.step.reason is reason, outcome.step
    assert outcome.step.reply_hint.code == code
    assert str(outcome.step.reply_hint.enhanced) == enhanced


PASSWORD_MECHS = (
    "PLAIN",
    "LOGIN",
    "CRAM-MD5",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-256-PLUS",
)


@pytest.mark.parametrize("mechanism", PASSWORD_MECHS)
def test_wrong_password(mechanism: str) -> None:
    # RFC 4954 §6: 535 5.7.8 Authentication credentials invalid.
    client, server = pair(mechanism, password="pencil2")
    assert_failure(
        drive(client, server, database(USERS)), FailureReason.CREDENTIALS_INVALID, 535, "5.7.8"
    )


@pytest.mark.parametrize("mechanism", PASSWORD_MECHS)
def test_unknown_user(mechanism: str) -> None:
    # RFC 4954 §6: 535; RFC 5802 §9: SCRAM answers unknown users like known ones until the
    # proof fails.
    client, server = pair(mechanism, username="nobody")
    outcome = drive(client, server, database(USERS))
    assert_failure(outcome, FailureReason.CREDENTIALS_INVALID, 535, "5.7.8")
    if mechanism.startswith("SCRAM"):
        assert [who for who, _ in outcome.transcript] == ["C", "S", "C"]


def test_scram_unknown_user_mock_salt_is_stable() -> None:
    # RFC 5802 §9: a prober must not tell unknown users by a changing salt.
    def server_first(user: str, mock_key: bytes) -> bytes:
        s = ScramServer(nonce="srvnonce", mock_key=mock_key)
        s.start(f"n,,n={user},r=abc".encode())
        step = s.supply(Verdict.UNKNOWN_USER)
        assert isinstance(step, Challenge)
        return step.data

    assert server_first("ghost", b"k1") == server_first("ghost", b"k1")
    assert server_first("ghost", b"k1") != server_first("ghost2", b"k1")
    assert server_first("ghost", b"k1") != server_first("ghost", b"k2")


@pytest.mark.parametrize(
    ("verdict", "reason", "code", "enhanced"),
    [
        (Verdict.NOT_AUTHORIZED, FailureReason.NOT_AUTHORIZED, 535, "5.7.8"),
        (Verdict.TEMPORARY_FAILURE, FailureReason.TEMPORARY_FAILURE, 454, "4.7.0"),
        (Verdict.MECHANISM_TOO_WEAK, FailureReason.MECHANISM_TOO_WEAK, 534, "5.7.9"),
        (Verdict.TRANSITION_NEEDED, FailureReason.TRANSITION_NEEDED, 432, "4.7.12"),
    ],
)
@pytest.mark.parametrize("mechanism", ["PLAIN", "CRAM-MD5", "SCRAM-SHA-256"])
def test_application_verdicts(
    mechanism: str, verdict: Verdict, reason: FailureReason, code: int, enhanced: str
) -> None:
    # RFC 4954 §6: 432, 454, 534, 535 each have their own meaning.
    client, server = pair(mechanism)
    assert_failure(drive(client, server, lambda step: verdict), reason, code, enhanced)


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
@pytest.mark.parametrize(
    ("answer", "reason", "code"),
    [
        (False, FailureReason.CREDENTIALS_INVALID, 535),
        (Verdict.UNKNOWN_USER, FailureReason.CREDENTIALS_INVALID, 535),
        (Verdict.NOT_AUTHORIZED, FailureReason.NOT_AUTHORIZED, 535),
        (TokenRejected(status="invalid_token"), FailureReason.CREDENTIALS_INVALID, 535),
        (Verdict.TEMPORARY_FAILURE, FailureReason.TEMPORARY_FAILURE, 454),
    ],
)
def test_oauth_failures(
    mechanism: str, answer: CredentialAnswer, reason: FailureReason, code: int
) -> None:
    # RFC 7628 §3.2.2-3.2.3: a rejected token gives an error challenge, the client's
    # acknowledgement, then failure; a temporary problem fails at once (RFC 4954 §6: 454).
    client, server = pair(mechanism)
    outcome = drive(client, server, lambda step: answer)
    assert isinstance(outcome.step, Failure)
    assert (outcome.step.reason, outcome.step.reply_hint.code) == (reason, code)
    assert isinstance(client, XOAuth2Client | OAuthBearerClient)
    if code == 535:
        assert client.error is not None
        assert [who for who, _ in outcome.transcript] == ["C", "S", "C"]
    else:
        assert client.error is None


@pytest.mark.parametrize(("mechanism", "bad_ack"), [("XOAUTH2", b"x"), ("OAUTHBEARER", b"")])
def test_oauth_wrong_acknowledgement_still_fails(mechanism: str, bad_ack: bytes) -> None:
    # RFC 7628 §3.2.3: the client must answer the error with %x01; anything else still ends
    # in failure, never success.
    client, server = pair(mechanism)
    server.start(client.initial_response())
    assert isinstance(server.supply(False), Challenge)
    step = server.receive(bad_ack)
    assert isinstance(step, Failure) and step.reply_hint.code == 535
    assert "malformed acknowledgement" in step.message


MALFORMED: list[tuple[str, bytes]] = [
    # RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd
    ("PLAIN", b"user\0pencil"),
    ("PLAIN", b"\0\0pencil"),  # empty authcid
    ("PLAIN", b"\0user\0"),  # empty passwd
    ("PLAIN", b"a\0b\0c\0d"),  # NUL inside a field
    ("PLAIN", b"\0us\xffer\0pencil"),  # not UTF-8
    ("PLAIN", b""),
    # draft-murchison-sasl-login: the user name is text
    ("LOGIN", b""),
    ("LOGIN", b"\xff"),
    ("LOGIN", b"us\0er"),
    # RFC 7628 §3.1: client-resp grammar
    ("OAUTHBEARER", b"n,,\x01auth=Bearer tok\x01"),  # missing final kvsep
    ("OAUTHBEARER", b"p=tls-unique,,\x01auth=Bearer tok\x01\x01"),  # no channel binding
    ("OAUTHBEARER", b"n,,\x01host=x\x01\x01"),  # no auth
    ("OAUTHBEARER", b"n,,\x01auth=Basic dXNlcg==\x01\x01"),  # not Bearer
    ("OAUTHBEARER", b"n,,\x01auth=Bearer a b\x01\x01"),  # not a b64token
    ("OAUTHBEARER", b"n,,\x01auth=Bearer t\x01auth=Bearer t\x01\x01"),  # repeated key
    ("OAUTHBEARER", b"n,,\x01auth=Bearer t\x01port=x\x01\x01"),  # bad port
    ("OAUTHBEARER", b"n,b=x,\x01auth=Bearer t\x01\x01"),  # bad authzid
    ("OAUTHBEARER", b"n,a=b=x,\x01auth=Bearer t\x01\x01"),  # bad saslname escape
    ("OAUTHBEARER", b"\x01"),  # an acknowledgement with nothing to acknowledge
    # Google XOAUTH2 format
    ("XOAUTH2", b"user=u\x01auth=Bearer t\x01"),
    ("XOAUTH2", b"auth=Bearer t\x01\x01"),
    ("XOAUTH2", b"user=u\x01user=v\x01auth=Bearer t\x01\x01"),
    ("XOAUTH2", b"user=u\x01auth=Bearer\x01\x01"),
    # RFC 5802 §7: client-first-message
    ("SCRAM-SHA-256", b"n=user,r=abc"),  # no GS2 header
    ("SCRAM-SHA-256", b"x,,n=user,r=abc"),  # bad cbind flag
    ("SCRAM-SHA-256", b"n,,r=abc,n=user"),  # wrong order
    ("SCRAM-SHA-256", b"n,,n=us=er,r=abc"),  # bad saslname escape (invalid-username-encoding)
    ("SCRAM-SHA-256", b"n,,m=ext,n=user,r=abc"),  # mandatory extension (§5.1)
    ("SCRAM-SHA-256", b"n,,n=user,r=a,b"),  # malformed attribute
    ("SCRAM-SHA-256", b"n,,n=\xe2\x80\x8e,r=abc"),  # SASLprep rejects the name (§5.1)
    ("SCRAM-SHA-256", b"n,,n=\xc2\xad,r=abc"),  # empty after SASLprep
    ("SCRAM-SHA-256", b"n,x,n=user,r=abc"),  # bad authzid
    ("SCRAM-SHA-256", b"n,,n=user,r=\x7f"),  # nonce not printable
    ("SCRAM-SHA-256", b"n,,\xff"),
]


@pytest.mark.parametrize(("mechanism", "message"), MALFORMED)
def test_malformed_client_messages(mechanism: str, message: bytes) -> None:
    # RFC 4954 §4: a malformed response fails the AUTH command with 501 (5.5.2); the server
    # mechanism never raises on peer input.
    server = server_mechanism(mechanism, mock_key=MOCK_KEY)
    first = server.start(None if mechanism == "LOGIN" else message)
    step = server.receive(message) if mechanism == "LOGIN" else first
    assert isinstance(step, Failure), step
    assert step.reason is FailureReason.MALFORMED
    assert (step.reply_hint.code, str(step.reply_hint.enhanced)) == (501, "5.5.2")
    assert server.done


@pytest.mark.parametrize(
    "response",
    [
        b"tim",  # no digest
        b"tim b913a602c7eda7a495b4e6e7334d389",  # 31 digits
        b"tim zz13a602c7eda7a495b4e6e7334d3890",  # not hex
        b" b913a602c7eda7a495b4e6e7334d3890",  # empty user
        b"t\xffm b913a602c7eda7a495b4e6e7334d3890",  # not UTF-8
    ],
)
def test_cram_md5_malformed_response(response: bytes) -> None:
    # RFC 2195 §2: response = user SP digest (32 hex digits).
    server = CramMD5Server(hostname="h.example", timestamp=1, nonce=2)
    server.start()
    step = server.receive(response)
    assert isinstance(step, Failure) and step.reason is FailureReason.MALFORMED


def test_initial_response_to_server_first_mechanism() -> None:
    # RFC 4954 §4: an initial response with a server-first mechanism: 501 5.7.0.
    step = CramMD5Server(hostname="h.example", timestamp=1, nonce=2).start(b"tim x")
    assert isinstance(step, Failure)
    assert (step.reply_hint.code, str(step.reply_hint.enhanced)) == (501, "5.7.0")


def scram_to_final(mechanism: str = "SCRAM-SHA-256") -> tuple[ScramClient, ScramServer, bytes]:
    """A SCRAM pair advanced to the client-final-message; returns it."""
    client = ScramClient(mechanism=mechanism, username="user", password="pencil", nonce="clinonce")
    server = scram_server(mechanism)
    server.start(client.initial_response())
    step = server.supply(
        database(USERS)(LookupScramKeys(mechanism=mechanism, authcid="user", authzid=None))
    )
    assert isinstance(step, Challenge)
    return client, server, client.respond(step.data)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        # RFC 5802 §5.1 r=: the nonce must be the combined nonce the server sent.
        (
            lambda m: m.replace(b"r=clinoncesrvnonce", b"r=clinonceXXXnonce"),
            FailureReason.MALFORMED,
        ),
        # RFC 5802 §5.1 c=: the GS2 header echoed back (tampering = binding mismatch).
        (lambda m: m.replace(b"c=biws", b"c=eSws"), FailureReason.CHANNEL_BINDING_MISMATCH),
        (lambda m: m.replace(b"c=biws", b"c=!!!!"), FailureReason.CHANNEL_BINDING_MISMATCH),
        # RFC 5802 §5.1 p=: a proof that does not verify.
        (lambda m: m[:-5] + b"AAAA=", FailureReason.CREDENTIALS_INVALID),
        (lambda m: m.split(b",p=")[0], FailureReason.MALFORMED),  # no proof
        (lambda m: m.split(b",p=")[0] + b",p=AAAA", FailureReason.MALFORMED),  # short proof
        (lambda m: m.split(b",p=")[0] + b",p=***", FailureReason.MALFORMED),  # not base64
        (lambda m: b"r=x," + m, FailureReason.MALFORMED),  # attribute order
        (lambda m: b"\xff" + m, FailureReason.MALFORMED),
    ],
)
def test_scram_server_rejects_bad_client_final(
    edit: Callable[[bytes], bytes], reason: FailureReason
) -> None:
    _, server, final = scram_to_final()
    step = server.receive(edit(final))
    assert isinstance(step, Failure) and step.reason is reason, step


def test_scram_server_refuses_mandatory_extensions() -> None:
    # RFC 5802 §5.1: "m" is reserved for mandatory extensions the server must refuse
    # (server-error "extensions-not-supported").
    step = scram_server().start(b"n,,m=ext,n=user,r=abc")
    assert isinstance(step, Failure) and "extensions-not-supported" in step.message


def test_scram_server_accepts_unknown_extensions() -> None:
    # RFC 5802 §5.1/§7: extensions other than "m" are ignored.
    _, server, final = scram_to_final()
    head, proof = final.split(b",p=")
    step = server.receive(head + b",x=ext,p=" + proof)
    # The extension is part of AuthMessage, so the client's proof no longer verifies, but the
    # message itself is accepted (not MALFORMED).
    assert isinstance(step, Failure) and step.reason is FailureReason.CREDENTIALS_INVALID


@pytest.mark.parametrize(
    ("server_first", "error"),
    [
        # RFC 5802 §5.1: the server nonce must start with the client nonce...
        (b"r=otherXYZ123,s=QSXCR+Q6sek8bf92,i=4096", SASLProtocolError),
        # ... and be longer than it.
        (b"r=clinonce,s=QSXCR+Q6sek8bf92,i=4096", SASLProtocolError),
        (b"r=clinonceX,s=***,i=4096", SASLProtocolError),  # salt not base64
        (b"r=clinonceX,s=QSXCR+Q6sek8bf92,i=0", SASLProtocolError),  # posit-number
        (b"r=clinonceX,s=QSXCR+Q6sek8bf92,i=4095", SASLProtocolError),  # below the minimum
        (b"r=clinonceX,s=QSXCR+Q6sek8bf92,i=99999999999", SASLProtocolError),  # DoS bound
        (b"r=clinonceX,i=4096,s=QSXCR+Q6sek8bf92", SASLProtocolError),  # order
        (b"m=x,r=clinonceX,s=QSXCR+Q6sek8bf92,i=4096", SASLProtocolError),  # mandatory ext
        (b"e=other-error", AuthenticationRejected),  # RFC 5802 §7 server-error
        (b"\xff", SASLProtocolError),
        (b"garbage", SASLProtocolError),
    ],
)
def test_scram_client_rejects_bad_server_first(server_first: bytes, error: type[SASLError]) -> None:
    client = ScramClient(username="user", password="pencil", nonce="clinonce")
    client.initial_response()
    with pytest.raises(error):
        client.respond(server_first)


def test_scram_client_min_iterations_is_configurable() -> None:
    client = ScramClient(username="u", password="p", nonce="clinonce", min_iterations=1)
    client.initial_response()
    assert client.respond(b"r=clinonceX,s=QSXCR+Q6sek8bf92,i=1").startswith(b"c=biws,")


def test_bad_server_signature_then_cancel() -> None:
    # RFC 5802 §5: the client verifies ServerSignature; a wrong one is a mutual
    # authentication failure and the client cancels with "*" -> 501 (RFC 4954 §4).
    client, server, final = scram_to_final()
    step = server.receive(final)
    assert isinstance(step, Challenge)
    forged = b"v=" + base64.b64encode(b"\0" * 32)
    with pytest.raises(MutualAuthenticationError):
        client.respond(forged)
    assert not client.done
    with pytest.raises(MutualAuthenticationError):
        client.finish()
    cancelled = server.cancel()
    assert (cancelled.reason, cancelled.reply_hint.code) == (FailureReason.CANCELLED, 501)


@pytest.mark.parametrize("server_final", [b"v=***", b"x=1", b"", b"\xff"])
def test_scram_client_rejects_malformed_server_final(server_final: bytes) -> None:
    client, _, _ = scram_to_final()
    with pytest.raises(SASLProtocolError):
        client.respond(server_final)


def test_scram_server_error_in_server_final() -> None:
    # RFC 5802 §7: server-final-message = server-error / verifier.
    client, _, _ = scram_to_final()
    with pytest.raises(AuthenticationRejected) as info:
        client.respond(b"e=invalid-proof")
    assert info.value.server_error == "invalid-proof"


def test_success_without_server_signature_is_rejected() -> None:
    # RFC 5802 §5/§9: a 235 before the server proved itself must not be believed.
    client, _, _ = scram_to_final()
    with pytest.raises(MutualAuthenticationError):
        client.finish()
    fresh = ScramClient(username="user", password="pencil", nonce="clinonce")
    fresh.initial_response()
    with pytest.raises(MutualAuthenticationError):
        fresh.finish()


def test_scram_server_wants_empty_response_after_server_final() -> None:
    # RFC 4422 §5: the answer to the final challenge (additional data) is empty.
    _, server, final = scram_to_final()
    server.receive(final)
    step = server.receive(b"junk")
    assert isinstance(step, Failure) and step.reason is FailureReason.MALFORMED


# ----------------------------------------------------------------- channel binding


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"])
@pytest.mark.parametrize("cb_type", [TLS_SERVER_END_POINT, TLS_EXPORTER])
def test_plus_gs2_header_and_cbind_input(mechanism: str, cb_type: str) -> None:
    # RFC 5802 §6-7: flag "p=<cb-name>"; c= is base64(gs2-header + cbind-data).
    cb = ChannelBinding(type=cb_type, data=CB_DATA)
    client = ScramClient(
        mechanism=mechanism,
        username="user",
        password="pencil",
        nonce="clinonce",
        channel_binding=cb,
    )
    assert client.initial_response() == f"p={cb_type},,n=user,r=clinonce".encode()
    server = scram_server(mechanism, channel_bindings=(cb,))
    outcome = drive(client, server, database(USERS))
    assert outcome.ok
    assert outcome.transcript[2][1] is not None
    c_attr = outcome.transcript[2][1].split(b",")[0]
    assert b64d(c_attr[2:]) == f"p={cb_type},,".encode() + CB_DATA


def test_channel_binding_data_mismatch() -> None:
    # RFC 5802 §6: different binding data (e.g. a MITM terminating TLS) fails (535).
    client = ScramClient(
        mechanism="SCRAM-SHA-256-PLUS",
        username="user",
        password="pencil",
        nonce="clinonce",
        channel_binding=ChannelBinding(type=TLS_EXPORTER, data=b"x" * 32),
    )
    server = scram_server(
        "SCRAM-SHA-256-PLUS", channel_bindings=(ChannelBinding(type=TLS_EXPORTER, data=CB_DATA),)
    )
    assert_failure(
        drive(client, server, database(USERS)), FailureReason.CHANNEL_BINDING_MISMATCH, 535, "5.7.8"
    )


@pytest.mark.parametrize(
    ("client_mech", "client_cb", "server_mech", "server_cbs"),
    [
        # RFC 5802 §6: "y" while the server advertised -PLUS: a downgrade.
        ("SCRAM-SHA-256", CB, "SCRAM-SHA-256", (CB,)),
        # A -PLUS server requires "p=".
        ("SCRAM-SHA-256", None, "SCRAM-SHA-256-PLUS", (CB,)),
        ("SCRAM-SHA-256", CB, "SCRAM-SHA-256-PLUS", (CB,)),
        # "p=" with a mechanism name without -PLUS.
        ("SCRAM-SHA-256-PLUS", CB, "SCRAM-SHA-256", (CB,)),
        # A binding type the server does not have (unsupported-channel-binding-type).
        (
            "SCRAM-SHA-256-PLUS",
            ChannelBinding(type=TLS_EXPORTER, data=CB_DATA),
            "SCRAM-SHA-256-PLUS",
            (CB,),
        ),
    ],
)
def test_channel_binding_flag_mismatches(
    client_mech: str,
    client_cb: ChannelBinding | None,
    server_mech: str,
    server_cbs: tuple[ChannelBinding, ...],
) -> None:
    client = ScramClient(
        mechanism=client_mech,
        username="user",
        password="pencil",
        nonce="clinonce",
        channel_binding=client_cb,
    )
    server = scram_server(server_mech, channel_bindings=server_cbs)
    step = server.start(client.initial_response())
    assert isinstance(step, Failure)
    assert step.reason is FailureReason.CHANNEL_BINDING_MISMATCH


def test_y_flag_accepted_when_server_has_no_binding() -> None:
    # RFC 5802 §6: "y" = client supports binding, server did not advertise -PLUS: fine.
    client = ScramClient(username="user", password="pencil", nonce="clinonce", channel_binding=CB)
    assert client.initial_response().startswith(b"y,,")
    assert drive(client, scram_server(), database(USERS)).ok


# --------------------------------------------------------------------------- cancel


@pytest.mark.parametrize("mechanism", ALL)
def test_client_cancels(mechanism: str) -> None:
    # RFC 4954 §4: "*" ends the exchange with 501; the mechanism is then over.
    _, server = pair(mechanism)
    step = server.start(None)
    assert isinstance(step, Challenge)
    failure = server.cancel()
    assert (failure.reason, failure.reply_hint.code) == (FailureReason.CANCELLED, 501)
    assert str(failure.reply_hint.enhanced) == "5.7.0"
    assert server.done
    with pytest.raises(SASLStateError):
        server.receive(b"")
    with pytest.raises(SASLStateError):
        server.cancel()


def test_server_method_order_is_enforced() -> None:
    server = PlainServer()
    with pytest.raises(SASLStateError):
        server.receive(b"")  # before start()
    server.start(None)
    with pytest.raises(SASLStateError):
        server.start(None)
    with pytest.raises(SASLStateError):
        server.supply(True)  # nothing was asked
    assert isinstance(server.receive(b"\0user\0pencil"), VerifyPassword)
    with pytest.raises(SASLStateError):
        server.receive(b"")  # credentials are awaited
    with pytest.raises(TypeError):
        server.supply(StoredPassword(password="x"))
    assert isinstance(server.supply(True), Success)
    with pytest.raises(SASLStateError):
        server.supply(True)


@pytest.mark.parametrize(
    ("mechanism", "answer"),
    [
        ("SCRAM-SHA-256", True),
        ("SCRAM-SHA-256", StoredPassword(password="p")),
        ("CRAM-MD5", Verdict.OK),
        ("CRAM-MD5", ScramStoredKeys(salt=b"s", iterations=1, stored_key=b"k", server_key=b"k")),
        ("XOAUTH2", StoredPassword(password="p")),
    ],
)
def test_wrong_answer_type_raises(mechanism: str, answer: CredentialAnswer) -> None:
    client, server = pair(mechanism)
    step = server.start(client.initial_response())
    if isinstance(step, Challenge):
        step = server.receive(client.respond(step.data))
    assert isinstance(step, NeedCredentials)
    with pytest.raises(TypeError):
        server.supply(answer)


def test_scram_keys_of_the_wrong_hash_raise() -> None:
    server = scram_server("SCRAM-SHA-256")
    server.start(b"n,,n=user,r=abc")
    with pytest.raises(ValueError, match="32-byte"):
        server.supply(scram_stored_keys("pencil", b"salt", 4096, "sha1"))


def test_client_protocol_errors() -> None:
    # Challenges a mechanism cannot accept raise, so the SMTP layer sends "*".
    plain = PlainClient(username="u", password="p")
    with pytest.raises(SASLProtocolError):
        plain.respond(b"unexpected")  # RFC 4616: PLAIN has no server challenge
    assert plain.respond(b"") == b"\0u\0p"  # RFC 4422 §5: empty challenge = send it now
    with pytest.raises(SASLProtocolError):
        plain.respond(b"")
    cram = CramMD5Client(username="u", password="p")
    with pytest.raises(SASLProtocolError):
        cram.respond(b"")
    cram.respond(b"<1.2@h>")
    with pytest.raises(SASLProtocolError):
        cram.respond(b"<1.2@h>")
    scram = ScramClient(username="u", password="p", nonce="n")
    with pytest.raises(SASLProtocolError):
        scram.respond(b"r=nX,s=QSXCR+Q6sek8bf92,i=4096")  # before client-first
    assert scram.respond(b"") == b"n,,n=u,r=n"  # RFC 4422 §5: the empty challenge
    with pytest.raises(SASLProtocolError):
        scram.respond(b"")  # ... but only once
    oauth = XOAuth2Client(username="u", token="t")
    oauth.initial_response()
    oauth.respond(b"{}")
    with pytest.raises(SASLProtocolError):
        oauth.respond(b"{}")
    login = LoginClient(username="u", password="p")
    with pytest.raises(SASLProtocolError):
        login.finish()  # 235 before the password was even asked
    with pytest.raises(SASLProtocolError):
        PlainClient(username="u", password="p").finish(b"data")


def test_oauth_error_details_tolerate_garbage() -> None:
    assert OAuthErrorDetails.parse(b"not json") == OAuthErrorDetails(raw=b"not json")
    assert OAuthErrorDetails.parse(b"[1]") == OAuthErrorDetails(raw=b"[1]")
    assert OAuthErrorDetails.parse(b'{"status": 1}').status is None


# ----------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    "build",
    [
        lambda: PlainClient(username="", password="p"),  # RFC 4616 §2: authcid = 1*SAFE
        lambda: PlainClient(username="u", password=""),  # passwd = 1*SAFE
        lambda: PlainClient(username="u\0x", password="p"),  # SAFE excludes NUL
        lambda: PlainClient(username="u", password="p", authzid="a\0"),
        lambda: PlainClient(username="u", password="\ud800"),  # not UTF-8 encodable
        lambda: LoginClient(username="", password="p"),
        lambda: CramMD5Client(username="", password="p"),
        lambda: XOAuth2Client(username="u\x01", token="t"),
        lambda: XOAuth2Client(username="u", token="t\x01auth=x"),  # RFC 6750 b64token
        lambda: OAuthBearerClient(token="t t"),
        lambda: OAuthBearerClient(token="t", port=70000),
        lambda: OAuthBearerClient(token="t", host="a b"),
        lambda: ScramClient(username="u", password="p", nonce="a,b"),  # RFC 5802 §7 printable
        lambda: ScramClient(username="u", password="p", nonce=""),
        lambda: ScramClient(username="\u0007", password="p", nonce="n"),  # SASLprep
        lambda: ScramClient(username="\u00ad", password="p", nonce="n"),  # empty after SASLprep
        lambda: ScramClient(username="u", password="\u0627\u0031", nonce="n"),
        lambda: ScramClient(
            mechanism="SCRAM-SHA-256-PLUS", username="u", password="p", nonce="n"
        ),  # -PLUS without binding data
        lambda: ScramClient(mechanism="SCRAM-MD5", username="u", password="p", nonce="n"),
        lambda: ScramServer(nonce="n", mock_key=b""),
        lambda: ScramServer(nonce="a,b", mock_key=b"k"),
        lambda: ScramServer(mechanism="SCRAM-SHA-1-PLUS", nonce="n", mock_key=b"k"),
        lambda: cram_md5_challenge(nonce="12a", timestamp=1, hostname="h"),
        lambda: cram_md5_challenge(nonce=1, timestamp=-1, hostname="h"),
        lambda: cram_md5_challenge(nonce=1, timestamp=1, hostname="a>b"),
        lambda: ChannelBinding(type="bad type", data=b"x"),  # RFC 5056 §7 cb-name
        lambda: ChannelBinding(type=TLS_EXPORTER, data=b""),
        lambda: scram_stored_keys("p", b"", 4096),
        lambda: scram_stored_keys("p", b"salt", 0),
        lambda: scram_stored_keys("p", b"salt", 1, "md5"),  # type: ignore[arg-type]
        lambda: client_mechanism("PLAIN", username="u"),  # no password
        lambda: client_mechanism("XOAUTH2", username="u"),  # no token
        lambda: client_mechanism("LOGIN", username="u", password="p", authzid="z"),
        lambda: server_mechanism("CRAM-MD5"),  # no hostname / timestamp
    ],
)
def test_bad_arguments_raise_value_error(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        build()


def test_unsupported_mechanism() -> None:
    # RFC 4954 §4: an unknown mechanism: 504 5.5.4.
    for factory in (client_mechanism, server_mechanism):
        with pytest.raises(UnsupportedMechanism) as info:
            factory("DIGEST-MD5")
        assert info.value.reply_hint.code == 504
        assert str(info.value.reply_hint.enhanced) == "5.5.4"


def test_factories_draw_fresh_nonces_at_the_edge() -> None:
    # RFC 5802 §5.1: nonces must differ per exchange; the factories draw them.
    firsts = {
        client_mechanism("SCRAM-SHA-256", username="u", password="p").initial_response()
        for _ in range(5)
    }
    assert len(firsts) == 5
    challenges = set()
    for _ in range(5):
        step = server_mechanism("CRAM-MD5", hostname="h.example", timestamp=7).start()
        assert isinstance(step, Challenge)
        challenges.add(step.data)
    assert len(challenges) == 5


def test_factory_names_are_case_insensitive() -> None:
    assert client_mechanism("scram-sha-1", username="u", password="p").name == "SCRAM-SHA-1"
    assert server_mechanism("plain").name == "PLAIN"


def test_oauthbearer_factory_uses_username_as_authzid() -> None:
    mech = client_mechanism("OAUTHBEARER", username="me@example.com", token="t")
    assert mech.initial_response() == b"n,a=me@example.com,\x01auth=Bearer t\x01\x01"


def test_oauthbearer_authzid_is_escaped() -> None:
    # RFC 7628 §3.1 / RFC 5801 §4: the GS2 authzid is a saslname ("," -> "=2C", "=" -> "=3D").
    client = OAuthBearerClient(token="t", authzid="a,b=c")
    wire = client.initial_response()
    assert wire == b"n,a=a=2Cb=3Dc,\x01auth=Bearer t\x01\x01"
    step = OAuthBearerServer().start(wire)
    assert isinstance(step, VerifyToken) and step.authzid == "a,b=c"


# --------------------------------------------------------------------- negotiation


OFFERS_ALL = (
    "LOGIN",
    "PLAIN",
    "CRAM-MD5",
    "XOAUTH2",
    "OAUTHBEARER",
    "SCRAM-SHA-1",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-256-PLUS",
)


@pytest.mark.parametrize(
    ("offers", "kw", "expected"),
    [
        (OFFERS_ALL, {"tls": True, "have_channel_binding": True}, "SCRAM-SHA-256-PLUS"),
        (OFFERS_ALL, {"tls": True}, "SCRAM-SHA-256"),  # -PLUS needs binding data (RFC 5802 §6)
        (OFFERS_ALL, {"tls": False, "have_channel_binding": True}, "SCRAM-SHA-256"),
        (
            ("SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "PLAIN"),
            {"tls": True, "have_channel_binding": True},
            "SCRAM-SHA-1-PLUS",
        ),
        (("SCRAM-SHA-1", "PLAIN"), {"tls": True}, "SCRAM-SHA-1"),
        (("CRAM-MD5", "PLAIN", "LOGIN"), {"tls": True}, "CRAM-MD5"),
        (("PLAIN", "LOGIN"), {"tls": True}, "PLAIN"),
        (("LOGIN",), {"tls": True}, "LOGIN"),
        # RFC 4954 §4: no plaintext password mechanism without TLS unless allowed.
        (("PLAIN", "LOGIN"), {"tls": False}, None),
        (("PLAIN", "LOGIN"), {"tls": False, "allow_plaintext": True}, "PLAIN"),
        (("CRAM-MD5", "PLAIN"), {"tls": False}, "CRAM-MD5"),
        # Tokens only when a token is supplied; then password mechanisms need a password.
        (("XOAUTH2", "PLAIN"), {"tls": True}, "PLAIN"),
        (("XOAUTH2", "OAUTHBEARER", "PLAIN"), {"tls": True, "have_token": True}, "OAUTHBEARER"),
        (
            ("XOAUTH2", "PLAIN"),
            {"tls": True, "have_token": True, "have_password": False},
            "XOAUTH2",
        ),
        (("XOAUTH2",), {"tls": False, "have_token": True}, None),  # RFC 7628 §5: TLS
        (("SCRAM-SHA-256",), {"tls": True, "have_password": False}, None),
        (("scram-sha-256", "plain"), {"tls": True}, "SCRAM-SHA-256"),  # case-insensitive
        ("PLAIN SCRAM-SHA-1", {"tls": True}, "SCRAM-SHA-1"),  # one EHLO string
        (("GSSAPI", "DIGEST-MD5"), {"tls": True}, None),
        ((), {"tls": True}, None),
    ],
)
def test_choose_mechanism(
    offers: tuple[str, ...] | str, kw: dict[str, bool], expected: str | None
) -> None:
    assert choose(offers, **kw) == expected


def choose(
    offers: tuple[str, ...] | str,
    /,
    *,
    tls: bool,
    allow_plaintext: bool = False,
    have_password: bool = True,
    have_token: bool = False,
    have_channel_binding: bool = False,
) -> str | None:
    return choose_mechanism(
        offers,
        tls=tls,
        allow_plaintext=allow_plaintext,
        have_password=have_password,
        have_token=have_token,
        have_channel_binding=have_channel_binding,
    )


def test_choose_mechanism_custom_preference() -> None:
    assert (
        choose_mechanism(
            OFFERS_ALL, tls=True, allow_plaintext=False, preference=("PLAIN", "SCRAM-SHA-256")
        )
        == "PLAIN"
    )
    with pytest.raises(UnsupportedMechanism):
        choose_mechanism(OFFERS_ALL, tls=True, allow_plaintext=False, preference=("NTLM",))
    assert DEFAULT_PREFERENCE[0] == "SCRAM-SHA-256-PLUS"
    assert DEFAULT_PREFERENCE[-2:] == ("PLAIN", "LOGIN")


def test_advertised_mechanisms_and_policy() -> None:
    # RFC 4954 §4: a server must be configurable to offer no plaintext mechanisms before
    # TLS; RFC 5802 §6: -PLUS only with binding data.
    assert advertised_mechanisms(tls=False, allow_plaintext=False, have_channel_binding=False) == (
        "SCRAM-SHA-256",
        "SCRAM-SHA-1",
        "CRAM-MD5",
    )
    assert advertised_mechanisms(
        tls=True,
        allow_plaintext=False,
        have_channel_binding=True,
        enabled=("plain", "SCRAM-SHA-256-PLUS"),
    ) == ("PLAIN", "SCRAM-SHA-256-PLUS")
    refused = policy_failure("PLAIN", tls=False, allow_plaintext=False)
    assert refused is not None
    assert (refused.reply_hint.code, str(refused.reply_hint.enhanced)) == (538, "5.7.11")
    assert policy_failure("PLAIN", tls=True, allow_plaintext=False) is None
    assert policy_failure("PLAIN", tls=False, allow_plaintext=True) is None
    assert policy_failure("SCRAM-SHA-256", tls=False, allow_plaintext=False) is None
    assert policy_failure("SCRAM-SHA-256-PLUS", tls=False, allow_plaintext=True) is not None


# --------------------------------------------------------------- interop: scramp


@pytest.mark.parametrize(
    "mechanism", ["SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"]
)
@pytest.mark.parametrize("password", ["pencil", "wrong"])
def test_our_client_against_scramp_server(mechanism: str, password: str) -> None:
    # RFC 5802 §5 interop: our client, scramp's server.
    m = scramp.ScramMechanism(mechanism)
    info = m.make_auth_info("pencil", iteration_count=4096)
    plus = mechanism.endswith("-PLUS")
    server = m.make_server(
        lambda user: info if user == "user" else None,
        channel_binding=(TLS_SERVER_END_POINT, CB_DATA) if plus else None,
    )
    client = ScramClient(
        mechanism=mechanism,
        username="user",
        password=password,
        nonce="clientnonce123",
        channel_binding=CB if plus else None,
    )
    server.set_client_first(client.initial_response().decode())
    client_final = client.respond(server.get_server_first().encode())
    if password == "pencil":
        server.set_client_final(client_final.decode())
        assert client.respond(server.get_server_final().encode()) == b""
        client.finish()
    else:
        with pytest.raises(scramp.ScramException):
            server.set_client_final(client_final.decode())
        with pytest.raises(AuthenticationRejected) as info_:
            client.respond(server.get_server_final().encode())  # "e=invalid-proof"
        assert info_.value.server_error == "invalid-proof"


@pytest.mark.parametrize(
    "mechanism", ["SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"]
)
@pytest.mark.parametrize("password", ["pencil", "wrong"])
def test_scramp_client_against_our_server(mechanism: str, password: str) -> None:
    # RFC 5802 §5 interop: scramp's client, our server (and scramp verifies our signature).
    plus = mechanism.endswith("-PLUS")
    client = scramp.ScramClient(
        [mechanism],
        "user",
        password,
        channel_binding=(TLS_SERVER_END_POINT, CB_DATA) if plus else None,
    )
    server = scram_server(mechanism, channel_bindings=(CB,) if plus else ())
    step = server.start(client.get_client_first().encode())
    assert isinstance(step, LookupScramKeys)
    step = server.supply(database(USERS)(step))
    assert isinstance(step, Challenge)
    client.set_server_first(step.data.decode())
    step = server.receive(client.get_client_final().encode())
    if password == "pencil":
        assert isinstance(step, Challenge)
        client.set_server_final(step.data.decode())  # raises on a wrong signature
        assert isinstance(server.receive(b""), Success)
    else:
        assert isinstance(step, Failure)
        assert step.reason is FailureReason.CREDENTIALS_INVALID


def test_scramp_client_with_binding_is_refused_by_a_plus_capable_server() -> None:
    # RFC 5802 §6: scramp sends "y" for a non-PLUS mechanism when it has binding data; a
    # server that advertised -PLUS must treat that as a downgrade.
    client = scramp.ScramClient(
        ["SCRAM-SHA-256"], "user", "pencil", channel_binding=(TLS_SERVER_END_POINT, CB_DATA)
    )
    step = scram_server("SCRAM-SHA-256", channel_bindings=(CB,)).start(
        client.get_client_first().encode()
    )
    assert isinstance(step, Failure)
    assert step.reason is FailureReason.CHANNEL_BINDING_MISMATCH


# ------------------------------------------------------------------ property tests


_chars = st.characters(codec="utf-8", max_codepoint=0x2FFF).filter(
    lambda c: not stringprep.in_table_d1(c)
)
_rtl = st.characters(min_codepoint=0x05D0, max_codepoint=0x05EA)  # Hebrew letters
credential = st.one_of(
    st.text(_chars, min_size=1, max_size=12),
    st.text(_rtl, min_size=1, max_size=6),
    st.sampled_from(["user", "a=b,c", "=2C", "I\u00adX", "\u2168", "p a s s"]),
).filter(lambda s: _prepared(s) is not None)

PROPERTY_MECHS = ("PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256")


@settings(max_examples=60, deadline=None)
@given(
    mechanism=st.sampled_from(PROPERTY_MECHS),
    username=credential,
    password=credential,
    initial=st.booleans(),
)
def test_same_credentials_always_authenticate(
    mechanism: str, username: str, password: str, initial: bool
) -> None:
    # RFC 4013 + the mechanism specs: a client and a server built from the same
    # SASLprep-able credentials authenticate, whatever the characters.
    client, server = pair(mechanism, username=username, password=password)
    outcome = drive(client, server, database({username: password}), initial=initial)
    assert outcome.ok, (outcome.step, outcome.client_error)
    assert isinstance(outcome.step, Success)
    expected = username if mechanism == "CRAM-MD5" else None
    if mechanism.startswith("SCRAM"):
        expected = saslprep(username)
    if expected is not None:
        assert outcome.step.authcid == expected


@settings(max_examples=60, deadline=None)
@given(
    mechanism=st.sampled_from(PROPERTY_MECHS),
    stored=st.tuples(credential, credential),
    given_=st.tuples(credential, credential),
)
def test_mismatched_credentials_never_authenticate(
    mechanism: str, stored: tuple[str, str], given_: tuple[str, str]
) -> None:
    # Same rule, the other way: any difference that survives preparation fails.
    if mechanism == "CRAM-MD5":  # RFC 2195 defines no preparation
        assume(stored != given_)
    else:
        assume(
            (saslprep(stored[0]), saslprep(stored[1])) != (saslprep(given_[0]), saslprep(given_[1]))
        )
    client, server = pair(mechanism, username=given_[0], password=given_[1])
    outcome = drive(client, server, database({stored[0]: stored[1]}))
    assert isinstance(outcome.step, Failure)
    assert outcome.step.reason is FailureReason.CREDENTIALS_INVALID


@settings(max_examples=25, deadline=None)
@given(
    username=credential,
    password=credential,
    mechanism=st.sampled_from(["SCRAM-SHA-1", "SCRAM-SHA-256"]),
)
def test_scramp_interop_over_credentials(username: str, password: str, mechanism: str) -> None:
    # RFC 5802 interop over arbitrary SASLprep-able credentials, scramp as the server.
    m = scramp.ScramMechanism(mechanism)
    info = m.make_auth_info(password, iteration_count=4096)
    server = m.make_server(lambda user: info)
    client = ScramClient(
        mechanism=mechanism, username=username, password=password, nonce="clientnonce123"
    )
    server.set_client_first(client.initial_response().decode())
    server_final_input = client.respond(server.get_server_first().encode())
    server.set_client_final(server_final_input.decode())
    client.respond(server.get_server_final().encode())
    client.finish()


@settings(max_examples=200, deadline=None)
@given(
    mechanism=st.sampled_from(ALL),
    messages=st.lists(st.binary(max_size=80), max_size=4),
    initial=st.booleans(),
)
def test_server_never_raises_on_peer_input(
    mechanism: str, messages: list[bytes], initial: bool
) -> None:
    # RFC 4954 §4: whatever the client sends, the server ends in an ordinary step.
    server = server_mechanism(
        mechanism, hostname="h.example", timestamp=1, mock_key=MOCK_KEY, channel_bindings=(CB,)
    )
    step = server.start(messages[0] if initial and messages else None)
    for message in messages:
        while isinstance(step, NeedCredentials):
            step = server.supply(database(USERS | TOKENS)(step))
        if not isinstance(step, Challenge):
            break
        step = server.receive(message)
    assert isinstance(step, Challenge | NeedCredentials | Success | Failure)


@settings(max_examples=200, deadline=None)
@given(mechanism=st.sampled_from(ALL), challenges=st.lists(st.binary(max_size=80), max_size=4))
def test_client_raises_only_sasl_errors(mechanism: str, challenges: list[bytes]) -> None:
    # A hostile server can only make the client raise a SASLError (then it sends "*").
    client, _ = pair(mechanism)
    client.initial_response()
    for challenge in challenges:
        try:
            response = client.respond(challenge)
        except SASLError:
            return
        assert isinstance(response, bytes)


# --------------------------------------------------------------------------- reprs

SECRET = "s3cr3t-Pw"


def test_reprs_are_redacted() -> None:
    # Secrets (passwords, tokens, keys, proofs) and exchanged SASL data stay out of reprs.
    keys = scram_stored_keys(SECRET, b"salt-salt-salt", 4096)
    scram = ScramServer(nonce="n", mock_key=b"k")
    scram.start(b"n,,n=user,r=abc")
    scram.supply(keys)
    objects: list[object] = [
        PlainClient(username="user", password=SECRET),
        LoginClient(username="user", password=SECRET),
        CramMD5Client(username="user", password=SECRET),
        ScramClient(username="user", password=SECRET, nonce="n"),
        XOAuth2Client(username="user", token=SECRET),
        OAuthBearerClient(token=SECRET),
        VerifyPassword(mechanism="PLAIN", authcid="user", authzid=None, password=SECRET),
        VerifyToken(mechanism="XOAUTH2", authcid="user", authzid=None, token=SECRET),
        StoredPassword(password=SECRET),
        keys,
        Challenge(data=SECRET.encode()),
        Success(mechanism="SCRAM-SHA-256", authcid="u", authzid=None, final_data=SECRET.encode()),
        OAuthErrorDetails.parse(SECRET.encode()),
        scram,
    ]
    for obj in objects:
        text = repr(obj)
        assert "<redacted>" in text, text
        for secret in (
            SECRET,
            repr(keys.stored_key),
            repr(keys.server_key),
            base64.b64encode(keys.stored_key).decode(),
        ):
            assert secret not in text, text
    assert "user" in repr(objects[0])  # identities stay visible for debugging
    assert repr(ChannelBinding(type=TLS_EXPORTER, data=CB_DATA)) == (
        "ChannelBinding(type='tls-exporter', data=<32 bytes>)"
    )


def test_client_errors_do_not_leak_secrets() -> None:
    client = ScramClient(username="user", password=SECRET, nonce="clinonce")
    client.initial_response()
    with pytest.raises(SASLError) as info:
        client.respond(b"r=clinonceX,s=QSXCR+Q6sek8bf92,i=1")
    assert SECRET not in str(info.value)


def test_public_names_exist() -> None:
    import sansio_smtp.sasl as sasl

    assert sorted(sasl.__all__) == sorted(set(sasl.__all__))
    for name in sasl.__all__:
        assert hasattr(sasl, name), name
