"""The batched training engine: K same-architecture MLPs trained at once.

:func:`train` stacks the K models' parameters (:class:`~initlab.engine.stack.ParamStack`)
and runs every training step for all of them with batched matrix products
(:class:`~initlab.engine.step.BatchedStep`), so one ``torch.bmm`` does the work of K small
``torch.mm`` calls and the per-step Python and dispatch overhead is paid once for K models.
Each model nevertheless trains exactly as it would alone
(:func:`initlab.engine.reference.train_one` is that loop, and the tests check both agree):

* its own ``torch.Generator``, seeded with its seed, draws at the start of each epoch a
  permutation of the training set (``torch.randperm``; none when ``shuffle=False``) and
  then one dropout key per step, from which that step's masks are derived (see
  :mod:`initlab.engine.dropout`).  Models with equal seeds would draw the same, so they
  share one generator: a *data stream*, whose batch is gathered and whose masks are made
  once per step for all its models (a study's schemes x seeds grid has one stream per
  seed).  The stack keeps each stream's models next to each other; results come back in
  input order;
* batches follow Keras: ``ceil(N / batch_size)`` steps per epoch, the last one partial;
* its own optimizer state: Adam (:class:`~initlab.engine.adam.StackedAdam`) or SGD with
  momentum (:class:`~initlab.engine.sgd.StackedSGD`);
* the loss is the batch mean of ``-log_softmax(z)[y]``; gradients are computed with
  autograd's own kernels, in autograd's order.

What "exactly as alone" guarantees, and where (``tests/test_engine.py`` checks each):

* **bit for bit** wherever both sides make the same kernel calls on the same shapes:
  two runs of the same study on one machine (same grouping, same thread count), and a
  model next to others whose *values* differ (same stack size and position, the same
  divergence events: nothing computed for one model reads another's values);
* **to float32 rounding** between the engine and :func:`train_one`, and between two
  groupings of the same cell (another stack size or position).  The two sides run other
  kernels for their matrix products (``torch.bmm`` against ``torch.addmm``, another thread
  split, :func:`~initlab.engine.functional.bmm_calls`), and the CPU's BLAS picks the
  summation order per machine (AVX-512 and AVX2 kernels, MKL's code path, the thread
  count): on some CPUs the last bits agree, on others they do not.  One step differs by
  at most the rounding of its products (relative ``~ n * 2**-24`` for contraction length
  ``n``).  Over further steps a smooth network stays within that per step; a ReLU network
  also sees a unit of some sample switched on in one trajectory and off in the other
  where rounding moved its pre-activation across zero, a discrete change that puts the
  weights up to a few percent of their displacement apart within a few steps (measured
  3e-2 after 6 steps).  Ten epochs grow this into differences far below the
  seed-to-seed spread (0.1% of accuracy).  With ``adam="foreach"`` the update itself is
  ``torch.optim.Adam``'s own op order; the default fused kernel rounds it differently
  (~1e-8 on the weights).

Divergence: a model whose ``loss_sum + sum(gradients)`` is not finite at a step (i.e. a
non-finite loss or gradient) is frozen from that step on, on the device and without a host
sync: its Adam update is skipped, so it keeps its last finite parameters.  Nothing
computed for one model reads another's values, so the others continue as they would
without it (bit for bit as beside another model that diverges at the same step).  The
host notices at the next logging point or epoch end, reports a
:class:`~initlab.records.Divergence`, records the divergence epoch with NaN
metrics, and then drops the model from the stack so that it costs nothing afterwards.

Host syncs happen only at logging points (every ``log_every`` steps) and at epoch ends:
per step, each model's loss sum, number of correct predictions and gradient sum are
written to a device buffer (``[steps, 3, K]``) that the host reads at those points, and
from which it derives the running (Keras) training metrics and the step records.

Numerics: float32 throughout by default, as in the article (``TrainConfig.precision =
"fp32"``; TF32 is switched off for the run on CUDA).  ``"tf32"`` (CUDA's TF32 matmuls) and
``"bf16"`` (bfloat16 matrix products, float32 master weights and Adam state) trade that
precision, and the equivalence with the reference loop, for speed: see
:mod:`initlab.engine.precision`.  The global TF32 switches are restored after the run.

Step modes (``step``): ``"eager"`` (default) runs each step op by op; ``"compile"`` runs
the step's forward and backward through ``torch.compile`` (static shapes: one compilation
per batch size and stack size), the update as before; ``"cuda-graphs"`` captures each
whole step (per batch size) once as a CUDA graph and replays it, so a step costs one
launch instead of hundreds (CUDA only, constant learning rate, fused Adam or SGD).  Both
keep the no-sync design and compute the same operations as ``"eager"`` (``"compile"`` may
fuse elementwise ops and round them differently: float32 rounding, as between groupings).
Where a mode cannot run (no CUDA device, a schedule, a failed compilation or capture) the
run falls back to ``"eager"`` with a warning saying why.
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from typing import Sequence

import numpy as np
import torch
from torch import nn

from initlab.engine.adam import fused_adam_available
from initlab.engine.config import TrainConfig
from initlab.engine.dropout import draw_keys
from initlab.engine.functional import evaluate
from initlab.engine.inputs import TrainData
from initlab.engine.models import MLPSpec
from initlab.engine.precision import precision_mode
from initlab.engine.recorders import activation_stats, param_stats
from initlab.engine.results import Sink, TrainResult
from initlab.records import Divergence, EpochRecord, StepRecord
from initlab.engine.stack import ParamStack, common_spec
from initlab.engine.step import STEP_MODES, BatchedStep
from initlab.errors import InitlabError

__all__ = ["train", "check_inputs"]

_NAN = float("nan")


def check_inputs(
    models: Sequence[nn.Module], seeds: Sequence[int], data: TrainData, config: TrainConfig
) -> MLPSpec:
    """Validate the arguments of :func:`train`; return the models' common spec."""
    if not isinstance(config, TrainConfig):
        raise InitlabError(f"config must be a TrainConfig, got {type(config).__name__}")
    if not isinstance(data, TrainData):
        raise InitlabError(
            f"data must be a TrainData(train_x, train_y, val_x, val_y), got {type(data).__name__}"
        )
    models, seeds = list(models), list(seeds)
    if len(models) != len(seeds):
        raise InitlabError(
            f"got {len(models)} models but {len(seeds)} seeds; pass one seed per model"
        )
    for s in seeds:
        if not isinstance(s, numbers.Integral) or isinstance(s, bool) or not 0 <= s < 2**63:
            raise InitlabError(f"seed {s!r} is not an integer in [0, 2**63); pass integer seeds")
    spec = common_spec(models)
    if data.n_features != spec.in_features:
        raise InitlabError(
            f"samples have {data.n_features} features but the model expects "
            f"{spec.in_features}; build the model with MLPSpec(in_features={data.n_features})"
        )
    data.check_labels(spec.out_features)
    config.torch_device  # raises if CUDA is unavailable
    return spec


