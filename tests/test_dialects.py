"""Dialects, complete and exact (issue 11, item 4): a framework prefix does what that framework
does on every layer type. Each test states the framework's rule with the source line it comes
from; where the framework is installed (torch always; Keras 3 with the torch backend when the
``test`` extra brought it) the test also compares with the framework's own draws.

Distribution checks are Kolmogorov-Smirnov tests (scipy.stats) on fixed seeds, at p > 1e-4."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

import initlab
from initlab.errors import InitlabError
from initlab.schemes import TRUNC_STD_CORRECTION, get_scheme

os.environ.setdefault("KERAS_BACKEND", "torch")
try:  # Keras 3 on the torch backend: the real framework, where installed
    import keras  # noqa: E402

    HAVE_KERAS = keras.backend.backend() == "torch"
except Exception:  # noqa: BLE001 - any import failure means: no Keras here
    HAVE_KERAS = False
needs_keras = pytest.mark.skipif(not HAVE_KERAS, reason="Keras 3 (torch backend) not installed")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras' numpy 2 __array__ notice

P_MIN = 1e-4


def _draw(spec: str, shape, seed: int = 0) -> np.ndarray:
    t = torch.empty(shape, dtype=torch.float64)
    return get_scheme(spec).init_(t, generator=torch.Generator().manual_seed(seed)).numpy()


def _keras(init, shape) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(init(shape)), dtype=np.float64)


# --- keras:variance_scaling: "normal" is the corrected truncated normal ---------------------------


def test_keras_normal_is_the_truncated_normal_with_the_087962566_correction() -> None:
    """keras/src/initializers/random_initializers.py, VarianceScaling.__init__: ``if distribution
    == "normal": distribution = "truncated_normal"``; __call__: ``stddev = math.sqrt(scale) /
    0.87962566103423978`` and ``random.truncated_normal`` (cut at 2 stddev); "untruncated_normal"
    is ``random.normal(stddev=math.sqrt(scale))``."""
    assert TRUNC_STD_CORRECTION == 0.87962566103423978
    fan_in = 784
    s = math.sqrt(1.0 / fan_in) / 0.87962566103423978
    w = _draw("keras:variance_scaling(distribution=normal)", (256, fan_in)).ravel()
    assert np.abs(w).max() <= 2 * s
    assert stats.kstest(w, stats.truncnorm(-2, 2, scale=s).cdf).pvalue > P_MIN
    assert w.std() == pytest.approx(math.sqrt(1.0 / fan_in), rel=0.01)  # the correction restores Var = 1/fan_in
    plain = _draw("keras:variance_scaling(distribution=untruncated_normal)", (256, fan_in)).ravel()
    assert stats.kstest(plain, stats.norm(scale=math.sqrt(1.0 / fan_in)).cdf).pvalue > P_MIN
    assert np.abs(plain).max() > 2 * math.sqrt(1.0 / fan_in)  # not truncated
    with pytest.raises(InitlabError, match="unknown mode 'fan_geo_avg'"):  # Keras' allowed_modes
        get_scheme("keras:variance_scaling(mode=fan_geo_avg)")


KERAS_NAMES = [  # (Keras initializer, initlab dialect spec)
    ("glorot_uniform", "keras:glorot_uniform"), ("glorot_normal", "keras:glorot_normal"),
    ("he_uniform", "keras:he_uniform"), ("he_normal", "keras:he_normal"),
    ("lecun_uniform", "keras:lecun_uniform"), ("lecun_normal", "keras:lecun_normal"),
    ("random_normal", "keras:random_normal"), ("random_uniform", "keras:random_uniform"),
    ("normal", "keras:normal"), ("uniform", "keras:uniform"), ("truncated_normal", "keras:truncated_normal"),
    ("orthogonal", "keras:orthogonal"),
]


@needs_keras
@pytest.mark.parametrize("name, spec", KERAS_NAMES)
def test_keras_names_draw_what_keras_draws(name: str, spec: str) -> None:
    """Keras' own draw of a (784, 256) Dense kernel and initlab's of the torch (256, 784) weight:
    same law (two-sample KS) and the same std within 2%."""
    ref = _keras(keras.initializers.get({"class_name": name, "config": {"seed": 0}}) if name not in
                 ("normal", "uniform") else keras.initializers.get(name), (784, 256)).ravel()
    ours = _draw(spec, (256, 784), seed=1).ravel()
    assert stats.ks_2samp(ref, ours).pvalue > P_MIN, (name, spec)
    assert ours.std() == pytest.approx(ref.std(), rel=0.02)


@needs_keras
def test_keras_words_and_identity_gain() -> None:
    """keras/src/initializers/__init__.py aliases and the parameter words stddev/minval/maxval;
    constant_initializers.py Identity: ``gain * ops.eye(*shape)``."""
    for words, spec, expect in (({"class_name": "RandomNormal", "config": {"stddev": 0.3}}, "keras:random_normal(stddev=0.3)",
                                 {"std": 0.3}),
                                ({"class_name": "RandomUniform", "config": {"minval": -1.0, "maxval": 2.0}},
                                 "keras:random_uniform(minval=-1, maxval=2)", {"a": -1.0, "b": 2.0})):
        cfg = keras.initializers.get(words).get_config()
        assert {k: get_scheme(spec).params[k] for k in expect} == pytest.approx(expect)
        assert cfg.get("stddev", cfg.get("minval")) in (0.3, -1.0)
    assert np.array_equal(_keras(keras.initializers.Zeros(), (3, 4)), _draw("keras:zero", (3, 4)))
    assert np.array_equal(_keras(keras.initializers.Ones(), (3, 4)), _draw("keras:one", (3, 4)))
    ident = _keras(keras.initializers.Identity(gain=2.5), (5, 5))
    assert np.array_equal(ident, _draw("keras:identity(gain=2.5)", (5, 5)))


# --- per-dialect fans: Embedding, LSTM/GRU ---------------------------------------------------------


def test_embedding_fans_per_dialect() -> None:
    """Keras compute_fans (keras/src/initializers/random_initializers.py): a 2-d shape is
    (fan_in, fan_out), and Embedding's table is (input_dim, output_dim); JAX _compute_fans
    (jax/_src/nn/initializers.py) with in_axis=-2, out_axis=-1 likewise: fan_in = num_embeddings.
    torch's tensor rule (torch/nn/init.py _calculate_fan_in_and_fan_out) gives fan_in = dim."""
    for spec, fan_in in (("keras:he_normal", 1000), ("jax:he_normal", 1000), ("he_truncated_normal", 64),
                         ("torch:kaiming_normal_", 64)):
        emb = nn.Embedding(1000, 64)
        rec = initlab.apply(emb, spec, seed=0).layers[0]
        assert (rec.fan_in, rec.fan_out) == ((1000, 64) if fan_in == 1000 else (64, 1000)), spec
        assert rec.realized_std == pytest.approx(math.sqrt(2.0 / fan_in), rel=0.02), spec
        assert initlab.check(emb, spec).ok


