# What the SMTP rules need to know about a SASL mechanism from its name alone: whether it
# sends a reusable secret in the clear, and whether it binds to the TLS channel. A grammar
# level module: the rules (_rules.py) and the SASL package (_sasl) both ask it, so the core
# does not import the SASL implementations.
from __future__ import annotations

from typing import Final

__all__ = ["PLAINTEXT_MECHANISMS", "binds_channel"]

#: Mechanisms that send a reusable secret in the clear: TLS only, unless allowed
#: (RFC 4954 §4, RFC 4616 §6, RFC 7628 §5).
PLAINTEXT_MECHANISMS: Final[frozenset[str]] = frozenset(
    {"PLAIN", "LOGIN", "OAUTHBEARER", "XOAUTH2"}
)


def binds_channel(name: str) -> bool:
    """``name`` is a -PLUS mechanism: it binds the exchange to the TLS channel, so it
    needs TLS and channel binding data (RFC 5802 §6)."""
    return name.upper().endswith("-PLUS")
