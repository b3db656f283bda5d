"""Recommend an initialization for a model: the calibrated probe's ranking, optionally
confirmed by a short training study, and the code that applies the winner.

>>> import initlab, torch
>>> model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
>>> rec = initlab.recommend(model)                      # doctest: +SKIP
>>> print(rec)                                          # doctest: +SKIP
>>> print(rec.code())                                   # doctest: +SKIP

Modules: :mod:`~initlab.recommender.core` (:func:`recommend`, the candidate schemes),
:mod:`~initlab.recommender.record` (:class:`Recommendation`), :mod:`~initlab.recommender.confirm`
(the confirming study), :mod:`~initlab.recommender.torch_code` (``torch.nn.init`` lines).
"""

from initlab.recommender.core import candidate_schemes, recommend, resolve_data
from initlab.recommender.record import Candidate, Confirmation, Recommendation, Trained, within_spread
from initlab.recommender.torch_code import apply_lines, torch_lines

__all__ = ["Candidate", "Confirmation", "Recommendation", "Trained", "apply_lines", "candidate_schemes",
           "recommend", "resolve_data", "torch_lines", "within_spread"]
