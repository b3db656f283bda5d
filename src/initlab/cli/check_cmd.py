"""``initlab check``: do a model's weights follow a scheme's law? A linter for initialization.

    initlab check --scheme uniform_recipe --init keras_default     # the article's mistake: flagged
    initlab check --scheme uniform_recipe --init uniform_recipe    # conforms
    initlab check path/to/model.py:build --scheme he_normal        # the model as its factory builds it
    initlab check path/to/model.py:build --weights ckpt.pt --scheme he_normal   # saved weights
    initlab check ... --json | --sigmas 5 | --seed 0 | --no-identify

The model is ``FILE.py:FUNCTION`` (a function returning an ``nn.Module``, loaded with
:func:`initlab.engine.custom_model.load_factory`) or, without it, the article's MLP
(784-256-128-10, ReLU, dropout 0.2; :func:`initlab.engine.models.build_mlp`). It is built
with torch's RNG seeded by ``--seed`` (inside :func:`torch.random.fork_rng`), so the
construction-time init (PyTorch's default) is reproducible. Then, optionally:

- ``--init SCHEME`` re-initializes it with ``initlab.apply(model, SCHEME, seed=--seed)``
  (teaching and demos: show what a right or wrong init looks like);
- ``--weights FILE`` loads a ``torch.save``'d state_dict (or a dict holding one under
  ``"state_dict"`` or ``"model_state_dict"``) with ``torch.load(weights_only=True)`` and
  ``load_state_dict(strict=True)``.

The weights are then tested with :func:`initlab.check` (z-tests on mean and variance at
``--sigmas``, a KS test on the distribution's shape). Data-dependent schemes (``lsuv``,
``lsuv_fastai``) are refused for both ``--init`` and ``--scheme``: they have no law to
check against without the very batch they were fitted on (use
``initlab.check(model, "lsuv", data=batch)`` from Python).

When some layer does not conform, the report ends with what the weights *do* look like:
``weights look like: glorot_uniform (= keras_default)``, the registered schemes whose law
every layer conforms to (:func:`initlab.check.identify`), or ``none of the registered
schemes``. ``--no-identify`` skips that search (~30 more schemes tested).

``--json`` prints :meth:`CheckReport.to_dict` (``looks_like``: that list of labels, or
``null`` when every layer conforms or with ``--no-identify``) plus ``unsupported`` (the
parameterized layers left unchecked), with non-finite numbers (an infinite z) as ``null``.

Exit status, like a linter: 0 every checked layer conforms, 1 some layer does not,
2 bad input (one ``initlab: error:`` line on stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from initlab.errors import InitlabError

if TYPE_CHECKING:  # imported lazily at run time: `initlab --help` stays fast
    from torch import nn

    from initlab.schemes import Scheme

#: Exit status when every checked layer conforms / when some layer does not (2 is bad input).
EXIT_CONFORMS, EXIT_MISMATCH = 0, 1

#: Keys under which training scripts commonly nest the state_dict in a checkpoint dict.
STATE_DICT_KEYS = ("state_dict", "model_state_dict")

_EPILOG = """\
examples:
  initlab check --scheme uniform_recipe --init keras_default     the article's mistake: flagged
  initlab check --scheme uniform_recipe --init uniform_recipe    the honest recipe: conforms
  initlab check model.py:build --scheme torch_default            the model as its factory builds it
  initlab check model.py:build --weights ckpt.pt --scheme he_normal

exit status:
  0  every checked layer conforms to the scheme's law
  1  some layer does not (its row says MISMATCH and why; a last line says which
     registered schemes the weights do look like, unless --no-identify)
  2  bad input: unknown scheme, unreadable model or weights file, conflicting flags

