"""Study configuration: the grid (schemes x seeds x models x datasets x train settings)
and its expansion.

:class:`StudyConfig` validates and normalizes everything up front, so a study that
expands is one that can run:

* scheme names are resolved by :func:`initlab.schemes.get_scheme` and stored as their
  canonical spec string (``"He-Normal"`` -> ``"he_normal"``), so equal schemes give equal
  cell keys;
* dataset names are resolved by :func:`initlab.data.get_source`;
* training settings are the fields of :class:`initlab.engine.config.TrainConfig` (with its
  defaults and checks) minus the execution-only ones, :data:`EXECUTION_FIELDS`
  (the device and the evaluation chunk size change where and how fast a cell runs, not
  what it computes).

:meth:`StudyConfig.expand` lays the cells out dataset-major, then model, train settings,
scheme and seed, so cells that train together (same dataset, model and training settings)
are adjacent.

Train settings are a grid of their own (:mod:`initlab.study.axes`): any setting of
``train`` may be a list of values, an axis (``lr = [0.001, 0.01]``), and
``train_variants`` are whole alternative settings (a spec's ``[[train]]`` tables), each
overriding ``train`` and each with axes of its own; :attr:`StudyConfig.trains` is the
resulting list of full settings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from initlab.engine.config import TrainConfig
from initlab.engine.models import MLPSpec
from initlab.errors import InitlabError
from initlab.study.axes import check_distinct, expand_axes
from initlab.study.cell import Cell, Study

__all__ = [
    "ARTICLE_SCHEMES",
    "EXECUTION_FIELDS",
    "StudyConfig",
    "canonical_scheme",
    "normalize_seeds",
    "split_scheme_list",
    "train_fields",
]

#: The seven schemes of the article, by canonical name, in the article's order.
ARTICLE_SCHEMES: tuple[str, ...] = (
    "zeros",
    "ones",
    "uniform_0_1",
    "uniform_centered",
    "uniform_recipe",
    "normal_recipe",
    "keras_default",
)

#: TrainConfig fields that do not belong to a cell (they do not change its results).
EXECUTION_FIELDS: tuple[str, ...] = ("device", "eval_batch_size")

#: Largest seed count ``N`` (seeds 0..N-1); a longer list of seeds is given explicitly.
MAX_SEED_COUNT = 10_000
#: Seeds are integers in [0, SEED_LIMIT), the range the engine's generators accept.
SEED_LIMIT = 2**63


def train_fields() -> tuple[str, ...]:
    """The TrainConfig field names a study sets (``epochs`` included)."""
    return tuple(f for f in TrainConfig.__dataclass_fields__ if f not in EXECUTION_FIELDS)


#: Train settings whose own value is a list: an axis of them is a list of lists.
LIST_VALUED_TRAIN = ("betas",)


def _check_train_keys(overrides: Mapping[str, Any]) -> None:
    bad = sorted(set(overrides) - set(train_fields()))
    if bad:
        raise InitlabError(
            f"unknown training setting(s) {', '.join(bad)}; valid settings: "
            f"{', '.join(train_fields())}"
        )


def _train_dict(overrides: Mapping[str, Any]) -> dict[str, Any]:
    _check_train_keys(overrides)
    d = TrainConfig.from_dict(dict(overrides)).to_dict()
    for name in EXECUTION_FIELDS:
        d.pop(name, None)
    if d["epochs"] < 1:
        raise InitlabError(f"epochs must be >= 1, got {d['epochs']}")
    return d


def train_grid(base: Mapping[str, Any], variants: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """The full train settings of a study: each of *variants* (``[{}]`` when none) over
    *base*, with every axis of the result expanded (:func:`~initlab.study.axes.expand_axes`),
    each completed with the engine's defaults and checked (:class:`TrainConfig`)."""
    _check_train_keys(base)
    out: list[dict[str, Any]] = []
    for i, variant in enumerate(variants or [{}]):
        if not isinstance(variant, Mapping):
            raise InitlabError(f"a train variant must be a table of settings, got {variant!r}")
        _check_train_keys(variant)
        where = f"[[train]] #{i + 1}" if variants else "[train]"
        merged = {**base, **variant}
        out += [_train_dict(d) for d in expand_axes(merged, LIST_VALUED_TRAIN.__contains__, where)]
    check_distinct(out, "train settings")
    return out


