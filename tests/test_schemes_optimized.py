"""GradInit and MetaInit (initlab.schemes.gradinit / metainit / optimized): the papers'
objectives, that the fit lowers them, what apply records, check, probe, a study, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

import initlab
from initlab.errors import InitlabError
from initlab.schemes import get_scheme
from initlab.schemes.metainit import gradient_quotient
from initlab.schemes.optimized import OptimizedRecord

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

BAD = "normal(std=0.5)"  # a 64-wide ReLU net under N(0, 0.25): the signal grows 8x in variance per layer


def _relu_net(depth: int = 6, width: int = 64, d_in: int = 20, classes: int = 5) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(d_in, width), nn.ReLU()]
    for _ in range(depth - 2):
        layers += [nn.Linear(width, width), nn.ReLU()]
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def _batch(n: int = 256, d_in: int = 20, classes: int = 5):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, d_in, generator=g)
    y = (x @ torch.randn(d_in, classes, generator=g)).argmax(1)
    return x, y


def _sgd_losses(model: nn.Module, x, y, steps: int = 10, lr: float = 0.05) -> list[float]:
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    out = []
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        out.append(loss.item())
    return out


GRADINIT = f"gradinit(base='{BAD}', iterations=60, lr=0.05)"
METAINIT = f"metainit(base='{BAD}', iterations=100)"


# --- the papers' definitions ----------------------------------------------------------------


def test_gradient_quotient_is_the_papers_definition_on_a_quadratic_loss() -> None:
    """On a linear model with squared loss the gradient is affine in theta, so
    g(theta - g(theta)) = g - H g exactly: GQ computed by evaluating the gradient at the stepped
    point by hand must equal initlab's (Dauphin & Schoenholz 2019, eq. 1)."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 3, generator=g, dtype=torch.float64), torch.randn(16, 2, generator=g, dtype=torch.float64)
    model = nn.Linear(3, 2).double()
    params = list(model.parameters())
    eps = 1e-5

    def grads_at(theta):
        w, b = theta
        loss = nn.functional.mse_loss(x @ w.T + b, y)
        return torch.autograd.grad(loss, theta)

    theta = [p.detach().clone().requires_grad_(True) for p in params]
    g0 = grads_at(theta)
    stepped = [(t - gi).detach().requires_grad_(True) for t, gi in zip(theta, g0)]
    g1 = grads_at(stepped)
    hand = sum(((b / (a + eps * torch.where(a >= 0, 1.0, -1.0))) - 1).abs().sum() for a, b in zip(g0, g1))
    hand = float(hand) / sum(p.numel() for p in params)
    ours = float(gradient_quotient(nn.functional.mse_loss(model(x), y), params, eps))
    assert ours == pytest.approx(hand, rel=1e-9)


def test_gradinit_objective_is_the_loss_after_one_normalized_step() -> None:
    """Zhu et al. 2021, Algorithm 1: at m = 1, with ||g|| <= gamma, the objective is
    L(theta - eta g/||g||_2) / eta (SGD) or L(theta - eta sign g) / eta (Adam), computed here by hand."""
    x, y = _batch(64)
    model = _relu_net(depth=3, width=16)
    initlab.apply(model, "he_normal", seed=0)
    names = [n for n, _ in model.named_parameters()]
    theta = [p.detach().clone().requires_grad_(True) for p in model.parameters()]
    for optimizer, eta in (("sgd", 0.1), ("adam", 0.01)):
        s = get_scheme(f"gradinit(optimizer={optimizer}, eta={eta}, gamma=1e6)")
        obj, gnorm, loss = s.objective(model, names, theta, x, y, x[:32], y[:32], graph=False)
        grads = torch.autograd.grad(nn.functional.cross_entropy(model(x), y), list(model.parameters()))
        if optimizer == "sgd":
            norm = math.sqrt(sum(float(g.square().sum()) for g in grads))
            step = [g / norm for g in grads]
        else:
            norm = sum(float(g.abs().sum()) for g in grads)
            step = [g.sign() for g in grads]
        assert float(gnorm) == pytest.approx(norm, rel=1e-4)
        with torch.no_grad():
            for p, d in zip(model.parameters(), step):
                p.sub_(eta * d)
            after = float(nn.functional.cross_entropy(model(x[:32]), y[:32]))
            for p, t in zip(model.parameters(), theta):
                p.copy_(t)
        assert float(obj) == pytest.approx(after / eta, rel=1e-4)
    # over the bound, the objective is the gradient norm itself (the projection step)
    s = get_scheme("gradinit(gamma=1e-9)")
    obj, gnorm, _ = s.objective(model, names, theta, x, y, x, y, graph=False)
    assert float(obj) == float(gnorm) > 1e-9


# --- the fit lowers the objective, and the loss after the first steps ---------------------------


@pytest.mark.parametrize("spec", [GRADINIT, METAINIT, f"gradinit(base='{BAD}', optimizer=adam, eta=0.001, "
                                                        "iterations=60, lr=0.05)"])
