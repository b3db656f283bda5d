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
grp, spec JSON, status, attempts, started, finished, wall, diverged_epoch, diverged_step,
error, init JSON)``; ``epochs(cell, epoch, train_loss, train_acc, val_loss, val_acc, wall,
extra JSON)``; ``steps(cell, step, epoch, loss, acc, extra JSON)``; ``layer_stats(cell,
epoch, layer, name, stats JSON)``; ``histograms(cell, epoch, layer, kind, name, edges JSON,
counts JSON)``; ``events(cell, seq, kind, epoch, step, detail JSON)``.

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

import json
import math
import os
import platform
import sqlite3
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from initlab.errors import InitlabError
from initlab.study.cell import Cell, Study

__all__ = [
    "DB_NAME",
    "FINAL_STATUSES",
    "SCHEMA_VERSION",
    "STATUSES",
    "CellRecord",
    "ResumeInfo",
    "Store",
    "StudyRecord",
    "package_versions",
    "store_error",
]

DB_NAME = "initlab.sqlite"
SCHEMA_VERSION = 1
STATUSES = ("pending", "running", "done", "diverged", "failed")
#: Statuses of finished cells (kept on resume).
FINAL_STATUSES = ("done", "diverged")
#: Metric columns of the ``epochs`` table; other metric keys go to its ``extra`` JSON.
EPOCH_COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc", "wall")

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
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN {STATUSES!r}),
        attempts INTEGER NOT NULL DEFAULT 0, started REAL, finished REAL, wall REAL,
        diverged_epoch INTEGER, diverged_step INTEGER, error TEXT, init TEXT)""",
    """CREATE TABLE epochs (
        cell TEXT NOT NULL REFERENCES cells(key), epoch INTEGER NOT NULL,
        train_loss REAL, train_acc REAL, val_loss REAL, val_acc REAL, wall REAL, extra TEXT,
        PRIMARY KEY (cell, epoch))""",
    """CREATE TABLE steps (
        cell TEXT NOT NULL REFERENCES cells(key), step INTEGER NOT NULL, epoch INTEGER,
        loss REAL, acc REAL, extra TEXT, PRIMARY KEY (cell, step))""",
    """CREATE TABLE layer_stats (
        cell TEXT NOT NULL REFERENCES cells(key), epoch INTEGER NOT NULL,
        layer INTEGER NOT NULL, name TEXT NOT NULL, stats TEXT NOT NULL,
        PRIMARY KEY (cell, epoch, layer))""",
    """CREATE TABLE histograms (
        cell TEXT NOT NULL REFERENCES cells(key), epoch INTEGER NOT NULL,
        layer INTEGER NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
        edges TEXT NOT NULL, counts TEXT NOT NULL, PRIMARY KEY (cell, epoch, layer, kind))""",
    """CREATE TABLE events (
        cell TEXT NOT NULL REFERENCES cells(key), seq INTEGER NOT NULL, kind TEXT NOT NULL,
        epoch INTEGER, step INTEGER, detail TEXT, PRIMARY KEY (cell, seq))""",
]
_ROW_TABLES = ("epochs", "steps", "layer_stats", "histograms", "events")


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
_TABLES = ("schema_version", "meta", "study", "cells", *_ROW_TABLES)


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
    status: str
    attempts: int
    started: float | None
    finished: float | None
    wall: float | None
    diverged_epoch: int | None
    diverged_step: int | None
    error: str | None
    init: Any
    cell: Cell

    @property
    def finished_ok(self) -> bool:
        return self.status in FINAL_STATUSES


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
            if not store._check_schema(quick_check=thorough) and not thorough:
                raise InitlabError(cls._empty_message(path))
        except BaseException:
            store.close()
            raise
        return store

    @staticmethod
    def _empty_message(path: Path) -> str:
        return (f"results store {_q(path)} is empty and holds no study (the run stopped before "
                f"it began); run 'initlab run' with this directory again")

    def _check_schema(self, *, quick_check: bool = False) -> bool:
        """``False`` for an empty database; ``True`` for an initlab store of this schema
        version; else a one-line :class:`InitlabError`."""
        c = self._conn
        tables = {name for (name,) in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return False
        p = _q(self.path)
        if "schema_version" not in tables:
            raise InitlabError(f"{p} is not an initlab store (it holds tables but no initlab "
                               f"schema_version); {_FIX}")
        row = c.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            raise InitlabError(f"{p} is not an initlab store (its schema_version table is empty); {_FIX}")
        if row[0] != SCHEMA_VERSION:
            raise InitlabError(
                f"results store {p} has schema version {row[0]}, this initlab "
                f"reads version {SCHEMA_VERSION}; use the initlab version that wrote it"
            )
        missing = [t for t in _TABLES if t not in tables]
        if missing:
            raise InitlabError(f"{p} is damaged (it lacks the table {missing[0]!r}); {_FIX}")
        if quick_check:
            found = [str(r[0]) for r in c.execute("PRAGMA quick_check").fetchall()]
            if found != ["ok"]:
                first = found[0].replace("\n", " ")[:200] if found else "no answer"
                raise InitlabError(f"{p} is damaged (quick_check: {first}); {_FIX}")
        return True

    def _setup(self) -> None:
        c = self._conn
        c.execute("PRAGMA busy_timeout = 30000")
        mode = c.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":  # pragma: no cover - e.g. some network filesystems
            raise InitlabError(f"cannot switch {_q(self.path)} to WAL journal mode (got {mode}); "
                               f"use a run directory on a local disk")
        c.execute("PRAGMA synchronous = NORMAL")
        c.execute("PRAGMA foreign_keys = ON")
        if not self._check_schema():  # an empty database (checked read-only before, if any)
            with self._tx():
                for stmt in _SCHEMA:
                    c.execute(stmt)
                c.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))

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
                f"SELECT count(*) FROM cells WHERE status IN {FINAL_STATUSES!r}").fetchone()[0]
            return ResumeInfo(new=False, total=len(study), finished=finished, reset=len(stale))

    def _reset(self, c: sqlite3.Connection, keys: Sequence[str]) -> None:
        for key in keys:
            for table in _ROW_TABLES:
                c.execute(f"DELETE FROM {table} WHERE cell = ?", (key,))
            c.execute(
                "UPDATE cells SET status='pending', started=NULL, finished=NULL, wall=NULL, "
                "diverged_epoch=NULL, diverged_step=NULL, error=NULL, init=NULL WHERE key = ?",
                (key,),
            )

    def study_record(self) -> StudyRecord | None:
        """The stored study row, or ``None`` for an empty store."""
        row = self._conn.execute(
            "SELECT name, fingerprint, config, created, versions FROM study").fetchone()
        if row is None:
            return None
        return StudyRecord(row[0], row[1], self._json(row[2]), row[3], self._json(row[4]))

    def load_study(self) -> Study:
        """Rebuild the stored :class:`Study` (cells in their original order)."""
        rec = self.study_record()
        if rec is None:
            raise InitlabError(f"results store {str(self.path)!r} holds no study yet; run one first")
        cells = [Cell.from_dict(self._json(spec)) for (spec,) in
                 self._conn.execute("SELECT spec FROM cells ORDER BY idx")]
        return Study(rec.name, tuple(cells), rec.config)

    _CELL_COLS = ("key, idx, scheme, seed, model, dataset, grp, status, attempts, started, "
                  "finished, wall, diverged_epoch, diverged_step, error, init, spec")

    def cells(self, status: str | Iterable[str] | None = None) -> list[CellRecord]:
        """Cell rows in study order, optionally only those with the given status(es)."""
        sql = f"SELECT {self._CELL_COLS} FROM cells"
        args: tuple[Any, ...] = ()
        if status is not None:
            wanted = (status,) if isinstance(status, str) else tuple(status)
            bad = [s for s in wanted if s not in STATUSES]
            if bad:
                raise InitlabError(f"unknown cell status {bad[0]!r}; statuses are {', '.join(STATUSES)}")
            sql += f" WHERE status IN ({','.join('?' * len(wanted))})"
            args = wanted
        rows = self._conn.execute(sql + " ORDER BY idx", args).fetchall()
        return [
            CellRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
                       r[12], r[13], r[14], self._json(r[15]), Cell.from_dict(self._json(r[16])))
            for r in rows
        ]

    def pending_cells(self) -> list[Cell]:
        """Cells still to run, in study order."""
        return [r.cell for r in self.cells("pending")]

    def status_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for status, n in self._conn.execute("SELECT status, count(*) FROM cells GROUP BY status"):
            counts[status] = n
        return counts

    def _require(self, c: sqlite3.Connection, key: str, statuses: Sequence[str]) -> None:
        row = c.execute("SELECT status FROM cells WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise InitlabError(f"cell {key!r} is not part of the stored study; attach the study first")
        if row[0] not in statuses:
            raise InitlabError(
                f"cell {key!r} is {row[0]}, expected {' or '.join(statuses)}; "
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

    def mark_finished(
        self,
        key: str,
        *,
        wall: float | None = None,
        diverged: bool = False,
        diverged_epoch: int | None = None,
        diverged_step: int | None = None,
    ) -> str:
        """A running cell finished: status ``diverged`` when ``diverged`` or a divergence
        epoch or step is given, else ``done``. Returns the status written."""
        diverged = diverged or diverged_epoch is not None or diverged_step is not None
        status = "diverged" if diverged else "done"
        with self._tx() as c:
            self._require(c, key, ("running",))
            c.execute(
                "UPDATE cells SET status=?, finished=?, wall=?, diverged_epoch=?, diverged_step=? "
                "WHERE key=?",
                (status, time.time(), _real(wall), diverged_epoch, diverged_step, key),
            )
        return status

    def mark_failed(self, keys: Iterable[str], error: str) -> None:
        """Running cells failed with ``error`` (an exception's text); they rerun on resume."""
        with self._tx() as c:
            for key in keys:
                self._require(c, key, ("running",))
                c.execute(
                    "UPDATE cells SET status='failed', finished=?, error=? WHERE key=?",
                    (time.time(), error, key),
                )

    # -- results -------------------------------------------------------------------------

    def record_init(self, key: str, records: Any) -> None:
        """JSON-able initialization records of a running cell (e.g. an InitReport's
        layers as dicts)."""
        with self._tx() as c:
            self._require(c, key, ("running",))
            c.execute("UPDATE cells SET init=? WHERE key=?", (_dumps(records), key))

    def record_epoch(
        self,
        key: str,
        epoch: int,
        metrics: Mapping[str, Any],
        *,
        layers: Sequence[Mapping[str, Any]] = (),
        histograms: Sequence[Mapping[str, Any]] = (),
        steps: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """Everything about one epoch of a running cell, in one transaction.

        Args:
            metrics: ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``wall``
                (any may be missing or NaN); other keys are kept in ``extra``.
            layers: per-layer statistics; each dict has ``name`` (str) and optionally
                ``layer`` (int; default its position); the rest is stored as JSON.
            histograms: each dict has ``edges`` and ``counts`` (lists), ``name``, and
                optionally ``layer`` (default: position) and ``kind`` (default ``weight``).
            steps: step records, as for :meth:`record_steps`.
        """
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise InitlabError(f"epoch must be an integer >= 0, got {epoch!r}")
        extra = {k: v for k, v in metrics.items() if k not in EPOCH_COLUMNS}
        layer_rows = []
        for i, layer in enumerate(layers):
            d = dict(layer)
            name = str(d.pop("name", i))
            idx = int(d.pop("layer", i))
            layer_rows.append((key, epoch, idx, name, _dumps(d)))
        hist_rows = []
        for i, h in enumerate(histograms):
            try:
                edges, counts = list(h["edges"]), list(h["counts"])
            except KeyError as exc:
                raise InitlabError(f"a histogram needs 'edges' and 'counts', missing {exc.args[0]!r}") from None
            if len(edges) != len(counts) + 1:
                raise InitlabError(
                    f"histogram {h.get('name', i)!r}: {len(edges)} edges for {len(counts)} counts; "
                    f"need one edge more than counts"
                )
            hist_rows.append((key, epoch, int(h.get("layer", i)), str(h.get("kind", "weight")),
                              str(h.get("name", i)), _dumps(edges), _dumps(counts)))
        with self._tx() as c:
            self._require(c, key, ("running",))
            try:
                c.execute(
                    "INSERT INTO epochs (cell, epoch, train_loss, train_acc, val_loss, val_acc, "
                    "wall, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (key, epoch, *(_real(metrics.get(k)) for k in EPOCH_COLUMNS),
                     _dumps(extra) if extra else None),
                )
                c.executemany("INSERT INTO layer_stats VALUES (?, ?, ?, ?, ?)", layer_rows)
                c.executemany("INSERT INTO histograms VALUES (?, ?, ?, ?, ?, ?, ?)", hist_rows)
                self._insert_steps(c, key, steps)
            except sqlite3.IntegrityError as exc:
                raise InitlabError(
                    f"epoch {epoch} of cell {key} is already (partly) recorded ({exc}); "
                    f"each epoch, layer and step is recorded once"
                ) from None

    def _insert_steps(self, c: sqlite3.Connection, key: str, steps: Sequence[Mapping[str, Any]]) -> None:
        rows = []
        for s in steps:
            d = dict(s)
            try:
                step = int(d.pop("step"))
            except KeyError:
                raise InitlabError("a step record needs a 'step' number") from None
            epoch = d.pop("epoch", None)
            loss, acc = d.pop("loss", None), d.pop("acc", d.pop("accuracy", None))
            rows.append((key, step, epoch, _real(loss), _real(acc), _dumps(d) if d else None))
        c.executemany("INSERT INTO steps VALUES (?, ?, ?, ?, ?, ?)", rows)

    def record_steps(self, key: str, steps: Sequence[Mapping[str, Any]]) -> None:
        """Step-level training records of a running cell: dicts with ``step`` (global
        optimizer step), optionally ``epoch``, ``loss``, ``acc`` (or ``accuracy``); other
        keys are kept as JSON."""
        with self._tx() as c:
            self._require(c, key, ("running",))
            try:
                self._insert_steps(c, key, steps)
            except sqlite3.IntegrityError as exc:
                raise InitlabError(f"a step of cell {key} is already recorded ({exc})") from None

    def record_event(
        self,
        key: str,
        kind: str,
        *,
        epoch: int | None = None,
        step: int | None = None,
        detail: Any = None,
    ) -> None:
        """An event of a running cell (e.g. ``kind="diverged"``), with JSON-able detail."""
        with self._tx() as c:
            self._require(c, key, ("running",))
            seq = c.execute("SELECT coalesce(max(seq), -1) + 1 FROM events WHERE cell=?", (key,)).fetchone()[0]
            c.execute(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
                (key, seq, kind, epoch, step, None if detail is None else _dumps(detail)),
            )

    # -- meta ----------------------------------------------------------------------------

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON-able run-info value (device, wall time, ...) under ``key``."""
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, _dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else self._json(row[0])

    def meta(self) -> dict[str, Any]:
        return {k: self._json(v) for k, v in self._conn.execute("SELECT key, value FROM meta ORDER BY key")}

    # -- reading results -------------------------------------------------------------------

    def epochs(self, key: str | None = None) -> list[dict[str, Any]]:
        """Epoch rows (``cell``, ``epoch``, metrics, ``extra`` merged in), by cell order
        then epoch. Missing metrics are NaN."""
        sql = ("SELECT e.cell, e.epoch, e.train_loss, e.train_acc, e.val_loss, e.val_acc, e.wall, "
               "e.extra FROM epochs e JOIN cells c ON c.key = e.cell")
        args: tuple[Any, ...] = ()
        if key is not None:
            sql, args = sql + " WHERE e.cell = ?", (key,)
        out = []
        for r in self._conn.execute(sql + " ORDER BY c.idx, e.epoch", args):
            d = {"cell": r[0], "epoch": r[1]}
            d.update({k: _nan(v) for k, v in zip(EPOCH_COLUMNS, r[2:7])})
            d.update(self._json(r[7]) or {})
            out.append(d)
        return out

    def steps(self, key: str) -> list[dict[str, Any]]:
        out = []
        for step, epoch, loss, acc, extra in self._conn.execute(
            "SELECT step, epoch, loss, acc, extra FROM steps WHERE cell=? ORDER BY step", (key,)
        ):
            d = {"step": step, "epoch": epoch, "loss": _nan(loss), "acc": _nan(acc)}
            d.update(self._json(extra) or {})
            out.append(d)
        return out

    def layer_stats(self, key: str, epoch: int | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT epoch, layer, name, stats FROM layer_stats WHERE cell=?", [key]
        if epoch is not None:
            sql += " AND epoch=?"
            args.append(epoch)
        return [
            {"epoch": e, "layer": layer, "name": name, **self._json(stats)}
            for e, layer, name, stats in self._conn.execute(sql + " ORDER BY epoch, layer", args)
        ]

    def histograms(self, key: str, epoch: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT epoch, layer, kind, name, edges, counts FROM histograms WHERE cell=?"
        args: list[Any] = [key]
        if epoch is not None:
            sql += " AND epoch=?"
            args.append(epoch)
        return [
            {"epoch": e, "layer": layer, "kind": kind, "name": name,
             "edges": self._json(edges), "counts": self._json(counts)}
            for e, layer, kind, name, edges, counts in
            self._conn.execute(sql + " ORDER BY epoch, layer, kind", args)
        ]

    def events(self, key: str | None = None) -> list[dict[str, Any]]:
        sql = ("SELECT ev.cell, ev.seq, ev.kind, ev.epoch, ev.step, ev.detail FROM events ev "
               "JOIN cells c ON c.key = ev.cell")
        args: tuple[Any, ...] = ()
        if key is not None:
            sql, args = sql + " WHERE ev.cell = ?", (key,)
        return [
            {"cell": r[0], "seq": r[1], "kind": r[2], "epoch": r[3], "step": r[4], "detail": self._json(r[5])}
            for r in self._conn.execute(sql + " ORDER BY c.idx, ev.seq", args)
        ]

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check`` (``"ok"`` for a sound file)."""
        return str(self._conn.execute("PRAGMA integrity_check").fetchone()[0])