@needs_keras
def test_keras_embedding_with_he_normal_matches_keras() -> None:
    layer = keras.layers.Embedding(1000, 64, embeddings_initializer=keras.initializers.HeNormal(seed=0))
    layer.build((None,))
    ref = np.asarray(keras.ops.convert_to_numpy(layer.embeddings), dtype=np.float64).ravel()
    emb = nn.Embedding(1000, 64)
    initlab.apply(emb, "keras:he_normal", seed=0)
    assert stats.ks_2samp(ref, emb.weight.detach().double().numpy().ravel()).pvalue > P_MIN


def test_recurrent_kernel_is_one_matrix_in_keras_per_gate_in_torch() -> None:
    """keras/src/layers/rnn/lstm.py LSTMCell.build: ``kernel`` (input_dim, 4 units) and
    ``recurrent_kernel`` (units, 4 units), each one initializer call: glorot_uniform on the
    kernel has fan_avg (in + 4u)/2; initlab's torch convention draws each (u, in) gate block."""
    lstm = nn.LSTM(64, 32)
    keras_rec = initlab.apply(lstm, "keras:glorot_uniform", seed=0).layers[0]
    assert (keras_rec.fan_in, keras_rec.fan_out, keras_rec.blocks) == (64, 128, 1)
    assert keras_rec.realized_std == pytest.approx(math.sqrt(2.0 / (64 + 128)), rel=0.03)
    assert initlab.check(lstm, "keras:glorot_uniform").ok
    torch_rec = initlab.apply(lstm, "glorot_uniform", seed=0).layers[0]
    assert (torch_rec.fan_in, torch_rec.fan_out, torch_rec.blocks) == (64, 32, 4)
    # orthogonal: one (4u, u) matrix with orthonormal columns (the transpose of Keras' (u, 4u),
    # rows orthonormal), not four orthogonal (u, u) blocks
    initlab.apply(lstm, "keras:orthogonal", seed=0)
    w = lstm.weight_hh_l0.detach().double()
    assert torch.allclose(w.T @ w, torch.eye(32, dtype=torch.float64), atol=1e-5)
    assert not torch.allclose(w[:32].T @ w[:32], torch.eye(32, dtype=torch.float64), atol=1e-2)
    initlab.apply(lstm, "orthogonal", seed=0)
    w = lstm.weight_hh_l0.detach().double()
    assert torch.allclose(w[:32].T @ w[:32], torch.eye(32, dtype=torch.float64), atol=1e-5)


