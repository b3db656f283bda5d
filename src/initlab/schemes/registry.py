"""The scheme registry: names, aliases, dialects, parameters and spec strings.

Keras-style: every scheme is registered under a canonical name with defaults, aliases, a
formula and a source; ``get_scheme`` builds one from a name, an alias, a spec string such
as ``"uniform(a=-0.5, b=0.5)"`` / ``"he_normal(mode=fan_out)"`` / ``"constant(0.1)"``, or a
config dict, and suggests the nearest names for an unknown one.

Dialects: the same word means different things in PyTorch, Keras and JAX. Canonical
initlab names are unambiguous (``glorot_normal`` is the untruncated normal, as torch's
``xavier_normal_``; ``glorot_truncated_normal`` is the variance-corrected truncated
normal, as Keras' and JAX's ``glorot_normal``). A dialect prefix resolves a framework's
own word to exactly what that framework does: ``keras:glorot_normal`` ->
``glorot_truncated_normal``, ``torch:xavier_normal`` -> ``glorot_normal``,
``keras:random_normal`` -> ``normal(std=0.05)``. The ``keras:`` fan-based and orthogonal names
also set ``layout=keras`` and the ``jax:`` ones ``layout=jax``: on an Embedding, an LSTM/GRU and
(JAX) a ConvTranspose they take that framework's fans and matrices (``keras:glorot_normal`` is
``glorot_truncated_normal(layout=keras)``; :mod:`initlab.schemes.dialects`). Framework parameter words are translated
(:data:`FRAMEWORK_WORDS`, :data:`ENTRY_WORDS`), and torch's in-place names with a trailing
underscore resolve to the same scheme.

Spec strings
------------
``name`` or ``name(v, ..., k=v, ...)``, at most 1000 characters (:data:`MAX_SPEC_CHARS`).
Positional values fill the parameters in their declared order, keywords follow; a
positional value after a keyword, a keyword given twice, ``*args`` and ``**kw`` are
errors. A value is

* a number: ``1``, ``0.5``, ``1e-3``, ``1_000``; a literal too large for a float
  (``1e999``) is an error. The words ``inf``, ``-inf`` and ``nan`` (any case) read as those
  floats, so that the parameter's check names them, but no built-in parameter accepts
  them: every number must be finite;
* a word: an identifier (``fan_out``, ``leaky_relu``) or a quoted string (``"fan_out"``);
  ``true``/``false``/``none`` (any case) are ``True``/``False``/``None``;
* a constant: ``pi`` or ``e``;
* arithmetic on numbers: ``+ - * /``, ``**``, unary ``-``/``+``, parentheses and
  ``sqrt(x)``, e.g. ``normal(std=1/sqrt(784))``, ``uniform(-sqrt(6/1040), sqrt(6/1040))``.

Arithmetic is bounded: it is computed in float and every intermediate result must be
finite; an exponent must satisfy ``|p| <= 1024`` (:data:`MAX_EXPONENT`); a value nests at
most 32 levels of operators, calls and parentheses (:data:`MAX_DEPTH`). Division by zero,
``sqrt`` of a negative number, a negative number to a fractional power, zero to a negative
power, and arithmetic on words, booleans, ``inf`` or ``nan`` are errors. Anything else that
Python's parser accepts (attribute access, subscripts, lambdas, comparisons, other calls,
``1j``, byte strings, f-strings, ...) is an error. Every error is one
:class:`~initlab.errors.InitlabError` line that quotes the spec.

Parameters
----------
An :class:`Entry`'s ``defaults`` fix each parameter's type (a float, an int, a word or a
bool; values are coerced to it) and its ``domains`` the valid values: a :class:`Range` for
a number, a tuple of words for a word; ``order`` relates two parameters (``a <= b``).
Every number must be finite and within the float32 range (``|x| <= 3.4e38``, a weight's
dtype). :func:`get_scheme` checks them all, for spec strings and Python values alike,
before the sampler is built, and names the parameter, the value and the valid range (a
nonlinearity name is checked by :func:`~initlab.schemes.gains.gain`, which knows them).
"""

