"""Paper cards: the classic results of initialization, reproduced at a small scale and
checked against a criterion written before running.

>>> from initlab import papers
>>> papers.card_names()[:3]
['article', 'he2015', 'glorot2010']
>>> result = papers.run_card("pennington2017", quick=True)      # doctest: +SKIP
>>> result.verdict, result.ours                                 # doctest: +SKIP

Modules: :mod:`~initlab.papers.card` (Card, Check, CardResult, verdicts),
:mod:`~initlab.papers.context` (a card's studies and figures), :mod:`~initlab.papers.registry`
(the cards that exist: one file each in :mod:`initlab.papers.cards`),
:mod:`~initlab.papers.page` (the "Paper cards" report page), :mod:`~initlab.papers.table`.

Layering: above :mod:`initlab.report` (the page uses its HTML and figure helpers), below
:mod:`initlab.cli`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from initlab.papers.card import VERDICTS, Card, CardResult, Check, Measured, Spread, spread
from initlab.papers.registry import all_cards, card_names, get_card

__all__ = ["VERDICTS", "Card", "CardResult", "Check", "Measured", "Spread", "all_cards", "card_names",
           "get_card", "resolve", "run_card", "run_cards", "spread"]


def resolve(names: Sequence[str]) -> list[Card]:
    """The cards named (``"all"`` or no names: every card), in the given order, once each."""
    if not names or "all" in names:
        return all_cards()
    out: list[Card] = []
    for n in names:
        card = get_card(n)
        if card not in out:
            out.append(card)
    return out


def run_card(name: str, *, quick: bool = False, out: str | Path | None = None, device: str = "cpu",
             data_dir: str | Path | None = None) -> CardResult:
    """Run one card (:meth:`Card.run`)."""
    return get_card(name).run(quick=quick, out=out, device=device, data_dir=data_dir)


def run_cards(names: Sequence[str] = (), *, quick: bool = False, out: str | Path | None = None,
              device: str = "cpu", data_dir: str | Path | None = None,
              on_result: Callable[[CardResult], None] | None = None) -> list[CardResult]:
    """Run the named cards (all by default) one after the other."""
    results = []
    for card in resolve(names):
        r = card.run(quick=quick, out=out, device=device, data_dir=data_dir)
        if on_result is not None:
            on_result(r)
        results.append(r)
    return results