def test_keras_default_on_an_lstm_gru_and_embedding() -> None:
    """keras/src/layers/rnn/lstm.py: kernel_initializer="glorot_uniform",
    recurrent_initializer="orthogonal", bias_initializer="zeros", unit_forget_bias=True (the
    bias is ``[zeros(u), ones(u), zeros(2u)]``, gates i, f, c, o -- torch's order too);
    gru.py: the same without the forget bias; embedding.py: embeddings_initializer="uniform"
    (RandomUniform(-0.05, 0.05))."""
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.lstm, self.gru = nn.Embedding(500, 64), nn.LSTM(64, 32), nn.GRU(32, 16)

    m = M()
    report = initlab.apply(m, "keras_default", seed=0)
    assert initlab.check(m, "keras_default").ok
    e = m.emb.weight.detach().double().numpy().ravel()
    assert np.abs(e).max() <= 0.05 and stats.kstest(e, stats.uniform(-0.05, 0.1).cdf).pvalue > P_MIN
    bias = m.lstm.bias_ih_l0.detach().view(4, 32)
    assert bias[1].eq(1).all() and bias[[0, 2, 3]].eq(0).all() and m.lstm.bias_hh_l0.eq(0).all()
    assert m.gru.bias_ih_l0.eq(0).all()
    for rnn, g, u, d_in in ((m.lstm, 4, 32, 64), (m.gru, 3, 16, 32)):
        w = rnn.weight_hh_l0.detach().double()
        assert torch.allclose(w.T @ w, torch.eye(u, dtype=torch.float64), atol=1e-5)
        k = rnn.weight_ih_l0.detach().double()
        assert float(k.abs().max()) <= math.sqrt(6.0 / (d_in + g * u)) + 1e-7
    by_name = {r.name: r for r in report.layers}
    assert by_name["lstm.weight_ih_l0"].bias == "zeros, forget gate 1"
    assert any("unit_forget_bias" in n for n in report.notes)


@needs_keras
def test_keras_lstm_layer_matches() -> None:
    layer = keras.layers.LSTM(32, seed=0)
    layer.build((None, 5, 64))
    kernel, recurrent, bias = (np.asarray(keras.ops.convert_to_numpy(v), dtype=np.float64) for v in layer.weights)
    assert kernel.shape == (64, 128) and recurrent.shape == (32, 128)
    assert np.allclose(recurrent @ recurrent.T, np.eye(32), atol=1e-5)  # one orthogonal (u, 4u) matrix
    assert np.array_equal(bias, np.r_[np.zeros(32), np.ones(32), np.zeros(64)])
    lstm = nn.LSTM(64, 32)
    initlab.apply(lstm, "keras_default", seed=0)
    ours = lstm.weight_ih_l0.detach().double().numpy()
    assert stats.ks_2samp(kernel.ravel(), ours.ravel()).pvalue > P_MIN
    assert np.array_equal(lstm.bias_ih_l0.detach().numpy() + lstm.bias_hh_l0.detach().numpy(), bias)


