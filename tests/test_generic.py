"""Tests of the generic batched trainer (initlab.engine.generic.train_generic): vmap against
one-by-one training for a CNN with dropout, a residual net and a deep linear net; against
the MLP fast path (initlab.engine.train) on the article's MLP; divergence isolation;
the BatchNorm fall-back; bad inputs; the Sink protocol.

Tolerances (float32), as stated and derived in ``tests/test_engine.py``: vmap and one by
one (and this trainer and the fast path) run other kernels for the same math (grouped or
batched products against single ones, channels_last convolutions), so they agree to
float32 rounding, not bit for bit.

* a smooth network (the deep linear net) is held to :func:`test_engine.rounding_tolerance`
  of its steps and its longest contraction (the batch, which the weight gradients sum
  over, or a layer's width): ``16 * steps * n * 2**-24``;
* a ReLU network trained over several steps to ``SWITCH_WEIGHTS`` (0.1) of how far its
  weights moved and ``SWITCH_METRICS`` (1e-2) on its losses and accuracies: rounding
  moves some pre-activation across zero, a discrete change of that sample's gradient that
  Adam's per-weight normalization passes on (see ``test_engine.tolerances``).

Measured on this machine (2 threads, 8 steps): vmap against one by one 0.7e-6 to 1.8e-6 of
the displacement on the ReLU nets, 0 on the deep linear net.  A wrong data order or dropout
mask moves the weights by 0.3 to 0.5 of their displacement here (few Adam steps, which
first move every weight by about ``lr * sign(g)`` whatever the batch): more than 3 times
the ReLU tolerance and 300 times the smooth one
(``test_a_wrong_seed_lands_outside_the_tolerance``), so these comparisons can fail.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from initlab.engine import MLPSpec, NullSink, TrainConfig, TrainData, build_mlp, train
from initlab.engine.dropout import draw_keys
from initlab.engine.generic import train_generic
from initlab.errors import InitlabError

from test_engine import (
    SWITCH_METRICS,
    SWITCH_WEIGHTS,
    Recorder,
    assert_frozen_at_its_first_step,
    assert_trains_like,
    init_model,
    relative_gaps,
    rounding_tolerance,
    states_equal,
)

CFG = TrainConfig(epochs=2, batch_size=64, log_every=3, probe_size=32, hist_bins=8)


def make_data(n_train: int = 256, n_val: int = 128, side: int = 12, seed: int = 0) -> TrainData:
    g = torch.Generator().manual_seed(seed)
    return TrainData(torch.rand(n_train, side, side, generator=g),
                     torch.randint(0, 10, (n_train,), generator=g),
                     torch.rand(n_val, side, side, generator=g),
                     torch.randint(0, 10, (n_val,), generator=g))


@pytest.fixture(scope="module")
def data() -> TrainData:
    return make_data()


SHAPE = (1, 12, 12)


def seeded(make, seed: int) -> nn.Module:
    """``make()`` with its parameters drawn from a seeded generator (He-like normal
    weights, small biases)."""
    m = make()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() > 1:
                fan_in = p[0].numel()
                p.normal_(0.0, math.sqrt(2.0 / fan_in), generator=g)
            else:
                p.uniform_(-0.1, 0.1, generator=g)
    return m


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Dropout(0.25),
        nn.Conv2d(6, 8, 3, padding=1, stride=2), nn.ReLU(), nn.Dropout(0.1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


class Block(nn.Module):
    def __init__(self, c: int, norm: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c) if norm else nn.Identity()
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.conv2(self.relu(self.bn(self.conv1(x)))))


class ResNet(nn.Module):
    def __init__(self, c: int = 6, norm: bool = False) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, c, 3, padding=1, stride=2)
        self.act = nn.ReLU()
        self.blocks = nn.Sequential(Block(c, norm), Block(c, norm))
        self.head = nn.Linear(c, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.act(self.stem(x)))
        return self.head(h.mean((2, 3)))


def deep_linear() -> nn.Module:
    return nn.Sequential(nn.Flatten(), *[nn.Linear(w, v, bias=False) for w, v in
                                         ((144, 32), (32, 32), (32, 32), (32, 10))])


def models_of(make, n: int = 3, first_seed: int = 0) -> list[nn.Module]:
    return [seeded(make, first_seed + i) for i in range(n)]


def assert_close(got, want, init: dict, data: TrainData, w_tol: float, m_tol: float) -> None:
    """*got* and *want* (TrainResults of one model from *init*) agree within the stated
    tolerances: the same epochs and step windows, weights within *w_tol* of how far they
    moved, losses within *m_tol* relative, accuracies within that fraction of the
    samples (at least one sample)."""
    assert [e.epoch for e in got.epochs] == [e.epoch for e in want.epochs]
    assert [(s.step, s.steps, s.samples) for s in got.steps] == [(s.step, s.steps, s.samples) for s in want.steps]
    params = [k for k in want.final_state if k in init and want.final_state[k].is_floating_point()]
    gaps = relative_gaps({k: got.final_state[k] for k in params}, {k: want.final_state[k] for k in params},
                         {k: init[k] for k in params})
    assert max(gaps.values()) <= w_tol, f"weights differ by more than float32 rounding: {gaps} > {w_tol:.2e}"
    for eg, ew in zip(got.epochs, want.epochs):
        for attr, n in (("train_loss", None), ("val_loss", None), ("train_acc", data.n_train),
                        ("val_acc", data.n_val)):
            x, y = getattr(eg, attr), getattr(ew, attr)
            if math.isnan(y):
                assert math.isnan(x), (attr, eg.epoch, x, y)
            elif n is None:
                assert x == pytest.approx(y, rel=m_tol, abs=1e-6), (attr, eg.epoch, x, y)
            else:
                assert abs(x - y) <= max(m_tol, 1.0 / n) + 1e-12, (attr, eg.epoch, x, y)
    assert [s.loss for s in got.steps] == pytest.approx([s.loss for s in want.steps], rel=m_tol, abs=1e-6)


def steps_of(res) -> int:
    return max(e.step for e in res.epochs)


# --------------------------------------------------------------------------- vmap vs one by one


@pytest.mark.parametrize("make,kind", [(small_cnn, "relu"), (ResNet, "relu"), (deep_linear, "smooth")])
def test_vmap_trains_as_one_by_one(data, make, kind):
    """K models vmapped train as the same models one by one (mode="each"): per-epoch
    metrics, step losses and final weights within the stated float32 tolerance; two
    models share a stream (one shared batch), one has its own."""
    models, seeds = models_of(make), [1, 2, 1]
    vm = train_generic(models, seeds, data, CFG, input_shape=SHAPE, mode="vmap")
    logs: list[str] = []
    each = train_generic(models, seeds, data, CFG, input_shape=SHAPE, mode="auto", log=logs.append)
    if kind == "smooth":  # auto vmaps the linear net, and trains the CNNs on the CPU one by one
        assert logs == [] and states_equal(each[0].final_state, vm[0].final_state)
        each = train_generic(models, seeds, data, CFG, input_shape=SHAPE, mode="each")
    else:
        assert len(logs) == 1 and "channels_last" in logs[0], logs
    if kind == "smooth":
        tol = rounding_tolerance(steps_of(each[0]), max(CFG.batch_size, 144))
        w_tol = m_tol = tol
    else:
        w_tol, m_tol = SWITCH_WEIGHTS, SWITCH_METRICS
    for m, a, b in zip(models, vm, each):
        assert_close(a, b, m.state_dict(), data, w_tol, m_tol)
        moved = max((b.final_state[k] - v).abs().max().item() for k, v in m.state_dict().items())
        assert moved > 1e-3  # it did train, by far more than the tolerance
    assert [r.model for r in vm] == [0, 1, 2] and [r.seed for r in vm] == seeds


@pytest.mark.parametrize("make", [small_cnn, lambda: ResNet(norm=True)], ids=["cnn-dropout", "resnet-batchnorm"])
def test_worker_threads_train_as_one_after_the_other(data, make):
    """One by one on the CPU, K models train side by side on worker threads (one intra-op
    thread each, engine.threads) as they train one after the other on the calling thread
    (workers=1): within the ReLU tolerance (other thread counts sum in another order),
    BatchNorm's running statistics (updated in place, per model, from two threads) too;
    two runs with the workers give the same bits; torch's thread count is left as it was."""
    models, seeds = models_of(make, 5), [1, 2, 1, 3, 2]  # 2 workers: 2 + 2 models, 1 after
    threads = torch.get_num_threads()
    seq = train_generic(models, seeds, data, CFG, input_shape=SHAPE, mode="each", workers=1)
    par = train_generic(models, seeds, data, CFG, input_shape=SHAPE, mode="each", workers=2)
    again = train_generic(models, seeds, data, CFG, input_shape=SHAPE, mode="each", workers=2)
    assert torch.get_num_threads() == threads
    for m, a, b, c in zip(models, par, seq, again):
        if make is small_cnn:
            assert_close(a, b, m.state_dict(), data, SWITCH_WEIGHTS, SWITCH_METRICS)
        else:  # the conv biases in front of a BatchNorm left out (see the BatchNorm test below)
            gaps = relative_gaps(a.final_state, b.final_state, m.state_dict())
            kept = {k: v for k, v in gaps.items() if b.final_state[k].is_floating_point()
                    and not k.endswith("conv1.bias")}
            assert max(kept.values()) <= SWITCH_WEIGHTS, kept
            assert [e.val_loss for e in a.epochs] == pytest.approx([e.val_loss for e in b.epochs],
                                                                   rel=SWITCH_METRICS)
        assert states_equal(a.final_state, c.final_state)
        assert a.epochs[-1].params == c.epochs[-1].params
        moved = max((b.final_state[k] - v).abs().max().item() for k, v in m.state_dict().items()
                    if v.is_floating_point())
        assert moved > 1e-3
    if make is not small_cnn:
        rm = "blocks.0.bn.running_mean"
        for m, a in zip(models, par):
            assert not torch.equal(a.final_state[rm], m.state_dict()[rm])
            assert int(a.final_state["blocks.0.bn.num_batches_tracked"]) == 2 * CFG.steps_per_epoch(data.n_train)


