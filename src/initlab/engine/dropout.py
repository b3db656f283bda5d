"""Dropout masks derived from an explicit per-model ``torch.Generator``.

``nn.Dropout`` draws from the global RNG, so K models trained together could not each get
the masks they would get alone.  The engine and the reference loop instead derive every
mask from the model's own generator ``g``, with this module's one recipe:

1. At the start of each epoch (after the data permutation) one 63-bit key per step is
   drawn from ``g``: ``keys = draw_keys(g, steps)``.
2. The masks of step ``s`` come from a counter-based stream keyed by ``key = keys[s]``:
   SplitMix64 (Steele, Lea & Flood 2014, "Fast splittable pseudorandom number
   generators", OOPSLA; the generator of Java's ``SplittableRandom``)::

       x_i = mix64(key + (i + 1) * 0x9E3779B97F4A7C15)      (mod 2^64),  i = 0, 1, ...
       mix64(z): z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27;
                 z *= 0x94D049BB133111EB; z ^= z >> 31        (logical shifts)

   Each 64-bit ``x_i`` gives two 32-bit draws (its halves, low half first).  The dropout
   layers consume consecutive draws in forward order, each filling its
   ``[batch, units]`` mask row-major.
3. A unit is kept iff the low 23 bits ``m`` of its draw satisfy ``m >= ceil(p * 2^23)``:
   probability ``1 - ceil(p * 2^23) / 2^23``, within ``2^-23`` of ``1 - p`` (the
   resolution of a float32 uniform).
4. Kept units are scaled by ``1 / (1 - p)`` (inverted dropout, as Keras and PyTorch do):
   ``x * mask / (1 - p)`` is computed as ``x * (mask * (1 / (1 - p)))``, the mask holding
   ``0`` or ``float32(1 / (1 - p))``.

Why not ``torch.rand(..., generator=g)`` per step: a CPU generator makes 3-4 ns per number,
serially; for the article's MLP that is ~0.1 s per model-epoch, a quarter of the engine's
whole budget.  The counter-based stream is a dozen vectorized, multi-threaded tensor ops
for all K models at once, and works the same on CUDA.  23 bits (not 32) because they turn
into a float ``1 + m * 2^-23`` by bit masking alone, and a float mask is what the layer
multiplies by (see :func:`float_masks_`).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "GAMMA",
    "draw_keys",
    "keep_scale",
    "keep_min_mantissa",
    "counter_base",
    "splitmix_bits",
    "mask_offset",
    "float_masks_",
    "step_masks",
]

_MASK64 = (1 << 64) - 1


def _signed(x: int) -> int:
    x &= _MASK64
    return x - (1 << 64) if x >= 1 << 63 else x


GAMMA = _signed(0x9E3779B97F4A7C15)
_M1 = _signed(0xBF58476D1CE4E5B9)
_M2 = _signed(0x94D049BB133111EB)
_MIX = ((30, _M1), (27, _M2), (31, None))
#: Keeps the low 23 bits of both 32-bit halves / sets both halves' exponent to 2^0.
_MANT2 = 0x007FFFFF007FFFFF
_ONE2 = 0x3F8000003F800000


def draw_keys(generator: torch.Generator, steps: int) -> torch.Tensor:
    """``[steps]`` int64 keys (uniform on ``[0, 2^63)``) drawn from *generator* on its
    device."""
    keys = torch.empty(steps, dtype=torch.int64, device=generator.device)
    return keys.random_(generator=generator)


def keep_min_mantissa(p: float) -> int:
    """``ceil(p * 2^23)``: a unit is kept iff its 23-bit draw is ``>=`` this."""
    return int(math.ceil(p * 2**23))


def keep_scale(p: float) -> float:
    """``1 / (1 - p)``, the factor applied to kept units."""
    return 1.0 / (1.0 - p)


def counter_base(n64: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(i + 1) * GAMMA mod 2^64`` for ``i < n64`` as int64 (the key-independent part of
    the SplitMix64 states)."""
    return torch.arange(1, n64 + 1, dtype=torch.int64, device=device).mul_(GAMMA)


