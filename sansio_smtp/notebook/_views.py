# Small displayable values for notebooks: an explained reply and the state diagram, each
# an object with _repr_html_ (and a plain-text str()), no widget needed.
from __future__ import annotations

from collections.abc import Mapping

from .. import codes
from .._repr import explanation_html, state_diagram_svg
from .._state import State

__all__ = ["Diagram", "Explained", "explain", "state_diagram"]


class Explained:
    """codes.explain(text), displayed as HTML in a notebook; ``str()`` is the text form
    and ``explanation`` the codes.Explanation."""

    def __init__(self, explanation: codes.Explanation) -> None:
        self.explanation = explanation

    def __str__(self) -> str:
        return str(self.explanation)

    def __repr__(self) -> str:
        return f"<Explained {self.explanation.reply_code} {self.explanation.enhanced}>"

    def _repr_html_(self) -> str:
        return explanation_html(self.explanation)


def explain(text: str | int) -> Explained:
    """Like sansio_smtp.codes.explain(), displayed as HTML."""
    return Explained(codes.explain(text))


class Diagram:
    """An SVG drawing; displays in a notebook."""

    def __init__(self, svg: str) -> None:
        self.svg = svg

    def _repr_html_(self) -> str:
        return self.svg


def state_diagram(highlight: Mapping[State, str] | None = None) -> Diagram:
    """sansio_smtp.TRANSITIONS drawn as SVG; ``highlight`` maps states to tags."""
    return Diagram(state_diagram_svg(highlight))
