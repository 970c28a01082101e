"""The package is a graph of layers without cycles (issue 12 item 1; STYLE.md "Layers").

Every module of sansio_smtp is read with ``ast`` (not imported), and every import in it
counts: at module level, inside functions and under ``TYPE_CHECKING``, relative or absolute,
and ``importlib.import_module("sansio_smtp...")`` with a literal name. An import may point
to a lower layer, or within its layer to a module that does not import it back (directly or
through others). The layer list lives here, bottom first; a module in no layer fails the
test, so a new module is placed on purpose.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import sansio_smtp

PACKAGE = "sansio_smtp"
ROOT = Path(sansio_smtp.__file__).parent

#: Bottom first. A name is a module or a package (then every module in it), relative to
#: sansio_smtp; "__init__" is the package's own __init__.
LAYERS: tuple[tuple[str, ...], ...] = (
    # grammar and value types; the display registry and the AUTH redaction rule
    (
        "_abnf",
        "_status",
        "_address",
        "_params",
        "_lines",
        "_receivebuffer",
        "_extensions",
        "_util",
        "_display",
        "_redact",
        "_mechanisms",
        "config",
        "proxy",
    ),
    # Event, Reply, Greeting and the one reply-line grammar
    ("_reply",),
    # SMTPProtocolError and its subclasses (reply_hint: Reply)
    ("_errors",),
    # the typed MAIL/RCPT parameters
    ("_mailparams",),
    # the events
    ("_events",),
    # the state machine (and the recorder protocol Connection reports to)
    ("_state", "_recorder"),
    # the rules, and the default replies
    ("_rules", "_replies"),
    # readers and writers
    ("_readers", "_writers"),
    # Connection
    ("_connection",),
    # presentation: the transcript, the HTML/pretty renderers, codes.explain
    ("_transcript", "codes", "_repr"),
    # the public API, sasl, adapters, notebook, CLI, strategies, probe
    (
        "__init__",
        "params",
        "sasl",
        "_sasl",
        "adapters",
        "notebook",
        "_cli_send",
        "_cli_serve",
        "_cli_probe",
        "__main__",
        "_demo",
        "_probe",
        "strategies",
        "pytest_plugin",
        "delivery",
        "_cli_deliver",
    ),
)

#: The core must not do I/O or keep time (STYLE.md "Layout"): none of these below the top.
FORBIDDEN_IN_CORE = frozenset({"socket", "asyncio", "ssl", "time", "random", "logging"})

#: Arrows that point up today and are being removed in other branches of issue 12. The
#: test passes with them and fails when one of them no longer exists: empty this list as
#: they go (it must end empty).
KNOWN: frozenset[tuple[str, str]] = frozenset()


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name -> file, for every module of the package under ``root``."""
    base = root.parent
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(base).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_package(name: str, files: Mapping[str, Path]) -> bool:
    return files[name].name == "__init__.py"


def _imports(tree: ast.AST) -> Iterator[tuple[int, str | None, tuple[str, ...]]]:
    """(level, module, names) of every import in ``tree``, wherever it is."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield 0, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            yield node.level, node.module, tuple(a.name for a in node.names)
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id == "__import__")
            )
        ):
            name = node.args[0].value
            level = len(name) - len(name.lstrip("."))
            yield level, name[level:] or None, ()


def import_graph(root: Path = ROOT) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module -> the package's modules it imports, module -> stdlib top names)."""
    files = modules(root)
    graph: dict[str, set[str]] = {}
    external: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        here = name if _is_package(name, files) else name.rpartition(".")[0]
        targets: set[str] = set()
        outside: set[str] = set()
        for level, module, names in _imports(tree):
            if level:
                base_parts = here.split(".")
                base = ".".join(base_parts[: len(base_parts) - (level - 1)])
                target = f"{base}.{module}" if module else base
            else:
                assert module is not None
                target = module
            if target != PACKAGE and not target.startswith(PACKAGE + "."):
                outside.add(target.split(".")[0])
                continue
            # "from X import n" names the module X.n when there is one, else X
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in files]
            targets.update(subs or [target])
        targets.discard(name)
        graph[name] = {t for t in targets if t in files}
        external[name] = outside
    return graph, external


