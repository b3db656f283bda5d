"""Run a study into a run directory: the steps ``initlab run`` and :func:`initlab.run` share.

Both go through the same three calls, so a run directory made from Python resumes from the
command line and the other way round:

1. :func:`resolve_study` turns a preset name, a TOML path, a dict in the TOML's shape or a
   :class:`~initlab.study.config.StudyConfig` into a ``StudyConfig``;
2. :func:`plan_run` applies the overrides (seeds, epochs, schemes, data limits, train
   settings) and checks everything before anything is written: the device, the memory the
   groups need, that the data loads and fits every model, the output directory and, when it
   holds a store already, that the store is readable and holds this study
   (:meth:`Store.check_resume`). The default directory is ``runs/<study name>``;
3. :func:`execute_plan` opens (or creates) ``OUT/initlab.sqlite``, trains the pending cells
   with :func:`~initlab.study.executor.run_study` (done and diverged cells are kept, running
   and failed ones trained again) and returns the :class:`RunResult` and the
   :class:`~initlab.study.summary.Summary` of the store.

Progress goes to any object with ``update(scheme, seed, epoch, metrics)``, ``skip(n)`` and
``close()``: :class:`Progress` writes one status line (a terminal's line is redrawn with
``\\r``; elsewhere it prints a line now and then), :class:`NotebookProgress` drives a
``tqdm.auto`` bar (a widget in Jupyter: no control characters in the cell's output).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from initlab.errors import InitlabError, UnknownNameError, suggest
from initlab.study.cell import Study
from initlab.study.config import StudyConfig, train_fields
from initlab.study.executor import RunResult, TrainGroup
from initlab.study.summary import Summary

__all__ = ["EXECUTORS", "NotebookProgress", "Progress", "ProgressSink", "RunPlan", "check_device",
           "check_positive", "execute_plan", "plan_run", "resolve_study", "run_banner"]

#: Executors a run may name; ``local`` trains here with the batched engine.
EXECUTORS: tuple[str, ...] = ("local",)


def resolve_study(study: Any) -> StudyConfig:
    """A :class:`StudyConfig` from a preset name, a ``.toml`` spec path, a dict in the TOML's
    shape (``{"study": {...}, "train": {...}, ...}``, read by :func:`parse_spec_dict`) or a
    ``StudyConfig`` (returned as is)."""
    from initlab.study.presets import get_preset
    from initlab.study.spec import load_spec, parse_spec_dict

    if isinstance(study, StudyConfig):
        return study
    if isinstance(study, Mapping):
        return parse_spec_dict(dict(study))
    if isinstance(study, os.PathLike):
        return load_spec(study)
    if isinstance(study, str):
        if study.endswith(".toml") or os.sep in study or Path(study).is_file():
            return load_spec(study)
        return get_preset(study)
    raise InitlabError(f"a study is a preset name, a .toml path, a dict or a StudyConfig, "
                       f"not {type(study).__name__}")


def check_positive(name: str, value: int | None, minimum: int = 1) -> None:
    """``value`` (``None``: not given) is an integer >= ``minimum``, or a one-line error."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InitlabError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise InitlabError(f"{name} must be >= {minimum}, got {value}")


def check_device(device: str) -> None:
    """``device`` names a usable torch device (cpu, cuda, cuda:N), or a one-line error."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
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


@dataclass(frozen=True)
class RunPlan:
    """A checked run: the study's config, its cells and the run directory."""

    config: StudyConfig
    study: Study
    out: Path
    #: the group size ``max_group="auto"`` chose (``None``: not asked for) and how
    max_group: int | None = None
    group_note: str = ""


