"""The engine's opt-in speed paths on the CPU: bf16 precision (bfloat16 products, float32
master weights), ``step="compile"`` (torch.compile of the step) and the fall-back of
``step="cuda-graphs"`` without a GPU; ``--max-group auto``'s arithmetic. The CUDA side
(graphs captured and replayed, TF32, bf16 on the GPU) is in test_cuda.py."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch

from initlab.engine import MLPSpec, TrainConfig, TrainData, train, train_one
from initlab.engine import memory
from initlab.engine.precision import bf16_calls, check_precision
from initlab.engine.functional import run_calls
from initlab.errors import InitlabError

from test_engine import assert_trains_like, init_model, make_data

TINY = MLPSpec(hidden=(24, 16), dropout=0.2)
CFG = TrainConfig(epochs=1, batch_size=64, log_every=1, probe_size=16, hist_bins=5)


def tiny_models(n: int = 3, spec: MLPSpec = TINY) -> list[torch.nn.Sequential]:
    return [init_model(spec, "he", seed) for seed in range(n)]


def displacement_gap(a: dict, b: dict, init: dict) -> float:
    """``max |a - b| / max |b - init|`` over the weights: how far two trainings of one
    model ended apart, relative to how far they moved."""
    return max(float((a[k] - b[k]).abs().max() / (b[k] - init[k]).abs().max().clamp_min(1e-30))
               for k in init)


# --------------------------------------------------------------------------- precision


def test_precision_is_checked_in_one_line():
    with pytest.raises(InitlabError, match="precision must be one of fp32, tf32, bf16"):
        TrainConfig(precision="fp16")
    with pytest.raises(InitlabError, match="tf32.*CUDA.*on the CPU use fp32 or bf16"):
        check_precision("tf32", "cpu")
    check_precision("bf16", "cpu")
    data = make_data(64, 32)
    with pytest.raises(InitlabError, match="tf32"):  # refused before training
        train(tiny_models(1), [0], data, dataclasses.replace(CFG, precision="tf32"))
    assert "precision" not in TrainConfig().to_dict()  # the default keeps stored cells' keys
    assert TrainConfig(precision="bf16").to_dict()["precision"] == "bf16"


def test_bf16_products_round_operands_and_result_to_bfloat16():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 20, 50, generator=g)
    b = torch.randn(3, 50, 7, generator=g).transpose(1, 2).contiguous().transpose(1, 2)  # a strided view
    bias = torch.randn(3, 7, generator=g)
    out = torch.empty(3, 20, 7)
    calls = bf16_calls(a, b, out, bias)
    run_calls(calls)
    a16, b16 = a.bfloat16().double(), b.bfloat16().double()
    exact = a16 @ b16  # of the rounded operands, in float64
    want = exact.to(torch.bfloat16).double() + bias.double().unsqueeze(1)
    # bf16 result rounding: half a unit of the 8-bit mantissa, plus float32 accumulation
    err = (out.double() - want).abs() / exact.abs().clamp_min(1e-3)
    assert float(err.max()) <= 2.0**-8 + 1e-5
    f32 = torch.baddbmm(bias.unsqueeze(1), a, b)
    assert float((out - f32).abs().max()) > 1e-3  # not the float32 product
    a.mul_(2)  # the calls replay on the tensors' new values
    run_calls(calls)
    torch.testing.assert_close(out, (torch.bmm(a.bfloat16(), b.bfloat16()).float() + bias.unsqueeze(1)))


def test_bf16_products_keep_a_shared_batch_shared():
    x = torch.randn(20, 50)
    w = torch.randn(4, 50, 7)
    out = torch.empty(4, 20, 7)
    calls = bf16_calls(x.expand(4, 20, 50), w, out)
    a16 = calls[0][1][0]
    assert a16.stride(0) == 0 and a16.dtype == torch.bfloat16
    run_calls(calls)
    torch.testing.assert_close(out, torch.bmm(x.bfloat16().expand(4, 20, 50), w.bfloat16()).float())


def test_bf16_training_keeps_float32_master_weights():
    """One SGD step (its update is lr * gradient): bf16's gradients are within bfloat16
    rounding of float32's, not equal to them, and the weights stay float32."""
    data = make_data(64, 32)
    cfg = dataclasses.replace(CFG, optimizer="sgd", lr=0.1, epochs=1, shuffle=False)
    models = tiny_models(2)
    low = train(models, [0, 1], data, dataclasses.replace(cfg, precision="bf16"))
    for m, r in zip(models, low):
        ref = train_one(m, r.seed, data, cfg)
        init = m.state_dict()
        assert all(v.dtype == torch.float32 for v in r.final_state.values())
        gap = displacement_gap(r.final_state, ref.final_state, init)
        assert 1e-4 < gap < 0.1, gap  # bf16 rounding (2**-8 per product), not float32's (~1e-6)


