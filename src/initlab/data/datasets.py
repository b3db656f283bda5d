"""Load a dataset as torch tensors: :func:`load_dataset` and :class:`Dataset`.

Pixels are scaled as in the article, ``x = p / 255`` for the uint8 pixel ``p``, giving
float32 images ``[N, 28, 28]`` in ``[0, 1]``; labels are int64 ``[N]``. With
``standardize=True`` every pixel of both splits becomes ``(x - mu) / sigma``, where
``mu`` and ``sigma`` are the mean and (population, ``ddof=0``) standard deviation of
all pixels of the training split actually used (after the hold-out split and
``limit_train``). They are computed exactly from the uint8 histogram::

    mu = sum_v h_v v / (255 n),   sigma^2 = sum_v h_v (v/255 - mu)^2 / n

(for Fashion-MNIST's 60,000 training images mu = 0.2860, sigma = 0.3530; Xiao et al.
2017). ``validation="test"`` uses the official 10,000-image test set as the validation
split; a float ``f`` holds out a seeded, stratified fraction of the training set
instead (:mod:`initlab.data.split`).

Each file is checked before use: md5 against the source (:mod:`~initlab.data.checksum`,
once per file per process), then the IDX structure (:mod:`~initlab.data.idx`), then
dataset rules: magic 0x00000803 with images of the source's shape, magic 0x00000801
labels, as many labels as images, labels in ``[0, num_classes)``. Decoded files are
kept in a small in-process LRU cache keyed like the md5 cache, so loading the same
data twice decodes it once.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch

from initlab.data import checksum
from initlab.data.download import fetch
from initlab.data.idx import MAGIC_IMAGES, MAGIC_LABELS, decode_idx, gunzip_if_needed
from initlab.data.locate import ENV_VAR, locate
from initlab.data.sources import (
    TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, DatasetSource, get_source,
)  # fmt: skip
from initlab.data.split import holdout_indices
from initlab.errors import InitlabError

_FIX = (
    f"delete it and rerun to download it again, or point --data-dir/{ENV_VAR} at a "
    "folder with the official files"
)


@dataclass(frozen=True, eq=False)
class Split:
    """One split: images ``x`` float32 ``[N, H, W]``, labels ``y`` int64 ``[N]``.

    ``indices`` (int64 ``[N]``) are the rows of the source file the examples came from.
    """

    x: torch.Tensor
    y: torch.Tensor
    indices: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset: train and validation splits plus where they came from.

    Attributes:
        name: the dataset name (``"fashion-mnist"``, ``"mnist"``, ...).
        train, val: the two :class:`Split` s.
        classes: class names; label ``k`` is ``classes[k]``.
        root: the data root the files were read from (it holds ``<name>/``).
        md5: md5 of each file that was read (``None`` for files not checksummed).
        validation: ``"test"`` or the held-out fraction.
        seed: the seed of the hold-out split.
        pixel_mean, pixel_std: mean and std of the training split's ``p / 255``
            pixels (before standardizing).
        standardized: whether ``(x - pixel_mean) / pixel_std`` was applied to both splits.
    """

    name: str
    train: Split
    val: Split
    classes: tuple[str, ...]
    root: Path
    md5: Mapping[str, str | None] = field(default_factory=dict)
    validation: str | float = "test"
    seed: int = 0
    pixel_mean: float = 0.0
    pixel_std: float = 1.0
    standardized: bool = False

    @property
    def folder(self) -> Path:
        """The folder holding the four files: ``root / name``."""
        return self.root / self.name

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, e.g. ``(28, 28)``."""
        return tuple(self.train.x.shape[1:])

    @property
    def x_train(self) -> torch.Tensor:
        return self.train.x

    @property
    def y_train(self) -> torch.Tensor:
        return self.train.y

    @property
    def x_val(self) -> torch.Tensor:
        return self.val.x

    @property
    def y_val(self) -> torch.Tensor:
        return self.val.y


def clear_cache() -> None:
    """Forget decoded arrays and verified md5s (e.g. after replacing files in place)."""
    _decoded.cache_clear()
    checksum.clear()


@functools.lru_cache(maxsize=8)
def _decoded(key: checksum.FileKey, expected_md5: str | None) -> tuple[int, np.ndarray, str | None]:
    """``(magic, read-only array, md5)`` of the file with ``key``, md5-checked first."""
    path = Path(key[0])
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InitlabError(f"cannot read {path}: {exc.strerror or exc}; {_FIX}") from exc
    if checksum.file_key(path) != key:  # changed between stat and read: check what we hold
        key = checksum.file_key(path)
    digest = checksum.verify_md5(path, expected_md5, fix=_FIX, raw=raw, key=key)
    magic, array = decode_idx(gunzip_if_needed(raw, path, fix=_FIX), path, fix=_FIX)
    array.flags.writeable = False
    return magic, array, digest


def _read(
    folder: Path, file: str, source: DatasetSource, *, labels: bool
) -> tuple[np.ndarray, str | None]:
    """Checked array of ``folder/file`` (images or labels of ``source``) and its md5."""
    path = folder / file
    try:
        key = checksum.file_key(path)
    except OSError as exc:
        raise InitlabError(f"cannot read {path}: {exc.strerror or exc}; {_FIX}") from exc
    magic, array, digest = _decoded(key, source.expected_md5(file))
    want = MAGIC_LABELS if labels else MAGIC_IMAGES
    what = "labels (uint8, 1-d)" if labels else "images (uint8, 3-d)"
    if magic != want:
        raise InitlabError(
            f"{path} has IDX magic 0x{magic:08x}, expected 0x{want:08x} for {what}; {_FIX}"
        )
    if not labels and tuple(array.shape[1:]) != source.image_shape:
        raise InitlabError(
            f"{path} holds images of shape {tuple(array.shape[1:])}, expected "
            f"{source.image_shape} for {source.name}; {_FIX}"
        )
    if labels and array.size and int(array.max()) >= source.num_classes:
        raise InitlabError(
            f"{path} has label {int(array.max())}, outside 0..{source.num_classes - 1} for "
            f"{source.name}'s {source.num_classes} classes; {_FIX}"
        )
    return array, digest


def _read_pair(
    folder: Path, source: DatasetSource, images: str, labels: str, md5: dict[str, str | None]
) -> tuple[np.ndarray, np.ndarray]:
    x, md5[images] = _read(folder, images, source, labels=False)
    y, md5[labels] = _read(folder, labels, source, labels=True)
    if x.shape[0] != y.shape[0]:
        raise InitlabError(
            f"{folder / images} has {x.shape[0]} images but {folder / labels} has {y.shape[0]} "
            f"labels; {_FIX}"
        )
    return x, y


def pixel_stats(images: np.ndarray) -> tuple[float, float]:
    """Exact mean and population std of ``images / 255`` for uint8 ``images``."""
    hist = np.bincount(np.asarray(images, dtype=np.uint8).ravel(), minlength=256).astype(np.float64)
    n = hist.sum()
    if n == 0:
        raise InitlabError(
            "cannot compute pixel statistics of an empty training split; load more data"
        )
    values = np.arange(256, dtype=np.float64) / 255.0
    mean = float(hist @ values / n)
    var = float(hist @ (values - mean) ** 2 / n)
    return mean, math.sqrt(var)


def _take(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``array[rows]`` for sorted unique ``rows``; a view (no copy) when they are a range."""
    if len(rows) and int(rows[-1]) - int(rows[0]) == len(rows) - 1:
        return array[int(rows[0]) : int(rows[-1]) + 1]
    return array[rows]


