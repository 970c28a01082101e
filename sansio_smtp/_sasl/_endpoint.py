# "tls-server-end-point" channel binding data (RFC 5929 §4.1) for the SCRAM -PLUS mechanisms:
# a hash of the server's end-entity certificate, octet for octet as sent in the TLS
# Certificate message, with the hash chosen from the certificate's signatureAlgorithm.
#
# Strategy: read just enough of the certificate to find its outer signatureAlgorithm
# (RFC 5280 §4.1.1.2), map that to the one hash function the signature uses, apply the
# RFC 5929 §4.1 rule (MD5 / SHA-1 -> SHA-256; none or several -> undefined), hash the DER.
#   Certificate ::= SEQUENCE { tbsCertificate TBSCertificate,            -- RFC 5280 §4.1
#                              signatureAlgorithm AlgorithmIdentifier,
#                              signatureValue BIT STRING }
#   AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER,      -- RFC 5280 §4.1.1.2
#                                      parameters ANY DEFINED BY algorithm OPTIONAL }
# RSASSA-PSS names its hash functions in its parameters (RFC 4055 §3.1), so that is the one
# algorithm whose parameters are read.
# Rules: the DER reader is small and strict: one-byte tags, definite minimal lengths
# (X.690 §8.1.3, §10.1), every length checked against the bytes that remain, no recursion,
# a fixed number of steps. Other algorithms' parameters are only checked to be one element;
# PSS fields that spell out their DEFAULT (not DER, X.690 §11.5) are accepted, as the hash
# they name is still one hash. Anything malformed or unsupported raises ValueError; no other
# exception escapes for any input bytes. PEM input (RFC 7468 §5.1) is decoded with base64 here:
# the core never imports ssl. No certificate validation: the TLS library did that.
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Final

from ._base import TLS_SERVER_END_POINT, ChannelBinding

__all__ = ["tls_server_end_point"]

# ------------------------------------------------------------------------- object ids

# Signature algorithm OID -> the hash function the signature uses (hashlib name).
_SIGNATURE_HASHES: Final[dict[str, str]] = {
    # PKCS #1 v1.5 (RFC 8017 App. C; RFC 4055 §5)
    "1.2.840.113549.1.1.4": "md5",  # md5WithRSAEncryption
    "1.2.840.113549.1.1.5": "sha1",  # sha1WithRSAEncryption
    "1.2.840.113549.1.1.14": "sha224",  # sha224WithRSAEncryption
    "1.2.840.113549.1.1.11": "sha256",  # sha256WithRSAEncryption
    "1.2.840.113549.1.1.12": "sha384",  # sha384WithRSAEncryption
    "1.2.840.113549.1.1.13": "sha512",  # sha512WithRSAEncryption
    # ECDSA (RFC 3279 §2.2.3, RFC 5758 §3.2)
    "1.2.840.10045.4.1": "sha1",  # ecdsa-with-SHA1
    "1.2.840.10045.4.3.1": "sha224",  # ecdsa-with-SHA224
    "1.2.840.10045.4.3.2": "sha256",  # ecdsa-with-SHA256
    "1.2.840.10045.4.3.3": "sha384",  # ecdsa-with-SHA384
    "1.2.840.10045.4.3.4": "sha512",  # ecdsa-with-SHA512
    # DSA (RFC 3279 §2.2.2, RFC 5758 §3.1; NIST CSOR sigAlgs arc 2.16.840.1.101.3.4.3)
    "1.2.840.10040.4.3": "sha1",  # id-dsa-with-sha1
    "2.16.840.1.101.3.4.3.1": "sha224",  # id-dsa-with-sha224
    "2.16.840.1.101.3.4.3.2": "sha256",  # id-dsa-with-sha256
    "2.16.840.1.101.3.4.3.3": "sha384",  # id-dsa-with-sha384
    "2.16.840.1.101.3.4.3.4": "sha512",  # id-dsa-with-sha512
    "2.16.840.1.101.3.4.3.5": "sha3_224",  # id-dsa-with-sha3-224
    "2.16.840.1.101.3.4.3.6": "sha3_256",  # id-dsa-with-sha3-256
    "2.16.840.1.101.3.4.3.7": "sha3_384",  # id-dsa-with-sha3-384
    "2.16.840.1.101.3.4.3.8": "sha3_512",  # id-dsa-with-sha3-512
    # ECDSA and PKCS #1 v1.5 with SHA-3 (RFC 8702 §3.2 for the ECDSA ones; NIST CSOR)
    "2.16.840.1.101.3.4.3.9": "sha3_224",  # id-ecdsa-with-sha3-224
    "2.16.840.1.101.3.4.3.10": "sha3_256",  # id-ecdsa-with-sha3-256
    "2.16.840.1.101.3.4.3.11": "sha3_384",  # id-ecdsa-with-sha3-384
    "2.16.840.1.101.3.4.3.12": "sha3_512",  # id-ecdsa-with-sha3-512
    "2.16.840.1.101.3.4.3.13": "sha3_224",  # id-rsassa-pkcs1-v1_5-with-sha3-224
    "2.16.840.1.101.3.4.3.14": "sha3_256",  # id-rsassa-pkcs1-v1_5-with-sha3-256
    "2.16.840.1.101.3.4.3.15": "sha3_384",  # id-rsassa-pkcs1-v1_5-with-sha3-384
    "2.16.840.1.101.3.4.3.16": "sha3_512",  # id-rsassa-pkcs1-v1_5-with-sha3-512
}

