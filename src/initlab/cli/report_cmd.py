"""``initlab report RUN_DIR [--out FILE] [--threshold F] [--alpha F]``: the study report.

Writes ``RUN_DIR/report.html`` (one self-contained file: figures inline, no network
needed to open it) and the figures as PNG files in ``RUN_DIR/figures/``; see
:mod:`initlab.report.build`. ``initlab run`` calls the same code when a study ends. An
interrupted study is reported from the cells that finished, marked PARTIAL.

``--out`` is checked before anything is read: a directory, or a place that cannot be
written, is one line and exit 2. The report is written atomically (nothing half-written
is left on failure) and the run's store is opened read-only: it is never changed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {text!r}")
    return value


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="write RUN_DIR/report.html: summary, learning curves, weight histograms, activations",
        description="Build the study report: a self-contained HTML page (open it offline) plus PNG "
                    "figures, from a run directory written by 'initlab run'.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by 'initlab run'")
    p.add_argument("--out", metavar="FILE", default=None,
                   help="where to write the HTML (default RUN_DIR/report.html; figures go beside it)")
    p.add_argument("--threshold", type=_fraction, default=0.8,
                   help="validation accuracy of the 'epochs to' column, as a fraction (default 0.8)")
    p.add_argument("--alpha", type=_fraction, default=0.05,
                   help="significance level of the comparison with the best scheme (default 0.05)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from initlab.errors import InitlabError
    from initlab.report.build import build_report, check_report_out
    from initlab.report.rundata import load_run

    if args.alpha >= 1.0:
        raise InitlabError(f"--alpha must be below 1, got {args.alpha}")
    check_report_out(args.run_dir, args.out)  # a bad --out fails before any work
    data = load_run(args.run_dir)
    from initlab.records import CellStatus

    counts = data.status_counts()
    finished = sum(counts[s] for s in CellStatus.FINAL)
    path = build_report(args.run_dir, out=args.out, data=data, target=args.threshold, alpha=args.alpha)
    if data.partial:
        print(f"initlab: study {data.name!r} is PARTIAL: {finished} of {len(data.cells)} cells finished; "
              f"the report shows those", file=sys.stderr)
    print(path)
    return 0
