"""Stacking K same-architecture MLPs into batched parameter tensors.

Model ``k``'s ``nn.Linear`` layer ``l`` (``weight [out, in]``, ``bias [out]``) becomes row
``k`` of ``W[l]: [K, out, in]`` and ``b[l]: [K, out]``, so one ``torch.bmm`` computes the
layer for all K models: ``z[k] = a[k] @ W[l][k].T + b[l][k]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from initlab.engine.models import ACTIVATIONS, MLPSpec, build_mlp
from initlab.errors import InitlabError

__all__ = ["infer_spec", "ParamStack"]


def _activation_name(module: nn.Module) -> str | None:
    for name, factory in ACTIVATIONS.items():
        ref = factory()
        if type(module) is type(ref):
            if isinstance(module, nn.LeakyReLU) and module.negative_slope != ref.negative_slope:
                continue
            if isinstance(module, nn.GELU) and module.approximate != ref.approximate:
                continue
            return name
    return None


def _signature(model: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    sig: list[tuple[str, tuple[int, ...]]] = []
    for m in model.children():
        shape: tuple[int, ...] = ()
        if isinstance(m, nn.Linear):
            shape = (m.out_features, m.in_features, int(m.bias is not None))
        elif isinstance(m, nn.Dropout):
            shape = ()
        sig.append((type(m).__name__, shape))
    return sig


def infer_spec(model: nn.Module) -> MLPSpec:
    """The :class:`MLPSpec` whose ``build_mlp(spec)`` has *model*'s architecture.

    Raises :class:`InitlabError` if *model* is not such an ``nn.Sequential`` (Flatten,
    then ``Linear, act[, Dropout]`` per hidden layer, then ``Linear``, all with biases).
    """
    if not isinstance(model, nn.Sequential):
        raise InitlabError(
            f"expected an nn.Sequential built by build_mlp(spec), got {type(model).__name__}"
        )
    linears = [m for m in model.children() if isinstance(m, nn.Linear)]
    acts = [
        m
        for m in model.children()
        if not isinstance(m, (nn.Linear, nn.Dropout, nn.Flatten))
    ]
    drops = [m.p for m in model.children() if isinstance(m, nn.Dropout)]
    names = {_activation_name(a) for a in acts}
    hint = "build models with initlab.engine.build_mlp(spec)"
    if not linears or None in names or len(names) > 1 or len(set(drops)) > 1:
        raise InitlabError(f"model is not an MLP the engine can train; {hint}")
    try:
        spec = MLPSpec(
            in_features=linears[0].in_features,
            hidden=tuple(m.out_features for m in linears[:-1]),
            out_features=linears[-1].out_features,
            activation=names.pop() if names else "relu",
            dropout=float(drops[0]) if drops else 0.0,
        )
    except InitlabError as e:
        raise InitlabError(f"model is not an MLP the engine can train ({e}); {hint}") from None
    if _signature(build_mlp(spec)) != _signature(model):
        raise InitlabError(f"model is not an MLP the engine can train; {hint}")
    return spec


def common_spec(models: Sequence[nn.Module]) -> MLPSpec:
    """The one spec of all *models*; raises if they differ."""
    if len(models) == 0:
        raise InitlabError("no models given; pass a list of at least one model")
    specs = [infer_spec(m) for m in models]
    for i, s in enumerate(specs):
        if s != specs[0]:
            raise InitlabError(
                f"model {i} is {s.label} but model 0 is {specs[0].label}; "
                "train models of one architecture together"
            )
    return specs[0]


@dataclass
class ParamStack:
    """The parameters of K models of one spec as stacked float32 tensors.

    ``W[l]``: ``[K, out_l, in_l]``, ``b[l]``: ``[K, out_l]`` for ``l = 0..L-1`` (``L``
    linear layers); ``names[l]`` are the state_dict keys ``("<i>.weight", "<i>.bias")``
    of that layer in the ``nn.Sequential``.
    """

    spec: MLPSpec
    W: list[torch.Tensor]
    b: list[torch.Tensor]
    names: list[tuple[str, str]]

    @property
    def K(self) -> int:
        return int(self.W[0].shape[0])

    @property
    def n_layers(self) -> int:
        return len(self.W)

    @classmethod
    def from_models(
        cls, models: Sequence[nn.Module], device: torch.device, spec: MLPSpec | None = None
    ) -> "ParamStack":
        """Copy the parameters of *models* (read only) into stacked tensors on *device*."""
        spec = spec or common_spec(models)
        idx = [i for i, m in enumerate(models[0].children()) if isinstance(m, nn.Linear)]
        layers = [[list(m.children())[i] for i in idx] for m in models]

        def stacked(attr: str, j: int) -> torch.Tensor:
            return torch.stack(
                [getattr(ls[j], attr).detach().to(device, torch.float32) for ls in layers]
            )

        with torch.no_grad():
            W = [stacked("weight", j) for j in range(len(idx))]
            b = [stacked("bias", j) for j in range(len(idx))]
        names = [(f"{i}.weight", f"{i}.bias") for i in idx]
        return cls(spec, W, b, names)

    def params(self) -> list[torch.Tensor]:
        """``[W0, b0, W1, b1, ...]``: the order of ``nn.Sequential.parameters()``."""
        out: list[torch.Tensor] = []
        for w, bb in zip(self.W, self.b):
            out += [w, bb]
        return out

    def state_dict(self, k: int) -> dict[str, torch.Tensor]:
        """Model *k*'s parameters as a CPU ``state_dict`` for ``build_mlp(spec)``."""
        sd: dict[str, torch.Tensor] = {}
        for (wn, bn), w, bb in zip(self.names, self.W, self.b):
            sd[wn] = w[k].detach().to("cpu", copy=True)
            sd[bn] = bb[k].detach().to("cpu", copy=True)
        return sd

    def select(self, keep: Sequence[int]) -> "ParamStack":
        """A new stack of models *keep* (copies)."""
        ix = torch.as_tensor(list(keep), dtype=torch.long, device=self.W[0].device)
        return ParamStack(
            self.spec,
            [w.index_select(0, ix) for w in self.W],
            [bb.index_select(0, ix) for bb in self.b],
            self.names,
        )
