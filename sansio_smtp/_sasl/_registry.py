# Mechanism names, negotiation policy and the two factories: the public-API edge.
#
# Strategy: ``choose_mechanism`` picks the strongest mechanism both sides support that the
# available credentials and the transport allow; ``client_mechanism``/``server_mechanism``
# build one by name. This is the only module that draws randomness (``secrets``), and only
# as the default for a nonce or key the caller did not inject; the state machines never do.
# Rules: mechanism names are matched case-insensitively and returned upper case; mechanisms
# that expose a reusable secret (PLAIN, LOGIN, bearer tokens) need TLS unless the caller
# explicitly allows plaintext (RFC 4954 §4, RFC 4616 §6, RFC 7628 §5); -PLUS needs TLS and
# channel binding data (RFC 5802 §6).
from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from typing import Final

from ._base import (
    PLAINTEXT_MECHANISMS,
    ChannelBinding,
    ClientMechanism,
    Failure,
    FailureReason,
    PasswordVerifier,
    ServerMechanism,
    UnsupportedMechanism,
    binds_channel,
)
from ._oauth import OAuthBearerClient, OAuthBearerServer, XOAuth2Client, XOAuth2Server
from ._scram import SCRAM_MECHANISMS, ScramClient, ScramServer
from ._simple import (
    CramMD5Client,
    CramMD5Server,
    LoginClient,
    LoginServer,
    PlainClient,
    PlainServer,
)

__all__ = [
    "DEFAULT_PREFERENCE",
    "PLAINTEXT_MECHANISMS",
    "SUPPORTED_MECHANISMS",
    "TOKEN_MECHANISMS",
    "advertised_mechanisms",
    "choose_mechanism",
    "client_mechanism",
    "policy_failure",
    "server_mechanism",
]

#: Strongest first: mutual authentication with channel binding, mutual authentication,
#: bearer tokens, challenge-response, then the plaintext password mechanisms.
DEFAULT_PREFERENCE: Final[tuple[str, ...]] = (
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-1",
    "OAUTHBEARER",
    "XOAUTH2",
    "CRAM-MD5",
    "PLAIN",
    "LOGIN",
)
SUPPORTED_MECHANISMS: Final[frozenset[str]] = frozenset(DEFAULT_PREFERENCE)
#: Mechanisms that take an OAuth 2.0 bearer token instead of a password.
TOKEN_MECHANISMS: Final[frozenset[str]] = frozenset({"OAUTHBEARER", "XOAUTH2"})


def _canonical(name: str) -> str:
    key = name.upper() if isinstance(name, str) else ""
    if key not in SUPPORTED_MECHANISMS:
        raise UnsupportedMechanism(str(name))
    return key


def _allowed(name: str, *, tls: bool, allow_plaintext: bool, have_channel_binding: bool) -> bool:
    if name in PLAINTEXT_MECHANISMS and not (tls or allow_plaintext):
        return False
    return not (binds_channel(name) and not (tls and have_channel_binding))


def choose_mechanism(
    server_offers: Iterable[str],
    *,
    tls: bool,
    allow_plaintext: bool,
    have_password: bool = True,
    have_token: bool = False,
    have_channel_binding: bool = False,
    preference: Sequence[str] = DEFAULT_PREFERENCE,
) -> str | None:
    """The first mechanism of ``preference`` that the server offers and we can use, or None.

    - ``server_offers``: the EHLO ``AUTH`` keyword's parameters (RFC 4954 §3), any case; a
      single space-separated str is accepted too.
    - ``tls``: the connection is encrypted. PLAIN, LOGIN, OAUTHBEARER and XOAUTH2 need it
      unless ``allow_plaintext``; -PLUS needs it and ``have_channel_binding``.
    - ``have_password``/``have_token``: which credentials exist; OAUTHBEARER and XOAUTH2
      are chosen only with a token, the others only with a password.
    """
    if isinstance(server_offers, str):
        server_offers = server_offers.split()
    offered = {m.upper() for m in server_offers if isinstance(m, str)}
    for name in preference:
        key = _canonical(name)
        if key not in offered:
            continue
        if not (have_token if key in TOKEN_MECHANISMS else have_password):
            continue
        if _allowed(
            key, tls=tls, allow_plaintext=allow_plaintext, have_channel_binding=have_channel_binding
        ):
            return key
    return None


def advertised_mechanisms(
    *,
    tls: bool,
    allow_plaintext: bool,
    have_channel_binding: bool,
    enabled: Iterable[str] = DEFAULT_PREFERENCE,
) -> tuple[str, ...]:
    """The ``enabled`` mechanisms a server should list in its EHLO ``AUTH`` line now:
    no plaintext mechanisms before TLS unless allowed (RFC 4954 §4), -PLUS only with
    channel binding data (RFC 5802 §6). Order kept; names upper case."""
    names = (_canonical(n) for n in enabled)
    return tuple(
        n
        for n in names
        if _allowed(
            n, tls=tls, allow_plaintext=allow_plaintext, have_channel_binding=have_channel_binding
        )
    )


