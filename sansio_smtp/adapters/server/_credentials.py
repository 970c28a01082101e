# What a server needs to check AUTH: a PasswordTable authenticator, the mechanisms it
# advertises by default, the Config it runs with (STARTTLS, AUTH, hostname), and the
# tls-server-end-point channel binding of its certificate (RFC 5929 §4.1).
#
# Strategy: plain functions of the server options, run once per server. The SASL
# mechanisms are imported when credentials are checked: a server without AUTH never
# loads them.
# Rules: unknown users fail like wrong passwords (same work, constant time); a -PLUS
# mechanism is advertised only with channel binding data to check it with.
from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypeAlias

import attrs

from ..._mechanisms import binds_channel
from ...config import Config
from ._handler import AuthAnswer, Session

if TYPE_CHECKING:
    from ... import sasl


class PasswordTable:
    """An Authenticator from a ``{user: password}`` mapping: answers PLAIN/LOGIN checks
    (with SASLprep, constant time), CRAM-MD5 lookups and SCRAM key lookups (keys derived
    once per user with a random salt). Unknown users fail like wrong passwords."""

    def __init__(self, users: Mapping[str, str], *, scram_iterations: int = 4096) -> None:
        self._users = dict(users)
        self._iterations = scram_iterations
        self._scram: dict[tuple[str, str], sasl.ScramStoredKeys] = {}
        self._lock = threading.Lock()

    def __call__(self, session: Session, request: sasl.NeedCredentials) -> AuthAnswer:
        import secrets

        from ... import sasl

        authcid = getattr(request, "authcid", None)
        stored = self._users.get(authcid) if isinstance(authcid, str) else None
        if isinstance(request, sasl.VerifyPassword):
            if stored is None:
                sasl.passwords_match(request.password, request.password)  # same work
                return sasl.Verdict.UNKNOWN_USER
            if request.authzid not in (None, request.authcid):
                return sasl.Verdict.NOT_AUTHORIZED
            return sasl.passwords_match(request.password, stored)
        if stored is None:
            return sasl.Verdict.UNKNOWN_USER
        if isinstance(request, sasl.LookupPassword):
            return sasl.StoredPassword(password=stored)
        if isinstance(request, sasl.LookupScramKeys):
            assert isinstance(authcid, str)
            if request.authzid not in (None, authcid):
                return sasl.Verdict.NOT_AUTHORIZED
            hash_name: sasl.ScramHash = "sha1" if "SHA-1" in request.mechanism else "sha256"
            with self._lock:
                keys = self._scram.get((authcid, hash_name))
                if keys is None:
                    keys = sasl.scram_stored_keys(
                        stored, secrets.token_bytes(16), self._iterations, hash_name
                    )
                    self._scram[(authcid, hash_name)] = keys
            return keys
        return sasl.Verdict.BAD_CREDENTIALS


def default_mechanisms(*, scram: bool, channel_binding: bool) -> tuple[str, ...]:
    """The AUTH mechanisms a server advertises when its Config names none: PLAIN and
    LOGIN for any authenticator; SCRAM-SHA-256 first when the authenticator can answer
    SCRAM key lookups (a PasswordTable), and its -PLUS variant when the server knows its
    certificate's channel binding (RFC 5802 §6; the core shows -PLUS only under TLS)."""
    plus = ("SCRAM-SHA-256-PLUS",) if scram and channel_binding else ()
    return (*plus, *(("SCRAM-SHA-256",) if scram else ()), "PLAIN", "LOGIN")


def prepare_config(
    config: Config | None,
    *,
    starttls: bool,
    auth: bool,
    hostname: str | None = None,
    mechanisms: Sequence[str] = ("PLAIN", "LOGIN"),
    channel_binding: bool = False,
) -> Config:
    """The Config a server runs with: STARTTLS advertised when a TLS context is there for
    it, AUTH ``mechanisms`` when an authenticator is and ``config`` names none. Raises
    ValueError when ``config`` advertises STARTTLS without a TLS context, or a -PLUS
    mechanism without ``channel_binding`` data to check it with."""
    config = config if config is not None else Config()
    extensions = dict(config.extensions.items())
    if starttls and "STARTTLS" not in extensions:
        extensions["STARTTLS"] = ()
    if not starttls and "STARTTLS" in extensions:
        raise ValueError("STARTTLS is advertised but the server has no TLS context for it")
    if auth and "AUTH" not in extensions:
        extensions["AUTH"] = tuple(mechanisms)
    plus = [m for m in extensions.get("AUTH", ()) if binds_channel(m)]
    if plus and not channel_binding:
        raise ValueError(
            f"AUTH {' '.join(plus)} is advertised but the server has no channel binding"
            " data: pass tls_certificate (RFC 5802 §6, RFC 5929 §4)"
        )
    if extensions != dict(config.extensions.items()):
        config = attrs.evolve(config, extensions=extensions)
    if hostname is not None:
        config = attrs.evolve(config, hostname=hostname)
    return config


#: A server's own certificate: a file path (PEM or DER), or the file's contents as bytes.
CertificateSource: TypeAlias = "str | os.PathLike[str] | bytes"


def server_channel_binding(certificate: CertificateSource) -> sasl.ChannelBinding:
    """tls-server-end-point data (RFC 5929 §4.1) of the certificate a server presents: the
    ssl module cannot tell a server its own certificate, so the servers take it from
    their ``tls_certificate`` option. Raises ValueError (OSError for an unreadable file)
    when the certificate's signature algorithm leaves the binding undefined."""
    from ... import sasl

    if isinstance(certificate, bytes):
        data = certificate
    else:
        from pathlib import Path  # here: only a certificate given by its path needs it

        data = Path(certificate).read_bytes()
    return sasl.tls_server_end_point(data)
