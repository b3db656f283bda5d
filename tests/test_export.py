"""initlab.report exports on a small real run: tidy CSV/Parquet tables read back with
pandas, TensorBoard event files read back with TensorBoard's own reader, a W&B offline
run directory, the ``initlab export`` command and the one-line hints for missing extras.

Each integration test skips when its optional package is not installed.
"""

from __future__ import annotations

import json
import math
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from initlab.errors import InitlabError
from initlab.report import export_tables, export_tensorboard, export_wandb, load_run
from initlab.report.tables import ID_COLUMNS, TABLES, read_table, table_rows

from test_report import SCHEMES, real_run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return real_run(tmp_path_factory.mktemp("export") / "run")


# -- tables --------------------------------------------------------------------------------


def test_table_rows_are_tidy_and_complete(tiny_run: Path) -> None:
    run = load_run(tiny_run)
    metrics = list(table_rows(run, "metrics"))
    # 4 cells x (epoch 0: 2 validation metrics + epochs 1, 2: 4 metrics each)
    assert len(metrics) == 4 * (2 + 2 * 4)
    assert len({r[:6] + r[6:8] for r in metrics}) == len(metrics)  # one row per cell, epoch, metric
    cell = run.cells[0]
    got = {(r[6], r[7]): r[8] for r in metrics if r[1] == cell.key}
    assert got[(2, "val_acc")] == cell.metric("val_acc", 2)
    hist = [r for r in table_rows(run, "histograms") if r[1] == cell.key and r[7] == 1 and r[8] == "weight"]
    edges, counts = cell.param(1, "weight").hist_edges, cell.param(1, "weight").hist_counts
    assert len(hist) == sum(c.size for c in counts)
    assert sum(r[-1] for r in hist if r[6] == 0) == 32 * 64
    assert hist[0][11:13] == (edges[0][0], edges[0][1])
    with pytest.raises(InitlabError, match="unknown table"):
        list(table_rows(run, "nope"))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tables_round_trip_into_pandas(tiny_run: Path, tmp_path: Path, fmt: str) -> None:
    pd = pytest.importorskip("pandas")
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    run = load_run(tiny_run)
    written = export_tables(tiny_run, tmp_path / fmt, fmt)
    assert set(written) == set(TABLES)
    for name, path in written.items():
        assert path == tmp_path / fmt / f"{name}.{fmt}"
        df = read_table(path)
        assert list(df.columns) == list(ID_COLUMNS + TABLES[name])
        assert len(df) == sum(1 for _ in table_rows(run, name))
        if fmt == "csv":  # plain pandas sees the same columns
            assert list(pd.read_csv(path, nrows=0).columns) == list(ID_COLUMNS + TABLES[name])
    cells = read_table(written["cells"])
    assert list(cells["cell"]) == [c.key for c in run.cells]
    assert list(cells["status"]) == ["done"] * 4
    metrics = read_table(written["metrics"])
    assert set(metrics["metric"]) == {"train_loss", "val_loss", "train_acc", "val_acc"}
    wide = metrics.pivot_table(index=["scheme", "seed", "epoch"], columns="metric", values="value")
    for c in run.cells:
        assert wide.loc[(c.scheme, c.seed, 2), "val_loss"] == pytest.approx(c.metric("val_loss", 2), rel=1e-12)
    assert math.isnan(wide.loc[(SCHEMES[0], 0, 0)].get("train_loss", math.nan))
    hist = read_table(written["histograms"])
    per = hist[(hist.tensor == "weight") & (hist.layer == 2)].groupby(["cell", "epoch"])["count"].sum()
    assert set(per) == {32 * 16}
    layers = read_table(written["layers"])
    assert {"weight", "bias", "activation"} <= set(layers.tensor)
    assert {"std", "q50", "post_frac_zero"} <= set(layers.stat)
    init = read_table(written["init"])
    he = init[init.scheme == "he_normal"]
    assert np.allclose(he.realized_std / he.expected_std, 1.0, atol=0.1)
    # initlab.check's verdicts at init, as the study stored them
    conf = read_table(written["conformance"])
    assert len(conf) == len(init) and set(conf.scheme) == set(SCHEMES)
    assert conf[conf.scheme == "he_normal"]["conforms"].astype(str).tolist() == ["True"] * len(he)
    stored = [r for c in run.cells for r in c.init.check.layers]
    np.testing.assert_allclose(conf["z_var"].astype(float), [r.z_var for r in stored])