class _BatchedRun:
    """One call of :func:`train`: the stepper, the generators, the per-step buffer and the
    host-side bookkeeping (epoch/window sums, divergences, records)."""

    def __init__(
        self,
        models: Sequence[nn.Module],
        seeds: Sequence[int],
        data: TrainData,
        config: TrainConfig,
        sink: Sink | None,
        adam_impl: str,
        step_mode: str = "eager",
    ) -> None:
        spec = check_inputs(models, seeds, data, config)
        if step_mode not in STEP_MODES:
            raise InitlabError(f"step must be one of {', '.join(STEP_MODES)}, got {step_mode!r}")
        self.step_mode = step_mode
        if adam_impl not in ("auto", "fused", "foreach"):
            raise InitlabError(f"adam must be 'auto', 'fused' or 'foreach', got {adam_impl!r}")
        if adam_impl == "fused" and config.optimizer != "adam":
            raise InitlabError(f"adam='fused' chooses Adam's kernel, but the optimizer is "
                               f"{config.optimizer!r}; leave adam at 'auto'")
        if adam_impl == "fused" and not fused_adam_available(config.torch_device):
            raise InitlabError(
                "adam='fused' needs torch._fused_adam_ (torch >= 2.4 on CPU); use adam='auto'"
            )
        self.config, self.spec, self.sink = config, spec, sink
        self.device = dev = config.torch_device
        Xtr, Ytr, self.Xv, self.Yv = data.prepared(dev, config.standardize)
        self.probe = self.Xv[: config.probe_size]
        self.N = Xtr.shape[0]
        self.spe = config.steps_per_epoch(self.N)
        self.total_steps = self.spe * config.epochs
        # models with equal seeds draw equal data orders and dropout masks: they form one
        # data stream, whose batches and masks are made once per step.  The stack holds
        # each stream's models next to each other (ids[i]: input position of stack row i).
        seeds = [int(s) for s in seeds]
        streams = list(dict.fromkeys(seeds))
        rank = {s: u for u, s in enumerate(streams)}
        self.ids = sorted(range(len(models)), key=lambda i: rank[seeds[i]])
        self.stream = [rank[seeds[i]] for i in self.ids]  # stream of each stack row
        self.stack = ParamStack.from_models([models[i] for i in self.ids], dev, spec)
        self.stepper = BatchedStep(
            self.stack, Xtr, Ytr, config, adam_impl, sizes=self._sizes(), mode=step_mode
        )
        self.gens = [torch.Generator(device=dev).manual_seed(s) for s in streams]
        self.results = [
            TrainResult(model=i, seed=int(s), spec=spec, config=config) for i, s in enumerate(seeds)
        ]
        self.step = 0  # optimizer steps taken
        self.synced = 0  # steps whose figures the host has read
        B = config.batch_size
        self.batch_sizes = [min(B, self.N - s * B) for s in range(self.spe)]
        K = self.stack.K
        # per step: -loss_sum, correct, grad_sum of each model (see BatchedStep.__call__)
        self.hist = torch.zeros(self.total_steps, 3, K, dtype=torch.float32, device=dev)
        self.host_alive = [True] * K
        self.ep_sums = [[0.0, 0.0] for _ in range(K)]
        self.win_sums = [[0.0, 0.0] for _ in range(K)]
        self.win_steps = self.win_samples = 0

    # ------------------------------------------------------------------ host side
    def _sync(self, epoch: int) -> None:
        """Read the per-step figures since the last sync: accumulate epoch/window sums,
        report divergences."""
        if self.step == self.synced:
            return
        rows = self.hist[self.synced : self.step].cpu().numpy()  # [n, 3, K] float32
        sizes = [self.batch_sizes[(t) % self.spe] for t in range(self.synced, self.step)]
        with np.errstate(invalid="ignore", over="ignore"):  # inf + -inf is nan: non-finite either way
            bad = ~np.isfinite(rows[:, 0, :] + rows[:, 2, :])  # float32 sum, as on the device
        sums = rows[:, :2, :].astype(np.float64).sum(0)  # [2, K]
        for i in range(self.stack.K):
            if not self.host_alive[i]:
                continue
            hits = np.flatnonzero(bad[:, i])
            if hits.size:
                t = int(hits[0])
                s = self.synced + t + 1
                loss = float(-rows[t, 0, i] / sizes[t])
                ev = Divergence(
                    model=self.ids[i], epoch=(s - 1) // self.spe + 1, step=s,
                    epoch_step=(s - 1) % self.spe + 1, loss=loss,
                    reason="gradient" if math.isfinite(loss) else "loss",
                )
                self.host_alive[i] = False
                self.results[self.ids[i]].divergence = ev
                if self.sink is not None:
                    self.sink.on_diverged(ev)
                continue
            for acc in (self.ep_sums[i], self.win_sums[i]):
                acc[0] -= float(sums[0, i])
                acc[1] += float(sums[1, i])
        self.win_steps += len(sizes)
        self.win_samples += sum(sizes)
        self.synced = self.step

    def _log_window(self, epoch: int) -> None:
        self._sync(epoch)
        n = self.win_samples
        recs = [
            StepRecord(
                model=self.ids[i], epoch=epoch, step=self.step, steps=self.win_steps,
                samples=n, loss=self.win_sums[i][0] / n, accuracy=self.win_sums[i][1] / n,
            )
            for i in range(self.stack.K)
            if self.host_alive[i]
        ]
        for r in recs:
            self.results[r.model].steps.append(r)
        if self.sink is not None and recs:
            self.sink.on_step(recs)
        self.win_sums = [[0.0, 0.0] for _ in range(self.stack.K)]
        self.win_steps = self.win_samples = 0

    def _end_epoch(self, epoch: int, t0: float) -> None:
        """Validation, snapshots, records; then drop dead models from the stack."""
        self._sync(epoch)
        K = self.stack.K
        dead = [i for i in range(K) if not self.host_alive[i]]
        v_loss, v_acc, pstats, astats = self._measure()
        wall = time.perf_counter() - t0
        recs = []
        for i in range(K):
            ok = self.host_alive[i]
            trained = ok and epoch > 0
            recs.append(
                EpochRecord(
                    model=self.ids[i], epoch=epoch, step=self.step,
                    train_loss=self.ep_sums[i][0] / self.N if trained else _NAN,
                    train_acc=self.ep_sums[i][1] / self.N if trained else _NAN,
                    val_loss=v_loss[i] if ok else _NAN, val_acc=v_acc[i] if ok else _NAN,
                    wall_s=wall, batch_models=K, diverged=not ok,
                    params=pstats[i], activations=astats[i],
                )
            )
        for r in recs:
            self.results[r.model].epochs.append(r)
        if self.sink is not None:
            self.sink.on_epoch(recs)
        self.ep_sums = [[0.0, 0.0] for _ in range(K)]
        if dead:
            for i in dead:
                self.results[self.ids[i]].final_state = self.stack.state_dict(i)
            self._select([i for i in range(K) if i not in dead])

    def _measure(self) -> tuple[list[float], list[float], list, list]:
        """Per stack row: validation loss and accuracy, parameter and activation
        statistics (the generic trainer measures with recorders of its own)."""
        v_loss, v_acc = (
            t.tolist() for t in evaluate(self.stack, self.Xv, self.Yv, self.config.eval_batch_size)
        )
        return (v_loss, v_acc, param_stats(self.stack, self.config.hist_bins),
                activation_stats(self.stack, self.probe))

    def _sizes(self) -> list[int]:
        """Number of models of each stream (stack rows are grouped by stream)."""
        sizes = [0] * (max(self.stream) + 1 if self.stream else 0)
        for u in self.stream:
            sizes[u] += 1
        return sizes

    def _select(self, keep: list[int]) -> None:
        """Drop all models but *keep* (stack positions) from every per-model state."""
        self.ids = [self.ids[i] for i in keep]
        live = sorted({self.stream[i] for i in keep})  # streams that still have models
        self.gens = [self.gens[u] for u in live]
        self.stream = [live.index(self.stream[i]) for i in keep]
        self.host_alive = [True] * len(keep)
        self.ep_sums = [self.ep_sums[i] for i in keep]
        self.win_sums = [self.win_sums[i] for i in keep]
        if not keep:
            return
        ix = torch.as_tensor(keep, dtype=torch.long, device=self.device)
        self.stack = self.stack.select(keep)
        self.stepper.select(keep, self.stack, self._sizes())
        self.hist = self.hist.index_select(2, ix)

    # ------------------------------------------------------------------ main loop
    def run(self) -> list[TrainResult]:
        with precision_mode(self.config.precision, self.device):
            results = self._run()
        fallback = getattr(self.stepper, "fallback", "")
        mode = getattr(self, "step_mode", "eager")
        if mode != "eager" and fallback:
            warnings.warn(f"initlab: step {mode!r} fell back to eager: {fallback}", stacklevel=3)
        return results

    @torch.no_grad()
    def _run(self) -> list[TrainResult]:
        cfg, dev = self.config, self.device
        self._end_epoch(0, time.perf_counter())
        for epoch in range(1, cfg.epochs + 1):
            if not self.ids:
                break
            t0 = time.perf_counter()
            U = len(self.gens)
            if cfg.shuffle:
                perms = torch.stack(
                    [torch.randperm(self.N, generator=g, device=dev) for g in self.gens]
                )
            else:
                perms = torch.arange(self.N, device=dev).expand(U, -1)
            keys = torch.stack([draw_keys(g, self.spe) for g in self.gens], 1)  # [steps, U]
            B = cfg.batch_size
            for s in range(self.spe):
                self.stepper.optimizer.lr = cfg.lr * cfg.lr_factor(self.step + 1, self.spe)
                self.stepper(perms[:, s * B : (s + 1) * B], keys[s], self.hist[self.step])
                self.step += 1
                log = cfg.log_every and self.step % cfg.log_every == 0
                if log or (cfg.log_every and self.step == self.total_steps):
                    self._log_window(epoch)
            self._end_epoch(epoch, t0)
        for i, mid in enumerate(self.ids):
            self.results[mid].final_state = self.stack.state_dict(i)
        return self.results


