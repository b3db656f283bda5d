"""``initlab.check``: do a model's weights look like what a scheme draws? And if not, what
do they look like (``initlab.identify``)?

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

When some layer does not conform, :func:`check` also runs :func:`identify`: the same tests
against every registered data-free scheme, so the report can say what the weights *do*
look like (``weights look like: glorot_uniform (= keras_default)``).

Laws with a ``verify`` method (a delta-orthogonal conv kernel: a point mass at 0 mixed
with the orthogonal law) are verified by it: zeros off the centre tap, orthogonality
there, and a KS test of the centre's entries.

Model-level schemes (Fixup, ZerO, SkipInit) check each weight against the law of its role
in the model (:func:`initlab.apply.model_plan`: the same structure and plan ``apply``
used), and the scalar parameters the plan sets (gains, scalar biases, a last norm layer's
affine) exactly.

Data-dependent schemes (LSUV) have no a-priori law; with ``data=`` the check instead
verifies each layer's output variance on that batch (within the scheme's tol of 1).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from initlab import stats
from initlab.apply import model_plan, slot_fans
from initlab.errors import InitlabError
from initlab.layers import WeightSlot, forward_layers, walk, with_rules
from initlab.schemes import Law, Scheme, entry, get_scheme, laws, scheme_names

#: Columns a text report row may take; a longer MISMATCH row puts its reasons on their own lines.
REPORT_WIDTH = 100

#: Which scheme names a law that several registered schemes share, by registry group: the
#: general rule (glorot_uniform) before the framework default or article recipe equal to it.
GROUP_PREFERENCE = ("fan", "structured", "framework", "article", "basic")

#: Printed by :class:`CheckReport` when no candidate fits.
NO_MATCH = "none of the registered schemes"


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
    """What :func:`check` found: one :class:`CheckRow` per weight, the parameterized layers
    left unchecked, and, when some layer fails, ``looks_like``: the :func:`identify` labels
    of the schemes the weights do follow (``[]``: none; ``None``: not computed)."""

    scheme: str
    sigmas: float
    layers: list[CheckRow] = field(default_factory=list)
    unsupported: list[tuple[str, str, str]] = field(default_factory=list)
    looks_like: list[str] | None = None

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
                "failures": [r.name for r in self.failures],
                "looks_like": None if self.looks_like is None else list(self.looks_like)}

    def __repr__(self) -> str:
        verdict = "ok" if self.ok else f"{len(self.failures)} failing"
        return f"CheckReport(scheme={self.scheme!r}, {len(self.layers)} layers, {verdict})"

    def _repr_html_(self) -> str:
        """A table of the verdicts for notebooks (failing layers in red)."""
        from initlab.display import Mark, html_table

        head = (f"initlab.check: scheme {self.scheme}: " + ("all layers conform" if self.ok else
                f"{len(self.failures)} of {len(self.layers)} layers do not conform"))
        rows = [(r.name, r.shape, r.family, r.expected_std, r.realized_std, r.z_var, r.ks_p,
                 Mark("ok" if r.conforms else f"MISMATCH: {r.reason}", r.conforms)) for r in self.layers]
        notes = [f"not checked: {n} ({t}): {why}" for n, t, why in self.unsupported]
        if self.looks_like is not None:
            notes.append(looks_like_line(self.looks_like))
        return html_table(head, ["layer", "shape", "family", "expected std", "realized std", "z(var)",
                                 "KS p", "verdict"], rows, notes=notes)

    def __str__(self) -> str:
        lines = [f"initlab.check: scheme {self.scheme}: "
                 + ("all layers conform" if self.ok else
                    f"{len(self.failures)} of {len(self.layers)} layers do not conform"),
                 f"{'layer':<28} {'expected std':>12} {'realized std':>12} {'z(var)':>9} {'KS p':>9}  verdict"]
        for r in self.layers:
            lines.extend(row_lines(r))
        if self.looks_like is not None:
            lines.append(looks_like_line(self.looks_like))
        return "\n".join(lines)


def row_lines(r: CheckRow, width: int = REPORT_WIDTH) -> list[str]:
    """A report row: ``ok``, ``MISMATCH: reason`` when that fits in *width* columns, else
    ``MISMATCH:`` with each ``;``-separated reason on its own line, indented 4 spaces."""
    head = (f"{r.name:<28} {r.expected_std:>12.5g} {r.realized_std:>12.5g} {r.z_var:>9.3g} "
            f"{r.ks_p:>9.2g}  ")
    if r.conforms:
        return [head + "ok"]
    one = f"{head}MISMATCH: {r.reason}"
    if len(one) <= width:
        return [one]
    return [head + "MISMATCH:", *("    " + part for part in r.reason.split("; "))]


def looks_like_line(labels: list[str]) -> str:
    """``weights look like: a (= b), c`` or ``weights look like: none of the registered schemes``."""
    return "weights look like: " + (", ".join(labels) if labels else NO_MATCH)


# --- the tests, one weight at a time ----------------------------------------------------


@dataclass(frozen=True)
class _Weights:
    """One weight slot's realized entries, read once and tested against any number of laws."""

    slot: WeightSlot
    fans: tuple[int, int]
    n: int
    mean: float
    var: float  #: population variance (divisor n)
    frac_zero: float  #: fraction of entries exactly 0 (the sparse family's point mass)
    sample: np.ndarray  #: up to ks_max entries (a fixed subsample), sorted, for the KS test


