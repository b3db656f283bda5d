"""Run a study's pending cells, group by group, recording into a :class:`Store`.

The driver (:func:`run_study`) plans the groups (cells trained together by the batched
engine; :func:`~initlab.study.cell.group_cells`, at most ``max_group_size`` each), hands
them to an :class:`Executor` and receives their records as they complete, through a
:class:`GroupDriver`: the driver is the only writer of the SQLite store. Two executors:

* :class:`LocalExecutor` (``local``): the in-process loop. It takes a ``train_group``
  callable, ``train_group(cells, sink) -> None``, that trains one group and reports through
  the :class:`StoreSink` it is given (the batched engine's is
  :func:`~initlab.study.local.engine_train_group`; its
  :class:`~initlab.study.engine_sink.EngineSink` adapts the engine's records to the sink).
* :class:`~initlab.study.ray_executor.RayExecutor` (``ray``): one Ray task per group, whose
  worker streams the same records back (:mod:`initlab.study.events`).

Per group: the cells are marked ``running`` (one transaction); the trainer's reports are
written as they come (each :meth:`StoreSink.epoch` is one transaction); when the group has
trained, cells not finished explicitly are marked ``done`` (or ``diverged`` if it reported
a divergence) with the group's wall time. If it raises, the group's unfinished cells are
marked ``failed`` with the error text (rerun on resume); the local executor re-raises
unless ``keep_going``. A ``KeyboardInterrupt`` (or a kill) leaves them ``running``; the
next :func:`run_study` on the same store restarts them from scratch. A retried attempt
(a worker died) first deletes its group's rows (:meth:`GroupDriver.restart`). Every
stored epoch and divergence is also handed to ``on_record(cell, record)`` (the progress
display), whatever the executor.

Each call appends ``{started, finished, wall, groups, cells, executor, done, diverged,
failed}`` to the store's ``runs`` meta entry (``finished`` stays ``None`` for an
interrupted call), so the total compute time of a resumed study is the sum of the
``wall`` values.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from initlab.errors import InitlabError
from initlab.records import CellStatus, Divergence, EpochRecord, StepRecord
from initlab.study.cell import Cell, Study, group_cells
from initlab.study.store import ResumeInfo, Store

if TYPE_CHECKING:
    from initlab.study.init_records import InitRecord

__all__ = ["Executor", "GroupDriver", "LocalExecutor", "OnRecord", "RunResult", "StoreSink",
           "TrainGroup", "run_study"]


class GroupCells:
    """What a sink of one group knows about its cells' ends (the driver's
    :class:`StoreSink` and a worker's :class:`~initlab.study.events.EventSink` alike):
    ``cells`` in group order and ``_finished``, each finished cell's status."""

    cells: tuple[Cell, ...]
    _finished: dict[str, CellStatus]

    @property
    def unfinished(self) -> list[str]:
        """Keys of the group's cells not finished yet, in group order."""
        return [c.key for c in self.cells if c.key not in self._finished]

    @property
    def statuses(self) -> dict[str, CellStatus]:
        """Final status of each finished cell."""
        return dict(self._finished)


