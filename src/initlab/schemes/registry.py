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
``keras:random_normal`` -> ``normal(std=0.05)``.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from initlab.errors import InitlabError, UnknownNameError, suggest
from initlab.schemes.core import Sampler, Scheme


@dataclass(frozen=True)
class Entry:
    """A registered scheme family."""

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


_REGISTRY: dict[str, Entry] = {}
_ALIASES: dict[str, tuple[str, dict[str, Any]]] = {}


def register(entry: Entry) -> Entry:
    """Add *entry* (and its aliases) to the registry. Names are case-insensitive."""
    for key in (entry.name, *entry.aliases, *entry.dialects):
        k = key.lower()
        if k in _ALIASES:
            raise ValueError(f"scheme name {key!r} is already registered")
    _REGISTRY[entry.name] = entry
    _ALIASES[entry.name.lower()] = (entry.name, {})
    for a in entry.aliases:
        _ALIASES[a.lower()] = (entry.name, {})
    for a, overrides in entry.dialects.items():
        _ALIASES[a.lower()] = (entry.name, dict(overrides))
    return entry


def scheme_names(*, aliases: bool = False) -> list[str]:
    """Canonical names in registration order (plus every alias when *aliases*)."""
    _ensure_library()
    names = list(_REGISTRY)
    if aliases:
        names += [a for a in _ALIASES if a not in _REGISTRY]
    return names


def entry(name: str) -> Entry:
    """The registry entry for a canonical name or alias."""
    _ensure_library()
    canonical, _ = _resolve(name)
    return _REGISTRY[canonical]


def entry_aliases(e: Entry) -> list[str]:
    return [*e.aliases, *e.dialects]


def _resolve(name: str) -> tuple[str, dict[str, Any]]:
    key = name.strip().lower().replace("-", "_") if ":" not in name else name.strip().lower()
    hit = _ALIASES.get(key) or _ALIASES.get(name.strip().lower())
    if hit is None:
        raise UnknownNameError(
            f"unknown scheme {name!r}{suggest(name.lower(), list(_ALIASES))}; "
            "run 'initlab schemes' to list them"
        )
    return hit


# --- spec strings -----------------------------------------------------------------

_SAFE_FUNCS = {"sqrt": math.sqrt}


def _eval_value(node: ast.AST, text: str) -> Any:
    """Literal values, bare words (as strings) and simple arithmetic with sqrt()."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return {"true": True, "false": False, "none": None}.get(node.id.lower(), node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _eval_value(node.operand, text)
        return -v if isinstance(node.op, ast.USub) else +v
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)):
        a, b = _eval_value(node.left, text), _eval_value(node.right, text)
        ops = {ast.Add: a.__add__, ast.Sub: a.__sub__, ast.Mult: a.__mul__, ast.Div: a.__truediv__,
               ast.Pow: a.__pow__}
        return ops[type(node.op)](b)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in _SAFE_FUNCS and len(node.args) == 1):
        return _SAFE_FUNCS[node.func.id](_eval_value(node.args[0], text))
    raise InitlabError(f"cannot read the value {ast.get_source_segment(text, node)!r} in scheme spec {text!r}; "
                       "use numbers, words or sqrt(x)")


def parse_spec(spec: str) -> tuple[str, list[Any], dict[str, Any]]:
    """Split ``"name(1, b=2)"`` into ``("name", [1], {"b": 2})``."""
    text = spec.strip()
    if "(" not in text:
        if not text:
            raise InitlabError("empty scheme name; run 'initlab schemes' to list them")
        return text, [], {}
    if not text.endswith(")"):
        raise InitlabError(f"malformed scheme spec {spec!r}: expected name(k=v, ...)")
    name, inner = text[: text.index("(")].strip(), text[text.index("(") + 1: -1]
    src = f"f({inner})"
    try:
        call = ast.parse(src, mode="eval").body
    except SyntaxError:
        raise InitlabError(f"malformed scheme spec {spec!r}: expected name(k=v, ...)") from None
    assert isinstance(call, ast.Call)
    args = [_eval_value(a, src) for a in call.args]
    kwargs = {kw.arg: _eval_value(kw.value, src) for kw in call.keywords if kw.arg}
    return name, args, kwargs


def _coerce(name: str, key: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise InitlabError(f"{name}: {key} must be true or false, got {value!r}")
        return value
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InitlabError(f"{name}: {key} must be a number, got {value!r}")
        if isinstance(default, int) and not float(value).is_integer():
            raise InitlabError(f"{name}: {key} must be a whole number, got {value!r}")
        return type(default)(value)
    if isinstance(default, str) and not isinstance(value, str):
        raise InitlabError(f"{name}: {key} must be a word, got {value!r}")
    return value


def get_scheme(spec: "str | Scheme | Mapping[str, Any]", *args: Any, **params: Any) -> Scheme:
    """Build a scheme from a name, alias, spec string, config dict or Scheme.

    >>> get_scheme("he_normal").law((256, 784)).std   # sqrt(2/784)
    0.0505...
    >>> get_scheme("uniform(a=-0.5, b=0.5)").spec
    'uniform(a=-0.5, b=0.5)'
    """
    _ensure_library()
    if isinstance(spec, Scheme):
        if not args and not params:
            return spec
        spec, params = spec.name, {**spec.params, **params}
    if isinstance(spec, Mapping):
        if "name" not in spec:
            raise InitlabError("a scheme config needs a 'name' key")
        return get_scheme(str(spec["name"]), **dict(spec.get("params", {})), **params)
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
    for k, v in {**skw, **params}.items():
        if k in given:
            raise InitlabError(f"{canonical}: {k} given twice")
        given[k] = v
    for k, v in given.items():
        if k not in e.defaults:
            raise InitlabError(f"{canonical} has no parameter {k!r}; its parameters are "
                               f"{', '.join(keys) or 'none'}")
        values[k] = _coerce(canonical, k, v, e.defaults[k])
    sampler = e.build(**values)
    return e.scheme_class(name=canonical, params=values, sampler=sampler, formula=e.formula,
                          source=e.source, bias=e.bias, defaults=dict(e.defaults),
                          aliases=tuple(entry_aliases(e)))


_LOADED = False


def _ensure_library() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        import initlab.schemes.library  # noqa: F401  (registers the built-in schemes)
