"""A catalogue of bad inputs, tried as a new user would try them, through the real command
line (``initlab.cli.main``, the function behind the ``initlab`` script) and the Python API.

For every case: exit status 2 (the CLI) or an :class:`~initlab.errors.InitlabError` (the
API), exactly one line on stderr (or in the message), no traceback, nothing hanging (each
case has a time limit), and nothing written or changed: every file under the case's
world (its working directory, which also holds the default ``runs/`` and every path the
case names) keeps its bytes and modification time, and no file or folder appears.

The world (:func:`world`) holds a healthy finished run, damaged stores, spec files, model
files, weights files, a broken data root and a few obstacles (a file where a folder is
expected, and the reverse). Cases that need the real data to get as far as their fault
(a model that does not fit the images, an export target checked after the data) are
skipped without ``INITLAB_DATA_DIR``.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import signal
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

import initlab
from initlab.cli import main
from initlab.errors import InitlabError
from initlab.study import Store, run_study

from test_store import _study, _train_all

DATA = os.environ.get("INITLAB_DATA_DIR")
#: Seconds a case may take before it counts as a hang.
LIMIT_S = 30

SPEC_OK = '[study]\nname = "t"\nseeds = 1\nepochs = 1\n[data]\nlimit_train = 64\nlimit_val = 32\n'

SPECS = {
    "malformed.toml": '[study]\nname = "x"\nepochs = = 2\n',
    "unknown_key.toml": "[study]\nnmae = 'x'\n",
    "unknown_table.toml": "[optimizer]\nlr = 0.1\n",
    "wrong_fit.toml": SPEC_OK + "[model]\nin_features = 100\n",
    "few_outputs.toml": SPEC_OK + "[model]\nout_features = 5\n",
    "zero_width.toml": SPEC_OK + "[model]\nhidden = [0]\n",
    "negative_width.toml": SPEC_OK + "[model]\nhidden = [256, -3]\n",
    "dropout_one.toml": SPEC_OK + "[model]\ndropout = 1.5\n",
    "swish.toml": SPEC_OK + "[model]\nactivation = 'swish'\n",
    "cifar.toml": "[data]\ndataset = 'cifar10'\n",
    "huge_seeds.toml": "[study]\nseeds = 99999999999999999999\n",
    "inf_epochs.toml": "[study]\nepochs = inf\n",
    "nan_lr.toml": "[train]\nlr = nan\n",
    "word_lr.toml": "[train]\nlr = 'fast'\n",
    "fp16_precision.toml": "[train]\nprecision = 'fp16'\n",
    "tf32_on_cpu.toml": "[train]\nprecision = 'tf32'\n",
    "log_every.toml": "[train]\nlog_every = -1\n",
    "epochs_in_train.toml": "[train]\nepochs = 3\n",
    "bad_scheme.toml": "[schemes]\nlist = ['he_normal', 'constant(val=9**9**9)']\n",
    "repeated_kw.toml": "[schemes]\nlist = ['uniform(a=-1, a=1)']\n",
    "limit_negative.toml": "[data]\nlimit_train = -1\n",
    "validation_word.toml": "[data]\nvalidation = 'half'\n",
    "models_and_model.toml": "[model]\nhidden = [8]\n[[models]]\nhidden = [4]\n",
    "huge_model.toml": SPEC_OK + "[model]\nhidden = [1000000000]\n",
    "momentum_with_adam.toml": "[train]\nmomentum = 0.9\n",
    "unknown_optimizer.toml": "[train]\noptimizer = 'rmsprop'\n",
    "nesterov_alone.toml": "[train]\noptimizer = 'sgd'\nnesterov = true\n",
    "unknown_schedule.toml": "[train]\nschedule = 'onecycle'\n",
    "negative_warmup.toml": "[train]\nwarmup_epochs = -2\n",
    "binary.toml": None,  # bytes that are not UTF-8, written by world()
    # model families and grid axes
    "unknown_kind.toml": "[model]\nkind = 'transformer'\n",
    "key_of_another_kind.toml": "[model]\nkind = 'cnn'\nhidden = [64]\n",
    "cnn_channels_length.toml": "[model]\nkind = 'cnn'\ndepth = 3\nchannels = [8, 16]\n",
    "resnet_bad_norm.toml": "[model]\nkind = 'resnet'\nnorm = 'group'\n",
    "custom_no_shape.toml": "[model]\nkind = 'custom'\nbuilder = '../models.py:mlp'\n",
    "custom_fails.toml": SPEC_OK + "[model]\nkind = 'custom'\nbuilder = '../models.py:boom'\ninput_shape = [784]\n",
    "custom_not_module.toml": SPEC_OK + "[model]\nkind = 'custom'\nbuilder = '../models.py:not_a_module'\n"
                              "input_shape = [784]\n",
    "shape_misfit.toml": SPEC_OK + "[model]\nkind = 'cnn'\ndepth = 2\ninput_shape = [3, 28, 28]\n",
    "lr_zero.toml": "[train]\nlr = 0\n",
    "lr_axis_negative.toml": "[train]\nlr = [0.1, -0.1]\n",
    "empty_axis.toml": "[train]\nlr = []\n",
    "empty_model_axis.toml": "[model]\nkind = 'linear'\ndepth = []\n",
    "schedule_axis_unknown.toml": "[train]\nschedule = ['cosine', 'onecycle']\n",
    "train_variant_unknown_key.toml": "[[train]]\nlr = 0.1\n[[train]]\nlearning_rate = 0.1\n",
    "train_variants_equal.toml": "[[train]]\nlr = 0.1\n[[train]]\nlr = 0.1\n",
}

MODELS = '''
import torch
from torch import nn

def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))

def zero_out():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 0))

def not_a_module():
    return 42

def boom():
    raise RuntimeError("the model cannot be built")

def needs_args(width):
    return nn.Linear(width, 10)
'''


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...] | None = None  # CLI arguments, or None for an API call
    call: Callable[[Path], Any] | None = None  # API call given the world
    data: bool = False  # needs the real data to reach its fault
    match: str = ""  # a word the message must contain


def cli(id: str, *argv: str, data: bool = False, match: str = "") -> Case:
    return Case(id, tuple(argv), data=data, match=match)


def api(id: str, call: Callable[[Path], Any], match: str = "") -> Case:
    return Case(id, None, call=call, match=match)


def _model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 16), torch.nn.ReLU(),
                               torch.nn.Linear(16, 10))


def _empty_linear() -> torch.nn.Module:
    with warnings.catch_warnings():  # torch: "Initializing zero-element tensors is a no-op"
        warnings.simplefilter("ignore")
        return torch.nn.Linear(0, 4)


def _store(w: Path) -> None:
    from initlab.study.store import Store as S
    S.open(w / "nowhere")


def _load_spec(w: Path, name: str) -> None:
    from initlab.study import load_spec
    load_spec(w / name)


def _dataset(w: Path, **kw: Any) -> None:
    from initlab.data import load_dataset
    load_dataset("fashion-mnist", download=False, **kw)


def _config(**kw: Any) -> None:
    from initlab.engine import TrainConfig
    TrainConfig(**kw)


def _probe(w: Path, x: torch.Tensor, **kw: Any) -> None:
    initlab.probe(_model(), x, schemes=["he_normal"], **kw)


SEEDS = ("--seeds", "1", "--epochs", "1", "--limit-train", "64", "--limit-val", "32", "--no-report")

CASES: list[Case] = [
    # --- schemes: names, spec values, parameter domains
    cli("schemes-unknown", "schemes", "he_normall", match="unknown scheme"),
    cli("schemes-empty", "schemes", " "),
    cli("schemes-unclosed", "schemes", "he_normal(mode=fan_in"),
    cli("schemes-huge-power", "schemes", "constant(val=9**9**9)"),
    cli("schemes-power-tower", "schemes", "constant(val=2**2**2**2**2)"),
    cli("schemes-inf", "schemes", "constant(value=inf)", match="finite"),
    cli("schemes-misnamed", "schemes", "constant(val=1)", match="no parameter"),
    cli("schemes-overflow", "schemes", "constant(val=1e308*10)"),
    cli("schemes-nan", "schemes", "normal(std=nan)"),
    cli("schemes-div-zero", "schemes", "uniform(a=1/0)"),
    cli("schemes-sqrt-negative", "schemes", "normal(std=sqrt(-1))"),
    cli("schemes-string-arith", "schemes", "normal(std=fan_in*2)"),
    cli("schemes-string-value", "schemes", "normal(std='wide')"),
    cli("schemes-repeated-kw", "schemes", "uniform(a=-1, a=1)", match="twice"),
    cli("schemes-positional-after-kw", "schemes", "uniform(a=-1, 1)"),
    cli("schemes-call", "schemes", "normal(std=__import__('os').getpid())"),
    cli("schemes-attribute", "schemes", "normal(std=math.pi)"),
    cli("schemes-complex", "schemes", "normal(std=1j)"),
    cli("schemes-deep", "schemes", "normal(std=" + "(" * 500 + "1" + ")" * 500 + ")"),
    cli("schemes-long", "schemes", "normal(std=" + "+".join(["1"] * 5000) + ")"),
    cli("schemes-null-byte", "schemes", "normal(std=1\x00)"),
    cli("schemes-unknown-param", "schemes", "he_normal(gain=2)", match="no parameter"),
    cli("schemes-bad-mode", "schemes", "he_normal(mode=sideways)"),
    cli("schemes-lsuv-tol", "schemes", "lsuv(tol=-1)", match="tol"),
    cli("schemes-negative-std", "schemes", "normal(std=-1)", match="std"),
    cli("schemes-reversed-bounds", "schemes", "uniform(a=0.5, b=-0.5)"),
    cli("schemes-fan-in-zero", "schemes", "he_normal", "--fan-in", "0"),
    cli("schemes-fan-out-negative", "schemes", "he_normal", "--fan-out", "-5"),
    cli("schemes-fan-in-word", "schemes", "he_normal", "--fan-in", "many"),
    # --- run: presets, flags, specs, data, outputs, devices, stores
    cli("run-unknown-preset", "run", "sead", match="preset"),
    cli("run-epochs-zero", "run", "smoke", "--epochs", "0"),
    cli("run-seeds-negative", "run", "smoke", "--seeds", "-1"),
    cli("run-epochs-word", "run", "smoke", "--epochs", "ten"),
    cli("run-limit-zero", "run", "smoke", "--limit-train", "0"),
    cli("run-max-group-zero", "run", "smoke", "--max-group", "0"),
    cli("run-max-group-word", "run", "smoke", "--max-group", "most"),
    cli("run-precision-fp16", "run", "smoke", "--precision", "fp16"),
    *([] if torch.cuda.is_available() else [
        cli("run-precision-tf32-cpu", "run", "smoke", "--precision", "tf32", match="on the CPU use fp32 or bf16"),
        cli("run-cuda-graphs-cpu", "run", "smoke", "--cuda-graphs", match="--device cuda")]),
    cli("run-compile-and-graphs", "run", "smoke", "--compile", "--cuda-graphs"),
    cli("run-device-tpu", "run", "smoke", "--device", "tpu"),
    cli("run-device-garbage", "run", "smoke", "--device", "cuda:x"),
    cli("run-device-mps", "run", "smoke", "--device", "mps", match="not supported"),
    cli("run-device-cpu-index", "run", "smoke", "--device", "cpu:3"),
    cli("run-device-cuda-index", "run", "smoke", "--device", "cuda:99", match="cuda"),
    *([] if torch.cuda.is_available() else [
        cli("run-device-cuda-absent", "run", "smoke", "--device", "cuda", match="no CUDA device")]),
    cli("run-schemes-empty-item", "run", "smoke", "--schemes", "zeros,,he_normal"),
    cli("run-schemes-unknown", "run", "smoke", "--schemes", "he_normal,glorot"),
    cli("run-schemes-unbalanced", "run", "smoke", "--schemes", "uniform(a=-1,b=1"),
    cli("run-schemes-non-finite", "run", "smoke", "--schemes", "constant(value=-inf)", match="finite"),
    *[cli(f"run-spec-{name.removesuffix('.toml')}", "run", f"specs/{name}", "--data-dir", "data-ok",
          "--no-download", data=name in ("wrong_fit.toml", "few_outputs.toml", "custom_fails.toml",
                                         "custom_not_module.toml", "shape_misfit.toml"))
      for name in SPECS],
    cli("run-spec-missing", "run", "specs/nope.toml", match="does not exist"),
    cli("run-spec-directory", "run", "specs/folder.toml", match="directory"),
    cli("run-out-under-file", "run", "smoke", "--out", "a-file/run", *SEEDS, "--data-dir", "data-ok",
        data=True),
    cli("run-out-is-file", "run", "smoke", "--out", "a-file", *SEEDS, "--data-dir", "data-ok", data=True),
    cli("run-tensorboard-file", "run", "smoke", "--out", "new-run", "--tensorboard", "a-file", *SEEDS,
        "--data-dir", "data-ok", data=True),
    cli("run-tensorboard-under-file", "run", "smoke", "--out", "new-run", "--tensorboard",
        "a-file/tb", *SEEDS, "--data-dir", "data-ok", data=True),
    cli("run-data-dir-missing", "run", "smoke", "--data-dir", "no-such-root", "--no-download",
        "--out", "new-run", match="does not exist"),
    cli("run-data-dir-file", "run", "smoke", "--data-dir", "a-file", "--out", "new-run"),
    cli("run-data-dir-empty", "run", "smoke", "--data-dir", "empty-dir", "--no-download", "--out", "new-run"),
    cli("run-data-broken", "run", "smoke", "--data-dir", "data-broken", "--no-download", "--out", "new-run"),
    cli("run-into-random-bytes", "run", "smoke", "--out", "runs/random", *SEEDS, "--data-dir", "data-ok",
        data=True),
    cli("run-into-truncated", "run", "smoke", "--out", "runs/truncated", *SEEDS, "--data-dir", "data-ok",
        data=True),
    cli("run-into-other-study", "run", "smoke", "--out", "runs/good", *SEEDS, "--data-dir", "data-ok",
        data=True, match="different study"),
    # --- run --executor ray (tests/test_executor.py also covers Ray missing and --gpus-per-task without CUDA)
    cli("run-ray-unreachable", "run", "smoke", "--executor", "ray", "--address", "127.0.0.1:1", "--out", "new-run",
        match="cannot reach"),
    cli("run-ray-bad-address", "run", "smoke", "--executor", "ray", "--address", "head-node", "--out", "new-run",
        match="HOST:PORT"),
    cli("run-ray-option-alone", "run", "smoke", "--address", "auto", "--out", "new-run", match="--executor ray"),
    # --- summary / report / export: run directories and stores
    cli("summary-missing-dir", "summary", "runs/nope"),
    cli("summary-file", "summary", "a-file", match="not a directory"),
    cli("summary-no-store", "summary", "empty-dir"),
    cli("summary-random-bytes", "summary", "runs/random"),
    cli("summary-truncated", "summary", "runs/truncated"),
    cli("summary-zero-bytes", "summary", "runs/zero"),
    cli("summary-store-is-dir", "summary", "runs/dirstore"),
    cli("summary-threshold", "summary", "runs/good", "--threshold", "2"),
    cli("summary-level-one", "summary", "runs/good", "--level", "1"),
    cli("report-random-bytes", "report", "runs/random"),
    cli("report-zero-bytes", "report", "runs/zero"),
    cli("report-out-directory", "report", "runs/good", "--out", "empty-dir", match="directory"),
    cli("report-out-under-file", "report", "runs/good", "--out", "a-file/r.html"),
    cli("report-threshold-zero", "report", "runs/good", "--threshold", "0"),
    cli("report-alpha-one", "report", "runs/good", "--alpha", "1"),
    cli("export-nothing", "export", "runs/good"),
    cli("export-out-without-format", "export", "runs/good", "--out", "tables", match="--format"),
    cli("export-format-xml", "export", "runs/good", "--format", "xml"),
    cli("export-tables-into-file", "export", "runs/good", "--format", "csv", "--out", "a-file"),
    cli("export-tensorboard-file", "export", "runs/good", "--tensorboard", "a-file"),
    cli("export-tensorboard-under-file", "export", "runs/good", "--tensorboard", "a-file/tb"),
    cli("export-truncated", "export", "runs/truncated", "--format", "csv", "--out", "tables"),
    # --- probe: shapes, model files, data
    cli("coordcheck-widths-one", "coordcheck", "--synthetic", "--widths", "128", match="widths"),
    cli("coordcheck-widths-word", "coordcheck", "--synthetic", "--widths", "wide", match="widths"),
    cli("coordcheck-family", "coordcheck", "--synthetic", "--family", "vit", match="family"),
    cli("coordcheck-base", "coordcheck", "--synthetic", "--base", "zeros", match="base"),
    cli("probe-depth-zero", "probe", "--depth", "0"),
    cli("probe-width-zero", "probe", "--width", "0"),
    cli("probe-out-zero", "probe", "--out-features", "0", match="--out-features"),
    cli("probe-activation", "probe", "--activation", "swish"),
    cli("probe-schemes-unknown", "probe", "--schemes", "he_normal,nosuch"),
    cli("probe-schemes-bad-value", "probe", "--schemes", "normal(std=9**9**9)"),
    cli("probe-input-shape", "probe", "--input-shape", "3,x"),
    cli("probe-n-inputs-zero", "probe", "--n-inputs", "0"),
    cli("probe-model-zero-out", "probe", "models.py:zero_out", "--input-shape", "784", match="at least one"),
    cli("check-model-zero-out", "check", "models.py:zero_out", "--scheme", "he_normal", match="at least one"),
    cli("probe-model-missing-file", "probe", "nope.py:mlp"),
    cli("probe-model-missing-function", "probe", "models.py:nothing"),
    cli("probe-model-not-module", "probe", "models.py:not_a_module"),
    cli("probe-model-raises", "probe", "models.py:boom"),
    cli("probe-model-needs-args", "probe", "models.py:needs_args"),
    cli("probe-model-syntax", "probe", "broken.py:f"),
    cli("probe-model-no-colon", "probe", "models.py"),
    cli("probe-figures-file", "probe", "--depth", "2", "--width", "8", "--figures", "a-file"),
    cli("probe-data-unknown", "probe", "--data", "cifar10"),
    cli("probe-data-dir-file", "probe", "--data", "fashion-mnist", "--data-dir", "a-file"),
    cli("probe-in-zero", "probe", "--in-features", "0"),
    # --- check: schemes, weights files, model files
    cli("check-no-scheme", "check"),
    cli("check-unknown-scheme", "check", "--scheme", "he_norml"),
    cli("check-init-non-finite", "check", "--scheme", "he_normal", "--init", "constant(value=nan)",
        match="finite"),
    cli("check-sigmas-negative", "check", "--scheme", "he_normal", "--init", "he_normal", "--sigmas", "-1"),
    cli("check-weights-missing", "check", "models.py:mlp", "--scheme", "he_normal", "--weights", "nope.pt"),
    cli("check-weights-garbage", "check", "models.py:mlp", "--scheme", "he_normal", "--weights", "garbage.pt"),
    cli("check-weights-tensor", "check", "models.py:mlp", "--scheme", "he_normal", "--weights", "tensor.pt"),
    cli("check-weights-shape", "check", "models.py:mlp", "--scheme", "he_normal", "--weights", "wrong_shape.pt"),
    cli("check-weights-directory", "check", "models.py:mlp", "--scheme", "he_normal", "--weights", "empty-dir",
        match="not a file"),
    cli("check-model-not-module", "check", "models.py:not_a_module", "--scheme", "he_normal"),
    # --- plugins (users' own schemes), on any command
    cli("plugin-missing", "schemes", "--plugin", "nope.py", match="does not exist"),
    cli("plugin-directory", "probe", "--plugin", "empty-dir", match="not a file"),
    cli("plugin-raises", "check", "--scheme", "he_normal", "--plugin", "plugin_raises.py", match="failed"),
    cli("plugin-collides", "run", "smoke", "--plugin", "plugin_collides.py", match="already registered"),
    cli("run-spec-plugin-missing", "run", "specs/plugin_missing.toml", match="does not exist"),
    # --- the Python API
    api("api-get-scheme-power", lambda w: initlab.get_scheme("constant(val=9**9**9)")),
    api("api-get-scheme-type", lambda w: initlab.get_scheme(42)),
    api("api-get-scheme-inf-kw", lambda w: initlab.get_scheme("uniform", a=float("-inf"))),
    api("api-get-scheme-string-kw", lambda w: initlab.get_scheme("normal", std="wide")),
    api("api-apply-lsuv-without-data", lambda w: initlab.apply(_model(), "lsuv"), match="data"),
    api("api-apply-not-a-module", lambda w: initlab.apply("model", "he_normal")),
    api("api-apply-empty-layer", lambda w: initlab.apply(_empty_linear(), "he_normal"), match="at least one"),
    api("api-check-unknown", lambda w: initlab.check(_model(), "he_normall")),
    api("api-load-spec-dir", lambda w: _load_spec(w, "specs/folder.toml")),
    api("api-load-spec-binary", lambda w: _load_spec(w, "specs/binary.toml")),
    api("api-store-missing", _store),
    api("api-dataset-missing-root", lambda w: _dataset(w, data_dir=w / "no-such-root")),
    api("api-dataset-broken", lambda w: _dataset(w, data_dir=w / "data-broken")),
    api("api-train-config-log-every", lambda w: _config(log_every=-1)),
    api("api-train-config-lr", lambda w: _config(lr=float("inf"))),
    api("api-probe-wrong-shape", lambda w: _probe(w, torch.randn(8, 3, 5, 5))),
    api("api-probe-no-schemes", lambda w: initlab.probe(_model(), torch.randn(8, 784), schemes=[])),
    api("api-load-plugin-missing", lambda w: initlab.load_plugin(w / "nope.py")),
    api("api-register-taken-name", lambda w: initlab.register_scheme(
        "glorot_uniform", sample=print, law=print, formula="", source=""), match="already registered"),
]


def _good_store(run_dir: Path) -> None:
    with Store.create(run_dir) as store:
        run_study(_study(), store, _train_all)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    w = tmp_path_factory.mktemp("world")
    (w / "a-file").write_text("not a folder\n")
    (w / "empty-dir").mkdir()
    runs = w / "runs"
    _good_store(runs / "good")
    good = (runs / "good" / "initlab.sqlite").read_bytes()
    for name, content in (("random", os.urandom(20000)), ("truncated", good[:4096]), ("zero", b"")):
        (runs / name).mkdir()
        (runs / name / "initlab.sqlite").write_bytes(content)
    (runs / "dirstore" / "initlab.sqlite").mkdir(parents=True)
    specs = w / "specs"
    specs.mkdir()
    for name, text in SPECS.items():
        if text is None:
            (specs / name).write_bytes(b"[study]\nname = '\xff\xfe'\n")
        else:
            (specs / name).write_text(text)
    (specs / "folder.toml").mkdir()
    (w / "models.py").write_text(MODELS)
    (w / "broken.py").write_text("def f(:\n    return 1\n")
    (w / "plugin_raises.py").write_text("raise RuntimeError('a plugin that breaks')\n")
    (w / "plugin_collides.py").write_text(
        "import initlab\ninitlab.register_scheme('he_normal', sample=print, law=print, formula='', source='')\n")
    (specs / "plugin_missing.toml").write_text("[study]\nplugins = ['nope.py']\n")
    (w / "garbage.pt").write_bytes(os.urandom(512))
    torch.save(torch.zeros(3), w / "tensor.pt")
    torch.save({"1.weight": torch.zeros(5, 5)}, w / "wrong_shape.pt")
    broken = w / "data-broken" / "fashion-mnist"
    broken.mkdir(parents=True)
    for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (broken / f).write_bytes(gzip.compress(b"not an idx file"))
    if DATA:
        (w / "data-ok").symlink_to(Path(DATA).resolve())
    return w


def _snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every path under *root* (symlinks not followed): folders by name, files by size,
    modification time and sha256."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = ("dir",)
        for f in filenames:
            p = Path(dirpath) / f
            st = p.lstat()
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() else ""
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns, digest)
    return out


@contextlib.contextmanager
def _time_limit(seconds: int):
    def hang(signum: int, frame: Any) -> None:
        raise TimeoutError(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_the_catalogue_is_broad():
    commands = {c.argv[0] for c in CASES if c.argv}
    assert commands == {"schemes", "run", "summary", "report", "export", "probe", "check", "coordcheck"}
    assert len(CASES) >= 60 and sum(c.argv is None for c in CASES) >= 10
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(case: Case, world: Path, capsys, monkeypatch) -> None:
    if case.data and not DATA:
        pytest.skip("needs the real data (INITLAB_DATA_DIR) to reach this fault")
    monkeypatch.chdir(world)
    monkeypatch.setenv("XDG_CACHE_HOME", str(world / "no-cache"))  # no data found by accident
    monkeypatch.delenv("INITLAB_DATA_DIR", raising=False)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    before = _snapshot(world)
    capsys.readouterr()
    with _time_limit(LIMIT_S):
        if case.argv is not None:
            try:
                code = main(list(case.argv))
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code
            out, err = capsys.readouterr()
            message = err.strip()
            assert code == 2, f"exit {code}; stdout {out!r}; stderr {err!r}"
            assert "Traceback" not in out + err
            assert message and "\n" not in message, f"not one line: {err!r}"
            assert message.startswith("initlab"), message
        else:
            with pytest.raises(InitlabError) as info:
                case.call(world)
            message = str(info.value)
            assert message and "\n" not in message, f"not one line: {message!r}"
    assert case.match.lower() in message.lower(), message
    assert _snapshot(world) == before, "the case wrote or changed files"
