"""md5 checks of dataset files, done once per file per process.

Hashing the 26 MB Fashion-MNIST training images costs tens of milliseconds, and a
study loads its dataset many times, so a verified md5 is remembered in-process,
keyed by the file's identity and state ``(resolved path, size, mtime_ns,
ctime_ns, inode)``. Any rewrite, replacement or touch of the file changes the key
and forces a new hash, so a file with the wrong md5 is always caught on its first
use in a process. Nothing is written next to the data (data folders may be
read-only and shared); a new process hashes again.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from initlab.errors import InitlabError

FileKey = tuple[str, int, int, int, int]

_DIGESTS: dict[FileKey, str] = {}
_LOCK = threading.Lock()


def file_key(path: Path, st: os.stat_result | None = None) -> FileKey:
    """The identity of ``path``'s current content, as used by the caches."""
    path = Path(path)
    st = st if st is not None else path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def md5_hex(data: bytes | bytearray | memoryview) -> str:
    """The md5 of ``data`` as 32 lowercase hex digits."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def remember(key: FileKey, digest: str) -> None:
    """Record that the file with ``key`` has md5 ``digest``."""
    with _LOCK:
        _DIGESTS[key] = digest


def file_md5(path: Path, *, raw: bytes | None = None, key: FileKey | None = None) -> str:
    """md5 of ``path``, from the cache when its key is known.

    ``raw`` (the file's bytes, if the caller already read them) avoids a second read.
    """
    key = key if key is not None else file_key(path)
    with _LOCK:
        digest = _DIGESTS.get(key)
    if digest is None:
        if raw is None:
            h = hashlib.md5(usedforsecurity=False)
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            digest = h.hexdigest()
        else:
            digest = md5_hex(raw)
        remember(key, digest)
    return digest


def verify_md5(
    path: Path, expected: str | None, *, fix: str, raw: bytes | None = None,
    key: FileKey | None = None,
) -> str | None:  # fmt: skip
    """Raise :class:`InitlabError` unless ``path`` has md5 ``expected``; return the md5.

    ``expected=None`` skips the check (returns ``None``).
    """
    if expected is None:
        return None
    digest = file_md5(path, raw=raw, key=key)
    if digest != expected:
        raise InitlabError(
            f"{path} has md5 {digest}, expected {expected} (corrupt, truncated or not the "
            f"official file); {fix}"
        )
    return digest


def clear() -> None:
    """Forget every remembered md5 (tests; files changed within one clock tick)."""
    with _LOCK:
        _DIGESTS.clear()
