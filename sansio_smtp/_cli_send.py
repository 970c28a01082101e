# ``python -m sansio_smtp send``: send one RFC 5322 message in one transaction with the
# blocking client (adapters.client.SMTPClient). __main__ calls add_arguments() on its "send"
# subparser and run() with the parsed arguments.
#
# Rules: the message is the bytes read from --file or stdin, or one built from --body. A
# given message goes exactly as read unless --subject/--header ask to edit its header
# section: their fields replace fields of the same name, and then, as for a built
# message, a Date and a Message-ID are added when it has none (RFC 5322 §3.6.1, §3.6.4;
# swaks adds them to the message it composes and sends its --data as given).
# Exit status 0 when at least one recipient accepted it, 1 when none did or the session
# failed, 2 for usage errors. One line per recipient (accepted on stdout, refused on
# stderr, each with its reply: code, enhanced code, text); errors name what is wrong and
# add a hint where the fix is a flag; --transcript prints the dialogue to stdout as it
# happens, AUTH data redacted. Credentials never go in the clear: --user without --tls
# means STARTTLS is required; the password comes from --password, --password-env NAME,
# $SANSIO_SMTP_PASSWORD or a prompt on the terminal. A terminal on stdin is never read
# without --file -: that would wait silently.
"""The ``send`` command: one message from a file, stdin or --body to an SMTP/LMTP server."""

from __future__ import annotations

import argparse
import email.utils
import os
import re
import socket
import ssl
import sys
from collections.abc import Sequence
from typing import TextIO

from ._events import Reply
from ._state import Phase
from .adapters.client import (
    SendResult,
    SMTPClient,
    SMTPError,
    SMTPReplyError,
    SMTPTimeoutError,
    SMTPTLSError,
    TLSMode,
    TranscriptEntry,
)

__all__ = ["PASSWORD_ENV", "add_arguments", "run"]

EXIT_OK = 0  # at least one recipient accepted the message
EXIT_FAILED = 1  # no recipient accepted it, or the session failed
EXIT_USAGE = 2  # bad arguments (as argparse)

#: The environment variable read for the AUTH password when neither --password nor
#: --password-env is given.
PASSWORD_ENV = "SANSIO_SMTP_PASSWORD"

_MAX_LINE = 998  # RFC 5322 §2.1.1: octets in a line, without CRLF
_FIELD_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 §3.6.8: printable ASCII but ":"
_FIELD_NAME_B = re.compile(rb"[!-9;-~]+")


class _UsageError(Exception):
    """Bad arguments: the message says what is wrong (exit status 2)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``send`` to ``parser``."""
    parser.description = (
        "Send one RFC 5322 message (from --file, stdin, or built from --body) in one"
        " transaction. A message built (--body) or edited (--subject, --header) gets a Date"
        " and a Message-ID when it has none; one given without those goes as read."
        " Exit status: 0 when at least one recipient accepted it, 1 otherwise, 2 for"
        " usage errors."
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
        "--file",
        default=None,
        metavar="PATH|-",
        help="the message (default: - for stdin; a terminal on stdin is read only when"
        " --file - is given)",
    )
    parser.add_argument(
        "--body",
        metavar="TEXT",
        help="build the message: this text as its body (UTF-8, quoted-printable when not"
        " ASCII), with From, To, Date and Message-ID fields; instead of --file",
    )
    parser.add_argument(
        "--subject",
        metavar="TEXT",
        help="the Subject field (replaces the message's own; RFC 2047-encoded if not ASCII)",
    )
    parser.add_argument(
        "--header",
        dest="headers",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="a header field to add, replacing the message's fields of that name; repeat"
        " for more (a non-ASCII value goes as UTF-8, RFC 6532)",
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
        help="AUTH user name (the password from --password, --password-env,"
        f" ${PASSWORD_ENV} or a prompt); implies --starttls unless --tls is given:"
        " credentials are never sent without TLS, so a server that does not offer"
        " STARTTLS gets no AUTH and no mail",
    )
    password = parser.add_mutually_exclusive_group()
    password.add_argument(
        "--password",
        metavar="P",
        help="AUTH password (visible to other users in the process list: prefer"
        " --password-env or the prompt)",
    )
    password.add_argument(
        "--password-env",
        metavar="NAME",
        help="read the AUTH password from the environment variable NAME",
    )
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
    digits = port_text.isascii() and port_text.isdigit()
    if not digits or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad --server {text!r}: the port must be 1-65535")
    return host, int(port_text)


def _describe(reply: Reply) -> str:
    """``550 5.1.1 User unknown`` (several lines joined with " / ")."""
    esc = f" {reply.enhanced}" if reply.enhanced is not None else ""
    return f"{reply.code}{esc} {' / '.join(reply.lines)}".rstrip()


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=args.cafile)
    except OSError as exc:
        why = exc.strerror or exc
        if isinstance(exc, ssl.SSLError):
            why = f"no usable PEM certificate in it ({exc})"
        raise _UsageError(f"cannot use --cafile {args.cafile}: {why}") from exc
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


