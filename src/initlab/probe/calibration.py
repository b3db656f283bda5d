"""Calibrated verdicts: what the probe's measurements predict about training.

The probe (:mod:`initlab.probe.runner`) measures a network at initialization; its raw
verdicts (:mod:`initlab.probe.verdicts`) say what crossed a fixed threshold. This module
turns the same measurements into a *prediction* of how the network trains, fitted on a
grid of models that were probed at init and then trained (``benchmarks/calibrate_probe.py``
makes the grid, ``benchmarks/fit_calibration.py`` fits this module's parameters to it and
writes them to the package data file ``calibration.json``).

What the score estimates
------------------------
For one model and optimizer let ``acc`` be a scheme's test accuracy after the calibration
budget (one epoch on 10k Fashion-MNIST images, the grid file's header says exactly), ``c``
the chance accuracy ``1 / classes`` and ``best`` the highest seed-mean accuracy of any
scheme on that same model and optimizer. The *relative trainability* is

    r = clip((acc - c) / (best - c), 0, 1)

(1: as good as the best scheme tried on that model; 0: chance). The score is the
fitted estimate of ``E[r]`` from the probe at init, a fractional logistic regression
(Papke & Wooldridge 1996) per optimizer:

    score = sigmoid(b_opt + sum_k w_{opt,k} x_k)

on the features ``x_k`` of :func:`features` (decades the signal or gradient lost or
gained over the whole depth, dead and saturated fractions, duplicate units, the loss at
init, and the spread of the input-output Jacobian's singular values,
:func:`jacobian_spread`). Every failure feature's weight is constrained to ``w <= 0`` (more decades lost can
only lower the score), so the fit is monotone and each feature's share of the logit says
why a score is low.

Depth: the features are the *compounded* changes (the per-layer factor to the power of the
depth, measured over the actual layers), so a per-layer factor that costs one decade over 3
layers costs ten over 30. Optimizer: Adam divides each step by the gradient's running RMS,
so small gradients that stall SGD do not stall Adam; each optimizer has its own weights.

Verdict: ``"ok"`` when ``score >= threshold_opt`` (fitted per optimizer to maximize the
balanced accuracy of "trains", i.e. ``r >= ok_fraction``, on the training split), else the
failure kind (:data:`~initlab.probe.result.KINDS`) of the feature that lowers the logit
most (``unbroken_symmetry`` whenever half of some layer's units are copies: no optimizer
separates them). A model whose probe overflowed (non-finite loss or variance) is a failure regardless.

>>> from initlab.probe.calibration import predict            # doctest: +SKIP
>>> predict(result["he_normal"], optimizer="sgd").verdict      # doctest: +SKIP
'ok'
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from initlab.errors import InitlabError, UnknownNameError, suggest
from initlab.probe.kinds import KINDS

#: Optimizers the calibration knows (the grid trains each).
OPTIMIZERS = ("adam", "sgd")

#: Feature names, in the order of :func:`features`, and the failure kind each one explains.
FEATURES: tuple[tuple[str, str], ...] = (
    ("signal_lost", "vanishing_signal"),       # decades Var(z) lost by the worst layer
    ("signal_gained", "exploding_signal"),     # decades Var(z) gained by the worst layer
    ("gradient_lost", "vanishing_gradients"),  # decades ||dL/dz||^2 lost going back
    ("gradient_gained", "exploding_gradients"),
    ("dead", "dead_units"),                    # max over layers of the fraction of outputs exactly 0
    ("saturated", "saturation"),               # max saturated fraction
    ("duplicate", "unbroken_symmetry"),        # max fraction of duplicate units
    ("loss_excess", "exploding_signal"),       # log(loss / log(classes)), >= 0
    ("jacobian_spread", "ill_conditioned"),    # std of log10 of the input-output Jacobian's singular values
)
FEATURE_NAMES = tuple(name for name, _ in FEATURES)

#: A row of the grid trains when its relative trainability r reaches this.
OK_FRACTION = 0.8

#: Decades beyond which a loss of signal/gradient counts the same (zeros give -inf).
MAX_DECADES = 60.0

#: The Jacobian spread (decades) beyond which it counts the same.
MAX_SPREAD = 5.0
#: Singular values below this fraction of the largest are the Jacobian's null space (a
#: classifier narrower than the classes, a zero residual branch), not part of its spread.
RANK_CUTOFF = 1e-6

DATA_FILE = "calibration.json"


def check_optimizer(optimizer: Any) -> str:
    """*optimizer* as one of :data:`OPTIMIZERS`, or a one-line error."""
    if not isinstance(optimizer, str) or optimizer.lower() not in OPTIMIZERS:
        raise UnknownNameError(f"unknown optimizer {optimizer!r}{suggest(str(optimizer), list(OPTIMIZERS))}; "
                               f"the calibration knows {', '.join(OPTIMIZERS)}")
    return optimizer.lower()


# -- the measurements the calibration reads ------------------------------------------------

def _log10(x: float) -> float:
    if x is None or not isinstance(x, (int, float)) or math.isnan(x):
        return math.nan
    if x <= 0:
        return -math.inf
    if math.isinf(x):
        return math.inf
    return math.log10(x)


def _r(x: float, digits: int = 4) -> Any:
    """Rounded for the grid file; non-finite as strings (strict JSON)."""
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return float(f"{x:.{digits}g}") if isinstance(x, float) else x


def _f(x: Any) -> float:
    if isinstance(x, str):
        return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[x]
    return float(x)


def jacobian_spread(singular_values: Sequence[Sequence[float]] | None) -> float:
    """How far the input-output Jacobian is from an isometry: the standard deviation of
    ``log10 sigma_i`` over its singular values at one input, averaged over the probed inputs
    (decades; 0 for a Jacobian whose singular values are all equal, *dynamical isometry* in
    Pennington, Schoenholz & Ganguli 2017), over the singular values of at least
    :data:`RANK_CUTOFF` times the largest (a rank the architecture caps, e.g. a CNN whose last
    pooled features are fewer than its classes, is no spread); 0 for an all-zero Jacobian.
    ``nan`` when the probe took no Jacobian or its forward pass overflowed.

    It is what the other features cannot see: at the same variance per layer (the same
    signal and gradient norms) a deep tanh net under Gaussian weights spreads its spectrum
    over decades and does not train, under orthogonal weights it stays near 1 and does
    (Saxe et al. 2014; Pennington et al. 2017; the ``pennington2017`` paper card).
    """
    if not singular_values:
        return math.nan
    spreads = []
    for row in singular_values:
        vals = np.asarray(row, dtype=np.float64)
        if vals.size == 0 or not np.isfinite(vals).all():
            return math.nan
        top = float(vals.max())
        if top <= 0:  # an all-zero Jacobian: no spread to speak of
            spreads.append(0.0)
            continue
        spreads.append(float(np.log10(vals[vals >= top * RANK_CUTOFF]).std()))
    return float(np.mean(spreads))


def summarize(scheme_probe: Any, *, classes: int | None = None) -> dict[str, Any]:
    """The part of one scheme's probe (:class:`~initlab.probe.result.SchemeProbe`) that the
    calibration reads, as plain JSON (what the grid file stores per probe):

    ``layers`` (the depth), per layer ``log10 Var(z_l) / Var(x)`` (``signal``),
    ``log10 (||dL/dz_l|| / ||dL/dz_L||)^2`` (``gradient``, hidden layers, output last),
    the zero, saturated and duplicate-unit fractions, the loss at init, the number of
    classes, the per-layer rates, the raw measured verdict kinds and the Jacobian's spread
    (:func:`jacobian_spread`; ``"nan"`` when the probe took no Jacobian).
    """
    layers = list(scheme_probe.layers)
    if not layers:
        raise InitlabError("the probe has no measured layer; probe a model with Linear/Conv layers")
    ref = scheme_probe.input_var if scheme_probe.input_var > 0 and math.isfinite(scheme_probe.input_var) \
        else (scheme_probe.input_second_moment or 1.0)
    signal = [_log10(layer.pre_var / ref) if math.isfinite(layer.pre_var) else math.inf for layer in layers]
    out = layers[-1].grad_norm
    gradient = []
    for layer in layers[:-1]:
        g = layer.grad_norm
        if math.isnan(g) or math.isnan(out):
            gradient.append(math.nan)
        elif out == 0.0:
            gradient.append(math.nan if g == 0.0 else math.inf)
        else:
            gradient.append(2.0 * _log10(g / out) if math.isfinite(g) else math.inf)
    n_classes = classes if classes is not None else max(int(layers[-1].units), 2)
    return {
        "layers": len(layers),
        "classes": n_classes,
        "signal": [_r(v) for v in signal],
        "gradient": [_r(v) for v in gradient],
        "zero": [_r(float(layer.zero_fraction)) for layer in layers],
        "saturated": [_r(float(layer.saturated_fraction)) for layer in layers],
        "duplicate": [_r(layer.duplicate_units / max(layer.units, 1)) for layer in layers],
        "loss": _r(float(scheme_probe.loss)),
        "signal_rate": _r(float(scheme_probe.signal_rate)),
        "gradient_rate": _r(float(scheme_probe.gradient_rate)),
        "measured": [v.kind for v in scheme_probe.verdicts],
        "jacobian_spread": _r(jacobian_spread(scheme_probe.jacobian_singular_values)),
    }


def _clip_decades(x: float) -> float:
    if math.isnan(x):
        return 0.0
    return min(max(x, 0.0), MAX_DECADES)


def features(summary: Mapping[str, Any]) -> np.ndarray:
    """The feature vector (:data:`FEATURE_NAMES`) of one probe summary (:func:`summarize`).

    ``signal_lost = -min(0, min_l log10 Var(z_l)/Var(x))`` and ``signal_gained = max(0,
    max_l ...)``, likewise for the squared gradient norms relative to the output layer's;
    each is clipped to [0, 60] decades and entered as ``log1p(decades)`` (a loss of 2 decades
    is not twice as bad as 1; 40 is as fatal as 60). ``dead``, ``saturated``, ``duplicate``:
    the worst layer's fraction. ``loss_excess = max(0, log(loss / log(classes)))``: logits
    at init far from uniform (an exploding output); ``inf`` loss gives the cap 5.
    ``jacobian_spread``: :func:`jacobian_spread` in decades, clipped to [0, 5]; 0 when the
    summary has none (the probe took no Jacobian: ``jacobian=False``, or a model whose
    ``in * out`` exceeds the probe's ``jacobian_max_entries``), so such a model is scored
    without it.
    """
    sig = [_f(v) for v in summary["signal"]]
    grad = [_f(v) for v in summary["gradient"]]
    finite_sig = [v for v in sig if not math.isnan(v)]
    lo = min(finite_sig, default=0.0)
    hi = max(finite_sig, default=0.0)
    finite_grad = [v for v in grad if not math.isnan(v)]
    glo = min(finite_grad, default=0.0)
    ghi = max(finite_grad, default=0.0)
    loss = _f(summary["loss"])
    chance_loss = math.log(max(int(summary["classes"]), 2))
    if math.isnan(loss) or math.isinf(loss):
        excess = 5.0
    else:
        excess = min(max(math.log(max(loss, 1e-12) / chance_loss), 0.0), 5.0)

    def worst(key: str) -> float:
        vals = [_f(v) for v in summary[key] if not math.isnan(_f(v))]
        return max(vals, default=0.0)

    return np.array([
        math.log1p(_clip_decades(-lo)), math.log1p(_clip_decades(hi)),
        math.log1p(_clip_decades(-glo)), math.log1p(_clip_decades(ghi)),
        worst("zero"), worst("saturated"), worst("duplicate"), excess,
        _spread_feature(summary.get("jacobian_spread", "nan")),
    ], dtype=np.float64)


def _spread_feature(value: Any) -> float:
    v = _f(value)
    if math.isnan(v):
        return 0.0
    return math.log1p(min(max(v, 0.0), MAX_SPREAD))


def overflowed(summary: Mapping[str, Any]) -> bool:
    """The probe's forward pass overflowed (non-finite loss or variance)."""
    loss = _f(summary["loss"])
    return not math.isfinite(loss) or any(_f(v) == math.inf for v in summary["signal"])


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


# -- the fitted parameters -----------------------------------------------------------------

@dataclass(frozen=True)
class OptimizerFit:
    """One optimizer's score model: ``score = sigmoid(intercept + weights . x)`` and the
    verdict's ``ok`` threshold on the score."""

    intercept: float
    weights: tuple[float, ...]
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return {"intercept": self.intercept, "weights": dict(zip(FEATURE_NAMES, self.weights)),
                "threshold": self.threshold}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OptimizerFit:
        w = d["weights"]
        return cls(float(d["intercept"]), tuple(float(w[name]) for name in FEATURE_NAMES), float(d["threshold"]))


@dataclass(frozen=True)
class Calibration:
    """The fitted calibration: one :class:`OptimizerFit` per optimizer, the definition of
    "trains" (``ok_fraction``), the grid it was fitted on and its held-out metrics."""

    fits: Mapping[str, OptimizerFit]
    ok_fraction: float = OK_FRACTION
    grid: Mapping[str, Any] = field(default_factory=dict)
    heldout: Mapping[str, Any] = field(default_factory=dict)
    #: every grid row under this calibration (:func:`heldout_points` with ``split="all"``)
    points: tuple[Mapping[str, Any], ...] = ()

    def fit_for(self, optimizer: str) -> OptimizerFit:
        return self.fits[check_optimizer(optimizer)]

    @property
    def budget(self) -> dict[str, int]:
        """The training budget the score predicts for (the grid's settings): ``epochs`` over
        the first ``n_train`` Fashion-MNIST training images, accuracy on the first ``n_test``
        test images. Train at this budget to compare a score with training; the defaults (1
        epoch, 10,000 / 2,000 images) for a calibration that does not record it."""
        settings = dict(self.grid.get("settings", {}))
        return {"epochs": int(settings.get("epochs", 1)), "n_train": int(settings.get("n_train", 10_000)),
                "n_test": int(settings.get("n_test", 2_000))}

    def to_dict(self) -> dict[str, Any]:
        return {"format": 1, "features": list(FEATURE_NAMES), "ok_fraction": self.ok_fraction,
                "fits": {k: v.to_dict() for k, v in self.fits.items()},
                "grid": dict(self.grid), "heldout": dict(self.heldout), "points": [dict(p) for p in self.points]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibration:
        try:
            if list(d["features"]) != list(FEATURE_NAMES):
                raise InitlabError(f"calibration file has features {d['features']}, this initlab reads "
                                   f"{list(FEATURE_NAMES)}; refit it with benchmarks/fit_calibration.py")
            return cls(fits={k: OptimizerFit.from_dict(v) for k, v in d["fits"].items()},
                       ok_fraction=float(d["ok_fraction"]), grid=d.get("grid", {}), heldout=d.get("heldout", {}),
                       points=tuple(d.get("points", ())))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InitlabError):
                raise
            raise InitlabError(f"malformed calibration data ({type(exc).__name__}: {exc}); "
                               "refit it with benchmarks/fit_calibration.py") from None

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")
        return p


@lru_cache(maxsize=1)
def _shipped() -> Calibration:
    text = resources.files("initlab.probe").joinpath(DATA_FILE).read_text()
    return Calibration.from_dict(json.loads(text))


def load_calibration(path: str | Path | None = None) -> Calibration:
    """The calibration shipped in the package (``initlab/probe/calibration.json``), or the
    one in the file *path*."""
    if path is None:
        return _shipped()
    p = Path(path)
    if not p.is_file():
        raise InitlabError(f"no calibration file {p}; give a file written by benchmarks/fit_calibration.py")
    try:
        return Calibration.from_dict(json.loads(p.read_text()))
    except json.JSONDecodeError as exc:
        raise InitlabError(f"calibration file {p} is not JSON ({exc}); refit it") from None


# -- predictions ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Prediction:
    """What the probe at init predicts about training.

    ``score``: the estimated relative trainability ``E[r]`` in [0, 1] (module docstring:
    the expected accuracy above chance after the calibration budget, as a fraction of the
    best scheme's on that model). ``verdict``: ``"ok"`` or a failure kind of
    :data:`~initlab.probe.result.KINDS`. ``predicts``: one sentence. ``reasons``: the
    measured facts behind it (per-layer factor, depth, optimizer).
    """

    score: float
    verdict: str
    predicts: str
    reasons: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "verdict": self.verdict, "predicts": self.predicts,
                "reasons": list(self.reasons)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Prediction:
        try:
            verdict = str(d["verdict"])
            if verdict != "ok" and verdict not in KINDS:
                raise InitlabError(f"unknown verdict {verdict!r} in a prediction; expected ok or one of "
                                   f"{', '.join(KINDS)}")
            return cls(float(d["score"]), verdict, str(d["predicts"]), tuple(str(r) for r in d["reasons"]))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InitlabError):
                raise
            raise InitlabError(f"malformed prediction ({type(exc).__name__}: {exc}); give a dict written "
                               "by Prediction.to_dict()") from None


