"""Weight and network measurements: effective rank, duplicate units, Jacobian spectrum.

All work on many layers at once (layers of one shape are stacked and processed in a single
batched call) so that probing a 100-layer network for ten schemes stays cheap.

**Effective rank** is the participation ratio of the squared singular values ``s_i`` of
the weight matrix ``W`` (rows = output units, columns = flattened fan-in)::

    erank(W) = (sum_i s_i^2)^2 / sum_i s_i^4 = tr(W W^T)^2 / ||W W^T||_F^2

It is 1 for a rank-one matrix (every constant init), ``r`` for ``r`` equal non-zero
singular values (``n`` for an orthogonal ``n x n`` matrix), ``n/2`` in expectation for a
large square Gaussian matrix (Marchenko-Pastur: ``E[lambda^2] = 2 E[lambda]^2``), and 0 for
the zero matrix. It needs one Gram matrix, not an SVD (the participation ratio of
Gao et al. 2017, "A theory of multineuronal dimensionality"; compare the entropy-based
effective rank of Roy & Vetterli 2007, which needs all singular values).

**Duplicate units** are output units whose incoming weights *and* bias are identical to
another unit's: such units compute the same function and receive the same gradient, so
gradient descent can never separate them (the symmetry that constant initializations
leave unbroken). Rows are bucketed by a random projection and candidates compared exactly.

**Jacobian spectrum**: singular values of ``d f(x) / d x`` at a few inputs. For a deep
linear network with orthogonal weights they are all exactly 1 (dynamical isometry;
Saxe et al. 2014); with Gaussian weights they spread out with depth (Pennington et al. 2017).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Callable, Sequence

import torch
from torch import nn


def _by_shape(mats: Sequence[torch.Tensor]) -> dict[tuple[int, ...], list[int]]:
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, m in enumerate(mats):
        groups[tuple(m.shape)].append(i)
    return groups


def _participation_ratio(w: torch.Tensor) -> torch.Tensor:
    """Effective rank of each matrix of a float32 stack ``[B, m, n]``.

    The ratio does not depend on the scale of ``w``; only matrices whose Gram entries could
    overflow or underflow float32 are rescaled first (that costs a copy).
    """
    m, n = w.shape[-2:]
    norm = torch.linalg.vector_norm(w, dim=(1, 2))
    risky = ((norm > 1e6) | ((norm < 1e-6) & (norm > 0))) & torch.isfinite(norm)
    if bool(risky.any()):
        w = w / torch.where(risky, norm, torch.ones_like(norm)).reshape(-1, 1, 1)
    gram = w @ w.mT if m <= n else w.mT @ w
    tr = gram.diagonal(dim1=1, dim2=2).sum(-1)  # = ||w||_F^2
    fro = torch.linalg.vector_norm(gram, dim=(1, 2))  # = sqrt(sum s_i^4)
    pr = torch.where(fro > 0, (tr / fro.clamp_min(torch.finfo(torch.float32).tiny)) ** 2, torch.zeros_like(tr))
    return torch.where(torch.isfinite(norm), pr, torch.full_like(pr, math.nan))


def _duplicates(w: torch.Tensor, b: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per matrix of a stack ``[B, m, n]`` with biases ``[B, m]``: rows equal to another row.

    Rows are sorted by a random projection ``w v + b v0``; neighbours whose projections
    are close (relative 1e-5) are compared exactly, so identical rows are always found and
    the projection only decides which pairs are compared.
    """
    B, m, n = w.shape
    counts = torch.zeros(B, dtype=torch.long)
    if m < 2:
        return counts
    v = torch.randn(n, 1, generator=gen)
    v0 = float(torch.randn((), generator=gen))
    f = (w @ v).squeeze(-1) + v0 * b
    f = torch.nan_to_num(f, nan=0.0, posinf=3e38, neginf=-3e38)
    fs, order = f.sort(dim=1)
    scale = fs.abs().amax(dim=1, keepdim=True)
    close = (fs[:, 1:] - fs[:, :-1]).abs() <= 1e-5 * scale
    if not bool(close.any()):
        return counts
    k, j = close.nonzero(as_tuple=True)
    r1, r2 = order[k, j], order[k, j + 1]
    same = (w[k, r1] == w[k, r2]).all(dim=1) & (b[k, r1] == b[k, r2])
    return counts.index_add_(0, k, same.long())


