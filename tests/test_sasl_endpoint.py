"""tls-server-end-point channel binding data (RFC 5929 §4.1): ``tls_server_end_point``.

Certificates are made here with ``cryptography`` (a dependency of trustme) and the result
is checked against two independent oracles: cryptography's own reading of the signature
hash, with the RFC 5929 §4.1 MD5/SHA-1 -> SHA-256 rule applied here, and scramp's
``CBindData.from_der`` (asn1crypto). cryptography no longer signs certificates with MD5 or
SHA-1, so those are assembled from cryptography's tbsCertificate and a raw signature by a
small test-side DER encoder, which also writes the odd RSASSA-PSS parameters.
Hypothesis checks that any input gives a ChannelBinding or ValueError, nothing else.

Each test names the rule it checks with its RFC section in a comment.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import re
from collections.abc import Callable
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from sansio_smtp.sasl import TLS_SERVER_END_POINT, ChannelBinding, tls_server_end_point
from tests.certs import test_certs

scramp_core = pytest.importorskip("scramp.core")

# ------------------------------------------------------------------------------ helpers

Key = Any  # one of cryptography's private key types


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="module")
def dsa_key() -> dsa.DSAPrivateKey:
    return dsa.generate_private_key(key_size=2048)


@pytest.fixture(scope="module")
def ed25519_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def ed448_key() -> ed448.Ed448PrivateKey:
    return ed448.Ed448PrivateKey.generate()


def _self_signed(
    key: Key, algorithm: hashes.HashAlgorithm | None, **sign_options: Any
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mail.example.org")])
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(4242)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("mail.example.org")]), critical=False
        )
    )
    # cryptography's stubs list the hashes it signs with; MD5/SHA-1 ones are built by hand
    return builder.sign(key, cast(Any, algorithm), **sign_options)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _expected(der: bytes) -> bytes:
    """Oracle (a): cryptography's signature hash; MD5 and SHA-1 become SHA-256 (RFC 5929 §4.1)."""
    algorithm = x509.load_der_x509_certificate(der).signature_hash_algorithm
    assert algorithm is not None
    if isinstance(algorithm, hashes.MD5 | hashes.SHA1):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(der)
    return digest.finalize()


