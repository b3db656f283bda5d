"""muP (initlab.schemes.mup): the init and lr multipliers against TP5 Table 3 relative to a
base width, the trainers' per-parameter learning rates, and mup in run / probe / check."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

import initlab
from initlab.engine.adam import StackedAdam
from initlab.engine.families import spec_from_dict
from initlab.engine.multipliers import has_multipliers, lr_multipliers, param_groups, stack_scales
from initlab.engine.sgd import StackedSGD
from initlab.errors import InitlabError
from initlab.schemes import get_scheme
from initlab.structure import find_structure

#: an MLP 784 -> w -> w -> 10 without dropout: Linear modules 1 (input), 3 (hidden), 5 (readout)


def _mlp(width: int = 512, seed: int = 0) -> torch.nn.Module:
    return spec_from_dict({"hidden": [width, width], "dropout": 0.0}).build(seed)


def test_table3_init_and_multipliers_mlp() -> None:
    """width 512, base 128: m = 4. Input/hidden weights He N(0, 2/fan_in), readout 0, and the
    relative Table 3: Adam input 1, hidden 1/m, readout 1/m, biases 1; SGD input m, hidden 1,
    readout 1/m, hidden biases m, readout bias 1."""
    model = _mlp(512)
    report = initlab.apply(model, "mup", seed=0)
    rows = {r.name: r for r in report.layers}
    for name, fan_in in (("1.weight", 784), ("3.weight", 512)):
        assert rows[name].expected_std == pytest.approx(math.sqrt(2.0 / fan_in))
        assert rows[name].realized_std == pytest.approx(math.sqrt(2.0 / fan_in), rel=0.02)
    assert torch.count_nonzero(model[5].weight) == 0 and torch.count_nonzero(model[5].bias) == 0
    assert rows["5.weight"].role == "readout: 0 (muP)"
    assert any("m = 4" in n for n in report.notes)
    adam = lr_multipliers(model, "mup", "adam")
    sgd = lr_multipliers(model, "mup", "sgd")
    assert adam == {"1.weight": 1.0, "1.bias": 1.0, "3.weight": 0.25, "3.bias": 1.0, "5.weight": 0.25,
                    "5.bias": 1.0}
    assert sgd == {"1.weight": 4.0, "1.bias": 4.0, "3.weight": 1.0, "3.bias": 4.0, "5.weight": 0.25,
                   "5.bias": 1.0}


def test_base_width_reduces_to_sp() -> None:
    """At width == base_width every multiplier is 1; with readout=scaled the init is the base
    scheme's, draw for draw (same generator order); readout=scaled at m = 4 has Var / m."""
    a, b = _mlp(128), _mlp(128)
    initlab.apply(a, "mup(readout=scaled)", seed=3)
    initlab.apply(b, "he_normal", seed=3)
    for (na, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=1e-7, msg=na)
    for opt in ("adam", "sgd"):
        assert set(lr_multipliers(a, "mup", opt).values()) == {1.0}
    z = _mlp(128)
    initlab.apply(z, "mup", seed=3)  # the default zero readout: the one difference from SP at m = 1
    assert torch.count_nonzero(z[5].weight) == 0
    torch.testing.assert_close(z[3].weight, b[3].weight, rtol=0, atol=1e-7)
    wide = _mlp(512)
    rep = initlab.apply(wide, "mup(readout=scaled)", seed=0)
    out = next(r for r in rep.layers if r.name == "5.weight")
    assert out.expected_std == pytest.approx(math.sqrt(2.0 / 512 / 4))  # (2/fan_in) / m
    assert out.realized_std == pytest.approx(out.expected_std, rel=0.05)


@pytest.mark.parametrize("d, inp, out, hidden, vector", [
    ({"kind": "cnn", "depth": 3, "channels": 64}, "conv1", "head", "conv2", None),
    ({"kind": "resnet", "depth": 2, "width": 64, "norm": "batch"}, "stem.0", "head", "blocks.1.branch.3",
     "blocks.0.branch.1"),
])
def test_conv_families(d: dict, inp: str, out: str, hidden: str, vector: str | None) -> None:
    """Channels are the width: m = 64 / 16 = 4 for the first conv's 64 channels."""
    model = spec_from_dict(d).build(0)
    initlab.apply(model, "mup(base_width=16)", seed=0)
    assert initlab.check(model, "mup(base_width=16)").ok
    adam = lr_multipliers(model, "mup(base_width=16)", "adam")
    sgd = lr_multipliers(model, "mup(base_width=16)", "sgd")
    assert (adam[f"{inp}.weight"], sgd[f"{inp}.weight"]) == (1.0, 4.0)
    assert (adam[f"{hidden}.weight"], sgd[f"{hidden}.weight"]) == (0.25, 1.0)
    assert (adam[f"{out}.weight"], sgd[f"{out}.weight"]) == (0.25, 0.25)
    assert (adam[f"{out}.bias"], sgd[f"{out}.bias"]) == (1.0, 1.0)
    if vector:  # a BatchNorm's gain: vector-like, as input weights
        assert (adam[f"{vector}.weight"], sgd[f"{vector}.weight"]) == (1.0, 4.0)
    assert set(adam) == {n for n, _ in model.named_parameters()}
    assert torch.count_nonzero(dict(model.named_parameters())[f"{out}.weight"]) == 0


