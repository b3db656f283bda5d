"""muP, the maximal update parametrization, relative to a base width.

Sources: Yang & Hu 2021, "Tensor Programs IV: Feature Learning in Infinite-Width Neural
Networks" (ICML) define muP; Yang et al. 2022, "Tensor Programs V: Tuning Large Neural
Networks via Zero-Shot Hyperparameter Transfer" (arXiv:2203.03466), **Table 3** gives it
for general networks trained by SGD and Adam, in the formulation that needs *no
architecture change* (no output multiplier; Tables 8/9 move the readout's 1/fan_in into a
forward multiplier instead, as ``mup.MuReadout`` does). The reference implementation
(microsoft/mup: ``set_base_shapes``, ``MuAdam``, ``MuSGD``) applies the table relative to a
*base* model: a dimension is *infinite* when it scales with width, and every rule is
multiplied by that dimension's ratio to the base (so at the base width muP is the base
model's standard parametrization, SP).

Table 3 (muP; SP in parentheses where it differs), per tensor:

===========  ==========================  ========================  ====================
             input weights & all biases  output weights (readout)  hidden weights
===========  ==========================  ========================  ====================
Init. Var.   1/fan_in                    1/fan_in^2 (1/fan_in)     1/fan_in
SGD LR       fan_out (1)                 1/fan_in (1)              1
Adam LR      1                           1/fan_in (1)              1/fan_in (1)
===========  ==========================  ========================  ====================

"Input weights" map a finite dimension (pixels, the constant 1 of a bias) to an infinite
one, "output weights" an infinite one to a finite one (the classes), "hidden weights"
infinite to infinite. Relative to the base, with the width multiplier
``m = width / base_width`` (every hidden width of the model scaled by the same ``m``, as
initlab's families scale), the rules initlab applies are:

=================================  ==============================  ===========  ============
parameter                          init                            Adam lr x    SGD lr x
=================================  ==============================  ===========  ============
input weights (first layer)        the base scheme (1/fan_in)      1            m
hidden weights (Linear/Conv)       the base scheme (1/fan_in)      1/m          1
readout weight (output layer)      0 (``readout="zero"``), or      1/m          1/m
                                   base variance / m (``scaled``)
biases of width-sized layers,      the base scheme's bias rule     1            m
  normalization gains and biases   (biases 0; norms untouched)
readout bias, scalar parameters    0 / untouched                   1            1
=================================  ==============================  ===========  ============

(The hidden SGD rule is ``fan_out/fan_in`` relative, which is 1 under uniform scaling, as
``MuSGD`` divides by ``fanin_fanout_mult_ratio``; a convolution's fan_in ``c_in * k^2``
scales as its channels, so the same rules hold with channels as width.)
The readout's 1/fan_in^2 variance is ``(1/fan_in) / m`` relative to the base. Initializing
the readout at zero is also muP (its init is dominated by its first update; TP5 appendix
D.2 recommends it, and ``mup.MuReadout(readout_zero_init=True)`` zeroes its weight and
bias): that is the default here (``readout="zero"``, weight and bias 0). The mup package's
``MuReadout`` is the Table 8/9 variant instead (forward multiplier 1/m on the readout,
SP variance, its Adam lr not divided): the same dynamics up to constants, but it changes
the architecture, which initlab's families do not.

``width`` is the output width of the model's **input layer** (the first Linear/Conv:
``initlab.structure``'s ``input``, its out_features / out_channels), so ``base_width``
is the first hidden width of the base model; default ``base_width = 128`` = 2^7, the
smallest width of ``initlab coordcheck``'s sweep, so the sweep starts at SP. The base
scheme (``base``, default ``he_normal``) gives the 1/fan_in variances (with its gain).

At ``width == base_width`` (m = 1) every lr multiplier is 1 and every init is the base
scheme's, except the zero readout (``readout="scaled"``: exactly the base scheme).

The init is what :func:`initlab.apply` does (a model-level scheme: the readout gets its own
:class:`~initlab.schemes.structured.Role`); the learning-rate multipliers are a property
of the *training*: :meth:`MuPScheme.lr_multipliers` gives one per parameter name, and
initlab's trainers (``initlab run``, the generic trainer, ``initlab coordcheck``) multiply
each parameter's learning rate by it (``initlab.engine.multipliers``). A model initialized
with ``mup`` but trained with one learning rate for all parameters is *not* muP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from initlab.errors import InitlabError
from initlab.schemes.core import Sampler, Scheme
from initlab.schemes.registry import AT_LEAST_ONE, Entry
from initlab.schemes.laws import Law
from initlab.schemes.structured import PlaceLaw, Plan, Role, StructuredScheme, _get

__all__ = ["MUP", "MUP_BASES", "MuPScheme", "MuPRule", "mup_entry", "width_multiplier", "OPTIMIZERS"]

MUP = ("Yang et al. 2022, 'Tensor Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter "
       "Transfer' (arXiv:2203.03466), Table 3 (muP of Yang & Hu 2021, 'Tensor Programs IV', ICML), relative "
       "to a base width as microsoft/mup's set_base_shapes / MuAdam / MuSGD")
#: Base schemes muP may scale (per-weight, fan_in based, zero biases).
MUP_BASES = ("he_normal", "he_uniform", "lecun_normal", "lecun_uniform")
#: Optimizers the multipliers are defined for.
OPTIMIZERS = ("adam", "sgd")
_WEIGHT = (nn.Linear, nn.modules.conv._ConvNd)


@dataclass(frozen=True)
class MuPRule:
    """One row of the relative table: the place's name and its lr multipliers."""

    place: str
    adam: float
    sgd: float

    def factor(self, optimizer: str) -> float:
        return self.adam if optimizer == "adam" else self.sgd


