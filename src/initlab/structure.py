"""The structure protocol: how a model shows structure-aware schemes (Fixup, ZerO,
SkipInit) its residual branches and its output layer.

:func:`find_structure` reads a model, duck-typed, in this order:

1. **Methods** (the protocol; initlab's ``resnet`` family implements them):

   * ``model.residual_branches() -> list[nn.Module]``: each residual block's branch, in
     forward order, so that a block computes ``act(g * branch(x) + shortcut(x))``. A
     branch's layers are its Linear/Conv and normalization modules (and any module owning a
     parameter with more than one entry), in registration order; the *last* one is the
     branch's last layer (a Linear/Conv, or a normalization layer after it);
   * ``model.output_layer() -> nn.Linear``: the classifier (optional);
   * ``model.input_layer() -> nn.Module`` (optional): the first weight layer (muP's input
     weights); without it, the first Linear/Conv in registration order;
   * ``model.residual_gains() -> list[nn.Parameter | None]`` (optional): one scalar
     multiplier ``g`` per branch (SkipInit's alpha, Fixup's scalar multiplier), aligned with
     ``residual_branches()``.

2. **Common layouts**, when the model has no ``residual_branches()``:

   * torchvision/timm-style blocks: any sub-module with ``conv1`` and ``conv2`` attributes
     (and ``conv3`` for a Bottleneck) and a ``downsample`` attribute (``None`` or the
     projection shortcut). Its branch layers are ``conv1, bn1, conv2, bn2[, conv3, bn3]``
     where present; the ``downsample`` projection is not part of the branch;
   * the output layer: an ``nn.Linear`` attribute named ``fc``, ``head`` or
     ``classifier`` of the model, else the last ``nn.Linear`` in registration order when no
     Linear/Conv layer is registered after it (an ``nn.Sequential`` MLP's last layer);
   * scalar gains and biases owned directly by a branch or its block: a one-element
     parameter named ``alpha``, ``gain``, ``scale``, ``multiplier`` or ``skip_gain`` is the
     branch's multiplier; one-element parameters whose names start with ``bias`` are Fixup's
     scalar biases (the names of the Fixup authors' code: ``bias1a``, ``bias1b``, ``scale``).

A model without residual branches (an MLP, a plain CNN) has ``branches == []``: schemes
that need them refuse it with one line (see :func:`needs_branches`), schemes that do not
(ZerO on an MLP) use the output layer only.

Limits: registration order stands for forward order (true of the families initlab
builds and of torchvision's models); a branch is found either by the methods or by the
layout above, never guessed from the forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from initlab.errors import InitlabError
from initlab.layers import CONV, CONV_T, LINEAR_LIKE, NORM

__all__ = ["Branch", "Structure", "find_structure", "needs_branches", "GAIN_NAMES"]

#: Names of a branch's scalar multiplier in the layouts :func:`find_structure` discovers.
GAIN_NAMES = ("alpha", "gain", "scale", "multiplier", "skip_gain")
#: Attribute names of the classifier in the layouts :func:`find_structure` discovers.
OUTPUT_NAMES = ("fc", "head", "classifier")
_BLOCK_LAYERS = ("conv1", "bn1", "conv2", "bn2", "conv3", "bn3")
_WEIGHT_LAYERS = LINEAR_LIKE + CONV + CONV_T


@dataclass
class Branch:
    """One residual branch: its module name, its parameterized layers in order, its scalar
    multiplier (if the model has one) and its scalar biases."""

    name: str
    layers: list[tuple[str, nn.Module]]
    gain: tuple[str, nn.Parameter] | None = None
    scalar_biases: list[tuple[str, nn.Parameter]] = field(default_factory=list)

    @property
    def weight_layers(self) -> list[tuple[str, nn.Module]]:
        """The branch's Linear/Conv layers, in order (``m`` of Fixup is their number)."""
        return [(n, m) for n, m in self.layers if isinstance(m, _WEIGHT_LAYERS)]

    @property
    def last(self) -> tuple[str, nn.Module]:
        """The branch's last parameterized module (its output layer)."""
        return self.layers[-1]


@dataclass
class Structure:
    """What :func:`find_structure` found: the branches, the output layer, and how."""

    model_type: str
    branches: list[Branch]
    output: tuple[str, nn.Module] | None
    how: str
    #: the first weight layer (``input_layer()``, else the first Linear/Conv registered)
    input: tuple[str, nn.Module] | None = None

    def describe(self) -> str:
        out = self.output[0] if self.output else "none"
        return (f"{len(self.branches)} residual branches ({self.how}), output layer {out}")


def _is_layer(m: nn.Module) -> bool:
    """A Linear/Conv or normalization layer, or a module owning a parameter that is not a
    scalar (scalar gains and biases are the block's, not layers)."""
    return isinstance(m, _WEIGHT_LAYERS + NORM) or any(p.numel() > 1 for p in m.parameters(recurse=False))


def _scalars(modules: list[nn.Module], prefix: dict[int, str]) -> tuple[
        tuple[str, nn.Parameter] | None, list[tuple[str, nn.Parameter]]]:
    gain, biases = None, []
    for m in modules:
        for pname, p in m.named_parameters(recurse=False):
            if p.numel() != 1:
                continue
            full = f"{prefix[id(m)]}.{pname}" if prefix[id(m)] else pname
            if pname in GAIN_NAMES and gain is None:
                gain = (full, p)
            elif pname.startswith("bias"):
                biases.append((full, p))
    return gain, biases