def test_thread_team_assignment_and_sizes():
    """The workers' shares: worker w trains w, w + n, ...; the remainder K mod n runs on the
    calling thread; no team on CUDA, for one model or with workers=1."""
    from initlab.engine.threads import Team, assignment, run_split, team_size

    assert assignment(7, 2) == ([[0, 2, 4], [1, 3, 5]], [6])
    assert assignment(4, 4) == ([[0], [1], [2], [3]], [])
    cpu = torch.device("cpu")
    assert team_size(7, cpu, 2) == 2 and team_size(1, cpu) == 0 and team_size(7, cpu, 1) == 0
    assert team_size(3, cpu, 8) == 3 and team_size(7, torch.device("cuda")) == 0
    before = torch.get_num_threads()
    seen: dict[int, tuple[str, int]] = {}
    with Team(2) as team:
        assert torch.get_num_threads() == before
        run_split(team, 5, lambda k, w: seen.__setitem__(k, ("worker", torch.get_num_threads())),
                  lambda k: seen.__setitem__(k, ("main", torch.get_num_threads())))
        with pytest.raises(ZeroDivisionError):
            team.run(lambda w: 1 // 0)
    assert seen == {0: ("worker", 1), 1: ("worker", 1), 2: ("worker", 1), 3: ("worker", 1),
                    4: ("main", before)}


def test_a_wrong_seed_lands_outside_the_tolerance(data):
    """The tolerance is no blanket: the same CNN trained with another seed (another data
    order and other dropout masks) lands more than 3x outside it, and assert_close says so;
    so does the deep linear net, 100x outside its smooth-network tolerance."""
    m = models_of(small_cnn, 1)
    ref = train_generic(m, [1], data, CFG, input_shape=SHAPE, mode="each")[0]
    other = train_generic(m, [2], data, CFG, input_shape=SHAPE, mode="vmap")[0]
    gaps = relative_gaps(other.final_state, ref.final_state, m[0].state_dict())
    assert max(gaps.values()) > 3 * SWITCH_WEIGHTS, gaps
    with pytest.raises(AssertionError, match="more than float32 rounding"):
        assert_close(other, ref, m[0].state_dict(), data, SWITCH_WEIGHTS, SWITCH_METRICS)
    # without shuffling, with the right seed: the data order is wrong too
    unshuffled = train_generic(m, [1], data, dataclasses.replace(CFG, shuffle=False), input_shape=SHAPE)[0]
    assert max(relative_gaps(unshuffled.final_state, ref.final_state, m[0].state_dict()).values()) > 3 * SWITCH_WEIGHTS
    lin = models_of(deep_linear, 1)
    ref = train_generic(lin, [1], data, CFG, input_shape=SHAPE, mode="each")[0]
    other = train_generic(lin, [2], data, CFG, input_shape=SHAPE, mode="vmap")[0]
    tol = rounding_tolerance(steps_of(ref), max(CFG.batch_size, 144))
    assert max(relative_gaps(other.final_state, ref.final_state, lin[0].state_dict()).values()) > 100 * tol


# --------------------------------------------------------------------------- the fast path


def test_matches_the_mlp_fast_path_records_included():
    """On the article's MLP (784-256-128-10, ReLU, dropout 0.2) train_generic takes the fast
    path's data order and dropout masks and agrees with it to float32 rounding
    (test_engine's tolerances), records included: ParamStats (layers 1..3, weight before
    bias, state_dict names) and ActivationStats (layers 1..3, softmax at the output)."""
    d = make_data(256, 128, side=28)
    spec = MLPSpec()
    models = [init_model(spec, k, i) for i, k in enumerate(("normal", "he", "lecun_uniform"))]
    seeds = [4, 5, 4]
    cfg = dataclasses.replace(CFG, log_every=2)
    gen = train_generic(models, seeds, d, cfg, spec=spec)
    fast = train(models, seeds, d, cfg)
    for m, g, f in zip(models, gen, fast):
        assert g.spec == spec
        assert_trains_like(g, f, m.state_dict(), d)
        for eg, ef in zip(g.epochs, f.epochs):
            assert [(p.layer, p.param, p.name, p.numel) for p in eg.params] == [
                (p.layer, p.param, p.name, p.numel) for p in ef.params]
            for pg, pf in zip(eg.params, ef.params):
                if eg.epoch == 0:
                    assert pg.to_dict() == pf.to_dict()  # the same numbers: bit for bit
                else:
                    assert (pg.mean, pg.std) == pytest.approx((pf.mean, pf.std), rel=1e-3, abs=1e-6)
            assert [a.layer for a in eg.activations] == [1, 2, 3]
            assert [a.name for a in eg.activations] == ["1", "4", "7"]
            for ag, af in zip(eg.activations, ef.activations):
                rel = 1e-5 if eg.epoch == 0 else 1e-2
                numbers = {k: v for k, v in af.to_dict().items() if k != "name"}
                assert {k: ag.to_dict()[k] for k in numbers} == pytest.approx(numbers, rel=rel, abs=1e-6)


def test_sink_calls_in_the_fast_paths_order():
    d = make_data(300, 64, side=28)  # 5 steps per epoch: windows across the epoch end
    spec = MLPSpec(hidden=(32,))
    models = [init_model(spec, "normal", 0), init_model(spec, "he", 1)]
    bad = init_model(spec, "normal", 2)
    with torch.no_grad():
        bad[1].weight[0, 0] = float("nan")
    cfg = dataclasses.replace(CFG, log_every=4)
    kinds = []
    for trainer in (train, lambda *a, **k: train_generic(*a, **k, spec=spec)):
        sink = Recorder()
        res = trainer([models[0], bad, models[1]], [1, 2, 3], d, cfg, sink=sink)
        kinds.append([(k, [r.model for r in v] if isinstance(v, list) else v.model) for k, v in sink.calls])
        streamed = sorted((r for k, v in sink.calls if k == "epoch" for r in v), key=lambda r: (r.model, r.epoch))
        assert streamed == [e for r in res for e in r.epochs]
    assert kinds[0] == kinds[1]
    assert ("diverged", 1) in kinds[1]


# --------------------------------------------------------------------------- divergence


def test_a_diverging_model_is_frozen_and_the_others_are_unaffected(data):
    """A CNN scaled by 1e30 diverges at the first step: frozen at its initial (last finite)
    weights, its Divergence recorded, a diverged epoch with NaN metrics.  The others train
    bit for bit as beside another model that diverges there too (same stack sizes
    throughout: only the diverging model's values differ), and as without it to float32
    rounding (a smaller stack: other kernel shapes)."""
    a, c = models_of(small_cnn, 2)
    bad = seeded(small_cnn, 9)
    with torch.no_grad():
        for p in bad.parameters():
            p.mul_(1e30)
    other_bad = seeded(small_cnn, 7)
    with torch.no_grad():
        other_bad[3].weight[0, 0, 0, 0] = float("nan")
    events = []

    class Catch(NullSink):
        def on_diverged(self, event):
            events.append(event)

    mixed = train_generic([a, bad, c], [1, 2, 3], data, CFG, input_shape=SHAPE, sink=Catch())
    mixed_other = train_generic([a, other_bad, c], [1, 2, 3], data, CFG, input_shape=SHAPE)
    alone = train_generic([a, c], [1, 3], data, CFG, input_shape=SHAPE)
    for i, r_alone, m in zip((0, 2), alone, (a, c)):
        assert not mixed[i].diverged
        assert states_equal(mixed[i].final_state, mixed_other[i].final_state)
        no_wall = [[e.to_dict() | {"wall_s": 0} for e in r.epochs] for r in (mixed[i], mixed_other[i])]
        assert no_wall[0] == no_wall[1]
        assert [s.to_dict() for s in mixed[i].steps] == [s.to_dict() for s in mixed_other[i].steps]
        assert_close(mixed[i], r_alone, m.state_dict(), data, SWITCH_WEIGHTS, SWITCH_METRICS)
    r = mixed[1]
    assert_frozen_at_its_first_step(r, mixed_other[1], bad, events)
    assert r.steps == []
    assert [e.batch_models for e in mixed[0].epochs] == [3, 3, 2]  # dropped after epoch 1


def test_a_batchnorm_model_that_diverges_keeps_its_last_finite_buffers(data):
    """One by one, a diverging model's running statistics are restored with its weights."""
    good = seeded(lambda: ResNet(norm=True), 1)
    bad = seeded(lambda: ResNet(norm=True), 2)
    with torch.no_grad():
        bad.stem.weight[0, 0, 0, 0] = float("nan")  # NaN batch statistics at the first step
    res = train_generic([good, bad], [1, 2], data, CFG, input_shape=SHAPE)
    assert res[1].divergence.step == 1 and not res[0].diverged
    want = bad.state_dict()
    assert want.keys() == res[1].final_state.keys()
    for k, v in res[1].final_state.items():  # bit for bit, the NaN included
        assert torch.equal(v.isnan(), want[k].isnan()) and torch.equal(v.nan_to_num(), want[k].nan_to_num()), k


# --------------------------------------------------------------------------- one by one


def plain_loop(model: nn.Module, seed: int, data: TrainData, cfg: TrainConfig) -> dict:
    """A textbook loop (nn.Module, torch.optim.Adam) on the engine's data order: the
    generator draws the permutation, then the (unused) dropout keys, each epoch."""
    net = copy.deepcopy(model)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    g = torch.Generator().manual_seed(seed)
    x, y = data.train_x.reshape(-1, *SHAPE), data.train_y
    N, B = len(y), cfg.batch_size
    for _ in range(cfg.epochs):
        perm = torch.randperm(N, generator=g)
        draw_keys(g, cfg.steps_per_epoch(N))
        for s in range(0, N, B):
            idx = perm[s : s + B]
            opt.zero_grad()
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def test_batchnorm_falls_back_to_one_by_one_and_says_so(data):
    """BatchNorm's running statistics cannot be vmapped: auto trains the models one by one
    (log says which and why), exactly as mode="each"; the running statistics are
    trained; each model trains as a textbook loop trains it; mode="vmap" refuses."""
    models = models_of(lambda: ResNet(norm=True), 2)
    logs: list[str] = []
    auto = train_generic(models, [1, 2], data, CFG, input_shape=SHAPE, log=logs.append)
    assert len(logs) == 1 and "one by one" in logs[0] and "BatchNorm2d" in logs[0], logs
    each = train_generic(models, [1, 2], data, CFG, input_shape=SHAPE, mode="each")
    for m, a, b in zip(models, auto, each):
        assert states_equal(a.final_state, b.final_state)
        rm = "blocks.0.bn.running_mean"
        assert not torch.equal(a.final_state[rm], m.state_dict()[rm])
        assert int(a.final_state["blocks.0.bn.num_batches_tracked"]) == 2 * CFG.steps_per_epoch(data.n_train)
        want = plain_loop(m, 1 if m is models[0] else 2, data, CFG)
        gaps = relative_gaps(a.final_state, want, m.state_dict())
        # (the conv biases in front of a BatchNorm are left out: BN subtracts them again, so
        # their true gradient is 0 and what Adam sees is rounding noise, normalized to lr)
        floats = {k: v for k, v in gaps.items() if want[k].is_floating_point()
                  and "running" not in k and not k.endswith("conv1.bias")}
        assert max(floats.values()) <= SWITCH_WEIGHTS, floats
    with pytest.raises(InitlabError, match="mode='vmap' cannot train this model: BatchNorm2d"):
        train_generic(models, [1, 2], data, CFG, input_shape=SHAPE, mode="vmap")


def test_data_dependent_control_flow_falls_back(data):
    class Gate(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(144, 10)

        def forward(self, x):
            h = self.fc(x.flatten(1))
            return h if h.sum() > -1e9 else -h  # a Python branch on a value

    models = models_of(Gate, 2)
    logs: list[str] = []
    res = train_generic(models, [1, 2], data, CFG, input_shape=SHAPE, log=logs.append)
    assert len(logs) == 1 and "vmap raised" in logs[0]
    assert all(not r.diverged and len(r.epochs) == 3 for r in res)


# --------------------------------------------------------------------------- bad inputs


class RandomForward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(144, 10)

    def forward(self, x):
        return F.dropout(self.fc(x.flatten(1)), 0.5, self.training)


@pytest.mark.parametrize("case,match", [
    ("mismatch", r"model 1 has .* where model 0 has .*; train models of one architecture together"),
    ("shape", r"input_shape \(1, 28, 28\) holds 784 values but the samples have 144"),
    ("fails", r"the model fails on a batch of shape \[2, 144, 1\]"),
    ("labels", r"train_y has labels in \[0, 9\] but the model has 5 outputs"),
    ("dropout2d", r"module '2' is Dropout2d, whose masks come from torch's global RNG"),
    ("global_rng", r"forward pass draws from torch's global RNG"),
    ("mode", r"mode must be one of auto, vmap, each"),
    ("seeds", r"got 2 models but 1 seeds"),
    ("output", r"it must return logits \[batch, classes\]"),
    ("workers", r"workers must be a positive integer or None, got 0"),
])
def test_bad_inputs_get_one_line(data, case, match):
    models, shape, seeds, mode = models_of(small_cnn, 2), SHAPE, [1, 2], "auto"
    if case == "mismatch":
        models[1] = nn.Sequential(nn.Conv2d(1, 7, 3, padding=1), *list(models[1])[1:])
    elif case == "shape":
        shape = (1, 28, 28)
    elif case == "fails":
        shape = (144, 1)
    elif case == "labels":
        models = [nn.Sequential(nn.Flatten(), nn.Linear(144, 5)) for _ in range(2)]
    elif case == "dropout2d":
        models = [nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Dropout2d(0.2), nn.Flatten(),
                                nn.Linear(400, 10)) for _ in range(2)]
    elif case == "global_rng":
        models = [RandomForward() for _ in range(2)]
    elif case == "mode":
        mode = "batched"
    elif case == "seeds":
        seeds = [1]
    elif case == "output":
        models = [nn.Sequential(nn.Conv2d(1, 4, 3)) for _ in range(2)]
    workers = 0 if case == "workers" else None
    state = torch.random.get_rng_state()
    with pytest.raises(InitlabError, match=match) as err:
        train_generic(models, seeds, data, CFG, input_shape=shape, mode=mode, workers=workers)
    assert "\n" not in str(err.value)
    assert torch.equal(state, torch.random.get_rng_state())  # nothing read the global RNG


def test_inputs_are_not_modified_and_sgd_and_schedules_run(data):
    models = models_of(small_cnn, 2)
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in models]
    cfg = dataclasses.replace(CFG, optimizer="sgd", lr=0.05, momentum=0.9, schedule="cosine")
    vm = train_generic(models, [1, 2], data, cfg, input_shape=SHAPE, mode="vmap")
    each = train_generic(models, [1, 2], data, cfg, input_shape=SHAPE, mode="each")
    for m, b, a, e in zip(models, before, vm, each):
        assert states_equal(m.state_dict(), b)
        assert_close(a, e, b, data, SWITCH_WEIGHTS, SWITCH_METRICS)
