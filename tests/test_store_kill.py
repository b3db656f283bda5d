"""Kill-safety: SIGKILL a study mid-run, check the store, resume to completion."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from initlab.study import Store, run_study
from initlab.study.store import DB_NAME

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")

# Shared by the child process and this test: the study and a deterministic fake trainer
# that writes every epoch with two layers (a weight with its histogram and an activation
# each) and three steps.
STUDY_CODE = textwrap.dedent("""
    import time
    from initlab.engine.models import MLPSpec
    from initlab.records import ActivationStats, EpochRecord, ParamStats, StepRecord
    from initlab.study import StudyConfig

    EPOCHS, LAYERS, STEPS = 3, 2, 3
    STUDY = StudyConfig(name="kill", schemes=("zeros", "ones"), seeds=2,
                        models=(MLPSpec(hidden=(8,)), MLPSpec(hidden=(16,))),
                        train={"epochs": EPOCHS}).expand()

    def make_train(delay):
        def train(cells, sink):
            for e in range(EPOCHS + 1):
                for i, c in enumerate(cells):
                    time.sleep(delay)
                    params = tuple(ParamStats(k, "weight", f"l{k}", 4, 0.0, 0.1 * k, -1.0, 1.0, 0.0, 0,
                                              (0.0,) * 7, (0.0, 1.0, 2.0), (e, k)) for k in range(LAYERS))
                    acts = tuple(ActivationStats(k, 0.0, 1.0, 0.0, 1.0, 0.5, 0.0) for k in range(LAYERS))
                    rec = EpochRecord(i, e, STEPS * e, float("nan"), float("nan"), 2.0 - 0.1 * e,
                                      0.1 * e + 0.01 * c.seed, 0.0, len(cells), False, params, acts)
                    steps = [StepRecord(i, e, STEPS * e + s, 1, 32, 1.0 / (e + 1), 0.5)
                             for s in range(STEPS)] if e else []
                    sink.epoch(i, rec, steps=steps)
        return train
""")

CHILD = STUDY_CODE + textwrap.dedent("""
    import sys
    from initlab.study import Store, run_study
    with Store.create(sys.argv[1]) as store:
        run_study(STUDY, store, make_train(float(sys.argv[2])))
""")


def _count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    try:
        return int(conn.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        conn.close()


def test_sigkill_mid_study_then_resume(tmp_path: Path) -> None:
    ns: dict = {}
    exec(STUDY_CODE, ns)
    study, epochs, layers, steps = ns["STUDY"], ns["EPOCHS"], ns["LAYERS"], ns["STEPS"]
    n_cells = len(study)
    total_epoch_rows = n_cells * (epochs + 1)
    run_dir = tmp_path / "run"
    db = run_dir / DB_NAME

    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(run_dir), "0.04"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists() and _count(db, "SELECT count(*) FROM epochs") >= 6:
                break
            time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        written = conn.execute("SELECT count(*) FROM epochs").fetchone()[0]
        assert 6 <= written < total_epoch_rows  # killed mid-way
        statuses = dict(conn.execute("SELECT status, count(*) FROM cells GROUP BY status").fetchall())
        assert statuses.get("running", 0) > 0
        # no half-written epoch: every epoch row has all its layers, histograms and steps,
        # and no layer/histogram/step row exists without its epoch row
        for cell, epoch in conn.execute("SELECT cell, epoch FROM epochs"):
            args = (cell, epoch)
            assert conn.execute("SELECT count(*) FROM param_stats WHERE cell=? AND epoch=?", args).fetchone()[0] == layers
            assert conn.execute("SELECT count(*) FROM activation_stats WHERE cell=? AND epoch=?",
                                args).fetchone()[0] == layers
            n_steps = conn.execute("SELECT count(*) FROM steps WHERE cell=? AND step BETWEEN ? AND ?",
                                   (cell, steps * epoch, steps * epoch + steps - 1)).fetchone()[0]
            assert n_steps == (steps if epoch else 0)
        for table in ("param_stats", "activation_stats"):
            orphans = conn.execute(
                f"SELECT count(*) FROM {table} t LEFT JOIN epochs e "
                f"ON e.cell = t.cell AND e.epoch = t.epoch WHERE e.cell IS NULL").fetchone()[0]
            assert orphans == 0
        orphan_steps = conn.execute(
            f"SELECT count(*) FROM steps s LEFT JOIN epochs e ON e.cell = s.cell "
            f"AND e.epoch = s.step / {steps} WHERE e.cell IS NULL").fetchone()[0]
        assert orphan_steps == 0
    finally:
        conn.close()

    with Store.open(run_dir) as store:
        result = run_study(study, store, ns["make_train"](0.0))
        assert result.complete and result.resume.reset == statuses["running"]
        assert store.status_counts()["done"] == n_cells
        assert store.integrity_check() == "ok"
        rows = store.epoch_records()
        assert sorted((k, r.epoch) for k, v in rows.items() for r in v) == sorted(
            (c.key, e) for c in study.cells for e in range(epochs + 1))
        for c in study.cells:
            assert [r.val_acc for r in rows[c.key]] == [0.1 * e + 0.01 * c.seed for e in range(epochs + 1)]
            assert all(len(r.params) == len(r.activations) == layers for r in rows[c.key])
            assert [r.params[1].hist_counts for r in rows[c.key]] == [(e, 1) for e in range(epochs + 1)]
            assert [s.step for s in store.steps(c.key)] == list(range(steps, steps * (epochs + 1)))
