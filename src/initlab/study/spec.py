"""Study spec files (TOML).

Schema (every table and key is optional; a key not given comes from ``preset`` when one is
named, else from the defaults shown, which are the article's settings)::

    [study]
    name = "my-study"          # default: the preset's name, else the file name without .toml
    plugins = ["my_schemes.py"]  # files registering schemes of your own (initlab.plugins),
                               # relative to this file; loaded before [schemes] is read
    preset = "seed"            # start from a preset (seed, deep, smoke); the rest overrides it
    seeds = 3                  # a count N <= 10000 (seeds 0..N-1) or a list such as
                               # [0, 5, 7] (distinct integers in [0, 2**63))
    epochs = 10

    [data]
    dataset = "fashion-mnist"  # or several: datasets = ["fashion-mnist", "mnist"]
    validation = "test"        # the official test set (the article), or a hold-out fraction
    limit_train = 5000         # keep only the first N training examples (default: all)
    limit_val = 1000           # ... and validation examples

    [model]                    # one model; its keys override the base model
    hidden = [256, 128]        #   (the preset's model, else the article's MLP)
    activation = "relu"        # relu, tanh, sigmoid, selu, gelu, silu, leaky_relu, linear
    dropout = 0.2
    in_features = 784
    out_features = 10
    name = "article-mlp"       # label in tables (default: e.g. mlp-256x128-relu-d0.2)

    [[models]]                 # or several variants (instead of [model]); each overrides
    hidden = [512]             # the base model like [model] does
    [[models]]
    hidden = [256, 256, 256, 256]

    [schemes]
    list = ["zeros", "he_normal", "uniform(a=-0.5, b=0.5)"]   # default: the article's seven

    [train]                    # TrainConfig settings except epochs (in [study]) and device
    optimizer = "adam"         # or "sgd" (torch.optim.SGD), with momentum = 0.9,
                               # nesterov = true, weight_decay = 1e-4 (SGD only)
    schedule = "constant"      # or "step" (gamma = 0.1 every step_epochs = 30) or "cosine";
    warmup_epochs = 0          # linear warm-up over this many epochs (TrainConfig.lr_factor)
    lr = 0.001
    batch_size = 128
    eps = 1e-7                 # Adam epsilon; Keras' default, as in the article
    betas = [0.9, 0.999]
    log_every = 50             # record the training loss every N steps (0: no step records)
    shuffle = true
    standardize = false        # per-channel standardization with the training set's statistics
    probe_size = 512           # validation images used for activation statistics
    hist_bins = 40             # bins of the weight histograms

Grid axes: any ``[train]`` value may be a list, which makes that setting an axis of the
grid (``lr = [0.001, 0.01, 0.1]``: three train settings; two lists give their product);
for ``betas``, whose value is a list itself, an axis is a list of lists. Instead of one
``[train]`` table, ``[[train]]`` tables give alternative settings, each overriding the
base (the preset's settings, else the article's) and each with axes of its own::

    [[train]]
    optimizer = "adam"
    lr = 0.001
    [[train]]
    optimizer = "sgd"
    momentum = 0.9
    lr = [0.01, 0.1]

The study is then the grid scheme x seed x model x dataset x train setting; cells whose
dataset, model and train settings agree train together.

The file is UTF-8 (a leading byte-order mark is dropped). Integers are TOML's 64-bit
ones; numbers must be finite where a setting needs a number (``inf`` and ``nan`` are TOML
values, but no setting accepts them).

Errors are :class:`~initlab.errors.InitlabError` messages of one line starting with
``FILE:LINE:`` where the line is known: TOML syntax errors (from ``tomllib``), unknown
tables or keys (naming the key and listing the valid ones), and bad values.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from initlab.engine.config import TrainConfig
from initlab.engine.families import DEFAULT_KIND, family, family_kinds, spec_from_dict
from initlab.engine.models import MLPSpec
from initlab.errors import InitlabError, suggest
from initlab.study.axes import expand_axes
from initlab.study.config import (
    StudyConfig,
    canonical_scheme,
    normalize_seeds,
    split_scheme_list,
    train_fields,
    train_grid,
)
from initlab.study.presets import get_preset

__all__ = ["VALID_KEYS", "load_spec", "parse_spec", "parse_spec_dict"]

_MODEL_KEYS = MLPSpec.keys()

#: Valid keys per table ("" is the top level).
VALID_KEYS: dict[str, tuple[str, ...]] = {
    "": ("study", "data", "model", "models", "schemes", "train"),
    "study": ("name", "preset", "seeds", "epochs", "plugins"),
    "data": ("dataset", "datasets", "validation", "limit_train", "limit_val"),
    "model": _MODEL_KEYS,
    "models": _MODEL_KEYS,
    "schemes": ("list",),
    "train": tuple(f for f in train_fields() if f != "epochs"),
}

# a table header, e.g. "[train]" or "[[ models ]]" (the name is stripped by the caller);
# one unambiguous character class, so a long line cannot make the match backtrack
_HEADER = re.compile(r"^\s*(\[\[?)([A-Za-z0-9_.\"' \t-]+)\]")
_AT_LINE = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


class _Source:
    """The spec text plus best-effort line lookup for error messages."""

    def __init__(self, text: str, name: str) -> None:
        self.lines = text.splitlines()
        name = str(name)
        self.name = name if name.isprintable() else repr(name)  # messages stay one line

    def line_of(self, table: str, key: str | None = None, index: int | None = None) -> int | None:
        """1-based line of ``key`` inside ``[table]`` (the ``index``-th ``[[table]]``), or of
        the table header when the key is not found, or ``None``."""
        current, count, header_line = "", -1, None
        for i, raw in enumerate(self.lines, start=1):
            m = _HEADER.match(raw)
            if m:
                current = m.group(2).strip().strip("\"'")
                if current == table:
                    count += 1
                    if index is None or count == index:
                        header_line = i
                continue
            in_table = current == table and (index is None or count == index)
            if key is not None and in_table and re.match(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=", raw):
                return i
            if key is not None and table and current == "" and re.match(
                rf"^\s*{re.escape(table)}\s*\.\s*{re.escape(key)}\s*=", raw
            ):
                return i
        if table == "" and key is not None:
            for i, raw in enumerate(self.lines, start=1):
                m = _HEADER.match(raw)
                if m and m.group(2).strip() == key:
                    return i
        return header_line

    def error(self, message: str, line: int | None, cls: type[InitlabError] = InitlabError) -> InitlabError:
        where = f"{self.name}:{line}" if line else self.name
        return cls(f"{where}: {message}")

    @contextmanager
    def at(self, table: str, key: str | None = None, index: int | None = None) -> Iterator[None]:
        """Re-raise InitlabErrors inside the block with this location prefixed."""
        try:
            yield
        except (InitlabError, TypeError, ValueError) as exc:
            label = _where(table, key, index)
            message = f"{label}: {exc}" if label else str(exc)
            cls = type(exc) if isinstance(exc, InitlabError) else InitlabError
            raise self.error(message, self.line_of(table, key, index), cls) from None


def _where(table: str, key: str | None, index: int | None) -> str:
    t = f"[[{table}]] #{index + 1}" if index is not None else (f"[{table}]" if table else "")
    if key is None:
        return t
    return f"{t} {key}".strip()


def _check_keys(src: _Source, table: str, d: Mapping[str, Any], index: int | None = None,
                valid: tuple[str, ...] | None = None, kind: str | None = None) -> None:
    valid = VALID_KEYS[table] if valid is None else valid
    for key in d:
        if key not in valid:
            hint = ""
            if table == "train" and key == "epochs":
                hint = " (epochs goes in [study])"
            elif table == "train" and key in ("device", "eval_batch_size"):
                hint = " (an execution setting: pass it to 'initlab run' instead)"
            place = f"in {_where(table, None, index)}" if table else "at the top level"
            if kind is not None:
                place += f" for model kind {kind!r}"
            raise src.error(
                f"unknown key {key!r} {place}{hint}{suggest(key, list(valid))}; "
                f"valid keys: {', '.join(valid)}",
                src.line_of(table, key, index),
            )


def _table(src: _Source, doc: Mapping[str, Any], name: str, check: bool = True) -> dict[str, Any]:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise src.error(f"'{name}' must be a table ([{name}]), got {value!r}", src.line_of("", name))
    if check:
        _check_keys(src, name, value)
    return value


def _list_valued(cls: type) -> Callable[[str], bool]:
    """Whether a key of the spec class *cls* takes a list itself (then an axis of it is a
    list of lists; see :mod:`initlab.study.axes`)."""
    listy = {f.name for f in dataclasses.fields(cls) if "tuple" in str(f.type) or "list" in str(f.type)}
    return listy.__contains__


def _model_specs(src: _Source, entry: dict[str, Any], base_model: Mapping[str, Any],
                 index: int | None, base_dir: str | os.PathLike[str] | None) -> list[Any]:
    """The model specs of one [model] / [[models]] table: its kind's keys over the base
    model's (when the kinds agree), every axis expanded."""
    table = "models" if index is not None else "model"
    base_kind = base_model.get("kind", DEFAULT_KIND)
    kind = entry.get("kind", base_kind)
    with src.at(table, "kind" if "kind" in entry else None, index):
        if not isinstance(kind, str):
            raise InitlabError(f"kind must be a model kind name ({', '.join(family_kinds())}), got {kind!r}")
        cls = family(kind)
    _check_keys(src, table, entry, index, valid=cls.keys(), kind=kind)
    merged = {**(base_model if kind == base_kind else {}), **entry}
    if kind != DEFAULT_KIND:
        merged["kind"] = kind
    if kind == "custom" and isinstance(merged.get("builder"), str) and base_dir is not None:
        path, sep, func = merged["builder"].rpartition(":")
        if sep and path and not Path(path).expanduser().is_absolute():
            merged["builder"] = f"{Path(base_dir) / Path(path).expanduser()}:{func}"
    specs = []
    with src.at(table, None, index):
        for variant in expand_axes(merged, _list_valued(cls), f"[{table}]"):
            if kind == DEFAULT_KIND:
                _check_model_entry(variant)
            specs.append(spec_from_dict(variant))
    return specs


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InitlabError(f"{what} must be a non-empty string, got {value!r}")
    return value.strip()


