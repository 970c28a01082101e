"""The scenarios of bench_core.py under pytest-benchmark:

    pytest benchmarks --benchmark-only                 # full sizes
    BENCH_QUICK=1 pytest benchmarks --benchmark-only   # the --quick sizes

Each scenario's workload and its C-speed floor are separate benchmarks in one group, so
pytest-benchmark's table shows them side by side (and --benchmark-compare tracks them across
commits). The ratios, measured interleaved, are what bench_core.py prints; use it when the
machine is noisy. Not collected by the normal test run: benchmarks/conftest.py collects
this file only when benchmarks/ is named on the command line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# bench_core puts this checkout's sansio_smtp first on sys.path, so import it first.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_core as bc

from sansio_smtp import Connection

SIZES = bc.Sizes.quick() if os.environ.get("BENCH_QUICK") else bc.Sizes()
ROUNDS = SIZES.repeats


@pytest.fixture(scope="module")
def message() -> bc.Message:
    return bc.make_message(SIZES.data_bytes)


@pytest.fixture(scope="module")
def commands() -> bc.CommandStream:
    return bc.make_commands(SIZES.commands)


def _fresh(
    setup: Callable[[], Connection], *args: object
) -> Callable[[], tuple[tuple[object, ...], dict[str, Any]]]:
    """pedantic() setup: a fresh connection in the right state for every round (untimed)."""
    return lambda: ((setup(), *args), {})


# ------------------------------------------------------------------- (a) server DATA


@pytest.mark.benchmark(group="a-server-data")
def test_a_server_data(benchmark: Any, message: bc.Message) -> None:
    chunks = bc.chunked(message.wire, SIZES.chunk)
    got = benchmark.pedantic(
        bc.feed_server_data, setup=_fresh(bc.server_in_data_state, chunks), rounds=ROUNDS
    )
    assert got == len(message.content)


@pytest.mark.benchmark(group="a-server-data")
def test_a_floor_find_replace(benchmark: Any, message: bc.Message) -> None:
    benchmark(bc.data_floor, message.wire)


# --------------------------------------------------------------- (b) server commands


@pytest.mark.benchmark(group="b-server-commands")
def test_b_server_commands(benchmark: Any, commands: bc.CommandStream) -> None:
    chunks = bc.chunked(commands.blob, SIZES.chunk)
    got = benchmark.pedantic(
        bc.feed_server_commands, setup=_fresh(bc.server_ready, chunks), rounds=ROUNDS
    )
    assert got == commands.lines


@pytest.mark.benchmark(group="b-server-commands")
def test_b_floor_split(benchmark: Any, commands: bc.CommandStream) -> None:
    benchmark(bc.commands_floor, commands.blob)


# ------------------------------------------------------------------------- (c) drip


@pytest.mark.benchmark(group="c-drip")
@pytest.mark.parametrize("kib", SIZES.drip_kib)
def test_c_drip(benchmark: Any, kib: int) -> None:
    wire = bc.make_message(kib * bc.KiB, seed=bc.SEED + kib).wire
    octets = [wire[i : i + 1] for i in range(len(wire))]
    benchmark.pedantic(bc.drip, setup=_fresh(bc.server_in_data_state, octets), rounds=ROUNDS)


# -------------------------------------------------------------- (d) client DATA writer


@pytest.mark.benchmark(group="d-client-writer")
def test_d_client_writer(benchmark: Any) -> None:
    msg = bc.make_message(SIZES.writer_bytes, seed=bc.SEED + 1)
    chunks = bc.chunked(msg.content, SIZES.chunk)
    got = benchmark.pedantic(
        bc.write_client_data, setup=_fresh(bc.client_in_data_state, chunks), rounds=ROUNDS
    )
    assert got == len(msg.wire)


@pytest.mark.benchmark(group="d-client-writer")
def test_d_floor_replace(benchmark: Any) -> None:
    msg = bc.make_message(SIZES.writer_bytes, seed=bc.SEED + 1)
    benchmark(bc.writer_floor, bc.chunked(msg.content, SIZES.chunk))
