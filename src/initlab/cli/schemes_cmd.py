"""``initlab schemes [NAME] [--fan-in N --fan-out M] [--json]``: list or explain schemes."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from initlab.errors import InitlabError
from initlab.schemes import entry, get_scheme, scheme_names
from initlab.schemes.registry import entry_aliases


def add_parser(sub: Any) -> None:
    p = sub.add_parser("schemes", help="list the initialization schemes, or explain one",
                       description="List every scheme (name, aliases, formula, std for a layer), "
                                   "or explain one for given fans.")
    p.add_argument("name", nargs="?", help="a scheme name, alias or spec, e.g. he_normal or 'uniform(a=-1,b=1)'")
    p.add_argument("--fan-in", type=int, default=784, help="fan_in of the example layer (default 784)")
    p.add_argument("--fan-out", type=int, default=256, help="fan_out of the example layer (default 256)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def describe(spec: str, fan_in: int, fan_out: int) -> dict[str, Any]:
    """Everything initlab knows about *spec* for a (fan_out, fan_in) Linear weight."""
    s = get_scheme(spec)
    e = entry(s.name)
    shape = (fan_out, fan_in)
    row: dict[str, Any] = {
        "name": s.name, "spec": s.spec, "aliases": entry_aliases(e), "group": e.group,
        "formula": s.formula, "source": s.source, "params": s.params, "bias": s.bias,
        "requires_data": s.requires_data, "fan_in": fan_in, "fan_out": fan_out,
        "model_level": bool(getattr(s, "model_level", False)),
    }
    try:
        law = s.law(shape)
        row.update(family=law.family, mean=law.mean, std=law.std, law=law.describe())
    except InitlabError as exc:  # e.g. dirac on a 2-d weight
        row.update(family=None, mean=None, std=None, law=f"n/a: {exc}")
    for k in ("mean", "std"):
        if isinstance(row[k], float) and math.isnan(row[k]):
            row[k] = None
    row["note"] = e.note
    return row


def _same_law_as(row: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    if row["std"] is None:
        return []
    return [r["name"] for r in rows if r["name"] != row["name"] and r["law"] == row["law"]]


def run(args: argparse.Namespace) -> int:
    if args.fan_in < 1 or args.fan_out < 1:
        raise InitlabError(f"--fan-in and --fan-out must be >= 1, got {args.fan_in} and {args.fan_out}")
    if args.name:
        row = describe(args.name, args.fan_in, args.fan_out)
        everyone = [describe(n, args.fan_in, args.fan_out) for n in scheme_names()]
        row["same_law_as"] = _same_law_as(row, everyone)
        if args.json:
            print(json.dumps(row, indent=2, default=str))
            return 0
        print(f"{row['spec']}  [{row['group']}]")
        print(f"  aliases : {', '.join(row['aliases']) or '-'}")
        print(f"  formula : {row['formula']}")
        print(f"  source  : {row['source']}")
        print(f"  bias    : {row['bias']}")
        if row["requires_data"]:
            print("  needs   : a data batch (initlab.apply(..., data=batch))")
        if row["model_level"]:
            needs = getattr(get_scheme(args.name), "needs_text", None) or (
                "the model's residual branches" if getattr(get_scheme(args.name), "needs_branches", False)
                else "nothing, but zeroes residual branches' last layers where the model has them")
            print(f"  needs   : {needs} (model-level: each layer's law is its role's; see initlab.structure)")
        print(f"  for a {args.fan_in}->{args.fan_out} layer: {row['law']}")
        if row["std"] is not None:
            print(f"    mean {row['mean']:.6g}, std {row['std']:.6g}")
        if row["same_law_as"]:
            print(f"  same law as: {', '.join(row['same_law_as'])}")
        if row["note"]:
            print(f"  note    : {row['note']}")
        return 0
    rows = [describe(n, args.fan_in, args.fan_out) for n in scheme_names()]
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    print(f"{len(rows)} schemes; std for a {args.fan_in}->{args.fan_out} Linear weight. "
          "'initlab schemes NAME' explains one.")
    print(f"{'name':<24} {'std':>9}  {'aliases':<44} formula")
    for r in rows:
        std = "data" if r["requires_data"] else ("-" if r["std"] is None else f"{r['std']:.4f}")
        aliases = ", ".join(r["aliases"])
        if len(aliases) > 44:
            aliases = aliases[:41] + "..."
        print(f"{r['name']:<24} {std:>9}  {aliases:<44} {r['formula']}")
    return 0
