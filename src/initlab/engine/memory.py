"""How much memory training needs, and how much a device has: so that a study too big
for the machine is refused before it starts, not by the allocator half-way.

:func:`training_bytes` counts the buffers the batched engine allocates for K models of one
:class:`~initlab.engine.models.MLPSpec` (float32 throughout):

* per parameter: the weights, their gradients and Adam's two moments, ``4 x 4`` bytes;
* per step: each layer's pre-activation, activation and gradient for the batch, and the
  hidden layers' dropout masks, ``4 x 4`` bytes per sample and unit;
* validation: the pre-activation and activation of the widest layer for one chunk of
  ``eval_batch_size`` samples, ``2 x 4`` bytes per sample and unit (layers are evaluated
  one after the other).

It is a lower bound (the data, the recorders and the allocator's slack come on top), so a
study it refuses could not have run.

:func:`module_training_bytes` is the same lower bound for any model (the generic trainer):
its parameters as above, and per step the outputs of its leaf modules for the batch, each
kept for the backward pass together with its gradient (``2 x 4`` bytes per sample and
output entry), counted on one sample pushed through the model; validation as above with
the largest leaf output.

:func:`models_that_fit` sizes a group from the memory free now (:func:`free_bytes`) and
that per-model count (``--max-group auto``)::

    K = max(1, floor(AUTO_FRACTION * (free - reserve) / per_model))

with ``reserve = min(AUTO_RESERVE, free / 4)`` for what does not grow with K (the dataset
resident on the device: Fashion-MNIST is 0.22 GB as float32; the CUDA allocator's
fragmentation) and ``AUTO_FRACTION = 1/2`` covering what the lower bound leaves out and
grows with K (the per-step figures ``[steps, 3, K]``, the probes' activations, the
bfloat16 copies of ``precision = "bf16"``, temporaries of the loss): the bound
undercounts the engine's real use, and half the free memory leaves it room to be off by a
factor of two. The article's MLP needs 8.8 MB a model, so a GPU with 139 GiB free
trains ``floor(0.5 * (139 GiB - 1 GiB) / 8,763,552 B) = 8,454`` at once.
"""

from __future__ import annotations

import os

import torch

from initlab.engine.models import MLPSpec

__all__ = ["AUTO_FRACTION", "AUTO_RESERVE", "DEFAULT_FREE_BYTES", "device_bytes", "free_bytes",
           "models_that_fit", "module_training_bytes", "training_bytes"]

_F32 = 4

#: Share of the free memory (after the reserve) that ``--max-group auto`` plans to fill.
AUTO_FRACTION = 0.5
#: Memory ``--max-group auto`` keeps aside for what does not grow with the group (bytes).
AUTO_RESERVE = 2**30
#: Free bytes assumed on a CPU whose available memory cannot be read (no psutil, no
#: /proc/meminfo): 4 GiB.
DEFAULT_FREE_BYTES = 4 * 2**30


def training_bytes(spec: MLPSpec, models: int, batch_size: int, eval_batch_size: int) -> int:
    """The bytes the engine's buffers take to train *models* models of *spec* (see the
    module docstring)."""
    widths = spec.widths
    params = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
    units = sum(widths[1:])
    per_model = (4 * _F32 * params + 4 * _F32 * batch_size * units
                 + 2 * _F32 * eval_batch_size * max(widths[1:]))
    return models * per_model


def module_training_bytes(model: torch.nn.Module, input_shape: tuple[int, ...], models: int,
                          batch_size: int, eval_batch_size: int) -> int:
    """The lower bound of the module docstring for *models* copies of *model*, whose
    forward takes ``[N, *input_shape]``."""
    params = sum(p.numel() for p in model.parameters())
    outputs: list[int] = []

    def hook(_m: torch.nn.Module, _i: object, out: object) -> None:
        if isinstance(out, torch.Tensor):
            outputs.append(out[0].numel())

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    was = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    per_model = (4 * _F32 * params + 2 * _F32 * batch_size * sum(outputs)
                 + 2 * _F32 * eval_batch_size * max(outputs, default=0))
    return models * per_model


def device_bytes(device: str | torch.device) -> int | None:
    """The total memory of *device* in bytes (the machine's RAM for the CPU), or ``None``
    when it cannot be told."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return int(torch.cuda.get_device_properties(dev).total_memory)
    if dev.type == "cpu":
        try:
            return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):  # not a POSIX system
            return None
    return None


def _meminfo_available(path: str = "/proc/meminfo") -> int | None:
    """``MemAvailable`` of Linux' /proc/meminfo in bytes, or ``None``."""
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the file counts kB (KiB)
    except (OSError, ValueError, IndexError):
        return None
    return None


def free_bytes(device: str | torch.device) -> int:
    """The memory free on *device* now, in bytes: ``torch.cuda.mem_get_info`` on CUDA; on
    the CPU the available RAM (``psutil.virtual_memory().available`` when psutil is
    installed, else ``MemAvailable`` of /proc/meminfo, else :data:`DEFAULT_FREE_BYTES`)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return int(torch.cuda.mem_get_info(dev)[0])
    try:
        import psutil  # optional
    except ImportError:
        psutil = None
    if psutil is not None:
        return int(psutil.virtual_memory().available)
    avail = _meminfo_available()
    return DEFAULT_FREE_BYTES if avail is None else avail


def models_that_fit(per_model: int, free: int) -> int:
    """How many models of *per_model* bytes (a lower bound: :func:`training_bytes` of one
    model) ``--max-group auto`` trains at once in *free* bytes (the module docstring's
    formula; at least 1)."""
    if per_model <= 0:
        raise ValueError(f"per_model must be > 0 bytes, got {per_model}")
    reserve = min(AUTO_RESERVE, free // 4)
    return max(1, int(AUTO_FRACTION * max(free - reserve, 0) // per_model))
