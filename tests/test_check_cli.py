"""``initlab check`` on the command line: verdicts, exit status, --weights, --json, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import initlab
from initlab.cli import main
from initlab.engine.models import MLPSpec, build_mlp
from initlab.engine.custom_model import load_factory

ARTICLE_LAYERS = ["1.weight", "4.weight", "7.weight"]

#: A user's model file: a small conv net whose factory leaves PyTorch's default init.
CONV_NET = textwrap.dedent("""
    from torch import nn

    def build():
        return nn.Sequential(
            nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3), nn.ReLU(), nn.Flatten(),
            nn.Linear(32 * 4 * 4, 10),
        )
""")
CONV_LAYERS = ["0.weight", "3.weight", "6.weight"]


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _json(capsys, *argv: str) -> tuple[int, dict]:
    code, out, _ = _cli(capsys, *argv, "--json")
    return code, json.loads(out)


def _verdicts(out: str, names: list[str]) -> dict[str, str]:
    """The verdict column ("ok" or "MISMATCH: ...") of each named row of the report table,
    with the reasons a long row puts on its own indented lines joined back by "; "."""
    lines = out.splitlines()
    rows = {line.split()[0]: i for i, line in enumerate(lines) if line.split()[:1] and line.split()[0] in names}
    assert sorted(rows) == sorted(names), out
    verdicts = {}
    for n, i in rows.items():
        line = lines[i]
        if line.rstrip().endswith("  ok"):
            verdicts[n] = "ok"
            continue
        more = []
        for nxt in lines[i + 1:]:
            if not nxt.startswith("    "):
                break
            more.append(nxt.strip())
        verdicts[n] = line[line.index("MISMATCH"):] + (" " + "; ".join(more) if more else "")
    return verdicts


@pytest.fixture()
def conv_file(tmp_path: Path) -> str:
    path = tmp_path / "convnet.py"
    path.write_text(CONV_NET)
    return f"{path}:build"


def test_the_articles_mistake_is_flagged(capsys) -> None:
    code, out, err = _cli(capsys, "--scheme", "uniform_recipe", "--init", "keras_default")
    assert code == 1 and err == ""
    assert "3 of 3 layers do not conform" in out
    verdicts = _verdicts(out, ARTICLE_LAYERS)
    assert all(v.startswith("MISMATCH") and "sigma in variance" in v for v in verdicts.values())
    assert "not checked" not in out  # the MLP has nothing unsupported


@pytest.mark.parametrize("scheme", ["uniform_recipe", "normal_recipe", "he_normal"])
def test_the_honest_init_conforms(capsys, scheme: str) -> None:
    code, out, _ = _cli(capsys, "--scheme", scheme, "--init", scheme)
    assert code == 0 and "all layers conform" in out
    assert set(_verdicts(out, ARTICLE_LAYERS).values()) == {"ok"}


def test_a_mismatch_says_what_the_weights_look_like(capsys) -> None:
    code, out, _ = _cli(capsys, "--scheme", "uniform_recipe", "--init", "keras_default")
    lines = out.splitlines()
    assert code == 1 and lines[-1] == "weights look like: glorot_uniform (= keras_default)"
    assert max(map(len, lines)) <= 100  # long MISMATCH reasons go on their own lines
    code, d = _json(capsys, "--scheme", "uniform_recipe", "--init", "keras_default")
    assert code == 1 and d["looks_like"] == ["glorot_uniform (= keras_default)"]

    code, out, _ = _cli(capsys, "--scheme", "glorot_uniform", "--init", "he_normal")
    assert code == 1 and out.splitlines()[-1] == "weights look like: he_normal"


def test_no_identify_skips_the_search(capsys) -> None:
    argv = ["--scheme", "uniform_recipe", "--init", "keras_default", "--no-identify"]
    code, out, _ = _cli(capsys, *argv)
    assert code == 1 and "look like" not in out and "3 of 3 layers do not conform" in out
    code, d = _json(capsys, *argv)
    assert code == 1 and d["looks_like"] is None and d["failures"] == ARTICLE_LAYERS


def test_a_conforming_model_has_no_looks_like(capsys, conv_file: str) -> None:
    code, out, _ = _cli(capsys, conv_file, "--scheme", "torch_default")
    assert code == 0 and "look like" not in out
    code, d = _json(capsys, conv_file, "--scheme", "torch_default")
    assert code == 0 and d["looks_like"] is None
    # the conv net's factory init is torch's default: a wrong guess names it
    code, out, _ = _cli(capsys, conv_file, "--scheme", "he_normal")
    looks = [line for line in out.splitlines() if line.startswith("weights look like:")]
    assert code == 1 and looks == ["weights look like: torch_default (= uniform_recipe)"]
    assert out.splitlines()[-1].startswith("not checked:")  # the unsupported line stays last


def test_he_normal_against_the_recipes_std(capsys) -> None:
    code, d = _json(capsys, "--scheme", "normal_recipe", "--init", "he_normal")
    assert code == 1 and d["failures"] == ARTICLE_LAYERS


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_conforming_cases_are_far_from_the_threshold(capsys, conv_file: str, seed: int) -> None:
    """The conforming verdicts used above hold with room to spare, whatever the seed."""
    for argv in (["--scheme", "uniform_recipe", "--init", "uniform_recipe"],
                 ["--scheme", "he_normal", "--init", "he_normal"],
                 [conv_file, "--scheme", "torch_default"]):
        code, d = _json(capsys, *argv, "--seed", str(seed))
        assert code == 0, argv
        assert max(abs(r["z_var"]) for r in d["layers"]) < 4.5
        assert min(r["ks_p"] for r in d["layers"]) > 1e-4


def test_default_model_is_the_articles_mlp_with_torch_default(capsys) -> None:
    code, d = _json(capsys, "--scheme", "torch_default")
    assert code == 0
    assert [tuple(r["shape"]) for r in d["layers"]] == [(256, 784), (128, 256), (10, 128)]


def test_a_user_model_as_its_factory_builds_it(capsys, conv_file: str) -> None:
    code, out, _ = _cli(capsys, conv_file, "--scheme", "torch_default")
    assert code == 0 and set(_verdicts(out, CONV_LAYERS).values()) == {"ok"}
    unsupported = [line for line in out.splitlines() if line.startswith("not checked:")]
    assert len(unsupported) == 1 and "1 (BatchNorm2d" in unsupported[0]

    code, out, _ = _cli(capsys, conv_file, "--scheme", "he_normal")
    assert code == 1
    assert all(v.startswith("MISMATCH") for v in _verdicts(out, CONV_LAYERS).values())


def test_seed_makes_the_factory_reproducible(capsys, conv_file: str) -> None:
    runs = [_json(capsys, conv_file, "--scheme", "torch_default", "--seed", s)[1] for s in ("7", "7", "8")]
    std = [[r["realized_std"] for r in d["layers"]] for d in runs]
    assert std[0] == std[1] != std[2]


def test_json_has_ok_layers_failures_unsupported(capsys, conv_file: str) -> None:
    code, d = _json(capsys, conv_file, "--scheme", "he_normal", "--sigmas", "5")
    assert code == 1 and d["ok"] is False and d["sigmas"] == 5.0 and d["scheme"] == "he_normal"
    assert set(d) == {"scheme", "ok", "sigmas", "layers", "failures", "looks_like", "unsupported"}
    assert [r["name"] for r in d["layers"]] == CONV_LAYERS == d["failures"]
    assert all(not r["conforms"] and r["reason"] for r in d["layers"])
    assert d["unsupported"] == [{"name": "1", "type": "BatchNorm2d", "reason": d["unsupported"][0]["reason"]}]


@pytest.mark.filterwarnings("error::RuntimeWarning")  # the std-0 normal's CDF is a step, no 0-division
def test_json_is_strict_when_z_is_infinite(capsys) -> None:
    """A zero-variance law met by varied weights: z is infinite, printed as null."""
    code, out, _ = _cli(capsys, "--scheme", "normal(std=0)", "--init", "he_normal", "--json")
    d = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert code == 1 and d["failures"] == ARTICLE_LAYERS
    assert d["layers"][0]["z_var"] is None and d["layers"][0]["realized_std"] > 0


def test_sigmas_sets_the_threshold(capsys) -> None:
    """Weights 4% narrower than the law: rejected at 5 sigma (200k entries), accepted when
    the threshold is above their z (the KS test cannot tell a 4% difference in std)."""
    wrong = "normal(std=0.0214)"
    code, d = _json(capsys, "--scheme", wrong, "--init", "normal(std=0.0206)")
    assert code == 1 and "1.weight" in d["failures"]
    z = abs(d["layers"][0]["z_var"])
    code, d = _json(capsys, "--scheme", wrong, "--init", "normal(std=0.0206)", "--sigmas", str(2 * z))
    assert d["layers"][0]["conforms"]


def test_weights_round_trip(capsys, tmp_path: Path, conv_file: str) -> None:
    mlp = build_mlp(MLPSpec())
    initlab.apply(mlp, "he_normal", seed=3)
    plain = tmp_path / "mlp.pt"
    torch.save(mlp.state_dict(), plain)
    assert _cli(capsys, "--weights", str(plain), "--scheme", "he_normal")[0] == 0
    # glorot_uniform differs clearly where fan_out is not << fan_in (the last layers, 128->10
    # and 512->10, have nearly He's std: no assertion on them)
    code, d = _json(capsys, "--weights", str(plain), "--scheme", "glorot_uniform")
    assert code == 1 and {"1.weight", "4.weight"} <= set(d["failures"])

    conv = load_factory(conv_file)()
    initlab.apply(conv, "he_normal", seed=3)
    nested = tmp_path / "ckpt.pt"
    torch.save({"epoch": 3, "model_state_dict": conv.state_dict()}, nested)
    assert _cli(capsys, conv_file, "--weights", str(nested), "--scheme", "he_normal")[0] == 0
    code, d = _json(capsys, conv_file, "--weights", str(nested), "--scheme", "glorot_uniform")
    assert code == 1 and {"0.weight", "3.weight"} <= set(d["failures"])


@pytest.mark.parametrize("content,fragment", [
    (b"\x80\x02not a checkpoint" * 8, "not a torch.save file"),
    (b"", "not a torch.save file"),
    ("wrong shapes", "1.weight is 128x784 in the file but 256x784 in the model"),
    ("wrong keys", "missing weight, bias; unexpected 1.weight"),
    ("a list", "holds a list, not a state_dict"),
    ("a whole model", "holds pickled objects"),
])
def test_bad_weights_file_is_one_line(capsys, tmp_path: Path, content, fragment: str) -> None:
    path = tmp_path / "bad.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        obj = {"wrong shapes": lambda: build_mlp(MLPSpec(hidden=(128, 128))).state_dict(),
               "wrong keys": lambda: build_mlp(MLPSpec()).state_dict(),
               "a list": lambda: [torch.zeros(3)],
               "a whole model": lambda: torch.nn.Linear(2, 2)}[content]()
        torch.save(obj, path)
    target = [f"{tmp_path / 'm.py'}:build"] if content == "wrong keys" else []
    if target:
        (tmp_path / "m.py").write_text("from torch import nn\ndef build():\n    return nn.Linear(4, 2)\n")
    code, out, err = _cli(capsys, *target, "--weights", str(path), "--scheme", "he_normal")
    assert code == 2 and out == ""
    assert fragment in err and err.startswith("initlab: error: ") and "--weights" in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv,fragment", [
    (["--scheme", "he_nrmal"], "did you mean he_normal"),
    (["--scheme", "he_normal", "--init", "glorot_unifrom"], "did you mean glorot_uniform"),
    (["--scheme", "he_normal", "--init", "he_normal", "--weights", "w.pt"], "either --init"),
    (["/nonexistent/model.py:build", "--scheme", "he_normal"], "does not exist"),
    (["--scheme", "he_normal", "--weights", "/nonexistent/w.pt"], "does not exist"),
    (["--scheme", "he_normal", "--init", "lsuv"], "--init lsuv is data-dependent"),
    (["--scheme", "lsuv_fastai"], "--scheme lsuv_fastai is data-dependent"),
    (["--scheme", "he_normal", "--sigmas", "0"], "--sigmas must be a positive"),
    (["--scheme", "he_normal", "--sigmas", "nan"], "--sigmas must be a positive"),
    (["--scheme", "he_normal", "--seed", "-1"], "--seed must be a non-negative"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv: list[str], fragment: str) -> None:
    code, out, err = _cli(capsys, *argv)
    assert code == 2 and out == ""
    assert fragment in err
    assert err.startswith("initlab: error: ") and err.count("\n") == 1


def test_model_without_checkable_layers(capsys, tmp_path: Path) -> None:
    (tmp_path / "norm.py").write_text("from torch import nn\ndef build():\n    return nn.LayerNorm(8)\n")
    code, _, err = _cli(capsys, f"{tmp_path / 'norm.py'}:build", "--scheme", "he_normal")
    assert code == 2 and "no layer initlab can check" in err


def test_missing_scheme_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["check", "--init", "he_normal"])
    assert exc.value.code == 2 and "--scheme" in capsys.readouterr().err


def test_subprocess_bad_input_exits_2_without_traceback(tmp_path: Path) -> None:
    garbage = tmp_path / "ckpt.pt"
    garbage.write_bytes(b"\x00garbage\xff" * 16)
    proc = subprocess.run([sys.executable, "-m", "initlab", "check", "--weights", str(garbage),
                           "--scheme", "he_normal"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("initlab: error: cannot read --weights")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
