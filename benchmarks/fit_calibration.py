"""Fit the probe's calibrated verdicts and score to the calibration grid.

Reads ``benchmarks/data/calibration_grid.jsonl`` (made by ``calibrate_probe.py``), fits
:func:`initlab.probe.calibration.fit` on its training split (by model config), evaluates it
on the held-out split, and writes

* the package data file ``src/initlab/probe/calibration.json`` (parameters + held-out metrics),
* the calibration figure ``docs/calibration.png`` (score vs trained accuracy, held-out rows),
* with ``--markdown``, the README table of the held-out metrics on stdout.

Deterministic: the same grid gives the same file (the test suite refits the shipped grid and
compares).

    python benchmarks/fit_calibration.py
    python benchmarks/fit_calibration.py --grid /tmp/q.jsonl --out /tmp/cal.json --figure /tmp/cal.png
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Mapping

from initlab.probe.calibration import KINDS, OPTIMIZERS, fit, read_grid

ROOT = Path(__file__).resolve().parent.parent
GRID = ROOT / "benchmarks" / "data" / "calibration_grid.jsonl"
OUT = ROOT / "src" / "initlab" / "probe" / "calibration.json"
FIGURE = ROOT / "docs" / "calibration.png"


def grid_info(path: Path, header: Mapping[str, Any]) -> dict[str, Any]:
    meta_path = path.with_suffix(path.suffix + ".meta.json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16],
            "settings": header.get("settings", {}), "torch": header.get("torch"),
            "wall_seconds": meta.get("total_wall_seconds")}


def markdown(cal: Any) -> str:
    """The held-out metrics as Markdown tables (what the README shows)."""
    h = cal.heldout
    lines = [f"Held-out split: {h['rows']} rows of {h['configs']} model configs "
             f"(a row trains when it reaches {cal.ok_fraction:.0%} of the best scheme's accuracy above chance).", "",
             "| verdict | " + " | ".join(f"{o} n | {o} precision | {o} recall" for o in OPTIMIZERS) + " |",
             "|---|" + "---|---|---|" * len(OPTIMIZERS)]

    def cell(v: Any) -> str:
        return "-" if v is None else f"{v:.2f}"

    for kind in ("ok", *KINDS, "failure"):
        row = [h["verdicts"][o][kind] for o in OPTIMIZERS]
        if all(r["n"] == 0 for r in row) and kind not in ("ok", "failure"):
            continue
        lines.append(f"| {kind} | " + " | ".join(f"{r['n']} | {cell(r['precision'])} | {cell(r['recall'])}"
                                                for r in row) + " |")
    lines += ["", "| optimizer / family | rows | Spearman rho (pooled) | p | mean within-model rho (models) |",
              "|---|---|---|---|---|"]
    def order(key: str) -> tuple[int, int, str]:
        opt, fam = key.split("/")
        return (OPTIMIZERS.index(opt), fam == "all", fam)

    for key in sorted(h["spearman"], key=order):
        e = h["spearman"][key]
        if e["n"] == 0:
            continue
        rho = "-" if "rho" not in e else f"{e['rho']:.2f}"
        p = "-" if "p" not in e else f"{e['p']:.2g}"
        w = "-" if e["within_model"] is None else f"{e['within_model']:.2f} ({e['models']})"
        lines.append(f"| {key} | {e['n']} | {rho} | {p} | {w} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=Path, default=GRID)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--figure", default=str(FIGURE), help="'' for none")
    ap.add_argument("--markdown", action="store_true", help="print the README tables")
    args = ap.parse_args(argv)
    header, rows = read_grid(args.grid)
    cal = fit(rows, grid_info=grid_info(args.grid, header))
    cal.save(args.out)
    print(f"wrote {args.out} ({len(rows)} rows)")
    if args.figure:
        from initlab.probe.calibration import heldout_points
        from initlab.probe.figures import save_calibration_figure

        Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
        save_calibration_figure(heldout_points(cal, rows), args.figure)
        print(f"wrote {args.figure}")
    if args.markdown:
        print(markdown(cal))
    return 0


if __name__ == "__main__":
    sys.exit(main())
