"""The cards that exist: one module per card in :mod:`initlab.papers.cards`, each with a
module-level ``CARD`` (:class:`~initlab.papers.card.Card`).

Adding a card is adding one file ``initlab/papers/cards/<name>.py``; the registry finds it
(:func:`pkgutil.iter_modules`), so ``initlab paper --list`` lists exactly the cards there
are. Cards are ordered by ``Card.order``, then name.
"""

from __future__ import annotations

import importlib
import pkgutil

from initlab.errors import UnknownNameError, suggest
from initlab.papers.card import Card

__all__ = ["card_names", "get_card", "all_cards"]

_CACHE: dict[str, Card] = {}


def all_cards() -> list[Card]:
    """Every card, in their order."""
    if not _CACHE:
        from initlab.papers import cards as package

        found: dict[str, Card] = {}
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            card = getattr(module, "CARD", None)
            if isinstance(card, Card):
                found[card.name] = card
        _CACHE.update(sorted(found.items(), key=lambda kv: (kv[1].order, kv[0])))
    return list(_CACHE.values())


def card_names() -> list[str]:
    return [c.name for c in all_cards()]


def get_card(name: str) -> Card:
    """The card called *name* (``UnknownNameError`` with the nearest names otherwise)."""
    for card in all_cards():
        if card.name == name:
            return card
    names = card_names()
    raise UnknownNameError(f"unknown paper card {name!r}{suggest(name, names)}; "
                           f"choose from {', '.join(names)} or 'all' (initlab paper --list)")