_WHAT = {
    "vanishing_signal": "the signal fades",
    "exploding_signal": "the signal blows up",
    "vanishing_gradients": "the gradients fade before they reach the first layers",
    "exploding_gradients": "the gradients blow up going back",
    "dead_units": "most units output 0",
    "saturation": "the activations saturate",
    "unbroken_symmetry": "units are identical copies and stay so",
    "ill_conditioned": "the input-output Jacobian stretches some directions by decades more than others",
}


def _facts(summary: Mapping[str, Any]) -> dict[str, str]:
    """One measured fact per feature, in words."""
    n = int(summary["layers"])
    sig = [_f(v) for v in summary["signal"]]
    grad = [_f(v) for v in summary["gradient"]]
    out: dict[str, str] = {}
    rate = _f(summary["signal_rate"])
    per = f"{rate:.3g}x per layer" if math.isfinite(rate) and rate > 0 else "per layer: not measurable"
    finite = [v for v in sig if not math.isnan(v)]
    if finite:
        lo, hi = min(finite), max(finite)
        if lo == -math.inf:
            text = f"Var(z) is exactly 0 within {n} layers"
        elif hi == math.inf:
            text = f"the forward pass overflows within {n} layers"
        else:
            text = f"Var(z) spans {10 ** lo:.2g}x..{10 ** hi:.2g}x the input's over {n} layers ({per})"
        out["signal_lost"] = out["signal_gained"] = text
    grate = _f(summary["gradient_rate"])
    gper = f"{grate:.3g}x per layer" if math.isfinite(grate) and grate > 0 else "per layer: not measurable"
    fg = [v for v in grad if not math.isnan(v)]
    if fg:
        glo, ghi = min(fg), max(fg)
        if glo == -math.inf:
            text = "the hidden layers get exactly 0 gradient"
        elif ghi == math.inf:
            text = "the gradients overflow going back"
        else:
            text = (f"||dL/dz||^2 spans {10 ** glo:.2g}x..{10 ** ghi:.2g}x the output layer's going back over "
                    f"{n} layers ({gper})")
        out["gradient_lost"] = out["gradient_gained"] = text
    x = features(summary)
    out["dead"] = f"{x[4]:.0%} of some layer's outputs are exactly 0"
    out["saturated"] = f"{x[5]:.0%} of some layer's outputs are saturated"
    out["duplicate"] = f"{x[6]:.0%} of some layer's units duplicate another"
    spread = _f(summary.get("jacobian_spread", "nan"))
    if math.isfinite(spread):
        out["jacobian_spread"] = (f"the input-output Jacobian's singular values spread over {spread:.2g} decades "
                                  f"(std of log10; 0 is an isometry)")
    out["loss_excess"] = f"the loss at init is {_f(summary['loss']):.3g} (chance: {math.log(int(summary['classes'])):.3g})"
    return out


