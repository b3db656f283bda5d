"""The results store: one SQLite file per run directory, ``RUN_DIR/initlab.sqlite``.

Durability and kill-safety
--------------------------
The database runs in WAL mode with ``synchronous=NORMAL``. Every write method is one
transaction (``BEGIN IMMEDIATE ... COMMIT``), so each is all-or-nothing: a process killed
with SIGKILL at any instant leaves the file consistent, holding exactly the transactions
that committed. With WAL, ``NORMAL`` loses no committed transaction when only the process
dies (the WAL is in the OS page cache); after an OS crash or power loss the last few
commits may roll back, but the database is never corrupted. An epoch's metrics, layer
statistics, histograms and step losses are written in the same transaction, so no epoch
is ever half-written.

Resume policy
-------------
:meth:`Store.attach` binds a :class:`~initlab.study.cell.Study` to the store:

* an empty store records the study and its cells (status ``pending``);
* the same study (equal :attr:`Study.fingerprint`, i.e. the same set of cell keys) is a
  resume: cells ``done``/``diverged`` are kept, cells ``running`` (interrupted) or
  ``failed`` are reset to ``pending`` and their partial rows deleted, in one transaction;
* a different study raises :class:`~initlab.errors.InitlabError`: one run directory holds
  one study (use a new directory for a new grid).

Tables (schema version :data:`SCHEMA_VERSION`)
----------------------------------------------
``schema_version(version)``; ``meta(key, value JSON)``; ``study(name, fingerprint,
config JSON, created, versions JSON)``; ``cells(key, idx, scheme, seed, model, dataset,
grp, spec JSON, status, attempts, started, finished, wall, error)``. The records of
:mod:`initlab.records`, one row each, under their own field names: ``epochs``
(:class:`~initlab.records.EpochRecord`), ``param_stats`` (:class:`~initlab.records.ParamStats`,
histogram included), ``activation_stats`` (:class:`~initlab.records.ActivationStats`),
``steps`` (:class:`~initlab.records.StepRecord`), ``divergences``
(:class:`~initlab.records.Divergence`); a field a table has no column for (a newer
record's) is kept in the row's ``extra`` JSON and read back. The cell's
:class:`~initlab.study.init_records.InitRecord`: ``init_reports(cell, scheme, seed,
report JSON)`` (``InitReport.to_dict()``) and ``init_checks(cell, scheme, ok, report
JSON, error)`` (``CheckReport.to_dict()``, conformance at init). Probes:
``probes(model, dataset, seq, seed, result JSON)`` (``ProbeResult.to_dict()``, appended)
and ``probe_errors(model, dataset, error)``. Writers take records and call ``to_dict()``;
readers give back the same types (``from_dict()``), reading rows by column name
(``sqlite3.Row``). Version-1 stores are migrated (:mod:`initlab.study.store_migrate`).

Conventions: epoch ``0`` is the state at initialization, ``1..E`` after each epoch;
accuracies are fractions in [0, 1]; a NaN metric is stored as SQL NULL and read back as
NaN; times are Unix seconds (``time.time()``).

Reading without writing
-----------------------
``Store.open(run_dir, readonly=True)`` (what ``initlab summary``, ``report`` and
``export`` use) never changes the store: the connection is opened with SQLite's
``mode=ro`` and ``PRAGMA query_only=ON``, the journal mode is left alone and no table is
ever created, so ``initlab.sqlite`` stays byte-identical. A WAL database is read
together with its ``-wal``/``-shm`` files, so a read while ``initlab run`` is still
writing sees every committed transaction. When those files were absent (a finished
store), SQLite still creates them for a read-only connection and, unable to checkpoint,
leaves them behind; :meth:`Store.close` then hands them back the sanctioned way: it opens
one more connection (``mode=rw`` with ``query_only``, so it cannot write), reads, and
closes it, and SQLite's own close logic removes ``-wal`` and ``-shm`` only when it can
take the exclusive lock, i.e. when no other connection (a writer that started meanwhile)
uses them; the empty WAL means that close copies nothing into the store. This is done
only when no ``-wal`` existed before the read and the one found after it is empty; a
stale ``-shm`` without its ``-wal`` holds no data and goes with it. Where that is not
possible (the file or directory is read-only) the empty files stay, harmless. In a
directory this process cannot write to (read-only media, another user's run) SQLite could
not create those files and a plain ``mode=ro`` open fails; when no ``-wal`` is there, no
writer is running, so the file holds every committed transaction and the store is opened
``immutable=1``: SQLite creates nothing and takes no locks. (``immutable`` is wrong while
a writer runs; the one case left is a writer of the directory's owner starting during
such a read, which can make that read fail or be inconsistent but cannot harm the store,
which this process cannot write.)

Damaged stores
--------------
Every problem with the file is one :class:`~initlab.errors.InitlabError` line naming
the file, what is wrong and what to do, for reading and for writing alike: a file that
is not a database, a damaged or truncated one, a zero-byte one (read-only: it holds no
study), another application's database, another schema version, a directory in its
place, an unreadable file, a locked or full disk. :meth:`Store.open` checks the file up
front (its header, the tables, the schema version; before writing, also
``PRAGMA quick_check``) through a read-only connection, so a damaged or foreign file is
refused without a byte of it changed, never "repaired" by recreating it. Damage that
only shows on a later query (SQLite reads pages lazily) is turned into the same line by
the store's connection itself, the one place all queries go through; so is a stored JSON
value that no longer parses (SQLite keeps no checksums of the values themselves). A zero-byte file
is what SQLite leaves when a run stops before its first commit; opening it for writing
initializes it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import sqlite3
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from initlab.errors import InitlabError
from initlab.records import (ActivationStats, CellStatus, Divergence, EpochRecord, ParamStats,
                             StepRecord)
from initlab.study.cell import Cell, Study

if TYPE_CHECKING:
    from initlab.probe.result import ProbeResult
    from initlab.study.init_records import InitRecord


__all__ = [
    "DB_NAME",
    "READABLE_VERSIONS",
    "SCHEMA_VERSION",
    "CellRecord",
    "ResumeInfo",
    "Store",
    "StudyRecord",
    "package_versions",
    "store_error",
]

DB_NAME = "initlab.sqlite"
SCHEMA_VERSION = 2
#: Schema versions this initlab opens; older ones are migrated (:mod:`initlab.study.store_migrate`).
READABLE_VERSIONS = (1, 2)

_STATUS_LIST = tuple(s.value for s in CellStatus)
_FINAL = tuple(s.value for s in CellStatus.FINAL)

#: The record fields each record table keeps as columns (besides ``cell`` and ``epoch``);
#: fields a record has beyond these (a newer initlab's additions) go to the row's ``extra`` JSON.
_EPOCH_COLS = ("model", "step", "train_loss", "train_acc", "val_loss", "val_acc", "wall_s",
               "batch_models", "diverged")
_PARAM_COLS = ("layer", "param", "name", "numel", "mean", "std", "min", "max", "frac_zero",
               "nonfinite", "quantiles", "hist_edges", "hist_counts")
_ACT_COLS = ("layer", "pre_mean", "pre_std", "post_mean", "post_std", "post_frac_zero", "dead_units")
_STEP_COLS = ("step", "model", "epoch", "steps", "samples", "loss", "accuracy")
_DIV_COLS = ("model", "epoch", "step", "epoch_step", "loss", "reason")
#: Columns holding a list as JSON.
_JSON_COLS = frozenset({"quantiles", "hist_edges", "hist_counts"})
#: Columns holding a bool as an integer.
_BOOL_COLS = frozenset({"diverged"})

_SCHEMA = [
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE study (
        id INTEGER PRIMARY KEY CHECK (id = 1), name TEXT NOT NULL, fingerprint TEXT NOT NULL,
        config TEXT NOT NULL, created REAL NOT NULL, versions TEXT NOT NULL)""",
    f"""CREATE TABLE cells (
        key TEXT PRIMARY KEY, idx INTEGER NOT NULL UNIQUE, scheme TEXT NOT NULL,
        seed INTEGER NOT NULL, model TEXT NOT NULL, dataset TEXT NOT NULL, grp TEXT NOT NULL,
        spec TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN {_STATUS_LIST!r}),
        attempts INTEGER NOT NULL DEFAULT 0, started REAL, finished REAL, wall REAL, error TEXT)""",
    """CREATE TABLE epochs (
        cell TEXT NOT NULL REFERENCES cells(key), epoch INTEGER NOT NULL, model INTEGER NOT NULL,
        step INTEGER NOT NULL, train_loss REAL, train_acc REAL, val_loss REAL, val_acc REAL,
        wall_s REAL, batch_models INTEGER NOT NULL, diverged INTEGER NOT NULL, extra TEXT,
        PRIMARY KEY (cell, epoch))""",
    """CREATE TABLE param_stats (
        cell TEXT NOT NULL REFERENCES cells(key), epoch INTEGER NOT NULL, layer INTEGER NOT NULL,
        param TEXT NOT NULL, name TEXT NOT NULL, numel INTEGER NOT NULL, mean REAL, std REAL,
        min REAL, max REAL, frac_zero REAL, nonfinite INTEGER NOT NULL, quantiles TEXT NOT NULL,
        hist_edges TEXT NOT NULL, hist_counts TEXT NOT NULL, extra TEXT,
        PRIMARY KEY (cell, epoch, layer, param, name))""",
    """CREATE TABLE activation_stats (
        cell TEXT NOT NULL REFERENCES cells(key), epoch INTEGER NOT NULL, layer INTEGER NOT NULL,
        pre_mean REAL, pre_std REAL, post_mean REAL, post_std REAL, post_frac_zero REAL,
        dead_units REAL, extra TEXT, PRIMARY KEY (cell, epoch, layer))""",
    """CREATE TABLE steps (
        cell TEXT NOT NULL REFERENCES cells(key), step INTEGER NOT NULL, model INTEGER NOT NULL,
        epoch INTEGER NOT NULL, steps INTEGER NOT NULL, samples INTEGER NOT NULL, loss REAL,
        accuracy REAL, extra TEXT, PRIMARY KEY (cell, step))""",
    """CREATE TABLE divergences (
        cell TEXT PRIMARY KEY REFERENCES cells(key), model INTEGER NOT NULL, epoch INTEGER NOT NULL,
        step INTEGER NOT NULL, epoch_step INTEGER NOT NULL, loss REAL, reason TEXT NOT NULL,
        extra TEXT)""",
    """CREATE TABLE init_reports (
        cell TEXT PRIMARY KEY REFERENCES cells(key), scheme TEXT NOT NULL, seed INTEGER,
        report TEXT NOT NULL)""",
    """CREATE TABLE init_checks (
        cell TEXT PRIMARY KEY REFERENCES cells(key), scheme TEXT, ok INTEGER, report TEXT,
        error TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE probes (
        model TEXT NOT NULL, dataset TEXT NOT NULL, seq INTEGER NOT NULL, seed INTEGER NOT NULL,
        result TEXT NOT NULL, PRIMARY KEY (model, dataset, seq))""",
    """CREATE TABLE probe_errors (
        model TEXT NOT NULL, dataset TEXT NOT NULL, error TEXT NOT NULL,
        PRIMARY KEY (model, dataset))""",
]
#: Tables with rows per cell (deleted when a cell is reset for a rerun).
_ROW_TABLES = ("epochs", "param_stats", "activation_stats", "steps", "divergences",
               "init_reports", "init_checks")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _real(value: Any) -> float | None:
    """A float for a REAL column: NaN becomes NULL (SQLite's own behaviour, made explicit)."""
    if value is None:
        return None
    x = float(value)
    return None if math.isnan(x) else x


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def package_versions() -> dict[str, str]:
    """Versions of Python, SQLite and the packages results depend on (without importing
    them: :mod:`importlib.metadata`)."""
    from importlib import metadata

    out = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for pkg in ("initlab", "torch", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:  # pragma: no cover - always installed
            out[pkg] = "unknown"
    return out


#: What to do about a store that cannot be used.
_FIX = "restore it from a backup or use a new run directory"
_TABLES = ("schema_version", "meta", "study", "cells", *_ROW_TABLES, "probes", "probe_errors")


def _q(path: Path) -> str:
    return repr(str(path))


def _sidecar(path: Path, suffix: str) -> Path:
    """``initlab.sqlite-wal`` / ``-shm`` beside the store."""
    return path.with_name(path.name + suffix)


def store_error(path: str | os.PathLike[str], exc: sqlite3.Error) -> InitlabError | None:
    """The one-line :class:`InitlabError` for an SQLite error about the store file at
    ``path`` (not a database, damaged, unreadable, locked, read-only, disk full), or
    ``None`` when the error is not about the file (then it is a bug: re-raise it)."""
    p = _q(Path(path))
    what = str(exc).replace("\n", " ")
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary == sqlite3.SQLITE_NOTADB:
        return InitlabError(f"{p} is not an initlab store ({what}); {_FIX}")
    if primary == sqlite3.SQLITE_CORRUPT:
        return InitlabError(f"{p} is damaged ({what}); {_FIX}")
    if primary == sqlite3.SQLITE_IOERR:
        return InitlabError(f"cannot read or write {p} ({what}); check the disk and the file, "
                            f"or {_FIX}")
    if primary in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH):
        return InitlabError(f"cannot open {p} ({what}); check that it is a readable file in a "
                            f"directory you can read (and write, when it has a -wal file)")
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return InitlabError(f"{p} is locked by another process ({what}); wait for the other "
                            f"'initlab run' to finish, or use a new run directory")
    if primary == sqlite3.SQLITE_READONLY:
        return InitlabError(f"cannot write {p} ({what}); make it and its directory writable, "
                            f"or use a new run directory")
    if primary == sqlite3.SQLITE_FULL:
        return InitlabError(f"cannot write {p} ({what}); free disk space, then run again to resume")
    if primary == sqlite3.SQLITE_ERROR and ("no such table" in what or "no such column" in what):
        return InitlabError(f"{p} is not an initlab store ({what}); {_FIX}")
    return None