def _slots(model: nn.Module, include: Any) -> tuple[list[WeightSlot], list[tuple[str, str, str]]]:
    if not isinstance(model, nn.Module):
        raise InitlabError(f"initlab checks an nn.Module, got {type(model).__name__}; pass the model itself")
    slots, unsupported = walk(model, include)
    if not slots:
        raise InitlabError(f"{type(model).__name__} has no layer initlab can check; give a model with "
                           "Linear, Conv, Embedding or recurrent layers (or widen include=)")
    return slots, unsupported


def _read(slots: list[WeightSlot], ks_max: int) -> list[_Weights]:
    """Each slot's statistics and its KS subsample (``randperm`` from one generator seeded
    0, so the subsample is the same whatever the scheme)."""
    if isinstance(ks_max, bool) or not isinstance(ks_max, numbers.Integral) or ks_max < 1:
        raise InitlabError(f"ks_max must be a positive whole number of entries, e.g. 20000; got {ks_max!r}")
    gen = torch.Generator().manual_seed(0)
    out = []
    for slot in slots:
        w = slot.param.detach().to("cpu", torch.float64).reshape(-1)
        n = w.numel()
        idx = torch.randperm(n, generator=gen)[:ks_max] if n > ks_max else slice(None)
        out.append(_Weights(slot, slot_fans(slot), n, float(w.mean()), float(w.var(unbiased=False)),
                            float((w == 0).double().mean()), np.sort(w[idx].numpy())))
    return out


def _law(s: Scheme, wt: _Weights) -> Law:
    return s.law(wt.slot.block_shape, fans=wt.fans)


def _z(diff: float, se: float) -> float:
    if se > 0:
        return diff / se
    return 0.0 if abs(diff) < 1e-12 else math.copysign(math.inf, diff)


def _same_entries(wt: _Weights, s: Scheme, law: Law) -> bool:
    """Whether the weight equals the deterministic tensor *s* draws (``allclose``, rtol 1e-6,
    atol 1e-7). Entries within ``d`` of the expected ones have mean and std within ``d`` of
    theirs (the std is a seminorm), so a mean or std further off rules the weight out
    without building the expected tensor (patterns are 0/1, so ``d <= atol + rtol max(|mean|, 1)``)."""
    slack = 2 * (1e-7 + 1e-6 * max(abs(law.mean), 1.0))
    if abs(wt.mean - law.mean) > slack or abs(math.sqrt(wt.var) - law.std) > slack:
        return False
    slot = wt.slot
    expected = s.init_(torch.empty(slot.block_shape, dtype=torch.float64), fans=wt.fans)
    exp_full = expected.repeat(slot.blocks, *([1] * (expected.dim() - 1))).reshape(-1)
    w = slot.param.detach().to("cpu", torch.float64).reshape(-1)
    return bool(torch.allclose(w, exp_full, rtol=1e-6, atol=1e-7))


def _pattern_row(wt: _Weights, s: Scheme, law: Law) -> CheckRow:
    """Exact comparison with a deterministic law (constant, identity, Dirac)."""
    slot = wt.slot
    same = _same_entries(wt, s, law)
    return CheckRow(slot.name, tuple(slot.param.shape), law.family, law.mean, wt.mean, law.std,
                    math.sqrt(wt.var), 0.0, 0.0, 0.0, 1.0 if same else 0.0, same,
                    "" if same else f"entries differ from the {law.describe()} pattern")


