"""The signal-propagation probe: measurements, verdicts, theory overlay, outputs."""

from __future__ import annotations

import json
import math
import statistics

import pytest
import torch
from torch import nn

import initlab
from initlab.engine.models import MLPSpec
from initlab.errors import InitlabError, UnknownNameError
from initlab.probe import Capture, LayerProbe, Thresholds, diagnose, probe
from initlab.probe.capture import LAYER_TYPES
from initlab.probe.measures import (
    duplicate_units, effective_ranks, jacobian_singular_values, log_rate, weight_summaries,
)


@pytest.fixture(scope="module")
def relu50():
    """50-layer width-256 ReLU MLP on 512 Gaussian inputs."""
    spec = MLPSpec(256, (256,) * 50, 10, "relu", 0.0)
    return probe(spec, schemes=["he_normal", "glorot_normal", "torch_default"], n_inputs=512, seed=0,
                 jacobian=False)


def _hidden_ratios(sp):
    return [layer.var_ratio for layer in sp.layers[1:-1]]


# -- the acceptance cases -------------------------------------------------------------


def test_he_normal_keeps_variance(relu50):
    he = relu50["he_normal"]
    # per-layer factor (log-linear fit over depth) and the typical single ratio: within 10% of 1
    assert he.signal_rate == pytest.approx(1.0, abs=0.1)
    assert statistics.median(_hidden_ratios(he)) == pytest.approx(1.0, abs=0.1)
    assert he.gradient_rate == pytest.approx(1.0, abs=0.1)
    assert he.verdict("vanishing_signal") is None and he.verdict("exploding_signal") is None
    assert he.verdict("vanishing_gradients") is None and he.verdict("unbroken_symmetry") is None


def test_glorot_normal_halves_variance_and_is_flagged(relu50):
    gl = relu50["glorot_normal"]
    assert gl.signal_rate == pytest.approx(0.5, abs=0.05)
    assert statistics.median(_hidden_ratios(gl)) == pytest.approx(0.5, abs=0.05)
    v = gl.verdict("vanishing_signal")
    assert v is not None
    # the verdict names the first layer below 1/100 of the input's variance, and that number
    below = [layer for layer in gl.layers if layer.pre_var / gl.input_var < 0.01]
    assert v.layer == below[0].index and v.layer_name == below[0].name
    assert v.value == pytest.approx(below[0].pre_var / gl.input_var)
    assert f"layer {v.layer} " in v.message
    assert gl.verdict("vanishing_gradients") is not None


def test_torch_default_vanishes(relu50):
    td = relu50["torch_default"]
    assert td.verdict("vanishing_signal") is not None
    assert td.layers[-1].pre_var < 0.01 * td.input_var


def test_mean_field_overlay_tracks_measurement(relu50):
    # at width 256 single layers random-walk away from the prediction (finite-width noise
    # accumulates over depth), but the per-layer trend and the first layers agree
    for name in ("he_normal", "glorot_normal"):
        sp = relu50[name]
        assert log_rate([layer.predicted_var for layer in sp.layers]) == pytest.approx(sp.signal_rate, abs=0.05)
        for layer in sp.layers[:3]:
            assert layer.predicted_var == pytest.approx(layer.pre_var, rel=0.25), (name, layer.index)
    assert relu50["he_normal"].mean_field.phase == "critical"
    assert relu50["glorot_normal"].mean_field.chi_1 == pytest.approx(0.5, rel=0.01)


def test_mean_field_overlay_tanh_converges_to_q_star():
    std = math.sqrt(1.5 / 256)  # sigma_w^2 = 1.5: tanh has a stable fixed point q* > 0
    spec = MLPSpec(256, (256,) * 16, 10, "tanh", 0.0)
    sp = probe(spec, schemes=[f"normal(mean=0, std={std:.6f})"], n_inputs=256, jacobian=False).schemes[0]
    for layer in sp.layers[:-1]:  # the 10-unit output layer fluctuates more
        assert layer.pre_var == pytest.approx(layer.predicted_var, rel=0.1), layer.index
    assert sp.layers[-2].pre_var == pytest.approx(sp.mean_field.q_star, rel=0.1)


@pytest.mark.parametrize("depth", [4, 24])
def test_deep_linear_orthogonal_jacobian_is_isometric(depth):
    spec = MLPSpec(48, (48,) * depth, 48, "linear", 0.0)
    sp = probe(spec, schemes=["orthogonal"], n_inputs=16, jacobian=True)["orthogonal"]
    sv = torch.tensor(sp.jacobian_singular_values)
    assert sv.shape == (4, 48)
    assert torch.allclose(sv, torch.ones_like(sv), atol=1e-4)


