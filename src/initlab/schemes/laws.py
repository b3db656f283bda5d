"""Analytic laws of initialized weights: family, exact mean, variance, 4th moment, CDF.

A :class:`Law` describes the distribution of a *single entry* of a weight tensor drawn
by a scheme. It is what :func:`initlab.check` compares realized weights against and what
the statistical tests check draws against: mean and variance (with the 4th central
moment, which sets the sampling error of a variance estimate,
``Var(s^2) ~ (mu4 - sigma^4) / n``) and a CDF for a Kolmogorov-Smirnov test.

Families:

``constant``          every entry equals ``value``.
``uniform``           U[low, high]: mean (low+high)/2, var (high-low)^2/12.
``normal``            N(loc, scale^2).
``truncated_normal``  N(loc, scale^2) conditioned on [low, high]; mean/var from the
                      standard formulas (Johnson, Kotz & Balakrishnan 1994, ch. 13).
``orthogonal``        an entry of ``gain * Q`` with Q Haar-orthogonal: each row (or column)
                      is uniform on the unit sphere of R^n, so ``(w/gain + 1)/2`` follows
                      Beta((n-1)/2, (n-1)/2): mean 0, var gain^2/n, E w^4 = 3 gain^4/(n(n+2)).
``sparse``            with probability ``p_zero`` exactly 0, else N(0, scale^2).
``pattern``           a deterministic 0/1 pattern (identity, Dirac); ``density`` ones.
``data_dependent``    set from data (LSUV): no a-priori law.

A random family with zero variance (``normal(std=0)``, ``uniform(a=b)``, ``orthogonal(gain=0)``,
a variance-scaling scheme with ``scale=0``) is the point mass at its mean: its CDF is the
step ``1[x >= mean]``, the limit of the family's CDF as the spread goes to 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SQRT2 = math.sqrt(2.0)


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi) if math.isfinite(x) else 0.0


def _Phi(x: float) -> float:
    return 0.5 * math.erfc(-x / SQRT2)


def truncated_normal_moments(alpha: float, beta: float) -> tuple[float, float, float]:
    """Mean, variance and 4th central moment of a standard normal truncated to
    [alpha, beta], by the recursion ``m_k = (k-1) m_{k-2} - [x^{k-1} phi(x)]_alpha^beta / Z``
    for the raw moments ``m_k = E[X^k]`` (m_0 = 1, m_{-1} = 0)."""
    Z = _Phi(beta) - _Phi(alpha)

    def edge(k: int) -> float:
        def term(x: float) -> float:
            return 0.0 if not math.isfinite(x) else x ** (k - 1) * _phi(x) if k > 1 else _phi(x)

        return (term(beta) - term(alpha)) / Z

    m = [1.0, -edge(1)]
    for k in range(2, 5):
        m.append((k - 1) * m[k - 2] - edge(k))
    mu = m[1]
    var = m[2] - mu * mu
    mu4 = m[4] - 4 * mu * m[3] + 6 * mu * mu * m[2] - 3 * mu**4
    return mu, var, mu4


@dataclass(frozen=True)
class Law:
    """Distribution of one weight entry. Construct with the helpers below."""

    family: str
    mean: float
    var: float
    mu4: float  #: 4th central moment E[(w - mean)^4]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def std(self) -> float:
        return math.sqrt(self.var) if self.var is not None and not math.isnan(self.var) else math.nan

    @property
    def is_random(self) -> bool:
        return self.family not in ("constant", "pattern", "data_dependent")

    @property
    def is_known(self) -> bool:
        return self.family != "data_dependent"

    def var_of_sample_var(self, n: int) -> float:
        """Large-n variance of the sample variance of n i.i.d. draws: (mu4 - var^2)/n."""
        return max(self.mu4 - self.var**2, 0.0) / n

    def __repr__(self) -> str:
        return f"Law({self.describe()}, mean={self.mean:.4g}, std={self.std:.4g})"

    def _repr_html_(self) -> str:
        """The law's family, moments and description, for notebooks."""
        from initlab.display import html_table

        return html_table(f"Law: {self.describe()}", ["family", "mean", "std", "var", "mu4"],
                          [(self.family, self.mean, self.std, self.var, self.mu4)])

    def describe(self) -> str:
        p = self.params
        f = self.family
        if f == "constant":
            return f"constant {p['value']:g}"
        if f == "uniform":
            return f"U[{p['low']:.6g}, {p['high']:.6g}]"
        if f == "normal":
            return f"N({p['loc']:.6g}, std {p['scale']:.6g})"
        if f == "truncated_normal":
            return (f"N({p['loc']:.6g}, std {p['scale']:.6g}) truncated to "
                    f"[{p['low']:.6g}, {p['high']:.6g}]")
        if f == "orthogonal":
            return f"orthogonal, gain {p['gain']:.6g}, n={p['n']}"
        if f == "sparse":
            return f"sparse: P(0)={p['p_zero']:.4g}, else N(0, std {p['scale']:.6g})"
        if f == "pattern":
            return f"{p['kind']} pattern, {p['density']:.4g} ones"
        return "set from data"

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """CDF evaluated elementwise (for KS tests); numpy in, numpy out."""
        return law_cdf(self, x)