def canonical_scheme(spec: str) -> str:
    """The canonical spec string of a scheme (``get_scheme(spec).spec``).

    Raises :class:`~initlab.errors.UnknownNameError` (with suggestions) for unknown names.
    When :mod:`initlab.schemes` cannot be imported the stripped string is returned as is.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InitlabError(f"a scheme must be a non-empty name or spec string, got {spec!r}")
    try:
        from initlab.schemes import get_scheme
    except ImportError:  # pragma: no cover - the scheme layer is part of the package
        return spec.strip()
    return str(get_scheme(spec.strip()).spec)


def split_scheme_list(text: str) -> list[str]:
    """Split ``"zeros, uniform(a=-0.5, b=0.5),he_normal"`` at the commas outside
    parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    if depth != 0 or any(not p for p in parts):
        raise InitlabError(
            f"malformed scheme list {text!r}; give names separated by commas, e.g. zeros,he_normal"
        )
    return parts


def normalize_seeds(seeds: int | Iterable[int]) -> tuple[int, ...]:
    """``N`` -> ``(0, ..., N-1)`` (``1 <= N <= MAX_SEED_COUNT``); a list of distinct
    integers in ``[0, 2**63)`` as given."""
    if isinstance(seeds, bool):
        raise InitlabError(f"seeds must be a count or a list of integers, got {seeds!r}")
    if isinstance(seeds, int):
        if not 1 <= seeds <= MAX_SEED_COUNT:
            shown = seeds if abs(seeds) < 10**30 else "a huge number"
            raise InitlabError(f"seeds must be a count in 1..{MAX_SEED_COUNT} or a list of integers, "
                               f"got {shown}")
        return tuple(range(seeds))
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise InitlabError(f"seeds must be a count or a list of integers, got {seeds!r}")
    out = tuple(seeds)
    if not out:
        raise InitlabError("seeds is an empty list; give at least one seed")
    for s in out:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < SEED_LIMIT:
            shown = repr(s) if not isinstance(s, int) or abs(s) < 10**30 else "a huge number"
            raise InitlabError(f"seeds must be integers in [0, 2**63), got {shown}")
    if len(set(out)) != len(out):
        raise InitlabError(f"seeds {list(out)} repeat a value; list each seed once")
    return out


