"""The record stream from a remote worker to the driver: events in the records' own vocabulary.

A worker that cannot see the store (a Ray task on another machine) trains a group with the
same ``train_group(cells, sink)`` as the local executor, given an :class:`EventSink`: the
:class:`~initlab.study.executor.StoreSink` interface, where each call becomes one *event*,
a plain dict holding the record's ``to_dict()`` (JSON-able, so it travels through any
queue or object store). The driver replays each event on the group's real ``StoreSink``
with :func:`apply_event` (records rebuilt with ``from_dict``), in the order it was emitted.

Events (``cell`` is the cell's position in the group)::

    {"kind": "init", "cell": i, "record": InitRecord.to_dict()}
    {"kind": "epoch", "cell": i, "record": EpochRecord.to_dict(), "steps": [StepRecord.to_dict(), ...]}
    {"kind": "steps", "cell": i, "steps": [...]}
    {"kind": "diverged", "cell": i, "event": Divergence.to_dict()}
    {"kind": "finish", "cell": i, "wall": seconds | None}
    {"kind": "fail", "cell": i, "error": one line}
    {"kind": "meta", "key": str, "value": JSON}
    {"kind": "probe", "model": label, "dataset": name, "result": ProbeResult.to_dict()}
    {"kind": "probe_error", "model": label, "dataset": name, "error": one line}
    {"kind": "log", "line": str}
    {"kind": "end", "wall": seconds, "error": None | one line}   (the group's last event)

What the trainer reads from the store (``sink.store.get_meta``, ``sink.store.probe``) comes
from a snapshot the driver ships with the task (:func:`store_snapshot`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

from initlab.errors import InitlabError
from initlab.records import CellStatus, Divergence, EpochRecord, StepRecord
from initlab.study.cell import Cell
from initlab.study.executor import GroupCells, StoreSink
from initlab.study.store import Store

__all__ = ["EventSink", "apply_event", "end_event", "store_snapshot", "stream_group"]

Event = dict[str, Any]

#: Meta keys a trainer reads (``engine_train_group``: device; ``EngineSink``: quantile levels).
SNAPSHOT_META: tuple[str, ...] = ("device", "quantile_levels")


def store_snapshot(store: Store, cells: Sequence[Cell]) -> dict[str, Any]:
    """What a remote trainer of ``cells`` may read from the store: the meta values it
    checks and the stored probe of the group's model (``{"meta": ..., "probes": ...}``)."""
    meta = {k: store.get_meta(k) for k in SNAPSHOT_META if store.get_meta(k) is not None}
    label, dataset = cells[0].model_label, cells[0].dataset
    stored = store.probe(label, dataset)
    probes = {} if stored is None else {f"{label}\x00{dataset}": stored.to_dict()}
    return {"meta": meta, "probes": probes}


class _StoreView:
    """The part of :class:`Store` a trainer uses, on a snapshot; writes become events."""

    def __init__(self, snapshot: dict[str, Any], emit: Callable[[Event], None]) -> None:
        self._meta = dict(snapshot.get("meta", {}))
        self._probes = dict(snapshot.get("probes", {}))
        self._emit = emit

    def get_meta(self, key: str, default: Any = None) -> Any:
        return self._meta.get(key, default)

    def set_meta(self, key: str, value: Any) -> None:
        self._meta[key] = value
        self._emit({"kind": "meta", "key": key, "value": value})

    def probe(self, model: str, dataset: str) -> Any:
        from initlab.probe.result import ProbeResult

        d = self._probes.get(f"{model}\x00{dataset}")
        return None if d is None else ProbeResult.from_dict(d)

    def record_probe(self, model: str, dataset: str, result: Any) -> None:
        self._emit({"kind": "probe", "model": model, "dataset": dataset, "result": result.to_dict()})

    def record_probe_error(self, model: str, dataset: str, error: str) -> None:
        self._emit({"kind": "probe_error", "model": model, "dataset": dataset, "error": error})