def predict_summary(summary: Mapping[str, Any], *, optimizer: str = "adam",
                    calibration: Calibration | None = None) -> Prediction:
    """:func:`predict` from a probe summary (:func:`summarize`), e.g. a row of the grid."""
    opt = check_optimizer(optimizer)
    cal = calibration or load_calibration()
    fit = cal.fit_for(opt)
    x = features(summary)
    contrib = np.asarray(fit.weights) * x
    score = _sigmoid(fit.intercept + float(contrib.sum()))
    n = int(summary["layers"])
    facts = _facts(summary)
    name = {"adam": "Adam", "sgd": "SGD"}[opt]
    worst = int(np.argmin(contrib))
    hard = overflowed(summary)
    if hard:
        kind = "exploding_signal" if any(_f(v) == math.inf for v in summary["signal"]) else "exploding_gradients"
        feature = "signal_gained" if kind == "exploding_signal" else "gradient_gained"
        score = 0.0
    elif score >= fit.threshold:
        kind, feature = "ok", ""
    else:
        feature, kind = FEATURES[worst]
        if contrib[worst] >= 0:  # nothing measured pulls it down: the intercept alone
            kind = "vanishing_gradients" if x[2] >= x[0] else "vanishing_signal"
            feature = "gradient_lost" if kind == "vanishing_gradients" else "signal_lost"
        if x[6] >= 0.5:  # half the units are copies: no optimizer separates them, whatever else is wrong
            feature, kind = "duplicate", "unbroken_symmetry"
    order = [FEATURE_NAMES[i] for i in np.argsort(contrib) if contrib[i] < -0.05]
    reasons: list[str] = []
    for f in ([feature] if feature else []) + order:
        if f in facts and facts[f] not in reasons:
            reasons.append(facts[f])
    if kind == "ok":
        reasons = reasons[:2] or [facts.get("signal_lost", f"{n} layers")]
        predicts = (f"likely to train with {name} at this depth ({n} layers): expected {score:.0%} of the "
                    f"best scheme's accuracy above chance")
    else:
        predicts = (f"likely to stall with {name} at this depth ({n} layers): {_WHAT[kind]} "
                    f"(expected {score:.0%} of the best scheme's accuracy above chance)")
    reasons.append(f"optimizer {name}: fitted on a grid of {cal.grid.get('rows', '?')} trained probes; "
                   f"ok when the score >= {fit.threshold:.2f}")
    return Prediction(round(score, 4), kind, predicts, tuple(reasons))


