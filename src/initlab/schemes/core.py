"""The scheme abstraction and its one fan-based core (built by name as
:func:`~initlab.schemes.registry.variance_scaling`).

A :class:`Sampler` is pure math: for a weight of a given shape (and fans) it gives the
analytic :class:`~initlab.schemes.laws.Law` of each entry and fills a tensor in place
from an explicit ``torch.Generator``. Samplers call ``torch.nn.init``'s primitives with
the same arguments torch's own initializers use, so a scheme that torch also has draws
the *same values* from the same generator.

A :class:`Scheme` is a sampler with a name, its parameters, a formula, a source and a
bias rule. Schemes are built by name from the registry (:mod:`initlab.schemes.registry`),
which checks every parameter against the domain its entry declares (finite, ``std >= 0``,
``a <= b``, a known ``mode``, ...) before it builds the sampler: samplers trust their
fields, except where a value is derived (a truncated normal's absolute bounds).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from initlab.errors import InitlabError
from initlab.schemes import laws
from initlab.schemes.fans import Layout, fan_for_mode, fans as tensor_fans
from initlab.schemes.laws import Law

#: Keras/JAX divide the target std by this constant, the std of a standard normal
#: truncated to [-2, 2], so that the truncated draw has exactly the target variance.
TRUNC_STD_CORRECTION = 0.87962566103423978

DISTRIBUTIONS = ("uniform", "normal", "truncated_normal")

#: Bias rules: ``zeros``; ``keep`` (leave as is); ``fan_in_uniform`` (PyTorch's Linear/Conv
#: default, U(-1/sqrt(fan_in), 1/sqrt(fan_in))).
BIAS_RULES = ("zeros", "keep", "fan_in_uniform")


#: A truncated normal's interval must reach within this many std of the mean; farther
#: out the normal has too little mass for the law (or torch's sampler) to be accurate.
TRUNC_MAX_STDS = 5.0


class Sampler(ABC):
    """Pure math of one family: analytic law and in-place draw."""

    #: True when the law depends on fan_in/fan_out (needs a >= 2-d weight).
    fan_based: bool = False
    #: Minimum/maximum tensor rank the sampler accepts.
    min_dim: int = 0
    max_dim: int | None = None

    def check_shape(self, shape: Sequence[int], what: str) -> None:
        nd = len(shape)
        if nd < max(self.min_dim, 2 if self.fan_based else 0):
            need = max(self.min_dim, 2 if self.fan_based else 0)
            hint = ("; biases and scalars take a constant, uniform or normal scheme" if need == 2
                    else f"; it is for {need}- to {self.max_dim}-d convolution kernels")
            raise InitlabError(f"{what} needs a weight of at least {need} dims, got shape {list(shape)}{hint}")
        if self.max_dim is not None and nd > self.max_dim:
            raise InitlabError(f"{what} needs a weight of at most {self.max_dim} dims, got shape {list(shape)}")

    @abstractmethod
    def law(self, shape: tuple[int, ...], fan_in: int, fan_out: int) -> Law: ...

    @abstractmethod
    def sample_(self, tensor: torch.Tensor, fan_in: int, fan_out: int,
                generator: torch.Generator | None) -> None: ...


@dataclass(frozen=True)
class ConstantSampler(Sampler):
    value: float

    def law(self, shape, fan_in, fan_out) -> Law:
        return laws.constant(self.value)

    def sample_(self, tensor, fan_in, fan_out, generator) -> None:
        tensor.fill_(self.value)


@dataclass(frozen=True)
class UniformSampler(Sampler):
    low: float
    high: float

    def law(self, shape, fan_in, fan_out) -> Law:
        return laws.uniform(self.low, self.high)

    def sample_(self, tensor, fan_in, fan_out, generator) -> None:
        torch.nn.init.uniform_(tensor, self.low, self.high, generator=generator)


@dataclass(frozen=True)
class NormalSampler(Sampler):
    mean: float
    std: float

    def law(self, shape, fan_in, fan_out) -> Law:
        return laws.normal(self.mean, self.std)

    def sample_(self, tensor, fan_in, fan_out, generator) -> None:
        torch.nn.init.normal_(tensor, self.mean, self.std, generator=generator)


@dataclass(frozen=True)
class TruncNormalSampler(Sampler):
    """N(mean, std^2) restricted to [low, high] (absolute bounds), std *not* corrected."""

    mean: float
    std: float
    low: float
    high: float

    def __post_init__(self) -> None:
        # the registry checks the parameters (std > 0, ordered bounds); these check the
        # absolute bounds, which truncated_normal derives (mean + lower * std may round to
        # mean + upper * std) and which must hold some of the normal's mass
        if not self.low < self.high:
            raise InitlabError(f"truncated normal: the bounds [{self.low:g}, {self.high:g}] are empty "
                               "(the std is too small next to the mean to tell them apart); "
                               "use a larger std or a smaller mean")
        alpha, beta = (self.low - self.mean) / self.std, (self.high - self.mean) / self.std
        if not (alpha < TRUNC_MAX_STDS and beta > -TRUNC_MAX_STDS):
            raise InitlabError(
                f"truncated normal: the bounds [{self.low:g}, {self.high:g}] lie more than "
                f"{TRUNC_MAX_STDS:g} std from the mean {self.mean:g} (std {self.std:g}), where the "
                f"normal has almost no mass; put them within {TRUNC_MAX_STDS:g} std of the mean"
            )

    def law(self, shape, fan_in, fan_out) -> Law:
        return laws.truncated_normal(self.mean, self.std, self.low, self.high)

    def sample_(self, tensor, fan_in, fan_out, generator) -> None:
        torch.nn.init.trunc_normal_(tensor, self.mean, self.std, self.low, self.high, generator=generator)


@dataclass(frozen=True)
class VarianceScalingSampler(Sampler):
    """``Var(w) = scale / fan`` with fan = fan_in, fan_out or fan_avg (jax/Keras core).

    - uniform: U(-L, L), ``L = sqrt(3 * scale / fan)``;
    - normal: N(0, sqrt(scale / fan)) (untruncated, as torch's kaiming/xavier_normal_);
    - truncated_normal: N(0, s) truncated to [-2s, 2s] with
      ``s = sqrt(scale / fan) / 0.87962566103423978``, so that Var(w) = scale/fan exactly
      (Keras ``VarianceScaling``, ``jax.nn.initializers.variance_scaling``).
    """

    scale: float
    mode: str
    distribution: str
    fan_based = True

    def target_std(self, fan_in: int, fan_out: int) -> float:
        fan = fan_for_mode(fan_in, fan_out, self.mode)
        if fan <= 0:
            raise InitlabError(f"a weight with {self.mode} = 0 cannot be variance-scaled")
        return math.sqrt(self.scale / fan)

    def law(self, shape, fan_in, fan_out) -> Law:
        std = self.target_std(fan_in, fan_out)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0) * std
            return laws.uniform(-limit, limit)
        if self.distribution == "normal":
            return laws.normal(0.0, std)
        s = std / TRUNC_STD_CORRECTION
        if s == 0:
            return laws.constant(0.0)
        return laws.truncated_normal(0.0, s, -2 * s, 2 * s)

    def sample_(self, tensor, fan_in, fan_out, generator) -> None:
        std = self.target_std(fan_in, fan_out)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0) * std
            torch.nn.init.uniform_(tensor, -limit, limit, generator=generator)
        elif self.distribution == "normal":
            torch.nn.init.normal_(tensor, 0.0, std, generator=generator)
        else:
            s = std / TRUNC_STD_CORRECTION
            if s == 0:
                tensor.zero_()
            else:
                torch.nn.init.trunc_normal_(tensor, 0.0, s, -2 * s, 2 * s, generator=generator)


@dataclass(frozen=True)
class OrthogonalSampler(Sampler):
    """``gain * Q`` with Q Haar-orthogonal on the (shape[0], prod(shape[1:])) matrix
    (Saxe et al. 2014; QR of a Gaussian matrix with the sign fix of Mezzadri 2007).
    Rows are orthonormal when rows <= cols, columns otherwise: W W^T = gain^2 I."""

    gain: float = 1.0
    min_dim = 2

    def law(self, shape, fan_in, fan_out) -> Law:
        rows = shape[0]
        cols = math.prod(shape[1:])
        return laws.orthogonal(self.gain, rows, cols)

    def sample_(self, tensor, fan_in, fan_out, generator) -> None:
        torch.nn.init.orthogonal_(tensor, self.gain, generator=generator)


@dataclass(frozen=True)
class EyeSampler(Sampler):
    """Ones on the main diagonal of a 2-d weight (``torch.nn.init.eye_``)."""

    min_dim = 2
    max_dim = 2

    def law(self, shape, fan_in, fan_out) -> Law:
        return laws.pattern("identity", min(shape), math.prod(shape))

    def sample_(self, tensor, fan_in, fan_out, generator) -> None:
        torch.nn.init.eye_(tensor)


@dataclass(frozen=True)
class DiracSampler(Sampler):
    """Identity convolution: a one at the kernel centre linking channel i to channel i,
    per group (``torch.nn.init.dirac_``). Needs a 3-, 4- or 5-d conv weight."""

    groups: int = 1
    min_dim = 3
    max_dim = 5

    def law(self, shape, fan_in, fan_out) -> Law:
        if shape[0] % self.groups:
            raise InitlabError(f"dirac: {shape[0]} output channels are not divisible by groups={self.groups}")
        per_group = shape[0] // self.groups
        ones = self.groups * min(per_group, shape[1])
        return laws.pattern("dirac", ones, math.prod(shape))

    def sample_(self, tensor, fan_in, fan_out, generator) -> None:
        torch.nn.init.dirac_(tensor, self.groups)


@dataclass(frozen=True)
class SparseSampler(Sampler):
    """Martens (2010): N(0, std) with ``ceil(sparsity * rows)`` entries of every column
    set to zero. Unlike ``torch.nn.init.sparse_`` (whose zero positions come from the
    global RNG) the positions are drawn from the given generator, so a seed fixes all."""

    sparsity: float
    std: float = 0.01
    min_dim = 2
    max_dim = 2

    def zeros_per_column(self, rows: int) -> int:
        return math.ceil(self.sparsity * rows)

    def law(self, shape, fan_in, fan_out) -> Law:
        return laws.sparse(self.zeros_per_column(shape[0]) / shape[0], self.std)

    def sample_(self, tensor, fan_in, fan_out, generator) -> None:
        rows, cols = tensor.shape
        tensor.normal_(0.0, self.std, generator=generator)
        k = self.zeros_per_column(rows)
        if k:
            keys = torch.rand(rows, cols, generator=generator, device=tensor.device)
            idx = keys.argsort(dim=0)[:k]  # k random rows per column
            tensor.scatter_(0, idx, 0.0)


@dataclass(frozen=True)
class DataDependentSampler(Sampler):
    """Pre-init for a data-dependent scheme; the law is only known after seeing data."""

    pre: Sampler = field(default_factory=OrthogonalSampler)
    min_dim = 2

    def law(self, shape, fan_in, fan_out) -> Law:
        return laws.data_dependent()

    def sample_(self, tensor, fan_in, fan_out, generator) -> None:
        self.pre.sample_(tensor, fan_in, fan_out, generator)


@dataclass(frozen=True, eq=False)
class Scheme:
    """A named initialization scheme.

    ``name`` and ``params`` identify it (``spec`` is the round-trippable string, e.g.
    ``he_normal(a=0.1)``); ``formula`` and ``source`` document it; ``sampler`` does the
    math; ``bias`` is the bias rule (see :data:`BIAS_RULES`).
    """

    name: str
    params: dict[str, Any]
    sampler: Sampler
    formula: str = ""
    source: str = ""
    bias: str = "zeros"
    defaults: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    requires_data = False

    # -- identity -------------------------------------------------------------------
    @property
    def spec(self) -> str:
        """Canonical string: the name, plus the parameters that differ from defaults."""
        changed = {k: v for k, v in self.params.items() if self.defaults.get(k, object()) != v}
        if not changed:
            return self.name
        return f"{self.name}({', '.join(f'{k}={_fmt(v)}' for k, v in changed.items())})"

    def config(self) -> dict[str, Any]:
        """Serializable config (Keras-style): ``{"name": ..., "params": {...}}``."""
        return {"name": self.name, "params": dict(self.params)}

    def __repr__(self) -> str:
        return f"Scheme({self.spec})"

    def _repr_html_(self) -> str:
        """The scheme's card for notebooks: formula, source, bias rule, aliases and its law
        on a 256 x 784 weight (a data-dependent scheme's law says "set from data")."""
        from initlab.display import html_table

        rows: list[tuple[str, str]] = [("formula", self.formula or "-"), ("source", self.source or "-"),
                                       ("bias", self.bias)]
        if self.aliases:
            rows.append(("aliases", ", ".join(self.aliases)))
        try:
            law = self.law((256, 784))
            rows.append(("law on 256 x 784", f"{law.describe()} (mean {law.mean:.4g}, std {law.std:.4g})"))
        except Exception as exc:  # noqa: BLE001 - structure-aware schemes need a model
            rows.append(("law", " ".join(str(exc).split())[:160]))
        return html_table(f"Scheme {self.spec}", ["", ""], rows)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scheme) and self.config() == other.config()

    def __hash__(self) -> int:
        return hash(self.spec)

    # -- math -------------------------------------------------------------------------
    @property
    def fan_based(self) -> bool:
        return self.sampler.fan_based

    def _fans(self, shape: tuple[int, ...], layout: Layout, fans: tuple[int, int] | None) -> tuple[int, int]:
        self.sampler.check_shape(shape, f"scheme {self.spec!r}")
        if fans is not None:
            return int(fans[0]), int(fans[1])
        if len(shape) >= 2:
            return tensor_fans(shape, layout)
        return 1, 1  # unused by non-fan-based samplers

    def law(self, shape: Sequence[int], *, layout: Layout = "torch",
            fans: tuple[int, int] | None = None) -> Law:
        """The analytic law of one entry of a weight of *shape* (``fans`` overrides the
        tensor rule, e.g. for one gate block of an LSTM)."""
        shape = tuple(int(s) for s in shape)
        fi, fo = self._fans(shape, layout, fans)
        return self.sampler.law(shape, fi, fo)

    def init_(self, tensor: torch.Tensor, *, generator: torch.Generator | None = None,
              layout: Layout = "torch", fans: tuple[int, int] | None = None) -> torch.Tensor:
        """Fill *tensor* in place (no autograd) and return it."""
        shape = tuple(tensor.shape)
        fi, fo = self._fans(shape, layout, fans)
        with torch.no_grad():
            self.sampler.sample_(tensor, fi, fo, generator)
        return tensor

    def expected_std(self, shape: Sequence[int], **kw: Any) -> float:
        return self.law(shape, **kw).std


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return v
    return repr(v)