def _mix64_(z: torch.Tensor, tmp: torch.Tensor) -> torch.Tensor:
    """SplitMix64's finalizer, in place on int64 *z* (int64 arithmetic wraps mod 2^64;
    ``>>`` is arithmetic on int64, so the logical shift masks off the sign copies)."""
    for shift, mult in _MIX:
        torch.bitwise_right_shift(z, shift, out=tmp)
        tmp.bitwise_and_((1 << (64 - shift)) - 1)
        z.bitwise_xor_(tmp)
        if mult is not None:
            z.mul_(mult)
    return z


def splitmix_bits(
    keys: torch.Tensor,
    base: torch.Tensor,
    out: torch.Tensor | None = None,
    tmp: torch.Tensor | None = None,
) -> torch.Tensor:
    """SplitMix64 outputs ``[len(keys), len(base)]`` (int64) for the streams keyed by
    ``keys [K]`` at the states ``base`` (from :func:`counter_base`); *out*/*tmp* are optional
    preallocated int64 buffers of that shape."""
    z = torch.add(base.unsqueeze(0), keys.unsqueeze(1), out=out)
    return _mix64_(z, torch.empty_like(z) if tmp is None else tmp)


#: Scale of the exact float comparison in :func:`float_masks_` (see there).
_CMP_SCALE = 2.0**60


def mask_offset(p: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """The 0-d float32 tensor ``-2^60 * c`` used by :func:`float_masks_`."""
    c = 1.0 + (keep_min_mantissa(p) - 1) * 2.0**-23
    return torch.full((), -c * _CMP_SCALE, dtype=torch.float32, device=device)


def float_masks_(
    bits: torch.Tensor, p: float, out: torch.Tensor, neg_c: torch.Tensor | None = None
) -> torch.Tensor:
    """Turn SplitMix64 outputs ``bits [K, n64]`` (overwritten) into float32 masks
    ``out [K, 2 * n64]`` with entries ``0`` or ``float32(1 / (1 - p))``.

    Each 32-bit draw becomes the float ``f = 1 + m * 2^-23`` (its low 23 bits ``m`` as the
    mantissa, exponent 0) by two integer ops.  With ``c = 1 + (ceil(p * 2^23) - 1) * 2^-23``
    (exact in float32), ``2^60 * f - 2^60 * c`` is computed exactly; it is ``>= 2^37``
    when ``f > c`` (kept) and ``<= 0`` otherwise, so clamping it to ``[0, scale]`` yields
    the mask (``scale < 2^37`` holds for any ``p < 1 - 1e-11``).  *neg_c* may hold the
    precomputed 0-d tensor ``mask_offset(p, device)``.
    """
    scale = keep_scale(p)
    if not scale < 2.0**37:
        raise ValueError(f"dropout rate {p} is too close to 1")
    bits.bitwise_and_(_MANT2).bitwise_or_(_ONE2)
    f = bits.view(torch.float32)
    if neg_c is None:
        neg_c = mask_offset(p, bits.device)
    torch.add(neg_c, f, alpha=_CMP_SCALE, out=out)
    return out.clamp_(0.0, scale)


def step_masks(
    key: torch.Tensor, rows: int, widths: tuple[int, ...], p: float
) -> list[torch.Tensor]:
    """The float32 dropout masks ``[rows, w]`` for each width in *widths* (the hidden
    layers, in forward order) of the stream *key* (a 0-d or 1-element int64 tensor):
    entries ``1 / (1 - p)`` (kept) or ``0`` (dropped).  A direct transcription of the
    recipe in the module docstring (the engine computes the same masks with
    :func:`float_masks_`)."""
    n = rows * sum(widths)
    bits = splitmix_bits(key.reshape(1), counter_base((n + 1) // 2, key.device))
    draws = bits.view(torch.int32).reshape(-1)  # little-endian: low half first
    masks, off = [], 0
    for w in widths:
        m = draws[off : off + rows * w].view(rows, w) & (2**23 - 1)
        masks.append((m >= keep_min_mantissa(p)).to(torch.float32) * keep_scale(p))
        off += rows * w
    return masks
