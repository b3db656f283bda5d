"""The ``jax:`` dialect and ``flax_default`` against the real JAX and Flax (skipped where jax
is not installed): jax.nn.initializers' own draws and the parameters of flax.linen / flax.nnx
layers built with their defaults, compared with initlab's draws on the torch layers.

Every distribution check compares a JAX/Flax draw with an initlab draw of at least 24,576
entries (mostly 200,704 = 784 x 256) by a two-sample Kolmogorov-Smirnov test
(``scipy.stats.ks_2samp``, asymptotic p) at ``p > P_MIN = 1e-4``, and their standard
deviations within ``STD_REL`` = 2% (the sample std of n entries has a relative standard error
of about ``sqrt((kurtosis - 1) / (4 n))``, at most 0.45% here (kurtosis <= 3), so 2% is more
than 4.4 standard errors of each sample: a two-sided chance below 1e-5 for equal laws). The
seeds are fixed, so each run gives the same verdict; over the choice of seeds, a comparison of
equal laws fails with probability at most about 1.1e-4, and this file makes 50 of them: at
most 1% that some comparison of equal laws fails (the union bound). The
differences the tests look for (a fan off by a factor 4, a truncation, the wrong support) move
the std by 10% or more and give KS p-values below 1e-30 at these sizes. Nothing is compared
bit for bit: JAX's threefry generator and torch's Philox/MT differ by design.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

os.environ.setdefault("JAX_PLATFORMS", "cpu")
jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

import initlab  # noqa: E402
from initlab.errors import InitlabError  # noqa: E402
from initlab.schemes import get_scheme  # noqa: E402

jnn = jax.nn.initializers
P_MIN = 1e-4
STD_REL = 0.02
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _jax(init, shape, seed: int = 0) -> np.ndarray:
    """One draw of the JAX initializer *init* of *shape* (float32, as JAX's default)."""
    return np.asarray(init(jax.random.key(seed), tuple(shape), jnp.float32), dtype=np.float64)


def _ours(spec: str, shape, seed: int = 1) -> np.ndarray:
    t = torch.empty(tuple(shape), dtype=torch.float64)
    return get_scheme(spec).init_(t, generator=torch.Generator().manual_seed(seed)).numpy()


def _same_law(ref: np.ndarray, ours: np.ndarray, what: str) -> None:
    ref, ours = np.ravel(ref), np.ravel(ours)
    p = stats.ks_2samp(ref, ours, method="asymp").pvalue
    assert p > P_MIN, f"{what}: KS p = {p:.3g}"
    assert ours.std() == pytest.approx(ref.std(), rel=STD_REL), what


def _flax_params(module, *inputs):
    return jax.tree_util.tree_map(lambda a: np.asarray(a, dtype=np.float64),
                                  module.init(jax.random.key(0), *inputs)["params"])


# --- jax.nn.initializers on a Dense kernel: JAX (in, out) = (784, 256), torch (out, in) ---------------

DENSE = [  # (JAX initializer, initlab spec)
    (jnn.glorot_uniform(), "jax:glorot_uniform"), (jnn.glorot_normal(), "jax:glorot_normal"),
    (jnn.xavier_uniform(), "jax:xavier_uniform"), (jnn.xavier_normal(), "jax:xavier_normal"),
    (jnn.he_uniform(), "jax:he_uniform"), (jnn.he_normal(), "jax:he_normal"),
    (jnn.kaiming_uniform(), "jax:kaiming_uniform"), (jnn.kaiming_normal(), "jax:kaiming_normal"),
    (jnn.lecun_uniform(), "jax:lecun_uniform"), (jnn.lecun_normal(), "jax:lecun_normal"),
    (jnn.normal(), "jax:normal"), (jnn.normal(stddev=0.5), "jax:normal(stddev=0.5)"),
    (jnn.uniform(), "jax:uniform"), (jnn.uniform(scale=0.5), "jax:uniform(scale=0.5)"),
    (jnn.truncated_normal(), "jax:truncated_normal"),
    (jnn.truncated_normal(stddev=0.5), "jax:truncated_normal(stddev=0.5)"),
] + [
    (jnn.variance_scaling(2.0, mode, dist), f"jax:variance_scaling(scale=2, mode={mode}, distribution={dist})")
    for mode in ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
    for dist in ("normal", "truncated_normal", "uniform")
]


@pytest.mark.parametrize("init, spec", DENSE, ids=[s for _, s in DENSE])
def test_jax_initializer_on_a_dense_kernel(init, spec: str) -> None:
    """jax/_src/nn/initializers.py: variance_scaling's fans from ``_compute_fans`` (in_axis=-2,
    out_axis=-1), 'truncated_normal' = ``truncated_normal(-2, 2) * sqrt(Var) / .8796``,
    'normal' untruncated, 'uniform' ``U(-1, 1) * sqrt(3 Var)``; glorot/xavier, he/kaiming and
    lecun ``_normal`` are its "truncated_normal"; ``normal(stddev=1e-2)``, ``uniform(scale=1e-2)``
    = U[0, scale), ``truncated_normal(stddev=1e-2)`` cut at +-2 stddev (std not corrected)."""
    ref = _jax(init, (784, 256))
    ours = _ours(spec, (256, 784))
    _same_law(ref, ours, spec)
    assert (ref.min() >= 0) == (ours.min() >= 0), spec  # jax uniform's support is [0, scale)


def test_jax_constants() -> None:
    """jax zeros, ones, constant(value): no randomness, so the values are equal."""
    for init, spec in ((jnn.zeros, "jax:zeros"), (jnn.ones, "jax:ones"), (jnn.constant(0.3), "jax:constant(0.3)")):
        assert np.array_equal(_jax(init, (4, 5)).astype(np.float32), _ours(spec, (5, 4)).T.astype(np.float32)), spec


def test_jax_xavier_and_kaiming_normal_are_truncated() -> None:
    """The real JAX draws of xavier_normal / kaiming_normal never pass 2 of their (corrected)
    std, and initlab's jax: names neither; torch's xavier_normal_ does (about 4.6% of entries)."""
    for init, spec, var in ((jnn.xavier_normal(), "jax:xavier_normal", 2.0 / (784 + 256)),
                            (jnn.kaiming_normal(), "jax:kaiming_normal", 2.0 / 784)):
        cut = 2 * math.sqrt(var) / 0.87962566103423978
        ref, ours = _jax(init, (784, 256)), _ours(spec, (256, 784))
        assert np.abs(ref).max() <= cut * (1 + 1e-6) and np.abs(ours).max() <= cut * (1 + 1e-12), spec
        plain = _ours(spec.replace("jax:xavier_normal", "torch:xavier_normal")
                      .replace("jax:kaiming_normal", "torch:kaiming_normal"), (256, 784))
        assert (np.abs(plain) > cut).mean() > 0.01


def test_jax_conv_kernel_fans() -> None:
    """A JAX conv kernel is HWIO (kh, kw, in, out): ``_compute_fans`` gives fan_in = in * kh * kw,
    fan_out = out * kh * kw, as torch's (out, in, kh, kw) rule: the same law on the same layer."""
    for init, spec in ((jnn.he_normal(), "jax:he_normal"), (jnn.glorot_uniform(), "jax:glorot_uniform"),
                       (jnn.variance_scaling(1.0, "fan_geo_avg", "normal"),
                        "jax:variance_scaling(mode=fan_geo_avg, distribution=normal)")):
        ref = _jax(init, (3, 3, 48, 96))
        conv = nn.Conv2d(48, 96, 3)
        initlab.apply(conv, spec, seed=0)
        _same_law(ref, conv.weight.detach().double().numpy(), spec)


def test_jax_orthogonal_and_scale() -> None:
    """jax orthogonal(scale, column_axis=-1) on (784, 256): Q with orthonormal columns, times
    scale; initlab's jax:orthogonal on the torch (256, 784) weight: orthonormal rows (the
    transpose), the same entry law."""
    for scale in (1.0, 2.0):
        ref = _jax(jnn.orthogonal(scale=scale), (784, 256))
        ours = _ours(f"jax:orthogonal(scale={scale:g})", (256, 784))
        assert np.allclose(ref.T @ ref, scale**2 * np.eye(256), atol=1e-4 * scale**2)
        assert np.allclose(ours @ ours.T, scale**2 * np.eye(256), atol=1e-9 * scale**2)
        _same_law(ref, ours, f"orthogonal scale {scale}")


@pytest.mark.parametrize("k", [3, 4])
def test_jax_delta_orthogonal(k: int) -> None:
    """jax delta_orthogonal(scale, column_axis=-1) on an HWIO (k, k, in, out) kernel, in <= out:
    ``orthogonal`` (in, out) at the tap ((k-1)//2, (k-1)//2), zeros elsewhere; initlab's
    jax:delta_orthogonal on the torch (out, in, k, k) weight: the transpose at the same tap."""
    c_in, c_out, c = 192, 256, (k - 1) // 2
    ref = _jax(jnn.delta_orthogonal(scale=1.5), (k, k, c_in, c_out))
    conv = nn.Conv2d(c_in, c_out, k)
    initlab.apply(conv, "jax:delta_orthogonal(scale=1.5)", seed=0)
    ours = conv.weight.detach().double().numpy()
    ref_centre, our_centre = ref[c, c], ours[:, :, c, c]  # (in, out) and (out, in)
    for w, centre in ((ref, ref_centre), (ours.transpose(2, 3, 1, 0), our_centre.T)):
        rest = w.copy()
        rest[c, c] = 0
        assert not rest.any()
        assert np.allclose(centre @ centre.T, 2.25 * np.eye(c_in), atol=1e-4)
    _same_law(ref_centre, our_centre, f"delta_orthogonal centre, k={k}")
    with pytest.raises(ValueError):
        _jax(jnn.delta_orthogonal(), (3, 3, c_out, c_in))  # JAX refuses in > out ...
    with pytest.raises(InitlabError):
        initlab.apply(nn.Conv2d(c_out, c_in, 3), "jax:delta_orthogonal", seed=0)  # ... and so does initlab


# --- layers: the jax: names on an Embedding (Flax Embed's (num, dim) table) ---------------------------


def test_jax_names_on_an_embedding_read_fan_in_as_num_embeddings() -> None:
    """flax.linen.Embed calls ``embedding_init(key, (num_embeddings, features))``; a JAX
    initializer's ``_compute_fans`` reads that as fan_in = num_embeddings."""
    flax_linen = pytest.importorskip("flax.linen")
    for init, spec in ((jnn.he_normal(), "jax:he_normal"), (jnn.glorot_uniform(), "jax:glorot_uniform"),
                       (jnn.lecun_uniform(), "jax:lecun_uniform")):
        p = _flax_params(flax_linen.Embed(1000, 64, embedding_init=init), jnp.zeros((1,), jnp.int32))
        emb = nn.Embedding(1000, 64)
        initlab.apply(emb, spec, seed=0)
        _same_law(p["embedding"], emb.weight.detach().double().numpy(), spec)


# --- Flax layer defaults ---------------------------------------------------------------------------


def test_flax_linen_dense_conv_embed_defaults() -> None:
    """flax/linen/linear.py: ``default_kernel_init = lecun_normal()`` (truncated) for Dense and
    Conv kernels, ``bias_init = zeros``; ``default_embed_init = variance_scaling(1.0, 'fan_in',
    'normal', out_axis=0)`` (untruncated N(0, 1/features))."""
    fl = pytest.importorskip("flax.linen")
    dense = _flax_params(fl.Dense(256), jnp.ones((1, 784)))
    lin = nn.Linear(784, 256)
    initlab.apply(lin, "flax_default", seed=0)
    _same_law(dense["kernel"], lin.weight.detach().double().numpy(), "Dense kernel")
    assert not dense["bias"].any() and not lin.bias.detach().any()
    assert np.abs(dense["kernel"]).max() <= 2 / math.sqrt(784) / 0.87962566103423978 * (1 + 1e-6)

    conv = _flax_params(fl.Conv(96, (3, 3)), jnp.ones((1, 8, 8, 48)))
    c = nn.Conv2d(48, 96, 3)
    initlab.apply(c, "flax_default", seed=0)
    _same_law(conv["kernel"], c.weight.detach().double().numpy(), "Conv kernel")
    assert not conv["bias"].any() and not c.bias.detach().any()

    embed = _flax_params(fl.Embed(3000, 64), jnp.zeros((1,), jnp.int32))
    e = nn.Embedding(3000, 64)
    initlab.apply(e, "flax_default", seed=0)
    ours = e.weight.detach().double().numpy()
    _same_law(embed["embedding"], ours, "Embed table")
    assert ours.std() == pytest.approx(1 / 8, rel=STD_REL)  # Var = 1/features = 1/64
    for w in (embed["embedding"], ours):  # untruncated: ~4.6% of entries beyond 2 std
        assert (np.abs(w) > 2 / 8).mean() == pytest.approx(0.0455, abs=0.004)


def test_flax_linen_conv_transpose_default() -> None:
    """flax/linen/linear.py ConvTranspose (``transpose_kernel=False``): the kernel is
    ``kernel_size + (in_features, features)``, so lecun_normal's fan_in is in * kh * kw; torch
    stores a ConvTranspose2d weight (in, out, kh, kw), whose torch tensor rule would call
    out * kh * kw the fan_in. flax_default follows Flax."""
    fl = pytest.importorskip("flax.linen")
    p = _flax_params(fl.ConvTranspose(32, (3, 3)), jnp.ones((1, 4, 4, 128)))
    ct = nn.ConvTranspose2d(128, 32, 3)
    rec = initlab.apply(ct, "flax_default", seed=0).layers[0]
    assert (rec.fan_in, rec.fan_out) == (128 * 9, 32 * 9)  # torch's tensor rule: (32 * 9, 128 * 9)
    _same_law(p["kernel"], ct.weight.detach().double().numpy(), "ConvTranspose kernel")
    assert initlab.check(ct, "flax_default").ok
    # a jax: name on a ConvTranspose: Flax passes the same (kh, kw, in, out) shape to it
    p = _flax_params(fl.ConvTranspose(32, (3, 3), kernel_init=jnn.he_uniform()), jnp.ones((1, 4, 4, 128)))
    initlab.apply(ct, "jax:he_uniform", seed=0)
    _same_law(p["kernel"], ct.weight.detach().double().numpy(), "ConvTranspose jax:he_uniform")


def _gates(params: dict, names: str, prefix: str) -> np.ndarray:
    return np.concatenate([params[prefix + g]["kernel"].T for g in names])  # each (in, u) -> (u, in)


@pytest.mark.parametrize("cell, torch_rnn, gates", [("LSTMCell", nn.LSTM, "ifgo"), ("GRUCell", nn.GRU, "rzn")])
def test_flax_recurrent_cells_are_per_gate(cell: str, torch_rnn, gates: str) -> None:
    """flax/linen/recurrent.py LSTMCell / GRUCell: one Dense per gate, ``kernel_init =
    lecun_normal()`` on each (in, units) input kernel, ``recurrent_kernel_init = orthogonal()`` on
    each (units, units) recurrent kernel, biases zeros: per gate, as torch's (G*u, in) blocks,
    not one (in, G*u) matrix as Keras. flax_default and the jax: names (as a cell's kernel_init)
    follow that."""
    fl = pytest.importorskip("flax.linen")
    d_in, u = 128, 64
    mod = getattr(fl, cell)(u)
    carry = mod.initialize_carry(jax.random.key(1), (1, d_in))
    p = _flax_params(mod, carry, jnp.ones((1, d_in)))
    rnn = torch_rnn(d_in, u)
    initlab.apply(rnn, "flax_default", seed=0)
    _same_law(_gates(p, gates, "i"), rnn.weight_ih_l0.detach().double().numpy(), f"{cell} input kernels")
    w_hh = rnn.weight_hh_l0.detach().double().numpy()
    for g, block in zip(gates, np.split(w_hh, len(gates))):
        ref = p["h" + g]["kernel"]
        assert np.allclose(ref @ ref.T, np.eye(u), atol=1e-4) and np.allclose(block @ block.T, np.eye(u), atol=1e-5)
    assert not any(np.any(v.get("bias", 0)) for v in p.values())
    assert not any(b.detach().any() for n, b in rnn.named_parameters() if n.startswith("bias"))
    assert initlab.check(rnn, "flax_default").ok

    # a JAX initializer as the cell's kernel_init: glorot on each (in, u) gate kernel, fan_avg (in + u)/2
    mod = getattr(fl, cell)(u, kernel_init=jnn.glorot_uniform())
    p = _flax_params(mod, carry, jnp.ones((1, d_in)))
    initlab.apply(rnn, "jax:glorot_uniform", seed=0)
    ours = rnn.weight_ih_l0.detach().double().numpy()
    _same_law(_gates(p, gates, "i"), ours, f"{cell} kernel_init=glorot_uniform")
    assert np.abs(ours).max() == pytest.approx(math.sqrt(6 / (d_in + u)), rel=0.01)
    # and jax:orthogonal on the recurrent weight: orthogonal per (u, u) gate, as Flax's default
    initlab.apply(rnn, "jax:orthogonal", seed=0)
    w_hh = rnn.weight_hh_l0.detach().double().numpy()
    assert all(np.allclose(b @ b.T, np.eye(u), atol=1e-5) for b in np.split(w_hh, len(gates)))


def test_flax_nnx_defaults() -> None:
    """flax/nnx/nn/linear.py: Linear and Conv ``kernel_init = lecun_normal()``, bias zeros; Embed
    ``default_embed_init = variance_scaling(1.0, 'fan_in', 'normal', out_axis=0)``."""
    nnx = pytest.importorskip("flax.nnx")
    rngs = nnx.Rngs(0)
    val = lambda v: np.asarray(v[...], dtype=np.float64)  # noqa: E731
    lin, conv, embed = nnx.Linear(784, 256, rngs=rngs), nnx.Conv(48, 96, (3, 3), rngs=rngs), nnx.Embed(3000, 64, rngs=rngs)
    for theirs, ours_mod in ((lin, nn.Linear(784, 256)), (conv, nn.Conv2d(48, 96, 3))):
        initlab.apply(ours_mod, "flax_default", seed=0)
        _same_law(val(theirs.kernel), ours_mod.weight.detach().double().numpy(), type(theirs).__name__)
        assert not val(theirs.bias).any() and not ours_mod.bias.detach().any()
    e = nn.Embedding(3000, 64)
    initlab.apply(e, "flax_default", seed=0)
    _same_law(val(embed.embedding), e.weight.detach().double().numpy(), "nnx.Embed")
