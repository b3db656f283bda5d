"""Migrations of older results stores to the current schema (:mod:`initlab.study.store`).

:func:`migrate` runs inside the caller's transaction: opening an older store for writing
migrates the file in one ``BEGIN IMMEDIATE ... COMMIT`` (a kill on the way leaves the old
store as it was), and opening it read-only migrates an in-memory copy (the file is not
changed), so ``initlab summary``, ``report`` and ``export`` read old run directories too.

Version 1 (initlab before the one record vocabulary) to 2:

* ``epochs(.., wall, extra {step, batch_models, diverged})`` -> ``epochs`` with the
  :class:`~initlab.records.EpochRecord` columns (``wall_s``, ``step``, ``batch_models``,
  ``diverged``, ``model``);
* ``layer_stats`` (JSON ``{weight: {..., tensor}, bias: {...}, activation: {...}}``) and
  ``histograms`` -> ``param_stats`` (one :class:`~initlab.records.ParamStats` per tensor,
  its histogram included) and ``activation_stats``;
* ``steps(.., acc, extra {steps, samples})`` -> ``steps`` with ``accuracy``, ``steps``,
  ``samples``, ``model``;
* ``events`` of kind ``diverged`` -> ``divergences``; ``cells.diverged_epoch`` and
  ``diverged_step`` are dropped (the divergence is that row);
* ``cells.init`` (apply's report re-serialized by hand) -> ``init_reports`` as
  ``InitReport.to_dict()``; version 1 did not check the weights at init, so
  ``init_checks`` stays empty for those cells;
* the meta blobs ``probes`` / ``probe_errors`` -> the ``probes`` / ``probe_errors`` tables.

Version 1 did not store the ``model`` of epoch and step records (the engine's index of
the model in the list it trained; its divergence events did): it becomes the cell's
position among the cells of its group in study order, which is the engine's index
unless ``--max-group`` split the group.
"""

from __future__ import annotations

import json
import math
import sqlite3
from typing import Any

from initlab.errors import InitlabError

__all__ = ["V1_TABLES", "migrate"]

#: The tables of a version-1 store.
V1_TABLES = ("schema_version", "meta", "study", "cells", "epochs", "steps", "layer_stats",
             "histograms", "events")

_NAN = math.nan


def _j(text: Any) -> Any:
    return None if text is None else json.loads(text)


