"""Download missing dataset files from a list of mirrors, safely.

Where files go: into the explicit ``data_dir`` / ``--data-dir`` when one is given (it
is the only root searched, see :mod:`initlab.data.locate`), so ``--data-dir ~/datasets``
fills ``~/datasets/fashion-mnist/``; else into the first data root
(``INITLAB_DATA_DIR``, else the cache) when its dataset folder can be created or
written, otherwise into the per-user cache, so a read-only shared ``INITLAB_DATA_DIR``
falls back to ``~/.cache/initlab/data``.

How: each file is streamed to a temporary ``.<file>.<random>.part`` in the target
folder while its md5 is computed; only when the md5 matches is the file renamed
(:func:`os.replace`, atomic on one file system) to its final name. A failed,
interrupted or mismatching download removes its temporary file, so a folder never
holds a partial or wrong file under a real name, and two processes downloading at
once cannot corrupt each other. On any failure the next mirror is tried; when all
fail, one error line lists each mirror's reason and where to put the file by hand.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from initlab.data import checksum
from initlab.data.locate import ENV_VAR, cache_dir, data_roots, find_folder, missing_files
from initlab.data.locate import not_found_error
from initlab.data.sources import DatasetSource, get_source
from initlab.errors import InitlabError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0  # seconds without progress before a mirror is given up
_USER_AGENT = "initlab (dataset download; python-urllib)"
_CHUNK = 1 << 20


class _MirrorFailed(Exception):
    """One mirror did not deliver a good file; the message says why."""


def _writable(folder: Path) -> bool:
    """Whether ``folder`` exists writable, or could be created under a writable folder."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def download_folder(
    name: str | DatasetSource, data_dir: str | os.PathLike[str] | None = None
) -> Path:
    """The folder that missing files of ``name`` are downloaded into (see module doc)."""
    source = get_source(name)
    (root, origin), *_ = data_roots(data_dir)
    first = root / source.name
    return first if origin == "--data-dir" or _writable(first) else cache_dir() / source.name


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        text = f"HTTP {exc.code} {exc.reason}"
    elif isinstance(exc, urllib.error.URLError):
        text = str(exc.reason)
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _fetch_one(url: str, dest: Path, md5: str | None, timeout: float) -> str:
    """Download ``url`` to ``dest`` via a temp file; return its md5 or raise _MirrorFailed.

    Raises :class:`OSError` only when the temporary file cannot be created.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    done = False
    try:
        digest = hashlib.md5(usedforsecurity=False)
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as resp:
            while chunk := resp.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        got = digest.hexdigest()
        if md5 is not None and got != md5:
            raise _MirrorFailed(f"md5 {got} but expected {md5}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
        done = True
        checksum.remember(checksum.file_key(dest), got)
        return got
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise _MirrorFailed(_one_line(exc)) from exc
    finally:
        if not done:
            tmp.unlink(missing_ok=True)


def download_file(
    urls: Sequence[str], dest: str | os.PathLike[str], md5: str | None = None, *,
    timeout: float = DEFAULT_TIMEOUT,
) -> str:  # fmt: skip
    """Download ``dest`` from the first of ``urls`` that delivers it with md5 ``md5``.

    Returns the md5 of the saved file. ``md5=None`` accepts any content. Raises
    :class:`InitlabError` listing every URL's failure when none works; nothing is
    left at ``dest`` (or beside it) then.
    """
    dest = Path(dest)
    reasons: list[str] = []
    for url in urls:
        log.info("downloading %s -> %s", url, dest)
        try:
            return _fetch_one(url, dest, md5, timeout)
        except OSError as exc:  # the temp file could not be made: no mirror can help
            raise InitlabError(
                f"cannot write in {dest.parent} ({exc.strerror or exc}); make it writable, or "
                f"point --data-dir/{ENV_VAR} at a writable folder"
            ) from exc
        except _MirrorFailed as exc:
            log.info("mirror failed: %s: %s", url, exc)
            reasons.append(f"{url}: {exc}")
    tried = "; ".join(reasons) if reasons else "no mirror URLs given"
    by_hand = f" from {urls[0]}" if urls else ""
    check = f" (md5 {md5})" if md5 else ""
    raise InitlabError(
        f"could not download {dest.name} ({tried}); download it by hand{by_hand} and save it "
        f"as {dest}{check}, or point --data-dir/{ENV_VAR} at a data root with the official files"
    )


def fetch(
    name: str | DatasetSource = "fashion-mnist", data_dir: str | os.PathLike[str] | None = None,
    *, timeout: float = DEFAULT_TIMEOUT,
) -> Path:  # fmt: skip
    """The folder holding all four files of ``name``, downloading what is missing.

    An existing complete folder (searched as :func:`~initlab.data.locate.locate` does)
    is used as is; otherwise the files missing from :func:`download_folder` are
    downloaded into it, each checked against its md5 before it gets its name.
    """
    source = get_source(name)
    roots = data_roots(data_dir)
    found = find_folder(source, roots)
    if found is not None:
        return found
    folder = download_folder(source, data_dir)
    if not source.mirrors:
        hint = f"no download mirrors are known for {source.name}"
        raise not_found_error(source, roots, hint=hint)
    created = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InitlabError(
            f"cannot create {folder} to download {source.name} into ({exc.strerror or exc}); "
            f"point --data-dir/{ENV_VAR} at a writable folder or one holding {source.name}/"
        ) from exc
    try:
        for file in missing_files(folder):
            md5 = source.expected_md5(file)
            download_file(source.urls(file), folder / file, md5, timeout=timeout)
    except BaseException:
        for path in created:  # leave no empty folders behind either
            try:
                path.rmdir()
            except OSError:
                break
        raise
    return folder
