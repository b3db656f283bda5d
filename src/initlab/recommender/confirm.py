"""Train the recommended schemes and the framework default in one short batched study.

The study is a normal initlab study (:mod:`initlab.study.session`: the same checks before
anything is written, the same store), so a kept run directory can be reported with
``initlab report`` and resumed with ``initlab run``. A model given as an ``nn.Module`` (or a
function returning one) is saved into the run directory (``recommend_model.pt``) with a
two-line builder file (``recommend_model.py:build``) that loads it, so that the study's
``custom`` model family can build it again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from initlab.errors import InitlabError
from initlab.recommender.record import Confirmation, Trained

__all__ = ["BUILDER_FILE", "TRAIN_DEFAULTS", "confirm", "module_spec"]

BUILDER_FILE = "recommend_model.py"
_TEMPLATE_FILE = "recommend_model.pt"
_BUILDER = '''"""Builds the model initlab.recommend was given (saved beside this file)."""
from pathlib import Path

import torch


def build():
    return torch.load(Path(__file__).with_name("{template}"), weights_only=False)
'''

#: Train settings of the confirming study per optimizer (Adam: the article's; SGD: with momentum).
TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "adam": {"optimizer": "adam", "lr": 1e-3, "eps": 1e-7, "batch_size": 128},
    "sgd": {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "batch_size": 128},
}


def module_spec(model: Any, input_shape: Sequence[int], run_dir: Path, name: str) -> Any:
    """A ``custom`` model spec that builds *model* (an ``nn.Module``) again: the module is
    saved with ``torch.save`` into *run_dir* beside a builder file that loads it."""
    import torch

    from initlab.engine.custom_model import CustomSpec

    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        torch.save(model, run_dir / _TEMPLATE_FILE)
    except Exception as exc:  # noqa: BLE001 - pickling user classes can fail in many ways
        raise InitlabError(f"cannot save the model to train it ({type(exc).__name__}: {exc}); pass a "
                           "FILE.py:FUNCTION model or a model spec instead") from None
    (run_dir / BUILDER_FILE).write_text(_BUILDER.format(template=_TEMPLATE_FILE), encoding="utf-8")
    return CustomSpec(builder=f"{(run_dir / BUILDER_FILE).resolve()}:build", input_shape=tuple(input_shape),
                      name=name)


def confirm(spec_or_module: Any, schemes: Sequence[str], *, dataset: str, data_dir: str | os.PathLike[str] | None,
            epochs: int, seeds: Sequence[int], optimizer: str, limit_train: int | None, limit_val: int | None,
            out: str | os.PathLike[str] | None, input_shape: Sequence[int] | None = None, label: str = "model",
            train: dict[str, Any] | None = None, log: Callable[[str], None] | None = None,
            probe: bool = True) -> tuple[dict[str, Trained], Confirmation]:
    """Train *schemes* on the model for *epochs* with each of *seeds* in one study (run
    directory *out*, or a temporary one removed afterwards) and return each scheme's
    :class:`Trained` outcome and the :class:`Confirmation` settings."""
    import tempfile

    from initlab.engine.models import ModelSpec
    from initlab.study.config import StudyConfig
    from initlab.study.session import execute_plan, plan_run

    settings = {**TRAIN_DEFAULTS[optimizer], **(train or {}), "epochs": int(epochs)}
    tmp = tempfile.TemporaryDirectory(prefix="initlab-recommend-") if out is None else None
    run_dir = Path(tmp.name if tmp is not None else out)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    try:
        if isinstance(spec_or_module, ModelSpec):
            spec = spec_or_module
        else:
            if input_shape is None:
                raise InitlabError("training the model needs its input shape; pass input_shape=(C, H, W)")
            from initlab.outputs import check_output_dir

            check_output_dir(run_dir, "out")
            spec = module_spec(spec_or_module, input_shape, run_dir, label)
        config = StudyConfig(name="recommend", schemes=tuple(schemes), seeds=tuple(seeds), models=(spec,),
                             datasets=(dataset,), validation="test", limit_train=limit_train,
                             limit_val=limit_val, train=settings)
        # groups sized from free memory, so many schemes of a large model never ask for more than there is
        plan = plan_run(config, out=run_dir, data_dir=data_dir, max_group="auto")
        _, summary = execute_plan(plan, data_dir=data_dir, probe=probe, log=log)
    finally:
        if tmp is not None:
            tmp.cleanup()
    out_map: dict[str, Trained] = {}
    for row in summary.rows:
        accs = tuple(float(a) for a in row.final_accs)
        out_map[row.scheme] = Trained(accs, int(row.diverged))
    conf = Confirmation(dataset=dataset, limit_train=limit_train, limit_val=limit_val, epochs=int(epochs),
                        seeds=tuple(seeds), train={k: v for k, v in settings.items() if k != "epochs"},
                        run_dir="" if tmp is not None else str(run_dir), wall_s=time.perf_counter() - t0)
    return out_map, conf
