"""TrainData: per-channel standardization of the inputs (TrainConfig.standardize)."""

from __future__ import annotations

import pytest
import torch

from initlab.engine import MLPSpec, TrainConfig, TrainData, build_mlp, train
from initlab.engine.generic import train_generic
from initlab.errors import InitlabError


def _data(shape: tuple[int, ...], n: int = 96) -> TrainData:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, *shape, generator=g) * 3 + 1
    y = torch.randint(0, 10, (n,), generator=g)
    return TrainData(x, y, x[:32] * 2, y[:32])


def test_standardized_inputs_have_zero_mean_unit_std_per_channel() -> None:
    d = _data((3, 4, 4))
    d = TrainData(d.train_x * torch.tensor([1.0, 5.0, 0.0]).view(1, 3, 1, 1), d.train_y, d.val_x, d.val_y)
    x, _, v, _ = d.prepared(torch.device("cpu"), standardize=True)
    per_channel = x.reshape(len(x), 3, -1)
    assert torch.allclose(per_channel.mean((0, 2)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(per_channel.std((0, 2), correction=0)[:2], torch.ones(2), atol=1e-5)
    assert per_channel[:, 2].abs().max() == 0  # a constant channel is only centred
    mean, std = d.channel_stats()  # validation uses the training set's statistics
    want = (d.val_x.double() - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    assert torch.allclose(v, want.float().reshape(len(v), -1))
    plain, _, _, _ = d.prepared(torch.device("cpu"))
    assert torch.equal(plain, d.train_x.reshape(len(x), -1))


def test_the_trainers_train_on_standardized_inputs_when_asked() -> None:
    d = _data((28, 28))
    mean, std = d.channel_stats()
    pre = TrainData(((d.train_x - mean) / std).float(), d.train_y, ((d.val_x - mean) / std).float(), d.val_y)
    config = TrainConfig(epochs=1, batch_size=32, log_every=0, probe_size=8)
    spec = MLPSpec(hidden=(16,))
    model = build_mlp(spec)
    on = train([model], [0], d, TrainConfig(**{**config.__dict__, "standardize": True}))[0]
    same = train([model], [0], pre, config)[0]
    off = train([model], [0], d, config)[0]
    w = "4.weight"  # the output layer: Flatten, Linear, ReLU, Dropout, Linear
    assert torch.equal(on.final_state[w], same.final_state[w])  # the same tensors, the same kernels
    assert not torch.allclose(on.final_state[w], off.final_state[w])
    g_on = train_generic([model], [0], d, TrainConfig(**{**config.__dict__, "standardize": True}),
                         input_shape=(784,))[0]
    g_same = train_generic([model], [0], pre, config, input_shape=(784,))[0]
    assert torch.equal(g_on.final_state[w], g_same.final_state[w])


def test_standardize_must_be_a_bool() -> None:
    with pytest.raises(InitlabError, match="standardize must be True or False"):
        TrainConfig(standardize="yes")  # type: ignore[arg-type]
