"""``initlab.check``: do a model's weights look like what a scheme draws?

For each supported weight (see :mod:`initlab.layers`) the realized entries are compared
with the scheme's analytic law for that weight's shape and fans:

- mean: ``z = (m - mu) / sqrt(var / n)``;
- variance: ``z = (s^2 - var) / sqrt((mu4 - var^2) / n)`` (the large-n sampling error of
  a variance estimate, with the law's 4th central moment);
- shape of the distribution: a one-sample Kolmogorov-Smirnov test against the law's CDF
  on up to ``ks_max`` entries (a fixed subsample), flagged when ``p < ks_alpha``;
- deterministic laws (constant, identity, Dirac): exact comparison.

A layer *does not conform* when ``|z| > sigmas`` (default 5) for the mean or the variance,
or the KS test rejects. This is how initlab catches the article's mistake: its recipes were
"applied" by a no-op, so the weights were still Keras' glorot_uniform (std 0.0439 for the
784->256 layer instead of 0.0206 or 0.0357), hundreds of standard errors away.

Data-dependent schemes (LSUV) have no a-priori law; with ``data=`` the check instead
verifies each layer's output variance on that batch (within the scheme's tol of 1).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from initlab import stats
from initlab.apply import slot_fans
from initlab.errors import InitlabError
from initlab.layers import forward_layers, walk
from initlab.schemes import Scheme, get_scheme, laws


@dataclass
class CheckRow:
    """The verdict on one weight."""

    name: str
    shape: tuple[int, ...]
    family: str
    expected_mean: float
    realized_mean: float
    expected_std: float
    realized_std: float
    z_mean: float
    z_var: float
    ks_d: float
    ks_p: float
    conforms: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d


@dataclass
class CheckReport:
    scheme: str
    sigmas: float
    layers: list[CheckRow] = field(default_factory=list)
    unsupported: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.conforms for r in self.layers)

    @property
    def failures(self) -> list[CheckRow]:
        return [r for r in self.layers if not r.conforms]

    def __bool__(self) -> bool:
        return self.ok

    def to_dict(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "ok": self.ok, "sigmas": self.sigmas,
                "layers": [r.to_dict() for r in self.layers],
                "failures": [r.name for r in self.failures]}

    def __str__(self) -> str:
        lines = [f"initlab.check: scheme {self.scheme}: "
                 + ("all layers conform" if self.ok else
                    f"{len(self.failures)} of {len(self.layers)} layers do not conform"),
                 f"{'layer':<28} {'expected std':>12} {'realized std':>12} {'z(var)':>9} {'KS p':>9}  verdict"]
        for r in self.layers:
            lines.append(f"{r.name:<28} {r.expected_std:>12.5g} {r.realized_std:>12.5g} {r.z_var:>9.3g} "
                         f"{r.ks_p:>9.2g}  {'ok' if r.conforms else 'MISMATCH: ' + r.reason}")
        return "\n".join(lines)


def _z(diff: float, se: float) -> float:
    if se > 0:
        return diff / se
    return 0.0 if abs(diff) < 1e-12 else math.copysign(math.inf, diff)


def check(model: nn.Module, scheme: "str | Scheme", *, sigmas: float = 5.0, ks_alpha: float = 1e-6,
          ks_max: int = 20000, include: Any = None, data: Any = None) -> CheckReport:
    """Compare each supported layer's weights with *scheme*'s law (see module doc)."""
    s = get_scheme(scheme)
    if not sigmas > 0:
        raise InitlabError(f"sigmas must be > 0, got {sigmas}")
    slots, unsupported = walk(model, include)
    if not slots:
        raise InitlabError(f"{type(model).__name__} has no layer initlab can check")
    report = CheckReport(s.spec, sigmas, unsupported=unsupported)
    if s.requires_data:
        return _check_data_dependent(model, s, slots, report, data)
    gen = torch.Generator().manual_seed(0)
    for slot in slots:
        fi, fo = slot_fans(slot)
        law = s.law(slot.block_shape, fans=(fi, fo))
        w = slot.param.detach().to("cpu", torch.float64).reshape(-1)
        n = w.numel()
        m, v = float(w.mean()), float(w.var(unbiased=False))
        if not law.is_random:
            expected = s.init_(torch.empty(slot.block_shape, dtype=torch.float64), fans=(fi, fo))
            exp_full = expected.repeat(slot.blocks, *([1] * (expected.dim() - 1))).reshape(-1)
            same = bool(torch.allclose(w, exp_full, rtol=1e-6, atol=1e-7))
            report.layers.append(CheckRow(slot.name, tuple(slot.param.shape), law.family, law.mean, m, law.std,
                                          math.sqrt(v), 0.0, 0.0, 0.0, 1.0 if same else 0.0, same,
                                          "" if same else f"entries differ from the {law.describe()} pattern"))
            continue
        z_mean = _z(m - law.mean, math.sqrt(law.var / n))
        z_var = _z(v - law.var, math.sqrt(law.var_of_sample_var(n)))
        idx = torch.randperm(n, generator=gen)[:ks_max] if n > ks_max else slice(None)
        sample = w[idx].numpy()
        cdf = law.cdf
        reasons = []
        if law.family == "sparse":  # a point mass at 0 plus a normal: check each part
            p0 = law.params["p_zero"]
            frac0 = float((w == 0).double().mean())
            if abs(frac0 - p0) > sigmas * math.sqrt(p0 * (1 - p0) / n) + 1e-12:
                reasons.append(f"{frac0:.4g} of entries are zero, expected {p0:.4g}")
            sample, cdf = sample[sample != 0], laws.normal(0.0, law.params["scale"]).cdf
        d, p = stats.ks_test(sample, cdf) if sample.size and np.isfinite(sample).all() else (1.0, 0.0)
        if not abs(z_var) <= sigmas:
            reasons.append(f"std {math.sqrt(v):.4g} vs expected {law.std:.4g} ({z_var:+.1f} sigma in variance)")
        if not abs(z_mean) <= sigmas:
            reasons.append(f"mean {m:.4g} vs expected {law.mean:.4g} ({z_mean:+.1f} sigma)")
        if not p >= ks_alpha:
            reasons.append(f"not {law.describe()} (KS D={d:.3g}, p={p:.2g})")
        report.layers.append(CheckRow(slot.name, tuple(slot.param.shape), law.family, law.mean, m, law.std,
                                      math.sqrt(v), z_mean, z_var, d, p, not reasons, "; ".join(reasons)))
    return report


def _check_data_dependent(model: nn.Module, s: Scheme, slots: list, report: CheckReport,
                          data: Any) -> CheckReport:
    if data is None:
        raise InitlabError(f"scheme {s.spec!r} is data-dependent: pass data=<the batch it was fitted on> to check it")
    from initlab.schemes.lsuv import output_stats

    tol = float(s.params["tol"])
    was = model.training
    model.eval()
    try:
        for name, module in forward_layers(slots):
            mean, var = output_stats(model, module, data)
            ok = abs(var - 1.0) < tol if s.name != "lsuv_fastai" else (abs(mean) < tol and abs(math.sqrt(var) - 1) < tol)
            w = module.weight.detach().double()
            report.layers.append(CheckRow(
                f"{name}.weight", tuple(module.weight.shape), "data_dependent", math.nan, float(w.mean()),
                math.nan, float(w.std(unbiased=False)), math.nan, (var - 1.0) / tol, math.nan, math.nan, ok,
                "" if ok else f"output variance {var:.4g} is not within {tol:g} of 1"))
    finally:
        model.train(was)
    return report
