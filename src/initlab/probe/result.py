"""Probe results: per layer, per scheme, per probe; JSON-ready.

In ``to_dict`` output non-finite floats are written as the strings ``"inf"``, ``"-inf"``
and ``"nan"`` (JSON has no such numbers), so the output is strict JSON.

``from_dict`` is the inverse: ``ProbeResult.from_dict(json.loads(r.to_json())).to_dict()
== r.to_dict()``, so a stored probe can be tabled and drawn again. It reads those three
strings back as floats, ignores the derived keys ``to_dict`` adds (``pre_var``, ``ok``,
the mean field's ``phase``) and any key it does not know (a newer layout's additions), and
raises :class:`~initlab.errors.InitlabError` with the path of the first bad or missing
entry (``schemes[1].layers[3].pre_std``).
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from initlab.errors import InitlabError, UnknownNameError, suggest
from initlab.probe.meanfield import MeanField


def _num(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return _num(obj)


# -- reading to_dict() output back (from_dict) ---------------------------------------------

_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _bad(where: str, problem: str) -> InitlabError:
    return InitlabError(f"malformed probe result at {where}: {problem}; "
                        "give a dict written by ProbeResult.to_dict()")


def _show(v: Any, limit: int = 40) -> str:
    text = repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _float(v: Any, where: str) -> float:
    """A number, or one of the strings ``_num`` writes for non-finite floats."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str) and v in _NONFINITE:
        return _NONFINITE[v]
    raise _bad(where, f"{_show(v)} is not a number")


def _int(v: Any, where: str) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    raise _bad(where, f"{_show(v)} is not an integer")


def _str(v: Any, where: str) -> str:
    if isinstance(v, str):
        return v
    raise _bad(where, f"{_show(v)} is not a string")


def _list(v: Any, where: str) -> list[Any]:
    if isinstance(v, list):
        return v
    raise _bad(where, f"expected a list, got {type(v).__name__}")


def _shape(v: Any, where: str) -> tuple[int, ...]:
    return tuple(_int(x, f"{where}[{i}]") for i, x in enumerate(_list(v, where)))


def _dict(v: Any, where: str) -> dict[str, Any]:
    if isinstance(v, dict):
        return v
    raise _bad(where, f"expected a dict, got {type(v).__name__}")


#: Readers by the annotation of a dataclass field (a string under postponed annotations).
_READERS: dict[str, Callable[[Any, str], Any]] = {
    "float": _float, "int": _int, "str": _str, "tuple[int, ...]": _shape,
}


def _read_fields(cls: type, d: Any, where: str) -> dict[str, Any]:
    """The constructor arguments of dataclass *cls* from *d*; a field with a default may
    be missing."""
    d = _dict(d, where)
    out: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in d:
            if f.default is MISSING and f.default_factory is MISSING:
                raise _bad(where, f"missing key {f.name!r}")
            continue
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        out[f.name] = _READERS[kind](d[f.name], f"{where}.{f.name}")
    return out


def _mean_field_from_dict(d: Any, where: str) -> MeanField | None:
    """The inverse of :meth:`MeanField.to_dict` (``phase`` is derived, so not read)."""
    return None if d is None else MeanField(**_read_fields(MeanField, d, where))


def _singular_values(v: Any, where: str) -> list[list[float]] | None:
    if v is None:
        return None
    return [[_float(x, f"{where}[{i}][{j}]") for j, x in enumerate(_list(row, f"{where}[{i}]"))]
            for i, row in enumerate(_list(v, where))]


@dataclass
class LayerProbe:
    """Measurements of one layer (see :mod:`initlab.probe.capture` for definitions).

    ``var_ratio`` is ``Var(z_l) / Var(z_{l-1})`` for the pre-activation outputs ``z`` of
    consecutive layers (``Var(z_1) / Var(x)`` for the first). ``grad_norm`` is
    ``||dL/dz_l||`` and ``weight_grad_norm`` ``||dL/dW_l||`` (Frobenius, mean cross-entropy
    over the batch). ``sigma_w2 = fan_in * E[W^2]`` and ``sigma_b2 = E[b^2]`` are the
    realized mean-field parameters; ``predicted_var`` is the mean-field ``q^l`` (``nan``
    when the model is not a plain fully connected chain).
    """

    index: int
    name: str
    kind: str
    shape: tuple[int, ...]
    activation: str
    units: int
    pre_mean: float
    pre_std: float
    post_mean: float
    post_std: float
    zero_fraction: float
    dead_fraction: float
    saturated_fraction: float
    var_ratio: float
    grad_norm: float
    weight_grad_norm: float
    duplicate_units: int
    effective_rank: float
    sigma_w2: float
    sigma_b2: float
    predicted_var: float = math.nan

    @property
    def pre_var(self) -> float:
        return self.pre_std**2

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["shape"] = list(self.shape)
        d["pre_var"] = self.pre_var
        return _clean(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str = "layer") -> LayerProbe:
        """The inverse of :meth:`to_dict` (``pre_var`` is derived from ``pre_std``)."""
        return cls(**_read_fields(cls, d, where))