def test_check_tells_mup_from_sp_and_refusals() -> None:
    model = _mlp(256)
    initlab.apply(model, "he_normal", seed=0)
    rep = initlab.check(model, "mup")
    assert not rep.ok  # a He readout is not muP's zero readout
    initlab.apply(model, "mup", seed=0)
    assert initlab.check(model, "mup").ok
    assert lr_multipliers(model, "he_normal", "adam") is None and not has_multipliers("he_normal")
    assert has_multipliers("mup")
    with pytest.raises(InitlabError, match="adam and sgd"):
        lr_multipliers(model, "mup", "rmsprop")
    linear = spec_from_dict({"kind": "linear", "depth": 1}).build(0)
    with pytest.raises(InitlabError, match="hidden width") as e:
        initlab.apply(linear, "mup", seed=0)
    assert "\n" not in str(e.value)
    with pytest.raises(InitlabError, match="base"):
        get_scheme("mup(base=zeros)")
    with pytest.raises(InitlabError):
        get_scheme("mup(base_width=0)")


def test_param_groups_torch_adam() -> None:
    """torch.optim.Adam on param_groups: each parameter's first step is lr * factor * sign(g)
    (Adam's first step is +-lr per entry, up to eps)."""
    model = _mlp(512)
    initlab.apply(model, "mup(readout=scaled)", seed=0)
    groups = param_groups(model, "mup", lr=1e-3, optimizer="adam")
    assert sorted(g["lr"] for g in groups) == pytest.approx([2.5e-4, 1e-3])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.Adam(groups, eps=1e-12)
    x = torch.randn(16, 784, generator=torch.Generator().manual_seed(0))
    torch.nn.functional.cross_entropy(model(x), torch.arange(16) % 10).backward()
    opt.step()
    mult = lr_multipliers(model, "mup", "adam")
    for n, p in model.named_parameters():
        step = (p.detach() - before[n]).abs()
        moved = step[step > 0]
        assert moved.numel() > 0, n
        torch.testing.assert_close(moved, torch.full_like(moved, 1e-3 * mult[n]), rtol=1e-3, atol=0)
    assert param_groups(model, "he_normal", lr=0.1, optimizer="sgd")[0]["lr"] == 0.1


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_stacked_optimizers_scale_like_torch_param_groups(kind: str) -> None:
    """StackedAdam / StackedSGD with lr_scale = torch.optim with parameter groups at lr x factor,
    for two stacked models with different factors (float32 tolerance)."""
    g = torch.Generator().manual_seed(1)
    shapes = [(5, 3), (5,)]
    per_model = [{"w": 0.25, "b": 1.0}, {"w": 2.0, "b": 0.5}]
    init = [[torch.randn(s, generator=g) for s in shapes] for _ in range(2)]
    grads = [[[torch.randn(s, generator=g) for s in shapes] for _ in range(2)] for _ in range(3)]
    stacked = [torch.stack([init[k][i] for k in range(2)]).contiguous() for i in range(2)]
    sgrads = [torch.zeros_like(p) for p in stacked]
    scale = stack_scales(["w", "b"], per_model, torch.device("cpu"))
    opt = (StackedAdam(stacked, sgrads, lr=0.01, betas=(0.9, 0.999), eps=1e-8, lr_scale=scale) if kind == "adam"
           else StackedSGD(stacked, sgrads, lr=0.1, momentum=0.9, lr_scale=scale))
    refs = []
    for k in range(2):
        ps = [torch.nn.Parameter(t.clone()) for t in init[k]]
        groups = [{"params": [ps[0]], "lr": (0.01 if kind == "adam" else 0.1) * per_model[k]["w"]},
                  {"params": [ps[1]], "lr": (0.01 if kind == "adam" else 0.1) * per_model[k]["b"]}]
        refs.append((ps, torch.optim.Adam(groups, betas=(0.9, 0.999), eps=1e-8) if kind == "adam"
                     else torch.optim.SGD(groups, momentum=0.9)))
    for step in grads:
        for i in range(2):
            sgrads[i].copy_(torch.stack([step[k][i] for k in range(2)]))
        opt.step(torch.zeros(2))
        for k, (ps, o) in enumerate(refs):
            for i, p in enumerate(ps):
                p.grad = step[k][i].clone()
            o.step()
    for k, (ps, _) in enumerate(refs):
        for i, p in enumerate(ps):
            torch.testing.assert_close(stacked[i][k], p.detach(), rtol=1e-5, atol=1e-6)
    assert stack_scales(["w"], [None, {"w": 1.0}], torch.device("cpu")) is None
    with pytest.raises(InitlabError, match="no learning-rate multiplier"):
        stack_scales(["w"], [{"b": 1.0}], torch.device("cpu"))