def test_deep_linear_gaussian_jacobian_spreads_with_depth():
    def spread(depth: int) -> float:
        spec = MLPSpec(48, (48,) * depth, 48, "linear", 0.0)
        sv = probe(spec, schemes=["lecun_normal"], n_inputs=8, jacobian=True)["lecun_normal"]
        s = torch.tensor(sv.jacobian_singular_values)
        return float((s.max() / s.min()).log())

    shallow, deep = spread(2), spread(16)
    assert deep > shallow + 2.0  # log condition number grows with depth
    assert deep > 5.0


def test_constant_inits_leave_symmetry_unbroken():
    spec = MLPSpec(32, (32,) * 6, 10, "relu", 0.0)
    res = probe(spec, schemes=["zeros", "ones", "he_normal"], n_inputs=64)
    zeros, ones, he = res["zeros"], res["ones"], res["he_normal"]
    for sp in (zeros, ones):
        v = sp.verdict("unbroken_symmetry")
        assert v is not None and v.layer == 1
        assert all(layer.duplicate_units == layer.units - 1 for layer in sp.layers)
    assert he.verdict("unbroken_symmetry") is None
    assert all(layer.duplicate_units == 0 for layer in he.layers)
    # zeros: no gradient reaches any hidden layer
    v = zeros.verdict("vanishing_gradients")
    assert v is not None and v.value == 0.0 and "all 6 hidden layers" in v.message
    assert all(layer.grad_norm == 0.0 for layer in zeros.layers[:-1])
    assert zeros.layers[-1].grad_norm > 0
    assert zeros.verdict("dead_units") is not None
    assert all(layer.effective_rank == 0.0 for layer in zeros.layers)
    assert all(layer.effective_rank == pytest.approx(1.0, rel=1e-4) for layer in ones.layers[:2])
    assert ones.verdict("exploding_signal") is not None


# -- other verdicts ---------------------------------------------------------------------


def test_tanh_with_unit_variance_weights_saturates():
    spec = MLPSpec(64, (128,) * 4, 10, "tanh", 0.0)
    res = probe(spec, schemes=["normal(mean=0, std=1)", "glorot_normal"], n_inputs=128)
    big, ok = res.schemes
    v = big.verdict("saturation")
    assert v is not None and v.layer == 1 and v.value > 0.5
    assert ok.verdict("saturation") is None
    assert all(0.0 <= layer.saturated_fraction < 0.25 for layer in ok.layers[:-1])


def _layer(i, **kw):
    base = dict(index=i, name=f"fc{i}", kind="Linear", shape=(4, 4), activation="relu", units=4,
                pre_mean=0.0, pre_std=1.0, post_mean=0.5, post_std=0.5, zero_fraction=0.5,
                dead_fraction=0.0, saturated_fraction=math.nan, var_ratio=1.0, grad_norm=1.0,
                weight_grad_norm=1.0, duplicate_units=0, effective_rank=3.0, sigma_w2=2.0, sigma_b2=0.0)
    base.update(kw)
    return LayerProbe(**base)


def test_diagnose_rules_on_synthetic_layers():
    healthy = [_layer(i) for i in range(1, 5)]
    assert diagnose(healthy, input_var=1.0) == []
    exploding = [_layer(1), _layer(2, pre_std=12.0), _layer(3, pre_std=float("inf"))]
    v = diagnose(exploding, input_var=1.0)[0]
    assert (v.kind, v.layer, v.value) == ("exploding_signal", 2, pytest.approx(144.0))
    grads = [_layer(1, grad_norm=500.0), _layer(2, grad_norm=200.0), _layer(3, grad_norm=1.0)]
    v = diagnose(grads, input_var=1.0)[0]
    assert (v.kind, v.layer, v.value) == ("exploding_gradients", 2, pytest.approx(200.0))
    v = diagnose(healthy, input_var=1.0, loss=float("nan"))[0]
    assert v.kind == "exploding_gradients" and v.layer == 4
    dead = [_layer(1), _layer(2, zero_fraction=0.95, dead_fraction=0.9)]
    v = diagnose(dead, input_var=1.0)[0]
    assert (v.kind, v.layer, v.value) == ("dead_units", 2, 0.95)
    strict = Thresholds(dead_fraction=0.4)
    assert diagnose(healthy, input_var=1.0, thresholds=strict)[0].layer == 1
    with pytest.raises(InitlabError, match="signal_factor"):
        Thresholds(signal_factor=0.5)


