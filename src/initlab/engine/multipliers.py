"""Per-parameter learning-rate multipliers of a scheme (muP), for initlab's trainers and
for a plain ``torch.optim`` optimizer.

A scheme whose class has a method ``lr_multipliers(structure, model, optimizer) ->
{parameter name: factor}`` (``mup``, :class:`initlab.schemes.mup.MuPScheme`) prescribes
its own per-parameter learning rates: parameter ``p`` is trained with ``lr * factor[p]``
(on top of the schedule's ``lr_factor``). Every other scheme has none (``None``: one
learning rate for all).

>>> import initlab
>>> from initlab.engine.families import spec_from_dict
>>> model = spec_from_dict({"hidden": [512, 512]}).build(0)
>>> _ = initlab.apply(model, "mup", seed=0)                # base_width 128: m = 4
>>> lr_multipliers(model, "mup", "adam")["4.weight"]     # a hidden weight: Adam lr / m
0.25
>>> groups = param_groups(model, "mup", lr=1e-3, optimizer="adam")
>>> opt = torch.optim.Adam(groups)                        # torch's own Adam, muP's lrs

:func:`stack_scales` turns the multipliers of K stacked models into the ``[K]`` tensors
:class:`~initlab.engine.adam.StackedAdam` and :class:`~initlab.engine.sgd.StackedSGD`
take as ``lr_scale``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from initlab.errors import InitlabError
from initlab.schemes import Scheme, get_scheme
from initlab.structure import find_structure

__all__ = ["has_multipliers", "lr_multipliers", "param_groups", "stack_scales"]


def has_multipliers(scheme: "str | Scheme") -> bool:
    """Whether *scheme* prescribes per-parameter learning rates."""
    return callable(getattr(get_scheme(scheme), "lr_multipliers", None))


def lr_multipliers(model: nn.Module, scheme: "str | Scheme", optimizer: str) -> dict[str, float] | None:
    """``{name: factor}`` for every ``model.named_parameters()`` entry under *scheme* and
    *optimizer* (``"adam"`` or ``"sgd"``), or ``None`` when the scheme has none."""
    s = get_scheme(scheme)
    fn = getattr(s, "lr_multipliers", None)
    if not callable(fn):
        return None
    return dict(fn(find_structure(model), model, optimizer))


def param_groups(model: nn.Module, scheme: "str | Scheme", lr: float, optimizer: str) -> list[dict[str, Any]]:
    """``torch.optim`` parameter groups with ``lr * factor`` per parameter (one group per
    distinct factor; a scheme without multipliers gives one group at *lr*)."""
    mult = lr_multipliers(model, scheme, optimizer)
    params = list(model.named_parameters())
    if mult is None:
        return [{"params": [p for _, p in params], "lr": float(lr)}]
    by: dict[float, list[torch.nn.Parameter]] = {}
    for name, p in params:
        by.setdefault(float(mult[name]), []).append(p)
    return [{"params": ps, "lr": float(lr) * f, "lr_multiplier": f} for f, ps in by.items()]


def stack_scales(names: Sequence[str], per_model: Sequence[Mapping[str, float] | None],
                 device: torch.device) -> list[torch.Tensor | None] | None:
    """The ``lr_scale`` of a stacked optimizer: for each parameter name (in *names*' order)
    a ``[K]`` float32 tensor of model k's factor (1 for a model without multipliers), or
    ``None`` where all K factors are 1; ``None`` when no model has a factor other than 1."""
    scales: list[torch.Tensor | None] = []
    for name in names:
        row = []
        for k, mult in enumerate(per_model):
            if mult is not None and name not in mult:
                raise InitlabError(f"model {k} has no learning-rate multiplier for parameter {name}; the "
                                   "multipliers must name every parameter of the model")
            row.append(1.0 if mult is None else float(mult[name]))
        scales.append(None if all(f == 1.0 for f in row) else torch.tensor(row, dtype=torch.float32,
                                                                             device=device))
    return None if all(s is None for s in scales) else scales