def _ks(sample: np.ndarray, cdf: Any, point: float | None) -> tuple[float, float]:
    """KS ``(D, p)`` of *sample* against *cdf*; ``(1, 0)`` for an empty or non-finite sample.

    A zero-variance law (``normal(std=0)``) is a point mass at *point*: the usual formula
    assumes a continuous CDF, so here ``D = max(P_n(x < point), P_n(x > point))`` exactly,
    and ``p`` is 1 when every entry is *point* and 0 otherwise (any other value is impossible).
    """
    if not sample.size or not np.isfinite(sample).all():
        return 1.0, 0.0
    if point is not None:
        d = float(max(np.mean(sample < point), np.mean(sample > point)))
        return d, 1.0 if d == 0 else 0.0
    return stats.ks_test(sample, cdf)


def _verified_row(wt: _Weights, law: Law, ks_alpha: float) -> CheckRow:
    """The verdict of a law that verifies the tensor itself (``law.verify``), block by block."""
    slot = wt.slot
    reason, d, p = "", 0.0, 1.0
    w = slot.param.detach().to("cpu", torch.float64)
    for block in (w.chunk(slot.blocks, dim=0) if slot.blocks > 1 else [w]):
        r, d1, p1 = law.verify(block, ks_alpha)  # type: ignore[attr-defined]
        reason, d, p = reason or r, max(d, d1), min(p, p1)
    return CheckRow(slot.name, tuple(slot.param.shape), law.family, law.mean, wt.mean, law.std,
                    math.sqrt(wt.var), 0.0, 0.0, d, p, not reason, reason)


def _fixed_row(name: str, p: torch.Tensor, value: float) -> CheckRow:
    """A parameter a model-level scheme sets to *value* (a scalar gain or bias), compared exactly."""
    w = p.detach().to("cpu", torch.float64).reshape(-1)
    ok = bool((w == value).all())
    return CheckRow(name, tuple(p.shape), "constant", value, float(w.mean()), 0.0,
                    float(w.std(unbiased=False)) if w.numel() > 1 else 0.0, 0.0, 0.0, 0.0,
                    1.0 if ok else 0.0, ok, "" if ok else f"entries differ from the constant {value:g}")


def _row(wt: _Weights, s: Scheme, law: Law, sigmas: float, ks_alpha: float) -> CheckRow:
    """The verdict on one weight under *law* (see the module doc for the tests)."""
    if callable(getattr(law, "verify", None)):
        return _verified_row(wt, law, ks_alpha)
    if not law.is_random:
        return _pattern_row(wt, s, law)
    z_mean = _z(wt.mean - law.mean, math.sqrt(law.var / wt.n))
    z_var = _z(wt.var - law.var, math.sqrt(law.var_of_sample_var(wt.n)))
    sample, cdf = wt.sample, law.cdf
    reasons = []
    if law.family == "sparse":  # a point mass at 0 plus a normal: check each part
        p0 = law.params["p_zero"]
        if abs(wt.frac_zero - p0) > sigmas * math.sqrt(p0 * (1 - p0) / wt.n) + 1e-12:
            reasons.append(f"{wt.frac_zero:.4g} of entries are zero, expected {p0:.4g}")
        sample, cdf = sample[sample != 0], laws.normal(0.0, law.params["scale"]).cdf
    point = law.mean if law.var == 0 else None
    d, p = _ks(sample, cdf, point)
    std = math.sqrt(wt.var)
    if not abs(z_var) <= sigmas:
        reasons.append(f"std {std:.4g} vs expected {law.std:.4g} ({z_var:+.1f} sigma in variance)")
    if not abs(z_mean) <= sigmas:
        reasons.append(f"mean {wt.mean:.4g} vs expected {law.mean:.4g} ({z_mean:+.1f} sigma)")
    if not p >= ks_alpha:
        reasons.append(f"not {law.describe()} (KS D={d:.3g}, p={p:.2g})")
    return CheckRow(wt.slot.name, tuple(wt.slot.param.shape), law.family, law.mean, wt.mean, law.std,
                    std, z_mean, z_var, d, p, not reasons, "; ".join(reasons))


def _require_thresholds(sigmas: float, ks_alpha: float) -> None:
    if not sigmas > 0:
        raise InitlabError(f"sigmas must be > 0, got {sigmas}")
    if not 0 < ks_alpha < 1:
        raise InitlabError(f"ks_alpha must be a p-value threshold in (0, 1), e.g. 1e-6; got {ks_alpha}")