from initlab.probe.kinds import KINDS  # noqa: E402  (verdict kinds, in the order they are checked)


@dataclass(frozen=True)
class Verdict:
    """One finding: its kind (:data:`KINDS`), the layer where it starts, the number behind
    it, and a one-line explanation."""

    kind: str
    layer: int
    layer_name: str
    value: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        return _clean({"kind": self.kind, "layer": self.layer, "layer_name": self.layer_name,
                       "value": self.value, "message": self.message})

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str = "verdict") -> Verdict:
        """The inverse of :meth:`to_dict`."""
        return cls(**_read_fields(cls, d, where))


@dataclass
class SchemeProbe:
    """The probe of one scheme.

    ``signal_rate`` is the per-layer factor of ``Var(z)`` going forward and
    ``gradient_rate`` that of ``||dL/dz||^2`` going backward, each the exponential of a
    least-squares slope through the logs over all layers (single consecutive ratios
    fluctuate by tens of percent at width 256; the fit averages that out). For a fully
    connected net both estimate the mean-field ``chi_1`` when ``q*`` is stable.
    """

    scheme: str
    layers: list[LayerProbe]
    verdicts: list[Verdict]
    input_var: float
    input_second_moment: float
    loss: float
    signal_rate: float
    gradient_rate: float
    jacobian_singular_values: list[list[float]] | None = None
    mean_field: MeanField | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """No verdicts."""
        return not self.verdicts

    def verdict(self, kind: str) -> Verdict | None:
        """The verdict of *kind*, or ``None``."""
        return next((v for v in self.verdicts if v.kind == kind), None)

    def column(self, name: str) -> list[Any]:
        """One field of every layer, e.g. ``column("pre_std")``."""
        return [getattr(layer, name) for layer in self.layers]

    def to_dict(self) -> dict[str, Any]:
        return _clean({
            "scheme": self.scheme, "ok": self.ok,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "input_var": self.input_var, "input_second_moment": self.input_second_moment,
            "loss": self.loss, "signal_rate": self.signal_rate, "gradient_rate": self.gradient_rate,
            "mean_field": self.mean_field.to_dict() if self.mean_field else None,
            "jacobian_singular_values": self.jacobian_singular_values,
            "seconds": self.seconds,
            "layers": [layer.to_dict() for layer in self.layers],
        })

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str = "scheme") -> SchemeProbe:
        """The inverse of :meth:`to_dict` (``ok`` is derived from the verdicts)."""
        d = _dict(d, where)
        for key in ("scheme", "layers", "verdicts", "input_var", "input_second_moment", "loss",
                    "signal_rate", "gradient_rate"):
            if key not in d:
                raise _bad(where, f"missing key {key!r}")
        return cls(
            scheme=_str(d["scheme"], f"{where}.scheme"),
            layers=[LayerProbe.from_dict(x, where=f"{where}.layers[{i}]")
                    for i, x in enumerate(_list(d["layers"], f"{where}.layers"))],
            verdicts=[Verdict.from_dict(x, where=f"{where}.verdicts[{i}]")
                      for i, x in enumerate(_list(d["verdicts"], f"{where}.verdicts"))],
            **{k: _float(d[k], f"{where}.{k}") for k in ("input_var", "input_second_moment", "loss",
                                                         "signal_rate", "gradient_rate")},
            jacobian_singular_values=_singular_values(d.get("jacobian_singular_values"),
                                                      f"{where}.jacobian_singular_values"),
            mean_field=_mean_field_from_dict(d.get("mean_field"), f"{where}.mean_field"),
            seconds=_float(d.get("seconds", 0.0), f"{where}.seconds"),
        )


