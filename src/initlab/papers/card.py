"""The card type: a classic result of initialization, its pass criterion, and its result.

A :class:`Card` states, before anything runs, what the paper claims (one sentence), where
(citation, figure or table), in what setting and how that setting was scaled down, the
quantity measured, the paper's value (or ``None``: then the card checks the direction and
size of the effect and says so), and the pass criterion with its tolerance. Its
``measure(settings, ctx)`` runs small studies (:func:`initlab.study.run_study`) and/or
probes (:func:`initlab.probe`) through :class:`~initlab.papers.context.CardContext` and
returns :class:`Check` s, one per criterion, plus the numbers behind them.

:meth:`Card.run` turns that into a :class:`CardResult` (a record: ``to_dict`` /
``from_dict``, JSON). Verdicts:

* ``pass``: every check was judged and passed;
* ``fail``: at least one judged check failed (a failing card is reported with its numbers;
  criteria are never tuned afterwards);
* ``not judged``: only with ``--quick``, when some checks need the full-size setting
  (``Check.passed is None``) and every check judged passed. A quick run judges what it can
  (typically the direction of an effect) and says which checks it left.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from initlab.errors import InitlabError

if TYPE_CHECKING:
    from initlab.papers.context import CardContext

__all__ = ["Card", "CardResult", "Check", "Spread", "VERDICTS", "spread"]

#: The three verdicts of a card (module docstring).
VERDICTS = ("pass", "fail", "not judged")


def _num(x: Any) -> Any:
    """JSON-safe numbers: NaN and infinities become strings."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {str(k): _num(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_num(v) for v in x]
    return x


def _unnum(x: Any) -> Any:
    if x in ("nan", "inf", "-inf"):
        return float(x)
    if isinstance(x, dict):
        return {k: _unnum(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_unnum(v) for v in x]
    return x


@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation over seeds (``std`` 0 for one seed)."""

    mean: float
    std: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.4g} +- {self.std:.2g} (n={self.n})" if self.n > 1 else f"{self.mean:.4g} (n=1)"


def spread(values: Sequence[float]) -> Spread:
    """:class:`Spread` of *values* (NaN mean for none)."""
    vals = [float(v) for v in values]
    if not vals:
        return Spread(math.nan, math.nan, 0)
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return Spread(statistics.fmean(vals), std, len(vals))


@dataclass(frozen=True)
class Check:
    """One criterion of a card and its outcome.

    ``criterion`` is the rule as written in the card before running (with its tolerance),
    ``ours`` what was measured, in words and numbers; ``passed`` is ``None`` when the
    check was not judged (a quick run too small for the effect; ``note`` says why).
    """

    name: str
    criterion: str
    ours: str
    passed: bool | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Check:
        try:
            passed = d["passed"]
            if passed is not None and not isinstance(passed, bool):
                raise TypeError
            return cls(str(d["name"]), str(d["criterion"]), str(d["ours"]), passed, str(d.get("note", "")))
        except (KeyError, TypeError):
            raise InitlabError(f"not a card check: {str(dict(d))[:80]}; give name, criterion, ours, passed") from None


def verdict_of(checks: Sequence[Check], quick: bool) -> str:
    """The card's verdict from its checks (module docstring)."""
    if any(c.passed is False for c in checks):
        return "fail"
    if any(c.passed is None for c in checks):
        return "not judged" if quick else "fail"  # a full run must judge every check
    return "pass"


@dataclass(frozen=True)
class CardResult:
    """What one run of a card produced.

    ``ours`` is the one-line measured value shown in the table (``values`` holds the
    numbers behind it, means and spreads over seeds where training is involved);
    ``figures`` are PNG paths relative to the output directory; ``wall_s`` the run's
    wall time; ``settings`` the size it ran at (full or quick).
    """

    card: str
    title: str
    claim: str
    citation: str
    figure: str
    paper_value: str
    criterion: str
    quick: bool
    verdict: str
    ours: str
    checks: tuple[Check, ...]
    values: dict[str, Any] = field(default_factory=dict)
    figures: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    setting: str = ""
    scaled_down: str = ""
    quantity: str = ""
    wall_s: float = 0.0
    device: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["checks"] = [c.to_dict() for c in self.checks]
        d["figures"] = list(self.figures)
        return _num(d)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CardResult:
        if not isinstance(d, Mapping) or "card" not in d:
            raise InitlabError("not a card result: expected a JSON object with 'card'; "
                               "read a file written by 'initlab paper --json' or --out")
        names = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - names)
        if unknown:
            raise InitlabError(f"card result {d['card']!r}: unknown field(s) {', '.join(unknown)}; "
                               "it was written by another version of initlab")
        kw = {k: _unnum(v) for k, v in d.items()}
        kw["checks"] = tuple(Check.from_dict(c) for c in d.get("checks", ()))
        kw["figures"] = tuple(str(f) for f in d.get("figures", ()))
        if kw.get("verdict") not in VERDICTS:
            raise InitlabError(f"card result {d['card']!r}: verdict {kw.get('verdict')!r} is not one of "
                               f"{', '.join(VERDICTS)}")
        try:
            return cls(**kw)
        except TypeError as exc:
            raise InitlabError(f"card result {d['card']!r}: {exc}; give every field") from None

    @classmethod
    def from_json(cls, text: str) -> CardResult:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise InitlabError(f"card result is not JSON ({exc.msg} at line {exc.lineno})") from None


@dataclass(frozen=True)
class Measured:
    """What a card's ``measure`` returns: its checks, the table's one-line ``ours``, the
    numbers behind it and the figures written (paths relative to the output dir)."""

    checks: list[Check]
    ours: str
    values: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Card:
    """A classic result, stated before it is run (module docstring).

    ``full`` and ``quick`` are the settings ``measure`` receives (sizes, seeds, epochs);
    ``measure(settings, ctx) -> Measured``; ``order`` places the card in listings.
    """

    name: str
    title: str
    claim: str
    citation: str
    figure: str
    setting: str
    scaled_down: str
    quantity: str
    paper_value: str | None
    criterion: str
    full: Mapping[str, Any]
    quick: Mapping[str, Any]
    measure: Callable[[Mapping[str, Any], "CardContext"], Measured]
    order: int = 100
    needs_data: bool = True  # trains on Fashion-MNIST (False: runs on random inputs only)

    @property
    def paper_value_text(self) -> str:
        return self.paper_value if self.paper_value is not None else \
            "no number: direction and size of the effect checked"

    def run(self, quick: bool = False, out: str | Path | None = None, device: str = "cpu",
            data_dir: str | Path | None = None, log: Callable[[str], None] | None = None) -> CardResult:
        """Run the card at full size (or ``quick``), writing figures and study stores under
        ``out`` (nothing is kept when ``None``), on ``device``."""
        from initlab.papers.context import CardContext

        settings = dict(self.quick if quick else self.full)
        t0 = time.perf_counter()
        with CardContext(self.name, quick=quick, out=out, device=device, data_dir=data_dir, log=log) as ctx:
            m = self.measure(settings, ctx)
        wall = time.perf_counter() - t0
        checks = tuple(m.checks)
        return CardResult(
            card=self.name, title=self.title, claim=self.claim, citation=self.citation,
            figure=self.figure, paper_value=self.paper_value_text, criterion=self.criterion,
            quick=quick, verdict=verdict_of(checks, quick), ours=m.ours, checks=checks,
            values=dict(m.values), figures=tuple(m.figures), settings=settings, setting=self.setting,
            scaled_down=self.scaled_down, quantity=self.quantity, wall_s=round(wall, 2), device=device,
        )
