"""Mean-field theory (initlab.probe.meanfield) against closed forms and direct simulation."""

from __future__ import annotations

import math

import pytest
import torch

from initlab.errors import InitlabError, UnknownNameError
from initlab.probe import meanfield as mf


@pytest.mark.parametrize("sigma_b2", [0.0, 0.1])
def test_relu_critical_point_is_two(sigma_b2):
    assert mf.critical_sigma_w2("relu", sigma_b2) == pytest.approx(2.0, rel=1e-6)


def test_tanh_and_linear_critical_points_at_zero_bias():
    assert mf.critical_sigma_w2("tanh", 0.0) == pytest.approx(1.0, rel=1e-6)
    assert mf.critical_sigma_w2("linear", 0.0) == pytest.approx(1.0, rel=1e-6)


def test_leaky_relu_critical_point():
    a = 0.01  # torch's default slope, used by the "leaky_relu" name
    assert mf.critical_sigma_w2("leaky_relu", 0.0) == pytest.approx(2.0 / (1.0 + a * a), rel=1e-6)


def test_tanh_critical_line_moves_with_bias():
    # chi_1 = 1 exactly on the critical line, and it needs a larger sigma_w^2 with bias
    sw2 = mf.critical_sigma_w2("tanh", 0.05)
    assert sw2 > 1.2
    assert mf.chi_1("tanh", sw2, 0.05) == pytest.approx(1.0, abs=1e-6)


def test_q_map_closed_forms():
    # ReLU: E[relu(sqrt(q) z)^2] = q/2 ; linear: E[(sqrt(q) z)^2] = q
    assert mf.q_map("relu", 1.7, 0.2, 3.0) == pytest.approx(1.7 * 1.5 + 0.2, rel=1e-12)
    assert mf.q_map("linear", 1.5, 0.1, 2.0) == pytest.approx(3.1, rel=1e-12)
    # tanh q map is below the linear one (|tanh u| < |u|) and increasing
    qs = [0.1, 1.0, 10.0]
    vals = mf.q_map("tanh", 1.0, 0.0, qs)
    assert all(v < q for v, q in zip(vals, qs)) and vals[0] < vals[1] < vals[2]


def test_q_star_cases():
    assert mf.q_star("relu", 1.0) == 0.0           # ordered, no bias: signal dies
    assert math.isinf(mf.q_star("relu", 3.0))      # above critical: grows without bound
    assert mf.q_star("relu", 2.0, q0=0.7) == pytest.approx(0.7)  # line of fixed points
    # ReLU with bias: q* = sigma_b^2 / (1 - sigma_w^2/2)
    assert mf.q_star("relu", 1.0, 0.3) == pytest.approx(0.6, rel=1e-9)
    q = mf.q_star("tanh", 2.5, 0.1)
    assert mf.q_map("tanh", 2.5, 0.1, q) == pytest.approx(q, rel=1e-9)


def test_relu_mean_field_quantities():
    m = mf.mean_field("relu", 1.0)
    assert m.chi_1 == pytest.approx(0.5)
    assert m.phase == "ordered"
    assert m.xi_c == pytest.approx(1.0 / math.log(2.0))
    assert mf.mean_field("relu", 2.0).phase == "critical"


def test_tanh_chaotic_phase_has_interior_correlation_fixed_point():
    m = mf.mean_field("tanh", 2.5, 0.1)
    assert m.phase == "chaotic" and 0.0 < m.c_star < 1.0
    assert mf.c_map("tanh", 2.5, 0.1, m.c_star) == pytest.approx(m.c_star, abs=1e-6)
    assert m.chi_c < 1.0 and math.isfinite(m.xi_c)
    # odd activation without bias: c* = 0
    assert mf.c_star("tanh", 4.0, 0.0) == 0.0


def _simulate_tanh(sw2: float, sb2: float, width: int = 1024, depth: int = 20, batch: int = 64):
    """A wide deep tanh net with N(0, sw2/width) weights and N(0, sb2) biases: the second
    moment of the last layers' pre-activations, and the mean per-layer growth of
    ||dL/dz||^2 going back (L = <z_L, r> for a random r)."""
    g = torch.Generator().manual_seed(1234)
    h = torch.randn(batch, width, generator=g).requires_grad_(True)
    zs = []
    for _ in range(depth):
        w = torch.randn(width, width, generator=g) * math.sqrt(sw2 / width)
        b = torch.randn(width, generator=g) * math.sqrt(sb2)
        z = h @ w.T + b
        z.retain_grad()
        zs.append(z)
        h = torch.tanh(z)
    (zs[-1] * torch.randn(batch, width, generator=g)).sum().backward()
    q = torch.stack([z.detach().square().mean() for z in zs[-6:]]).mean().item()
    g2 = torch.stack([z.grad.square().sum() for z in zs])
    chi = (g2[4:-1] / g2[5:]).log().mean().exp().item()
    return q, chi


@pytest.mark.parametrize("sw2,sb2", [(1.5, 0.05), (2.5, 0.1)])
def test_tanh_q_star_and_chi_1_match_simulation(sw2, sb2):
    theory = mf.mean_field("tanh", sw2, sb2)
    q_sim, chi_sim = _simulate_tanh(sw2, sb2)
    assert q_sim == pytest.approx(theory.q_star, rel=0.04)
    assert chi_sim == pytest.approx(theory.chi_1, rel=0.04)


def test_predict_depth_profile_linear_and_relu():
    # linear chain: q^l = prod(sigma_w^2) * E[x^2] (+ biases)
    q = mf.predict_depth_profile([2.0, 0.5, 3.0], [0.0, 0.0, 1.0], [None, None], 1.5)
    assert q == pytest.approx([3.0, 1.5, 5.5])
    relu = torch.nn.ReLU()
    q = mf.predict_depth_profile([2.0, 2.0, 1.0], [0.0, 0.0, 0.0], [relu, relu], 1.0)
    assert q == pytest.approx([2.0, 2.0, 1.0])


def test_in_place_activation_module_is_not_corrupted():
    relu = torch.nn.ReLU(inplace=True)
    assert mf.chi_1(relu, 2.0) == pytest.approx(1.0)
    assert mf.q_map(relu, 2.0, 0.0, 1.0) == pytest.approx(1.0)


def test_bad_inputs():
    with pytest.raises(InitlabError, match="sigma_w2"):
        mf.q_star("relu", -1.0)
    with pytest.raises(UnknownNameError, match="did you mean"):
        mf.mean_field("rellu", 2.0)
    with pytest.raises(InitlabError, match="not an elementwise activation"):
        mf.mean_field(torch.nn.Softmax(dim=-1), 1.0)
    with pytest.raises(InitlabError, match="sigma_b2"):
        mf.critical_sigma_w2("relu", float("nan"))
