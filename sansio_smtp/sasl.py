# Public SASL API (RFC 4422) for SMTP AUTH (RFC 4954): mechanisms as sans-IO state machines.
#
# Strategy: the implementation lives in the private package ``sansio_smtp._sasl`` (one
# module per mechanism family); this module only re-exports its public names, so imports
# read ``from sansio_smtp.sasl import client_mechanism``. Mechanisms work on raw, already
# base64-decoded bytes; the SMTP layer does the 334/235/5xx framing, base64 and "*".
# Rules: no I/O, clocks or randomness in the state machines (nonces are injected; the
# factories default them from ``secrets``); secrets never appear in reprs.
"""SASL mechanisms for SMTP AUTH, client and server, without I/O.

Client::

    mech = client_mechanism("SCRAM-SHA-256", username="user", password="pencil")
    first = mech.initial_response()          # bytes to send with AUTH (None: none)
    reply = mech.respond(challenge)          # for every decoded 334 challenge
    mech.finish()                            # on 235: raises unless the server proved itself

Server::

    mech = server_mechanism("SCRAM-SHA-256")
    step = mech.start(initial_response)      # Challenge | NeedCredentials | Success | Failure
    step = mech.receive(response)            # after a Challenge
    step = mech.supply(stored_keys)          # after a NeedCredentials (here LookupScramKeys)

Channel binding for the -PLUS mechanisms: ``tls_server_end_point(cert)`` (RFC 5929 §4.1).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._sasl._base import (
        PLAINTEXT_MECHANISMS,
        TLS_EXPORTER,
        TLS_SERVER_END_POINT,
        AuthenticationRejected,
        Challenge,
        ChannelBinding,
        ClientMechanism,
        CredentialAnswer,
        Failure,
        FailureReason,
        LookupPassword,
        LookupScramKeys,
        MutualAuthenticationError,
        NeedCredentials,
        PasswordVerifier,
        SASLError,
        SASLprepError,
        SASLProtocolError,
        SASLStateError,
        ScramStoredKeys,
        ServerMechanism,
        ServerStep,
        Step,
        StoredPassword,
        Success,
        TokenRejected,
        UnsupportedMechanism,
        Verdict,
        VerifyPassword,
        VerifyToken,
        binds_channel,
    )
    from ._sasl._endpoint import tls_server_end_point
    from ._sasl._oauth import (
        OAuthBearerClient,
        OAuthBearerServer,
        OAuthErrorDetails,
        XOAuth2Client,
        XOAuth2Server,
    )
    from ._sasl._registry import (
        DEFAULT_PREFERENCE,
        SUPPORTED_MECHANISMS,
        TOKEN_MECHANISMS,
        advertised_mechanisms,
        choose_mechanism,
        client_mechanism,
        policy_failure,
        server_mechanism,
    )
    from ._sasl._saslprep import saslprep
    from ._sasl._scram import ScramClient, ScramHash, ScramServer, scram_stored_keys
    from ._sasl._simple import (
        CramMD5Client,
        CramMD5Server,
        LoginClient,
        LoginServer,
        PlainClient,
        PlainServer,
        cram_md5_challenge,
        passwords_match,
    )

# The mechanisms load on first use (PEP 562): a client that never authenticates, and a
# server that offers no AUTH, import none of them (they cost about as much as the core's
# events). A public name is looked up in these modules' own __all__, in this order.
_MODULES = ("_base", "_registry", "_endpoint", "_oauth", "_saslprep", "_scram", "_simple")


def __getattr__(name: str) -> object:
    if name in __all__:
        for module_name in _MODULES:
            module = importlib.import_module(f"{__package__}._sasl.{module_name}")
            if name in module.__all__:
                value = getattr(module, name)
                globals()[name] = value  # found once; later lookups are plain
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "DEFAULT_PREFERENCE",
    "PLAINTEXT_MECHANISMS",
    "SUPPORTED_MECHANISMS",
    "TLS_EXPORTER",
    "TLS_SERVER_END_POINT",
    "TOKEN_MECHANISMS",
    "AuthenticationRejected",
    "Challenge",
    "ChannelBinding",
    "ClientMechanism",
    "CramMD5Client",
    "CramMD5Server",
    "CredentialAnswer",
    "Failure",
    "FailureReason",
    "LoginClient",
    "LoginServer",
    "LookupPassword",
    "LookupScramKeys",
    "MutualAuthenticationError",
    "NeedCredentials",
    "OAuthBearerClient",
    "OAuthBearerServer",
    "OAuthErrorDetails",
    "PasswordVerifier",
    "PlainClient",
    "PlainServer",
    "SASLError",
    "SASLProtocolError",
    "SASLStateError",
    "SASLprepError",
    "ScramClient",
    "ScramHash",
    "ScramServer",
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
    "XOAuth2Client",
    "XOAuth2Server",
    "advertised_mechanisms",
    "binds_channel",
    "choose_mechanism",
    "client_mechanism",
    "cram_md5_challenge",
    "passwords_match",
    "policy_failure",
    "saslprep",
    "scram_stored_keys",
    "server_mechanism",
    "tls_server_end_point",
]
