"""The paper cards, one module each (see :mod:`initlab.papers.registry`)."""
