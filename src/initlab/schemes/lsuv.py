"""Layer-sequential unit-variance (LSUV) initialization.

Mishkin & Matas 2016, "All you need is a good init" (ICLR), Algorithm 1::

    pre-initialize every layer with orthonormal matrices (Saxe et al. 2014)
    for each layer L, in forward order:
        while |Var(B_L) - 1| >= Tol_var and T_i < T_max:
            forward a mini-batch; B_L = output of layer L
            W_L = W_L / sqrt(Var(B_L))

with the paper's Tol_var = 0.1 and T_max = 10. ``B_L`` is the layer's own output (the
pre-activation of a Linear/Conv layer; in Caffe the nonlinearity is a separate layer).
Biases stay zero.

The fast.ai variant (course part 2, 2019, lesson 11) also centres each layer's output
through its bias, ``b -= mean(B_L)``, and divides by the standard deviation, looping
until ``|mean| < tol`` and ``|std - 1| < tol`` (tol = 1e-3).

The model is put in eval mode while measuring (dropout off, so that the statistics are
those of the deterministic network) and restored afterwards. Only the forward pass up to
layer L is run: a hook stops the forward once it has seen L's output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from initlab.errors import InitlabError
from initlab.schemes.core import Scheme


class _Stop(Exception):
    pass


@dataclass
class LSUVStep:
    """What LSUV did to one layer: iterations, and the output mean/variance after."""

    layer: str
    iterations: int
    out_mean: float
    out_var: float
    converged: bool


def output_stats(model: nn.Module, module: nn.Module, data: Any) -> tuple[float, float]:
    """Mean and variance of *module*'s output when *model* runs on *data* (forward stops there)."""
    box: dict[str, torch.Tensor] = {}

    def hook(_m: nn.Module, _inp: Any, out: Any) -> None:
        box["out"] = out[0] if isinstance(out, tuple) else out
        raise _Stop

    handle = module.register_forward_hook(hook)
    try:
        with torch.no_grad():
            model(data)
    except _Stop:
        pass
    finally:
        handle.remove()
    if "out" not in box:
        raise InitlabError("LSUV: a layer was never reached by the forward pass; pass data the model "
                           "can run on, or exclude that layer with include=")
    out = box["out"].detach().double()
    return float(out.mean()), float(out.var())


class LSUVScheme(Scheme):
    """A data-dependent scheme: orthonormal pre-init by :meth:`init_`, then
    :meth:`fit_` rescales layer by layer on a data batch."""

    requires_data = True

    @property
    def centre(self) -> bool:
        return self.name == "lsuv_fastai"

    def fit_(self, model: nn.Module, data: Any, layers: Sequence[tuple[str, nn.Module]]) -> list[LSUVStep]:
        """Rescale *layers* (name, module with ``weight``) in forward order on *data*.

        ``tol > 0`` and ``max_iter >= 1`` are the entry's domains, checked by ``get_scheme``.
        """
        tol = float(self.params["tol"])
        max_iter = int(self.params["max_iter"])
        was_training = model.training
        model.eval()
        steps: list[LSUVStep] = []
        try:
            for name, module in layers:
                mean, var = output_stats(model, module, data)
                it = 0
                while it < max_iter and not self._done(mean, var, tol):
                    if not var > 0 or not math.isfinite(var):
                        break  # a dead layer (zero output) cannot be rescaled
                    with torch.no_grad():
                        if self.centre and getattr(module, "bias", None) is not None:
                            module.bias.sub_(mean)
                        module.weight.div_(math.sqrt(var))  # both variants divide by the std
                    mean, var = output_stats(model, module, data)
                    it += 1
                steps.append(LSUVStep(name, it, mean, var, self._done(mean, var, tol)))
        finally:
            model.train(was_training)
        return steps

    def _done(self, mean: float, var: float, tol: float) -> bool:
        if self.centre:
            return abs(mean) < tol and abs(math.sqrt(max(var, 0.0)) - 1.0) < tol
        return abs(var - 1.0) < tol
