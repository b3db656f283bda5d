"""Structure-aware schemes: delta-orthogonal, Fixup, ZerO and SkipInit.

**delta-orthogonal** (Xiao et al. 2018, "Dynamical Isometry and a Mean Field Theory of
CNNs: How to Train 10,000-Layer Vanilla Convolutional Neural Networks", ICML, Algorithm 2)
is a per-weight scheme: a conv kernel ``W [c_out, c_in, k1, ...]`` is zero except at the
spatial centre tap, where ``W[:, :, k1//2, ...] = gain * Q`` with ``Q`` Haar-orthogonal
(``torch.nn.init.orthogonal_`` of the ``(c_out, c_in)`` matrix): for ``c_out >= c_in``
its columns are orthonormal, ``W_c^T W_c = gain^2 I`` (the convolution is an isometry,
as in the paper, which assumes ``c_in <= c_out``); for ``c_out < c_in`` its rows are,
``W_c W_c^T = gain^2 I``. A Linear weight gets ``gain * Q`` (the orthogonal scheme).
``jax:delta_orthogonal`` does what ``jax.nn.initializers.delta_orthogonal`` does: 3- to
5-d kernels only, ``ValueError`` when ``in > out`` channels, the centre at ``(k-1)//2``
(the same as ``k//2`` for odd ``k``).

The three others are *model-level* (:class:`StructuredScheme`): each layer's rule depends
on its place in the model, read by :func:`initlab.structure.find_structure` (residual
branches, output layer) and handed to :meth:`StructuredScheme.plan`, which gives every
weight a :class:`Role` (a plain per-weight scheme, so ``initlab.check`` verifies each
layer against that role's law) plus scalar parameters to set (:class:`Plan`):

**Fixup** (Zhang, Dauphin & Ma 2019, "Fixup Initialization: Residual Learning Without
Normalization", ICLR, section 3): (1) the classification layer and the last layer of each
residual branch are 0 (weight and bias); (2) every other layer has He init, and the weight
layers *inside* a residual branch are scaled by ``L^(-1/(2m-2))`` (``L`` residual
branches, ``m`` weight layers per branch): ``w ~ N(0, 2 L^(-1/(m-1)) / fan)``; (3) a scalar
multiplier (1) per branch and scalar biases (0) before each layer: set where the model
has them (``residual_gains()``, or one-element parameters, see :mod:`initlab.structure`);
a model without them (initlab's ``resnet``) gets only its existing parameters initialized,
and the :class:`~initlab.apply.InitReport` says so in a note.

**ZerO** (Zhao, Schäfer & Anandkumar 2022, "ZerO Initialization: Initializing Neural
Networks with only Zeros and Ones", TMLR, Algorithm 1), deterministic: a weight
``W [P, Q]`` (P outputs, Q inputs) is ``I`` when ``P = Q``, the partial identity ``I*``
(``W_ij = 1[i = j]``) when ``P < Q``, and ``c I* H_m I*`` = ``c H_m[:P, :Q]`` when
``P > Q``, with ``m = ceil(log2 P)``, ``H_m`` the ``2^m x 2^m`` Sylvester-Hadamard matrix
(``H_ij = (-1)^popcount(i & j)``) and ``c = 2^(-(m-1)/2)`` (``scaling="paper"``; the
authors' example notebook uses the orthonormal ``c = 2^(-m/2)``, ``scaling="orthonormal"``).
A conv kernel gets that matrix at its centre tap and zeros elsewhere (Algorithm 2). In a
residual network the last layer of each residual branch is 0, as in the paper's ResNets.

**SkipInit** (De & Smith 2020, "Batch Normalization Biases Residual Blocks Towards the
Identity Function in Deep Networks", NeurIPS): each branch is multiplied by a learnable
scalar ``alpha`` initialized to 0; other layers He init. Where the model has that scalar
(``residual_gains()`` or a one-element ``alpha``/``gain``/``scale`` parameter) it is set to
``alpha``. Where it has none, the branch's *last layer* is scaled by ``alpha`` instead
(``alpha = 0``: zeroed; a last normalization layer gets ``gamma = alpha, beta = 0``). At
init the two give the same forward map, ``alpha * branch(x) = branch'(x)``, because the
last layer is affine in its parameters. Their gradients differ: with a scalar at 0 only
the scalar gets a gradient at the first step and the branch keeps its random weights;
with a zeroed last layer that layer learns from 0 and the layers before it get no
gradient until it moves. So this stand-in is SkipInit's forward at init, not its training
dynamics; a model that wants the exact scheme exposes ``residual_gains()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from initlab import stats
from initlab.errors import InitlabError
from initlab.schemes import laws
from initlab.schemes.core import Sampler, Scheme
from initlab.schemes.laws import Law

__all__ = ["DeltaOrthogonalSampler", "DeltaOrthogonalLaw", "PlaceLaw", "ZerOSampler", "ZerOLaw", "Role", "Plan",
           "StructuredScheme", "FixupScheme", "ZerOScheme", "SkipInitScheme", "hadamard", "zero_matrix",
           "fixup_factor", "XIAO", "FIXUP", "ZERO", "SKIPINIT"]

XIAO = ("Xiao et al. 2018, 'Dynamical Isometry and a Mean Field Theory of CNNs: How to Train "
        "10,000-Layer Vanilla Convolutional Neural Networks' (ICML), Algorithm 2")
FIXUP = ("Zhang, Dauphin & Ma 2019, 'Fixup Initialization: Residual Learning Without Normalization' "
         "(ICLR), section 3")
ZERO = ("Zhao, Schaefer & Anandkumar 2022, 'ZerO Initialization: Initializing Neural Networks with only "
        "Zeros and Ones' (TMLR), Algorithms 1 and 2")
SKIPINIT = ("De & Smith 2020, 'Batch Normalization Biases Residual Blocks Towards the Identity Function "
            "in Deep Networks' (NeurIPS), SkipInit")

#: Orthogonality tolerance of the delta-orthogonal check: ``|W_c^T W_c - g^2 I| <= ORTHO_TOL g^2``.
ORTHO_TOL = 1e-3


def _centre(shape: tuple[int, ...], convention: str) -> tuple[int, ...]:
    return tuple((k // 2) if convention == "initlab" else (k - 1) // 2 for k in shape[2:])


# --- delta-orthogonal ------------------------------------------------------------------------


@dataclass(frozen=True)
class DeltaOrthogonalLaw(Law):
    """A delta-orthogonal conv kernel: zero off the centre tap, ``gain * Q`` there. Its
    entries are a point mass at 0 mixed with the orthogonal law, so ``initlab.check``
    verifies it exactly instead (:meth:`verify`): zeros off the centre, orthonormal columns
    (``c_out >= c_in``) or rows at the centre within :data:`ORTHO_TOL`, and the centre's
    entries against the orthogonal law (KS), which tells a random ``Q`` from a Dirac
    identity."""

    def describe(self) -> str:
        p = self.params
        return (f"delta-orthogonal, gain {p['gain']:.6g}, centre {list(p['centre'])} of "
                f"{p['rows']}x{p['cols']}")

    def cdf(self, x: np.ndarray) -> np.ndarray:
        p = self.params
        inner = laws.orthogonal(p["gain"], p["rows"], p["cols"])
        f = p["taps"]
        return (1 - 1 / f) * (np.asarray(x, dtype=float) >= 0) + inner.cdf(x) / f

    def verify(self, w: torch.Tensor, ks_alpha: float) -> tuple[str, float, float]:
        """``(reason or "", KS D, KS p)`` for the weight *w* (float64, the block's shape)."""
        p = self.params
        g2 = p["gain"] ** 2
        idx = (slice(None), slice(None), *p["centre"])
        centre = w[idx].clone()
        rest = w.clone()
        rest[idx] = 0
        reasons = []
        off = float(rest.abs().max()) if rest.numel() else 0.0
        if off != 0:
            reasons.append(f"entries off the centre tap are not 0 (max |w| {off:.3g})")
        rows, cols = centre.shape
        gram = centre.T @ centre if rows >= cols else centre @ centre.T
        err = float((gram - g2 * torch.eye(gram.shape[0], dtype=gram.dtype)).abs().max())
        if not err <= ORTHO_TOL * max(g2, 1e-12):
            what = "columns" if rows >= cols else "rows"
            reasons.append(f"the centre tap's {what} are not orthogonal with norm {p['gain']:.4g} "
                           f"(max |Gram - g^2 I| {err:.3g})")
        d, pv = 0.0, 1.0
        if g2 > 0 and centre.numel() > 1:
            d, pv = stats.ks_test(np.sort(centre.reshape(-1).numpy()),
                                  laws.orthogonal(p["gain"], rows, cols).cdf)
            if not pv >= ks_alpha:
                reasons.append(f"the centre tap is not a random orthogonal matrix (KS D={d:.3g}, p={pv:.2g})")
        return "; ".join(reasons), d, pv


@dataclass(frozen=True)
class DeltaOrthogonalSampler(Sampler):
    """See the module docstring. ``convention`` is ``"initlab"`` or ``"jax"``."""

    gain: float = 1.0
    convention: str = "initlab"
    min_dim = 2
    max_dim = 5

    def check_shape(self, shape, what) -> None:
        super().check_shape(shape, what)
        if self.convention == "jax":
            if len(shape) < 3:
                raise InitlabError(f"{what} (as jax.nn.initializers.delta_orthogonal) needs a 3- to 5-d conv "
                                   f"kernel, got shape {list(shape)}; use jax:orthogonal for dense layers")
            if shape[1] > shape[0]:
                raise InitlabError(f"{what} (as jax.nn.initializers.delta_orthogonal) needs in_channels <= "
                                   f"out_channels, got {shape[1]} > {shape[0]}; use delta_orthogonal, which "
                                   "puts orthonormal rows at the centre")

    def law(self, shape, fan_in, fan_out) -> Law:
        rows, cols = shape[0], shape[1]
        if len(shape) == 2:
            return laws.orthogonal(self.gain, rows, cols)
        taps = math.prod(shape[2:])
        inner = laws.orthogonal(self.gain, rows, cols)
        return DeltaOrthogonalLaw("delta_orthogonal", 0.0, inner.var / taps, inner.mu4 / taps,
                                  {"gain": self.gain, "rows": rows, "cols": cols, "taps": taps,
                                   "centre": _centre(tuple(shape), self.convention)})

    def sample_(self, tensor, fan_in, fan_out, generator) -> None:
        if tensor.dim() == 2:
            torch.nn.init.orthogonal_(tensor, self.gain, generator=generator)
            return
        q = torch.empty(tensor.shape[0], tensor.shape[1], dtype=tensor.dtype)
        torch.nn.init.orthogonal_(q, self.gain, generator=generator)
        tensor.zero_()
        tensor[(slice(None), slice(None), *_centre(tuple(tensor.shape), self.convention))] = q


# --- ZerO ---------------------------------------------------------------------------------------


def hadamard(rows: int, cols: int, m: int) -> torch.Tensor:
    """``H_m[:rows, :cols]`` of the ``2^m`` Sylvester-Hadamard matrix, ``H_ij =
    (-1)^popcount(i & j)`` (float64), built without the full matrix."""
    i = torch.arange(rows).unsqueeze(1)
    j = torch.arange(cols).unsqueeze(0)
    parity = torch.zeros(rows, cols, dtype=torch.int64)
    for b in range(m):
        parity ^= ((i >> b) & 1) & ((j >> b) & 1)
    return 1.0 - 2.0 * parity.double()


def zero_matrix(rows: int, cols: int, scaling: str = "paper") -> torch.Tensor:
    """ZerO's Algorithm 1 for a ``[P=rows, Q=cols]`` weight (float64)."""
    if rows <= cols:
        return torch.eye(rows, cols, dtype=torch.float64)
    m = math.ceil(math.log2(rows))
    c = 2.0 ** (-(m - 1) / 2) if scaling == "paper" else 2.0 ** (-m / 2)
    return c * hadamard(rows, cols, m)


@dataclass(frozen=True)
class ZerOLaw(Law):
    """The deterministic ZerO tensor of one shape (``initlab.check`` compares it exactly)."""

    def describe(self) -> str:
        p = self.params
        return f"ZerO {p['kind']} ({p['rows']}x{p['cols']}{', centre tap' if p['taps'] > 1 else ''})"


@dataclass(frozen=True)
class ZerOSampler(Sampler):
    """ZerO (see the module docstring): Algorithm 1 on a matrix, at the centre tap of a kernel."""

    scaling: str = "paper"
    min_dim = 2
    max_dim = 5

    def law(self, shape, fan_in, fan_out) -> Law:
        rows, cols = shape[0], shape[1]
        taps = math.prod(shape[2:])
        mat = zero_matrix(rows, cols, self.scaling)
        n = mat.numel() * taps
        mean = float(mat.sum()) / n
        sq = float(((mat - mean) ** 2).sum()) + (n - mat.numel()) * mean ** 2
        q4 = float(((mat - mean) ** 4).sum()) + (n - mat.numel()) * mean ** 4
        kind = "identity" if rows == cols else ("partial identity" if rows < cols else
                                                f"Hadamard x {float(mat.abs().max()):.6g}")
        nnz = int((mat != 0).sum())
        return ZerOLaw("pattern", mean, sq / n, q4 / n,
                       {"kind": kind, "density": nnz / n, "ones": nnz, "rows": rows, "cols": cols, "taps": taps})

    def sample_(self, tensor, fan_in, fan_out, generator) -> None:
        mat = zero_matrix(tensor.shape[0], tensor.shape[1], self.scaling).to(tensor.dtype)
        if tensor.dim() == 2:
            tensor.copy_(mat)
            return
        tensor.zero_()
        tensor[(slice(None), slice(None), *_centre(tuple(tensor.shape), "initlab"))] = mat


@dataclass(frozen=True)
class PlaceLaw(Law):
    """A law that holds at one place of a model only (``where``), e.g. Fixup's He law for the
    layers outside residual branches."""

    where: str = ""

    def describe(self) -> str:
        return f"{super().describe()} ({self.where})"


# --- model-level schemes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    """What a model-level scheme does to one weight layer: its place (``role``), the plain
    per-weight scheme that draws it (and whose law ``check`` verifies), and whether its
    biases are forced to 0 (zeroed layers)."""

    role: str
    scheme: Scheme
    zero_bias: bool = False


@dataclass
class Plan:
    """A model-level scheme's plan for one model: a :class:`Role` per weight module (by
    ``id``; others get ``default``), parameters to set to constants (``fixed``: scalar
    gains and biases, a last normalization layer's affine), and notes for the report."""

    default: Role
    roles: dict[int, Role] = field(default_factory=dict)
    fixed: list[tuple[str, torch.Tensor, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def role_for(self, module: nn.Module) -> Role:
        return self.roles.get(id(module), self.default)


def _get(spec: str, **params: Any) -> Scheme:
    from initlab.schemes.registry import get_scheme

    return get_scheme(spec, **params)


def _he(mode: str, scale: float = 1.0) -> Scheme:
    """He normal (ReLU gain, untruncated) with its variance times *scale*."""
    if scale == 1.0:
        return _get("he_normal", mode=mode)
    if scale == 0.0:
        return _get("zeros")
    return _get("variance_scaling", scale=2.0 * scale, mode=mode, distribution="normal")


def fixup_factor(branches: int, m: int) -> float:
    """Fixup's scale ``L^(-1/(2m-2))`` of a branch's inner weight layers."""
    return branches ** (-1.0 / (2 * m - 2))


class StructuredScheme(Scheme):
    """A model-level scheme: :func:`initlab.apply` reads the model's structure
    (:func:`initlab.structure.find_structure`) and asks :meth:`plan` what to do per layer."""

    model_level: ClassVar[bool] = True
    #: Whether the scheme needs residual branches (``apply`` refuses a model without them).
    needs_branches: ClassVar[bool] = True

    def plan(self, structure: Any) -> Plan:  # pragma: no cover - abstract
        raise NotImplementedError

    def law(self, shape, **kw) -> Law:  # type: ignore[override]
        """The law of a weight *outside* any residual branch (He normal for Fixup and SkipInit,
        Algorithm 1 for ZerO), named so (``describe`` says where it holds); a model's layers
        get their role's law (:meth:`plan`)."""
        law = super().law(shape, **kw)
        if not self.needs_branches:
            return law
        return PlaceLaw(law.family, law.mean, law.var, law.mu4, dict(law.params),
                        where=f"{self.name}: outside residual branches")

    def _zero_last(self, branch: Any, plan: Plan, why: str) -> None:
        wl = branch.weight_layers
        if not wl:
            raise InitlabError(f"{self.name}: residual branch {branch.name} has no Linear/Conv layer to zero")
        plan.roles[id(wl[-1][1])] = Role(why, _get("zeros"), zero_bias=True)


class FixupScheme(StructuredScheme):
    def plan(self, structure: Any) -> Plan:
        mode = self.params["mode"]
        plan = Plan(Role("other: He", _he(mode)))
        L = len(structure.branches)
        ms = set()
        for b in structure.branches:
            wl = b.weight_layers
            m = len(wl)
            if m < 2:
                raise InitlabError(f"fixup needs at least 2 weight layers per residual branch, branch {b.name} "
                                   f"has {m}: the scale L^(-1/(2m-2)) is undefined for m = 1")
            ms.add(m)
            f = fixup_factor(L, m)
            inner = Role(f"branch inner: He x L^(-1/(2m-2)) = x{f:.4g}", _he(mode, f * f))
            for _, mod in wl[:-1]:
                plan.roles[id(mod)] = inner
            self._zero_last(b, plan, "branch last: 0")
            if b.gain is not None:
                plan.fixed.append((b.gain[0], b.gain[1], 1.0))
            plan.fixed.extend((n, p, 0.0) for n, p in b.scalar_biases)
        if structure.output is not None:
            plan.roles[id(structure.output[1])] = Role("output: 0", _get("zeros"), zero_bias=True)
        m_txt = "/".join(str(m) for m in sorted(ms))
        plan.notes.append(f"fixup: L = {L} residual branches of m = {m_txt} weight layers; inner layers He x "
                          f"L^(-1/(2m-2)) = x{fixup_factor(L, min(ms)):.4g}; branch last layers and the "
                          f"classifier ({structure.output[0] if structure.output else 'none found'}) zero")
        if not any(b.gain is not None or b.scalar_biases for b in structure.branches):
            plan.notes.append(f"fixup: {structure.model_type} has no scalar multipliers or biases (the paper's "
                              "step 3): only its existing parameters were initialized")
        return plan


class ZerOScheme(StructuredScheme):
    needs_branches = False

    def plan(self, structure: Any) -> Plan:
        plan = Plan(Role("ZerO", self))
        for b in structure.branches:
            self._zero_last(b, plan, "branch last: 0")
        if structure.branches:
            plan.notes.append(f"zero_init: {len(structure.branches)} residual branches' last layers zero; "
                              "every other weight is ZerO's identity / Hadamard matrix")
        return plan


class SkipInitScheme(StructuredScheme):
    def plan(self, structure: Any) -> Plan:
        mode, alpha = self.params["mode"], float(self.params["alpha"])
        plan = Plan(Role("other: He", _he(mode)))
        scaled = 0
        for b in structure.branches:
            if b.gain is not None:
                plan.fixed.append((b.gain[0], b.gain[1], alpha))
                continue
            scaled += 1
            name, last = b.last
            if any(last is mod for _, mod in b.weight_layers):
                plan.roles[id(last)] = Role(f"branch last: He x alpha = x{alpha:g}", _he(mode, alpha * alpha),
                                            zero_bias=True)
            elif isinstance(getattr(last, "weight", None), torch.Tensor):
                plan.fixed.append((f"{name}.weight", last.weight, alpha))
                if isinstance(getattr(last, "bias", None), torch.Tensor):
                    plan.fixed.append((f"{name}.bias", last.bias, 0.0))
            else:
                raise InitlabError(f"skipinit cannot scale the last layer {name} ({type(last).__name__}) of a "
                                   "residual branch; expose residual_gains() with one scalar per branch")
        n = len(structure.branches)
        if scaled:
            plan.notes.append(f"skipinit: {scaled} of {n} residual branches have no scalar gain: their last layer "
                              f"is scaled by alpha = {alpha:g} instead (the same forward map at init, not the "
                              "same gradients)")
        if scaled < n:
            plan.notes.append(f"skipinit: {n - scaled} residual branch gains set to alpha = {alpha:g}")
        return plan
