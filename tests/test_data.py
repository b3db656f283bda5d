"""Tests of initlab.data: IDX files, search order, downloads, checks and loading.

Everything except the ``@pytest.mark.data`` tests runs on tiny home-made datasets in
tmp folders; downloads go through a local HTTP server or file:// URLs.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.server
import logging
import os
import struct
import threading
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from initlab.data import (
    DATASETS, FILES, Dataset, DatasetSource, cache_dir, clear_cache, data_roots,
    download_file, download_folder, fetch, load_dataset, locate, missing_files, read_idx,
    write_idx,
)  # fmt: skip
from initlab.data.idx import idx_magic
from initlab.data.sources import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, get_source
from initlab.errors import InitlabError, UnknownNameError

REAL_DATA = os.environ.get("INITLAB_DATA_DIR")  # read before the fixture below hides it
N_TRAIN, N_TEST, N_CLASSES = 50, 20, 10


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No test sees the real env var, the real cache or a proxy."""
    monkeypatch.delenv("INITLAB_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    clear_cache()
    yield
    clear_cache()


def make_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        TRAIN_IMAGES: rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        TRAIN_LABELS: rng.permutation(np.arange(N_TRAIN) % N_CLASSES).astype(np.uint8),
        TEST_IMAGES: rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        TEST_LABELS: rng.permutation(np.arange(N_TEST) % N_CLASSES).astype(np.uint8),
    }


def write_dataset(folder: Path, arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """Write the four files; return their md5s."""
    for file, array in arrays.items():
        write_idx(folder / file, array)
    return {file: md5_of(folder / file) for file in arrays}


def tiny_source(
    md5: dict[str, str | None] | None = None, mirrors: tuple[str, ...] = ()
) -> DatasetSource:
    classes = tuple(f"class{k}" for k in range(N_CLASSES))
    return DatasetSource(name="tiny", classes=classes, md5=md5 or {}, mirrors=mirrors)


@pytest.fixture
def tiny(tmp_path):
    """A complete tiny dataset under tmp_path/root/tiny with md5s in its source."""
    arrays = make_arrays()
    root = tmp_path / "root"
    md5 = write_dataset(root / "tiny", arrays)
    return types.SimpleNamespace(root=root, source=tiny_source(md5), arrays=arrays)


@pytest.fixture
def http_mirror(tmp_path):
    """(folder served, base URL) of a local HTTP server."""
    served = tmp_path / "served"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(served))
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ---------------------------------------------------------------- IDX format


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("suffix", [".gz", ""])
def test_idx_round_trip(tmp_path, dtype, suffix):
    array = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5)
    path = write_idx(tmp_path / f"a.idx{suffix}", array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype).newbyteorder("=") and back.shape == (2, 3, 5)
    np.testing.assert_array_equal(back, array)
    back[0, 0, 0] = 1  # read_idx gives a writable array


def test_idx_header_is_big_endian_with_standard_magic(tmp_path):
    write_idx(tmp_path / "img.gz", np.zeros((3, 28, 28), np.uint8))
    write_idx(tmp_path / "lab", np.zeros(3, np.int32))
    data = gzip.decompress((tmp_path / "img.gz").read_bytes())
    assert data[:16] == struct.pack(">IIII", 0x00000803, 3, 28, 28)
    assert len(data) == 16 + 3 * 28 * 28
    assert (tmp_path / "lab").read_bytes()[:8] == struct.pack(">II", 0x00000C01, 3)
    assert idx_magic(np.uint8, 1) == 0x00000801


def test_write_idx_is_deterministic(tmp_path):
    a = write_idx(tmp_path / "a.gz", np.arange(10, dtype=np.uint8))
    b = write_idx(tmp_path / "b.gz", np.arange(10, dtype=np.uint8))
    assert a.read_bytes() == b.read_bytes()