def _translate(path: Path, exc: sqlite3.DatabaseError) -> None:
    """Raise the one-line :class:`InitlabError` of ``exc`` when it is about the store file;
    return (the caller re-raises ``exc``) for constraint violations and programming errors."""
    if isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError)):
        return
    err = store_error(path, exc)
    if err is None:
        return
    try:
        raise err from None
    finally:
        del err  # no reference cycle through this frame


def _translating(name: str) -> Any:
    """``sqlite3.Cursor.<name>``, with errors about the file turned into one line."""
    method = getattr(sqlite3.Cursor, name)

    def call(self: sqlite3.Cursor, *args: Any) -> Any:
        try:
            return method(self, *args)
        except sqlite3.DatabaseError as exc:
            _translate(self.connection.store_path, exc)
            raise

    call.__name__ = name
    return call


class _Cursor(sqlite3.Cursor):
    """A cursor whose every step turns errors about the file into :func:`store_error`
    lines (SQLite reads pages lazily: damage can surface on any fetch)."""

    execute = _translating("execute")
    executemany = _translating("executemany")
    fetchone = _translating("fetchone")
    fetchmany = _translating("fetchmany")
    fetchall = _translating("fetchall")
    __next__ = _translating("__next__")


class _Connection(sqlite3.Connection):
    """The store's connection: every query goes through a :class:`_Cursor`, the one place
    where SQLite errors about the file are turned into one line."""

    store_path: Path

    def cursor(self, factory: Any = _Cursor) -> Any:  # type: ignore[override]
        cur = super().cursor(factory)
        self.__dict__.setdefault("_cursors", weakref.WeakSet()).add(cur)
        return cur

    def close(self) -> None:
        # A cursor still alive (e.g. held by the traceback of the error it raised) keeps
        # its statement, and SQLite would keep the file open and locked until it is
        # collected: close every cursor first, so the connection really closes now.
        for cur in list(self.__dict__.get("_cursors", ())):
            try:
                cur.close()
            except sqlite3.Error:
                pass
        super().close()

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:  # type: ignore[override]
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq: Any, /) -> _Cursor:  # type: ignore[override]
        return self.cursor().executemany(sql, seq)


