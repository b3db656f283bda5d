"""``initlab export RUN_DIR [--tensorboard DIR] [--wandb [PROJECT]] [--format csv|parquet [--out DIR]]``.

Feeds a study's results to the tools people already use:

* ``--tensorboard DIR``: event files, one run per model, with the scalar curves and
  per-layer weight histograms per epoch (``tensorboard --logdir DIR``);
* ``--wandb [PROJECT]``: one W&B run per model, grouped per study, in PROJECT (default
  ``initlab``; ``--wandb-mode offline`` logs without an account);
* ``--format csv|parquet``: tidy tables (one row per model per epoch per metric;
  histograms in their own table) in ``--out`` (default ``RUN_DIR/tables``).

TensorBoard, W&B and Parquet are optional extras (``pip install 'initlab[tensorboard]'``,
``[wandb]``, ``[parquet]``); a missing one is reported in one line with its install
command. See :mod:`initlab.report.tensorboard_export`, :mod:`initlab.report.wandb_export`
and :mod:`initlab.report.tables`.

Every requested extra and output directory is checked before any work: a ``--tensorboard``
or ``--out`` that is a file, lies under a file or is read-only is one line and exit 2.
The run's store is opened read-only: exporting never changes it.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="export a run directory to TensorBoard, W&B, or CSV/Parquet tables",
        description="Export a study's curves, histograms and statistics to TensorBoard event files, "
                    "W&B runs, or tidy CSV/Parquet tables.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by 'initlab run'")
    p.add_argument("--tensorboard", metavar="DIR", default=None,
                   help="write TensorBoard event files into DIR (needs initlab[tensorboard])")
    p.add_argument("--wandb", nargs="?", const="initlab", default=None, metavar="PROJECT",
                   help="log each model as a W&B run in PROJECT (default initlab; needs initlab[wandb])")
    p.add_argument("--wandb-entity", metavar="NAME", default=None, help="W&B entity (default: yours)")
    p.add_argument("--wandb-mode", choices=("online", "offline", "disabled"), default=None,
                   help="W&B mode (default: WANDB_MODE, else online)")
    p.add_argument("--format", choices=("csv", "parquet"), default=None,
                   help="write tidy tables in this format (parquet needs initlab[parquet])")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="directory of the tables (default RUN_DIR/tables)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from initlab.errors import InitlabError
    from initlab.report.exporting import export_run

    if args.out and not args.format:
        raise InitlabError("--out is the directory of the tables; give --format csv or parquet with it")
    if not (args.tensorboard or args.wandb or args.format):
        raise InitlabError("nothing to export; give --tensorboard DIR, --wandb or --format csv|parquet")
    done = export_run(args.run_dir, tensorboard=args.tensorboard, wandb=args.wandb,
                      wandb_entity=args.wandb_entity, wandb_mode=args.wandb_mode, format=args.format,
                      out=args.out)
    data = done.data
    if args.format:
        print(f"tables ({args.format}): {len(done.tables)} files in {done.tables_dir}")
    if args.tensorboard:
        print(f"tensorboard: {len(done.tensorboard)} runs in {args.tensorboard}; "
              f"view with: tensorboard --logdir {args.tensorboard}")
    if args.wandb:
        print(f"wandb: {len(done.wandb)} runs" + (f", e.g. {done.wandb[0]}" if done.wandb else ""))
    if data.partial:
        from initlab.records import CellStatus

        counts = data.status_counts()
        finished = sum(counts[s] for s in CellStatus.FINAL)
        print(f"note: study {data.name!r} is PARTIAL ({finished} of {len(data.cells)} cells finished); "
              f"unfinished cells are exported with the epochs they recorded")
    return 0
