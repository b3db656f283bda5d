"""Mean-field theory of signal propagation in wide, deep, fully connected networks.

For a network ``z^l = W^l phi(z^{l-1}) + b^l`` with ``W_ij ~ N(0, sigma_w^2 / N_{l-1})`` and
``b_i ~ N(0, sigma_b^2)``, in the limit of infinite width (Poole et al. 2016, "Exponential
expressivity in deep neural networks through transient chaos"; Schoenholz et al. 2017,
"Deep information propagation"):

* the pre-activation second moment follows the **q map**
  ``q^l = sigma_w^2 E_z[phi(sqrt(q^{l-1}) z)^2] + sigma_b^2``, ``z ~ N(0, 1)``,
  which converges to the fixed point ``q*``;
* the correlation ``c`` of two inputs follows the **c map**
  ``c^l = (sigma_w^2 E[phi(u_1) phi(u_2)] + sigma_b^2) / q*`` with
  ``u_1 = sqrt(q*) z_1``, ``u_2 = sqrt(q*) (c z_1 + sqrt(1 - c^2) z_2)``; ``c = 1`` is always a
  fixed point, stable when
  ``chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2] <= 1`` (the *ordered* phase), and otherwise the
  map converges to ``c* < 1`` (the *chaotic* phase). ``chi_1`` is also the factor by which
  the mean squared gradient grows per layer on the way back (Schoenholz et al., Sec. 4),
  so ``chi_1 = 1`` (the *critical line*, "edge of chaos") is where neither signals nor
  gradients vanish or explode exponentially;
* the depth scales over which the fixed points are approached are
  ``xi_q = -1 / ln(chi_q)`` with ``chi_q = dq^l/dq^{l-1}|_{q*}
  = sigma_w^2 E[phi'(u)^2 + phi(u) phi''(u)]`` (computed here, by Stein's lemma, as
  ``sigma_w^2 E[phi(u) phi'(u) z] / sqrt(q*)`` so that only ``phi'`` is needed), and
  ``xi_c = -1 / ln(chi_c)`` with ``chi_c = sigma_w^2 E[phi'(u_1) phi'(u_2)]`` at ``c*``
  (``chi_c = chi_1`` in the ordered phase, so ``xi_c = -1/ln chi_1`` there); ``xi_c``
  diverges on the critical line.

For ReLU at ``sigma_b^2 = 0`` the q map is linear, ``q^l = (sigma_w^2 / 2) q^{l-1}``, and
``chi_1 = sigma_w^2 / 2``: the critical point is ``sigma_w^2 = 2``, He et al.'s (2015)
initialization. For tanh at ``sigma_b^2 = 0`` it is ``sigma_w^2 = 1``.

Integrals use Gauss-Hermite quadrature for the weight ``exp(-z^2/2)``
(``numpy.polynomial.hermite_e``) with an even number of nodes, which puts no node at the
kink of ReLU-like functions and makes their integrals exact (each half-line integrand is a
polynomial and the nodes are symmetric). ``phi'`` comes from autograd, so every
elementwise activation module works: relu, tanh, linear (identity), sigmoid, selu, gelu,
silu and leaky_relu by name (:data:`initlab.engine.models.ACTIVATIONS`) and any module in
:data:`initlab.probe.activations.ELEMENTWISE`. For unbounded activations above the critical
line the q map has no finite fixed point; ``q*`` is then ``inf`` and ``chi_1`` is its
large-``q`` limit, and ``c*``, ``xi_q``, ``xi_c`` are ``nan`` (there is no fixed point to
approach).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
import torch

from initlab.errors import InitlabError
from initlab.probe.activations import Phi, label, phi_of

N_NODES = 100  #: 1-D Gauss-Hermite nodes (even)
N_NODES_2D = 48  #: nodes per axis for the 2-D integrals of the c map (even)
_Q_MIN, _Q_MAX = 1e-30, 1e30  # where q*=0 / q*=inf are evaluated (the limits q -> 0+, inf)


@lru_cache(maxsize=None)
def _nodes(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    z, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()  # weights of E over N(0, 1)
    return torch.as_tensor(z, dtype=torch.float64), torch.as_tensor(w, dtype=torch.float64)


def _phi_dphi(phi: Phi, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """phi(u) and phi'(u), elementwise, by autograd."""
    with torch.enable_grad():
        u = u.detach().requires_grad_(True)
        y = phi(u.clone())  # clone: in-place modules (ReLU(inplace=True)) must not touch u
        (dy,) = torch.autograd.grad(y.sum(), u, allow_unused=True)
    if dy is None:  # constant phi
        dy = torch.zeros_like(u)
    return y.detach(), dy


