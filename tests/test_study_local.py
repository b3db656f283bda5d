"""Training study groups with the batched engine (initlab.study.local)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

from initlab.engine.models import MLPSpec
from initlab.study import Store, StudyConfig, get_preset, run_study, summarize
from initlab.study.local import engine_train_group


def _data(n_train: int = 256, n_val: int = 64):
    from initlab.engine.inputs import TrainData

    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (n_train + n_val,), generator=g)
    # learnable: the class sets the brightness of one image row
    x = 0.1 * torch.rand(n_train + n_val, 28, 28, generator=g)
    x[torch.arange(n_train + n_val), 2 * y] += 0.9
    return TrainData(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def test_engine_groups_are_recorded_and_reproducible(tmp_path: Path) -> None:
    data = _data()
    loads = []

    def loader(cell):
        loads.append(cell.key)
        return data

    study = StudyConfig(name="loc", schemes=("he_normal", "zeros", "lsuv"), seeds=1,
                        models=(MLPSpec(hidden=(16,)), MLPSpec(hidden=(8,))),
                        train={"epochs": 2, "batch_size": 32, "log_every": 4, "probe_size": 16,
                               "hist_bins": 5}).expand()
    with Store.create(tmp_path / "a") as store:
        result = run_study(study, store, engine_train_group(loader=loader))
        assert result.complete and result.done + result.diverged == 6
        assert len(loads) == 1  # one dataset for both groups
        assert store.get_meta("device")["device"] == "cpu"
        rec = store.cells()[0]
        assert rec.init["scheme"] == "he_normal" and rec.init["seed"] == 0
        assert [layer["fan_in"] for layer in rec.init["layers"]] == [784, 16]
        lsuv = next(r for r in store.cells() if r.scheme == "lsuv")
        assert lsuv.init["lsuv"], "LSUV records its fitting steps"
        for r in store.cells():
            epochs = store.epochs(r.key)
            assert [e["epoch"] for e in epochs] == [0, 1, 2]
            assert len(store.layer_stats(r.key)) == 3 * 2
            assert len(store.histograms(r.key)) == 3 * 2 * 2  # weight + bias per layer
            assert store.steps(r.key)
        he = [e for e in store.epochs() if e["cell"] == study.cells[0].key]
        assert math.isnan(he[0]["train_loss"]) and he[2]["val_acc"] > 0.5
        s = summarize(store)
        assert [r.scheme for r in s.rows][:3] == ["he_normal", "zeros", "lsuv"]
        first = store.epochs()

    with Store.create(tmp_path / "b") as store:  # same cells, fresh store: same numbers
        run_study(study, store, engine_train_group(loader=lambda cell: data))
        again = store.epochs()
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall"} for r in rows]  # noqa: E731
    assert repr(strip(again)) == repr(strip(first))


@pytest.mark.data
@pytest.mark.skipif(not os.environ.get("INITLAB_DATA_DIR"), reason="needs INITLAB_DATA_DIR")
def test_smoke_preset_on_real_data(tmp_path: Path) -> None:
    study = get_preset("smoke").expand()
    with Store.create(tmp_path) as store:
        result = run_study(study, store, engine_train_group())
        assert result.complete
        rows = {r.scheme: r for r in summarize(store).rows}
        assert rows["keras_default"].val_acc > 0.6  # one epoch on 2000 images
        assert rows["zeros"].val_acc < 0.3  # the article: all-zero weights do not learn
