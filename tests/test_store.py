"""SQLite results store, resume semantics and the executor (initlab.study.store/executor)."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from initlab.engine.models import MLPSpec
from initlab.errors import InitlabError
from initlab.records import CellStatus, EpochRecord, ParamStats, StepRecord
from initlab.study import Cell, Store, StoreSink, Study, StudyConfig, run_study
from initlab.study.store import DB_NAME, SCHEMA_VERSION

from _records import divergence, epoch_record, init_record, step_record


def _study(seeds: int = 2, schemes: tuple[str, ...] = ("zeros", "he_normal"),
           models: tuple[MLPSpec, ...] = (MLPSpec(hidden=(8,)),)) -> Study:
    return StudyConfig(name="t", schemes=schemes, seeds=seeds, models=models,
                       train={"epochs": 2}).expand()


def _train_all(cells: Sequence[Cell], sink: StoreSink) -> None:
    for i, c in enumerate(cells):
        for e in range(c.epochs + 1):
            sink.epoch(i, epoch_record(i, e, seed=c.seed), steps=[step_record(i, 10 * e, e)] if e else [])


def _n_epochs(store: Store) -> int:
    return sum(len(v) for v in store.epoch_records().values())


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


def test_roundtrip_of_all_record_kinds(tmp_path: Path) -> None:
    """Every record type goes in with to_dict and comes back equal, of the same type."""
    study = _study()
    c = study.cells[1]
    e0, e1 = epoch_record(3, 0, layers=2), epoch_record(3, 1, layers=2, diverged=True)
    s1, s2 = step_record(3, 1, 1), step_record(3, 2, 1, loss=math.nan)
    div, init = divergence(3, 1, 2), init_record("lsuv")
    assert init.check is not None and init.report.lsuv
    with Store.create(tmp_path) as store:
        info = store.attach(study)
        assert info.new and info.total == 4 and info.pending == 4
        assert store.load_study().cells == study.cells
        assert store.study_record().config == study.config
        assert set(store.study_record().versions) >= {"python", "torch", "numpy", "sqlite"}
        store.mark_running([c.key])
        store.record_init(c.key, init)
        store.record_epoch(c.key, e0)
        store.record_steps(c.key, [s1])
        store.record_epoch(c.key, e1, steps=[s2])
        store.record_divergence(c.key, div)
        assert store.mark_finished(c.key, wall=3.5) is CellStatus.DIVERGED
        store.set_meta("device", {"type": "cpu"})

    with Store.open(tmp_path) as store:
        (rec,) = store.cells("diverged")
        assert (rec.key, rec.index, rec.scheme, rec.seed, rec.model) == (c.key, 1, c.scheme, c.seed, c.model_label)
        assert (rec.wall, rec.attempts, rec.status) == (3.5, 1, CellStatus.DIVERGED) and rec.cell == c
        back = store.epochs(c.key)
        assert [type(r) for r in back] == [EpochRecord, EpochRecord]
        assert back[0].same(e0) and back[1].same(e1)
        assert all(type(p) is ParamStats for p in back[0].params) and isinstance(back[0].params, tuple)
        assert math.isnan(back[0].train_loss) and back[1].diverged is True
        steps = store.steps(c.key)
        assert [type(x) for x in steps] == [StepRecord, StepRecord] and steps[0] == s1 and steps[1].same(s2)
        assert store.divergence(c.key).same(div) and store.divergences() == {c.key: store.divergence(c.key)}
        got = store.init_record(c.key)
        assert type(got) is type(init) and got.same(init)
        assert type(got.report) is type(init.report) and type(got.check) is type(init.check)
        assert [type(r) for r in got.report.layers + got.check.layers] == \
            [type(r) for r in init.report.layers + init.check.layers]
        assert got.report.lsuv == init.report.lsuv and got.check.ok == init.check.ok
        assert store.get_meta("device") == {"type": "cpu"} and store.get_meta("nope", 5) == 5
        assert store.status_counts() == {"pending": 3, "running": 0, "done": 0, "diverged": 1, "failed": 0}
        assert list(store.status_counts()) == list(CellStatus)


def test_a_newer_records_extra_field_survives_the_store(tmp_path: Path) -> None:
    """A field the store has no column for goes to the row's extra JSON and comes back."""
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Newer(EpochRecord):
        lr: float = 0.0

    study = _study()
    c = study.cells[0]
    with Store.create(tmp_path) as store:
        store.attach(study)
        store.mark_running([c.key])
        store.record_epoch(c.key, Newer(**{f.name: getattr(epoch_record(0, 1), f.name)
                                           for f in dataclasses.fields(EpochRecord)}, lr=0.01))
        row = store._conn.execute("SELECT extra FROM epochs").fetchone()
        assert row["extra"] == '{"lr":0.01}'
        assert store.epochs(c.key)[0].same(epoch_record(0, 1))  # read as this initlab's EpochRecord


