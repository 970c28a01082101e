"""Notebook views for sansio_smtp: interactive widgets (ipywidgets) and an in-memory
client<->server pair. Needs the extra: ``pip install 'sansio_smtp[notebook]'``.

    from sansio_smtp.notebook import conversation_explorer
    conversation_explorer()      # the last expression of a cell displays it

- ``conversation_explorer()``: step a client and a server through a dialogue by hand.
- ``reply_code_explorer()``: search reply codes and enhanced status codes, explain a
  pasted bounce line.
- ``state_machine_view(conn=None)``: the state table as a diagram, a connection's state
  highlighted.
- ``MemoryPair``: the in-memory client<->server pair the explorer drives, for code.
- ``explain(text)``: codes.explain() that displays as HTML.

Every builder returns an object whose controls are attributes: set their ``value`` and
``click()`` buttons to drive it from code or tests.
"""

# The facade imports ipywidgets first: without it this import fails with a message that
# names the extra.
from __future__ import annotations

from . import _ipyw  # noqa: F401  (raises ImportError naming the extra)
from ._codes import CodeMatches, ReplyCodeExplorer, reply_code_explorer, search_codes
from ._conversation import DEFAULT_CONFIG, ConversationExplorer, conversation_explorer
from ._pair import MemoryPair
from ._parse import parse_command, parse_reply, reply_text
from ._states import StateMachineView, state_machine_view
from ._views import Explained, explain, state_diagram

__all__ = [
    "DEFAULT_CONFIG",
    "CodeMatches",
    "ConversationExplorer",
    "Explained",
    "MemoryPair",
    "ReplyCodeExplorer",
    "StateMachineView",
    "conversation_explorer",
    "explain",
    "parse_command",
    "parse_reply",
    "reply_code_explorer",
    "reply_text",
    "search_codes",
    "state_diagram",
    "state_machine_view",
]
