"""The calibrated verdicts and score (initlab.probe.calibration), the grid and fit scripts."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import initlab
from initlab.engine.inputs import TrainData
from initlab.engine.models import MLPSpec
from initlab.errors import InitlabError
from initlab.probe.calibration import (
    FEATURE_NAMES, KINDS, OPTIMIZERS, Calibration, Prediction, evaluate, features, fit, heldout_points,
    jacobian_spread, load_calibration, predict, predict_summary, read_grid, relative_trainability, split_of,
    summarize,
)

ROOT = Path(__file__).resolve().parent.parent
GRID = ROOT / "benchmarks" / "data" / "calibration_grid.jsonl"
ARTICLE = "mlp-256x128-relu-d0.2"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def shipped_grid():
    return read_grid(GRID)


def _learnable(n_train: int = 96, n_val: int = 48, seed: int = 0) -> TrainData:
    """Ten Gaussian blobs in 784 dimensions: learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(10, 784, generator=g)
    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(10, (n,), generator=g)
        return (centres[y] + 0.5 * torch.randn(n, 784, generator=g)).reshape(n, 28, 28), y
    (x, y), (vx, vy) = draw(n_train), draw(n_val)
    return TrainData(x, y, vx, vy)


# -- the grid script: resumable, append-only --------------------------------------------------

def test_quick_grid_writes_records_and_resumes(tmp_path):
    cp = _script("calibrate_probe")
    out = tmp_path / "grid.jsonl"
    settings = cp.Settings(n_train=64, n_test=32, batch_size=32, seeds=(0, 1), probe_inputs=16)
    grid = [("mlp", MLPSpec(784, (16, 16), 10, "relu", 0.0))]
    schemes = ["he_normal", "zeros"]
    data = _learnable(64, 32)
    cp.run(out, settings, quick=True, data_dir=None, budget_minutes=60, log=lambda m: None, grid=grid,
           data=data, schemes=schemes)
    header, rows = read_grid(out)
    assert header["settings"]["n_train"] == 64 and header["torch"] == torch.__version__
    assert len(rows) == len(grid) * len(OPTIMIZERS) * len(schemes)
    for row in rows:
        assert len(row["acc"]) == 2 and row["probe"]["layers"] == 3
        assert features(row["probe"]).shape == (len(FEATURE_NAMES),)
    zeros = [r for r in rows if r["scheme"] == "zeros"]
    assert all("unbroken_symmetry" in r["probe"]["measured"] for r in zeros)
    meta = json.loads(out.with_suffix(".jsonl.meta.json").read_text())
    assert meta["runs"][-1]["groups"] == 2 and meta["runs"][-1]["finished"]
    # a second run finds every group done: nothing is appended
    before = out.read_text()
    cp.run(out, settings, quick=True, data_dir=None, budget_minutes=60, log=lambda m: None, grid=grid,
           data=data, schemes=schemes)
    assert out.read_text() == before
    # a line cut by a crash is skipped on reading
    out.write_text(before + '{"record": {"config": "x"')
    assert len(read_grid(out)[1]) == len(rows)
    # and the fit runs on such rows (everything in the training split)
    cal = fit(rows, heldout_fraction=0.0)
    assert set(cal.fits) == set(OPTIMIZERS)
    assert all(w <= 0 for f in cal.fits.values() for w in f.weights)  # monotone: failure features only lower it
    assert evaluate(cal, rows, split="train")["rows"] == len(rows)


