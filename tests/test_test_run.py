"""The project's own test run, as a user meets it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_one_test_file_runs_without_nbmake() -> None:
    # issue 15: running one test file needs only pytest and hypothesis; nbmake (the
    # notebooks' runner) is switched on by notebooks/conftest.py, not by addopts.
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:nbmake", "tests/test_values.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout
