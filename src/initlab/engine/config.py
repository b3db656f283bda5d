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

from initlab.errors import InitlabError

__all__ = ["TrainConfig"]


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
    lr, betas:
        Adam step size and moment decay rates (Kingma & Ba 2015, Algorithm 1).
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
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-7
    log_every: int = 50
    shuffle: bool = True
    device: str = "cpu"
    probe_size: int = 512
    hist_bins: int = 40
    eval_batch_size: int = 2048

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
        if not isinstance(self.shuffle, bool):
            raise InitlabError(f"TrainConfig.shuffle must be True or False, got {self.shuffle!r}")
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

    @property
    def torch_device(self) -> torch.device:
        """The device as a ``torch.device``; raises if CUDA is asked for but missing."""
        dev = torch.device(self.device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise InitlabError(
                f"device {self.device!r} requested but CUDA is not available; use device='cpu'"
            )
        return dev

    def steps_per_epoch(self, n_train: int) -> int:
        """``ceil(n_train / batch_size)``: Keras keeps the last partial batch."""
        return -(-n_train // self.batch_size)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
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
