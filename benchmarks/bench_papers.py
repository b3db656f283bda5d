"""Benchmark: each paper card's time against its budget.

Budgets (the paper-card specification): a card at most 600 s on 2 CPU cores, its ``--quick``
version at most 60 s. Each card runs as its own process (``initlab paper NAME [--quick]
--out DIR --json``), so one card's crash or memory does not touch the next; the table gives
the wall time, the CPU time (user + system of the child: the part of the wall time that is
the card's own work, which another process's load does not inflate) and the load average
when the card started, and the exit status is 1 when a card is over its budget or fails to
run. The verdicts themselves are the cards' business (``results.json`` in each card's
folder), not this benchmark's.

    python benchmarks/bench_papers.py --quick                 # all cards, quick versions
    python benchmarks/bench_papers.py he2015 article          # two cards at full size
    python benchmarks/bench_papers.py --quick --json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUICK_BUDGET_S = 60.0
FULL_BUDGET_S = 600.0


def _cards() -> list[str]:
    from initlab import papers

    return [c.name for c in papers.all_cards()]


def run_card(name: str, quick: bool, out: Path) -> dict:
    """Run one card in a child process; its wall and CPU seconds and exit status."""
    cmd = [sys.executable, "-m", "initlab", "paper", name, "--out", str(out / name), "--json"]
    if quick:
        cmd.insert(5, "--quick")
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read() if proc.stderr else ""
    rc = os.waitstatus_to_exitcode(status)
    budget = QUICK_BUDGET_S if quick else FULL_BUDGET_S
    return {"card": name, "quick": quick, "rc": rc, "wall_s": round(wall, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1), "load_at_start": round(load, 2),
            "budget_s": budget, "within_budget": rc == 0 and wall <= budget,
            "error": err.strip().splitlines()[-1] if rc != 0 and err.strip() else ""}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cards", nargs="*", help="card names (default: all)")
    ap.add_argument("--quick", action="store_true", help="the quick versions (budget 60 s)")
    ap.add_argument("--out", type=Path, default=None, help="where the cards write (default: a temp dir)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    known = _cards()
    names = args.cards or known
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"bench_papers: unknown card {unknown[0]!r}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-papers-"))
    rows = [run_card(n, args.quick, out) for n in names]
    if args.json:
        print(json.dumps({"rows": rows, "threads": os.environ.get("OMP_NUM_THREADS", "default")}, indent=1))
    else:
        print(f"{'card':<16}{'wall s':>8}{'cpu s':>8}{'load':>7}{'budget':>8}  within")
        for r in rows:
            flag = "yes" if r["within_budget"] else ("NO" if r["rc"] == 0 else f"rc {r['rc']}: {r['error']}")
            print(f"{r['card']:<16}{r['wall_s']:>8}{r['cpu_s']:>8}{r['load_at_start']:>7}{r['budget_s']:>8.0f}  {flag}")
    return 0 if all(r["within_budget"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
