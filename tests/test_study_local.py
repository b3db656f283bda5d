"""Training study groups with the batched engine (initlab.study.local)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

from initlab.engine.models import MLPSpec
from initlab.errors import InitlabError
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


def _curves(store: Store) -> list:
    """Every epoch record of the store, without the wall times."""
    return [{k: v for k, v in r.to_dict().items() if k != "wall_s"}
            for rows in store.epoch_records().values() for r in rows]


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
        init = store.init_record(store.cells()[0].key)
        assert init.report.scheme == "he_normal" and init.report.seed == 0
        assert [layer.fan_in for layer in init.report.layers] == [784, 16]
        assert init.check is not None and init.check.ok  # initlab.check ran at init
        lsuv = next(r for r in store.cells() if r.scheme == "lsuv")
        assert store.init_record(lsuv.key).report.lsuv, "LSUV records its fitting steps"
        assert store.init_record(lsuv.key).check.ok  # checked on the batch it was fitted on
        for r in store.cells():
            epochs = store.epochs(r.key)
            assert [e.epoch for e in epochs] == [0, 1, 2]
            assert all(len(e.params) == 2 * 2 and len(e.activations) == 2 for e in epochs)  # weight + bias
            assert store.steps(r.key)
        he = store.epochs(study.cells[0].key)
        assert math.isnan(he[0].train_loss) and he[2].val_acc > 0.5
        s = summarize(store)
        assert [r.scheme for r in s.rows][:3] == ["he_normal", "zeros", "lsuv"]
        first = _curves(store)

    with Store.create(tmp_path / "b") as store:  # same cells, fresh store: same numbers
        run_study(study, store, engine_train_group(loader=lambda cell: data))
        again = _curves(store)
    assert repr(again) == repr(first)


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


# -- the signal-propagation probe recorded at init -----------------------------------------------


def _probe_study(schemes=("he_normal", "zeros", "lsuv"), seeds=2, models=(MLPSpec(hidden=(16,)),)):
    return StudyConfig(name="probe", schemes=schemes, seeds=seeds, models=models,
                       train={"epochs": 1, "batch_size": 64, "log_every": 4, "probe_size": 16,
                              "hist_bins": 5}).expand()


def _count_probe_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Wrap initlab.probe.probe (what the study calls) to record each call's schemes."""
    import importlib

    pkg = importlib.import_module("initlab.probe")
    real, calls = pkg.probe, []

    def counted(*args, **kwargs):
        calls.append(list(args[2]))
        return real(*args, **kwargs)

    monkeypatch.setattr(pkg, "probe", counted)
    return calls


def _strip_seconds(d: dict) -> dict:
    return {**d, "schemes": [{**s, "seconds": 0.0} for s in d["schemes"]]}


def test_study_probes_each_model_once_across_split_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from initlab.probe.runner import probe

    data = _data()
    calls = _count_probe_calls(monkeypatch)
    models = (MLPSpec(hidden=(16,)), MLPSpec(hidden=(8, 8), activation="tanh"))
    study = _probe_study(models=models)
    with Store.create(tmp_path / "a") as store:
        # 3 schemes x 2 seeds per model in groups of 4: the second group of a model adds its new scheme
        result = run_study(study, store, engine_train_group(loader=lambda cell: data), max_group_size=4)
        assert result.complete
        probes = {label: {dataset: p.to_dict()} for (label, dataset), p in store.probes().items()}
        assert store.probe_errors() == {}
        with_probe = _curves(store)
    assert calls == [["he_normal", "zeros"], ["lsuv"]] * 2
    assert sorted(probes) == sorted(m.label for m in models)
    for spec in models:
        stored = probes[spec.label]["fashion-mnist"]
        # the same as probing all schemes at once: the first 256 training images and labels, seed 0,
        # the Jacobian by the probe's size rule (PROBE_JACOBIAN)
        once = probe(spec, (data.train_x[:256], data.train_y[:256]), ["he_normal", "zeros", "lsuv"],
                             n_inputs=256, seed=0, jacobian=None).to_dict()
        assert _strip_seconds(stored) == _strip_seconds(once)
    # the probe does not change training: the same numbers without it
    with Store.create(tmp_path / "b") as store:
        run_study(study, store, engine_train_group(loader=lambda cell: data, probe=False), max_group_size=4)
        assert store.probes() == {}
        without = _curves(store)
    assert repr(without) == repr(with_probe)


def test_resumed_study_does_not_probe_its_model_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _data()
    calls = _count_probe_calls(monkeypatch)
    study = _probe_study(schemes=("he_normal", "lsuv"), seeds=1)
    train = engine_train_group(loader=lambda cell: data)

    def killed(cells, sink):  # trained, then killed before the cells are marked done
        train(cells, sink)
        raise KeyboardInterrupt

    with Store.create(tmp_path) as store:
        with pytest.raises(KeyboardInterrupt):
            run_study(study, store, killed)
        first = {k: p.to_dict() for k, p in store.probes().items()}
        assert calls == [["he_normal", "lsuv"]] and store.status_counts()["running"] == 2
        result = run_study(study, store, train)  # resume: both cells are trained again
        assert result.complete and result.resume.reset == 2
        assert calls == [["he_normal", "lsuv"]] and {k: p.to_dict() for k, p in store.probes().items()} == first


