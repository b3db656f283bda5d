"""Up-front checks of the places commands write to, so that a bad path fails in one line
before any work is done.

* :func:`check_output_dir` for an output directory (``initlab export --tensorboard DIR``,
  ``--format csv --out DIR``, ``initlab run --out DIR``);
* :func:`check_output_file` for an output file (``initlab report --out FILE``).

Neither creates anything: a missing path is fine when the nearest part of it that
exists is a directory this process may write to (the writer creates the rest). Both
raise :class:`~initlab.errors.InitlabError` with one line that names ``flag`` (the
option as the user typed it, e.g. ``"--out"``, or words such as ``"the report"``), the
path, the problem and the fix, and return the path as a :class:`~pathlib.Path`.

Writability is judged with :func:`os.access`, i.e. by permissions and read-only mounts;
it cannot foresee a full disk, and a process running as root may write almost anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

from initlab.errors import InitlabError

__all__ = ["check_output_dir", "check_output_file"]


def _writable(directory: Path) -> bool:
    return os.access(directory, os.W_OK | os.X_OK)


def _nearest_existing(path: Path) -> Path:
    """``path`` itself or the closest ancestor that exists (``.`` for a relative path)."""
    p = path
    while not p.exists() and not p.is_symlink():
        parent = p.parent
        if parent == p:  # pragma: no cover - the root always exists
            break
        p = parent
    return p


def _check_under(path: Path, start: Path, flag: str, what: str) -> None:
    """The nearest existing one of ``start`` and its ancestors must be a writable
    directory, for ``path`` (named in the message) to be written below it."""
    base = _nearest_existing(start)
    if not base.is_dir():
        raise InitlabError(f"{flag} {str(path)!r} cannot be written: {str(base)!r} is a file, "
                           f"not a directory; choose a {what} that is not under a file")
    if not _writable(base):
        raise InitlabError(f"{flag} {str(path)!r} cannot be written: {str(base)!r} is not "
                           f"writable; choose a writable place")


def _unreachable(path: Path, flag: str, exc: OSError) -> InitlabError:
    return InitlabError(f"{flag} {str(path)!r} cannot be checked ({exc.strerror}); choose a path "
                        f"you can reach")


def check_output_dir(path: str | os.PathLike[str], flag: str) -> Path:
    """``path`` as a :class:`Path` if it is, or can be created as, a directory this
    process may write into; else a one-line :class:`InitlabError` naming ``flag``.

    An existing file, a path under a file, and a read-only directory (or one under a
    read-only directory) are refused. Nothing is created.
    """
    p = Path(path)
    try:
        _check_dir(p, flag)
    except OSError as exc:  # e.g. a parent that may not be searched
        raise _unreachable(p, flag, exc) from None
    return p


def _check_dir(p: Path, flag: str) -> None:
    if p.exists() or p.is_symlink():
        if not p.is_dir():
            raise InitlabError(f"{flag} {str(p)!r} is a file, not a directory; give a directory "
                               f"(it is created when missing)")
        if not _writable(p):
            raise InitlabError(f"{flag} {str(p)!r} is not writable; choose a writable directory")
        return
    _check_under(p, p.parent, flag, "directory")


def check_output_file(path: str | os.PathLike[str], flag: str, *, example: str | None = None) -> Path:
    """``path`` as a :class:`Path` if a file may be written there (replacing one that
    exists); else a one-line :class:`InitlabError` naming ``flag``.

    A directory is refused (``example``, e.g. ``"report.html"``, is suggested as a file
    name inside it), and so is a path whose directory is a file or is not writable
    (files are written beside their target and renamed over it, so the directory is what
    must be writable). Missing parent directories are fine when they can be created.
    Nothing is created.
    """
    p = Path(path)
    try:
        _check_file(p, flag, example)
    except OSError as exc:
        raise _unreachable(p, flag, exc) from None
    return p


def _check_file(p: Path, flag: str, example: str | None) -> None:
    if p.is_dir():
        hint = f"such as {str(p / example)!r}" if example else "inside it"
        raise InitlabError(f"{flag} {str(p)!r} is a directory; give a file name {hint}")
    if (p.exists() or p.is_symlink()) and not p.is_file():
        raise InitlabError(f"{flag} {str(p)!r} is not a regular file; give another file name")
    _check_under(p, p.parent, flag, "file")
