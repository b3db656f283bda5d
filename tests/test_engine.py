"""Tests of the batched training engine (initlab.engine): equivalence with the one-model
reference loop, divergence isolation, determinism, batching/metric semantics, recording,
configuration errors.  Random data, small slices, a few steps each.

Two kinds of equality are asserted, and only where they are guaranteed (see the
:mod:`initlab.engine.batched` docstring):

* **bit for bit** where both sides make the same kernel calls on the same shapes: two runs
  of the same study, and a model next to others whose *values* differ (same stack size,
  same position, the same divergence events);
* **to float32 rounding** (:func:`tolerances`) between the engine and the
  reference loop, and between groupings of the same models: the two sides run other
  kernels for their matrix products (a batched product against a single one, another
  thread split), whose summation order the CPU's BLAS picks per machine.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from initlab.engine import (
    MLPSpec,
    NullSink,
    Sink,
    TrainConfig,
    TrainData,
    build_mlp,
    infer_spec,
    train,
    train_one,
)
from initlab.records import QUANTILE_LEVELS
from initlab.engine.adam import StackedAdam, fused_adam_available
from initlab.engine.functional import bmm, bmm_calls, run_calls
from initlab.errors import InitlabError

CFG = TrainConfig(epochs=2, log_every=2, probe_size=64, hist_bins=10)

#: float32 unit roundoff.
U32 = 2.0**-24

#: Safety factor of :func:`rounding_tolerance` (see there).
MARGIN = 16.0

#: Tolerances of a ReLU network compared over more than one step (see :func:`tolerances`).
SWITCH_WEIGHTS, SWITCH_METRICS = 0.1, 1e-2


def rounding_tolerance(steps: int, n: int) -> float:
    """Relative tolerance between two float32 trainings of one model that differ only in
    the rounding of their matrix products, for a smooth network.

    A dot product of length ``n`` computed in two summation orders differs by at most
    ``2 * gamma_n * sum|a_i b_i|``, ``gamma_n = n u / (1 - n u)`` (Higham, *Accuracy and
    Stability of Numerical Algorithms*, Thm. 3.5), ``u = 2**-24``: a relative perturbation
    of about ``n u`` of every forward and backward product, which Adam (dividing each
    gradient by its own running scale) turns into a relative perturbation of the same size
    of every update.  Summed over ``steps`` updates, the two weight trajectories separate
    by about ``steps * n * u`` relative to how far the weights moved; :data:`MARGIN` covers
    the constant factors this count leaves out (a few products per layer and step, their
    growth through the layers).  Measured worst case on the tests' models (AVX-512 and AVX2
    kernels, ATEN_CPU_CAPABILITY=default, MKL_CBWR=COMPATIBLE, 1 and 2 threads):
    0.53 ``steps * n * u``, a 30-fold headroom.
    """
    gamma = n * U32 / (1 - n * U32)
    return MARGIN * steps * gamma


def tolerances(res, data: TrainData) -> tuple[float, float]:
    """``(weights, metrics)`` relative tolerances for comparing *res* with another training
    of the same model that rounds differently.

    :func:`rounding_tolerance` of its steps, for both, when the network is smooth or after
    one step.  A ReLU network trained further is not smooth: rounding leaves the two
    trajectories' pre-activations some 1e-6 apart after the first step, and at that
    distance a unit of some sample is switched on in one trajectory and off in the other
    (the density of pre-activations at zero is O(1) in units of their spread, and a step
    has ``batch x hidden units`` of them: tens of thousands here, so such switches come
    every few steps).  A switch is a discrete change of that sample's gradient, which
    Adam's per-weight normalization passes on: measured up to 3e-2 of the displacement
    after 6 steps on AVX2 kernels (the same models stay below 1e-5 with AVX-512 kernels,
    whose rounding puts them closer).  There the weights are held to
    :data:`SWITCH_WEIGHTS` of their displacement and the losses and accuracies (which
    average over such switches) to :data:`SWITCH_METRICS`.  A wrong data order, dropout
    mask or update moves the weights apart by their whole displacement, 10 times that
    (``test_the_tolerance_tells_a_wrong_data_order_apart`` and :func:`assert_trains_apart`).
    """
    steps = max(_steps(res), 1)
    tol = rounding_tolerance(steps, _contraction(res, data))
    if steps > 1 and res.spec.activation in ("relu", "leaky_relu") and res.spec.hidden:
        return max(tol, SWITCH_WEIGHTS), max(tol, SWITCH_METRICS)
    return tol, tol


def _steps(res) -> int:
    return max(e.step for e in res.epochs)


def _contraction(res, data: TrainData) -> int:
    """The longest dot product of a training step: a layer's input width, or the batch
    (the weight gradients sum over it)."""
    return max(res.spec.in_features, *res.spec.hidden, min(res.config.batch_size, data.train_x.shape[0]))


def relative_gaps(got: dict, want: dict, init: dict) -> dict[str, float]:
    """``||got - want|| / ||want - init||`` per tensor (float64 norms); ``0`` where both
    are equal."""
    gaps = {}
    for k in want:
        diff = (got[k].double() - want[k].double()).norm().item()
        moved = (want[k].double() - init[k].double()).norm().item()
        gaps[k] = 0.0 if diff == 0 else diff / max(moved, 1e-30)
    return gaps


def assert_trains_like(got, want, init: dict, data: TrainData) -> None:
    """*got* and *want* (TrainResults of one model from the same initial state *init*)
    agree to float32 rounding (:func:`tolerances`): the same epochs, step windows and
    divergence; weights within the weights tolerance of how far they moved; losses within
    the metrics tolerance, relative; accuracies within that fraction of the samples (at
    least one sample)."""
    w_tol, m_tol = tolerances(want, data)
    assert [e.epoch for e in got.epochs] == [e.epoch for e in want.epochs]
    # (a diverged epoch's record carries the step at which the engine noticed it)
    assert [e.step for e in got.epochs if not e.diverged] == [e.step for e in want.epochs if not e.diverged]
    gaps = relative_gaps(got.final_state, want.final_state, init)
    assert max(gaps.values()) <= w_tol, f"weights differ by more than float32 rounding: {gaps} > {w_tol:.2e}"
    n_train, n_val = data.train_x.shape[0], data.val_x.shape[0]
    for eg, ew in zip(got.epochs, want.epochs):
        for attr, n in (("train_loss", None), ("val_loss", None), ("train_acc", n_train), ("val_acc", n_val)):
            x, y = getattr(eg, attr), getattr(ew, attr)
            if math.isnan(y):
                assert math.isnan(x), (attr, eg.epoch, x, y)
            elif n is None:
                assert x == pytest.approx(y, rel=m_tol, abs=1e-6), (attr, eg.epoch, x, y)
            else:
                assert abs(x - y) <= max(m_tol, 1.0 / n) + 1e-12, (attr, eg.epoch, x, y)
    assert [(s.epoch, s.step, s.steps, s.samples) for s in got.steps] == [
        (s.epoch, s.step, s.steps, s.samples) for s in want.steps
    ]
    assert [s.loss for s in got.steps] == pytest.approx([s.loss for s in want.steps], rel=m_tol, abs=1e-6)
    assert (got.divergence is None) == (want.divergence is None)
    if want.divergence is not None:
        fields = ("epoch", "step", "epoch_step", "reason")
        assert [getattr(got.divergence, f) for f in fields] == [getattr(want.divergence, f) for f in fields]


def assert_trains_apart(a, b, init: dict, data: TrainData, factor: float = 5.0) -> None:
    """*a* and *b* differ by more than *factor* times the weights tolerance (in some
    tensor): what a different data order or dropout mask does."""
    w_tol, _ = tolerances(b, data)
    gaps = relative_gaps(a.final_state, b.final_state, init)
    assert max(gaps.values()) > factor * w_tol, f"{gaps} <= {factor} x {w_tol:.2e}"


def make_data(n_train: int = 512, n_val: int = 256, seed: int = 0, side: int = 28) -> TrainData:
    g = torch.Generator().manual_seed(seed)
    return TrainData(
        torch.rand(n_train, side, side, generator=g),
        torch.randint(0, 10, (n_train,), generator=g),
        torch.rand(n_val, side, side, generator=g),
        torch.randint(0, 10, (n_val,), generator=g),
    )


@pytest.fixture(scope="module")
def data() -> TrainData:
    return make_data()


def init_model(spec: MLPSpec, kind: str, seed: int) -> torch.nn.Sequential:
    """A model with a simple, seeded initialization of the given kind."""
    m = build_mlp(spec)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in m.named_parameters():
            fan_in = p.shape[1] if p.dim() == 2 else 1
            if kind == "normal":
                p.normal_(0.0, 1.0 / math.sqrt(fan_in), generator=g)
            elif kind == "uniform":  # the article's U[-0.5, 0.5]: saturated softmax
                p.uniform_(-0.5, 0.5, generator=g)
            elif kind == "lecun_uniform":
                p.uniform_(-math.sqrt(3.0 / fan_in), math.sqrt(3.0 / fan_in), generator=g)
            elif kind == "he":
                p.normal_(0.0, math.sqrt(2.0 / fan_in), generator=g) if p.dim() == 2 else p.zero_()
            elif kind == "zeros":
                p.zero_()
            else:
                raise ValueError(kind)
    return m


def three_models(spec: MLPSpec = MLPSpec()) -> list[torch.nn.Sequential]:
    return [init_model(spec, k, i) for i, k in enumerate(("normal", "uniform", "he"))]


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def metrics(res) -> list[tuple[float, float, float, float]]:
    return [(e.train_loss, e.train_acc, e.val_loss, e.val_acc) for e in res.epochs]


def assert_same_numbers(a, b) -> None:
    """Bit for bit: weights, epoch records (but wall time) and step records."""
    assert states_equal(a.final_state, b.final_state)
    no_wall = [[e.to_dict() | {"wall_s": 0, "model": 0, "batch_models": 0} for e in r.epochs] for r in (a, b)]
    assert no_wall[0] == no_wall[1]
    assert [s.to_dict() | {"model": 0} for s in a.steps] == [s.to_dict() | {"model": 0} for s in b.steps]


def assert_frozen_at_its_first_step(r, other, bad, events) -> None:
    """*r*, model 1 of its run, built as *bad*, diverged at step 1 on a non-finite loss
    (as *other* did beside it in another run), was reported once to the sink (*events*),
    kept its initial parameters and got the diverged epoch 1 record with NaN metrics."""
    assert r.diverged and events == [r.divergence]
    assert (r.divergence.model, r.divergence.epoch, r.divergence.step) == (1, 1, 1)
    assert r.divergence.reason == "loss" and not math.isfinite(r.divergence.loss)
    assert other.divergence.step == 1
    assert states_equal(r.final_state, bad.state_dict())
    assert [e.epoch for e in r.epochs] == [0, 1] and r.epochs[1].diverged
    assert math.isnan(r.epochs[1].train_loss) and math.isnan(r.epochs[1].val_acc)


# --------------------------------------------------------------------------- equivalence


@pytest.mark.parametrize("adam", ["foreach", "fused"])
def test_engine_matches_reference(data, adam):
    """Three models train as the reference loop trains each alone, to float32 rounding;
    with foreach Adam in torch.optim.Adam's own op order."""
    if adam == "fused" and not fused_adam_available(torch.device("cpu")):
        pytest.skip("no fused Adam kernel in this torch")
    models, seeds = three_models(), [11, 12, 13]
    results = train(models, seeds, data, CFG, adam=adam)
    for m, s, r in zip(models, seeds, results):
        ref = train_one(m, s, data, CFG)
        assert_trains_like(r, ref, m.state_dict(), data)
        # and it did train: the weights moved by far more than the tolerance
        assert (r.final_state["1.weight"] - m.state_dict()["1.weight"]).abs().max() > 1e-3