def test_table_export_checks_its_arguments(tiny_run: Path, tmp_path: Path) -> None:
    with pytest.raises(InitlabError, match="unknown table format"):
        export_tables(tiny_run, tmp_path, "xlsx")
    with pytest.raises(InitlabError, match="unknown table"):
        export_tables(tiny_run, tmp_path, "csv", tables=("metrics", "nope"))
    with pytest.raises(InitlabError, match="does not exist"):
        export_tables(tmp_path / "missing", tmp_path / "out", "csv")
    written = export_tables(tiny_run, tmp_path / "two", "csv", tables=("cells", "metrics"))
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["cells.csv", "metrics.csv"]
    assert set(written) == {"cells", "metrics"}


# -- TensorBoard ---------------------------------------------------------------------------


def test_tensorboard_events_read_back_with_tensorboard(tiny_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = load_run(tiny_run)
    out = tmp_path / "tb"
    runs = export_tensorboard(tiny_run, out)
    assert sorted(p.relative_to(out).as_posix() for p in runs) == sorted(
        f"{s}/seed{k}" for s in SCHEMES for k in (0, 1))
    for cell in run.cells:
        acc = EventAccumulator(str(out / cell.scheme / f"seed{cell.seed}"),
                               size_guidance={"scalars": 0, "histograms": 0})
        acc.Reload()
        tags = acc.Tags()
        assert {"epoch/train_loss", "epoch/val_loss", "epoch/train_acc", "epoch/val_acc",
                "step/train_loss"} <= set(tags["scalars"])
        assert {f"weight_std/layer{i:02d}" for i in (1, 2, 3)} <= set(tags["scalars"])
        assert {f"activation_std/layer{i:02d}" for i in (1, 2, 3)} <= set(tags["scalars"])
        assert set(tags["histograms"]) == {f"{k}/layer{i:02d}" for k in ("weights", "biases") for i in (1, 2, 3)}
        val = acc.Scalars("epoch/val_acc")
        assert [e.step for e in val] == [0, 1, 2]
        np.testing.assert_allclose([e.value for e in val], cell.metrics["val_acc"], rtol=1e-6)
        assert [e.step for e in acc.Scalars("epoch/train_loss")] == [1, 2]  # NaN at init is skipped
        steps = acc.Scalars("step/train_loss")
        assert [e.step for e in steps] == [s.step for s in cell.steps]
        hist = acc.Histograms("weights/layer02")
        assert [h.step for h in hist] == [0, 1, 2]
        p = cell.param(2, "weight")
        h = hist[-1].histogram_value
        assert h.num == 32 * 16 == sum(p.hist_counts[-1])
        assert list(h.bucket) == list(p.hist_counts[-1])
        np.testing.assert_allclose(h.bucket_limit, p.hist_edges[-1][1:])
        assert h.min == pytest.approx(p.stat("min", 2)) and h.max == pytest.approx(p.stat("max", 2))
    # TensorBoard's dashboards (plugin accumulator) see them as histograms and scalars;
    # the all-ones init is one spike at 1.0
    from tensorboard.backend.event_processing import plugin_event_accumulator as pea
    from tensorboard.util import tensor_util

    acc = pea.EventAccumulator(str(out / "ones" / "seed0"), size_guidance={"tensors": 0})
    acc.Reload()
    assert {f"weights/layer{i:02d}" for i in (1, 2, 3)} <= set(acc.PluginTagToContent("histograms"))
    assert "epoch/val_loss" in acc.PluginTagToContent("scalars")
    buckets = tensor_util.make_ndarray(acc.Tensors("weights/layer01")[0].tensor_proto)
    np.testing.assert_array_equal(buckets, [[1.0, 1.0, 32 * 64]])
    # exporting again replaces the event files instead of duplicating the curves
    export_tensorboard(tiny_run, out)
    assert len(list((out / SCHEMES[0] / "seed0").glob("events.out.tfevents.*"))) == 1


# -- W&B -----------------------------------------------------------------------------------


def _wandb_records(path: Path) -> list[object]:
    """Records of a ``.wandb`` transaction log (LevelDB log format: a 7-byte file header,
    then 32 KiB blocks of chunks with a 7-byte header: CRC32, length, type)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, buf, out = 32768, 7, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer
            pos += block - pos % block
            continue
        _, n, kind = struct.unpack("<IHB", data[pos:pos + 7])
        pos += 7
        if kind == 0 and n == 0:
            break
        chunk, pos = data[pos:pos + n], pos + n
        if kind in (1, 2):  # full, first
            buf = chunk
        else:  # middle, last
            buf += chunk
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(buf)
            out.append(rec)
    return out


def test_wandb_offline_run_holds_the_history(tiny_run: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = load_run(tiny_run)
    where = export_wandb(tiny_run, "initlab-test", dir=tmp_path)
    assert len(where) == 4
    for cell, d in zip(run.cells, where):
        d = Path(d)
        assert d.parent == tmp_path / "wandb" and d.name.startswith("offline-run-")
        (log,) = d.glob("run-*.wandb")
        records = _wandb_records(log)
        (head,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
        assert head.run_group == "tiny" and head.display_name == f"{cell.scheme}/seed{cell.seed}"
        assert head.project == "initlab-test"
        config = {u.key: json.loads(u.value_json) for u in head.config.update}
        assert config["scheme"] == cell.scheme and config["seed"] == cell.seed and config["cell"] == cell.key
        history = []
        for r in records:
            if r.WhichOneof("record_type") == "history":
                history.append({(i.key or "/".join(i.nested_key)): i.value_json for i in r.history.item})
        epochs = [h for h in history if "epoch/val_acc" in h]
        assert [int(h["epoch"]) for h in epochs] == [0, 1, 2]
        np.testing.assert_allclose([float(h["epoch/val_acc"]) for h in epochs], cell.metrics["val_acc"])
        assert json.loads(epochs[2]["weights/layer01/_type"]) == "histogram"
        assert json.loads(epochs[2]["weights/layer01/values"]) == [int(c) for c in cell.param(1).hist_counts[2]]
        steps = [int(h["global_step"]) for h in history if "step/train_loss" in h]
        assert steps == [s.step for s in cell.steps]


def test_wandb_mode_is_checked(tiny_run: Path) -> None:
    pytest.importorskip("wandb")
    with pytest.raises(InitlabError, match="unknown W&B mode"):
        export_wandb(tiny_run, mode="sometimes")


# -- missing extras and the command ---------------------------------------------------------


def _hide(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    """Make ``import package`` (and its submodules) fail as if it were not installed."""
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")] + [package]:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize("package,extra,call", [
    ("tensorboard", "tensorboard", lambda rd, out: export_tensorboard(rd, out)),
    ("wandb", "wandb", lambda rd, out: export_wandb(rd, mode="offline", dir=out)),
    ("pyarrow", "parquet", lambda rd, out: export_tables(rd, out, "parquet")),
])
def test_missing_extra_gives_the_install_command(tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  package: str, extra: str, call) -> None:
    _hide(monkeypatch, package)
    with pytest.raises(InitlabError) as info:
        call(tiny_run, tmp_path)
    msg = str(info.value)
    assert f"pip install 'initlab[{extra}]'" in msg and f"'{package}'" in msg and "\n" not in msg
    assert not any(tmp_path.iterdir())  # failed before writing anything


def test_export_command(tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    import initlab.cli as cli

    monkeypatch.setattr(cli, "COMMANDS", ("report", "export"))
    assert cli.main(["export", str(tiny_run), "--format", "csv", "--out", str(tmp_path / "t")]) == 0
    assert "tables (csv): 7 files" in capsys.readouterr().out
    assert (tmp_path / "t" / "metrics.csv").is_file()
    assert cli.main(["export", str(tiny_run)]) == 2
    assert "nothing to export" in capsys.readouterr().err
    assert cli.main(["export", str(tiny_run), "--out", str(tmp_path)]) == 2
    assert "--format" in capsys.readouterr().err
    _hide(monkeypatch, "tensorboard")
    assert cli.main(["export", str(tiny_run), "--format", "csv", "--out", str(tmp_path / "u"),
                     "--tensorboard", str(tmp_path / "tb")]) == 2
    err = capsys.readouterr().err
    assert err == ("initlab: error: TensorBoard export needs the 'tensorboard' package; "
                   "install it with pip install 'initlab[tensorboard]'\n")
    assert not (tmp_path / "u").exists()  # every extra is checked before any work


def test_exports_of_several_models_keep_them_apart(tmp_path: Path) -> None:
    from test_report import two_group_run

    run = two_group_run(tmp_path / "run")
    written = export_tables(None, tmp_path / "t", "csv", data=run, tables=("metrics",))
    text = written["metrics"].read_text()
    assert ",mlp-a," in text and ",mlp-b," in text
    pytest.importorskip("tensorboard")
    runs = export_tensorboard(None, tmp_path / "tb", data=run)
    assert sorted(p.relative_to(tmp_path / "tb").as_posix() for p in runs) == sorted(
        f"{m}__fashion-mnist/{s}/seed0" for m in ("mlp-a", "mlp-b") for s in ("zeros", "he_normal"))


def test_importing_the_report_package_loads_no_optional_or_plotting_package() -> None:
    import subprocess

    code = ("import sys, initlab.report, initlab.cli.report_cmd, initlab.cli.export_cmd; "
            "print(sorted(m for m in ('matplotlib', 'tensorboard', 'wandb', 'pandas', 'pyarrow') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_export_to_a_place_that_cannot_be_written_fails_before_any_work(
        tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import initlab.cli as cli
    import initlab.outputs as outputs

    monkeypatch.setattr(cli, "COMMANDS", ("export",))
    afile = tmp_path / "afile"
    afile.write_text("x")
    ok = tmp_path / "ok"
    cases = [
        (["--tensorboard", str(afile)], "--tensorboard", "is a file, not a directory"),
        (["--tensorboard", str(afile / "tb")], "--tensorboard", "is a file, not a directory"),
        (["--format", "csv", "--out", str(afile)], "--out", "is a file, not a directory"),
        (["--format", "csv", "--out", str(afile / "a" / "b")], "--out", "is a file, not a directory"),
        # the tables would be fine, the TensorBoard place is not: neither is written
        (["--format", "csv", "--out", str(ok), "--tensorboard", str(afile)], "--tensorboard", "is a file"),
    ]
    for extra, flag, fragment in cases:
        assert cli.main(["export", str(tiny_run), *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"initlab: error: {flag} ") and fragment in err, err
        assert err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"] and afile.read_text() == "x"
    # a read-only directory (root may write anywhere, so the check is made to see one)
    ro = tmp_path / "ro"
    ro.mkdir()
    monkeypatch.setattr(outputs, "_writable", lambda d: Path(d) != ro)
    assert cli.main(["export", str(tiny_run), "--tensorboard", str(ro)]) == 2
    assert "--tensorboard" in (err := capsys.readouterr().err) and "is not writable" in err
    assert cli.main(["export", str(tiny_run), "--format", "csv", "--out", str(ro / "t")]) == 2
    assert "cannot be written" in (err := capsys.readouterr().err) and "is not writable" in err
    assert not any(ro.iterdir())
    # the library functions check the same way before reading the run
    with pytest.raises(InitlabError, match="the tables directory .* is a file"):
        export_tables(tmp_path / "missing-run", afile, "csv")
    pytest.importorskip("tensorboard")
    with pytest.raises(InitlabError, match="the TensorBoard directory .* is a file"):
        export_tensorboard(tmp_path / "missing-run", afile)


def test_check_output_dir_and_file_create_nothing(tmp_path: Path) -> None:
    from initlab.outputs import check_output_dir, check_output_file

    (tmp_path / "f").write_text("x")
    assert check_output_dir(tmp_path / "a" / "b", "--out") == tmp_path / "a" / "b"
    assert check_output_file(tmp_path / "c" / "r.html", "--out") == tmp_path / "c" / "r.html"
    assert check_output_file(tmp_path / "f", "--out") == tmp_path / "f"  # replaced when written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
    with pytest.raises(InitlabError, match=r"^--out '.*' is a directory; give a file name inside it$"):
        check_output_file(tmp_path, "--out")
    with pytest.raises(InitlabError, match="is a file, not a directory"):
        check_output_file(tmp_path / "f" / "r.html", "--out")
    with pytest.raises(InitlabError, match=r"^--tb '.*f' is a file, not a directory"):
        check_output_dir(tmp_path / "f", "--tb")