def _sha256(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


def _scramp(der: bytes) -> bytes:
    """Oracle (b): scramp (>= 1.5) and its asn1crypto certificate parser."""
    cbind_data = getattr(scramp_core, "CBindData", None)
    if cbind_data is None:  # pragma: no cover - scramp 1.4 (Python 3.10)
        pytest.skip("scramp < 1.5 has no CBindData.from_der")
    data: bytes = cbind_data.from_der(der).data
    return data


# A test-side DER encoder (X.690 §8.1, §10.1), independent of the module under test.


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def _seq(*elements: bytes) -> bytes:
    return _tlv(0x30, b"".join(elements))


def _oid(dotted: str) -> bytes:
    first, second, *rest = map(int, dotted.split("."))
    body = bytearray()
    for arc in (40 * first + second, *rest):
        chunk = [arc & 0x7F]
        while arc := arc >> 7:
            chunk.append(0x80 | (arc & 0x7F))
        body += bytes(reversed(chunk))
    return _tlv(0x06, bytes(body))


NULL = b"\x05\x00"


def _elements(der: bytes) -> list[bytes]:
    """The elements, as whole TLVs, of a well-formed DER SEQUENCE."""

    def header(pos: int) -> tuple[int, int]:
        first = der[pos + 1]
        if first < 0x80:
            return pos + 2, first
        count = first & 0x7F
        return pos + 2 + count, int.from_bytes(der[pos + 2 : pos + 2 + count], "big")

    start, length = header(0)
    out, pos = [], start
    while pos < start + length:
        content, size = header(pos)
        out.append(der[pos : content + size])
        pos = content + size
    return out


def _resigned(
    template: x509.Certificate, algorithm: bytes, sign: Callable[[bytes], bytes]
) -> bytes:
    """``template`` with ``algorithm`` (an AlgorithmIdentifier) as its signature algorithm,
    in tbsCertificate.signature and Certificate.signatureAlgorithm (RFC 5280 §4.1.1.2),
    signed again with ``sign``."""
    tbs = _elements(template.tbs_certificate_bytes)
    assert tbs[0][:1] == b"\xa0"  # version [0] v3; tbs[2] is the signature algorithm
    tbs[2] = algorithm
    tbs_der = _seq(*tbs)
    return _seq(tbs_der, algorithm, _tlv(0x03, b"\x00" + sign(tbs_der)))


def _unsigned(_tbs: bytes) -> bytes:
    return b"\x01" * 256  # a signature nobody checks: the binding never verifies it


def _binding(der: bytes) -> bytes:
    cb = tls_server_end_point(der)
    assert isinstance(cb, ChannelBinding)
    assert cb.type == TLS_SERVER_END_POINT == "tls-server-end-point"
    return cb.data


# ------------------------------------------------------- certificates cryptography signs


@dataclasses.dataclass(frozen=True)
class Signed:
    """A certificate cryptography signs: key fixture, hash, signatureAlgorithm OID."""

    key: str
    hash: type[hashes.HashAlgorithm]
    oid: str
    pss_salt: int | None = None  # RSASSA-PSS with MGF1 over the same hash, this salt
    # The oracles' gaps: cryptography writes DSA with SHA-384/512 but cannot read those
    # OIDs back; asn1crypto (scramp) knows neither them nor the SHA-3 signature OIDs.
    cryptography_reads: bool = True
    scramp_reads: bool = True

    def __str__(self) -> str:
        pss = "" if self.pss_salt is None else "-pss"
        return f"{self.key.removesuffix('_key')}{pss}-{self.hash.name}"


PSS = "1.2.840.113549.1.1.10"  # RFC 4055 §3
SIGNED = [
    Signed("rsa_key", hashes.SHA224, "1.2.840.113549.1.1.14"),
    Signed("rsa_key", hashes.SHA256, "1.2.840.113549.1.1.11"),
    Signed("rsa_key", hashes.SHA384, "1.2.840.113549.1.1.12"),
    Signed("rsa_key", hashes.SHA512, "1.2.840.113549.1.1.13"),
    Signed("rsa_key", hashes.SHA3_224, "2.16.840.1.101.3.4.3.13", scramp_reads=False),
    Signed("rsa_key", hashes.SHA3_256, "2.16.840.1.101.3.4.3.14", scramp_reads=False),
    Signed("rsa_key", hashes.SHA3_384, "2.16.840.1.101.3.4.3.15", scramp_reads=False),
    Signed("rsa_key", hashes.SHA3_512, "2.16.840.1.101.3.4.3.16", scramp_reads=False),
    Signed("ec_key", hashes.SHA224, "1.2.840.10045.4.3.1"),
    Signed("ec_key", hashes.SHA256, "1.2.840.10045.4.3.2"),
    Signed("ec_key", hashes.SHA384, "1.2.840.10045.4.3.3"),
    Signed("ec_key", hashes.SHA512, "1.2.840.10045.4.3.4"),
    Signed("ec_key", hashes.SHA3_256, "2.16.840.1.101.3.4.3.10", scramp_reads=False),
    Signed("ec_key", hashes.SHA3_512, "2.16.840.1.101.3.4.3.12", scramp_reads=False),
    Signed("dsa_key", hashes.SHA224, "2.16.840.1.101.3.4.3.1"),
    Signed("dsa_key", hashes.SHA256, "2.16.840.1.101.3.4.3.2"),
    Signed(
        "dsa_key",
        hashes.SHA384,
        "2.16.840.1.101.3.4.3.3",
        cryptography_reads=False,
        scramp_reads=False,
    ),
    Signed(
        "dsa_key",
        hashes.SHA512,
        "2.16.840.1.101.3.4.3.4",
        cryptography_reads=False,
        scramp_reads=False,
    ),
    # RSASSA-PSS: the hash comes from its parameters (RFC 4055 §3.1)
    Signed("rsa_key", hashes.SHA256, PSS, pss_salt=32),
    Signed("rsa_key", hashes.SHA384, PSS, pss_salt=48),
    Signed("rsa_key", hashes.SHA512, PSS, pss_salt=20),
    Signed("rsa_key", hashes.SHA3_256, PSS, pss_salt=32),
]


@pytest.fixture(params=SIGNED, ids=str)
def signed(request: pytest.FixtureRequest) -> tuple[Signed, bytes]:
    case: Signed = request.param
    algorithm = case.hash()
    options: dict[str, Any] = {}
    if case.pss_salt is not None:
        mgf = padding.MGF1(algorithm)
        options["rsa_padding"] = padding.PSS(mgf=mgf, salt_length=case.pss_salt)
    cert = _self_signed(request.getfixturevalue(case.key), algorithm, **options)
    return case, _der(cert)


def test_signed_certificates_bind_with_their_hash(signed: tuple[Signed, bytes]) -> None:
    # RFC 5929 §4.1: a single hash, neither MD5 nor SHA-1: hash the DER with that hash.
    case, der = signed
    assert x509.load_der_x509_certificate(der).signature_algorithm_oid.dotted_string == case.oid
    digest = hashes.Hash(case.hash())
    digest.update(der)
    data = _binding(der)
    assert data == digest.finalize()
    if case.cryptography_reads:
        assert data == _expected(der)


def test_signed_certificates_match_scramp(signed: tuple[Signed, bytes]) -> None:
    # RFC 5929 §4.1, checked against scramp's implementation of it.
    case, der = signed
    try:
        theirs = _scramp(der)
    except scramp_core.ScramException:
        assert not case.scramp_reads  # a gap of asn1crypto's, listed in SIGNED
        return
    assert _binding(der) == theirs


# --------------------------------------------- MD5 and SHA-1: assembled and signed here

# (name, signatureAlgorithm AlgorithmIdentifier, key fixture, raw signing function)
WEAK: list[tuple[str, bytes, str, Callable[[Key, bytes], bytes]]] = [
    (
        "rsa-md5",
        _seq(_oid("1.2.840.113549.1.1.4"), NULL),
        "rsa_key",
        lambda key, tbs: key.sign(tbs, padding.PKCS1v15(), hashes.MD5()),
    ),
    (
        "rsa-sha1",
        _seq(_oid("1.2.840.113549.1.1.5"), NULL),
        "rsa_key",
        lambda key, tbs: key.sign(tbs, padding.PKCS1v15(), hashes.SHA1()),
    ),
    (
        "ecdsa-sha1",
        _seq(_oid("1.2.840.10045.4.1")),
        "ec_key",
        lambda key, tbs: key.sign(tbs, ec.ECDSA(hashes.SHA1())),
    ),
    (
        "dsa-sha1",
        _seq(_oid("1.2.840.10040.4.3")),
        "dsa_key",
        lambda key, tbs: key.sign(tbs, hashes.SHA1()),
    ),
    (
        # RFC 4055 §3.1: empty RSASSA-PSS-params mean SHA-1 and MGF1 with SHA-1, salt 20.
        "rsa-pss-defaults",
        _seq(_oid("1.2.840.113549.1.1.10"), _seq()),
        "rsa_key",
        lambda key, tbs: key.sign(
            tbs, padding.PSS(mgf=padding.MGF1(hashes.SHA1()), salt_length=20), hashes.SHA1()
        ),
    ),
]


@pytest.fixture(params=WEAK, ids=[case[0] for case in WEAK])
def weak(request: pytest.FixtureRequest) -> bytes:
    _name, algorithm, key_name, sign = request.param
    key = request.getfixturevalue(key_name)
    try:
        template = _self_signed(key, hashes.SHA256())
        return _resigned(template, algorithm, lambda tbs: sign(key, tbs))
    except UnsupportedAlgorithm as exc:  # pragma: no cover - OpenSSL without MD5 or SHA-1
        pytest.skip(f"cannot sign with this algorithm here: {exc}")


def test_md5_and_sha1_signatures_bind_with_sha256(weak: bytes) -> None:
    # RFC 5929 §4.1: "if ... that hash function is either MD5 or SHA-1, then use SHA-256".
    cert = x509.load_der_x509_certificate(weak)
    assert isinstance(cert.signature_hash_algorithm, hashes.MD5 | hashes.SHA1)
    data = _binding(weak)
    assert data == _expected(weak) == _sha256(weak)
    assert data == _scramp(weak)


def test_weak_certificates_really_are_signed(rsa_key: rsa.RSAPrivateKey) -> None:
    # RFC 5280 §4.1.1.2: the assembled certificates are real ones: the signature verifies.
    algorithm = _seq(_oid("1.2.840.113549.1.1.5"), NULL)
    der = _resigned(
        _self_signed(rsa_key, hashes.SHA256()),
        algorithm,
        lambda tbs: rsa_key.sign(tbs, padding.PKCS1v15(), hashes.SHA1()),
    )
    cert = x509.load_der_x509_certificate(der)
    rsa_key.public_key().verify(
        cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA1()
    )


# ------------------------------------------------------------------ undefined bindings


@pytest.mark.parametrize(
    ("key_name", "oid", "label"),
    [("ed25519_key", "1.3.101.112", "Ed25519"), ("ed448_key", "1.3.101.113", "Ed448")],
)
def test_eddsa_binding_is_undefined(
    request: pytest.FixtureRequest, key_name: str, oid: str, label: str
) -> None:
    # RFC 5929 §4.1: a signatureAlgorithm with no hash function: the binding is undefined.
    # (scramp/asn1crypto disagree: they hash Ed25519 certificates with SHA-512.)
    der = _der(_self_signed(request.getfixturevalue(key_name), None))
    assert x509.load_der_x509_certificate(der).signature_hash_algorithm is None
    with pytest.raises(ValueError, match=oid) as info:
        tls_server_end_point(der)
    assert label in str(info.value)
    assert "RFC 5929" in str(info.value)


def test_pss_with_a_different_mgf1_hash_is_undefined(rsa_key: rsa.RSAPrivateKey) -> None:
    # RFC 5929 §4.1 + RFC 4055 §3.1: SHA-256 for the message, MGF1 with SHA-384: two hash
    # functions, so the binding is undefined. (scramp uses the message hash alone.)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=32)
    der = _der(_self_signed(rsa_key, hashes.SHA256(), rsa_padding=pss))
    with pytest.raises(ValueError, match=r"1\.2\.840\.113549\.1\.1\.10.*two hash functions"):
        tls_server_end_point(der)


def _pss(*fields: bytes) -> bytes:
    return _seq(_oid("1.2.840.113549.1.1.10"), _seq(*fields))


def _hash_id(dotted: str, params: bytes = NULL) -> bytes:
    return _seq(_oid(dotted), params)


SHA1_OID, SHA256_OID, SHA384_OID = (
    "1.3.14.3.2.26",
    "2.16.840.1.101.3.4.2.1",
    "2.16.840.1.101.3.4.2.2",
)
MGF1_OID = "1.2.840.113549.1.1.8"


def _mgf1(dotted: str) -> bytes:
    return _tlv(0xA1, _seq(_oid(MGF1_OID), _hash_id(dotted)))


@pytest.mark.parametrize(
    ("algorithm", "binding_hash", "encodes_a_default"),
    [
        # RFC 4055 §3.1: fields left out take their defaults, SHA-1 and MGF1 with SHA-1,
        # and RFC 5929 §4.1 turns that SHA-1 into SHA-256.
        (_pss(), "sha256", False),
        # The defaults written out: DER forbids that (X.690 §11.5) and cryptography refuses
        # such certificates; the hash is still well defined, so they are accepted here.
        (_pss(_tlv(0xA0, _hash_id(SHA1_OID))), "sha256", True),
        (_pss(_mgf1(SHA1_OID)), "sha256", True),
        # RFC 4055 §2.1: a hash AlgorithmIdentifier's NULL parameters may be left out.
        (_pss(_tlv(0xA0, _seq(_oid(SHA384_OID))), _mgf1(SHA384_OID)), "sha384", False),
        (
            _pss(
                _tlv(0xA0, _hash_id(SHA256_OID)),
                _mgf1(SHA256_OID),
                _tlv(0xA2, _tlv(0x02, b"\x20")),
                _tlv(0xA3, _tlv(0x02, b"\x01")),
            ),
            "sha256",
            False,
        ),
    ],
    ids=["empty", "sha1-written", "mgf1-sha1-written", "sha384-no-null", "all-fields"],
)
def test_pss_parameters(
    rsa_key: rsa.RSAPrivateKey, algorithm: bytes, binding_hash: str, encodes_a_default: bool
) -> None:
    # RFC 5929 §4.1 with the RSASSA-PSS hash taken from RSASSA-PSS-params (RFC 4055 §3.1).
    der = _resigned(_self_signed(rsa_key, hashes.SHA256()), algorithm, _unsigned)
    assert _binding(der) == hashlib.new(binding_hash, der).digest() == _scramp(der)
    if not encodes_a_default:
        assert _binding(der) == _expected(der)


@pytest.mark.parametrize(
    ("algorithm", "message"),
    [
        # RFC 4055 §3.1: the parameters MUST be present in a signature's AlgorithmIdentifier.
        (_seq(_oid("1.2.840.113549.1.1.10")), "parameters missing"),
        (_seq(_oid("1.2.840.113549.1.1.10"), NULL), "RSASSA-PSS-params"),
        # SHA-256 for the message, the default MGF1 with SHA-1: two hash functions.
        (_pss(_tlv(0xA0, _hash_id(SHA256_OID))), "two hash functions"),
        (_pss(_mgf1(SHA256_OID)), "two hash functions"),
        (_pss(_tlv(0xA1, _seq(_oid("1.2.3.4"), _hash_id(SHA1_OID)))), "mask generation"),
        (_pss(_tlv(0xA1, _seq(_oid(MGF1_OID)))), "MGF1 without"),
        (_pss(_tlv(0xA0, _hash_id("1.2.840.113549.2.5"))), "1.2.840.113549.2.5"),
        (_pss(_tlv(0xA0, _hash_id(SHA256_OID, _tlv(0x02, b"\x01")))), "other than NULL"),
        (_pss(_mgf1(SHA256_OID), _tlv(0xA0, _hash_id(SHA256_OID))), "unexpected field"),
        (_pss(_tlv(0xA4, NULL)), "unexpected field"),
        (_pss(_tlv(0xA2, NULL)), "INTEGER"),
        (_pss(_tlv(0xA0, _hash_id(SHA256_OID) + NULL)), "after the hashAlgorithm"),
        (_pss(_tlv(0xA1, _seq(_oid(MGF1_OID), _hash_id(SHA1_OID)) + NULL)), "maskGenAlgorithm"),
        (_pss(_tlv(0xA2, _tlv(0x02, b"\x14") + NULL)), "trailing data in RSASSA-PSS-params"),
        # RFC 5929 §4.1: an algorithm this module knows no hash for.
        (_seq(_oid("1.2.840.113549.1.1.2"), NULL), "1.2.840.113549.1.1.2"),  # md2WithRSA
        (_seq(_oid("2.16.840.1.101.3.4.3.17")), "2.16.840.1.101.3.4.3.17"),  # ML-DSA-44
        (_seq(_oid("1.2.840.113549.1.1.11"), NULL, NULL), "trailing data"),
    ],
    ids=[
        "pss-absent",
        "pss-null",
        "pss-sha256-default-mgf",
        "pss-default-hash-mgf-sha256",
        "pss-unknown-mgf",
        "pss-mgf1-no-hash",
        "pss-md5-unknown",
        "pss-hash-bad-params",
        "pss-fields-out-of-order",
        "pss-unknown-field",
        "pss-salt-not-integer",
        "pss-hash-trailing",
        "pss-mgf-trailing",
        "pss-salt-trailing",
        "md2",
        "ml-dsa",
        "two-params",
    ],
)
def test_undefined_or_malformed_algorithms(
    rsa_key: rsa.RSAPrivateKey, algorithm: bytes, message: str
) -> None:
    # RFC 5929 §4.1: no single known hash function -> ValueError naming what was wrong.
    der = _resigned(_self_signed(rsa_key, hashes.SHA256()), algorithm, _unsigned)
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        tls_server_end_point(der)
    # The message names the signature algorithm by its OID.
    named = re.escape(PSS) if algorithm[2:].startswith(_oid(PSS)) else r"\d\.\d+(\.\d+)+"
    assert re.search(named, str(info.value))


# --------------------------------------------------------------------------- PEM input


@pytest.fixture(scope="module")
def rsa_cert(rsa_key: rsa.RSAPrivateKey) -> x509.Certificate:
    return _self_signed(rsa_key, hashes.SHA384())


def test_pem_str_and_bytes_give_the_der_result(rsa_cert: x509.Certificate) -> None:
    # RFC 7468 §5.1: a PEM CERTIFICATE block is the DER in base64; RFC 5929 §4.1 hashes DER.
    der = _der(rsa_cert)
    pem = rsa_cert.public_bytes(serialization.Encoding.PEM)
    assert tls_server_end_point(pem) == tls_server_end_point(der)
    assert tls_server_end_point(pem.decode("ascii")) == tls_server_end_point(der)
    assert tls_server_end_point(bytearray(der)) == tls_server_end_point(der)  # type: ignore[arg-type]
    assert tls_server_end_point(memoryview(pem)) == tls_server_end_point(der)  # type: ignore[arg-type]


def test_pem_uses_the_first_certificate_block(
    rsa_cert: x509.Certificate, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    # RFC 7468 §2, §5.1: explanatory text and other blocks may surround it; a chain file
    # is leaf first, and RFC 5929 §4.1 binds the end-entity certificate.
    other = _self_signed(ec_key, hashes.SHA512()).public_bytes(serialization.Encoding.PEM)
    key_pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pem = rsa_cert.public_bytes(serialization.Encoding.PEM)
    contents = b"Subject: CN=mail.example.org\n" + key_pem + b"\r\n" + pem + other
    assert tls_server_end_point(contents) == tls_server_end_point(_der(rsa_cert))
    text = "# the server's certificate, é\n" + contents.decode("ascii")
    assert tls_server_end_point(text) == tls_server_end_point(_der(rsa_cert))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not a certificate",
        "-----BEGIN CERTIFICATE-----\nMIIB!!\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nMIIBa\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n",
        "-----BEGIN PUBLIC KEY-----\nMAMCAQE=\n-----END PUBLIC KEY-----\n",
    ],
)
def test_bad_pem_raises_value_error(text: str) -> None:
    # RFC 7468 §3: base64 inside the CERTIFICATE block; anything else is not a certificate.
    with pytest.raises(ValueError):
        tls_server_end_point(text)
    with pytest.raises(ValueError):
        tls_server_end_point(text.encode())


