"""The built-in schemes. Each is a small specialization of a sampler in
:mod:`initlab.schemes.core`; fan-based ones of :class:`VarianceScalingSampler`.

``Var`` below is the variance of one weight entry; ``fan`` is fan_in, fan_out or
fan_avg = (fan_in + fan_out)/2; ``g`` is a gain from :func:`initlab.schemes.gains.gain`.

Each entry declares its parameters' valid values next to their defaults (``domains`` and
``order``, checked by :func:`initlab.schemes.registry.get_scheme` before the sampler is
built); a nonlinearity name is checked by :func:`~initlab.schemes.gains.gain` itself.
"""

from __future__ import annotations

from initlab.schemes.core import (
    DISTRIBUTIONS, ConstantSampler, DataDependentSampler, DiracSampler, NormalSampler,
    OrthogonalSampler, SparseSampler, TruncNormalSampler, UniformSampler,
    VarianceScalingSampler as VS,
)
from initlab.schemes.dialects import LAYOUTS, FrameworkDefaultScheme, IdentitySampler
from initlab.schemes.fans import KERAS_MODES, MODES
from initlab.schemes.gains import gain
from initlab.schemes.gradinit import GRADINIT, GradInitScheme
from initlab.schemes.lsuv import LSUVScheme
from initlab.schemes.metainit import METAINIT, MetaInitScheme
from initlab.schemes.optimized import base_sampler
from initlab.schemes.registry import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Entry, Range, register
from initlab.schemes.structured import (
    FIXUP, SKIPINIT, XIAO, ZERO, DeltaOrthogonalSampler, FixupScheme, SkipInitScheme, ZerOSampler, ZerOScheme,
)

TORCH = "PyTorch torch.nn.init"
KERAS = "Keras keras.initializers"
JAX = "JAX jax.nn.initializers"
ARTICLE = "the article 'Effects of Weight Initialization on Neural Networks'"
GLOROT = "Glorot & Bengio 2010, 'Understanding the difficulty of training deep feedforward neural networks'"
HE = "He et al. 2015, 'Delving Deep into Rectifiers' (ICCV)"
LECUN = "LeCun et al. 1998, 'Efficient BackProp'"


def _kaiming_scale(a: float, nonlinearity: str) -> float:
    return gain(nonlinearity, a) ** 2


def _sampler_for(dist: str):
    # ``layout`` (torch or keras) changes which tensor and fans a layer gives the sampler
    # (initlab.schemes.dialects), not the sampler
    def build_glorot(gain: float, layout: str) -> VS:  # noqa: A002 - torch's parameter name
        return VS(gain * gain, "fan_avg", dist)

    def build_he(a: float, mode: str, nonlinearity: str, layout: str) -> VS:
        return VS(_kaiming_scale(a, nonlinearity), mode, dist)

    def build_lecun(layout: str) -> VS:
        return VS(1.0, "fan_in", dist)

    return build_glorot, build_he, build_lecun


#: ``layout=keras`` / ``layout=jax``: the dialect aliases of Keras and of JAX (as Flax's layers
#: call its initializers) follow their fans on every layer type (initlab.schemes.dialects)
KERAS_LAYOUT = {"layout": "keras"}
JAX_LAYOUT = {"layout": "jax"}


def _split(aliases: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, dict[str, str]]]:
    """Plain aliases, and the keras: / jax: ones as dialects with ``layout=keras`` / ``jax``."""
    plain = tuple(a for a in aliases if not a.startswith(("keras:", "jax:")))
    return plain, {a: dict(KERAS_LAYOUT if a.startswith("keras:") else JAX_LAYOUT)
                   for a in aliases if a.startswith(("keras:", "jax:"))}


#: Keras' VarianceScaling distribution words, in initlab's (Keras reads the legacy
#: 'normal' as 'truncated_normal'; its plain normal is 'untruncated_normal').
KERAS_DISTRIBUTIONS = {"truncated_normal": "truncated_normal", "normal": "truncated_normal",
                       "untruncated_normal": "normal", "uniform": "uniform"}


