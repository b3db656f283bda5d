"""Plugins: Python files, or installed packages, that register schemes of their own.

A plugin is a Python file that calls :func:`initlab.register_scheme` when it is imported
(see :mod:`initlab.schemes.custom`). It is loaded

* from the command line, by ``--plugin path/to/file.py`` on every ``initlab`` command
  (repeatable);
* from a study spec, by ``[study] plugins = ["my_schemes.py"]`` (paths relative to the
  spec file);
* from Python, by :func:`load_plugin`;
* for an installed package, through the entry-point group ``initlab.schemes``: each entry
  point names a module (or a callable, called without arguments) that registers its
  schemes; they are loaded when ``initlab`` is imported.

A file is loaded once per process (by its resolved path), so a spec and a flag may both
name it. Every failure is one :class:`~initlab.errors.InitlabError` line: the file does not
exist, it raises while it is imported, or a scheme it registers collides with one already
registered.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import warnings
from importlib import metadata
from pathlib import Path

from initlab.errors import InitlabError

__all__ = ["ENTRY_POINT_GROUP", "load_entry_points", "load_plugin", "loaded_plugins"]

#: The entry-point group of installed packages' schemes.
ENTRY_POINT_GROUP = "initlab.schemes"

_LOADED: dict[Path, str] = {}
_ENTRY_POINTS_LOADED = False


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def loaded_plugins() -> list[Path]:
    """The plugin files loaded so far, in order."""
    return list(_LOADED)


def load_plugin(path: str | os.PathLike[str]) -> Path:
    """Import the plugin file *path* (once per process) and return its resolved path."""
    p = Path(path).expanduser()
    if not p.is_file():
        what = "is not a file" if p.exists() else "does not exist"
        raise InitlabError(f"plugin {str(p)!r} {what}; give the path of a Python file that registers "
                           "schemes (initlab.register_scheme)")
    resolved = p.resolve()
    if resolved in _LOADED:
        return resolved
    name = "initlab_plugin_" + hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise InitlabError(f"cannot import plugin {str(p)!r} as Python; give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    _LOADED[resolved] = name
    try:
        spec.loader.exec_module(module)
    except InitlabError as exc:  # e.g. a name collision in register_scheme
        _LOADED.pop(resolved)
        sys.modules.pop(name, None)
        raise InitlabError(f"plugin {str(p)!r}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any error in the user's file is one line
        _LOADED.pop(resolved)
        sys.modules.pop(name, None)
        raise InitlabError(f"plugin {str(p)!r} failed while it was imported: {_one_line(exc)}; "
                           "fix the file") from None
    return resolved


def load_entry_points() -> list[str]:
    """Load the installed packages' scheme plugins (group :data:`ENTRY_POINT_GROUP`), once;
    return the names loaded. One that fails is skipped with a one-line warning, so that a
    broken package never breaks ``import initlab``."""
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return []
    _ENTRY_POINTS_LOADED = True
    done = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if callable(obj):
                obj()
            done.append(ep.name)
        except Exception as exc:  # noqa: BLE001 - an installed package's fault, not the user's
            warnings.warn(f"initlab: the scheme plugin {ep.name!r} ({ep.value}) failed and is skipped: "
                          f"{_one_line(exc)}", RuntimeWarning, stacklevel=2)
    return done
