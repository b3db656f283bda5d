"""Grid axes: lists in [train] (and [model]) and [[train]] variants expand the study."""

from __future__ import annotations

import pytest

from initlab.errors import InitlabError
from initlab.study import StudyConfig, get_preset, parse_spec
from initlab.study.axes import expand_axes, study_axes

ONE = {"seeds": 1, "schemes": ["he_normal"]}


def test_expand_axes_is_the_product_in_key_order() -> None:
    out = expand_axes({"a": [1, 2], "b": "x", "c": [3, 4]}, lambda k: False)
    assert out == [{"a": 1, "b": "x", "c": 3}, {"a": 1, "b": "x", "c": 4},
                   {"a": 2, "b": "x", "c": 3}, {"a": 2, "b": "x", "c": 4}]
    # a list-valued setting is an axis only as a list of lists
    assert expand_axes({"betas": [0.9, 0.99]}, lambda k: True) == [{"betas": [0.9, 0.99]}]
    assert len(expand_axes({"betas": [[0.9, 0.99], [0.8, 0.9]]}, lambda k: True)) == 2


def test_train_lists_are_axes_and_cells_cover_the_grid() -> None:
    c = StudyConfig(train={"lr": [0.001, 0.01, 0.1], "batch_size": [64, 128]}, **ONE)
    assert c.n_cells == 6 == len(c.cells())
    assert [(t["lr"], t["batch_size"]) for t in c.trains] == [
        (0.001, 64), (0.001, 128), (0.01, 64), (0.01, 128), (0.1, 64), (0.1, 128)]
    # each train setting is its own group: cells of one group agree on their settings
    groups = c.expand().groups()
    assert len(groups) == 6 and all(len({g.group for g in grp}) == 1 for grp in groups)
    assert StudyConfig.from_dict(c.to_dict()).trains == c.trains


def test_train_variants_override_the_base_and_have_axes() -> None:
    c = StudyConfig(train={"epochs": 2, "batch_size": 64},
                    train_variants=({"lr": 0.001}, {"optimizer": "sgd", "momentum": 0.9, "lr": [0.01, 0.1]}),
                    **ONE)
    got = [(t["lr"], t.get("optimizer", "adam"), t["epochs"], t["batch_size"]) for t in c.trains]
    assert got == [(0.001, "adam", 2, 64), (0.01, "sgd", 2, 64), (0.1, "sgd", 2, 64)]
    assert [t["epochs"] for t in c.with_overrides(epochs=5).trains] == [5, 5, 5]
    assert StudyConfig.from_dict(c.to_dict()).trains == c.trains


def test_a_study_without_axes_keeps_its_cell_keys() -> None:
    seed = get_preset("seed")
    assert len(seed.trains) == 1 and seed.trains[0] == seed.train
    assert "train_variants" not in seed.to_dict()
    same = StudyConfig.from_dict({**seed.to_dict(), "train": {**seed.train, "lr": [seed.train["lr"]]}})
    assert [c.key for c in same.cells()] == [c.key for c in seed.cells()]


@pytest.mark.parametrize("train, variants, needle", [
    ({"lr": []}, (), "lr is an empty list"),
    ({"lr": [0.1, 0.1]}, (), "same settings"),
    ({"lr": [0.1, 0.0]}, (), "lr must be"),
    ({"optimizer": ["adam", "rmsprop"]}, (), "rmsprop"),
    ({"schedule": ["constant", "exp"]}, (), "exp"),
    ({}, ({"lr": 0.1}, {"lr": 0.1}), "same settings"),
    ({}, ({"lr": 0.1}, {"foo": 1}), "unknown training setting"),
    ({}, ({"momentum": 0.9},), "SGD setting"),
])
def test_bad_axes_are_one_line(train: dict, variants: tuple, needle: str) -> None:
    with pytest.raises(InitlabError, match=needle) as err:
        StudyConfig(train=train, train_variants=variants, **ONE)
    assert "\n" not in str(err.value)