def weight_summaries(modules: Sequence[nn.Module], *, seed: int = 0) -> tuple[list[float], list[int]]:
    """Effective rank and number of duplicate units of each module's weight (see module doc).

    Weights of one shape are stacked once and processed together.
    """
    mats = [weight_matrix(mod) for mod in modules]
    ranks = [math.nan] * len(mats)
    dups = [0] * len(mats)
    gen = torch.Generator().manual_seed(seed)
    for _, idx in _by_shape(mats).items():
        w = torch.stack([mats[i] for i in idx]).to(torch.float32)
        b = torch.stack([_bias(modules[i], mats[i].shape[0]) for i in idx])
        for k, (r, d) in enumerate(zip(_participation_ratio(w).tolist(), _duplicates(w, b, gen).tolist())):
            ranks[idx[k]] = r
            dups[idx[k]] = d
    return ranks, dups


def effective_ranks(mats: Sequence[torch.Tensor]) -> list[float]:
    """Participation-ratio effective rank of each 2-D matrix in *mats* (see module doc)."""
    out = [math.nan] * len(mats)
    for _, idx in _by_shape(mats).items():
        pr = _participation_ratio(torch.stack([mats[i].detach() for i in idx]).to(torch.float32))
        for k, i in enumerate(idx):
            out[i] = float(pr[k])
    return out


def duplicate_units(mats: Sequence[torch.Tensor], biases: Sequence[torch.Tensor | None] | None = None,
                    *, seed: int = 0) -> list[int]:
    """For each matrix (rows = units), how many rows duplicate another row exactly, counting
    the unit's bias when *biases* are given: ``units - distinct units``."""
    out = [0] * len(mats)
    gen = torch.Generator().manual_seed(seed)
    for _, idx in _by_shape(mats).items():
        w = torch.stack([mats[i].detach() for i in idx]).to(torch.float32)
        bs = [None if biases is None else biases[i] for i in idx]
        b = torch.stack([torch.zeros(w.shape[1]) if t is None else t.detach().reshape(-1).float() for t in bs])
        for k, d in enumerate(_duplicates(w, b, gen).tolist()):
            out[idx[k]] = d
    return out


def _bias(module: nn.Module, units: int) -> torch.Tensor:
    bias = getattr(module, "bias", None)
    if isinstance(bias, torch.Tensor) and bias.numel() == units:
        return bias.detach().reshape(-1).float()
    return torch.zeros(units)


def weight_matrix(module: nn.Module) -> torch.Tensor:
    """The weight as a matrix ``(units, fan-in entries)``: rows are output units.

    Linear/Conv weights are stored ``(out, ...)``; transposed convolutions
    ``(in, out/groups, ...)``, whose unit axis is 1 (per group).
    """
    w = module.weight.detach()
    if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        w = w.transpose(0, 1)
    return w.reshape(w.shape[0], -1)


def jacobian_singular_values(f: Callable[[torch.Tensor], torch.Tensor], xs: torch.Tensor) -> torch.Tensor:
    """Singular values ``[k, min(out, in)]`` of the Jacobian of *f* at each of the ``k``
    inputs ``xs[i]`` (``f`` maps a batch ``[b, *in]`` to outputs ``[b, *out]``).

    Uses ``torch.func.vmap(jacrev)``; falls back to ``torch.autograd.functional.jacobian``
    per input for models that ``torch.func`` cannot trace.
    """

    def single(xi: torch.Tensor) -> torch.Tensor:
        return f(xi.unsqueeze(0)).reshape(-1)

    try:
        jac = torch.func.vmap(torch.func.jacrev(single))(xs)
    except Exception:  # noqa: BLE001 - data-dependent control flow, in-place ops, hooks...
        jac = torch.stack([torch.autograd.functional.jacobian(single, xi) for xi in xs])
    jac = jac.reshape(xs.shape[0], jac.shape[1], -1).detach().to(torch.float64)
    if not bool(torch.isfinite(jac).all()):  # overflowed forward pass: no spectrum
        return torch.full((jac.shape[0], min(jac.shape[1:])), math.nan, dtype=torch.float64)
    return torch.linalg.svdvals(jac)


def log_rate(values: Sequence[float]) -> float:
    """Per-step factor ``exp(slope)`` of a least-squares line through ``log(values)``.

    Only finite positive values count (non-finite or non-positive ones are skipped); ``nan``
    when fewer than two remain. Used for the per-layer variance and gradient factors, which
    are far less noisy than single ratios of consecutive layers at finite width.
    """
    pts = [(i, math.log(v)) for i, v in enumerate(values) if math.isfinite(v) and v > 0]
    if len(pts) < 2:
        return math.nan
    n = len(pts)
    mx = sum(p[0] for p in pts) / n
    my = sum(p[1] for p in pts) / n
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in pts)
    try:
        return math.exp(sxy / sxx)
    except OverflowError:
        return math.inf
