"""Fuzz tests: scheme specs and TOML study specs raise InitlabError (one line) or nothing.

Every input, random text or a structured near-valid spec, must either parse or raise
:class:`~initlab.errors.InitlabError` with a one-line message, and no input may take more
than a second (hypothesis' ``deadline``). The budgets are fixed and the runs derandomized
(and write no example database), so the file is reproducible and runs in well under 30 s.
``INITLAB_FUZZ_SCALE=N`` multiplies every budget by N and draws fresh random inputs, for a
deeper search by hand (CI runs the fixed budgets).
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from initlab.errors import InitlabError
from initlab.schemes import Scheme
from initlab.schemes.registry import entry, get_scheme, parse_spec as parse_scheme_spec, scheme_names
from initlab.study.spec import VALID_KEYS, parse_spec as parse_study_spec



#: Budget multiplier for a deeper search by hand (1, derandomized, in CI).
SCALE = int(os.environ.get("INITLAB_FUZZ_SCALE", "1"))


def fuzz(max_examples: int) -> settings:
    """A fixed, derandomized budget; one input may take at most a second."""
    return settings(max_examples=max_examples * SCALE, deadline=1000, derandomize=SCALE == 1, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


NAMES = scheme_names(aliases=True)


def _ok_or_one_line(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """Call *fn*: its result, or None when it raised a one-line InitlabError."""
    try:
        return fn(*args, **kw)
    except InitlabError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg and "\r" not in msg, repr(msg)
        return None


# ---- scheme specs --------------------------------------------------------------------------

_ODD_VALUES = [
    "inf", "-inf", "nan", "NaN", "Infinity", "1e999", "-1e999", "1e308*10", "9**9**9", "2**1024",
    "2**-1080", "10**308", "(-8)**(1/3)", "0**-1", "1/0", "0/0", "sqrt(-1)", "sqrt()", "sqrt(1, 2)",
    "exp(1)", "pi", "e", "true", "false", "none", "True", "None", "fan_in", "fan_out", "fan_avg",
    "uniform", "normal", "truncated_normal", "relu", "leaky_relu", "tanh", "swish", "'fan_out'",
    '"x"', "b'x'", "1j", "...", "x.y", "x[0]", "lambda: 1", "f'{1}'", "\x00", "é", "\U0001d518",
    "1_000", "0x10", "0o7", "1" + "0" * 400, "*x", "**x", "-", "()", "[]", "{}", "1 if 1 else 2",
    "x := 1", "1 < 2", "not 1", "~1", "7 % 2", "3.4e38", "3.5e38", "-3.5e38", "5e-324", "\n", "#",
]

_atoms = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.integers().map(str),
    st.floats().map(repr),
    st.sampled_from(_ODD_VALUES),
    st.text(max_size=8),
)

_values = st.recursive(
    _atoms,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**", " ", ",", "%", "//"]), inner)
        .map("".join),
        inner.map(lambda v: f"-{v}"),
        inner.map(lambda v: f"({v})"),
        inner.map(lambda v: f"sqrt({v})"),
    ),
    max_leaves=12,
)

_deep_values = st.one_of(
    st.integers(1, 600).map(lambda n: "(" * n + "1" + ")" * n),
    st.integers(1, 600).map(lambda n: "-" * n + "1"),
    st.integers(1, 300).map(lambda n: "2**" * n + "2"),
    st.integers(1, 400).map(lambda n: "+".join(["1"] * n)),
    st.integers(1, 300).map(lambda n: "sqrt(" * n + "4" + ")" * n),
)


# values a parameter may well accept, so that many structured specs build
_good_values = st.one_of(
    st.floats(-3, 3).map(repr),
    st.integers(0, 5).map(str),
    st.sampled_from(["1/sqrt(784)", "sqrt(2)", "-0.5", "0.5", "2**-3", "pi/4", "-(1 + 2) * 0.1",
                     "1e-3", "fan_in", "fan_out", "fan_avg", "uniform", "normal", "truncated_normal",
                     "relu", "tanh", "leaky_relu", "selu", "'fan_out'"]),
)


@st.composite
def _near_valid_specs(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(NAMES))
    keys = [*entry(name).defaults, "x", "a", "std", "gain", "é"]
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.integers(0, 9))
        value = draw(_deep_values if kind == 0 else _values if kind < 4 else _good_values)
        if draw(st.integers(0, 3)):
            parts.append(f"{draw(st.sampled_from(keys))}={value}")
        else:
            parts.append(value)
    if draw(st.integers(0, 4)):  # mostly positional values first, as the grammar wants
        parts.sort(key=lambda p: "=" in p.split("(")[0])
    inner = draw(st.sampled_from([", ", ",", " , "])).join(parts)
    tail = draw(st.sampled_from([")"] * 8 + ["", "))", ")(1)", ") + f(2)", ") ", "\n)"]))
    if draw(st.integers(0, 4)) == 0:
        name = draw(st.sampled_from([name.upper(), name.replace("_", "-"), f" {name} ", f"keras:{name}"]))
    return f"{name}({inner}{tail}"


def _check_scheme_spec(spec: str) -> None:
    parsed = _ok_or_one_line(parse_scheme_spec, spec)
    if parsed is not None:
        name, args, kwargs = parsed
        assert isinstance(name, str) and isinstance(args, list) and isinstance(kwargs, dict)
    scheme = _ok_or_one_line(get_scheme, spec)
    if scheme is not None:
        assert isinstance(scheme, Scheme)
        assert get_scheme(scheme.spec) == scheme  # the canonical spec round-trips
        shape = (6, 4, 3, 3) if scheme.name == "dirac" else (6, 4)
        _ok_or_one_line(scheme.law, shape)


@fuzz(300)
@given(st.text(max_size=120))
def test_random_text_scheme_specs(text: str) -> None:
    _check_scheme_spec(text)


@fuzz(200)
@given(st.sampled_from(NAMES), st.text(max_size=80))
def test_random_text_inside_a_scheme_call(name: str, inner: str) -> None:
    _check_scheme_spec(f"{name}({inner})")


@fuzz(700)
@given(_near_valid_specs())
def test_near_valid_scheme_specs(spec: str) -> None:
    _check_scheme_spec(spec)


_python_values = st.one_of(
    st.floats(), st.integers(), st.integers(min_value=10**300), st.booleans(), st.none(),
    st.text(max_size=10), st.sampled_from(["fan_out", "relu", "uniform"]),
    st.lists(st.integers(), max_size=2), st.complex_numbers(max_magnitude=10),
)


@fuzz(300)
@given(st.sampled_from(NAMES), st.dictionaries(st.sampled_from(["a", "b", "std", "mean", "gain", "mode",
                                                                 "tol", "max_iter", "groups", "sparsity",
                                                                 "scale", "distribution", "value", "x"]),
                                               _python_values, max_size=3))
def test_python_values_for_scheme_parameters(name: str, params: dict[str, Any]) -> None:
    scheme = _ok_or_one_line(get_scheme, name, **params)
    if scheme is not None:
        assert get_scheme(scheme.spec) == scheme


# ---- TOML study specs ----------------------------------------------------------------------

def _toml_float(x: float) -> str:
    if x != x:
        return "nan"
    if x in (float("inf"), float("-inf")):
        return "inf" if x > 0 else "-inf"
    return repr(x)


_toml_scalars = st.one_of(
    st.integers(-2**70, 2**70).map(str),
    st.integers(-3, 20).map(str),
    st.floats().map(_toml_float),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.sampled_from([
        "inf", "-inf", "nan", "+nan", "1e400", "-1e400", "99999999999999999999", "9223372036854775807",
        "-9223372036854775808", "0", "-1", "1e-7", "0.5", '"test"', '"relu"', '"tanh"', '"fashion-mnist"',
        '"mnist"', '"seed"', '"smoke"', '"zeros"', '"he_normal(mode=fan_out)"', '"constant(9**9**9)"',
        '"uniform(a=1, a=2)"', '"lsuv(tol=-1)"', '"zeros, he_normal"', "[0.9, 0.999]", "[]", "[1, 1]",
        "[256, 128]", "{}", "{a = 1}", '""', "1979-05-27", "07:32:00", "0x7fffffffffffffff",
    ]),
    st.text(max_size=20).map(json.dumps),
)

_toml_nested = st.recursive(
    _toml_scalars, lambda inner: st.lists(inner, max_size=4).map(lambda xs: f"[{', '.join(xs)}]"),
    max_leaves=10)
_toml_deep = st.one_of(st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
                       st.integers(1, 3000).map(lambda n: "{a=" * n + "1" + "}" * n))
_toml_values = st.integers(0, 9).flatmap(lambda k: _toml_deep if k == 0 else _toml_nested)


# a value each key accepts, so that many structured documents load
_GOOD_TOML = {
    "name": '"fuzz"', "preset": '"smoke"', "seeds": "2", "epochs": "1", "dataset": '"mnist"',
    "datasets": '["mnist", "fashion-mnist"]', "validation": "0.1", "limit_train": "100",
    "limit_val": "50", "hidden": "[8, 4]", "activation": '"tanh"', "dropout": "0.1",
    "in_features": "784", "out_features": "10", "list": '["zeros", "he_normal(mode=fan_out)"]',
    "lr": "0.01", "batch_size": "32", "eps": "1e-8", "betas": "[0.9, 0.99]", "log_every": "0",
    "shuffle": "false", "probe_size": "0", "hist_bins": "10",
}


@st.composite
def _near_valid_toml(draw: st.DrawFn) -> str:
    lines = ["\ufeff"] if draw(st.integers(0, 9)) == 0 else []
    tables = draw(st.lists(st.sampled_from([t for t in VALID_KEYS if t]), min_size=1, max_size=4,
                           unique=True))
    for table in tables:
        lines.append(f"[[{table}]]" if table == "models" else f"[{table}]")
        keys = draw(st.lists(st.sampled_from([*VALID_KEYS[table], "bogus"]), min_size=1, max_size=4,
                             unique=True))
        for key in keys:
            good = _GOOD_TOML.get(key)
            value = good if good and draw(st.integers(0, 3)) else draw(_toml_values)
            lines.append(f"{key} = {value}")
        if draw(st.integers(0, 9)) == 0:
            lines.append(draw(st.text(max_size=30)))
    return "\n".join(lines) + "\n"


def _check_study_spec(text: str) -> None:
    _ok_or_one_line(parse_study_spec, text, source="fuzz.toml")


@fuzz(200)
@given(st.text(max_size=200))
def test_random_text_study_specs(text: str) -> None:
    _check_study_spec(text)


@fuzz(500)
@given(_near_valid_toml())
def test_near_valid_study_specs(text: str) -> None:
    _check_study_spec(text)