# -- measurements -----------------------------------------------------------------------


def test_effective_rank_and_duplicates():
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=torch.Generator().manual_seed(0)))
    rank1 = torch.ones(8, 1) @ torch.randn(1, 12)
    diag = torch.diag(torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0]))
    ranks = effective_ranks([q, rank1, diag, torch.zeros(5, 5), q * 1e-9, q * 1e9])
    assert ranks == pytest.approx([16.0, 1.0, 3.0, 0.0, 16.0, 16.0], abs=1e-3)  # scale-free

    a, b, c = torch.randn(3, 10, generator=torch.Generator().manual_seed(1))
    rows = torch.stack([a, b, a, c, a])
    assert duplicate_units([rows, torch.randn(5, 10), torch.ones(5, 10)]) == [2, 0, 4]
    # a different bias makes a unit distinct
    assert duplicate_units([rows], [torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0])]) == [1]

    lin = [nn.Linear(10, 5) for _ in range(3)]
    with torch.no_grad():
        lin[0].weight.copy_(rows)
        lin[0].bias.zero_()
    ranks, dups = weight_summaries(lin)
    assert dups == [2, 0, 0] and all(1.0 <= r <= 5.0 for r in ranks)


def test_jacobian_of_a_linear_map():
    a = torch.randn(3, 5, generator=torch.Generator().manual_seed(2))
    sv = jacobian_singular_values(lambda x: x @ a.T, torch.randn(2, 5))
    assert torch.allclose(sv, torch.linalg.svdvals(a.double()).expand(2, -1), atol=1e-6)


def test_log_rate():
    assert log_rate([1.0, 0.5, 0.25, 0.125]) == pytest.approx(0.5)
    assert log_rate([4.0, 0.0, 1.0, float("nan")]) == pytest.approx(0.5)  # skips 0 and nan
    assert math.isnan(log_rate([1.0]))


# -- mechanics --------------------------------------------------------------------------


def test_rerun_is_identical_and_model_untouched():
    torch.manual_seed(123)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 4))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    a = probe(model, schemes=["he_normal", "lecun_normal"], n_inputs=32, seed=3).to_dict()
    b = probe(model, schemes=["he_normal", "lecun_normal"], n_inputs=32, seed=3).to_dict()
    for d in (a, b):
        for s in d["schemes"]:
            s.pop("seconds")
    assert a == b
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())
    assert all(not m._forward_hooks for m in model.modules())
    # subnormals are flushed only while probing
    assert float(torch.tensor([1e-39]).mul(1.0)[0]) != 0.0


def test_capture_hooks_detach_and_in_place_relu_sees_pre_activation():
    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(inplace=True), nn.Linear(64, 3))
    x = torch.randn(256, 16, generator=torch.Generator().manual_seed(0))
    with Capture(model) as cap:
        model(x).sum().backward()
    assert all(not m._forward_hooks for m in model.modules())
    first, last = cap.layers
    assert abs(first.pre_mean) < 0.1 and first.post_mean > 0.1  # z is centred, relu(z) is not
    assert 0.3 < first.zero_fraction < 0.7
    assert first.grad_norm > 0 and last.activation is None and last.zero_fraction == 0.0


def test_gradient_rescaling_keeps_the_numbers():
    from initlab.probe.capture import is_sequential_chain

    model = initlab.engine.models.build_mlp(MLPSpec(16, (32,) * 30, 4, "relu", 0.0))
    initlab.apply(model, "torch_default", seed=0)  # gradients shrink ~6x per layer going back
    assert is_sequential_chain(model) and not is_sequential_chain(nn.Sequential(nn.Sequential(nn.Linear(2, 2))))
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(0))
    y = torch.randint(4, (64,), generator=torch.Generator().manual_seed(1))
    norms = []
    for rescale in (False, True):
        model.zero_grad(set_to_none=True)
        with Capture(model, rescale_gradients=rescale) as cap:
            torch.nn.functional.cross_entropy(model(x), y).backward()
        wg = [math.ldexp(float(m.module.weight.grad.norm()), -m.grad_exponent) for m in cap.layers]
        norms.append(([m.grad_norm for m in cap.layers], wg, [m.grad_exponent for m in cap.layers]))
    (plain, plain_w, e0), (scaled, scaled_w, e1) = norms
    assert set(e0) == {0} and max(e1) > 40  # really rescaled
    assert scaled == pytest.approx(plain, rel=1e-5) and scaled_w == pytest.approx(plain_w, rel=1e-5)
    assert min(plain) < 1e-10


