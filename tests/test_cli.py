"""The command line: exit codes, one-line errors, and a small real run end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from initlab.cli import main

DATA = os.environ.get("INITLAB_DATA_DIR")


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_schemes_lists_every_scheme_with_784_256_std(capsys) -> None:
    code, out, _ = _cli(capsys, "schemes")
    assert code == 0
    assert "keras_default" in out and "0.0439" in out and "0.0206" in out
    code, out, _ = _cli(capsys, "schemes", "--json")
    rows = json.loads(out)
    assert {"name", "aliases", "formula", "mean", "std"} <= set(rows[0])
    by_name = {r["name"]: r for r in rows}
    assert round(by_name["flax_default"]["std"], 4) == 0.0357
    assert "xavier_uniform" in by_name["glorot_uniform"]["aliases"]


def test_schemes_explains_one(capsys) -> None:
    code, out, _ = _cli(capsys, "schemes", "he_normal", "--fan-in", "100", "--fan-out", "10", "--json")
    row = json.loads(out)
    assert code == 0 and row["std"] == pytest.approx((2 / 100) ** 0.5)
    code, out, _ = _cli(capsys, "schemes", "normal_recipe")
    assert "same law as: lecun_normal" in out


@pytest.mark.parametrize("argv,fragment", [
    (["schemes", "he_nrmal"], "did you mean he_normal"),
    (["schemes", "he_normal", "--fan-in", "0"], "--fan-in"),
    (["schemes", "normal(std=-1)"], "std must be >= 0"),
    (["run", "nopreset"], "unknown preset"),
    (["run", "--epochs", "-3"], "--epochs must be >= 1"),
    (["run", "--seeds", "0"], "--seeds must be >= 1"),
    (["run", "--schemes", "zeros,he_nrmal"], "did you mean he_normal"),
    (["run", "--device", "tpu"], "--device"),
    (["summary", "/nonexistent/run"], "does not exist"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, fragment) -> None:
    code, out, err = _cli(capsys, *argv)
    assert code == 2
    assert fragment in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_malformed_toml_names_the_line(tmp_path, capsys) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text('[study]\nname = "x"\nseeds = 3\nepochs = = 2\n')
    code, _, err = _cli(capsys, "run", str(spec))
    assert code == 2 and "bad.toml:4:" in err and "malformed TOML" in err


def test_unwritable_out_and_missing_data(tmp_path, capsys, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = _cli(capsys, "run", "smoke", "--out", str(blocker / "run"),
                        *(["--data-dir", DATA] if DATA else []), "--no-download")
    if DATA:
        assert code == 2 and "--out" in err and "cannot be written" in err
    # no data anywhere: not in --data-dir, not in $INITLAB_DATA_DIR, not in the user cache
    monkeypatch.delenv("INITLAB_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _cli(capsys, "run", "smoke", "--data-dir", str(empty), "--no-download",
                        "--out", str(tmp_path / "r"))
    assert code == 2 and "fashion-mnist" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()  # nothing written before the data was found


def test_usage_errors_exit_2_without_traceback() -> None:
    proc = subprocess.run([sys.executable, "-m", "initlab", "run", "--epochs", "abc"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


@pytest.mark.data
def test_small_real_run_summary_and_resume(tmp_path, capsys) -> None:
    if not DATA:
        pytest.skip("INITLAB_DATA_DIR is not set")
    out = tmp_path / "run"
    argv = ["run", "seed", "--schemes", "zeros,keras_default", "--seeds", "2", "--epochs", "2",
            "--limit-train", "1024", "--limit-val", "512", "--out", str(out), "--no-report", "--quiet"]
    code, stdout, _ = _cli(capsys, *argv)
    assert code == 0 and "keras_default" in stdout
    code, stdout, _ = _cli(capsys, "summary", str(out), "--json")
    rows = {r["scheme"]: r for r in json.loads(stdout)["rows"]}
    assert rows["zeros"]["val_acc"] == pytest.approx(0.1, abs=0.05)
    assert rows["keras_default"]["val_acc"] > 0.5 and rows["keras_default"]["n"] == 2
    assert rows["keras_default"]["val_acc_ci"] is not None
    code, _, err = _cli(capsys, *argv)  # same study again: everything is resumed
    assert code == 0 and "4 finished model(s) skipped" in err


def test_missing_extra_is_reported_before_training(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # makes `import wandb` raise ImportError
    code, _, err = _cli(capsys, "run", "smoke", "--wandb", "--out", str(tmp_path / "r"))
    assert code == 2 and "pip install 'initlab[wandb]'" in err
    assert not (tmp_path / "r").exists()


def test_progress_line_shows_live_accuracy_and_divergence() -> None:
    import io

    from initlab.cli.run_cmd import Progress

    stream = io.StringIO()
    p = Progress(4, stream=stream, every=2)
    p.update("ones", 0, 0, {"val_acc": 0.1})  # epoch 0 (at init) is not progress
    p.update("ones", 0, 1, {"val_acc": float("nan")})
    p.update("he_normal", 0, 1, {"val_acc": 0.8})
    p.update("he_normal", 1, 1, {"val_acc": 0.6})
    line = p.line()
    assert "3/4 model-epochs" in line and "ones diverged" in line and "he_normal 0.700" in line
    assert stream.getvalue().count("\n") >= 1  # printed without a terminal


def test_progress_counts_the_epochs_a_diverged_model_skips() -> None:
    import io
    from types import SimpleNamespace

    from initlab.cli.run_cmd import Progress, _ProgressSink
    from initlab.records import Divergence, EpochRecord

    cell = SimpleNamespace(key="k", scheme="ones", seed=0, train={"epochs": 10})
    calls = []
    inner = SimpleNamespace(cells=(cell,), key=lambda c: "k",
                            epoch=lambda *a, **k: calls.append("epoch"),
                            diverged=lambda *a, **k: calls.append("diverged"))
    progress = Progress(10, stream=io.StringIO())
    sink = _ProgressSink(inner, progress)
    nan = float("nan")
    sink.epoch(0, EpochRecord(0, 1, 3, nan, nan, nan, nan, 0.0, 1, True))
    sink.diverged(0, Divergence(0, 1, 3, 3, nan, "loss"))
    assert calls == ["epoch", "diverged"] and progress.done == 10


def test_a_closed_output_pipe_ends_quietly(tmp_path: Path) -> None:
    """`initlab schemes --json | head -c 1`: the reader leaves early; no traceback."""
    script = (
        "import sys\n"
        "from initlab.cli import main\n"
        "for _ in range(200):\n"  # far more than a pipe buffer holds
        "    rc = main(['schemes', '--json'])\n"
        "    if rc:\n"
        "        sys.exit(rc)\n"
    )
    proc = subprocess.run(
        f"{sys.executable} -c \"{script}\" | head -c 1 > /dev/null",
        shell=True, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
