"""The adapters ask the core and use its types (issue 12 items 5, 6 and 8): one Transcript
for the clients' transcript and the servers' traffic log, one AUTH redaction, the core's
LIMITS reading, and ``Phase`` members for write phases."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import sansio_smtp
from sansio_smtp import RcptTo
from sansio_smtp._state import LmtpDelivery, Phase
from sansio_smtp.adapters import _io

ADAPTERS = Path(sansio_smtp.__file__).parent / "adapters"


def test_write_phase_is_a_phase() -> None:
    # issue 12 item 8: types, not strings; the runtimes use Write.phase as it is
    assert _io.Write([b"x"]).phase is Phase.COMMAND
    assert _io.Write([b"x"], Phase.DATA_BLOCK).phase is Phase.DATA_BLOCK
    hints = inspect.signature(_io.Write.__init__).parameters["phase"].annotation
    assert hints == "Phase"
    for path in (ADAPTERS / "client").glob("*.py"):
        assert "Phase(op.phase)" not in path.read_text(encoding="utf-8"), path.name


def test_adapters_import_errors_from_their_home() -> None:
    # issue 12 item 8 / STYLE.md "Layers": the errors live in _errors; _util re-exports none
    for path in ADAPTERS.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("_util"):
                assert not any(a.name.endswith("Error") for a in node.names), path
    from sansio_smtp import _util

    assert not hasattr(_util, "LocalProtocolError")


def test_lmtp_delivery_uses_the_event_renderer() -> None:
    # issue 12 item 10: like every event, LmtpDelivery gets its repr from Event, so
    # IPython's pretty printer finds the registered renderer (addresses as strings)
    pretty = pytest.importorskip("IPython.lib.pretty")
    assert "__repr__" not in LmtpDelivery.__dict__
    delivery = LmtpDelivery(recipient=RcptTo(forward_path="a@example.org"))
    assert repr(delivery).startswith("LmtpDelivery(recipient=RcptTo(")
    assert "forward_path='a@example.org'" in pretty.pretty(delivery)