def test_train_generic_applies_multipliers() -> None:
    """The generic trainer: factor 0 freezes a parameter; SGD with all factors 2 is SGD at 2 lr."""
    from initlab.engine.config import TrainConfig
    from initlab.engine.generic import train_generic
    from initlab.engine.inputs import TrainData

    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(96, 28, 28, generator=g), torch.randint(0, 10, (96,), generator=g)
    data = TrainData(x, y, x[:32], y[:32])
    spec = spec_from_dict({"hidden": [32], "dropout": 0.0})
    models = [spec.build(0), spec.build(0)]
    for m in models:
        initlab.apply(m, "mup(base_width=16)", seed=0)
    names = [n for n, _ in models[0].named_parameters()]
    cfg = dict(epochs=1, batch_size=32, optimizer="sgd", lr=0.05, log_every=0)
    frozen = {n: (0.0 if n == "1.weight" else 1.0) for n in names}
    twice = {n: 2.0 for n in names}
    res = train_generic(models, [0, 0], data, TrainConfig(**cfg), input_shape=(784,),
                        lr_multipliers=[frozen, twice])
    ref = train_generic([models[1]], [0], data, TrainConfig(**{**cfg, "lr": 0.1}), input_shape=(784,))
    init = dict(models[0].named_parameters())
    assert torch.equal(res[0].final_state["1.weight"], init["1.weight"].detach())
    assert not torch.equal(res[0].final_state["3.weight"], init["3.weight"].detach())
    for n in names:
        torch.testing.assert_close(res[1].final_state[n], ref[0].final_state[n], rtol=1e-4, atol=1e-5)
    with pytest.raises(InitlabError, match="one per model"):
        train_generic(models, [0, 0], data, TrainConfig(**cfg), input_shape=(784,), lr_multipliers=[frozen])


def test_probe_accepts_mup() -> None:
    spec = spec_from_dict({"hidden": [64, 64], "dropout": 0.0})
    res = initlab.probe(spec, None, ["he_normal", "mup(base_width=32)"], n_inputs=32, jacobian=False)
    rows = {r["scheme"]: r for r in res.to_dict()["schemes"]}
    assert set(rows) == {"he_normal", "mup(base_width=32)"}
    mup = rows["mup(base_width=32)"]["layers"]
    assert mup[-1]["pre_std"] == 0.0 and mup[0]["pre_std"] == pytest.approx(rows["he_normal"]["layers"][0]["pre_std"])


def test_schemes_lists_mup() -> None:
    from initlab.cli import main

    assert main(["schemes", "mup"]) == 0


@pytest.mark.data
def test_run_mup_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``initlab run`` with mup on a tiny slice: the MLP group goes to the generic trainer
    (logged), trains, and stores mup's init report with its notes and a passing check."""
    if not os.environ.get("INITLAB_DATA_DIR"):
        pytest.skip("INITLAB_DATA_DIR not set")
    from initlab.cli import main
    from initlab.study.store import Store

    out = tmp_path / "run"
    rc = main(["run", "smoke", "--schemes", "he_normal,mup", "--seeds", "1", "--epochs", "1", "--limit-train",
               "256", "--limit-val", "128", "--out", str(out), "--no-report", "--no-download", "--quiet",
               "--no-probe"])
    err = capsys.readouterr().err
    assert rc == 0, err[-2000:]
    assert "generic trainer" in err and "muP" in err
    with Store.open(out, readonly=True) as store:
        cells = {c.key: c for c in store.cells()}
        assert {c.status for c in cells.values()} == {"done"}
        by_scheme = {cells[k].scheme: r for k, r in store.init_records().items()}
        assert any(n.startswith("mup: width") for n in by_scheme["mup"].report.notes)
        assert by_scheme["mup"].check is not None and by_scheme["mup"].check.ok
        assert len(store.epochs(next(k for k, c in cells.items() if c.scheme == "mup"))) == 2


def test_check_cli_accepts_mup(tmp_path: Path) -> None:
    """``initlab check FILE:fn --init mup --scheme mup`` conforms (exit 0); a He-initialized
    readout does not (exit 1)."""
    from initlab.cli import main

    f = tmp_path / "m.py"
    f.write_text("import torch\n\ndef build():\n    return torch.nn.Sequential(torch.nn.Flatten(), "
                 "torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(), "
                 "torch.nn.Linear(256, 10))\n")
    assert main(["check", f"{f}:build", "--init", "mup", "--scheme", "mup"]) == 0
    assert main(["check", f"{f}:build", "--init", "he_normal", "--scheme", "mup"]) == 1
