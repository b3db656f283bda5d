"""``initlab.apply``: initialize every supported layer of a model, in place, with a record.

Draws happen on the CPU from one ``torch.Generator`` seeded with ``seed``, in module
registration order (weight blocks, then that weight's biases), and are copied to the
parameter's device: the same seed gives the same weights on CPU and CUDA, and a scheme
torch also has gives the same values as ``torch.nn.init`` with that generator.

Model-level schemes (Fixup, ZerO, SkipInit: :class:`~initlab.schemes.structured.StructuredScheme`)
first read the model's structure (:func:`initlab.structure.find_structure`: residual
branches, output layer) and get a per-layer plan from the scheme: each weight is drawn by
its role's scheme (``LayerRecord.role`` names it), the plan's scalar parameters are set,
and the plan's notes go to ``InitReport.notes``. A scheme that needs residual branches
refuses a model without them in one line.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from initlab.errors import InitlabError
from initlab.layers import WeightSlot, forward_layers, walk, with_rules
from initlab.schemes import BIAS_RULES, LSUVStep, Scheme, get_scheme
from initlab.schemes.fans import fans as tensor_fans
from initlab.schemes.optimized import OptimizedRecord, OptimizedScheme
from initlab.schemes.structured import Plan
from initlab.structure import find_structure, needs_branches


@dataclass
class LayerRecord:
    """What :func:`apply` did to one weight: shapes, fans, the law, and what came out."""

    name: str
    kind: str
    shape: tuple[int, ...]
    blocks: int
    fan_in: int
    fan_out: int
    family: str
    expected_mean: float
    expected_std: float
    realized_mean: float
    realized_std: float
    bias: str
    #: a model-level scheme's name for the layer's place ("branch last: 0", ...); "" otherwise
    role: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d


@dataclass
class InitReport:
    """The per-layer record of one :func:`apply` call."""

    scheme: str
    seed: int | None
    layers: list[LayerRecord] = field(default_factory=list)
    unsupported: list[tuple[str, str, str]] = field(default_factory=list)
    lsuv: list[LSUVStep] = field(default_factory=list)
    #: what a model-level scheme found and did (structure, parameters it could not set)
    notes: list[str] = field(default_factory=list)
    #: what an optimized scheme (gradinit, metainit) fitted: per-tensor scales, iterations, objective
    optimized: OptimizedRecord | None = None

    def __iter__(self):
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme, "seed": self.seed,
            "layers": [r.to_dict() for r in self.layers],
            "unsupported": [{"name": n, "type": t, "reason": r} for n, t, r in self.unsupported],
            "lsuv": [asdict(s) for s in self.lsuv],
            "notes": list(self.notes),
            "optimized": None if self.optimized is None else self.optimized.to_dict(),
        }

    def __repr__(self) -> str:
        return (f"InitReport(scheme={self.scheme!r}, seed={self.seed!r}, {len(self.layers)} layers"
                + (f", {len(self.unsupported)} not initialized" if self.unsupported else "") + ")")

    def _repr_html_(self) -> str:
        """A table of what was drawn per layer, for notebooks (realized std in red when it
        is more than 20% off the expected one on a layer of 100+ entries)."""
        import math

        from initlab.display import Mark, html_table

        def realized(r: LayerRecord) -> Any:
            n = math.prod(r.shape) if r.shape else 0
            if n < 100 or not (r.expected_std > 0) or not math.isfinite(r.realized_std):
                return r.realized_std
            return Mark(r.realized_std, abs(r.realized_std / r.expected_std - 1) <= 0.2)

        rows = [(r.name, r.kind, r.shape, r.fan_in, r.fan_out, r.family, r.expected_std, realized(r),
                 r.bias, r.role) for r in self.layers]
        notes = [f"not initialized: {n} ({t}): {why}" for n, t, why in self.unsupported]
        notes += [f"note: {note}" for note in self.notes]
        return html_table(f"initlab.apply: scheme {self.scheme}, seed {self.seed}",
                          ["layer", "kind", "shape", "fan_in", "fan_out", "family", "expected std",
                           "realized std", "bias", "role"], rows, notes=notes)

    def __str__(self) -> str:
        head = f"{'layer':<28} {'kind':<10} {'shape':<16} {'fan_in':>7} {'fan_out':>7} " \
               f"{'expected std':>12} {'realized std':>12}  bias"
        lines = [f"initlab.apply: scheme {self.scheme}, seed {self.seed}", head]
        for r in self.layers:
            lines.append(f"{r.name:<28} {r.kind:<10} {'x'.join(map(str, r.shape)):<16} {r.fan_in:>7} "
                         f"{r.fan_out:>7} {r.expected_std:>12.5g} {r.realized_std:>12.5g}  {r.bias}"
                         + (f"  ({r.role})" if r.role else ""))
        for n, t, why in self.unsupported:
            lines.append(f"not initialized: {n} ({t}): {why}")
        lines.extend(f"note: {note}" for note in self.notes)
        if self.optimized is not None:
            o = self.optimized
            lines.append(f"{o.scheme}: {o.iterations} iterations in {o.seconds:.2f} s (stopped by {o.stopped_by}); "
                         f"{o.objective}: {o.objective_before:.4g} -> {o.objective_after:.4g}; loss "
                         f"{o.loss_before:.4g} -> {o.loss_after:.4g} (labels: {o.labels})")
            lines.extend(f"  scale {m:.4g}  {n}" for n, m in zip(o.tensors, o.scales))
        return "\n".join(lines)


def _generator(seed: int | None, generator: torch.Generator | None) -> torch.Generator | None:
    if generator is not None and seed is not None:
        raise InitlabError("give either seed= or generator=, not both")
    if generator is not None:
        if generator.device.type != "cpu":
            raise InitlabError("initlab draws on the CPU: pass a CPU torch.Generator (or a seed)")
        return generator
    if seed is None:
        return None
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InitlabError(f"seed must be a non-negative integer, got {seed!r}")
    return torch.Generator().manual_seed(seed)


def _draw(scheme: Scheme, target: torch.Tensor, gen: torch.Generator | None,
          fans: tuple[int, int] | None) -> None:
    dtype = target.dtype if target.dtype in (torch.float32, torch.float64) else torch.float32
    tmp = torch.empty(target.shape, dtype=dtype)
    scheme.init_(tmp, generator=gen, fans=fans)
    target.copy_(tmp)


def _bias_rule(scheme: Scheme, bias: Any) -> tuple[str, Scheme | float | None]:
    """Normalize apply's ``bias=`` into (label, action)."""
    if bias is None:
        bias = scheme.bias
    if isinstance(bias, bool) or bias is None:
        raise InitlabError(f"bias must be one of {', '.join(BIAS_RULES)}, a number or a scheme, got {bias!r}")
    if isinstance(bias, (int, float)):
        return f"constant {float(bias):g}", float(bias)
    if isinstance(bias, str) and bias in BIAS_RULES:
        return bias, None
    s = get_scheme(bias)
    if s.fan_based or s.requires_data:
        raise InitlabError(f"bias scheme {s.spec!r} needs fans or data; use zeros, a constant, uniform or normal")
    return s.spec, s