def test_reprobe_rewrites_the_probes_and_keeps_the_accuracies(tmp_path):
    cp = _script("calibrate_probe")
    out = tmp_path / "grid.jsonl"
    settings = cp.Settings(n_train=64, n_test=32, batch_size=32, seeds=(0,), probe_inputs=16)
    grid = [("mlp", MLPSpec(784, (16,) * 6, 10, "tanh", 0.0))]
    cp.run(out, settings, quick=True, data_dir=None, budget_minutes=60, log=lambda m: None, grid=grid,
           data=_learnable(64, 32), schemes=["orthogonal", "glorot_normal"])
    _, before = read_grid(out)
    for row in before:  # as an older grid stored them: no Jacobian
        row["probe"].pop("jacobian_spread")
    lines = out.read_text().splitlines()
    out.write_text("\n".join([lines[0]] + [json.dumps({"record": r}) for r in before]) + "\n")
    info = cp.reprobe(out, settings, log=lambda m: None)
    header, after = read_grid(out)
    assert [(r["config"], r["scheme"], r["optimizer"], r["acc"]) for r in after] == \
        [(r["config"], r["scheme"], r["optimizer"], r["acc"]) for r in before]
    assert all(math.isfinite(float(r["probe"]["jacobian_spread"])) for r in after)
    spread = {r["scheme"]: float(r["probe"]["jacobian_spread"]) for r in after}
    assert spread["orthogonal"] < spread["glorot_normal"]
    assert info["max_feature_change"] < 0.05  # the earlier measurements come out as before
    assert header["reprobed"][-1]["probe"]["jacobian"] is True
    assert not out.with_suffix(".jsonl.tmp").exists()


# -- the Jacobian's spread ----------------------------------------------------------------------

def test_jacobian_spread_is_the_std_of_log10_singular_values():
    assert jacobian_spread([[1.0, 1.0, 1.0]]) == pytest.approx(0.0)  # an isometry
    assert jacobian_spread([[10.0, 0.1]]) == pytest.approx(1.0)      # log10: +1, -1
    assert jacobian_spread([[10.0, 0.1], [1.0, 1.0]]) == pytest.approx(0.5)  # mean over inputs
    # a null space the architecture imposes (below 1e-6 of the largest) is not spread
    assert jacobian_spread([[10.0, 0.1, 0.0, 1e-9]]) == pytest.approx(1.0)
    assert jacobian_spread([[0.0, 0.0]]) == 0.0
    assert math.isnan(jacobian_spread(None)) and math.isnan(jacobian_spread([]))
    assert math.isnan(jacobian_spread([[1.0, float("nan")]]))  # an overflowed forward pass


def test_jacobian_spread_feature_and_its_absence():
    i = FEATURE_NAMES.index("jacobian_spread")
    base = {"layers": 3, "classes": 10, "signal": [0.0] * 3, "gradient": [0.0] * 2, "zero": [0.0] * 3,
            "saturated": [0.0] * 3, "duplicate": [0.0] * 3, "loss": 2.3, "signal_rate": 1.0,
            "gradient_rate": 1.0, "measured": []}
    assert features(base)[i] == 0.0                               # an old summary: no Jacobian
    assert features({**base, "jacobian_spread": "nan"})[i] == 0.0  # the probe took none
    assert features({**base, "jacobian_spread": 1.0})[i] == pytest.approx(math.log1p(1.0))
    assert features({**base, "jacobian_spread": 99.0})[i] == pytest.approx(math.log1p(5.0))  # capped
    # monotone: a wider spread never raises the score, and the fitted weight is negative
    for opt in OPTIMIZERS:
        w = load_calibration().fit_for(opt).weights[i]
        assert w < 0
        lo = predict_summary({**base, "jacobian_spread": 0.1}, optimizer=opt)
        hi = predict_summary({**base, "jacobian_spread": 2.0}, optimizer=opt)
        assert hi.score < lo.score
        assert any("Jacobian's singular values spread over 2 decades" in r for r in hi.reasons)


