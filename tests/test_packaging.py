"""What a user installing the package meets: one version, a license, a console script."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sansio_smtp

ROOT = Path(__file__).resolve().parent.parent


def test_one_version() -> None:
    # issue 15: the installed metadata reads its version from sansio_smtp.__version__
    assert importlib.metadata.version("sansio_smtp") == sansio_smtp.__version__
    assert 'dynamic = ["version"]' in (ROOT / "pyproject.toml").read_text()


def test_license_ships() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    meta = importlib.metadata.metadata("sansio_smtp")
    assert "MIT" in (meta.get("License-Expression") or meta.get("License") or "")


@pytest.mark.parametrize("how", ["module", "script"])
def test_version_flag(how: str) -> None:
    if how == "module":
        argv = [sys.executable, "-m", "sansio_smtp", "--version"]
    else:
        script = shutil.which("sansio-smtp", path=str(Path(sys.executable).parent))
        if script is None:
            pytest.skip("the sansio-smtp script is not installed (pip install -e . makes it)")
        argv = [script, "--version"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip().endswith(sansio_smtp.__version__)