def test_a_failing_probe_is_recorded_and_the_study_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    def broken(*args, **kwargs):
        raise RuntimeError("probe exploded\nsecond line")

    monkeypatch.setattr(importlib.import_module("initlab.probe"), "probe", broken)
    data = _data()
    study = _probe_study(schemes=("he_normal",), seeds=1)
    label = study.cells[0].model_label
    with Store.create(tmp_path) as store:
        assert run_study(study, store, engine_train_group(loader=lambda cell: data)).complete
        assert store.probes() == {}
        assert store.probe_errors() == {(label, "fashion-mnist"): "RuntimeError: probe exploded second line"}


def test_cli_no_probe_reaches_the_trainer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import initlab.study
    from initlab.cli import main

    class Built(Exception):
        pass

    seen = []

    def fake_engine_train_group(**kwargs):
        seen.append(kwargs["probe"])
        raise Built  # stop before training

    monkeypatch.setattr(initlab.study, "check_data", lambda *a, **k: None)
    monkeypatch.setattr(initlab.study, "engine_train_group", fake_engine_train_group)
    for i, extra in enumerate(([], ["--no-probe"])):
        with pytest.raises(Built):
            main(["run", "smoke", "--out", str(tmp_path / str(i)), "--no-report", "--quiet", *extra])
    assert seen == [True, False]


def test_memory_estimate_counts_parameters_steps_and_validation() -> None:
    from initlab.engine.memory import training_bytes

    spec = MLPSpec(in_features=10, hidden=(4,), out_features=3)
    params = 10 * 4 + 4 + 4 * 3 + 3
    want = 2 * (16 * params + 16 * 8 * (4 + 3) + 8 * 100 * 4)
    assert training_bytes(spec, 2, batch_size=8, eval_batch_size=100) == want


def test_memory_estimate_of_any_module_counts_its_leaf_outputs() -> None:
    from torch import nn

    from initlab.engine.memory import module_training_bytes

    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 5 * 5, 3))
    params = (2 * 9 + 2) + (50 * 3 + 3)
    outputs = 50 + 50 + 50 + 3  # conv, relu, flatten, linear: per sample
    want = 4 * (16 * params + 8 * 16 * outputs + 8 * 64 * 50)
    assert module_training_bytes(model, (1, 5, 5), 4, batch_size=16, eval_batch_size=64) == want
    assert model.training  # the estimate leaves the module as it found it


def test_a_study_too_big_for_the_device_is_refused_with_the_group_size_that_fits(monkeypatch) -> None:
    import initlab.engine.memory as memory
    from initlab.engine.memory import training_bytes
    from initlab.study import check_memory

    cells = StudyConfig(name="m", schemes=("zeros", "he_normal", "ones"), seeds=2,
                        models=(MLPSpec(hidden=(64,)),)).expand().cells
    one = training_bytes(MLPSpec(hidden=(64,)), 1, 128, 2048)
    monkeypatch.setattr(memory, "device_bytes", lambda device: int(2.5 * one))
    with pytest.raises(InitlabError, match="pass --max-group 2 or fewer"):
        check_memory(cells, "cpu")
    check_memory(cells, "cpu", max_group_size=2)
    monkeypatch.setattr(memory, "device_bytes", lambda device: one // 2)
    with pytest.raises(InitlabError, match="one model alone"):
        check_memory(cells, "cpu", max_group_size=1)
    monkeypatch.setattr(memory, "device_bytes", lambda device: None)  # unknown: no check
    check_memory(cells, "cpu")


def test_a_study_of_any_family_takes_the_generic_trainer_and_is_probed(tmp_path: Path) -> None:
    """A conv net and a residual net train through the generic trainer (the MLP fast path
    is not given them), each group is probed at init, and the records name its modules;
    a model with BatchNorm trains one by one and the run log says so."""
    from initlab.engine.families import spec_from_dict

    data = _data(128, 32)
    models = (spec_from_dict({"kind": "cnn", "depth": 2, "channels": 4, "downsample": [1, 2]}),
              spec_from_dict({"kind": "resnet", "depth": 1, "width": 4, "norm": "batch", "downsample": [1]}))
    study = StudyConfig(name="families", schemes=("he_normal", "lsuv"), seeds=1, models=models,
                        train={"epochs": 1, "batch_size": 64, "probe_size": 8}).expand()
    log: list[str] = []
    with Store.create(tmp_path) as store:
        result = run_study(study, store, engine_train_group(loader=lambda cell: data, log=log.append))
        assert result.complete and not store.probe_errors()
        assert set(store.probes()) == {(m.label, "fashion-mnist") for m in models}
        names = {a.name for rows in store.epoch_records().values() for r in rows for a in r.activations}
        assert "conv1" in names and any(n.startswith("blocks.0.branch") for n in names)
        params = {p.name for rows in store.epoch_records().values() for r in rows for p in r.params}
        assert "blocks.0.branch.0.weight" in params
    assert any("one by one" in line and "BatchNorm" in line for line in log), log
