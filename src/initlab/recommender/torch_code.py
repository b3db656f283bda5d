"""The code that applies a scheme: ``initlab.apply`` and, where torch has it, plain ``torch.nn.init``.

:func:`apply_lines` is the one line with initlab; :func:`torch_lines` the loop over a
model's Linear and Conv layers that draws the same law with ``torch.nn.init`` alone (or
``None`` when torch has no equivalent: LSUV, Fixup, ZerO, SkipInit, delta-orthogonal,
GradInit, MetaInit, muP, and plugins' schemes). The correspondences, with
``fan_in = w[0].numel()`` and ``fan_out = w.shape[0] * w[0, 0].numel()`` (torch's fans of
a Linear ``[out, in]`` or Conv ``[out, in/groups, *k]`` weight):

=========================  =============================================================
initlab scheme             torch.nn.init
=========================  =============================================================
zeros / ones / constant    ``zeros_`` / ``ones_`` / ``constant_``
uniform_0_1, uniform       ``uniform_(w, a, b)``
normal, trunc_normal       ``normal_(w, mean, std)``, ``trunc_normal_(w, mean, std, a, b)``
uniform_recipe             ``kaiming_uniform_(w, a=math.sqrt(5))``: U(+-1/sqrt(fan_in))
normal_recipe, lecun_*     ``kaiming_normal_`` / ``kaiming_uniform_(w, nonlinearity="linear")``
glorot_*, keras_default    ``xavier_normal_`` / ``xavier_uniform_(w, gain=g)``
he_*                       ``kaiming_normal_`` / ``kaiming_uniform_(w, a, mode, nonlinearity)``
*_truncated_normal,        ``trunc_normal_(w, std=s/0.8796, a=-2 std, b=2 std)`` with
flax_default, variance_*   ``s^2 = scale / fan`` (Keras' variance-corrected truncated normal)
orthogonal                 ``orthogonal_(w, gain=g)``
identity / dirac / sparse  ``eye_`` / ``dirac_`` / ``sparse_`` (2-d / conv / 2-d weights)
torch_default              ``m.reset_parameters()`` (torch's own weight and bias init)
=========================  =============================================================

Biases follow the scheme's rule: zeros for every scheme but ``torch_default``.
"""

from __future__ import annotations

from typing import Any, Sequence

from initlab.schemes import TRUNC_STD_CORRECTION, get_scheme
from initlab.schemes.gains import gain as initlab_gain

__all__ = ["NO_TORCH_EQUIVALENT", "apply_lines", "torch_lines", "weight_lines"]

#: What :func:`torch_lines`' callers say for a scheme torch cannot express.
NO_TORCH_EQUIVALENT = "no torch.nn.init equivalent"

#: The layer types the torch loop covers (what torch.nn.init's fans mean the same as initlab's).
COVERED = ("Linear", "Conv1d", "Conv2d", "Conv3d")

_FAN = {"fan_in": "w[0].numel()", "fan_out": "(w.shape[0] * w[0, 0].numel())",
        "fan_avg": "((w[0].numel() + w.shape[0] * w[0, 0].numel()) / 2)"}
# torch.nn.init.calculate_gain knows these (initlab's gelu/silu gains are its own)
_TORCH_GAINS = ("linear", "conv1d", "conv2d", "conv3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu")


def _g(x: float) -> str:
    """A float literal, to 12 significant digits (``2.0``, ``0.01``, ``1.7777777778``)."""
    text = f"{float(x):.12g}"
    return text if any(c in text for c in ".en") else text + ".0"


def _vs_lines(scale: str, mode: str, distribution: str) -> list[str]:
    """``Var(w) = scale / fan(mode)`` drawn as *distribution* (``uniform``, ``normal`` or the
    variance-corrected ``truncated_normal``), for a weight ``w``."""
    var = f"{scale} / {_FAN[mode]}"
    if distribution == "uniform":
        return [f"bound = math.sqrt(3.0 * {var})", "torch.nn.init.uniform_(w, -bound, bound)"]
    if distribution == "normal":
        return [f"torch.nn.init.normal_(w, 0.0, math.sqrt({var}))"]
    return [f"std = math.sqrt({var}) / {TRUNC_STD_CORRECTION!r}",
            "torch.nn.init.trunc_normal_(w, 0.0, std, -2.0 * std, 2.0 * std)"]


def _kaiming(fn: str, a: float, mode: str, nonlinearity: str) -> list[str] | None:
    nl = nonlinearity.lower()
    if nl == "leaky_relu" and a == 0.0:
        nl = "relu"
    if nl not in _TORCH_GAINS:  # gelu, silu: initlab's own second-moment gains
        g = initlab_gain(nonlinearity, a)
        return _vs_lines(_g(g * g), mode, "uniform" if fn == "uniform" else "normal")
    args = ["w"]
    if nl == "leaky_relu":
        args.append(f"a={_g(a)}")
    if mode != "fan_in":
        args.append(f'mode="{mode}"')
    args.append(f'nonlinearity="{nl}"')
    return [f"torch.nn.init.kaiming_{fn}_({', '.join(args)})"]


