"""Run a study's pending cells, group by group, recording into a :class:`Store`.

:func:`run_study` is independent of how cells are trained: it takes a ``train_group``
callable, ``train_group(cells, sink) -> None``, that trains one group of cells (same
dataset, model and training settings; see :func:`~initlab.study.cell.group_cells`) and
reports through the :class:`StoreSink` it is given. The batched engine's
:class:`~initlab.study.engine_sink.EngineSink` adapts the engine's records to that sink.

Per group: the cells are marked ``running`` (one transaction); the trainer's reports are
written as they come (each :meth:`StoreSink.epoch` is one transaction); when
``train_group`` returns, cells it did not finish explicitly are marked ``done`` (or
``diverged`` if it reported a divergence) with the group's wall time. If it raises, the
group's unfinished cells are marked ``failed`` with the error text (rerun on resume) and
the exception propagates unless ``keep_going``. A ``KeyboardInterrupt`` (or a kill)
leaves them ``running``; the next :func:`run_study` on the same store restarts them from
scratch.

Each call appends ``{started, finished, wall, groups, cells, done, diverged, failed}`` to
the store's ``runs`` meta entry (``finished`` stays ``None`` for an interrupted call), so
the total compute time of a resumed study is the sum of the ``wall`` values.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from initlab.errors import InitlabError
from initlab.records import CellStatus, Divergence, EpochRecord, StepRecord
from initlab.study.cell import Cell, Study, group_cells
from initlab.study.store import ResumeInfo, Store

if TYPE_CHECKING:
    from initlab.study.init_records import InitRecord

__all__ = ["RunResult", "StoreSink", "TrainGroup", "run_study"]


class StoreSink:
    """The reporting interface a trainer gets for one group of running cells.

    A cell may be named by its :class:`Cell`, its key, or its position in the group
    (the engine's model index when the models are built in group order).
    """

    def __init__(self, store: Store, cells: Sequence[Cell]) -> None:
        self.store = store
        self.cells = tuple(cells)
        self._keys = {c.key for c in self.cells}
        self._finished: dict[str, CellStatus] = {}

    def key(self, cell: Cell | str | int) -> str:
        """The key of ``cell`` (a Cell, a key, or a position in the group)."""
        if isinstance(cell, Cell):
            key = cell.key
        elif isinstance(cell, str):
            key = cell
        elif isinstance(cell, int) and not isinstance(cell, bool):
            if not 0 <= cell < len(self.cells):
                raise InitlabError(f"model index {cell} is outside this group of {len(self.cells)} cells")
            key = self.cells[cell].key
        else:
            raise InitlabError(f"name a cell by Cell, key or group position, not {cell!r}")
        if key not in self._keys:
            raise InitlabError(f"cell {key!r} is not in the group being trained")
        return key

    def init(self, cell: Cell | str | int, record: InitRecord) -> None:
        """The cell's :class:`~initlab.study.init_records.InitRecord` (apply's report and
        check's verdicts at init)."""
        self.store.record_init(self.key(cell), record)

    def epoch(self, cell: Cell | str | int, record: EpochRecord, *,
              steps: Sequence[StepRecord] = ()) -> None:
        """One :class:`~initlab.records.EpochRecord` (epoch 0 = at init) of one cell and the
        step records before it, written atomically (:meth:`Store.record_epoch`)."""
        self.store.record_epoch(self.key(cell), record, steps)

    def steps(self, cell: Cell | str | int, steps: Sequence[StepRecord]) -> None:
        """Step records not followed by an epoch record (:meth:`Store.record_steps`)."""
        self.store.record_steps(self.key(cell), steps)

    def diverged(self, cell: Cell | str | int, event: Divergence) -> None:
        """The cell's model diverged: its :class:`~initlab.records.Divergence` now, and
        status ``diverged`` when it finishes."""
        self.store.record_divergence(self.key(cell), event)

    def finish(self, cell: Cell | str | int, *, wall: float | None = None) -> CellStatus:
        """The cell is complete (its own ``wall`` seconds if known); returns its status."""
        key = self.key(cell)
        if key in self._finished:
            raise InitlabError(f"cell {key!r} was already finished")
        status = self.store.mark_finished(key, wall=wall)
        self._finished[key] = status
        return status

    def meta(self, key: str, value: Any) -> None:
        """Run information (device, versions, ...) for the whole run."""
        self.store.set_meta(key, value)

    @property
    def unfinished(self) -> list[str]:
        """Keys of the group's cells not finished yet, in group order."""
        return [c.key for c in self.cells if c.key not in self._finished]

    @property
    def statuses(self) -> dict[str, CellStatus]:
        """Final status of each finished cell."""
        return dict(self._finished)


#: ``train_group(cells, sink)``: train the cells of one group, reporting through ``sink``.
TrainGroup = Callable[[Sequence[Cell], StoreSink], None]


@dataclass(frozen=True)
class RunResult:
    """Counts of one :func:`run_study` call (``skipped``: finished before it started)."""

    total: int
    skipped: int
    done: int
    diverged: int
    failed: int
    wall: float
    resume: ResumeInfo

    @property
    def complete(self) -> bool:
        return self.skipped + self.done + self.diverged == self.total


def run_study(
    study: Study,
    store: Store,
    train_group: TrainGroup,
    *,
    max_group_size: int | None = None,
    keep_going: bool = False,
    on_group: Callable[[int, int, Sequence[Cell]], None] | None = None,
) -> RunResult:
    """Train every pending cell of ``study`` (resuming what ``store`` already holds).

    Args:
        max_group_size: at most this many cells per ``train_group`` call (memory bound).
        keep_going: after a failing group, continue with the next (default: re-raise).
        on_group: progress callback ``on_group(i, n_groups, cells)`` before each group.
    """
    resume = store.attach(study)
    groups = group_cells(store.pending_cells(), max_group_size)
    t_start = time.time()
    counts = {"done": 0, "diverged": 0, "failed": 0}
    runs = list(store.get_meta("runs", []))
    runs.append({"started": t_start, "finished": None, "groups": len(groups), "cells": len(study)})
    store.set_meta("runs", runs)  # an entry left with finished=None marks an interrupted run
    for i, group in enumerate(groups):
        if on_group is not None:
            on_group(i, len(groups), group)
        store.mark_running([c.key for c in group])
        sink = StoreSink(store, group)
        t0 = time.perf_counter()
        try:
            train_group(group, sink)
        except Exception as exc:
            failed = sink.unfinished
            store.mark_failed(failed, f"{type(exc).__name__}: {exc}")
            counts["failed"] += len(failed)
            for status in sink.statuses.values():
                counts[status] += 1
            if not keep_going:
                raise
            continue
        wall = time.perf_counter() - t0
        for key in sink.unfinished:
            sink.finish(key, wall=wall)
        for status in sink.statuses.values():
            counts[status] += 1
    t_end = time.time()
    runs[-1].update(finished=t_end, wall=t_end - t_start, **counts)
    store.set_meta("runs", runs)
    return RunResult(total=resume.total, skipped=resume.finished, wall=t_end - t_start,
                     resume=resume, **counts)