def test_one_step_matches_reference_within_rounding(data):
    """Over one step, where no ReLU switch has yet come in (see :func:`tolerances`), the
    engine is held to the rounding bound itself: the article's U[-0.5, 0.5] (its softmax
    saturated, logits in the hundreds, the model most sensitive to rounding), He and
    LeCun-uniform, with foreach and fused Adam."""
    for kind in ("uniform", "he", "lecun_uniform"):
        m = init_model(MLPSpec(), kind, 1)
        d = data.subset(128, 256)  # one step per epoch
        cfg = TrainConfig(epochs=1, log_every=1, probe_size=16, hist_bins=5)
        for adam in ("foreach", "fused") if fused_adam_available(torch.device("cpu")) else ("foreach",):
            r = train([three_models()[0], m], [3, 4], d, cfg, adam=adam)[1]
            assert tolerances(r, d) == (rounding_tolerance(1, 784),) * 2
            assert_trains_like(r, train_one(m, 4, d, cfg), m.state_dict(), d)


@pytest.mark.parametrize("sgd", [
    {"momentum": 0.0},
    {"momentum": 0.9},
    {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
])
def test_sgd_matches_reference(data, sgd):
    """SGD (plain, with momentum, Nesterov with weight decay) trains as the reference loop
    with torch.optim.SGD does, to float32 rounding, shared and separate streams alike."""
    cfg = dataclasses.replace(CFG, optimizer="sgd", lr=0.05, **sgd)
    models, seeds = three_models(), [11, 12, 11]
    results = train(models, seeds, data, cfg)
    for m, s, r in zip(models, seeds, results):
        ref = train_one(m, s, data, cfg)
        assert_trains_like(r, ref, m.state_dict(), data)
        assert (r.final_state["1.weight"] - m.state_dict()["1.weight"]).abs().max() > 1e-4


def test_sgd_settings_change_the_trajectory(data):
    """Momentum, Nesterov and weight decay each do something (no setting is ignored)."""
    m = three_models()[0]
    base = dataclasses.replace(CFG, optimizer="sgd", lr=0.05, momentum=0.9)
    ref = train([m], [1], data, base)[0]
    for other in ({"momentum": 0.0}, {"nesterov": True}, {"weight_decay": 0.1}):
        assert_trains_apart(train([m], [1], data, dataclasses.replace(base, **other))[0], ref,
                            m.state_dict(), data)


def test_sgd_freezes_a_diverging_model_and_drops_its_buffers(data):
    good = three_models()[0]
    bad = init_model(MLPSpec(), "normal", 9)
    with torch.no_grad():
        bad[1].weight[0, 0] = float("nan")
    cfg = dataclasses.replace(CFG, optimizer="sgd", lr=0.05, momentum=0.9)
    mixed = train([good, bad, good], [1, 2, 1], data, cfg)
    assert mixed[1].diverged and not mixed[0].diverged
    assert_trains_like(mixed[0], train_one(good, 1, data, cfg), good.state_dict(), data)
    assert_trains_like(mixed[2], mixed[0], good.state_dict(), data)


def _torch_factors(make, steps: int, per_epoch: int = 1) -> list[float]:
    """The lr factors a torch scheduler gives over *steps* steps (stepped every
    *per_epoch* steps)."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=1.0)
    sched = make(opt)
    out = []
    for t in range(1, steps + 1):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if t % per_epoch == 0:
            sched.step()
    return out


def test_lr_schedules_are_torchs_schedulers():
    from torch.optim import lr_scheduler as S

    spe, epochs = 4, 6
    T = spe * epochs
    cfg = TrainConfig(epochs=epochs, optimizer="sgd", schedule="cosine")
    assert [cfg.lr_factor(t, spe) for t in range(1, T + 1)] == pytest.approx(
        _torch_factors(lambda o: S.CosineAnnealingLR(o, T_max=T), T), abs=1e-12)
    cfg = TrainConfig(epochs=epochs, schedule="step", gamma=0.5, step_epochs=2)
    assert [cfg.lr_factor(t, spe) for t in range(1, T + 1)] == pytest.approx(
        _torch_factors(lambda o: S.StepLR(o, step_size=2, gamma=0.5), T, per_epoch=spe), abs=1e-12)
    cfg = TrainConfig(epochs=epochs, warmup_epochs=1.5)  # W = 6 steps
    assert [cfg.lr_factor(t, spe) for t in range(1, T + 1)] == pytest.approx(
        _torch_factors(lambda o: S.LinearLR(o, start_factor=1 / 6, total_iters=5), T), abs=1e-12)
    assert TrainConfig(epochs=epochs).lr_factor(7, spe) == 1.0


@pytest.mark.parametrize("train_kw", [
    {"optimizer": "sgd", "momentum": 0.9, "schedule": "cosine", "warmup_epochs": 0.5},
    {"schedule": "step", "gamma": 0.5, "step_epochs": 1},
])
def test_lr_schedules_match_reference(data, train_kw):
    cfg = dataclasses.replace(CFG, lr=0.05 if train_kw.get("optimizer") == "sgd" else 1e-3, **train_kw)
    models, seeds = three_models()[::2], [3, 4]
    for m, s, r in zip(models, seeds, train(models, seeds, data, cfg)):
        assert_trains_like(r, train_one(m, s, data, cfg), m.state_dict(), data)
    constant = dataclasses.replace(cfg, schedule="constant", warmup_epochs=0.0)
    assert_trains_apart(train(models[:1], seeds[:1], data, constant)[0],
                        train_one(models[0], seeds[0], data, cfg), models[0].state_dict(), data, factor=2)


def test_the_tolerance_tells_a_wrong_data_order_apart(data):
    """The rounding tolerance is no blanket: the same model and init with another seed
    (another data order and other dropout masks), or with the right seed but the data
    unshuffled, lands far outside it."""
    m = three_models()[0]
    init = m.state_dict()
    ref = train_one(m, 11, data, CFG)
    assert_trains_apart(train_one(m, 12, data, CFG), ref, init, data)
    unshuffled = dataclasses.replace(CFG, shuffle=False)
    assert_trains_apart(train([m], [11], data, unshuffled)[0], ref, init, data)
    with pytest.raises(AssertionError, match="more than float32 rounding"):
        assert_trains_like(train_one(m, 12, data, CFG), ref, init, data)


@pytest.mark.parametrize("activation", ["tanh", "gelu", "selu"])
def test_other_activations_match_reference(activation):
    spec = MLPSpec(in_features=49, hidden=(16, 8), activation=activation, dropout=0.3)
    d = make_data(200, 50, side=7)
    cfg = TrainConfig(epochs=2, batch_size=64, probe_size=20, hist_bins=5)
    models = [init_model(spec, "normal", i) for i in range(2)]
    results = train(models, [1, 2], d, cfg, adam="foreach")
    for m, s, r in zip(models, [1, 2], results):
        assert_trains_like(r, train_one(m, s, d, cfg), m.state_dict(), d)


def test_no_dropout_and_no_hidden_layers():
    d = make_data(100, 20, side=4)
    cfg = TrainConfig(epochs=1, batch_size=32, probe_size=10, hist_bins=5)
    specs = (MLPSpec(in_features=16, hidden=(8,), dropout=0.0), MLPSpec(in_features=16, hidden=()))
    for spec in specs:
        m = init_model(spec, "normal", 0)
        r = train([m], [3], d, cfg, adam="foreach")[0]
        assert_trains_like(r, train_one(m, 3, d, cfg), m.state_dict(), d)


def test_without_shuffling_the_data_order_is_fixed(data):
    d = data.subset(256, 32)
    cfg = TrainConfig(epochs=2, shuffle=False, probe_size=8, hist_bins=5)
    m = three_models()[0]
    init = m.state_dict()
    r = train([m, m], [1, 2], d, cfg, adam="foreach")
    ref = train_one(m, 1, d, cfg)
    assert_trains_like(r[0], ref, init, d)
    # same data order, different dropout masks
    assert_trains_apart(r[1], ref, init, d)
    no_dropout = MLPSpec(dropout=0.0)
    m0 = init_model(no_dropout, "normal", 0)
    r = train([m0, m0], [1, 2], d, cfg, adam="foreach")
    assert_trains_like(r[1], r[0], m0.state_dict(), d)
    shuffled = train_one(m0, 1, d, TrainConfig(epochs=2, probe_size=8, hist_bins=5))
    assert_trains_apart(shuffled, r[0], m0.state_dict(), d)


def test_inputs_are_not_modified(data):
    models = three_models()
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in models]
    train(models, [1, 2, 3], data.subset(128, 64), TrainConfig(epochs=1, probe_size=8))
    train_one(models[0], 1, data.subset(128, 64), TrainConfig(epochs=1, probe_size=8))
    for m, b in zip(models, before):
        assert states_equal(m.state_dict(), b)


# --------------------------------------------------------------------------- divergence


def _scaled(model: torch.nn.Module, factor: float) -> torch.nn.Module:
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(factor)
    return model


def test_divergent_model_is_frozen_and_others_unaffected(data):
    """A model whose loss is not finite at the first step (weights scaled 1e30) is frozen
    there with its initial (last finite) weights.  The two others train bit for bit as
    next to another model that diverges there too (same kernel calls: only the diverging
    model's values differ), and as without it, to float32 rounding (a smaller stack)."""
    a, c = three_models()[0], three_models()[2]
    bad = _scaled(init_model(MLPSpec(), "normal", 5), 1e30)
    other_bad = init_model(MLPSpec(), "uniform", 6)
    with torch.no_grad():
        other_bad[4].weight[0, 0] = float("nan")
    events = []

    class Catch(NullSink):
        def on_diverged(self, event):
            events.append(event)

    mixed = train([a, bad, c], [1, 2, 3], data, CFG, sink=Catch())
    mixed_other = train([a, other_bad, c], [1, 2, 3], data, CFG)
    alone = train([a, c], [1, 3], data, CFG)
    for r_mixed, r_other, r_alone, m in zip((mixed[0], mixed[2]), (mixed_other[0], mixed_other[2]), alone, (a, c)):
        assert not r_mixed.diverged
        assert_same_numbers(r_mixed, r_other)
        assert_trains_like(r_mixed, r_alone, m.state_dict(), data)
    r = mixed[1]
    assert_frozen_at_its_first_step(r, mixed_other[1], bad, events)
    assert r.steps == [] and all(math.isnan(x) for x in r.history()["val_loss"])


def test_mid_training_divergence_matches_reference():
    """A model that is finite until one particular training image (a pixel only that image
    lights up, with a 3e38 weight) shows up: it diverges at that step, exactly where the
    reference loop says, keeps the weights from before that step, and the others go on."""
    d = make_data(384, 64)
    d.train_x[:, 0, 0] = 0.0
    d.train_x[200, 0, 0] = 1.0
    spec = MLPSpec()
    bad = init_model(spec, "normal", 7)
    with torch.no_grad():
        bad[1].weight[:, 0] = 3e38
    good = init_model(spec, "he", 8)
    cfg = TrainConfig(epochs=3, log_every=1, probe_size=16, hist_bins=5)
    res = train([good, bad], [4, 5], d, cfg, adam="foreach")
    ref = train_one(bad, 5, d, cfg)
    assert ref.divergence is not None and ref.divergence.step > 1
    got, want = res[1].divergence, ref.divergence
    assert (got.model, want.model) == (1, 0)
    assert not math.isfinite(got.loss) and not math.isfinite(want.loss)
    assert_trains_like(res[1], ref, bad.state_dict(), d)
    assert all(math.isfinite(v) for t in res[1].final_state.values() for v in t.flatten().tolist())
    assert [s.step for s in res[1].steps] == list(range(1, ref.divergence.step))
    assert len(res[1].epochs) == ref.divergence.epoch + 1
    assert not res[0].diverged and len(res[0].epochs) == 4
    alone = train([good], [4], d, cfg, adam="foreach")[0]
    assert_trains_like(res[0], alone, good.state_dict(), d)
    assert_trains_like(res[0], train_one(good, 4, d, cfg), good.state_dict(), d)


def test_all_models_diverging_stops_training(data):
    bad = init_model(MLPSpec(), "normal", 1)
    with torch.no_grad():
        bad[1].weight[0, 0] = float("nan")
    r = train([bad], [0], data.subset(256, 32), TrainConfig(epochs=3, probe_size=8))[0]
    assert r.divergence.step == 1 and len(r.epochs) == 2
    assert r.epochs[0].params[0].nonfinite == 1  # the NaN is seen at init


# --------------------------------------------------------------------------- determinism


def test_same_seeds_same_numbers_different_seeds_differ(data):
    """Two runs of the same study make the same kernel calls: bit for bit, whatever the CPU."""
    d = data.subset(256, 64)
    cfg = TrainConfig(epochs=1, log_every=1, probe_size=16, hist_bins=5)
    models = three_models()
    r1 = train(models, [1, 2, 3], d, cfg)
    r2 = train(models, [1, 2, 3], d, cfg)
    r3 = train(models, [1, 2, 4], d, cfg)
    for x, y in zip(r1, r2):
        assert_same_numbers(x, y)
    assert states_equal(r1[0].final_state, r3[0].final_state)  # seeds are per model
    assert_trains_apart(r3[2], r1[2], models[2].state_dict(), d)


def test_a_model_does_not_read_its_neighbours_values(data):
    """Same stack size and position, other models beside it: bit for bit the same."""
    d = data.subset(256, 64)
    cfg = TrainConfig(epochs=1, log_every=1, probe_size=16, hist_bins=5)
    ms = three_models()
    r1 = train([ms[0], ms[1], ms[2]], [1, 2, 3], d, cfg)
    r2 = train([init_model(MLPSpec(), "he", 9), ms[1], init_model(MLPSpec(), "zeros", 4)], [7, 2, 8], d, cfg)
    assert_same_numbers(r1[1], r2[1])


def test_seed_fixes_data_order_across_models(data):
    """Two models with the same seed and the same init train alike, wherever they sit in
    the batch and whatever the others are (to float32 rounding: another position can
    mean another product kernel, see initlab.engine.functional.bmm_calls)."""
    d = data.subset(256, 32)
    cfg = TrainConfig(epochs=1, probe_size=8)
    ms = three_models()
    r = train([ms[0], ms[1], ms[0]], [9, 9, 9], d, cfg)
    assert_trains_like(r[2], r[0], ms[0].state_dict(), d)
    assert_trains_apart(train([ms[0]], [8], d, cfg)[0], r[0], ms[0].state_dict(), d)


def test_models_sharing_a_seed_share_one_stream_and_train_as_alone(data):
    """Equal seeds make one data stream (one gather and one set of masks per step, the
    first layer reading the stream's batch for all its models); each model still trains
    as the reference loop trains it, in input order, interleaved seeds too."""
    kinds = ("normal", "uniform", "he", "lecun_uniform")
    models = [init_model(MLPSpec(), k, i) for i, k in enumerate(kinds)]
    seeds = [5, 6, 5, 5]
    d = data.subset(384, 64)
    cfg = TrainConfig(epochs=2, log_every=1, probe_size=16, hist_bins=5)
    results = train(models, seeds, d, cfg, adam="foreach")
    assert [r.model for r in results] == [0, 1, 2, 3]
    assert [r.seed for r in results] == seeds
    for m, s, r in zip(models, seeds, results):
        assert_trains_like(r, train_one(m, s, d, cfg), m.state_dict(), d)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_divergence_inside_a_shared_stream(activation):
    """A model of a shared stream that diverges is dropped; the stream goes on for the
    others, and the streams left re-pack correctly."""
    spec = MLPSpec(in_features=49, hidden=(16, 8), activation=activation, dropout=0.25)
    d = make_data(192, 32, side=7)
    cfg = TrainConfig(epochs=3, batch_size=64, probe_size=8, hist_bins=5)
    good = [init_model(spec, "normal", i) for i in range(3)]
    bad = init_model(spec, "normal", 9)
    with torch.no_grad():
        bad[1].weight[0, 0] = float("nan")
    models, seeds = [good[0], bad, good[1], good[2]], [3, 3, 4, 3]
    res = train(models, seeds, d, cfg, adam="foreach")
    assert res[1].diverged and res[1].divergence.step == 1
    for i in (0, 2, 3):
        assert not res[i].diverged
        assert_trains_like(res[i], train_one(models[i], seeds[i], d, cfg), models[i].state_dict(), d)


# --------------------------------------------------------------------------- semantics


def test_partial_last_batch_is_used():
    assert TrainConfig().steps_per_epoch(60000) == 469  # Keras: 468 full batches + 96
    d = make_data(300, 40)
    cfg = TrainConfig(epochs=2, batch_size=128, log_every=1, probe_size=8)
    for r in (train([three_models()[0]], [1], d, cfg)[0], train_one(three_models()[0], 1, d, cfg)):
        assert [e.step for e in r.epochs] == [0, 3, 6]
        assert [s.samples for s in r.steps] == [128, 128, 44] * 2
        assert [s.epoch for s in r.steps] == [1, 1, 1, 2, 2, 2]


def test_running_train_metrics_and_validation_semantics(data):
    """Train loss/acc of an epoch = sample-weighted mean over its batches (dropout on, the
    weights of each step); val loss/acc = the end-of-epoch weights in eval mode."""
    d = data.subset(384, 200)
    cfg = TrainConfig(epochs=2, log_every=1, probe_size=16)
    m = three_models()[0]
    r = train([m], [5], d, cfg)[0]
    for e in (1, 2):
        steps = [s for s in r.steps if s.epoch == e]
        n = sum(s.samples for s in steps)
        assert n == 384
        loss = sum(s.loss * s.samples for s in steps) / n
        acc = sum(s.accuracy * s.samples for s in steps) / n
        assert r.epochs[e].train_loss == pytest.approx(loss, rel=1e-6)
        assert r.epochs[e].train_acc == pytest.approx(acc, rel=1e-6)
    net = build_mlp(MLPSpec())
    net.load_state_dict(r.final_state)
    net.eval()
    with torch.no_grad():
        logits = net(d.val_x)
        val_loss = F.cross_entropy(logits, d.val_y).item()
        val_acc = (logits.argmax(1) == d.val_y).float().mean().item()
        train_eval = F.cross_entropy(net(d.train_x), d.train_y).item()
    assert r.epochs[2].val_loss == pytest.approx(val_loss, rel=1e-5)
    assert r.epochs[2].val_acc == pytest.approx(val_acc)
    # the running figure is not the end-of-epoch eval-mode loss on the training set
    assert abs(r.epochs[2].train_loss - train_eval) > 1e-4
    # epoch 0: init weights, no training figures
    assert math.isnan(r.epochs[0].train_loss) and r.epochs[0].step == 0
    net.load_state_dict(m.state_dict())
    with torch.no_grad():
        init_loss = F.cross_entropy(net(d.val_x), d.val_y).item()
    assert r.epochs[0].val_loss == pytest.approx(init_loss, rel=1e-5)
    h = r.history()
    assert list(h) == ["loss", "accuracy", "val_loss", "val_accuracy"] and len(h["loss"]) == 2
    assert r.final_val_acc == r.epochs[2].val_acc


def test_step_log_windows(data):
    d = data.subset(300, 32)  # 3 steps per epoch, 6 in all
    r = train([three_models()[0]], [1], d, TrainConfig(epochs=2, log_every=4, probe_size=8))[0]
    windows = [(s.step, s.steps, s.samples, s.epoch) for s in r.steps]
    assert windows == [(4, 4, 428, 2), (6, 2, 172, 2)]
    r = train([three_models()[0]], [1], d, TrainConfig(epochs=2, log_every=0, probe_size=8))[0]
    assert r.steps == []


# --------------------------------------------------------------------------- recording


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def on_step(self, records):
        self.calls.append(("step", list(records)))

    def on_epoch(self, records):
        self.calls.append(("epoch", list(records)))

    def on_diverged(self, event):
        self.calls.append(("diverged", event))


def test_records_shapes_and_sink(data):
    spec = MLPSpec()
    models = [init_model(spec, "normal", 0), init_model(spec, "zeros", 1)]
    cfg = TrainConfig(epochs=2, log_every=2, probe_size=32, hist_bins=12)
    sink = Recorder()
    assert isinstance(sink, Sink)
    res = train(models, [1, 2], data, cfg, sink=sink)
    kinds = [k for k, _ in sink.calls]
    assert kinds == ["epoch"] + ["step"] * 2 + ["epoch"] + ["step"] * 2 + ["epoch"]
    streamed = [r for k, recs in sink.calls if k == "epoch" for r in recs]
    assert sorted(streamed, key=lambda r: (r.model, r.epoch)) == res[0].epochs + res[1].epochs
    for r in res:
        assert [e.epoch for e in r.epochs] == [0, 1, 2]
        for e in r.epochs:
            assert e.batch_models == 2 and e.wall_s > 0 and not e.diverged
            assert [(p.layer, p.param) for p in e.params] == [
                (l, k) for l in (1, 2, 3) for k in ("weight", "bias")
            ]
            assert [p.name for p in e.params] == list(r.final_state)
            for p in e.params:
                assert len(p.hist_counts) == 12 and len(p.hist_edges) == 13
                assert sum(p.hist_counts) == p.numel and p.nonfinite == 0
                assert len(p.quantiles) == len(QUANTILE_LEVELS)
                assert list(p.quantiles) == sorted(p.quantiles)
                assert p.min <= p.quantiles[0] and p.quantiles[-1] <= p.max
                if p.max > p.min:
                    assert (p.hist_edges[0], p.hist_edges[-1]) == (p.min, p.max)
            assert [a.layer for a in e.activations] == [1, 2, 3]
            d = e.to_dict()
            assert isinstance(d["params"][0]["hist_counts"], list)
    z0 = res[1].epochs[0]
    w1 = z0.params[0]
    assert (w1.mean, w1.std, w1.frac_zero) == (0, 0, 1)
    assert (w1.hist_edges[0], w1.hist_edges[-1]) == (-0.5, 0.5)
    assert w1.hist_counts[len(w1.hist_counts) // 2] == w1.numel
    act = z0.activations
    assert act[0].post_frac_zero == 1 and act[0].dead_units == 1
    assert act[2].post_mean == pytest.approx(0.1) and act[2].post_std == pytest.approx(0, abs=1e-7)


def test_stats_match_direct_computation(data):
    m = init_model(MLPSpec(), "normal", 3)
    r = train([m], [1], data.subset(128, 100), TrainConfig(epochs=0, probe_size=50, hist_bins=7))[0]
    e0 = r.epochs[0]
    w = m[1].weight.detach().double().flatten()
    p = e0.params[0]
    assert p.mean == pytest.approx(w.mean().item())
    assert p.std == pytest.approx(w.std(correction=0).item())
    q = torch.quantile(w, torch.tensor(QUANTILE_LEVELS, dtype=torch.float64))
    assert p.quantiles == pytest.approx(q.tolist(), rel=1e-12, abs=1e-15)
    counts, edges = np.histogram(m[1].weight.detach().numpy().astype(np.float64), bins=7)  # binned in float64
    assert list(p.hist_counts) == counts.tolist() and list(p.hist_edges) == edges.tolist()
    x = data.val_x[:50].reshape(50, -1)
    z1 = m[1](x)
    a1 = torch.relu(z1)
    s = e0.activations[0]
    assert s.pre_mean == pytest.approx(z1.mean().item(), abs=1e-6)
    assert s.pre_std == pytest.approx(z1.std(correction=0).item(), rel=1e-5)
    assert s.post_frac_zero == pytest.approx((a1 == 0).float().mean().item())
    assert s.dead_units == pytest.approx((a1 == 0).all(0).float().mean().item())
    assert math.isnan(e0.train_loss) and e0.step == 0 and len(r.epochs) == 1


# --------------------------------------------------------------------------- components


def test_stacked_adam_freezes_models():
    p = torch.randn(3, 4, 5)
    g = torch.randn(3, 4, 5)
    for impl in ("foreach", "fused") if fused_adam_available(torch.device("cpu")) else ("foreach",):
        q = p.clone()
        opt = StackedAdam([q], [g], lr=0.1, betas=(0.9, 0.999), eps=1e-7, impl=impl)
        g[1, 0, 0] = float("nan")
        opt.step(torch.tensor([0.0, 1.0, 0.0]))
        assert torch.equal(q[1], p[1])
        assert not torch.equal(q[0], p[0]) and torch.isfinite(q[[0, 2]]).all()
        ref = p[0].clone().requires_grad_(False)
        torch_opt = torch.optim.Adam([ref], lr=0.1, eps=1e-7)
        ref.grad = g[0].clone()
        torch_opt.step()
        torch.testing.assert_close(q[0], ref, rtol=0, atol=1e-6)


def test_stacked_sgd_is_torch_sgd_and_freezes_models():
    """Per model the update is torch.optim.SGD's, op for op (bit for bit: the same
    elementwise kernels), over three steps with momentum, Nesterov and weight decay."""
    from initlab.engine.sgd import StackedSGD

    g = torch.Generator().manual_seed(3)
    p = torch.randn(3, 4, 5, generator=g)
    grads = [torch.randn(3, 4, 5, generator=g) for _ in range(3)]
    q, gbuf = p.clone(), torch.empty_like(p)
    opt = StackedSGD([q], [gbuf], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    ref = p[0].clone()
    torch_opt = torch.optim.SGD([ref], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    for t, grad in enumerate(grads):
        gbuf.copy_(grad)
        if t == 1:
            gbuf[1, 0, 0] = float("nan")
        frozen = torch.tensor([0.0, 1.0 if t >= 1 else 0.0, 0.0])
        opt.step(frozen)
        ref.grad = grad[0].clone()
        torch_opt.step()
        assert torch.equal(q[0], ref)
    assert torch.isfinite(q).all() and not torch.equal(q[1], p[1])


def _rounding_bound(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Elementwise bound on how far two float32 evaluations of ``a @ b (+ bias)`` in any
    summation orders can lie apart: ``2 gamma_{n+1} (|a| @ |b| + |bias|)`` (Higham,
    Thm. 3.5; ``n`` the contraction length, one more term for the bias)."""
    n = a.shape[-1] + 1
    gamma = n * U32 / (1 - n * U32)
    s = torch.bmm(a.abs().double(), b.abs().double())
    if bias is not None:
        s = s + bias.abs().double().unsqueeze(1)
    return 2 * gamma * s


def test_thread_balanced_bmm_agrees_with_bmm_to_rounding():
    """The remainder models' multi-threaded torch.mm may sum in another order than
    torch.bmm (it does on some CPUs' BLAS kernels): within the float32 rounding bound of
    every entry, which a wrong product (here: one bias left out) exceeds."""
    threads = torch.get_num_threads()
    g = torch.Generator().manual_seed(0)
    try:
        torch.set_num_threads(2)  # K % 2 != 0: the remainder goes through torch.mm
        for K in (3, 5):
            a = torch.rand(K, 128, 784, generator=g)
            w = torch.randn(K, 256, 784, generator=g)
            bias = torch.randn(K, 256, generator=g)
            out = torch.empty(K, 128, 256)
            bt = w.transpose(1, 2)
            for bb in (None, bias):
                got = bmm(a, bt, out, bb).double()
                want = (torch.bmm(a, bt) if bb is None else torch.baddbmm(bb.unsqueeze(1), a, bt)).double()
                bound = _rounding_bound(a, bt, bb)
                assert ((got - want).abs() <= bound).all()
            wrong = torch.baddbmm(bias.unsqueeze(1), a, bt)
            wrong[-1] -= bias[-1]
            assert not ((bmm(a, bt, out, bias).double() - wrong.double()).abs() <= _rounding_bound(a, bt, bias)).all()
    finally:
        torch.set_num_threads(threads)


def test_product_calls_replay_on_new_contents_of_the_same_tensors():
    """bmm_calls are made once and run again after their tensors change in place (as the
    engine does with its buffers and parameters): each run computes the current product,
    bit for bit what freshly made calls compute (the same kernels), and within rounding of
    one torch.baddbmm."""
    threads = torch.get_num_threads()
    g = torch.Generator().manual_seed(1)
    try:
        torch.set_num_threads(2)
        K = 5  # the balanced path: bmm for 4 models, mm for the fifth
        a, w = torch.empty(K, 128, 784), torch.empty(K, 256, 784)
        bias, out = torch.empty(K, 256), torch.empty(K, 128, 256)
        calls = bmm_calls(a, w.transpose(1, 2), out, bias)
        assert [fn for fn, _, _ in calls] == [torch.baddbmm, torch.addmm]
        for _ in range(2):
            a.uniform_(generator=g), w.normal_(generator=g), bias.normal_(generator=g)
            run_calls(calls)
            fresh = bmm(a, w.transpose(1, 2), torch.empty_like(out), bias)
            assert torch.equal(out, fresh)
            want = torch.baddbmm(bias.unsqueeze(1), a, w.transpose(1, 2))
            bound = _rounding_bound(a, w.transpose(1, 2), bias)
            assert ((out.double() - want.double()).abs() <= bound).all()
    finally:
        torch.set_num_threads(threads)


def test_infer_spec_round_trip_and_rejects_other_models():
    for spec in (MLPSpec(), MLPSpec(hidden=(8, 8, 8), activation="tanh", dropout=0.0)):
        assert infer_spec(build_mlp(spec)) == spec
    with pytest.raises(InitlabError, match="not an MLP"):
        infer_spec(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2, bias=False)))
    with pytest.raises(InitlabError, match="nn.Sequential"):
        infer_spec(torch.nn.Linear(4, 2))


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epochs": -1},
        {"batch_size": 0},
        {"lr": 0.0},
        {"lr": float("nan")},
        {"eps": -1e-7},
        {"betas": (1.0, 0.999)},
        {"log_every": -5},
        {"hist_bins": 0},
        {"device": "tpu"},
        {"shuffle": "yes"},
        {"epochs": 2.5},
        {"optimizer": "rmsprop"},
        {"momentum": 0.9},
        {"optimizer": "sgd", "momentum": 1.0},
        {"optimizer": "sgd", "nesterov": True},
        {"optimizer": "sgd", "weight_decay": -1e-4},
        {"optimizer": "sgd", "weight_decay": float("inf")},
        {"schedule": "exponential"},
        {"schedule": "step", "gamma": 0.0},
        {"schedule": "step", "step_epochs": 0},
        {"warmup_epochs": -1},
    ],
)
def test_bad_config_raises(kwargs):
    with pytest.raises(InitlabError, match="TrainConfig|device"):
        TrainConfig(**kwargs)


def test_config_dict_round_trip():
    cfg = TrainConfig(epochs=3, betas=(0.8, 0.99), device="cpu", log_every=7)
    d = cfg.to_dict()
    assert d["betas"] == [0.8, 0.99] and d["eps"] == 1e-7
    assert TrainConfig.from_dict(d) == cfg
    # the optimizer fields only where they differ from Adam's defaults (stable cell keys)
    assert not {"optimizer", "momentum", "nesterov", "weight_decay"} & set(d)
    sgd = TrainConfig(optimizer="sgd", momentum=0.9, nesterov=True)
    assert sgd.to_dict()["momentum"] == 0.9 and "weight_decay" not in sgd.to_dict()
    assert TrainConfig.from_dict(sgd.to_dict()) == sgd
    with pytest.raises(InitlabError, match="unknown training field"):
        TrainConfig.from_dict({"epochs": 1, "optimiser": "sgd"})


def test_bad_inputs_raise(data):
    m = build_mlp(MLPSpec())
    small = build_mlp(MLPSpec(hidden=(64,)))
    with pytest.raises(InitlabError, match="architecture"):
        train([m, small], [1, 2], data, CFG)
    with pytest.raises(InitlabError, match="one seed per model"):
        train([m, m], [1], data, CFG)
    with pytest.raises(InitlabError, match="seed"):
        train([m], [-1], data, CFG)
    with pytest.raises(InitlabError, match="no models"):
        train([], [], data, CFG)
    with pytest.raises(InitlabError, match="features"):
        train([m], [1], make_data(10, 10, side=8), CFG)
    with pytest.raises(InitlabError, match="dtype torch.uint8"):
        raw = torch.zeros(4, 28, 28, dtype=torch.uint8)
        TrainData(raw, torch.zeros(4, dtype=torch.long), data.val_x, data.val_y)
    with pytest.raises(InitlabError, match="samples"):
        TrainData(data.train_x, data.train_y[:10], data.val_x, data.val_y)
    bad_labels = TrainData(data.train_x, data.train_y + 5, data.val_x, data.val_y)
    with pytest.raises(InitlabError, match="labels"):
        train([m], [1], bad_labels, CFG)
    with pytest.raises(InitlabError, match="TrainConfig"):
        train([m], [1], data, {"epochs": 1})
    with pytest.raises(InitlabError, match="adam must be"):
        train([m], [1], data, CFG, adam="sgd")
    with pytest.raises(InitlabError, match="Adam's kernel"):
        train([m], [1], data, TrainConfig(optimizer="sgd"), adam="fused")
    if not torch.cuda.is_available():
        with pytest.raises(InitlabError, match="CUDA is not available"):
            train([m], [1], data, TrainConfig(device="cuda"))