def test_the_objective_decreases_on_a_badly_scaled_net(spec: str) -> None:
    x, y = _batch()
    report = initlab.apply(_relu_net(), spec, seed=0, data=(x, y))
    o = report.optimized
    assert isinstance(o, OptimizedRecord) and o.labels == "data" and o.iterations == get_scheme(spec).params["iterations"]
    assert o.objective_after < 0.1 * o.objective_before, o
    assert o.loss_before > 100 and o.loss_after < 2.0  # ln 5 = 1.61: back to a sane loss
    assert len(o.tensors) == len(o.scales) and all(s < 1 for n, s in zip(o.tensors, o.scales) if "weight" in n)
    if o.scheme == "gradinit":
        assert all(s >= 0.01 - 1e-7 for n, s in zip(o.tensors, o.scales) if "weight" in n)  # alpha
        assert o.constraint_after < o.constraint_before


def test_both_lower_the_loss_after_the_first_steps_of_a_badly_scaled_net() -> None:
    """The Done-when evidence, small: 10 SGD steps from the bad init diverge or stay far above
    ln 5; from GradInit's or MetaInit's rescaling of the same draw they stay near or below it."""
    x, y = _batch()
    model = _relu_net()
    initlab.apply(model, BAD, seed=0)
    base = _sgd_losses(model, x, y)
    assert not all(math.isfinite(v) for v in base) or base[-1] > 10
    for spec in (GRADINIT, METAINIT):
        model = _relu_net()
        initlab.apply(model, spec, seed=0, data=(x, y))
        losses = _sgd_losses(model, x, y)
        assert all(math.isfinite(v) for v in losses) and losses[-1] < 1.7, (spec, losses)


def test_budget_seconds_and_random_labels() -> None:
    x, _ = _batch(64)
    report = initlab.apply(_relu_net(3, 16), "metainit(iterations=100000, max_seconds=0.2)", seed=0, data=x)
    o = report.optimized
    assert o.stopped_by == "max_seconds" and 1 <= o.iterations < 100000 and o.labels == "random"
    a = initlab.apply(_relu_net(3, 16), "gradinit(iterations=3)", seed=3, data=x).optimized
    b = initlab.apply(_relu_net(3, 16), "gradinit(iterations=3)", seed=3, data=x).optimized
    assert a.scales == pytest.approx(b.scales, rel=1e-5)  # the seed fixes draws, labels and batches


# --- the record, check, schemes CLI, probe and a study ---------------------------------------------


def test_record_round_trips_and_prints() -> None:
    from initlab.study.init_records import InitRecord, init_record

    x, y = _batch(64)
    model = _relu_net(3, 16)
    report = initlab.apply(model, "gradinit(iterations=5)", seed=0, data=(x, y))
    rec = init_record(report, model, (x, y))
    back = InitRecord.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert back.same(rec) and back.report.optimized == report.optimized
    assert "gradinit: 5 iterations" in str(report) and "scale" in str(report)
    assert rec.check is not None and rec.check.ok


def test_check_tests_the_base_law_up_to_a_scale() -> None:
    x, y = _batch(64)
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 5))
    initlab.apply(model, "metainit(iterations=5)", seed=0, data=(x.repeat(1, 13)[:, :256], y))
    report = initlab.check(model, "metainit")
    assert report.ok and report.layers[0].family == "scaled"
    with torch.no_grad():  # a uniform weight is no multiple of a normal one, whatever the scale
        model[0].weight.uniform_(-1, 1, generator=torch.Generator().manual_seed(0))
    bad = initlab.check(model, "metainit", identify=False)
    assert not bad.ok and "is not N(0" in bad.layers[0].reason


def test_schemes_cli_shows_formula_and_source(capsys) -> None:
    from initlab.cli import main

    for name, words in (("gradinit", ("Zhu et al. 2021", "gamma")), ("metainit", ("Dauphin & Schoenholz", "GQ"))):
        assert main(["schemes", name]) == 0
        out = capsys.readouterr().out
        assert all(w in out for w in words) and "needs   : a data batch" in out


def test_probe_runs_them_on_its_batch_with_labels() -> None:
    from initlab.engine.models import MLPSpec
    from initlab.probe import probe

    spec = MLPSpec(32, (32,) * 4, 10, "relu", 0.0)
    res = probe(spec, schemes=["gradinit(iterations=3)", "metainit(iterations=3)"], n_inputs=64)
    assert {s.scheme for s in res.schemes} == {"gradinit(iterations=3)", "metainit(iterations=3)"}


