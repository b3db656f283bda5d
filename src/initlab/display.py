"""Small HTML tables for notebooks: what ``_repr_html_`` of initlab's objects returns.

Jupyter shows an object's ``_repr_html_()`` when a cell evaluates to it. initlab's reports
(:class:`~initlab.check.CheckReport`, :class:`~initlab.apply.InitReport`,
:class:`~initlab.probe.result.ProbeResult`, a :class:`~initlab.schemes.core.Scheme` and its
law, and a study's ``Results``) build theirs with :func:`html_table`: a title, a header, one
row per layer or scheme, every value escaped, verdict cells coloured (``ok``: green,
``bad``: red), long tables cut to ``max_rows`` with a line saying how many were left out.
No imports beyond the standard library, so any layer may use it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["BAD", "OK", "Mark", "fmt", "html_table"]

#: Background colours of verdict cells.
OK, BAD = "#d9f2d9", "#f8d0d0"


class Mark:
    """A table value shown with a verdict colour: ``Mark("fails", ok=False)``."""

    __slots__ = ("text", "ok")

    def __init__(self, text: Any, ok: bool) -> None:
        self.text, self.ok = text, bool(ok)

    def __repr__(self) -> str:
        return f"Mark({self.text!r}, ok={self.ok})"


def fmt(value: Any, digits: int = 4) -> str:
    """A compact text of a value: floats with ``digits`` significant digits, NaN as ``-``."""
    if isinstance(value, Mark):
        return fmt(value.text, digits)
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.{digits}g}"
    if isinstance(value, (tuple, list)):
        return "x".join(str(v) for v in value) if all(isinstance(v, int) for v in value) else str(value)
    return str(value)


def html_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]], *,
               notes: Sequence[str] = (), max_rows: int = 40, digits: int = 4) -> str:
    """An HTML block: ``title`` (bold), a table of ``rows`` under ``header``, then ``notes``.

    A :class:`Mark` value gets a green (``ok``) or red background; everything is escaped.
    At most ``max_rows`` rows are shown (the first ones), with a line saying how many more
    there are.
    """
    esc = html.escape
    cell_css = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;font-family:monospace"
    out = [f'<div class="initlab-repr"><p style="margin:4px 0"><b>{esc(title)}</b></p>']
    if header:
        out.append('<table style="border-collapse:collapse;font-size:12px">')
        out.append("<thead><tr>" + "".join(f'<th style="{cell_css}">{esc(str(h))}</th>' for h in header)
                   + "</tr></thead><tbody>")
        for row in rows[:max_rows]:
            tds = []
            for v in row:
                style = cell_css
                if isinstance(v, Mark):
                    style += f";background:{OK if v.ok else BAD}"
                tds.append(f'<td style="{style}">{esc(fmt(v, digits))}</td>')
            out.append("<tr>" + "".join(tds) + "</tr>")
        out.append("</tbody></table>")
        if len(rows) > max_rows:
            out.append(f'<p style="margin:2px 0"><i>... {len(rows) - max_rows} more rows</i></p>')
    for note in notes:
        out.append(f'<p style="margin:2px 0">{esc(note)}</p>')
    out.append("</div>")
    return "".join(out)