_RSASSA_PSS: Final = "1.2.840.113549.1.1.10"  # id-RSASSA-PSS, RFC 4055 §3
_MGF1: Final = "1.2.840.113549.1.1.8"  # id-mgf1, RFC 4055 §2.2

# Signature algorithms that hash with no single, separate hash function (PureEdDSA hashes
# inside the signature, RFC 8032 §5.1.6 / §5.2.6): tls-server-end-point is undefined.
_NO_SINGLE_HASH: Final[dict[str, str]] = {
    "1.3.101.112": "Ed25519",  # RFC 8410 §3
    "1.3.101.113": "Ed448",  # RFC 8410 §3
}

# Hash function OID -> hashlib name, for the RSASSA-PSS parameters (RFC 4055 §2.1;
# SHA-3: NIST CSOR hashAlgs arc 2.16.840.1.101.3.4.2).
_HASH_OIDS: Final[dict[str, str]] = {
    "1.3.14.3.2.26": "sha1",  # id-sha1
    "2.16.840.1.101.3.4.2.4": "sha224",  # id-sha224
    "2.16.840.1.101.3.4.2.1": "sha256",  # id-sha256
    "2.16.840.1.101.3.4.2.2": "sha384",  # id-sha384
    "2.16.840.1.101.3.4.2.3": "sha512",  # id-sha512
    "2.16.840.1.101.3.4.2.7": "sha3_224",  # id-sha3-224
    "2.16.840.1.101.3.4.2.8": "sha3_256",  # id-sha3-256
    "2.16.840.1.101.3.4.2.9": "sha3_384",  # id-sha3-384
    "2.16.840.1.101.3.4.2.10": "sha3_512",  # id-sha3-512
}

# RFC 5929 §4.1: a signature with MD5 or SHA-1 binds with SHA-256 instead.
_UPGRADED: Final[dict[str, str]] = {"md5": "sha256", "sha1": "sha256"}

_PSS_DEFAULT_HASH: Final = "sha1"  # RFC 4055 §3.1: hashAlgorithm DEFAULT sha1Identifier

# ------------------------------------------------------------------------ DER reading

_SEQUENCE: Final = 0x30
_OBJECT_IDENTIFIER: Final = 0x06
_NULL: Final = b"\x05\x00"  # a whole NULL element
_INTEGER: Final = 0x02
_BIT_STRING: Final = 0x03
_MAX_LENGTH_OCTETS: Final = 4  # lengths below 4 GiB; a certificate is far smaller
_MAX_OID_OCTETS: Final = 64  # every OID above takes at most 11 octets


def _tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """One DER element in ``data[pos:end]``: (tag, content start, content end)."""
    if end - pos < 2:
        raise ValueError("truncated DER element")
    tag = data[pos]
    if tag & 0x1F == 0x1F:  # X.690 §8.1.2.4: high tag numbers, never used here
        raise ValueError(f"unexpected DER tag 0x{tag:02x}")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:  # X.690 §8.1.3.4: short form
        length = first
    elif first == 0x80:  # X.690 §10.1: DER forbids the indefinite form
        raise ValueError("indefinite DER length")
    else:  # X.690 §8.1.3.5: long form, minimal (§10.1)
        count = first & 0x7F
        if count > _MAX_LENGTH_OCTETS or count > end - pos:
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        if data[pos] == 0 or length < 0x80:
            raise ValueError("non-minimal DER length")
        pos += count
    if length > end - pos:
        raise ValueError("DER length runs past the end of the data")
    return tag, pos, pos + length


def _expect(data: bytes, pos: int, end: int, tag: int, what: str) -> tuple[int, int]:
    """The (start, end) of the content of an element with ``tag`` at ``pos``."""
    got, start, stop = _tlv(data, pos, end)
    if got != tag:
        raise ValueError(f"expected {what} (tag 0x{tag:02x}), got tag 0x{got:02x}")
    return start, stop


