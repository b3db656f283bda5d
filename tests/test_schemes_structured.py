"""Structure-aware schemes against their papers' definitions: delta-orthogonal (Xiao et al.
2018), Fixup (Zhang et al. 2019), ZerO (Zhao et al. 2022), SkipInit (De & Smith 2020); the
structure protocol (initlab.structure); refusals; initlab check on fresh models; and small
forms of the evidence (signal through a 64-block resnet, the Jacobian spectrum of a
100-layer tanh CNN)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import initlab
from initlab.engine.families import spec_from_dict
from initlab.errors import InitlabError
from initlab.schemes import get_scheme
from initlab.schemes.structured import fixup_factor, hadamard, zero_matrix
from initlab.structure import find_structure

F32 = {"rtol": 0.0, "atol": 1e-6}


def _resnet(depth: int = 4, width: int = 8, **kw) -> nn.Module:
    return spec_from_dict({"kind": "resnet", "depth": depth, "width": width, **kw}).build()


def _draw(spec: str, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    t = torch.empty(shape, dtype=torch.float64)
    return get_scheme(spec).init_(t, generator=torch.Generator().manual_seed(seed))


# --- a torchvision-style model, and one with the protocol's scalar gains ----------------------

class TVBlock(nn.Module):
    """torchvision's BasicBlock layout: conv1 bn1 relu conv2 bn2, a downsample attribute."""

    def __init__(self, c: int, norm: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=not norm)
        self.bn1 = nn.BatchNorm2d(c) if norm else nn.Identity()
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=not norm)
        self.bn2 = nn.BatchNorm2d(c) if norm else nn.Identity()
        self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))) + x)


