# Value types for reply classification: the reply class of RFC 5321 §4.2.1 and the
# enhanced status code of RFC 3463 (class.subject.detail). No I/O, no events.
from __future__ import annotations

import enum
import functools
import re
from typing import final

import attrs

__all__ = ["EnhancedStatusCode", "ReplyClass"]


class ReplyClass(enum.Enum):
    """The first digit of a reply code (RFC 5321 §4.2.1)."""

    POSITIVE_COMPLETION = 2
    POSITIVE_INTERMEDIATE = 3
    TRANSIENT_NEGATIVE = 4
    PERMANENT_NEGATIVE = 5

    @classmethod
    def of(cls, code: int) -> ReplyClass:
        return cls(code // 100)


# RFC 3463 §2: class "." subject "." detail; class is 2, 4 or 5; subject 1*3digit;
# detail 1*3digit, no leading zeros in either.
_ENHANCED_RE = re.compile(r"([245])\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\Z")


def _check_class(_inst: object, _attr: object, value: int) -> None:
    if value not in (2, 4, 5):
        raise ValueError(f"enhanced status code class must be 2, 4 or 5, not {value!r}")


def _check_part(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= 999:
        raise ValueError(f"enhanced status code {attr.name} must be 0..999, not {value!r}")


@final
@attrs.frozen(order=True)
class EnhancedStatusCode:
    """An RFC 3463 enhanced status code such as ``5.1.1``.

    ``class_`` is 2 (success), 4 (persistent transient failure) or 5 (permanent
    failure); ``subject`` and ``detail`` are 0..999 (RFC 3463 §2).
    """

    class_: int = attrs.field(validator=_check_class)
    subject: int = attrs.field(validator=_check_part)
    detail: int = attrs.field(validator=_check_part)

    @classmethod
    def parse(cls, text: str) -> EnhancedStatusCode:
        """Parse ``"5.1.1"``; raise ValueError when it is not an enhanced status code."""
        m = _ENHANCED_RE.match(text)
        if m is None:
            raise ValueError(f"not an enhanced status code: {text!r}")
        return cls(int(m[1]), int(m[2]), int(m[3]))

    @classmethod
    def coerce(cls, value: EnhancedStatusCode | str | None) -> EnhancedStatusCode | None:
        """Accept an instance, its string form, or None (attrs converter)."""
        if value is None or isinstance(value, EnhancedStatusCode):
            return value
        return _parsed(value)

    def __str__(self) -> str:
        return f"{self.class_}.{self.subject}.{self.detail}"

    @property
    def subject_detail(self) -> str:
        """``"1.1"`` for ``5.1.1``: the key the RFC 3463 registry lists."""
        return f"{self.subject}.{self.detail}"


@functools.lru_cache(maxsize=256)
def _parsed(text: str) -> EnhancedStatusCode:
    # Replies are built with the same few codes over and over (``enhanced="2.1.5"``);
    # the values are immutable, so each text is parsed once.
    return EnhancedStatusCode.parse(text)