def test_writes_need_a_running_cell_and_are_never_duplicated(tmp_path: Path) -> None:
    study = _study()
    c = study.cells[0]
    with Store.create(tmp_path) as store:
        store.attach(study)
        with pytest.raises(InitlabError, match="is pending"):
            store.record_epoch(c.key, epoch_record(0, 0))
        with pytest.raises(InitlabError, match="not part of the stored study"):
            store.mark_running(["0123456789abcdef"])
        store.mark_running([c.key])
        with pytest.raises(InitlabError, match="is running"):
            store.mark_running([c.key])
        store.record_epoch(c.key, epoch_record(0, 1, layers=1))
        with pytest.raises(InitlabError, match="already"):
            store.record_epoch(c.key, epoch_record(0, 1))
        # a failing epoch leaves nothing behind (the same tensor twice inside one epoch)
        twice = epoch_record(0, 2, layers=1)
        twice = EpochRecord(**{**{k: getattr(twice, k) for k in ("model", "epoch", "step", "train_loss",
                                                                 "train_acc", "val_loss", "val_acc", "wall_s",
                                                                 "batch_models", "diverged")},
                               "params": twice.params + twice.params[:1]})
        with pytest.raises(InitlabError, match="already"):
            store.record_epoch(c.key, twice)
        with pytest.raises(InitlabError, match="takes an EpochRecord"):
            store.record_epoch(c.key, {"epoch": 2})  # type: ignore[arg-type]
        store.record_divergence(c.key, divergence(0))
        with pytest.raises(InitlabError, match="diverged already"):
            store.record_divergence(c.key, divergence(0))
        assert [e.epoch for e in store.epochs(c.key)] == [1]
        assert len(store.epochs(c.key)[0].params) == 2
        store.mark_finished(c.key)
        with pytest.raises(InitlabError, match="is diverged"):
            store.record_epoch(c.key, epoch_record(0, 2))
        with pytest.raises(InitlabError, match="unknown cell status 'finished'"):
            store.cells("finished")


def test_resume_keeps_finished_and_restarts_interrupted_cells(tmp_path: Path) -> None:
    study = _study()
    a, b, c, d = study.cells
    init = init_record()
    with Store.create(tmp_path) as store:
        store.attach(study)
        store.mark_running([a.key, b.key, c.key])
        for cell in (a, b, c):
            store.record_epoch(cell.key, epoch_record(0, 0), steps=[step_record(0, 0)])
            store.record_init(cell.key, init)
            store.record_divergence(cell.key, divergence())
        store.mark_finished(a.key)
        store.mark_failed([c.key], "RuntimeError: boom")
        assert store.cells("failed")[0].error == "RuntimeError: boom"
        # b is left 'running', as after a kill

    with Store.open(tmp_path) as store:
        info = store.attach(study)
        assert (info.new, info.total, info.finished, info.reset, info.pending) == (False, 4, 1, 2, 3)
        assert [r.cell for r in store.cells("pending")] == [b, c, d]
        assert store.pending_cells() == [b, c, d]
        assert list(store.epoch_records()) == [a.key] and list(store.divergences()) == [a.key]
        assert list(store.init_records()) == [a.key] and list(store.step_records()) == [a.key]
        for table in ("param_stats", "activation_stats", "init_checks"):
            cells = {r["cell"] for r in store._conn.execute(f"SELECT cell FROM {table}")}
            assert cells == {a.key}, table
        (rb,) = [r for r in store.cells() if r.key == b.key]
        assert rb.started is None and rb.attempts == 1 and rb.error is None
        assert store.cells("diverged")[0].key == a.key


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
        assert _n_epochs(store) == 8 * 3
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
        sink.epoch(cells[0], epoch_record(0, 0))
        sink.diverged(cells[0].key, divergence(0, 1, 7))
        assert sink.finish(0, wall=1.25) == "diverged"
        with pytest.raises(InitlabError, match="already finished"):
            sink.finish(0)
        with pytest.raises(InitlabError, match="outside this group"):
            sink.key(len(cells))
        sink.diverged(1, divergence(1, 2, 9))

    with Store.create(tmp_path) as store:
        result = run_study(study, store, train)
        assert (result.done, result.diverged) == (2, 2)
        first, second = store.cells()[:2]
        assert (first.status, first.wall) == ("diverged", 1.25) and second.status == "diverged"
        assert store.divergence(first.key).same(divergence(0, 1, 7))
        assert (store.divergence(second.key).epoch, store.divergence(second.key).step) == (2, 9)
        assert store.get_meta("device") == "cpu"