def _init_bias(t: torch.Tensor, label: str, action: Scheme | float | None, fan_in: int,
               gen: torch.Generator | None) -> None:
    if label == "keep":
        return
    if label == "zeros":
        t.zero_()
    elif label == "fan_in_uniform":
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        tmp = torch.empty(t.shape, dtype=torch.float32).uniform_(-bound, bound, generator=gen)
        t.copy_(tmp)
    elif isinstance(action, float):
        t.fill_(action)
    else:
        _draw(action, t, gen, None)


def slot_fans(slot: WeightSlot) -> tuple[int, int]:
    """Fans used for one block of a slot (see :mod:`initlab.schemes.fans`)."""
    shape = slot.block_shape
    if len(shape) < 2:
        return 1, 1
    return tensor_fans(shape, slot.fan_layout)  # type: ignore[arg-type]


def _fit_tensors(slots: list[WeightSlot]) -> list[tuple[str, torch.Tensor, bool]]:
    """``(name, parameter, is_weight)`` of every initialized tensor, for an optimized scheme."""
    out: list[tuple[str, torch.Tensor, bool]] = []
    for slot in slots:
        out.append((slot.name, slot.param, True))
        prefix = f"{slot.module_name}." if slot.module_name else ""
        out.extend((prefix + b, getattr(slot.module, b), False) for b in slot.biases)
    return out


def _rule_notes(slots: list[WeightSlot]) -> list[str]:
    """One note per distinct layer rule (:mod:`initlab.schemes.dialects`), naming its weights."""
    by_rule: dict[str, list[str]] = {}
    for slot in slots:
        if slot.rule:
            by_rule.setdefault(slot.rule, []).append(slot.name)
    return [f"{rule}: {', '.join(names)}" for rule, names in by_rule.items()]


def model_plan(model: nn.Module, scheme: Scheme) -> Plan | None:
    """A model-level scheme's :class:`~initlab.schemes.structured.Plan` for *model*
    (``None`` for per-weight schemes); refuses a model without the structure it needs."""
    if not getattr(scheme, "model_level", False):
        return None
    structure = find_structure(model)
    if scheme.needs_branches:  # type: ignore[attr-defined]
        needs_branches(scheme.name, structure)
    return scheme.plan(structure)  # type: ignore[attr-defined]