def plan_run(study: Any, *, seeds: int | None = None, epochs: int | None = None,
             schemes: Any = None, limit_train: int | None = None, limit_val: int | None = None,
             train: Mapping[str, Any] | None = None, out: str | os.PathLike[str] | None = None,
             device: str = "cpu", data_dir: str | os.PathLike[str] | None = None,
             download: bool = True, max_group: int | str | None = None,
             names: Mapping[str, str] | None = None) -> RunPlan:
    """Check everything a run needs before anything is written (module docstring) and
    return the :class:`RunPlan`; raises a one-line :class:`InitlabError` and leaves the
    file system as it was.

    ``train`` overrides train settings (``lr``, ``batch_size``, ...: the fields of
    :func:`~initlab.study.config.train_fields`); ``names`` maps an argument to the name
    errors call it by (the CLI's ``--limit-train``; default the argument's own name).
    ``max_group="auto"`` sizes the groups from the memory free on *device*
    (:func:`~initlab.study.local.auto_max_group`; the plan keeps the size and a line saying
    how). Every cell's ``precision`` must run on *device*
    (:func:`~initlab.engine.precision.check_precision`).
    """
    from initlab.outputs import check_output_dir
    from initlab.study import check_data, check_memory  # (the package's names: tests replace them there)
    from initlab.study.store import Store

    name = {"seeds": "seeds", "epochs": "epochs", "limit_train": "limit_train",
            "limit_val": "limit_val", "max_group": "max_group", "out": "out", **(names or {})}
    check_positive(name["seeds"], seeds)
    check_positive(name["epochs"], epochs)
    check_positive(name["limit_train"], limit_train)
    check_positive(name["limit_val"], limit_val)
    auto = max_group == "auto"
    if isinstance(max_group, str) and not auto:
        raise InitlabError(f"{name['max_group']} must be a positive integer or 'auto', got {max_group!r}")
    if not auto:
        check_positive(name["max_group"], max_group)  # type: ignore[arg-type]
    check_device(device)
    config = resolve_study(study)
    config = config.with_overrides(seeds=seeds, epochs=epochs, schemes=schemes)
    if limit_train or limit_val:
        config = dataclasses.replace(config, limit_train=limit_train or config.limit_train,
                                     limit_val=limit_val or config.limit_val)
    if train:
        bad = sorted(set(train) - set(train_fields()))
        if bad:
            raise UnknownNameError(f"unknown override {bad[0]!r}{suggest(bad[0], list(train_fields()))}; "
                                   f"train settings are {', '.join(train_fields())}")
        config = dataclasses.replace(config, train={**config.train, **train})
    plan_study = config.expand()
    from initlab.engine.precision import check_precision

    for precision in dict.fromkeys(str(c.train.get("precision", "fp32")) for c in plan_study.cells):
        check_precision(precision, device)
    note = ""
    if auto:
        from initlab.study.local import auto_max_group

        max_group, note = auto_max_group(plan_study.cells, device)
    check_memory(plan_study.cells, device, max_group)  # type: ignore[arg-type]
    check_data(plan_study.cells, data_dir, download=download)
    where = Path(out) if out is not None else Path("runs") / plan_study.name
    out_path = check_output_dir(where, name["out"])
    Store.check_resume(out_path, plan_study)  # a damaged or foreign store, another study
    return RunPlan(config=config, study=plan_study, out=out_path,
                   max_group=max_group if auto else None, group_note=note)  # type: ignore[arg-type]


def run_banner(plan: RunPlan, device: str) -> str:
    """The line a run starts with: the grid's size, the epochs, the device, the directory."""
    config, study = plan.config, plan.study
    return (f"study {study.name!r}, {len(study.cells)} models "
            f"({len(config.schemes)} schemes x {len(config.seeds)} seeds"
            + (f" x {len(config.models)} models" if len(config.models) > 1 else "")
            + (f" x {len(config.datasets)} datasets" if len(config.datasets) > 1 else "")
            + (f" x {len(config.trains)} train settings" if len(config.trains) > 1 else "")
            + f"), {config.epochs} epochs, device {device}, into {plan.out}")


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

    def update(self, scheme: str, seed: int, epoch: int, metrics: Mapping[str, Any]) -> None:
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

    def accuracies(self) -> str:
        """``scheme acc`` for each scheme seen, the mean over its seeds (``diverged``: none left)."""
        def show(values: dict[int, float]) -> str:
            live = [a for a in values.values() if a == a]  # diverged models report NaN
            return f"{sum(live) / len(live):.3f}" if live else "diverged"

        return "  ".join(f"{s} {show(v)}" for s, v in self.latest.items() if v)

    def line(self) -> str:
        frac = self.done / self.total if self.total else 1.0
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / frac - elapsed if frac > 0 else float("nan")
        bar = "#" * int(24 * frac) + "." * (24 - int(24 * frac))
        eta_txt = f"{eta:4.0f}s" if eta == eta else "   ?"
        return f"[{bar}] {self.done}/{self.total} model-epochs, eta {eta_txt} | val acc: {self.accuracies()}"

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