def _check_limit(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InitlabError(f"{name} must be a positive integer (or omitted for all), got {value!r}")
    return value


def _check_validation(value: Any) -> str | float:
    if isinstance(value, str) and value.strip().lower() == "test":
        return "test"
    if (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and 0 < value < 1
    ):
        return float(value)
    raise InitlabError(
        f"validation must be 'test' (the official test set, as in the article) or a hold-out "
        f"fraction in (0, 1), got {value!r}"
    )


def _canonical_dataset(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InitlabError(f"a dataset must be a non-empty name, got {name!r}")
    try:
        from initlab.data import get_source
    except ImportError:  # pragma: no cover - the data layer is part of the package
        return name.strip()
    return str(get_source(name.strip()).name)


def _as_spec(model: Any) -> Any:
    """A model spec of any family (:mod:`initlab.engine.families`), or a dict of one."""
    from initlab.engine.families import spec_from_dict

    if isinstance(model, Mapping):
        return spec_from_dict(dict(model))
    if callable(getattr(model, "to_dict", None)) and hasattr(model, "kind"):
        return model
    raise InitlabError(f"a model must be a model spec (e.g. MLPSpec) or a dict of its fields, "
                       f"got {model!r}")


def _distinct(kind: str, values: Sequence[Any]) -> None:
    seen = set()
    for v in values:
        if v in seen:
            raise InitlabError(f"{kind} {v!r} is listed twice; list each once")
        seen.add(v)


@dataclass(frozen=True)
class StudyConfig:
    """A grid of cells: every scheme x seed x model x dataset.

    Attributes:
        name: study name (shown in summaries and reports).
        schemes: scheme spec strings (canonicalized).
        seeds: seeds; an ``int`` N means ``0..N-1``.
        models: model specs of any family (:mod:`initlab.engine.families`; e.g.
            :class:`MLPSpec`), or dicts of their fields; labels must differ.
        datasets: dataset names (canonicalized).
        validation: ``"test"`` or a hold-out fraction (see :func:`initlab.data.load_dataset`).
        limit_train, limit_val: example limits (``None``: everything).
        train: TrainConfig settings (``epochs`` included) overriding the engine's defaults;
            a list value is an axis (module docstring). Without axes and variants it holds,
            after construction, every setting of :func:`train_fields`.
        train_variants: alternative settings, each overriding ``train`` (``[[train]]``).
    """

    name: str = "study"
    schemes: tuple[str, ...] = ARTICLE_SCHEMES
    seeds: tuple[int, ...] = (0, 1, 2)
    models: tuple[Any, ...] = (MLPSpec(),)
    datasets: tuple[str, ...] = ("fashion-mnist",)
    validation: str | float = "test"
    limit_train: int | None = None
    limit_val: int | None = None
    train: Mapping[str, Any] = field(default_factory=dict)
    train_variants: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InitlabError(f"study name must be a non-empty string, got {self.name!r}")
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("name", self.name.strip())

        schemes = (self.schemes,) if isinstance(self.schemes, str) else tuple(self.schemes)
        if not schemes:
            raise InitlabError("a study needs at least one scheme")
        schemes = tuple(canonical_scheme(s) for s in schemes)
        _distinct("scheme", schemes)
        set_("schemes", schemes)

        set_("seeds", normalize_seeds(self.seeds))

        one = isinstance(self.models, Mapping) or hasattr(self.models, "kind")
        models = (self.models,) if one else tuple(self.models)
        if not models:
            raise InitlabError("a study needs at least one model")
        models = tuple(_as_spec(m) for m in models)
        labels = [m.label for m in models]
        if len(set(labels)) != len(labels):
            raise InitlabError(
                f"two models share a label ({', '.join(labels)}); give each a distinct 'name'"
            )
        set_("models", models)

        datasets = (self.datasets,) if isinstance(self.datasets, str) else tuple(self.datasets)
        if not datasets:
            raise InitlabError("a study needs at least one dataset")
        datasets = tuple(_canonical_dataset(d) for d in datasets)
        _distinct("dataset", datasets)
        set_("datasets", datasets)

        set_("validation", _check_validation(self.validation))
        set_("limit_train", _check_limit("limit_train", self.limit_train))
        set_("limit_val", _check_limit("limit_val", self.limit_val))
        if not isinstance(self.train, Mapping):
            raise InitlabError(f"train settings must be a dict, got {self.train!r}")
        variants = tuple(dict(v) if isinstance(v, Mapping) else v for v in self.train_variants)
        trains = train_grid(self.train, variants)
        set_("train_variants", variants)
        # a single setting keeps its complete form (today's studies, their cell keys)
        set_("train", trains[0] if len(trains) == 1 and not variants else dict(self.train))
        set_("_trains", tuple(trains))

    @property
    def trains(self) -> tuple[dict[str, Any], ...]:
        """The full train settings of the grid (one per train variant x axis value)."""
        return self._trains  # type: ignore[attr-defined,no-any-return]

    @property
    def epochs(self) -> int:
        """Epochs of the longest train setting."""
        return max(int(t["epochs"]) for t in self.trains)

    @property
    def n_cells(self) -> int:
        return (len(self.schemes) * len(self.seeds) * len(self.models) * len(self.datasets)
                * len(self.trains))

    def cells(self) -> list[Cell]:
        """All cells, dataset-major, then model, train settings, scheme, seed."""
        return [
            Cell(
                dataset=dataset,
                validation=self.validation,
                limit_train=self.limit_train,
                limit_val=self.limit_val,
                model=model.to_dict(),
                scheme=scheme,
                seed=seed,
                train=dict(train),
            )
            for dataset in self.datasets
            for model in self.models
            for train in self.trains
            for scheme in self.schemes
            for seed in self.seeds
        ]

    def expand(self) -> Study:
        """The :class:`Study` of this grid (its ``config`` is :meth:`to_dict`)."""
        return Study(self.name, tuple(self.cells()), self.to_dict())

    def with_overrides(
        self,
        *,
        seeds: int | Sequence[int] | None = None,
        epochs: int | None = None,
        schemes: str | Sequence[str] | None = None,
        name: str | None = None,
    ) -> StudyConfig:
        """A copy with command-line overrides applied (``None`` keeps the value).

        ``seeds`` N means seeds ``0..N-1``; ``schemes`` may be a comma-separated string.
        """
        changes: dict[str, Any] = {}
        if seeds is not None:
            changes["seeds"] = seeds
        if epochs is not None:
            if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
                raise InitlabError(f"epochs must be an integer >= 1, got {epochs!r}")
            changes["train"] = {**self.train, "epochs": epochs}
            changes["train_variants"] = tuple({k: v for k, v in t.items() if k != "epochs"}
                                              for t in self.train_variants)
        if schemes is not None:
            changes["schemes"] = split_scheme_list(schemes) if isinstance(schemes, str) else schemes
        if name is not None:
            changes["name"] = name
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "schemes": list(self.schemes),
            "seeds": list(self.seeds),
            "models": [m.to_dict() for m in self.models],
            "datasets": list(self.datasets),
            "validation": self.validation,
            "limit_train": self.limit_train,
            "limit_val": self.limit_val,
            "train": dict(self.train),
            **({"train_variants": [dict(v) for v in self.train_variants]} if self.train_variants else {}),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StudyConfig:
        known = set(cls.__dataclass_fields__)
        extra = set(d) - known
        if extra:
            raise InitlabError(
                f"unknown study field(s) {sorted(extra)}; known fields are {sorted(known)}"
            )
        kw = dict(d)
        if "models" in kw:
            kw["models"] = tuple(_as_spec(m) for m in kw["models"])
        if "train_variants" in kw:
            kw["train_variants"] = tuple(kw["train_variants"])
        return cls(**kw)
