"""initlab.recommend and `initlab recommend`: candidates, ranking, the record and its JSON,
the torch.nn.init lines (checked with initlab.check), the confirming study, bad inputs."""

from __future__ import annotations

import json
import os
import textwrap

import pytest
import torch
from torch import nn

import initlab
from initlab.cli import main
from initlab.engine.convnets import CNNSpec, ResNetSpec
from initlab.engine.models import MLPSpec
from initlab.errors import InitlabError
from initlab.probe import calibration
from initlab.recommender import Recommendation, Trained, candidate_schemes, recommend, torch_lines, within_spread
from initlab.recommender.torch_code import weight_lines

def _shipped_calibration() -> bool:
    try:
        calibration.load_calibration()
    except (InitlabError, OSError, FileNotFoundError):
        return False
    return True


@pytest.fixture(autouse=True)
def calibrated(monkeypatch):
    """TEMPORARY fallback while the package ships no calibration.json: a hand-set score
    model (every failure feature lowers the score) so that the ranking machinery can be
    tested. With the shipped calibration present this fixture does nothing."""
    if not _shipped_calibration():
        weights = (-2.0, -2.0, -1.0, -1.0, -3.0, -3.0, -3.0, -1.0)
        fake = calibration.Calibration(fits={o: calibration.OptimizerFit(3.0, weights, 0.5)
                                             for o in calibration.OPTIMIZERS}, grid={"rows": 0})
        monkeypatch.setattr(calibration, "_shipped", lambda: fake)
    yield


def _mlp(depth: int = 2, width: int = 32) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    n = 784
    for _ in range(depth):
        layers += [nn.Linear(n, width), nn.ReLU()]
        n = width
    layers.append(nn.Linear(n, 10))
    return nn.Sequential(*layers)


def _cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


# -- candidates -------------------------------------------------------------------------------

def test_candidates_follow_the_structure():
    mlp, skipped, desc = candidate_schemes(_mlp())
    assert {"he_normal", "glorot_uniform", "torch_default", "lsuv", "orthogonal", "uniform_recipe"} <= set(mlp)
    assert not {"fixup", "skipinit", "zero_init", "delta_orthogonal", "gradinit", "mup"} & set(mlp)
    assert dict(skipped)["fixup"].startswith("needs residual branches")
    assert desc == "no residual branches"
    cnn, _, desc = candidate_schemes(CNNSpec(depth=2, channels=4).build())
    assert "delta_orthogonal" in cnn and "fixup" not in cnn and "convolutions" in desc
    res, _, desc = candidate_schemes(ResNetSpec(depth=2, width=4).build())
    assert {"fixup", "skipinit", "zero_init", "delta_orthogonal"} <= set(res)
    assert "2 residual branches" in desc


# -- ranking and the record ----------------------------------------------------------------------

def test_recommend_ranks_by_score_and_round_trips():
    model = _mlp()
    before = [p.detach().clone() for p in model.parameters()]
    rec = initlab.recommend(model)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # never modified
    scores = [c.score for c in rec.candidates]
    assert scores == sorted(scores, reverse=True)
    assert rec.inputs == "gaussian" and rec.input_shape == (784,)
    assert rec.best.scheme == rec.schemes[0]
    assert rec["zeros"].prediction.verdict != "ok" and rec["zeros"].score < rec.best.score
    d = json.loads(json.dumps(rec.to_dict(), allow_nan=False))
    assert Recommendation.from_dict(d).to_dict() == d
    text = str(rec)
    assert rec.best.scheme in text and "initlab.apply(model" in text and "torch.nn.init" in text
    html = rec._repr_html_()
    assert "<table" in html and rec.best.scheme in html
    with pytest.raises(InitlabError, match="malformed recommendation"):
        Recommendation.from_dict({"model": "x"})


def test_initlab_recommend_is_the_function_after_importing_the_package():
    import initlab.recommender.record  # noqa: F401 - binds initlab.recommender, not initlab.recommend

    assert callable(initlab.recommend)
    rec = initlab.recommend(MLPSpec(784, (16,), 10, "tanh", 0.0), schemes="he_normal, zeros", optimizer="sgd")
    assert set(rec.schemes) == {"he_normal", "zeros"} and rec.optimizer == "sgd"
    assert rec.schemes[0] == "he_normal"


def test_equal_scores_keep_a_deterministic_order():
    rec = recommend(_mlp(), schemes=["he_normal", "he_normal(mode=fan_out)", "glorot_normal"])
    again = recommend(_mlp(), schemes=["he_normal", "he_normal(mode=fan_out)", "glorot_normal"])
    assert rec.schemes == again.schemes