@dataclass
class ProbeResult:
    """The probe of one model under several schemes."""

    model: str
    inputs: str
    n_inputs: int
    input_shape: tuple[int, ...]
    seed: int
    schemes: list[SchemeProbe] = field(default_factory=list)

    def __getitem__(self, scheme: str) -> SchemeProbe:
        for s in self.schemes:
            if s.scheme == scheme:
                return s
        names = [s.scheme for s in self.schemes]
        raise UnknownNameError(f"no probe of scheme {scheme!r}{suggest(scheme, names)}; probed: {', '.join(names)}")

    def __iter__(self):
        return iter(self.schemes)

    def __len__(self) -> int:
        return len(self.schemes)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.schemes)

    def __repr__(self) -> str:
        flagged = sum(not s.ok for s in self.schemes)
        return (f"ProbeResult(model={self.model!r}, {len(self.schemes)} schemes, "
                + ("no verdicts" if not flagged else f"{flagged} flagged") + ")")

    def _repr_html_(self) -> str:
        """One row per scheme for notebooks: the signal and gradient rates per layer, the
        output's std and loss at init, the calibrated verdict and score for Adam and for SGD
        (:mod:`~initlab.probe.calibration`) and the measured verdicts (red) or ``ok`` (green)."""
        from initlab.display import Mark, html_table
        from initlab.probe.calibration import predict

        rows = []
        for s in self.schemes:
            last = s.layers[-1] if s.layers else None
            verdicts = "; ".join(v.message for v in s.verdicts)
            pred = [predict(s, optimizer=o) for o in ("adam", "sgd")]
            rows.append((s.scheme, len(s.layers), s.signal_rate, s.gradient_rate,
                         last.pre_std if last is not None else float("nan"), s.loss,
                         *(Mark(f"{p.verdict.replace('_', ' ')} ({p.score:.2f})", p.ok) for p in pred),
                         Mark(verdicts or "ok", s.ok)))
        return html_table(f"initlab.probe: {self.model} at init on {self.n_inputs} {self.inputs} inputs, "
                          f"seed {self.seed}",
                          ["scheme", "layers", "signal rate", "gradient rate", "output pre std", "loss",
                           "predicted (Adam)", "predicted (SGD)", "measured"], rows)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "inputs": self.inputs, "n_inputs": self.n_inputs,
                "input_shape": list(self.input_shape), "seed": self.seed,
                "schemes": [s.to_dict() for s in self.schemes]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProbeResult:
        """The result :meth:`to_dict` wrote, e.g. one stored by a study: the exact inverse,
        so ``table()`` and ``save_figures()`` of the rebuilt result give what the original's
        did. Raises :class:`~initlab.errors.InitlabError` naming the first bad entry."""
        d = _dict(d, "top level")
        for key in ("model", "inputs", "n_inputs", "input_shape", "seed", "schemes"):
            if key not in d:
                raise _bad("top level", f"missing key {key!r}")
        return cls(
            model=_str(d["model"], "model"), inputs=_str(d["inputs"], "inputs"),
            n_inputs=_int(d["n_inputs"], "n_inputs"), input_shape=_shape(d["input_shape"], "input_shape"),
            seed=_int(d["seed"], "seed"),
            schemes=[SchemeProbe.from_dict(x, where=f"schemes[{i}]")
                     for i, x in enumerate(_list(d["schemes"], "schemes"))],
        )

    @classmethod
    def from_json(cls, text: str) -> ProbeResult:
        """The inverse of :meth:`to_json`."""
        try:
            d = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise InitlabError(f"probe result is not valid JSON ({exc}); give the text "
                               "ProbeResult.to_json() wrote") from None
        return cls.from_dict(d)

    def table(self, *, all_layers: bool = False, optimizer: str = "adam") -> str:
        """The terminal report (see :func:`initlab.probe.table.render`); its predicted
        verdicts are for training with *optimizer*."""
        from initlab.probe.table import render

        return render(self, all_layers=all_layers, optimizer=optimizer)

    def predictions(self, optimizer: str = "adam") -> dict[str, Any]:
        """The calibrated prediction of each scheme for *optimizer*
        (:func:`initlab.probe.calibration.predict`), by scheme."""
        from initlab.probe.calibration import predict

        return {s.scheme: predict(s, optimizer=optimizer) for s in self.schemes}

    def figures(self) -> dict[str, Any]:
        """Matplotlib figures (see :func:`initlab.probe.figures.probe_figures`)."""
        from initlab.probe.figures import probe_figures

        return probe_figures(self)

    def save_figures(self, directory: str | Path) -> list[Path]:
        """Write the figures as PNG files into *directory*; returns their paths."""
        from initlab.probe.figures import save_probe_figures

        return save_probe_figures(self, directory)
