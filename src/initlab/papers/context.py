"""What a card's ``measure`` runs through: small studies, figures, the output directory.

:meth:`CardContext.study` runs a :class:`~initlab.study.StudyConfig` with the project's own
executor (:func:`initlab.study.run_study` + :func:`initlab.study.engine_train_group`, no
probe) into a fresh store (``OUT/runs/<card>-<full|quick>-<name>``, or a temporary
directory when there is no ``--out``) and returns every cell's records. Figures go to
``OUT/figures/<card>_<name>.png`` through the report's :func:`~initlab.report.plotting.save_png`;
without an output directory none are drawn.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from initlab.records import CellStatus, EpochRecord, StepRecord

__all__ = ["CardContext", "StudyCell", "StudyRun"]


@dataclass(frozen=True)
class StudyCell:
    """One trained cell of a card's study: its identity, status and records."""

    scheme: str
    seed: int
    model: str
    train: dict[str, Any]
    status: CellStatus
    epochs: list[EpochRecord]
    steps: list[StepRecord]

    @property
    def final(self) -> EpochRecord | None:
        return self.epochs[-1] if self.epochs else None


@dataclass(frozen=True)
class StudyRun:
    """The cells of one study, in study order, and its per-scheme summary rows."""

    cells: list[StudyCell]
    summary: Any  # initlab.study.Summary
    wall_s: float

    def select(self, **match: Any) -> list[StudyCell]:
        """Cells whose attributes (or train settings, e.g. ``lr=0.01``) equal *match*."""
        out = []
        for c in self.cells:
            ok = True
            for k, v in match.items():
                have = getattr(c, k) if hasattr(c, k) else c.train.get(k)
                if have != v:
                    ok = False
                    break
            if ok:
                out.append(c)
        return out


class CardContext:
    """Where a card runs (module docstring). A context manager: a temporary directory
    for stores is removed on exit."""

    def __init__(self, card: str, *, quick: bool, out: str | Path | None, device: str = "cpu",
                 data_dir: str | Path | None = None, log: Callable[[str], None] | None = None) -> None:
        self.card = card
        self.quick = quick
        self.out = Path(out) if out is not None else None
        self.device = device
        self.data_dir = data_dir
        self.log = log or (lambda _msg: None)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> CardContext:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "full"

    def _runs_root(self) -> Path:
        if self.out is not None:
            return self.out / "runs"
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"initlab-paper-{self.card}-")
        return Path(self._tmp.name)

    def study(self, config: Any, name: str = "study") -> StudyRun:
        """Train *config* (a :class:`~initlab.study.StudyConfig`) from scratch and read it back."""
        import time

        from initlab.study import Store, engine_train_group, run_study, summarize

        run_dir = self._runs_root() / f"{self.card}-{self.mode}-{name}"
        if run_dir.exists():  # a card's store is its own: always a fresh run
            shutil.rmtree(run_dir)
        study = config.expand()
        t0 = time.perf_counter()
        self.log(f"{self.card}: training {len(study)} models ({name})")
        with Store.create(run_dir) as store:
            run_study(study, store, engine_train_group(device=self.device, data_dir=self.data_dir, probe=False))
            epochs = store.epoch_records()
            steps = store.step_records()
            cells = [StudyCell(r.scheme, r.seed, r.model, dict(r.cell.train), r.status,
                               epochs.get(r.key, []), steps.get(r.key, []))
                     for r in store.cells()]
            summary = summarize(store)
        return StudyRun(cells, summary, time.perf_counter() - t0)

    def figure(self, fig: Any, name: str, alt: str) -> str | None:
        """Save a matplotlib figure as ``figures/<card>_<name>.png`` under the output
        directory and return that relative path (``None``, figure closed, without one)."""
        from initlab.report.plotting import pyplot, save_png

        if self.out is None:
            pyplot().close(fig)
            return None
        rel = f"figures/{self.card}_{name}.png"
        save_png(fig, self.out / rel, alt)
        return rel

    def pyplot(self) -> Any:
        from initlab.report.plotting import pyplot

        return pyplot()
