"""Users' own schemes: :func:`register_scheme` puts a scheme written as two plain functions
into the registry, where it is a scheme like any built-in (``get_scheme``, ``apply``,
``check``, ``identify``, ``probe``, studies, ``initlab schemes``).

A scheme is its draw and its law::

    import math, initlab
    from initlab.schemes import laws

    initlab.register_scheme(
        "scaled_normal",
        sample=lambda w, fan_in, fan_out, generator, scale: w.normal_(
            0.0, scale / math.sqrt(fan_in), generator=generator),
        law=lambda shape, fan_in, fan_out, scale: laws.normal(0.0, scale / math.sqrt(fan_in)),
        defaults={"scale": 1.0}, domains={"scale": initlab.schemes.Range(0, lo_open=True)},
        formula="N(0, scale^2 / fan_in)", source="my lab notes")

``sample(tensor, fan_in, fan_out, generator, **params)`` fills the tensor in place from the
given ``torch.Generator`` (so seeds reproduce); ``law(shape, fan_in, fan_out, **params)``
returns the analytic :class:`~initlab.schemes.laws.Law` of one entry (``laws.normal``,
``laws.uniform``, ``laws.truncated_normal``, ``laws.constant``, ...): it is required, since
``initlab check`` tests realized weights against it. ``defaults`` fixes the parameters,
their order and types, ``domains`` their valid values, exactly as for built-in entries
(:class:`~initlab.schemes.registry.Entry`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch

from initlab.errors import InitlabError
from initlab.schemes.core import Sampler
from initlab.schemes.laws import Law
from initlab.schemes.registry import Domain, Entry, register, scheme_names

__all__ = ["FunctionSampler", "register_scheme"]

SampleFn = Callable[..., Any]
LawFn = Callable[..., Law]


@dataclass(frozen=True)
class FunctionSampler(Sampler):
    """A :class:`Sampler` made of a user's ``sample`` and ``law`` functions and the values
    of their parameters."""

    sample: SampleFn
    law_fn: LawFn
    params: Mapping[str, Any] = field(default_factory=dict)
    fan_based: bool = True  # type: ignore[misc]

    def law(self, shape: tuple[int, ...], fan_in: int, fan_out: int) -> Law:
        law = self.law_fn(tuple(shape), fan_in, fan_out, **self.params)
        if not isinstance(law, Law):
            raise InitlabError(f"the law function of a registered scheme returned {type(law).__name__}, "
                               "not an initlab.schemes.laws.Law; build it with laws.normal(...) etc.")
        return law

    def sample_(self, tensor: torch.Tensor, fan_in: int, fan_out: int,
                generator: torch.Generator | None) -> None:
        self.sample(tensor, fan_in, fan_out, generator, **self.params)


def register_scheme(name: str, *, sample: SampleFn, law: LawFn, formula: str, source: str,
                    defaults: Mapping[str, Any] | None = None,
                    domains: Mapping[str, Domain] | None = None, bias: str = "zeros",
                    aliases: tuple[str, ...] = (), fan_based: bool = True) -> Entry:
    """Register a scheme of the user's (see the module docstring) and return its entry.

    Raises a one-line :class:`InitlabError` when *name* (or an alias) is not a lowercase
    Python identifier or is already taken (built-in schemes cannot be replaced), or when
    ``sample``/``law`` are not callable.
    """
    for key in (name, *aliases):
        if not isinstance(key, str) or not key.isidentifier() or key != key.lower():
            raise InitlabError(f"a scheme name must be a lowercase Python identifier, got {key!r}; "
                               "e.g. 'scaled_normal'")
    taken = set(scheme_names(aliases=True))
    clash = next((k for k in (name, *aliases) if k in taken), None)
    if clash is not None:
        raise InitlabError(f"scheme name {clash!r} is already registered (built-in or another plugin's); "
                           "give your scheme another name")
    if not callable(sample) or not callable(law):
        raise InitlabError(f"register_scheme({name!r}) needs callable sample= and law= functions")
    params = dict(defaults or {})

    def build(**values: Any) -> Sampler:
        return FunctionSampler(sample=sample, law_fn=law, params=values, fan_based=fan_based)

    try:
        return register(Entry(name=name, build=build, defaults=params, formula=formula, source=source,
                              group="plugin", bias=bias, aliases=tuple(aliases),
                              domains=dict(domains or {})))
    except ValueError as exc:  # a bad domain or order declaration
        raise InitlabError(f"register_scheme({name!r}): {exc}") from None