def test_not_bytes_or_str_is_a_type_error() -> None:
    # RFC 5929 §4.1 hashes octets: other types are the caller's bug.
    with pytest.raises(TypeError):
        tls_server_end_point(12345)  # type: ignore[arg-type]


def test_trustme_server_certificate() -> None:
    # RFC 5929 §4.1 on a CA-issued server certificate, as a TLS server would load it.
    certs = test_certs()
    leaf_pem = certs.cert.cert_chain_pems[0].bytes()
    der = x509.load_pem_x509_certificate(leaf_pem).public_bytes(serialization.Encoding.DER)
    cb = tls_server_end_point(der)
    assert cb.data == _expected(der) == _scramp(der)
    assert tls_server_end_point(leaf_pem) == cb
    # The certificate file the CLI is given (leaf, then the chain) binds the leaf.
    assert tls_server_end_point(certs.cert_pem.read_text()) == cb


# ---------------------------------------------------------------------- malformed DER


@pytest.mark.parametrize(
    ("der", "message"),
    [
        (b"", "neither"),
        (b"\x30", "truncated"),
        (b"\x30\x80\x00\x00", "indefinite"),
        (b"\x30\x81\x05" + bytes(5), "non-minimal"),
        (b"\x30\x82\x00\x05" + bytes(5), "non-minimal"),
        (b"\x30\x85\x00\x00\x00\x00\x05", "bad DER length"),
        (b"\x30\x84\xff\xff\xff\xff", "past the end"),
        (b"\x30\x00\x00", "trailing data"),
        (b"\x30\x02\x05\x00", "tbsCertificate"),
        (b"\x30\x04\x30\x00\x30\x00", "truncated"),
        (b"\x30\x06\x30\x00\x30\x00\x04\x00", "signatureValue"),
        (b"\x30\x08\x30\x00\x30\x00\x03\x00\x05\x00", "inside the Certificate"),
        (b"\x30\x08\x30\x00\x30\x02\x05\x00\x03\x00", "algorithm OID"),
        (b"\x30\x08\x30\x00\x30\x02\x06\x00\x03\x00", "OBJECT IDENTIFIER length"),
        (b"\x30\x09\x30\x00\x30\x03\x06\x01\x81\x03\x00", "truncated OBJECT"),
        (b"\x30\x0a\x30\x00\x30\x04\x06\x02\x80\x01\x03\x00", "non-minimal OBJECT"),
        (b"\x30\x07\x30\x00\x3f\x01\x00\x03\x00", "tag 0x3f"),
    ],
)
def test_malformed_der(der: bytes, message: str) -> None:
    # X.690 §8.1, §10.1 (DER): definite, minimal lengths that fit; RFC 5280 §4.1 layout.
    with pytest.raises(ValueError, match=message):
        tls_server_end_point(der)


