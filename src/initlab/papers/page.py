"""The report's "Paper cards" page: ``OUT/papers.html``, one self-contained HTML file (the
report's stylesheet, error capture and figure inlining, :mod:`initlab.report.html`) built
from :class:`~initlab.papers.card.CardResult` s, which it reads from their JSON.

Sections: ``summary`` (the table of every card) and ``card-<name>`` for each card (its
claim, citation and figure, setting and scaling, quantity, criterion, each check with its
outcome, and the card's figures).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from initlab.papers.card import CardResult
from initlab.report import html as H
from initlab.report.plotting import load_png

__all__ = ["PAGE_NAME", "build_page"]

PAGE_NAME = "papers.html"

_VERDICT_CLASS = {"pass": "", "fail": "flag", "not judged": "na"}


def _section(anchor: str, title: str, inner: str) -> str:
    return f'<section id="{H.esc(anchor)}" data-section="{H.esc(anchor)}"><h2>{H.esc(title)}</h2>{inner}</section>'


def _card_section(r: CardResult, out: Path) -> str:
    facts = [("claim", r.claim), ("source", f"{r.citation}; {r.figure}"), ("setting", r.setting),
             ("scaled down", r.scaled_down), ("quantity", r.quantity), ("paper's value", r.paper_value),
             ("criterion (written before running)", r.criterion), ("ours", r.ours),
             ("verdict", r.verdict + (" (quick)" if r.quick else "")), ("wall time", f"{r.wall_s:.1f} s on {r.device}")]
    body = H.table(None, facts, text_cols=2)
    rows = [[c.name, c.criterion, c.ours, {True: "pass", False: "fail", None: "not judged"}[c.passed], c.note]
            for c in r.checks]
    classes = [["", "", "", _VERDICT_CLASS[row[3]], ""] for row in rows]
    body += H.table(["check", "criterion", "ours", "outcome", "note"], rows, text_cols=5, classes=classes)
    for rel in r.figures:
        path = out / rel
        if path.is_file():
            body += H.figure(load_png(path, f"{r.card}: {path.stem}"), f"{r.card}: {r.title}")
    return _section(f"card-{r.card}", f"{r.card}: {r.title}", body)


def build_page(results: Sequence[CardResult], out: str | Path) -> Path:
    """Write ``OUT/papers.html`` for *results* (figures read from ``OUT``) and return its path."""
    out = Path(out)
    rows = [[r.card, r.claim, r.paper_value, r.ours, r.verdict + (" (quick)" if r.quick else ""),
             f"{r.wall_s:.0f} s"] for r in results]
    classes = [["", "", "", "", _VERDICT_CLASS[r.verdict], ""] for r in results]
    summary = H.table(["card", "claim", "paper's value", "ours", "verdict", "wall"], rows, text_cols=4,
                      classes=classes)
    n_pass = sum(r.verdict == "pass" for r in results)
    summary = f'<p class="note">{n_pass} of {len(results)} cards pass.</p>' + summary
    wrap = "<style>main td.text { white-space: normal; min-width: 8em; max-width: 44em; }</style>"
    body = wrap + _section("summary", "Paper cards", summary) + "".join(_card_section(r, out) for r in results)
    nav = [("summary", "summary")] + [(f"card-{r.card}", r.card) for r in results]
    header = ("<h1>Paper cards</h1><p class=\"note\">The classic results of initialization, reproduced at a small "
              "scale, each with its criterion written before it was run (initlab paper).</p>")
    out.mkdir(parents=True, exist_ok=True)
    page = out / PAGE_NAME
    page.write_text(H.page("initlab: paper cards", header, nav, body), encoding="utf-8")
    return page
