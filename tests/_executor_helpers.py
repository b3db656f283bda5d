"""Shared by the executor tests: the smoke study on small slices, and comparing two stores' per-cell results."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

from initlab.study import Store, get_preset

LIMITS = {"limit_train": 512, "limit_val": 256}


def smoke(epochs: int = 2, **limits: int):
    import dataclasses

    config = get_preset("smoke").with_overrides(epochs=epochs)
    return dataclasses.replace(config, **{**LIMITS, **limits}).expand()


def per_cell(store: Store) -> dict[str, list[dict]]:
    """Each cell's epoch records, without their wall times (the only field that may differ)."""
    return {key: [{k: v for k, v in r.to_dict().items() if k != "wall_s"} for r in rows]
            for key, rows in store.epoch_records().items()}


def assert_close(a, b, path: str = "") -> None:
    """Equal structure; floats within 1e-5 relative + 1e-6 absolute (module docstring of
    assert_same_results says why)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6), \
            f"{path}: {a} != {b}"
    else:
        assert a == b, path


def assert_same_results(ray_store: Store, local_store: Store) -> None:
    """The same per-cell records (metrics, parameter and activation statistics with their
    histograms, steps, init reports) and statuses.

    Tolerance, not bit equality: a Ray task trains with torch threads = its ``num_cpus``
    (1) while the test process may run with more (CI runs pytest without
    OMP_NUM_THREADS=1), and a different thread count may split a float32 reduction
    differently. The data, the seeds, the kernels' instruction set and the order of the
    operations are the same, so the records agree to float32 round-off: 1e-5 relative
    (about 100 ulp) + 1e-6 absolute on every float, and exactly on every count, epoch and
    histogram bin that does not straddle a round-off."""
    assert {r.key: r.status for r in ray_store.cells()} == {r.key: r.status for r in local_store.cells()}
    assert_close(per_cell(ray_store), per_cell(local_store), "epochs")
    assert_close({k: [s.to_dict() for s in v] for k, v in ray_store.step_records().items()},
                 {k: [s.to_dict() for s in v] for k, v in local_store.step_records().items()}, "steps")
    ri, li = ray_store.init_records(), local_store.init_records()
    assert ri.keys() == li.keys()
    assert_close({k: v.to_dict()["report"] for k, v in ri.items()},
                 {k: v.to_dict()["report"] for k, v in li.items()}, "init")




def count(db: Path, sql: str) -> int:
    """One number from a store being written by another process (0 before it exists)."""
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:  # no tables yet
        return 0
    finally:
        conn.close()


def assert_each_cell_once(store: Store, epochs: int) -> None:
    """Every cell done, each epoch recorded once (0..epochs), no duplicated statistics row,
    and SQLite's integrity check passes."""
    db = store.path
    for key, rows in store.epoch_records().items():
        assert [r.epoch for r in rows] == list(range(epochs + 1)), key
    assert len(store.epoch_records()) == len(store.cells())
    assert all(r.status == "done" for r in store.cells()), [(r.scheme, r.status, r.error) for r in store.cells()]
    assert count(db, "SELECT count(*) FROM (SELECT 1 FROM param_stats GROUP BY cell, epoch, layer, param "
                     "HAVING count(*) > 1)") == 0
    assert store.integrity_check() == "ok"
