"""The ``custom`` model family: the user's own ``nn.Module``, built by a function in a file.

``[model] kind = "custom"``, ``builder = "path/to/file.py:build"``, ``input_shape = [1, 28, 28]``
(required: the per-sample shape its ``forward`` takes) and optionally ``name``. The number of
outputs is found by building the model once and running a zero batch ``[2, *input_shape]``
through it in eval mode (:attr:`CustomSpec.out_features`, cached per spec).

Loading ``path/to/file.py:function`` (also what ``initlab probe`` / ``check --model`` use):

The file is imported with :mod:`importlib` from its path under a private module name, with
its own folder on ``sys.path`` while it is imported (so it can import its neighbours).
Every failure is an :class:`~initlab.errors.InitlabError` with one line: the file does
not exist, cannot be imported, has no such function, the function fails, returns
something that is not an ``nn.Module`` or a model with an empty (zero-unit) layer; the
warnings the function raises are shown only when the model it returns is usable.
"""

from __future__ import annotations

import hashlib
import math
import importlib.util
import sys
import warnings
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch
from torch import nn

from initlab.engine.models import ModelSpec, check_input_shape, check_name, shape_text
from initlab.errors import InitlabError

__all__ = ["CustomSpec", "load_factory", "parse_target"]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def parse_target(target: str) -> tuple[Path, str]:
    """Split ``file.py:function`` (the last ``:`` separates them)."""
    path, sep, func = str(target).rpartition(":")
    if not sep or not path or not func:
        raise InitlabError(f"model must be given as FILE.py:FUNCTION (a function returning an nn.Module), "
                           f"got {target!r}")
    if not func.isidentifier():
        raise InitlabError(f"{func!r} is not a Python function name; give FILE.py:FUNCTION")
    return Path(path), func


def load_factory(target: str) -> Callable[[], nn.Module]:
    """The function named by ``file.py:function``, wrapped so that calling it checks that
    it returns an ``nn.Module``."""
    path, func = parse_target(target)
    if not path.is_file():
        raise InitlabError(f"model file {str(path)!r} does not exist; give an existing FILE.py:FUNCTION")
    resolved = path.resolve()
    name = "initlab_user_model_" + hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise InitlabError(f"cannot import {str(path)!r} as Python; give a .py file")
    module = importlib.util.module_from_spec(spec)
    folder = str(resolved.parent)
    sys.modules[name] = module
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any error in user code becomes one line
        sys.modules.pop(name, None)
        raise InitlabError(f"importing model file {str(path)!r} failed: {_one_line(exc)}") from None
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:
            pass
    fn = getattr(module, func, None)
    if fn is None:
        funcs = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                       and getattr(v, "__module__", None) == name)
        known = f"; functions there: {', '.join(funcs)}" if funcs else ""
        raise InitlabError(f"model file {str(path)!r} has no function {func!r}{known}")
    if not callable(fn):
        raise InitlabError(f"{func!r} in {str(path)!r} is a {type(fn).__name__}, not a function; "
                           "give a function returning an nn.Module")

    def factory() -> nn.Module:
        with warnings.catch_warnings(record=True) as said:  # shown only for a usable model
            warnings.simplefilter("always")
            try:
                model = fn()
            except Exception as exc:  # noqa: BLE001
                raise InitlabError(f"{func}() in {str(path)!r} raised {_one_line(exc)}") from None
        if not isinstance(model, nn.Module):
            raise InitlabError(f"{func}() in {str(path)!r} returned {type(model).__name__}, not a torch "
                               "nn.Module; return the model")
        empty = next(((n, p) for n, p in model.named_parameters() if p.numel() == 0), None)
        if empty is not None:
            raise InitlabError(f"{func}() in {str(path)!r} built {empty[0]} with shape "
                               f"{tuple(empty[1].shape)}, no weights; give every layer at least one unit")
        for w in said:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return model

    factory.__name__ = func
    return factory


@dataclass(frozen=True)
class CustomSpec(ModelSpec):
    """A user model: ``builder = "FILE.py:FUNCTION"`` (a function of no arguments returning
    an ``nn.Module``), the per-sample ``input_shape`` its ``forward`` takes, and ``name``.

    ``builder`` is kept as given (the study resolves relative paths before making the
    spec). Its format is checked here; the file is imported on the first :meth:`build`
    or :attr:`out_features` (one line for each failure: no such file, import fails, no such
    function, the function raises or returns no ``nn.Module``, the model fails on a
    zero batch). Label: ``custom-<file stem>.<function>-<C>x<H>x<W>``, e.g.
    ``custom-mynet.build-1x28x28`` (files of one name in two folders need a ``name``).
    """

    kind: ClassVar[str] = "custom"

    builder: str = ""
    input_shape: tuple[int, ...] = ()
    name: str = field(default="", compare=False)
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.builder, str) or not self.builder.strip():
            raise InitlabError("custom model needs builder = \"FILE.py:FUNCTION\" (a function returning "
                               f"an nn.Module), got {self.builder!r}")
        parse_target(self.builder)
        if self.input_shape == ():
            raise InitlabError("custom model needs input_shape, the per-sample shape its forward "
                               "takes, e.g. input_shape = [1, 28, 28] or [784]")
        object.__setattr__(self, "input_shape", check_input_shape("custom", self.input_shape))
        check_name("custom", self.name)

    def __getstate__(self) -> dict[str, Any]:
        """Pickles without the cache (the loaded function is not picklable)."""
        return {**self.__dict__, "_cache": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        path, func = parse_target(self.builder)
        return f"custom-{path.stem}.{func}-{shape_text(self.input_shape)}"

    def _factory(self) -> Callable[[], nn.Module]:
        if "factory" not in self._cache:
            self._cache["factory"] = load_factory(self.builder)
        return self._cache["factory"]

    def _build(self) -> nn.Module:
        return self._factory()()

    @property
    def out_features(self) -> int:  # type: ignore[override]
        """The model's number of outputs: the last dimension of its output on a zero batch
        ``[2, *input_shape]`` (eval mode, no grad), which must be ``[2, classes]``."""
        if "out" not in self._cache:
            model = self.build()
            where = f"the model of {self.builder!r}"
            batch = (2, *self.input_shape)
            model.eval()
            try:
                with torch.no_grad():
                    out = model(torch.zeros(batch))
            except Exception as exc:  # noqa: BLE001 - user code
                raise InitlabError(f"{where} fails on a zero batch of shape {list(batch)}: {_one_line(exc)}; "
                                   "set input_shape to the per-sample shape its forward takes") from None
            if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 2:
                got = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise InitlabError(f"{where} returns {got} for a batch of shape {list(batch)}; it must "
                                   "return logits of shape [N, classes]")
            self._cache["out"] = int(out.shape[1])
        return self._cache["out"]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "custom", "builder": self.builder, "input_shape": list(self.input_shape),
                "name": self.name}

    def _input_fix(self, sample_shape: tuple[int, ...]) -> str:
        return f"set input_shape = {list(sample_shape)} (or another shape of {math.prod(sample_shape)} values)"

    def _output_fix(self, n_classes: int) -> str:
        return f"make {self.builder} return {n_classes} logits"
