"""The engine's input tensors (:class:`TrainData`): images and labels, train and validation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from initlab.errors import InitlabError

__all__ = ["TrainData"]


def _check_pair(name: str, x: torch.Tensor, y: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise InitlabError(f"{name}_x and {name}_y must be torch tensors")
    if not x.is_floating_point():
        raise InitlabError(
            f"{name}_x has dtype {x.dtype}; pass float pixels scaled to [0, 1], "
            "e.g. x.float() / 255"
        )
    if x.dim() < 2:
        raise InitlabError(
            f"{name}_x must be [N, ...features] (e.g. [N, 28, 28]), got shape {tuple(x.shape)}"
        )
    if y.dim() != 1 or y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise InitlabError(
            f"{name}_y must be a 1-d integer tensor of class indices, got "
            f"shape {tuple(y.shape)} dtype {y.dtype}"
        )
    if x.shape[0] != y.shape[0]:
        raise InitlabError(
            f"{name}_x has {x.shape[0]} samples but {name}_y has {y.shape[0]}; "
            "pass matching tensors"
        )
    if x.shape[0] == 0:
        raise InitlabError(f"{name} set is empty; pass at least one sample")


@dataclass(frozen=True)
class TrainData:
    """Training and validation tensors: ``train_x [N, 28, 28]`` (or ``[N, 784]``) float
    pixels in [0, 1] (the article divides by 255), ``train_y [N]`` int64 class indices,
    and the same for validation (the article validates on the 10k test set).
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor

    def __post_init__(self) -> None:
        _check_pair("train", self.train_x, self.train_y)
        _check_pair("val", self.val_x, self.val_y)
        if self.train_x.shape[1:].numel() != self.val_x.shape[1:].numel():
            raise InitlabError(
                f"train_x samples have shape {tuple(self.train_x.shape[1:])} but val_x samples "
                f"have {tuple(self.val_x.shape[1:])}; use one image size"
            )

    @property
    def n_features(self) -> int:
        return int(self.train_x.shape[1:].numel())

    @property
    def n_train(self) -> int:
        return int(self.train_x.shape[0])

    @property
    def n_val(self) -> int:
        return int(self.val_x.shape[0])

    def subset(self, n_train: int | None = None, n_val: int | None = None) -> "TrainData":
        """The first ``n_train`` training and ``n_val`` validation samples (for tests)."""
        return TrainData(
            self.train_x[:n_train], self.train_y[:n_train], self.val_x[:n_val], self.val_y[:n_val]
        )

    def check_labels(self, n_classes: int) -> None:
        """Raise unless every label is in ``[0, n_classes)``."""
        for name, y in (("train_y", self.train_y), ("val_y", self.val_y)):
            lo, hi = int(y.min()), int(y.max())
            if lo < 0 or hi >= n_classes:
                raise InitlabError(
                    f"{name} has labels in [{lo}, {hi}] but the model has {n_classes} outputs; "
                    f"labels must be class indices 0..{n_classes - 1}"
                )

    def channel_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and population std of the training images (float64): channels
        are dim 1 of ``[N, C, H, W]`` samples; ``[N, H, W]`` or ``[N, F]`` samples are one
        channel. A constant channel gets std 1 (it is only centred)."""
        x = self.train_x.to(torch.float64)
        x = x.reshape(x.shape[0], x.shape[1], -1) if x.dim() == 4 else x.reshape(x.shape[0], 1, -1)
        mean = x.mean(dim=(0, 2))
        std = x.std(dim=(0, 2), correction=0)
        return mean, torch.where(std > 0, std, torch.ones_like(std))

    def prepared(
        self, device: torch.device, standardize: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(train_x [N, F], train_y, val_x [M, F], val_y)`` as contiguous float32 / int64
        tensors on *device* (no copy when they already are); with *standardize*, each
        image standardized per channel with :meth:`channel_stats` of the training set."""
        stats = self.channel_stats() if standardize else None

        def flat(x: torch.Tensor) -> torch.Tensor:
            if stats is not None:
                mean, std = stats
                grouped = x.to(torch.float64).reshape(x.shape[0], mean.numel(), -1)
                x = ((grouped - mean.reshape(1, -1, 1)) / std.reshape(1, -1, 1)).to(torch.float32)
            return x.reshape(x.shape[0], -1).to(device=device, dtype=torch.float32).contiguous()

        def labels(y: torch.Tensor) -> torch.Tensor:
            return y.to(device=device, dtype=torch.int64).contiguous()

        return flat(self.train_x), labels(self.train_y), flat(self.val_x), labels(self.val_y)
