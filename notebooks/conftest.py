"""The notebooks run as tests (nbmake) in the project's own test run, `python -m pytest`,
which collects this folder; a run of one test file never loads this and needs no nbmake."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("nbmake"):
        config.option.nbmake = True