def train(
    models: Sequence[nn.Module],
    seeds: Sequence[int],
    data: TrainData,
    config: TrainConfig = TrainConfig(),
    *,
    sink: Sink | None = None,
    adam: str = "auto",
    step: str = "eager",
) -> list[TrainResult]:
    """Train K already-initialized MLPs of one architecture together.

    Parameters
    ----------
    models:
        K ``nn.Sequential`` models built by ``build_mlp(spec)`` (one spec), already
        initialized.  They are only read: the trained parameters are returned in
        ``TrainResult.final_state``.
    seeds:
        One integer per model; it seeds that model's generator, which alone decides its
        data order and dropout masks.
    data:
        The training and validation tensors.
    config:
        Optimizer, batching and recording settings (:class:`TrainConfig`).
    sink:
        Optional receiver of records as they are produced (:class:`Sink`).
    adam:
        ``"auto"`` (fused kernel when available), ``"fused"`` or ``"foreach"``; see
        :mod:`initlab.engine.adam`.
    step:
        ``"eager"`` (default), ``"compile"`` (``torch.compile`` of the step's forward and
        backward) or ``"cuda-graphs"`` (each step one CUDA graph replay); see the module
        docstring.  A mode that cannot run falls back to ``"eager"`` with a warning.

    Returns
    -------
    One :class:`TrainResult` per model, in input order, with all its records.
    """
    return _BatchedRun(models, seeds, data, config, sink, adam, step).run()
