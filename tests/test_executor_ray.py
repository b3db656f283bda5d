"""The ``ray`` executor on a local Ray (``ray.init(num_cpus=2)``, one session for the module).

The same ``smoke`` study (small slices) under ``ray`` and ``local``; a cell that raises; the
driver killed mid-run (a subprocess running ``initlab run --executor ray``) and the run
resumed. The two-node cluster and a worker killed mid-task: tests/test_executor_ray_cluster.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _executor_helpers import assert_each_cell_once, assert_same_results, count, smoke
from initlab.study import Store, run_study
from initlab.study.local import engine_train_group
from initlab.study.store import DB_NAME

ray = pytest.importorskip("ray")

from initlab.study.ray_executor import RayExecutor  # noqa: E402

pytestmark = pytest.mark.skipif(not os.environ.get("INITLAB_DATA_DIR"),
                                reason="trains the smoke preset on a slice of the real data (INITLAB_DATA_DIR)")


@pytest.fixture(scope="module")
def ray_session():
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_smoke_gives_the_same_per_cell_results_under_ray_as_local(ray_session, tmp_path: Path) -> None:
    study = smoke()
    local = Store.create(tmp_path / "local")
    assert run_study(study, local, engine_train_group(), max_group_size=1).complete
    seen: list[tuple[str, int]] = []
    executor = RayExecutor(num_cpus=1)
    with Store.create(tmp_path / "ray") as store:
        result = run_study(study, store, executor=executor, max_group_size=1,
                           on_record=lambda cell, rec: seen.append((cell.scheme, rec.epoch)))
        assert result.complete and result.done == 2 and result.failed == 0
        assert_same_results(store, local)
        # the progress display's stream: every stored epoch of every cell, as it came
        assert sorted(seen) == sorted((c.scheme, e) for c in study.cells for e in range(3))
        assert store.probe(study.cells[0].model_label, "fashion-mnist") is not None
        assert store.get_meta("runs")[-1]["executor"] == "ray"
        assert store.integrity_check() == "ok"
    local.close()
    assert not executor._started  # it joined the module's session and leaves it running


def _raising_group(scheme: str):
    def train_group(cells, sink):
        from initlab.study.local import engine_train_group

        if any(c.scheme == scheme for c in cells):
            raise ValueError(f"this cell does not train ({scheme})")
        engine_train_group()(cells, sink)
    return train_group


def test_a_cell_that_raises_is_failed_with_its_message_and_the_others_finish(ray_session, tmp_path: Path) -> None:
    study = smoke(epochs=1)
    with Store.create(tmp_path) as store:
        result = run_study(study, store, executor=RayExecutor(train_group=_raising_group("zeros")),
                           max_group_size=1)
        assert (result.done, result.failed) == (1, 1)
        rows = {r.scheme: r for r in store.cells()}
        assert rows["zeros"].status == "failed"
        assert rows["zeros"].error == "ValueError: this cell does not train (zeros)"
        assert rows["keras_default"].status == "done"
        assert len(store.epochs(rows["keras_default"].key)) == 2
        # the failed cell trains again on resume
        again = run_study(study, store, executor=RayExecutor(), max_group_size=1)
        assert (again.skipped, again.done) == (1, 1)


def test_the_driver_killed_mid_run_resumes_with_nothing_lost_or_duplicated(ray_session, tmp_path: Path) -> None:
    # the child driver joins the module's Ray (--address HOST:PORT): the cluster outlives it
    epochs = 3
    out = tmp_path / "run"
    address = ray_session.get_runtime_context().gcs_address
    cmd = [sys.executable, "-m", "initlab", "run", "smoke", "--executor", "ray", "--address", address,
           "--epochs", str(epochs), "--limit-train", "1000", "--limit-val", "256",
           "--out", str(out), "--quiet", "--no-report", "--no-probe"]
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    db = out / DB_NAME
    deadline = time.monotonic() + 60
    try:
        while count(db, "SELECT count(*) FROM epochs WHERE epoch >= 1") < 1:
            assert child.poll() is None, child.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the child recorded no epoch in 60 s"
            time.sleep(0.05)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    assert count(db, "SELECT count(*) FROM cells WHERE status = 'running'") == 2, "killed too late"
    study = smoke(epochs=epochs, limit_train=1000)
    with Store.open(out) as store:
        result = run_study(study, store, executor=RayExecutor(probe=False), max_group_size=1)
        assert result.complete and result.resume.reset == 2  # one group of 2 (one cold worker for the child)
        assert_each_cell_once(store, epochs)
        assert count(db, "SELECT count(*) FROM epochs") == 2 * (epochs + 1)