class StoreSink(GroupCells):
    """The reporting interface a trainer gets for one group of running cells.

    A cell may be named by its :class:`Cell`, its key, or its position in the group
    (the engine's model index when the models are built in group order).
    """

    def __init__(self, store: Store, cells: Sequence[Cell], *, on_record: OnRecord | None = None) -> None:
        self.store = store
        self.cells = tuple(cells)
        self.on_record = on_record
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
        key = self.key(cell)
        self.store.record_epoch(key, record, steps)
        if self.on_record is not None:
            self.on_record(self._cell(key), record)

    def steps(self, cell: Cell | str | int, steps: Sequence[StepRecord]) -> None:
        """Step records not followed by an epoch record (:meth:`Store.record_steps`)."""
        self.store.record_steps(self.key(cell), steps)

    def diverged(self, cell: Cell | str | int, event: Divergence) -> None:
        """The cell's model diverged: its :class:`~initlab.records.Divergence` now, and
        status ``diverged`` when it finishes."""
        key = self.key(cell)
        self.store.record_divergence(key, event)
        if self.on_record is not None:
            self.on_record(self._cell(key), event)

    def finish(self, cell: Cell | str | int, *, wall: float | None = None) -> CellStatus:
        """The cell is complete (its own ``wall`` seconds if known); returns its status."""
        key = self.key(cell)
        if key in self._finished:
            raise InitlabError(f"cell {key!r} was already finished")
        status = self.store.mark_finished(key, wall=wall)
        self._finished[key] = status
        return status

    def fail(self, cell: Cell | str | int, error: str) -> None:
        """The cell failed with ``error`` (one line) while the group's others go on."""
        key = self.key(cell)
        if key in self._finished:
            raise InitlabError(f"cell {key!r} was already finished")
        self.store.mark_failed([key], error)
        self._finished[key] = CellStatus.FAILED

    def _cell(self, key: str) -> Cell:
        return next(c for c in self.cells if c.key == key)

    def meta(self, key: str, value: Any) -> None:
        """Run information (device, versions, ...) for the whole run."""
        self.store.set_meta(key, value)


#: ``train_group(cells, sink)``: train the cells of one group, reporting through ``sink``.
TrainGroup = Callable[[Sequence[Cell], StoreSink], None]

#: ``on_record(cell, record)``: a stored ``EpochRecord`` or ``Divergence`` of ``cell``.
OnRecord = Callable[[Cell, "EpochRecord | Divergence"], None]


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


class GroupDriver:
    """The driver's side of a run: the only writer of the store.

    An :class:`Executor` trains the planned groups (numbered ``0..len(groups)-1``) and
    reports each one's life through this object: :meth:`start` (cells ``running``, one
    transaction; returns the group's :class:`StoreSink`), the records through that sink
    (each epoch one transaction), then :meth:`complete` or :meth:`fail`. A retried
    attempt (its worker died) calls :meth:`restart` first: the attempt's rows are deleted
    and the cells stay ``running``, in one transaction, so no epoch is recorded twice.
    """

    def __init__(self, store: Store, groups: Sequence[tuple[Cell, ...]], *,
                 keep_going: bool = False,
                 on_group: Callable[[int, int, Sequence[Cell]], None] | None = None,
                 on_record: OnRecord | None = None) -> None:
        self.store = store
        self.groups = list(groups)
        self.keep_going = keep_going
        self.on_group = on_group
        self.on_record = on_record
        self.counts = {"done": 0, "diverged": 0, "failed": 0}
        self._sinks: dict[int, StoreSink] = {}

    def sink(self, i: int) -> StoreSink:
        """The :class:`StoreSink` of group ``i``'s current attempt."""
        return self._sinks[i]

    def start(self, i: int) -> StoreSink:
        """Group ``i`` starts (``on_group`` is told first): its cells become ``running``."""
        group = self.groups[i]
        if self.on_group is not None:
            self.on_group(i, len(self.groups), group)
        self.store.mark_running([c.key for c in group])
        self._sinks[i] = StoreSink(self.store, group, on_record=self.on_record)
        return self._sinks[i]

    def restart(self, i: int) -> StoreSink:
        """Group ``i`` starts again from scratch (:meth:`Store.restart`); the cells it had
        finished or failed already keep their status (their rows are not touched)."""
        old = self._sinks[i]
        keys = old.unfinished
        self.store.restart(keys)
        sink = StoreSink(self.store, self.groups[i], on_record=self.on_record)
        sink._finished.update(old.statuses)
        self._sinks[i] = sink
        return sink

    def complete(self, i: int, wall: float | None = None) -> None:
        """Group ``i`` trained: cells not finished explicitly finish with ``wall`` seconds
        (``done``, or ``diverged`` if a divergence was recorded)."""
        sink = self._sinks[i]
        for key in sink.unfinished:
            sink.finish(key, wall=wall)
        self._tally(i)

    def fail(self, i: int, error: str) -> None:
        """Group ``i`` raised ``error`` (one line): its unfinished cells are ``failed``
        (trained again on resume)."""
        sink = self._sinks[i]
        failed = sink.unfinished
        self.store.mark_failed(failed, error)
        self.counts["failed"] += len(failed)
        self._tally(i)

    def _tally(self, i: int) -> None:
        for status in self._sinks.pop(i).statuses.values():
            self.counts[status] += 1


