"""Conformance at init: does each layer's realized weight std match the scheme's law?

For a weight of :math:`n` entries drawn i.i.d. from a law with standard deviation
:math:`\\sigma` and kurtosis :math:`\\kappa = \\mu_4/\\sigma^4`, the sample standard
deviation :math:`s` has, for large :math:`n`, standard error

.. math::
    \\mathrm{se}(s) \\approx \\sigma \\sqrt{\\frac{\\kappa - 1}{4n}}

(delta method on :math:`\\mathrm{Var}(s^2) \\approx (\\mu_4 - \\sigma^4)/n`). A layer is
*flagged* when :math:`|z| = |s - \\sigma| / \\mathrm{se}(s) > 5` (the same 5-sigma rule as
:func:`initlab.check`). :math:`\\kappa` is 1.8 for uniform laws and 3 for normal and
truncated normal ones (truncation lowers the kurtosis, so 3 is a lenient upper bound);
when :math:`n` is unknown the rule falls back to a relative tolerance of 5%.
Deterministic laws (:math:`\\sigma = 0`: zeros, ones, constants) must give
:math:`s \\le 10^{-7}`; orthogonal matrices and patterns (identity, Dirac) are not
i.i.d. and sparse laws have a kurtosis that depends on their sparsity, so for these the
relative deviation :math:`|s/\\sigma - 1|` must stay within 5%. Data-dependent schemes
(LSUV) have no expected std (NaN): their rows are reported as "n/a", never flagged.

Seeds are pooled per scheme and layer: the ratio :math:`s/\\sigma` is averaged over seeds
and the layer is flagged when any seed is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from initlab.report.types import InitRecord, RunData

__all__ = ["ConformanceCell", "conformance", "judge", "SIGMAS", "REL_TOL"]

#: z threshold of the check.
SIGMAS = 5.0
#: Relative tolerance when the sampling error cannot be sized.
REL_TOL = 0.05
#: Absolute tolerance for deterministic (std 0) laws.
ABS_TOL = 1e-7

_KURTOSIS = {"uniform": 1.8, "normal": 3.0, "truncated_normal": 3.0}


def judge(rec: InitRecord) -> tuple[float, bool | None]:
    """``(z or relative deviation, flagged)`` for one record; ``flagged`` is ``None``
    when there is no expected value to compare with."""
    exp, real = rec.expected_std, rec.realized_std
    if not math.isfinite(exp) or not math.isfinite(real):
        if math.isfinite(exp) and not math.isfinite(real):
            return math.nan, True
        return math.nan, None
    if exp <= 0.0:
        return real, bool(real > ABS_TOL)
    family = rec.family.lower()
    if rec.numel > 1 and family in ("", *_KURTOSIS):
        kappa = _KURTOSIS.get(family, 3.0)
        se = exp * math.sqrt((kappa - 1.0) / (4.0 * rec.numel))
        z = (real - exp) / se
        return z, bool(abs(z) > SIGMAS)
    rel = real / exp - 1.0
    return rel, bool(abs(rel) > REL_TOL)


@dataclass
class ConformanceCell:
    """One scheme x layer entry, pooled over seeds."""

    scheme: str
    layer: int
    name: str
    expected_std: float
    realized_std: float  # mean over seeds
    ratio: float  # mean over seeds of realized / expected
    flagged: bool | None  # None: not checkable (no expected std)
    seeds: int
    flagged_seeds: int = 0
    worst_z: float = math.nan
    shape: tuple[int, ...] = field(default_factory=tuple)


def conformance(run: RunData, model: str, dataset: str) -> dict[str, dict[int, ConformanceCell]]:
    """``{scheme: {layer: ConformanceCell}}`` from the init records of one group (all
    cells that have them, finished or not: init happens first)."""
    by: dict[tuple[str, int], list[InitRecord]] = {}
    for c in run.cells_of(model, dataset, finished_only=False):
        for rec in c.init:
            by.setdefault((c.scheme, rec.layer), []).append(rec)
    out: dict[str, dict[int, ConformanceCell]] = {}
    for (scheme, layer), recs in by.items():
        verdicts = [judge(r) for r in recs]
        checkable = [v for v in verdicts if v[1] is not None]
        exp = float(np.mean([r.expected_std for r in recs]))
        real = float(np.mean([r.realized_std for r in recs]))
        ratios = [r.realized_std / r.expected_std for r in recs
                  if math.isfinite(r.expected_std) and r.expected_std > 0]
        zs = [abs(v[0]) for v in checkable if math.isfinite(v[0])]
        n_flag = sum(bool(v[1]) for v in checkable)
        out.setdefault(scheme, {})[layer] = ConformanceCell(
            scheme=scheme, layer=layer, name=recs[0].name, expected_std=exp, realized_std=real,
            ratio=float(np.mean(ratios)) if ratios else math.nan,
            flagged=(n_flag > 0) if checkable else None, seeds=len(recs), flagged_seeds=n_flag,
            worst_z=max(zs) if zs else math.nan, shape=tuple(recs[0].shape),
        )
    return out