def _oid(content: bytes) -> str:
    """An OBJECT IDENTIFIER's content octets as dotted decimal (X.690 §8.19)."""
    if not content or len(content) > _MAX_OID_OCTETS:
        raise ValueError("bad OBJECT IDENTIFIER length")
    if content[-1] & 0x80:
        raise ValueError("truncated OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    fresh = True
    for octet in content:
        if fresh and octet == 0x80:  # X.690 §8.19.2: no leading 0x80 octet
            raise ValueError("non-minimal OBJECT IDENTIFIER")
        value = (value << 7) | (octet & 0x7F)
        fresh = not octet & 0x80
        if fresh:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)  # X.690 §8.19.4: the first two arcs share one number
    return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))


def _algorithm(data: bytes, start: int, end: int) -> tuple[str, tuple[int, int] | None]:
    """An AlgorithmIdentifier's content (RFC 5280 §4.1.1.2): the algorithm OID and the
    (start, end) of its whole parameters element, or None when it has none."""
    oid_start, oid_end = _expect(data, start, end, _OBJECT_IDENTIFIER, "an algorithm OID")
    oid = _oid(data[oid_start:oid_end])
    if oid_end == end:
        return oid, None
    _tag, _start, params_end = _tlv(data, oid_end, end)
    if params_end != end:
        raise ValueError(f"trailing data in the AlgorithmIdentifier of {oid}")
    return oid, (oid_end, params_end)


def _hash_algorithm(data: bytes, start: int, end: int, what: str) -> str:
    """A HashAlgorithm (RFC 4055 §2.1): an AlgorithmIdentifier SEQUENCE taking all of
    ``data[start:end]``, whose parameters are absent or NULL."""
    seq_start, seq_end = _expect(data, start, end, _SEQUENCE, what)
    if seq_end != end:
        raise ValueError(f"trailing data after the {what}")
    oid, params = _algorithm(data, seq_start, seq_end)
    if params is not None and data[params[0] : params[1]] != _NULL:
        raise ValueError(f"the {what} {oid} has parameters other than NULL")
    try:
        return _HASH_OIDS[oid]
    except KeyError:
        raise ValueError(f"unsupported {what} {oid}") from None


def _pss_hash(data: bytes, params: tuple[int, int] | None) -> str:
    """The single hash of an RSASSA-PSS signature (RFC 4055 §3.1):
        RSASSA-PSS-params ::= SEQUENCE {
            hashAlgorithm     [0] HashAlgorithm    DEFAULT sha1Identifier,
            maskGenAlgorithm  [1] MaskGenAlgorithm DEFAULT mgf1SHA1Identifier,
            saltLength        [2] INTEGER          DEFAULT 20,
            trailerField      [3] INTEGER          DEFAULT trailerFieldBC }
    The message hash and the MGF1 hash are two hash functions unless they are the same."""
    if params is None:
        # RFC 4055 §3.1: the parameters MUST be present in a signature's AlgorithmIdentifier.
        raise ValueError("parameters missing from the signature's AlgorithmIdentifier")
    start, end = _expect(data, params[0], params[1], _SEQUENCE, "RSASSA-PSS-params")
    message_hash = mgf_hash = _PSS_DEFAULT_HASH
    pos = start
    last = -1
    while pos < end:  # at most four fields: the tags must rise
        tag, field_start, field_end = _tlv(data, pos, end)
        number = tag - 0xA0  # [n] EXPLICIT, constructed, context-specific
        if not 0 <= number <= 3 or number <= last:
            raise ValueError(f"unexpected field (tag 0x{tag:02x}) in RSASSA-PSS-params")
        last = number
        if number == 0:
            message_hash = _hash_algorithm(data, field_start, field_end, "hashAlgorithm")
        elif number == 1:
            # MaskGenAlgorithm: { id-mgf1, HashAlgorithm } (RFC 4055 §2.2)
            mgf_start, mgf_end = _expect(
                data, field_start, field_end, _SEQUENCE, "maskGenAlgorithm"
            )
            if mgf_end != field_end:
                raise ValueError("trailing data after maskGenAlgorithm")
            mgf, mgf_params = _algorithm(data, mgf_start, mgf_end)
            if mgf != _MGF1:
                raise ValueError(f"unsupported RSASSA-PSS mask generation function {mgf}")
            if mgf_params is None:
                raise ValueError("MGF1 without its hash function in RSASSA-PSS-params")
            mgf_hash = _hash_algorithm(data, *mgf_params, "MGF1 hash function")
        else:  # saltLength, trailerField: not needed, but must be well-formed INTEGERs
            _start, int_end = _expect(data, field_start, field_end, _INTEGER, "an INTEGER")
            if int_end != field_end:
                raise ValueError("trailing data in RSASSA-PSS-params")
        pos = field_end
    if mgf_hash != message_hash:
        raise ValueError(
            f"hash {message_hash} with MGF1 hash {mgf_hash} are two hash functions, "
            "so tls-server-end-point is undefined (RFC 5929 §4.1)"
        )
    return message_hash


