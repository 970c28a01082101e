"""Run one fuzz target under atheris (coverage-guided, libFuzzer options):

    python -m tests.fuzz.run server -max_total_time=600 tests/fuzz/corpus/server
    python -m tests.fuzz.run sasl_server -runs=100000

Targets: see ``tests.fuzz.targets.TARGETS``. New inputs that reach new coverage are written
to the corpus directory given last; a crash writes ``crash-*`` in the current directory:
copy it to ``tests/fuzz/crashers/TARGET/`` and it becomes a regression test
(tests/test_fuzz_targets.py replays every file there).
"""

from __future__ import annotations

import sys


def main() -> None:
    import atheris

    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    name = sys.argv.pop(1)
    with atheris.instrument_imports(include=["sansio_smtp"]):
        import sansio_smtp  # noqa: F401

        from .targets import TARGETS

    if name not in TARGETS:
        raise SystemExit(f"unknown target {name!r}; known: {', '.join(TARGETS)}")
    atheris.Setup(sys.argv, TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