def test_bf16_adam_steps_smaller_than_a_bfloat16_spacing_are_kept():
    """Adam's first step at lr 1e-5 moves each weight by about 1e-5 (lr * sign(g)); a
    bfloat16 weight above 0.05 has a spacing of at least 2**-12 = 2.4e-4, so with bfloat16
    weights those updates would round away. The master weights are float32, so bf16 moves
    as many weights as fp32 does."""
    data = make_data(64, 32)
    cfg = dataclasses.replace(CFG, lr=1e-5, shuffle=False)
    model = tiny_models(1)[0]
    init = model.state_dict()
    moved = {}
    for precision in ("fp32", "bf16"):
        res = train([model], [0], data, dataclasses.replace(cfg, precision=precision))[0]
        W = res.final_state["1.weight"]
        big = init["1.weight"].abs() > 0.05
        moved[precision] = float(((W - init["1.weight"]).abs() > 0)[big].float().mean())
    assert moved["fp32"] > 0.5  # (inputs that are 0 for every sample give a zero gradient)
    assert moved["bf16"] > 0.9 * moved["fp32"]


def test_bf16_trains_the_generic_trainer_under_autocast():
    from initlab.engine.generic import train_generic

    data = make_data(64, 32)
    models = tiny_models(2)
    cfg = dataclasses.replace(CFG, optimizer="sgd", lr=0.1, shuffle=False)  # the update shows the gradient
    fp = train_generic(models, [0, 1], data, cfg, input_shape=(784,), mode="vmap")
    low = train_generic(models, [0, 1], data, dataclasses.replace(cfg, precision="bf16"),
                        input_shape=(784,), mode="vmap")
    for m, a, b in zip(models, fp, low):
        gap = displacement_gap(b.final_state, a.final_state, m.state_dict())
        assert 1e-4 < gap < 0.5, gap


# --------------------------------------------------------------------------- step modes