def apply(model: nn.Module, scheme: "str | Scheme", *, bias: Any = None, seed: int | None = None,
          generator: torch.Generator | None = None, include: Any = None, data: Any = None) -> InitReport:
    """Initialize every supported layer of *model* in place with *scheme*.

    Args:
        model: any ``nn.Module``.
        scheme: a name, spec string (``"uniform(a=-0.5, b=0.5)"``) or :class:`Scheme`.
        bias: ``None`` (the scheme's rule: zeros, or U(+-1/sqrt(fan_in)) for torch_default),
            ``"zeros"``, ``"keep"``, ``"fan_in_uniform"``, a number, or a scheme for biases.
        seed / generator: where the randomness comes from (``None``: torch's global RNG).
        include: restrict to modules matching a glob on the module name, a module type,
            a list of those, or a callable ``(name, module) -> bool``.
        data: a batch the model can run on; required by data-dependent schemes (LSUV; GradInit
            and MetaInit also take ``(inputs, targets)``, see :mod:`initlab.schemes.optimized`).

    Returns:
        :class:`InitReport` with one :class:`LayerRecord` per weight and the list of
        parameterized modules that were not initialized (never skipped silently).
    """
    s = get_scheme(scheme)
    if not isinstance(model, nn.Module):
        raise InitlabError(f"apply needs a torch nn.Module, got {type(model).__name__}")
    if s.requires_data and data is None:
        raise InitlabError(f"scheme {s.spec!r} is data-dependent: pass data=<a batch of inputs>, "
                           "e.g. 256 training examples")
    gen = _generator(seed, generator)
    bias_label, bias_action = _bias_rule(s, bias)
    slots, unsupported = walk(model, include)
    if not slots:
        raise InitlabError(f"{type(model).__name__} has no layer initlab can initialize "
                           "(Linear, Conv, ConvTranspose, Embedding, RNN/LSTM/GRU); check include=")
    empty = next((slot for slot in slots if slot.param.numel() == 0), None)
    if empty is not None:
        raise InitlabError(f"{empty.name} has shape {tuple(empty.param.shape)}: no weights to "
                           "initialize; give every layer at least one unit")
    plan = model_plan(model, s)
    report = InitReport(s.spec, seed, unsupported=unsupported, notes=list(plan.notes) if plan else [])
    if plan is None:
        slots = with_rules(slots, s)
        report.notes.extend(_rule_notes(slots))
    own_bias = bias is None  # the scheme's (and its layer rules') bias, not the caller's
    with torch.no_grad():
        for slot in slots:
            fi, fo = slot_fans(slot)
            role = plan.role_for(slot.module) if plan else None
            for block in slot.block_views():
                _draw(role.scheme if role else (slot.scheme or s), block, gen, (fi, fo))
            if slot.zero_padding:  # torch's Embedding.reset_parameters: _fill_padding_idx_with_zero
                slot.param.data[slot.module.padding_idx].zero_()
            for b in slot.biases:
                if role is not None and role.zero_bias:
                    getattr(slot.module, b).data.zero_()
                elif own_bias and slot.bias_scheme is not None:
                    _draw(slot.bias_scheme, getattr(slot.module, b).data, gen, None)
                else:
                    _init_bias(getattr(slot.module, b).data, bias_label, bias_action, fi, gen)
            if own_bias and slot.forget_bias is not None:  # Keras unit_forget_bias: gates (i, f, c, o)
                t = getattr(slot.module, slot.biases[0]).data
                t.view(4, -1)[1].fill_(slot.forget_bias)
        for _name, p, value in plan.fixed if plan else ():
            p.data.fill_(value)
        if isinstance(s, OptimizedScheme):
            report.optimized = s.fit_(model, data, _fit_tensors(slots), gen)
        elif s.requires_data:
            report.lsuv = s.fit_(model, data, forward_layers(slots))  # type: ignore[attr-defined]
    for slot in slots:
        fi, fo = slot_fans(slot)
        role = plan.role_for(slot.module) if plan else None
        law = (role.scheme if role else (slot.scheme or s)).law(slot.block_shape, fans=(fi, fo))
        w = slot.param.detach().double()
        bias_text = ("zeros" if role is not None and role.zero_bias else
                     slot.bias_scheme.spec if own_bias and slot.bias_scheme is not None else bias_label)
        if own_bias and slot.forget_bias is not None:
            bias_text += f", forget gate {slot.forget_bias:g}"
        bias_text = bias_text if slot.biases else "none"
        report.layers.append(LayerRecord(
            slot.name, slot.kind, tuple(slot.param.shape), slot.blocks, fi, fo, law.family,
            law.mean, law.std, float(w.mean()), float(w.std(unbiased=False)), bias_text,
            role.role if role else ""))
    return report