def test_deep_tanh_orthogonal_outscores_gaussian_at_the_same_variance():
    """What the Jacobian feature was added for: a 30-layer tanh MLP under orthogonal weights
    keeps its input-output Jacobian near an isometry and trains; Gaussian weights of the
    same variance (lecun_normal) spread it over decades and do not (the grid's deep tanh
    rows; Saxe et al. 2014, Pennington et al. 2017). The signal and gradient features alone
    score them alike."""
    spec = MLPSpec(784, (64,) * 30, 10, "tanh", 0.0)
    res = initlab.probe(spec, schemes=["orthogonal", "lecun_normal"], n_inputs=128, jacobian=True)
    s_orth, s_gauss = (summarize(res[s], classes=10) for s in ("orthogonal", "lecun_normal"))
    assert float(s_orth["jacobian_spread"]) < 0.3 < float(s_gauss["jacobian_spread"])
    i = FEATURE_NAMES.index("jacobian_spread")
    for opt in OPTIMIZERS:
        orth, gauss = predict_summary(s_orth, optimizer=opt), predict_summary(s_gauss, optimizer=opt)
        assert orth.score > gauss.score
        w = load_calibration().fit_for(opt).weights[i]
        assert w * (features(s_gauss)[i] - features(s_orth)[i]) < -0.1  # the spread makes the difference


# -- the shipped calibration is a refit of the shipped grid -----------------------------------

def test_shipped_calibration_is_the_refit_of_the_shipped_grid(shipped_grid):
    header, rows = shipped_grid
    shipped = load_calibration()
    fitted = fit(rows, l2=shipped.grid["l2"], heldout_fraction=shipped.grid["heldout_fraction"])
    assert shipped.grid["rows"] == len(rows)
    for opt in OPTIMIZERS:
        a, b = shipped.fits[opt], fitted.fits[opt]
        assert a.intercept == pytest.approx(b.intercept, abs=1e-3)
        assert np.allclose(a.weights, b.weights, atol=1e-3)
        assert a.threshold == pytest.approx(b.threshold, abs=2e-3)
    # the held-out metrics in the file are the code's, recomputed
    again = evaluate(shipped, rows, split="heldout", heldout_fraction=shipped.grid["heldout_fraction"])
    assert again["rows"] == shipped.heldout["rows"] > 0
    for opt in ("all", *OPTIMIZERS):
        for kind in ("ok", "failure"):
            assert again["verdicts"][opt][kind] == shipped.heldout["verdicts"][opt][kind]
    for key, e in again["spearman"].items():
        if "rho" in e:
            assert e["rho"] == pytest.approx(shipped.heldout["spearman"][key]["rho"], abs=1e-3)


def test_budget_is_the_grids_training_settings(shipped_grid):
    header, _ = shipped_grid
    grid = header["settings"]
    assert load_calibration().budget == {"epochs": grid["epochs"], "n_train": grid["n_train"],
                                         "n_test": grid["n_test"]}
    bare = Calibration(fits=load_calibration().fits)
    assert bare.budget == {"epochs": 1, "n_train": 10_000, "n_test": 2_000}
    assert Calibration(fits=bare.fits, grid={"settings": {"epochs": 2, "n_train": 512}}).budget == \
        {"epochs": 2, "n_train": 512, "n_test": 2_000}


def test_readme_states_the_recomputed_heldout_metrics():
    fc = _script("fit_calibration")
    table = fc.markdown(load_calibration())
    readme = (ROOT / "README.md").read_text()
    assert table in readme, "README's calibration tables differ from fit_calibration.markdown(); rerun it"


def test_split_is_by_model_config(shipped_grid):
    _, rows = shipped_grid
    by_config: dict[str, set[str]] = {}
    for row in rows:
        by_config.setdefault(row["config"], set()).add(split_of(row["config"]))
    assert all(len(s) == 1 for s in by_config.values())
    assert {"train", "heldout"} <= {next(iter(s)) for s in by_config.values()}


def test_relative_trainability_counts_diverged_seeds_as_chance():
    probe = {"classes": 10}
    rows = [{"config": "m", "optimizer": "adam", "acc": [0.8, 0.8], "probe": probe},
            {"config": "m", "optimizer": "adam", "acc": [0.8, "nan"], "probe": probe},
            {"config": "m", "optimizer": "adam", "acc": [0.1, 0.1], "probe": probe}]
    r = relative_trainability(rows)
    assert r[0] == pytest.approx(1.0) and r[1] == pytest.approx(0.5) and r[2] == pytest.approx(0.0)


