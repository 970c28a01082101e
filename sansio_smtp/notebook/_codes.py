# The reply-code explorer over sansio_smtp.codes: search and filter the catalogue of reply
# codes and the enhanced status code registry, and explain a pasted reply or bounce line.
#
# Strategy: the filtering is a pure function (search_codes) of the three controls; the
# widget only re-renders its result. The subject filter links the two tables: it keeps
# the reply codes the registry associates with that subject's enhanced codes.
from __future__ import annotations

import html

import attrs

from .. import codes
from .._repr import code_colour, code_title, enhanced_title, explanation_html
from . import _ipyw as w

__all__ = ["CodeMatches", "ReplyCodeExplorer", "reply_code_explorer", "search_codes"]

_CLASSES: tuple[tuple[str, str], ...] = (
    ("all classes", ""),
    ("2xx success", "2"),
    ("3xx intermediate", "3"),
    ("4xx transient failure", "4"),
    ("5xx permanent failure", "5"),
)


@attrs.frozen
class CodeMatches:
    """What search_codes() found: catalogue entries, and enhanced codes as they read with
    the chosen class (``"5.1.1"``; ``"X.1.1"`` when no class was chosen)."""

    replies: tuple[codes.ReplyCodeInfo, ...]
    enhanced: tuple[tuple[str, codes.EnhancedCodeInfo], ...]


def _subject_of(code: str) -> int:
    return int(code.split(".")[1])


