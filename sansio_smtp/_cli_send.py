# ``python -m sansio_smtp send``: send one RFC 5322 message in one transaction with the
# blocking client (adapters.client.SMTPClient). __main__ calls add_arguments() on its "send"
# subparser and run() with the parsed arguments.
#
# Rules: the message is sent as the bytes read (no re-generation); exit status 0 when at
# least one recipient accepted it, 1 when none did or the session failed, 2 for usage
# errors; each refused recipient and the failure reply (code, enhanced code, text) go to
# stderr; --transcript prints the dialogue to stdout as it happens, AUTH data redacted.
# Credentials never go in the clear: --user without --tls means STARTTLS is required.
"""The ``send`` command: one message from a file or stdin to an SMTP/LMTP server."""

from __future__ import annotations

import argparse
import ssl
import sys
from typing import TextIO

from ._events import Reply
from .adapters.client import (
    SendResult,
    SMTPClient,
    SMTPError,
    SMTPReplyError,
    TLSMode,
    TranscriptEntry,
)

__all__ = ["add_arguments", "run"]

EXIT_OK = 0  # at least one recipient accepted the message
EXIT_FAILED = 1  # no recipient accepted it, or the session failed
EXIT_USAGE = 2  # bad arguments (as argparse)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``send`` to ``parser``."""
    parser.description = (
        "Send one RFC 5322 message (from --file or stdin) in one transaction. Exit status: 0"
        " when at least one recipient accepted it, 1 otherwise, 2 for usage errors."
    )
    parser.add_argument(
        "--server",
        required=True,
        metavar="HOST:PORT",
        help="the server; [IPv6]:PORT for IPv6; PORT defaults to 25 (465 with --tls)",
    )
    parser.add_argument(
        "--from",
        dest="from_addr",
        required=True,
        metavar="ADDR",
        help='the envelope sender (MAIL FROM); "" for the null reverse-path',
    )
    parser.add_argument(
        "--to",
        dest="to_addrs",
        action="append",
        required=True,
        metavar="ADDR",
        help="an envelope recipient (RCPT TO); repeat for more",
    )
    parser.add_argument(
        "--file", default="-", metavar="PATH|-", help="the message (default: - for stdin)"
    )
    tls = parser.add_mutually_exclusive_group()
    tls.add_argument(
        "--starttls",
        action="store_true",
        help="require STARTTLS (RFC 3207) before anything else (implied by --user)",
    )
    tls.add_argument(
        "--tls", action="store_true", help="implicit TLS from the first byte (port 465, RFC 8314)"
    )
    parser.add_argument(
        "--user",
        metavar="U",
        help="AUTH user name (needs --password); implies --starttls unless --tls is given:"
        " credentials are never sent without TLS, so a server that does not offer"
        " STARTTLS gets no AUTH and no mail",
    )
    parser.add_argument("--password", metavar="P", help="AUTH password")
    parser.add_argument(
        "--ehlo", metavar="NAME", help="our EHLO/LHLO name (default: our address literal)"
    )
    parser.add_argument(
        "--cafile", metavar="PEM", help="trust these CA certificates instead of the system's"
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify the server's certificate or host name",
    )
    parser.add_argument(
        "--lmtp", action="store_true", help="speak LMTP (RFC 2033): LHLO, one result per recipient"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="timeout for every phase, each a limit on a whole reply or write"
        " (default: RFC 5321 §4.5.3.2 values)",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        metavar="SECONDS",
        help="limit on the whole session from connect to QUIT (default: none)",
    )
    parser.add_argument(
        "--transcript",
        action="store_true",
        help="print the dialogue (AUTH data redacted) to stdout",
    )


def _split_server(text: str, default_port: int) -> tuple[str, int]:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad --server {text!r}: use [IPv6]:PORT")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif ":" in text:
        raise ValueError(f"bad --server {text!r}: write IPv6 addresses as [ADDR]:PORT")
    else:
        host, port_text = text, ""
    if not host:
        raise ValueError(f"bad --server {text!r}: no host")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad --server {text!r}: the port must be 1-65535")
    return host, int(port_text)


def _describe(reply: Reply) -> str:
    """``550 5.1.1 User unknown`` (several lines joined with " / ")."""
    esc = f" {reply.enhanced}" if reply.enhanced is not None else ""
    return f"{reply.code}{esc} {' / '.join(reply.lines)}".rstrip()


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=args.cafile)
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _report(result: SendResult, out: TextIO, err: TextIO) -> None:
    for rcpt, reply in result.refused.items():
        print(f"refused {rcpt}: {_describe(reply)}", file=err)
    final = result.data_reply
    detail = f": {_describe(final)}" if final is not None else ""
    total = len(result.accepted) + len(result.refused)
    print(f"accepted by {len(result.accepted)} of {total} recipient(s){detail}", file=out)


def run(args: argparse.Namespace) -> int:
    """Send the message as ``args`` say; returns the exit status."""
    out, err = sys.stdout, sys.stderr
    # --user without --tls: STARTTLS required (RFC 4954 §4; no credentials in the clear)
    starttls = args.starttls or args.user is not None
    tls = TLSMode.IMPLICIT if args.tls else TLSMode.STARTTLS_REQUIRED if starttls else None
    try:
        host, port = _split_server(args.server, 465 if args.tls else 25)
    except ValueError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_USAGE
    if (args.user is None) != (args.password is None):
        print("error: --user and --password go together", file=err)
        return EXIT_USAGE
    if args.timeout is not None and not args.timeout > 0:
        print("error: --timeout must be positive", file=err)
        return EXIT_USAGE
    if args.deadline is not None and not args.deadline > 0:
        print("error: --deadline must be positive", file=err)
        return EXIT_USAGE
    try:
        if args.file == "-":
            content = sys.stdin.buffer.read()
        else:
            with open(args.file, "rb") as fh:
                content = fh.read()
    except OSError as exc:
        print(f"error: cannot read the message: {exc}", file=err)
        return EXIT_USAGE

    def show(entry: TranscriptEntry) -> None:
        print(entry, file=out, flush=True)

    try:
        client = SMTPClient(
            host,
            port,
            tls=tls or TLSMode.PLAIN,
            ssl_context=_ssl_context(args) if tls is not None else None,
            local_hostname=args.ehlo,
            username=args.user,
            password=args.password,
            lmtp=args.lmtp,
            timeout=args.timeout,
            deadline=args.deadline,
            on_transcript=show if args.transcript else None,
        )
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=err)
        return EXIT_USAGE
    try:
        with client:
            result = client.sendmail(args.from_addr, args.to_addrs, content)
    except SMTPReplyError as exc:
        result_or_none = getattr(exc, "result", None)
        if isinstance(result_or_none, SendResult):
            for rcpt, refusal in result_or_none.refused.items():
                print(f"refused {rcpt}: {_describe(refusal)}", file=err)
        print(f"error: {_first_line(exc)}: {_describe(exc.reply)}", file=err)
        return EXIT_FAILED
    except SMTPError as exc:
        why = f": {_describe(exc.reply)}" if exc.reply is not None else ""
        print(f"error: {_first_line(exc)}{why}", file=err)
        return EXIT_FAILED
    except ValueError as exc:  # a malformed address
        print(f"error: {exc}", file=err)
        return EXIT_USAGE
    _report(result, out, err)
    return EXIT_OK if result.ok else EXIT_FAILED


def _first_line(exc: SMTPError) -> str:
    return str(exc.args[0]) if exc.args else type(exc).__name__