# -- predictions on known cases ---------------------------------------------------------------

@pytest.fixture(scope="module")
def deep_relu():
    spec = MLPSpec(784, (64,) * 30, 10, "relu", 0.0)
    return initlab.probe(spec, schemes=["he_normal", "glorot_normal", "zeros"], n_inputs=64, jacobian=False)


def test_zeros_predict_unbroken_symmetry(deep_relu):
    for opt in OPTIMIZERS:
        p = predict(deep_relu["zeros"], optimizer=opt)
        assert p.verdict == "unbroken_symmetry" and not p.ok and p.score < 0.1
        assert "stall" in p.predicts


def test_he_on_30_layer_relu_is_ok(deep_relu):
    for opt in OPTIMIZERS:
        p = predict(deep_relu["he_normal"], optimizer=opt)
        assert p.ok, p
        assert "31 layers" in p.predicts and "train" in p.predicts


def test_xavier_on_deep_relu_with_sgd_predicts_a_stall(deep_relu):
    p = predict(deep_relu["glorot_normal"], optimizer="sgd")
    assert p.verdict in ("vanishing_signal", "vanishing_gradients")
    assert p.predicts.startswith("likely to stall with SGD at this depth (31 layers)")
    assert any("per layer" in r for r in p.reasons)
    # the same per-layer factor over 3 layers is harmless
    shallow = initlab.probe(MLPSpec(784, (64, 64), 10, "relu", 0.0), schemes=["glorot_normal"], n_inputs=64,
                            jacobian=False)
    assert predict(shallow["glorot_normal"], optimizer="sgd").score > p.score + 0.3


def _article_rows(shipped_grid):
    _, rows = shipped_grid
    r = relative_trainability(rows)
    article = [(row, ri) for row, ri in zip(rows, r) if row["config"] == ARTICLE]
    assert article
    return article


def _disagreements(article, optimizer: str) -> list[tuple[str, float, float]]:
    cal = load_calibration()
    return [(row["scheme"], round(ri, 3), predict_summary(row["probe"], optimizer=optimizer).score)
            for row, ri in article if row["optimizer"] == optimizer
            and predict_summary(row["probe"], optimizer=optimizer).ok != (ri >= cal.ok_fraction)]


def test_article_mlp_verdicts_agree_with_training(shipped_grid):
    """On the article's MLP (784-256-128-10 relu) with the article's optimizer (Adam), each
    scheme's calibrated verdict agrees with whether it trained in the grid (r >= ok_fraction)
    -- uniform_recipe, which the raw thresholds call a vanishing signal, included."""
    article = _article_rows(shipped_grid)
    cal = load_calibration()
    fresh = initlab.probe(MLPSpec(), schemes=["uniform_recipe"], n_inputs=256, jacobian=False)
    assert "vanishing_signal" in [v.kind for v in fresh["uniform_recipe"].verdicts]  # the raw measure
    for row, ri in article:
        if row["scheme"] == "uniform_recipe" and row["optimizer"] == "adam":
            assert ri >= cal.ok_fraction
            assert predict_summary(row["probe"], optimizer="adam").ok
            assert predict(fresh["uniform_recipe"], optimizer="adam").ok
    assert not _disagreements(article, "adam")


@pytest.mark.xfail(strict=False, reason="measured with the 974-row calibration (Jacobian spread refit): with "
                   "SGD, torch_default, uniform_recipe and normal(std=0.05) reach 0.58-0.72 of the best (below "
                   "the 0.8 of 'trains') and score 0.66, above SGD's ok threshold 0.59")
def test_article_mlp_verdicts_agree_with_training_under_sgd(shipped_grid):
    assert not _disagreements(_article_rows(shipped_grid), "sgd")