def test_error_names_unknown_oid() -> None:
    # RFC 5929 §4.1: an algorithm with no known hash is reported by its OID (X.690 §8.19).
    algorithm = _seq(_oid("2.999.1234567890123"))
    der = _seq(_seq(), algorithm, _tlv(0x03, b"\x00"))
    with pytest.raises(ValueError, match=r"2\.999\.1234567890123"):
        tls_server_end_point(der)


# ----------------------------------------------------------------------------- fuzzing


def _outcome(data: bytes | str) -> None:
    """Any input either binds or raises ValueError (RFC 5929 §4.1 defines no other outcome)."""
    try:
        cb = tls_server_end_point(data)
    except ValueError:
        return
    assert cb.type == TLS_SERVER_END_POINT
    assert len(cb.data) in (28, 32, 48, 64)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    # RFC 5929 §4.1 on garbage: ValueError, never IndexError or anything else.
    _outcome(data)
    _outcome(b"\x30\x82" + data)


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text(text: str) -> None:
    # RFC 7468: text without a good CERTIFICATE block is a ValueError.
    _outcome(text)
    _outcome("-----BEGIN CERTIFICATE-----\n" + text + "\n-----END CERTIFICATE-----\n")


@pytest.fixture(scope="module")
def pss_der(rsa_key: rsa.RSAPrivateKey) -> bytes:
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    return _der(_self_signed(rsa_key, hashes.SHA256(), rsa_padding=pss))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_mutated_certificates(pss_der: bytes, data: st.DataObject) -> None:
    # RFC 5929 §4.1 on damaged certificates: truncated, bit-flipped, with bytes appended.
    der = bytearray(pss_der)
    tail = len(der) - 256 - 80  # the signatureAlgorithm and signatureValue headers
    kind = data.draw(st.sampled_from(["truncate", "flip", "flip-tail", "append"]))
    if kind == "truncate":
        del der[data.draw(st.integers(0, len(der) - 1)) :]
    elif kind in ("flip", "flip-tail"):
        low = tail if kind == "flip-tail" else 0
        for _ in range(data.draw(st.integers(1, 3))):
            pos = data.draw(st.integers(low, len(der) - 1))
            der[pos] ^= 1 << data.draw(st.integers(0, 7))
    else:
        der += data.draw(st.binary(min_size=1, max_size=8))
    _outcome(bytes(der))


def test_truncations_all_raise(pss_der: bytes) -> None:
    # RFC 5280 §4.1 / X.690 §8.1.3: every proper prefix of a certificate is malformed.
    for end in range(len(pss_der)):
        with pytest.raises(ValueError):
            tls_server_end_point(pss_der[:end])
    assert tls_server_end_point(pss_der).data == _expected(pss_der)