# --- layer defaults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    # torch/nn/modules/linear.py Bilinear.reset_parameters: bound = 1 / sqrt(weight.size(1));
    # init.uniform_(weight, -bound, bound); init.uniform_(bias, -bound, bound)
    lambda: nn.Bilinear(16, 8, 40),
    # torch/nn/modules/sparse.py Embedding.reset_parameters: init.normal_(self.weight)
    lambda: nn.Embedding(400, 32), lambda: nn.Embedding(400, 32, padding_idx=3),
    # torch/nn/modules/rnn.py RNNBase.reset_parameters: stdv = 1 / sqrt(hidden_size);
    # init.uniform_(weight, -stdv, stdv) for every weight and bias
    lambda: nn.LSTM(24, 48), lambda: nn.GRU(24, 48), lambda: nn.LSTM(24, 48, proj_size=16),
    lambda: nn.Linear(300, 200), lambda: nn.Conv2d(8, 16, 3),
], ids=["Bilinear", "Embedding", "Embedding-padding", "LSTM", "GRU", "LSTM-proj", "Linear", "Conv2d"])
def test_torch_default_is_what_torch_itself_draws(make) -> None:
    """A module fresh from torch's own constructor conforms to ``torch_default`` (check), and
    initlab's torch_default draw matches torch's (two-sample KS on every weight and bias).
    torch's draw is seeded: unseeded, it came from the global RNG wherever the tests before had
    left it, and the verdict changed with which tests ran first (GRU's bias_ih: p = 8e-5 after
    the whole file, above 1e-4 when run alone)."""
    torch.manual_seed(0)
    theirs = make()
    assert initlab.check(theirs, "torch_default").ok
    ours = make()
    initlab.apply(ours, "torch_default", seed=0)
    assert initlab.check(ours, "torch_default").ok
    for (name, a), (_, b) in zip(theirs.named_parameters(), ours.named_parameters()):
        a, b = a.detach().double().numpy().ravel(), b.detach().double().numpy().ravel()
        assert stats.ks_2samp(a, b).pvalue > P_MIN, name
    if isinstance(ours, nn.Embedding) and ours.padding_idx is not None:
        assert ours.weight[ours.padding_idx].eq(0).all()
    if isinstance(ours, nn.Bilinear):
        bound = 1 / math.sqrt(16)
        w, b = ours.weight.detach(), ours.bias.detach()
        assert float(w.abs().max()) <= bound and float(b.abs().max()) <= bound
        assert float(w.abs().max()) > 0.99 * bound


def test_flax_embed_is_an_untruncated_normal_of_variance_one_over_dim() -> None:
    """flax/linen/linear.py: ``default_embed_init = initializers.variance_scaling(1.0, 'fan_in',
    'normal', out_axis=0)``; JAX's _compute_fans with in_axis=-2 and out_axis=0 on an (num, dim)
    table: receptive = num*dim / shape[in] / shape[out] = dim/num, fan_in = num * dim/num = dim,
    and 'normal' in jax.nn.initializers.variance_scaling is untruncated."""
    num, dim = 300, 50
    receptive = num * dim / num / num  # prod(shape) / shape[in_axis] / shape[out_axis]
    assert num * receptive == dim  # fan_in
    emb = nn.Embedding(num, dim)
    initlab.apply(emb, "flax_default", seed=0)
    w = emb.weight.detach().double().numpy().ravel()
    assert stats.kstest(w, stats.norm(scale=math.sqrt(1.0 / dim)).cdf).pvalue > P_MIN
    assert np.abs(w).max() > 2 * math.sqrt(1.0 / dim)  # untruncated
    assert initlab.check(emb, "flax_default").ok


# --- JAX and torch words --------------------------------------------------------------------------------


def test_jax_words() -> None:
    """jax/_src/nn/initializers.py: ``uniform(scale=1e-2)`` draws ``random.uniform(...) * scale``,
    U[0, scale); ``normal(stddev=1e-2)``; ``xavier_normal = glorot_normal`` and ``kaiming_normal =
    he_normal`` are variance_scaling(..., "truncated_normal"); variance_scaling's mode
    "fan_geo_avg": ``denominator = (fan_in * fan_out) ** 0.5``."""
    w = _draw("jax:uniform", (200, 300)).ravel()
    assert w.min() >= 0 and w.max() < 0.01 and stats.kstest(w, stats.uniform(0, 0.01).cdf).pvalue > P_MIN
    assert get_scheme("jax:uniform(scale=0.5)").params == {"a": 0.0, "b": 0.5}
    assert get_scheme("jax:normal(stddev=0.5)").params["std"] == 0.5
    for name in ("jax:xavier_normal", "jax:kaiming_normal", "jax:glorot_normal", "jax:he_normal"):
        assert get_scheme(name).law((256, 784)).family == "truncated_normal", name
    for name in ("jax:xavier_uniform", "jax:kaiming_uniform"):
        assert get_scheme(name).law((256, 784)).family == "uniform", name
    law = get_scheme("jax:variance_scaling(scale=2, mode=fan_geo_avg, distribution=normal)").law((256, 784))
    assert law.family == "normal" and law.var == pytest.approx(2.0 / math.sqrt(784 * 256))
    assert get_scheme("jax:delta_orthogonal").spec == "delta_orthogonal(convention=jax)"
    # orthogonal(scale=1.0, column_axis=-1) and delta_orthogonal(scale=1.0, ...): scale is the gain
    assert get_scheme("jax:orthogonal(scale=2)").params["gain"] == 2.0
    assert get_scheme("jax:delta_orthogonal(scale=2)").params["gain"] == 2.0