class NotebookProgress(Progress):
    """The same counts through a tqdm bar, the val accuracies as its postfix.

    In a notebook (``notebook=True``) the bar is ``tqdm.notebook``'s widget (needs
    ipywidgets: ``pip install 'initlab[notebook]'``); without the widget it prints a plain
    line now and then, so a cell's output never holds ``\\r`` or terminal codes. Elsewhere
    it is ``tqdm.auto``'s bar on the stream (stderr), or without tqdm :class:`Progress`'s line.
    """

    def __init__(self, total: int, stream: Any = None, enabled: bool = True, *, notebook: bool = False,
                 every: int = 0) -> None:
        super().__init__(total, stream=(sys.stdout if notebook and stream is None else stream),
                         enabled=enabled, every=every)
        self._bar: Any = None
        if notebook:
            self.tty = False  # never redraw with control characters
        if not enabled:
            return
        try:
            if notebook:
                import ipywidgets  # noqa: F401  (tqdm.notebook's widget)
                from tqdm.notebook import tqdm
            else:
                from tqdm.auto import tqdm
        except ImportError:
            return
        kw = {} if notebook else {"file": self.stream, "ncols": 100, "mininterval": 0.5}
        self._bar = tqdm(total=total, unit="model-epoch", **kw)

    def render(self, force: bool = False) -> None:
        if self._bar is None:
            super().render(force)
            return
        self._bar.n = self.done
        self._bar.set_postfix_str(self.accuracies(), refresh=False)
        self._bar.refresh()

    def skip(self, n: int) -> None:
        super().skip(n)
        if self._bar is not None:
            self.render()

    def close(self) -> None:
        if self._bar is None:
            super().close()
            return
        self.render()
        self._bar.close()


class ProgressSink:
    """Delegates to the executor's StoreSink and reports each epoch to a progress object."""

    def __init__(self, sink: Any, progress: Any) -> None:
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


def execute_plan(plan: RunPlan, *, device: str = "cpu", data_dir: str | os.PathLike[str] | None = None,
                 probe: bool = True, max_group: int | str | None = None,
                 progress: Callable[[int, int], Any] | None = None,
                 log: Callable[[str], None] | None = None,
                 train_group: TrainGroup | None = None, executor: Any = None,
                 threshold: float = 0.8, level: float = 0.95,
                 step: str = "eager") -> tuple[RunResult, Summary]:
    """Train the plan's pending cells into ``plan.out`` (resuming what its store holds).

    ``progress(total, pending)`` makes the progress object (``total`` model-epochs of the
    ``pending`` cells; default none); ``log`` gets one-line messages (the banner, the
    trainer's notes, resume counts); ``train_group`` replaces the local engine's
    :func:`~initlab.study.local.engine_train_group`; ``executor`` trains the groups instead
    (:class:`~initlab.study.executor.Executor`, e.g. the ``ray`` one). Returns the
    :class:`RunResult` and the store's :class:`Summary` at ``threshold`` and ``level``.
    ``max_group="auto"`` takes the size :func:`plan_run` chose (``plan.max_group``);
    ``step`` is the MLP engine's step mode (``eager``, ``compile``, ``cuda-graphs``).
    """
    from initlab.study import engine_train_group  # (the package's name: tests replace it there)
    from initlab.study.executor import run_study
    from initlab.study.store import Store
    from initlab.study.summary import summarize

    say = log or (lambda line: None)
    try:
        plan.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InitlabError(f"cannot create the run directory {str(plan.out)!r} ({exc.strerror or exc}); "
                           "choose a writable directory") from None
    with Store.create(plan.out) as store:
        epochs = plan.config.epochs
        store.attach(plan.study)  # run_study attaches again (idempotent)
        pending = len(store.pending_cells())
        say(run_banner(plan, device))
        if max_group == "auto":
            max_group = plan.max_group
            if plan.group_note:
                say(plan.group_note)
        shown = progress(pending * epochs, pending) if progress is not None else None
        if executor is None:
            group = train_group or engine_train_group(device=device, data_dir=data_dir, probe=probe, log=say,
                                                      step=step)

        def on_record(cell: Any, record: Any) -> None:  # every executor's record stream
            if shown is None:
                return
            if hasattr(record, "val_acc"):
                shown.update(cell.scheme, cell.seed, record.epoch, record.to_dict())
            else:  # a Divergence: the frozen model's remaining epochs count as done
                shown.skip(max(int(cell.train.get("epochs", 10)) - int(record.epoch), 0))

        try:
            result = run_study(plan.study, store, None if executor is not None else group,
                               executor=executor, max_group_size=max_group, on_record=on_record)
        finally:
            if shown is not None:
                shown.close()
        if result.skipped:
            say(f"resumed: {result.skipped} finished model(s) skipped")
        summary = summarize(store, threshold=threshold, level=level)
    return result, summary
