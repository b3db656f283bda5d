"""``initlab.probe``: measure signal propagation at initialization under several schemes.

For each scheme the probe initializes a private copy of the model with
:func:`initlab.apply` (the model you pass is never modified), runs one batch forward and
backward with a mean cross-entropy loss, and records per layer (forward order):

* forward: mean and std of the pre-activation ``z`` and of the post-activation output,
  the fraction of outputs exactly 0 and of *dead units* (0 for every input), the
  saturated fraction of bounded activations, and the variance ratio
  ``Var(z_l) / Var(z_{l-1})`` of consecutive pre-activations (``Var(z_1) / Var(x)``);
* backward: ``||dL/dz_l||`` and ``||dL/dW_l||``;
* weights: duplicate units (identical rows), the effective rank, the realized
  ``sigma_w^2 = fan_in E[W^2]`` and ``sigma_b^2 = E[b^2]``;
* for plain fully connected chains, the mean-field prediction of ``Var(z_l)``
  (:func:`~initlab.probe.meanfield.predict_depth_profile`) and the mean-field summary at
  the hidden layers' median ``(sigma_w^2, sigma_b^2)``;
* where ``in * out <= jacobian_max_entries`` (:data:`JACOBIAN_MAX_ENTRIES`), the singular
  values of the input-output Jacobian at the first ``jacobian_inputs`` inputs, in eval
  mode (the calibrated score reads their spread);

then turns them into verdicts (:mod:`~initlab.probe.verdicts`). The measurement pass runs in
training mode (batch statistics for normalization layers) with dropout switched off, so
the numbers describe the deterministic network. Inputs are the given batch (at most
``n_inputs`` rows) or standard Gaussian noise; noise and random labels come from
generators seeded from ``seed`` independently of the weights, so reruns give the same
numbers. While probing, subnormal floats are flushed to zero (:func:`flush_denormals`).
"""

from __future__ import annotations

import contextlib
import copy
import math
import statistics
import time
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from initlab.apply import apply as apply_scheme
from initlab.engine.models import MLPSpec, ModelSpec, build_mlp
from initlab.errors import InitlabError
from initlab.probe import activations as act
from initlab.probe.capture import LAYER_TYPES, Capture, Measured, is_sequential_chain, probe_layers
from initlab.probe.measures import jacobian_singular_values, log_rate, weight_matrix, weight_summaries
from initlab.probe.meanfield import MeanField, mean_field, predict_depth_profile
from initlab.probe.result import LayerProbe, ProbeResult, SchemeProbe
from initlab.probe.verdicts import Thresholds, diagnose
from initlab.schemes import Scheme, get_scheme

#: The largest ``in * out`` whose input-output Jacobian the probe takes by default: it costs
#: ``out`` backward passes at ``jacobian_inputs`` inputs, so a 3x224x224 image classifier
#: with 10 classes is in, one with 1000 classes out.
JACOBIAN_MAX_ENTRIES = 2_000_000

#: Schemes probed when none are given.
DEFAULT_SCHEMES = ("he_normal", "glorot_normal", "torch_default")

#: What :func:`probe` accepts as the model.
ModelLike = nn.Module | Callable[[], nn.Module] | ModelSpec


def _derived_seed(seed: int, stream: int) -> int:
    """A seed for an independent stream (inputs: 1, labels: 2) derived from *seed*."""
    return (seed * 0x9E3779B97F4A7C15 + stream * 0xBF58476D1CE4E5B9) % (2**63 - 1)


def build_model(model_or_factory: ModelLike) -> tuple[nn.Module, str]:
    """A private model to probe and its label, from a module (deep-copied), a
    model spec of any family (:mod:`initlab.engine.families`), or a function returning a module. Construction
    does not touch torch's global RNG."""
    with torch.random.fork_rng(devices=[]):
        if isinstance(model_or_factory, MLPSpec):
            return build_mlp(model_or_factory), model_or_factory.label
        if isinstance(model_or_factory, ModelSpec):  # any model family
            return model_or_factory.build(), model_or_factory.label
        if isinstance(model_or_factory, nn.Module):
            return copy.deepcopy(model_or_factory), type(model_or_factory).__name__
        if callable(model_or_factory):
            name = getattr(model_or_factory, "__name__", type(model_or_factory).__name__)
            model = model_or_factory()
            if not isinstance(model, nn.Module):
                raise InitlabError(f"{name}() returned {type(model).__name__}, not a torch nn.Module; "
                                   "return the model, e.g. nn.Sequential(...)")
            return model, f"{name}()"
    raise InitlabError(f"probe needs an nn.Module, an MLPSpec or a function returning an nn.Module, "
                       f"got {type(model_or_factory).__name__}")