def _ndtr(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF (float64, via torch.special.ndtr; no scipy needed)."""
    import torch

    return torch.special.ndtr(torch.as_tensor(np.asarray(x, dtype=np.float64))).numpy()


def _betainc_sym(c: float, x: np.ndarray) -> np.ndarray:
    """Regularized incomplete beta I_x(c, c) for the orthogonal law, by numerical
    integration of the density on a fine grid (c is large, the density smooth)."""
    grid = np.linspace(0.0, 1.0, 20001)
    logpdf = (c - 1) * (np.log(np.clip(grid, 1e-300, None)) + np.log(np.clip(1 - grid, 1e-300, None)))
    pdf = np.exp(logpdf - logpdf.max())
    cum = np.concatenate([[0.0], np.cumsum((pdf[1:] + pdf[:-1]) / 2)])
    cum /= cum[-1]
    return np.interp(x, grid, cum)


def law_cdf(law: Law, x: np.ndarray) -> np.ndarray:
    """CDF of *law* at x (numpy). Deterministic families, and random ones with zero
    variance (a point mass at the mean), get a step function."""
    p = law.params
    x = np.asarray(x, dtype=float)
    f = law.family
    if f == "constant":
        return (x >= p["value"]).astype(float)
    if law.is_random and law.var == 0:  # e.g. normal(std=0): Phi((x - loc)/0) would divide by 0
        return (x >= law.mean).astype(float)
    if f == "uniform":
        return np.clip((x - p["low"]) / (p["high"] - p["low"]), 0.0, 1.0)
    if f == "normal":
        return _ndtr((x - p["loc"]) / p["scale"])
    if f == "truncated_normal":
        a = (p["low"] - p["loc"]) / p["scale"]
        b = (p["high"] - p["loc"]) / p["scale"]
        lo, hi = _Phi(a), _Phi(b)
        z = np.clip((x - p["loc"]) / p["scale"], a, b)
        return np.clip((_ndtr(z) - lo) / (hi - lo), 0.0, 1.0)
    if f == "orthogonal":
        c = (p["n"] - 1) / 2.0
        u = np.clip((x / p["gain"] + 1.0) / 2.0, 0.0, 1.0)
        return _betainc_sym(c, u)
    if f == "sparse":
        return p["p_zero"] * (x >= 0) + (1 - p["p_zero"]) * _ndtr(x / p["scale"])
    raise ValueError(f"no CDF for the {f} family")


# --- constructors -------------------------------------------------------------------


def constant(value: float) -> Law:
    return Law("constant", float(value), 0.0, 0.0, {"value": float(value)})


def uniform(low: float, high: float) -> Law:
    w = high - low
    return Law("uniform", (low + high) / 2, w * w / 12, w**4 / 80, {"low": low, "high": high})


def normal(loc: float, scale: float) -> Law:
    return Law("normal", loc, scale * scale, 3 * scale**4, {"loc": loc, "scale": scale})


def truncated_normal(loc: float, scale: float, low: float, high: float) -> Law:
    """N(loc, scale^2) conditioned on [low, high] (absolute bounds)."""
    a, b = (low - loc) / scale, (high - loc) / scale
    m, v, m4 = truncated_normal_moments(a, b)
    return Law("truncated_normal", loc + scale * m, scale**2 * v, scale**4 * m4,
               {"loc": loc, "scale": scale, "low": low, "high": high})


def orthogonal(gain: float, rows: int, cols: int) -> Law:
    n = max(rows, cols)
    g2 = gain * gain
    return Law("orthogonal", 0.0, g2 / n, 3 * g2 * g2 / (n * (n + 2)),
               {"gain": gain, "n": n, "rows": rows, "cols": cols})


def sparse(p_zero: float, scale: float) -> Law:
    q = 1.0 - p_zero
    return Law("sparse", 0.0, q * scale**2, q * 3 * scale**4, {"p_zero": p_zero, "scale": scale})


def pattern(kind: str, ones: int, numel: int) -> Law:
    """A deterministic 0/1 tensor with *ones* ones among *numel* entries."""
    d = ones / numel
    var = d - d * d
    mu4 = d * (1 - d) ** 4 + (1 - d) * d**4
    return Law("pattern", d, var, mu4, {"kind": kind, "density": d, "ones": ones})


def data_dependent(note: str = "set from data") -> Law:
    return Law("data_dependent", math.nan, math.nan, math.nan, {"note": note})
