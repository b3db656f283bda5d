"""Statistical and parity tests of every registered scheme."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats as sps

from initlab.errors import InitlabError, UnknownNameError
from initlab.schemes import TRUNC_STD_CORRECTION, fans, gain, get_scheme, scheme_names
from initlab.schemes.laws import truncated_normal_moments

SHAPE = (600, 1000)  # 600k entries: 5-sigma bounds are tight, KS is powerful
DIRAC_SHAPE = (48, 48, 3, 3)


def _shape_for(name: str) -> tuple[int, ...]:
    return DIRAC_SHAPE if name == "dirac" else SHAPE


def _draw(spec: str, shape=SHAPE, seed: int = 0) -> torch.Tensor:
    t = torch.empty(shape, dtype=torch.float64)
    return get_scheme(spec).init_(t, generator=torch.Generator().manual_seed(seed))


RANDOM_SPECS = [n for n in scheme_names() if n not in ("lsuv", "lsuv_fastai")
                and get_scheme(n).law(_shape_for(n)).is_random] + [
    "uniform(a=-3, b=7)", "normal(mean=2, std=0.5)", "trunc_normal(mean=0.5, std=2, a=-1, b=3)",
    "truncated_normal(std=0.3, lower=-1, upper=2.5)", "he_normal(a=0.2, mode=fan_out)",
    "he_uniform(nonlinearity=tanh)", "glorot_normal(gain=2)", "orthogonal(gain=3)",
    "variance_scaling(scale=2, mode=fan_avg, distribution=uniform)",
    "variance_scaling(scale=0.5, mode=fan_out, distribution=normal)", "sparse(sparsity=0.5, std=2)",
    "keras:random_normal", "jax:truncated_normal", "keras:glorot_normal",
]


@pytest.mark.parametrize("spec", RANDOM_SPECS)
def test_moments_within_5_sigma_and_ks(spec: str) -> None:
    shape = _shape_for(get_scheme(spec).name)
    law = get_scheme(spec).law(shape)
    w = _draw(spec, shape).reshape(-1)
    n = w.numel()
    m, v = float(w.mean()), float(w.var(unbiased=False))
    assert abs(m - law.mean) <= 5 * math.sqrt(law.var / n), (m, law.mean)
    if law.family != "orthogonal":  # orthogonal entries are dependent: see the exact test below
        assert abs(v - law.var) <= 5 * math.sqrt(law.var_of_sample_var(n)), (v, law.var)
    sample = w[torch.randperm(n, generator=torch.Generator().manual_seed(1))[:50000]].numpy()
    cdf = law.cdf
    if law.family == "sparse":  # a point mass at 0 plus a normal: test each part
        assert float((w == 0).double().mean()) == pytest.approx(law.params["p_zero"], abs=1e-12)
        sample = sample[sample != 0]
        cdf = sps.norm(0, law.params["scale"]).cdf
    p = sps.kstest(sample, cdf).pvalue
    assert p > 1e-4, f"{spec}: KS p={p} against {law.describe()}"


@pytest.mark.parametrize("spec,other", [("glorot_uniform", "glorot_normal"), ("he_normal", "he_truncated_normal"),
                                        ("normal_recipe", "uniform(a=-0.0619, b=0.0619)")])
def test_ks_tells_families_apart(spec: str, other: str) -> None:
    """The KS check has power: same variance, another family, is rejected."""
    w = _draw(other).reshape(-1)[:50000].numpy()
    law = get_scheme(spec).law(SHAPE)
    assert sps.kstest(w, law.cdf).pvalue < 1e-6


@pytest.mark.parametrize("gain_", [1.0, 0.5, 2.0])
@pytest.mark.parametrize("shape", [(64, 64), (32, 100), (100, 32), (16, 8, 3, 3)])
def test_orthogonal_rows_or_columns_orthonormal(gain_: float, shape: tuple[int, ...]) -> None:
    w = _draw(f"orthogonal(gain={gain_})", shape).reshape(shape[0], -1)
    rows, cols = w.shape
    gram = w @ w.T if rows <= cols else w.T @ w
    torch.testing.assert_close(gram, gain_**2 * torch.eye(min(rows, cols), dtype=w.dtype), atol=1e-10, rtol=0)
    law = get_scheme(f"orthogonal(gain={gain_})").law(shape)
    assert float(w.pow(2).mean()) == pytest.approx(law.var + law.mean**2, rel=1e-9)


def test_deterministic_schemes_exact() -> None:
    assert torch.all(_draw("zeros", (5, 7)) == 0) and torch.all(_draw("ones", (5, 7)) == 1)
    assert torch.all(_draw("constant(0.25)", (3, 4)) == 0.25)
    torch.testing.assert_close(_draw("identity", (4, 6)), torch.eye(4, 6, dtype=torch.float64))
    d = _draw("dirac", (4, 4, 3, 3))
    for i in range(4):
        assert d[i, i, 1, 1] == 1
    assert float(d.sum()) == 4
    law = get_scheme("dirac(groups=2)").law((4, 2, 3))
    assert law.params["ones"] == 4


def test_sparse_exact_zero_count_per_column() -> None:
    w = _draw("sparse(sparsity=0.3, std=1)", (50, 40))
    assert torch.all((w == 0).sum(dim=0) == math.ceil(0.3 * 50))
    # reproducible from the generator alone (torch.nn.init.sparse_ is not)
    torch.testing.assert_close(w, _draw("sparse(sparsity=0.3, std=1)", (50, 40)))


# ---- parity with torch.nn.init --------------------------------------------------------

TORCH_PARITY = [
    ("uniform(a=-2, b=3)", lambda t, g: torch.nn.init.uniform_(t, -2, 3, generator=g)),
    ("normal(mean=1, std=2)", lambda t, g: torch.nn.init.normal_(t, 1, 2, generator=g)),
    ("trunc_normal(mean=0, std=1, a=-1, b=2)", lambda t, g: torch.nn.init.trunc_normal_(t, 0, 1, -1, 2, generator=g)),
    ("glorot_uniform", lambda t, g: torch.nn.init.xavier_uniform_(t, generator=g)),
    ("glorot_uniform(gain=2)", lambda t, g: torch.nn.init.xavier_uniform_(t, gain=2, generator=g)),
    ("glorot_normal", lambda t, g: torch.nn.init.xavier_normal_(t, generator=g)),
    ("he_uniform", lambda t, g: torch.nn.init.kaiming_uniform_(t, generator=g)),
    ("he_normal", lambda t, g: torch.nn.init.kaiming_normal_(t, generator=g)),
    ("he_normal(a=0.1, mode=fan_out)", lambda t, g: torch.nn.init.kaiming_normal_(t, 0.1, "fan_out", generator=g)),
    ("he_uniform(nonlinearity=relu)", lambda t, g: torch.nn.init.kaiming_uniform_(t, nonlinearity="relu", generator=g)),
    ("he_normal(nonlinearity=tanh)", lambda t, g: torch.nn.init.kaiming_normal_(t, nonlinearity="tanh", generator=g)),
    ("he_uniform(a=sqrt(5))", lambda t, g: torch.nn.init.kaiming_uniform_(t, a=math.sqrt(5), generator=g)),
    ("torch_default", lambda t, g: torch.nn.init.kaiming_uniform_(t, a=math.sqrt(5), generator=g)),
    ("orthogonal(gain=1.5)", lambda t, g: torch.nn.init.orthogonal_(t, 1.5, generator=g)),
    ("identity", lambda t, g: torch.nn.init.eye_(t)),
    ("zeros", lambda t, g: torch.nn.init.zeros_(t)),
    ("ones", lambda t, g: torch.nn.init.ones_(t)),
    ("constant(value=0.3)", lambda t, g: torch.nn.init.constant_(t, 0.3)),
]


PARITY_CASES = [(spec, fn, shape) for spec, fn in TORCH_PARITY for shape in [(64, 100), (8, 4, 3, 3)]
                if not (spec == "identity" and len(shape) != 2)]  # eye_ is 2-d only


@pytest.mark.parametrize("spec,torch_init,shape", PARITY_CASES,
                         ids=[f"{c[0]}-{len(c[2])}d" for c in PARITY_CASES])
def test_same_values_as_torch_nn_init(spec: str, torch_init, shape) -> None:
    ours = get_scheme(spec).init_(torch.empty(shape), generator=torch.Generator().manual_seed(7))
    theirs = torch_init(torch.empty(shape), torch.Generator().manual_seed(7))
    # same draws; bounds computed by algebraically equal formulas may differ in the last ulp
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=0)


def test_dirac_parity() -> None:
    ours = get_scheme("dirac(groups=2)").init_(torch.empty(8, 4, 3, 3))
    theirs = torch.nn.init.dirac_(torch.empty(8, 4, 3, 3), groups=2)
    assert torch.equal(ours, theirs)


def test_torch_default_matches_linear_reset_parameters() -> None:
    import initlab

    torch.manual_seed(3)
    ref = torch.nn.Linear(784, 256)
    mine = torch.nn.Linear(784, 256)
    initlab.apply(mine, "torch_default", seed=3)
    torch.testing.assert_close(mine.weight, ref.weight, rtol=1e-6, atol=0)
    torch.testing.assert_close(mine.bias, ref.bias, rtol=1e-6, atol=0)


@pytest.mark.parametrize("shape", [(10, 20), (3, 4, 5), (6, 3, 2, 2), (5, 2, 3, 3, 3), (7, 7)])
def test_fans_match_torch(shape) -> None:
    assert fans(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def test_keras_layout_fans() -> None:
    assert fans((784, 256), "keras") == (784, 256)  # Dense kernel (in, out)
    assert fans((3, 3, 16, 32), "keras") == (144, 288)  # Conv2D kernel (kh, kw, in, out)
    s = get_scheme("keras_default")
    assert s.law((784, 256), layout="keras").std == pytest.approx(s.law((256, 784)).std)


# ---- documented cross-framework facts -------------------------------------------------

def test_default_std_for_784_to_256() -> None:
    w = (256, 784)
    assert round(get_scheme("keras_default").law(w).std, 4) == 0.0439
    assert round(get_scheme("torch_default").law(w).std, 4) == 0.0206
    assert round(get_scheme("flax_default").law(w).std, 4) == 0.0357
    assert get_scheme("uniform_recipe").law(w).std == pytest.approx(1 / math.sqrt(3 * 784))
    assert get_scheme("normal_recipe").law(w).std == pytest.approx(1 / math.sqrt(784))


def test_truncation_constant_is_std_of_truncated_standard_normal() -> None:
    _, var, _ = truncated_normal_moments(-2.0, 2.0)
    assert math.sqrt(var) == pytest.approx(TRUNC_STD_CORRECTION, abs=1e-12)
    assert sps.truncnorm(-2, 2).std() == pytest.approx(TRUNC_STD_CORRECTION, abs=1e-12)


def test_dialects_resolve_to_framework_meaning() -> None:
    assert get_scheme("keras:glorot_normal").name == "glorot_truncated_normal"
    assert get_scheme("jax:he_normal").name == "he_truncated_normal"
    assert get_scheme("torch:xavier_normal").name == "glorot_normal"
    assert get_scheme("keras:random_normal").params["std"] == 0.05
    assert get_scheme("jax:truncated_normal").params["std"] == 0.01
    # raw vs variance-corrected truncated normal
    raw = get_scheme("truncated_normal(std=0.1)").law((10, 10))
    assert raw.std == pytest.approx(0.1 * TRUNC_STD_CORRECTION)
    corrected = get_scheme("variance_scaling(scale=0.01, mode=fan_in)").law((10, 1))
    assert corrected.std == pytest.approx(0.1)


@pytest.mark.parametrize("name,expected", [
    ("linear", 1.0), ("sigmoid", 1.0), ("tanh", 5 / 3), ("relu", math.sqrt(2)), ("selu", 0.75),
    ("leaky_relu", math.sqrt(2 / (1 + 0.01**2))), ("conv2d", 1.0)])
def test_gains_match_torch(name: str, expected: float) -> None:
    assert gain(name) == pytest.approx(torch.nn.init.calculate_gain(name))
    assert gain(name) == pytest.approx(expected)


@pytest.mark.parametrize("name,fn", [("gelu", torch.nn.functional.gelu), ("silu", torch.nn.functional.silu)])
def test_gelu_silu_gain_preserves_second_moment(name: str, fn) -> None:
    z = torch.randn(2_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert gain(name) == pytest.approx(1 / math.sqrt(float(fn(z).pow(2).mean())), rel=3e-3)


def test_spec_round_trip_and_config() -> None:
    for spec in ["he_normal(a=0.1, mode=fan_out)", "uniform(a=-0.5, b=0.5)", "constant(value=0.1)",
                 "he_uniform(a=2.23606797749979)", "orthogonal"]:
        s = get_scheme(spec)
        assert get_scheme(s.spec) == s
        assert get_scheme(s.config()) == s
    assert get_scheme("constant(0.1)").params == {"value": 0.1}
    assert get_scheme("uniform(-1, 1)").spec == "uniform(a=-1.0)"  # b=1 is the default
    assert get_scheme("Glorot-Uniform").name == "glorot_uniform"


# ---- bad input -------------------------------------------------------------------------

@pytest.mark.parametrize("spec,fragment", [
    ("he_normla", "did you mean he_normal"),
    ("glorot", "did you mean"),
    ("normal(std=-1)", "std must be >= 0"),
    ("uniform(a=2, b=1)", "a <= b"),
    ("sparse(sparsity=1.0)", "sparsity must be in [0, 1)"),
    ("sparse(sparsity=-0.1)", "sparsity must be in [0, 1)"),
    ("he_normal(mode=fan_sideways)", "unknown mode"),
    ("he_normal(b=1)", "has no parameter 'b'"),
    ("he_normal(nonlinearity=swish)", "unknown nonlinearity"),
    ("normal(std=abc)", "must be a number"),
    ("uniform(a=1", "malformed"),
    ("variance_scaling(distribution=cauchy)", "unknown distribution"),
    # the spec grammar
    ("constant(value=9**9**9)", "exponent"),
    ("constant(value=2**2000)", "exponent"),
    ("constant(value=10**400)", "overflows"),
    ("constant(value=1e308*10)", "overflows"),
    ("constant(value=1e999)", "too large for a float"),
    ("constant(value=1" + "0" * 400 + ")", "too large for a float"),
    ("constant(value=inf)", "value must be a finite number"),
    ("constant(value=-inf)", "value must be a finite number"),
    ("constant(value=nan)", "value must be a finite number"),
    ("constant(value=1e39)", "float32"),
    ("constant(value=inf-inf)", "finite numbers only"),
    ("constant(value=1/0)", "division by zero"),
    ("constant(value=sqrt(-1))", "negative number"),
    ("constant(value=(-8)**(1/3))", "fractional power"),
    ("constant(value=0**-1)", "zero to a negative power"),
    ("constant(value=fan_in*2)", "the word 'fan_in'"),
    ("constant(value='a'+'b')", "the word 'a'"),
    ("constant(value=true+1)", "True"),
    ("constant(value=-fan_in)", "the word 'fan_in'"),
    ("uniform(a=1, a=2)", "uniform: a given twice"),
    ("uniform(a=1, 2)", "positional argument follows keyword"),
    ("uniform(*x)", "unpacks"),
    ("uniform(**x)", "**"),
    ("normal(std=x.real)", "cannot read"),
    ("normal(std=x[0])", "cannot read"),
    ("normal(std=(lambda: 1)())", "unknown function"),
    ("normal(std=exp(1))", "unknown function 'exp'"),
    ("normal(std=__import__('os'))", "unknown function"),
    ("normal(std=sqrt(1, 2))", "sqrt"),
    ("normal(std=sqrt(x=2))", "sqrt"),
    ("normal(std=1j)", "complex"),
    ("normal(std=b'1')", "bytes"),
    ("normal(std=...)", "cannot read"),
    ("normal(std=f'{1}')", "cannot read"),
    ("normal(std=1 if 1 else 2)", "cannot read"),
    ("normal(std=(x := 1))", "cannot read"),
    ("normal(std=1 < 2)", "cannot read"),
    ("normal(std=7 % 2)", "'%'"),
    ("normal(std=7 // 2)", "'//'"),
    ("normal(std=" + "(" * 40 + "1" + ")" * 40 + ")", "levels"),
    ("normal(std=" + "-" * 200 + "1)", "levels"),
    ("normal(std=" + "1+" * 300 + "1)", "levels"),
    ("normal(" + "1" * 2000 + ")", "characters long"),
    ("constant(\x00)", "null character"),
    ("uniform(1)(2)", "malformed"),
    ("uniform(1) + f(2)", "malformed"),
    ("uniform(a=1,, b=2)", "malformed"),
    ("(a=1)", "no name"),
    # parameters outside their domain
    ("lsuv(tol=-1)", "tol must be > 0"),
    ("lsuv(tol=0)", "tol must be > 0"),
    ("lsuv_fastai(max_iter=0)", "max_iter must be >= 1"),
    ("lsuv(max_iter=2.5)", "max_iter must be a whole number"),
    ("glorot_uniform(gain=-1)", "gain must be >= 0"),
    ("orthogonal(gain=-0.5)", "gain must be >= 0"),
    ("variance_scaling(scale=-1)", "scale must be >= 0"),
    ("variance_scaling(mode=fan)", "unknown mode 'fan'"),
    ("he_normal(mode=FAN_IN)", "unknown mode"),
    ("trunc_normal(std=0)", "std must be > 0"),
    ("truncated_normal(std=-1)", "std must be > 0"),
    ("trunc_normal(a=1, b=1)", "a < b"),
    ("truncated_normal(lower=1, upper=-1)", "lower < upper"),
    ("trunc_normal(a=50, b=60)", "5 std"),
    ("truncated_normal(mean=1e10, std=1e-10)", "bounds"),
    ("dirac(groups=0)", "groups must be >= 1"),
    ("sparse(std=-1)", "std must be >= 0"),
    ("sparse(sparsity=2)", "sparsity must be in [0, 1)"),
    ("normal(std=-0.1)", "std must be >= 0"),
    ("uniform(a=1, b=0)", "a <= b"),
    ("normal(mean=-1e39)", "mean must be at most"),
])
def test_bad_specs_raise_one_clear_line(spec: str, fragment: str) -> None:
    with pytest.raises(InitlabError) as err:
        get_scheme(spec)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_name_is_keyerror_too() -> None:
    with pytest.raises(UnknownNameError):
        get_scheme("nope_nope")
    with pytest.raises(KeyError):
        get_scheme("nope_nope")


@pytest.mark.parametrize("shape", [(), (10,)])
@pytest.mark.parametrize("spec", ["he_normal", "glorot_uniform", "lecun_truncated_normal", "orthogonal",
                                  "normal_recipe"])
def test_fan_based_schemes_reject_0d_and_1d(spec: str, shape) -> None:
    with pytest.raises(InitlabError, match="at least 2 dims"):
        get_scheme(spec).init_(torch.empty(shape))
    with pytest.raises(InitlabError, match="at least 2 dims"):
        get_scheme(spec).law(shape)


def test_non_fan_schemes_accept_vectors() -> None:
    assert get_scheme("normal(std=2)").init_(torch.empty(10)).shape == (10,)
    assert torch.all(get_scheme("zeros").init_(torch.empty(())) == 0)


# ---- the spec grammar ------------------------------------------------------------------

@pytest.mark.parametrize("spec,expected", [
    ("normal(std=1/sqrt(784))", {"std": 1 / 28}),
    ("uniform(-sqrt(6/1040), sqrt(6/1040))", {"a": -math.sqrt(6 / 1040), "b": math.sqrt(6 / 1040)}),
    ("constant(-(1 + 2) * 3)", {"value": -9.0}),
    ("constant(2**-3)", {"value": 0.125}),
    ("constant(pi / e)", {"value": math.pi / math.e}),
    ("constant(1_000)", {"value": 1000.0}),
    ("he_normal(mode=\"fan_out\")", {"a": 0.0, "mode": "fan_out", "nonlinearity": "leaky_relu"}),
    ("dirac(groups=2**3)", {"groups": 8}),
])
def test_spec_grammar_values(spec: str, expected: dict) -> None:
    params = get_scheme(spec).params
    assert {k: params[k] for k in expected} == pytest.approx(expected)


# ---- parameter domains -----------------------------------------------------------------

@pytest.mark.parametrize("spec", ["uniform(a=1, b=1)", "normal(std=0)", "sparse(sparsity=0)",
                                  "variance_scaling(scale=0)", "glorot_normal(gain=0)",
                                  "orthogonal(gain=0)", "lsuv(tol=1e-9, max_iter=1)",
                                  "constant(-3.4e38)", "trunc_normal(a=4.9, b=100)"])
def test_domain_boundaries_are_accepted(spec: str) -> None:
    get_scheme(spec)


def test_every_name_and_dialect_satisfies_its_own_domains() -> None:
    for name in scheme_names(aliases=True):
        get_scheme(name)


@pytest.mark.parametrize("params,fragment", [
    ({"a": float("inf")}, "a must be a finite number"),
    ({"a": float("nan")}, "a must be a finite number"),
    ({"b": 10**400}, "b must be at most"),
    ({"b": 10**5000}, "b must be at most"),
    ({"a": "x"}, "a must be a number"),
    ({"a": True}, "a must be a number"),
    ({"b": torch.ones(3, 3)}, "b must be a number"),
])
def test_python_values_go_through_the_same_checks(params: dict, fragment: str) -> None:
    with pytest.raises(InitlabError) as err:
        get_scheme("uniform", **params)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_config_dicts() -> None:
    assert get_scheme({"name": "uniform", "params": {"a": -1}}, b=2).params == {"a": -1.0, "b": 2.0}
    for bad in [{"name": "uniform", "params": 3}, {"name": "uniform", "params": {1: 2}}, {"name": 3}]:
        with pytest.raises(InitlabError):
            get_scheme(bad)


# ---- dialects: each framework's own words, as its documentation states them --------------

@pytest.mark.parametrize("spec,canonical,params", [
    # Keras 3 keras/src/initializers/__init__.py: "normal" -> RandomNormal, "uniform" ->
    # RandomUniform, "zero" -> Zeros, "one" -> Ones; RandomNormal(mean=0.0, stddev=0.05),
    # RandomUniform(minval=-0.05, maxval=0.05)
    ("keras:normal", "normal", {"mean": 0.0, "std": 0.05}),
    ("keras:uniform", "uniform", {"a": -0.05, "b": 0.05}),
    ("keras:zero", "zeros", {}),
    ("keras:one", "ones", {}),
    ("keras:random_normal(stddev=0.1)", "normal", {"std": 0.1}),
    ("keras:random_uniform(minval=-1, maxval=2)", "uniform", {"a": -1.0, "b": 2.0}),
    ("keras:truncated_normal(stddev=0.2)", "truncated_normal", {"std": 0.2}),
    # jax.nn.initializers: uniform(scale=1e-2) is U[0, scale); normal(stddev=1e-2);
    # xavier_* / kaiming_* are glorot_* / he_* (the normal ones truncated)
    ("jax:uniform", "uniform", {"a": 0.0, "b": 0.01}),
    ("jax:normal(stddev=0.5)", "normal", {"std": 0.5}),
    ("jax:xavier_uniform", "glorot_uniform", {}),
    ("jax:xavier_normal", "glorot_truncated_normal", {}),
    ("jax:kaiming_uniform", "he_uniform", {}),
    ("jax:kaiming_normal", "he_truncated_normal", {}),
    # torch.nn.init: in-place names end in "_"; constant_(tensor, val)
    ("torch:kaiming_normal_", "he_normal", {}),
    ("torch:xavier_uniform_", "glorot_uniform", {}),
    ("torch:constant_(val=0.3)", "constant", {"value": 0.3}),
])
def test_a_framework_word_means_what_the_framework_does(spec, canonical, params):
    s = get_scheme(spec)
    assert s.name == canonical
    assert {k: s.params[k] for k in params} == pytest.approx(params)


def test_keras_variance_scaling_reads_normal_as_truncated():
    """Keras' VarianceScaling: distribution 'normal' is the legacy word for the truncated
    normal, 'untruncated_normal' the plain one; JAX's variance_scaling calls the plain one
    'normal' (as initlab does)."""
    fam = lambda spec: get_scheme(spec).law((256, 784)).family  # noqa: E731
    assert fam("keras:variance_scaling(distribution=normal)") == "truncated_normal"
    assert fam("keras:variance_scaling(distribution=truncated_normal)") == "truncated_normal"
    assert fam("keras:variance_scaling(distribution=untruncated_normal)") == "normal"
    assert fam("jax:variance_scaling(distribution=normal)") == "normal"
    k = get_scheme("keras:variance_scaling(scale=2.0, mode=fan_avg, distribution=untruncated_normal)")
    assert k.law((256, 784)).std == pytest.approx(get_scheme("glorot_normal(gain=sqrt(2))").law((256, 784)).std)
    with pytest.raises(InitlabError, match="distribution"):
        get_scheme("keras:variance_scaling(distribution=cauchy)")
