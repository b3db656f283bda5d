"""Find a dataset's folder on disk.

A *data root* holds one folder per dataset, each with the four gzip IDX files::

    <root>/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
    <root>/mnist/...

An explicit ``data_dir`` argument (the CLI's ``--data-dir``) is the one root searched: a
dataset missing there is missing (downloads go into it, creating the folder), never
looked up elsewhere, so an explicit flag that points at the wrong place is an error, not
a warning. A ``data_dir`` that is a file, or that does not exist when nothing may be
downloaded, is a one-line :class:`~initlab.errors.InitlabError`.

Without one, roots are searched in this order:

1. the ``INITLAB_DATA_DIR`` environment variable;
2. the per-user cache, ``$XDG_CACHE_HOME/initlab/data`` or ``~/.cache/initlab/data``
   (an unset, empty or relative ``XDG_CACHE_HOME`` is ignored, as the XDG base
   directory specification says).

The first root whose dataset folder holds *all four* files wins; files are never
mixed across roots. A folder that holds the files but a broken one is not skipped:
the loader reports the broken file instead.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from initlab.data.sources import FILES, DatasetSource, get_source
from initlab.errors import InitlabError

ENV_VAR = "INITLAB_DATA_DIR"
log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """The per-user data root: ``$XDG_CACHE_HOME/initlab/data`` or ``~/.cache/initlab/data``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "initlab" / "data"


def data_roots(data_dir: str | os.PathLike[str] | None = None) -> list[tuple[Path, str]]:
    """The data roots to search, in order, as ``(root, origin)`` pairs.

    ``origin`` is ``"--data-dir"`` (then the only root; it must not be a file),
    ``"INITLAB_DATA_DIR"`` or ``"cache"``; repeated roots are listed once, at their first
    place.
    """
    if data_dir is not None and str(data_dir) != "":
        root = Path(data_dir).expanduser()
        if root.exists() and not root.is_dir():
            raise explicit_root_error(root, "is not a directory")
        return [(root, "--data-dir")]
    candidates: list[tuple[Path, str]] = []
    env = os.environ.get(ENV_VAR, "")
    if env:
        candidates.append((Path(env).expanduser(), ENV_VAR))
    candidates.append((cache_dir(), "cache"))
    roots: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    for root, origin in candidates:
        resolved = root.resolve()
        if resolved not in seen:
            seen.add(resolved)
            roots.append((root, origin))
    return roots


def missing_files(folder: Path) -> list[str]:
    """The dataset files (:data:`FILES`) that are not regular files in ``folder``."""
    return [f for f in FILES if not (Path(folder) / f).is_file()]


def find_folder(source: DatasetSource, roots: list[tuple[Path, str]]) -> Path | None:
    """The first ``root/<name>`` among ``roots`` holding all four files, else ``None``."""
    for i, (root, origin) in enumerate(roots):
        folder = root / source.name
        if not missing_files(folder):
            if i > 0:
                first = roots[0][0] / source.name
                log.warning(
                    "%s has no complete %s; using %s (%s)", first, source.name, folder, origin
                )
            return folder
    return None


def locate(
    name: str | DatasetSource = "fashion-mnist", data_dir: str | os.PathLike[str] | None = None
) -> Path:
    """The folder holding all four files of dataset ``name`` (no downloading).

    Raises :class:`InitlabError` naming the first folder searched and its missing files.
    """
    source = get_source(name)
    roots = data_roots(data_dir)
    if roots[0][1] == "--data-dir" and not roots[0][0].exists():
        raise explicit_root_error(roots[0][0], "does not exist")
    folder = find_folder(source, roots)
    if folder is None:
        raise not_found_error(source, roots, hint="allow downloading (leave out --no-download; download=True)")
    return folder


def not_found_error(
    source: DatasetSource, roots: list[tuple[Path, str]], *, hint: str
) -> InitlabError:
    """The one-line error for a dataset found in none of ``roots``."""
    first = roots[0][0] / source.name
    others = [str(root / source.name) for root, _ in roots[1:]]
    also = f" (also looked in {', '.join(others)})" if others else ""
    return InitlabError(
        f"{source.name} files not found: {first} is missing "
        f"{', '.join(missing_files(first))}{also}; {hint}, or copy the four official "
        f"files into {first}, or point --data-dir/{ENV_VAR} at a root holding {source.name}/"
    )


def explicit_root_error(root: Path, what: str) -> InitlabError:
    """The one-line error for an explicit ``--data-dir`` that cannot be a data root."""
    return InitlabError(
        f"--data-dir {str(root)!r} {what}; give the data root that holds fashion-mnist/ and "
        f"mnist/ (or leave --data-dir out to use {ENV_VAR} or the cache)"
    )
