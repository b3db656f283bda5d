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


RUN_EXAMPLES = ["cnn.toml", "resnet-nonorm.toml", "deep-linear.toml", "custom-model.toml", "lr-sweep.toml"]


@pytest.mark.data
@pytest.mark.parametrize("name", RUN_EXAMPLES)
def test_example_runs_end_to_end_and_reports(name: str, tmp_path: Path, capsys) -> None:
    """Each family's example trains on a slice of Fashion-MNIST, and its report renders."""
    from initlab.cli import main
    from initlab.study import Store

    path = Path(__file__).parent.parent / "examples" / name
    out = tmp_path / "run"
    rc = main(["run", str(path), "--out", str(out), "--seeds", "1", "--epochs", "1",
               "--limit-train", "128", "--limit-val", "64", "--quiet", "--no-probe"])
    assert rc == 0
    study = load_spec(path).with_overrides(seeds=1, epochs=1)
    with Store.open(out, readonly=True) as store:
        statuses = [getattr(c.status, "value", c.status) for c in store.cells()]
    assert len(statuses) == study.n_cells and set(statuses) <= {"done", "diverged"}
    html = (out / "report.html").read_text()
    for model in study.models:
        assert model.label in html
    if name == "custom-model.toml":  # BatchNorm: one by one, and the run log says so
        assert "one by one" in capsys.readouterr().err
