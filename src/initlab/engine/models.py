"""Model specs: the article's MLP and its deeper/other-activation variants.

The article's model (Keras) is::

    Flatten(784) -> Dense 256 ReLU -> Dropout 0.2 -> Dense 128 ReLU -> Dropout 0.2
                 -> Dense 10 softmax

Here the softmax is folded into the cross-entropy loss (``F.cross_entropy`` on logits is
the same function as Keras' sparse categorical cross-entropy on softmax outputs, and
numerically safer), so :func:`build_mlp` ends with a plain ``nn.Linear``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from initlab.errors import InitlabError, UnknownNameError, suggest

#: Activation name -> (module factory, nonlinearity name for gains).
#: leaky_relu uses PyTorch's default negative slope 0.01 (Keras' LeakyReLU default is 0.3).
ACTIVATIONS: dict[str, Any] = {
    "relu": lambda: nn.ReLU(),
    "tanh": lambda: nn.Tanh(),
    "sigmoid": lambda: nn.Sigmoid(),
    "selu": lambda: nn.SELU(),
    "gelu": lambda: nn.GELU(),
    "silu": lambda: nn.SiLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "linear": lambda: nn.Identity(),
}


def activation_module(name: str) -> nn.Module:
    """The ``nn.Module`` for an activation name (see :data:`ACTIVATIONS`)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise UnknownNameError(
            f"unknown activation {name!r}{suggest(name, list(ACTIVATIONS))}; "
            f"choose one of {', '.join(ACTIVATIONS)}"
        ) from None


@dataclass(frozen=True)
class MLPSpec:
    """A fully connected classifier: ``in_features -> hidden... -> out_features``.

    ``MLPSpec()`` is the article's model exactly (784-256-128-10, ReLU, dropout 0.2).
    """

    in_features: int = 784
    hidden: tuple[int, ...] = (256, 128)
    out_features: int = 10
    activation: str = "relu"
    dropout: float = 0.2
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if self.in_features < 1 or self.out_features < 1 or any(h < 1 for h in self.hidden):
            raise InitlabError(
                f"model widths must be positive integers, got in={self.in_features}, "
                f"hidden={list(self.hidden)}, out={self.out_features}"
            )
        if not (0.0 <= self.dropout < 1.0) or math.isnan(self.dropout):
            raise InitlabError(f"dropout must be in [0, 1), got {self.dropout}")
        activation_module(self.activation)  # validates the name

    @property
    def widths(self) -> tuple[int, ...]:
        """All layer widths including input and output, e.g. (784, 256, 128, 10)."""
        return (self.in_features, *self.hidden, self.out_features)

    @property
    def label(self) -> str:
        """A short human label, e.g. ``mlp-256x128-relu-d0.2``."""
        if self.name:
            return self.name
        if len(set(self.hidden)) == 1 and len(self.hidden) > 2:
            body = f"{len(self.hidden)}x{self.hidden[0]}"
        else:
            body = "x".join(str(h) for h in self.hidden) or "linear"
        return f"mlp-{body}-{self.activation}-d{self.dropout:g}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MLPSpec":
        known = {f for f in cls.__dataclass_fields__}
        extra = set(d) - known
        if extra:
            raise InitlabError(
                f"unknown model field(s) {sorted(extra)}; known fields are {sorted(known)}"
            )
        return cls(**{**d, "hidden": tuple(d.get("hidden", cls.hidden))})


def build_mlp(spec: MLPSpec = MLPSpec()) -> nn.Sequential:
    """Build the ``nn.Sequential`` for *spec*: Flatten, then (Linear, act, Dropout) per
    hidden layer (Dropout only when ``spec.dropout > 0``), then the output Linear (logits).
    """
    layers: list[nn.Module] = [nn.Flatten()]
    widths = spec.widths
    for i in range(len(widths) - 2):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        layers.append(activation_module(spec.activation))
        if spec.dropout > 0:
            layers.append(nn.Dropout(spec.dropout))
    layers.append(nn.Linear(widths[-2], widths[-1]))
    return nn.Sequential(*layers)
