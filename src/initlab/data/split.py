"""A seeded, stratified hold-out split of a training set.

With ``N`` examples and fraction ``f``, the validation set gets exactly
``n_val = floor(f N + 1/2)`` examples, shared among the classes in proportion to
their sizes ``N_c`` by the largest-remainder (Hamilton) method: class ``c`` first gets
``floor(n_val N_c / N)``, and the examples still unassigned go one each to the classes
with the largest fractional parts (ties to the lower class index). Within each class
the validation examples are a uniform random subset, drawn with
``numpy.random.default_rng(seed)``; the same labels, fraction and seed always give the
same split. Both index arrays come back sorted, so each split keeps the file's order.
"""

from __future__ import annotations

import math

import numpy as np

from initlab.errors import InitlabError


def holdout_indices(
    labels: np.ndarray, fraction: float, seed: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, val_idx)``: sorted int64 indices into ``labels`` (see module doc)."""
    n = int(labels.shape[0])
    if not 0.0 < fraction < 1.0:
        raise InitlabError(
            f"validation fraction {fraction} must be strictly between 0 and 1; e.g. 0.1, or 'test'"
        )
    n_val = math.floor(fraction * n + 0.5)
    if not 1 <= n_val <= n - 1:
        raise InitlabError(
            f"validation fraction {fraction} of {n} training examples leaves {n_val} for "
            f"validation and {n - n_val} for training; choose a fraction that leaves both non-empty"
        )
    counts = np.bincount(labels, minlength=num_classes).astype(np.int64)
    exact = counts * n_val / n
    quota = np.floor(exact).astype(np.int64)
    short = n_val - int(quota.sum())
    if short:
        order = sorted(range(num_classes), key=lambda c: (-(exact[c] - quota[c]), c))
        quota[order[:short]] += 1
    rng = np.random.default_rng(seed)
    val_parts = []
    for c in range(num_classes):
        if quota[c]:
            members = np.flatnonzero(labels == c)
            val_parts.append(rng.choice(members, size=int(quota[c]), replace=False))
    val = np.sort(np.concatenate(val_parts)).astype(np.int64)
    mask = np.ones(n, dtype=bool)
    mask[val] = False
    return np.flatnonzero(mask).astype(np.int64), val