def policy_failure(name: str, *, tls: bool, allow_plaintext: bool) -> Failure | None:
    """A server's check before starting ``name``: 538 5.7.11 for a mechanism that needs
    TLS on a plaintext connection (RFC 4954 §4, §6), else None. Raises UnsupportedMechanism
    (``reply_hint`` 504 5.5.4) for unknown names."""
    key = _canonical(name)
    needs_tls = binds_channel(key) or (key in PLAINTEXT_MECHANISMS and not allow_plaintext)
    if needs_tls and not tls:
        return Failure(
            mechanism=key, reason=FailureReason.ENCRYPTION_REQUIRED, message=f"{key} needs TLS"
        )
    return None


def _require(name: str, **values: str | None) -> None:
    for what, value in values.items():
        if value is None:
            raise ValueError(f"{name} needs {what}")


def _refuse_authzid(name: str, authzid: str | None) -> None:
    if authzid:
        raise ValueError(f"{name} cannot carry an authorization identity")


def client_mechanism(
    name: str,
    *,
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
    authzid: str | None = None,
    channel_binding: ChannelBinding | None = None,
    nonce: str | None = None,
    host: str | None = None,
    port: int | None = None,
) -> ClientMechanism:
    """Build the client side of mechanism ``name``.

    - PLAIN, LOGIN, CRAM-MD5, SCRAM-*: ``username`` and ``password`` (PLAIN and SCRAM also
      ``authzid``).
    - XOAUTH2: ``username`` and ``token``. OAUTHBEARER: ``token``, and ``authzid`` (or, if
      None, ``username``) as the GS2 ``a=``; ``host``/``port`` are optional kvpairs.
    - SCRAM: ``nonce`` (default: 24 random bytes from ``secrets``, base64url);
      ``channel_binding`` (required for -PLUS; see ScramClient for its meaning otherwise).
    Raises UnsupportedMechanism for unknown names, ValueError for missing or unusable
    credentials (SASLprepError when SASLprep rejects them).
    """
    key = _canonical(name)
    if key in SCRAM_MECHANISMS:
        _require(key, username=username, password=password)
        assert username is not None and password is not None
        return ScramClient(
            mechanism=key,
            username=username,
            password=password,
            nonce=secrets.token_urlsafe(24) if nonce is None else nonce,
            authzid=authzid,
            channel_binding=channel_binding,
        )
    if key == "OAUTHBEARER":
        _require(key, token=token)
        assert token is not None
        return OAuthBearerClient(token=token, authzid=authzid or username, host=host, port=port)
    if key == "XOAUTH2":
        _require(key, username=username, token=token)
        _refuse_authzid(key, authzid)
        assert username is not None and token is not None
        return XOAuth2Client(username=username, token=token)
    _require(key, username=username, password=password)
    assert username is not None and password is not None
    if key == "PLAIN":
        return PlainClient(username=username, password=password, authzid=authzid)
    _refuse_authzid(key, authzid)
    if key == "LOGIN":
        return LoginClient(username=username, password=password)
    return CramMD5Client(username=username, password=password)


def server_mechanism(
    name: str,
    *,
    verify_password: PasswordVerifier | None = None,
    hostname: str | None = None,
    timestamp: int | None = None,
    nonce: str | None = None,
    channel_bindings: Iterable[ChannelBinding] = (),
    mock_key: bytes | None = None,
    final_data_with_success: bool = False,
) -> ServerMechanism:
    """Build the server side of mechanism ``name``. Arguments a mechanism does not use are
    ignored, so an SMTP server can pass the same set for every AUTH command.

    - PLAIN, LOGIN: ``verify_password(authcid, authzid, password) -> bool | Verdict``;
      without it the mechanism returns VerifyPassword steps.
    - CRAM-MD5: ``hostname`` and ``timestamp`` (the caller's clock) are required; ``nonce``
      (digits) defaults to a random number from ``secrets``.
    - SCRAM-*: ``nonce`` defaults to 24 random bytes from ``secrets``, base64url;
      ``channel_bindings`` (pass them iff -PLUS was advertised); ``mock_key`` (a stable
      secret for unknown users' mock salts; default: random per call, which lets a prober
      tell unknown users apart by their changing salt); ``final_data_with_success``.
    Raises UnsupportedMechanism (``reply_hint`` 504 5.5.4) for unknown names.
    """
    key = _canonical(name)
    if key in SCRAM_MECHANISMS:
        return ScramServer(
            mechanism=key,
            nonce=secrets.token_urlsafe(24) if nonce is None else nonce,
            mock_key=secrets.token_bytes(32) if mock_key is None else mock_key,
            channel_bindings=channel_bindings,
            final_data_with_success=final_data_with_success,
        )
    if key == "PLAIN":
        return PlainServer(verify_password=verify_password)
    if key == "LOGIN":
        return LoginServer(verify_password=verify_password)
    if key == "CRAM-MD5":
        if hostname is None or timestamp is None:
            raise ValueError("CRAM-MD5 needs hostname and timestamp")
        return CramMD5Server(
            hostname=hostname,
            timestamp=timestamp,
            nonce=str(secrets.randbelow(10**12)) if nonce is None else nonce,
        )
    if key == "OAUTHBEARER":
        return OAuthBearerServer()
    return XOAuth2Server()
