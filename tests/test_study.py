"""Cells, grids, grouping, overrides and presets (initlab.study.cell/config/presets)."""

from __future__ import annotations

import hashlib
import json

import pytest

from initlab.engine.config import TrainConfig
from initlab.engine.models import MLPSpec
from initlab.errors import InitlabError, UnknownNameError
from initlab.schemes import get_scheme
from initlab.study import (
    ARTICLE_SCHEMES,
    Cell,
    Study,
    StudyConfig,
    get_preset,
    group_cells,
    preset_names,
    split_scheme_list,
)
from initlab.study.config import EXECUTION_FIELDS, train_fields


def _cell(**changes: object) -> Cell:
    base = dict(dataset="fashion-mnist", validation="test", limit_train=None, limit_val=None,
                model=MLPSpec().to_dict(), scheme="he_normal", seed=0, train={"epochs": 2, "lr": 1e-3})
    base.update(changes)
    return Cell(**base)  # type: ignore[arg-type]


def test_cell_roundtrips_through_json() -> None:
    c = _cell(limit_train=100, validation=0.1)
    back = Cell.from_dict(json.loads(json.dumps(c.to_dict())))
    assert back == c and back.key == c.key
    assert back.to_dict() == c.to_dict()


def test_cell_key_is_sha256_of_canonical_json() -> None:
    c = _cell()
    text = json.dumps(c.to_dict(), sort_keys=True, separators=(",", ":"))
    assert c.key == hashlib.sha256(text.encode()).hexdigest()[:16]


def test_cell_key_ignores_dict_order_and_tuple_vs_list() -> None:
    m = MLPSpec().to_dict()
    reordered = dict(reversed(list(m.items())))
    reordered["hidden"] = tuple(m["hidden"])
    assert _cell(model=m).key == _cell(model=reordered).key
    assert _cell(train={"lr": 1e-3, "epochs": 2}).key == _cell().key


@pytest.mark.parametrize("field,value", [
    ("dataset", "mnist"), ("validation", 0.2), ("limit_train", 5), ("limit_val", 7),
    ("model", MLPSpec(hidden=(64,)).to_dict()), ("scheme", "zeros"), ("seed", 1),
    ("train", {"epochs": 3, "lr": 1e-3}),
])
def test_cell_key_changes_with_every_field(field: str, value: object) -> None:
    assert _cell(**{field: value}).key != _cell().key


def test_cell_is_immutable_copy_of_its_inputs() -> None:
    model = MLPSpec().to_dict()
    c = _cell(model=model)
    key = c.key
    model["hidden"].append(5)
    c.to_dict()["model"]["hidden"].append(9)
    assert c.key == key and c.model["hidden"] == [256, 128]


@pytest.mark.parametrize("changes", [
    {"seed": -1}, {"seed": True}, {"scheme": ""}, {"dataset": ""}, {"limit_train": 0},
    {"limit_val": 2.5}, {"train": {"lr": float("nan")}},
])
def test_cell_rejects_bad_fields(changes: dict) -> None:
    with pytest.raises(InitlabError):
        _cell(**changes).key


def test_cell_from_dict_rejects_unknown_and_missing_fields() -> None:
    d = _cell().to_dict()
    with pytest.raises(InitlabError, match="unknown"):
        Cell.from_dict({**d, "colour": "red"})
    del d["seed"]
    with pytest.raises(InitlabError, match="missing"):
        Cell.from_dict(d)


def test_grid_expansion_is_the_full_product_in_order() -> None:
    models = (MLPSpec(hidden=(32,)), MLPSpec(hidden=(16, 16), activation="tanh"))
    cfg = StudyConfig(name="g", schemes=("zeros", "he_normal", "ones"), seeds=(3, 1),
                      models=models, datasets=("fashion-mnist", "mnist"), train={"epochs": 1})
    study = cfg.expand()
    assert len(study) == cfg.n_cells == 3 * 2 * 2 * 2
    expected = [(d, m.label, s, seed) for d in cfg.datasets for m in models
                for s in cfg.schemes for seed in (3, 1)]
    assert [(c.dataset, c.model_label, c.scheme, c.seed) for c in study.cells] == expected
    assert len({c.key for c in study.cells}) == len(study)
    assert study.config == cfg.to_dict()


def test_groups_share_dataset_model_and_training() -> None:
    cfg = StudyConfig(schemes=("zeros", "he_normal"), seeds=3,
                      models=(MLPSpec(hidden=(32,)), MLPSpec(hidden=(64,))),
                      datasets=("fashion-mnist", "mnist"), train={"epochs": 1})
    groups = cfg.expand().groups()
    assert len(groups) == 4
    for g in groups:
        assert len(g) == 6
        assert len({(c.dataset, json.dumps(c.model), json.dumps(c.train)) for c in g}) == 1
        assert {(c.scheme, c.seed) for c in g} == {(s, i) for s in ("zeros", "he_normal") for i in range(3)}
    assert [c for g in groups for c in g] == list(cfg.expand().cells)  # grid order is group order


def test_group_cells_respects_max_size_and_order() -> None:
    a = [_cell(seed=i) for i in range(5)]
    b = [_cell(seed=i, dataset="mnist") for i in range(2)]
    mixed = [a[0], b[0], a[1], a[2], b[1], a[3], a[4]]
    groups = group_cells(mixed, max_size=2)
    assert groups == [tuple(a[0:2]), tuple(a[2:4]), (a[4],), tuple(b)]
    with pytest.raises(InitlabError):
        group_cells(mixed, max_size=0)


def test_study_rejects_duplicates_and_empty() -> None:
    with pytest.raises(InitlabError, match="twice"):
        Study("s", (_cell(), _cell()))
    with pytest.raises(InitlabError, match="no cells"):
        Study("s", ())


