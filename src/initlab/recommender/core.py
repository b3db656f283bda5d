"""``initlab.recommend``: which initialization for this model, ranked by the calibrated probe.

For a model (an ``nn.Module``, a function returning one, a model spec of any family, or
``"FILE.py:FUNCTION"``), :func:`recommend`

1. lists the applicable schemes (:func:`candidate_schemes`): every registered classic
   scheme (the article's, the fan-based ones, the framework defaults, orthogonal and the
   schemes plugins registered), LSUV, and the structure-aware ones only where the model
   has the structure (:func:`initlab.structure.find_structure`): Fixup, ZerO and SkipInit
   with residual branches, delta-orthogonal with convolutions;
2. probes each at init (:func:`initlab.probe` on 256 standard Gaussian inputs and the
   input-output Jacobian at 4 of them where the probe takes it,
   :data:`initlab.probe.runner.JACOBIAN_MAX_ENTRIES`: the probes the calibration grid was
   fitted on, ``benchmarks/calibrate_probe.py``; a larger model is scored without the
   Jacobian's spread;
   the data, if given, only fixes the input shape and what the model trains on), turns each probe into the calibrated
   :class:`~initlab.probe.calibration.Prediction` for the optimizer
   (:func:`initlab.probe.calibration.predict`) and ranks by its score; equal scores
   (it is rounded to 4 digits and saturates near 1) are ordered by the probe's raw
   verdicts (fewer first), then by :func:`_deviation` (how far the probe is from
   preserving signal and gradients over the depth), then by the candidates' order
   (:func:`initlab.report.recommendation.rank`, which the study report's ranking uses too);
3. with ``confirm_epochs > 0``, trains the ``top`` best-ranked schemes and
   ``torch_default`` (the framework default) in one short study
   (:func:`initlab.recommender.confirm.confirm`) and records each one's final validation
   accuracy over the seeds beside its prediction.

Left out unless named in ``schemes=``: the parametric families whose defaults are arbitrary
(``constant``, ``uniform``, ``normal``, ``trunc_normal``, ``truncated_normal``,
``variance_scaling``, ``keras_variance_scaling``), ``identity`` / ``dirac`` / ``sparse``
(square or convolutional weights only), ``lsuv_fastai`` (LSUV's variant), GradInit and
MetaInit (they optimize for up to a minute each) and muP (a width-transfer rule with a
base width to choose).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from initlab.errors import InitlabError, UnknownNameError, suggest
from initlab.recommender.record import Candidate, Recommendation

__all__ = ["CLASSIC_GROUPS", "EXCLUDED", "OPTIMIZERS", "candidate_schemes", "recommend", "resolve_data"]

#: The optimizers the calibrated score knows.
OPTIMIZERS = ("adam", "sgd")
#: Registry groups probed by default.
CLASSIC_GROUPS = ("article", "fan", "framework", "plugin")
#: Registered schemes not probed by default, with the reason shown.
EXCLUDED: dict[str, str] = {
    "variance_scaling": "parametric: name its parameters in schemes=",
    "keras_variance_scaling": "parametric: name its parameters in schemes=",
    "lsuv_fastai": "a variant of lsuv",
    "gradinit": "optimizes for up to a minute; name it in schemes=",
    "metainit": "optimizes for up to a minute; name it in schemes=",
    "mup": "a width-transfer rule with a base width to choose; name it in schemes=",
}
#: Structure-aware schemes and what they need.
_NEEDS_BRANCHES = ("fixup", "zero_init", "skipinit")
_NEEDS_CONV = ("delta_orthogonal",)
#: The probe's batch: as many inputs as a study's probe.
N_INPUTS = 256
#: The framework default every confirming study trains beside the top-ranked schemes.
FRAMEWORK_DEFAULT = "torch_default"


def _build(model: Any, input_shape: Sequence[int] | None) -> tuple[Any, nn.Module, str, tuple[int, ...] | None]:
    """``(what to probe, a private module, label, input shape or None)`` for any model form."""
    from initlab.engine.custom_model import CustomSpec, parse_target
    from initlab.engine.models import ModelSpec
    from initlab.probe.runner import build_model

    if isinstance(model, (str, os.PathLike)):
        text = os.fspath(model)
        path, func = parse_target(text)
        if path.is_file():  # the study builds it again from another directory
            text = f"{path.resolve()}:{func}"
        if input_shape is None:
            raise InitlabError(f"model {text} needs its input shape: pass input_shape=(C, H, W) "
                               "(CLI: --input-shape 1,28,28)")
        model = CustomSpec(builder=text, input_shape=tuple(input_shape))
    if isinstance(model, ModelSpec):
        if input_shape is not None and math.prod(input_shape) != math.prod(model.input_shape):
            raise InitlabError(f"input_shape {list(input_shape)} does not fit model {model.label}, whose samples "
                               f"are {list(model.input_shape)}; drop input_shape or give a fitting one")
        module, label = build_model(model)
        return model, module, label, tuple(model.input_shape)
    if isinstance(model, nn.Module) or callable(model):
        module, label = build_model(model)
        return (model if isinstance(model, nn.Module) else module), module, label, \
            tuple(input_shape) if input_shape is not None else None
    raise InitlabError(f"recommend needs an nn.Module, a function returning one, a model spec or "
                       f"'FILE.py:FUNCTION', got {type(model).__name__}")


def _layer_types(module: nn.Module) -> tuple[str, ...]:
    """The types of the layers initlab initializes, in first-seen order; one line when
    there are none."""
    from initlab.layers import walk

    slots, unsupported = walk(module)
    if not slots:
        extra = f" (it has {', '.join(sorted({t for _, t, _ in unsupported}))})" if unsupported else ""
        raise InitlabError(f"model {type(module).__name__} has no layer initlab initializes{extra}; give a "
                           "model with Linear, Conv, Embedding or recurrent layers")
    return tuple(dict.fromkeys(type(s.module).__name__ for s in slots))


def candidate_schemes(module: nn.Module) -> tuple[list[str], list[tuple[str, str]], str]:
    """The schemes :func:`recommend` probes on *module* by default, the registered ones it
    leaves out with the reason, and the structure it read."""
    from initlab.layers import CONV
    from initlab.schemes.registry import entry, scheme_names
    from initlab.structure import find_structure

    structure = find_structure(module)
    has_conv = any(isinstance(m, CONV) for m in module.modules())
    chosen, skipped = [], []
    for name in scheme_names():
        group = entry(name).group
        if name in EXCLUDED:
            skipped.append((name, EXCLUDED[name]))
        elif name in _NEEDS_BRANCHES:
            if structure.branches:
                chosen.append(name)
            else:
                skipped.append((name, "needs residual branches; the model has none"))
        elif name in _NEEDS_CONV:
            (chosen.append(name) if has_conv else skipped.append((name, "needs convolutions; the model has none")))
        elif name in ("orthogonal", "lsuv") or group in CLASSIC_GROUPS:
            chosen.append(name)
        else:
            skipped.append((name, "parametric or special-shape: name it in schemes="))
    if structure.branches:
        desc = structure.describe()
    else:
        desc = "no residual branches" + (", convolutions" if has_conv else "")
    return chosen, skipped, desc


def _given_schemes(schemes: Any, module: nn.Module) -> list[str]:
    from initlab.schemes import get_scheme
    from initlab.structure import find_structure

    if isinstance(schemes, str):
        from initlab.study.config import split_scheme_list

        schemes = split_scheme_list(schemes)
    out = list(dict.fromkeys(get_scheme(s).spec for s in schemes))
    if not out:
        raise InitlabError("schemes is empty; give scheme names, or None for every applicable one")
    structure = find_structure(module)
    for s in out:
        name = get_scheme(s).name
        if name in _NEEDS_BRANCHES and not structure.branches:
            raise InitlabError(f"{name} needs residual branches; model {type(module).__name__} has none: "
                               "drop it from schemes or use a residual model")
    return out


def resolve_data(data: Any, data_dir: str | os.PathLike[str] | None = None) -> tuple[str, str | None] | None:
    """``(dataset name, data root)`` for *data*: a dataset name (``"fashion-mnist"``,
    ``"mnist"``), a dataset folder holding its four IDX files (``.../fashion-mnist``), or a
    data root holding dataset folders (then Fashion-MNIST); ``None`` for ``None``."""
    from initlab.data import get_source

    if data is None:
        return None
    if not isinstance(data, (str, os.PathLike)):
        raise InitlabError(f"data must be a dataset name (fashion-mnist, mnist) or a data directory, got "
                           f"{type(data).__name__}")
    text = os.fspath(data)
    path = Path(text).expanduser()
    if path.is_dir():
        if data_dir is not None:
            raise InitlabError("give the data directory once: as data or as data_dir, not both")
        if any(path.glob("train-images-idx3-ubyte*")):
            return str(get_source(path.name).name), str(path.parent)
        return "fashion-mnist", str(path)
    if os.sep in text or text.startswith("."):
        raise InitlabError(f"data directory {text!r} does not exist; give a dataset name (fashion-mnist, mnist) "
                           "or an existing directory")
    return str(get_source(text).name), (os.fspath(data_dir) if data_dir is not None else None)


def _input_shape(module: nn.Module, where: tuple[str, str | None] | None,
                 input_shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
    """The model's per-sample input shape: *input_shape* if given (checked against the
    data's images), else guessed from the data's images and the first layer (a Linear
    takes them flattened, a Conv2d as ``(C, H, W)``); ``None`` without data (the probe
    guesses from a first Linear layer)."""
    if where is None:
        return input_shape
    from initlab.data import load_dataset
    from initlab.probe.capture import probe_layers

    ds = load_dataset(where[0], data_dir=where[1], limit_train=1, limit_val=1)
    sample = tuple(ds.train.x.shape[1:])
    if input_shape is None:
        first = probe_layers(module)[0][1]
        if isinstance(first, nn.Linear):
            input_shape = (first.in_features,)
        elif isinstance(first, nn.Conv2d):
            input_shape = (first.in_channels, *sample)
        else:
            raise InitlabError(f"cannot guess the input shape of a model whose first layer is "
                               f"{type(first).__name__}; pass input_shape=(C, H, W)")
    if math.prod(input_shape) != math.prod(sample):
        raise InitlabError(f"input shape {list(input_shape)} does not fit the {where[0]} images "
                           f"({'x'.join(map(str, sample))} = {math.prod(sample)} values); give an input shape "
                           f"of {math.prod(sample)} values, e.g. 1,28,28 or 784")
    return tuple(input_shape)


def _check(name: str, value: Any, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise InitlabError(f"{name} must be an integer >= {lo}, got {value!r}")
    return value


def recommend(model: Any, data: Any = None, *, input_shape: Sequence[int] | None = None, optimizer: str = "adam",
              confirm_epochs: int = 0, schemes: Any = None, seed: int = 0, top: int = 3, seeds: int = 2,
              limit: int | None = 10_000, limit_val: int | None = 2_000,
              data_dir: str | os.PathLike[str] | None = None, out: str | os.PathLike[str] | None = None,
              train: dict[str, Any] | None = None, log: Callable[[str], None] | None = None) -> Recommendation:
    """Rank the initialization schemes for *model* by the calibrated probe (module docstring).

    Args:
        model: an ``nn.Module`` (never modified), a function returning one, a model spec
            (``MLPSpec``, ``CNNSpec``, ...) or ``"FILE.py:FUNCTION"``.
        data: a dataset name (``"fashion-mnist"``, ``"mnist"``) or a data directory: its
            images fix the input shape when it is not given, and ``confirm_epochs`` trains
            on it (``None``: Fashion-MNIST). The probe always runs on Gaussian inputs.
        input_shape: the per-sample shape the model takes (needed for a conv model given
            as a module or file without data; default: a first Linear layer's width).
        optimizer: ``"adam"`` or ``"sgd"`` (with momentum): the calibrated score differs.
        confirm_epochs: train the ``top`` best-ranked schemes and ``torch_default`` for this
            many epochs (0: do not train).
        schemes: the schemes to rank (a list or comma-separated string); default every
            applicable one (:func:`candidate_schemes`).
        seed: the probe's seed, and the first of the training seeds.
        top: how many top-ranked schemes to train.
        seeds: training seeds per scheme (``seed, seed + 1, ...``).
        limit, limit_val: train on the first ``limit`` training images and validate on the
            first ``limit_val`` test images (``None``: all).
        data_dir: the data root for a dataset name.
        out: the confirming study's run directory (kept; default a temporary one).
        train: train settings overriding the defaults (:data:`~initlab.recommender.confirm.TRAIN_DEFAULTS`).
        log: receives the confirming study's one-line messages.

    Raises:
        InitlabError: one line, before anything is written: the model cannot be built or
            has no layer initlab initializes, the input shape does not fit, an unknown
            optimizer or scheme, a bad count.
    """
    from initlab.probe import probe

    if not isinstance(optimizer, str) or optimizer.lower() not in OPTIMIZERS:
        raise UnknownNameError(f"unknown optimizer {optimizer!r}{suggest(str(optimizer), list(OPTIMIZERS))}; "
                               f"choose one of {', '.join(OPTIMIZERS)}")
    optimizer = optimizer.lower()
    _check("confirm_epochs", confirm_epochs, 0)
    _check("seed", seed, 0)
    _check("top", top, 1)
    _check("seeds", seeds, 1)
    for name, v in (("limit", limit), ("limit_val", limit_val)):
        if v is not None:
            _check(name, v, 1)
    if input_shape is not None:
        if isinstance(input_shape, (str, bytes)) or not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in input_shape) or not input_shape:
            raise InitlabError(f"input_shape must be positive integers, e.g. (1, 28, 28), got {input_shape!r}")
        input_shape = tuple(input_shape)
    where = resolve_data(data, data_dir)
    target, module, label, shape = _build(model, input_shape)
    layer_types = _layer_types(module)
    chosen, skipped, structure = candidate_schemes(module)
    if schemes is not None:
        chosen, skipped = _given_schemes(schemes, module), []
    if confirm_epochs > 0 and FRAMEWORK_DEFAULT not in chosen:  # trained beside the top-ranked ones
        chosen.append(FRAMEWORK_DEFAULT)
    shape = _input_shape(module, where, shape)
    result = probe(target, None, chosen, input_shape=shape, n_inputs=N_INPUTS, seed=seed, jacobian=None)
    from initlab.report.recommendation import rank

    candidates = [Candidate(sp.scheme, p, tuple(v.kind for v in sp.verdicts)) for sp, p in rank(result, optimizer)]
    confirmation = None
    if confirm_epochs > 0:
        from initlab.recommender.confirm import confirm

        train_schemes = [c.scheme for c in candidates[:top]]
        if FRAMEWORK_DEFAULT not in train_schemes:
            train_schemes.append(FRAMEWORK_DEFAULT)
        trained, confirmation = confirm(
            target, train_schemes, dataset=where[0] if where else "fashion-mnist",
            data_dir=where[1] if where else data_dir, epochs=confirm_epochs,
            seeds=[seed + k for k in range(seeds)], optimizer=optimizer, limit_train=limit, limit_val=limit_val,
            out=out, input_shape=result.input_shape, label=label, train=train, log=log)
        candidates = [Candidate(c.scheme, c.prediction, c.probe_verdicts, trained.get(c.scheme))
                      if c.scheme in trained else c for c in candidates]
    return Recommendation(model=label, optimizer=optimizer, inputs=result.inputs,
                          input_shape=tuple(result.input_shape), seed=seed, candidates=tuple(candidates),
                          skipped=tuple(skipped), structure=structure, layer_types=layer_types,
                          confirmation=confirmation)
