"""The private torch APIs are fenced in initlab.engine.torch_private: present on the torch
versions they were checked on, matched by their public fallbacks, named nowhere else,
and the engine trains correctly on the fallbacks alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import initlab
from initlab.engine import MLPSpec, TrainConfig, train, train_one
from initlab.engine import torch_private as tp

from test_engine import assert_trains_like, init_model, make_data

SRC = Path(initlab.__file__).parent
ACTIVATIONS = ("relu", "tanh", "sigmoid", "selu", "gelu", "silu", "leaky_relu", "linear")


def _release(version: str) -> str:
    return version.split("+")[0]


def test_private_apis_are_present_on_the_versions_checked():
    """CHECKED_ON says where every private API was seen to work; on such a torch none may
    be missing. On another version the fallbacks stand in for what is missing (and the
    tests below check them), so this test says so instead of failing."""
    if _release(torch.__version__) not in tp.CHECKED_ON:
        pytest.skip(f"torch {torch.__version__} is not in CHECKED_ON {tp.CHECKED_ON}; "
                    f"fallbacks in use: {tp.using_fallbacks() or 'none'}")
    assert tp.using_fallbacks() == []
    assert tp.fused_adam_available(torch.device("cpu"))


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_each_activation_fallback_matches_autograd(name):
    """Both tables give autograd's gradient through the nn module (the private kernels
    bit for bit where present, the formulas to float32 rounding)."""
    from initlab.engine.functional import activation

    g = torch.Generator().manual_seed(0)
    z = torch.randn(64, 33, generator=g) * 3
    grad = torch.randn(64, 33, generator=g)
    zz = z.clone().requires_grad_(True)
    a = activation(name)(zz)
    a.backward(grad)
    want = zz.grad
    got = tp.unary_backward(name)(grad, z, a.detach())
    fallback = tp.unary_backward(name, fallback=True)(grad, z, a.detach())
    if name not in tp.using_fallbacks():
        assert torch.equal(got, want)
    torch.testing.assert_close(fallback, want, rtol=1e-5, atol=1e-6)


def test_loss_and_relu_backward_fallbacks_match_the_kernels():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(3, 16, 10, generator=g)
    y = torch.randint(0, 10, (3, 16), generator=g)
    logp = torch.log_softmax(z, 2)
    grad = torch.zeros_like(logp).scatter_(2, y.unsqueeze(2), -1.0 / 16)
    zz = z.clone().requires_grad_(True)
    F.nll_loss(torch.log_softmax(zz, 2).reshape(-1, 10), y.reshape(-1), reduction="sum").div(16).backward()
    kernel = tp.log_softmax_backward_into(grad, logp, 2, torch.empty_like(z))
    fallback = tp._log_softmax_backward_fallback(grad, logp, 2, torch.empty_like(z))
    torch.testing.assert_close(kernel, zz.grad, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(fallback, zz.grad, rtol=1e-5, atol=1e-7)
    a = torch.relu(z)
    out = torch.empty_like(z)
    assert tp.threshold_backward_into(grad, a, out) is out
    assert torch.equal(out, torch.where(a > 0, grad, torch.zeros(())))


def test_no_other_module_names_a_private_torch_api():
    private = re.compile(r"torch\._[a-z]\w*\(|torch\.ops\.aten|\b_?aten\.\w+")
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "torch_private.py":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if private.search(code) and "``" not in code:
                offenders.append(f"{path.relative_to(SRC)}:{i}: {line.strip()}")
    assert offenders == []


def test_the_engine_trains_on_the_fallbacks_alone(monkeypatch):
    """With every private kernel taken away (as on a torch that lacks them), the engine
    picks the foreach Adam and the public formulas and still trains as the reference loop
    does, to float32 rounding."""
    monkeypatch.setattr(tp, "_FUSED_ADAM", None)
    monkeypatch.setattr(tp, "_FUSED_OK", {})
    monkeypatch.setattr(tp, "_LOG_SOFTMAX_BACKWARD", None)
    monkeypatch.setattr(tp, "_THRESHOLD_BACKWARD", None)
    monkeypatch.setattr(tp, "_UNARY", dict(tp._FALLBACK_UNARY))
    assert not tp.fused_adam_available(torch.device("cpu"))
    d = make_data(256, 64)
    cfg = TrainConfig(epochs=1, log_every=1, probe_size=16, hist_bins=5)
    for activation in ("relu", "tanh"):
        spec = MLPSpec(hidden=(32, 16), activation=activation)
        models = [init_model(spec, "normal", i) for i in range(2)]
        results = train(models, [1, 2], d, cfg)
        for m, s, r in zip(models, [1, 2], results):
            assert_trains_like(r, train_one(m, s, d, cfg), m.state_dict(), d)
