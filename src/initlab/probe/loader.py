"""Load a user model from ``path/to/file.py:function`` (a function returning an ``nn.Module``).

The file is imported with :mod:`importlib` from its path under a private module name, with
its own folder on ``sys.path`` while it is imported (so it can import its neighbours).
Every failure is an :class:`~initlab.errors.InitlabError` with one line: the file does
not exist, cannot be imported, has no such function, the function fails, returns
something that is not an ``nn.Module`` or a model with an empty (zero-unit) layer; the
warnings the function raises are shown only when the model it returns is usable.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import warnings
from pathlib import Path
from typing import Callable

from torch import nn

from initlab.errors import InitlabError


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
