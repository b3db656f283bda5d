"""``initlab paper``: the classic results of initialization, reproduced and checked.

    initlab paper --list
    initlab paper all                       # every card at full size (minutes each on a laptop CPU)
    initlab paper he2015 saxe2014 --quick   # small versions (seconds; some checks not judged)
    initlab paper all --out papers/ --json  # results.json, figures/, papers.html

Prints one table (card, claim, paper's value, ours, verdict) or, with ``--json``, the
:class:`~initlab.papers.CardResult` s. ``--out DIR`` writes ``results.json``, the figures
and the "Paper cards" report page ``papers.html``. Exit status 0 whatever the verdicts (a
failing card is a result, not an error); 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("paper", help="reproduce the classic results of initialization (paper cards)",
                       description="Run paper cards: each reproduces a classic result of initialization at a "
                                   "small scale and checks it against a criterion written before running.")
    p.add_argument("names", nargs="*", metavar="NAME", help="cards to run, or 'all' (default: all)")
    p.add_argument("--list", action="store_true", help="list the cards and exit")
    p.add_argument("--quick", action="store_true", help="the small version of each card (seconds)")
    p.add_argument("--out", metavar="DIR", help="write results.json, figures/ and papers.html into DIR")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--device", default="cpu", help="torch device for training (default cpu)")
    p.add_argument("--data-dir", help="data root holding fashion-mnist/ (else $INITLAB_DATA_DIR or the cache)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from initlab import papers
    from initlab.errors import InitlabError
    from initlab.outputs import check_output_dir
    from initlab.papers.table import list_table, render_table, results_json

    if args.list:
        if args.names:
            raise InitlabError("--list takes no card names; run 'initlab paper --list' alone")
        print(list_table(papers.all_cards()))
        return 0
    cards = papers.resolve(args.names)  # unknown names fail here, before anything runs
    out = check_output_dir(args.out, "--out") if args.out else None
    if out is not None:  # create it now, so that an unwritable place fails before any card runs
        try:
            (out / "figures").mkdir(parents=True, exist_ok=True)
            probe = out / ".initlab-paper-write-test"
            probe.write_text("", encoding="utf-8")
            probe.unlink()
        except OSError as exc:
            raise InitlabError(f"--out {str(out)!r} cannot be written ({exc.strerror or exc}); "
                               "give a directory you may write into") from None
    from initlab.study.session import check_device

    check_device(args.device)
    results = []
    for card in cards:
        if not args.json:
            print(f"paper: running {card.name}{' (quick)' if args.quick else ''} ...", file=sys.stderr, flush=True)
        results.append(card.run(quick=args.quick, out=out, device=args.device, data_dir=args.data_dir))
    if out is not None:
        from initlab.papers.page import build_page

        out.mkdir(parents=True, exist_ok=True)
        (Path(out) / "results.json").write_text(results_json(results) + "\n", encoding="utf-8")
        page = build_page(results, out)
        if not args.json:
            print(f"paper: wrote {out / 'results.json'} and {page}", file=sys.stderr)
    print(results_json(results) if args.json else render_table(results))
    return 0