def search_codes(
    search: str = "", reply_class: int | None = None, subject: int | None = None
) -> CodeMatches:
    """Reply codes and enhanced codes whose code, text, description or commands contain
    ``search`` (case-insensitive), of ``reply_class`` (2-5) and enhanced ``subject``
    (0-7)."""
    needle = search.strip().lower()

    def hit(*texts: str) -> bool:
        return not needle or any(needle in t.lower() for t in texts)

    enhanced = []
    for key, info in codes.ENHANCED_CODES.items():
        if subject is not None and _subject_of(key) != subject:
            continue
        if reply_class is not None:
            if reply_class not in (2, 4, 5):
                continue  # RFC 3463 §3.1: the classes are 2, 4 and 5
            # a failure detail goes with class 4 or 5 alike; success details with 2
            wanted = (2,) if reply_class == 2 else (4, 5)
            if info.reply_codes and all(c // 100 not in wanted for c in info.reply_codes):
                continue
        shown = key if reply_class is None else f"{reply_class}{key[1:]}"
        if hit(shown, key, info.title, info.description):
            enhanced.append((shown, info))
    linked: set[int] | None = None
    if subject is not None:
        linked = {
            code
            for key, info in codes.ENHANCED_CODES.items()
            if _subject_of(key) == subject
            for code in info.reply_codes
        }
    replies = [
        info
        for code, info in codes.REPLY_CODES.items()
        if (reply_class is None or code // 100 == reply_class)
        and (linked is None or code in linked)
        and hit(str(code), info.meaning, info.description, " ".join(info.commands))
    ]
    return CodeMatches(tuple(replies), tuple(enhanced))


def matches_html(found: CodeMatches) -> str:
    """Two tables: reply codes, enhanced codes; codes coloured by class, explained on hover."""
    cell = 'style="padding:2px 8px;vertical-align:top;text-align:left"'
    muted = 'style="padding:2px 8px;vertical-align:top;text-align:left;color:#57606a"'
    rows = []
    for info in found.replies:
        rows.append(
            f'<tr class="sansio-smtp-code-row"><td {cell}><span class="sansio-smtp-code" '
            f'style="color:{code_colour(info.code)};font-weight:600" '
            f'title="{html.escape(code_title(info.code))}">{info.code}</span></td>'
            f"<td {cell}>{html.escape(info.meaning)}</td>"
            f"<td {muted}>{html.escape(' '.join(info.commands))}</td></tr>"
        )
    erows = []
    for shown, entry in found.enhanced:
        colour = code_colour(int(shown[0]) * 100) if shown[0].isdigit() else "#57606a"
        title = enhanced_title(shown) if shown[0].isdigit() else entry.description
        assoc = " ".join(str(c) for c in entry.reply_codes)
        erows.append(
            f'<tr class="sansio-smtp-enhanced-row"><td {cell}><span class="sansio-smtp-enhanced" '
            f'style="color:{colour};font-weight:600" title="{html.escape(title)}">'
            f"{html.escape(shown)}</span></td><td {cell}>{html.escape(entry.title)}</td>"
            f"<td {muted}>{html.escape(assoc)}</td></tr>"
        )
    head = 'style="text-align:left;padding:2px 8px;border-bottom:1px solid #d0d7de"'
    return (
        '<div class="sansio-smtp sansio-smtp-codes" style="max-height:28em;overflow:auto">'
        f"<b>{len(found.replies)} reply codes</b>"
        f'<table style="border-collapse:collapse"><tr><th {head}>code</th><th {head}>meaning'
        f"</th><th {head}>answers</th></tr>{''.join(rows)}</table>"
        f"<b>{len(found.enhanced)} enhanced status codes</b>"
        f'<table style="border-collapse:collapse"><tr><th {head}>code</th><th {head}>title'
        f"</th><th {head}>reply codes</th></tr>{''.join(erows)}</table></div>"
    )


class ReplyCodeExplorer:
    """The widgets of reply_code_explorer(): ``search`` (Text), ``reply_class`` and
    ``subject`` (Dropdowns) filter ``results`` (HTML); ``paste`` (Textarea) takes a reply
    or bounce line that ``explanation`` (HTML) explains with codes.explain(). ``matches``
    is the current CodeMatches."""

    def __init__(self, search: str = "", paste: str = "") -> None:
        subjects = [("all subjects", "")] + [
            (f"X.{n}.X {info.title}", str(n)) for n, info in codes.ENHANCED_SUBJECTS.items()
        ]
        self.search = w.text(search, placeholder="search: 550, mailbox, TLS...", width="20em")
        self.reply_class = w.dropdown(_CLASSES, width="14em")
        self.subject = w.dropdown(subjects, width="22em")
        self.paste = w.textarea(
            paste,
            rows=2,
            width="40em",
            placeholder="paste a reply, e.g. 550 5.1.1 <bob@example.net>: User unknown",
        )
        self.results = w.html()
        self.explanation = w.html()
        self.matches = search_codes()
        for control in (self.search, self.reply_class, self.subject):
            control.observe(lambda _change: self.refresh(), names="value")
        self.paste.observe(lambda _change: self.explain(), names="value")
        self.widget = w.box(
            [
                w.box([self.search, self.reply_class, self.subject], vertical=False),
                self.results,
                self.paste,
                self.explanation,
            ]
        )
        self.refresh()
        self.explain()

    def refresh(self) -> None:
        """Filter again and redraw the tables."""
        klass = int(self.reply_class.value) if self.reply_class.value else None
        subject = int(self.subject.value) if self.subject.value else None
        self.matches = search_codes(self.search.value, klass, subject)
        self.results.value = matches_html(self.matches)

    def explain(self) -> None:
        """Explain what ``paste`` holds."""
        text = self.paste.value
        if not text.strip():
            self.explanation.value = ""
            return
        try:
            self.explanation.value = explanation_html(codes.explain(text))
        except ValueError as exc:
            self.explanation.value = (
                f'<div class="sansio-smtp-error" style="color:#cf222e">'
                f"{html.escape(str(exc))}</div>"
            )

    def _repr_mimebundle_(self, **kwargs: object) -> object:
        method = getattr(self.widget, "_repr_mimebundle_", None)
        return method(**kwargs) if callable(method) else None


def reply_code_explorer(search: str = "", paste: str = "") -> ReplyCodeExplorer:
    """Search the reply-code catalogue and explain pasted replies (see ReplyCodeExplorer)."""
    return ReplyCodeExplorer(search, paste)
