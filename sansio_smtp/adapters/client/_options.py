# What a client is configured with: TLSMode, ClientOptions (checked once, at
# construction), the default timeouts and the phases a ``timeouts=`` mapping may name
# (sansio_smtp._state.Phase), and the EHLO name of a host with no name.
from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from typing import Final, final

import attrs

from ..._state import CLIENT_TIMEOUTS, Phase
from ._results import TranscriptEntry

__all__ = [
    "DEFAULT_BDAT_CHUNK",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_TLS_TIMEOUT",
    "TIMEOUT_PHASES",
    "WRITE_BLOCK",
    "ClientOptions",
    "TLSMode",
    "address_literal",
    "resolve_tls_mode",
]


DEFAULT_CONNECT_TIMEOUT: Final = 60.0  # TCP connect; RFC 5321 sets none
DEFAULT_TLS_TIMEOUT: Final = 60.0  # TLS handshake; RFC 5321 sets none
DEFAULT_BDAT_CHUNK: Final = 8 * 1024 * 1024  # larger messages go as several BDAT chunks
#: A write may take its phase's timeout for each block of this many octets it has started
#: (RFC 5321 §4.5.3.2.5: the timeout is per data block): a peer that reads slowly cannot
#: hold a write for longer than ``timeout * (1 + size // WRITE_BLOCK)``.
WRITE_BLOCK: Final = 1024 * 1024
#: The phases a ``timeouts=`` mapping may name: the RFC 5321 §4.5.3.2 ones of the core
#: (``Connection.timeout``), plus CONNECT and TLS (handshake), which the RFC leaves open.
#: Members of sansio_smtp._state.Phase, equal to their strings ("MAIL", "data block").
TIMEOUT_PHASES: Final[frozenset[Phase]] = frozenset({Phase.CONNECT, Phase.TLS, *CLIENT_TIMEOUTS})


class TLSMode(enum.Enum):
    """How a client uses TLS.

    - PLAIN: never (even when STARTTLS is offered).
    - STARTTLS_REQUIRED: STARTTLS (RFC 3207) or fail with SMTPTLSError before any mail
      or credentials are sent.
    - STARTTLS_OPPORTUNISTIC: STARTTLS when the server offers it, plaintext otherwise
      (also when the server refuses it); a failed handshake still fails.
    - IMPLICIT: TLS from the first byte ("submissions", port 465, RFC 8314 §3.3).
    """

    PLAIN = "plain"
    STARTTLS_REQUIRED = "starttls-required"
    STARTTLS_OPPORTUNISTIC = "starttls-opportunistic"
    IMPLICIT = "implicit"


@final
@attrs.frozen(kw_only=True)
class ClientOptions:
    """Everything a client was configured with (the keyword arguments of SMTPClient and
    AsyncSMTPClient). Internal: both adapters build one and hand it to the engine."""

    host: str
    port: int
    tls: TLSMode
    server_hostname: str | None = None
    local_hostname: str | None = None
    username: str | None = attrs.field(default=None)
    password: str | None = attrs.field(default=None, repr=False)
    token: str | None = attrs.field(default=None, repr=False)
    authzid: str | None = None
    auth_mechanisms: Sequence[str] | None = None
    allow_plaintext_auth: bool = False
    lmtp: bool = False
    timeout: float | None = None
    timeouts: Mapping[str, float] = attrs.field(factory=dict)
    deadline: float | None = None
    pipelining: bool = True
    chunking: bool = True
    bdat_chunk_size: int = DEFAULT_BDAT_CHUNK
    transcript: bool = False
    on_transcript: Callable[[TranscriptEntry], None] | None = None

    def __attrs_post_init__(self) -> None:
        unknown = set(self.timeouts) - TIMEOUT_PHASES
        if unknown:
            raise ValueError(
                f"unknown timeout phase(s) {sorted(unknown)}; known: {sorted(TIMEOUT_PHASES)}"
            )
        for value in (self.timeout, *self.timeouts.values()):
            if value is not None and not value > 0:
                raise ValueError(f"timeouts must be positive seconds, not {value!r}")
        if self.deadline is not None and not self.deadline > 0:
            raise ValueError(f"deadline must be positive seconds, not {self.deadline!r}")
        if self.bdat_chunk_size <= 0:
            raise ValueError("bdat_chunk_size must be positive")
        if self.password is not None and self.token is not None:
            raise ValueError("give a password or a token, not both")
        if self.password is not None and not self.username:
            raise ValueError("a password needs a username")


def resolve_tls_mode(tls: TLSMode | None, port: int) -> TLSMode:
    """The default: IMPLICIT on port 465 (RFC 8314 §3.3), STARTTLS_OPPORTUNISTIC else."""
    if tls is not None:
        if not isinstance(tls, TLSMode):
            raise TypeError(f"tls must be a TLSMode, not {tls!r}")
        return tls
    return TLSMode.IMPLICIT if port == 465 else TLSMode.STARTTLS_OPPORTUNISTIC


def address_literal(sockname: tuple[object, ...] | str) -> str:
    """The EHLO argument for a host with no name: its address literal (RFC 5321 §4.1.3):
    ``[192.0.2.1]`` or ``[IPv6:2001:db8::1]``."""
    host = str(sockname[0]) if isinstance(sockname, tuple) else "127.0.0.1"
    host = host.split("%", 1)[0]
    return f"[IPv6:{host}]" if ":" in host else f"[{host}]"
