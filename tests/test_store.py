"""SQLite results store, resume semantics and the executor (initlab.study.store/executor)."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from initlab.engine.models import MLPSpec
from initlab.errors import InitlabError
from initlab.study import Cell, Store, StoreSink, Study, StudyConfig, run_study
from initlab.study.store import DB_NAME, SCHEMA_VERSION


def _study(seeds: int = 2, schemes: tuple[str, ...] = ("zeros", "he_normal"),
           models: tuple[MLPSpec, ...] = (MLPSpec(hidden=(8,)),)) -> Study:
    return StudyConfig(name="t", schemes=schemes, seeds=seeds, models=models,
                       train={"epochs": 2}).expand()


def _metrics(cell: Cell, epoch: int) -> dict[str, float]:
    return {"train_loss": 1.0 / (epoch + 1) + cell.seed, "train_acc": 0.5, "val_loss": 2.0 - epoch,
            "val_acc": 0.1 * epoch + 0.01 * cell.seed, "wall": 0.25}


def _train_all(cells: Sequence[Cell], sink: StoreSink) -> None:
    for i, c in enumerate(cells):
        for e in range(c.epochs + 1):
            sink.epoch(i, e, _metrics(c, e), layers=[{"name": "fc1", "w_std": 0.1 * e}],
                       histograms=[{"name": "fc1.weight", "edges": [0.0, 0.5, 1.0], "counts": [e, 1]}],
                       steps=[{"step": 10 * e, "epoch": e, "loss": 0.5}] if e else [])


def test_missing_run_dir_or_store(tmp_path: Path) -> None:
    with pytest.raises(InitlabError, match="does not exist"):
        Store.open(tmp_path / "nope")
    with pytest.raises(InitlabError, match=f"no results store \\({DB_NAME}\\)"):
        Store.open(tmp_path)
    assert not (tmp_path / DB_NAME).exists()  # opening for reading never creates


def test_create_sets_wal_and_schema(tmp_path: Path) -> None:
    with Store.create(tmp_path / "run") as store:
        assert store.path == tmp_path / "run" / DB_NAME
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert store.study_record() is None
        assert store.integrity_check() == "ok"
    conn = sqlite3.connect(tmp_path / "run" / DB_NAME)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    conn.close()


def test_rejects_foreign_files_and_other_schema_versions(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / DB_NAME).write_bytes(b"this is not a database at all, just text" * 20)
    with pytest.raises(InitlabError, match=r"is not an initlab store \(file is not a database\)"):
        Store.open(tmp_path / "a")
    with Store.create(tmp_path / "b"):
        pass
    conn = sqlite3.connect(tmp_path / "b" / DB_NAME)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(InitlabError, match="schema version"):
        Store.open(tmp_path / "b")


def test_roundtrip_of_all_row_kinds(tmp_path: Path) -> None:
    study = _study()
    with Store.create(tmp_path) as store:
        info = store.attach(study)
        assert info.new and info.total == 4 and info.pending == 4
        assert store.load_study().cells == study.cells
        assert store.study_record().config == study.config
        assert set(store.study_record().versions) >= {"python", "torch", "numpy", "sqlite"}
        c = study.cells[1]
        store.mark_running([c.key])
        store.record_init(c.key, [{"layer": "1.weight", "std": 0.05}])
        store.record_epoch(c.key, 0, {"val_loss": 2.3, "val_acc": 0.1, "train_loss": math.nan, "lr": 1e-3},
                           layers=[{"name": "fc1", "layer": 1, "w": {"mean": 0.0}}, {"name": "fc2", "layer": 2}],
                           histograms=[{"name": "fc1.weight", "layer": 1, "edges": [0, 1], "counts": [7]},
                                       {"name": "fc1.bias", "layer": 1, "kind": "bias", "edges": [0, 1], "counts": [2]}])
        store.record_steps(c.key, [{"step": 1, "epoch": 1, "loss": 2.0, "accuracy": 0.2, "samples": 128}])
        store.record_epoch(c.key, 1, {"train_loss": 1.5, "train_acc": 0.4, "val_loss": 1.2, "val_acc": 0.6, "wall": 3.0},
                           steps=[{"step": 2, "loss": 1.0}])
        store.record_event(c.key, "diverged", epoch=1, step=2, detail={"reason": "loss"})
        assert store.mark_finished(c.key, wall=3.5, diverged_epoch=1, diverged_step=2) == "diverged"
        store.set_meta("device", {"type": "cpu"})

    with Store.open(tmp_path) as store:
        (rec,) = store.cells("diverged")
        assert (rec.key, rec.index, rec.scheme, rec.seed, rec.model) == (c.key, 1, c.scheme, c.seed, c.model_label)
        assert (rec.wall, rec.diverged_epoch, rec.diverged_step, rec.attempts) == (3.5, 1, 2, 1)
        assert rec.init == [{"layer": "1.weight", "std": 0.05}] and rec.cell == c
        e0, e1 = store.epochs(c.key)
        assert e0["epoch"] == 0 and e0["val_acc"] == 0.1 and e0["lr"] == 1e-3
        assert math.isnan(e0["train_loss"]) and math.isnan(e0["wall"])
        assert (e1["train_loss"], e1["val_acc"], e1["wall"]) == (1.5, 0.6, 3.0)
        assert store.layer_stats(c.key, 0) == [
            {"epoch": 0, "layer": 1, "name": "fc1", "w": {"mean": 0.0}},
            {"epoch": 0, "layer": 2, "name": "fc2"}]
        hists = store.histograms(c.key)
        assert [(h["kind"], h["counts"]) for h in hists] == [("bias", [2]), ("weight", [7])]
        assert store.steps(c.key) == [
            {"step": 1, "epoch": 1, "loss": 2.0, "acc": 0.2, "samples": 128},
            {"step": 2, "epoch": None, "loss": 1.0, "acc": pytest.approx(math.nan, nan_ok=True)}]
        assert store.events() == [{"cell": c.key, "seq": 0, "kind": "diverged", "epoch": 1, "step": 2,
                                   "detail": {"reason": "loss"}}]
        assert store.get_meta("device") == {"type": "cpu"} and store.get_meta("nope", 5) == 5
        assert store.status_counts() == {"pending": 3, "running": 0, "done": 0, "diverged": 1, "failed": 0}


def test_writes_need_a_running_cell_and_are_never_duplicated(tmp_path: Path) -> None:
    study = _study()
    c = study.cells[0]
    with Store.create(tmp_path) as store:
        store.attach(study)
        with pytest.raises(InitlabError, match="is pending"):
            store.record_epoch(c.key, 0, {})
        with pytest.raises(InitlabError, match="not part of the stored study"):
            store.mark_running(["0123456789abcdef"])
        store.mark_running([c.key])
        with pytest.raises(InitlabError, match="is running"):
            store.mark_running([c.key])
        store.record_epoch(c.key, 1, {"val_acc": 0.5}, layers=[{"name": "a"}])
        with pytest.raises(InitlabError, match="already"):
            store.record_epoch(c.key, 1, {"val_acc": 0.7})
        # a failing epoch leaves nothing behind (layer index clash inside one epoch)
        with pytest.raises(InitlabError):
            store.record_epoch(c.key, 2, {"val_acc": 0.7}, layers=[{"name": "a", "layer": 0}, {"name": "b", "layer": 0}])
        with pytest.raises(InitlabError, match="one edge more"):
            store.record_epoch(c.key, 2, {}, histograms=[{"name": "h", "edges": [0, 1], "counts": [1, 2]}])
        with pytest.raises(InitlabError):
            store.record_epoch(c.key, -1, {})
        assert [e["epoch"] for e in store.epochs(c.key)] == [1]
        assert store.layer_stats(c.key) == [{"epoch": 1, "layer": 0, "name": "a"}]
        store.mark_finished(c.key)
        with pytest.raises(InitlabError, match="is done"):
            store.record_epoch(c.key, 2, {})


def test_resume_keeps_finished_and_restarts_interrupted_cells(tmp_path: Path) -> None:
    study = _study()
    a, b, c, d = study.cells
    with Store.create(tmp_path) as store:
        store.attach(study)
        store.mark_running([a.key, b.key, c.key])
        for cell in (a, b, c):
            store.record_epoch(cell.key, 0, {"val_acc": 0.1}, layers=[{"name": "l"}],
                               histograms=[{"name": "h", "edges": [0, 1], "counts": [1]}],
                               steps=[{"step": 0, "loss": 1.0}])
            store.record_event(cell.key, "note")
        store.mark_finished(a.key)
        store.mark_failed([c.key], "RuntimeError: boom")
        assert store.cells("failed")[0].error == "RuntimeError: boom"
        # b is left 'running', as after a kill

    with Store.open(tmp_path) as store:
        info = store.attach(study)
        assert (info.new, info.total, info.finished, info.reset, info.pending) == (False, 4, 1, 2, 3)
        assert [r.cell for r in store.cells("pending")] == [b, c, d]
        assert store.pending_cells() == [b, c, d]
        assert [e["cell"] for e in store.epochs()] == [a.key]
        for cell in (b, c):
            assert store.layer_stats(cell.key) == [] and store.histograms(cell.key) == []
            assert store.steps(cell.key) == [] and store.events(cell.key) == []
        (rb,) = [r for r in store.cells() if r.key == b.key]
        assert rb.started is None and rb.attempts == 1 and rb.error is None
        assert store.cells("done")[0].key == a.key


def test_a_different_study_is_refused(tmp_path: Path) -> None:
    with Store.create(tmp_path) as store:
        store.attach(_study(seeds=2))
    with Store.open(tmp_path) as store:
        with pytest.raises(InitlabError, match=r"different study \('t', 4 cells; this one has 6, 4 in common\)"):
            store.attach(_study(seeds=3))
        # the same cells in another order (and another name) are the same study
        same = _study(seeds=2)
        store.attach(Study("renamed", same.cells[::-1], same.config))


def test_run_study_end_to_end_and_rerun_is_a_no_op(tmp_path: Path) -> None:
    study = _study(models=(MLPSpec(hidden=(8,)), MLPSpec(hidden=(4,))))
    calls: list[int] = []

    def train(cells: Sequence[Cell], sink: StoreSink) -> None:
        calls.append(len(cells))
        _train_all(cells, sink)

    with Store.create(tmp_path) as store:
        result = run_study(study, store, train, max_group_size=3)
        assert calls == [3, 1, 3, 1]
        assert result.complete and (result.done, result.diverged, result.failed, result.skipped) == (8, 0, 0, 0)
        assert store.status_counts()["done"] == 8
        assert all(r.wall is not None and r.wall >= 0 for r in store.cells())
        assert len(store.epochs()) == 8 * 3
        assert store.get_meta("runs")[0]["done"] == 8
        again = run_study(study, store, train)
        assert calls == [3, 1, 3, 1] and again.skipped == 8 and again.complete
        runs = store.get_meta("runs")
        assert [(r["done"], r["groups"]) for r in runs] == [(8, 4), (0, 0)]
        assert all(r["wall"] >= 0 for r in runs)


def test_run_study_divergence_and_explicit_finish(tmp_path: Path) -> None:
    study = _study()

    def train(cells: Sequence[Cell], sink: StoreSink) -> None:
        sink.meta("device", "cpu")
        sink.epoch(cells[0], 0, {"val_acc": 0.1})
        sink.diverged(cells[0].key, epoch=1, step=7, detail={"loss": math.inf})
        assert sink.finish(0, wall=1.25) == "diverged"
        with pytest.raises(InitlabError, match="already finished"):
            sink.finish(0)
        with pytest.raises(InitlabError, match="outside this group"):
            sink.key(len(cells))
        sink.diverged(1)  # position unknown: still diverged

    with Store.create(tmp_path) as store:
        result = run_study(study, store, train)
        assert (result.done, result.diverged) == (2, 2)
        first, second = store.cells()[:2]
        assert (first.status, first.wall, first.diverged_epoch, first.diverged_step) == ("diverged", 1.25, 1, 7)
        assert (second.status, second.diverged_epoch) == ("diverged", None)
        assert store.get_meta("device") == "cpu"


def test_failing_group_is_marked_failed_and_retried(tmp_path: Path) -> None:
    study = _study(models=(MLPSpec(hidden=(8,)), MLPSpec(hidden=(4,))))  # 2 groups of 4

    def flaky(cells: Sequence[Cell], sink: StoreSink) -> None:
        sink.epoch(0, 0, {"val_acc": 0.1})
        sink.finish(0)
        if cells[0].model["hidden"] == [8]:
            raise RuntimeError("out of memory")
        _train_all(cells[1:], _Shift(sink))

    with Store.create(tmp_path) as store:
        with pytest.raises(RuntimeError, match="out of memory"):
            run_study(study, store, flaky)
        assert store.status_counts() == {"pending": 4, "running": 0, "done": 1, "diverged": 0, "failed": 3}
        assert store.cells("failed")[0].error == "RuntimeError: out of memory"

    with Store.open(tmp_path) as store:
        result = run_study(study, store, flaky, keep_going=True)
        assert (result.skipped, result.failed, result.done) == (1, 2, 5)  # 1 more cell done per try
        assert not result.complete

    with Store.open(tmp_path) as store:
        result = run_study(study, store, lambda cells, sink: _train_all(cells, sink))
        assert result.complete and store.status_counts()["done"] == 8
        assert [r.attempts for r in store.cells()] == [1, 2, 3, 3, 1, 1, 1, 1]


class _Shift:
    """A sink view whose position 0 is the group's position 1."""

    def __init__(self, sink: StoreSink) -> None:
        self.sink = sink

    def epoch(self, i: int, *args: object, **kw: object) -> None:
        self.sink.epoch(i + 1, *args, **kw)  # type: ignore[arg-type]


