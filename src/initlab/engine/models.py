"""Model specs: the article's MLP, its deeper/other-activation variants, deep linear nets,
and the base class every model family's spec derives from.

The article's model (Keras) is::

    Flatten(784) -> Dense 256 ReLU -> Dropout 0.2 -> Dense 128 ReLU -> Dropout 0.2
                 -> Dense 10 softmax

Here the softmax is folded into the cross-entropy loss (``F.cross_entropy`` on logits is
the same function as Keras' sparse categorical cross-entropy on softmax outputs, and
numerically safer), so :func:`build_mlp` ends with a plain ``nn.Linear``.

Families (registered by kind in :mod:`initlab.engine.families`): :class:`MLPSpec`
(``mlp``) and :class:`LinearSpec` (``linear``) live here, the convolutional ones in
:mod:`initlab.engine.convnets`, the user's own in :mod:`initlab.engine.custom_model`.
Each spec is a frozen dataclass deriving from :class:`ModelSpec`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

from torch import nn

from initlab.errors import InitlabError, UnknownNameError, suggest

if TYPE_CHECKING:
    import torch

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
    except (KeyError, TypeError):
        raise UnknownNameError(
            f"unknown activation {name!r}{suggest(str(name), list(ACTIVATIONS))}; "
            f"choose one of {', '.join(ACTIVATIONS)}"
        ) from None


# --- value checks shared by the families' specs (one-line errors naming the key) -----------

def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(kind: str, key: str, value: Any, minimum: int = 1, what: str = "") -> int:
    """*value* as an int ``>= minimum``; else one line naming ``kind``'s *key*."""
    if not _is_int(value) or value < minimum:
        hint = f" ({what})" if what else ""
        raise InitlabError(f"{kind} {key} must be an integer >= {minimum}{hint}, got {value!r}")
    return int(value)


def check_bool(kind: str, key: str, value: Any) -> bool:
    """*value* as a bool (``true``/``false`` in TOML)."""
    if not isinstance(value, bool):
        raise InitlabError(f"{kind} {key} must be true or false, got {value!r}")
    return value


def check_choice(kind: str, key: str, value: Any, choices: Sequence[str]) -> str:
    """*value* as one of *choices* (an :class:`UnknownNameError` with suggestions if not)."""
    if not isinstance(value, str) or value not in choices:
        raise UnknownNameError(
            f"unknown {kind} {key} {value!r}{suggest(str(value), list(choices))}; "
            f"choose one of {', '.join(repr(c) for c in choices)}"
        )
    return value