def _to_split(
    images: np.ndarray, labels: np.ndarray, rows: np.ndarray, shift: float, scale: float
) -> Split:
    x = np.divide(_take(images, rows), 255, dtype=np.float32)
    if shift != 0.0 or scale != 1.0:
        x -= np.float32(shift)
        x /= np.float32(scale)
    return Split(
        x=torch.from_numpy(x),
        y=torch.from_numpy(_take(labels, rows).astype(np.int64)),
        indices=torch.from_numpy(rows.astype(np.int64)),
    )


def _check_limit(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InitlabError(f"{name} must be a positive integer or None, not {value!r}")
    return int(value)


def _check_validation(value: str | float) -> str | float:
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "test":
            return "test"
        try:
            value = float(text)
        except ValueError:
            raise InitlabError(
                f"validation must be 'test' or a fraction in (0, 1), not {value!r}"
            ) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise InitlabError(f"validation must be 'test' or a fraction in (0, 1), not {value!r}")
    return float(value)


def load_dataset(
    name: str | DatasetSource = "fashion-mnist",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    validation: str | float = "test",
    standardize: bool = False,
    seed: int = 0,
    limit_train: int | None = None,
    limit_val: int | None = None,
    download: bool = True,
) -> Dataset:
    """Load ``name`` (or a :class:`DatasetSource`) as a :class:`Dataset` of torch tensors.

    Args:
        name: ``"fashion-mnist"`` (default) or ``"mnist"``, or a source object.
        data_dir: data root searched first (see :mod:`initlab.data.locate`).
        validation: ``"test"`` for the official test set, or a fraction ``0 < f < 1``
            of the training set held out (seeded by ``seed``, stratified by class).
        standardize: subtract the training pixel mean and divide by its std.
        seed: seed of the hold-out split (unused with ``validation="test"``).
        limit_train, limit_val: keep only the first this-many examples of each split.
        download: fetch missing files from the source's mirrors.

    Raises:
        InitlabError: files missing (and not downloadable), corrupt, truncated, with a
            wrong md5 or inconsistent contents; or a bad argument.
    """
    source = get_source(name)
    validation = _check_validation(validation)
    limit_train = _check_limit("limit_train", limit_train)
    limit_val = _check_limit("limit_val", limit_val)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InitlabError(f"seed must be an integer, not {seed!r}")

    folder = fetch(source, data_dir) if download else locate(source, data_dir)
    md5: dict[str, str | None] = {}
    train_x, train_y = _read_pair(folder, source, TRAIN_IMAGES, TRAIN_LABELS, md5)
    if validation == "test":
        val_x, val_y = _read_pair(folder, source, TEST_IMAGES, TEST_LABELS, md5)
        train_rows = np.arange(train_x.shape[0])
        val_rows = np.arange(val_x.shape[0])
    else:
        val_x, val_y = train_x, train_y
        train_rows, val_rows = holdout_indices(train_y, validation, int(seed), source.num_classes)
    train_rows = train_rows[:limit_train]
    val_rows = val_rows[:limit_val]

    mean, std = pixel_stats(_take(train_x, train_rows))
    shift, scale = 0.0, 1.0
    if standardize:
        if std == 0.0:
            raise InitlabError(
                f"the {len(train_rows)} training images of {source.name} are all one color "
                "(pixel std 0), so they cannot be standardized; use standardize=False or more data"
            )
        shift, scale = mean, std
    return Dataset(
        name=source.name,
        train=_to_split(train_x, train_y, train_rows, shift, scale),
        val=_to_split(val_x, val_y, val_rows, shift, scale),
        classes=source.classes,
        root=folder.parent,
        md5=MappingProxyType(md5),
        validation=validation,
        seed=int(seed),
        pixel_mean=mean,
        pixel_std=std,
        standardized=bool(standardize),
    )