def _check_model_entry(entry: Mapping[str, Any]) -> None:
    """Type checks of a [model] / [[models]] table before building the MLPSpec."""
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if "hidden" in entry:
        h = entry["hidden"]
        if not isinstance(h, list) or not all(is_int(v) for v in h):
            raise InitlabError(f"hidden must be a list of layer widths (integers), got {h!r}")
    for key in ("in_features", "out_features"):
        if key in entry and not is_int(entry[key]):
            raise InitlabError(f"{key} must be an integer, got {entry[key]!r}")
    if "dropout" in entry and (isinstance(entry["dropout"], bool)
                               or not isinstance(entry["dropout"], (int, float))):
        raise InitlabError(f"dropout must be a number in [0, 1), got {entry['dropout']!r}")
    for key in ("activation", "name"):
        if key in entry and not isinstance(entry[key], str):
            raise InitlabError(f"{key} must be a string, got {entry[key]!r}")


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _check_integers(src: _Source, doc: Mapping[str, Any]) -> None:
    """TOML integers are 64-bit, but tomllib reads any size: reject larger ones (a seed count
    of 10**20, say) here, naming their key."""
    stack: list[tuple[tuple[Any, ...], Any]] = [((), doc)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(((*path, k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in enumerate(value))
        elif (isinstance(value, int) and not isinstance(value, bool)
              and not _INT64_MIN <= value <= _INT64_MAX):
            keys = [p for p in path if isinstance(p, str)]
            index = path[1] if len(path) > 2 and path[0] in ("models", "train") and isinstance(path[1], int) else None
            table, key = (keys[0], keys[1]) if len(keys) > 1 else ("", keys[0])
            label = _where(table, key, index)
            raise src.error(f"{label}: an integer beyond TOML's 64-bit range "
                            f"(|n| <= {_INT64_MAX}); use a smaller number",
                            src.line_of(table, key, index))


def _check_betas(value: Any) -> None:
    if not (isinstance(value, list) and len(value) == 2
            and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in value)):
        raise InitlabError(f"betas must be a list of two numbers in [0, 1), got {value!r}")


def _check_train_value(key: str, value: Any) -> None:
    """Check one [train] value, or each value of an axis (a list; for betas a list of lists)."""
    is_axis = isinstance(value, list) and (key != "betas" or any(isinstance(v, list) for v in value))
    if is_axis and not value:
        raise InitlabError(f"{key} is an empty list; a list of values makes it an axis of the grid "
                           "(give at least one)")
    for v in value if is_axis else [value]:
        if key == "betas":
            _check_betas(v)
        TrainConfig.check_field(key, v)


def _tomllib_location(exc: tomllib.TOMLDecodeError) -> tuple[str, int | None, int | None]:
    """Message and position of a TOML syntax error (``lineno``/``colno`` on Python >= 3.14,
    parsed from the message's ``(at line L, column C)`` before)."""
    msg = str(exc.args[0]) if exc.args else str(exc)
    line, col = getattr(exc, "lineno", None), getattr(exc, "colno", None)
    m = _AT_LINE.search(msg)
    if m:
        msg = msg[: m.start()]
        line, col = line or int(m.group(1)), col or int(m.group(2))
    return (getattr(exc, "msg", None) or msg), line, col


def _load_plugins(paths: Any, base_dir: str | os.PathLike[str] | None) -> None:
    from initlab.plugins import load_plugin

    if not isinstance(paths, list) or not all(isinstance(p, str) and p.strip() for p in paths):
        raise InitlabError(f"plugins must be a list of Python file paths, got {paths!r}")
    for path in paths:
        load_plugin(Path(base_dir or ".") / Path(path).expanduser())


def parse_spec(text: str, source: str = "<spec>", default_name: str = "study",
               base_dir: str | os.PathLike[str] | None = None) -> StudyConfig:
    """Parse a spec's TOML ``text`` into a validated :class:`StudyConfig`.

    ``source`` names the text in error messages; ``default_name`` is the study name when
    neither ``[study] name`` nor a preset gives one; ``[study] plugins`` paths are relative
    to ``base_dir`` (the spec file's folder; default the working directory) and are
    loaded (:func:`initlab.plugins.load_plugin`) before the schemes are read.
    """
    if not isinstance(text, str):
        raise InitlabError(f"a study spec is TOML text (a str), got {type(text).__name__}")
    text = text.removeprefix("\ufeff")  # a UTF-8 byte-order mark
    src = _Source(text, source)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg, line, col = _tomllib_location(exc)
        msg = " ".join(str(msg).split())
        where = f"{src.name}:{line}:{col}" if line and col else (f"{src.name}:{line}" if line else src.name)
        raise InitlabError(f"{where}: malformed TOML: {msg}; fix the syntax there") from None
    except (RecursionError, MemoryError):
        raise InitlabError(f"{src.name}: malformed TOML: arrays or tables nest too deeply; "
                           "flatten them") from None
    except ValueError:  # Python's limit on the digits of an integer
        raise InitlabError(f"{src.name}: malformed TOML: an integer with thousands of digits; "
                           "TOML integers are 64-bit, use a smaller number") from None
    return _parse_doc(src, doc, default_name, base_dir)


def _as_toml_value(value: Any) -> Any:
    """Tuples as lists (TOML's arrays) and tables as dicts, all the way down."""
    if isinstance(value, Mapping):
        return {str(k): _as_toml_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_toml_value(v) for v in value]
    return value


def parse_spec_dict(doc: Mapping[str, Any], source: str = "<dict>", default_name: str = "study",
                    base_dir: str | os.PathLike[str] | None = None) -> StudyConfig:
    """A :class:`StudyConfig` from a dict in the TOML's shape (what ``tomllib`` gives for a
    spec file: ``{"study": {"preset": "smoke"}, "train": {"lr": 0.01}}``), with the same
    checks and one-line errors as :func:`parse_spec` (without line numbers)."""
    if not isinstance(doc, Mapping):
        raise InitlabError(f"a study dict is a mapping of TOML tables, got {type(doc).__name__}")
    return _parse_doc(_Source("", source), _as_toml_value(doc), default_name, base_dir)


def _parse_doc(src: _Source, doc: dict[str, Any], default_name: str,
               base_dir: str | os.PathLike[str] | None) -> StudyConfig:
    _check_keys(src, "", doc)
    _check_integers(src, doc)

    study = _table(src, doc, "study")
    data = _table(src, doc, "data")
    schemes = _table(src, doc, "schemes")
    train_variants: list[dict[str, Any]] | None = None
    if isinstance(doc.get("train"), list):  # [[train]] variants
        train_variants = doc["train"]
        if not train_variants or not all(isinstance(e, dict) for e in train_variants):
            raise src.error("'train' must be a table ([train]) or an array of tables ([[train]])",
                            src.line_of("", "train"))
        for i, entry in enumerate(train_variants):
            _check_keys(src, "train", entry, i)
        train: dict[str, Any] = {}
    else:
        train = _table(src, doc, "train")

    if "plugins" in study:
        with src.at("study", "plugins"):
            _load_plugins(study["plugins"], base_dir)
    base = StudyConfig()
    if "preset" in study:
        with src.at("study", "preset"):
            base = get_preset(_string(study["preset"], "preset"))
    kw: dict[str, Any] = base.to_dict()
    kw["name"] = base.name if "preset" in study else default_name
    kw["models"] = list(base.models)

    if "name" in study:
        with src.at("study", "name"):
            kw["name"] = _string(study["name"], "name")
    if "seeds" in study:
        with src.at("study", "seeds"):
            kw["seeds"] = normalize_seeds(study["seeds"])
    train_kw = dict(base.train)
    if "epochs" in study:
        with src.at("study", "epochs"):
            e = study["epochs"]
            if isinstance(e, bool) or not isinstance(e, int) or e < 1:
                raise InitlabError(f"epochs must be an integer >= 1, got {e!r}")
            train_kw["epochs"] = e

    # data
    if "dataset" in data and "datasets" in data:
        raise src.error("give either 'dataset' or 'datasets' in [data], not both",
                        src.line_of("data", "datasets"))
    if "dataset" in data:
        with src.at("data", "dataset"):
            kw["datasets"] = [_string(data["dataset"], "dataset")]
            StudyConfig(datasets=kw["datasets"])  # validate the name here, with the location
    if "datasets" in data:
        with src.at("data", "datasets"):
            ds = data["datasets"]
            if not isinstance(ds, list) or not ds:
                raise InitlabError(f"datasets must be a non-empty list of names, got {ds!r}")
            kw["datasets"] = [_string(d, "a dataset") for d in ds]
            StudyConfig(datasets=kw["datasets"])  # validate names here, with the location
    for key in ("validation", "limit_train", "limit_val"):
        if key in data:
            with src.at("data", key):
                kw[key] = data[key]
                StudyConfig(**{key: data[key]})

    # models
    if "model" in doc and "models" in doc:
        raise src.error("give either [model] or [[models]], not both", src.line_of("", "models"))
    base_model = base.models[0].to_dict() if len(base.models) == 1 else MLPSpec().to_dict()
    base_model["name"] = ""
    if "model" in doc:
        entry = _table(src, doc, "model", check=False)
        kw["models"] = _model_specs(src, entry, base_model, None, base_dir)
    if "models" in doc:
        entries = doc["models"]
        if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
            raise src.error("'models' must be an array of tables ([[models]])", src.line_of("", "models"))
        specs = []
        for i, entry in enumerate(entries):
            specs += _model_specs(src, entry, base_model, i, base_dir)
        kw["models"] = specs

    # schemes
    if "list" in schemes:
        with src.at("schemes", "list"):
            value = schemes["list"]
            if isinstance(value, str):
                value = split_scheme_list(value)
            if not isinstance(value, list) or not value:
                raise InitlabError(f"list must be a non-empty list of scheme names, got {value!r}")
            kw["schemes"] = [canonical_scheme(_string(s, "a scheme")) for s in value]

    # training settings: checked one by one so errors point at their line
    for key, value in train.items():
        with src.at("train", key):
            _check_train_value(key, value)
        train_kw[key] = value
    if train:
        with src.at("train"):  # the rules that tie settings together (SGD's settings)
            train_grid(train_kw)
    kw["train"] = train_kw
    if train_variants is not None:
        for i, entry in enumerate(train_variants):
            for key, value in entry.items():
                with src.at("train", key, i):
                    _check_train_value(key, value)
            with src.at("train", None, i):
                train_grid(train_kw, [entry])
        kw["train_variants"] = train_variants

    with src.at(""):
        return StudyConfig.from_dict(kw)


def load_spec(path: str | os.PathLike[str]) -> StudyConfig:
    """Read and parse a spec file (see the module docstring for the schema)."""
    if not isinstance(path, (str, os.PathLike)):
        raise InitlabError(f"a spec file is given by its path, got {type(path).__name__}")
    p = Path(path)
    try:
        if p.is_dir():
            raise InitlabError(f"spec file {str(p)!r} is a directory; pass the path of a .toml study spec")
        if not p.exists():
            raise InitlabError(f"spec file {str(p)!r} does not exist; pass the path of a .toml study spec")
        if not p.is_file():
            raise InitlabError(f"spec file {str(p)!r} is not a regular file; pass the path of a .toml "
                               "study spec")
        data = p.read_bytes()
    except (OSError, ValueError) as exc:  # e.g. no permission, or a null byte in the path
        if isinstance(exc, InitlabError):
            raise
        reason = getattr(exc, "strerror", None) or " ".join(str(exc).split()) or type(exc).__name__
        raise InitlabError(f"cannot read spec file {str(p)!r} ({reason}); "
                           "check the path and its permissions") from None
    try:
        text = data.decode("utf-8-sig")  # drops a byte-order mark
    except UnicodeDecodeError as exc:
        name, line = _Source("", str(p)).name, data.count(b"\n", 0, exc.start) + 1
        raise InitlabError(f"{name}:{line}: the spec file is not UTF-8 text (byte 0x{data[exc.start]:02x} "
                           f"at offset {exc.start}); save it as UTF-8") from None
    return parse_spec(text, source=str(p), default_name=p.stem, base_dir=p.parent)