def test_keyboard_interrupt_leaves_cells_running_for_resume(tmp_path: Path) -> None:
    study = _study()

    def interrupted(cells: Sequence[Cell], sink: StoreSink) -> None:
        sink.epoch(0, 0, {"val_acc": 0.1})
        raise KeyboardInterrupt

    with Store.create(tmp_path) as store:
        with pytest.raises(KeyboardInterrupt):
            run_study(study, store, interrupted)
        assert store.status_counts()["running"] == 4
        assert store.get_meta("runs")[-1]["finished"] is None
    with Store.open(tmp_path) as store:
        assert run_study(study, store, _train_all).resume.reset == 4
        assert len(store.epochs()) == 4 * 3


# -- reading without writing -------------------------------------------------------------------


def _files(run_dir: Path) -> dict[str, bytes]:
    """Every file of ``run_dir`` with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir()) if p.is_file()}


def _finished_store(run_dir: Path) -> Path:
    with Store.create(run_dir) as store:
        run_study(_study(), store, _train_all)
    return run_dir


def test_readonly_open_leaves_a_finished_store_byte_identical(tmp_path: Path) -> None:
    rd = _finished_store(tmp_path / "run")
    before = _files(rd)
    assert list(before) == [DB_NAME]  # a writer that closed leaves no -wal/-shm
    with Store.open(rd, readonly=True) as store:
        assert store.readonly
        assert store._conn.execute("PRAGMA query_only").fetchone()[0] == 1
        assert store.status_counts()["done"] == 4 and len(store.epochs()) == 12
        with pytest.raises(InitlabError, match="opened read-only"):
            store.set_meta("x", 1)
        with pytest.raises(InitlabError, match="opened read-only"):
            store.attach(_study())
    assert _files(rd) == before  # byte-identical, and no -wal/-shm left behind


def test_readonly_open_in_an_unwritable_directory_creates_nothing(tmp_path: Path, monkeypatch) -> None:
    import initlab.study.store as store_mod

    rd = _finished_store(tmp_path / "run")
    before = _files(rd)
    monkeypatch.setattr(store_mod, "_dir_writable", lambda d: False)
    with Store.open(rd, readonly=True) as store:  # immutable: no writer can be running there
        assert store.status_counts()["done"] == 4
        assert _files(rd) == before  # not even while reading
    assert _files(rd) == before


def test_readonly_open_reads_committed_data_while_the_writer_runs(tmp_path: Path) -> None:
    import subprocess
    import sys
    import textwrap

    rd = tmp_path / "run"
    with Store.create(rd) as store:
        store.attach(_study())
    child = textwrap.dedent(f"""
        import sys
        from initlab.study import Store
        with Store.open({str(rd)!r}) as store:
            store.set_meta("step", 1)
            print("committed", flush=True)
            sys.stdin.readline()
            store.set_meta("step", 2)
            print("committed", flush=True)
            sys.stdin.readline()
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "committed"
        live = _files(rd)
        assert {f"{DB_NAME}-wal", f"{DB_NAME}-shm"} <= set(live)  # the writer's
        with Store.open(rd, readonly=True) as store:
            assert store.get_meta("step") == 1 and store.status_counts()["pending"] == 4
        assert set(_files(rd)) == set(live)  # the writer's files are left alone
        assert _files(rd)[DB_NAME] == live[DB_NAME] and _files(rd)[f"{DB_NAME}-wal"] == live[f"{DB_NAME}-wal"]
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "committed"  # the writer still writes
        with Store.open(rd, readonly=True) as store:
            assert store.get_meta("step") == 2
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert list(_files(rd)) == [DB_NAME]  # the writer's close removed its -wal/-shm
    with Store.open(rd, readonly=True) as store:
        assert store.get_meta("step") == 2 and store.integrity_check() == "ok"


