"""The package is mypy --strict clean and ruff clean (run as tests so CI checks them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_mypy_strict() -> None:
    pytest.importorskip("mypy")
    result = _run(sys.executable, "-m", "mypy", "--strict", "sansio_smtp")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff() -> None:
    pytest.importorskip("ruff")
    result = _run(sys.executable, "-m", "ruff", "check", "sansio_smtp", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_public_api_is_exported() -> None:
    import sansio_smtp

    for name in sansio_smtp.__all__:
        assert hasattr(sansio_smtp, name), name
    assert (ROOT / "sansio_smtp" / "py.typed").exists()