# ----------------------------------------------------------------------- the password


def _password(args: argparse.Namespace, stdin: TextIO | None) -> str | None:
    """The AUTH password: --password, --password-env NAME, $SANSIO_SMTP_PASSWORD, else a
    prompt (getpass, no echo) when stdin is a terminal."""
    if args.user is None:
        if args.password is not None or args.password_env is not None:
            raise _UsageError("--password and --password-env go with --user")
        return None
    if args.password is not None:
        return str(args.password)
    if args.password_env is not None:
        value = os.environ.get(args.password_env)
        if value is None:
            raise _UsageError(
                f"--password-env {args.password_env}: no such environment variable is set"
            )
        return value
    value = os.environ.get(PASSWORD_ENV)
    if value is not None:
        return value
    if stdin is None or not stdin.isatty():
        raise _UsageError(
            f"--user {args.user} needs a password: give --password-env NAME, set"
            f" {PASSWORD_ENV}, or run on a terminal to be asked"
        )
    import getpass  # only here: asking for a password is the rare case
    import warnings

    with warnings.catch_warnings():
        # getpass falls back to reading stdin with echo when it cannot control the
        # terminal: refuse that instead of showing the password
        warnings.simplefilter("error", getpass.GetPassWarning)
        try:
            return getpass.getpass(f"password for {args.user}: ")
        except getpass.GetPassWarning as exc:
            raise _UsageError(
                f"--user {args.user}: cannot ask for the password without echo ({exc});"
                f" give --password-env NAME or set {PASSWORD_ENV}"
            ) from None


# ------------------------------------------------------------------------ the message


def _header_fields(args: argparse.Namespace) -> list[tuple[str, str]]:
    """--subject and each --header as (name, value); checked (RFC 5322 §3.6.8, §2.2)."""
    fields: list[tuple[str, str]] = []
    if args.subject is not None:
        fields.append(("Subject", args.subject))
    for text in args.headers:
        name, sep, value = text.partition(":")
        if not sep or not _FIELD_NAME.fullmatch(name):
            raise _UsageError(
                f"bad --header {text!r}: write NAME:VALUE, the name printable ASCII"
                " without spaces or colons (RFC 5322 §3.6.8)"
            )
        fields.append((name, value.strip(" \t")))
    for name, value in fields:
        if any(c in value for c in "\r\n\0"):
            # a line break would start another field or the body (header injection)
            raise _UsageError(f"the {name} field has a line break or NUL in its value")
        if any((c < " " and c != "\t") or c == "\x7f" for c in value):
            # RFC 5322 §2.2, §3.2.5: a field body is printable characters and WSP
            raise _UsageError(f"the {name} field has a control character in its value")
    return fields


def _render(name: str, value: str, eol: str) -> bytes:
    """One header field, with its line ending. Subject is an unstructured field: folded
    at spaces, and RFC 2047 encoded-words when not ASCII. Other values go as given (a
    non-ASCII one as UTF-8, RFC 6532)."""
    if name.lower() == "subject":
        import email.header  # only for --subject: sending a file as read needs none of it

        charset = "us-ascii" if value.isascii() else "utf-8"
        value = email.header.Header(value, charset, header_name=name).encode(linesep=eol)
    line = f"{name}: {value}".encode()
    if any(len(part) > _MAX_LINE for part in line.split(eol.encode())):
        raise _UsageError(f"the {name} field is longer than {_MAX_LINE} octets (RFC 5322 §2.1.1)")
    return line + eol.encode()


def _header_address(address: str) -> str:
    """An address for a From/To field: the domain as A-labels when only it is not ASCII
    (RFC 5890 §2.3.2.1), so the header section stays ASCII; as given otherwise."""
    local, at, domain = address.rpartition("@")
    if at and local.isascii() and not domain.isascii():
        try:
            return f"{local}@{domain.encode('idna').decode('ascii')}"
        except UnicodeError:
            return address
    return address


def _address_list(name: str, addresses: Sequence[str], eol: str) -> str:
    """``name: a, b, ...`` folded before an address when the line would pass 78."""
    text = f"{name}: "
    width = len(text)
    for i, address in enumerate(addresses):
        piece = address + ("," if i < len(addresses) - 1 else "")
        if i and width + 1 + len(piece) > 78:
            text += eol + " "
            width = 1
        elif i:
            text += " "
            width += 1
        text += piece
        width += len(piece)
    return text[len(name) + 2 :]


