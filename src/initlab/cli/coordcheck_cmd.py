"""``initlab coordcheck``: muP's coordinate check, standard parametrization vs muP.

    initlab coordcheck                                   # mlp, widths 2^7..2^12, Fashion-MNIST
    initlab coordcheck --family cnn --widths 2^5..2^9 --steps 4 --lr 0.01 --json
    initlab coordcheck --synthetic --widths 32,64,128,256 --figure out/cc.png

The change of every weight layer's output from initialization, std(x_t - x_0) (Tensor
Programs V, Figure 5), over the first optimizer steps across widths, under the base scheme with
one learning rate (SP) and under ``mup`` with its per-parameter learning rates; the verdict is
the slope of log std(x_t - x_0) against log width per layer at the last step
(:mod:`initlab.probe.coordcheck`: stable when every |slope| <= 0.2, blows up when the output's
and a hidden layer's slope >= 0.4). mean |x_t| is reported beside it.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from initlab.errors import InitlabError


#: the default learning rates of microsoft/mup's ``get_coord_data`` (``lr=None``)
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.1}


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "coordcheck", help="muP's coordinate check: activation size vs width, SP vs muP, with a verdict",
        description="Train each width for a few steps under the standard parametrization (one learning rate) "
                    "and under muP (per-parameter learning rates), record mean |activation| per layer, and "
                    "judge the slope of log mean|x| against log width at the last step.")
    p.add_argument("--family", default="mlp", help="mlp, cnn or resnet (default mlp)")
    p.add_argument("--widths", default="2^7..2^12",
                   help="increasing widths: 128,256,512 or 2^7..2^12 (default 2^7..2^12)")
    p.add_argument("--depth", type=int, default=3, help="hidden layers / conv layers / blocks (default 3)")
    p.add_argument("--steps", type=int, default=4, help="optimizer steps (default 4)")
    p.add_argument("--lr", type=float, default=None,
                   help="the learning rate (SP) and muP's base lr (default: microsoft/mup get_coord_data's, "
                        f"{DEFAULT_LR['adam']:g} for adam, {DEFAULT_LR['sgd']:g} for sgd)")
    p.add_argument("--optimizer", default="adam", choices=("adam", "sgd"), help="adam or sgd (default adam)")
    p.add_argument("--seeds", type=int, default=3, help="models per width, averaged (default 3)")
    p.add_argument("--batch-size", type=int, default=64, help="training batch (default 64)")
    p.add_argument("--base", default="he_normal", help="SP's scheme and muP's base scheme (default he_normal)")
    p.add_argument("--base-width", type=int, default=None, help="muP's base width (default the first width)")
    p.add_argument("--data", default="fashion-mnist", metavar="NAME", help="fashion-mnist (default) or mnist")
    p.add_argument("--data-dir", help="data root (default: INITLAB_DATA_DIR or the cache)")
    p.add_argument("--n-train", type=int, default=4096, help="training images the batches are drawn from "
                                                             "(default 4096)")
    p.add_argument("--fix-data", action="store_true",
                   help="train every step on the same batch and measure on it (microsoft/mup's fix_data=True); "
                        "default: a drawn batch per step, measured on a fixed batch of 256")
    p.add_argument("--synthetic", action="store_true", help="Gaussian inputs and random labels instead of --data")
    p.add_argument("--figure", metavar="PATH", help="PNG to write (default coordcheck-<family>.png)")
    p.add_argument("--no-figure", action="store_true", help="write no figure")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from initlab.probe.coordcheck import FAMILIES, coordcheck, family_spec, parse_widths
    from initlab.schemes import get_scheme

    from initlab.errors import UnknownNameError, suggest

    if args.family not in FAMILIES:
        raise UnknownNameError(f"--family {args.family!r} is not one coordcheck knows"
                               f"{suggest(args.family, list(FAMILIES))}; choose one of {', '.join(FAMILIES)}")
    widths = parse_widths(args.widths)
    for flag, v in (("--depth", args.depth), ("--steps", args.steps), ("--seeds", args.seeds),
                    ("--batch-size", args.batch_size), ("--n-train", args.n_train)):
        if v < 1:
            raise InitlabError(f"{flag} must be >= 1, got {v}")
    if args.lr is None:
        args.lr = DEFAULT_LR[args.optimizer]
    if not args.lr > 0:
        raise InitlabError(f"--lr must be positive, got {args.lr}")
    if args.base_width is not None and args.base_width < 1:
        raise InitlabError(f"--base-width must be >= 1, got {args.base_width}")
    if args.figure and args.no_figure:
        raise InitlabError("give either --figure or --no-figure, not both")
    get_scheme(args.base)  # unknown names: one line before any work
    get_scheme("mup", base=args.base)
    family_spec(args.family, widths[0], args.depth)
    figure = None
    if not args.no_figure:
        from initlab.outputs import check_output_file

        figure = check_output_file(args.figure or f"coordcheck-{args.family}.png", "--figure",
                                   example="coordcheck.png")
    data, name = None, "synthetic"
    if not args.synthetic:
        from initlab.data.datasets import load_dataset

        ds = load_dataset(args.data, data_dir=args.data_dir, limit_train=args.n_train, limit_val=1)
        data, name = (ds.train.x, ds.train.y), args.data
    result = coordcheck(args.family, widths, steps=args.steps, lr=args.lr, optimizer=args.optimizer,
                        seeds=args.seeds, batch_size=args.batch_size, depth=args.depth, base=args.base,
                        base_width=args.base_width, data=data, data_name=name, fix_data=args.fix_data)
    path = str(result.save_figure(figure)) if figure is not None else None
    if args.json:
        d = result.to_dict()
        d["figure"] = path
        print(json.dumps(d, indent=2, allow_nan=False))
    else:
        print(result.table())
        if path:
            print(f"wrote {path}")
    return 0
