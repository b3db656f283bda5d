"""Cells, studies and batches of cells.

A :class:`Cell` is one self-contained unit of work: train one model of one spec, from one
initialization scheme and seed, on one dataset, with one training configuration. It holds
only plain JSON values, so an executor can ship it to another process or machine
(``Cell.from_dict(json.loads(text))``), and it is identified by a stable :attr:`Cell.key`:
the first 16 hex digits of the SHA-256 of its canonical JSON (keys sorted, no spaces,
no NaN). The key does not depend on where (device) or in which order a cell runs.

A :class:`Study` is a name, an ordered tuple of distinct cells and the configuration that
produced them. Cells that differ only in scheme and seed share a :func:`group_key` and can
be trained together by the batched engine (:func:`group_cells`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from initlab.errors import InitlabError

__all__ = ["Cell", "Study", "canonical_json", "group_cells", "group_key", "short_hash"]


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, NaN/inf rejected."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except ValueError as exc:
        raise InitlabError(f"value is not JSON-safe ({exc}); use finite numbers") from None


def short_hash(value: Any, n: int = 16) -> str:
    """First ``n`` hex digits of the SHA-256 of :func:`canonical_json` of ``value``."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:n]


def _plain(value: Any) -> Any:
    """Deep copy into plain JSON types (tuples become lists)."""
    return json.loads(canonical_json(value))


_FIELDS = ("dataset", "validation", "limit_train", "limit_val", "model", "scheme", "seed", "train")


@dataclass(frozen=True, eq=False)
class Cell:
    """One model to train.

    Attributes:
        dataset: dataset name as :func:`initlab.data.load_dataset` takes it.
        validation: ``"test"`` or a hold-out fraction of the training set.
        limit_train, limit_val: keep only the first this-many examples (``None``: all).
        model: a model spec (:mod:`initlab.engine.families`) as ``to_dict()``.
        scheme: initialization scheme spec string (see :func:`initlab.schemes.get_scheme`).
        seed: the model's seed (initialization and data order).
        train: :class:`initlab.engine.config.TrainConfig` fields as a dict, without the
            execution-only fields (``device``, ``eval_batch_size``).
    """

    dataset: str
    validation: str | float
    limit_train: int | None
    limit_val: int | None
    model: dict[str, Any]
    scheme: str
    seed: int
    train: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, str) or not self.dataset:
            raise InitlabError(f"cell dataset must be a non-empty name, got {self.dataset!r}")
        if not isinstance(self.scheme, str) or not self.scheme:
            raise InitlabError(f"cell scheme must be a non-empty spec string, got {self.scheme!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InitlabError(f"cell seed must be an integer >= 0, got {self.seed!r}")
        for name in ("limit_train", "limit_val"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise InitlabError(f"cell {name} must be a positive integer or None, got {v!r}")
        if isinstance(self.validation, float) and not math.isfinite(self.validation):
            raise InitlabError(f"cell validation must be 'test' or a fraction, got {self.validation!r}")
        if not isinstance(self.model, Mapping) or not isinstance(self.train, Mapping):
            raise InitlabError("cell model and train must be dicts")
        object.__setattr__(self, "model", _plain(dict(self.model)))
        object.__setattr__(self, "train", _plain(dict(self.train)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (a deep copy)."""
        return _plain({name: getattr(self, name) for name in _FIELDS})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Cell:
        extra = set(d) - set(_FIELDS)
        missing = set(_FIELDS) - set(d)
        if extra or missing:
            raise InitlabError(
                f"bad cell dict: unknown {sorted(extra)}, missing {sorted(missing)}; "
                f"a cell has exactly {', '.join(_FIELDS)}"
            )
        return cls(**{name: d[name] for name in _FIELDS})

    @cached_property
    def key(self) -> str:
        """Stable identity: 16 hex digits of the SHA-256 of the canonical JSON."""
        return short_hash(self.to_dict())

    @cached_property
    def group(self) -> str:
        """:func:`group_key` of this cell."""
        return group_key(self)

    @property
    def epochs(self) -> int:
        return int(self.train.get("epochs", 0))

    @cached_property
    def model_spec(self) -> Any:
        """The model's spec (:func:`initlab.engine.families.spec_from_dict` of ``model``)."""
        from initlab.engine.families import spec_from_dict

        return spec_from_dict(self.model)

    @cached_property
    def model_label(self) -> str:
        """The model's short label, e.g. ``mlp-256x128-relu-d0.2``, ``cnn-8x32-relu``."""
        return str(self.model_spec.label)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cell) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return (
            f"Cell({self.key}: {self.scheme} seed={self.seed} {self.model_label} "
            f"on {self.dataset})"
        )


def group_key(cell: Cell) -> str:
    """Cells with equal group keys differ at most in scheme and seed, so the batched
    engine can train them together: same dataset (and validation, limits), model spec
    and training configuration."""
    d = cell.to_dict()
    del d["scheme"], d["seed"]
    return short_hash(d)


def group_cells(cells: Iterable[Cell], max_size: int | None = None) -> list[tuple[Cell, ...]]:
    """Partition ``cells`` into batches of one :func:`group_key`, each at most
    ``max_size`` long, in order of first appearance (cell order kept inside a group)."""
    if max_size is not None and (isinstance(max_size, bool) or max_size < 1):
        raise InitlabError(f"max group size must be a positive integer, got {max_size!r}")
    by_group: dict[str, list[Cell]] = {}
    for c in cells:
        by_group.setdefault(c.group, []).append(c)
    out: list[tuple[Cell, ...]] = []
    for members in by_group.values():
        step = max_size or len(members)
        out.extend(tuple(members[i : i + step]) for i in range(0, len(members), step))
    return out


@dataclass(frozen=True, eq=False)
class Study:
    """A named, ordered set of distinct cells plus the configuration that made them.

    ``config`` is a plain dict (for :class:`~initlab.study.config.StudyConfig` studies,
    its ``to_dict()``); it is stored with the results for reports.
    """

    name: str
    cells: tuple[Cell, ...]
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InitlabError("a study needs a non-empty name")
        cells = tuple(self.cells)
        if not cells:
            raise InitlabError(f"study {self.name!r} has no cells; give at least one scheme and seed")
        seen: dict[str, Cell] = {}
        for c in cells:
            if not isinstance(c, Cell):
                raise InitlabError(f"study cells must be Cell objects, got {type(c).__name__}")
            if c.key in seen:
                raise InitlabError(f"study {self.name!r} lists the same cell twice: {c!r}")
            seen[c.key] = c
        object.__setattr__(self, "cells", cells)
        object.__setattr__(self, "config", _plain(dict(self.config)))

    @cached_property
    def fingerprint(self) -> str:
        """Identity of the work: hash of the sorted cell keys (order and name excluded)."""
        return short_hash(sorted(c.key for c in self.cells))

    def groups(self, max_size: int | None = None) -> list[tuple[Cell, ...]]:
        """:func:`group_cells` of this study's cells."""
        return group_cells(self.cells, max_size)

    def __len__(self) -> int:
        return len(self.cells)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "config": _plain(self.config),
                "cells": [c.to_dict() for c in self.cells]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Study:
        try:
            return cls(d["name"], tuple(Cell.from_dict(c) for c in d["cells"]), d.get("config", {}))
        except KeyError as exc:
            raise InitlabError(f"bad study dict: missing {exc.args[0]!r}") from None

