"""Tests of the engine's dropout masks (initlab.engine.dropout): the SplitMix64 stream,
the engine's float-mask path against the plain recipe, and the keep probability."""

from __future__ import annotations

import math

import pytest
import torch

from initlab.engine.dropout import (
    counter_base,
    draw_keys,
    float_masks_,
    keep_min_mantissa,
    keep_scale,
    splitmix_bits,
    step_masks,
)

M64 = (1 << 64) - 1


def splitmix64_python(key: int, i: int) -> int:
    """SplitMix64 output i of the stream seeded with key, in plain Python integers."""
    z = (key + (i + 1) * 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def test_splitmix_matches_python_reference():
    keys = torch.tensor([0, 1, 1234567, 2**62 + 12345, 2**63 - 1])
    bits = splitmix_bits(keys, counter_base(50))
    for k, key in enumerate(keys.tolist()):
        for i in (0, 1, 2, 17, 49):
            assert bits[k, i].item() & M64 == splitmix64_python(key, i)
    # the classic test vector: SplitMix64 seeded with 1234567 starts 6457827717110365317
    assert splitmix64_python(1234567, 0) == 6457827717110365317


@pytest.mark.parametrize("p", [0.2, 0.5, 1e-9, 0.999])
@pytest.mark.parametrize("rows", [128, 33])
def test_engine_masks_equal_recipe(p, rows):
    widths = (256, 7, 128)
    keys = torch.tensor([5, 2**40 + 3, 99])
    n = rows * sum(widths)
    bits = splitmix_bits(keys, counter_base((n + 1) // 2))
    out = torch.empty(len(keys), 2 * bits.shape[1])
    float_masks_(bits, p, out)
    for k in range(len(keys)):
        ref = torch.cat([m.flatten() for m in step_masks(keys[k], rows, widths, p)])
        assert torch.equal(out[k, :n], ref)
    assert set(out.unique().tolist()) <= {0.0, float(torch.tensor(keep_scale(p)))}


def test_keep_probability_and_independence():
    p = 0.2
    masks = step_masks(torch.tensor(42), 1000, (500,), p)[0]
    kept = masks > 0
    expected = 1 - keep_min_mantissa(p) / 2**23
    assert abs(expected - (1 - p)) <= 2**-23
    # 500k Bernoulli draws: 6 sigma is about 0.0034
    assert kept.float().mean().item() == pytest.approx(expected, abs=0.0034)
    # rows and columns look alike (no structure from the counter layout)
    assert kept.float().mean(0).std().item() == pytest.approx(math.sqrt(0.16 / 1000), rel=0.2)
    assert kept.float().mean(1).std().item() == pytest.approx(math.sqrt(0.16 / 500), rel=0.2)
    # consecutive draws are uncorrelated
    f = kept.float().flatten()
    corr = torch.corrcoef(torch.stack([f[:-1], f[1:]]))[0, 1].item()
    assert abs(corr) < 0.01
    # different keys give different masks, the same key the same ones
    assert torch.equal(masks, step_masks(torch.tensor(42), 1000, (500,), p)[0])
    assert not torch.equal(masks, step_masks(torch.tensor(43), 1000, (500,), p)[0])


def test_keys_come_from_the_generator():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    k1, k2 = draw_keys(g1, 10), draw_keys(g2, 10)
    assert torch.equal(k1, k2) and k1.dtype == torch.int64 and (k1 >= 0).all()
    assert not torch.equal(draw_keys(g1, 10), k1)
    with pytest.raises(ValueError, match="too close to 1"):
        float_masks_(torch.zeros(1, 2, dtype=torch.int64), 1 - 1e-13, torch.empty(1, 4))