def _check_int(name: str, v: Any, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise InitlabError(f"{name} must be an integer >= {lo}, got {v!r}")
    return v


def _inputs(model: nn.Module, data: Any, input_shape: Sequence[int] | None, n: int, seed: int,
            device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None, str]:
    if data is None:
        if input_shape is None:
            first = probe_layers(model)[0][1]
            if not isinstance(first, nn.Linear):
                raise InitlabError(f"cannot guess the input shape of a model whose first layer is "
                                   f"{type(first).__name__}; pass input_shape=(C, H, W) "
                                   "(CLI: --input-shape 3,32,32) or data")
            input_shape = (first.in_features,)
        shape = tuple(input_shape)
        if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
            raise InitlabError(f"input_shape must be positive integers, e.g. (3, 32, 32), got {input_shape!r}")
        gen = torch.Generator().manual_seed(_derived_seed(seed, 1))
        return torch.randn((n, *shape), generator=gen).to(device), None, "gaussian"
    y = None
    if isinstance(data, (tuple, list)) and len(data) == 2:
        data, y = data
    if not isinstance(data, torch.Tensor) or data.ndim < 2 or not data.is_floating_point():
        raise InitlabError("data must be a float tensor [N, ...] of inputs (or an (x, y) pair) with N >= 2; "
                           f"got {type(data).__name__}{tuple(data.shape) if isinstance(data, torch.Tensor) else ''}")
    if data.shape[0] < 2:
        raise InitlabError(f"data needs at least 2 examples to measure variances, got {data.shape[0]}")
    x = data[:n].to(device)
    if y is not None:
        if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.shape[0] < x.shape[0] or y.is_floating_point():
            raise InitlabError("labels must be an integer tensor [N] with one class index per input")
        y = y[: x.shape[0]].to(device)
    return x, y, "data"


def _dry_run(model: nn.Module, x: torch.Tensor, label: str) -> int:
    """Run two inputs through the model (eval mode, no grad) to check that it accepts them;
    returns the number of outputs per input."""
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            out = model(x[:2])
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        msg = " ".join(str(exc).split())[:200]
        raise InitlabError(f"{label} failed on inputs of shape {list(x.shape[1:])} ({type(exc).__name__}: "
                           f"{msg}); give data or an input_shape the model accepts") from None
    if not isinstance(out, torch.Tensor) or out.ndim < 1 or out.shape[0] != 2 or not out.is_floating_point():
        raise InitlabError(f"{label} must return a float tensor of logits [batch, classes], got "
                           f"{type(out).__name__}{list(out.shape) if isinstance(out, torch.Tensor) else ''}")
    return out[0].numel()


@contextlib.contextmanager
def flush_denormals():
    """Flush subnormal floats (below ~1.2e-38 in float32) to zero while probing.

    A vanishing signal or gradient sinks into the subnormal range after enough layers, and
    x86 CPUs compute on subnormals up to 100x slower; such values have vanished anyway. The
    previous mode is detected (torch has no getter) and restored.
    """
    was_on = float(torch.tensor([1e-39], dtype=torch.float32).mul(1.0)[0]) == 0.0
    supported = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if supported and not was_on:
            torch.set_flush_denormal(False)


def _measure_mode(model: nn.Module) -> None:
    """Training mode (batch statistics) with every dropout module off."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.eval()


def _ratio(a: float, b: float) -> float:
    if b == 0.0 or not math.isfinite(b):
        return math.nan if a == 0.0 or math.isnan(a) else (math.inf if b == 0.0 else math.nan)
    return a / b


def _mean_square(t: torch.Tensor) -> float:
    f = t.detach().reshape(-1).float()
    return float(torch.dot(f, f)) / max(f.numel(), 1)


def _is_chain(measured: Sequence[Measured]) -> bool:
    """A plain fully connected chain: Linear layers with matching widths and an
    elementwise activation module after every layer but the last."""
    if not all(type(m.module) is nn.Linear for m in measured):
        return False
    for prev, cur in zip(measured, measured[1:]):
        if prev.activation is None or prev.module.out_features != cur.module.in_features:
            return False
    return True


_MF_CACHE: dict[tuple[Any, ...], MeanField] = {}


def _mean_field_summary(measured: Sequence[Measured], sw2: Sequence[float], sb2: Sequence[float]) -> MeanField | None:
    hidden = list(range(len(measured) - 1)) or [0]
    acts = [measured[i].activation for i in hidden]
    if any(a is None for a in acts) or len({act.label(a) for a in acts}) != 1:
        return None
    w = statistics.median(sw2[i] for i in hidden)
    b = statistics.median(sb2[i] for i in hidden)
    if not (math.isfinite(w) and math.isfinite(b)):
        return None
    key = (act.label(acts[0]), round(w, 9), round(b, 12))
    if key not in _MF_CACHE:
        if len(_MF_CACHE) > 256:
            _MF_CACHE.clear()
        _MF_CACHE[key] = mean_field(acts[0], w, b)
    return _MF_CACHE[key]


def _probe_scheme(model: nn.Module, pristine: dict[str, torch.Tensor], scheme: Scheme, x: torch.Tensor,
                  y: torch.Tensor | None, *, seed: int, thresholds: Thresholds, jacobian: bool,
                  jacobian_inputs: int) -> tuple[SchemeProbe, torch.Tensor]:
    t0 = time.perf_counter()
    model.load_state_dict(pristine)
    batch = (x, y) if getattr(scheme, "uses_labels", False) and y is not None else x  # gradinit, metainit
    apply_scheme(model, scheme, seed=seed, data=batch if scheme.requires_data else None)
    n = x.shape[0]

    jsv = None
    if jacobian:
        model.eval()
        jsv = jacobian_singular_values(model, x[: min(jacobian_inputs, n)]).tolist()

    _measure_mode(model)
    for p in model.parameters():
        p.grad = None
    capture = Capture(model, saturation_margin=thresholds.saturation_margin,
                      rescale_gradients=is_sequential_chain(model))
    with torch.enable_grad(), capture as cap:
        logits = model(x).reshape(n, -1).float()
        if y is None:
            gen = torch.Generator().manual_seed(_derived_seed(seed, 2))
            y = torch.randint(logits.shape[1], (n,), generator=gen).to(x.device)
        elif int(y.max()) >= logits.shape[1] or int(y.min()) < 0:
            raise InitlabError(f"labels go up to {int(y.max())} but the model has {logits.shape[1]} outputs; "
                               "the model must output one logit per class")
        loss = F.cross_entropy(logits, y)
        if loss.requires_grad:
            loss.backward()
    measured = cap.layers
    if not measured:
        raise InitlabError("none of the model's Linear/Conv layers ran in forward; the probe measures those")

    with torch.no_grad():
        input_var = float(x.double().var(correction=0))
        input_m2 = float(x.double().square().mean())
        mats = [weight_matrix(m.module) for m in measured]
        ranks, dups = weight_summaries([m.module for m in measured], seed=seed)
        sw2, sb2, wgrad = [], [], []
        for m, w in zip(measured, mats):
            sw2.append(w.shape[1] * _mean_square(w))
            b = getattr(m.module, "bias", None)
            sb2.append(_mean_square(b) if isinstance(b, torch.Tensor) else 0.0)
            g = m.module.weight.grad
            wgrad.append(math.ldexp(math.sqrt(_mean_square(g) * g.numel()), -m.grad_exponent)
                         if g is not None else math.nan)
    chain = _is_chain(measured)
    predicted = (predict_depth_profile(sw2, sb2, [m.activation for m in measured[:-1]], input_m2)
                 if chain else [math.nan] * len(measured))
    mf = _mean_field_summary(measured, sw2, sb2) if chain else None

    layers: list[LayerProbe] = []
    prev_var = input_var
    for i, m in enumerate(measured):
        has_post = m.activation is not None
        layers.append(LayerProbe(
            index=i + 1, name=m.name, kind=type(m.module).__name__,
            shape=tuple(m.module.weight.shape), activation=act.label(m.activation), units=m.units,
            pre_mean=m.pre_mean, pre_std=math.sqrt(m.pre_var) if m.pre_var >= 0 else math.nan,
            post_mean=m.post_mean if has_post else m.pre_mean,
            post_std=math.sqrt(m.post_var) if has_post and m.post_var >= 0 else
            (math.sqrt(m.pre_var) if m.pre_var >= 0 else math.nan),
            zero_fraction=m.zero_fraction, dead_fraction=m.dead_fraction,
            saturated_fraction=m.saturated_fraction, var_ratio=_ratio(m.pre_var, prev_var),
            grad_norm=m.grad_norm, weight_grad_norm=wgrad[i], duplicate_units=dups[i],
            effective_rank=ranks[i], sigma_w2=sw2[i], sigma_b2=sb2[i], predicted_var=predicted[i],
        ))
        prev_var = m.pre_var
    signal_rate = log_rate([layer.pre_var for layer in layers])
    gradient_rate = log_rate([layer.grad_norm**2 for layer in reversed(layers)])
    verdicts = diagnose(layers, input_var=input_var if input_var > 0 else input_m2,
                        loss=float(loss.detach()), thresholds=thresholds)
    result = SchemeProbe(
        scheme=scheme.spec, layers=layers, verdicts=verdicts, input_var=input_var,
        input_second_moment=input_m2, loss=float(loss.detach()), signal_rate=signal_rate,
        gradient_rate=gradient_rate, jacobian_singular_values=jsv, mean_field=mf,
        seconds=time.perf_counter() - t0,
    )
    return result, y


def probe(
    model_or_factory: ModelLike,
    data: Any = None,
    schemes: Sequence[str | Scheme] | str | Scheme = DEFAULT_SCHEMES,
    *,
    input_shape: Sequence[int] | None = None,
    n_inputs: int = 512,
    seed: int = 0,
    thresholds: Thresholds | None = None,
    jacobian: bool | None = None,
    jacobian_inputs: int = 4,
    jacobian_max_entries: int = JACOBIAN_MAX_ENTRIES,
) -> ProbeResult:
    """Probe signal propagation at initialization of a model under each of *schemes*.

    Args:
        model_or_factory: an ``nn.Module`` (deep-copied, never modified), an
            :class:`~initlab.engine.models.MLPSpec`, or a function returning an ``nn.Module``
            (called once).
        data: ``None`` for standard Gaussian noise of ``input_shape`` (default: the first
            Linear layer's ``in_features``), a float tensor ``[N, ...]`` of real inputs, or
            an ``(x, y)`` pair with integer labels (random labels otherwise). At most
            ``n_inputs`` rows are used.
        schemes: scheme names, spec strings or :class:`~initlab.schemes.Scheme` objects.
        n_inputs: batch size (noise) or the cap on the rows of *data*.
        seed: seeds the initialization (the same for every scheme), the noise and the labels.
        thresholds: where verdicts trigger (:class:`~initlab.probe.verdicts.Thresholds`).
        jacobian: ``None`` computes the input-output Jacobian spectrum where
            ``in * out <= jacobian_max_entries``, ``True`` always, ``False`` never.
        jacobian_inputs: at how many inputs (the first rows) the Jacobian is taken.

    Returns:
        :class:`~initlab.probe.result.ProbeResult`, one
        :class:`~initlab.probe.result.SchemeProbe` per scheme, in the given order.

    Raises:
        InitlabError: no Linear/Conv layer, a bad scheme name, unusable data or shape.
    """
    _check_int("n_inputs", n_inputs, 2)
    _check_int("seed", seed, 0)
    _check_int("jacobian_inputs", jacobian_inputs, 1)
    _check_int("jacobian_max_entries", jacobian_max_entries, 1)
    thresholds = thresholds or Thresholds()
    if isinstance(schemes, (str, Scheme)):
        schemes = [schemes]
    resolved = [get_scheme(s) for s in schemes]
    if not resolved:
        raise InitlabError("no schemes to probe; give at least one, e.g. schemes=['he_normal']")
    model, label = build_model(model_or_factory)
    if not probe_layers(model):
        raise InitlabError(f"{label} has no layer the probe measures ({', '.join(t.__name__ for t in LAYER_TYPES)}); "
                           "probe a model built from those")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x, y, kind = _inputs(model, data, input_shape, n_inputs, seed, device)
    out_numel = _dry_run(model, x, label)
    if jacobian is None:
        jacobian = x[0].numel() * out_numel <= jacobian_max_entries
    pristine = {k: v.detach().clone() for k, v in model.state_dict().items()}

    result = ProbeResult(model=label, inputs=kind, n_inputs=int(x.shape[0]),
                         input_shape=tuple(x.shape[1:]), seed=seed)
    for s in resolved:
        with flush_denormals():
            sp, y = _probe_scheme(model, pristine, s, x, y, seed=seed, thresholds=thresholds,
                                  jacobian=bool(jacobian), jacobian_inputs=jacobian_inputs)
        result.schemes.append(sp)
    return result