def test_bad_optimizer_is_one_line(deep_relu):
    with pytest.raises(InitlabError, match="unknown optimizer 'rmsprop'.*adam, sgd") as e:
        predict(deep_relu["he_normal"], optimizer="rmsprop")
    assert "\n" not in str(e.value)
    assert predict(deep_relu["he_normal"], optimizer="SGD").verdict == "ok"


def test_prediction_round_trip_and_bad_dict(deep_relu):
    p = predict(deep_relu["glorot_normal"], optimizer="adam")
    assert Prediction.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    assert p.verdict == "ok" or p.verdict in KINDS
    assert 0.0 <= p.score <= 1.0
    with pytest.raises(InitlabError, match="unknown verdict"):
        Prediction.from_dict({**p.to_dict(), "verdict": "sad"})
    with pytest.raises(InitlabError, match="malformed prediction"):
        Prediction.from_dict({"score": 1})


def test_calibration_file_errors(tmp_path):
    with pytest.raises(InitlabError, match="no calibration file"):
        load_calibration(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**load_calibration().to_dict(), "features": ["x"]}))
    with pytest.raises(InitlabError, match="refit"):
        load_calibration(bad)
    good = load_calibration().save(tmp_path / "c.json")
    assert load_calibration(good) == Calibration.from_dict(load_calibration().to_dict())


def test_summary_of_an_overflowing_probe_is_exploding():
    res = initlab.probe(MLPSpec(784, (64,) * 40, 10, "relu", 0.0), schemes=["normal(std=1.0)"], n_inputs=32,
                        jacobian=False)
    s = summarize(res.schemes[0])
    p = predict_summary(s, optimizer="adam")
    assert p.verdict in ("exploding_signal", "exploding_gradients") and p.score < 0.2


# -- where the calibrated verdicts show ---------------------------------------------------------

def test_probe_table_and_json_show_predicted_beside_measured(deep_relu, capsys):
    from initlab import cli

    text = deep_relu.table(optimizer="sgd")
    assert "predicted (sgd)" in text and "measured" in text
    assert "likely to stall with SGD" in text
    rc = cli.main(["probe", "--depth", "3", "--width", "32", "--schemes", "he_normal,zeros", "--n-inputs", "16",
                   "--no-jacobian", "--json", "--optimizer", "sgd"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    zeros = next(s for s in d["schemes"] if s["scheme"] == "zeros")
    assert zeros["predicted"]["optimizer"] == "sgd" and zeros["predicted"]["verdict"] == "unbroken_symmetry"
    assert "unbroken_symmetry" in [v["kind"] for v in zeros["verdicts"]]  # the measured ones stay
    assert cli.main(["probe", "--optimizer", "rms"]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "unknown optimizer" in err


def test_calibration_points_ship_with_the_calibration(shipped_grid):
    from initlab.probe.calibration import calibration_points

    _, rows = shipped_grid
    cal = load_calibration()
    held = calibration_points(split="heldout")
    assert len(held) == cal.heldout["rows"]
    assert len(calibration_points()) == len(rows)
    assert {p["optimizer"] for p in calibration_points("sgd")} == {"sgd"}
    with pytest.raises(InitlabError, match="split must be"):
        calibration_points(split="test")


def test_calibration_figure(shipped_grid):
    from initlab.probe.figures import calibration_figure

    _, rows = shipped_grid
    pts = heldout_points(load_calibration(), rows)
    assert pts and all(p["config"] and math.isfinite(p["score"]) for p in pts)
    fig = calibration_figure(pts)
    assert len(fig.axes) == len({p["optimizer"] for p in pts})
    with pytest.raises(InitlabError, match="no points"):
        calibration_figure([])


def test_study_report_probe_table_shows_predicted_beside_measured(deep_relu):
    from initlab.report.build import _probe_table

    html = _probe_table(deep_relu)
    assert "predicted (Adam)" in html and "predicted (SGD)" in html and "measured" in html
    assert "likely to stall with SGD at this depth (31 layers)" in html  # glorot_normal's tooltip
    assert "unbroken symmetry" in html
