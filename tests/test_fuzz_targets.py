"""The coverage-guided fuzz targets (tests/fuzz/targets.py), three ways:

- every file in ``tests/fuzz/corpus/TARGET/`` (seeds) and ``tests/fuzz/crashers/TARGET/``
  (inputs that once crashed: regression tests) runs through its target;
- Hypothesis feeds each target arbitrary bytes (no atheris needed);
- a short coverage-guided atheris run of each target (a few seconds, all in parallel),
  skipped with the reason where atheris is not installed. Long runs:
  ``python -m tests.fuzz.run TARGET -max_total_time=600 tests/fuzz/corpus/TARGET``.

Any exception but the library's own typed errors for bad input fails (see targets.py).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .fuzz.targets import TARGETS

HERE = Path(__file__).resolve().parent / "fuzz"
ROOT = HERE.parent.parent


def _inputs() -> list[tuple[str, Path]]:
    found = []
    for kind in ("corpus", "crashers"):
        for name in TARGETS:
            folder = HERE / kind / name
            if folder.is_dir():
                found += [(name, path) for path in sorted(folder.iterdir()) if path.is_file()]
    return found


@pytest.mark.parametrize(
    ("target", "path"), _inputs(), ids=lambda v: v.name if isinstance(v, Path) else v
)
def test_corpus_and_crashers_replay(target: str, path: Path) -> None:
    TARGETS[target](path.read_bytes())


def test_every_target_has_seeds() -> None:
    for name in TARGETS:
        assert any((HERE / "corpus" / name).iterdir()), name


@pytest.mark.parametrize("target", sorted(TARGETS))
@given(data=st.binary(max_size=400))
def test_targets_take_any_bytes(target: str, data: bytes) -> None:
    TARGETS[target](data)


def test_short_coverage_guided_run_of_every_target(tmp_path: Path) -> None:
    if importlib.util.find_spec("atheris") is None:
        pytest.skip("atheris is not installed (pip install atheris)")
    procs = {}
    for name in TARGETS:
        corpus = tmp_path / name
        corpus.mkdir()
        for seed in (HERE / "corpus" / name).iterdir():
            (corpus / seed.name).write_bytes(seed.read_bytes())
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "tests.fuzz.run", name, "-max_total_time=3",
             f"-artifact_prefix={tmp_path}/{name}-", str(corpus)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    failures = {}
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=120)
        if proc.returncode != 0 or "DONE" not in out:
            failures[name] = out[-3000:]
    assert not failures, failures