def _parent(name: str, by_name: dict[str, nn.Module]) -> nn.Module | None:
    if not name:
        return None
    return by_name.get(name.rpartition(".")[0])


def _from_methods(model: nn.Module, names: dict[int, str], by_name: dict[str, nn.Module]) -> list[Branch]:
    mods = list(model.residual_branches())  # type: ignore[operator]
    gains = list(model.residual_gains()) if callable(getattr(model, "residual_gains", None)) else None  # type: ignore[operator]
    if gains is not None and len(gains) != len(mods):
        raise InitlabError(f"{type(model).__name__}.residual_gains() gives {len(gains)} gains for "
                           f"{len(mods)} residual branches; give one per branch (None where absent)")
    branches = []
    for i, b in enumerate(mods):
        if not isinstance(b, nn.Module) or id(b) not in names:
            raise InitlabError(f"{type(model).__name__}.residual_branches() item {i} is not a sub-module "
                               "of the model; return the branch modules themselves")
        name = names[id(b)]
        layers = [(names[id(m)], m) for m in b.modules() if _is_layer(m)]
        parent = _parent(name, by_name)
        gain, biases = _scalars([b] + ([parent] if parent is not None else []), names)
        if gains is not None:
            g = gains[i]
            gain = None if g is None else (_param_name(model, g), g)
        branches.append(Branch(name, layers, gain, biases))
    return branches


def _param_name(model: nn.Module, p: nn.Parameter) -> str:
    return next((n for n, q in model.named_parameters() if q is p), "<gain>")


def _discover_blocks(model: nn.Module, names: dict[int, str]) -> list[Branch]:
    branches: list[Branch] = []
    inside: set[int] = set()
    for name, m in model.named_modules():
        if id(m) in inside or m is model:
            continue
        if not (isinstance(getattr(m, "conv1", None), _WEIGHT_LAYERS)
                and isinstance(getattr(m, "conv2", None), _WEIGHT_LAYERS) and hasattr(m, "downsample")):
            continue
        layers = []
        for attr in _BLOCK_LAYERS:
            sub = getattr(m, attr, None)
            if isinstance(sub, nn.Module) and _is_layer(sub):
                layers.append((names[id(sub)], sub))
        inside.update(id(s) for s in m.modules())
        gain, biases = _scalars([m], names)
        branches.append(Branch(name, layers, gain, biases))
    return branches


def _output(model: nn.Module, names: dict[int, str]) -> tuple[str, nn.Module] | None:
    fn = getattr(model, "output_layer", None)
    if callable(fn):
        out = fn()
        if not isinstance(out, nn.Module) or id(out) not in names:
            raise InitlabError(f"{type(model).__name__}.output_layer() did not return one of the model's "
                               "sub-modules; return the classifier module itself")
        return names[id(out)], out
    for attr in OUTPUT_NAMES:
        sub = getattr(model, attr, None)
        if isinstance(sub, nn.Linear):
            return names[id(sub)], sub
    last = None
    for name, m in model.named_modules():
        if isinstance(m, _WEIGHT_LAYERS):
            last = (name, m)
    return last if last is not None and isinstance(last[1], nn.Linear) else None


def _input(model: nn.Module, names: dict[int, str]) -> tuple[str, nn.Module] | None:
    fn = getattr(model, "input_layer", None)
    if callable(fn):
        inp = fn()
        if not isinstance(inp, nn.Module) or id(inp) not in names:
            raise InitlabError(f"{type(model).__name__}.input_layer() did not return one of the model's "
                               "sub-modules; return the first weight layer itself")
        return names[id(inp)], inp
    return next(((n, m) for n, m in model.named_modules() if isinstance(m, _WEIGHT_LAYERS)), None)


def find_structure(model: nn.Module) -> Structure:
    """The residual branches and output layer of *model* (see the module docstring)."""
    if not isinstance(model, nn.Module):
        raise InitlabError(f"a model's structure is read from an nn.Module, got {type(model).__name__}")
    names = {id(m): n for n, m in model.named_modules()}
    by_name = dict(model.named_modules())
    if callable(getattr(model, "residual_branches", None)):
        branches, how = _from_methods(model, names, by_name), f"{type(model).__name__}.residual_branches()"
    else:
        branches, how = _discover_blocks(model, names), "conv1/conv2 blocks with a downsample attribute"
    for b in branches:
        if not b.layers:
            raise InitlabError(f"residual branch {b.name or '<root>'} of {type(model).__name__} has no "
                               "parameterized layer; a branch needs at least one Linear/Conv layer")
    return Structure(type(model).__name__, branches, _output(model, names), how if branches else "none found",
                     _input(model, names))


def needs_branches(scheme: str, structure: Structure) -> None:
    """Refuse, in one line, a scheme that needs residual branches on a model without them."""
    if not structure.branches:
        raise InitlabError(f"{scheme} needs residual branches; model {structure.model_type} has none: "
                           "use a resnet-family model or expose residual_branches()")
