# SASLprep (RFC 4013), the stringprep (RFC 3454) profile for user names and passwords,
# built on the stdlib's ``stringprep`` tables and Unicode 3.2 normalization.
#
# Strategy: the four RFC 3454 steps in order, each citing its table:
#   1. map (RFC 4013 §2.1): non-ASCII spaces (C.1.2) -> U+0020; B.1 -> nothing;
#   2. normalize (§2.2): NFKC with the Unicode 3.2 data (``unicodedata.ucd_3_2_0``), the
#      version stringprep is defined against;
#   3. prohibit (§2.3): C.1.2, C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8, C.9;
#   4. bidi (§2.4, RFC 3454 §6): with any RandALCat (D.1) character there must be no LCat
#      (D.2) character, and the first and last characters must be RandALCat;
#   plus unassigned code points (A.1, RFC 3454 §7): prohibited for "stored strings" (the
#   default, which SCRAM requires, RFC 5802 §2.2), allowed for "queries" on request.
# Rules: pure function; raises SASLprepError (a ValueError) naming the rule that failed.
from __future__ import annotations

import stringprep
import unicodedata
from collections.abc import Callable
from typing import Final

from ._base import SASLprepError

__all__ = ["saslprep"]

_PROHIBITED: Final[tuple[tuple[Callable[[str], bool], str], ...]] = (
    (stringprep.in_table_c12, "non-ASCII space (RFC 3454 C.1.2)"),
    (stringprep.in_table_c21_c22, "control character (RFC 3454 C.2)"),
    (stringprep.in_table_c3, "private use character (RFC 3454 C.3)"),
    (stringprep.in_table_c4, "non-character code point (RFC 3454 C.4)"),
    (stringprep.in_table_c5, "surrogate code point (RFC 3454 C.5)"),
    (stringprep.in_table_c6, "character inappropriate for plain text (RFC 3454 C.6)"),
    (stringprep.in_table_c7, "character inappropriate for canonical representation (RFC 3454 C.7)"),
    (stringprep.in_table_c8, "display property / deprecated character (RFC 3454 C.8)"),
    (stringprep.in_table_c9, "tagging character (RFC 3454 C.9)"),
)


def saslprep(text: str, *, allow_unassigned: bool = False) -> str:
    """Prepare ``text`` with SASLprep (RFC 4013) and return the prepared string.

    ``allow_unassigned=False`` treats ``text`` as a "stored string" (RFC 3454 §7): code
    points unassigned in Unicode 3.2 are an error. The result may be empty; callers that
    need a non-empty identity check that themselves.
    """
    if not isinstance(text, str):
        raise TypeError(f"saslprep() takes a str, not {type(text).__name__}")
    # RFC 4013 §2.1 mapping: C.1.2 to SPACE, B.1 to nothing.
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch for ch in text if not stringprep.in_table_b1(ch)
    )
    # RFC 4013 §2.2: Unicode normalization form KC (of Unicode 3.2, RFC 3454 §1.1).
    prepared = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    # RFC 4013 §2.3 prohibited output, §2.5 unassigned code points.
    for ch in prepared:
        for in_table, what in _PROHIBITED:
            if in_table(ch):
                raise SASLprepError(f"SASLprep: prohibited {what}: U+{ord(ch):04X}")
        if not allow_unassigned and stringprep.in_table_a1(ch):
            raise SASLprepError(f"SASLprep: unassigned code point (RFC 3454 A.1): U+{ord(ch):04X}")
    # RFC 4013 §2.4, RFC 3454 §6: bidirectional characters.
    if any(stringprep.in_table_d1(ch) for ch in prepared):
        if any(stringprep.in_table_d2(ch) for ch in prepared):
            raise SASLprepError("SASLprep: RandALCat and LCat characters mixed (RFC 3454 §6)")
        if not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1])):
            raise SASLprepError(
                "SASLprep: a string with RandALCat characters must start and end with one "
                "(RFC 3454 §6)"
            )
    return prepared
