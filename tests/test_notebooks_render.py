"""The notebooks as a reader sees them.

- Every notebook in notebooks/ is committed without outputs (CI runs them with
  ``pytest --nbmake notebooks/``; outputs are not compared).
- One notebook is executed with a real kernel, rendered to HTML with nbconvert and loaded
  in headless Chromium: the DOM Chromium builds must hold the reprs' HTML as elements
  inside output areas (a reply code coloured by class, the transcript, the SVG state
  diagram), not as escaped text. Skipped, with the reason, when Chromium, nbconvert,
  nbclient, ipykernel or ipywidgets is missing. Set SANSIO_SMTP_SCREENSHOT=path.png to keep a
  screenshot of the page.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
RENDERED = NOTEBOOKS / "01-sans-io-tour.ipynb"
EXPECTED = {
    "01-sans-io-tour.ipynb",
    "02-esmtp-extensions.ipynb",
    "03-reply-codes-and-bounces.ipynb",
    "04-fuzzing-with-hypothesis.ipynb",
    "05-asyncio-local-server.ipynb",
    "06-auth-and-sasl.ipynb",
}
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
RED = "#cf222e"  # sansio_smtp._repr.CLASS_COLOURS[5]


# ------------------------------------------------------------ committed without output


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_the_notebooks_are_there_and_numbered() -> None:
    names = {path.name for path in _notebooks()}
    assert names >= EXPECTED
    for name in names:
        assert re.fullmatch(r"[0-9]{2}-[a-z0-9-]+\.ipynb", name), name


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_notebooks_are_committed_executed(path: Path) -> None:
    # issue 15: stored executed, so a reader browsing the repository sees the results
    # (`jupyter nbconvert --to notebook --execute --inplace`); the test run re-executes
    # them (nbmake) and fails if they no longer run
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [cell for cell in nb["cells"] if cell["cell_type"] == "code"]
    assert code, "a notebook without code teaches nothing runnable"
    for cell in code:
        assert cell.get("execution_count"), f"cell {cell.get('id')} was not run"
        errors = [o for o in cell.get("outputs", ()) if o.get("output_type") == "error"]
        assert not errors, f"cell {cell.get('id')} stored an error"
    assert any(cell.get("outputs") for cell in code)
    assert nb["cells"][0]["cell_type"] == "markdown"
    assert "".join(nb["cells"][0]["source"]).startswith("# ")


# --------------------------------------------------------------- rendered in Chromium


def _chromium() -> str | None:
    override = os.environ.get("CHROMIUM")
    if override:
        return override if shutil.which(override) else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _chromium_run(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-dev-shm-usage",
        # nothing leaves the machine: every host name fails to resolve
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


class _Outputs(HTMLParser):
    """Finds elements by class inside notebook output areas, as the DOM nests them."""

    VOID = frozenset(
        [
            "area",
            "base",
            "br",
            "col",
            "embed",
            "hr",
            "img",
            "input",
            "link",
            "meta",
            "source",
            "track",
            "wbr",
        ]
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str, dict[str, str]]] = []
        self.found: list[tuple[str, dict[str, str], str]] = []  # (tag, attrs, text)
        self._open: list[int] = []  # indexes in found still collecting text

    def _in_output(self) -> bool:
        return any("jp-OutputArea-output" in cls for _t, cls, _a in self.stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        cls = values.get("class", "")
        if self._in_output() and "sansio-smtp" in cls:
            self.found.append((tag, values, ""))
            self._open.append(len(self.found) - 1)
        else:
            self._open.append(-1)
        if tag not in self.VOID:
            self.stack.append((tag, cls, values))
        else:
            self._open.pop()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                del self._open[i:]
                return

    def handle_data(self, data: str) -> None:
        for index in self._open:
            if index >= 0:
                tag, attrs, text = self.found[index]
                self.found[index] = (tag, attrs, text + data)

    def having(self, cls: str) -> list[tuple[str, dict[str, str], str]]:
        return [f for f in self.found if cls in f[1].get("class", "").split()]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_executed_notebook_renders_the_reprs_in_chromium(tmp_path: Path) -> None:
    binary = _chromium()
    if binary is None:
        pytest.skip(f"no Chromium ({', '.join(CHROMIUM_NAMES)}): apt-get install chromium")
    for module in ("nbformat", "nbclient", "nbconvert", "ipykernel", "ipywidgets"):
        pytest.importorskip(module, reason=f"{module} is needed to execute and render")
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    nb = nbformat.read(RENDERED, as_version=4)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), *sys.path]))
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute(env=env)
    page, _resources = HTMLExporter().from_notebook_node(nb)
    # The page's CDN scripts (require.js, MathJax) are not needed to show HTML outputs.
    page = re.sub(r'<script[^>]*\bsrc="https?://[^"]*"[^>]*>\s*</script>', "", page)
    html_file = tmp_path / "notebook.html"
    html_file.write_text(page, encoding="utf-8")
    url = html_file.as_uri()

    result = _chromium_run(binary, tmp_path / "profile", "--dump-dom", url)
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert "<html" in dom and "01 · A tour of the sans-IO core" in dom
    assert not re.search(r"&lt;(div|span|svg)[^>]*sansio-smtp", dom)  # never shown as text

    outputs = _Outputs()
    outputs.feed(dom)
    # The Reply a refused recipient got, displayed by its own _repr_html_: a 5xx block.
    replies = [
        text
        for tag, attrs, text in outputs.having("sansio-smtp-reply")
        if tag == "div" and {"sansio-smtp", "sansio-smtp-5xx"} <= set(attrs["class"].split())
    ]
    assert "550 5.1.1 No such user here" in replies
    # Its code span is coloured as a 5xx and explained on hover.
    fives = [
        (tag, attrs, text)
        for tag, attrs, text in outputs.having("sansio-smtp-code")
        if text.strip() == "550"
    ]
    assert fives, "no 550 reply code rendered in an output area"
    assert any(RED in attrs.get("style", "") for _t, attrs, _x in fives)
    assert any("mailbox unavailable" in attrs.get("title", "") for _t, attrs, _x in fives)
    enhanced = [f for f in outputs.having("sansio-smtp-enhanced") if f[2].strip() == "5.1.1"]
    assert any("Bad destination mailbox address" in f[1].get("title", "") for f in enhanced)
    assert outputs.having("sansio-smtp-5xx"), "no reply-class colour container"
    # The transcript, the connection cards and the state diagram rendered too.
    [*_, transcript] = outputs.having("sansio-smtp-transcript")
    assert (
        "EHLO client.example" in transcript[2] and "RCPT TO:<nobody@example.net>" in (transcript[2])
    )
    assert {a.get("data-state") for _t, a, _x in outputs.having("sansio-smtp-connection")} >= {
        "GREETING"
    }
    diagrams = [f for f in outputs.having("sansio-smtp-states") if f[0] == "svg"]
    assert diagrams and "READY" in diagrams[0][2]

    shot = tmp_path / "notebook.png"
    result = _chromium_run(
        binary, tmp_path / "profile", "--window-size=1100,3000", f"--screenshot={shot}", url
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert _png_size(shot) == (1100, 3000)
    keep = os.environ.get("SANSIO_SMTP_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)