def test_study_fingerprint_ignores_order_and_name() -> None:
    cells = tuple(_cell(seed=i) for i in range(3))
    assert Study("a", cells).fingerprint == Study("b", cells[::-1]).fingerprint
    assert Study("a", cells).fingerprint != Study("a", cells[:2]).fingerprint
    s = Study("a", cells, {"x": 1})
    back = Study.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back.cells == s.cells and back.config == {"x": 1} and back.name == "a"


def test_config_canonicalizes_schemes_and_datasets() -> None:
    cfg = StudyConfig(schemes=("He-Normal", "uniform(b=0.5, a=-0.5)"), datasets=("Fashion_MNIST",))
    assert cfg.schemes == ("he_normal", "uniform(a=-0.5, b=0.5)")
    assert cfg.datasets == ("fashion-mnist",)
    with pytest.raises(InitlabError, match="twice"):
        StudyConfig(schemes=("he_normal", "he-normal"))
    with pytest.raises(UnknownNameError, match="he_normal"):
        StudyConfig(schemes=("he_norml",))


def test_config_train_settings_follow_trainconfig() -> None:
    cfg = StudyConfig(train={"epochs": 4, "lr": 0.01})
    # every setting, but those added later at their defaults (Adam, fp32): see TrainConfig.to_dict
    later = {"optimizer", "momentum", "nesterov", "weight_decay", "schedule", "gamma", "step_epochs",
             "warmup_epochs", "standardize", "precision"}
    assert set(cfg.train) == set(train_fields()) - later
    sgd = StudyConfig(train={"optimizer": "sgd", "momentum": 0.9, "schedule": "cosine"})
    assert set(sgd.train) == set(train_fields()) - later | {"optimizer", "momentum", "schedule"}
    assert not set(EXECUTION_FIELDS) & set(cfg.train)
    assert TrainConfig.from_dict({**cfg.train, "device": "cpu"}).lr == 0.01
    assert cfg.epochs == 4
    with pytest.raises(InitlabError, match="device"):
        StudyConfig(train={"device": "cpu"})
    with pytest.raises(InitlabError):
        StudyConfig(train={"epochs": 0})
    with pytest.raises(InitlabError):
        StudyConfig(train={"batch_size": -3})


@pytest.mark.parametrize("kw", [
    {"seeds": 0}, {"seeds": [1, 1]}, {"seeds": [-1]}, {"seeds": "3"}, {"seeds": []},
    {"validation": 1.5}, {"validation": "train"}, {"limit_train": 0}, {"limit_val": -5},
    {"schemes": ()}, {"models": ()}, {"datasets": ("cifar",)}, {"name": " "},
    {"models": (MLPSpec(hidden=(8,)), MLPSpec(hidden=(8,), dropout=0.2))},
])
def test_config_rejects_bad_values(kw: dict) -> None:
    with pytest.raises(InitlabError):
        StudyConfig(**kw)


def test_overrides_from_the_command_line() -> None:
    cfg = get_preset("seed")
    new = cfg.with_overrides(seeds=5, epochs=2, schemes="zeros, uniform(a=-1, b=1),he_normal")
    assert new.seeds == (0, 1, 2, 3, 4)
    assert new.epochs == 2 and new.train["batch_size"] == 128
    assert new.schemes == ("zeros", get_scheme("uniform(a=-1, b=1)").spec, "he_normal")
    assert new.models == cfg.models
    assert cfg.with_overrides() == cfg
    assert len(new.expand()) == 15
    with pytest.raises(InitlabError):
        cfg.with_overrides(epochs=0)
    with pytest.raises(InitlabError):
        cfg.with_overrides(seeds=0)


def test_split_scheme_list() -> None:
    assert split_scheme_list("a,b(x=1, y=2), c") == ["a", "b(x=1, y=2)", "c"]
    for bad in ("a,,b", "a,b(", ""):
        with pytest.raises(InitlabError):
            split_scheme_list(bad)


def test_seed_preset_is_the_article() -> None:
    cfg = get_preset("seed")
    assert cfg.schemes == ARTICLE_SCHEMES
    assert cfg.seeds == (0, 1, 2)
    assert cfg.models == (MLPSpec(),) and cfg.models[0].widths == (784, 256, 128, 10)
    assert cfg.datasets == ("fashion-mnist",) and cfg.validation == "test"
    assert (cfg.epochs, cfg.train["batch_size"], cfg.train["lr"], cfg.train["eps"]) == (10, 128, 1e-3, 1e-7)
    study = cfg.expand()
    assert len(study) == 21 and len(study.groups()) == 1


def test_deep_preset() -> None:
    cfg = get_preset("deep")
    assert cfg.schemes == ARTICLE_SCHEMES + ("he_normal", "lecun_normal", "orthogonal", "lsuv")
    (model,) = cfg.models
    assert model.hidden == (256,) * 20 and model.activation == "relu" and model.dropout == 0.2
    assert len(cfg.expand()) == 33


def test_presets_are_fresh_and_named() -> None:
    assert {"seed", "deep", "smoke"} <= set(preset_names())
    for name in preset_names():
        assert get_preset(name).name == name
    with pytest.raises(UnknownNameError, match="deep"):
        get_preset("dep")


def test_cell_keys_of_the_presets_do_not_change_between_versions() -> None:
    """A run directory of an earlier initlab resumes only if its cells keep their keys:
    settings added later (the optimizer's) must not enter the keys at their defaults."""
    from initlab.study import get_preset

    assert get_preset("seed").expand().fingerprint == "bb65a3d9e56db723"
    assert get_preset("seed").expand().cells[0].key == "1edcd5aaffbdb5e1"
    assert get_preset("deep").expand().fingerprint == "f581246e21d0e31c"