def check(model: nn.Module, scheme: "str | Scheme", *, sigmas: float = 5.0, ks_alpha: float = 1e-6,
          ks_max: int = 20000, include: Any = None, data: Any = None, identify: bool = True) -> CheckReport:
    """Compare each supported layer's weights with *scheme*'s law (see module doc).

    Args:
        model: any ``nn.Module``.
        scheme: a name, alias, spec string or :class:`Scheme`.
        sigmas: z threshold of the mean and variance tests.
        ks_alpha: the KS test rejects when ``p < ks_alpha``.
        ks_max: the KS test runs on at most this many entries of each weight.
        include: restrict to some layers, as in :func:`initlab.apply`.
        data: the batch a data-dependent scheme (LSUV) was fitted on.
        identify: when some layer does not conform, fill ``report.looks_like`` with
            :func:`identify`'s answer (~30 schemes tested: skip it when speed matters).

    Returns:
        :class:`CheckReport`; ``looks_like`` stays ``None`` when every layer conforms or
        *identify* is false.
    """
    s = get_scheme(scheme)
    _require_thresholds(sigmas, ks_alpha)
    slots, unsupported = _slots(model, include)
    report = CheckReport(s.spec, sigmas, unsupported=unsupported)
    weights = None
    plan = model_plan(model, s)
    if s.requires_data and not getattr(s, "checked_by_law", False):  # gradinit/metainit: their ScaledLaw
        _check_data_dependent(model, s, slots, report, data)
    elif plan is not None:
        weights = _read(slots, ks_max)
        for wt in weights:
            role = plan.role_for(wt.slot.module)
            report.layers.append(_row(wt, role.scheme, _law(role.scheme, wt), sigmas, ks_alpha))
        report.layers.extend(_fixed_row(n, p, v) for n, p, v in plan.fixed)
    else:  # each weight as the scheme treats its layer type (initlab.schemes.dialects)
        ruled = with_rules(slots, s)
        weights = _read(ruled, ks_max)
        report.layers = [_row(wt, wt.slot.scheme or s, _law(wt.slot.scheme or s, wt), sigmas, ks_alpha)
                         for wt in weights]
        if any(slot.rule for slot in ruled):
            weights = None  # identify reads the weights under the torch conventions
    if identify and not report.ok:
        report.looks_like = _identify(weights or _read(slots, ks_max), _candidates(None), sigmas, ks_alpha)
    return report


# --- identify: which registered schemes do the weights follow? ---------------------------


@dataclass(frozen=True)
class _Fit:
    """A candidate under which every layer conforms."""

    scheme: Scheme
    laws: tuple[str, ...]  #: ``Law.describe()`` per layer: equal tuples are the same law here
    score: tuple[float, float, float]  #: (max |z(var)|, max |z(mean)|, -min KS p): smaller fits better


def identify(model: nn.Module, candidates: "Iterable[str | Scheme] | str | Scheme | None" = None, *,
             sigmas: float = 5.0, ks_alpha: float = 1e-6, include: Any = None,
             ks_max: int = 20000) -> list[str]:
    """The schemes whose law every checked layer of *model* conforms to: "your weights look
    like X".

    Each candidate is tested exactly as :func:`check` tests a scheme (z-tests on mean and
    variance at *sigmas*, a KS test at *ks_alpha*, exact comparison for deterministic
    laws). Candidates are registered names, aliases, specs or :class:`Scheme` objects;
    ``None`` means every registered scheme with its default parameters. Data-dependent
    schemes (``lsuv``, ``lsuv_fastai``) have no a-priori law and are skipped, as are
    schemes that do not apply to some layer (``dirac`` on a Linear weight).

    Returns:
        One label per distinct law, best fit first (smallest largest-over-layers
        ``|z(var)|``, then ``|z(mean)|``, then the largest smallest KS p). Schemes that
        give the same law to every checked layer (equal :meth:`Law.describe`, the notion
        behind ``initlab schemes NAME``'s "same law as") share one label: the preferred
        name (by :data:`GROUP_PREFERENCE`, then fewer parameters, then registry order),
        then the others, e.g. ``"glorot_uniform (= keras_default)"`` or, for a Linear
        model, ``"torch_default (= uniform_recipe)"``. ``[]`` when no candidate fits.

    Statistics:
        About 30 candidates x L layers x 3 tests are run, so the thresholds must hold up
        under many comparisons. A scheme the weights really follow is dropped only when one
        of its own ~3L tests fires by chance: ``L (2 P(|Z| > sigmas) + ks_alpha)``, about
        5e-6 for the article's 3-layer MLP at 5 sigma (2-sigma tests would drop it about
        one time in three). A *wrong* scheme is listed only when its law is within the
        tests' resolution on every layer: for n entries the variance test resolves a
        relative variance difference of about ``sigmas sqrt((kurtosis - 1) / n)`` (1.6% for
        a normal 784x256 weight, 20% for a 128x10 one) and the KS test a CDF gap of about
        ``sqrt(ln(2 / ks_alpha) / (2 min(n, ks_max)))`` (0.019 for 20000 entries), so
        registered schemes, whose variances differ by factors such as 2 or 3, are rarely
        confused. Two laws with the same variance and a shape the KS test cannot separate
        cannot be told apart and are both listed: lecun_normal and orthogonal when
        fan_in >= fan_out in every layer (an orthogonal entry is a Beta variable, nearly
        normal), or any scheme and its same-law twins.

    >>> import initlab, torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 64))
    >>> _ = initlab.apply(model, "keras_default", seed=0)
    >>> identify(model)
    ['glorot_uniform (= keras_default)']
    """
    _require_thresholds(sigmas, ks_alpha)
    schemes = _candidates(candidates)
    slots, _ = _slots(model, include)
    return _identify(_read(slots, ks_max), schemes, sigmas, ks_alpha)


