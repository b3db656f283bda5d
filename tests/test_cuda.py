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


# --------------------------------------------------------------------------- the speed paths


def _fell_back(caught) -> list[str]:
    return [str(w.message) for w in caught if "fell back to eager" in str(w.message)]


def test_cuda_graphs_train_as_the_eager_step():
    """Each step captured once per batch size (128 and the last, partial one) and replayed
    trains as the eager step (float32 tolerance: the same kernels, replayed), through a
    divergence, which drops the model and captures the smaller stack anew. Without a
    GPU the mode falls back to eager, with a warning (what INITLAB_CUDA_TESTS_ON=cpu checks)."""
    import warnings

    from test_engine import _scaled, init_model
    from initlab.engine import MLPSpec

    data = make_data(n_train=500)  # batches of 128: 3 full, one of 116
    cfg = dataclasses.replace(CUDA, epochs=3)
    models = three_models() + [_scaled(init_model(MLPSpec(), "normal", 5), 1e30)]
    seeds = [11, 12, 13, 14]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graphed = train(models, seeds, data, cfg, step="cuda-graphs")
    eager = train(models, seeds, data, cfg)
    if DEV == "cuda":
        assert not _fell_back(caught)
    else:
        assert any("CUDA graphs need a CUDA device" in m for m in _fell_back(caught))
    for m, a, b in zip(models, graphed, eager):
        assert_trains_like(a, b, m.state_dict(), data)
    assert graphed[3].diverged and eager[3].diverged


def test_cuda_graphs_with_sgd_momentum():
    import warnings

    data = make_data()
    cfg = dataclasses.replace(CUDA, optimizer="sgd", lr=0.05, momentum=0.9)
    models, seeds = three_models(), [1, 2, 3]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graphed = train(models, seeds, data, cfg, step="cuda-graphs")
    assert (DEV == "cuda") != bool(_fell_back(caught))
    for m, a, b in zip(models, graphed, train(models, seeds, data, cfg)):
        assert_trains_like(a, b, m.state_dict(), data)


def test_compiled_step_with_inductor_trains_as_eager():
    """torch.compile's default backend (inductor: Triton kernels on CUDA, C++ on the CPU)
    on the step; its fused elementwise kernels round differently: float32 tolerance."""
    import warnings

    data = make_data()
    models, seeds = three_models(), [1, 2, 1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = train(models, seeds, data, CUDA, step="compile")
    assert not _fell_back(caught)
    for m, a, b in zip(models, compiled, train(models, seeds, data, CUDA)):
        assert_trains_like(a, b, m.state_dict(), data)


def test_bf16_and_tf32_stay_near_fp32():
    """bf16 (and tf32 on CUDA) train each model within its precision's rounding of fp32:
    one SGD step, whose update is lr times the gradient, so the weights' gap is the
    gradients' (bf16: 2**-8 a product, tf32: 2**-11; fp32: ~1e-6)."""
    from initlab.errors import InitlabError

    data = make_data()
    cfg = dataclasses.replace(CUDA, optimizer="sgd", lr=0.1, epochs=1, shuffle=False, batch_size=512)
    models, seeds = three_models(), [1, 2, 3]
    fp = train(models, seeds, data, cfg)
    for precision in ("bf16", "tf32"):
        low_cfg = dataclasses.replace(cfg, precision=precision)
        if precision == "tf32" and DEV != "cuda":
            with pytest.raises(InitlabError, match="tf32"):
                train(models, seeds, data, low_cfg)
            continue
        low = train(models, seeds, data, low_cfg)
        for m, a, b in zip(models, low, fp):
            init = m.state_dict()
            gap = max(float((a.final_state[k] - b.final_state[k]).abs().max()
                            / (b.final_state[k] - init[k]).abs().max()) for k in init)
            assert 1e-5 < gap < 0.1, (precision, gap)
    assert torch.backends.cuda.matmul.allow_tf32 is False  # restored after the tf32 run


def test_max_group_auto_reads_the_devices_free_memory():
    from initlab.engine.memory import device_bytes, free_bytes, models_that_fit, training_bytes
    from initlab.engine import MLPSpec

    free = free_bytes(DEV)
    assert 0 < free <= device_bytes(DEV)
    k = models_that_fit(training_bytes(MLPSpec(), 1, 128, 2048), free)
    assert k >= 1
    if DEV == "cuda" and device_bytes(DEV) > 100 * 2**30:  # an H100/H200-class GPU
        assert k >= 700
