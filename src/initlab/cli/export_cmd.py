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
from pathlib import Path
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

    if args.out and not args.format:
        raise InitlabError("--out is the directory of the tables; give --format csv or parquet with it")
    if not (args.tensorboard or args.wandb or args.format):
        raise InitlabError("nothing to export; give --tensorboard DIR, --wandb or --format csv|parquet")
    from initlab.report.extras import require

    # check every requested extra before doing any work
    if args.tensorboard:
        require("tensorboard.summary.writer.event_file_writer", "tensorboard")
    if args.wandb:
        require("wandb", "wandb")
    if args.format == "parquet":
        require("pandas", "parquet")
        require("pyarrow", "parquet")

    from initlab.outputs import check_output_dir
    from initlab.report.rundata import check_run_dir, load_run

    # every output place is checked before any work (nothing is created here)
    check_run_dir(args.run_dir)
    out = Path(args.out) if args.out else Path(args.run_dir) / "tables"
    if args.format:
        check_output_dir(out, "--out" if args.out else "the tables directory")
    if args.tensorboard:
        check_output_dir(args.tensorboard, "--tensorboard")
    data = load_run(args.run_dir)  # read-only: the store is never changed
    if args.format:
        from initlab.report.tables import export_tables

        written = export_tables(args.run_dir, out, args.format, data=data)
        print(f"tables ({args.format}): {len(written)} files in {out}")
    if args.tensorboard:
        from initlab.report.tensorboard_export import export_tensorboard

        runs = export_tensorboard(args.run_dir, args.tensorboard, data=data)
        print(f"tensorboard: {len(runs)} runs in {args.tensorboard}; "
              f"view with: tensorboard --logdir {args.tensorboard}")
    if args.wandb:
        from initlab.report.wandb_export import export_wandb

        where = export_wandb(args.run_dir, args.wandb, entity=args.wandb_entity, mode=args.wandb_mode, data=data)
        print(f"wandb: {len(where)} runs" + (f", e.g. {where[0]}" if where else ""))
    if data.partial:
        from initlab.records import CellStatus

        counts = data.status_counts()
        finished = sum(counts[s] for s in CellStatus.FINAL)
        print(f"note: study {data.name!r} is PARTIAL ({finished} of {len(data.cells)} cells finished); "
              f"unfinished cells are exported with the epochs they recorded")
    return 0
