"""The reference loop: one model, plain PyTorch (``nn.Sequential``, autograd,
``torch.optim.Adam``).

:func:`train_one` is what the batched engine must be numerically equivalent to.  It is
deliberately simple; the only departure from a textbook loop is that dropout masks come
from the model's own generator (:mod:`initlab.engine.dropout`) instead of ``nn.Dropout``'s
global RNG, so that the generator streams match the engine's:

    per epoch:  perm = torch.randperm(N, generator=g)          (if shuffle)
                keys = draw_keys(g, steps)
    per step:   masks = step_masks(keys[step], batch, hidden widths, p), one per Dropout
                loss = cross_entropy(model(x[batch]), y[batch])  (batch mean)
                loss.backward(); Adam step

A model diverges at the first step whose loss or gradient sum is not finite; that step's
update is not applied and training stops (the parameters stay at their last finite
values).
"""

from __future__ import annotations

import copy
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from initlab.engine.batched import check_inputs
from initlab.engine.config import TrainConfig
from initlab.engine.dropout import draw_keys, step_masks
from initlab.engine.inputs import TrainData
from initlab.engine.recorders import activation_stats, param_stats
from initlab.engine.results import Sink, TrainResult
from initlab.records import Divergence, EpochRecord, StepRecord
from initlab.engine.stack import ParamStack

__all__ = ["train_one"]

_NAN = float("nan")


def _forward(net: nn.Sequential, x: torch.Tensor, masks: list[torch.Tensor] | None) -> torch.Tensor:
    """Forward pass; the j-th Dropout layer multiplies by ``masks[j]`` (train) or is
    skipped (``masks is None``: eval)."""
    h = x
    j = 0
    for m in net:
        if isinstance(m, nn.Dropout):
            if masks is not None:
                h = h * masks[j]
                j += 1
        else:
            h = m(h)
    return h


@torch.no_grad()
def _evaluate(
    net: nn.Sequential, x: torch.Tensor, y: torch.Tensor, chunk: int
) -> tuple[float, float]:
    loss = correct = 0.0
    for s in range(0, x.shape[0], chunk):
        logits = _forward(net, x[s : s + chunk], None)
        loss += float(F.cross_entropy(logits, y[s : s + chunk], reduction="sum"))
        correct += float((logits.argmax(1) == y[s : s + chunk]).sum())
    return loss / x.shape[0], correct / x.shape[0]


def train_one(
    model: nn.Module,
    seed: int,
    data: TrainData,
    config: TrainConfig = TrainConfig(),
    *,
    sink: Sink | None = None,
) -> TrainResult:
    """Train a copy of *model* alone with a plain PyTorch loop; return its
    :class:`TrainResult` (same records as :func:`initlab.engine.train`, ``model=0``).

    *model* itself is not modified.  Slow by design: this is the reference the batched
    engine is tested against (it agrees to float32 rounding, and bit for bit where both
    make the same product kernel calls; see :mod:`initlab.engine.batched`).
    """
    spec = check_inputs([model], [seed], data, config)
    dev = config.torch_device
    Xtr, Ytr, Xv, Yv = data.prepared(dev, config.standardize)
    probe = Xv[: config.probe_size]
    net = copy.deepcopy(model).to(device=dev, dtype=torch.float32)
    net.train()
    g = torch.Generator(device=dev).manual_seed(int(seed))
    if config.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            net.parameters(), lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
            weight_decay=config.weight_decay)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=config.lr, betas=config.betas, eps=config.eps)
    N, B = Xtr.shape[0], config.batch_size
    spe = config.steps_per_epoch(N)
    total = spe * config.epochs
    res = TrainResult(model=0, seed=int(seed), spec=spec, config=config)

    def record(epoch: int, t0: float, tr: tuple[float, float], diverged: bool) -> None:
        net.eval()
        stack = ParamStack.from_models([net], dev, spec)
        v = (_NAN, _NAN) if diverged else _evaluate(net, Xv, Yv, config.eval_batch_size)
        params = param_stats(stack, config.hist_bins)[0]
        activations = activation_stats(stack, probe)[0]
        net.train()
        rec = EpochRecord(
            model=0, epoch=epoch, step=step, train_loss=tr[0], train_acc=tr[1],
            val_loss=v[0], val_acc=v[1], wall_s=time.perf_counter() - t0, batch_models=1,
            diverged=diverged, params=params, activations=activations,
        )
        res.epochs.append(rec)
        if sink is not None:
            sink.on_epoch([rec])

    step = 0
    record(0, time.perf_counter(), (_NAN, _NAN), False)
    win_loss = win_correct = 0.0
    win_steps = win_samples = 0
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        if config.shuffle:
            perm = torch.randperm(N, generator=g, device=dev)
        else:
            perm = torch.arange(N, device=dev)
        keys = draw_keys(g, spe)
        ep_loss = ep_correct = 0.0
        for s in range(spe):
            idx = perm[s * B : (s + 1) * B]
            x, y = Xtr[idx], Ytr[idx]
            masks = []
            if spec.dropout > 0:
                masks = step_masks(keys[s], y.shape[0], spec.hidden, spec.dropout)
            logits = _forward(net, x, masks)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            loss_v = float(loss.detach())
            gsum = float(sum(p.grad.sum() for p in net.parameters()))
            if not (math.isfinite(loss_v) and math.isfinite(gsum)):
                step += 1
                res.divergence = Divergence(
                    model=0, epoch=epoch, step=step, epoch_step=s + 1, loss=loss_v,
                    reason="gradient" if math.isfinite(loss_v) else "loss",
                )
                if sink is not None:
                    sink.on_diverged(res.divergence)
                record(epoch, t0, (_NAN, _NAN), True)
                res.final_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
                return res
            for group in opt.param_groups:
                group["lr"] = config.lr * config.lr_factor(step + 1, spe)
            opt.step()
            step += 1
            b = y.shape[0]
            correct = float((logits.argmax(1) == y).sum())
            ep_loss += loss_v * b
            ep_correct += correct
            win_loss += loss_v * b
            win_correct += correct
            win_steps += 1
            win_samples += b
            if config.log_every and (step % config.log_every == 0 or step == total):
                rec = StepRecord(
                    model=0, epoch=epoch, step=step, steps=win_steps, samples=win_samples,
                    loss=win_loss / win_samples, accuracy=win_correct / win_samples,
                )
                res.steps.append(rec)
                if sink is not None:
                    sink.on_step([rec])
                win_loss = win_correct = 0.0
                win_steps = win_samples = 0
        record(epoch, t0, (ep_loss / N, ep_correct / N), False)
    res.final_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    return res
