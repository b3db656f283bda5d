"""``initlab probe``: signal propagation at initialization, per scheme, with verdicts.

    initlab probe --depth 50 --width 256 --activation relu --schemes he_normal,glorot_normal
    initlab probe path/to/model.py:build_model --input-shape 3,32,32 --schemes he_normal,orthogonal
    initlab probe --data fashion-mnist --json --figures out/

Without a model file the preset MLP is ``in_features -> width x depth -> out_features`` with
the given activation (784 -> ... -> 10 by default, the article's shape). Inputs are standard
Gaussian noise (``--input-shape``, default the first Linear layer's width) or the first
``--n-inputs`` training images of ``--data``.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from initlab.errors import InitlabError

PRESET_FLAGS = ("depth", "width", "activation", "in_features", "out_features")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "probe", help="measure signal propagation at init (variance, gradients, dead units, symmetry)",
        description="Probe how signals and gradients propagate through a network at initialization under "
                    "each scheme, compare with mean-field theory, and say what goes wrong and where.")
    p.add_argument("model", nargs="?", metavar="FILE.py:FUNCTION",
                   help="a function returning an nn.Module (default: the preset MLP below)")
    g = p.add_argument_group("preset MLP (without FILE.py:FUNCTION)")
    g.add_argument("--depth", type=int, default=None, help="hidden layers (default 10)")
    g.add_argument("--width", type=int, default=None, help="hidden width (default 256)")
    g.add_argument("--activation", default=None, help="relu, tanh, linear, sigmoid, selu, gelu, silu, "
                                                      "leaky_relu (default relu)")
    g.add_argument("--in-features", type=int, default=None, help="input width (default 784, or the data's)")
    g.add_argument("--out-features", type=int, default=None, help="output width (default 10)")
    p.add_argument("--schemes", default="he_normal,glorot_normal,torch_default",
                   help="comma-separated scheme names or specs (default he_normal,glorot_normal,torch_default)")
    p.add_argument("--data", metavar="NAME", help="probe on real images: fashion-mnist or mnist")
    p.add_argument("--data-dir", help="data root for --data (default: INITLAB_DATA_DIR or the cache)")
    p.add_argument("--standardize", action="store_true", help="standardize --data pixels")
    p.add_argument("--input-shape", metavar="C,H,W", help="shape of one noise input, e.g. 3,32,32")
    p.add_argument("--n-inputs", type=int, default=512, help="batch size (default 512)")
    p.add_argument("--seed", type=int, default=0, help="seed of the init, noise and labels (default 0)")
    p.add_argument("--no-jacobian", action="store_true", help="skip the input-output Jacobian spectrum (the calibrated score then goes without its spread)")
    p.add_argument("--all-layers", action="store_true", help="show every layer in the table")
    p.add_argument("--figures", metavar="DIR", help="write probe_variance.png, probe_gradients.png "
                                                   "(and probe_jacobian.png) into DIR")
    p.add_argument("--optimizer", default="adam", help="the optimizer the predicted (calibrated) verdicts are "
                                                       "for: adam or sgd (default adam)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(func=run)


def split_specs(text: str) -> list[str]:
    """Split a comma-separated scheme list, keeping commas inside parentheses
    (``he_normal,normal(mean=0,std=0.1)`` gives two specs)."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        depth += (ch == "(") - (ch == ")")
        cur.append(ch)
    out.append("".join(cur).strip())
    specs = [s for s in out if s]
    if not specs or depth != 0:
        raise InitlabError(f"--schemes must be comma-separated scheme names, e.g. he_normal,glorot_normal; "
                           f"got {text!r}")
    return specs


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(p) for p in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(s < 1 for s in shape):
        raise InitlabError(f"--input-shape must be positive integers like 3,32,32, got {text!r}")
    return shape


def _load_data(args: argparse.Namespace) -> tuple[Any, Any]:
    from initlab.data.datasets import load_dataset

    ds = load_dataset(args.data, data_dir=args.data_dir, standardize=args.standardize,
                      limit_train=args.n_inputs, limit_val=1)
    return ds.train.x, ds.train.y


def _model(args: argparse.Namespace, in_from_data: int | None) -> Any:
    from initlab.engine.models import MLPSpec
    from initlab.engine.custom_model import load_factory

    if args.model:
        given = [f"--{f.replace('_', '-')}" for f in PRESET_FLAGS if getattr(args, f) is not None]
        if given:
            raise InitlabError(f"{', '.join(given)} only shape the preset MLP; drop them when probing "
                               f"{args.model}")
        return load_factory(args.model)
    depth = 10 if args.depth is None else args.depth
    width = 256 if args.width is None else args.width
    if depth < 1 or width < 1:
        raise InitlabError(f"--depth and --width must be >= 1, got {depth} and {width}")
    for flag, value in (("--in-features", args.in_features), ("--out-features", args.out_features)):
        if value is not None and value < 1:
            raise InitlabError(f"{flag} must be >= 1, got {value}")
    in_features = args.in_features or in_from_data or 784
    out_features = 10 if args.out_features is None else args.out_features
    return MLPSpec(in_features, (width,) * depth, out_features, args.activation or "relu", 0.0)


def run(args: argparse.Namespace) -> int:
    from initlab.probe import probe
    from initlab.probe.calibration import check_optimizer

    optimizer = check_optimizer(args.optimizer)
    if args.n_inputs < 2:
        raise InitlabError(f"--n-inputs must be >= 2, got {args.n_inputs}")
    if args.data and args.input_shape:
        raise InitlabError("give either --data or --input-shape, not both")
    schemes = split_specs(args.schemes)
    data, in_from_data = None, None
    if args.data:
        x, y = _load_data(args)
        data, in_from_data = (x, y), math.prod(x.shape[1:])
    model = _model(args, in_from_data)
    result = probe(model, data, schemes, input_shape=parse_shape(args.input_shape) if args.input_shape else None,
                   n_inputs=args.n_inputs, seed=args.seed, jacobian=False if args.no_jacobian else None)
    paths = [str(p) for p in result.save_figures(args.figures)] if args.figures else []
    if args.json:
        d = result.to_dict()
        preds = result.predictions(optimizer)
        for sd in d["schemes"]:  # beside the raw "verdicts" (measured), the calibrated prediction
            sd["predicted"] = {"optimizer": optimizer, **preds[sd["scheme"]].to_dict()}
        if paths:
            d["figures"] = paths
        print(json.dumps(d, indent=2, allow_nan=False))
    else:
        print(result.table(all_layers=args.all_layers, optimizer=optimizer))
        for p in paths:
            print(f"wrote {p}")
    return 0
