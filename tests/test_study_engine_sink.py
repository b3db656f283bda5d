"""The engine -> store adapter (initlab.study.engine_sink) with the engine's own records."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from initlab.engine.models import MLPSpec
from initlab.engine.results import Sink
from initlab.records import (
    QUANTILE_LEVELS,
    ActivationStats,
    Divergence,
    EpochRecord,
    ParamStats,
    StepRecord,
)
from initlab.study import Cell, EngineSink, Store, StoreSink, StudyConfig, run_study


def _param(layer: int, param: str, scale: float) -> ParamStats:
    return ParamStats(layer=layer, param=param, name=f"{3 * layer - 2}.{param}", numel=12, mean=0.0,
                      std=scale, min=-scale, max=scale, frac_zero=0.0, nonfinite=0,
                      quantiles=tuple(scale * q for q in QUANTILE_LEVELS),
                      hist_edges=(-scale, 0.0, scale), hist_counts=(6, 6))


def _epoch(model: int, epoch: int, *, diverged: bool = False) -> EpochRecord:
    nan = math.nan
    return EpochRecord(
        model=model, epoch=epoch, step=4 * epoch, train_loss=nan if epoch == 0 or diverged else 1.0 / epoch,
        train_acc=nan if epoch == 0 or diverged else 0.5, val_loss=nan if diverged else 2.0 - 0.1 * epoch,
        val_acc=nan if diverged else 0.1 + 0.2 * epoch, wall_s=0.5, batch_models=2, diverged=diverged,
        params=tuple(_param(layer, p, 0.1 * layer) for layer in (1, 2) for p in ("weight", "bias")),
        activations=tuple(ActivationStats(layer=layer, pre_mean=0.0, pre_std=1.0, post_mean=0.4,
                                          post_std=0.6, post_frac_zero=0.5, dead_units=0.0)
                          for layer in (1, 2)),
    )


def _step(model: int, step: int) -> StepRecord:
    return StepRecord(model=model, epoch=(step - 1) // 4 + 1, step=step, steps=2, samples=256,
                      loss=1.0 / step, accuracy=0.3)


def _fake_engine(cells: Sequence[Cell], sink: StoreSink) -> None:
    """Drives an EngineSink the way the engine does: epoch 0, then per epoch steps and the
    epoch records; model 1 diverges at step 6 (epoch 2)."""
    es = EngineSink(sink)
    assert isinstance(es, Sink)
    es.on_epoch([_epoch(0, 0), _epoch(1, 0)])
    for step in (2, 4):
        es.on_step([_step(0, step), _step(1, step)])
    es.on_epoch([_epoch(0, 1), _epoch(1, 1)])
    es.on_step([_step(0, 6), _step(1, 6)])
    es.on_diverged(Divergence(model=1, epoch=2, step=7, epoch_step=3, loss=math.inf, reason="loss"))
    es.on_step([_step(0, 8)])
    es.on_epoch([_epoch(0, 2), _epoch(1, 2, diverged=True)])
    es.on_step([_step(0, 9)])  # a trailing window (no epoch record follows)
    es.flush()


def test_engine_records_land_in_the_store(tmp_path: Path) -> None:
    study = StudyConfig(name="e", schemes=("he_normal",), seeds=2, models=(MLPSpec(hidden=(8,)),),
                        train={"epochs": 2}).expand()
    with Store.create(tmp_path) as store:
        result = run_study(study, store, _fake_engine)
        assert (result.done, result.diverged) == (1, 1)
        ok, bad = study.cells
        assert store.get_meta("quantile_levels") == list(QUANTILE_LEVELS)

        rows = store.epochs(ok.key)  # the engine's records, unchanged, under their own names
        assert [type(r) for r in rows] == [EpochRecord] * 3
        for r, want in zip(rows, (_epoch(0, 0), _epoch(0, 1), _epoch(0, 2))):
            assert r.same(want)
        assert rows[1].params[2].name == "4.weight" and rows[1].params[2].std == pytest.approx(0.2)
        assert rows[1].params[0].hist_counts == (6, 6) and rows[1].activations[0].post_std == 0.6

        steps = store.steps(ok.key)
        assert [s.step for s in steps] == [2, 4, 6, 8, 9]
        assert all(s == _step(0, s.step) for s in steps)  # accuracy keeps its name

        (rec,) = store.cells("diverged")
        assert rec.key == bad.key and rec.status == "diverged"
        div = store.divergence(bad.key)
        assert div.same(Divergence(model=1, epoch=2, step=7, epoch_step=3, loss=math.inf, reason="loss"))
        assert store.divergence(ok.key) is None
        bad_rows = store.epochs(bad.key)
        assert [r.epoch for r in bad_rows] == [0, 1, 2] and bad_rows[2].diverged is True
        assert math.isnan(bad_rows[2].val_acc)
        assert [s.step for s in store.steps(bad.key)] == [2, 4, 6]
