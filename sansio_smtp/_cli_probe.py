# ``python -m sansio_smtp probe``: run _probe.Probe against the server the user names and
# print one line per check (or JSON). Exit status: 0 when nothing is vulnerable, 1 when a
# check found the server VULNERABLE, 2 for usage errors or an unreachable server.
"""The ``probe`` command: conformance and attack checks against one SMTP server."""

from __future__ import annotations

import argparse
import json
import sys

from ._probe import Check, Probe, Status

__all__ = ["add_arguments", "run"]

EXIT_CLEAN = 0
EXIT_VULNERABLE = 1
EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``probe`` to ``parser``."""
    parser.description = (
        "Test a running SMTP server: RFC 5321 conformance (greeting, EHLO, sequencing, line"
        " limits), SMTP smuggling (bare CR/LF end-of-data look-alikes), STARTTLS command"
        " injection, pipelining. Only the named server is contacted; mail goes only to the"
        " test addresses. Exit status: 0 clean, 1 something VULNERABLE, 2 usage/unreachable."
    )
    parser.add_argument("--server", required=True, metavar="HOST:PORT", help="the server")
    parser.add_argument(
        "--starttls",
        action="store_true",
        help="upgrade with STARTTLS before the conformance checks (certificates not verified)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds to wait for each reply (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--from",
        dest="mail_from",
        default="probe@example.org",
        metavar="ADDR",
        help="the test sender (default: %(default)s)",
    )
    parser.add_argument(
        "--to",
        dest="rcpt_to",
        default="postmaster",
        metavar="ADDR",
        help="the test recipient (default: %(default)s, which every server accepts)",
    )


def _line(check: Check) -> str:
    return f"{check.status.value:<15} {check.name}: {check.evidence}"


def run(args: argparse.Namespace) -> int:
    from ._cli_send import _split_server

    try:
        host, port = _split_server(args.server, 25)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.timeout > 0:
        print("error: --timeout must be positive", file=sys.stderr)
        return EXIT_USAGE
    probe = Probe(
        host,
        port,
        starttls=args.starttls,
        timeout=args.timeout,
        mail_from=args.mail_from,
        rcpt_to=args.rcpt_to,
    )
    results: list[Check] = []
    for check in probe.checks():
        results.append(check)
        if not args.json:
            print(_line(check), flush=True)
    counts = {status: sum(c.status is status for c in results) for status in Status}
    if args.json:
        summary = {status.name: count for status, count in counts.items()}
        print(
            json.dumps(
                {
                    "server": f"{host}:{port}",
                    "checks": [c.as_dict() for c in results],
                    "summary": summary,
                },
                indent=2,
            )
        )
    else:
        print(
            f"summary: {counts[Status.PASS]} pass, {counts[Status.FAIL]} FAIL,"
            f" {counts[Status.VULNERABLE]} VULNERABLE,"
            f" {counts[Status.NOT_APPLICABLE]} not applicable, {counts[Status.ERROR]} error"
        )
    if results and all(c.status is Status.ERROR for c in results):
        return EXIT_USAGE  # nothing could be checked: unreachable
    return EXIT_VULNERABLE if counts[Status.VULNERABLE] else EXIT_CLEAN