def _register_all() -> None:
    # --- the article's schemes -------------------------------------------------------
    register(Entry("zeros", lambda: ConstantSampler(0.0), {}, "w = 0", f"{ARTICLE}; {TORCH}.zeros_",
                   group="article", aliases=("zero", "torch:zeros", "keras:zeros", "keras:zero", "jax:zeros")))
    register(Entry("ones", lambda: ConstantSampler(1.0), {}, "w = 1", f"{ARTICLE}; {TORCH}.ones_",
                   group="article", aliases=("one", "torch:ones", "keras:ones", "keras:one", "jax:ones")))
    register(Entry("uniform_0_1", lambda: UniformSampler(0.0, 1.0), {}, "w ~ U[0, 1]", ARTICLE,
                   group="article", aliases=("uniform01", "u01")))
    register(Entry("uniform_centered", lambda: UniformSampler(-0.5, 0.5), {}, "w ~ U[-0.5, 0.5]", ARTICLE,
                   group="article", aliases=("uniform_pm_half", "uniform_centred")))
    register(Entry("uniform_recipe", lambda: VS(1.0 / 3.0, "fan_in", "uniform"), {},
                   "w ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))  (std = 1/sqrt(3 fan_in))",
                   f"{ARTICLE}: its 'uniform recipe'", group="article", aliases=("article_uniform",)))
    register(Entry("normal_recipe", lambda: VS(1.0, "fan_in", "normal"), {},
                   "w ~ N(0, std = 1/sqrt(fan_in))", f"{ARTICLE}: its 'normal recipe'",
                   group="article", aliases=("article_normal",)))
    register(Entry("keras_default", lambda: VS(1.0, "fan_avg", "uniform"), {},
                   "w ~ U(-L, L), L = sqrt(6/(fan_in+fan_out)); bias 0  (Keras Dense default)",
                   f"{KERAS}: Dense(kernel_initializer='glorot_uniform', bias_initializer='zeros')",
                   group="framework", aliases=("keras:default", "keras:dense_default"),
                   scheme_class=FrameworkDefaultScheme,
                   note="layer-aware (initlab.schemes.dialects): Embedding U(-0.05, 0.05); LSTM/GRU/RNN kernel "
                        "glorot_uniform on one (in, G*units) matrix, recurrent kernel one orthogonal (units, G*units) "
                        "matrix, bias 0 with the LSTM forget gate's 1 (unit_forget_bias)"))

    # --- basic distributions -----------------------------------------------------------
    register(Entry("constant", lambda value: ConstantSampler(value), {"value": 0.0}, "w = value",
                   f"{TORCH}.constant_", aliases=("torch:constant", "keras:constant", "jax:constant")))
    register(Entry("uniform", lambda a, b: UniformSampler(a, b), {"a": 0.0, "b": 1.0}, "w ~ U[a, b]",
                   f"{TORCH}.uniform_ (defaults [0, 1]); Keras RandomUniform (defaults [-0.05, 0.05]); "
                   f"{JAX}.uniform (U[0, 0.01))",
                   aliases=("torch:uniform",), order=(("a", "<=", "b"),),
                   dialects={"keras:random_uniform": {"a": -0.05, "b": 0.05},
                             "keras:uniform": {"a": -0.05, "b": 0.05}, "jax:uniform": {"a": 0.0, "b": 0.01}},
                   note="jax:uniform(scale=s) is U[0, s) (jax.nn.initializers.uniform(scale=1e-2))"))
    register(Entry("normal", lambda mean, std: NormalSampler(mean, std), {"mean": 0.0, "std": 1.0},
                   "w ~ N(mean, std^2)",
                   f"{TORCH}.normal_ (std 1); Keras RandomNormal (std 0.05); jax normal (std 0.01)",
                   aliases=("torch:normal", "gaussian"), domains={"std": NON_NEGATIVE},
                   dialects={"keras:random_normal": {"std": 0.05}, "keras:normal": {"std": 0.05},
                             "jax:normal": {"std": 0.01}}))
    register(Entry("trunc_normal", lambda mean, std, a, b: TruncNormalSampler(mean, std, a, b),
                   {"mean": 0.0, "std": 1.0, "a": -2.0, "b": 2.0},
                   "w ~ N(mean, std^2) restricted to [a, b] (absolute bounds; std NOT corrected)",
                   f"{TORCH}.trunc_normal_", aliases=("torch:trunc_normal", "truncated_normal_abs"),
                   domains={"std": POSITIVE}, order=(("a", "<", "b"),)))
    register(Entry("truncated_normal",
                   lambda mean, std, lower, upper: TruncNormalSampler(mean, std, mean + lower * std,
                                                                      mean + upper * std),
                   {"mean": 0.0, "std": 0.05, "lower": -2.0, "upper": 2.0},
                   "w ~ N(mean, std^2) restricted to [mean+lower*std, mean+upper*std] "
                   "(bounds in std units; std NOT corrected)",
                   f"{KERAS}.TruncatedNormal (std 0.05); {JAX}.truncated_normal (std 0.01)",
                   aliases=("keras:truncated_normal",), dialects={"jax:truncated_normal": {"std": 0.01}},
                   domains={"std": POSITIVE}, order=(("lower", "<", "upper"),)))

    # --- the fan-based family ---------------------------------------------------------
    register(Entry("variance_scaling", lambda scale, mode, distribution, layout: VS(scale, mode, distribution),
                   {"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal", "layout": "torch"},
                   "Var(w) = scale / fan(mode); uniform: U(+-sqrt(3 Var)); normal: N(0, sqrt(Var)); "
                   "truncated_normal: N(0, sqrt(Var)/0.8796) cut at +-2 of its std",
                   f"{JAX}.variance_scaling (its 'normal' is untruncated, as here; mode fan_geo_avg: "
                   "sqrt(fan_in fan_out))", group="fan",
                   dialects={"jax:variance_scaling": dict(JAX_LAYOUT)},
                   domains={"scale": NON_NEGATIVE, "mode": MODES, "distribution": DISTRIBUTIONS,
                            "layout": LAYOUTS}))
    register(Entry("keras_variance_scaling",
                   lambda scale, mode, distribution, layout: VS(scale, mode, KERAS_DISTRIBUTIONS[distribution]),
                   {"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal", "layout": "keras"},
                   "Keras' words: 'normal' and 'truncated_normal' are the variance-corrected truncated "
                   "normal, 'untruncated_normal' the plain one, 'uniform' U(+-sqrt(3 Var))",
                   f"{KERAS}.VarianceScaling (Keras reads distribution='normal' as 'truncated_normal')",
                   group="framework", aliases=("keras:variance_scaling",),
                   domains={"scale": NON_NEGATIVE, "mode": KERAS_MODES,
                            "distribution": tuple(KERAS_DISTRIBUTIONS), "layout": LAYOUTS}))
    dists = {"uniform": "uniform", "normal": "normal", "truncated_normal": "truncated_normal"}
    for suffix, dist in dists.items():
        build_glorot, build_he, build_lecun = _sampler_for(dist)
        shape_txt = {"uniform": "U(+-sqrt(3) s)", "normal": "N(0, s)",
                     "truncated_normal": "N(0, s/0.8796) cut at +-2 std (Var = s^2)"}[suffix]
        g_alias = {"uniform": ("xavier_uniform", "torch:xavier_uniform", "keras:glorot_uniform",
                               "jax:glorot_uniform", "jax:xavier_uniform"),
                   "normal": ("xavier_normal", "torch:xavier_normal"),
                   "truncated_normal": ("xavier_truncated_normal", "keras:glorot_normal",
                                        "jax:glorot_normal", "jax:xavier_normal")}[suffix]
        g_alias, g_dialects = _split(g_alias)
        register(Entry(f"glorot_{suffix}", build_glorot, {"gain": 1.0, "layout": "torch"},
                       f"w ~ {shape_txt}, s = gain * sqrt(2/(fan_in+fan_out))",
                       GLOROT + {"uniform": f"; {TORCH}.xavier_uniform_; Keras/JAX glorot_uniform",
                                 "normal": f"; {TORCH}.xavier_normal_ (Keras/JAX glorot_normal are truncated)",
                                 "truncated_normal": "; Keras/JAX glorot_normal"}[suffix],
                       group="fan", aliases=g_alias, dialects=g_dialects,
                       domains={"gain": NON_NEGATIVE, "layout": LAYOUTS}))
        h_alias = {"uniform": ("kaiming_uniform", "torch:kaiming_uniform", "keras:he_uniform", "jax:he_uniform",
                               "jax:kaiming_uniform"),
                   "normal": ("kaiming_normal", "torch:kaiming_normal"),
                   "truncated_normal": ("kaiming_truncated_normal", "keras:he_normal", "jax:he_normal",
                                        "jax:kaiming_normal")}[suffix]
        h_alias, h_dialects = _split(h_alias)
        register(Entry(f"he_{suffix}", build_he, {"a": 0.0, "mode": "fan_in", "nonlinearity": "leaky_relu",
                                                  "layout": "torch"},
                       f"w ~ {shape_txt}, s = gain(nonlinearity, a) / sqrt(fan(mode)); "
                       "gain = sqrt(2/(1+a^2)) for leaky_relu",
                       HE + {"uniform": f"; {TORCH}.kaiming_uniform_; Keras/JAX he_uniform",
                             "normal": f"; {TORCH}.kaiming_normal_ (Keras/JAX he_normal are truncated)",
                             "truncated_normal": "; Keras/JAX he_normal"}[suffix],
                       group="fan", aliases=h_alias, dialects=h_dialects,
                       domains={"mode": MODES, "layout": LAYOUTS}))
        l_alias = {"uniform": ("keras:lecun_uniform", "jax:lecun_uniform"),
                   "normal": (),
                   "truncated_normal": ("keras:lecun_normal", "jax:lecun_normal")}[suffix]
        l_alias, l_dialects = _split(l_alias)
        register(Entry(f"lecun_{suffix}", build_lecun, {"layout": "torch"},
                       f"w ~ {shape_txt}, s = 1/sqrt(fan_in)",
                       LECUN + {"uniform": "; Keras/JAX lecun_uniform",
                                "normal": " (untruncated; Keras/JAX lecun_normal are truncated)",
                                "truncated_normal": "; Keras/JAX lecun_normal"}[suffix],
                       group="fan", aliases=l_alias, dialects=l_dialects, domains={"layout": LAYOUTS}))

    # --- structured --------------------------------------------------------------------
    register(Entry("orthogonal", lambda gain, layout: OrthogonalSampler(gain), {"gain": 1.0, "layout": "torch"},
                   "W = gain * Q, Q Haar-orthogonal on (rows, prod(rest)); W W^T = gain^2 I (rows <= cols)",
                   f"Saxe et al. 2014, 'Exact solutions to the nonlinear dynamics of learning in deep "
                   f"linear networks'; {TORCH}.orthogonal_",
                   group="structured", aliases=("torch:orthogonal",),
                   dialects={"keras:orthogonal": dict(KERAS_LAYOUT), "jax:orthogonal": dict(JAX_LAYOUT)},
                   domains={"gain": NON_NEGATIVE, "layout": LAYOUTS}))
    register(Entry("identity", lambda gain: IdentitySampler(gain), {"gain": 1.0},
                   "W = gain * I (gain on the diagonal of a 2-d weight)",
                   f"{TORCH}.eye_ (gain 1); Keras Identity(gain=1.0)", group="structured",
                   aliases=("eye", "torch:eye", "keras:identity"), domains={"gain": NON_NEGATIVE}))
    register(Entry("dirac", lambda groups: DiracSampler(int(groups)), {"groups": 1},
                   "identity convolution: W[i, i, centre] = 1 within each group",
                   f"{TORCH}.dirac_", group="structured", aliases=("torch:dirac", "delta"),
                   domains={"groups": AT_LEAST_ONE}))
    register(Entry("sparse", lambda sparsity, std: SparseSampler(sparsity, std), {"sparsity": 0.1, "std": 0.01},
                   "w ~ N(0, std), then ceil(sparsity*rows) entries of each column set to 0",
                   f"Martens 2010, 'Deep learning via Hessian-free optimization'; {TORCH}.sparse_",
                   group="structured", aliases=("torch:sparse",),
                   domains={"sparsity": Range(0, 1, hi_open=True), "std": NON_NEGATIVE}))

    # --- structure-aware (initlab.schemes.structured) -----------------------------------
    register(Entry("delta_orthogonal", lambda gain, convention: DeltaOrthogonalSampler(gain, convention),
                   {"gain": 1.0, "convention": "initlab"},
                   "conv: W[:, :, k//2, ...] = gain * Q (Q Haar-orthogonal c_out x c_in: W_c^T W_c = gain^2 I "
                   "for c_out >= c_in, W_c W_c^T = gain^2 I otherwise), 0 at every other tap; Linear: gain * Q",
                   f"{XIAO}; {JAX}.delta_orthogonal (jax: 3-5-d kernels, in <= out channels, centre (k-1)//2)",
                   group="structured", dialects={"jax:delta_orthogonal": {"convention": "jax"}},
                   domains={"gain": NON_NEGATIVE, "convention": ("initlab", "jax")}))
    register(Entry("fixup", lambda mode: VS(2.0, mode, "normal"), {"mode": "fan_in"},
                   "classifier and each residual branch's last layer = 0 (weight, bias); branch inner layers "
                   "w ~ N(0, 2 L^(-1/(m-1)) / fan) (He x L^(-1/(2m-2)); L branches, m layers per branch); "
                   "other layers He N(0, 2/fan); scalar multipliers 1, scalar biases 0 where the model has them",
                   FIXUP, group="structured", scheme_class=FixupScheme, domains={"mode": MODES},
                   note="model-level: needs residual branches (initlab.structure); the resnet family has no "
                        "scalar multipliers/biases, so only its existing parameters are initialized"))
    register(Entry("zero_init", lambda scaling: ZerOSampler(scaling), {"scaling": "paper"},
                   "ZerO, deterministic: W[P, Q] = I (P = Q), partial identity (P < Q), c * H_m[:P, :Q] (P > Q; "
                   "m = ceil(log2 P), Sylvester-Hadamard H_m, c = 2^(-(m-1)/2), or 2^(-m/2) with "
                   "scaling=orthonormal); conv: that matrix at the centre tap; residual branches' last layers 0",
                   f"{ZERO}; scaling=orthonormal: the authors' example_mnist.ipynb", group="structured",
                   scheme_class=ZerOScheme, aliases=("zero_hadamard",),
                   domains={"scaling": ("paper", "orthonormal")},
                   note="not 'zeros' (all weights 0): ZerO is identity/Hadamard matrices; model-level for "
                        "residual networks (zeroes each branch's last layer), per-weight for MLPs and CNNs"))
    register(Entry("skipinit", lambda alpha, mode: VS(2.0, mode, "normal"), {"alpha": 0.0, "mode": "fan_in"},
                   "out = act(alpha * branch(x) + shortcut(x)) with alpha = 0 (the model's scalar gain); "
                   "without one, each branch's last layer x alpha (alpha = 0: zeroed); other layers He N(0, 2/fan)",
                   SKIPINIT, group="structured", scheme_class=SkipInitScheme,
                   domains={"alpha": NON_NEGATIVE, "mode": MODES},
                   note="model-level: needs residual branches; scaling the last layer gives SkipInit's forward "
                        "map at init, not its gradients (see initlab.schemes.structured)"))

    # --- framework defaults ---------------------------------------------------------------
    register(Entry("torch_default", lambda: VS(1.0 / 3.0, "fan_in", "uniform"), {},
                   "w ~ U(+-1/sqrt(fan_in)) (kaiming_uniform, a=sqrt(5)); bias ~ U(+-1/sqrt(fan_in))",
                   f"PyTorch nn.Linear/nn.ConvNd.reset_parameters", group="framework", bias="fan_in_uniform",
                   aliases=("pytorch_default", "torch:default"), scheme_class=FrameworkDefaultScheme,
                   note="layer-aware (initlab.schemes.dialects): Bilinear weight and bias U(+-1/sqrt(in1_features)), "
                        "Embedding N(0, 1), RNN/LSTM/GRU every weight and bias U(+-1/sqrt(hidden_size))"))
    register(Entry("flax_default", lambda: VS(1.0, "fan_in", "truncated_normal"), {},
                   "w ~ lecun_normal (truncated, Var = 1/fan_in); bias 0",
                   "Flax linen.Dense default (kernel_init=lecun_normal(), bias_init=zeros)",
                   group="framework", aliases=("flax:default", "jax:dense_default"),
                   scheme_class=FrameworkDefaultScheme,
                   note="layer-aware (initlab.schemes.dialects): Embed N(0, 1/dim) untruncated (default_embed_init); "
                        "ConvTranspose lecun_normal on Flax's `(*k, in, out)` kernel fans (fan_in = in * k^d); "
                        "LSTM/GRU cells: kernel lecun_normal and recurrent kernel orthogonal, per gate"))

    # --- data-dependent ---------------------------------------------------------------------
    register(Entry("lsuv", lambda tol, max_iter: DataDependentSampler(OrthogonalSampler(1.0)),
                   {"tol": 0.1, "max_iter": 10},
                   "orthonormal pre-init, then per layer W /= sqrt(Var(out)) until |Var(out) - 1| < tol",
                   "Mishkin & Matas 2016, 'All you need is a good init' (ICLR); Tol_var=0.1, T_max=10",
                   group="data", scheme_class=LSUVScheme, aliases=("lsuv_mishkin",),
                   domains={"tol": POSITIVE, "max_iter": AT_LEAST_ONE}))
    register(Entry("lsuv_fastai", lambda tol, max_iter: DataDependentSampler(OrthogonalSampler(1.0)),
                   {"tol": 1e-3, "max_iter": 10},
                   "orthonormal pre-init, then per layer b -= mean(out) and W /= std(out) until "
                   "|mean| < tol and |std - 1| < tol",
                   "fast.ai course part 2 (2019), lesson 11 LSUV notebook", group="data",
                   scheme_class=LSUVScheme, aliases=("fastai:lsuv",),
                   domains={"tol": POSITIVE, "max_iter": AT_LEAST_ONE}))

    # --- optimized at init (initlab.schemes.gradinit, initlab.schemes.metainit) ---------------
    register(Entry("gradinit",
                   lambda base, optimizer, iterations, max_seconds, eta, gamma, alpha, lr, grad_clip:
                   base_sampler(base, "gradinit"),
                   {"base": "he_normal", "optimizer": "sgd", "iterations": 390, "max_seconds": 60.0,
                    "eta": 0.1, "gamma": 1.0, "alpha": 0.01, "lr": 1e-3, "grad_clip": 1.0},
                   "theta_i = m_i theta0_i (theta0 from base); min_m L(S'; theta - eta A[g]) / eta s.t. "
                   "||g||_p <= gamma, m_i >= alpha; A[g] = g/||g||_2, p = 2 (sgd) or sign(g), p = 1 (adam); "
                   "Adam on m with lr, per-coordinate clip grad_clip",
                   GRADINIT, group="data", scheme_class=GradInitScheme,
                   domains={"optimizer": ("sgd", "adam"), "iterations": AT_LEAST_ONE, "max_seconds": POSITIVE,
                            "eta": POSITIVE, "gamma": POSITIVE, "alpha": NON_NEGATIVE, "lr": POSITIVE,
                            "grad_clip": POSITIVE},
                   note="data-dependent: apply(..., data=x or (x, y)); labels are random classes when y is "
                        "absent (see initlab.schemes.optimized); stops at iterations or max_seconds"))
    register(Entry("metainit",
                   lambda base, iterations, max_seconds, lr, momentum, eps: base_sampler(base, "metainit"),
                   {"base": "he_normal", "iterations": 500, "max_seconds": 60.0, "lr": 0.1, "momentum": 0.9,
                    "eps": 1e-5},
                   "GQ = (1/N) ||(g - Hg) / (g + eps sign g) - 1||_1 minimized over each weight's norm by "
                   "sign-SGD with momentum: v <- momentum v - lr sign(dGQ/d||w||), ||w|| <- ||w|| + v",
                   METAINIT, group="data", scheme_class=MetaInitScheme,
                   domains={"iterations": AT_LEAST_ONE, "max_seconds": POSITIVE, "lr": POSITIVE,
                            "momentum": Range(0, 1, hi_open=True), "eps": POSITIVE},
                   note="data-dependent: apply(..., data=x or (x, y)); the paper's code uses random labels, "
                        "as initlab does when y is absent; stops at iterations or max_seconds"))


_register_all()
