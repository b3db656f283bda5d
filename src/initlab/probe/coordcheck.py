"""The coordinate check of muP (Yang et al. 2022, "Tensor Programs V", section 4 and
Figure 5; microsoft/mup ``coord_check.py``): how the size of each layer's activations,
and of their change by training, depends on width over the first steps of training.

For each parametrization (``sp``: the base scheme with one learning rate; ``mup``: the
``mup`` scheme with its per-parameter learning rates, :mod:`initlab.schemes.mup`), each
width ``w`` and each seed, a model of the family at width ``w`` is initialized and trained
by ``steps`` steps of Adam (or SGD) at a fixed learning rate on the same batches
(Fashion-MNIST or a synthetic Gaussian set). Before the first step and after each step,
every weight layer's output ``x_t`` (Linear/Conv outputs: the input layer, the hidden
layers, the logits) is taken on a fixed batch, in eval mode, and two quantities are
recorded, averaged over the seeds:

* the **change** ``std(x_t - x_0)``, the standard deviation of the coordinates (over batch,
  units and positions) of the difference from initialization: what TP5's Figure 5 plots
  ("the standard deviation of the coordinates of x_t - x_0"). This is the measured
  quantity of the verdict. muP's claim is about the update: under SP the *initial*
  coordinates are width-independent by construction (``Var = 1/fan_in``), so ``|x_t|`` is
  dominated by ``x_0`` until the update outgrows it, and a check on ``|x_t|`` separates
  only where the learning rate is large enough for that at the smallest width; the change
  grows as ``width^1`` (Adam, hidden and output layers) or ``width^{1/2}`` (SGD, hidden)
  at any learning rate, which is what muP removes;
* the **size** ``mean |x_t|`` (microsoft/mup's ``l1``, for reference; reported, not judged).

The verdict is the **slope** ``s`` of ``log std(x_t - x_0)`` against ``log width`` (least
squares over the widths) per layer at the last step. Thresholds, fixed before any
measurement (and kept when the measured quantity became the change):

* a parametrization is **stable** when ``|s| <= STABLE_SLOPE = 0.2`` at every layer (muP's
  claim: every coordinate stays Theta(1) as width grows);
* it **blows up** when ``s >= GROWTH_SLOPE = 0.4`` at the output layer and at some hidden
  layer (SP with Adam: a hidden update moves ``z`` by ~ ``lr * fan_in``, so ``s`` tends to 1);
* the check **separates** SP from muP when muP is stable and SP blows up.

Family models at width ``w`` (``family_spec``): ``mlp``: ``hidden = [w] * depth`` (dropout 0);
``cnn``: ``depth`` conv layers of ``w`` channels; ``resnet``: ``depth`` blocks of width ``w``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from initlab.errors import InitlabError, UnknownNameError, suggest

__all__ = ["CoordCheckResult", "coordcheck", "family_spec", "parse_widths", "slope", "FAMILIES",
           "STABLE_SLOPE", "GROWTH_SLOPE", "DEFAULT_WIDTHS"]

#: |slope| at or below which a layer's activations are width-stable (stated before measuring).
STABLE_SLOPE = 0.2
#: slope at or above which a layer's activations clearly grow with width.
GROWTH_SLOPE = 0.4
DEFAULT_WIDTHS = tuple(2 ** k for k in range(7, 13))
FAMILIES = ("mlp", "cnn", "resnet")
PARAMETRIZATIONS = ("sp", "mup")


def parse_widths(text: str) -> tuple[int, ...]:
    """``"128,256,512"`` or ``"2^7..2^12"`` (every power of two between) as widths; at least
    two distinct positive widths, increasing."""
    t = text.replace(" ", "")
    m = re.fullmatch(r"2\^(\d+)\.\.2\^(\d+)", t)
    try:
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            widths = tuple(2 ** k for k in range(lo, hi + 1))
        else:
            widths = tuple(int(p) for p in t.split(","))
    except ValueError:
        widths = ()
    if len(widths) < 2 or any(w < 1 for w in widths) or list(widths) != sorted(set(widths)):
        raise InitlabError(f"widths must be at least two increasing positive integers like 128,256,512 or "
                           f"2^7..2^12, got {text!r}")
    return widths


def family_spec(family: str, width: int, depth: int, out_features: int = 10) -> Any:
    """The model spec of *family* at *width* (module docstring)."""
    from initlab.engine.families import spec_from_dict

    if family not in FAMILIES:
        raise UnknownNameError(f"coordcheck has no family {family!r}{suggest(family, list(FAMILIES))}; "
                               f"choose one of {', '.join(FAMILIES)}")
    if depth < 1:
        raise InitlabError(f"depth must be >= 1, got {depth}")
    if family == "mlp":
        return spec_from_dict({"hidden": [width] * depth, "dropout": 0.0, "out_features": out_features})
    if family == "cnn":
        return spec_from_dict({"kind": "cnn", "depth": depth, "channels": width, "out_features": out_features})
    return spec_from_dict({"kind": "resnet", "depth": depth, "width": width, "out_features": out_features})


def slope(widths: Sequence[int], values: Sequence[float]) -> float:
    """Least-squares slope of ``log values`` against ``log widths`` (NaN if a value is not
    positive and finite)."""
    if any(not (math.isfinite(v) and v > 0) for v in values):
        return float("nan")
    xs = [math.log(w) for w in widths]
    ys = [math.log(v) for v in values]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


@dataclass
class CoordCheckResult:
    """What :func:`coordcheck` measured: ``changes[p][layer][i][t]`` is ``std(x_t - x_0)``
    of *layer* under parametrization *p* at ``widths[i]`` after *t* steps (0 at t = 0) and
    ``coords[p][layer][i][t]`` its ``mean |x_t|`` (t = 0: at init), both averaged over the
    seeds; ``slopes[p][layer]`` the slope of the change at the last step (the verdict's)."""

    family: str
    widths: list[int]
    steps: int
    lr: float
    optimizer: str
    data: str
    seeds: int
    batch_size: int
    base: str
    mup: str
    layers: list[tuple[str, str]]  # (module name, place: input / hidden / output)
    coords: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)
    slopes: dict[str, dict[str, float]] = field(default_factory=dict)
    #: ``slopes_by_step[p][layer][t]``: the change's slope after t steps (the verdict reads t = steps
    #: only; NaN at t = 0, where the change is 0)
    slopes_by_step: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    changes: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)
    #: ``size_slopes_by_step[p][layer][t]``: the slope of ``log mean|x_t|`` (for reference)
    size_slopes_by_step: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    #: what the verdict's slopes are of
    measure: str = "std(x_t - x_0)"
    #: every step trained on the measured batch (microsoft/mup's ``fix_data``)
    fix_data: bool = False
    wall_s: float = 0.0

    def stable(self, p: str) -> bool:
        """Every layer's ``|slope| <= STABLE_SLOPE`` under *p*."""
        return all(abs(s) <= STABLE_SLOPE for s in self.slopes[p].values())

    def blows_up(self, p: str) -> bool:
        """The output's and some hidden layer's slope ``>= GROWTH_SLOPE`` under *p*."""
        s = self.slopes[p]
        out = [s[n] for n, place in self.layers if place == "output"]
        hidden = [s[n] for n, place in self.layers if place == "hidden"]
        return bool(out) and all(v >= GROWTH_SLOPE for v in out) and any(v >= GROWTH_SLOPE for v in hidden)

    @property
    def separates(self) -> bool:
        return self.stable("mup") and self.blows_up("sp")

    def verdict(self) -> str:
        def worst(p: str) -> str:
            n, v = max(self.slopes[p].items(), key=lambda kv: abs(kv[1]) if math.isfinite(kv[1]) else math.inf)
            return f"{n} {v:+.3f}"

        sp = "blows up" if self.blows_up("sp") else "does not blow up"
        mu = "stable" if self.stable("mup") else "not stable"
        head = "separates SP from muP" if self.separates else "does NOT separate SP from muP"
        return (f"coordcheck {head}: SP {sp} (largest slope {worst('sp')}; blow-up: output and a hidden "
                f"layer >= {GROWTH_SLOPE}), muP {mu} (largest |slope| {worst('mup')}; stable: all <= "
                f"{STABLE_SLOPE})")

    def table(self) -> str:
        lines = [f"coordcheck: {self.family}, widths {','.join(map(str, self.widths))}, {self.steps} "
                 f"{self.optimizer} steps at lr {self.lr:g}, {self.seeds} seed(s), batch {self.batch_size}"
                 f"{' (fixed: trained and measured on it)' if self.fix_data else ''}, "
                 f"data {self.data}; SP = {self.base}, muP = {self.mup}",
                 f"slope of log {self.measure} vs log width at the last step (and, for reference, the largest "
                 "over steps 1..last, and the slope of log mean|x_t| at the last step):",
                 f"{'layer':<24} {'place':<7} {'SP':>8} {'muP':>8}   {'SP max':>8} {'muP max':>8}   "
                 f"{'SP |x|':>8} {'muP |x|':>8}"]

        def top(p: str, n: str) -> float:
            vs = [v for v in self.slopes_by_step.get(p, {}).get(n, [])[1:] if math.isfinite(v)]
            return max(vs, key=abs) if vs else float("nan")

        def size(p: str, n: str) -> float:
            vs = self.size_slopes_by_step.get(p, {}).get(n, [])
            return vs[-1] if vs else float("nan")

        for n, place in self.layers:
            lines.append(f"{n:<24} {place:<7} {self.slopes['sp'][n]:>+8.3f} {self.slopes['mup'][n]:>+8.3f}   "
                         f"{top('sp', n):>+8.3f} {top('mup', n):>+8.3f}   {size('sp', n):>+8.3f} "
                         f"{size('mup', n):>+8.3f}")
        lines.append(self.verdict())
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "widths": list(self.widths), "steps": self.steps, "lr": self.lr,
                "optimizer": self.optimizer, "data": self.data, "seeds": self.seeds,
                "batch_size": self.batch_size, "sp": self.base, "mup": self.mup,
                "layers": [{"name": n, "place": p} for n, p in self.layers],
                "coords": {p: {n: [[_num(v) for v in row] for row in rows] for n, rows in c.items()}
                           for p, c in self.coords.items()},
                "measure": self.measure, "fix_data": self.fix_data,
                "changes": {p: {n: [[_num(v) for v in row] for row in rows] for n, rows in c.items()}
                            for p, c in self.changes.items()},
                "slopes": {p: {n: _num(v) for n, v in s.items()} for p, s in self.slopes.items()},
                "slopes_by_step": {p: {n: [_num(v) for v in vs] for n, vs in s.items()}
                                   for p, s in self.slopes_by_step.items()},
                "size_slopes_by_step": {p: {n: [_num(v) for v in vs] for n, vs in s.items()}
                                        for p, s in self.size_slopes_by_step.items()},
                "thresholds": {"stable": STABLE_SLOPE, "growth": GROWTH_SLOPE},
                "verdict": {"sp_blows_up": self.blows_up("sp"), "mup_stable": self.stable("mup"),
                            "separates": self.separates, "text": self.verdict()},
                "wall_s": self.wall_s}

    def figure(self) -> Any:
        """``std(x_t - x_0)`` against width, one panel per parametrization and step t = 1..steps,
        one line per layer (log-log, as TP5's Figure 5; a Figure on the Agg canvas, as the
        probe's figures)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        T = self.steps
        fig = Figure(figsize=(2.3 * T + 0.6, 5.0), dpi=110, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(2, T, sharey=True, squeeze=False)  # one scale: SP's growth beside muP's flat lines
        names = {"sp": f"SP ({self.base})", "mup": "muP"}
        for r, p in enumerate(PARAMETRIZATIONS):
            for t in range(1, T + 1):
                ax = axes[r][t - 1]
                for n, place in self.layers:
                    ys = [self.changes[p][n][i][t] for i in range(len(self.widths))]
                    pts = [(w, y) for w, y in zip(self.widths, ys) if math.isfinite(y) and y > 0]
                    ax.plot(*zip(*pts) if pts else ([], []), marker="o", ms=3, color=f"C{self.layers.index((n, place))}",
                            label=f"{n} ({place})")
                ax.set_xscale("log", base=2)
                ax.set_yscale("log")
                ax.set_title(f"{names[p]}, t={t}", fontsize=9)
                if r == 1:
                    ax.set_xlabel("width")
                if t == 1:
                    ax.set_ylabel("std(x_t - x_0)")
        axes[0][-1].legend(fontsize=7, loc="best")
        # a layer whose change is exactly 0 has no point (muP's hidden layers at t=1: the zero readout
        # passes them no gradient in the first step)
        axes[1][-1].legend(fontsize=7, loc="best")
        fig.suptitle(f"coordinate check: {self.family}, {self.optimizer} lr {self.lr:g}; "
                     f"{'separates' if self.separates else 'does not separate'} SP / muP", fontsize=10)
        return fig

    def save_figure(self, path: str | Path, flag: str = "--figure") -> Path:
        """Write :meth:`figure` as a PNG to *path* (checked first: one line if it cannot be)."""
        from initlab.outputs import check_output_file

        p = check_output_file(path, flag, example="coordcheck.png")
        p.parent.mkdir(parents=True, exist_ok=True)
        self.figure().savefig(p, format="png")
        return p


def _num(v: float) -> float | None:
    return v if math.isfinite(v) else None


def synthetic_data(n: int, shape: Sequence[int], classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` standard Gaussian inputs of *shape* and uniform labels, from a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=g), torch.randint(0, classes, (n,), generator=g)


def _places(model: nn.Module, spec_scheme: str) -> list[tuple[str, str]]:
    from initlab.structure import find_structure

    st = find_structure(model)
    inp = st.input[1] if st.input else None
    out = st.output[1] if st.output else None
    rows = []
    for n, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd)):
            rows.append((n, "input" if m is inp else "output" if m is out else "hidden"))
    return rows


def _run_one(spec: Any, scheme: str, seed: int, x: torch.Tensor, y: torch.Tensor, probe_x: torch.Tensor,
             steps: int, lr: float, optimizer: str, batch_size: int,
             fix_data: bool = False) -> dict[str, dict[str, list[float]]]:
    """One model: ``{"size": {layer: [mean |x_t|, t = 0..steps]}, "change": {layer: [std(x_t - x_0)]}}``
    on *probe_x* (eval mode, after each step). *fix_data*: every step trains on ``x[:batch_size]``
    (else on a batch drawn from *x* by the seed's generator)."""
    import initlab
    from initlab.engine.multipliers import param_groups

    model = spec.build(seed=seed)
    initlab.apply(model, scheme, seed=seed)
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
    size: dict[str, list[float]] = {n: [] for n, _ in layers}
    change: dict[str, list[float]] = {n: [] for n, _ in layers}
    current: dict[str, torch.Tensor] = {}
    x0: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda _m, _a, z, n=n: current.__setitem__(n, z.detach()))
             for n, m in layers]
    groups = param_groups(model, scheme, lr, optimizer)
    opt = torch.optim.Adam(groups) if optimizer == "adam" else torch.optim.SGD(groups)
    g = torch.Generator().manual_seed(seed)

    def record() -> None:
        model.eval()
        with torch.no_grad():
            model(probe_x)
        model.train()
        for n in size:
            z = current.pop(n)
            size[n].append(float(z.abs().mean()))
            if n not in x0:
                x0[n] = z.clone()
            change[n].append(float((z - x0[n]).std(correction=0)))

    try:
        record()
        for _ in range(steps):
            idx = (torch.arange(batch_size) if fix_data
                   else torch.randint(0, x.shape[0], (batch_size,), generator=g))
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            record()
    finally:
        for h in hooks:
            h.remove()
    return {"size": size, "change": change}


