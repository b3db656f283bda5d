"""The report's page header and its "Run" section: what ran, where, for how long, with
which packages and settings, and the status of every cell.

Wall times come from the runner's ``runs`` metadata (one entry per ``initlab run``
invocation; a resumed study has several) and each cell's ``wall`` (the time of the group
of cells it was trained with, since the engine trains a group's models together).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path
from typing import Any

from initlab.report import html as H
from initlab.records import CellStatus
from initlab.report.types import RunData

__all__ = ["header", "run_facts", "run_section"]


def _when(ts: Any) -> str:
    try:
        return _dt.datetime.fromtimestamp(float(ts)).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError, OverflowError, OSError):
        return "–"


def _seconds(s: Any) -> str:
    try:
        s = float(s)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(s):
        return "–"
    if s < 120:
        return f"{s:.1f} s"
    return f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.2f} h"


def _device(value: Any) -> str:
    if isinstance(value, dict):
        dev, name = value.get("device"), value.get("name")
        text = f"{name} ({dev})" if name and dev and name != dev else str(name or dev or "–")
        return text + (f", torch {value['torch']}" if value.get("torch") else "")
    return str(value) if value else "–"


def _runs(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The runner's invocations (``runs`` list; older stores: one ``last_run`` dict)."""
    runs = meta.get("runs")
    if isinstance(runs, list):
        return [r for r in runs if isinstance(r, dict)]
    last = meta.get("last_run")
    return [last] if isinstance(last, dict) else []


def run_facts(run: RunData) -> list[tuple[str, str]]:
    """``(label, value)`` pairs describing the run: study, cells, device, wall time..."""
    meta = run.meta
    counts = run.status_counts()
    runs = _runs(meta)
    device = meta.get("device") or (run.config.get("train", {}) or {}).get("device")
    walls = [float(r["wall"]) for r in runs if isinstance(r.get("wall"), (int, float))]
    facts = [
        ("study", run.name),
        ("run directory", str(run.run_dir)),
        ("cells", ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none"),
        ("device", _device(device)),
        ("wall time", _seconds(sum(walls)) + (f" over {len(runs)} invocations (resumed)" if len(runs) > 1 else "")
         if walls else "–"),
    ]
    if meta.get("created"):
        facts.append(("created", _when(meta["created"])))
    if runs and runs[-1].get("finished"):
        facts.append(("last run finished", _when(runs[-1]["finished"])))
    elif runs:
        facts.append(("last run", "interrupted (no finish time recorded)"))
    if meta.get("fingerprint"):
        facts.append(("fingerprint", str(meta["fingerprint"])))
    return facts


def run_section(run: RunData, n_figures: int, fig_dir: Path, build_s: float) -> str:
    """The "Run" section: facts, package versions, configuration, metadata, all cells."""
    parts = [H.table(None, run_facts(run), text_cols=2)]
    versions = run.meta.get("versions") or {}
    if isinstance(versions, dict) and versions:
        parts.append("<h3>Package versions</h3>"
                     + H.table(["package", "version"], sorted(versions.items()), text_cols=2))
    parts.append("<h3>Configuration</h3><pre>" + H.esc(json.dumps(run.config, indent=2, default=str)) + "</pre>")
    other = {k: v for k, v in run.meta.items() if k not in ("versions", "probe")}
    if other:
        parts.append("<details><summary>run metadata</summary><pre>"
                     + H.esc(json.dumps(other, indent=2, default=str)) + "</pre></details>")
    rows = []
    for c in run.cells:
        div = ""
        if c.divergence:
            d = c.divergence
            div = f"epoch {d.epoch}, step {d.step} {d.reason}".strip()
        rows.append([c.scheme, str(c.seed), c.model, c.dataset, c.status, _seconds(c.wall_s),
                     str(max(c.last_epoch, 0)) + (f"/{c.epochs_planned}" if c.epochs_planned else ""), div, c.key])
    parts.append(f"<details><summary>all {len(rows)} cells</summary>" + H.table(
        ["scheme", "seed", "model", "dataset", "status", "wall (its group)", "epochs", "divergence", "key"], rows,
        text_cols=5) + "</details>")
    parts.append(f'<p class="note">Report built in {build_s:.1f} s by initlab; {n_figures} figures '
                 f'also saved as PNG files in {H.esc(str(fig_dir))}.</p>')
    return "".join(parts)


def header(run: RunData) -> str:
    """The page header: title, grid size and, for an unfinished study, the PARTIAL banner."""
    counts = run.status_counts()
    finished = sum(counts[s] for s in CellStatus.FINAL)
    total = len(run.cells)
    schemes, seeds = run.schemes(), sorted({c.seed for c in run.cells})
    out = [f"<h1>initlab report: {H.esc(run.name)}</h1>",
           f"<p>{len(schemes)} schemes × {len(seeds)} seeds × {len(run.groups())} model/dataset "
           f"group{'s' if len(run.groups()) != 1 else ''} = {total} cells; generated "
           f"{_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}</p>"]
    if run.partial:
        rest = ", ".join(f"{n} {s}" for s, n in counts.items() if n and not s.final)
        out.append(f'<div class="banner" id="partial" data-partial="1">PARTIAL: {finished} of {total} '
                   f'cells finished ({H.esc(rest)}). This report shows what finished; rerun '
                   f'<code>initlab run</code> with the same directory to resume.</div>')
    return "".join(out)