def _msgid_domain(args: argparse.Namespace) -> str:
    """The right side of a Message-ID (RFC 5322 §3.6.4): the sender's domain, our EHLO
    name, or the host name; ASCII (A-labels)."""
    for candidate in (args.from_addr.rpartition("@")[2], args.ehlo or "", socket.gethostname()):
        try:
            name = candidate.encode("idna").decode("ascii") if candidate else ""
        except UnicodeError:
            continue
        if name and re.fullmatch(r"[!-~]+", name) and not set(name) & set('<>"@\\'):
            return name
    return "localhost"


def _build(args: argparse.Namespace, body: str, fields: list[tuple[str, str]]) -> bytes:
    """A message for --body: From, To, the given fields, MIME fields for a UTF-8 body."""
    eol = "\r\n"
    head: list[tuple[str, str]] = []
    if args.from_addr:
        head.append(("From", _header_address(args.from_addr)))
    recipients = [_header_address(a) for a in args.to_addrs]
    head.append(("To", _address_list("To", recipients, eol)))
    names = {n.lower() for n, _ in fields}
    head = [(n, v) for n, v in head if n.lower() not in names]
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    if text and not text.endswith("\n"):
        text += "\n"
    data = text.encode("utf-8")
    if not data.isascii():
        # quoted-printable (RFC 2045 §6.7): 7-bit, so no 8BITMIME needed (RFC 6152)
        import quopri

        data = quopri.encodestring(data)
        mime = [
            ("MIME-Version", "1.0"),
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Transfer-Encoding", "quoted-printable"),
        ]
        head += [(n, v) for n, v in mime if n.lower() not in names]
    data = data.replace(b"\n", eol.encode())
    head += fields
    return _complete(b"", head, args, eol) + eol.encode() + data


def _complete(
    section: bytes, fields: list[tuple[str, str]], args: argparse.Namespace, eol: str
) -> bytes:
    """``section`` (header lines kept) followed by ``fields``, then Date and Message-ID
    if neither is among them (no empty line after them)."""
    present = {m.group(1).lower() for m in re.finditer(rb"^([!-9;-~]+)[ \t]*:", section, re.M)}
    present |= {n.lower().encode() for n, _ in fields}
    out = [section] + [_render(n, v, eol) for n, v in fields]
    if b"date" not in present:  # RFC 5322 §3.6.1: required
        out.append(_render("Date", email.utils.formatdate(localtime=True), eol))
    if b"message-id" not in present:  # RFC 5322 §3.6.4: SHOULD be present
        out.append(_render("Message-ID", email.utils.make_msgid(domain=_msgid_domain(args)), eol))
    return b"".join(out)


def _edit(content: bytes, fields: list[tuple[str, str]], args: argparse.Namespace) -> bytes:
    """``content`` with ``fields`` replacing its fields of the same names, and Date and
    Message-ID added when missing; the rest of the octets as they were. Content that
    does not start with a header field gets a header section of its own."""
    first_nl = content.find(b"\n")
    eol = "\n" if first_nl >= 0 and content[first_nl - 1 : first_nl] != b"\r" else "\r\n"
    drop = {n.lower().encode() for n, _ in fields}
    kept: list[bytes] = []
    pos = 0
    keep = True
    while pos < len(content):
        nl = content.find(b"\n", pos)
        end = len(content) if nl < 0 else nl + 1
        line = content[pos:end]
        bare = line.rstrip(b"\r\n")
        if not bare:  # the empty line: the body follows, as it was
            return _complete(b"".join(kept), fields, args, eol) + content[pos:]
        if bare[:1] in (b" ", b"\t") and pos:  # RFC 5322 §2.2.3: a folded line
            if keep:
                kept.append(line)
        else:
            name, colon, _ = bare.partition(b":")
            if not colon or not _FIELD_NAME_B.fullmatch(name.rstrip(b" \t")):
                break  # not a header field: the header section ends here
            keep = name.rstrip(b" \t").lower() not in drop
            if keep:
                kept.append(line if line.endswith(b"\n") else line + eol.encode())
        pos = end
    # no empty line after the header section (or no header section): add one
    return _complete(b"".join(kept), fields, args, eol) + eol.encode() + content[pos:]


def _message(args: argparse.Namespace, stdin: TextIO | None) -> bytes:
    """The message to send: built from --body, or read from --file / stdin and
    completed. A terminal on stdin is read only when ``--file -`` says so."""
    fields = _header_fields(args)
    if args.body is not None:
        if args.file is not None:
            raise _UsageError("--body and --file both give the message: use one")
        return _build(args, args.body, fields)
    path = "-" if args.file is None else args.file
    try:
        if path == "-":
            if stdin is None:
                raise _UsageError("no message: there is no stdin; give --file PATH or --body")
            if stdin.isatty():
                if args.file is None:
                    raise _UsageError(
                        "no message: stdin is a terminal. Give --file PATH, --body TEXT, or"
                        " pipe the message in (--file - to type it here, ending with"
                        " Ctrl-D, or Ctrl-Z Enter on Windows)"
                    )
                print("type the message; end it with Ctrl-D (Ctrl-Z Enter on Windows)",
                      file=sys.stderr, flush=True)  # fmt: skip
            content = stdin.buffer.read()
        else:
            with open(path, "rb") as fh:
                content = fh.read()
    except OSError as exc:
        where = "stdin" if path == "-" else path
        raise _UsageError(f"cannot read the message from {where}: {exc.strerror or exc}") from exc
    return _edit(content, fields, args) if fields else content