def _d(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _real(v: Any) -> float | None:
    if v is None:
        return None
    x = float(v)
    return None if math.isnan(x) else x


def migrate(c: sqlite3.Connection, version: int, schema: list[str]) -> None:
    """Migrate the store on connection *c* from *version* to the current schema (*schema*:
    its ``CREATE TABLE`` statements), inside the caller's transaction."""
    if version == 1:
        _v1_to_v2(c, schema)
    else:  # pragma: no cover - only known versions reach here
        raise InitlabError(f"no migration from store schema version {version}; use the initlab "
                           f"version that wrote it")


def _v1_to_v2(c: sqlite3.Connection, schema: list[str]) -> None:
    def q(sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        cur = c.execute(sql, args)
        cur.row_factory = sqlite3.Row  # type: ignore[assignment]
        return cur.fetchall()

    # the engine's model index: the cell's rank among the cells of its group
    rank: dict[str, int] = {}
    seen: dict[str, int] = {}
    for r in q("SELECT key, grp FROM cells ORDER BY idx"):
        rank[r["key"]] = seen.get(r["grp"], 0)
        seen[r["grp"]] = rank[r["key"]] + 1
    old = {"epochs": q("SELECT * FROM epochs"), "steps": q("SELECT * FROM steps"),
           "layer_stats": q("SELECT * FROM layer_stats"), "histograms": q("SELECT * FROM histograms"),
           "events": q("SELECT * FROM events WHERE kind = 'diverged'"),
           "init": q("SELECT key, init FROM cells WHERE init IS NOT NULL")}
    probes, errors = (q("SELECT value FROM meta WHERE key = ?", (k,)) for k in ("probes", "probe_errors"))
    for table in ("epochs", "steps", "layer_stats", "histograms", "events"):
        c.execute(f"DROP TABLE {table}")
    for col in ("init", "diverged_epoch", "diverged_step"):
        c.execute(f"ALTER TABLE cells DROP COLUMN {col}")
    for stmt in schema:
        name = stmt.split("TABLE", 1)[1].split("(", 1)[0].strip()
        if name not in ("schema_version", "meta", "study", "cells"):
            c.execute(stmt)

    for r in old["epochs"]:
        extra = _j(r["extra"]) or {}
        c.execute("INSERT INTO epochs (cell, epoch, model, step, train_loss, train_acc, val_loss, "
                  "val_acc, wall_s, batch_models, diverged) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  (r["cell"], r["epoch"], rank.get(r["cell"], 0), int(extra.get("step", 0)),
                   r["train_loss"], r["train_acc"], r["val_loss"], r["val_acc"], r["wall"],
                   int(extra.get("batch_models", 1)), int(bool(extra.get("diverged", False)))))
    hists = {(h["cell"], h["epoch"], h["layer"], h["kind"]): h for h in old["histograms"]}
    for r in old["layer_stats"]:
        stats = _j(r["stats"]) or {}
        for param in ("weight", "bias"):
            p = stats.get(param)
            if not isinstance(p, dict):
                continue
            h = hists.get((r["cell"], r["epoch"], r["layer"], param))
            name = p.get("tensor") or (h["name"] if h is not None else f"layer{r['layer']}.{param}")
            c.execute("INSERT INTO param_stats (cell, epoch, layer, param, name, numel, mean, std, min, "
                      "max, frac_zero, nonfinite, quantiles, hist_edges, hist_counts) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (r["cell"], r["epoch"], r["layer"], param, str(name), int(p.get("numel", 0)),
                       *(_real(p.get(k)) for k in ("mean", "std", "min", "max", "frac_zero")),
                       int(p.get("nonfinite", 0)), _d(list(p.get("quantiles", []))),
                       h["edges"] if h is not None else "[]", h["counts"] if h is not None else "[]"))
        a = stats.get("activation")
        if isinstance(a, dict):
            c.execute("INSERT INTO activation_stats (cell, epoch, layer, pre_mean, pre_std, post_mean, "
                      "post_std, post_frac_zero, dead_units) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (r["cell"], r["epoch"], r["layer"],
                       *(_real(a.get(k)) for k in ("pre_mean", "pre_std", "post_mean", "post_std",
                                                   "post_frac_zero", "dead_units"))))
    for r in old["steps"]:
        extra = _j(r["extra"]) or {}
        c.execute("INSERT INTO steps (cell, step, model, epoch, steps, samples, loss, accuracy) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  (r["cell"], r["step"], rank.get(r["cell"], 0), int(r["epoch"] or 0),
                   int(extra.get("steps", 0)), int(extra.get("samples", 0)), r["loss"], r["acc"]))
    for r in old["events"]:
        d = _j(r["detail"]) or {}
        c.execute("INSERT OR IGNORE INTO divergences (cell, model, epoch, step, epoch_step, loss, reason) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)",
                  (r["cell"], int(d.get("model", rank.get(r["cell"], 0))), int(d.get("epoch", r["epoch"] or 0)),
                   int(d.get("step", r["step"] or 0)), int(d.get("epoch_step", 0)),
                   _real(d.get("loss")), str(d.get("reason", ""))))
    for r in old["init"]:
        rec = _j(r["init"]) or {}
        report = {
            "scheme": rec.get("scheme"), "seed": rec.get("seed"), "layers": list(rec.get("layers", [])),
            "unsupported": [{"name": u[0], "type": u[1], "reason": u[2]} for u in rec.get("unsupported", [])],
            "lsuv": list(rec.get("lsuv", [])),
        }
        c.execute("INSERT INTO init_reports (cell, scheme, seed, report) VALUES (?, ?, ?, ?)",
                  (r["key"], str(report["scheme"]), report["seed"], _d(report)))
    for rows, table in ((probes, "probes"), (errors, "probe_errors")):
        value = _j(rows[0]["value"]) if rows else None
        for model, inner in (value.items() if isinstance(value, dict) else ()):
            for dataset, entry in (inner.items() if isinstance(inner, dict) else ()):
                if table == "probes" and isinstance(entry, dict):
                    c.execute("INSERT INTO probes (model, dataset, seq, seed, result) VALUES (?, ?, 0, ?, ?)",
                              (model, dataset, int(entry.get("seed", 0)), _d(entry)))
                elif table == "probe_errors":
                    c.execute("INSERT INTO probe_errors (model, dataset, error) VALUES (?, ?, ?)",
                              (model, dataset, str(entry)))
    c.execute("DELETE FROM meta WHERE key IN ('probes', 'probe_errors')")
    c.execute("UPDATE schema_version SET version = 2")
