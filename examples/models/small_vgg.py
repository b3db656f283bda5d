"""A user's own model for `initlab run examples/custom-model.toml`: any function that
returns an ``nn.Module`` will do (here a small VGG-style net with two conv blocks and
batch normalization, which the generic trainer trains one model at a time because
BatchNorm's running statistics cannot be vmapped)."""

from torch import nn


def build() -> nn.Module:
    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                nn.MaxPool2d(2)]

    return nn.Sequential(*block(1, 16), *block(16, 32), nn.Flatten(),
                         nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 10))


def build_nonorm() -> nn.Module:
    """The same net without batch normalization (trained K models at once, vmapped)."""
    return nn.Sequential(*(m for m in build() if not isinstance(m, nn.BatchNorm2d)))