def _check_sigmas(sigma_w2: float, sigma_b2: float) -> None:
    for name, v in (("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise InitlabError(f"{name} must be a finite number >= 0, got {v!r}")


def _clamp(q: float) -> float:
    return min(max(q, _Q_MIN), _Q_MAX)


def q_map(activation: Any, sigma_w2: float, sigma_b2: float, q: float | np.ndarray) -> Any:
    """``sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2`` for a scalar or array of ``q``."""
    phi = phi_of(activation)
    z, w = _nodes(N_NODES)
    qs = torch.as_tensor(np.asarray(q, dtype=np.float64)).clamp_min(0.0)
    u = qs.sqrt().reshape(-1, 1) * z
    out = sigma_w2 * (phi(u.clone()) ** 2 @ w) + sigma_b2
    return float(out[0]) if np.ndim(q) == 0 else out.reshape(qs.shape).numpy()


def _bisect(f: Any, lo: float, hi: float, iters: int = 80) -> float:
    """Root of *f* in ``[lo, hi]`` with ``f(lo)`` and ``f(hi)`` of opposite (weak) sign."""
    f_lo = f(lo)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        f_mid = f(mid)
        if (f_mid > 0) == (f_lo > 0):
            lo, f_lo = mid, f_mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def q_star(activation: Any, sigma_w2: float, sigma_b2: float = 0.0, *, q0: float = 1.0) -> float:
    """The fixed point of the q map reached by iterating it from ``q0``.

    The q map is increasing in ``q``, so iterates move monotonically to the nearest fixed
    point in the direction of ``F(q0) - q0``. Returns ``0.0`` when they decay to zero and
    ``inf`` when they grow without bound (unbounded ``phi`` above the critical line). On a
    line of fixed points (ReLU at ``sigma_w^2 = 2, sigma_b^2 = 0``) it returns ``q0``.
    """
    _check_sigmas(sigma_w2, sigma_b2)
    if not (q0 > 0 and math.isfinite(q0)):
        raise InitlabError(f"q0 must be a positive finite number, got {q0!r}")
    phi = phi_of(activation)

    def g(q: Any) -> Any:
        return q_map(phi, sigma_w2, sigma_b2, q) - q

    g0 = g(q0)
    if abs(g0) <= 1e-12 * q0:
        return float(q0)
    steps = q0 * 2.0 ** np.arange(1, 200) if g0 > 0 else q0 * 2.0 ** -np.arange(1, 200)
    vals = g(steps)
    crossed = np.nonzero(vals <= 0)[0] if g0 > 0 else np.nonzero(vals >= 0)[0]
    if crossed.size == 0:
        return math.inf if g0 > 0 else 0.0
    k = int(crossed[0])
    a = q0 if k == 0 else float(steps[k - 1])
    b = float(steps[k])
    if vals[k] == 0:
        return b
    return float(_bisect(g, min(a, b), max(a, b)))


def chi_1(activation: Any, sigma_w2: float, sigma_b2: float = 0.0, *, q: float | None = None) -> float:
    """``sigma_w^2 E[phi'(sqrt(q) z)^2]`` at ``q`` (default: the fixed point ``q*``).

    The per-layer growth factor of a small perturbation's squared norm and of the mean
    squared backpropagated gradient (Schoenholz et al. 2017, Eq. 7 and Sec. 4).
    """
    phi = phi_of(activation)
    qq = q_star(phi, sigma_w2, sigma_b2) if q is None else q
    z, w = _nodes(N_NODES)
    _, d = _phi_dphi(phi, math.sqrt(_clamp(qq)) * z)
    return float(sigma_w2 * (d**2 @ w))


def chi_q(activation: Any, sigma_w2: float, sigma_b2: float = 0.0, *, q: float | None = None) -> float:
    """Slope of the q map at ``q`` (default ``q*``): ``sigma_w^2 E[phi(u) phi'(u) z] / sqrt(q)``."""
    phi = phi_of(activation)
    qq = _clamp(q_star(phi, sigma_w2, sigma_b2) if q is None else q)
    z, w = _nodes(N_NODES)
    y, d = _phi_dphi(phi, math.sqrt(qq) * z)
    return float(sigma_w2 * ((y * d * z) @ w) / math.sqrt(qq))


def _pair(phi: Phi, q: float, c: float) -> tuple[torch.Tensor, ...]:
    z, w = _nodes(N_NODES_2D)
    z1, z2 = z.reshape(-1, 1), z.reshape(1, -1)
    ww = (w.reshape(-1, 1) * w.reshape(1, -1)).reshape(-1)
    s = math.sqrt(_clamp(q))
    c = min(max(c, -1.0), 1.0)
    u1 = (s * z1).expand(-1, z.numel()).reshape(-1)
    u2 = (s * (c * z1 + math.sqrt(1.0 - c * c) * z2)).reshape(-1)
    y1, d1 = _phi_dphi(phi, u1)
    y2, d2 = _phi_dphi(phi, u2)
    return y1, d1, y2, d2, ww


def c_map(activation: Any, sigma_w2: float, sigma_b2: float, c: float, *, q: float | None = None) -> float:
    """The correlation map at ``q`` (default ``q*``): ``(sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2) / q``,
    with ``q`` recomputed as ``sigma_w^2 E[phi(u1)^2] + sigma_b^2`` on the same quadrature grid."""
    phi = phi_of(activation)
    qq = q_star(phi, sigma_w2, sigma_b2) if q is None else q
    if qq == 0.0:
        return 1.0
    y1, _, y2, _, ww = _pair(phi, qq, c)
    # the denominator is q* evaluated on the same grid, so that c = 1 maps to 1 exactly
    return float((sigma_w2 * ((y1 * y2) @ ww) + sigma_b2) / (sigma_w2 * ((y1 * y1) @ ww) + sigma_b2))


def c_star(activation: Any, sigma_w2: float, sigma_b2: float = 0.0) -> float:
    """The stable fixed point of the c map in ``[0, 1]``: ``1`` when ``chi_1 <= 1``."""
    phi = phi_of(activation)
    qq = q_star(phi, sigma_w2, sigma_b2)
    if chi_1(phi, sigma_w2, sigma_b2, q=qq) <= 1.0 or qq == 0.0:
        return 1.0

    def h(c: float) -> float:
        return c_map(phi, sigma_w2, sigma_b2, c, q=qq) - c

    h0 = h(0.0)
    if abs(h0) <= 1e-12:
        return 0.0
    top = 1.0 - 1e-4
    if h(top) >= 0:  # barely chaotic: c* indistinguishable from 1
        return 1.0
    return _bisect(h, 0.0, top, iters=60)


@dataclass(frozen=True)
class MeanField:
    """Mean-field quantities of one (activation, sigma_w^2, sigma_b^2); see the module doc."""

    activation: str
    sigma_w2: float
    sigma_b2: float
    q_star: float
    chi_1: float
    chi_q: float
    c_star: float
    chi_c: float
    xi_q: float
    xi_c: float

    @property
    def phase(self) -> str:
        """``ordered`` (chi_1 < 1), ``chaotic`` (chi_1 > 1) or ``critical`` (``|chi_1 - 1| <= 0.01``,
        i.e. a depth scale of about 100 layers or more)."""
        if abs(self.chi_1 - 1.0) <= 1e-2:
            return "critical"
        return "ordered" if self.chi_1 < 1.0 else "chaotic"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "phase": self.phase}


def _depth_scale(chi: float) -> float:
    """``-1/ln(chi)``: finite for ``0 < chi < 1``, ``inf`` at or above 1, 0 at ``chi = 0``."""
    if chi <= 0.0:
        return 0.0
    if chi >= 1.0 - 1e-12:
        return math.inf
    return -1.0 / math.log(chi)


def mean_field(activation: Any, sigma_w2: float, sigma_b2: float = 0.0) -> MeanField:
    """All mean-field quantities for *activation* at ``(sigma_w^2, sigma_b^2)``."""
    _check_sigmas(sigma_w2, sigma_b2)
    phi = phi_of(activation)
    name = activation if isinstance(activation, str) else label(activation) \
        if isinstance(activation, torch.nn.Module) else getattr(activation, "__name__", "phi")
    qq = q_star(phi, sigma_w2, sigma_b2)
    x1 = chi_1(phi, sigma_w2, sigma_b2, q=qq)
    xq = chi_q(phi, sigma_w2, sigma_b2, q=qq)
    if not math.isfinite(qq):  # no fixed point: the signal grows without bound
        return MeanField(str(name), float(sigma_w2), float(sigma_b2), qq, x1, xq, math.nan, x1,
                         math.nan, math.nan)
    cs = c_star(phi, sigma_w2, sigma_b2)
    if cs >= 1.0 or qq == 0.0:
        xc = x1
    else:
        _, d1, _, d2, ww = _pair(phi, qq, cs)
        xc = float(sigma_w2 * ((d1 * d2) @ ww))
    return MeanField(str(name), float(sigma_w2), float(sigma_b2), qq, x1, xq, cs, xc,
                     _depth_scale(xq), _depth_scale(xc))


def critical_sigma_w2(activation: Any, sigma_b2: float = 0.0) -> float:
    """The ``sigma_w^2`` with ``chi_1 = 1`` at the fixed point, for a given ``sigma_b^2``.

    Found by bisection on ``log sigma_w^2`` (``chi_1`` grows with ``sigma_w^2``). Examples:
    2 for ReLU (any ``sigma_b^2``, where ``q*`` diverges), 1 for tanh and linear at
    ``sigma_b^2 = 0``, ``2 / (1 + a^2)`` for leaky ReLU with slope ``a``.
    """
    _check_sigmas(1.0, sigma_b2)
    phi = phi_of(activation)

    def f(log_sw2: float) -> float:
        sw2 = math.exp(log_sw2)
        return chi_1(phi, sw2, sigma_b2) - 1.0

    lo, hi = math.log(1e-4), math.log(1.0)
    while f(hi) < 0:
        hi += math.log(4.0)
        if hi > math.log(1e8):
            raise InitlabError(
                f"no critical sigma_w^2 below 1e8 for {label(phi) if isinstance(phi, torch.nn.Module) else activation} "
                f"at sigma_b^2={sigma_b2:g}: chi_1 stays below 1; this activation has no edge of chaos"
            )
    if f(lo) > 0:
        raise InitlabError(
            f"chi_1 > 1 already at sigma_w^2=1e-4 for sigma_b^2={sigma_b2:g}; no critical point"
        )
    return float(math.exp(_bisect(f, lo, hi, iters=60)))


def predict_depth_profile(
    sigma_w2: Sequence[float],
    sigma_b2: Sequence[float],
    phis: Sequence[Phi | None],
    input_second_moment: float,
) -> list[float]:
    """Predicted pre-activation second moment ``q^l`` of each layer of a chain of layers.

    Layer ``l`` receives ``phi_{l-1}(z^{l-1})`` (``phis[l-1]``; ``None`` is the identity) and
    has its own ``sigma_w,l^2 = fan_in * E[W^2]`` and ``sigma_b,l^2 = E[b^2]``, so
    ``q^1 = sigma_w,1^2 E[x^2] + sigma_b,1^2`` and
    ``q^l = sigma_w,l^2 E_{z ~ N(0, q^{l-1})}[phi_{l-1}(z)^2] + sigma_b,l^2``.
    Assumes zero-mean i.i.d. weights (constant inits break it); ``phis`` needs at least
    ``len(sigma_w2) - 1`` entries.
    """
    if len(sigma_b2) != len(sigma_w2) or len(phis) < len(sigma_w2) - 1:
        raise InitlabError("predict_depth_profile needs one sigma_b2 per layer and an activation "
                           "between each pair of consecutive layers")
    z, w = _nodes(N_NODES)
    out: list[float] = []
    q_prev = float(input_second_moment)
    for l, (sw2, sb2) in enumerate(zip(sigma_w2, sigma_b2)):
        if l == 0:
            m = q_prev
        elif not math.isfinite(q_prev):
            m = math.inf
        else:
            phi = phis[l - 1]
            u = math.sqrt(max(q_prev, 0.0)) * z
            m = float((u**2 if phi is None else phi(u.clone()) ** 2) @ w)
        if sw2 == 0.0:
            q_prev = float(sb2)
        else:
            q_prev = sw2 * m + sb2 if math.isfinite(m) else math.inf
        out.append(q_prev)
    return out
