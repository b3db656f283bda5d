"""initlab.apply / initlab.check / LSUV on real modules."""

from __future__ import annotations

import math
import os

import pytest
import torch
from torch import nn

import initlab
from initlab.engine.models import MLPSpec, build_mlp
from initlab.errors import InitlabError


def test_apply_records_every_layer_with_fans_and_stds() -> None:
    model = build_mlp()
    report = initlab.apply(model, "he_normal", seed=0)
    assert [r.name for r in report.layers] == ["1.weight", "4.weight", "7.weight"]
    first = report.layers[0]
    assert (first.fan_in, first.fan_out, first.shape) == (784, 256, (256, 784))
    for r in report.layers:
        assert r.expected_std == pytest.approx(math.sqrt(2 / r.fan_in))
        assert r.realized_std == pytest.approx(r.expected_std, rel=0.05)
        assert r.bias == "zeros"
    assert all(torch.all(m.bias == 0) for m in model if isinstance(m, nn.Linear))
    assert report.unsupported == []
    assert "1.weight" in str(report)


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    a, b, c = build_mlp(), build_mlp(), build_mlp()
    initlab.apply(a, "glorot_uniform", seed=5)
    initlab.apply(b, "glorot_uniform", seed=5)
    initlab.apply(c, "glorot_uniform", seed=6)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a[1].weight, c[1].weight)


def test_bias_rules() -> None:
    m = build_mlp()
    initlab.apply(m, "torch_default", seed=0)
    assert 0 < float(m[1].bias.detach().abs().max()) <= 1 / math.sqrt(784)
    initlab.apply(m, "he_normal", seed=0, bias=0.1)
    assert torch.all(m[1].bias == 0.1)
    before = m[1].bias.clone()
    initlab.apply(m, "he_normal", seed=1, bias="keep")
    assert torch.equal(before, m[1].bias)
    initlab.apply(m, "he_normal", seed=1, bias="normal(std=0.5)")
    assert 0.3 < float(m[1].bias.detach().std()) < 0.7
    with pytest.raises(InitlabError, match="needs fans or data"):
        initlab.apply(m, "he_normal", bias="he_normal")


def test_unsupported_layers_are_reported_not_skipped_silently() -> None:
    class Scale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.alpha = nn.Parameter(torch.ones(3))

        def forward(self, x):
            return x * self.alpha

    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), Scale())
    report = initlab.apply(model, "he_normal", seed=0)
    kinds = {t: why for _, t, why in report.unsupported}
    assert set(kinds) == {"BatchNorm1d", "Scale"}
    assert "normalization" in kinds["BatchNorm1d"]
    assert "not initialized: 2 (Scale)" in str(report)


def test_conv_transpose_embedding_and_recurrent_fans() -> None:
    model = nn.ModuleDict({
        "conv": nn.Conv2d(3, 8, 5), "deconv": nn.ConvTranspose2d(8, 4, 3), "emb": nn.Embedding(100, 16),
        "lstm": nn.LSTM(10, 20, num_layers=2), "gru": nn.GRU(6, 5, bidirectional=True),
    })
    report = {r.name: r for r in initlab.apply(model, "glorot_normal", seed=0).layers}
    assert (report["conv.weight"].fan_in, report["conv.weight"].fan_out) == (75, 200)
    assert (report["deconv.weight"].fan_in, report["deconv.weight"].fan_out) == (36, 72)  # torch's tensor rule
    assert (report["emb.weight"].fan_in, report["emb.weight"].fan_out) == (16, 100)
    ih0, hh0, ih1 = report["lstm.weight_ih_l0"], report["lstm.weight_hh_l0"], report["lstm.weight_ih_l1"]
    assert ih0.blocks == 4 and (ih0.fan_in, ih0.fan_out) == (10, 20)  # per gate block, not 4*20
    assert (hh0.fan_in, hh0.fan_out) == (20, 20) and (ih1.fan_in, ih1.fan_out) == (20, 20)
    assert report["gru.weight_ih_l0_reverse"].blocks == 3
    # orthogonal per gate block: each (hidden, hidden) block of weight_hh is orthogonal
    initlab.apply(model, "orthogonal", seed=0, include="lstm")
    for block in model["lstm"].weight_hh_l0.detach().chunk(4):
        torch.testing.assert_close(block @ block.T, torch.eye(20), atol=1e-5, rtol=0)


def test_include_filters_by_glob_type_and_callable() -> None:
    m = build_mlp()
    before = m[7].weight.clone()
    r = initlab.apply(m, "zeros", include="1")
    assert [x.name for x in r.layers] == ["1.weight"] and torch.equal(before, m[7].weight)
    r = initlab.apply(m, "zeros", include=lambda name, mod: mod.out_features == 10)
    assert [x.name for x in r.layers] == ["7.weight"]
    with pytest.raises(InitlabError, match="no layer"):
        initlab.apply(m, "zeros", include=nn.Conv2d)