class EventSink(GroupCells):
    """The :class:`~initlab.study.executor.StoreSink` interface on a worker: every report
    is handed to ``emit`` as an event (module docstring) instead of being written."""

    def __init__(self, cells: Sequence[Cell], emit: Callable[[Event], None],
                 snapshot: dict[str, Any] | None = None) -> None:
        self.cells = tuple(cells)
        self._emit = emit
        self._pos = {c.key: i for i, c in enumerate(self.cells)}
        self._finished: dict[str, CellStatus] = {}
        self._diverged: set[str] = set()
        self.store = _StoreView(snapshot or {}, emit)

    def _index(self, cell: Cell | str | int) -> int:
        if isinstance(cell, Cell):
            cell = cell.key
        if isinstance(cell, str):
            if cell not in self._pos:
                raise InitlabError(f"cell {cell!r} is not in the group being trained")
            return self._pos[cell]
        if isinstance(cell, int) and not isinstance(cell, bool):
            if not 0 <= cell < len(self.cells):
                raise InitlabError(f"model index {cell} is outside this group of {len(self.cells)} cells")
            return cell
        raise InitlabError(f"name a cell by Cell, key or group position, not {cell!r}")

    def key(self, cell: Cell | str | int) -> str:
        return self.cells[self._index(cell)].key

    def init(self, cell: Cell | str | int, record: Any) -> None:
        self._emit({"kind": "init", "cell": self._index(cell), "record": record.to_dict()})

    def epoch(self, cell: Cell | str | int, record: EpochRecord, *,
              steps: Sequence[StepRecord] = ()) -> None:
        self._emit({"kind": "epoch", "cell": self._index(cell), "record": record.to_dict(),
                    "steps": [s.to_dict() for s in steps]})

    def steps(self, cell: Cell | str | int, steps: Sequence[StepRecord]) -> None:
        self._emit({"kind": "steps", "cell": self._index(cell), "steps": [s.to_dict() for s in steps]})

    def diverged(self, cell: Cell | str | int, event: Divergence) -> None:
        i = self._index(cell)
        self._diverged.add(self.cells[i].key)
        self._emit({"kind": "diverged", "cell": i, "event": event.to_dict()})

    def finish(self, cell: Cell | str | int, *, wall: float | None = None) -> CellStatus:
        i = self._index(cell)
        key = self.cells[i].key
        if key in self._finished:
            raise InitlabError(f"cell {key!r} was already finished")
        status = CellStatus.DIVERGED if key in self._diverged else CellStatus.DONE
        self._finished[key] = status
        self._emit({"kind": "finish", "cell": i, "wall": wall})
        return status

    def fail(self, cell: Cell | str | int, error: str) -> None:
        i = self._index(cell)
        key = self.cells[i].key
        if key in self._finished:
            raise InitlabError(f"cell {key!r} was already finished")
        self._finished[key] = CellStatus.FAILED
        self._emit({"kind": "fail", "cell": i, "error": error})

    def meta(self, key: str, value: Any) -> None:
        self.store.set_meta(key, value)

    def log(self, line: str) -> None:
        self._emit({"kind": "log", "line": line})


def end_event(wall: float, error: str | None = None) -> Event:
    """The last event of a group: trained in ``wall`` seconds, or raised ``error``."""
    return {"kind": "end", "wall": wall, "error": error}


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (the text a failed cell is stored with)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def stream_group(train_group: Callable[[Sequence[Cell], Any], None], cells: Sequence[Cell],
                 emit: Callable[[Event], None], snapshot: dict[str, Any] | None = None) -> None:
    """Train ``cells`` with ``train_group`` on an :class:`EventSink`, then emit the
    :func:`end_event`: an ``Exception`` inside becomes the end event's ``error`` (its
    group's unfinished cells fail with it; other groups go on)."""
    sink = EventSink(cells, emit, snapshot)
    t0 = time.perf_counter()
    try:
        train_group(sink.cells, sink)
    except Exception as exc:  # noqa: BLE001 - reported as the group's failure
        emit(end_event(time.perf_counter() - t0, one_line(exc)))
        return
    emit(end_event(time.perf_counter() - t0))


def apply_event(sink: StoreSink, event: Event, *, log: Callable[[str], None] | None = None) -> None:
    """Write one event (not ``end``) into the store through the group's ``sink``."""
    from initlab.study.init_records import InitRecord

    kind = event["kind"]
    if kind == "epoch":
        sink.epoch(event["cell"], EpochRecord.from_dict(event["record"]),
                   steps=[StepRecord.from_dict(s) for s in event["steps"]])
    elif kind == "init":
        sink.init(event["cell"], InitRecord.from_dict(event["record"]))
    elif kind == "steps":
        sink.steps(event["cell"], [StepRecord.from_dict(s) for s in event["steps"]])
    elif kind == "diverged":
        sink.diverged(event["cell"], Divergence.from_dict(event["event"]))
    elif kind == "finish":
        sink.finish(event["cell"], wall=event["wall"])
    elif kind == "fail":
        sink.fail(event["cell"], event["error"])
    elif kind == "meta":
        sink.meta(event["key"], event["value"])
    elif kind == "probe":
        _apply_probe(sink.store, event)
    elif kind == "probe_error":
        sink.store.record_probe_error(event["model"], event["dataset"], event["error"])
    elif kind == "log":
        if log is not None:
            log(event["line"])
    else:
        raise InitlabError(f"unknown event kind {kind!r} from a worker; the driver and the "
                           f"workers must run the same initlab version")


def _apply_probe(store: Store, event: Event) -> None:
    """Append a worker's probe, without the schemes another group (trained at the same
    time, from the same snapshot) has stored meanwhile."""
    from initlab.probe.result import ProbeResult

    result = ProbeResult.from_dict(event["result"])
    stored = store.probe(event["model"], event["dataset"])
    if stored is not None:
        have = {s.scheme for s in stored.schemes}
        result = dataclasses.replace(result, schemes=[s for s in result.schemes if s.scheme not in have])
    if result.schemes:
        store.record_probe(event["model"], event["dataset"], result)
