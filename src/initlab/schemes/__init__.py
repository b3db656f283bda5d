"""Initialization schemes: pure math, a registry by name, analytic laws.

>>> from initlab.schemes import get_scheme
>>> s = get_scheme("keras_default")
>>> round(s.law((256, 784)).std, 4)      # glorot_uniform on a 784->256 Dense layer
0.0439
"""

from initlab.schemes.core import BIAS_RULES, DISTRIBUTIONS, TRUNC_STD_CORRECTION, Sampler, Scheme
from initlab.schemes.fans import fan_for_mode, fans
from initlab.schemes.gains import gain
from initlab.schemes import laws
from initlab.schemes.laws import Law
from initlab.schemes.lsuv import LSUVScheme, LSUVStep
from initlab.schemes.registry import (
    Entry, entry, get_scheme, parse_spec, register, scheme_names, variance_scaling,
)
from initlab.schemes import library  # noqa: F401,E402  (registers the built-in schemes)
from initlab.schemes.mup import mup_entry as _mup_entry  # noqa: E402
register(_mup_entry())  # muP (initlab.schemes.mup)
from initlab.schemes.custom import register_scheme  # noqa: E402
from initlab.schemes.registry import Range  # noqa: E402

__all__ = [
    "BIAS_RULES", "DISTRIBUTIONS", "TRUNC_STD_CORRECTION", "Entry", "LSUVScheme", "LSUVStep", "Law",
    "Sampler", "Scheme", "entry", "fan_for_mode", "fans", "gain", "get_scheme", "laws", "parse_spec",
    "Range", "register", "register_scheme", "scheme_names", "variance_scaling",
]
