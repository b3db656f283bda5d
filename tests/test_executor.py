"""The executor interface without Ray: the local executor keeps run_study's contract, a
group's records travel as JSON events and replay into the same store, a retried attempt
is discarded in one transaction, and ``initlab run --executor ray``'s bad inputs are one
line, exit 2, nothing written (Ray not installed, an unreachable or malformed --address,
--gpus-per-task without CUDA, ray's options without --executor ray)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from initlab.cli import main
from initlab.engine.models import MLPSpec
from initlab.study import Store, StudyConfig, run_study
from initlab.study.events import EventSink, apply_event, store_snapshot, stream_group
from initlab.study.executor import GroupDriver, LocalExecutor
from initlab.study.local import engine_train_group

from test_store import _study, _train_all
from test_study_local import _data


def _tables(store: Store) -> dict[str, list]:
    """Every row of the result tables, without wall times and timestamps."""
    skip = {"wall_s", "seconds", "started", "finished", "wall", "created"}
    out = {}
    for table in ("epochs", "param_stats", "activation_stats", "steps", "divergences", "init_reports",
                  "init_checks", "probes", "probe_errors"):
        rows = store._conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
        out[table] = sorted(json.dumps({k: r[k] for k in r.keys() if k not in skip}, sort_keys=True, default=str)
                            for r in rows)
    out["probes"] = [json.dumps(_no_seconds(json.loads(json.loads(p)["result"])), sort_keys=True)
                     for p in out["probes"]]
    return out


def _no_seconds(d):
    if isinstance(d, dict):
        return {k: _no_seconds(v) for k, v in d.items() if k != "seconds"}
    if isinstance(d, list):
        return [_no_seconds(v) for v in d]
    return d


class ReplayExecutor:
    """Trains each group on an EventSink here, ships every event through JSON, replays it:
    what the ray executor does, without Ray."""

    name = "replay"

    def __init__(self, train_group) -> None:
        self.train_group = train_group
        self.kinds: list[str] = []

    def execute(self, driver: GroupDriver) -> None:
        for i, cells in enumerate(driver.groups):
            driver.start(i)
            events: list[dict] = []
            stream_group(self.train_group, cells, events.append, store_snapshot(driver.store, cells))
            for event in (json.loads(json.dumps(e)) for e in events):
                self.kinds.append(event["kind"])
                if event["kind"] == "end":
                    assert event["error"] is None, event["error"]
                    driver.complete(i, event["wall"])
                else:
                    apply_event(driver.sink(i), event)


def test_events_replayed_on_the_driver_write_what_the_local_executor_writes(tmp_path: Path) -> None:
    study = StudyConfig(name="e", schemes=("he_normal", "lsuv", "zeros"), seeds=2, models=(MLPSpec(hidden=(16,)),),
                        train={"epochs": 2, "batch_size": 32}).expand()
    data = _data(128, 64)
    with Store.create(tmp_path / "local") as local, Store.create(tmp_path / "replay") as replay:
        run_study(study, local, engine_train_group(loader=lambda c: data), max_group_size=4)
        executor = ReplayExecutor(engine_train_group(loader=lambda c: data))
        result = run_study(study, replay, executor=executor, max_group_size=4)
        assert result.complete and result.done == 6
        assert {"init", "epoch", "meta", "probe", "end"} <= set(executor.kinds)
        a, b = _tables(local), _tables(replay)
        for table in a:  # same process, same kernels, same order: the same values
            assert a[table] == b[table], table
        assert replay.get_meta("device") == local.get_meta("device")
        assert replay.get_meta("runs")[-1]["executor"] == "replay"


def test_run_study_takes_a_train_group_or_an_executor(tmp_path: Path) -> None:
    with Store.create(tmp_path) as store:
        with pytest.raises(ValueError, match="train_group or an executor"):
            run_study(_study(), store)
        with pytest.raises(ValueError, match="not both"):
            run_study(_study(), store, _train_all, executor=LocalExecutor(_train_all))
        seen = []
        result = run_study(_study(), store, executor=LocalExecutor(_train_all),
                           on_record=lambda cell, rec: seen.append((cell.key, rec.epoch)))
        assert result.complete and result.done == 4
        assert len(seen) == 4 * 3 and store.get_meta("runs")[-1]["executor"] == "local"


def test_a_restarted_attempt_leaves_no_row_of_the_dead_one(tmp_path: Path) -> None:
    study = _study()
    with Store.create(tmp_path) as store:
        store.attach(study)
        groups = [tuple(study.cells[:2]), tuple(study.cells[2:])]
        driver = GroupDriver(store, groups)
        sink = driver.start(0)
        _train_all(groups[0][:1], sink)  # the first cell trained and finished ...
        sink.finish(0)
        sink.epoch(1, __import__("_records").epoch_record(1, 0))  # ... the second was half-way
        sink = driver.restart(0)
        rows = {r.key: r for r in store.cells()}
        first, second = groups[0]
        assert rows[first.key].status == "done" and len(store.epochs(first.key)) == 3  # untouched
        assert rows[second.key].status == "running" and rows[second.key].attempts == 2
        assert store.epochs(second.key) == []
        _train_all(groups[0][1:], _Shift(sink))
        driver.complete(0)
        assert driver.counts == {"done": 2, "diverged": 0, "failed": 0}
        sink = driver.start(1)
        driver.fail(1, "RuntimeError: boom")
        assert driver.counts["failed"] == 2
        assert {r.status for r in store.cells()} == {"done", "failed"}
        assert store.integrity_check() == "ok"


class _Shift:
    """The second cell of a group trained alone: model index 0 -> group position 1."""

    def __init__(self, sink) -> None:
        self.sink = sink

    def epoch(self, i, record, **kw):
        self.sink.epoch(i + 1, record, **kw)


def test_an_event_sink_checks_cells_like_the_store_sink() -> None:
    cells = _study().cells[:2]
    events: list[dict] = []
    sink = EventSink(cells, events.append)
    assert sink.key(1) == cells[1].key and sink.key(cells[0]) == cells[0].key
    for bad in (2, "nokey", 1.5):
        with pytest.raises(ValueError):
            sink.key(bad)
    sink.finish(0, wall=1.0)
    with pytest.raises(ValueError, match="already finished"):
        sink.finish(0)
    sink.fail(1, "ValueError: no")
    assert sink.unfinished == [] and events[-1] == {"kind": "fail", "cell": 1, "error": "ValueError: no"}
    with pytest.raises(ValueError, match="unknown event kind"):
        apply_event(None, {"kind": "teleport"})  # type: ignore[arg-type]


def test_stream_group_turns_an_exception_into_the_groups_failure() -> None:
    events: list[dict] = []

    def broken(cells, sink):
        sink.epoch(0, __import__("_records").epoch_record(0, 0))
        raise RuntimeError("out of\nmemory")

    stream_group(broken, _study().cells[:1], events.append)
    assert [e["kind"] for e in events] == ["epoch", "end"]
    assert events[-1]["error"] == "RuntimeError: out of memory"


# -- initlab run --executor ray: bad inputs ------------------------------------------------


def _run_bad(tmp_path: Path, capsys, *argv: str) -> str:
    out = tmp_path / "out"
    capsys.readouterr()
    try:
        code = main(["run", "smoke", "--out", str(out), "--quiet", *argv])
    except SystemExit as exc:
        code = exc.code
    stdout, err = capsys.readouterr()
    assert code == 2, (stdout, err)
    assert "Traceback" not in stdout + err
    message = err.strip()
    assert message.startswith("initlab: error: ") and "\n" not in message, err
    assert not out.exists(), "a bad input wrote the run directory"
    return message


def test_ray_not_installed_says_how_to_install_it(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    message = _run_bad(tmp_path, capsys, "--executor", "ray")
    assert "not installed" in message and "pip install 'initlab[ray]'" in message


def test_an_unreachable_or_malformed_address_is_refused(tmp_path: Path, capsys) -> None:
    pytest.importorskip("ray")
    message = _run_bad(tmp_path, capsys, "--executor", "ray", "--address", "127.0.0.1:1")
    assert "cannot reach a Ray cluster at --address '127.0.0.1:1'" in message
    message = _run_bad(tmp_path, capsys, "--executor", "ray", "--address", "ray://127.0.0.1:1")
    assert "cannot reach" in message
    message = _run_bad(tmp_path, capsys, "--executor", "ray", "--address", "somewhere")
    assert "is not auto, HOST:PORT or ray://HOST:PORT" in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_gpus_per_task_without_cuda_is_refused(tmp_path: Path, capsys) -> None:
    pytest.importorskip("ray")
    message = _run_bad(tmp_path, capsys, "--executor", "ray", "--gpus-per-task", "1")
    assert "--gpus-per-task" in message and "no CUDA device" in message


def test_ray_options_need_the_ray_executor(tmp_path: Path, capsys) -> None:
    for argv in (("--address", "auto"), ("--num-cpus", "2"), ("--gpus-per-task", "1"), ("--ship-data",)):
        message = _run_bad(tmp_path, capsys, *argv)
        assert f"{argv[0]} is an option of --executor ray" in message
    assert "--num-cpus must be > 0" in _run_bad(tmp_path, capsys, "--executor", "ray", "--num-cpus", "0")
