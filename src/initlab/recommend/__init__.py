"""Recommend an initialization for a model: the calibrated probe's ranking, optionally
confirmed by a short training study, and the code that applies the winner.

>>> import initlab, torch
>>> model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
>>> rec = initlab.recommend(model)                      # doctest: +SKIP
>>> print(rec)                                          # doctest: +SKIP
>>> print(rec.code())                                   # doctest: +SKIP

Modules: :mod:`~initlab.recommend.core` (:func:`recommend`, the candidate schemes),
:mod:`~initlab.recommend.record` (:class:`Recommendation`), :mod:`~initlab.recommend.confirm`
(the confirming study), :mod:`~initlab.recommend.torch_code` (``torch.nn.init`` lines).
"""

import sys as _sys
import types as _types

from initlab.recommend.core import candidate_schemes, recommend, resolve_data
from initlab.recommend.record import Candidate, Confirmation, Recommendation, Trained, within_spread
from initlab.recommend.torch_code import apply_lines, torch_lines

__all__ = ["Candidate", "Confirmation", "Recommendation", "Trained", "apply_lines", "candidate_schemes",
           "recommend", "resolve_data", "torch_lines", "within_spread"]


class _CallableModule(_types.ModuleType):
    """Lets ``initlab.recommend(...)`` work where the attribute ``initlab.recommend`` is this
    package (importing a submodule rebinds it to the package) instead of the function."""

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return recommend(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
