# The PROXY protocol header at the start of a connection (ServerOptions.proxy_protocol):
# read it with the Dispatcher's READ requests, then tell the session who the client is.
# The parsing is sansio_smtp.proxy's (bounded, never past the header's end).
from __future__ import annotations

from collections.abc import Generator

from ...proxy import ProxyCommand, ProxyHeader, ProxyProtocolError, parse_proxy_header
from .._io import READ, ServerOp
from ._handler import Session

__all__ = ["apply_header", "read_header"]


def read_header(buf: bytearray) -> Generator[ServerOp, object, tuple[ProxyHeader, bytes]]:
    """READ into ``buf`` (the runtime's feed() appends to it) until it holds a whole
    header; returns it and the octets after it. Raises ProxyProtocolError when what came
    cannot be one, or the connection closed first."""
    while True:
        found = parse_proxy_header(buf)
        if found is not None:
            header, used = found
            return header, bytes(buf[used:])
        size = len(buf)
        yield READ
        if len(buf) == size:  # nothing came: the connection closed
            raise ProxyProtocolError("closed before the PROXY protocol header ended")


def apply_header(session: Session, header: ProxyHeader) -> None:
    """The relayed client's addresses become the session's (a LOCAL header, a balancer's
    own check, keeps the socket's)."""
    if header.command is ProxyCommand.PROXY and header.source is not None:
        session.peer = header.source
        session.local = header.destination
    session.proxy = header