def coordcheck(family: str = "mlp", widths: Sequence[int] = DEFAULT_WIDTHS, *, steps: int = 4,
               lr: float = 1e-3, optimizer: str = "adam", seeds: int = 3, batch_size: int = 64,
               depth: int = 3, base: str = "he_normal", base_width: int | None = None,
               data: tuple[torch.Tensor, torch.Tensor] | None = None, data_name: str = "synthetic",
               n_probe: int = 256, fix_data: bool = False) -> CoordCheckResult:
    """Measure the coordinate check (module docstring).

    Args:
        family: ``mlp``, ``cnn`` or ``resnet``.
        widths: increasing widths (the muP base width defaults to the first).
        steps: optimizer steps (records at t = 0..steps).
        lr: the one learning rate (SP) and muP's base learning rate (default 1e-3: microsoft/mup
            ``get_coord_data``'s default for Adam; its SGD default is 0.1).
        optimizer: ``adam`` or ``sgd`` (torch.optim, muP's multipliers as parameter groups).
        seeds: models per width and parametrization (seeds 0..seeds-1), averaged.
        depth: hidden layers (mlp), conv layers (cnn) or blocks (resnet).
        base: SP's scheme and muP's base scheme.
        base_width: muP's base width (default ``widths[0]``).
        data: ``(x [N, ...], y [N])``: training images and labels (e.g. Fashion-MNIST); ``None``:
            synthetic Gaussian inputs with random labels (``synthetic_data``).
        data_name: what *data* is, for the record.
        n_probe: inputs of the fixed batch the activations are measured on (without *fix_data*).
        fix_data: train every step on the same batch (the first *batch_size* inputs) and measure
            the activations on that batch, as microsoft/mup's ``get_coord_data`` does by default
            (``fix_data=True``); else each step draws a batch and the first *n_probe* inputs are
            measured.
    """
    import time

    from initlab.schemes import get_scheme

    t0 = time.perf_counter()
    widths = [int(w) for w in widths]
    if len(widths) < 2 or any(w < 1 for w in widths) or widths != sorted(set(widths)):
        raise InitlabError(f"widths must be at least two increasing positive integers, got {widths}")
    for name, v, lo in (("steps", steps, 1), ("seeds", seeds, 1), ("batch_size", batch_size, 1),
                        ("n_probe", n_probe, 1)):
        if not isinstance(v, int) or v < lo:
            raise InitlabError(f"{name} must be an integer >= {lo}, got {v!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise InitlabError(f"lr must be a positive number, got {lr!r}")
    if optimizer not in ("adam", "sgd"):
        raise InitlabError(f"optimizer must be adam or sgd, got {optimizer!r}")
    bw = widths[0] if base_width is None else int(base_width)
    sp_scheme = get_scheme(base).spec
    mup_scheme = get_scheme("mup", base_width=bw, base=base).spec
    spec0 = family_spec(family, widths[0], depth)
    if data is None:
        x, y = synthetic_data(max(n_probe, 1024), spec0.input_shape, spec0.out_features, 12345)
    else:
        x, y = data
        x = x.reshape(x.shape[0], *spec0.input_shape).float()
        y = y.long()
    if fix_data and batch_size > x.shape[0]:
        raise InitlabError(f"batch_size {batch_size} is larger than the {x.shape[0]} inputs; use at most "
                           f"{x.shape[0]}")
    probe_x = x[:batch_size] if fix_data else x[:n_probe]
    layers = _places(spec0.build(seed=0), mup_scheme)
    result = CoordCheckResult(family, widths, steps, float(lr), optimizer, data_name, seeds, batch_size,
                              sp_scheme, mup_scheme, layers, fix_data=bool(fix_data))
    for p, scheme in (("sp", sp_scheme), ("mup", mup_scheme)):
        result.coords[p] = {n: [] for n, _ in layers}
        result.changes[p] = {n: [] for n, _ in layers}
        for w in widths:
            spec = family_spec(family, w, depth)
            runs = [_run_one(spec, scheme, s, x, y, probe_x, steps, float(lr), optimizer, batch_size, fix_data)
                    for s in range(seeds)]
            for n, _ in layers:
                for key, into in (("size", result.coords), ("change", result.changes)):
                    into[p][n].append([sum(r[key][n][t] for r in runs) / seeds for t in range(steps + 1)])

        def by_step(c: dict[str, list[list[float]]]) -> dict[str, list[float]]:
            return {n: [slope(widths, [row[t] for row in c[n]]) for t in range(steps + 1)] for n, _ in layers}

        result.slopes_by_step[p] = by_step(result.changes[p])
        result.size_slopes_by_step[p] = by_step(result.coords[p])
        result.slopes[p] = {n: v[-1] for n, v in result.slopes_by_step[p].items()}
    result.wall_s = time.perf_counter() - t0
    return result
