"""``initlab recommend``: which initialization for this model, ranked by the calibrated probe.

    initlab recommend path/to/model.py:build --input-shape 1,28,28 [--data fashion-mnist]
    initlab recommend --depth 30 --width 256 --activation relu --optimizer sgd
    initlab recommend --family resnet --depth 8 --width 16 --confirm 1 --json

Without a model file the model is a preset: the article's MLP (784-256-128-10, ReLU,
dropout 0.2) when no preset flag is given; ``--depth/--width/--activation`` make an MLP
``784 -> width x depth -> 10`` (no dropout); ``--family cnn`` a plain conv net (``depth``
conv layers of ``width`` channels), ``--family resnet`` a ResNet of ``depth`` basic blocks
of ``width`` channels (``--norm`` none by default). ``--confirm EPOCHS`` trains the top
``--top`` schemes and ``torch_default`` on the first ``--limit`` training images of
``--data`` (default Fashion-MNIST) with ``--seeds`` seeds and shows the outcome beside the
prediction.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from initlab.errors import InitlabError

PRESET_FLAGS = ("family", "depth", "width", "activation", "norm")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "recommend", help="rank initialization schemes for a model by the calibrated probe (and train the top few)",
        description="Probe every applicable initialization scheme on a model at init, rank them by the "
                    "calibrated trainability score with the reasons, optionally confirm the top few by a short "
                    "training study, and print the code that applies the winner.")
    p.add_argument("model", nargs="?", metavar="FILE.py:FUNCTION",
                   help="a function returning an nn.Module (default: a preset, see below)")
    p.add_argument("--input-shape", metavar="C,H,W", help="the per-sample shape the model takes, e.g. 1,28,28 "
                                                          "(needed for a conv model without --data)")
    g = p.add_argument_group("preset model (without FILE.py:FUNCTION; none given: the article's MLP)")
    g.add_argument("--family", choices=("mlp", "cnn", "resnet"), default=None, help="model family (default mlp)")
    g.add_argument("--depth", type=int, default=None,
                   help="hidden layers (mlp, default 10), conv layers (cnn, default 8) or blocks (resnet, default 8)")
    g.add_argument("--width", type=int, default=None, help="hidden width (mlp 256) or channels (cnn 32, resnet 16)")
    g.add_argument("--activation", default=None, help="relu (default), tanh, gelu, selu, linear, ...")
    g.add_argument("--norm", default=None, help="cnn/resnet normalization: none (default), batch, layer")
    p.add_argument("--data", metavar="NAME|DIR", help="probe (and train) on real images: fashion-mnist, mnist, or a "
                                                     "data directory (default: probe on Gaussian noise)")
    p.add_argument("--data-dir", help="data root for a dataset name (default: INITLAB_DATA_DIR or the cache)")
    p.add_argument("--optimizer", default="adam", help="adam (default) or sgd (with momentum): the score differs")
    p.add_argument("--schemes", help="comma-separated schemes to rank (default: every applicable one)")
    p.add_argument("--confirm", type=int, default=0, metavar="EPOCHS",
                   help="train the top schemes and torch_default for EPOCHS epochs (default 0: no training)")
    p.add_argument("--top", type=int, default=3, help="how many top-ranked schemes --confirm trains (default 3)")
    p.add_argument("--seeds", type=int, default=2, help="seeds per scheme for --confirm (default 2)")
    p.add_argument("--limit", type=int, default=10_000, help="training images for --confirm (default 10000)")
    p.add_argument("--limit-val", type=int, default=2_000, help="test images for --confirm (default 2000)")
    p.add_argument("--out", metavar="DIR", help="keep --confirm's study in DIR (default: a temporary directory)")
    p.add_argument("--seed", type=int, default=0, help="seed of the probe and the first training seed (default 0)")
    p.add_argument("--json", action="store_true", help="print the recommendation as JSON")
    p.set_defaults(func=run)


def preset(args: argparse.Namespace) -> Any:
    """The preset model spec of the flags (module docstring)."""
    from initlab.engine.convnets import CNNSpec, ResNetSpec
    from initlab.engine.models import MLPSpec

    for flag in ("depth", "width"):
        v = getattr(args, flag)
        if v is not None and v < 1:
            raise InitlabError(f"--{flag} must be >= 1, got {v}")
    family = args.family or "mlp"
    act = args.activation or "relu"
    if family == "mlp":
        if args.norm is not None:
            raise InitlabError("--norm shapes the cnn and resnet presets; drop it for an MLP or add --family cnn")
        if all(getattr(args, f) is None for f in ("depth", "width", "activation")):
            return MLPSpec()  # the article's MLP
        return MLPSpec(784, (args.width or 256,) * (args.depth or 10), 10, act, 0.0)
    if family == "cnn":
        return CNNSpec(depth=args.depth or 8, channels=args.width or 32, activation=act, norm=args.norm or "none")
    return ResNetSpec(depth=args.depth or 8, width=args.width or 16, activation=act, norm=args.norm or "none")


def run(args: argparse.Namespace) -> int:
    from initlab.cli.probe_cmd import parse_shape
    from initlab.recommender import recommend

    if args.model:
        given = [f"--{f}" for f in PRESET_FLAGS if getattr(args, f) is not None]
        if given:
            raise InitlabError(f"{', '.join(given)} only {'shapes' if len(given) == 1 else 'shape'} the preset models; drop {'it' if len(given) == 1 else 'them'} when recommending for "
                               f"{args.model}")
        model: Any = args.model
    else:
        model = preset(args)
    shape = parse_shape(args.input_shape) if args.input_shape else None
    rec = recommend(model, args.data, input_shape=shape, optimizer=args.optimizer, confirm_epochs=args.confirm,
                    schemes=args.schemes, seed=args.seed, top=args.top, seeds=args.seeds, limit=args.limit,
                    limit_val=args.limit_val, data_dir=args.data_dir, out=args.out,
                    log=None if args.json else (lambda line: print(f"initlab: {line}", file=sys.stderr)))
    if args.json:
        print(json.dumps(rec.to_dict(), indent=2, allow_nan=False))
    else:
        print(rec)
    return 0
