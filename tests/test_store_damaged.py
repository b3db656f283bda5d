"""A results store that cannot be used, seen by every command: ``summary``, ``report``,
``export --format csv`` and ``run`` each exit 2 with one ``initlab: error:`` line naming
the file, never a traceback, and leave the run directory exactly as it was (the damaged
file byte-identical, no ``-wal``/``-shm``, report or tables added). A healthy store is
left byte-identical by the read-only commands.

Stores are written through :class:`initlab.study.Store` with a fake trainer (no
training); the healthy-store test uses the small real run of tests/test_report.py.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from initlab.cli import main
from initlab.study import Store, run_study
from initlab.study.store import DB_NAME

from test_store import _study, _train_all

DATA = os.environ.get("INITLAB_DATA_DIR")


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root``: directories as None, files with their bytes."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes())
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def store_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a finished store of a 4-cell study."""
    rd = tmp_path_factory.mktemp("good") / "run"
    with Store.create(rd) as store:
        run_study(_study(), store, _train_all)
    assert sorted(p.name for p in rd.iterdir()) == [DB_NAME]
    return (rd / DB_NAME).read_bytes()


def _garbled(good: bytes) -> bytes:
    """``good`` with the root page of its ``epochs`` table overwritten: the header, the
    tables and the schema version read fine, the damage shows on a later query."""
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"initlab-garble-{os.getpid()}.sqlite"
    tmp.write_bytes(good)
    try:
        conn = sqlite3.connect(f"{tmp.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name='epochs'").fetchone()
        (page,) = conn.execute("PRAGMA page_size").fetchone()
        conn.close()
    finally:
        tmp.unlink()
    raw = bytearray(good)
    raw[(root - 1) * page:root * page] = bytes(range(256)) * (page // 256)
    return bytes(raw)


def _foreign(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    conn.execute("INSERT INTO notes (text) VALUES ('not initlab')")
    conn.commit()
    conn.close()


def _wrong_version(path: Path, good: bytes) -> None:
    path.write_bytes(good)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()


#: kind -> what the error line says
KINDS = {
    "random-bytes": "is not an initlab store (file is not a database)",
    "truncated-4096": "is damaged (truncated: 4096 bytes",
    "truncated-10000": "is damaged (truncated: 10000 bytes",
    "garbled-page": "is damaged (database disk image is malformed)",
    "zero-bytes": "is empty and holds no study",
    "other-application": "is not an initlab store (it holds tables but no initlab schema_version)",
    "schema-version-99": "has schema version 99, this initlab reads versions 1, 2",
    "directory": "is a directory, not an initlab store",
    "bad-json": "is damaged (a stored value is not valid JSON",
}


def _damage(kind: str, rd: Path, good: bytes) -> None:
    rd.mkdir(parents=True)
    db = rd / DB_NAME
    if kind == "random-bytes":
        db.write_bytes(random.Random(0).randbytes(16384))
    elif kind.startswith("truncated-"):
        db.write_bytes(good[:int(kind.split("-")[1])])
    elif kind == "garbled-page":
        db.write_bytes(_garbled(good))
    elif kind == "zero-bytes":
        db.write_bytes(b"")
    elif kind == "other-application":
        _foreign(db)
    elif kind == "schema-version-99":
        _wrong_version(db, good)
    elif kind == "bad-json":  # sound SQLite, a damaged value inside (SQLite keeps no checksums)
        db.write_bytes(good)
        conn = sqlite3.connect(db)
        conn.execute("""UPDATE cells SET spec = '{"scheme": "he_n' WHERE idx = 1""")
        conn.commit()
        conn.close()
    elif kind == "directory":
        db.mkdir()
        (db / "kept.txt").write_text("whatever this is, it stays")
    else:  # pragma: no cover
        raise AssertionError(kind)
    assert sorted(p.name for p in rd.iterdir()) == [DB_NAME]  # no -wal/-shm to begin with


def _argv(command: str, rd: Path) -> list[str]:
    if command == "summary":
        return ["summary", str(rd)]
    if command == "report":
        return ["report", str(rd)]
    if command == "export":
        return ["export", str(rd), "--format", "csv"]
    if not DATA:
        pytest.skip("'initlab run' checks its data first: INITLAB_DATA_DIR is not set")
    return ["run", "smoke", "--data-dir", DATA, "--no-download", "--out", str(rd), "--no-report", "--quiet"]


@pytest.mark.parametrize("command", ["summary", "report", "export", "run"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_damaged_store_is_one_line_and_left_as_it_was(tmp_path: Path, store_bytes: bytes, capsys,
                                                        kind: str, command: str) -> None:
    if kind == "zero-bytes" and command == "run":
        pytest.skip("'initlab run' initializes a zero-byte store (test_store: zero-byte store)")
    if kind == "bad-json" and command == "run":
        pytest.skip("'initlab run' finds another study there before it reads the damaged value")
    rd = tmp_path / "run"
    _damage(kind, rd, store_bytes)
    before = _tree(rd)
    code = main(_argv(command, rd))
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert err.startswith("initlab: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    expected = KINDS[kind]
    if kind == "garbled-page" and command == "run":
        expected = "is damaged ("  # found by the quick_check made before writing
    assert expected in err, err
    assert str(rd / DB_NAME) in err  # names the file
    if kind != "schema-version-99":
        assert "restore it" in err or "run 'initlab run'" in err or "move it away" in err, err
    assert _tree(rd) == before  # byte-identical, and nothing added


def test_zero_byte_store_is_initialized_by_a_writer(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"")
    with Store.create(tmp_path) as store:
        assert store.attach(_study()).new
    with Store.open(tmp_path, readonly=True) as store:
        assert store.status_counts()["pending"] == 4


# -- permissions: as another user when the tests run as root ---------------------------------------


def _as_other_user(argv: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    """``python -m initlab ARGV`` as an unprivileged user (``nobody`` via setpriv when
    this process is root: root may read and write anything)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot test permissions")
        prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    env = {**os.environ, "HOME": str(tmp), "MPLCONFIGDIR": str(tmp / "mpl")}
    return subprocess.run([*prefix, sys.executable, "-m", "initlab", *argv], capture_output=True,
                          text=True, env=env, timeout=120)


@pytest.fixture
def shared_tmp() -> Path:
    """A temporary directory any user may enter (pytest's tmp_path is private to root)."""
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="initlab-perm-"))
    d.chmod(0o755)
    (d / "home").mkdir(mode=0o777)
    (d / "home").chmod(0o777)
    yield d
    for p in [d, *d.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(d, ignore_errors=True)


def test_an_unreadable_store_is_one_line(shared_tmp: Path, store_bytes: bytes) -> None:
    rd = shared_tmp / "run"
    rd.mkdir()
    rd.chmod(0o777)  # writable: the report's place is fine, only the store is unreadable
    (rd / DB_NAME).write_bytes(store_bytes)
    (rd / DB_NAME).chmod(0o000)
    before = {p.name: p.stat().st_mtime_ns for p in rd.iterdir()}
    for argv in (["summary", str(rd)], ["report", str(rd)], ["export", str(rd), "--format", "csv"]):
        proc = _as_other_user(argv, shared_tmp / "home")
        assert proc.returncode == 2, proc.stderr
        err = proc.stderr
        assert err.startswith("initlab: error: cannot read ") and "permission denied" in err, err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert {p.name: p.stat().st_mtime_ns for p in rd.iterdir()} == before
    (rd / DB_NAME).chmod(0o644)
    assert (rd / DB_NAME).read_bytes() == store_bytes


def test_a_store_in_a_read_only_directory_is_read_without_creating_anything(
        shared_tmp: Path, store_bytes: bytes) -> None:
    rd = shared_tmp / "run"
    rd.mkdir()
    (rd / DB_NAME).write_bytes(store_bytes)
    (rd / DB_NAME).chmod(0o444)
    rd.chmod(0o555)  # as an archived run on read-only media
    before = _tree(rd)
    proc = _as_other_user(["summary", str(rd), "--json"], shared_tmp / "home")
    assert proc.returncode == 0, proc.stderr
    assert '"rows"' in proc.stdout
    # the report cannot go there: one line, before any work
    proc = _as_other_user(["report", str(rd)], shared_tmp / "home")
    assert proc.returncode == 2 and "is not writable" in proc.stderr and proc.stderr.count("\n") == 1
    assert _tree(rd) == before


# -- a healthy store ---------------------------------------------------------------------------


def test_read_only_commands_leave_a_healthy_store_byte_identical(tmp_path: Path, capsys) -> None:
    from test_report import real_run

    rd = real_run(tmp_path / "run")
    store_files = {name: (rd / name).read_bytes() for name in os.listdir(rd)}
    assert list(store_files) == [DB_NAME]
    for argv in (["summary", str(rd)], ["summary", str(rd), "--json"], ["report", str(rd)],
                 ["export", str(rd), "--format", "csv"]):
        assert main(argv) == 0, capsys.readouterr().err
        capsys.readouterr()
        assert (rd / DB_NAME).read_bytes() == store_files[DB_NAME]
        assert not (rd / f"{DB_NAME}-wal").exists() and not (rd / f"{DB_NAME}-shm").exists()
    assert sorted(os.listdir(rd)) == sorted([DB_NAME, "figures", "report.html", "tables"])
