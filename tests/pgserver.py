"""A throw-away PostgreSQL server on 127.0.0.1 for the queue tests, from Debian's
postgresql package (initdb/pg_ctl in /usr/lib/postgresql/*/bin); the tests skip, saying
why, where there is none."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def _bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server in a temporary directory; yields its postgresql:// URL."""
    pytest.importorskip("psycopg")
    bindir = _bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server (Debian package postgresql) installed")
    as_user: list[str] = []
    if os.getuid() == 0:  # PostgreSQL refuses to run as root: run it as its own user
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run PostgreSQL as")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = tempfile.mkdtemp(prefix="sansio-smtp-pg-")
    if as_user:
        shutil.chown(data, "postgres", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def run(*argv: str) -> None:
        subprocess.run([*as_user, *argv], check=True, capture_output=True, timeout=120, cwd=data)

    try:
        run(f"{bindir}/initdb", "-D", f"{data}/db", "-A", "trust", "-U", "postgres", "--no-sync")
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {data} -F"
        run(
            f"{bindir}/pg_ctl",
            "-D",
            f"{data}/db",
            "-o",
            options,
            "-l",
            f"{data}/log",
            "-w",
            "start",
        )
    except (subprocess.CalledProcessError, OSError) as exc:
        shutil.rmtree(data, ignore_errors=True)
        pytest.skip(f"could not start PostgreSQL: {exc}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, f"{bindir}/pg_ctl", "-D", f"{data}/db", "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
            cwd=data,
        )
        shutil.rmtree(data, ignore_errors=True)