def test_write_idx_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(InitlabError, match="dtype"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.uint64))
    with pytest.raises(InitlabError, match="dimensions"):
        write_idx(tmp_path / "x", np.uint8(3))


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"this is not gzip at all", "not a valid gzip"),
        (gzip.compress(b"\x00\x00\x08\x03" + bytes(100))[:-12], "truncated gzip"),
        (gzip.compress(b"\x12\x34\x08\x03" + bytes(16)), "bad IDX magic number 0x12340803"),
        (gzip.compress(b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"x"), "bad IDX magic"),
        (gzip.compress(b"\x00\x00\x08\x03" + struct.pack(">I", 2)), "truncated: .* IDX header"),
        (gzip.compress(struct.pack(">IIII", 0x803, 2, 28, 28) + bytes(784)), "holds 784"),
        (gzip.compress(struct.pack(">II", 0x801, 3) + bytes(5)), "2 unexpected bytes"),
        (gzip.compress(b"\x00\x08"), "too short"),
    ],
    ids=["not-gzip", "truncated-gzip", "bad-magic", "bad-type", "short-header", "short-data",
         "extra-data", "tiny"],
)  # fmt: skip
def test_read_idx_rejects_broken_files(tmp_path, content, pattern):
    path = tmp_path / "broken-idx1-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(InitlabError, match=pattern) as info:
        read_idx(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


# ---------------------------------------------------------------- sources


def test_official_sources():
    fashion, mnist = DATASETS["fashion-mnist"], DATASETS["mnist"]
    assert fashion.classes[0] == "T-shirt/top" and fashion.classes[9] == "Ankle boot"
    assert mnist.classes == tuple("0123456789")
    assert fashion.md5[TRAIN_IMAGES] == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert mnist.md5[TRAIN_IMAGES] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    for source in (fashion, mnist):
        assert set(source.md5) == set(FILES) and len(source.mirrors) >= 2
        assert all(url.endswith("/" + TRAIN_LABELS) for url in source.urls(TRAIN_LABELS))
    assert get_source("Fashion_MNIST") is fashion


def test_unknown_dataset_suggests():
    with pytest.raises(UnknownNameError, match="did you mean mnist"):
        load_dataset("mnsit")


@pytest.mark.parametrize(
    "kwargs",
    [{"md5": {TRAIN_IMAGES: "XYZ"}}, {"md5": {"other.gz": None}}, {"name": "a/b"}, {"classes": ()}],
)
def test_source_validation(kwargs):
    args = {"name": "x", "classes": ("a", "b"), **kwargs}
    with pytest.raises(InitlabError):
        DatasetSource(**args)


# ---------------------------------------------------------------- search order


def test_cache_dir_follows_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "initlab" / "data"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # ignored, per the XDG spec
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "initlab" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == tmp_path / "home" / ".cache" / "initlab" / "data"


def test_roots_order_and_dedup(monkeypatch, tmp_path):
    monkeypatch.setenv("INITLAB_DATA_DIR", str(tmp_path / "env"))
    (tmp_path / "explicit").mkdir()
    assert data_roots(tmp_path / "explicit") == [(tmp_path / "explicit", "--data-dir")]
    assert data_roots() == [(tmp_path / "env", "INITLAB_DATA_DIR"), (cache_dir(), "cache")]
    monkeypatch.setenv("INITLAB_DATA_DIR", str(cache_dir()))
    assert data_roots() == [(cache_dir(), "INITLAB_DATA_DIR")]


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_an_explicit_data_dir_must_be_a_directory(tmp_path, kind, monkeypatch, tiny):
    """Never a fall-back to INITLAB_DATA_DIR for a wrong --data-dir."""
    monkeypatch.setenv("INITLAB_DATA_DIR", str(tiny.root))
    target = tmp_path / "nope"
    if kind == "file":
        target.write_text("x")
    with pytest.raises(InitlabError, match="--data-dir .* (does not exist|is not a directory)") as info:
        load_dataset(tiny.source, data_dir=target, download=False)
    assert "\n" not in str(info.value)
    assert target.is_file() if kind == "file" else not target.exists()


def test_precedence_explicit_env_cache(monkeypatch, tmp_path):
    for i, root in enumerate(["explicit", "env"]):
        write_dataset(tmp_path / root / "tiny", make_arrays(seed=i))
    write_dataset(cache_dir() / "tiny", make_arrays(seed=2))
    monkeypatch.setenv("INITLAB_DATA_DIR", str(tmp_path / "env"))
    assert locate(tiny_source(), tmp_path / "explicit") == tmp_path / "explicit" / "tiny"
    assert locate(tiny_source()) == tmp_path / "env" / "tiny"
    ds = load_dataset(tiny_source(), download=False)
    assert ds.root == tmp_path / "env"
    expected = make_arrays(seed=1)[TRAIN_IMAGES][:3] / 255
    np.testing.assert_allclose(ds.train.x[:3].numpy(), expected, rtol=1e-6)
    monkeypatch.delenv("INITLAB_DATA_DIR")
    assert load_dataset(tiny_source(), download=False).root == cache_dir()


def test_cache_fallback_from_home(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write_dataset(tmp_path / "home" / ".cache" / "initlab" / "data" / "tiny", make_arrays())
    ds = load_dataset(tiny_source(), download=False, limit_train=5)
    assert ds.folder == tmp_path / "home" / ".cache" / "initlab" / "data" / "tiny"


def test_incomplete_explicit_dir_does_not_fall_through(tiny, tmp_path, monkeypatch):
    """An explicit root is the only one: its missing files are reported, even when
    INITLAB_DATA_DIR holds the dataset."""
    partial = tmp_path / "partial" / "tiny"
    write_idx(partial / TRAIN_IMAGES, tiny.arrays[TRAIN_IMAGES])
    monkeypatch.setenv("INITLAB_DATA_DIR", str(tiny.root))
    with pytest.raises(InitlabError, match="missing") as info:
        locate(tiny.source, tmp_path / "partial")
    assert str(partial) in str(info.value) and str(tiny.root) not in str(info.value)
    assert locate(tiny.source) == tiny.root / "tiny"


def test_incomplete_env_dir_falls_through_to_the_cache(tiny, tmp_path, monkeypatch, caplog):
    partial = tmp_path / "partial"
    write_idx(partial / "tiny" / TRAIN_IMAGES, tiny.arrays[TRAIN_IMAGES])
    write_dataset(cache_dir() / "tiny", tiny.arrays)
    monkeypatch.setenv("INITLAB_DATA_DIR", str(partial))
    with caplog.at_level(logging.WARNING, logger="initlab.data"):
        assert locate(tiny.source) == cache_dir() / "tiny"
    assert str(partial / "tiny") in caplog.text


def test_missing_files_error_names_folder_and_files(tiny):
    folder = tiny.root / "tiny"
    (folder / TEST_LABELS).unlink()
    (folder / TRAIN_IMAGES).unlink()
    assert missing_files(folder) == [TRAIN_IMAGES, TEST_LABELS]
    with pytest.raises(InitlabError) as info:
        load_dataset(tiny.source, data_dir=tiny.root, download=False)
    message = str(info.value)
    assert str(folder) in message and TRAIN_IMAGES in message and TEST_LABELS in message
    assert TRAIN_LABELS not in message and "\n" not in message


def test_missing_without_mirrors_cannot_download(tmp_path):
    with pytest.raises(InitlabError, match="no download mirrors") as info:
        load_dataset(tiny_source(), data_dir=tmp_path / "empty")
    assert str(tmp_path / "empty" / "tiny") in str(info.value)


# ---------------------------------------------------------------- loading


def test_load_good_files(tiny):
    ds = load_dataset(tiny.source, data_dir=tiny.root, download=False)
    assert isinstance(ds, Dataset) and ds.name == "tiny" and ds.root == tiny.root
    assert ds.train.x.dtype == torch.float32 and ds.train.y.dtype == torch.int64
    assert ds.train.x.shape == (N_TRAIN, 28, 28) and ds.val.x.shape == (N_TEST, 28, 28)
    np.testing.assert_array_equal(ds.train.x.numpy(), tiny.arrays[TRAIN_IMAGES] / np.float32(255))
    np.testing.assert_array_equal(ds.val.y.numpy(), tiny.arrays[TEST_LABELS])
    assert ds.classes == tiny.source.classes and ds.num_classes == N_CLASSES
    assert dict(ds.md5) == dict(tiny.source.md5)
    assert ds.input_shape == (28, 28) and not ds.standardized
    raw = tiny.arrays[TRAIN_IMAGES].astype(np.float64) / 255
    assert ds.pixel_mean == pytest.approx(raw.mean(), abs=1e-12)
    assert ds.pixel_std == pytest.approx(raw.std(), abs=1e-12)


def test_load_limits(tiny):
    ds = load_dataset(tiny.source, data_dir=tiny.root, limit_train=7, limit_val=3)
    assert len(ds.train) == 7 and len(ds.val) == 3
    np.testing.assert_array_equal(ds.train.y.numpy(), tiny.arrays[TRAIN_LABELS][:7])
    assert ds.train.indices.tolist() == list(range(7))
    big = load_dataset(tiny.source, data_dir=tiny.root, limit_train=10**6)
    assert len(big.train) == N_TRAIN


@pytest.mark.parametrize(
    "kwargs",
    [{"limit_train": 0}, {"limit_val": -1}, {"limit_train": True}, {"limit_val": 2.5},
     {"validation": 1.0}, {"validation": 0}, {"validation": "dev"}, {"validation": True},
     {"seed": "x"}],
)  # fmt: skip
def test_bad_arguments(tiny, kwargs):
    with pytest.raises(InitlabError):
        load_dataset(tiny.source, data_dir=tiny.root, **kwargs)


def test_standardize_uses_train_split_statistics(tiny):
    ds = load_dataset(tiny.source, data_dir=tiny.root, standardize=True, limit_train=20)
    raw_train = tiny.arrays[TRAIN_IMAGES][:20].astype(np.float64) / 255
    mean, std = raw_train.mean(), raw_train.std()
    assert ds.standardized
    assert ds.pixel_mean == pytest.approx(mean) and ds.pixel_std == pytest.approx(std)
    x = ds.train.x.double()
    assert float(x.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(x.std(unbiased=False)) == pytest.approx(1.0, abs=1e-5)
    expected_val = (tiny.arrays[TEST_IMAGES].astype(np.float64) / 255 - mean) / std
    np.testing.assert_allclose(ds.val.x.numpy(), expected_val, rtol=1e-5, atol=1e-5)


def test_standardize_constant_images_is_an_error(tmp_path):
    arrays = make_arrays()
    arrays[TRAIN_IMAGES][:] = 7
    write_dataset(tmp_path / "tiny", arrays)
    with pytest.raises(InitlabError, match="std 0"):
        load_dataset(tiny_source(), data_dir=tmp_path, standardize=True)


def test_holdout_split_sizes_disjoint_and_stratified(tiny):
    ds = load_dataset(tiny.source, data_dir=tiny.root, validation=0.2, seed=3)
    assert len(ds.train) == 40 and len(ds.val) == 10 and ds.validation == 0.2
    train_rows, val_rows = set(ds.train.indices.tolist()), set(ds.val.indices.tolist())
    assert not train_rows & val_rows and train_rows | val_rows == set(range(N_TRAIN))
    labels = tiny.arrays[TRAIN_LABELS]
    np.testing.assert_array_equal(ds.val.y.numpy(), labels[sorted(val_rows)])
    expected = tiny.arrays[TRAIN_IMAGES][sorted(val_rows)] / np.float32(255)
    np.testing.assert_array_equal(ds.val.x.numpy(), expected)
    assert np.bincount(ds.val.y.numpy(), minlength=N_CLASSES).tolist() == [1] * N_CLASSES
    assert TEST_IMAGES not in ds.md5


def test_holdout_split_is_deterministic_per_seed(tiny):
    def val_rows(seed: int) -> list[int]:
        ds = load_dataset(tiny.source, data_dir=tiny.root, validation=0.3, seed=seed)
        return ds.val.indices.tolist()

    assert val_rows(1) == val_rows(1)
    assert val_rows(1) != val_rows(2)
    assert len(val_rows(1)) == 15


def test_holdout_uneven_classes_exact_total(tmp_path):
    arrays = make_arrays()
    arrays[TRAIN_LABELS] = np.array([0] * 31 + [1] * 12 + [2] * 7, np.uint8)
    write_dataset(tmp_path / "tiny", arrays)
    ds = load_dataset(tiny_source(), data_dir=tmp_path, validation="0.25")
    counts = np.bincount(ds.val.y.numpy(), minlength=3)[:3]
    assert counts.sum() == 13 and counts.tolist() == [8, 3, 2]  # 7.75, 3.0, 1.75 -> Hamilton


def test_holdout_fraction_too_small(tiny):
    with pytest.raises(InitlabError, match="non-empty"):
        load_dataset(tiny.source, data_dir=tiny.root, validation=0.001)


def test_decoded_files_are_cached_in_process(tiny):
    from initlab.data import datasets

    load_dataset(tiny.source, data_dir=tiny.root)
    before = datasets._decoded.cache_info()
    ds = load_dataset(tiny.source, data_dir=tiny.root)
    after = datasets._decoded.cache_info()
    assert after.hits - before.hits == 4 and after.misses == before.misses
    ds.train.x.zero_()  # callers own their tensors: the cache is untouched
    again = load_dataset(tiny.source, data_dir=tiny.root)
    assert float(again.train.x.max()) > 0


# ---------------------------------------------------------------- broken files


def test_wrong_checksum(tiny):
    source = dataclasses.replace(tiny.source, md5={**tiny.source.md5, TRAIN_LABELS: "0" * 32})
    with pytest.raises(InitlabError) as info:
        load_dataset(source, data_dir=tiny.root)
    message = str(info.value)
    assert str(tiny.root / "tiny" / TRAIN_LABELS) in message and "0" * 32 in message
    assert tiny.source.md5[TRAIN_LABELS] in message and "delete it" in message


def test_checksum_catches_a_swapped_file_after_a_good_load(tiny):
    load_dataset(tiny.source, data_dir=tiny.root)
    path = tiny.root / "tiny" / TRAIN_IMAGES
    other = make_arrays(seed=9)[TRAIN_IMAGES]
    tmp = write_idx(path.with_name("new.gz"), other)
    os.replace(tmp, path)  # new inode: a new file, checked on its first use
    with pytest.raises(InitlabError, match="has md5"):
        load_dataset(tiny.source, data_dir=tiny.root)


@pytest.mark.parametrize(
    ("damage", "pattern"),
    [
        (lambda p: p.write_bytes(b"garbage" * 10), "not a valid gzip"),
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "truncated"),
    ],
    ids=["corrupt", "truncated"],
)
@pytest.mark.parametrize("checked", [True, False], ids=["md5", "no-md5"])
def test_corrupt_or_truncated_file(tiny, damage, pattern, checked):
    path = tiny.root / "tiny" / TRAIN_IMAGES
    damage(path)
    source = tiny.source if checked else tiny_source()
    with pytest.raises(InitlabError, match="has md5" if checked else pattern) as info:
        load_dataset(source, data_dir=tiny.root)
    assert str(path) in str(info.value) and "download it again" in str(info.value)


def rewrite(root: Path, file: str, array: np.ndarray) -> None:
    write_idx(root / "tiny" / file, array)


def test_bad_magic_labels_in_images_slot(tiny):
    rewrite(tiny.root, TEST_IMAGES, tiny.arrays[TEST_LABELS])
    with pytest.raises(InitlabError, match="magic 0x00000801, expected 0x00000803") as info:
        load_dataset(tiny_source(), data_dir=tiny.root)
    assert TEST_IMAGES in str(info.value)


def test_bad_magic_number(tiny):
    path = tiny.root / "tiny" / TRAIN_LABELS
    data = bytearray(gzip.decompress(path.read_bytes()))
    data[0] = 0x42
    path.write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(InitlabError, match="bad IDX magic number 0x42000801"):
        load_dataset(tiny_source(), data_dir=tiny.root)


def test_mismatched_counts(tiny):
    rewrite(tiny.root, TRAIN_LABELS, tiny.arrays[TRAIN_LABELS][:-1])
    with pytest.raises(InitlabError, match=f"{N_TRAIN} images but .* {N_TRAIN - 1} labels"):
        load_dataset(tiny_source(), data_dir=tiny.root)


def test_labels_out_of_range(tiny):
    labels = tiny.arrays[TEST_LABELS].copy()
    labels[4] = N_CLASSES
    rewrite(tiny.root, TEST_LABELS, labels)
    with pytest.raises(InitlabError, match=f"label {N_CLASSES}, outside 0..{N_CLASSES - 1}"):
        load_dataset(tiny_source(), data_dir=tiny.root)


def test_wrong_image_shape(tiny):
    rewrite(tiny.root, TRAIN_IMAGES, np.zeros((N_TRAIN, 27, 28), np.uint8))
    with pytest.raises(InitlabError, match=r"shape \(27, 28\), expected \(28, 28\)"):
        load_dataset(tiny_source(), data_dir=tiny.root)


# ---------------------------------------------------------------- downloading


def serve(folder: Path, arrays: dict[str, np.ndarray]) -> dict[str, str]:
    return write_dataset(folder, arrays)


def test_download_falls_back_to_second_mirror(http_mirror):
    served, url = http_mirror
    md5 = serve(served / "good", make_arrays())
    source = tiny_source(md5, mirrors=(f"{url}/missing", f"{url}/good/"))
    ds = load_dataset(source, limit_train=4)  # nothing anywhere: downloads into the cache
    assert ds.folder == cache_dir() / "tiny"
    assert leftovers(ds.folder) == sorted(FILES)
    assert {f: md5_of(ds.folder / f) for f in FILES} == md5
    np.testing.assert_array_equal(ds.train.y.numpy(), make_arrays()[TRAIN_LABELS][:4])
    assert fetch(source) == ds.folder  # now found: no second download


def test_download_over_file_urls_into_writable_data_dir(tmp_path):
    md5 = serve(tmp_path / "mirror", make_arrays())
    mirrors = ((tmp_path / "nowhere").as_uri(), (tmp_path / "mirror").as_uri())
    source = tiny_source(md5, mirrors=mirrors)
    target = tmp_path / "mine"
    assert download_folder(source, target) == target / "tiny"
    ds = load_dataset(source, data_dir=target)
    assert ds.root == target and leftovers(target / "tiny") == sorted(FILES)
    assert leftovers(cache_dir()) == []


def test_download_only_the_missing_files(tmp_path, tiny):
    (tiny.root / "tiny" / TEST_IMAGES).unlink()
    kept = (tiny.root / "tiny" / TRAIN_IMAGES).stat().st_ino
    md5 = serve(tmp_path / "mirror", tiny.arrays)
    source = tiny_source(md5, mirrors=((tmp_path / "mirror").as_uri(),))
    assert fetch(source, tiny.root) == tiny.root / "tiny"
    assert (tiny.root / "tiny" / TRAIN_IMAGES).stat().st_ino == kept
    assert md5_of(tiny.root / "tiny" / TEST_IMAGES) == md5[TEST_IMAGES]


def test_download_skips_a_mirror_with_wrong_content(tmp_path):
    serve(tmp_path / "stale", make_arrays(seed=5))  # same names, other bytes
    md5 = serve(tmp_path / "good", make_arrays())
    mirrors = ((tmp_path / "stale").as_uri(), (tmp_path / "good").as_uri())
    folder = fetch(tiny_source(md5, mirrors=mirrors), tmp_path / "target")
    assert leftovers(folder) == sorted(FILES)
    assert {f: md5_of(folder / f) for f in FILES} == md5


def test_failed_download_keeps_existing_good_files(tiny, tmp_path):
    (tiny.root / "tiny" / TEST_LABELS).unlink()
    serve(tmp_path / "stale", make_arrays(seed=5))
    source = tiny_source(tiny.source.md5, mirrors=((tmp_path / "stale").as_uri(),))
    with pytest.raises(InitlabError, match=f"could not download {TEST_LABELS}"):
        fetch(source, tiny.root)
    assert leftovers(tiny.root / "tiny") == sorted(set(FILES) - {TEST_LABELS})


def test_unwritable_env_data_dir_downloads_into_cache(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    md5 = serve(tmp_path / "mirror", make_arrays())
    source = tiny_source(md5, mirrors=((tmp_path / "mirror").as_uri(),))
    monkeypatch.setenv("INITLAB_DATA_DIR", str(blocker / "data"))
    assert download_folder(source) == cache_dir() / "tiny"
    ds = load_dataset(source)
    assert ds.folder == cache_dir() / "tiny"


def test_an_explicit_data_dir_that_cannot_be_created_is_an_error(tmp_path):
    """The download goes where --data-dir says, or nowhere (the next run would not look
    in the cache for it)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    md5 = serve(tmp_path / "mirror", make_arrays())
    source = tiny_source(md5, mirrors=((tmp_path / "mirror").as_uri(),))
    assert download_folder(source, blocker / "data") == blocker / "data" / "tiny"
    with pytest.raises(InitlabError, match="cannot create"):
        load_dataset(source, data_dir=blocker / "data")
    assert not (cache_dir() / "tiny").exists()


def test_download_checksum_mismatch_leaves_nothing(http_mirror, tmp_path):
    served, url = http_mirror
    md5 = serve(served, make_arrays())
    bad = {**md5, TRAIN_IMAGES: hashlib.md5(b"something else").hexdigest()}
    source = tiny_source(bad, mirrors=(url,))
    with pytest.raises(InitlabError) as info:
        load_dataset(source, data_dir=tmp_path / "target")
    message = str(info.value)
    assert f"md5 {md5[TRAIN_IMAGES]} but expected {bad[TRAIN_IMAGES]}" in message
    assert str(tmp_path / "target" / "tiny" / TRAIN_IMAGES) in message and "by hand" in message
    assert not (tmp_path / "target").exists()  # no file, no .part, no empty folder


def test_all_mirrors_failing_says_where_to_put_files(http_mirror, tmp_path):
    _, url = http_mirror
    source = tiny_source({TRAIN_IMAGES: "1" * 32}, mirrors=(f"{url}/a", (tmp_path / "b").as_uri()))
    with pytest.raises(InitlabError) as info:
        fetch(source, tmp_path / "target")
    message = str(info.value)
    assert "\n" not in message and "404" in message and f"{url}/a/{TRAIN_IMAGES}" in message
    assert f"save it as {tmp_path / 'target' / 'tiny' / TRAIN_IMAGES}" in message
    assert "1" * 32 in message
    assert not (tmp_path / "target").exists()


def test_download_file_without_urls(tmp_path):
    with pytest.raises(InitlabError, match="no mirror URLs"):
        download_file([], tmp_path / "x.gz")
    assert leftovers(tmp_path) == []


def test_download_false_never_downloads(tmp_path):
    md5 = serve(tmp_path / "mirror", make_arrays())
    source = tiny_source(md5, mirrors=((tmp_path / "mirror").as_uri(),))
    with pytest.raises(InitlabError, match="does not exist"):
        load_dataset(source, data_dir=tmp_path / "target", download=False)
    (tmp_path / "target").mkdir()
    with pytest.raises(InitlabError, match="missing"):
        load_dataset(source, data_dir=tmp_path / "target", download=False)
    assert list((tmp_path / "target").iterdir()) == [] and leftovers(cache_dir()) == []


# ---------------------------------------------------------------- real data

needs_real_data = pytest.mark.skipif(not REAL_DATA, reason="set INITLAB_DATA_DIR to the real data")


@pytest.mark.data
@needs_real_data
def test_real_fashion_mnist():
    ds = load_dataset("fashion-mnist", data_dir=REAL_DATA, download=False)
    assert ds.train.x.shape == (60000, 28, 28) and ds.val.x.shape == (10000, 28, 28)
    assert ds.train.y[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert ds.val.y[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert round(ds.pixel_mean, 4) == 0.2860 and round(ds.pixel_std, 4) == 0.3530
    # the tensors hold float32 p/255, so their mean matches the exact one to float32 precision
    assert float(ds.train.x.double().mean()) == pytest.approx(ds.pixel_mean, abs=1e-7)
    assert torch.bincount(ds.train.y).tolist() == [6000] * 10
    assert dict(ds.md5) == dict(DATASETS["fashion-mnist"].md5)


@pytest.mark.data
@needs_real_data
def test_real_mnist_holdout():
    ds = load_dataset("mnist", data_dir=REAL_DATA, download=False, validation=0.1, standardize=True)
    assert len(ds.train) == 54000 and len(ds.val) == 6000 and ds.input_shape == (28, 28)
    assert ds.pixel_mean == pytest.approx(0.1307, abs=3e-4)  # whole-set values, 90% subset
    assert ds.pixel_std == pytest.approx(0.3081, abs=3e-4)
    assert float(ds.train.x.mean()) == pytest.approx(0.0, abs=1e-4)
    full = load_dataset("mnist", data_dir=REAL_DATA, download=False, limit_train=10)
    assert full.train.y.tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
