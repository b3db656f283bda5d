"""The text table of card results: card, claim, paper's value, ours, verdict (one row per card)."""

from __future__ import annotations

import json
import textwrap
from typing import Sequence

from initlab.papers.card import Card, CardResult

__all__ = ["list_table", "render_table", "results_json"]

_WIDTHS = {"claim": 46, "paper": 30, "ours": 46}


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width) or [""]


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[int | None]) -> str:
    wrapped = [[_wrap(c, w) if w else [c] for c, w in zip(r, widths)] for r in rows]
    cols = [max([len(header[i])] + [len(line) for r in wrapped for line in r[i]]) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(cols[i]) for i, c in enumerate(cells)).rstrip()  # noqa: E731
    out = [line(header), line(["-" * c for c in cols])]
    for r in wrapped:
        for k in range(max(len(c) for c in r)):
            out.append(line([c[k] if k < len(c) else "" for c in r]))
    return "\n".join(out)


def render_table(results: Sequence[CardResult]) -> str:
    """One row per card: card, claim, paper's value, ours, verdict (wrapped to fit ~200 columns),
    then the wall time and the mode (full or quick)."""
    rows = [[r.card, r.claim, r.paper_value, r.ours, r.verdict, f"{r.wall_s:.0f} s" + (" quick" if r.quick else "")]
            for r in results]
    return _grid(["card", "claim", "paper's value", "ours", "verdict", "wall"], rows,
                 [None, _WIDTHS["claim"], _WIDTHS["paper"], _WIDTHS["ours"], None, None])


def list_table(cards: Sequence[Card]) -> str:
    """``initlab paper --list``: name, citation, figure."""
    rows = [[c.name, c.citation, c.figure] for c in cards]
    return _grid(["card", "citation", "figure"], rows, [None, 70, 40])


def results_json(results: Sequence[CardResult]) -> str:
    return json.dumps({"cards": [r.to_dict() for r in results]}, indent=2)
