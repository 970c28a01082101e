# A typed facade over the few ipywidgets the views use, so the rest of the package is
# checked by mypy --strict without stubs for ipywidgets (it ships none).
#
# Strategy: ipywidgets is imported with importlib (a ModuleType, not an untyped import),
# and each factory returns its widget as one of the Protocols below. Only the attributes
# and methods listed here are used elsewhere. A missing ipywidgets raises ImportError that
# names the extra to install.
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar, cast

try:
    _w = importlib.import_module("ipywidgets")
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "sansio_smtp's notebook widgets need ipywidgets: pip install 'sansio_smtp[notebook]'"
    ) from exc

__all__ = [
    "Box",
    "Button",
    "Change",
    "Checkbox",
    "Dropdown",
    "HTMLView",
    "TextInput",
    "Widget",
    "box",
    "button",
    "checkbox",
    "dropdown",
    "html",
    "text",
    "textarea",
]

V = TypeVar("V")
#: What an ``observe`` handler receives: a mapping with "name", "old", "new"...
Change = Mapping[str, object]


class Widget(Protocol):
    """Any widget: it can be displayed and closed."""

    def close(self) -> None: ...


class _Value(Widget, Protocol[V]):
    value: V
    description: str
    disabled: bool

    def observe(self, handler: Callable[[Change], None], names: str) -> None: ...


class TextInput(_Value[str], Protocol):
    placeholder: str


class Checkbox(_Value[bool], Protocol):
    pass


class Dropdown(_Value[str], Protocol):
    options: Sequence[tuple[str, str]]


class HTMLView(Widget, Protocol):
    value: str


class Button(Widget, Protocol):
    description: str
    disabled: bool
    button_style: str
    tooltip: str

    def on_click(self, callback: Callable[[Button], None]) -> None: ...
    def click(self) -> None: ...


class Box(Widget, Protocol):
    children: tuple[Widget, ...]


def _layout(width: str | None) -> object:
    return _w.Layout(width=width) if width else _w.Layout()


def text(
    value: str = "", *, description: str = "", placeholder: str = "", width: str | None = None
) -> TextInput:
    return cast(
        TextInput,
        _w.Text(
            value=value, description=description, placeholder=placeholder, layout=_layout(width)
        ),
    )


def textarea(
    value: str = "",
    *,
    description: str = "",
    placeholder: str = "",
    rows: int = 3,
    width: str | None = None,
) -> TextInput:
    return cast(
        TextInput,
        _w.Textarea(
            value=value,
            description=description,
            placeholder=placeholder,
            rows=rows,
            layout=_layout(width),
        ),
    )


def checkbox(value: bool = False, *, description: str = "") -> Checkbox:
    return cast(Checkbox, _w.Checkbox(value=value, description=description, indent=False))


def dropdown(
    options: Sequence[tuple[str, str]],
    *,
    value: str | None = None,
    description: str = "",
    width: str | None = None,
) -> Dropdown:
    chosen = value if value is not None else (options[0][1] if options else None)
    return cast(
        Dropdown,
        _w.Dropdown(
            options=list(options), value=chosen, description=description, layout=_layout(width)
        ),
    )


def html(value: str = "") -> HTMLView:
    return cast(HTMLView, _w.HTML(value=value))


def button(description: str, *, tooltip: str = "", style: str = "") -> Button:
    return cast(Button, _w.Button(description=description, tooltip=tooltip, button_style=style))


def box(children: Sequence[Widget], *, vertical: bool = True) -> Box:
    factory = _w.VBox if vertical else _w.HBox
    return cast(Box, factory(children=list(children)))