def test_structure_aware_scheme_on_a_model_without_it_is_one_line():
    with pytest.raises(InitlabError, match="fixup needs residual branches"):
        recommend(_mlp(), schemes=["fixup"])


# -- code() ----------------------------------------------------------------------------------------

TORCH_SCHEMES = ["zeros", "ones", "uniform_0_1", "uniform_centered", "uniform_recipe", "normal_recipe",
                 "keras_default", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
                 "lecun_normal", "he_truncated_normal", "glorot_truncated_normal", "lecun_truncated_normal",
                 "flax_default", "orthogonal", "torch_default", "he_normal(mode=fan_out)",
                 "he_uniform(nonlinearity=tanh)", "he_normal(nonlinearity=gelu)", "glorot_normal(gain=2)",
                 "normal(mean=0, std=0.02)", "uniform(a=-0.1, b=0.1)",
                 "variance_scaling(scale=2, mode=fan_avg, distribution=uniform)"]


@pytest.mark.parametrize("scheme", TORCH_SCHEMES)
@pytest.mark.parametrize("make", [_mlp, _cnn], ids=["mlp", "cnn"])
def test_torch_lines_draw_the_scheme(scheme, make):
    model = make()
    types = tuple(dict.fromkeys(type(m).__name__ for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))))
    lines = torch_lines(scheme, types)
    assert lines is not None
    torch.manual_seed(0)
    exec("\n".join(lines), {"model": model})  # noqa: S102 - the generated lines, run as a user would
    report = initlab.check(model, scheme)
    assert report.ok, (scheme, [str(f) for f in report.failures])


def test_code_names_schemes_without_a_torch_equivalent():
    for scheme in ("lsuv", "fixup", "zero_init", "skipinit", "delta_orthogonal", "gradinit", "mup"):
        assert weight_lines(scheme) is None
    rec = recommend(_mlp(), schemes=["lsuv", "he_normal"])
    code = rec.code("lsuv")
    assert 'initlab.apply(model, "lsuv", seed=0, data=x[:256])' in code
    assert "no torch.nn.init equivalent" in code
    assert 'kaiming_normal_(w, nonlinearity="relu")' in rec.code("he_normal")
    assert torch_lines("he_normal", ("Linear", "Embedding"))[-1].startswith("# initlab.apply also initializes")


# -- the spread ----------------------------------------------------------------------------------

def test_within_spread():
    best = Trained((0.80, 0.84))  # mean 0.82, sd 0.028
    assert within_spread(Trained((0.80, 0.80)), best)
    assert not within_spread(Trained((0.70, 0.71)), best)
    assert within_spread(best, best)
    assert not within_spread(Trained((), diverged=2), best)
    assert Trained((0.5,)).spread == 0.0 and "diverged" in Trained((), diverged=2).text()


# -- CLI -----------------------------------------------------------------------------------------

@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "nets.py"
    path.write_text(textwrap.dedent("""
        from torch import nn

        def cnn():
            return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                 nn.Flatten(), nn.Linear(4, 10))

        def raises():
            raise RuntimeError("boom")

        def not_a_model():
            return 3

        def no_layers():
            return nn.Sequential(nn.Flatten(), nn.ReLU())
    """))
    (tmp_path / "broken.py").write_text("import a_module_that_does_not_exist\n")
    return path


