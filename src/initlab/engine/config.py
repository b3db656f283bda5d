"""Training hyper-parameters of the engine (:class:`TrainConfig`).

The defaults reproduce the article's Keras setup: ``model.fit(x, y, batch_size=128,
epochs=10, validation_data=(x_test, y_test))`` after ``compile(optimizer="adam",
loss="sparse_categorical_crossentropy")``, i.e. Adam with Keras' defaults
(lr 1e-3, beta_1 0.9, beta_2 0.999, epsilon 1e-7), shuffling every epoch and keeping the
last partial batch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from initlab.engine.precision import PRECISIONS, check_precision
from initlab.errors import InitlabError

__all__ = ["OPTIMIZERS", "SCHEDULES", "TrainConfig"]

#: The optimizers the engine implements.
OPTIMIZERS: tuple[str, ...] = ("adam", "sgd")
#: Settings of SGD only, with their (neutral) defaults.
_SGD_ONLY: dict[str, Any] = {"momentum": 0.0, "nesterov": False, "weight_decay": 0.0}
#: The learning-rate schedules (:meth:`TrainConfig.lr_factor`).
SCHEDULES: tuple[str, ...] = ("constant", "step", "cosine")
#: Fields left out of :meth:`TrainConfig.to_dict` at their defaults (added after the first
#: studies were stored: their cells keep their keys).
_OPTIMIZER_DEFAULTS: dict[str, Any] = {"optimizer": "adam", **_SGD_ONLY, "schedule": "constant",
                                       "gamma": 0.1, "step_epochs": 30, "warmup_epochs": 0.0,
                                       "standardize": False, "precision": "fp32"}


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimizer, batching, logging and recording settings.

    Attributes
    ----------
    epochs:
        Passes over the training set (``0`` only records the state at init).
    batch_size:
        Samples per optimizer step.  As in Keras, the last partial batch of each epoch is
        used, so an epoch has ``ceil(N / batch_size)`` steps (469 for 60000 / 128).
    optimizer:
        ``"adam"`` (the article's, default) or ``"sgd"``: stochastic gradient descent with
        optional (Nesterov) momentum and L2 weight decay, exactly ``torch.optim.SGD``
        (dampening 0): ``d = g + weight_decay * p``; ``buf = momentum * buf + d`` (``buf =
        d`` at the first step); ``d = d + momentum * buf`` with ``nesterov``, else ``d =
        buf``; ``p -= lr * d``.  The classic initialization results (He et al. 2015,
        Glorot & Bengio 2010) are stated for SGD.
    lr:
        Step size of either optimizer.
    momentum, nesterov, weight_decay:
        SGD's momentum in [0, 1), Nesterov's variant (needs ``momentum > 0``) and its L2
        weight decay (>= 0).  They are SGD's only: with Adam they must keep their
        defaults (0, False, 0).
    schedule, gamma, step_epochs, warmup_epochs:
        The learning rate of step ``t`` (1-based, of ``T`` in all, ``spe`` per epoch) is
        ``lr * lr_factor(t)`` (:meth:`lr_factor`), for either optimizer:
        ``"constant"`` (default) 1; ``"step"`` ``gamma ** floor(e / step_epochs)`` with ``e
        = (t - 1) // spe`` the step's 0-based epoch (``torch.optim.lr_scheduler.StepLR``
        stepped per epoch); ``"cosine"`` ``(1 + cos(pi (t - 1) / T)) / 2``
        (``CosineAnnealingLR(T_max=T)`` stepped per step).  ``warmup_epochs`` ``w > 0``
        multiplies that by ``min(1, t / W)`` with ``W = ceil(w spe)`` steps (a linear
        warm-up from ``1/W``, ``LinearLR(start_factor=1/W, total_iters=W-1)``).
    betas:
        Adam's moment decay rates (Kingma & Ba 2015, Algorithm 1).
    eps:
        Adam's epsilon, **1e-7 as in Keras** (``tf.keras.optimizers.Adam(epsilon=1e-7)``),
        not PyTorch's 1e-8.  It is added to the bias-corrected ``sqrt(v_hat)`` exactly
        like ``torch.optim.Adam``: ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t)
        + eps)``.  The update of a weight is roughly ``lr * m_hat / (sqrt(v_hat) + eps)``,
        i.e. ``lr * sign(g)`` while ``|g| >> eps`` but ``lr * g / eps`` once
        ``|g| <~ eps``.  The two epsilons therefore give different trajectories early in
        training (when ``v_hat`` is still small) and for models whose gradients are
        near zero, such as the article's all-zeros and all-ones initializations, whose
        symmetric weights get tiny or exactly cancelling gradients.  Reproducing the
        article needs Keras' value.
    standardize:
        Standardize the inputs per channel with the training set's statistics: ``x' = (x
        - mean_c) / std_c`` over all training samples and pixels of channel ``c``
        (population std; one channel for ``[N, H, W]`` images), the same statistics for
        the validation set. Off by default: the article feeds pixels / 255.
    log_every:
        Record the training loss every this many optimizer steps (counted over the whole
        run; the last, shorter window is recorded too).  ``0`` turns step logging off.
    shuffle:
        Draw a fresh permutation of the training set per model per epoch.
    device:
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    probe_size:
        Number of validation images (the first ones) used to record per-layer activation
        statistics at init and after each epoch; ``0`` turns activation recording off.
    hist_bins:
        Number of bins of the per-layer weight histograms.
    eval_batch_size:
        Validation chunk size (memory only; it does not change the results' meaning).
    precision:
        The arithmetic of training: ``"fp32"`` (default, the article's), ``"tf32"`` (CUDA's
        TF32 matmuls, Ampere or newer) or ``"bf16"`` (bfloat16 matrix products, float32
        master weights and optimizer state); see :mod:`initlab.engine.precision`. It
        changes the results, so a study's cells keep it (omitted at ``"fp32"``).
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-7
    optimizer: str = "adam"
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"
    gamma: float = 0.1
    step_epochs: int = 30
    warmup_epochs: float = 0.0
    standardize: bool = False
    log_every: int = 50
    shuffle: bool = True
    device: str = "cpu"
    probe_size: int = 512
    hist_bins: int = 40
    eval_batch_size: int = 2048
    precision: str = "fp32"

    def __post_init__(self) -> None:
        betas = tuple(self.betas)
        object.__setattr__(self, "betas", betas)
        for name, minimum in (
            ("epochs", 0),
            ("batch_size", 1),
            ("log_every", 0),
            ("probe_size", 0),
            ("hist_bins", 1),
            ("eval_batch_size", 1),
        ):
            value = getattr(self, name)
            if not _is_int(value) or value < minimum:
                raise InitlabError(
                    f"TrainConfig.{name} must be an integer >= {minimum}, got {value!r}"
                )
        for name in ("lr", "eps"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise InitlabError(
                    f"TrainConfig.{name} must be a finite number > 0, got {value!r}"
                )
        if len(betas) != 2 or not all(
            isinstance(b, (int, float)) and 0.0 <= b < 1.0 for b in betas
        ):
            raise InitlabError(
                f"TrainConfig.betas must be two numbers in [0, 1), got {self.betas!r}"
            )
        for name in ("shuffle", "standardize"):
            if not isinstance(getattr(self, name), bool):
                raise InitlabError(f"TrainConfig.{name} must be True or False, got {getattr(self, name)!r}")
        self._check_optimizer()
        self._check_schedule()
        if self.precision not in PRECISIONS:
            raise InitlabError(f"TrainConfig.precision must be one of {', '.join(PRECISIONS)}, "
                               f"got {self.precision!r}")
        try:
            dev = torch.device(self.device)
        except (RuntimeError, TypeError):
            raise InitlabError(
                f"TrainConfig.device {self.device!r} is not a device; use 'cpu' or 'cuda'"
            ) from None
        if dev.type not in ("cpu", "cuda"):
            raise InitlabError(
                f"TrainConfig.device {self.device!r} is not supported; use 'cpu' or 'cuda'"
            )

    def _check_optimizer(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise InitlabError(f"TrainConfig.optimizer must be one of {', '.join(OPTIMIZERS)}, "
                               f"got {self.optimizer!r}")
        m, wd = self.momentum, self.weight_decay
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0.0 <= m < 1.0:
            raise InitlabError(f"TrainConfig.momentum must be a number in [0, 1), got {m!r}")
        if isinstance(wd, bool) or not isinstance(wd, (int, float)) or not (math.isfinite(wd) and wd >= 0):
            raise InitlabError(f"TrainConfig.weight_decay must be a finite number >= 0, got {wd!r}")
        if not isinstance(self.nesterov, bool):
            raise InitlabError(f"TrainConfig.nesterov must be True or False, got {self.nesterov!r}")
        object.__setattr__(self, "momentum", float(m))
        object.__setattr__(self, "weight_decay", float(wd))
        if self.optimizer == "sgd" and self.nesterov and m == 0:
            raise InitlabError("TrainConfig.nesterov needs momentum > 0 (as torch.optim.SGD); "
                               "set momentum, e.g. 0.9")
        if self.optimizer != "sgd":
            given = [k for k, v in _SGD_ONLY.items() if getattr(self, k) != v]
            if given:
                raise InitlabError(f"TrainConfig.{given[0]} is an SGD setting; set optimizer = "
                                   f"'sgd' with it, or leave it out for {self.optimizer}")

    def _check_schedule(self) -> None:
        if self.schedule not in SCHEDULES:
            raise InitlabError(f"TrainConfig.schedule must be one of {', '.join(SCHEDULES)}, "
                               f"got {self.schedule!r}")
        g, se, w = self.gamma, self.step_epochs, self.warmup_epochs
        if isinstance(g, bool) or not isinstance(g, (int, float)) or not 0.0 < g <= 1.0:
            raise InitlabError(f"TrainConfig.gamma must be a number in (0, 1], got {g!r}")
        if not _is_int(se) or se < 1:
            raise InitlabError(f"TrainConfig.step_epochs must be an integer >= 1, got {se!r}")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not (math.isfinite(w) and w >= 0):
            raise InitlabError(f"TrainConfig.warmup_epochs must be a finite number >= 0, got {w!r}")
        object.__setattr__(self, "gamma", float(g))
        object.__setattr__(self, "warmup_epochs", float(w))

    def lr_factor(self, step: int, steps_per_epoch: int) -> float:
        """The factor of ``lr`` at optimizer step *step* (1-based) of a run of
        ``epochs * steps_per_epoch`` steps (see the class docstring)."""
        total = self.epochs * steps_per_epoch
        if self.schedule == "step":
            factor = self.gamma ** ((step - 1) // steps_per_epoch // self.step_epochs)
        elif self.schedule == "cosine":
            factor = 0.5 * (1.0 + math.cos(math.pi * (step - 1) / total)) if total else 1.0
        else:
            factor = 1.0
        if self.warmup_epochs > 0:
            warmup = math.ceil(self.warmup_epochs * steps_per_epoch)
            factor *= min(1.0, step / warmup)
        return factor

    @classmethod
    def check_field(cls, name: str, value: Any) -> None:
        """Check one field on its own (a line of a spec file): an SGD setting is checked as
        SGD's; the rules that tie fields together are checked when the whole
        configuration is built."""
        context: dict[str, Any] = {"optimizer": "sgd", "momentum": 0.5} if name in _SGD_ONLY else {}
        cls.from_dict({**context, name: value})

    @property
    def torch_device(self) -> torch.device:
        """The device as a ``torch.device``; raises if CUDA is asked for but missing, or
        if the device cannot run :attr:`precision`."""
        dev = torch.device(self.device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise InitlabError(
                f"device {self.device!r} requested but CUDA is not available; use device='cpu'"
            )
        check_precision(self.precision, dev)
        return dev

    def steps_per_epoch(self, n_train: int) -> int:
        """``ceil(n_train / batch_size)``: Keras keeps the last partial batch."""
        return -(-n_train // self.batch_size)

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain values.  The optimizer, schedule, standardize and precision fields (added
        after the first studies were stored) appear only where they differ from their defaults, so
        a study's cells keep the keys they had before they existed."""
        d = asdict(self)
        d["betas"] = list(self.betas)
        for name, default in _OPTIMIZER_DEFAULTS.items():
            if d[name] == default:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = set(cls.__dataclass_fields__)
        extra = set(d) - known
        if extra:
            raise InitlabError(
                f"unknown training field(s) {sorted(extra)}; known fields are {sorted(known)}"
            )
        kw = dict(d)
        if "betas" in kw:
            kw["betas"] = tuple(kw["betas"])
        return cls(**kw)