def test_train_axes_and_variants_in_a_spec() -> None:
    text = """
[study]
seeds = 2
[schemes]
list = ["he_normal", "glorot_normal"]
[[train]]
lr = 0.001
[[train]]
optimizer = "sgd"
momentum = 0.9
lr = [0.01, 0.1]
"""
    c = parse_spec(text, "grid.toml")
    assert c.n_cells == 2 * 2 * 3
    assert [(t["lr"], t.get("optimizer", "adam")) for t in c.trains] == [
        (0.001, "adam"), (0.01, "sgd"), (0.1, "sgd")]
    c2 = parse_spec("[train]\nlr = [0.001, 0.01]\nbetas = [[0.9, 0.999], [0.8, 0.99]]\n", "g.toml")
    assert len(c2.trains) == 4


@pytest.mark.parametrize("text, needle", [
    ("[train]\nlr = []\n", r"g\.toml:2: \[train\] lr: lr is an empty list"),
    ("[train]\nlr = [0.1, -1]\n", r"g\.toml:2: \[train\] lr: .*lr must be a finite number > 0"),
    ("[train]\noptimizer = ['adam', 'lion']\n", r"g\.toml:2: .*lion"),
    ("[[train]]\nlr = 0.1\n[[train]]\nmomentum = 0.9\n", r"g\.toml:3: \[\[train\]\] #2"),
    ("[[train]]\nfoo = 1\n", r"g\.toml:2: unknown key 'foo' in \[\[train\]\] #1"),
    ("[[train]]\nlr = 0.1\n[[train]]\nlr = 0.1\n", "same settings"),
])
def test_bad_axes_in_a_spec_are_located(text: str, needle: str) -> None:
    with pytest.raises(InitlabError, match=needle):
        parse_spec(text, "g.toml")


def test_study_axes_name_what_varies() -> None:
    c = StudyConfig(train={"lr": [0.001, 0.01]}, seeds=2, schemes=["he_normal", "zeros"])
    axes = {a.name: a.values for a in study_axes(c.cells())}
    assert axes == {"scheme": ("he_normal", "zeros"), "train.lr": (0.001, 0.01)}
    with_seed = {a.name for a in study_axes(c.cells(), include_seed=True)}
    assert with_seed == {"scheme", "train.lr", "seed"}
    # a setting left at its default still has a value on that axis
    v = StudyConfig(train_variants=({"lr": 0.001}, {"optimizer": "sgd", "lr": 0.01}), **ONE)
    axes = {a.name: a.values for a in study_axes(v.cells())}
    assert axes["train.optimizer"] == ("adam", "sgd")


@pytest.mark.data
def test_a_grid_over_lr_depth_and_scheme_runs_and_is_grouped_by_every_axis(tmp_path, capsys) -> None:
    """The summary compares schemes within each (model, train setting) group, never across
    them, and the report draws a heatmap per axis and a section per group."""
    import json

    from initlab.cli import main

    spec = tmp_path / "grid.toml"
    spec.write_text('[study]\nseeds = 2\nepochs = 1\n[model]\nkind = "linear"\ndepth = [2, 3]\nwidth = 16\n'
                    '[schemes]\nlist = ["orthogonal", "zeros"]\n'
                    '[train]\noptimizer = "sgd"\nlr = [0.01, 0.1]\nbatch_size = 32\n')
    out = tmp_path / "run"
    assert main(["run", str(spec), "--out", str(out), "--limit-train", "128", "--limit-val", "64",
                 "--quiet", "--no-probe"]) == 0
    table = capsys.readouterr().out
    assert "train" in table and "lr=0.01" in table and "lr=0.1" in table
    assert main(["summary", str(out), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    groups = {(r["model"], r["setting"]) for r in rows}
    assert groups == {(m, s) for m in ("linear-2x16", "linear-3x16") for s in ("lr=0.01", "lr=0.1")}
    assert len(rows) == 8 and all(r["planned"] == 2 for r in rows)  # 2 seeds per scheme and group
    # each group has its own best scheme
    assert sum(r["is_best"] for r in rows) == 4
    html = (out / "report.html").read_text()
    for name in ("overview_0_depth.png", "overview_1_lr.png", "overview_final_strip.png"):
        assert (out / "figures" / name).is_file()
    assert html.count("<h3>linear-3x16 | lr=0.1 on fashion-mnist</h3>") >= 3
