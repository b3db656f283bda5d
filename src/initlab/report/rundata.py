"""Read a run directory into :class:`~initlab.report.types.RunData`.

This is the only module of :mod:`initlab.report` that opens the store. It reads through
the public methods of :class:`initlab.study.store.Store`, which give back the records the
study wrote, of the same types (:mod:`initlab.records`,
:class:`~initlab.study.init_records.InitRecord`, :class:`~initlab.probe.result.ProbeResult`),
and puts them in :class:`~initlab.report.types.CellData` as they are: nothing is renamed
or parsed again here. ``meta`` keeps ``quantile_levels`` and whatever the runner
recorded (device, wall time, ...); the probes and probe errors come from their own tables.

The store is opened read-only (``Store.open(run_dir, readonly=True)``): reading a run
never changes it (a store of an older schema version is migrated in memory, see
:mod:`initlab.study.store_migrate`). Problems with the directory itself raise
:class:`~initlab.errors.InitlabError` naming the directory and what to do, and a store
that cannot be read (not a database, damaged, empty, of an unknown schema version) one
line naming the file (see :mod:`initlab.study.store`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from initlab.errors import InitlabError
from initlab.report.types import CellData, RunData

__all__ = ["load_run", "check_run_dir"]


def check_run_dir(run_dir: str | os.PathLike[str]) -> Path:
    """The run directory as a :class:`Path`, or a one-line error for a missing, non-directory
    or empty directory, or one without a results store."""
    from initlab.study.store import DB_NAME

    rd = Path(run_dir)
    if not rd.exists():
        raise InitlabError(f"run directory {str(rd)!r} does not exist; pass the directory "
                           f"'initlab run' wrote its results to")
    if not rd.is_dir():
        raise InitlabError(f"{str(rd)!r} is not a directory; pass the run directory "
                           f"'initlab run' wrote (the one holding {DB_NAME})")
    db = rd / DB_NAME
    if not db.exists() and not db.is_symlink():  # anything else there is Store.open's to judge
        if not any(rd.iterdir()):
            raise InitlabError(f"run directory {str(rd)!r} is empty: no study has run there; "
                               f"run 'initlab run' with it first")
        raise InitlabError(f"no results store ({DB_NAME}) in {str(rd)!r}; pass a directory "
                           f"written by 'initlab run'")
    return rd


def load_run(run_dir: str | os.PathLike[str]) -> RunData:
    """Everything the store of ``run_dir`` holds, as :class:`RunData`.

    Raises :class:`InitlabError` for a missing or empty directory, one without a results
    store, a store that cannot be read, or one in which no study was recorded. The store
    is only read, through a read-only connection. A study that was interrupted loads
    fine: its unfinished cells keep status ``running``/``pending``/``failed`` and
    :attr:`RunData.partial` is true.
    """
    from initlab.records import QUANTILE_LEVELS
    from initlab.study.axes import setting_label, study_axes
    from initlab.study.store import Store

    rd = check_run_dir(run_dir)
    with Store.open(rd, readonly=True) as store:  # never changes the store
        study = store.study_record()
        if study is None:
            raise InitlabError(f"the results store in {str(rd)!r} holds no study: the run stopped "
                               f"before it began; run 'initlab run' with this directory again")
        meta = store.meta()
        levels = tuple(float(x) for x in meta.get("quantile_levels", QUANTILE_LEVELS) or ())
        epochs, steps = store.epoch_records(), store.step_records()
        divergences, inits = store.divergences(), store.init_records()
        records = store.cells()
        axes = study_axes(r.cell for r in records)
        cells = [CellData(
            key=rec.key, scheme=rec.scheme, seed=int(rec.seed), model=rec.model, dataset=rec.dataset,
            status=rec.status, wall_s=math.nan if rec.wall is None else float(rec.wall),
            epochs_planned=int(rec.cell.epochs), epochs=tuple(epochs.get(rec.key, ())),
            steps=tuple(steps.get(rec.key, ())), divergence=divergences.get(rec.key),
            init=inits.get(rec.key), quantile_levels=levels, config=rec.cell.to_dict(),
            setting=setting_label(rec.cell, axes),
        ) for rec in records]
        probes, errors = store.probes(), store.probe_errors()
    config = dict(study.config)
    config.setdefault("name", study.name)
    meta = {"fingerprint": study.fingerprint, "created": study.created,
            "versions": dict(study.versions), **meta}
    return RunData(run_dir=rd, name=study.name, config=config, meta=meta, cells=cells,
                   probes=probes, probe_errors=errors)