def layer_of(name: str) -> int:
    """The index in LAYERS of a dotted module name; KeyError when it is in none."""
    rel = "__init__" if name == PACKAGE else name[len(PACKAGE) + 1 :]
    for index, layer in enumerate(LAYERS):
        for entry in layer:
            if rel == entry or rel.startswith(entry + "."):
                return index
    raise KeyError(name)


def _short(name: str) -> str:
    return "__init__" if name == PACKAGE else name[len(PACKAGE) + 1 :]


def upward_arrows(graph: Mapping[str, set[str]]) -> set[tuple[str, str]]:
    """Imports from a lower layer to a higher one, as (importer, imported) short names."""
    return {
        (_short(a), _short(b))
        for a, targets in graph.items()
        for b in targets
        if layer_of(a) < layer_of(b)
    }


def cycles(graph: Mapping[str, set[str]], ignore: frozenset[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), as short
    names, leaving out the arrows in ``ignore``."""
    edges = {
        a: sorted(b for b in targets if (_short(a), _short(b)) not in ignore)
        for a, targets in graph.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(_short(w))
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


GRAPH, EXTERNAL = import_graph()


def test_every_module_is_in_a_layer() -> None:
    unplaced = []
    for name in GRAPH:
        try:
            layer_of(name)
        except KeyError:
            unplaced.append(name)
    assert unplaced == [], f"place these modules in LAYERS: {unplaced}"


def test_no_import_points_up() -> None:
    # STYLE.md "Layers": each layer imports only those below it
    new = sorted(upward_arrows(GRAPH) - KNOWN)
    assert new == [], f"imports from a lower layer to a higher one: {new}"


def test_no_cycles() -> None:
    # within a layer, modules import each other only without cycles
    assert cycles(GRAPH, KNOWN) == []


def test_known_arrows_still_exist() -> None:
    # KNOWN must shrink: an arrow that is gone comes off the list
    arrows = {(_short(a), _short(b)) for a, targets in GRAPH.items() for b in targets}
    gone = sorted(KNOWN - arrows)
    assert gone == [], f"remove from KNOWN, they no longer exist: {gone}"


def test_known_arrows_point_up_or_close_a_cycle() -> None:
    # KNOWN holds only arrows the layer rules forbid
    allowed = upward_arrows(GRAPH) | {
        (a, b) for component in cycles(GRAPH, frozenset()) for a in component for b in component
    }
    assert sorted(KNOWN - allowed) == []


def test_the_core_does_no_io() -> None:
    # STYLE.md "Layout": the core never imports socket, asyncio, ssl, time, random, logging
    top = len(LAYERS) - 1
    offenders = {
        _short(name): sorted(found & FORBIDDEN_IN_CORE)
        for name, found in EXTERNAL.items()
        if layer_of(name) < top and found & FORBIDDEN_IN_CORE
    }
    assert offenders == {}


def test_the_reader_sees_every_kind_of_import(tmp_path: Path) -> None:
    # the test's own check: imports inside functions, under TYPE_CHECKING, relative,
    # absolute and by importlib all count
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .. import a\n")
    (pkg / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import time\n"
        "if TYPE_CHECKING:\n    from .b import X\n"
        "def f():\n    from . import c\n"
        "import sansio_smtp.d\n"
        "import importlib\nimportlib.import_module('sansio_smtp.e')\n"
    )
    for name in "bcde":
        (pkg / f"{name}.py").write_text("")
    graph, external = import_graph(pkg)
    assert graph[f"{PACKAGE}.a"] == {f"{PACKAGE}.{n}" for n in "bcde"}
    assert graph[f"{PACKAGE}.sub"] == {f"{PACKAGE}.a"}
    assert "time" in external[f"{PACKAGE}.a"]
    a, b = f"{PACKAGE}.a", f"{PACKAGE}.b"
    assert cycles({a: {b}, b: {a}}, frozenset()) == [["a", "b"]]
    assert cycles({a: {b}, b: {a}}, frozenset({("b", "a")})) == []
