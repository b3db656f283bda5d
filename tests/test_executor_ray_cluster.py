"""The ``ray`` executor on a simulated two-node cluster (``ray.cluster_utils.Cluster``, one
CPU per node, one cluster for the module): a worker process killed mid-task, then a node
removed mid-task. Each study still completes with every cell finished exactly once and the
same results as the local executor (the dead attempts' epochs were discarded)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from _executor_helpers import assert_each_cell_once, assert_same_results, count, smoke
from initlab.study import Store, run_study
from initlab.study.local import engine_train_group

ray = pytest.importorskip("ray")

from initlab.study.ray_executor import RayExecutor  # noqa: E402

pytestmark = pytest.mark.skipif(not os.environ.get("INITLAB_DATA_DIR"),
                                reason="trains the smoke preset on a slice of the real data (INITLAB_DATA_DIR)")

EPOCHS = 2


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    ray.init(address=c.address, log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def local_results(tmp_path_factory):
    store = Store.create(tmp_path_factory.mktemp("local"))
    assert run_study(smoke(EPOCHS), store, engine_train_group(), max_group_size=1).complete
    yield store
    store.close()


def _killing_group(marker: str, scheme: str):
    """The engine's train_group, except that on the first attempt of ``scheme``'s group its
    worker process kills itself (SIGKILL) right after reporting epoch 1."""
    def train_group(cells, sink):
        import os
        import signal
        from pathlib import Path

        from initlab.study.local import engine_train_group

        class Killer:
            def __getattr__(self, name):
                return getattr(sink, name)

            def epoch(self, cell, record, **kw):
                sink.epoch(cell, record, **kw)
                if record.epoch == 1:
                    Path(marker).write_text(str(os.getpid()))
                    os.kill(os.getpid(), signal.SIGKILL)

        first = cells[0].scheme == scheme and not Path(marker).exists()
        engine_train_group()(cells, Killer() if first else sink)
    return train_group


def test_a_worker_killed_mid_task_is_retried_and_each_cell_finishes_once(cluster, local_results, tmp_path) -> None:
    marker = tmp_path / "killed"
    lines: list[str] = []
    executor = RayExecutor(train_group=_killing_group(str(marker), "keras_default"), ship_data=True,
                           log=lines.append)
    with Store.create(tmp_path / "run") as store:
        result = run_study(smoke(EPOCHS), store, executor=executor, max_group_size=1)
        assert marker.exists(), "the worker was not killed"
        assert result.complete and (result.done, result.failed) == (2, 0)
        assert_each_cell_once(store, EPOCHS)
        attempts = {r.scheme: r.attempts for r in store.cells()}
        assert attempts == {"keras_default": 2, "zeros": 1}
        assert any("worker lost" in line and "retry 1 of 3" in line for line in lines), lines
        assert_same_results(store, local_results)


def _waiting_group(marker: str):
    """The engine's train_group, except that each task waits after reporting epoch 1 until
    ``marker`` names a removed node that is not its own, so that both tasks are mid-task when
    the node goes, whatever the machine's speed: the task on the removed node never goes
    on, the other one and the retry (on the surviving node) do."""
    def train_group(cells, sink):
        import time
        from pathlib import Path

        import ray

        from initlab.study.local import engine_train_group

        node = ray.get_runtime_context().get_node_id()

        def may_go_on() -> bool:
            return Path(marker).exists() and Path(marker).read_text() != node

        class Waiter:
            def __getattr__(self, name):
                return getattr(sink, name)

            def epoch(self, cell, record, **kw):
                sink.epoch(cell, record, **kw)
                deadline = time.monotonic() + 120
                while record.epoch == 1 and not may_go_on() and time.monotonic() < deadline:
                    time.sleep(0.05)

        engine_train_group()(cells, Waiter())
    return train_group


def test_a_node_removed_mid_task_is_retried_on_the_other_node(cluster, local_results, tmp_path) -> None:
    worker_node = cluster.list_all_nodes()[1]
    db = tmp_path / "run" / "initlab.sqlite"
    marker = tmp_path / "removed"
    removed = threading.Event()

    def remove_when_training() -> None:  # both tasks hold at epoch 1, one per node: remove the second node
        deadline = time.monotonic() + 120
        while count(db, "SELECT count(DISTINCT cell) FROM epochs WHERE epoch >= 1") < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        cluster.remove_node(worker_node, allow_graceful=False)
        removed.set()
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(worker_node.node_id)
        tmp.replace(marker)  # atomic: a task never reads half a node id

    lines: list[str] = []
    remover = threading.Thread(target=remove_when_training, daemon=True)
    executor = RayExecutor(train_group=_waiting_group(str(marker)), ship_data=True, log=lines.append)
    with Store.create(tmp_path / "run") as store:
        remover.start()
        result = run_study(smoke(EPOCHS), store, executor=executor, max_group_size=1)
        remover.join(10)
        assert removed.is_set()
        assert result.complete and (result.done, result.failed) == (2, 0)
        assert_each_cell_once(store, EPOCHS)
        assert sorted(r.attempts for r in store.cells()) == [1, 2], lines
        assert_same_results(store, local_results)