def _candidates(candidates: Any) -> list[Scheme]:
    """The data-free schemes to try, without duplicates (by spec)."""
    given = candidates is not None
    if not given:
        candidates = scheme_names()
    elif isinstance(candidates, (str, Scheme, Mapping)):
        candidates = [candidates]
    elif not isinstance(candidates, Iterable):
        raise InitlabError(f"candidates must be scheme names or specs, got {type(candidates).__name__}; "
                           "pass e.g. ['he_normal', 'glorot_uniform'] or None for every registered scheme")
    unique: dict[str, Scheme] = {}
    for c in candidates:
        s = get_scheme(c)
        if not s.requires_data and not getattr(s, "needs_branches", False) and getattr(s, "per_weight_law", True):
            unique.setdefault(s.spec, s)
    if not unique:
        raise InitlabError("no data-free scheme among the candidates (data-dependent ones such as lsuv and "
                           "model-level ones such as fixup have no per-weight law to compare with; check a model "
                           "against them with initlab.check); pass names such as he_normal, or None")
    return list(unique.values())


def _fit(weights: list[_Weights], s: Scheme, sigmas: float, ks_alpha: float) -> _Fit | None:
    """*s*'s fit when every layer conforms to it, else ``None`` (stops at the first failure)."""
    described, rows = [], []
    for wt in weights:
        try:
            law = _law(s, wt)
        except InitlabError:  # the scheme does not apply to this layer, e.g. dirac on a Linear weight
            return None
        row = _row(wt, s, law, sigmas, ks_alpha)
        if not row.conforms:
            return None
        described.append(law.describe())
        rows.append(row)
    score = (max(abs(r.z_var) for r in rows), max(abs(r.z_mean) for r in rows), -min(r.ks_p for r in rows))
    return _Fit(s, tuple(described), score)


def _preference(s: Scheme) -> tuple[int, int, int]:
    """Sort key of the name that labels a shared law (see :data:`GROUP_PREFERENCE`)."""
    e = entry(s.name)
    group = GROUP_PREFERENCE.index(e.group) if e.group in GROUP_PREFERENCE else len(GROUP_PREFERENCE)
    return group, len(e.defaults), scheme_names().index(s.name)


def _label(group: list[Scheme]) -> str:
    first, *rest = sorted(group, key=_preference)
    return first.spec + (f" (= {', '.join(s.spec for s in rest)})" if rest else "")


def _identify(weights: list[_Weights], schemes: list[Scheme], sigmas: float, ks_alpha: float) -> list[str]:
    """:func:`identify` on weights already read: fits grouped by law, best group first."""
    by_law: dict[tuple[str, ...], list[_Fit]] = {}
    for s in schemes:
        fit = _fit(weights, s, sigmas, ks_alpha)
        if fit is not None:
            by_law.setdefault(fit.laws, []).append(fit)
    groups = sorted(by_law.values(), key=lambda fits: min(f.score for f in fits))
    return [_label([f.scheme for f in fits]) for fits in groups]


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
