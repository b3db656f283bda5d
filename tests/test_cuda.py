"""The CUDA paths: engine, generic trainer, apply, probe, check and `initlab run` on a GPU.

Every test here needs a CUDA device and is skipped without one (CI has none; a GPU
session runs them through ``benchmarks/gpu_session.sh``). They hold the GPU to the same
promises as the CPU: the batched engines train each model as the reference loop trains it
alone on the same device (float32 tolerances of ``test_engine.tolerances``: cuBLAS and
the CPU's BLAS round differently, so nothing here is compared bit for bit across
devices), initialization draws on the CPU so the same seed gives the same weights on
either device (bit for bit: the values are drawn once and copied), and a study runs end
to end on the device with its records in the store.
"""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import torch
from torch import nn

import initlab
from initlab.engine import TrainConfig, train
from initlab.engine.generic import train_generic
from initlab.engine.reference import train_one

from test_engine import assert_trains_like, make_data, three_models
from test_generic import CFG as GENERIC_CFG
from test_generic import SHAPE, SWITCH_METRICS, SWITCH_WEIGHTS, assert_close, seeded, small_cnn
from test_generic import make_data as generic_data

#: The device under test. ``INITLAB_CUDA_TESTS_ON=cpu`` runs this file on the CPU, which
#: checks the tests themselves (not the GPU) on a machine without one.
DEV = os.environ.get("INITLAB_CUDA_TESTS_ON", "cuda")

pytestmark = pytest.mark.skipif(DEV == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = TrainConfig(epochs=2, log_every=2, probe_size=64, hist_bins=10, device=DEV)


def test_engine_on_cuda_matches_the_reference_loop_on_cuda():
    data = make_data()
    models, seeds = three_models(), [11, 12, 13]
    results = train(models, seeds, data, CUDA)
    for m, s, r in zip(models, seeds, results):
        assert_trains_like(r, train_one(m, s, data, CUDA), m.state_dict(), data)
        assert all(v.device.type == "cpu" for v in r.final_state.values())  # results come back to the host


def test_sgd_on_cuda_matches_the_reference_loop_on_cuda():
    data = make_data()
    cfg = TrainConfig(epochs=2, log_every=2, probe_size=64, hist_bins=10, device=DEV,
                      optimizer="sgd", lr=0.05, momentum=0.9)
    models, seeds = three_models(), [1, 2, 3]
    for m, s, r in zip(models, seeds, train(models, seeds, data, cfg)):
        assert_trains_like(r, train_one(m, s, data, cfg), m.state_dict(), data)


def test_generic_trainer_on_cuda_vmapped_trains_as_one_by_one_on_a_cnn():
    """On the device, K vmapped CNNs train as the same CNNs one by one (the generic
    trainer's equivalence test of test_generic.py, on CUDA)."""
    data = generic_data()
    cfg = dataclasses.replace(GENERIC_CFG, device=DEV)
    models, seeds = [seeded(small_cnn, i) for i in range(3)], [1, 2, 1]
    vm = train_generic(models, seeds, data, cfg, input_shape=SHAPE, mode="vmap")
    each = train_generic(models, seeds, data, cfg, input_shape=SHAPE, mode="each")
    for m, a, b in zip(models, vm, each):
        assert_close(a, b, m.state_dict(), data, SWITCH_WEIGHTS, SWITCH_METRICS)


def test_apply_draws_the_same_weights_on_cuda_as_on_the_cpu():
    cpu = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Conv1d(3, 5, 3))
    gpu = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Conv1d(3, 5, 3)).to(DEV)
    for scheme in ("he_normal", "glorot_uniform", "orthogonal", "lecun_normal", "delta_orthogonal"):
        initlab.apply(cpu, scheme, seed=7)
        initlab.apply(gpu, scheme, seed=7)
        for (name, a), b in zip(cpu.state_dict().items(), gpu.state_dict().values()):
            assert b.device.type == DEV
            assert torch.equal(a, b.cpu()), (scheme, name)
    assert initlab.check(gpu, "delta_orthogonal").ok


def test_lsuv_and_probe_run_on_a_cuda_model():
    model = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 10)).to(DEV)
    x = torch.randn(256, 64, generator=torch.Generator().manual_seed(0)).to(DEV)
    report = initlab.apply(model, "lsuv", seed=0, data=x)
    assert report.lsuv and all(abs(s.out_var - 1.0) < 0.1 for s in report.lsuv)
    result = initlab.probe(model, x, ["he_normal", "orthogonal"], jacobian=True)
    assert [s.scheme for s in result.schemes] == ["he_normal", "orthogonal"]
    assert all(torch.isfinite(torch.tensor(s.jacobian_singular_values)).all() for s in result.schemes)


def test_initlab_run_smoke_on_cuda_end_to_end(tmp_path, monkeypatch, capsys):
    if not os.environ.get("INITLAB_DATA_DIR"):
        pytest.skip("needs INITLAB_DATA_DIR with Fashion-MNIST")
    from initlab.cli import main

    out = tmp_path / "run"
    rc = main(["run", "smoke", "--device", DEV, "--limit-train", "512", "--limit-val", "256",
               "--out", str(out), "--no-report", "--quiet"])
    assert rc == 0
    capsys.readouterr()
    assert main(["summary", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["finished"] == summary["total"] > 0 and not summary["partial"]
    assert all(r["n"] + r["diverged"] == r["planned"] for r in summary["rows"])


def test_memory_check_reads_the_gpus_memory():
    from initlab.engine.memory import device_bytes

    total = device_bytes(DEV)
    assert total is not None and total > 2**30
    if DEV == "cuda":
        assert total == torch.cuda.get_device_properties(0).total_memory
