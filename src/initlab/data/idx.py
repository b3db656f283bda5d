"""Read and write IDX files, the format of the MNIST family.

An IDX file (LeCun et al., http://yann.lecun.com/exdb/mnist/, "FILE FORMATS") is::

    bytes 0-1   0x00 0x00
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64 (all big-endian)
    byte  3     number of dimensions d
    4*d bytes   the sizes n_1 .. n_d, big-endian uint32
    then        n_1 * ... * n_d elements, row-major (C order)

so the magic number ``0x0000TTDD`` gives the type and rank: 0x00000803 is a
uint8 3-d array (images), 0x00000801 a uint8 vector (labels). The file length is
exactly ``4 + 4 d + itemsize * prod(n_i)``; anything else is a truncated or
padded file. Files whose name ends in ``.gz`` are gzip-compressed as a whole.

Decoding is one :func:`numpy.frombuffer` over the decompressed bytes (no copy
for uint8), so the 47 MB of Fashion-MNIST training images take well under a
second, almost all of it inflate.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from initlab.errors import InitlabError

#: IDX type byte -> big-endian numpy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_TYPE_OF_KIND = {(dt.kind, dt.itemsize): code for code, dt in IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"

MAGIC_IMAGES = 0x00000803
MAGIC_LABELS = 0x00000801

_DEFAULT_FIX = "replace it with a valid IDX file (see initlab.data.write_idx)"


def idx_magic(dtype: np.dtype | type, ndim: int) -> int:
    """The magic number ``0x0000TTDD`` of an array with this dtype and rank."""
    dt = np.dtype(dtype)
    code = _TYPE_OF_KIND.get((dt.kind, dt.itemsize))
    if code is None:
        raise InitlabError(
            f"IDX cannot store dtype {dt}; use uint8, int8, int16, int32, float32 or float64"
        )
    if not 1 <= ndim <= 255:
        raise InitlabError(f"IDX stores 1 to 255 dimensions, not {ndim}; reshape the array")
    return (code << 8) | ndim


def read_bytes(path: Path, *, fix: str = _DEFAULT_FIX) -> bytes:
    """The decompressed content of ``path`` (gunzipped when named ``*.gz`` or gzip-magic)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InitlabError(f"cannot read {path}: {exc.strerror or exc}; {fix}") from exc
    return gunzip_if_needed(raw, path, fix=fix)


def gunzip_if_needed(raw: bytes, path: Path, *, fix: str = _DEFAULT_FIX) -> bytes:
    """Decompress ``raw`` (the bytes of ``path``) if it is, or must be, gzip."""
    if path.suffix != ".gz" and not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError as exc:
        raise InitlabError(f"{path} is a truncated gzip file ({exc}); {fix}") from exc
    except (OSError, zlib.error) as exc:
        raise InitlabError(f"{path} is not a valid gzip file ({exc}); {fix}") from exc


def decode_idx(data: bytes, path: Path | str, *, fix: str = _DEFAULT_FIX) -> tuple[int, np.ndarray]:
    """Parse decompressed IDX ``data``; return ``(magic, array)``.

    The array is a read-only native-endian view of ``data`` for one-byte types
    (a converted copy otherwise). ``path`` and ``fix`` only go into error messages.
    """
    if len(data) < 4:
        raise InitlabError(f"{path} is too short for an IDX header ({len(data)} bytes); {fix}")
    magic = int.from_bytes(data[:4], "big")
    type_code, ndim = data[2], data[3]
    if data[0] != 0 or data[1] != 0 or type_code not in IDX_DTYPES or ndim == 0:
        raise InitlabError(
            f"{path} has bad IDX magic number 0x{magic:08x} (expected 0x0000TTDD with a known "
            f"type TT, e.g. 0x{MAGIC_IMAGES:08x} for images); {fix}"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise InitlabError(
            f"{path} is truncated: {len(data)} bytes, shorter than its {header}-byte IDX "
            f"header; {fix}"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_DTYPES[type_code]
    expected = math.prod(dims) * dtype.itemsize
    payload = len(data) - header
    if payload < expected:
        raise InitlabError(
            f"{path} is truncated: header says shape {dims} ({expected} data bytes) "
            f"but it holds {payload}; {fix}"
        )
    if payload > expected:
        raise InitlabError(
            f"{path} has {payload - expected} unexpected bytes after its shape {dims} data; {fix}"
        )
    array = np.frombuffer(data, dtype=dtype, count=math.prod(dims), offset=header).reshape(dims)
    if dtype.itemsize > 1:
        array = array.astype(dtype.newbyteorder("="))
    return magic, array


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzipped if named ``*.gz``) into a new, writable numpy array.

    Raises :class:`~initlab.errors.InitlabError` naming the file when it is not
    gzip where it should be, truncated, has a bad magic number, or its length does
    not match its header.
    """
    path = Path(path)
    _, array = decode_idx(read_bytes(path), path)
    return array if array.flags.writeable else array.copy()


def write_idx(path: str | Path, array: np.ndarray | object) -> Path:
    """Write ``array`` as an IDX file; gzip it when ``path`` ends with ``.gz``.

    The gzip header carries mtime 0 so equal arrays give equal bytes (and md5s).
    Returns the path written. Parent folders are created.
    """
    path = Path(path)
    arr = np.asarray(array)
    magic = idx_magic(arr.dtype, arr.ndim)
    if any(n >= 2**32 for n in arr.shape):
        raise InitlabError(f"IDX sizes are uint32; shape {arr.shape} is too large to write")
    dtype = IDX_DTYPES[magic >> 8]
    body = (
        magic.to_bytes(4, "big")
        + struct.pack(f">{arr.ndim}I", *arr.shape)
        + np.ascontiguousarray(arr, dtype=dtype).tobytes()
    )
    if path.suffix == ".gz":
        body = gzip.compress(body, compresslevel=6, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path
