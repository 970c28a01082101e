# The PROXY protocol (HAProxy's, versions 1 and 2), sans-IO: a load balancer in front of
# the server writes one header before the client's first byte, naming the real client's
# address. The server reads that header, and only that header, then hands the rest of the
# stream to the SMTP Connection.
#
# Rules: the header is required when the server is configured for it and refused
# otherwise (the spec: "the receiver MUST NOT try to guess whether the protocol header is
# present"); nothing past its end is ever consumed, so no SMTP byte can be swallowed into or
# smuggled through it; a version 1 line longer than 107 octets, a version 2 header longer
# than ``max_length``, an unknown version, command, family or protocol, an address that does
# not parse or a TLV that overruns its block is a ProxyProtocolError, as early as the first
# octet that shows it (a bad prefix is refused before any more is read).
"""PROXY protocol v1/v2 headers: parse what a load balancer (HAProxy, a cloud TCP
balancer) sends before the SMTP stream, and write them (for clients and tests).

>>> header, used = parse_proxy_header(b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\\r\\nEHLO")
>>> header.source, used
(('192.0.2.7', 40000), 44)
>>> parse_proxy_header(header.to_bytes(version=2))[0] == attrs.evolve(header, version=2)
True
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from typing import Final, final

import attrs

__all__ = [
    "MAX_V1_LENGTH",
    "V2_SIGNATURE",
    "ProxyCommand",
    "ProxyHeader",
    "ProxyProtocolError",
    "parse_proxy_header",
]

#: A version 1 header's longest line, CRLF included ("PROXY UNKNOWN" with two IPv6
#: addresses and ports): the receiver need never read more to find its end.
MAX_V1_LENGTH: Final = 107
#: The 12 octets that start a version 2 header (they cannot start any text protocol).
V2_SIGNATURE: Final = b"\r\n\r\n\x00\r\nQUIT\n"
_V1_PREFIX: Final = b"PROXY "
_V2_FIXED: Final = 16  # signature, version/command, family/protocol, length
#: The default bound on a version 2 header (addresses and TLVs): room for every address
#: family and the TLVs balancers send (ALPN, authority, unique id, TLS details).
DEFAULT_MAX_V2_LENGTH: Final = 4096

_AF_INET, _AF_INET6, _AF_UNIX = 0x1, 0x2, 0x3
_ADDRESS_SIZES: Final = {0x0: 0, _AF_INET: 12, _AF_INET6: 36, _AF_UNIX: 216}
_TRANSPORTS: Final = {0x0: "UNSPEC", 0x1: "STREAM", 0x2: "DGRAM"}


class ProxyProtocolError(ValueError):
    """A PROXY protocol header was required and what came is not a valid one: the server
    must close the connection without speaking SMTP."""


class ProxyCommand(enum.Enum):
    #: The balancer relays a client: ``source`` and ``destination`` are that client's.
    PROXY = "PROXY"
    #: The balancer speaks for itself (a health check; v1 UNKNOWN): use the socket's
    #: own addresses.
    LOCAL = "LOCAL"


Address = tuple[str, int] | str  # (host, port) for TCP, a path for AF_UNIX


@final
@attrs.frozen(kw_only=True)
class ProxyHeader:
    """One PROXY protocol header.

    ``source``/``destination``: ``(address, port)``, a socket path (AF_UNIX, v2 only), or
    None when the header carries none (LOCAL, v1 UNKNOWN, v2 AF_UNSPEC). ``transport``:
    "STREAM", "DGRAM" or "UNSPEC". ``tlvs``: the version 2 type-length-value entries,
    as (type, value) in order."""

    version: int = 1
    command: ProxyCommand = ProxyCommand.PROXY
    source: Address | None = None
    destination: Address | None = None
    transport: str = "STREAM"
    tlvs: tuple[tuple[int, bytes], ...] = ()

    def to_bytes(self, *, version: int | None = None) -> bytes:
        """The header on the wire, as ``version`` (default: its own)."""
        version = self.version if version is None else version
        if version == 1:
            return _write_v1(self)
        if version == 2:
            return _write_v2(self)
        raise ValueError(f"PROXY protocol version {version} does not exist (1 or 2)")


def parse_proxy_header(
    data: bytes | bytearray, *, max_length: int = DEFAULT_MAX_V2_LENGTH
) -> tuple[ProxyHeader, int] | None:
    """The header at the start of ``data`` and its length in octets, or None when more
    octets are needed to tell. Raises ProxyProtocolError as soon as ``data`` cannot start a
    valid header. The octets after the header belong to SMTP: pass ``data[length:]`` on."""
    head = bytes(data[: len(V2_SIGNATURE)])
    if not head:
        return None
    if V2_SIGNATURE.startswith(head):
        return _parse_v2(data, max_length) if len(head) == len(V2_SIGNATURE) else None
    if not (head.startswith(_V1_PREFIX) or _V1_PREFIX.startswith(head)):
        raise ProxyProtocolError("no PROXY protocol header where one is required")
    window = bytes(data[:MAX_V1_LENGTH])
    end = window.find(b"\r\n")
    if end < 0:
        if b"\n" in window or b"\r" in window[:-1]:
            raise ProxyProtocolError("a PROXY v1 line must end with CRLF")
        if len(window) >= MAX_V1_LENGTH:
            raise ProxyProtocolError(f"a PROXY v1 line longer than {MAX_V1_LENGTH} octets")
        return None
    return _parse_v1(window[:end]), end + 2


# ----------------------------------------------------------------------------- version 1


def _port(text: str) -> int:
    if not (text.isdigit() and text.isascii() and len(text) <= 5) or (
        len(text) > 1 and text[0] == "0"
    ):
        raise ProxyProtocolError(f"not a port: {text[:8]!r}")
    port = int(text)
    if port > 65535:
        raise ProxyProtocolError(f"not a port: {text!r}")
    return port


def _ip(text: str, family: type[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> str:
    try:
        return str(family(text))
    except ValueError:
        raise ProxyProtocolError(f"not an {family.__name__[:4]} address: {text[:45]!r}") from None


def _parse_v1(line: bytes) -> ProxyHeader:
    if not line.isascii():
        raise ProxyProtocolError("a PROXY v1 line is ASCII")
    words = line.decode("ascii").split(" ")
    if len(words) >= 2 and words[1] == "UNKNOWN":
        # The balancer could not tell (or speaks for itself): the rest is ignored.
        return ProxyHeader(version=1, command=ProxyCommand.LOCAL, transport="UNSPEC")
    if len(words) != 6 or words[1] not in ("TCP4", "TCP6"):
        raise ProxyProtocolError("a PROXY v1 line is PROXY TCP4|TCP6 src dst sport dport")
    family = ipaddress.IPv4Address if words[1] == "TCP4" else ipaddress.IPv6Address
    return ProxyHeader(
        version=1,
        source=(_ip(words[2], family), _port(words[4])),
        destination=(_ip(words[3], family), _port(words[5])),
    )


def _write_v1(header: ProxyHeader) -> bytes:
    src, dst = header.source, header.destination
    if header.command is ProxyCommand.LOCAL or src is None or dst is None:
        return b"PROXY UNKNOWN\r\n"
    if isinstance(src, str) or isinstance(dst, str) or header.transport != "STREAM":
        raise ValueError("PROXY v1 carries TCP addresses only")
    six = ipaddress.ip_address(src[0]).version == 6
    if ipaddress.ip_address(dst[0]).version != (6 if six else 4):
        raise ValueError("source and destination must be of one address family")
    proto = "TCP6" if six else "TCP4"
    return f"PROXY {proto} {src[0]} {dst[0]} {src[1]} {dst[1]}\r\n".encode("ascii")


# ----------------------------------------------------------------------------- version 2


def _parse_v2(data: bytes | bytearray, max_length: int) -> tuple[ProxyHeader, int] | None:
    if len(data) < _V2_FIXED:
        ver_cmd = data[12] if len(data) > 12 else None
        if ver_cmd is not None:
            _version_command(ver_cmd)
        if len(data) > 13:
            _family_transport(data[13])
        return None
    command = _version_command(data[12])
    family, transport = _family_transport(data[13])
    (length,) = struct.unpack_from("!H", data, 14)
    if _V2_FIXED + length > max_length:
        raise ProxyProtocolError(f"a PROXY v2 header of {_V2_FIXED + length} octets is too long")
    if len(data) < _V2_FIXED + length:
        return None
    block = bytes(data[_V2_FIXED : _V2_FIXED + length])
    size = _ADDRESS_SIZES[family]
    if len(block) < size:
        raise ProxyProtocolError("the PROXY v2 address block is shorter than its family's")
    source: Address | None = None
    destination: Address | None = None
    if command is ProxyCommand.PROXY and family == _AF_INET:
        s, d, sp, dp = struct.unpack_from("!4s4sHH", block)
        source = (str(ipaddress.IPv4Address(s)), sp)
        destination = (str(ipaddress.IPv4Address(d)), dp)
    elif command is ProxyCommand.PROXY and family == _AF_INET6:
        s, d, sp, dp = struct.unpack_from("!16s16sHH", block)
        source = (str(ipaddress.IPv6Address(s)), sp)
        destination = (str(ipaddress.IPv6Address(d)), dp)
    elif command is ProxyCommand.PROXY and family == _AF_UNIX:
        source = _unix_path(block[:108])
        destination = _unix_path(block[108:216])
    header = ProxyHeader(
        version=2,
        command=command,
        source=source,
        destination=destination,
        transport=transport,
        tlvs=_tlvs(block[size:]),
    )
    return header, _V2_FIXED + length


def _version_command(octet: int) -> ProxyCommand:
    if octet >> 4 != 2:
        raise ProxyProtocolError(f"PROXY v2 header of version {octet >> 4}")
    if octet & 0xF == 0:
        return ProxyCommand.LOCAL
    if octet & 0xF == 1:
        return ProxyCommand.PROXY
    raise ProxyProtocolError(f"unknown PROXY v2 command {octet & 0xF}")


def _family_transport(octet: int) -> tuple[int, str]:
    family, transport = octet >> 4, octet & 0xF
    if family not in _ADDRESS_SIZES or transport not in _TRANSPORTS:
        raise ProxyProtocolError(f"unknown PROXY v2 address family/protocol 0x{octet:02x}")
    return family, _TRANSPORTS[transport]


def _unix_path(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")


def _tlvs(block: bytes) -> tuple[tuple[int, bytes], ...]:
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(block):
        if len(block) - i < 3:
            raise ProxyProtocolError("a PROXY v2 TLV is cut short")
        kind, size = block[i], int.from_bytes(block[i + 1 : i + 3], "big")
        if i + 3 + size > len(block):
            raise ProxyProtocolError("a PROXY v2 TLV overruns the header")
        out.append((kind, block[i + 3 : i + 3 + size]))
        i += 3 + size
    return tuple(out)


def _write_v2(header: ProxyHeader) -> bytes:
    command = 1 if header.command is ProxyCommand.PROXY else 0
    transport = {v: k for k, v in _TRANSPORTS.items()}[header.transport]
    src, dst = header.source, header.destination
    if command == 0 or src is None or dst is None:
        family, block = 0x0, b""
    elif isinstance(src, str) and isinstance(dst, str):
        family = _AF_UNIX
        paths = [p.encode("utf-8", "surrogateescape") for p in (src, dst)]
        if any(len(p) > 107 or b"\x00" in p for p in paths):
            raise ValueError("a socket path has at most 107 octets and no NUL")
        block = b"".join(p.ljust(108, b"\x00") for p in paths)
    elif isinstance(src, tuple) and isinstance(dst, tuple):
        s, d = ipaddress.ip_address(src[0]), ipaddress.ip_address(dst[0])
        if s.version != d.version:
            raise ValueError("source and destination must be of one address family")
        family = _AF_INET if s.version == 4 else _AF_INET6
        block = s.packed + d.packed + struct.pack("!HH", src[1], dst[1])
    else:
        raise ValueError("source and destination must be of one kind")
    for kind, value in header.tlvs:
        block += struct.pack("!BH", kind, len(value)) + value
    return (
        V2_SIGNATURE
        + struct.pack("!BBH", 0x20 | command, family << 4 | transport, len(block))
        + block
    )