def test_apply_errors() -> None:
    with pytest.raises(InitlabError, match="data-dependent"):
        initlab.apply(build_mlp(), "lsuv")
    with pytest.raises(InitlabError, match="nn.Module"):
        initlab.apply("model", "zeros")
    with pytest.raises(InitlabError, match="seed"):
        initlab.apply(build_mlp(), "zeros", seed=-1)
    with pytest.raises(InitlabError, match="no layer"):
        initlab.apply(nn.Sequential(nn.ReLU()), "zeros")


# ---- check ---------------------------------------------------------------------------

def test_check_passes_for_what_was_applied() -> None:
    for spec in ["he_normal", "glorot_truncated_normal", "uniform_centered", "orthogonal", "torch_default",
                 "zeros", "sparse(sparsity=0.2, std=0.05)"]:
        m = build_mlp()
        initlab.apply(m, spec, seed=1)
        report = initlab.check(m, spec)
        assert report.ok, (spec, str(report))


def test_check_flags_the_articles_mistake() -> None:
    """The article's recipes were a no-op, so its weights stayed Keras' glorot_uniform."""
    model = build_mlp()
    initlab.apply(model, "keras_default", seed=0)  # what the article really trained
    for recipe in ("uniform_recipe", "normal_recipe"):
        report = initlab.check(model, recipe)
        assert not report.ok
        assert [r.name for r in report.failures] == ["1.weight", "4.weight", "7.weight"]
        assert "sigma" in report.failures[0].reason
    # applied for real, each recipe conforms
    initlab.apply(model, "normal_recipe", seed=0)
    assert initlab.check(model, "normal_recipe").ok


def test_check_tells_same_std_different_family() -> None:
    m = build_mlp()
    initlab.apply(m, "glorot_uniform", seed=0)
    report = initlab.check(m, "glorot_normal")
    assert not report.ok and "KS" in report.failures[0].reason


def test_torch_default_model_conforms_to_uniform_recipe() -> None:
    """PyTorch's own Linear default *is* the article's uniform recipe."""
    torch.manual_seed(0)
    m = build_mlp()
    assert initlab.check(m, "uniform_recipe").ok
    assert not initlab.check(m, "normal_recipe").ok


# ---- LSUV -------------------------------------------------------------------------------

def _deep(activation: str) -> nn.Sequential:
    return build_mlp(MLPSpec(hidden=(128,) * 10, activation=activation, dropout=0.0))


def _check_lsuv(model: nn.Module, batch: torch.Tensor, tol: float) -> None:
    report = initlab.apply(model, f"lsuv(tol={tol})", seed=0, data=batch)
    assert len(report.lsuv) == 11
    assert all(step.converged for step in report.lsuv), report.lsuv
    # independently re-measure every layer's output variance
    outs = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: outs.append(o.var().item()))
             for m in model if isinstance(m, nn.Linear)]
    with torch.no_grad():
        model.eval()
        model(batch)
    for h in hooks:
        h.remove()
    assert len(outs) == 11 and all(abs(v - 1) < tol for v in outs), outs
    assert initlab.check(model, f"lsuv(tol={tol})", data=batch).ok


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_lsuv_unit_variance_on_noise(activation: str) -> None:
    batch = torch.rand(256, 784, generator=torch.Generator().manual_seed(0))
    _check_lsuv(_deep(activation), batch, 0.1)


@pytest.mark.data
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_lsuv_unit_variance_on_fashion_mnist(activation: str) -> None:
    if not os.environ.get("INITLAB_DATA_DIR"):
        pytest.skip("INITLAB_DATA_DIR is not set")
    from initlab.data import load_dataset

    data = load_dataset("fashion-mnist", limit_train=512, limit_val=16)
    batch = data.train.x[:256]
    for tol in (0.1, 0.01):
        _check_lsuv(_deep(activation), batch, tol)


def test_lsuv_fastai_centres_and_scales() -> None:
    model = _deep("relu")
    batch = torch.rand(256, 784, generator=torch.Generator().manual_seed(0))
    report = initlab.apply(model, "lsuv_fastai", seed=0, data=batch)
    for step in report.lsuv:
        assert abs(step.out_mean) < 1e-3 and abs(math.sqrt(step.out_var) - 1) < 1e-3
    assert any(float(m.bias.detach().abs().max()) > 0 for m in model if isinstance(m, nn.Linear))


def test_check_data_dependent_without_data_is_an_error() -> None:
    with pytest.raises(InitlabError, match="data"):
        initlab.check(build_mlp(), "lsuv")
