"""TOML study specs (initlab.study.spec)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from initlab.engine.models import MLPSpec
from initlab.errors import InitlabError, UnknownNameError
from initlab.schemes import get_scheme
from initlab.study import ARTICLE_SCHEMES, get_preset, load_spec, parse_spec
from initlab.study.spec import VALID_KEYS

FULL = """\
# a full spec
[study]
name = "widths"
seeds = [0, 7]
epochs = 3

[data]
datasets = ["fashion-mnist", "mnist"]
validation = 0.1
limit_train = 1000
limit_val = 200

[[models]]
hidden = [64]
[[models]]
hidden = [32, 32]
activation = "tanh"
dropout = 0.0
name = "small-tanh"

[schemes]
list = ["zeros", "He-Normal", "uniform(a=-0.5, b=0.5)"]

[train]
lr = 0.01
batch_size = 64
eps = 1e-8
log_every = 10
"""


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_full_spec(tmp_path: Path) -> None:
    path = tmp_path / "widths.toml"
    path.write_text(FULL)
    cfg = load_spec(path)
    assert cfg.name == "widths"
    assert cfg.seeds == (0, 7) and cfg.epochs == 3
    assert cfg.datasets == ("fashion-mnist", "mnist")
    assert cfg.validation == 0.1 and (cfg.limit_train, cfg.limit_val) == (1000, 200)
    assert cfg.models == (MLPSpec(hidden=(64,)), MLPSpec(hidden=(32, 32), activation="tanh", dropout=0.0))
    assert cfg.models[1].label == "small-tanh"
    assert cfg.schemes == ("zeros", "he_normal", get_scheme("uniform(a=-0.5, b=0.5)").spec)
    assert (cfg.train["lr"], cfg.train["batch_size"], cfg.train["eps"], cfg.train["log_every"]) == (0.01, 64, 1e-8, 10)
    assert len(cfg.expand()) == 2 * 2 * 3 * 2


def test_empty_spec_is_the_article_and_named_after_the_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text("")
    cfg = load_spec(path)
    assert cfg.name == "mine"
    seed = get_preset("seed")
    assert (cfg.schemes, cfg.seeds, cfg.models, cfg.train) == (ARTICLE_SCHEMES, seed.seeds, seed.models, seed.train)


def test_preset_base_with_overrides() -> None:
    cfg = parse_spec('[study]\npreset = "deep"\nseeds = 2\n[model]\ndropout = 0.0\n')
    assert cfg.name == "deep"
    assert cfg.schemes == get_preset("deep").schemes
    assert cfg.seeds == (0, 1)
    assert cfg.models == (MLPSpec(hidden=(256,) * 20, dropout=0.0),)


def test_single_model_and_dataset_and_scheme_string() -> None:
    cfg = parse_spec('[data]\ndataset = "mnist"\n[model]\nhidden = [100]\n[schemes]\nlist = "zeros, he_normal"\n')
    assert cfg.datasets == ("mnist",)
    assert cfg.models == (MLPSpec(hidden=(100,)),)
    assert cfg.schemes == ("zeros", "he_normal")


@pytest.mark.parametrize("text,line", [
    ("[study]\nname = \"x\"\nseeds = = 3\n", 3),
    ("[study]\nname = \"x\n", 2),
    ("[train]\nlr = 1e-3\n[train]\nlr = 2e-3\n", 3),
    ("\n\n\n[schemes\nlist = []\n", 4),
])
def test_malformed_toml_names_the_line(text: str, line: int) -> None:
    with pytest.raises(InitlabError) as info:
        parse_spec(text, source="bad.toml")
    msg = str(info.value)
    assert re.match(rf"bad\.toml:{line}(:\d+)?: malformed TOML: ", msg), msg
    assert "\n" not in msg


@pytest.mark.parametrize("table,key", [
    ("train", "lrr"), ("study", "seed"), ("data", "limit"), ("model", "width"), ("schemes", "names"),
])
def test_unknown_keys_are_named_with_valid_ones(table: str, key: str) -> None:
    text = f"# spec\n\n\n[{table}]\n{key} = 1\n"
    with pytest.raises(InitlabError) as info:
        parse_spec(text, source="s.toml")
    msg = str(info.value)
    assert msg.startswith("s.toml:5: ")
    assert repr(key) in msg
    assert all(valid in msg for valid in VALID_KEYS[table])


def test_unknown_top_level_table_and_key_in_models_array() -> None:
    with pytest.raises(InitlabError, match=r"^s\.toml:2: unknown key 'trian'.*did you mean train"):
        parse_spec("\n[trian]\nlr = 1\n", source="s.toml")
    text = "[[models]]\nhidden = [4]\n[[models]]\nhiden = [8]\n"
    with pytest.raises(InitlabError, match=r"^s\.toml:4: unknown key 'hiden' in \[\[models\]\] #2"):
        parse_spec(text, source="s.toml")


def test_epochs_in_train_points_to_study() -> None:
    with pytest.raises(InitlabError, match=r"epochs goes in \[study\]"):
        parse_spec("[train]\nepochs = 3\n")


@pytest.mark.parametrize("text,needle,pattern", [
    ("[study]\nepochs = -2\n", "epochs", "epochs must be an integer >= 1"),
    ("[study]\nepochs = 2.5\n", "epochs", "epochs must be an integer"),
    ("[study]\nseeds = 0\n", "seeds", "seeds"),
    ("[study]\nseeds = [1, 1]\n", "seeds", "repeat"),
    ("[study]\npreset = \"sed\"\n", "preset", "did you mean seed"),
    ("[data]\nvalidation = 2\n", "validation", "validation must be"),
    ("[data]\nlimit_train = 0\n", "limit_train", "positive integer"),
    ("[data]\ndataset = \"cifar10\"\n", "dataset", "unknown dataset"),
    ("[train]\nlr = -1.0\n", "lr", "lr must be"),
    ("[train]\nbatch_size = 0\n", "batch_size", "batch_size must be"),
    ("[schemes]\nlist = [\"zeros\", \"he_norml\"]\n", "list", "did you mean he_normal"),
    ("[schemes]\nlist = []\n", "list", "non-empty"),
    ("[model]\nhidden = [256, 0]\n", "[model]", "positive"),
    ("[model]\nactivation = \"relux\"\n", "[model]", "unknown activation"),
    ("[model]\ndropout = 1.0\n", "[model]", "dropout"),
    ("[model]\nhidden = \"256\"\n", "[model]", "hidden must be a list"),
    ("[model]\ndropout = true\n", "[model]", "dropout must be a number"),
    ("[train]\nbetas = \"fast\"\n", "betas", "betas"),
    ("[train]\nshuffle = 1\n", "shuffle", "shuffle"),
    ("[study]\nname = 3\n", "name", "non-empty string"),
    # out of range: huge or non-finite numbers, numbers beyond the 64-bit integers
    ("[study]\nseeds = 99999999999999999999\n", "seeds", "64-bit"),
    ("[study]\nseeds = [0, -99999999999999999999]\n", "seeds", "64-bit"),
    ("[study]\nseeds = 9223372036854775807\n", "seeds", "count in 1..10000"),
    ("[study]\nseeds = [-1]\n", "seeds", r"\[0, 2\*\*63\)"),
    ("[study]\nepochs = 1e400\n", "epochs", "integer >= 1"),
    ("[study]\nepochs = inf\n", "epochs", "integer >= 1"),
    ("[study]\nepochs = 99999999999999999999\n", "epochs", "64-bit"),
    ("[[models]]\nhidden = [4]\n[[models]]\nhidden = [99999999999999999999]\n", "999", r"\[\[models\]\] #2"),
    ("[train]\nlr = nan\n", "lr", "lr must be a finite number"),
    ("[train]\neps = inf\n", "eps", "eps must be a finite number"),
    ("[train]\nbetas = [nan, 0.9]\n", "betas", "betas"),
    ("[train]\nbetas = [0.9, \"fast\"]\n", "betas", "two numbers"),
    ("[train]\nbetas = 5\n", "betas", "two numbers"),
    ("[train]\nlog_every = -1\n", "log_every", "log_every must be an integer >= 0"),
    ("[train]\nbatch_size = \"big\"\n", "batch_size", "batch_size must be an integer"),
    ("[data]\nlimit_train = -1\n", "limit_train", "positive integer"),
    ("[data]\nlimit_val = \"all\"\n", "limit_val", "positive integer"),
    ("[data]\nvalidation = nan\n", "validation", "validation must be"),
    ("[model]\ndropout = nan\n", "[model]", "dropout"),
    ("[model]\nhidden = [1e400]\n", "[model]", "hidden must be a list"),
    ("[schemes]\nlist = [\"constant(9**9**9)\"]\n", "list", "exponent"),
    ("[schemes]\nlist = [\"lsuv(tol=-1)\"]\n", "list", "tol must be > 0"),
])
def test_bad_values_are_clear_and_located(text: str, needle: str, pattern: str) -> None:
    with pytest.raises(InitlabError) as info:
        parse_spec(text, source="v.toml")
    msg = str(info.value)
    assert msg.startswith(f"v.toml:{_line_of(text, needle)}: "), msg
    assert re.search(pattern, msg), msg
    assert "\n" not in msg


def test_unknown_scheme_keeps_unknown_name_error() -> None:
    with pytest.raises(UnknownNameError):
        parse_spec("[schemes]\nlist = [\"nope_scheme\"]\n")


def test_conflicting_keys() -> None:
    with pytest.raises(InitlabError, match="either 'dataset' or 'datasets'"):
        parse_spec('[data]\ndataset = "mnist"\ndatasets = ["mnist"]\n')
    with pytest.raises(InitlabError, match=r"either \[model\] or \[\[models\]\]"):
        parse_spec("[model]\nhidden = [3]\n[[models]]\nhidden = [4]\n")
    with pytest.raises(InitlabError, match="distinct 'name'"):
        parse_spec("[[models]]\nhidden = [3]\n[[models]]\nhidden = [3]\n")
    with pytest.raises(InitlabError, match=r"must be a table"):
        parse_spec("study = 3\n")


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(InitlabError, match="does not exist"):
        load_spec(tmp_path / "nope.toml")


def test_spec_file_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + FULL.encode("utf-8"))
    assert load_spec(path) == parse_spec(FULL, default_name="bom")
    assert parse_spec("\ufeff[study]\nseeds = 2\n").seeds == (0, 1)


def test_spec_path_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(InitlabError, match="is a directory; pass the path of a .toml study spec"):
        load_spec(tmp_path)


def test_spec_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[study]\nname = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(InitlabError, match=r"latin1\.toml:2: the spec file is not UTF-8 text") as info:
        load_spec(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text,pattern", [
    ("a = " + "[" * 3000 + "]" * 3000 + "\n", "nest too deeply"),
    ("a = " + "{b=" * 3000 + "1" + "}" * 3000 + "\n", "nest too deeply"),
    ("a = 1" + "0" * 5000 + "\n", "64-bit"),
])
def test_pathological_toml_is_one_clear_line(text: str, pattern: str) -> None:
    with pytest.raises(InitlabError, match=pattern) as info:
        parse_spec(text, source="v.toml")
    assert "\n" not in str(info.value)


def test_long_header_lines_do_not_backtrack() -> None:
    import time

    # 200,000 spaces: linear parsing takes milliseconds, a backtracking (quadratic) pattern
    # minutes, so a 10 s bound separates them on any machine however loaded
    text = "[" + " " * 200_000 + "x\n"
    start = time.perf_counter()
    with pytest.raises(InitlabError):
        parse_spec(text)
    from initlab.study.spec import _Source

    assert _Source(text, "s").line_of("train", "lr") is None
    assert time.perf_counter() - start < 10.0


def test_log_every_zero_means_no_step_records() -> None:
    assert parse_spec("[train]\nlog_every = 0\n").train["log_every"] == 0


def test_sgd_settings_in_train() -> None:
    cfg = parse_spec('[train]\noptimizer = "sgd"\nlr = 0.01\nmomentum = 0.9\nnesterov = true\n',
                     source="v.toml")
    assert (cfg.train["optimizer"], cfg.train["momentum"], cfg.train["nesterov"]) == ("sgd", 0.9, True)
    cells = cfg.expand().cells
    assert all(c.train["optimizer"] == "sgd" for c in cells)
    # Adam studies keep the cell keys they had before the optimizer settings existed
    assert "optimizer" not in parse_spec("[study]\nseeds = 1\n").expand().cells[0].train
    with pytest.raises(InitlabError, match=r"^v.toml:1: \[train\]: .*momentum is an SGD setting"):
        parse_spec("[train]\nmomentum = 0.9\n", source="v.toml")
