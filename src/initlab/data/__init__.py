"""Datasets: locate, download, verify and load Fashion-MNIST and MNIST.

Typical use::

    from initlab.data import load_dataset
    ds = load_dataset("fashion-mnist", limit_train=1000)   # Dataset
    ds.train.x.shape, ds.train.y.dtype                     # (1000, 28, 28), torch.int64

Where the files are looked for: in ``data_dir`` / ``--data-dir`` alone when it is given;
else in ``$INITLAB_DATA_DIR``, then ``$XDG_CACHE_HOME/initlab/data`` (or
``~/.cache/initlab/data``), the first complete folder winning; each root holds
``fashion-mnist/`` and ``mnist/`` with the four official gzip IDX files. Missing files are
downloaded, md5-checked, into ``data_dir`` when given, else the first root when writable,
else the cache (:mod:`initlab.data.download`).

Modules: :mod:`~initlab.data.sources` (what a dataset is), :mod:`~initlab.data.idx`
(the file format), :mod:`~initlab.data.checksum` (md5, cached per process),
:mod:`~initlab.data.locate` (search order), :mod:`~initlab.data.download` (mirrors),
:mod:`~initlab.data.split` (hold-out split), :mod:`~initlab.data.datasets` (loading).
"""

from __future__ import annotations

from initlab.data.datasets import Dataset, Split, clear_cache, load_dataset, pixel_stats
from initlab.data.download import download_file, download_folder, fetch
from initlab.data.idx import read_idx, write_idx
from initlab.data.locate import ENV_VAR, cache_dir, data_roots, locate, missing_files
from initlab.data.sources import DATASETS, FILES, DatasetSource, get_source

__all__ = [
    "DATASETS",
    "ENV_VAR",
    "FILES",
    "Dataset",
    "DatasetSource",
    "Split",
    "cache_dir",
    "clear_cache",
    "data_roots",
    "download_file",
    "download_folder",
    "fetch",
    "get_source",
    "load_dataset",
    "locate",
    "missing_files",
    "pixel_stats",
    "read_idx",
    "write_idx",
]
