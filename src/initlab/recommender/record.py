"""What :func:`initlab.recommend` returns: a ranked list of schemes with their predictions,
optionally their trained outcome, and the code that applies the winner.

``Recommendation.to_dict()`` is plain JSON (non-finite floats as ``None``) and
``Recommendation.from_dict(d).to_dict() == d``.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from initlab.errors import InitlabError

if TYPE_CHECKING:
    from initlab.probe.calibration import Prediction

__all__ = ["Candidate", "Confirmation", "Recommendation", "Trained", "within_spread"]


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _float(x: Any) -> float:
    return math.nan if x is None else float(x)


@dataclass(frozen=True)
class Trained:
    """A scheme's outcome in the confirming study: the final validation accuracy of each
    seed that finished without diverging (``accuracies``), and how many diverged."""

    accuracies: tuple[float, ...]
    diverged: int = 0

    @property
    def n(self) -> int:
        return len(self.accuracies)

    @property
    def mean(self) -> float:
        """Mean final accuracy over the finished seeds (NaN: none; a scheme whose seeds all
        diverged has no accuracy)."""
        return statistics.fmean(self.accuracies) if self.accuracies else math.nan

    @property
    def spread(self) -> float:
        """The seed-to-seed spread: the sample standard deviation (``ddof = 1``) of the
        final accuracies; 0 with one seed, NaN with none."""
        if not self.accuracies:
            return math.nan
        return statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else 0.0

    def text(self) -> str:
        """``87.3 ± 0.4 %`` (``± spread``) and the diverged seeds, if any."""
        if not self.accuracies:
            return f"all {self.diverged} diverged" if self.diverged else "-"
        out = f"{self.mean * 100:.1f} ± {self.spread * 100:.1f}%"
        return out + (f" ({self.diverged} diverged)" if self.diverged else "")

    def to_dict(self) -> dict[str, Any]:
        return {"accuracies": [_num(a) for a in self.accuracies], "diverged": self.diverged,
                "mean": _num(self.mean), "spread": _num(self.spread)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trained:
        return cls(tuple(_float(a) for a in d["accuracies"]), int(d.get("diverged", 0)))


def within_spread(candidate: Trained, best: Trained) -> bool:
    """Whether *candidate* lands within the seed-to-seed spread of *best*: its mean final
    accuracy is at most ``max(spread(best), spread(candidate))`` below best's mean (the
    spreads are the sample standard deviations over seeds;
    :func:`initlab.report.recommendation.within_spread`, the study report's rule too). A
    candidate with no finished seed never does; against a best with none, any finished
    candidate does."""
    from initlab.report.recommendation import within_spread as rule

    return rule(candidate.accuracies, best.accuracies)


@dataclass(frozen=True)
class Candidate:
    """One probed scheme: its canonical spec, the calibrated prediction from its probe,
    the probe's raw verdict kinds, and its trained outcome when it was confirmed."""

    scheme: str
    prediction: Prediction
    probe_verdicts: tuple[str, ...] = ()
    trained: Trained | None = None

    @property
    def score(self) -> float:
        return float(self.prediction.score)

    def to_dict(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "prediction": self.prediction.to_dict(),
                "probe_verdicts": list(self.probe_verdicts),
                "trained": self.trained.to_dict() if self.trained is not None else None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Candidate:
        from initlab.probe.calibration import Prediction

        t = d.get("trained")
        return cls(str(d["scheme"]), Prediction.from_dict(d["prediction"]), tuple(d.get("probe_verdicts", ())),
                   Trained.from_dict(t) if t is not None else None)


@dataclass(frozen=True)
class Confirmation:
    """How the confirming study ran: dataset, data limits, epochs, seeds, train settings
    and the run directory (``""``: a temporary one, removed)."""

    dataset: str
    limit_train: int | None
    limit_val: int | None
    epochs: int
    seeds: tuple[int, ...]
    train: dict[str, Any] = field(default_factory=dict)
    run_dir: str = ""
    wall_s: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "limit_train": self.limit_train, "limit_val": self.limit_val,
                "epochs": self.epochs, "seeds": list(self.seeds), "train": dict(self.train),
                "run_dir": self.run_dir, "wall_s": _num(self.wall_s)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Confirmation:
        return cls(str(d["dataset"]), d.get("limit_train"), d.get("limit_val"), int(d["epochs"]),
                   tuple(int(s) for s in d["seeds"]), dict(d.get("train", {})), str(d.get("run_dir", "")),
                   _float(d.get("wall_s")))


@dataclass(frozen=True)
class Recommendation:
    """The ranked schemes for one model (best first), what was left out and why, and the
    confirming study's outcome when one ran.

    ``layer_types`` are the types of the layers ``initlab.apply`` initializes in the model
    (:meth:`code` covers Linear and Conv ones with ``torch.nn.init``).
    """

    model: str
    optimizer: str
    inputs: str
    input_shape: tuple[int, ...]
    seed: int
    candidates: tuple[Candidate, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    structure: str = ""
    layer_types: tuple[str, ...] = ("Linear",)
    confirmation: Confirmation | None = None

    def __post_init__(self) -> None:
        if not self.candidates:
            raise InitlabError("a recommendation needs at least one probed scheme")

    @property
    def best(self) -> Candidate:
        """The top-ranked scheme."""
        return self.candidates[0]

    @property
    def schemes(self) -> list[str]:
        """The schemes in rank order."""
        return [c.scheme for c in self.candidates]

    def __getitem__(self, scheme: str) -> Candidate:
        for c in self.candidates:
            if c.scheme == scheme:
                return c
        raise KeyError(scheme)

    def best_trained(self) -> Candidate | None:
        """The confirmed scheme with the highest mean final accuracy (``None``: nothing trained)."""
        trained = [c for c in self.candidates if c.trained is not None and c.trained.accuracies]
        return max(trained, key=lambda c: c.trained.mean) if trained else None  # type: ignore[union-attr]

    def code(self, scheme: str | None = None, *, seed: int | None = 0) -> str:
        """The lines that apply *scheme* (default the top-ranked one) to ``model``: with
        initlab, and with plain ``torch.nn.init`` where torch has an equivalent
        (:mod:`initlab.recommender.torch_code`), else a line saying it has none."""
        from initlab.recommender.torch_code import NO_TORCH_EQUIVALENT, apply_lines, torch_lines

        spec = scheme or self.best.scheme
        out = ["# with initlab", *apply_lines(spec, seed), "", "# with torch.nn.init only"]
        lines = torch_lines(spec, self.layer_types)
        if lines is None:
            out.append(f"# {spec}: {NO_TORCH_EQUIVALENT}")
            if scheme is None:  # the best-ranked scheme torch can express
                alt = next(((i, c.scheme) for i, c in enumerate(self.candidates, 1)
                            if torch_lines(c.scheme, self.layer_types) is not None), None)
                if alt is not None:
                    out.append(f"# the best-ranked scheme torch has, {alt[1]} (rank {alt[0]}):")
                    out += torch_lines(alt[1], self.layer_types) or []
        else:
            out += lines
        return "\n".join(out)

    # -- text and HTML ---------------------------------------------------------------------

    def _rows(self) -> list[tuple[Any, ...]]:
        rows = []
        for i, c in enumerate(self.candidates, 1):
            p = c.prediction
            rows.append((i, c.scheme, p.score, p.verdict, p.predicts,
                         c.trained.text() if c.trained is not None else "", "; ".join(p.reasons)))
        return rows

    def _title(self) -> str:
        return (f"initlab.recommend: {self.model} with {self.optimizer}, probed at init on "
                f"{self.inputs} inputs of shape {'x'.join(map(str, self.input_shape))}, seed {self.seed}")

    def _notes(self) -> list[str]:
        notes = []
        if self.structure:
            notes.append(f"structure: {self.structure}")
        if self.skipped:
            by: dict[str, list[str]] = {}
            for s, why in self.skipped:
                by.setdefault(why, []).append(s)
            notes.append("not probed: " + "; ".join(f"{', '.join(names)} ({why})" for why, names in by.items()))
        c = self.confirmation
        if c is not None:
            limits = ", ".join(f"{k} {v}" for k, v in (("train", c.limit_train), ("val", c.limit_val)) if v)
            notes.append(f"trained: {c.epochs} epoch(s) on {c.dataset}" + (f" ({limits} images)" if limits else "")
                         + f", seeds {', '.join(map(str, c.seeds))}; final val accuracy, mean ± sd over seeds"
                         + (f"; run dir {c.run_dir}" if c.run_dir else ""))
            best = self.best_trained()
            if best is not None and self.best.trained is not None:
                ok = within_spread(self.best.trained, best.trained)  # type: ignore[arg-type]
                notes.append(f"top-ranked {self.best.scheme}: {self.best.trained.text()}; best trained "
                             f"{best.scheme}: {best.trained.text()} -> "  # type: ignore[union-attr]
                             + ("within the seed-to-seed spread" if ok else "NOT within the seed-to-seed spread"))
        return notes

    def __str__(self) -> str:
        from initlab.display import fmt

        header = ("#", "scheme", "score", "verdict", "trained")
        rows = [tuple(fmt(v, 3) for v in (r[0], r[1], r[2], r[3], r[5])) for r in self._rows()]
        widths = [max(len(header[j]), *(len(r[j]) for r in rows)) for j in range(len(header))]
        if not any(r[4] for r in rows):
            header, rows, widths = header[:4], [r[:4] for r in rows], widths[:4]

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

        out = [self._title(), line(header)] + [line(r) for r in rows] + [""]
        for c in self.candidates[:3]:
            out.append(f"{c.scheme}: {c.prediction.predicts}")
            out += [f"  - {reason}" for reason in c.prediction.reasons]
        out += self._notes()
        out += ["", self.code()]
        return "\n".join(out)

    def _repr_html_(self) -> str:
        import html

        from initlab.display import Mark, html_table

        rows = []
        for r, c in zip(self._rows(), self.candidates):
            rows.append((*r[:3], Mark(r[3], c.prediction.verdict == "ok"), *r[4:]))
        table = html_table(self._title(), ["#", "scheme", "score", "verdict", "predicts", "trained", "reasons"],
                           rows, notes=self._notes())
        return table + f'<pre class="initlab-code">{html.escape(self.code())}</pre>'

    # -- JSON ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "optimizer": self.optimizer, "inputs": self.inputs,
                "input_shape": list(self.input_shape), "seed": self.seed,
                "best": self.best.scheme,
                "candidates": [c.to_dict() for c in self.candidates],
                "skipped": [{"scheme": s, "reason": why} for s, why in self.skipped],
                "structure": self.structure, "layer_types": list(self.layer_types),
                "confirmation": self.confirmation.to_dict() if self.confirmation is not None else None,
                "code": self.code()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Recommendation:
        """The inverse of :meth:`to_dict` (``best`` and ``code`` are derived)."""
        try:
            conf = d.get("confirmation")
            return cls(
                model=str(d["model"]), optimizer=str(d["optimizer"]), inputs=str(d["inputs"]),
                input_shape=tuple(int(s) for s in d["input_shape"]), seed=int(d["seed"]),
                candidates=tuple(Candidate.from_dict(c) for c in d["candidates"]),
                skipped=tuple((str(s["scheme"]), str(s["reason"])) for s in d.get("skipped", ())),
                structure=str(d.get("structure", "")), layer_types=tuple(d.get("layer_types", ("Linear",))),
                confirmation=Confirmation.from_dict(conf) if conf is not None else None)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InitlabError(f"malformed recommendation ({type(exc).__name__}: {exc}); give a dict written "
                               "by Recommendation.to_dict()") from None
