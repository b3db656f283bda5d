"""Training engine: model families, the hand-tuned batched trainer of the article's MLP,
the generic batched trainer for any model, and the plain one-model reference loop.

Typical use (the study layer does this per batch of cells)::

    from initlab.engine import MLPSpec, build_mlp, TrainConfig, TrainData, train

    spec = MLPSpec()                       # 784-256-128-10, ReLU, dropout 0.2
    models = [build_mlp(spec) for _ in schemes]
    for m, s, seed in zip(models, schemes, seeds):
        initlab.apply(m, s, seed=seed)     # the caller initializes
    results = train(models, seeds, TrainData(x, y, xv, yv), TrainConfig(), sink=store)
    results[0].history()["val_accuracy"]

    spec = spec_from_dict({"kind": "cnn", "depth": 8, "channels": 32})   # any family
    models = [spec.build(seed) for seed in seeds]                        # then initialize
    results = train_generic(models, seeds, data, config, input_shape=spec.input_shape)

Modules: :mod:`~initlab.engine.families` (model families by kind: :mod:`~initlab.engine.models`,
:mod:`~initlab.engine.convnets`, :mod:`~initlab.engine.custom_model`),
:mod:`~initlab.engine.generic` (:func:`train_generic`), :mod:`~initlab.engine.config`
(:class:`TrainConfig`), :mod:`~initlab.engine.inputs` (:class:`TrainData`),
:mod:`~initlab.engine.results` (:class:`TrainResult`, :class:`Sink`; the records themselves are :mod:`initlab.records`), :mod:`~initlab.engine.batched`
(:func:`train`) with its per-step hot path :mod:`~initlab.engine.step`,
:mod:`~initlab.engine.reference` (:func:`train_one`), and the pieces they share:
:mod:`~initlab.engine.stack`, :mod:`~initlab.engine.functional`,
:mod:`~initlab.engine.dropout`, :mod:`~initlab.engine.adam`,
:mod:`~initlab.engine.recorders`; per-parameter learning rates (muP):
:mod:`~initlab.engine.multipliers`.
"""

from initlab.engine.batched import train
from initlab.engine.families import ModelSpec, family_kinds, spec_from_dict
from initlab.engine.generic import train_generic
from initlab.engine.config import TrainConfig
from initlab.engine.inputs import TrainData
from initlab.engine.models import ACTIVATIONS, MLPSpec, activation_module, build_mlp
from initlab.engine.multipliers import lr_multipliers, param_groups
from initlab.engine.results import NullSink, Sink, TrainResult
from initlab.engine.reference import train_one
from initlab.engine.stack import infer_spec

__all__ = [
    "ACTIVATIONS",
    "MLPSpec",
    "activation_module",
    "build_mlp",
    "ModelSpec",
    "family_kinds",
    "spec_from_dict",
    "train_generic",
    "lr_multipliers",
    "param_groups",
    "infer_spec",
    "TrainConfig",
    "TrainData",
    "train",
    "train_one",
    "TrainResult",
    "Sink",
    "NullSink",
]