def test_torch_trailing_underscore_names_draw_torch_values() -> None:
    """torch/nn/init.py names its in-place initializers with a trailing underscore and
    ``constant_(tensor, val)``; same generator, same values."""
    for spec, fn in (("torch:kaiming_normal_", lambda t, g: nn.init.kaiming_normal_(t, generator=g)),
                     ("torch:xavier_uniform_", lambda t, g: nn.init.xavier_uniform_(t, generator=g)),
                     ("torch:orthogonal_", lambda t, g: nn.init.orthogonal_(t, generator=g))):
        ref = fn(torch.empty(64, 32, dtype=torch.float64), torch.Generator().manual_seed(3))
        assert torch.allclose(torch.from_numpy(_draw(spec, (64, 32), seed=3)), ref, rtol=1e-6, atol=1e-7), spec
    assert np.all(_draw("torch:constant_(val=0.3)", (4, 4)) == 0.3)


@needs_keras
@pytest.mark.parametrize("dist", ["normal", "truncated_normal", "untruncated_normal", "uniform"])
def test_keras_variance_scaling_draws_what_keras_draws(dist: str) -> None:
    init = keras.initializers.VarianceScaling(scale=2.0, mode="fan_avg", distribution=dist, seed=0)
    ref = _keras(init, (784, 256)).ravel()
    ours = _draw(f"keras:variance_scaling(scale=2, mode=fan_avg, distribution={dist})", (256, 784), seed=1).ravel()
    assert stats.ks_2samp(ref, ours).pvalue > P_MIN
    if dist != "uniform":  # Keras' "normal" is truncated at 2 stddev, stddev = sqrt(2/520)/0.8796
        cut = 2 * math.sqrt(2.0 / ((784 + 256) / 2)) / 0.87962566103423978
        beyond_ref, beyond_ours = (float((np.abs(w) > cut).mean()) for w in (ref, ours))
        if dist == "untruncated_normal":  # P(|Z| > 2 / 0.8796) = 2.3%
            assert beyond_ref > 0.01 and beyond_ours > 0.01
        else:  # keras/src/backend/torch/random.py truncated_normal keeps the first of 4 draws
            # inside (-2, 2) and the first draw when none is: ~0.0455**4 = 4e-6 of entries stay
            # outside; initlab (torch.nn.init.trunc_normal_) truncates exactly
            assert beyond_ref < 1e-4 and beyond_ours == 0


@needs_keras
def test_keras_gru_layer_matches() -> None:
    """keras/src/layers/rnn/gru.py: kernel (in, 3u) glorot_uniform, recurrent_kernel (u, 3u)
    orthogonal, bias zeros (no forget gate)."""
    layer = keras.layers.GRU(16, seed=0)
    layer.build((None, 5, 32))
    kernel, recurrent, bias = (np.asarray(keras.ops.convert_to_numpy(v), dtype=np.float64) for v in layer.weights)
    assert kernel.shape == (32, 48) and recurrent.shape == (16, 48) and not bias.any()
    assert np.allclose(recurrent @ recurrent.T, np.eye(16), atol=1e-5)
    gru = nn.GRU(32, 16)
    initlab.apply(gru, "keras_default", seed=0)
    assert stats.ks_2samp(kernel.ravel(), gru.weight_ih_l0.detach().double().numpy().ravel()).pvalue > P_MIN
    w = gru.weight_hh_l0.detach().double().numpy()
    assert np.allclose(w.T @ w, np.eye(16), atol=1e-5) and not gru.bias_ih_l0.detach().any()
