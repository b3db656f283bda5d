"""Grid axes: a list where one value is expected makes that setting an axis of the study.

In a spec's ``[train]`` (or a ``[[train]]`` variant) ``lr = [0.001, 0.01, 0.1]`` gives three
train settings, one per value; in ``[model]`` ``depth = [8, 24]`` gives two models.  Several
axes in one table give their Cartesian product, in the order the keys are written (the last
key varies fastest).  A setting whose value is itself a list (``betas``, an MLP's
``hidden``, a CNN's per-layer ``channels``) is an axis only when it is given a list of such
lists: ``hidden = [[256, 128], [512]]``.

:func:`study_axes` finds the axes of a set of cells afterwards (what varies between them),
which is what the summary and the report group by.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from initlab.errors import InitlabError

__all__ = ["Axis", "axis_keys", "axis_value", "expand_axes", "setting_label", "study_axes"]


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def axis_keys(settings: Mapping[str, Any], list_valued: Callable[[str], bool],
              where: str = "") -> list[str]:
    """The keys of *settings* that are axes (see the module docstring), in their order.

    ``list_valued(key)`` says whether the key's own value is a list. An empty list is an
    error (an axis needs at least one value)."""
    keys = []
    for key, value in settings.items():
        if not _is_list(value):
            continue
        is_axis = not list_valued(key) or (len(value) > 0 and all(_is_list(v) for v in value))
        if not value:
            place = f"{where} {key}".strip()
            hint = "a list of values makes it an axis of the grid" if not list_valued(key) else \
                "give its value"
            raise InitlabError(f"{place} is an empty list; {hint} (at least one)")
        if is_axis:
            keys.append(key)
    return keys


def expand_axes(settings: Mapping[str, Any], list_valued: Callable[[str], bool],
                where: str = "") -> list[dict[str, Any]]:
    """Every combination of the axes of *settings* (one dict each, axes replaced by one of
    their values), in grid order; ``[dict(settings)]`` when it has no axis."""
    keys = axis_keys(settings, list_valued, where)
    if not keys:
        return [dict(settings)]
    out = []
    for combo in itertools.product(*(settings[k] for k in keys)):
        d = dict(settings)
        d.update(zip(keys, combo))
        out.append(d)
    return out


def check_distinct(variants: Sequence[Mapping[str, Any]], what: str) -> None:
    """Refuse a grid that lists the same settings twice (two cells would be one)."""
    seen: dict[str, int] = {}
    for i, v in enumerate(variants):
        key = repr(sorted((k, repr(x)) for k, x in v.items()))
        if key in seen:
            raise InitlabError(f"{what} #{seen[key] + 1} and #{i + 1} are the same settings; "
                               "list each combination once")
        seen[key] = i


@dataclass(frozen=True)
class Axis:
    """One dimension along which a study's cells differ.

    ``name`` is ``"scheme"``, ``"seed"``, ``"dataset"``, ``"model"`` (the model's label),
    ``"model.KEY"`` (one key of the model spec, e.g. ``model.depth``) or ``"train.KEY"``
    (``train.lr``); ``values`` are its distinct values in order of first appearance."""

    name: str
    values: tuple[Any, ...]

    @property
    def label(self) -> str:
        """The name without its table, e.g. ``lr``, ``depth``."""
        return self.name.split(".", 1)[-1]

    def value_of(self, cell: Any) -> Any:
        """This axis' value for *cell* (a :class:`~initlab.study.cell.Cell`)."""
        return axis_value(cell, self.name)


def _hashable(v: Any) -> Any:
    return tuple(_hashable(x) for x in v) if isinstance(v, list) else v


@functools.cache
def _train_defaults() -> dict[str, Any]:
    from initlab.engine.config import TrainConfig

    return dataclasses.asdict(TrainConfig())


def axis_value(cell: Any, name: str) -> Any:
    """The value of axis *name* (see :class:`Axis`) for *cell*: a setting left out of the
    cell's dicts has its default value (the engine's, or the model family's)."""
    if name in ("scheme", "seed", "dataset"):
        return getattr(cell, name)
    if name == "model":
        return cell.model_label
    table, _, key = name.partition(".")
    if table == "model":
        value = cell.model[key] if key in cell.model else getattr(cell.model_spec, key, None)
    else:
        value = cell.train[key] if key in cell.train else _train_defaults().get(key)  # read only
    return _hashable(value)


def study_axes(cells: Iterable[Any], *, include_seed: bool = False) -> list[Axis]:
    """The axes along which *cells* differ: scheme, dataset, model (when several models),
    every model key and train setting that takes more than one value, and ``seed`` when
    ``include_seed`` (seeds are repetitions, not an axis, for the summaries)."""
    cells = list(cells)
    names = ["scheme", "dataset", "model"]
    model_keys = dict.fromkeys(k for c in cells for k in c.model)
    train_keys = dict.fromkeys(k for c in cells for k in c.train)
    names += [f"model.{k}" for k in model_keys if k != "name"]
    names += [f"train.{k}" for k in train_keys]
    if include_seed:
        names.append("seed")
    axes = []
    for name in names:
        values = tuple(dict.fromkeys(axis_value(c, name) for c in cells))
        if len(values) > 1 or name == "scheme":
            axes.append(Axis(name, values))
    # a model key that varies only as the label does (one key per model) is the same axis
    # as "model": keep both, the summaries pick the key when there is one
    return axes


def _text(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def setting_label(cell: Any, axes: Sequence[Axis]) -> str:
    """The cell's values on the train axes among *axes*, e.g. ``"lr=0.01, optimizer=sgd"``
    (``""`` when the study has no train axis): with the dataset and the model's label,
    what makes a comparison group of the summaries."""
    return ", ".join(f"{a.label}={_text(a.value_of(cell))}" for a in axes if a.name.startswith("train."))