from __future__ import annotations

import ast
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Union

from initlab.errors import InitlabError, UnknownNameError, suggest
from initlab.schemes.core import Sampler, Scheme

#: Longest accepted spec string (after stripping whitespace).
MAX_SPEC_CHARS = 1000
#: Deepest accepted nesting of one value (operators, calls and parentheses).
MAX_DEPTH = 32
#: Largest accepted exponent magnitude in ``x ** p``.
MAX_EXPONENT = 1024
#: Largest magnitude of a numeric parameter: the largest finite float32.
FLOAT32_MAX = 3.4028234663852886e38


def _num(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Range:
    """A numeric parameter's domain: ``lo <= x <= hi`` (strict where ``lo_open`` /
    ``hi_open``); ``None`` leaves an end unbounded. Every number must also be finite and
    within the float32 range, whatever its Range."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, x: float) -> bool:
        if self.lo is not None and not (x > self.lo if self.lo_open else x >= self.lo):
            return False
        return self.hi is None or (x < self.hi if self.hi_open else x <= self.hi)

    def __str__(self) -> str:
        if self.lo is not None and self.hi is not None:
            return (f"in {'(' if self.lo_open else '['}{_num(self.lo)}, "
                    f"{_num(self.hi)}{')' if self.hi_open else ']'}")
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {_num(self.lo)}"
        if self.hi is not None:
            return f"{'<' if self.hi_open else '<='} {_num(self.hi)}"
        return "a finite number"


#: A parameter's domain: a numeric Range or the tuple of valid words.
Domain = Union[Range, tuple[str, ...]]

POSITIVE = Range(0, lo_open=True)
NON_NEGATIVE = Range(0)
AT_LEAST_ONE = Range(1)


@dataclass(frozen=True)
class Entry:
    """A registered scheme family.

    ``defaults`` gives every parameter (in positional order) and its type; ``domains`` the
    valid values of some of them (see :class:`Range`); ``order`` pairs that must be
    ordered, as ``(lo_name, "<" or "<=", hi_name)``.
    """

    name: str
    build: Callable[..., Sampler]
    defaults: dict[str, Any]
    formula: str
    source: str
    group: str = "basic"
    bias: str = "zeros"
    aliases: tuple[str, ...] = ()
    #: dialect aliases that also change defaults, e.g. {"keras:random_normal": {"std": 0.05}}
    dialects: dict[str, dict[str, Any]] = field(default_factory=dict)
    scheme_class: type[Scheme] = Scheme
    note: str = ""
    domains: dict[str, Domain] = field(default_factory=dict)
    order: tuple[tuple[str, str, str], ...] = ()


_REGISTRY: dict[str, Entry] = {}
_ALIASES: dict[str, tuple[str, dict[str, Any]]] = {}


def register(entry: Entry) -> Entry:
    """Add *entry* (and its aliases) to the registry. Names are case-insensitive."""
    for key in (entry.name, *entry.aliases, *entry.dialects):
        k = key.lower()
        if k in _ALIASES:
            raise ValueError(f"scheme name {key!r} is already registered")
    for key, dom in entry.domains.items():
        if key not in entry.defaults or not isinstance(dom, (Range, tuple)):
            raise ValueError(f"{entry.name}: domain of {key!r} must be a Range or a tuple of words "
                             "for one of its parameters")
    for lo, op, hi in entry.order:
        if lo not in entry.defaults or hi not in entry.defaults or op not in ("<", "<="):
            raise ValueError(f"{entry.name}: bad order {(lo, op, hi)!r}")
    _REGISTRY[entry.name] = entry
    _ALIASES[entry.name.lower()] = (entry.name, {})
    for a in entry.aliases:
        _ALIASES[a.lower()] = (entry.name, {})
    for a, overrides in entry.dialects.items():
        _ALIASES[a.lower()] = (entry.name, dict(overrides))
    return entry


def scheme_names(*, aliases: bool = False) -> list[str]:
    """Canonical names in registration order (plus every alias when *aliases*)."""
    names = list(_REGISTRY)
    if aliases:
        names += [a for a in _ALIASES if a not in _REGISTRY]
    return names


def entry(name: str) -> Entry:
    """The registry entry for a canonical name or alias."""
    canonical, _ = _resolve(name)
    return _REGISTRY[canonical]


def entry_aliases(e: Entry) -> list[str]:
    return [*e.aliases, *e.dialects]


#: Parameter words of a framework's own initializers, in initlab's (``keras:random_normal(
#: stddev=0.1)``, ``keras:random_uniform(minval=-1, maxval=1)``, ``torch:constant_(val=0.3)``).
FRAMEWORK_WORDS: dict[str, dict[str, str]] = {
    "keras": {"stddev": "std", "minval": "a", "maxval": "b"},
    "jax": {"stddev": "std"},
    "torch": {"val": "value"},
}
#: A framework's word that means one thing for one initializer (jax/_src/nn/initializers.py):
#: JAX's ``uniform(scale=1e-2)`` is U[0, scale), so ``jax:uniform(scale=s)`` is ``uniform(b=s)``;
#: its orthogonal initializers call the gain ``scale``.
ENTRY_WORDS: dict[tuple[str, str], dict[str, str]] = {
    ("jax", "uniform"): {"scale": "b"},
    ("jax", "orthogonal"): {"scale": "gain"},  # orthogonal(scale=1.0, column_axis=-1)
    ("jax", "delta_orthogonal"): {"scale": "gain"},  # delta_orthogonal(scale=1.0, column_axis=-1)
}


def _resolve(name: str) -> tuple[str, dict[str, Any]]:
    key = name.strip().lower().replace("-", "_") if ":" not in name else name.strip().lower()
    if key.startswith("torch:") and key.endswith("_") and key not in _ALIASES:
        key = key[:-1]  # torch's in-place names: torch:kaiming_normal_ is torch:kaiming_normal
    hit = _ALIASES.get(key) or _ALIASES.get(name.strip().lower())
    if hit is None:
        raise UnknownNameError(
            f"unknown scheme {name!r}{suggest(name.lower(), list(_ALIASES))}; "
            "run 'initlab schemes' to list them"
        )
    return hit


# --- spec strings -----------------------------------------------------------------

_WORDS: dict[str, Any] = {"true": True, "false": False, "none": None}
_NON_FINITE = {"inf": math.inf, "nan": math.nan}
_CONSTANTS = {"pi": math.pi, "e": math.e}
_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)
_OTHER_OPERATORS = {ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.LShift: "<<",
                    ast.RShift: ">>", ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&",
                    ast.Invert: "~", ast.Not: "not"}


def _show(value: Any, limit: int = 80) -> str:
    """A one-line, bounded repr of *value* for error messages."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - any object may be passed; its repr may fail
        text = f"<{type(value).__name__}>"
    text = " ".join(text.splitlines())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _max_depth(node: ast.AST, limit: int) -> int:
    """Depth of the expression tree under *node* (stops counting past *limit*)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        n, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            break
        stack.extend((c, d + 1) for c in ast.iter_child_nodes(n) if isinstance(c, ast.expr))
    return deepest


class _ValueReader:
    """Evaluates one spec's values under the grammar of the module docstring."""

    def __init__(self, spec: str, src: str) -> None:
        self.spec, self.src = spec, src

    def error(self, problem: str, fix: str) -> InitlabError:
        return InitlabError(f"scheme spec {self.spec!r}: {problem}; {fix}")

    def seg(self, node: ast.AST) -> str:
        return _show(ast.get_source_segment(self.src, node) or ast.dump(node), limit=60)

    def value(self, node: ast.expr) -> Any:
        if _max_depth(node, MAX_DEPTH) > MAX_DEPTH:
            raise self.error(f"the value {self.seg(node)} nests more than {MAX_DEPTH} levels",
                             "write it more simply")
        return self._eval(node)

    def _eval(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.Name):
            low = node.id.lower()
            if low in _WORDS:
                return _WORDS[low]
            if low in _NON_FINITE:
                return _NON_FINITE[low]
            return _CONSTANTS.get(node.id, node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = self._number(node.operand, node, finite=False)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and isinstance(node.op, _OPERATORS):
            a = self._number(node.left, node)
            b = self._number(node.right, node)
            return self._arith(node, type(node.op), float(a), float(b))
        if isinstance(node, ast.Call):
            return self._call(node)
        op = getattr(node, "op", None)
        if type(op) in _OTHER_OPERATORS:
            raise self.error(f"the operator {_OTHER_OPERATORS[type(op)]!r} in {self.seg(node)} "
                             "is not allowed", "use + - * / ** and parentheses")
        raise self.error(f"cannot read the value {self.seg(node)}",
                         "use numbers, words, + - * / **, parentheses and sqrt(x)")

    def _constant(self, node: ast.Constant) -> Any:
        v = node.value
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, int):
            try:
                float(v)
            except OverflowError:
                raise self.error(f"the number {self.seg(node)} is too large for a float",
                                 "numbers must be finite") from None
            return v
        if isinstance(v, float):
            if not math.isfinite(v):
                raise self.error(f"the number {self.seg(node)} is too large for a float",
                                 "numbers must be finite") from None
            return v
        raise self.error(f"cannot read the value {self.seg(node)} ({type(v).__name__})",
                         "use numbers, words, + - * / **, parentheses and sqrt(x)")

    def _number(self, operand: ast.expr, parent: ast.expr, finite: bool = True) -> int | float:
        v = self._eval(operand)
        if not _is_number(v):
            what = "the word" if isinstance(v, str) else "the value"
            raise self.error(f"cannot compute with {what} {_show(v)} in {self.seg(parent)}",
                             "arithmetic takes numbers only")
        if finite and not math.isfinite(v):
            raise self.error(f"cannot compute with {_show(v)} in {self.seg(parent)}",
                             "arithmetic takes finite numbers only")
        return v

    def _arith(self, node: ast.BinOp, op: type, a: float, b: float) -> float:
        where = self.seg(node)
        if op is ast.Div and b == 0:
            raise self.error(f"division by zero in {where}", "divide by a non-zero number")
        if op is ast.Pow:
            if abs(b) > MAX_EXPONENT:
                raise self.error(f"the exponent of {where} is {_num(b)}",
                                 f"use exponents with |p| <= {MAX_EXPONENT}")
            if a < 0 and not b.is_integer():
                raise self.error(f"{where} raises a negative number to a fractional power",
                                 "use a non-negative base or a whole exponent")
            if a == 0 and b < 0:
                raise self.error(f"{where} raises zero to a negative power",
                                 "use a non-zero base or a non-negative exponent")
        try:
            if op is ast.Add:
                r = a + b
            elif op is ast.Sub:
                r = a - b
            elif op is ast.Mult:
                r = a * b
            elif op is ast.Div:
                r = a / b
            else:
                r = a ** b
        except (OverflowError, ZeroDivisionError):
            r = math.inf
        if not math.isfinite(r):
            raise self.error(f"{where} overflows a float", "use smaller numbers")
        return r

    def _call(self, node: ast.Call) -> float:
        if not (isinstance(node.func, ast.Name) and node.func.id == "sqrt"):
            raise self.error(f"unknown function {self.seg(node.func)} in {self.seg(node)}",
                             "the only function is sqrt(x)")
        if len(node.args) != 1 or node.keywords or isinstance(node.args[0], ast.Starred):
            raise self.error(f"{self.seg(node)} does not give sqrt one value", "write sqrt(x)")
        x = float(self._number(node.args[0], node))
        if x < 0:
            raise self.error(f"{self.seg(node)} takes the square root of a negative number",
                             "sqrt takes x >= 0")
        return math.sqrt(x)


def _paren_depth(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    return deepest


def parse_spec(spec: str) -> tuple[str, list[Any], dict[str, Any]]:
    """Split ``"name(1, b=2)"`` into ``("name", [1], {"b": 2})`` (grammar: module docstring).

    Raises :class:`~initlab.errors.InitlabError` (one line, quoting the spec) for anything
    outside the grammar.
    """
    if not isinstance(spec, str):
        raise InitlabError(f"a scheme spec must be a string, got {type(spec).__name__}")
    text = spec.strip()
    if len(text) > MAX_SPEC_CHARS:
        raise InitlabError(f"scheme spec {text[:40]!r}... is {len(text)} characters long; "
                           f"the limit is {MAX_SPEC_CHARS}, write it more simply")
    if "\x00" in text:
        raise InitlabError(f"scheme spec {text!r} contains a null character; remove it")
    if "(" not in text:
        if not text:
            raise InitlabError("empty scheme name; run 'initlab schemes' to list them")
        return text, [], {}
    if not text.endswith(")"):
        raise InitlabError(f"malformed scheme spec {spec!r}: expected name(k=v, ...)")
    name, inner = text[: text.index("(")].strip(), text[text.index("(") + 1: -1]
    if not name:
        raise InitlabError(f"scheme spec {spec!r} has no name before '('; expected name(k=v, ...)")
    if _paren_depth(inner) > MAX_DEPTH:
        raise InitlabError(f"scheme spec {spec!r} nests brackets more than {MAX_DEPTH} levels deep; "
                           "write it more simply")
    src = f"f({inner})"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. SyntaxWarning for '1 is 1'
            call = ast.parse(src, mode="eval").body
    except SyntaxError as exc:
        reason = " ".join(str(exc.msg).split())
        raise InitlabError(f"malformed scheme spec {spec!r} ({reason}): expected name(k=v, ...)") from None
    except (ValueError, RecursionError, MemoryError, OverflowError):
        raise InitlabError(f"malformed scheme spec {spec!r} (too complex to read): "
                           "expected name(k=v, ...)") from None
    # the body must be our own call f(...): not e.g. "f(1)(2)" or "f(1) + f(2)"
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "f"
            and call.func.col_offset == 0):
        raise InitlabError(f"malformed scheme spec {spec!r}: expected name(k=v, ...)")
    reader = _ValueReader(spec, src)
    args = []
    for a in call.args:
        if isinstance(a, ast.Starred):
            raise reader.error(f"{reader.seg(a)} unpacks values", "give each value on its own")
        args.append(reader.value(a))
    kwargs: dict[str, Any] = {}
    for kw in call.keywords:
        if kw.arg is None:
            raise reader.error(f"{reader.seg(kw.value)} is unpacked with **", "write each k=v")
        if kw.arg in kwargs:
            raise InitlabError(f"{name}: {kw.arg} given twice in scheme spec {spec!r}; "
                               "give each parameter once")
        kwargs[kw.arg] = reader.value(kw.value)
    return name, args, kwargs


# --- parameters -------------------------------------------------------------------

def _coerce(name: str, key: str, value: Any, default: Any) -> Any:
    """*value* converted to the type of *default*; numbers must be finite and in the
    float32 range."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise InitlabError(f"{name}: {key} must be true or false, got {_show(value)}")
        return value
    if _is_number(default):
        if not _is_number(value):
            raise InitlabError(f"{name}: {key} must be a number, got {_show(value)}")
        too_large = InitlabError(f"{name}: {key} must be at most {FLOAT32_MAX:.4g} in magnitude "
                                 f"(the float32 range), got {_show(value)}")
        try:
            x = float(value)
        except OverflowError:  # an int beyond the float range
            raise too_large from None
        if not math.isfinite(x):
            raise InitlabError(f"{name}: {key} must be a finite number, got {_show(value)}")
        if abs(x) > FLOAT32_MAX:
            raise too_large
        if isinstance(default, int):
            if not x.is_integer():
                raise InitlabError(f"{name}: {key} must be a whole number, got {_show(value)}")
            return int(value)
        return x
    if isinstance(default, str) and not isinstance(value, str):
        raise InitlabError(f"{name}: {key} must be a word, got {_show(value)}")
    return value


def _check_domains(e: Entry, values: Mapping[str, Any]) -> None:
    """Raise for a value outside its declared domain or a violated order."""
    for key, dom in e.domains.items():
        v = values[key]
        if isinstance(dom, Range):
            if v not in dom:
                raise InitlabError(f"{e.name}: {key} must be {dom}, got {_show(v)}")
        elif v not in dom:
            raise InitlabError(f"{e.name}: unknown {key} {_show(v)}{suggest(str(v), dom)}; "
                               f"use one of {', '.join(dom)}")
    for lo, op, hi in e.order:
        a, b = values[lo], values[hi]
        if not (a <= b if op == "<=" else a < b):
            fix = "swap them" if a > b else "make them differ"
            raise InitlabError(f"{e.name} needs {lo} {op} {hi}, got {lo}={_show(a)} and "
                               f"{hi}={_show(b)}; {fix}")


def get_scheme(spec: "str | Scheme | Mapping[str, Any]", *args: Any, **params: Any) -> Scheme:
    """Build a scheme from a name, alias, spec string, config dict or Scheme.

    Positional and keyword values (from the spec string and from Python alike) are
    coerced to each parameter's type and checked against its domain.

    >>> get_scheme("he_normal").law((256, 784)).std   # sqrt(2/784)
    0.0505...
    >>> get_scheme("uniform(a=-0.5, b=0.5)").spec
    'uniform(a=-0.5, b=0.5)'
    """
    if isinstance(spec, Scheme):
        if not args and not params:
            return spec
        spec, params = spec.name, {**spec.params, **params}
    if isinstance(spec, Mapping):
        if "name" not in spec:
            raise InitlabError("a scheme config needs a 'name' key")
        if not isinstance(spec["name"], str):
            raise InitlabError(f"a scheme config's 'name' must be a string, got {_show(spec['name'])}")
        cfg = spec.get("params", {})
        if not isinstance(cfg, Mapping) or not all(isinstance(k, str) for k in cfg):
            raise InitlabError(f"a scheme config's 'params' must be a dict of names to values, "
                               f"got {_show(cfg)}")
        return get_scheme(spec["name"], *args, **{**cfg, **params})
    if not isinstance(spec, str):
        raise InitlabError(f"a scheme is given by name or Scheme, got {type(spec).__name__}")
    name, sargs, skw = parse_spec(spec)
    canonical, dialect = _resolve(name)
    e = _REGISTRY[canonical]
    values = {**e.defaults, **dialect}
    pos = [*sargs, *args]
    keys = list(e.defaults)
    if len(pos) > len(keys):
        raise InitlabError(f"{canonical} takes {len(keys)} parameter(s) ({', '.join(keys) or 'none'}), "
                           f"got {len(pos)} positional values")
    given = dict(zip(keys, pos))
    prefix = name.strip().lower().partition(":")[0] if ":" in name else ""
    words = {**FRAMEWORK_WORDS.get(prefix, {}), **ENTRY_WORDS.get((prefix, canonical), {})}
    for k, v in {words.get(k, k) if k not in e.defaults else k: v for k, v in {**skw, **params}.items()}.items():
        if k in given:
            raise InitlabError(f"{canonical}: {k} given twice")
        given[k] = v
    for k, v in given.items():
        if k not in e.defaults:
            raise InitlabError(f"{canonical} has no parameter {_show(k)}; its parameters are "
                               f"{', '.join(keys) or 'none'}")
        values[k] = _coerce(canonical, k, v, e.defaults[k])
    _check_domains(e, values)
    sampler = e.build(**values)
    return e.scheme_class(name=canonical, params=values, sampler=sampler, formula=e.formula,
                          source=e.source, bias=e.bias, defaults=dict(e.defaults),
                          aliases=tuple(entry_aliases(e)))


def variance_scaling(scale: float = 1.0, mode: str = "fan_in",
                     distribution: str = "truncated_normal") -> Scheme:
    """The fan-based core: ``Var(w) = scale / fan(mode)`` drawn from *distribution*.

    ``distribution`` is ``uniform``, ``normal`` (untruncated) or ``truncated_normal``
    (variance-corrected, as Keras and JAX). Every Glorot/He/LeCun scheme, the article's
    two recipes and the framework defaults are specializations of this.
    """
    return get_scheme("variance_scaling", scale=scale, mode=mode, distribution=distribution)