# -------------------------------------------------------------------------- reporting


def _report(result: SendResult, out: TextIO, err: TextIO) -> None:
    for rcpt, reply in result.accepted.items():
        print(f"accepted {rcpt}: {_describe(reply)}", file=out)
    for rcpt, reply in result.refused.items():
        print(f"refused {rcpt}: {_describe(reply)}", file=err)
    final = result.data_reply
    detail = f": {_describe(final)}" if final is not None else ""
    total = len(result.accepted) + len(result.refused)
    print(f"accepted by {len(result.accepted)} of {total} recipient(s){detail}", file=out)


def _hint(exc: SMTPError, args: argparse.Namespace) -> str | None:
    """The flag that likely fixes ``exc``, said as a hint; None when none does."""
    reply = exc.reply
    text = str(exc).upper()
    if reply is not None and reply.code == 530:
        said = " ".join(reply.lines).upper()
        if "TLS" in said and not (args.starttls or args.tls):
            # RFC 3207 §4: 530 5.7.0 "Must issue a STARTTLS command first"
            return "the server takes mail only over TLS: add --starttls (or --tls on port 465)"
        if "TLS" not in said and args.user is None:
            # RFC 4954 §6: 530 5.7.0 "Authentication required"
            return "the server wants AUTH first: add --user (and --password-env or the prompt)"
    if isinstance(exc, SMTPTLSError):
        if "WRONG_VERSION_NUMBER" in text and args.tls:
            return "the server does not speak TLS from the first byte: use --starttls, not --tls"
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return (
                "the server's certificate is not trusted here: --cafile PEM names the CA that"
                " signed it (--insecure skips the check)"
            )
        if "DOES NOT OFFER STARTTLS" in text and not args.tls:
            why = "--user needs TLS: " if args.user is not None else ""
            return f"{why}if the server speaks TLS from the first byte (port 465), use --tls"
    if isinstance(exc, SMTPTimeoutError) and exc.waiting_for == Phase.GREETING and not args.tls:
        return "no greeting: a server that speaks TLS from the first byte (port 465) needs --tls"
    return None


def run(args: argparse.Namespace) -> int:
    """Send the message as ``args`` say; returns the exit status."""
    out, err = sys.stdout, sys.stderr
    # --user without --tls: STARTTLS required (RFC 4954 §4; no credentials in the clear)
    starttls = args.starttls or args.user is not None
    tls = TLSMode.IMPLICIT if args.tls else TLSMode.STARTTLS_REQUIRED if starttls else None
    try:
        host, port = _split_server(args.server, 465 if args.tls else 25)
        if args.timeout is not None and not args.timeout > 0:
            raise _UsageError("--timeout must be positive")
        if args.deadline is not None and not args.deadline > 0:
            raise _UsageError("--deadline must be positive")
        context = _ssl_context(args) if tls is not None else None
        password = _password(args, sys.stdin)
        content = _message(args, sys.stdin)
    except (ValueError, _UsageError) as exc:
        print(f"error: {exc}", file=err)
        return EXIT_USAGE

    def show(entry: TranscriptEntry) -> None:
        print(entry, file=out, flush=True)

    try:
        client = SMTPClient(
            host,
            port,
            tls=tls or TLSMode.PLAIN,
            ssl_context=context,
            local_hostname=args.ehlo,
            username=args.user,
            password=password,
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
        _print_hint(exc, args, err)
        return EXIT_FAILED
    except SMTPError as exc:
        why = f": {_describe(exc.reply)}" if exc.reply is not None else ""
        print(f"error: {_first_line(exc)}{why}", file=err)
        _print_hint(exc, args, err)
        return EXIT_FAILED
    except ValueError as exc:  # a malformed address
        print(f"error: {exc}", file=err)
        return EXIT_USAGE
    _report(result, out, err)
    return EXIT_OK if result.ok else EXIT_FAILED


def _print_hint(exc: SMTPError, args: argparse.Namespace, err: TextIO) -> None:
    hint = _hint(exc, args)
    if hint is not None:
        print(f"hint: {hint}", file=err)


def _first_line(exc: SMTPError) -> str:
    return str(exc.args[0]) if exc.args else type(exc).__name__
