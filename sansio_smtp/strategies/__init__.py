"""Public Hypothesis strategies for fuzzing SMTP code: ``sansio_smtp.strategies``.

Needs the extra: ``pip install 'sansio_smtp[fuzz]'`` (Hypothesis). ``import sansio_smtp``
never imports Hypothesis; this module raises ImportError naming the extra without it.

    from hypothesis import given
    from sansio_smtp import strategies as s

    @given(s.smuggling_payloads())
    def test_my_server_is_not_fooled(payload): ...

Families (each strategy's docstring says exactly what it draws):

- values: ``addresses`` (quoted local parts, address literals, UTF-8), ``invalid_addresses``
  (near misses), ``domains``, ``address_literals``, ``extensions``, ``mail_params``,
  ``rcpt_params``;
- commands: one strategy per command (``ehlos``, ``lhlos``, ``mail_froms``, ``rcpt_tos``,
  ``bdats``, ``auths``, ``starttls_commands``...), ``commands`` and ``all_commands``;
- replies: ``replies`` (multi-line, enhanced status codes), ``greetings``,
  ``negative_replies``;
- content and transport: ``bodies`` (dot-stuffing and line-ending edges), ``chunkings``
  with ``split``, ``rechunkings`` (one byte stream cut every way);
- sessions: ``dialogues`` (whole valid client dialogues);
- attacks, as raw bytes for any implementation: ``smuggling_payloads``,
  ``injection_payloads``, ``starttls_injections``, ``starttls_reply_injections``,
  ``hostile_lines``.

Strategy factories are cached: pass hashable arguments (tuples, Extensions).
"""

from __future__ import annotations

try:
    import hypothesis  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "sansio_smtp.strategies needs Hypothesis: pip install 'sansio_smtp[fuzz]'"
    ) from exc

from ._attacks import (
    END_OF_DATA,
    hostile_lines,
    injection_payloads,
    smuggling_payloads,
    starttls_injections,
    starttls_reply_injections,
)
from ._commands import (
    ALL_COMMAND_TYPES,
    COMMAND_TYPES,
    ESMTP_COMMAND_TYPES,
    all_commands,
    anytime_commands,
    auth_responses,
    auths,
    bdats,
    bodies,
    chunkings,
    command_of_type,
    commands,
    data_commands,
    draw_command,
    draw_mail_from,
    draw_rcpt_to,
    ehlos,
    enhanced_codes,
    expns,
    greetings,
    helos,
    helps,
    lhlos,
    mail_froms,
    negative_replies,
    noops,
    quits,
    rcpt_tos,
    rechunkings,
    replies,
    reply_codes,
    reply_texts,
    rsets,
    split,
    starttls_commands,
    string_args,
    vrfys,
)
from ._dialogues import DIALOGUE_EXTENSIONS, dialogues
from ._values import (
    KNOWN_EXTENSIONS,
    Draw,
    address_literals,
    addresses,
    ascii_local_parts,
    domains,
    dot_atoms,
    draw_mail_params,
    draw_rcpt_params,
    extensions,
    invalid_addresses,
    mail_params,
    null_reverse_path,
    postmasters,
    quoted_local_parts,
    rcpt_params,
    utf8_addr_unitext,
    utf8_chars,
    utf8_local_parts,
    xtext,
)

__all__ = [
    "ALL_COMMAND_TYPES",
    "COMMAND_TYPES",
    "DIALOGUE_EXTENSIONS",
    "END_OF_DATA",
    "ESMTP_COMMAND_TYPES",
    "KNOWN_EXTENSIONS",
    "Draw",
    "address_literals",
    "addresses",
    "all_commands",
    "anytime_commands",
    "ascii_local_parts",
    "auth_responses",
    "auths",
    "bdats",
    "bodies",
    "chunkings",
    "command_of_type",
    "commands",
    "data_commands",
    "dialogues",
    "domains",
    "dot_atoms",
    "draw_command",
    "draw_mail_from",
    "draw_mail_params",
    "draw_rcpt_params",
    "draw_rcpt_to",
    "ehlos",
    "enhanced_codes",
    "expns",
    "extensions",
    "greetings",
    "helos",
    "helps",
    "hostile_lines",
    "injection_payloads",
    "invalid_addresses",
    "lhlos",
    "mail_froms",
    "mail_params",
    "negative_replies",
    "noops",
    "null_reverse_path",
    "postmasters",
    "quits",
    "quoted_local_parts",
    "rcpt_params",
    "rcpt_tos",
    "rechunkings",
    "replies",
    "reply_codes",
    "reply_texts",
    "rsets",
    "smuggling_payloads",
    "split",
    "starttls_commands",
    "starttls_injections",
    "starttls_reply_injections",
    "string_args",
    "utf8_addr_unitext",
    "utf8_chars",
    "utf8_local_parts",
    "vrfys",
    "xtext",
]