def test_conv_model_with_input_shape():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    res = probe(model, schemes=["he_normal"], input_shape=(3, 8, 8), n_inputs=32)
    sp = res["he_normal"]
    assert [layer.kind for layer in sp.layers] == ["Conv2d", "Linear"]
    assert sp.layers[0].units == 8 and sp.layers[0].activation == "relu"
    assert sp.mean_field is None and math.isnan(sp.layers[0].predicted_var)
    assert res.input_shape == (3, 8, 8)
    with pytest.raises(InitlabError, match="input_shape"):
        probe(model, schemes=["he_normal"])


def test_functional_activation_gives_no_post_statistics():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(8, 16), nn.Linear(16, 2)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)))

    sp = probe(Net, schemes=["he_normal"], n_inputs=16)["he_normal"]
    assert [layer.name for layer in sp.layers] == ["a", "b"]
    assert sp.layers[0].activation == "-" and sp.mean_field is None


def test_real_data_and_labels():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(40, 1, 6, 6, generator=g), torch.randint(3, (40,), generator=g)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.Tanh(), nn.Linear(16, 3))
    res = probe(model, (x, y), ["glorot_uniform"], n_inputs=32)
    assert res.inputs == "data" and res.n_inputs == 32
    assert res.schemes[0].input_var == pytest.approx(float(x[:32].double().var(correction=0)))
    with pytest.raises(InitlabError, match="labels go up to"):
        probe(model, (x, y + 5), ["glorot_uniform"])


def test_lsuv_gets_the_probe_batch():
    spec = MLPSpec(32, (64,) * 6, 10, "relu", 0.0)
    sp = probe(spec, schemes=["lsuv"], n_inputs=128)["lsuv"]
    assert sp.verdict("vanishing_signal") is None
    assert sp.layers[3].pre_std == pytest.approx(1.0, rel=0.2)


def test_bad_models_and_arguments():
    with pytest.raises(InitlabError, match="no layer the probe measures"):
        probe(nn.Sequential(nn.ReLU()), schemes=["he_normal"], input_shape=(4,))
    with pytest.raises(InitlabError, match="not a torch nn.Module"):
        probe(lambda: 3, schemes=["he_normal"])
    with pytest.raises(InitlabError, match="failed on inputs of shape"):
        probe(nn.Linear(4, 2), schemes=["he_normal"], input_shape=(5,))
    with pytest.raises(UnknownNameError):
        probe(nn.Linear(4, 2), schemes=["he_nromal"])
    with pytest.raises(InitlabError, match="n_inputs"):
        probe(nn.Linear(4, 2), n_inputs=1)
    with pytest.raises(InitlabError, match="float tensor"):
        probe(nn.Linear(4, 2), torch.ones(8, 4, dtype=torch.long))
    assert set(LAYER_TYPES) >= {nn.Linear, nn.Conv2d}


# -- outputs ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    spec = MLPSpec(16, (16,) * 30, 4, "relu", 0.0)
    return probe(spec, schemes=["he_normal", "zeros", "ones"], n_inputs=32)


def test_json_is_strict_and_complete(small):
    d = json.loads(small.to_json())  # allow_nan=False inside: would raise on NaN
    assert [s["scheme"] for s in d["schemes"]] == ["he_normal", "zeros", "ones"]
    ones = d["schemes"][2]
    assert not ones["ok"]
    assert {v["kind"] for v in ones["verdicts"]} >= {"exploding_signal", "unbroken_symmetry"}
    layer = d["schemes"][0]["layers"][0]
    assert layer["saturated_fraction"] == "nan"  # relu is unbounded: no saturation, written as "nan"
    for key in ("pre_std", "var_ratio", "grad_norm", "weight_grad_norm", "duplicate_units",
                "effective_rank", "zero_fraction", "saturated_fraction", "predicted_var"):
        assert key in layer
    assert d["schemes"][0]["mean_field"]["phase"] in ("critical", "ordered", "chaotic")
    assert len(d["schemes"][0]["jacobian_singular_values"]) == 4


def test_table_mentions_verdicts_and_samples_deep_nets(small):
    text = small.table()
    assert "he_normal" in text and "unbroken symmetry" in text
    assert "showing 12 of 31 layers" in text
    assert len(small.table(all_layers=True).splitlines()) > len(text.splitlines())


