"""``initlab summary RUN_DIR [--json] [--threshold F] [--level F]``: per-scheme results.

Prints, per scheme (and per model/dataset when the study has several), the final
validation accuracy and loss as mean +/- confidence interval over seeds, the epochs taken
to reach the accuracy threshold, and the number of diverged runs; see
:mod:`initlab.study.summary`. Works on finished and on interrupted studies (the latter
are flagged PARTIAL), and on a study that is still running. The store is opened
read-only: it is never changed.
"""

from __future__ import annotations

import argparse
from typing import Any

from initlab.errors import InitlabError


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 < value < 1.0 and value != 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {text!r}")
    return value


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "summary",
        help="summarize a run directory: accuracy, loss and speed per scheme",
        description="Per scheme: final validation accuracy and loss (mean +/- CI over seeds), "
                    "epochs to reach an accuracy threshold, diverged runs.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by 'initlab run'")
    p.add_argument("--json", action="store_true", help="machine-readable output (NaN as null)")
    p.add_argument("--threshold", type=_fraction, default=0.8,
                   help="validation accuracy to reach, as a fraction (default 0.8)")
    p.add_argument("--level", type=_fraction, default=0.95,
                   help="confidence level of the intervals (default 0.95)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from initlab.study.store import Store
    from initlab.study.summary import render_table, summarize, summary_json

    if args.level >= 1.0:
        raise InitlabError(f"--level must be below 1, got {args.level}")
    with Store.open(args.run_dir, readonly=True) as store:  # never changes the store
        summary = summarize(store, threshold=args.threshold, level=args.level)
    print(summary_json(summary) if args.json else render_table(summary))
    return 0
