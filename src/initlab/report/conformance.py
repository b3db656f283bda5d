"""Conformance at init: what :func:`initlab.check` said about each layer's weights right
after the study initialized them.

The study runs ``initlab.check(model, scheme)`` on every model before it trains (see
:mod:`initlab.study.init_records`) and stores its :class:`~initlab.check.CheckReport`;
this module only pools those verdicts over seeds, per scheme and layer, for the report.
It judges nothing itself: a layer is *flagged* when ``check`` said it does not conform
(its mean or variance more than ``sigmas`` standard errors from the law's, or the KS test
rejecting its shape; an exact comparison for deterministic laws; the output variance on
the fitting batch for data-dependent schemes such as LSUV), and ``reasons`` are check's
own words. Layers are numbered ``1..L`` in check's order (the model's weights in module
order, as the engine numbers its layers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from initlab.report.types import RunData

__all__ = ["ConformanceCell", "conformance"]


@dataclass
class ConformanceCell:
    """One scheme x layer entry: check's verdicts on that weight, pooled over seeds."""

    scheme: str
    layer: int
    name: str
    family: str
    expected_std: float  # NaN: no a-priori law (data-dependent scheme)
    realized_std: float  # mean over seeds
    ratio: float  # mean over seeds of realized / expected std (NaN: no expected std > 0)
    flagged: bool  # check said some seed's weight does not conform
    seeds: int
    flagged_seeds: int = 0
    worst_z: float = math.nan  # largest |z| of the variance test over seeds
    reasons: tuple[str, ...] = ()  # check's reasons, one per flagged seed (distinct)
    shape: tuple[int, ...] = field(default_factory=tuple)


def conformance(run: RunData, model: str, dataset: str) -> dict[str, dict[int, ConformanceCell]]:
    """``{scheme: {layer: ConformanceCell}}`` from the init checks stored for one group
    (all cells that have one, finished or not: init happens first). Cells whose check is
    missing (a store written before studies checked at init, or a check that raised)
    are left out."""
    by: dict[tuple[str, int], list] = {}
    for c in run.cells_of(model, dataset, finished_only=False):
        if c.init is None or c.init.check is None:
            continue
        for i, row in enumerate(c.init.check.layers, 1):
            by.setdefault((c.scheme, i), []).append(row)
    out: dict[str, dict[int, ConformanceCell]] = {}
    for (scheme, layer), rows in by.items():
        exp = float(np.mean([r.expected_std for r in rows]))
        ratios = [r.realized_std / r.expected_std for r in rows
                  if math.isfinite(r.expected_std) and r.expected_std > 0]
        zs = [abs(r.z_var) for r in rows if math.isfinite(r.z_var)]
        bad = [r for r in rows if not r.conforms]
        out.setdefault(scheme, {})[layer] = ConformanceCell(
            scheme=scheme, layer=layer, name=rows[0].name, family=rows[0].family, expected_std=exp,
            realized_std=float(np.mean([r.realized_std for r in rows])),
            ratio=float(np.mean(ratios)) if ratios else math.nan, flagged=bool(bad), seeds=len(rows),
            flagged_seeds=len(bad), worst_z=max(zs) if zs else math.nan,
            reasons=tuple(dict.fromkeys(r.reason for r in bad if r.reason)), shape=tuple(rows[0].shape),
        )
    return out


def sigmas(run: RunData, model: str, dataset: str) -> float | None:
    """The z threshold check used for the group (``None``: no check stored)."""
    for c in run.cells_of(model, dataset, finished_only=False):
        if c.init is not None and c.init.check is not None:
            return float(c.init.check.sigmas)
    return None
