# Rich display (HTML and IPython's pretty printer) by registration, so that the protocol
# layers never import the presentation layer.
#
# Strategy: an inversion, as in IPython's own type_pprinters. Event, Connection and
# Transcript define _repr_html_ / _repr_pretty_ once, and those look the renderer up here
# by the object's type (its MRO, nearest class first); sansio_smtp._repr, the presentation
# layer, registers its renderers when it is imported; ``import sansio_smtp`` names it as the
# loader to run on the first display (on_first_use), so a program that never displays
# anything never imports it. With nothing registered an object shows as its repr, escaped.
#
# Rules: the lowest layer; imports nothing of the package. No IPython import: the pretty
# printer is a Protocol of the few methods IPython's RepresentationPrinter offers.
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

__all__ = ["PrettyPrinter", "html_of", "on_first_use", "pretty_of", "register"]


class PrettyPrinter(Protocol):
    """The part of IPython's RepresentationPrinter that the renderers use."""

    def text(self, obj: str) -> None: ...
    def breakable(self, sep: str = " ") -> None: ...
    def break_(self) -> None: ...
    def begin_group(self, indent: int = 0, open: str = "") -> None: ...
    def end_group(self, dedent: int = 0, close: str = "") -> None: ...
    def pretty(self, obj: object) -> None: ...


_T = TypeVar("_T")
HtmlRenderer = Callable[[_T], str]
PrettyRenderer = Callable[[_T, PrettyPrinter, bool], None]

_HTML: dict[type, Callable[[object], str]] = {}
_PRETTY: dict[type, Callable[[object, PrettyPrinter, bool], None]] = {}
_loaders: list[Callable[[], object]] = []


def on_first_use(loader: Callable[[], object]) -> None:
    """Run ``loader`` (which registers renderers) before the first display."""
    _loaders.append(loader)


def _load() -> None:
    while _loaders:
        _loaders.pop(0)()


def register(
    cls: type[_T], *, html: HtmlRenderer[_T], pretty: PrettyRenderer[_T] | None = None
) -> None:
    """Render instances of ``cls`` (and of its subclasses with no renderer of their own)
    with ``html`` for ``_repr_html_`` and ``pretty`` for ``_repr_pretty_``."""
    _HTML[cls] = html  # type: ignore[assignment]
    if pretty is not None:
        _PRETTY[cls] = pretty  # type: ignore[assignment]


def _lookup(table: dict[type, _T], obj: object) -> _T | None:
    for cls in type(obj).__mro__:
        found = table.get(cls)
        if found is not None:
            return found
    return None


def html_of(obj: object) -> str:
    """``obj`` as HTML: its registered renderer's, or its repr escaped."""
    _load()
    render = _lookup(_HTML, obj)
    if render is None:
        import html

        return f"<pre>{html.escape(repr(obj))}</pre>"
    return render(obj)


def pretty_of(obj: object, p: PrettyPrinter, cycle: bool) -> None:
    """``obj`` for IPython's pretty printer: its registered renderer's, or its repr."""
    _load()
    render = _lookup(_PRETTY, obj)
    if render is None:
        p.text(repr(obj))
    else:
        render(obj, p, cycle)