def rules(m: float) -> dict[str, MuPRule]:
    """The relative table (module docstring) for width multiplier *m*."""
    return {
        "input": MuPRule("input weights", 1.0, m),
        "hidden": MuPRule("hidden weights", 1.0 / m, 1.0),
        "readout": MuPRule("readout weight", 1.0 / m, 1.0 / m),
        "vector": MuPRule("width-sized biases and gains", 1.0, m),
        "finite": MuPRule("readout bias and scalars", 1.0, 1.0),
    }


def _width(module: nn.Module) -> int:
    if isinstance(module, nn.Linear):
        return int(module.out_features)
    if isinstance(module, nn.modules.conv._ConvNd):
        return int(module.out_channels)
    w = getattr(module, "weight", None)
    if w is None or w.dim() < 2:
        raise InitlabError(f"mup: the input layer {type(module).__name__} has no weight matrix to read the width from")
    return int(w.shape[0])


def width_multiplier(structure: Any, base_width: int) -> tuple[float, int]:
    """``(m, width)``: the input layer's output width over *base_width*."""
    if getattr(structure, "input", None) is None:
        raise InitlabError(f"mup needs the model's input layer (a first Linear/Conv); {structure.model_type} "
                           "has none: expose input_layer()")
    width = _width(structure.input[1])
    return width / float(base_width), width


def _check_optimizer(optimizer: str) -> str:
    if optimizer not in OPTIMIZERS:
        raise InitlabError(f"mup defines learning-rate multipliers for {' and '.join(OPTIMIZERS)}, got "
                           f"optimizer {optimizer!r}; use adam or sgd")
    return optimizer