def _signature_hash(der: bytes) -> str:
    """The hash function the certificate's signatureAlgorithm uses (RFC 5280 §4.1)."""
    cert_start, cert_end = _expect(der, 0, len(der), _SEQUENCE, "a Certificate SEQUENCE")
    if cert_end != len(der):
        raise ValueError("trailing data after the Certificate")
    _tbs_start, tbs_end = _expect(der, cert_start, cert_end, _SEQUENCE, "tbsCertificate")
    alg_start, alg_end = _expect(der, tbs_end, cert_end, _SEQUENCE, "signatureAlgorithm")
    _sig_start, sig_end = _expect(der, alg_end, cert_end, _BIT_STRING, "signatureValue")
    if sig_end != cert_end:
        raise ValueError("trailing data inside the Certificate")
    oid, params = _algorithm(der, alg_start, alg_end)
    if oid == _RSASSA_PSS:
        try:
            return _pss_hash(der, params)
        except ValueError as exc:
            raise ValueError(f"RSASSA-PSS signature algorithm {oid}: {exc}") from None
    if oid in _SIGNATURE_HASHES:
        return _SIGNATURE_HASHES[oid]
    if oid in _NO_SINGLE_HASH:
        raise ValueError(
            f"tls-server-end-point is undefined for signature algorithm {oid} "
            f"({_NO_SINGLE_HASH[oid]}): it uses no single hash function (RFC 5929 §4.1)"
        )
    raise ValueError(
        f"unsupported certificate signature algorithm {oid}: no known hash function "
        "for tls-server-end-point (RFC 5929 §4.1)"
    )


# ------------------------------------------------------------------------------- PEM

# RFC 7468 §5.1 (strict and lax text): explanatory text may come before the block, other
# blocks (a private key, the rest of the chain) around it; base64 with whitespace.
_PEM_CERTIFICATE_RE: Final = re.compile(
    rb"-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]*)-----END CERTIFICATE-----"
)


def _der(certificate: bytes | str) -> bytes:
    """DER bytes as given, or decoded from the first PEM CERTIFICATE block."""
    if isinstance(certificate, str):
        text = certificate.encode("utf-8", "replace")  # only the base64 must be ASCII
    elif isinstance(certificate, bytes | bytearray | memoryview):
        text = bytes(certificate)
        if text[:1] == bytes((_SEQUENCE,)):  # DER: a Certificate SEQUENCE
            return text
    else:
        raise TypeError(f"a certificate is bytes or str, not {type(certificate).__name__}")
    match = _PEM_CERTIFICATE_RE.search(text)
    if match is None:
        raise ValueError("neither a DER certificate nor a PEM CERTIFICATE block (RFC 7468)")
    try:
        return base64.b64decode(b"".join(match[1].split()), validate=True)
    except binascii.Error:
        raise ValueError("bad base64 in the PEM CERTIFICATE block (RFC 7468 §3)") from None


# ------------------------------------------------------------------------------- API


def tls_server_end_point(certificate: bytes | str) -> ChannelBinding:
    """The "tls-server-end-point" channel binding (RFC 5929 §4.1) of a server certificate.

    ``certificate`` is the server's end-entity certificate: DER bytes (as
    ``SSLSocket.getpeercert(binary_form=True)`` returns them), or PEM text, str or bytes,
    of which the first CERTIFICATE block is used (RFC 7468; e.g. a certificate file's
    contents, leaf first). The data is the certificate's DER hashed with the hash function
    of its signatureAlgorithm, except that MD5 and SHA-1 become SHA-256.

    Raises ValueError when the input is not a well-formed certificate, or when the binding
    is undefined (RFC 5929 §4.1): a signature algorithm with no single hash function
    (Ed25519, Ed448; RSASSA-PSS whose MGF1 hash differs from its message hash) or one this
    module does not know. The message names the algorithm's OID.
    """
    der = _der(certificate)
    name = _signature_hash(der)
    name = _UPGRADED.get(name, name)
    return ChannelBinding(type=TLS_SERVER_END_POINT, data=hashlib.new(name, der).digest())