Data-dependent schemes (lsuv, lsuv_fastai) have no law to check without the batch they
were fitted on: they are refused here; use initlab.check(model, "lsuv", data=batch)."""


def add_parser(sub: Any) -> None:
    """Register ``initlab check`` on the sub-parsers *sub*."""
    p = sub.add_parser(
        "check", help="test whether a model's weights follow a scheme's law (exit 1 if not)",
        description="Test whether each layer's weights look like draws from SCHEME's law: z-tests\n"
                    "on mean and variance, and a Kolmogorov-Smirnov test on the distribution.\n"
                    "Without FILE.py:FUNCTION the model is the article's MLP (784-256-128-10, ReLU,\n"
                    "dropout 0.2), built with PyTorch's default init unless --init or --weights.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", metavar="FILE.py:FUNCTION",
                   help="a function returning an nn.Module (default: the article's MLP)")
    p.add_argument("--scheme", required=True,
                   help="the scheme the weights should follow: a name or spec, e.g. he_normal, "
                        "uniform_recipe or 'normal(std=0.05)' ('initlab schemes' lists them)")
    p.add_argument("--init", metavar="SCHEME",
                   help="first initialize the model with this scheme (initlab.apply, seed --seed)")
    p.add_argument("--weights", metavar="FILE",
                   help="first load this torch.save'd state_dict into the model (strict); not with --init")
    p.add_argument("--sigmas", type=float, default=5.0, metavar="Z",
                   help="z threshold for the mean and variance tests (default 5)")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seed of --init and of torch's RNG while the model is built (default 0)")
    p.add_argument("--json", action="store_true",
                   help="print the report as JSON (ok, layers, failures, looks_like, unsupported)")
    p.add_argument("--no-identify", action="store_true",
                   help="on a mismatch, do not search the registered schemes for the ones the "
                        "weights do look like")
    p.set_defaults(func=run)


def data_free_scheme(spec: str, flag: str) -> Scheme:
    """The :class:`~initlab.schemes.Scheme` for *spec*, refusing data-dependent ones."""
    from initlab.schemes import get_scheme

    s = get_scheme(spec)
    if s.requires_data and not (flag == "--scheme" and getattr(s, "checked_by_law", False)):  # gradinit, metainit
        raise InitlabError(f"{flag} {s.name} is data-dependent (it fits each layer to a data batch) and has "
                           "no law to check against; give a data-free scheme such as he_normal, or use "
                           f"initlab.check(model, {s.name!r}, data=batch) from Python")
    return s


def build_model(target: str | None, seed: int) -> nn.Module:
    """The model to check: ``FILE.py:FUNCTION``'s result or the article's MLP, built with
    torch's global RNG seeded by *seed* inside ``fork_rng`` (the caller's RNG is untouched)."""
    import torch

    from initlab.engine.models import MLPSpec, build_mlp
    from initlab.engine.custom_model import load_factory

    factory = load_factory(target) if target else (lambda: build_mlp(MLPSpec()))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def _state_dict_in(obj: Any, path: str) -> Mapping[str, Any]:
    """The state_dict inside what ``torch.load`` returned: itself, or under a known key."""
    if isinstance(obj, Mapping):
        for key in STATE_DICT_KEYS:
            if isinstance(obj.get(key), Mapping):
                return obj[key]
        if obj and all(isinstance(k, str) for k in obj):
            return obj
    raise InitlabError(f"--weights {path!r} holds a {type(obj).__name__}, not a state_dict; save "
                       "model.state_dict() (or a dict with it under 'state_dict' or 'model_state_dict')")


def _names(keys: list[str], limit: int = 3) -> str:
    """``a, b, c and 4 more``."""
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _misfit(model: nn.Module, state: Mapping[str, Any]) -> str:
    """Why *state* does not fit *model* (missing/unexpected keys, shapes), or ``""``."""
    own = model.state_dict()
    problems = []
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing:
        problems.append(f"missing {_names(missing)}")
    if unexpected:
        hint = " (saved from DataParallel? strip the 'module.' prefix)" if all(
            k.startswith("module.") for k in unexpected) else ""
        problems.append(f"unexpected {_names(unexpected)}{hint}")
    for k, v in state.items():
        if k in own and hasattr(v, "shape") and tuple(v.shape) != tuple(own[k].shape):
            shape = "x".join(map(str, v.shape)) or "scalar"
            problems.append(f"{k} is {shape} in the file but "
                            f"{'x'.join(map(str, own[k].shape)) or 'scalar'} in the model")
            break
    return "; ".join(problems)


def load_weights(model: nn.Module, path: str) -> None:
    """Load the state_dict saved at *path* into *model* (``weights_only``, strict); every
    failure is one :class:`InitlabError` line."""
    import torch

    if not Path(path).is_file():
        what = "is not a file" if Path(path).exists() else "does not exist"
        raise InitlabError(f"--weights file {path!r} {what}; give a torch.save'd state_dict")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        text = " ".join(str(exc).split())
        if isinstance(exc, pickle.UnpicklingError) and "safe_globals" in text:
            raise InitlabError(f"--weights {path!r} holds pickled objects (e.g. a whole model), which a "
                               "weights-only load refuses; save model.state_dict() instead") from None
        why = ""  # torch's unpickling message is a page of advice about weights_only=False
        if not isinstance(exc, pickle.UnpicklingError):
            first = text.split(". ")[0][:120]
            why = f" ({type(exc).__name__}: {first})" if first else f" ({type(exc).__name__})"
        raise InitlabError(f"cannot read --weights {path!r}: not a torch.save file, or a damaged one{why}; "
                           "give a file written by torch.save(model.state_dict(), path)") from None
    state = _state_dict_in(obj, path)
    misfit = _misfit(model, state)
    if misfit:
        raise InitlabError(f"--weights {path!r} does not fit the model: {misfit}; "
                           "save the state_dict of this very architecture")
    try:
        model.load_state_dict(state, strict=True)
    except Exception as exc:  # noqa: BLE001 - e.g. non-tensor values
        reason = " ".join(str(exc).split())[:160]
        raise InitlabError(f"loading --weights {path!r} failed: {reason}; save model.state_dict()") from None


def unsupported_line(unsupported: list[tuple[str, str, str]], limit: int = 6) -> str:
    """One line naming the parameterized layers that were not checked, grouped by reason."""
    groups: dict[tuple[str, str], list[str]] = {}
    for name, kind, reason in unsupported:
        groups.setdefault((kind, reason), []).append(name)
    parts = [f"{_names(names, limit)} ({kind}: {reason})" for (kind, reason), names in groups.items()]
    return "not checked: " + "; ".join(parts)


def _finite(obj: Any) -> Any:
    """*obj* with NaN and infinite floats as ``None`` (strict JSON has neither); an infinite
    z means a zero-variance law met different values."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def run(args: argparse.Namespace) -> int:
    """Build (and initialize or load) the model, check it, print the report; return the exit
    status (0 conforms, 1 some layer does not; bad input raises :class:`InitlabError`)."""
    import initlab

    if not (math.isfinite(args.sigmas) and args.sigmas > 0):
        raise InitlabError(f"--sigmas must be a positive number of standard errors, e.g. 5; got {args.sigmas}")
    if args.seed < 0:
        raise InitlabError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.init and args.weights:
        raise InitlabError("give either --init (initialize the model) or --weights (load saved weights), "
                           "not both")
    scheme = data_free_scheme(args.scheme, "--scheme")
    init = data_free_scheme(args.init, "--init") if args.init else None
    model = build_model(args.model, args.seed)
    if init is not None:
        initlab.apply(model, init, seed=args.seed)
    elif args.weights:
        load_weights(model, args.weights)
    report = initlab.check(model, scheme, sigmas=args.sigmas, identify=not args.no_identify)
    if args.json:
        d = report.to_dict()
        d["unsupported"] = [{"name": n, "type": t, "reason": r} for n, t, r in report.unsupported]
        print(json.dumps(_finite(d), indent=2, allow_nan=False))
    else:
        print(report)
        if report.unsupported:
            print(unsupported_line(report.unsupported))
    return EXIT_CONFORMS if report.ok else EXIT_MISMATCH