class MuPScheme(StructuredScheme):
    """muP (see the module docstring): the base scheme everywhere but the readout, which is
    0 (or the base variance / m); per-parameter lr multipliers by :meth:`lr_multipliers`."""

    needs_branches = False
    #: its own law is only the base scheme's (its readout is its own): ``identify`` skips it
    per_weight_law = False
    #: what ``initlab schemes mup`` says the scheme needs
    needs_text = "the model's input and output layers, with a hidden width between them"

    def _structure_ok(self, structure: Any) -> tuple[float, int]:
        if structure.output is None:
            raise InitlabError(f"mup needs the model's output layer (the readout); {structure.model_type} has "
                               "none found: expose output_layer() or name it fc/head/classifier")
        if structure.input is not None and structure.input[1] is structure.output[1]:
            raise InitlabError(f"mup needs a hidden width: {structure.model_type}'s input layer is its output "
                               "layer (a linear model); use a model with at least one hidden layer")
        return width_multiplier(structure, int(self.params["base_width"]))

    def law(self, shape, **kw) -> Law:  # type: ignore[override]
        """The base scheme's law, named for where it holds (the input and hidden weights; the
        readout is 0 or base / m): a model's layers get their role's law (:meth:`plan`)."""
        law = self.base_scheme().law(shape, **kw)
        return PlaceLaw(law.family, law.mean, law.var, law.mu4, dict(law.params),
                        where="mup: input and hidden weights; the readout is its own")

    def base_scheme(self) -> Scheme:
        return _get(self.params["base"])

    def plan(self, structure: Any) -> Plan:
        m, width = self._structure_ok(structure)
        base = self.base_scheme()
        plan = Plan(Role(f"input/hidden: {base.name}", base))
        out_name, out = structure.output
        if self.params["readout"] == "zero":
            plan.roles[id(out)] = Role("readout: 0 (muP)", _get("zeros"), zero_bias=True)
        else:
            s = base.sampler
            scaled = _get("variance_scaling", scale=s.scale / m, mode=s.mode,  # type: ignore[attr-defined]
                          distribution=s.distribution)  # type: ignore[attr-defined]
            plan.roles[id(out)] = Role(f"readout: {base.name} / m = /{m:.4g}", scaled, zero_bias=True)
        r = rules(m)
        plan.notes.append(
            f"mup: width {width} = m x base_width {self.params['base_width']}, m = {m:.4g}; input layer "
            f"{structure.input[0]}, readout {out_name}; lr x (Adam / SGD): input weights "
            f"{r['input'].adam:.4g} / {r['input'].sgd:.4g}, hidden weights {r['hidden'].adam:.4g} / "
            f"{r['hidden'].sgd:.4g}, readout {r['readout'].adam:.4g} / {r['readout'].sgd:.4g}, biases "
            f"{r['vector'].adam:.4g} / {r['vector'].sgd:.4g} (readout bias 1 / 1): initlab's trainers apply "
            "them (initlab.engine.multipliers)")
        return plan

    def param_places(self, structure: Any, model: nn.Module) -> dict[str, str]:
        """Each parameter's place in the table: ``input``, ``hidden``, ``readout``,
        ``vector`` or ``finite`` (module docstring), by parameter name."""
        self._structure_ok(structure)
        inp, out = structure.input[1], structure.output[1]
        places: dict[str, str] = {}
        for mname, mod in model.named_modules():
            for pname, p in mod.named_parameters(recurse=False):
                full = f"{mname}.{pname}" if mname else pname
                if mod is out:
                    places[full] = "readout" if p.dim() >= 2 else "finite"
                elif p.dim() >= 2:
                    places[full] = "input" if mod is inp else "hidden"
                elif p.numel() > 1:
                    places[full] = "vector"
                else:
                    places[full] = "finite"
        return places

    def lr_multipliers(self, structure: Any, model: nn.Module, optimizer: str) -> dict[str, float]:
        """``{parameter name: lr multiplier}`` for *optimizer* (``"adam"`` or ``"sgd"``),
        for every entry of ``model.named_parameters()``."""
        _check_optimizer(optimizer)
        m, _ = self._structure_ok(structure)
        r = rules(m)
        return {name: r[place].factor(optimizer) for name, place in self.param_places(structure, model).items()}


def _base_sampler(base_width: int, base: str, readout: str) -> Sampler:
    return _get(base).sampler


def mup_entry() -> Entry:
    """The registry entry of ``mup`` (registered by :mod:`initlab.schemes`)."""
    return Entry(
        "mup", _base_sampler, {"base_width": 128, "base": "he_normal", "readout": "zero"},
        "muP (TP5 Table 3) relative to base_width, m = width / base_width (width: the input layer's outputs): "
        "input and hidden weights the base scheme (Var = g^2/fan_in), readout 0 (readout=scaled: base Var / m); "
        "lr x: Adam input 1, hidden 1/m, readout 1/m, biases 1; SGD input m, hidden 1, readout 1/m, "
        "width-sized biases m",
        MUP, group="structured", scheme_class=MuPScheme, aliases=("mup_table3",),
        domains={"base_width": AT_LEAST_ONE, "base": MUP_BASES, "readout": ("zero", "scaled")},
        note="model-level (needs the input and output layers, initlab.structure); the lr multipliers act only "
             "in training that applies them: initlab run / coordcheck do, a plain torch optimizer needs "
             "initlab.engine.multipliers.param_groups")