def test_compiled_step_trains_as_the_eager_step(monkeypatch):
    """torch.compile of the step (forward and backward; the fused update stays) gives the
    eager step's results within float32 rounding. The backend here is ``aot_eager``: the
    graph torch.compile captures (dynamo's trace, functionalized by AOT autograd: where a
    step's in-place writes could go wrong) run by eager kernels, without inductor's code
    generation, which takes minutes of C++ compilation on a small CPU; inductor itself
    is checked by test_cuda.py (Triton on a GPU, C++ with INITLAB_CUDA_TESTS_ON=cpu)."""
    from initlab.engine import step

    monkeypatch.setattr(step, "COMPILE_BACKEND", "aot_eager")
    data = make_data(128, 32)  # two full batches of 64: one compilation
    models = tiny_models(2)
    eager = train(models, [0, 1], data, CFG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = train(models, [0, 1], data, CFG, step="compile")
    assert not [w for w in caught if "fell back" in str(w.message)]  # it did compile
    for m, a, b in zip(models, compiled, eager):
        assert_trains_like(a, b, m.state_dict(), data)


def test_a_failing_compile_falls_back_to_eager_with_a_warning(monkeypatch):
    def broken(fn, **kw):
        def call(*args):
            raise RuntimeError("no C++ compiler found")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    data = make_data(128, 32)
    models = tiny_models(2)
    with pytest.warns(UserWarning, match="'compile' fell back to eager: torch.compile failed .no C.. compiler"):
        got = train(models, [0, 1], data, CFG, step="compile")
    want = train(models, [0, 1], data, CFG)
    for a, b in zip(got, want):  # the same kernels: the same numbers
        assert all(torch.equal(a.final_state[k], b.final_state[k]) for k in a.final_state)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the fall-back without a CUDA device")
def test_cuda_graphs_without_a_gpu_fall_back_to_eager():
    data = make_data(128, 32)
    models = tiny_models(1)
    with pytest.warns(UserWarning, match="CUDA graphs need a CUDA device"):
        got = train(models, [0], data, CFG, step="cuda-graphs")
    want = train(models, [0], data, CFG)
    assert torch.equal(got[0].final_state["1.weight"], want[0].final_state["1.weight"])


def test_step_mode_is_checked():
    with pytest.raises(InitlabError, match="step must be one of eager, compile, cuda-graphs"):
        train(tiny_models(1), [0], make_data(64, 32), CFG, step="fast")


def test_cuda_graphs_refuse_a_schedule_and_foreach_adam():
    """What a graph cannot replay (a learning rate that changes, a step count read on the
    host) is found before training, not by wrong numbers."""
    from initlab.engine.stack import ParamStack
    from initlab.engine.step import BatchedStep

    data = make_data(64, 32)
    stack = ParamStack.from_models(tiny_models(1), torch.device("cpu"), TINY)
    x, y = data.train_x.reshape(64, -1), data.train_y
    step = BatchedStep(stack, x, y, CFG, "auto", mode="cuda-graphs")
    assert step.mode == "eager" and "CUDA device" in step.fallback
    step.device = torch.device("cuda")  # what the checks would say on a GPU
    step.mode = "cuda-graphs"
    assert "schedule" in step._accel_obstacle(dataclasses.replace(CFG, schedule="cosine"))
    step.optimizer.impl = "foreach"
    assert "fused Adam" in step._accel_obstacle(CFG)


# --------------------------------------------------------------------------- --max-group auto

H200_FREE = 139 * 2**30  # what torch.cuda.mem_get_info reports free on an idle H200, about


def test_max_group_auto_puts_the_seed_study_of_100_seeds_in_one_group_on_an_h200(monkeypatch):
    """By the engine's memory model, 700 article MLPs (7 schemes x 100 seeds) need 5.7 GiB:
    one group on a GPU with 139 GiB free."""
    from initlab.study import presets
    from initlab.study.cell import group_cells
    from initlab.study.local import auto_max_group

    monkeypatch.setattr(memory, "free_bytes", lambda device: H200_FREE)
    cells = presets.get_preset("seed").with_overrides(seeds=100).expand().cells
    k, note = auto_max_group(cells, "cuda")
    one = memory.training_bytes(MLPSpec(), 1, 128, 2048)
    assert one == 8_763_552
    assert k == int(0.5 * (H200_FREE - 2**30) // one) == 8454
    assert [len(g) for g in group_cells(cells, k)] == [700]
    assert "700 at once" in note and "139 GiB free on cuda" in note


def test_max_group_auto_splits_what_does_not_fit(monkeypatch):
    from initlab.study import presets
    from initlab.study.cell import group_cells
    from initlab.study.local import auto_max_group

    monkeypatch.setattr(memory, "free_bytes", lambda device: 2 * 2**30)
    cells = presets.get_preset("seed").with_overrides(seeds=100).expand().cells
    k, _ = auto_max_group(cells, "cuda")
    # reserve min(1 GiB, free / 4) = 0.5 GiB; half of the remaining 1.5 GiB: 91 models
    assert k == 91
    assert [len(g) for g in group_cells(cells, k)] == [91] * 7 + [63]
    assert memory.models_that_fit(10**12, 2**30) == 1  # at least one


def test_max_group_auto_on_the_cpu_reads_the_available_memory(monkeypatch, tmp_path):
    one = memory.training_bytes(MLPSpec(), 1, 128, 2048)
    k = memory.models_that_fit(one, memory.free_bytes("cpu"))
    assert 1 <= k and k * one <= memory.free_bytes("cpu")
    info = tmp_path / "meminfo"
    info.write_text("MemTotal:       16000000 kB\nMemAvailable:    8000000 kB\n")
    assert memory._meminfo_available(str(info)) == 8_000_000 * 1024
    assert memory._meminfo_available(str(tmp_path / "missing")) is None
    import builtins

    real_import = builtins.__import__

    def no_psutil(name, *a, **kw):
        if name == "psutil":
            raise ImportError(name)
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_psutil)
    monkeypatch.setattr(memory, "_meminfo_available", lambda path="/proc/meminfo": None)
    assert memory.free_bytes("cpu") == memory.DEFAULT_FREE_BYTES
