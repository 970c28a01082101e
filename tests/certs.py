"""TLS certificates for tests, made at test time with ``trustme`` (never committed).

One throw-away CA per test session signs a certificate for ``localhost`` and
``127.0.0.1``. ``server_context()`` / ``client_context()`` give ready ssl contexts, and
``ca_pem`` / ``cert_pem`` / ``key_pem`` write PEM files for external peers (curl's
``--cacert``, swaks' ``--tls-ca-path``) and for the CLI (``--tls-cert``/``--tls-key``).

    from tests.certs import test_certs
    certs = test_certs()            # skips the test when trustme is missing
    server = AsyncioServer(handler, tls_context=certs.server_context())
"""

from __future__ import annotations

import atexit
import shutil
import ssl
import tempfile
from functools import cache
from pathlib import Path

import pytest

__all__ = ["TestCerts", "test_certs"]


class TestCerts:
    """A CA and a localhost/127.0.0.1 server certificate, with PEM files in a temp dir."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        trustme = pytest.importorskip("trustme", reason="trustme is needed for TLS tests")
        self.ca = trustme.CA()
        self.cert = self.ca.issue_cert("localhost", "127.0.0.1")
        self.dir = Path(tempfile.mkdtemp(prefix="sansio-smtp-certs-"))
        atexit.register(shutil.rmtree, self.dir, True)
        self.ca_pem = self.dir / "ca.pem"
        self.cert_pem = self.dir / "cert.pem"  # leaf certificate + chain
        self.key_pem = self.dir / "key.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_pem))
        self.cert.private_key_pem.write_to_path(str(self.key_pem))
        with self.cert_pem.open("wb") as fh:
            for blob in self.cert.cert_chain_pems:
                fh.write(blob.bytes())

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.cert.configure_cert(ctx)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.ca.configure_trust(ctx)
        return ctx


@cache
def _certs() -> TestCerts:
    return TestCerts()


def test_certs() -> TestCerts:
    """The session's certificates (made once); skips the calling test without trustme."""
    pytest.importorskip("trustme", reason="trustme is needed for TLS tests")
    return _certs()


test_certs.__test__ = False  # type: ignore[attr-defined]
