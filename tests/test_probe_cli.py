"""``initlab probe`` on the command line."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

from initlab.cli import probe_cmd
from initlab.errors import InitlabError


def _main(argv: list[str]) -> int:
    """``initlab.cli.main`` when every sub-command imports; otherwise the same error handling
    around a parser holding only ``probe`` (so these tests do not depend on other commands)."""
    from initlab import cli

    try:
        cli.build_parser()
    except ImportError:
        parser = cli._Parser(prog="initlab")
        sub = parser.add_subparsers(dest="command", parser_class=cli._Parser)
        probe_cmd.add_parser(sub)
        args = parser.parse_args(argv)
        try:
            return int(args.func(args) or 0)
        except InitlabError as exc:
            print(f"initlab: error: {exc}", file=sys.stderr)
            return 2
    return cli.main(argv)


def test_preset_mlp_json(capsys):
    rc = _main(["probe", "--depth", "4", "--width", "32", "--in-features", "16",
                "--schemes", "he_normal,zeros,normal(mean=0, std=0.5)", "--n-inputs", "64", "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert [s["scheme"] for s in d["schemes"]] == ["he_normal", "zeros", "normal(std=0.5)"]
    assert d["model"] == "mlp-4x32-relu-d0" and d["input_shape"] == [16] and d["n_inputs"] == 64
    kinds = {v["kind"] for v in d["schemes"][1]["verdicts"]}
    assert {"unbroken_symmetry", "vanishing_gradients"} <= kinds
    assert len(d["schemes"][0]["layers"]) == 5


def test_preset_table_and_figures(capsys, tmp_path):
    rc = _main(["probe", "--depth", "30", "--width", "32", "--activation", "tanh", "--in-features", "32",
                "--schemes", "glorot_normal,normal(mean=0,std=1)", "--n-inputs", "64",
                "--figures", str(tmp_path / "figs")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "glorot_normal" in out and "saturation" in out and "mean field: tanh" in out
    assert "showing 12 of 31 layers" in out
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == [
        "probe_gradients.png", "probe_jacobian.png", "probe_variance.png"]


@pytest.fixture()
def model_file(tmp_path):
    path = tmp_path / "mymodel.py"
    path.write_text(textwrap.dedent("""
        from torch import nn
        from helper import WIDTH   # a neighbour module: the file's folder is importable

        def build_model():
            return nn.Sequential(nn.Conv2d(3, WIDTH, 3), nn.ReLU(), nn.Flatten(), nn.Linear(WIDTH * 4 * 4, 5))

        def build_mlp():
            return nn.Sequential(nn.Linear(12, 24), nn.Tanh(), nn.Linear(24, 3))

        def not_a_model():
            return [1, 2]

        def no_layers():
            return nn.Sequential(nn.ReLU())

        def broken():
            raise RuntimeError("boom")

        CONSTANT = 3
    """))
    (tmp_path / "helper.py").write_text("WIDTH = 6\n")
    return path


def test_user_model_file(model_file, capsys):
    rc = _main(["probe", f"{model_file}:build_model", "--input-shape", "3,6,6", "--schemes", "he_normal",
                "--n-inputs", "16", "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["model"] == "build_model()" and d["input_shape"] == [3, 6, 6]
    assert [layer["kind"] for layer in d["schemes"][0]["layers"]] == ["Conv2d", "Linear"]
    # an MLP's input shape is read off its first Linear layer
    assert _main(["probe", f"{model_file}:build_mlp", "--schemes", "lecun_normal", "--n-inputs", "16"]) == 0
    assert "lecun_normal" in capsys.readouterr().out


@pytest.mark.parametrize("target,message", [
    ("missing.py:build_model", "does not exist"),
    ("{file}:nope", "has no function 'nope'; functions there: broken, build_mlp, build_model"),
    ("{file}:not_a_model", "returned list, not a torch nn.Module"),
    ("{file}:no_layers", "has no layer the probe measures"),
    ("{file}:broken", "broken() in"),
    ("{file}:CONSTANT", "is a int, not a function"),
    ("{file}", "FILE.py:FUNCTION"),
])
def test_user_model_errors_are_one_line_and_exit_2(model_file, capsys, target, message):
    target = target.format(file=model_file)
    rc = _main(["probe", target, "--input-shape", "12", "--schemes", "he_normal"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("initlab: error: ") and err.count("\n") == 1
    assert message in err


def test_import_error_in_model_file(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("import not_a_real_module_xyz\n")
    assert _main(["probe", f"{bad}:f"]) == 2
    assert "ModuleNotFoundError" in capsys.readouterr().err


def test_argument_errors(model_file, capsys):
    assert _main(["probe", f"{model_file}:build_mlp", "--depth", "3"]) == 2
    assert "--depth only shape the preset MLP" in capsys.readouterr().err
    assert _main(["probe", "--input-shape", "3,x"]) == 2
    assert "--input-shape" in capsys.readouterr().err
    assert _main(["probe", "--schemes", "he_normal,normal(std=1"]) == 2
    assert "--schemes" in capsys.readouterr().err
    assert _main(["probe", "--depth", "2", "--width", "8", "--in-features", "8", "--input-shape", "9"]) == 2
    assert "failed on inputs of shape [9]" in capsys.readouterr().err


def test_split_specs_keeps_parenthesized_commas():
    assert probe_cmd.split_specs("he_normal, normal(mean=0,std=1) ,zeros") == [
        "he_normal", "normal(mean=0,std=1)", "zeros"]


@pytest.mark.data
@pytest.mark.skipif(not os.environ.get("INITLAB_DATA_DIR"), reason="INITLAB_DATA_DIR is not set")
def test_probe_on_fashion_mnist(capsys):
    rc = _main(["probe", "--data", "fashion-mnist", "--depth", "3", "--width", "64", "--n-inputs", "128",
                "--schemes", "he_normal,zeros", "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["inputs"] == "data" and d["input_shape"] == [28, 28] and d["n_inputs"] == 128
    assert d["schemes"][0]["input_var"] > 0.05  # real pixels, not unit noise
