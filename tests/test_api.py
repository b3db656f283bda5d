"""initlab.run / initlab.load and Results: the CLI's numbers, tidy frames, displays, bad input."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pytest

import initlab
from initlab.errors import InitlabError

pd = pytest.importorskip("pandas")

DATA = os.environ.get("INITLAB_DATA_DIR")
needs_data = pytest.mark.skipif(not DATA, reason="INITLAB_DATA_DIR is not set")
LIMITS = {"limit_train": 300, "limit_val": 100}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    if not DATA:
        pytest.skip("INITLAB_DATA_DIR is not set")
    out = tmp_path_factory.mktemp("api") / "smoke"
    res = initlab.run("smoke", out=out, progress=False, report=False, **LIMITS)
    assert res.run is not None and res.run.done == 2
    return out


@pytest.mark.data
@needs_data
def test_summary_equals_the_cli_json(smoke, capsys) -> None:
    from initlab.cli import main

    assert main(["summary", str(smoke), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    frame = initlab.load(smoke).summary()
    assert len(frame) == len(cli["rows"]) == 2
    for row, expected in zip(frame.to_dict("records"), cli["rows"]):
        for key, value in expected.items():
            got = row[key]
            if value is None:
                assert got is None or (isinstance(got, float) and math.isnan(got)), key
            elif isinstance(value, float):
                assert got == pytest.approx(value, rel=1e-12, abs=0), key
            else:
                assert (list(got) if isinstance(got, (list, tuple)) else got) == value, key


@pytest.mark.data
@needs_data
def test_run_again_resumes_and_keeps_the_results(smoke) -> None:
    before = initlab.load(smoke).epochs()
    res = initlab.run("smoke", out=smoke, progress=False, report=False, **LIMITS)
    assert res.run.skipped == 2 and res.run.done == 0
    pd.testing.assert_frame_equal(res.epochs(), before)


@pytest.mark.data
@needs_data
def test_frames_have_the_documented_columns(smoke) -> None:
    from initlab.check import CheckRow
    from initlab.probe.result import LayerProbe
    from initlab.records import QUANTILE_LEVELS, SchemeSummary
    from initlab.results import ID_COLUMNS

    res = initlab.load(smoke)
    ids = list(ID_COLUMNS)
    assert list(res.summary().columns) == list(SchemeSummary.__dataclass_fields__)

    cells = res.cells()
    assert list(cells.columns) == ids + ["status", "epochs_planned", "last_epoch", "wall_s", "attempts", "error",
                                         "diverged_epoch", "diverged_step"]
    assert sorted(cells["scheme"]) == ["keras_default", "zeros"] and set(cells["status"]) == {"done"}
    assert (cells["last_epoch"] == 1).all() and cells["diverged_epoch"].isna().all()

    epochs = res.epochs()
    assert list(epochs.columns) == ids + ["epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc",
                                          "wall_s", "batch_models", "diverged"]
    assert sorted(epochs["epoch"]) == [0, 0, 1, 1]
    assert epochs[epochs["epoch"] == 0]["train_loss"].isna().all()  # at init: no training yet
    final = epochs[epochs["epoch"] == 1].set_index("scheme")["val_acc"]
    assert 0.0 <= final["zeros"] < final["keras_default"] <= 1.0

    steps = res.steps()
    assert list(steps.columns) == ids + ["epoch", "step", "steps", "samples", "loss", "accuracy"]
    assert len(steps) >= 2 and (steps["samples"] > 0).all()

    layers = res.layers()
    qcols = [f"q{round(q * 100):02d}" for q in QUANTILE_LEVELS]
    assert list(layers.columns) == ids + ["epoch", "param", "layer", "name", "numel", "mean", "std", "min",
                                          "max", "frac_zero", "nonfinite", *qcols, "pre_mean", "pre_std",
                                          "post_mean", "post_std", "post_frac_zero", "dead_units"]
    assert set(layers["param"]) == {"weight", "bias", "activation"}
    zeros_w = layers[(layers.scheme == "zeros") & (layers.epoch == 0) & (layers.param == "weight")]
    assert (zeros_w["std"] == 0).all() and (zeros_w["frac_zero"] == 1).all()
    acts = res.layers("activation")
    assert set(acts["param"]) == {"activation"} and acts["mean"].isna().all() and acts["pre_std"].notna().all()

    hist = res.histograms(1)
    assert list(hist.columns) == ids + ["epoch", "layer", "param", "name", "bin", "left", "right", "count"]
    one = hist[(hist.scheme == "keras_default") & (hist.epoch == 0)]
    assert one["count"].sum() == 784 * 256 and (one["left"] < one["right"]).all()
    with pytest.raises(InitlabError, match="no layer 9"):
        res.histograms(9)

    probes = res.probes()
    assert list(probes.columns) == ["dataset", "model", "scheme", "probe_seed", *LayerProbe.__dataclass_fields__,
                                    "signal_rate", "gradient_rate", "verdicts"]
    assert set(probes["scheme"]) == {"keras_default", "zeros"}
    assert probes[probes.scheme == "zeros"]["verdicts"].str.len().gt(0).all()

    checks = res.init_checks()
    assert list(checks.columns) == ids + list(CheckRow.__dataclass_fields__)
    assert checks["conforms"].all() and len(checks) == 6  # 3 weights x 2 cells

    inits = res.inits()
    assert len(inits) == 6 and set(inits["family"]) >= {"uniform", "constant"}


@pytest.mark.data
@needs_data
def test_displays_plots_report_and_export(smoke, tmp_path, monkeypatch) -> None:
    import matplotlib

    matplotlib.use("Agg")
    res = initlab.load(smoke)
    html = res._repr_html_()
    assert "<table" in html and "keras_default" in html and "#d9f2d9" in html  # the best scheme in green
    assert re.fullmatch(r"Results\('smoke', 2 cells, 2 finished, run_dir=.*\)", repr(res))
    assert "<table" in res.probe()._repr_html_()
    for fig in (res.plot_curves("val_loss"), res.plot_histograms(2), res.plot_probe("grad_norm")):
        assert fig.axes and fig.axes[0].lines or fig.axes[0].patches
    with pytest.raises(InitlabError, match="unknown metric 'val_accuracy'.*val_acc"):
        res.plot_curves("val_accuracy")
    import initlab.report.build as build  # the report itself is test_report's (10 s here): check the wiring

    calls = []
    monkeypatch.setattr(build, "build_report", lambda run_dir, **kw: calls.append((run_dir, kw)) or kw["out"])
    assert res.report(tmp_path / "r.html", threshold=0.5) == tmp_path / "r.html"
    assert calls[0][0] == res.run_dir and calls[0][1]["data"] is res.data and calls[0][1]["target"] == 0.5
    with pytest.raises(InitlabError, match="is a directory"):
        res.report(tmp_path)  # a bad place is refused before any work, as by initlab report --out
    done = res.export(format="csv", out=tmp_path / "tables")
    assert set(done.tables) >= {"cells", "metrics"} and done.tables["cells"].is_file()


def test_load_of_a_directory_that_is_not_a_run(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    for where, pattern in [(tmp_path, "no results store"), (tmp_path / "missing", "does not exist"),
                           (tmp_path / "notes.txt", "is not a directory")]:
        with pytest.raises(InitlabError) as info:
            initlab.load(where)
        assert re.search(pattern, str(info.value)) and "\n" not in str(info.value)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "initlab.sqlite").write_bytes(b"not a database at all" * 10)
    with pytest.raises(InitlabError) as info:
        initlab.load(tmp_path / "run")
    assert "\n" not in str(info.value)


def test_run_refuses_an_unknown_override_before_writing(tmp_path) -> None:
    with pytest.raises(InitlabError) as info:
        initlab.run("smoke", out=tmp_path / "r", limt_train=10)
    msg = str(info.value)
    assert "unknown override 'limt_train'" in msg and "limit_train" in msg and "\n" not in msg
    with pytest.raises(InitlabError, match="unknown override 'learning_rate'"):
        initlab.run("smoke", out=tmp_path / "r", learning_rate=0.1)
    with pytest.raises(InitlabError, match="unknown executor 'rey'"):
        initlab.run("smoke", out=tmp_path / "r", executor="rey")
    with pytest.raises(InitlabError, match="executor must be 'local', 'ray' or an object"):
        initlab.run("smoke", out=tmp_path / "r", executor=42)
    with pytest.raises(InitlabError, match="seeds must be >= 1"):
        initlab.run("smoke", out=tmp_path / "r", seeds=0)
    with pytest.raises(InitlabError, match="unknown preset 'smok'"):
        initlab.run("smok", out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


@pytest.mark.data
@needs_data
def test_run_takes_a_dict_a_config_and_train_overrides(smoke, tmp_path) -> None:
    from initlab.study.session import plan_run, resolve_study

    plan = plan_run({"study": {"preset": "smoke", "seeds": 2}, "train": {"lr": 0.01}}, out=tmp_path / "a",
                    data_dir=DATA, **LIMITS)
    assert plan.config.seeds == (0, 1) and all(c.train["lr"] == 0.01 for c in plan.study.cells)
    config = resolve_study("smoke")
    assert resolve_study(config) is config
    plan = plan_run(config, train={"batch_size": 64}, out=tmp_path / "b", data_dir=DATA, **LIMITS)
    assert all(c.train["batch_size"] == 64 for c in plan.study.cells)
    # a directory holding another study is refused, as by the CLI
    with pytest.raises(InitlabError, match="holds a different study"):
        initlab.run("smoke", out=smoke, progress=False, seeds=2, **LIMITS)


def test_reports_show_html_in_notebooks() -> None:
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    report = initlab.apply(model, "uniform_recipe", seed=0)
    assert repr(report) == "InitReport(scheme='uniform_recipe', seed=0, 2 layers)"
    assert "<table" in report._repr_html_() and "0.weight" in report._repr_html_()
    check = initlab.check(model, "he_normal")  # the recipe's weights do not follow He
    assert repr(check) == "CheckReport(scheme='he_normal', 2 layers, 2 failing)"
    html = check._repr_html_()
    assert "MISMATCH" in html and "#f8d0d0" in html  # failing layers highlighted
    ok = initlab.check(model, "uniform_recipe")._repr_html_()
    assert "#d9f2d9" in ok and "#f8d0d0" not in ok
    probe = initlab.probe(model, schemes=["he_normal", "zeros"], input_shape=(784,), n_inputs=64,
                          jacobian=False)
    assert repr(probe).startswith("ProbeResult(") and "1 flagged" in repr(probe)
    assert "<table" in probe._repr_html_() and "#f8d0d0" in probe._repr_html_()
    scheme = initlab.get_scheme("he_normal")
    assert "<table" in scheme._repr_html_() and scheme.formula.split()[0] in scheme._repr_html_()
    law = scheme.law((256, 784))
    assert repr(law).startswith("Law(N(0, std 0.0505") and "<table" in law._repr_html_()
    for name in initlab.scheme_names():  # every scheme's card renders, structure-aware ones too
        assert "<table" in initlab.get_scheme(name)._repr_html_()


def test_html_tables_escape_and_cut_long_tables() -> None:
    from initlab.display import Mark, html_table

    html = html_table("a <b>", ["x"], [[Mark("<bad>", False)]] + [[i] for i in range(50)], max_rows=10)
    assert "&lt;bad&gt;" in html and "<bad>" not in html and "41 more rows" in html


def test_notebook_progress_writes_no_control_characters(monkeypatch) -> None:
    import io
    import sys

    from initlab.study.session import NotebookProgress

    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # no widget: plain lines
    stream = io.StringIO()
    p = NotebookProgress(4, stream=stream, notebook=True, every=2)
    for seed in range(4):
        p.update("he_normal", seed, 1, {"val_acc": 0.5})
    p.close()
    text = stream.getvalue()
    assert "4/4 model-epochs" in text and "\r" not in text and "\x1b" not in text


@pytest.mark.data
@needs_data
def test_summary_has_a_column_per_grid_axis(tmp_path, capsys) -> None:
    from initlab.cli import main

    spec = {"study": {"preset": "smoke"}, "schemes": {"list": ["keras_default"]}, "train": {"lr": [0.001, 0.01]}}
    res = initlab.run(spec, out=tmp_path / "axis", progress=False, report=False, limit_train=200, limit_val=100)
    frame = res.summary()
    assert list(frame["lr"]) == [0.001, 0.01] and list(frame["setting"]) == ["lr=0.001", "lr=0.01"]
    assert main(["summary", str(tmp_path / "axis"), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)["rows"]
    assert [r["val_acc"] for r in cli] == pytest.approx(list(frame["val_acc"]), rel=1e-12)
    cells = res.cells()
    assert sorted(cells["lr"]) == [0.001, 0.01] and list(cells.columns[-1:]) == ["lr"]