def test_figures_are_png(small, tmp_path):
    figs = small.figures()
    assert set(figs) == {"variance", "gradients", "jacobian"}
    paths = small.save_figures(tmp_path / "figs")
    assert sorted(p.name for p in paths) == ["probe_gradients.png", "probe_jacobian.png", "probe_variance.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InitlabError, match="is a file"):
        small.save_figures(tmp_path / "file")


def test_top_level_probe_is_callable():
    import initlab.probe.runner  # noqa: F401 - importing submodules must not shadow initlab.probe()

    res = initlab.probe(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), schemes="he_normal",
                        n_inputs=8)
    assert res.schemes[0].scheme == "he_normal"


# -- rebuilding a stored result (ProbeResult.from_dict) ------------------------------------------


def _round_trip(d):
    from initlab.probe import ProbeResult

    return ProbeResult.from_dict(json.loads(json.dumps(d, allow_nan=False)))


def test_from_dict_inverts_to_dict_through_json(small, tmp_path):
    from initlab.probe import ProbeResult

    d = small.to_dict()
    text = json.dumps(d)
    assert '"nan"' in text  # non-finite values travel as strings
    back = _round_trip(d)
    assert back.to_dict() == d
    assert back.table() == small.table() and back.table(all_layers=True) == small.table(all_layers=True)
    assert ProbeResult.from_json(small.to_json()).to_dict() == d
    assert back["ones"].verdict("unbroken_symmetry") == small["ones"].verdict("unbroken_symmetry")
    assert back.schemes[0].mean_field == small.schemes[0].mean_field
    # the figures of the rebuilt result are the original's, byte for byte
    a = small.save_figures(tmp_path / "a")
    b = back.save_figures(tmp_path / "b")
    assert [p.name for p in a] == [p.name for p in b]
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_from_dict_keeps_infinities_and_absent_parts(small):
    d = json.loads(small.to_json())
    layer = d["schemes"][0]["layers"][3]
    layer["pre_std"], layer["pre_var"], layer["predicted_var"], layer["var_ratio"] = "inf", "inf", "-inf", "nan"
    d["schemes"][1]["mean_field"] = None
    d["schemes"][1]["jacobian_singular_values"] = None
    back = _round_trip(d)
    got = back.schemes[0].layers[3]
    assert got.pre_std == math.inf and got.predicted_var == -math.inf and math.isnan(got.var_ratio)
    assert back.schemes[1].mean_field is None and back.schemes[1].jacobian_singular_values is None
    assert back.to_dict() == d
    from initlab.probe.table import render_scheme

    assert "mean field" not in render_scheme(back.schemes[1]) and "mean field" in render_scheme(back.schemes[0])


def _mutations():
    def drop(*path):
        def f(d):
            *head, last = path
            for k in head:
                d = d[k]
            del d[last]
        return f

    def put(value, *path):
        def f(d):
            *head, last = path
            for k in head:
                d = d[k]
            d[last] = value
        return f

    return [
        (drop("schemes"), "top level: missing key 'schemes'"),
        (put("x", "schemes"), "schemes: expected a list, got str"),
        (put(True, "n_inputs"), "n_inputs: True is not an integer"),
        (put([16, "a"], "input_shape"), "input_shape[1]: 'a' is not an integer"),
        (drop("schemes", 1, "loss"), "schemes[1]: missing key 'loss'"),
        (put("abc", "schemes", 0, "layers", 2, "pre_std"), "schemes[0].layers[2].pre_std: 'abc' is not a number"),
        (drop("schemes", 2, "verdicts", 0, "kind"), "schemes[2].verdicts[0]: missing key 'kind'"),
        (put([[1.0, None]], "schemes", 0, "jacobian_singular_values"),
         "schemes[0].jacobian_singular_values[0][1]: None is not a number"),
        (put({"activation": "relu"}, "schemes", 0, "mean_field"), "schemes[0].mean_field: missing key 'sigma_w2'"),
        (put(7, "schemes", 0, "layers", 0), "schemes[0].layers[0]: expected a dict, got int"),
    ]


@pytest.mark.parametrize("mutate,where", _mutations())
def test_from_dict_names_the_first_bad_entry_in_one_line(small, mutate, where):
    from initlab.probe import ProbeResult

    d = json.loads(small.to_json())
    mutate(d)
    with pytest.raises(InitlabError) as info:
        ProbeResult.from_dict(d)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"malformed probe result at {where};")
    assert msg.endswith("give a dict written by ProbeResult.to_dict()")


def test_from_dict_and_from_json_reject_other_inputs():
    from initlab.probe import ProbeResult

    with pytest.raises(InitlabError, match="top level: expected a dict, got list"):
        ProbeResult.from_dict([1, 2])
    with pytest.raises(InitlabError, match="not valid JSON") as info:
        ProbeResult.from_json("{oops")
    assert "\n" not in str(info.value)