def test_cli_user_model_json(model_file, capsys):
    assert main(["recommend", f"{model_file}:cnn", "--input-shape", "1,28,28", "--json",
                 "--schemes", "delta_orthogonal,he_normal,zeros"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["input_shape"] == [1, 28, 28] and d["layer_types"] == ["Conv2d", "Linear"]
    assert {c["scheme"] for c in d["candidates"]} == {"delta_orthogonal", "he_normal", "zeros"}
    assert d["best"] == d["candidates"][0]["scheme"] and "initlab.apply" in d["code"]


def test_cli_presets(capsys):
    assert main(["recommend", "--depth", "3", "--width", "16", "--activation", "tanh", "--optimizer", "sgd",
                 "--schemes", "glorot_normal,zeros,uniform_recipe"]) == 0
    out = capsys.readouterr().out
    assert "mlp-3x16-tanh" in out and "with sgd" in out and "# with torch.nn.init only" in out
    assert main(["recommend", "--family", "resnet", "--depth", "1", "--width", "4", "--json",
                 "--schemes", "fixup,he_normal"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["model"].startswith("resnet-") and {c["scheme"] for c in d["candidates"]} == {"fixup", "he_normal"}


@pytest.mark.parametrize("argv, message", [
    (["{f}:raises", "--input-shape", "1,28,28"], "raised RuntimeError: boom"),
    (["{f}:not_a_model", "--input-shape", "1,28,28"], "returned int, not a torch nn.Module"),
    (["{f}:no_layers", "--input-shape", "1,28,28"], "has no layer initlab initializes"),
    (["{d}/broken.py:build", "--input-shape", "1,28,28"], "ModuleNotFoundError"),
    (["{d}/missing.py:build", "--input-shape", "1,28,28"], "does not exist"),
    (["{f}:cnn", "--input-shape", "3,5"], "failed on inputs of shape [3, 5]"),
    (["{f}:cnn"], "needs its input shape"),
    (["{f}:cnn", "--input-shape", "1,28,28", "--depth", "3"], "--depth only shapes the preset models"),
    (["--input-shape", "3,32,32"], "does not fit model mlp-"),
    (["--optimizer", "rmsprop"], "unknown optimizer 'rmsprop'"),
    (["--schemes", "he_nromal"], "he_normal"),
    (["--top", "0"], "top must be an integer >= 1"),
    (["--norm", "batch"], "--norm shapes the cnn and resnet presets"),
])
def test_cli_bad_inputs_are_one_line_exit_2(model_file, tmp_path, capsys, argv, message):
    out = tmp_path / "kept"
    argv = [a.format(f=model_file, d=model_file.parent) for a in argv]
    assert main(["recommend", *argv, "--confirm", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()  # nothing written


# -- the confirming study (real data, tiny) -------------------------------------------------------

@pytest.mark.slow
@pytest.mark.data
@pytest.mark.skipif(not os.environ.get("INITLAB_DATA_DIR"), reason="needs INITLAB_DATA_DIR")
def test_confirm_trains_the_top_and_torch_default(tmp_path):
    rec = recommend(MLPSpec(784, (32, 32), 10, "relu", 0.0), "fashion-mnist", confirm_epochs=1, top=2, seeds=2,
                    limit=512, limit_val=256, out=tmp_path / "run", schemes=["he_normal", "zeros", "glorot_normal"])
    trained = {c.scheme: c.trained for c in rec.candidates if c.trained is not None}
    assert set(trained) == {*rec.schemes[:2], "torch_default"}
    assert all(t.n == 2 for t in trained.values())
    assert rec.confirmation is not None and rec.confirmation.seeds == (0, 1)
    assert (tmp_path / "run" / "initlab.sqlite").is_file()
    assert "trained: 1 epoch(s) on fashion-mnist" in str(rec)
    d = json.loads(json.dumps(rec.to_dict(), allow_nan=False))
    assert Recommendation.from_dict(d).to_dict() == d


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.skipif(not os.environ.get("INITLAB_DATA_DIR"), reason="needs INITLAB_DATA_DIR")
def test_confirm_a_module_and_the_cli(tmp_path, capsys):
    rec = recommend(_cnn(), "fashion-mnist", confirm_epochs=1, top=1, seeds=1, limit=128, limit_val=64,
                    schemes=["he_normal"])
    assert rec.input_shape == (1, 28, 28) and rec.confirmation.run_dir == ""  # a temporary study, removed
    assert rec["he_normal"].trained.n == 1 and rec["torch_default"].trained.n == 1
    assert main(["recommend", "--depth", "2", "--width", "16", "--data", os.environ["INITLAB_DATA_DIR"],
                 "--confirm", "1", "--limit", "256", "--limit-val", "128", "--seeds", "1", "--top", "1",
                 "--schemes", "he_normal,zeros", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["confirmation"]["dataset"] == "fashion-mnist"
    assert [c["trained"] is not None for c in d["candidates"]].count(True) == 2


# -- the report's recommendation section ------------------------------------------------------

def test_report_section_ranks_each_probed_group_beside_its_training(tmp_path):
    from initlab.probe import ProbeResult
    from initlab.report.build import build_report
    from initlab.report.recommendation import rank, within_spread as rule
    from initlab.report.synthetic import synthetic_run

    run = synthetic_run(tmp_path, schemes=("zeros", "he_normal"), seeds=(0, 1), widths=(16, 8, 10), epochs=1,
                        model="mlp-a")
    probe = initlab.probe(MLPSpec(16, (8,), 10, dropout=0.0), schemes=["zeros", "he_normal"], n_inputs=16,
                          jacobian=False)
    run.probes = {("mlp-a", "fashion-mnist"): ProbeResult.from_dict(json.loads(probe.to_json()))}
    text = build_report(tmp_path, data=run).read_text()
    body = text[text.index('<section id="recommendation"'):]
    body = body[:body.index("</section>")]
    assert [sp.scheme for sp, _ in rank(probe, "adam")][0] == "he_normal"
    assert body.index(">he_normal<") < body.index(">zeros<")
    assert "Top-ranked <b>he_normal</b>" in body and "seed-to-seed spread" in body
    assert "g1_recommend_calibration.png" in body
    assert (tmp_path / "figures" / "g1_recommend_calibration.png").is_file()
    assert "recommend_calibration_grid.png" in body  # the calibration's held-out grid
    assert rule([0.8, 0.8], [0.8, 0.84]) and not rule([0.5], [0.8, 0.84])


def test_report_section_of_a_group_without_probe_or_training(tmp_path):
    from initlab.report.build import _Ctx
    from initlab.report.recommendation import section
    from initlab.report.synthetic import synthetic_run

    run = synthetic_run(tmp_path, schemes=("zeros", "he_normal"), seeds=(0,), widths=(16, 8, 10), epochs=1,
                        model="mlp-a", statuses={("zeros", 0): "pending", ("he_normal", 0): "pending"})
    (tmp_path / "figures").mkdir()
    assert "No probe was recorded" in section(_Ctx(run, tmp_path / "figures"))
    run.probes = {("mlp-a", "fashion-mnist"): initlab.probe(MLPSpec(16, (8,), 10, dropout=0.0),
                                                            schemes=["zeros", "he_normal"], n_inputs=16,
                                                            jacobian=False)}
    body = section(_Ctx(run, tmp_path / "figures"))
    assert "he_normal" in body and "Top-ranked" not in body and "g1_recommend" not in body  # nothing trained yet


def test_weight_histograms_of_a_few_ulps_range():
    """A trained constant init (``ones``) keeps weights within a few float32 ulps of 1, which
    float32 cannot split into 40 bins; the recorder bins them in float64."""
    import numpy as np

    from initlab.engine.recorders import _rows_stats

    row = np.float32(1.0) + np.arange(5, dtype=np.float32) * np.float32(1.2e-7)
    (d,) = _rows_stats(row.reshape(1, -1), 40)
    assert sum(d["counts"]) == 5 and len(d["edges"]) == 41


# -- done-when, small versions: the top-ranked scheme trains within the spread of the best -------

SMALL_SCHEMES = ("he_normal", "glorot_normal", "lecun_normal", "orthogonal", "torch_default", "lsuv",
                 "uniform_recipe", "zeros", "uniform_0_1")
#: Trained as the full-size evidence (benchmarks/evidence_recommend.py) is: at the budget the
#: shipped calibration predicts for (its grid's epochs, training and test images: 1 epoch,
#: 4,000 / 2,000) with 3 seeds. Measured 2026-12-03 (2-core AMD EPYC): all five hold; the
#: closest are the article MLP (top lsuv 64.2 +- 3.1% vs best orthogonal 65.5 +- 1.5%) and the
#: CNN (top lsuv 12.8 +- 2.4% vs glorot_normal 15.8 +- 4.1%: at 32 Adam steps a small CNN barely
#: leaves chance, so its case is weak). With half that budget and 2 seeds, as this test first
#: trained, the article MLP missed by 0.1 point (lsuv 54.0 +- 4.3% vs orthogonal 58.4 +- 1.9%).
#: All five also hold under the kernel settings .ci/run gives tests/test_engine.py.
SMALL_SEEDS = 3
SMALL_MODELS = {
    "article-mlp": (MLPSpec(784, (64, 32), 10, "relu", 0.2), ()),
    "mlp-30-relu": (MLPSpec(784, (32,) * 30, 10, "relu", 0.0), ()),
    "mlp-50-tanh": (MLPSpec(784, (32,) * 50, 10, "tanh", 0.0), ()),
    "cnn": (CNNSpec(depth=4, channels=8, downsample=(1, 2)), ("delta_orthogonal",)),
    "resnet-nonorm": (ResNetSpec(depth=2, width=8, norm="none", downsample=(1, 2)), ("fixup", "skipinit")),
}


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.skipif(not os.environ.get("INITLAB_DATA_DIR"), reason="needs INITLAB_DATA_DIR")
@pytest.mark.parametrize("name", list(SMALL_MODELS))
def test_small_versions_top_ranked_trains_within_the_spread_of_the_best(name):
    spec, extra = SMALL_MODELS[name]
    schemes = SMALL_SCHEMES + extra
    budget = calibration.load_calibration().budget
    rec = recommend(spec, "fashion-mnist", confirm_epochs=budget["epochs"], top=len(schemes), seeds=SMALL_SEEDS,
                    limit=budget["n_train"], limit_val=budget["n_test"], schemes=schemes)
    best = rec.best_trained()
    assert best is not None and all(c.trained is not None for c in rec.candidates)
    assert within_spread(rec.best.trained, best.trained), str(rec)