def test_failing_group_is_marked_failed_and_retried(tmp_path: Path) -> None:
    study = _study(models=(MLPSpec(hidden=(8,)), MLPSpec(hidden=(4,))))  # 2 groups of 4

    def flaky(cells: Sequence[Cell], sink: StoreSink) -> None:
        sink.epoch(0, epoch_record(0, 0))
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
        sink.epoch(0, epoch_record(0, 0))
        raise KeyboardInterrupt

    with Store.create(tmp_path) as store:
        with pytest.raises(KeyboardInterrupt):
            run_study(study, store, interrupted)
        assert store.status_counts()["running"] == 4
        assert store.get_meta("runs")[-1]["finished"] is None
    with Store.open(tmp_path) as store:
        assert run_study(study, store, _train_all).resume.reset == 4
        assert _n_epochs(store) == 4 * 3


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
        assert store.status_counts()["done"] == 4 and _n_epochs(store) == 12
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
            store.epoch_records()
        assert "\n" not in str(info.value)
    with pytest.raises(InitlabError, match=r"is damaged \("):
        Store.open(rd)  # for writing, the whole file is checked first
    assert (rd / DB_NAME).read_bytes() == bytes(raw)
    assert list(_files(rd)) == [DB_NAME]


# -- stores of the previous schema version -------------------------------------------------------

_V1 = Path(__file__).parent / "data" / "store_v1.sqlite"  # written by tests/data/make_store_v1.py


def _v1_run(tmp_path: Path) -> Path:
    import shutil

    rd = tmp_path / "v1"
    rd.mkdir()
    shutil.copy(_V1, rd / DB_NAME)
    return rd


def _everything(store: Store) -> dict:
    return {"cells": [(c.key, c.status, c.wall, c.attempts) for c in store.cells()],
            "epochs": {k: [r.to_dict() for r in v] for k, v in store.epoch_records().items()},
            "steps": {k: [r.to_dict() for r in v] for k, v in store.step_records().items()},
            "div": {k: v.to_dict() for k, v in store.divergences().items()},
            "init": {k: v.to_dict() for k, v in store.init_records().items()},
            "probes": {k: v.to_dict() for k, v in store.probes().items()},
            "errors": store.probe_errors(), "meta": store.meta()}


def test_a_version_1_store_is_read_unchanged_and_migrated_when_opened_for_writing(tmp_path: Path) -> None:
    rd = _v1_run(tmp_path)
    before = (rd / DB_NAME).read_bytes()
    with Store.open(rd, readonly=True) as store:  # migrated in memory: the file is not touched
        ro = _everything(store)
    assert (rd / DB_NAME).read_bytes() == before and list(_files(rd)) == [DB_NAME]
    # what the v1 run recorded (tests/data/make_store_v1.py): 3 schemes x 2 seeds, 2 epochs, one
    # scheme diverging at its first step, a probe of the model, LSUV's fitting steps
    assert [s for _, s, _, _ in ro["cells"]].count("diverged") == 2 and len(ro["cells"]) == 6
    assert sorted(len(v) for v in ro["epochs"].values()) == [2, 2, 3, 3, 3, 3]
    e = ro["epochs"][ro["cells"][0][0]]
    assert [r["epoch"] for r in e] == [0, 1, 2] and [len(r["params"]) for r in e] == [4, 4, 4]
    assert all(len(p["hist_counts"]) == 4 and len(p["quantiles"]) == 7 for r in e for p in r["params"])
    assert [len(r["activations"]) for r in e] == [2, 2, 2] and e[2]["step"] == 8 and e[2]["batch_models"] == 4
    assert all(s["samples"] > 0 for v in ro["steps"].values() for s in v)
    assert sorted(d["model"] for d in ro["div"].values()) == [0, 1]
    assert all(d["reason"] == "loss" and d["epoch"] == 1 for d in ro["div"].values())
    assert len(ro["init"]) == 6 and all(i["check"] is None for i in ro["init"].values())  # v1: no check
    assert any(i["report"]["lsuv"] for i in ro["init"].values())
    ((group, probe),) = ro["probes"].items()
    assert group[1] == "fashion-mnist" and len(probe["schemes"]) == 3
    assert "probes" not in ro["meta"] and ro["meta"]["quantile_levels"]

    with Store.open(rd) as store:  # for writing: the file is migrated, in one transaction
        assert store._conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        rw = _everything(store)
        assert store.integrity_check() == "ok"
    assert repr(rw) == repr(ro)
    with Store.open(rd, readonly=True) as store:
        assert repr(_everything(store)) == repr(ro)


def test_a_failing_migration_leaves_the_version_1_store_as_it_was(tmp_path: Path, monkeypatch) -> None:
    import initlab.study.store_migrate as mig

    rd = _v1_run(tmp_path)
    real = mig._v1_to_v2

    def broken(c, schema):
        real(c, schema)
        raise RuntimeError("killed mid-migration")

    monkeypatch.setattr(mig, "_v1_to_v2", broken)
    with pytest.raises(RuntimeError, match="killed"):
        Store.open(rd)
    conn = sqlite3.connect(rd / DB_NAME)
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == 1
    assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")} == set(mig.V1_TABLES)
    conn.close()
    monkeypatch.setattr(mig, "_v1_to_v2", real)
    with Store.open(rd) as store:  # and it migrates later
        assert store.status_counts()["done"] == 4