def check_ints(kind: str, key: str, value: Any, minimum: int = 1, what: str = "") -> tuple[int, ...]:
    """*value* (a list or tuple) as a tuple of ints ``>= minimum``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not all(
        _is_int(v) and v >= minimum for v in value
    ):
        hint = f" ({what})" if what else ""
        raise InitlabError(
            f"{kind} {key} must be a list of integers >= {minimum}{hint}, got {_shown(value)}"
        )
    return tuple(int(v) for v in value)


def check_name(kind: str, value: Any) -> str:
    """The optional ``name`` (replaces the spec's label in tables): a string."""
    if not isinstance(value, str):
        raise InitlabError(f"{kind} name must be a string (the label in tables), got {value!r}")
    return value


def check_input_shape(kind: str, value: Any, ndim: int | None = None) -> tuple[int, ...]:
    """A per-sample input shape: a non-empty list of positive ints (of length *ndim*)."""
    shape = check_ints(kind, "input_shape", value, 1, "the per-sample shape the model takes")
    if not shape or (ndim is not None and len(shape) != ndim):
        need = "[channels, height, width], e.g. [1, 28, 28]" if ndim == 3 else "e.g. [1, 28, 28]"
        raise InitlabError(f"{kind} input_shape must be {need}, got {_shown(value)}")
    return shape


def _shown(value: Any) -> str:
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


def shape_text(shape: Sequence[int]) -> str:
    """``(1, 28, 28)`` -> ``"1x28x28"``."""
    return "x".join(str(s) for s in shape)


class ModelSpec:
    """The protocol of a model family's spec (see :mod:`initlab.engine.families`).

    Subclasses are frozen dataclasses with a ``kind`` class variable; they give
    :attr:`label`, :attr:`input_shape`, :attr:`out_features`, :meth:`build` (on an
    unseeded module) and :meth:`to_dict`; :meth:`from_dict`, :meth:`keys`,
    :meth:`check_fits`, :meth:`build` (seeded) and :attr:`fast_path` come from here.

    Images: the trainer reshapes a batch ``[N, *sample_shape]`` (e.g. ``[N, 28, 28]``) to
    ``[N, *input_shape]``, so a dataset fits when its samples hold as many values as
    ``input_shape`` (28x28 fits ``(784,)`` and ``(1, 28, 28)``, row-major).
    """

    kind: ClassVar[str] = ""

    # --- what each family gives ---------------------------------------------------------------
    @property
    def label(self) -> str:  # pragma: no cover - every family overrides it
        raise NotImplementedError

    @property
    def input_shape(self) -> tuple[int, ...]:  # pragma: no cover
        raise NotImplementedError

    @property
    def out_features(self) -> int:  # pragma: no cover
        raise NotImplementedError

    def _build(self) -> nn.Module:  # pragma: no cover
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def _input_fix(self, sample_shape: tuple[int, ...]) -> str:
        """The fix named when samples of *sample_shape* do not fit (a family may refine it)."""
        return f"set input_shape = {list(sample_shape)}"

    def _output_fix(self, n_classes: int) -> str:
        """The fix named when the model has fewer outputs than the dataset has classes."""
        return f"set out_features = {n_classes}"

    # --- shared ---------------------------------------------------------------------------
    @property
    def fast_path(self) -> bool:
        """True only where the hand-tuned MLP engine trains this spec (an :class:`MLPSpec`
        with biases); every other spec goes to the generic trainer."""
        return False

    def build(self, seed: int = 0) -> nn.Module:
        """A fresh module with torch's default initialization, drawn from torch's CPU RNG
        seeded by *seed* inside ``torch.random.fork_rng`` (the caller's RNG is untouched),
        so two builds of one spec are equal. Structure is deterministic."""
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            return self._build()

    def as_input(self, x: "torch.Tensor") -> "torch.Tensor":
        """A batch ``[N, *sample_shape]`` reshaped to ``[N, *input_shape]`` (a view where
        possible), as the trainer feeds it; one line if the sizes differ."""
        if x.dim() < 1 or math.prod(x.shape[1:]) != math.prod(self.input_shape):
            raise InitlabError(f"a batch of shape {list(x.shape)} cannot feed model {self.label}, whose "
                               f"samples are {shape_text(self.input_shape)}; give [N, *input_shape]")
        return x.reshape(x.shape[0], *self.input_shape)

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The valid keys of this kind's table (``[model]`` in TOML): ``kind``, then the
        dataclass fields (``name`` among them)."""
        return ("kind", *(f.name for f in fields(cls) if f.init))  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelSpec":
        """The spec of *d* (the output of :meth:`to_dict`, or a ``[model]`` table); an
        unknown key or a ``kind`` of another family is one line listing the valid keys."""
        if not isinstance(d, Mapping):
            raise InitlabError(f"a {cls.kind} model must be a table of its keys, got {d!r}")
        d = dict(d)
        kind = d.pop("kind", cls.kind)
        if kind != cls.kind:
            raise InitlabError(f"model kind {kind!r} given to the {cls.kind!r} family; "
                               f"use spec_from_dict, or kind = {cls.kind!r}")
        valid = cls.keys()
        for key in d:
            if key not in valid:
                raise InitlabError(
                    f"unknown key {key!r} for model kind {cls.kind!r}"
                    f"{suggest(str(key), list(valid))}; valid keys: {', '.join(valid)}"
                )
        return cls(**d)

    def check_fits(self, sample_shape: tuple[int, ...], n_classes: int) -> None:
        """Raise :class:`InitlabError` (one line with the fix) unless a dataset of samples of
        *sample_shape* and *n_classes* classes can feed this model and be predicted by it:
        the samples hold as many values as :attr:`input_shape` (the trainer reshapes them),
        and the model has at least *n_classes* outputs."""
        shape = tuple(int(s) for s in sample_shape)
        need, have = math.prod(self.input_shape), math.prod(shape)
        if need != have:
            raise InitlabError(
                f"model {self.label} takes samples of shape {shape_text(self.input_shape)} "
                f"({need} values) but the dataset's are {shape_text(shape)} ({have} values); "
                f"{self._input_fix(shape)}"
            )
        out = self.out_features
        if out < n_classes:
            raise InitlabError(
                f"model {self.label} has {out} outputs but the dataset has {n_classes} classes; "
                f"{self._output_fix(n_classes)}"
            )


@dataclass(frozen=True)
class MLPSpec(ModelSpec):
    """A fully connected classifier: ``in_features -> hidden... -> out_features``.

    ``MLPSpec()`` is the article's model exactly (784-256-128-10, ReLU, dropout 0.2).
    ``bias = False`` drops every layer's bias (``nn.Linear(bias=False)``); such a model
    goes to the generic trainer, not the hand-tuned MLP engine (:attr:`fast_path`).
    """

    kind: ClassVar[str] = "mlp"

    in_features: int = 784
    hidden: tuple[int, ...] = (256, 128)
    out_features: int = 10
    activation: str = "relu"
    dropout: float = 0.2
    name: str = field(default="", compare=False)
    bias: bool = True

    def __post_init__(self) -> None:
        h = self.hidden
        if isinstance(h, (str, bytes)) or not isinstance(h, Sequence) or not all(_is_int(v) for v in h):
            raise InitlabError(f"hidden must be a list of layer widths (integers), got {_shown(h)}")
        object.__setattr__(self, "hidden", tuple(int(v) for v in h))
        for key in ("in_features", "out_features"):
            if not _is_int(getattr(self, key)):
                raise InitlabError(f"{key} must be an integer, got {getattr(self, key)!r}")
        if self.in_features < 1 or self.out_features < 1 or any(v < 1 for v in self.hidden):
            raise InitlabError(
                f"model widths must be positive integers, got in={self.in_features}, "
                f"hidden={list(self.hidden)}, out={self.out_features}"
            )
        d = self.dropout
        if isinstance(d, bool) or not isinstance(d, (int, float)) or math.isnan(d) or not 0.0 <= d < 1.0:
            raise InitlabError(f"dropout must be a number in [0, 1), got {d!r}")
        activation_module(self.activation)  # validates the name
        check_name("mlp", self.name)
        check_bool("mlp", "bias", self.bias)

    @property
    def widths(self) -> tuple[int, ...]:
        """All layer widths including input and output, e.g. (784, 256, 128, 10)."""
        return (self.in_features, *self.hidden, self.out_features)

    @property
    def input_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """``(in_features,)``; the module begins with ``nn.Flatten``, so ``[N, 28, 28]`` works too."""
        return (self.in_features,)

    @property
    def fast_path(self) -> bool:
        """True: the hand-tuned MLP engine (:mod:`initlab.engine.batched`) trains it,
        unless ``bias = False``."""
        return self.bias

    @property
    def label(self) -> str:
        """A short human label, e.g. ``mlp-256x128-relu-d0.2`` (``20x256`` for 20 equal
        hidden layers, ``-nobias`` appended without biases); ``name`` overrides it. The
        input and output widths are not part of it (the dataset fixes them)."""
        if self.name:
            return self.name
        if len(set(self.hidden)) == 1 and len(self.hidden) > 2:
            body = f"{len(self.hidden)}x{self.hidden[0]}"
        else:
            body = "x".join(str(h) for h in self.hidden) or "linear"
        return f"mlp-{body}-{self.activation}-d{self.dropout:g}" + ("" if self.bias else "-nobias")

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON; ``bias`` only when false, so the dicts (and the study's
        cell keys) of MLPs with biases are those from before the key existed."""
        d: dict[str, Any] = {
            "in_features": self.in_features, "hidden": list(self.hidden),
            "out_features": self.out_features, "activation": self.activation,
            "dropout": self.dropout, "name": self.name,
        }
        if not self.bias:
            d["bias"] = False
        return d

    def _input_fix(self, sample_shape: tuple[int, ...]) -> str:
        return f"set in_features = {math.prod(sample_shape)}"

    def _build(self) -> nn.Module:
        return build_mlp(self)


def build_mlp(spec: MLPSpec = MLPSpec()) -> nn.Sequential:
    """Build the ``nn.Sequential`` for *spec*: Flatten, then (Linear, act, Dropout) per
    hidden layer (Dropout only when ``spec.dropout > 0``), then the output Linear (logits).
    The Linear layers have biases unless ``spec.bias`` is false.
    """
    layers: list[nn.Module] = [nn.Flatten()]
    widths = spec.widths
    for i in range(len(widths) - 2):
        layers.append(nn.Linear(widths[i], widths[i + 1], bias=spec.bias))
        layers.append(activation_module(spec.activation))
        if spec.dropout > 0:
            layers.append(nn.Dropout(spec.dropout))
    layers.append(nn.Linear(widths[-2], widths[-1], bias=spec.bias))
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class LinearSpec(ModelSpec):
    """A deep linear network (Saxe, McClelland and Ganguli 2014, "Exact solutions to the
    nonlinear dynamics of learning in deep linear neural networks"):
    ``Flatten -> Linear(in, width) -> ... -> Linear(width, out)``, *depth* ``nn.Linear``
    layers in all (``depth - 1`` hidden layers of *width*, then the output layer), no
    activation and no bias, so the network computes ``y = W_depth ... W_2 W_1 x``.
    Module names: ``0`` is the Flatten, ``1 .. depth`` the Linear layers.
    """

    kind: ClassVar[str] = "linear"

    depth: int = 10
    width: int = 256
    in_features: int = 784
    out_features: int = 10
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        check_int("linear", "depth", self.depth, 1, "the number of Linear layers, output layer included")
        check_int("linear", "width", self.width, 1, "the hidden layers' width")
        check_int("linear", "in_features", self.in_features, 1)
        check_int("linear", "out_features", self.out_features, 1)
        check_name("linear", self.name)

    @property
    def input_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        """``(in_features,)``; the module begins with ``nn.Flatten``."""
        return (self.in_features,)

    @property
    def widths(self) -> tuple[int, ...]:
        """All layer widths, e.g. ``(784, 256, 256, 10)`` for depth 3."""
        return (self.in_features, *([self.width] * (self.depth - 1)), self.out_features)

    @property
    def label(self) -> str:
        """``linear-<depth>x<width>``, e.g. ``linear-10x256``, then ``-in<n>`` / ``-out<n>``
        where those differ from 784 / 10; ``name`` overrides it."""
        if self.name:
            return self.name
        tail = ("" if self.in_features == 784 else f"-in{self.in_features}") + (
            "" if self.out_features == 10 else f"-out{self.out_features}")
        return f"linear-{self.depth}x{self.width}{tail}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "linear", "depth": self.depth, "width": self.width,
                "in_features": self.in_features, "out_features": self.out_features, "name": self.name}

    def _input_fix(self, sample_shape: tuple[int, ...]) -> str:
        return f"set in_features = {math.prod(sample_shape)}"

    def _build(self) -> nn.Module:
        w = self.widths
        return nn.Sequential(nn.Flatten(), *(nn.Linear(w[i], w[i + 1], bias=False) for i in range(self.depth)))