def test_readonly_open_of_a_store_whose_writer_was_killed(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    rd = tmp_path / "run"
    with Store.create(rd) as store:
        store.attach(_study())
    code = (f"import os\nfrom initlab.study import Store\ns = Store.open({str(rd)!r})\n"
            f"s.set_meta('step', 7)\nos._exit(0)\n")  # committed, then gone without closing
    subprocess.run([sys.executable, "-c", code], check=True)
    before = _files(rd)
    assert len(before[f"{DB_NAME}-wal"]) > 0  # the commit lives in the WAL only
    with Store.open(rd, readonly=True) as store:
        assert store.get_meta("step") == 7
    after = _files(rd)
    assert set(after) == set(before)
    assert after[DB_NAME] == before[DB_NAME] and after[f"{DB_NAME}-wal"] == before[f"{DB_NAME}-wal"]
    # a stale -shm without its -wal holds no data: read-only, the store stays as it was
    os.unlink(rd / f"{DB_NAME}-wal")
    os.unlink(rd / f"{DB_NAME}-shm")
    with Store.create(rd):
        pass
    conn = sqlite3.connect(f"{(rd / DB_NAME).resolve().as_uri()}?mode=ro", uri=True)
    conn.execute("SELECT count(*) FROM cells").fetchone()
    conn.close()  # a plain read-only connection leaves an empty -wal and a -shm behind
    os.unlink(rd / f"{DB_NAME}-wal")
    stale = _files(rd)
    assert set(stale) == {DB_NAME, f"{DB_NAME}-shm"}
    with Store.open(rd, readonly=True) as store:
        assert store.status_counts()["pending"] == 4
    assert _files(rd)[DB_NAME] == stale[DB_NAME] and f"{DB_NAME}-wal" not in _files(rd)


def test_a_zero_byte_store_is_empty_for_readers_and_initialized_by_writers(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"")
    with pytest.raises(InitlabError, match="is empty and holds no study") as info:
        Store.open(tmp_path, readonly=True)
    assert "\n" not in str(info.value)
    assert _files(tmp_path) == {DB_NAME: b""}  # untouched
    with Store.create(tmp_path) as store:  # what SQLite leaves when a run stops before its first commit
        assert store.attach(_study()).new


def test_damage_found_by_a_later_query_is_one_line(tmp_path: Path) -> None:
    rd = _finished_store(tmp_path / "run")
    conn = sqlite3.connect(rd / DB_NAME)
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name='epochs'").fetchone()
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    raw = bytearray((rd / DB_NAME).read_bytes())
    raw[(root - 1) * page:root * page] = bytes(range(256)) * (page // 256)
    (rd / DB_NAME).write_bytes(bytes(raw))
    with Store.open(rd, readonly=True) as store:  # the header, tables and version look fine
        assert store.study_record().name == "t"
        with pytest.raises(InitlabError, match=r"is damaged \(database disk image is malformed\); "
                                               r"restore it from a backup") as info:
            store.epochs()
        assert "\n" not in str(info.value)
    with pytest.raises(InitlabError, match=r"is damaged \("):
        Store.open(rd)  # for writing, the whole file is checked first
    assert (rd / DB_NAME).read_bytes() == bytes(raw)
    assert list(_files(rd)) == [DB_NAME]
