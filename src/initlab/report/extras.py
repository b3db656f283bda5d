"""Optional dependencies of the exports, imported only when an export needs them.

===========  ===========================  =====================================
extra        packages                     used by
===========  ===========================  =====================================
tensorboard  ``tensorboard``              :func:`~initlab.report.export_tensorboard`
wandb        ``wandb``                    :func:`~initlab.report.export_wandb`
parquet      ``pandas``, ``pyarrow``      ``export_tables(..., format="parquet")``
===========  ===========================  =====================================

A missing package raises :class:`~initlab.errors.InitlabError` with one line naming the
feature and the install command, e.g.
``TensorBoard export needs the 'tensorboard' package; install it with
pip install 'initlab[tensorboard]'``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from initlab.errors import InitlabError

__all__ = ["EXTRAS", "export_inputs", "require"]

#: extra name -> (feature, packages it provides).
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "tensorboard": ("TensorBoard export", ("tensorboard",)),
    "wandb": ("W&B export", ("wandb",)),
    "parquet": ("Parquet export", ("pandas", "pyarrow")),
}


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` (e.g. ``"tensorboard.compat.proto.summary_pb2"``), or raise the
    one-line install hint of ``extra``."""
    feature, _ = EXTRAS[extra]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = (exc.name or module).split(".")[0]
        raise InitlabError(
            f"{feature} needs the '{top}' package; install it with pip install 'initlab[{extra}]'"
        ) from None


def export_inputs(run_dir: Any, out_dir: Any, data: Any = None) -> tuple[Any, Path]:
    """What every export starts from: the run's data (loaded unless given) and the output
    directory, created, or a one-line error when it cannot be."""
    if data is None:
        from initlab.report.rundata import load_run

        data = load_run(run_dir)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InitlabError(f"cannot create {str(out)!r}: {exc.strerror}; choose a writable directory") from None
    return data, out