class Executor(Protocol):
    """How a run's groups are trained. ``execute(driver)`` trains every group of
    ``driver.groups`` and reports through ``driver`` (:class:`GroupDriver`); it may train
    them in any order and several at a time, but only the driver writes the store.
    :class:`LocalExecutor` trains here, one group after the other;
    :class:`initlab.study.ray_executor.RayExecutor` on a Ray cluster."""

    def execute(self, driver: GroupDriver) -> None: ...


class LocalExecutor:
    """Today's in-process loop: each group in turn, ``train_group(cells, sink)`` writing
    straight into the driver's :class:`StoreSink`. A group that raises fails its
    unfinished cells and the exception propagates unless ``driver.keep_going``."""

    name = "local"

    def __init__(self, train_group: TrainGroup) -> None:
        self.train_group = train_group

    def execute(self, driver: GroupDriver) -> None:
        for i, group in enumerate(driver.groups):
            sink = driver.start(i)
            t0 = time.perf_counter()
            try:
                self.train_group(group, sink)
            except Exception as exc:
                driver.fail(i, f"{type(exc).__name__}: {exc}")
                if not driver.keep_going:
                    raise
                continue
            driver.complete(i, time.perf_counter() - t0)


def run_study(
    study: Study,
    store: Store,
    train_group: TrainGroup | None = None,
    *,
    executor: Executor | None = None,
    max_group_size: int | None = None,
    keep_going: bool = False,
    on_group: Callable[[int, int, Sequence[Cell]], None] | None = None,
    on_record: OnRecord | None = None,
) -> RunResult:
    """Train every pending cell of ``study`` (resuming what ``store`` already holds).

    Args:
        train_group: trains one group here (:class:`LocalExecutor`); or give ``executor``.
        executor: trains the groups (:class:`Executor`; default ``LocalExecutor(train_group)``).
        max_group_size: at most this many cells per group (memory bound, K per task).
        keep_going: after a failing group, continue with the next (default: re-raise).
        on_group: progress callback ``on_group(i, n_groups, cells)`` before each group.
        on_record: ``on_record(cell, record)`` after each stored ``EpochRecord`` or
            ``Divergence`` (the progress display; the same stream for every executor).
    """
    if executor is None:
        if train_group is None:
            raise InitlabError("run_study needs a train_group or an executor")
        executor = LocalExecutor(train_group)
    elif train_group is not None:
        raise InitlabError("give run_study a train_group or an executor, not both")
    resume = store.attach(study)
    groups = group_cells(store.pending_cells(), max_group_size)
    t_start = time.time()
    runs = list(store.get_meta("runs", []))
    runs.append({"started": t_start, "finished": None, "groups": len(groups), "cells": len(study),
                 "executor": getattr(executor, "name", type(executor).__name__)})
    store.set_meta("runs", runs)  # an entry left with finished=None marks an interrupted run
    driver = GroupDriver(store, groups, keep_going=keep_going, on_group=on_group, on_record=on_record)
    executor.execute(driver)
    counts = driver.counts
    t_end = time.time()
    runs[-1].update(finished=t_end, wall=t_end - t_start, **counts)
    store.set_meta("runs", runs)
    return RunResult(total=resume.total, skipped=resume.finished, wall=t_end - t_start,
                     resume=resume, **counts)