class TVNet(nn.Module):
    def __init__(self, blocks: int = 3, c: int = 8, norm: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, c, 3, padding=1)
        self.layer1 = nn.Sequential(*[TVBlock(c, norm) for _ in range(blocks)])
        self.fc = nn.Linear(c, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer1(torch.relu(self.conv1(x)))
        return self.fc(x.mean(dim=(2, 3)))


class GainBlock(nn.Module):
    """Fixup authors' layout: scalar biases before each layer, a scalar multiplier."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.bias1a = nn.Parameter(torch.full((1,), 0.3))
        self.fc1 = nn.Linear(c, c, bias=False)
        self.bias1b = nn.Parameter(torch.full((1,), 0.3))
        self.fc2 = nn.Linear(c, c, bias=False)
        self.scale = nn.Parameter(torch.full((1,), 0.7))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(x + self.bias1a) + self.bias1b)
        return torch.relu(x + self.scale * self.fc2(h))


class GainNet(nn.Module):
    def __init__(self, blocks: int = 4, c: int = 16) -> None:
        super().__init__()
        self.inp = nn.Linear(6, c)
        self.blocks = nn.ModuleList(GainBlock(c) for _ in range(blocks))
        self.out = nn.Linear(c, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.inp(x))
        for b in self.blocks:
            x = b(x)
        return self.out(x)

    def residual_branches(self) -> list[nn.Module]:
        return list(self.blocks)

    def output_layer(self) -> nn.Linear:
        return self.out


# --- the structure protocol ------------------------------------------------------------------

def test_structure_of_the_resnet_family_torchvision_layouts_and_plain_models() -> None:
    st = find_structure(_resnet(depth=3))
    assert [b.name for b in st.branches] == ["blocks.0.branch", "blocks.1.branch", "blocks.2.branch"]
    assert [n for n, _ in st.branches[0].weight_layers] == ["blocks.0.branch.0", "blocks.0.branch.2"]
    assert st.output is not None and st.output[0] == "head" and "residual_branches()" in st.how
    tv = find_structure(TVNet(blocks=2))
    assert [b.name for b in tv.branches] == ["layer1.0", "layer1.1"]
    assert [n for n, _ in tv.branches[1].layers] == ["layer1.1.conv1", "layer1.1.bn1", "layer1.1.conv2",
                                                      "layer1.1.bn2"]
    assert tv.branches[0].last[0] == "layer1.0.bn2" and tv.output[0] == "fc"
    g = find_structure(GainNet(blocks=2))
    assert g.branches[0].gain[0] == "blocks.0.scale"
    assert [n for n, _ in g.branches[0].scalar_biases] == ["blocks.0.bias1a", "blocks.0.bias1b"]
    assert [n for n, _ in g.branches[0].layers] == ["blocks.0.fc1", "blocks.0.fc2"]

    class LeNet(nn.Module):  # conv1/conv2 but no downsample: not a residual block
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.conv2, self.fc = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 3), nn.Linear(4, 10)

    plain = find_structure(LeNet())
    assert plain.branches == [] and plain.output[0] == "fc"
    mlp = find_structure(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.ReLU()))
    assert mlp.branches == [] and mlp.output[0] == "2"


@pytest.mark.parametrize("scheme", ["fixup", "skipinit"])
def test_schemes_that_need_branches_refuse_models_without_them_in_one_line(scheme: str) -> None:
    mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    want = (f"{scheme} needs residual branches; model Sequential has none: use a resnet-family model "
            "or expose residual_branches()")
    for call in (lambda: initlab.apply(mlp, scheme, seed=0), lambda: initlab.check(mlp, scheme)):
        with pytest.raises(InitlabError) as err:
            call()
        assert str(err.value) == want
    cnn = spec_from_dict({"kind": "cnn", "depth": 2, "channels": 4}).build()
    with pytest.raises(InitlabError, match=f"^{scheme} needs residual branches; model PlainCNN has none"):
        initlab.apply(cnn, scheme, seed=0)


def test_fixup_refuses_one_layer_branches() -> None:
    class OneLayer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.b = nn.Sequential(nn.Linear(4, 4))

        def residual_branches(self) -> list[nn.Module]:
            return [self.b]

    with pytest.raises(InitlabError, match="fixup needs at least 2 weight layers per residual branch, "
                                           "branch b has 1"):
        initlab.apply(OneLayer(), "fixup", seed=0)


# --- delta-orthogonal ------------------------------------------------------------------------

@pytest.mark.parametrize("gain", [1.0, 2.0])
@pytest.mark.parametrize("shape", [(16, 8, 3, 3), (8, 8, 3, 3), (8, 16, 5, 5), (12, 4, 3), (6, 3, 3, 3, 3)])
def test_delta_orthogonal_is_orthogonal_at_the_centre_tap_and_zero_elsewhere(gain: float, shape) -> None:
    w = _draw(f"delta_orthogonal(gain={gain})", shape)
    centre = (slice(None), slice(None), *(k // 2 for k in shape[2:]))
    c = w[centre]
    gram = c.T @ c if shape[0] >= shape[1] else c @ c.T  # columns orthonormal when out >= in
    torch.testing.assert_close(gram, gain**2 * torch.eye(min(shape[:2]), dtype=w.dtype), rtol=0, atol=1e-10)
    rest = w.clone()
    rest[centre] = 0
    assert not rest.any()
    # the centre is torch's orthogonal_ of the (out, in) matrix with the same generator
    q = torch.nn.init.orthogonal_(torch.empty(shape[:2], dtype=torch.float64), gain,
                                  generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(c, q, rtol=0, atol=1e-12)


def test_delta_orthogonal_on_linear_is_orthogonal_and_jax_dialect_follows_jax() -> None:
    torch.testing.assert_close(_draw("delta_orthogonal(gain=1.5)", (20, 30)), _draw("orthogonal(gain=1.5)", (20, 30)),
                               rtol=0, atol=0)
    jax = get_scheme("jax:delta_orthogonal")
    assert jax.spec == "delta_orthogonal(convention=jax)"
    # jax.nn.initializers.delta_orthogonal: centre (k-1)//2, 3-5-d only, in <= out channels
    w = _draw("jax:delta_orthogonal", (4, 4, 4, 4))
    assert w[:, :, 1, 1].abs().sum() > 0 and w[:, :, 2, 2].abs().sum() == 0
    with pytest.raises(InitlabError, match=r"needs in_channels <= out_channels, got 8 > 4"):
        _draw("jax:delta_orthogonal", (4, 8, 3, 3))
    with pytest.raises(InitlabError, match="needs a 3- to 5-d conv kernel"):
        _draw("jax:delta_orthogonal", (4, 8))


def test_check_verifies_delta_orthogonal_kernels_and_tells_others_apart() -> None:
    model = nn.Sequential(nn.Conv2d(3, 32, 3), nn.Tanh(), nn.Conv2d(32, 32, 3), nn.Flatten(), nn.Linear(32, 10))
    initlab.apply(model, "delta_orthogonal", seed=0)
    assert initlab.check(model, "delta_orthogonal").ok
    assert "delta_orthogonal" in " ".join(initlab.identify(model))
    initlab.apply(model, "dirac", include=nn.Conv2d)  # an identity centre: orthogonal, but not random
    report = initlab.check(model, "delta_orthogonal", identify=False)
    assert "not a random orthogonal matrix" in report.layers[1].reason
    initlab.apply(model, "delta_orthogonal", seed=0)
    with torch.no_grad():  # a Gaussian centre of the orthogonal entries' variance: zeros right, not orthogonal
        w = model[2].weight
        w.zero_()
        w[:, :, 1, 1] = torch.randn(32, 32, generator=torch.Generator().manual_seed(0)) / math.sqrt(32)
    report = initlab.check(model, "delta_orthogonal", identify=False)
    assert report.layers[0].conforms and "are not orthogonal with norm 1" in report.layers[1].reason
    initlab.apply(model, "he_normal", seed=0)
    report = initlab.check(model, "delta_orthogonal", identify=False)
    assert not report.layers[0].conforms and "not 0" in report.layers[0].reason


# --- Fixup -----------------------------------------------------------------------------------

def test_fixup_scales_branch_inner_layers_by_L_to_the_minus_1_over_2m_minus_2_and_zeroes_the_rest() -> None:
    depth, width = 9, 16
    model = _resnet(depth=depth, width=width)
    report = initlab.apply(model, "fixup", seed=0)
    rec = {r.name: r for r in report.layers}
    he = math.sqrt(2 / (width * 9))
    assert fixup_factor(depth, 2) == pytest.approx(depth ** -0.5)
    assert fixup_factor(16, 3) == pytest.approx(0.5)  # a bottleneck: L^(-1/4)
    for b in model.blocks:
        inner, last = b.branch[0], b.branch[2]
        name = next(n for n, m in model.named_modules() if m is inner)
        assert rec[f"{name}.weight"].expected_std == pytest.approx(he * depth ** -0.5, rel=1e-12)
        assert float(inner.weight.detach().std()) == pytest.approx(he * depth ** -0.5, rel=0.1)
        assert not last.weight.any() and not last.bias.any() and not inner.bias.any()
    assert not model.head.weight.any() and not model.head.bias.any()
    assert rec["stem.0.weight"].expected_std == pytest.approx(math.sqrt(2 / 9))  # He, unscaled
    assert rec["head.weight"].role == "output: 0"
    assert any("no scalar multipliers or biases" in n for n in report.notes)
    assert "no scalar multipliers" in str(report)
    assert initlab.check(model, "fixup").ok
    initlab.apply(model, "he_normal", seed=0)
    assert not initlab.check(model, "fixup", identify=False).ok


def test_fixup_sets_the_models_scalar_multipliers_and_biases() -> None:
    model = GainNet(blocks=4)
    report = initlab.apply(model, "fixup", seed=0)
    for b in model.blocks:
        assert b.scale.item() == 1.0 and b.bias1a.item() == 0.0 and b.bias1b.item() == 0.0
        assert not b.fc2.weight.any()
        assert float(b.fc1.weight.detach().std()) == pytest.approx(math.sqrt(2 / 16) * 4 ** -0.5, rel=0.25)
    assert not any("no scalar" in n for n in report.notes)
    check = initlab.check(model, "fixup")
    assert check.ok and "blocks.0.scale" in [r.name for r in check.layers]
    with torch.no_grad():
        model.blocks[0].scale.fill_(0.5)
    assert [r.name for r in initlab.check(model, "fixup", identify=False).failures] == ["blocks.0.scale"]


# --- ZerO ------------------------------------------------------------------------------------

def test_zero_hadamard_is_sylvesters_and_algorithm_1_scales_it() -> None:
    h = torch.ones(1, 1, dtype=torch.float64)
    for _ in range(4):
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)  # H_m = [[H, H], [H, -H]]
    torch.testing.assert_close(hadamard(16, 16, 4), h, rtol=0, atol=0)
    torch.testing.assert_close(h @ h.T, 16 * torch.eye(16, dtype=h.dtype), rtol=0, atol=0)
    torch.testing.assert_close(zero_matrix(8, 8), torch.eye(8, dtype=torch.float64), rtol=0, atol=0)
    torch.testing.assert_close(zero_matrix(5, 9), torch.eye(5, 9, dtype=torch.float64), rtol=0, atol=0)
    # P > Q: c * H_m[:P, :Q], m = ceil(log2 P) = 4 for P = 12, c = 2^(-(m-1)/2)
    torch.testing.assert_close(zero_matrix(12, 5), 2 ** -1.5 * h[:12, :5], rtol=0, atol=0)
    torch.testing.assert_close(zero_matrix(12, 5, "orthonormal"), 0.25 * h[:12, :5], rtol=0, atol=0)
    q = zero_matrix(16, 6, "orthonormal")  # P = 2^m: orthonormal columns
    torch.testing.assert_close(q.T @ q, torch.eye(6, dtype=q.dtype), **F32)


def test_zero_init_is_deterministic_on_mlps_and_convs_and_checked_exactly() -> None:
    def mlp() -> nn.Module:
        return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))

    a, b = mlp(), mlp()
    initlab.apply(a, "zero_init", seed=0)
    initlab.apply(b, "zero_init", seed=123)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    torch.testing.assert_close(a[0].weight, zero_matrix(32, 10).float(), rtol=0, atol=0)  # Hadamard, P > Q
    torch.testing.assert_close(a[2].weight, torch.eye(32), rtol=0, atol=0)
    torch.testing.assert_close(a[4].weight, torch.eye(10, 32), rtol=0, atol=0)
    assert initlab.check(a, "zero_init").ok
    assert "zero_init" in initlab.identify(a)
    with torch.no_grad():
        a[2].weight[0, 1] = 1e-3
    assert [r.name for r in initlab.check(a, "zero_init", identify=False).failures] == ["2.weight"]
    conv = _draw("zero_init", (12, 5, 3, 3))
    torch.testing.assert_close(conv[:, :, 1, 1], zero_matrix(12, 5), rtol=0, atol=0)
    conv[:, :, 1, 1] = 0
    assert not conv.any()


def test_zero_init_zeroes_each_branch_last_layer_of_a_resnet() -> None:
    model = _resnet(depth=3, width=8, downsample=[2])
    initlab.apply(model, "zero_init")
    for b in model.blocks:
        assert not b.branch[2].weight.any()
        c = b.branch[0].weight
        torch.testing.assert_close(c[:, :, 1, 1], zero_matrix(*c.shape[:2]).float(), rtol=0, atol=0)
    assert initlab.check(model, "zero_init").ok


# --- SkipInit --------------------------------------------------------------------------------

def _block_io(model: nn.Module, blocks: list[nn.Module], x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    hooks = [b.register_forward_hook(lambda m, i, o: seen.append((i[0], o))) for b in blocks]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("scheme", ["skipinit", "fixup", "zero_init"])
@pytest.mark.parametrize("norm", ["none", "batch"])
def test_at_init_each_block_is_the_identity(scheme: str, norm: str) -> None:
    """The blocks' inputs follow a ReLU, so act(0 + x) = x: each block computes the identity."""
    model = _resnet(depth=4, width=8, norm=norm, input_shape=[1, 8, 8])
    initlab.apply(model, scheme, seed=0)
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for inp, out in _block_io(model, list(model.blocks), x):
        assert inp.abs().sum() > 0
        torch.testing.assert_close(out, inp, rtol=0, atol=1e-7)
    assert initlab.check(model, scheme).ok


def test_skipinit_zero_gamma_on_torchvision_blocks_and_gains_where_the_model_has_them() -> None:
    tv = TVNet(blocks=3, norm=True)
    report = initlab.apply(tv, "skipinit", seed=0)
    for b in tv.layer1:
        assert not b.bn2.weight.any() and not b.bn2.bias.any() and b.conv2.weight.std() > 0
    assert any("scaled by alpha = 0" in n for n in report.notes)
    x = torch.randn(2, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    for inp, out in _block_io(tv, list(tv.layer1), x):
        torch.testing.assert_close(out, inp, rtol=0, atol=1e-7)
    assert initlab.check(tv, "skipinit").ok
    g = GainNet(blocks=3)
    initlab.apply(g, "skipinit", seed=0)
    for b in g.blocks:  # the gain is alpha = 0, the branch keeps its He weights
        assert b.scale.item() == 0.0 and float(b.fc2.weight.detach().std()) == pytest.approx(math.sqrt(2 / 16), rel=0.25)
    assert initlab.check(g, "skipinit").ok


def test_skipinit_alpha_scales_the_last_layer_without_gains() -> None:
    model = _resnet(depth=2, width=16)
    report = initlab.apply(model, "skipinit(alpha=0.5)", seed=0)
    rec = {r.name: r for r in report.layers}
    he = math.sqrt(2 / (16 * 9))
    assert rec["blocks.0.branch.2.weight"].expected_std == pytest.approx(0.5 * he)
    assert rec["blocks.0.branch.0.weight"].expected_std == pytest.approx(he)
    assert initlab.check(model, "skipinit(alpha=0.5)").ok


# --- evidence, small ---------------------------------------------------------------------------

def test_a_64_block_unnormalized_resnet_keeps_its_signal_bounded_under_fixup_zero_skipinit() -> None:
    spec = {"depth": 64, "width": 8, "input_shape": [1, 8, 8]}
    x = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    growth = {}
    for scheme in ("he_normal", "fixup", "zero_init", "skipinit"):
        model = _resnet(**spec)
        initlab.apply(model, scheme, seed=0)
        stds = [float(out.std()) for _, out in _block_io(model, list(model.blocks), x)]
        growth[scheme] = stds[-1] / stds[0]
    assert growth["he_normal"] > 1e6  # measured 1.6e8: the variance about doubles per block
    for scheme in ("fixup", "zero_init", "skipinit"):
        assert growth[scheme] == pytest.approx(1.0, abs=1e-5)


def test_delta_orthogonal_concentrates_the_jacobian_spectrum_of_a_100_layer_tanh_cnn() -> None:
    spec = spec_from_dict({"kind": "cnn", "depth": 100, "channels": 4, "activation": "tanh",
                           "input_shape": [1, 8, 8]})
    x0 = 0.01 * torch.randn(1, 8, 8, generator=torch.Generator().manual_seed(1))
    spectra = {}
    for scheme in ("delta_orthogonal", "normal_recipe"):  # normal_recipe: N(0, 1/fan_in), tanh's critical Gaussian
        model = spec.build()
        initlab.apply(model, scheme, seed=0)
        body = nn.Sequential(*list(model.children())[:-3])  # input -> conv100/act100 (before the pool)
        jac = torch.func.jacrev(lambda z: body(z.unsqueeze(0)).reshape(-1))(x0).detach()
        spectra[scheme] = torch.linalg.svdvals(jac.reshape(-1, 64).double())
    delta, gauss = spectra["delta_orthogonal"], spectra["normal_recipe"]
    assert float(delta.min()) > 0.9 and float(delta.max()) < 1.0 + 1e-5  # measured [0.944, 1.000]
    assert float(gauss.max()) < 0.1 and float(gauss.max() / gauss.min()) > 1e4  # measured [7.8e-10, 0.033]