def weight_lines(spec: Any) -> list[str] | None:
    """The statements drawing one Linear/Conv weight ``w`` as scheme *spec* does (the
    ``torch.nn.init`` functions work without gradients themselves), or ``None`` when torch
    has no equivalent. ``torch_default`` gives ``["m.reset_parameters()"]``."""
    s = get_scheme(spec)
    n, p = s.name, dict(s.params)
    if n == "zeros":
        return ["torch.nn.init.zeros_(w)"]
    if n == "ones":
        return ["torch.nn.init.ones_(w)"]
    if n == "constant":
        return [f"torch.nn.init.constant_(w, {_g(p['value'])})"]
    if n == "uniform_0_1":
        return ["torch.nn.init.uniform_(w, 0.0, 1.0)"]
    if n == "uniform_centered":
        return ["torch.nn.init.uniform_(w, -0.5, 0.5)"]
    if n == "uniform":
        return [f"torch.nn.init.uniform_(w, {_g(p['a'])}, {_g(p['b'])})"]
    if n == "normal":
        return [f"torch.nn.init.normal_(w, {_g(p['mean'])}, {_g(p['std'])})"]
    if n == "trunc_normal":
        return [f"torch.nn.init.trunc_normal_(w, {_g(p['mean'])}, {_g(p['std'])}, {_g(p['a'])}, {_g(p['b'])})"]
    if n == "truncated_normal":  # bounds in std units around the mean
        m, sd = p["mean"], p["std"]
        return [f"torch.nn.init.trunc_normal_(w, {_g(m)}, {_g(sd)}, {_g(m + p['lower'] * sd)}, "
                f"{_g(m + p['upper'] * sd)})"]
    if n == "uniform_recipe":
        return ["torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5))"]
    if n in ("normal_recipe", "lecun_normal"):
        return ['torch.nn.init.kaiming_normal_(w, nonlinearity="linear")']
    if n == "lecun_uniform":
        return ['torch.nn.init.kaiming_uniform_(w, nonlinearity="linear")']
    if n in ("keras_default", "glorot_uniform", "glorot_normal"):
        fn = "normal" if n == "glorot_normal" else "uniform"
        gain = float(p.get("gain", 1.0))
        return [f"torch.nn.init.xavier_{fn}_(w" + (f", gain={_g(gain)})" if gain != 1.0 else ")")]
    if n in ("he_uniform", "he_normal"):
        return _kaiming(n.removeprefix("he_"), float(p["a"]), p["mode"], p["nonlinearity"])
    if n == "he_truncated_normal":
        g = initlab_gain(p["nonlinearity"], float(p["a"]))
        return _vs_lines(_g(g * g), p["mode"], "truncated_normal")
    if n == "glorot_truncated_normal":
        return _vs_lines(_g(float(p["gain"]) ** 2), "fan_avg", "truncated_normal")
    if n in ("lecun_truncated_normal", "flax_default"):
        return _vs_lines("1.0", "fan_in", "truncated_normal")
    if n == "variance_scaling":
        return _vs_lines(_g(p["scale"]), p["mode"], p["distribution"])
    if n == "keras_variance_scaling":  # Keras' words: "normal" is the truncated, corrected normal
        dist = {"untruncated_normal": "normal", "uniform": "uniform"}.get(p["distribution"], "truncated_normal")
        return _vs_lines(_g(p["scale"]), p["mode"], dist)
    if n == "orthogonal":
        gain = float(p["gain"])
        return ["torch.nn.init.orthogonal_(w" + (f", gain={_g(gain)})" if gain != 1.0 else ")")]
    if n == "identity" and float(p["gain"]) == 1.0:
        return ["torch.nn.init.eye_(w)"]
    if n == "dirac":
        groups = int(p["groups"])
        return ["torch.nn.init.dirac_(w" + (f", groups={groups})" if groups != 1 else ")")]
    if n == "sparse":
        return [f"torch.nn.init.sparse_(w, {_g(p['sparsity'])}, {_g(p['std'])})"]
    if n == "torch_default":
        return ["m.reset_parameters()"]
    return None


def apply_lines(spec: Any, seed: int | None = 0) -> list[str]:
    """``import initlab`` and the ``initlab.apply`` call (data-dependent schemes need a batch)."""
    s = get_scheme(spec)
    args = [f'"{s.spec}"'] + ([f"seed={seed}"] if seed is not None else [])
    if s.requires_data:
        args.append("data=x[:256]")
    line = f"initlab.apply(model, {', '.join(args)})"
    if s.requires_data:
        line += "  # x: a batch of training inputs"
    return ["import initlab", line]


def torch_lines(spec: Any, layer_types: Sequence[str] = ("Linear",)) -> list[str] | None:
    """A loop over ``model.modules()`` initializing each layer of the covered types among
    *layer_types* (type names as ``type(m).__name__``) as *spec* does, or ``None`` when torch
    has no equivalent. Layers of other types the model has are named in a comment."""
    body = weight_lines(spec)
    if body is None:
        return None
    covered = [t for t in COVERED if t in layer_types] or ["Linear"]
    others = sorted(set(layer_types) - set(COVERED))
    types = ", ".join(f"torch.nn.{t}" for t in covered)
    lines = ["import math", "import torch", "", "for m in model.modules():",
             f"    if isinstance(m, ({types},)):"]
    if body == ["m.reset_parameters()"]:
        lines.append("        m.reset_parameters()")
    else:
        lines.append("        w = m.weight")
        lines += [f"        {line}" for line in body]
        lines += ["        if m.bias is not None:", "            torch.nn.init.zeros_(m.bias)"]
    if not any("math." in line for line in body):
        lines.remove("import math")
    if others:
        lines.append(f"# initlab.apply also initializes the {', '.join(others)} layers; these lines cover "
                     f"{', '.join(covered)} only")
    return lines
