"""``initlab run [PRESET | spec.toml] ...``: run a study, resumably, then summarize and report.

With no argument it runs the ``seed`` preset: the article's 7 schemes x 3 seeds, 10 epochs,
on Fashion-MNIST. Results go to ``--out`` (default ``runs/<study name>``); running the same
study into the same directory again resumes it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from initlab.errors import InitlabError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("run", help="run a study (default: the article's 'seed' preset)",
                       description="Train a grid of schemes x seeds x models x datasets with the batched "
                                   "engine, store results in RUN_DIR/initlab.sqlite (resumable), print a "
                                   "summary and write RUN_DIR/report.html.")
    p.add_argument("study", nargs="?", default="seed", help="a preset name (seed, deep, smoke) or a spec.toml file")
    p.add_argument("--seeds", type=int, help="number of seeds (0..N-1)")
    p.add_argument("--epochs", type=int, help="number of epochs")
    p.add_argument("--schemes", help="comma-separated scheme specs, e.g. zeros,he_normal,'uniform(a=-1,b=1)'")
    p.add_argument("--out", help="run directory (default runs/<study name>)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--data-dir", help="data root holding fashion-mnist/ and mnist/ (else $INITLAB_DATA_DIR, "
                                      "then the user cache; missing files are downloaded)")
    p.add_argument("--no-download", action="store_true", help="never download missing data files")
    p.add_argument("--limit-train", type=int, help="train on the first N training images only")
    p.add_argument("--limit-val", type=int, help="validate on the first N validation images only")
    p.add_argument("--max-group", type=int, help="train at most this many models at once (memory bound)")
    p.add_argument("--no-report", action="store_true", help="do not write report.html at the end")
    p.add_argument("--no-probe", action="store_true",
                   help="do not record each model's signal-propagation probe at init (the report's "
                        "'Signal probe' section)")
    p.add_argument("--tensorboard", metavar="DIR", help="also write TensorBoard event files to DIR")
    p.add_argument("--wandb", nargs="?", const="initlab", metavar="PROJECT",
                   help="also log every model to Weights & Biases (WANDB_MODE=offline works)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=run)


def load_study_config(arg: str) -> Any:
    """A preset by name, or a TOML spec file by path."""
    from initlab.study import get_preset, load_spec

    if arg.endswith(".toml") or os.sep in arg or Path(arg).is_file():
        return load_spec(arg)
    return get_preset(arg)


def _check_positive(name: str, value: int | None, minimum: int = 1) -> None:
    if value is not None and value < minimum:
        raise InitlabError(f"{name} must be >= {minimum}, got {value}")


class Progress:
    """One status line: model-epochs done, ETA, and the latest val accuracy per scheme."""

    def __init__(self, total: int, stream: Any = None, enabled: bool = True, every: int = 0) -> None:
        stream = sys.stderr if stream is None else stream
        self.total, self.done, self.stream = total, 0, stream
        self.every = every  #: without a terminal, also print after every this-many model-epochs
        self.enabled = enabled
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.latest: dict[str, dict[int, float]] = {}
        self.t0 = time.perf_counter()
        self._last_print = 0.0

    def update(self, scheme: str, seed: int, epoch: int, metrics: dict[str, Any]) -> None:
        if epoch < 1:
            return
        self.done += 1
        acc = metrics.get("val_acc")
        if isinstance(acc, (int, float)):
            self.latest.setdefault(scheme, {})[seed] = float(acc)
        self.render()

    def skip(self, n: int) -> None:
        """Epochs a diverged model will not train (it is frozen): count them as done."""
        self.done = min(self.done + n, self.total)

    def line(self) -> str:
        frac = self.done / self.total if self.total else 1.0
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / frac - elapsed if frac > 0 else float("nan")
        bar = "#" * int(24 * frac) + "." * (24 - int(24 * frac))
        def show(values: dict[int, float]) -> str:
            live = [a for a in values.values() if a == a]  # diverged models report NaN
            return f"{sum(live) / len(live):.3f}" if live else "diverged"

        accs = "  ".join(f"{s} {show(v)}" for s, v in self.latest.items() if v)
        eta_txt = f"{eta:4.0f}s" if eta == eta else "   ?"
        return f"[{bar}] {self.done}/{self.total} model-epochs, eta {eta_txt} | val acc: {accs}"

    def render(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.tty:
            self.stream.write("\r\x1b[K" + self.line()[: os.get_terminal_size(self.stream.fileno()).columns - 1]
                              if hasattr(self.stream, "fileno") else "\r" + self.line())
            self.stream.flush()
        elif (force or now - self._last_print > 10 or self.done == self.total
              or (self.every and self.done % self.every == 0)):
            self._last_print = now
            print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


class _ProgressSink:
    """Delegates to the executor's StoreSink and reports each epoch to a Progress."""

    def __init__(self, sink: Any, progress: Progress) -> None:
        self._sink, self._progress = sink, progress

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sink, name)

    def diverged(self, cell: Any, event: Any) -> None:
        self._sink.diverged(cell, event)
        c = self._cell(cell)
        self._progress.skip(max(int(c.train.get("epochs", 10)) - int(event.epoch), 0))

    def _cell(self, cell: Any) -> Any:
        return self._sink.cells[cell] if isinstance(cell, int) else next(
            x for x in self._sink.cells if x.key == self._sink.key(cell))

    def epoch(self, cell: Any, record: Any, **kw: Any) -> None:
        self._sink.epoch(cell, record, **kw)
        c = self._cell(cell)
        self._progress.update(c.scheme, c.seed, record.epoch, record.to_dict())