def predict(scheme_probe: Any, *, optimizer: str = "adam", calibration: Calibration | None = None) -> Prediction:
    """The calibrated prediction for one scheme's probe
    (:class:`~initlab.probe.result.SchemeProbe`; its depth is its number of measured
    layers) when trained with *optimizer* (``"adam"`` or ``"sgd"``)."""
    opt = check_optimizer(optimizer)
    return predict_summary(summarize(scheme_probe), optimizer=opt, calibration=calibration)


# -- the grid and the fit ------------------------------------------------------------------

def read_grid(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The grid file ``benchmarks/data/calibration_grid.jsonl``: its header (the first line,
    ``{"header": {...}}``) and its records, one per (model, scheme, optimizer)."""
    p = Path(path)
    if not p.is_file():
        raise InitlabError(f"no calibration grid {p}; run benchmarks/calibrate_probe.py first")
    header: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for i, line in enumerate(p.read_text().splitlines()):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            if i == len(p.read_text().splitlines()) - 1:
                continue  # a line cut by a crash: the run resumes from the last whole line
            raise InitlabError(f"{p} line {i + 1} is not JSON; delete it and rerun the grid") from None
        if "header" in d:
            header = d["header"]
        elif "record" in d:
            rows.append(d["record"])
    return header, rows


def split_of(config: str, heldout_fraction: float = 0.3) -> str:
    """``"train"`` or ``"heldout"`` for a model config label, by a stable hash (so a
    held-out model is unseen by the fit, whatever its schemes)."""
    import hashlib

    h = int(hashlib.sha256(config.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "heldout" if h < heldout_fraction else "train"


def seed_mean_accuracy(row: Mapping[str, Any]) -> float:
    """The mean test accuracy over a grid row's seeds; a seed that diverged (``"nan"``)
    counts as chance, ``1 / classes``."""
    chance = 1.0 / int(row["probe"]["classes"])
    vals = [float(v) if isinstance(v, (int, float)) and math.isfinite(v) else chance for v in row["acc"]]
    return float(np.mean(vals)) if vals else chance


def relative_trainability(rows: Sequence[Mapping[str, Any]]) -> list[float]:
    """``r`` of each row (module docstring): its seed-mean accuracy relative to the best
    seed-mean accuracy on the same model and optimizer, above chance."""
    best: dict[tuple[str, str], float] = {}
    for row in rows:
        key = (row["config"], row["optimizer"])
        best[key] = max(best.get(key, -1.0), seed_mean_accuracy(row))
    out = []
    for row in rows:
        chance = 1.0 / int(row["probe"]["classes"])
        acc = seed_mean_accuracy(row)
        top = best[(row["config"], row["optimizer"])]
        out.append(float(np.clip((acc - chance) / (top - chance), 0.0, 1.0)) if top > chance else 0.0)
    return out


def _fit_logistic(x: np.ndarray, r: np.ndarray, l2: float) -> tuple[float, np.ndarray]:
    """Fractional logistic regression: minimize the mean binary cross-entropy of
    ``sigmoid(b + x w)`` against targets ``r`` in [0, 1] plus ``l2 |w|^2``, with ``w <= 0``
    (L-BFGS-B, scipy.optimize)."""
    from scipy.optimize import minimize
    from scipy.special import expit

    n, k = x.shape

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] + x @ theta[1:]
        p = np.clip(expit(z), 1e-12, 1 - 1e-12)
        ll = -np.mean(r * np.log(p) + (1 - r) * np.log(1 - p)) + l2 * float(theta[1:] @ theta[1:])
        g = p - r
        grad = np.concatenate([[g.mean()], x.T @ g / n + 2 * l2 * theta[1:]])
        return float(ll), grad

    bounds = [(None, None)] + [(None, 0.0)] * k
    res = minimize(loss, np.zeros(k + 1), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 5000, "gtol": 1e-10, "ftol": 1e-14})
    return float(res.x[0]), res.x[1:]


def _balanced_threshold(score: np.ndarray, ok: np.ndarray) -> float:
    """The score threshold that maximizes the balanced accuracy of ``score >= t`` for *ok*
    (midpoint between neighbouring scores; ties go to the smaller t)."""
    cand = np.unique(score)
    if len(cand) < 2 or ok.all() or (~ok).all():
        return 0.5
    mids = (cand[:-1] + cand[1:]) / 2
    best_t, best = 0.5, -1.0
    for t in mids:
        pred = score >= t
        tpr = (pred & ok).sum() / ok.sum()
        tnr = (~pred & ~ok).sum() / (~ok).sum()
        b = (tpr + tnr) / 2
        if b > best + 1e-12:
            best, best_t = b, float(t)
    return best_t


def fit(rows: Sequence[Mapping[str, Any]], *, l2: float = 1e-3, ok_fraction: float = OK_FRACTION,
        heldout_fraction: float = 0.3, grid_info: Mapping[str, Any] | None = None) -> Calibration:
    """Fit a :class:`Calibration` on the training split of the grid *rows* (records of
    :func:`read_grid`), one score model per optimizer, and evaluate it on the held-out split
    (:func:`evaluate`). Deterministic: the split is a hash of the model config, the fit a
    convex problem solved from zero."""
    r_all = relative_trainability(rows)
    fits: dict[str, OptimizerFit] = {}
    for opt in OPTIMIZERS:
        idx = [i for i, row in enumerate(rows) if row["optimizer"] == opt
               and split_of(row["config"], heldout_fraction) == "train" and not overflowed(row["probe"])]
        if not idx:
            raise InitlabError(f"the grid has no {opt} rows in the training split; run the grid with {opt}")
        x = np.stack([features(rows[i]["probe"]) for i in idx])
        r = np.array([r_all[i] for i in idx])
        b, w = _fit_logistic(x, r, l2)
        from scipy.special import expit

        score = expit(b + x @ w)
        t = _balanced_threshold(np.round(score, 6), r >= ok_fraction)
        fits[opt] = OptimizerFit(round(b, 6), tuple(round(float(v), 6) for v in w), round(t, 6))
    cal = Calibration(fits=fits, ok_fraction=ok_fraction,
                      grid={**(grid_info or {}), "rows": len(rows), "l2": l2, "heldout_fraction": heldout_fraction})
    return Calibration(fits=cal.fits, ok_fraction=ok_fraction, grid=cal.grid,
                       heldout=evaluate(cal, rows, split="heldout", heldout_fraction=heldout_fraction),
                       points=tuple(heldout_points(cal, rows, split="all", heldout_fraction=heldout_fraction)))


def evaluate(calibration: Calibration, rows: Sequence[Mapping[str, Any]], *, split: str = "heldout",
             heldout_fraction: float | None = None) -> dict[str, Any]:
    """Held-out metrics of *calibration* on the rows of *split* (``"heldout"``, ``"train"``
    or ``"all"``):

    * ``verdicts``: per predicted verdict (``ok`` and each failure kind), ``n`` rows
      predicted so, ``precision`` (``ok``: the fraction that trained, ``r >= ok_fraction``;
      a failure kind: the fraction that did not) and ``recall`` (``ok``: the fraction of the
      rows that trained predicted ok; a failure kind: the fraction of the rows that did not
      train predicted as this kind, so the kinds' recalls add up to the failure recall);
    ``heldout_fraction``: that of the split (default: the one the calibration was fitted with).

    * ``spearman``: per optimizer and family, scipy.stats.spearmanr between the score and
      the seed-mean trained accuracy (``rho``, ``p``, ``n``), pooled over the split's
      models, and ``within_model``: the mean over models of the same correlation among one
      model's schemes (the ranking a recommendation uses).
    """
    from scipy.stats import spearmanr

    if heldout_fraction is None:
        heldout_fraction = float(calibration.grid.get("heldout_fraction", 0.3))
    r_all = relative_trainability(rows)
    picked = [i for i, row in enumerate(rows)
              if split == "all" or split_of(row["config"], heldout_fraction) == split]
    preds = [predict_summary(rows[i]["probe"], optimizer=rows[i]["optimizer"], calibration=calibration)
             for i in picked]
    trained = np.array([r_all[i] >= calibration.ok_fraction for i in picked], dtype=bool)
    verdict = np.array([p.verdict for p in preds])
    out: dict[str, Any] = {"split": split, "rows": len(picked),
                           "configs": len({rows[i]["config"] for i in picked}), "verdicts": {}}

    def pr(mask_pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
        n = int(mask_pred.sum())
        tp = int((mask_pred & truth).sum())
        return {"n": n, "precision": round(tp / n, 4) if n else None,
                "recall": round(tp / int(truth.sum()), 4) if truth.sum() else None}

    for opt in ("all", *OPTIMIZERS):
        sel = np.array([opt == "all" or rows[i]["optimizer"] == opt for i in picked], dtype=bool)
        block = {"ok": pr((verdict == "ok") & sel, trained & sel)}
        for kind in KINDS:
            block[kind] = pr((verdict == kind) & sel, ~trained & sel)
        block["failure"] = pr((verdict != "ok") & sel, ~trained & sel)
        block["rows"] = int(sel.sum())
        block["trained"] = int((trained & sel).sum())
        out["verdicts"][opt] = block

    score = np.array([p.score for p in preds])
    acc = np.array([seed_mean_accuracy(rows[i]) for i in picked])
    sp: dict[str, Any] = {}
    for opt in OPTIMIZERS:
        for fam in sorted({rows[i]["family"] for i in picked}) + ["all"]:
            sel = np.array([rows[i]["optimizer"] == opt and (fam == "all" or rows[i]["family"] == fam)
                            for i in picked], dtype=bool)
            entry: dict[str, Any] = {"n": int(sel.sum())}
            if sel.sum() >= 3 and np.ptp(score[sel]) > 0 and np.ptp(acc[sel]) > 0:
                res = spearmanr(score[sel], acc[sel])
                entry.update(rho=round(float(res.statistic), 4), p=float(f"{float(res.pvalue):.3g}"))
            within = []
            for cfg in sorted({rows[i]["config"] for k, i in enumerate(picked) if sel[k]}):
                m = np.array([sel[k] and rows[i]["config"] == cfg for k, i in enumerate(picked)], dtype=bool)
                if m.sum() >= 3 and np.ptp(score[m]) > 0 and np.ptp(acc[m]) > 0:
                    within.append(float(spearmanr(score[m], acc[m]).statistic))
            entry["within_model"] = round(float(np.mean(within)), 4) if within else None
            entry["models"] = len(within)
            sp[f"{opt}/{fam}"] = entry
    out["spearman"] = sp
    return out


def heldout_points(calibration: Calibration, rows: Sequence[Mapping[str, Any]], *, split: str = "heldout",
                   heldout_fraction: float | None = None) -> list[dict[str, Any]]:
    """One point per row of *split* for :func:`initlab.probe.figures.calibration_figure`:
    ``score``, ``verdict`` (calibrated), ``accuracy`` (seed mean), ``optimizer``, ``family``,
    ``config``, ``scheme``, ``split``."""
    if heldout_fraction is None:
        heldout_fraction = float(calibration.grid.get("heldout_fraction", 0.3))
    out = []
    for row in rows:
        if split != "all" and split_of(row["config"], heldout_fraction) != split:
            continue
        p = predict_summary(row["probe"], optimizer=row["optimizer"], calibration=calibration)
        acc = seed_mean_accuracy(row)
        out.append({"score": p.score, "verdict": p.verdict, "accuracy": round(acc, 5), "optimizer": row["optimizer"],
                    "family": row["family"], "config": row["config"], "scheme": row["scheme"],
                    "split": split_of(row["config"], heldout_fraction)})
    return out


def calibration_points(optimizer: str | None = None, *, split: str | None = None,
                       calibration: Calibration | None = None) -> list[dict[str, Any]]:
    """The grid's points as shipped with the calibration (no grid file needed): one dict per
    (model config, scheme, optimizer) with ``score``, ``verdict`` (calibrated), ``accuracy``
    (seed-mean test accuracy after the calibration budget), ``optimizer``, ``family``,
    ``config``, ``scheme`` and ``split`` (``"train"`` or ``"heldout"``); only *optimizer*'s
    and *split*'s when given."""
    cal = calibration or load_calibration()
    opt = check_optimizer(optimizer) if optimizer is not None else None
    if split is not None and split not in ("train", "heldout"):
        raise InitlabError(f"split must be 'train' or 'heldout', got {split!r}")
    return [dict(p) for p in cal.points
            if (opt is None or p["optimizer"] == opt) and (split is None or p["split"] == split)]
