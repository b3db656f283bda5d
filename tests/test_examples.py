"""Every example spec in examples/ parses into a study."""

from pathlib import Path

import pytest

from initlab import plugins
from initlab.schemes import registry
from initlab.study import load_spec


@pytest.fixture(autouse=True)
def own_registry(monkeypatch):
    """A spec's plugins register into a copy of the registry, not the other tests'."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))
    monkeypatch.setattr(plugins, "_LOADED", {})

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.toml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_spec_expands(path: Path) -> None:
    study = load_spec(path).expand()
    assert len(study.cells) > 0
    assert len({c.key for c in study.cells}) == len(study.cells)


def test_examples_exist() -> None:
    assert len(EXAMPLES) >= 2