def validate(args: argparse.Namespace) -> tuple[Any, Any, Path]:
    """Check everything a run needs before anything is written: the flags, the device,
    the optional extras asked for, the study (spec or preset and its overrides), that the
    data loads and every model fits it, the output places (``--out``, ``--tensorboard``)
    and, when ``--out`` holds a store already, that it is readable and holds this study.
    Returns ``(config, study, out)``; raises a one-line :class:`InitlabError` and leaves
    the file system as it was."""
    import dataclasses

    from initlab.outputs import check_output_dir
    from initlab.study import check_data, check_memory
    from initlab.study.store import Store

    _check_positive("--seeds", args.seeds)
    _check_positive("--epochs", args.epochs)
    _check_positive("--limit-train", args.limit_train)
    _check_positive("--limit-val", args.limit_val)
    _check_positive("--max-group", args.max_group)
    _check_device(args.device)
    _check_extras(args)
    config = load_study_config(args.study)
    config = config.with_overrides(seeds=args.seeds, epochs=args.epochs, schemes=args.schemes)
    if args.limit_train or args.limit_val:
        config = dataclasses.replace(config, limit_train=args.limit_train or config.limit_train,
                                     limit_val=args.limit_val or config.limit_val)
    study = config.expand()
    check_memory(study.cells, args.device, args.max_group)
    check_data(study.cells, args.data_dir, download=not args.no_download)
    out = check_output_dir(Path(args.out) if args.out else Path("runs") / study.name, "--out")
    if args.tensorboard:
        check_output_dir(args.tensorboard, "--tensorboard")
    Store.check_resume(out, study)  # a damaged or foreign store, another study
    return config, study, out


def run(args: argparse.Namespace) -> int:
    from initlab.study import Store, engine_train_group, render_table, run_study, summarize

    config, study, out = validate(args)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InitlabError(f"cannot create --out {str(out)!r} ({exc.strerror or exc}); "
                           "choose a writable directory") from None
    with Store.create(out) as store:
        epochs = max(int(c.train.get("epochs", 10)) for c in study.cells)
        store.attach(study)  # run_study attaches again (idempotent)
        pending = len(store.pending_cells())
        progress = Progress(pending * epochs, enabled=not args.quiet, every=pending)
        print(f"initlab run: study {study.name!r}, {len(study.cells)} models "
              f"({len(config.schemes)} schemes x {len(config.seeds)} seeds"
              + (f" x {len(config.models)} models" if len(config.models) > 1 else "")
              + (f" x {len(config.datasets)} datasets" if len(config.datasets) > 1 else "")
              + (f" x {len(config.trains)} train settings" if len(config.trains) > 1 else "")
              + f"), {epochs} epochs, device {args.device}, into {out}", file=sys.stderr)
        train_group = engine_train_group(
            device=args.device, data_dir=args.data_dir, probe=not args.no_probe,
            log=lambda line: print(f"initlab run: {line}", file=sys.stderr))

        def tracked(cells: Any, sink: Any) -> None:
            train_group(cells, _ProgressSink(sink, progress))

        try:
            result = run_study(study, store, tracked, max_group_size=args.max_group)
        finally:
            progress.close()
        if result.skipped:
            print(f"resumed: {result.skipped} finished model(s) skipped", file=sys.stderr)
        print(render_table(summarize(store)))
    print(f"wall time {result.wall:.1f} s; results in {out}", file=sys.stderr)
    return _after_run(out, args)


def _check_extras(args: argparse.Namespace) -> None:
    """A missing optional package is reported before training, not after it."""
    from initlab.report.extras import require

    if args.tensorboard:
        require("tensorboard.summary.writer.event_file_writer", "tensorboard")
    if args.wandb:
        require("wandb", "wandb")


def _check_device(device: str) -> None:
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise InitlabError(f"unknown --device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise InitlabError(f"--device {device!r} is not supported; use cpu, cuda or cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InitlabError("--device cuda asked for, but torch sees no CUDA device; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InitlabError(f"--device {device!r}: torch sees {torch.cuda.device_count()} CUDA device(s), "
                           f"numbered from 0; use cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
    if dev.type == "cpu" and dev.index not in (None, 0):
        raise InitlabError(f"--device {device!r}: there is one CPU device; use --device cpu")


def _after_run(out: Path, args: argparse.Namespace) -> int:
    """Report and exports after a run (each failure is one line; the results stay)."""
    status = 0
    steps: list[tuple[str, Any]] = []
    if not args.no_report:
        steps.append(("report", lambda: __import__("initlab.report", fromlist=["build_report"]).build_report(out)))
    if args.tensorboard:
        steps.append(("tensorboard", lambda: __import__("initlab.report", fromlist=["export_tensorboard"])
                      .export_tensorboard(out, args.tensorboard)))
    if args.wandb:
        steps.append(("wandb", lambda: __import__("initlab.report", fromlist=["export_wandb"])
                      .export_wandb(out, project=args.wandb)))
    for what, step in steps:
        try:
            result = step()
            if isinstance(result, list):
                result = f"{len(result)} run(s) written" + (f" under {args.tensorboard}" if what == "tensorboard" else "")
            print(f"{what}: {result}", file=sys.stderr)
        except InitlabError as exc:
            print(f"initlab: error: {what}: {exc}", file=sys.stderr)
            status = 2
    return status