def test_a_study_fits_on_its_labelled_batch_and_stores_the_record(tmp_path: Path) -> None:
    from initlab.engine.inputs import TrainData
    from initlab.engine.models import MLPSpec
    from initlab.study import Store, StudyConfig, run_study
    from initlab.study.local import engine_train_group

    g = torch.Generator().manual_seed(0)
    yy = torch.randint(0, 10, (160,), generator=g)
    xx = 0.1 * torch.rand(160, 28, 28, generator=g)
    xx[torch.arange(160), 2 * yy] += 0.9
    data = TrainData(xx[:128], yy[:128], xx[128:], yy[128:])
    study = StudyConfig(name="opt", schemes=("gradinit(iterations=4)", "metainit(iterations=4)"), seeds=1,
                        models=(MLPSpec(hidden=(16,)),),
                        train={"epochs": 1, "batch_size": 32, "log_every": 4, "probe_size": 16,
                               "hist_bins": 5}).expand()
    with Store.create(tmp_path / "s") as store:
        assert run_study(study, store, engine_train_group(loader=lambda cell: data, lsuv_batch=64)).complete
        for cell in store.cells():
            rec = store.init_record(cell.key)
            o = rec.report.optimized
            assert o is not None and o.labels == "data" and o.iterations == 4, o
            assert rec.check is not None and rec.check.ok


# --- bad input: one line each -------------------------------------------------------------------


@pytest.mark.parametrize("call, match", [
    (lambda: initlab.apply(_relu_net(3, 8), "gradinit"), "data-dependent: pass data="),
    (lambda: initlab.apply(_relu_net(3, 8), "metainit", data="x"), "data must be a tensor"),
    (lambda: initlab.apply(_relu_net(3, 8), "metainit", data=(torch.randn(8, 20), torch.zeros(7).long())),
     "8 inputs but 7 targets"),
    (lambda: initlab.apply(_relu_net(3, 8), "gradinit", data=torch.randn(1, 20)), "at least 2 inputs"),
    (lambda: initlab.apply(nn.Linear(20, 1), "gradinit", data=torch.randn(8, 20)), "class scores"),
    (lambda: get_scheme("gradinit(base=lsuv)"), "per-weight, data-free"),
    (lambda: get_scheme("metainit(base=nope)"), "unknown scheme 'nope'"),
    (lambda: get_scheme("gradinit(optimizer=rmsprop)"), "unknown optimizer"),
    (lambda: get_scheme("metainit(momentum=1)"), "momentum must be in"),
    (lambda: get_scheme("gradinit(iterations=0)"), "iterations must be >= 1"),
    (lambda: initlab.apply(_relu_net(3, 8).requires_grad_(False), "metainit", data=_batch(8)), "unfreeze"),
])
def test_bad_input_is_one_line(call, match: str) -> None:
    with pytest.raises(InitlabError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_check_cli_checks_saved_weights_against_them(tmp_path: Path, capsys) -> None:
    """``initlab check --scheme gradinit --weights FILE``: the base law up to a scale per
    tensor (no data needed); ``--init gradinit`` is refused like lsuv (it needs a batch)."""
    from initlab.cli import main
    from initlab.engine.models import MLPSpec, build_mlp

    model = build_mlp(MLPSpec())  # the check command's default model: the article's MLP
    g = torch.Generator().manual_seed(0)
    initlab.apply(model, "gradinit(iterations=3)", seed=0,
                  data=(torch.rand(32, 784, generator=g), torch.randint(0, 10, (32,), generator=g)))
    torch.save(model.state_dict(), tmp_path / "w.pt")
    assert main(["check", "--scheme", "gradinit", "--weights", str(tmp_path / "w.pt")]) == 0
    assert "gradinit: all layers conform" in capsys.readouterr().out
    assert main(["check", "--scheme", "he_normal", "--init", "metainit"]) == 2
    assert "--init metainit is data-dependent" in capsys.readouterr().err


def test_probe_cli_and_a_real_run(tmp_path: Path, capsys) -> None:
    """``initlab probe --schemes gradinit,...`` and, with the real data, ``initlab run`` of a
    small study whose cells are fitted on their labelled batch (the stored record says so)."""
    import os

    from initlab.cli import main
    from initlab.study import Store

    assert main(["probe", "--depth", "4", "--width", "32", "--in-features", "16", "--schemes",
                 "gradinit(iterations=3),metainit(iterations=3)", "--n-inputs", "64", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [s["scheme"] for s in d["schemes"]] == ["gradinit(iterations=3)", "metainit(iterations=3)"]
    if not os.environ.get("INITLAB_DATA_DIR"):
        pytest.skip("INITLAB_DATA_DIR is not set")
    out = tmp_path / "run"
    assert main(["run", "seed", "--schemes", "gradinit(iterations=5),metainit(iterations=5)", "--seeds", "1",
                 "--epochs", "1", "--limit-train", "512", "--limit-val", "256", "--out", str(out),
                 "--no-report", "--quiet"]) == 0
    capsys.readouterr()
    with Store.open(out) as store:
        recs = [store.init_record(c.key) for c in store.cells()]
    assert sorted(r.report.optimized.scheme for r in recs) == ["gradinit", "metainit"]
    assert all(r.report.optimized.labels == "data" and r.check.ok for r in recs)
