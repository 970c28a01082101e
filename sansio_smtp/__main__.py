"""Command line: ``python -m sansio_smtp {demo,explain,serve,send,probe,deliver,queue}``,
also installed as the ``sansio-smtp`` script."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence


class _Help(argparse.HelpFormatter):
    """argparse's formatter, given the terminal width without ``shutil``.

    argparse builds a formatter for every add_argument (to check metavars), and its own
    asks ``shutil.get_terminal_size``, whose module brings zlib, bz2 and lzma along: more
    time than parsing a send command takes. The width is found as shutil finds it.
    """

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = _columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _columns() -> int:
    """$COLUMNS, else the width of the terminal on stdout, else 80 (as shutil's)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        stdout = sys.__stdout__
        try:
            columns = os.get_terminal_size(stdout.fileno()).columns if stdout else 0
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Formatter(_Help):
    """--help shows each option's default, where it has one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "%(default)" in text or action.default in (None, False, [], argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


#: name -> (help, formatter class) of each command
_COMMANDS: dict[str, tuple[str, type[argparse.HelpFormatter]]] = {
    "demo": ("run an in-memory client/server session and print it", _Help),
    "explain": ("explain a reply code, enhanced code or reply", _Help),
    "serve": ("run an SMTP/LMTP server (asyncio)", _Formatter),
    "send": ("send one message", _Formatter),
    "probe": ("test a running SMTP server (conformance, attacks)", _Help),
    "deliver": ("deliver a message to its recipients' mail hosts", _Formatter),
    "queue": ("work an outbound queue: run, flush, list, remove", _Formatter),
}


def main(argv: Sequence[str] | None = None) -> int:
    from . import __version__

    if argv is None:
        argv = sys.argv[1:]
    parser = argparse.ArgumentParser(
        prog=_prog(), description="sans-IO SMTP toolkit", formatter_class=_Help
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    # A command named first gets only its own parser (argparse builds each one eagerly,
    # gettext lookups and all: most of the time parsing a send command took); anything
    # else (--help, --version, a mistake) gets every command's, so that the help and the
    # error list them all.
    named = argv[0] if argv and argv[0] in _COMMANDS else None
    commands = {}
    for name in [named] if named else _COMMANDS:
        text, formatter = _COMMANDS[name]
        commands[name] = sub.add_parser(name, help=text, formatter_class=formatter)
    if "explain" in commands:
        commands["explain"].add_argument(
            "reply", nargs="+", help='e.g. 550, 5.1.1 or "550 5.1.1 User unknown"'
        )
    # The serve/send/probe/deliver/queue options live beside their code; imported only
    # when used.
    if named == "serve":
        from ._cli_serve import add_arguments as add_serve

        add_serve(commands["serve"])
    elif named == "send":
        from ._cli_send import add_arguments as add_send

        add_send(commands["send"])
    elif named == "probe":
        from ._cli_probe import add_arguments as add_probe

        add_probe(commands["probe"])
    elif named == "deliver":
        from ._cli_deliver import add_deliver_arguments

        add_deliver_arguments(commands["deliver"])
    elif named == "queue":
        from ._cli_deliver import add_queue_arguments

        add_queue_arguments(commands["queue"])
    args = parser.parse_args(argv)

    if args.command == "demo":
        from ._demo import run_demo

        run_demo()
        return 0
    if args.command == "serve":
        from ._cli_serve import run as run_serve

        return run_serve(args)
    if args.command == "send":
        from ._cli_send import run as run_send

        return run_send(args)
    if args.command == "probe":
        from ._cli_probe import run as run_probe

        return run_probe(args)
    if args.command == "deliver":
        from ._cli_deliver import run_deliver

        return run_deliver(args)
    if args.command == "queue":
        from ._cli_deliver import run_queue

        return run_queue(args)
    from .codes import explain as explain_reply

    try:
        print(explain_reply(" ".join(args.reply)))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _prog() -> str:
    name = sys.argv[0].rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    return "sansio-smtp" if name.startswith("sansio-smtp") else "python -m sansio_smtp"


def run() -> None:
    """The ``sansio-smtp`` console script."""
    sys.exit(main())


if __name__ == "__main__":
    run()
