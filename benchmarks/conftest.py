"""Collect benchmarks/bench_*_pytest.py (pytest only collects test_*.py by default), but only
when benchmarks/ (or a file in it) is named on the command line: the normal test run
(testpaths = tests, README.md) never loads this file, and `pytest .` does not run the
benchmarks either."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _named_on_command_line(config: pytest.Config) -> bool:
    base = Path(config.invocation_params.dir)
    for arg in config.args:
        path = (base / arg.split("::", 1)[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    name = file_path.name
    if (
        name.startswith("bench_")
        and name.endswith("_pytest.py")
        and not parent.session.isinitpath(file_path)  # named itself: pytest collects it
        and _named_on_command_line(parent.config)
    ):
        return pytest.Module.from_parent(parent, path=file_path)
    return None
