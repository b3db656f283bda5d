"""Small records for tests of the store, the sinks and the report (not a test module)."""

from __future__ import annotations

import math

from initlab.records import QUANTILE_LEVELS, ActivationStats, Divergence, EpochRecord, ParamStats, StepRecord


def param_stats(layer: int, param: str = "weight", *, scale: float = 0.1, nan: bool = False) -> ParamStats:
    mean = math.nan if nan else 0.01 * layer
    return ParamStats(layer=layer, param=param, name=f"{2 * layer - 1}.{param}", numel=8 * layer,
                      mean=mean, std=scale, min=-2 * scale, max=2 * scale, frac_zero=0.0, nonfinite=0,
                      quantiles=tuple(scale * (q - 0.5) for q in QUANTILE_LEVELS),
                      hist_edges=(-2 * scale, 0.0, 2 * scale), hist_counts=(3 * layer, 5 * layer))


def epoch_record(model: int, epoch: int, *, seed: int = 0, layers: int = 2, val_acc: float | None = None,
                 diverged: bool = False) -> EpochRecord:
    acc = 0.1 * epoch + 0.01 * seed if val_acc is None else val_acc
    return EpochRecord(
        model=model, epoch=epoch, step=4 * epoch,
        train_loss=math.nan if epoch == 0 else 1.0 / (epoch + 1) + seed, train_acc=math.nan if epoch == 0 else 0.5,
        val_loss=2.0 - epoch, val_acc=acc, wall_s=0.25, batch_models=2, diverged=diverged,
        params=tuple(p for layer in range(1, layers + 1)
                     for p in (param_stats(layer, scale=0.1 * (epoch + 1)), param_stats(layer, "bias"))),
        activations=tuple(ActivationStats(layer, 0.0, 1.0, 0.5, 0.7, 0.4, 0.0) for layer in range(1, layers + 1)),
    )


def step_record(model: int, step: int, epoch: int = 1, loss: float = 0.5) -> StepRecord:
    return StepRecord(model=model, epoch=epoch, step=step, steps=2, samples=64, loss=loss, accuracy=0.25)


def divergence(model: int = 0, epoch: int = 1, step: int = 7) -> Divergence:
    return Divergence(model=model, epoch=epoch, step=step, epoch_step=step, loss=math.inf, reason="loss")


def init_record(scheme: str = "he_normal", seed: int = 0, hidden: int = 8):
    """A real init record: ``initlab.apply`` then ``initlab.check`` on a small MLP."""
    import torch

    import initlab
    from initlab.study.init_records import init_record as make

    model = torch.nn.Sequential(torch.nn.Linear(784, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))
    data = torch.rand(64, 784, generator=torch.Generator().manual_seed(0))
    needs = initlab.get_scheme(scheme).requires_data
    report = initlab.apply(model, scheme, seed=seed, data=data if needs else None)
    return make(report, model, data if needs else None)
