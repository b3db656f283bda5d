"""Model families, registered by kind: each a spec class with a builder and an input shape.

>>> from initlab.engine.families import spec_from_dict
>>> spec = spec_from_dict({"kind": "cnn", "depth": 8, "channels": 32})
>>> spec.label, spec.input_shape, spec.out_features
('cnn-8x32-relu', (1, 28, 28), 10)
>>> spec_from_dict({"hidden": [64]}).label          # no "kind": the article's MLP family
'mlp-64-relu-d0.2'

Built-in kinds (the TOML table ``[model]`` takes ``kind = "..."`` plus that kind's keys,
:func:`family_keys`):

=========  ===========================================  ==========================
kind       spec                                         module
=========  ===========================================  ==========================
``mlp``    :class:`~initlab.engine.models.MLPSpec`      Flatten, Linear/act/Dropout
``linear`` :class:`~initlab.engine.models.LinearSpec`   deep linear (Saxe et al. 2014)
``cnn``    :class:`~initlab.engine.convnets.CNNSpec`    plain conv stack, GAP, head
``resnet`` :class:`~initlab.engine.convnets.ResNetSpec` basic blocks (He et al. 2016)
``custom`` :class:`~initlab.engine.custom_model.CustomSpec`  ``FILE.py:FUNCTION``
=========  ===========================================  ==========================

The protocol (:class:`ModelSpec`, the base class of every spec; specs are frozen, hashable
dataclasses)::

    spec.kind              # ClassVar[str]
    spec.label             # short table label, unique per distinct spec; `name` overrides it
    spec.input_shape       # per-sample shape the module's forward takes
    spec.out_features      # number of outputs (classes)
    spec.build(seed=0)     # a fresh nn.Module, torch's default init from a private seeded RNG
    spec.to_dict()         # plain JSON; "kind" for every kind but mlp
    type(spec).from_dict(d), type(spec).keys()
    spec.check_fits(sample_shape, n_classes)   # InitlabError (one line) if a dataset cannot feed it
    spec.fast_path         # True only for an MLPSpec the hand-tuned MLP engine trains

Images: the trainer reshapes a batch ``[N, *sample_shape]`` (``[N, 28, 28]`` for the IDX
datasets) to ``[N, *input_shape]``; a dataset fits when its samples hold as many values as
``input_shape``, so 28x28 images fit ``(784,)`` (MLPs, linear nets) and ``(1, 28, 28)``
(conv families). The conv modules and the MLPs reshape / flatten such batches themselves.

A new family: a frozen dataclass deriving from :class:`ModelSpec` with ``kind``, ``label``,
``input_shape``, ``out_features``, ``_build()`` and ``to_dict()``, passed to
:func:`register_family`.
"""

from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from initlab.engine.convnets import CNNSpec, ResNetSpec
from initlab.engine.custom_model import CustomSpec
from initlab.engine.models import LinearSpec, MLPSpec, ModelSpec
from initlab.errors import InitlabError, UnknownNameError, suggest

__all__ = ["ModelSpec", "MLPSpec", "LinearSpec", "CNNSpec", "ResNetSpec", "CustomSpec", "register_family",
           "family", "family_kinds", "family_keys", "spec_from_dict", "as_spec", "build_model"]

_FAMILIES: dict[str, type[ModelSpec]] = {}

#: The kind of a model table without a ``kind`` key.
DEFAULT_KIND = "mlp"


def register_family(cls: type[ModelSpec], *, replace: bool = False) -> type[ModelSpec]:
    """Register the spec class *cls* under ``cls.kind`` (usable as a class decorator). A
    kind registered already is refused unless *replace*."""
    if not (isinstance(cls, type) and issubclass(cls, ModelSpec)):
        raise InitlabError(f"a model family must be a ModelSpec subclass, got {cls!r}")
    kind = cls.kind
    if not isinstance(kind, str) or not kind.isidentifier():
        raise InitlabError(f"{cls.__name__}.kind must be a name such as 'cnn', got {kind!r}")
    if kind in _FAMILIES and _FAMILIES[kind] is not cls and not replace:
        raise InitlabError(f"model kind {kind!r} is registered already ({_FAMILIES[kind].__name__}); "
                           "choose another kind, or pass replace=True")
    _FAMILIES[kind] = cls
    return cls


def family_kinds() -> tuple[str, ...]:
    """The registered kinds, in registration order (``mlp`` first)."""
    return tuple(_FAMILIES)


def family(kind: str) -> type[ModelSpec]:
    """The spec class of *kind*; an :class:`UnknownNameError` with suggestions if unknown."""
    try:
        return _FAMILIES[kind]
    except (KeyError, TypeError):
        raise UnknownNameError(f"unknown model kind {kind!r}{suggest(str(kind), list(_FAMILIES))}; "
                               f"choose one of {', '.join(_FAMILIES)}") from None


def family_keys(kind: str) -> tuple[str, ...]:
    """The valid keys of a *kind* table, ``"kind"`` and ``"name"`` among them."""
    return family(kind).keys()


def spec_from_dict(d: Mapping[str, Any]) -> ModelSpec:
    """The spec of a model table / ``to_dict()``: its ``kind`` (``"mlp"`` when missing)
    picks the family, whose ``from_dict`` checks the keys and values."""
    if not isinstance(d, Mapping):
        raise InitlabError(f"a model must be a table of its keys (kind = ..., ...), got {d!r}")
    return family(d.get("kind", DEFAULT_KIND)).from_dict(d)


def as_spec(model: ModelSpec | Mapping[str, Any]) -> ModelSpec:
    """*model* if it is a spec, else :func:`spec_from_dict` of it."""
    if isinstance(model, ModelSpec):
        return model
    return spec_from_dict(model)


def build_model(spec: ModelSpec | Mapping[str, Any], seed: int = 0) -> nn.Module:
    """``as_spec(spec).build(seed)``."""
    return as_spec(spec).build(seed)


for _cls in (MLPSpec, LinearSpec, CNNSpec, ResNetSpec, CustomSpec):
    register_family(_cls)
del _cls