def _connect(path: Path, params: str) -> _Connection:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?{params}", uri=True,
                               isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                               timeout=30.0, factory=_Connection)
    except sqlite3.DatabaseError as exc:
        _translate(path, exc)
        raise
    conn.store_path = path
    conn.row_factory = sqlite3.Row
    return conn


def _check_file(path: Path) -> int:
    """The size of the store file, after one-line errors for a file that cannot be read
    or whose SQLite header promises more pages than it holds (a truncated copy)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(100)
    except PermissionError:
        raise InitlabError(f"cannot read {_q(path)} (permission denied); make it readable "
                           f"(chmod u+r) or run as the user who wrote it") from None
    except OSError as exc:
        raise InitlabError(f"cannot read {_q(path)} ({exc.strerror}); check the file and the "
                           f"disk, or {_FIX}") from None
    if len(head) == 100 and head.startswith(b"SQLite format 3\x00"):
        page_size = int.from_bytes(head[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        pages = int.from_bytes(head[28:32], "big")
        # the header's page count is valid when its change counter matches version-valid-for;
        # with a non-empty WAL the newest pages may still be there, not in the file
        valid = pages > 0 and head[24:28] == head[92:96]
        wal = _sidecar(path, "-wal")
        if valid and size < pages * page_size and not (wal.is_file() and wal.stat().st_size > 0):
            raise InitlabError(f"{_q(path)} is damaged (truncated: {size} bytes, its header says "
                               f"{pages * page_size}); {_FIX}")
    return size


def _holds_data(path: Path) -> bool:
    """Whether a store file is at *path* with something in it or in its ``-wal`` (a missing
    or zero-byte store holds nothing: opening it for writing initializes it). A directory
    in its place is a one-line :class:`InitlabError`."""
    if path.is_dir():
        raise InitlabError(f"{_q(path)} is a directory, not an initlab store; move it away "
                           f"or use a new run directory")
    if not path.exists() and not path.is_symlink():
        return False
    wal = _sidecar(path, "-wal")
    return _check_file(path) > 0 or (wal.is_file() and wal.stat().st_size > 0)


def _dir_writable(directory: Path) -> bool:
    return os.access(directory, os.W_OK | os.X_OK)


def _release_wal(path: Path) -> None:
    """Let SQLite remove the empty ``-wal`` (and ``-shm``) that a read-only connection
    created and could not remove; see "Reading without writing" in the module docstring.
    Best effort: nothing happens while another connection uses them, or when they cannot
    be removed."""
    wal = _sidecar(path, "-wal")
    try:
        if not wal.is_file() or wal.stat().st_size != 0:
            return  # none was created, or a writer has started meanwhile: its files
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True,
                               isolation_level=None, timeout=1.0)
    except (OSError, sqlite3.Error):
        return
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        pass
    finally:
        conn.close()


@dataclass(frozen=True)
class StudyRecord:
    """The ``study`` row."""

    name: str
    fingerprint: str
    config: dict[str, Any]
    created: float
    versions: dict[str, str]




@dataclass(frozen=True)
class CellRecord:
    """A ``cells`` row, with the :class:`Cell` rebuilt from its spec."""

    key: str
    index: int
    scheme: str
    seed: int
    model: str
    dataset: str
    group: str
    status: CellStatus
    attempts: int
    started: float | None
    finished: float | None
    wall: float | None
    error: str | None
    cell: Cell

    @property
    def finished_ok(self) -> bool:
        return self.status.final


@dataclass(frozen=True)
class ResumeInfo:
    """What :meth:`Store.attach` found: a new study, or how much of an old one is done."""

    new: bool
    total: int
    finished: int
    reset: int  # interrupted/failed cells reset to pending

    @property
    def pending(self) -> int:
        return self.total - self.finished


class Store:
    """Results of one study in ``RUN_DIR/initlab.sqlite``; see the module docstring.

    Use :meth:`open` (or :meth:`create`) and close it (or use ``with``). One process writes
    at a time; readers (e.g. ``initlab summary`` on a running study) may read concurrently,
    best with ``Store.open(run_dir, readonly=True)``, which never changes the store.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, *, readonly: bool = False,
                 release_wal: bool = False) -> None:
        self._conn = conn
        self.path = path
        #: Opened with ``readonly=True``: no method writes.
        self.readonly = readonly
        self._release_wal = release_wal

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, run_dir: str | os.PathLike[str], *, create: bool = False,
             readonly: bool = False) -> Store:
        """Open the store of ``run_dir``.

        Args:
            create: make the directory and an empty store when missing (for writing).
            readonly: read only; the store stays byte-identical and no ``-wal``/``-shm``
                file is left behind that was not there before (see the module docstring).
                A store that holds nothing (zero bytes) is an error here.

        Without ``create`` a missing directory or store is an error. Every problem with the
        file raises :class:`InitlabError` with one line (see "Damaged stores"); opening for
        writing checks the file read-only first, so a damaged or foreign file is refused
        unchanged.
        """
        if create and readonly:
            raise ValueError("a store cannot be created read-only; pass create or readonly")
        rd = Path(run_dir)
        path = rd / DB_NAME
        if not create:
            if not rd.is_dir():
                what = "is not a directory" if rd.exists() else "does not exist"
                raise InitlabError(
                    f"run directory {str(rd)!r} {what}; pass a directory written by 'initlab run'"
                )
            if not path.exists() and not path.is_symlink():
                raise InitlabError(
                    f"no results store ({DB_NAME}) in {str(rd)!r}; pass a directory written by 'initlab run'"
                )
        else:
            try:
                rd.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InitlabError(f"cannot create run directory {str(rd)!r}: {exc.strerror}; choose a writable path") from None
        if readonly:
            _holds_data(path)  # a directory in its place is refused here
            return cls._open_readonly(path)
        if _holds_data(path):
            # everything about the file is checked before anything is written to it
            cls._open_readonly(path, thorough=True).close()
        conn = _connect(path, f"mode={'rwc' if create else 'rw'}")
        store = cls(conn, path)
        try:
            store._setup()
        except BaseException:
            conn.close()
            raise
        return store

    @classmethod
    def create(cls, run_dir: str | os.PathLike[str]) -> Store:
        """``open(run_dir, create=True)``."""
        return cls.open(run_dir, create=True)

    @classmethod
    def _open_readonly(cls, path: Path, *, thorough: bool = False) -> Store:
        """A read-only store of ``path`` after checking its header, tables and schema
        version; ``thorough`` (before writing) also runs ``PRAGMA quick_check`` and accepts
        an empty database."""
        size = _check_file(path)
        if size == 0 and not thorough:
            raise InitlabError(cls._empty_message(path))
        had_wal = _sidecar(path, "-wal").exists()
        # no -wal: no writer runs, the file is all there is; in a directory this process
        # cannot write, mode=ro could not create -wal/-shm, so SQLite reads it as immutable
        immutable = not had_wal and not _dir_writable(path.parent)
        conn = _connect(path, "mode=ro" + ("&immutable=1" if immutable else ""))
        store = cls(conn, path, readonly=True, release_wal=not had_wal and not immutable)
        try:
            conn.execute("PRAGMA query_only = ON")
            conn.execute("PRAGMA busy_timeout = 30000")
            version = store._check_schema(quick_check=thorough)
            if not version and not thorough:
                raise InitlabError(cls._empty_message(path))
            if version and version < SCHEMA_VERSION and not thorough:
                store._migrate_in_memory(version)
        except BaseException:
            store.close()
            raise
        return store

    def _migrate_in_memory(self, version: int) -> None:
        """Read an older store as this version's: copy it into an in-memory database
        (SQLite's backup API reads it, the file is not changed) and migrate the copy, in
        one transaction, as opening it for writing would migrate the file."""
        from initlab.study.store_migrate import migrate

        mem = sqlite3.connect(":memory:", isolation_level=None, factory=_Connection)
        mem.store_path = self.path
        mem.row_factory = sqlite3.Row
        try:
            self._conn.backup(mem)
            mem.execute("BEGIN IMMEDIATE")
            migrate(mem, version, _SCHEMA)
            mem.execute("COMMIT")
            mem.execute("PRAGMA query_only = ON")
        except BaseException:
            mem.close()
            raise
        self._conn.close()
        self._conn = mem

    @staticmethod
    def _empty_message(path: Path) -> str:
        return (f"results store {_q(path)} is empty and holds no study (the run stopped before "
                f"it began); run 'initlab run' with this directory again")


    def _check_schema(self, *, quick_check: bool = False) -> int:
        """``0`` for an empty database; the schema version of an initlab store that this
        initlab opens (:data:`READABLE_VERSIONS`); else a one-line :class:`InitlabError`."""
        from initlab.study.store_migrate import V1_TABLES

        c = self._conn
        tables = {r["name"] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return 0
        p = _q(self.path)
        if "schema_version" not in tables:
            raise InitlabError(f"{p} is not an initlab store (it holds tables but no initlab "
                               f"schema_version); {_FIX}")
        row = c.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            raise InitlabError(f"{p} is not an initlab store (its schema_version table is empty); {_FIX}")
        version = row["version"]
        if version not in READABLE_VERSIONS:
            raise InitlabError(
                f"results store {p} has schema version {version}, this initlab "
                f"reads versions {', '.join(map(str, READABLE_VERSIONS))}; use the initlab "
                f"version that wrote it"
            )
        missing = [t for t in (V1_TABLES if version == 1 else _TABLES) if t not in tables]
        if missing:
            raise InitlabError(f"{p} is damaged (it lacks the table {missing[0]!r}); {_FIX}")
        if quick_check:
            found = [str(r[0]) for r in c.execute("PRAGMA quick_check").fetchall()]
            if found != ["ok"]:
                first = found[0].replace("\n", " ")[:200] if found else "no answer"
                raise InitlabError(f"{p} is damaged (quick_check: {first}); {_FIX}")
        return int(version)

    def _setup(self) -> None:
        c = self._conn
        c.execute("PRAGMA busy_timeout = 30000")
        mode = c.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":  # pragma: no cover - e.g. some network filesystems
            raise InitlabError(f"cannot switch {_q(self.path)} to WAL journal mode (got {mode}); "
                               f"use a run directory on a local disk")
        c.execute("PRAGMA synchronous = NORMAL")
        c.execute("PRAGMA foreign_keys = ON")
        version = self._check_schema()
        if version == 0:  # an empty database (checked read-only before, if any)
            with self._tx():
                for stmt in _SCHEMA:
                    c.execute(stmt)
                c.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        elif version < SCHEMA_VERSION:
            from initlab.study.store_migrate import migrate

            with self._tx():  # all of it or none: a kill leaves the old store as it was
                migrate(c, version, _SCHEMA)

    def close(self) -> None:
        self._conn.close()
        if self._release_wal:
            self._release_wal = False
            _release_wal(self.path)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _json(self, text: str | None) -> Any:
        """A stored JSON value; text that does not parse (SQLite keeps no checksums, so a
        damaged value can read back as valid SQL) is the store's one-line error."""
        try:
            return _loads(text)
        except (ValueError, TypeError) as exc:
            raise InitlabError(f"{_q(self.path)} is damaged (a stored value is not valid JSON: "
                               f"{exc}); {_FIX}") from None

    @property
    def run_dir(self) -> Path:
        return self.path.parent

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` takes the write lock up front)."""
        if self.readonly:
            raise InitlabError(f"results store {_q(self.path)} was opened read-only; "
                               f"open it with Store.open(run_dir) to write")
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
        except BaseException:
            if c.in_transaction:  # SQLite may have rolled back already (e.g. disk full)
                c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    # -- study and cells ---------------------------------------------------------------

    @classmethod
    def check_resume(cls, run_dir: str | os.PathLike[str], study: Study) -> None:
        """Check, read only and before anything is written, that ``study`` can be run into
        ``run_dir``: no store there yet, or one that opening for writing would accept (the
        same checks) and that is empty or holds ``study`` (else the one-line error of
        :meth:`attach`). Nothing is created or changed."""
        path = Path(run_dir) / DB_NAME
        if not _holds_data(path):
            return  # none yet, or what a run that stopped before its first commit leaves
        with cls._open_readonly(path, thorough=True) as store:
            row = store._conn.execute("SELECT name, fingerprint FROM study").fetchone()
            if row is not None:
                store._check_same_study(store._conn, study, row)

    def _check_same_study(self, c: sqlite3.Connection, study: Study, row: Sequence[Any]) -> None:
        name, fingerprint = row
        if fingerprint != study.fingerprint:
            stored = {k for (k,) in c.execute("SELECT key FROM cells")}
            common = len(stored & {cell.key for cell in study.cells})
            raise InitlabError(
                f"{str(self.run_dir)!r} holds a different study ({name!r}, {len(stored)} "
                f"cells; this one has {len(study)}, {common} in common); use a new run "
                f"directory, or the original settings to resume"
            )

    def attach(self, study: Study) -> ResumeInfo:
        """Record ``study`` in an empty store, or resume it; see the module docstring."""
        with self._tx() as c:
            row = c.execute("SELECT name, fingerprint FROM study").fetchone()
            if row is None:
                c.execute(
                    "INSERT INTO study (id, name, fingerprint, config, created, versions) "
                    "VALUES (1, ?, ?, ?, ?, ?)",
                    (study.name, study.fingerprint, _dumps(study.config), time.time(),
                     _dumps(package_versions())),
                )
                c.executemany(
                    "INSERT INTO cells (key, idx, scheme, seed, model, dataset, grp, spec) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (cell.key, i, cell.scheme, cell.seed, cell.model_label, cell.dataset,
                         cell.group, _dumps(cell.to_dict()))
                        for i, cell in enumerate(study.cells)
                    ],
                )
                return ResumeInfo(new=True, total=len(study), finished=0, reset=0)
            self._check_same_study(c, study, row)
            stale = [k for (k,) in c.execute(
                "SELECT key FROM cells WHERE status IN ('running', 'failed')")]
            self._reset(c, stale)
            finished = c.execute(
                f"SELECT count(*) FROM cells WHERE status IN {_FINAL!r}").fetchone()[0]
            return ResumeInfo(new=False, total=len(study), finished=finished, reset=len(stale))


    def _reset(self, c: sqlite3.Connection, keys: Sequence[str]) -> None:
        for key in keys:
            for table in _ROW_TABLES:
                c.execute(f"DELETE FROM {table} WHERE cell = ?", (key,))
            c.execute("UPDATE cells SET status='pending', started=NULL, finished=NULL, wall=NULL, "
                      "error=NULL WHERE key = ?", (key,))

    def study_record(self) -> StudyRecord | None:
        """The stored study row, or ``None`` for an empty store."""
        row = self._conn.execute(
            "SELECT name, fingerprint, config, created, versions FROM study").fetchone()
        if row is None:
            return None
        return StudyRecord(name=row["name"], fingerprint=row["fingerprint"],
                           config=self._json(row["config"]), created=row["created"],
                           versions=self._json(row["versions"]))

    def load_study(self) -> Study:
        """Rebuild the stored :class:`Study` (cells in their original order)."""
        rec = self.study_record()
        if rec is None:
            raise InitlabError(f"results store {str(self.path)!r} holds no study yet; run one first")
        cells = [Cell.from_dict(self._json(r["spec"])) for r in
                 self._conn.execute("SELECT spec FROM cells ORDER BY idx")]
        return Study(rec.name, tuple(cells), rec.config)

    def cells(self, status: str | Iterable[str] | None = None) -> list[CellRecord]:
        """Cell rows in study order, optionally only those with the given status(es)."""
        sql = "SELECT * FROM cells"
        args: tuple[Any, ...] = ()
        if status is not None:
            wanted = (status,) if isinstance(status, str) else tuple(status)
            args = tuple(CellStatus.parse(s).value for s in wanted)
            sql += f" WHERE status IN ({','.join('?' * len(args))})"
        return [
            CellRecord(key=r["key"], index=r["idx"], scheme=r["scheme"], seed=r["seed"],
                       model=r["model"], dataset=r["dataset"], group=r["grp"],
                       status=CellStatus(r["status"]), attempts=r["attempts"], started=r["started"],
                       finished=r["finished"], wall=r["wall"], error=r["error"],
                       cell=Cell.from_dict(self._json(r["spec"])))
            for r in self._conn.execute(sql + " ORDER BY idx", args).fetchall()
        ]

    def pending_cells(self) -> list[Cell]:
        """Cells still to run, in study order."""
        return [r.cell for r in self.cells(CellStatus.PENDING)]

    def status_counts(self) -> dict[CellStatus, int]:
        """The number of cells of each status (every status present, in enum order)."""
        counts = dict.fromkeys(CellStatus, 0)
        for r in self._conn.execute("SELECT status, count(*) AS n FROM cells GROUP BY status"):
            counts[CellStatus(r["status"])] = r["n"]
        return counts

    def _require(self, c: sqlite3.Connection, key: str, statuses: Sequence[str]) -> None:
        row = c.execute("SELECT status FROM cells WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise InitlabError(f"cell {key!r} is not part of the stored study; attach the study first")
        if row["status"] not in statuses:
            raise InitlabError(
                f"cell {key!r} is {row['status']}, expected {' or '.join(statuses)}; "
                f"mark it running before recording results"
            )

    def mark_running(self, keys: Iterable[str]) -> None:
        """Pending cells start: status ``running``, ``started`` now, one more attempt."""
        now = time.time()
        with self._tx() as c:
            for key in keys:
                self._require(c, key, ("pending",))
                c.execute(
                    "UPDATE cells SET status='running', started=?, attempts=attempts+1 WHERE key=?",
                    (now, key),
                )

    def restart(self, keys: Iterable[str]) -> None:
        """Running cells start again from scratch (an executor retries a task whose worker
        died): their rows are deleted and they stay ``running`` with one more attempt, in
        one transaction, so no epoch of the abandoned attempt survives beside the new one."""
        keys = list(keys)
        now = time.time()
        with self._tx() as c:
            for key in keys:
                self._require(c, key, (CellStatus.RUNNING,))
            self._reset(c, keys)
            for key in keys:
                c.execute("UPDATE cells SET status='running', started=?, attempts=attempts+1 WHERE key=?",
                          (now, key))

    def mark_finished(self, key: str, *, wall: float | None = None) -> CellStatus:
        """A running cell finished: status ``diverged`` when a :class:`Divergence` was
        recorded for it (:meth:`record_divergence`), else ``done``. Returns the status."""
        with self._tx() as c:
            self._require(c, key, (CellStatus.RUNNING,))
            diverged = c.execute("SELECT 1 FROM divergences WHERE cell = ?", (key,)).fetchone()
            status = CellStatus.DIVERGED if diverged else CellStatus.DONE
            c.execute("UPDATE cells SET status=?, finished=?, wall=? WHERE key=?",
                      (status.value, time.time(), _real(wall), key))
        return status

    def mark_failed(self, keys: Iterable[str], error: str) -> None:
        """Running cells failed with ``error`` (an exception's text); they rerun on resume."""
        with self._tx() as c:
            for key in keys:
                self._require(c, key, (CellStatus.RUNNING,))
                c.execute("UPDATE cells SET status='failed', finished=?, error=? WHERE key=?",
                          (time.time(), error, key))

    # -- writing results: records in, with to_dict() -----------------------------------------

    def _insert(self, c: sqlite3.Connection, table: str, keys: dict[str, Any],
                columns: Sequence[str], record: Any) -> None:
        """One row of *record* (``to_dict()``) in *table*: *keys* first, then *columns*,
        the record's other fields (not ``model`` key fields) in ``extra``."""
        nested = getattr(record, "_NESTED", {})  # rows of their own: not converted here
        d = (dataclasses.replace(record, **dict.fromkeys(nested, ())) if nested else record).to_dict()
        for k in keys:
            d.pop(k, None)
        values = {**keys}
        for col in columns:
            v = d.pop(col)
            if col in _JSON_COLS:
                v = _dumps(v)
            elif isinstance(v, float):
                v = _real(v)
            elif isinstance(v, bool):
                v = int(v)
            values[col] = v
        for nested in ("params", "activations"):
            d.pop(nested, None)
        values["extra"] = _dumps(d) if d else None
        names = ", ".join(values)
        c.execute(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(values))})",
                  tuple(values.values()))

    def record_epoch(self, key: str, record: EpochRecord, steps: Sequence[StepRecord] = ()) -> None:
        """One :class:`EpochRecord` of a running cell (its metrics, parameter statistics
        with their histograms and activation statistics) and the *steps* that led to it,
        in one transaction."""
        if not isinstance(record, EpochRecord):
            raise InitlabError(f"record_epoch takes an EpochRecord, got {type(record).__name__}")
        with self._tx() as c:
            self._require(c, key, (CellStatus.RUNNING,))
            at = {"cell": key, "epoch": record.epoch}
            try:
                self._insert(c, "epochs", at, _EPOCH_COLS, record)
                for p in record.params:
                    self._insert(c, "param_stats", at, _PARAM_COLS, p)
                for a in record.activations:
                    self._insert(c, "activation_stats", at, _ACT_COLS, a)
                for s in steps:
                    self._insert(c, "steps", {"cell": key}, _STEP_COLS, s)
            except sqlite3.IntegrityError as exc:
                raise InitlabError(
                    f"epoch {record.epoch} of cell {key} is already (partly) recorded ({exc}); "
                    f"each epoch, layer and step is recorded once"
                ) from None

    def record_steps(self, key: str, steps: Sequence[StepRecord]) -> None:
        """:class:`StepRecord` s of a running cell not followed by an epoch record."""
        with self._tx() as c:
            self._require(c, key, (CellStatus.RUNNING,))
            try:
                for s in steps:
                    self._insert(c, "steps", {"cell": key}, _STEP_COLS, s)
            except sqlite3.IntegrityError as exc:
                raise InitlabError(f"a step of cell {key} is already recorded ({exc})") from None

    def record_divergence(self, key: str, event: Divergence) -> None:
        """The :class:`Divergence` of a running cell: it finishes as ``diverged``."""
        with self._tx() as c:
            self._require(c, key, (CellStatus.RUNNING,))
            try:
                self._insert(c, "divergences", {"cell": key}, _DIV_COLS, event)
            except sqlite3.IntegrityError:
                raise InitlabError(f"cell {key} has diverged already; a model diverges once") from None

    def record_init(self, key: str, record: InitRecord) -> None:
        """The :class:`~initlab.study.init_records.InitRecord` of a running cell: apply's
        report in ``init_reports``, check's verdicts (or its error) in ``init_checks``."""
        d = record.to_dict()
        report, check = d["report"], d["check"]
        with self._tx() as c:
            self._require(c, key, (CellStatus.RUNNING,))
            c.execute("INSERT OR REPLACE INTO init_reports (cell, scheme, seed, report) VALUES (?, ?, ?, ?)",
                      (key, report["scheme"], report["seed"], _dumps(report)))
            c.execute("INSERT OR REPLACE INTO init_checks (cell, scheme, ok, report, error) "
                      "VALUES (?, ?, ?, ?, ?)",
                      (key, None if check is None else check["scheme"],
                       None if check is None else int(check["ok"]),
                       None if check is None else _dumps(check), d["check_error"]))

    def record_probe(self, model: str, dataset: str, result: ProbeResult) -> None:
        """Append a probe of the ``(model, dataset)`` group (its schemes not probed before);
        :meth:`probe` reads the group's rows back as one result. A probe error recorded
        for the group is removed."""
        with self._tx() as c:
            seq = c.execute("SELECT coalesce(max(seq), -1) + 1 AS seq FROM probes WHERE model=? AND "
                            "dataset=?", (model, dataset)).fetchone()["seq"]
            c.execute("INSERT INTO probes (model, dataset, seq, seed, result) VALUES (?, ?, ?, ?, ?)",
                      (model, dataset, seq, result.seed, _dumps(result.to_dict())))
            c.execute("DELETE FROM probe_errors WHERE model=? AND dataset=?", (model, dataset))

    def record_probe_error(self, model: str, dataset: str, error: str) -> None:
        """Why probing the ``(model, dataset)`` group failed (one line)."""
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO probe_errors (model, dataset, error) VALUES (?, ?, ?)",
                      (model, dataset, error))

    # -- meta ----------------------------------------------------------------------------

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON-able run-info value (device, wall time, ...) under ``key``."""
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, _dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else self._json(row["value"])

    def meta(self) -> dict[str, Any]:
        return {r["key"]: self._json(r["value"])
                for r in self._conn.execute("SELECT key, value FROM meta ORDER BY key")}

    # -- reading results: the same record types back, with from_dict() -------------------------

    def _record(self, cls: type, row: sqlite3.Row, columns: Sequence[str], **more: Any) -> Any:
        d: dict[str, Any] = dict(self._json(row["extra"]) or {})
        for col in columns:
            v = row[col]
            if col in _JSON_COLS:
                v = self._json(v)
            elif col in _BOOL_COLS:
                v = bool(v)
            elif v is None:
                v = math.nan
            d[col] = v
        d.update(more)
        return cls.from_dict(d)

    def _by_cell(self, table: str, key: str | None, order: str) -> Iterator[sqlite3.Row]:
        sql = f"SELECT t.* FROM {table} t JOIN cells c ON c.key = t.cell"
        args: tuple[Any, ...] = ()
        if key is not None:
            sql, args = sql + " WHERE t.cell = ?", (key,)
        return iter(self._conn.execute(f"{sql} ORDER BY c.idx, {order}", args).fetchall())

    def epoch_records(self, key: str | None = None) -> dict[str, list[EpochRecord]]:
        """``{cell key: [EpochRecord, ...]}`` (epochs in order, cells in study order; one
        cell with *key*), each with its parameter and activation statistics."""
        params: dict[tuple[str, int], list[ParamStats]] = {}
        for r in self._by_cell("param_stats", key, "t.epoch, t.layer, t.param DESC, t.name"):
            params.setdefault((r["cell"], r["epoch"]), []).append(self._record(ParamStats, r, _PARAM_COLS))
        acts: dict[tuple[str, int], list[ActivationStats]] = {}
        for r in self._by_cell("activation_stats", key, "t.epoch, t.layer"):
            acts.setdefault((r["cell"], r["epoch"]), []).append(self._record(ActivationStats, r, _ACT_COLS))
        out: dict[str, list[EpochRecord]] = {}
        for r in self._by_cell("epochs", key, "t.epoch"):
            at = (r["cell"], r["epoch"])
            out.setdefault(r["cell"], []).append(self._record(
                EpochRecord, r, _EPOCH_COLS, epoch=r["epoch"], params=tuple(params.get(at, ())),
                activations=tuple(acts.get(at, ()))))
        return out

    def epochs(self, key: str) -> list[EpochRecord]:
        """The :class:`EpochRecord` s of one cell, by epoch."""
        return self.epoch_records(key).get(key, [])

    def step_records(self, key: str | None = None) -> dict[str, list[StepRecord]]:
        """``{cell key: [StepRecord, ...]}`` by step."""
        out: dict[str, list[StepRecord]] = {}
        for r in self._by_cell("steps", key, "t.step"):
            out.setdefault(r["cell"], []).append(self._record(StepRecord, r, _STEP_COLS))
        return out

    def steps(self, key: str) -> list[StepRecord]:
        """The :class:`StepRecord` s of one cell, by step."""
        return self.step_records(key).get(key, [])

    def divergences(self, key: str | None = None) -> dict[str, Divergence]:
        """``{cell key: Divergence}`` of the cells that diverged."""
        return {r["cell"]: self._record(Divergence, r, _DIV_COLS)
                for r in self._by_cell("divergences", key, "t.cell")}

    def divergence(self, key: str) -> Divergence | None:
        return self.divergences(key).get(key)

    def init_records(self, key: str | None = None) -> dict[str, InitRecord]:
        """``{cell key: InitRecord}``: apply's report and check's verdicts at init."""
        from initlab.study.init_records import InitRecord

        checks = {r["cell"]: r for r in self._by_cell("init_checks", key, "t.cell")}
        out = {}
        for r in self._by_cell("init_reports", key, "t.cell"):
            ck = checks.get(r["cell"])
            out[r["cell"]] = InitRecord.from_dict({
                "report": self._json(r["report"]),
                "check": None if ck is None else self._json(ck["report"]),
                "check_error": "" if ck is None else ck["error"]})
        return out

    def init_record(self, key: str) -> InitRecord | None:
        return self.init_records(key).get(key)

    def probes(self) -> dict[tuple[str, str], ProbeResult]:
        """``{(model label, dataset): ProbeResult}``: each group's probe rows in the order
        they were recorded, as one result (their schemes one after the other)."""
        from initlab.probe.result import ProbeResult

        out: dict[tuple[str, str], ProbeResult] = {}
        for r in self._conn.execute("SELECT * FROM probes ORDER BY model, dataset, seq").fetchall():
            part = ProbeResult.from_dict(self._json(r["result"]))
            group = (r["model"], r["dataset"])
            first = out.get(group)
            out[group] = part if first is None else dataclasses.replace(
                first, schemes=[*first.schemes, *part.schemes])
        return out

    def probe(self, model: str, dataset: str) -> ProbeResult | None:
        """The probe of one ``(model label, dataset)`` group, or ``None``."""
        return self.probes().get((model, dataset))

    def probe_errors(self) -> dict[tuple[str, str], str]:
        """``{(model label, dataset): "ErrorType: message"}`` of the groups whose probe failed."""
        return {(r["model"], r["dataset"]): r["error"]
                for r in self._conn.execute("SELECT * FROM probe_errors ORDER BY model, dataset")}

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check`` (``"ok"`` for a sound file)."""
        return str(self._conn.execute("PRAGMA integrity_check").fetchone()[0])
