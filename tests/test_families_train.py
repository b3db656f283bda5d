"""Every model family trains through the generic trainer, vmapped or one by one, to the
same result within the stated float32 tolerances (see tests/test_generic.py and
tests/test_engine.py for their derivation); the article's MLP agrees with the fast path."""

from __future__ import annotations

import pytest
import torch

import initlab
from initlab.engine import TrainConfig, TrainData, train
from initlab.engine.families import spec_from_dict
from initlab.engine.generic import train_generic

from test_engine import SWITCH_METRICS, SWITCH_WEIGHTS, rounding_tolerance
from test_generic import assert_close

CFG = TrainConfig(epochs=1, batch_size=32, log_every=2, probe_size=16, hist_bins=8)

CUSTOM = '''
from torch import nn

def build():
    return nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 13 * 13, 10))
'''


@pytest.fixture(scope="module")
def data() -> TrainData:
    g = torch.Generator().manual_seed(0)
    return TrainData(torch.rand(96, 28, 28, generator=g), torch.randint(0, 10, (96,), generator=g),
                     torch.rand(48, 28, 28, generator=g), torch.randint(0, 10, (48,), generator=g))


FAMILIES = [
    ({"hidden": [32, 16], "bias": False, "dropout": 0.1}, "relu"),
    ({"kind": "linear", "depth": 4, "width": 32}, "smooth"),
    ({"kind": "cnn", "depth": 3, "channels": 4, "downsample": [1, 2]}, "relu"),
    ({"kind": "resnet", "depth": 2, "width": 4, "downsample": [2]}, "relu"),
    ({"kind": "custom", "builder": "CUSTOM", "input_shape": [1, 28, 28]}, "smooth"),
]


@pytest.mark.parametrize("table, kind", FAMILIES, ids=[f[0].get("kind", "mlp") for f in FAMILIES])
def test_each_family_trains_vmapped_as_one_by_one(table, kind, data, tmp_path) -> None:
    if table.get("builder") == "CUSTOM":
        (tmp_path / "mine.py").write_text(CUSTOM)
        table = {**table, "builder": f"{tmp_path / 'mine.py'}:build"}
    spec = spec_from_dict(table)
    models = []
    for seed in (0, 1, 0):
        m = spec.build(seed)
        initlab.apply(m, "he_normal", seed=seed)
        models.append(m)
    seeds = [3, 4, 3]
    shape = tuple(spec.input_shape)
    vm = train_generic(models, seeds, data, CFG, input_shape=shape, mode="vmap", spec=spec)
    each = train_generic(models, seeds, data, CFG, input_shape=shape, mode="each", spec=spec)
    if kind == "smooth":
        steps = max(e.step for e in each[0].epochs)
        widest = max(p.numel() // p.shape[0] for p in models[0].parameters() if p.dim() > 1)
        w_tol = m_tol = rounding_tolerance(steps, max(CFG.batch_size, widest))
    else:
        w_tol, m_tol = SWITCH_WEIGHTS, SWITCH_METRICS
    for m, a, b in zip(models, vm, each):
        assert_close(a, b, m.state_dict(), data, w_tol, m_tol)
        assert a.spec is spec
    names = {s.name for s in vm[0].epochs[0].activations}
    assert names and all(names)  # activation statistics labelled by module name


def test_the_article_mlp_takes_the_same_path_in_both_trainers(data) -> None:
    spec = spec_from_dict({})
    assert spec.fast_path and not spec_from_dict({"bias": False}).fast_path
    models = [spec.build(s) for s in (0, 1)]
    for s, m in enumerate(models):
        initlab.apply(m, "keras_default", seed=s)
    fast = train(models, [0, 1], data, CFG)
    generic = train_generic(models, [0, 1], data, CFG, input_shape=tuple(spec.input_shape))
    for m, a, b in zip(models, generic, fast):
        assert_close(a, b, m.state_dict(), data, SWITCH_WEIGHTS, SWITCH_METRICS)


def test_a_model_level_schemes_notes_survive_the_init_record() -> None:
    """Fixup on the resnet family says what it did (its notes) and the stored init record
    reads them back."""
    from initlab.study.init_records import init_report_from_dict

    model = spec_from_dict({"kind": "resnet", "depth": 2, "width": 4}).build()
    report = initlab.apply(model, "fixup", seed=0)
    assert report.notes and any("L = 2" in n for n in report.notes)
    assert init_report_from_dict(report.to_dict()).to_dict() == report.to_dict()
