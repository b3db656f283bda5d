"""Signal propagation at initialization: measure it, explain it, compare it with theory.

>>> import initlab
>>> from initlab.engine.models import MLPSpec
>>> spec = MLPSpec(784, (256,) * 20, 10, "relu", 0.0)
>>> result = initlab.probe(spec, schemes=["he_normal", "glorot_normal"])   # doctest: +SKIP
>>> print(result.table())                                                  # doctest: +SKIP

Modules: :mod:`~initlab.probe.runner` (the probe), :mod:`~initlab.probe.capture` (hooks),
:mod:`~initlab.probe.measures` (effective rank, duplicate units, Jacobian spectrum),
:mod:`~initlab.probe.verdicts` (the raw, measured verdicts),
:mod:`~initlab.probe.calibration` (the calibrated ones: what the measurements predict about
training, per optimizer, fitted on a grid of trained models), :mod:`~initlab.probe.meanfield` (Poole et al. 2016;
Schoenholz et al. 2017), :mod:`~initlab.probe.result`, :mod:`~initlab.probe.table`,
:mod:`~initlab.probe.figures`; ``file.py:function`` models load with
:func:`initlab.engine.custom_model.load_factory` (re-exported here).
"""

import sys as _sys
import types as _types

from initlab.probe.calibration import Prediction, load_calibration, predict as predict_training
from initlab.probe.capture import LAYER_TYPES, Capture
from initlab.probe.figures import probe_figures, save_probe_figures
from initlab.engine.custom_model import load_factory
from initlab.probe.meanfield import (
    MeanField, c_map, c_star, chi_1, chi_q, critical_sigma_w2, mean_field, predict_depth_profile, q_map,
    q_star,
)
from initlab.probe.result import KINDS, LayerProbe, ProbeResult, SchemeProbe, Verdict
from initlab.probe.runner import DEFAULT_SCHEMES, probe
from initlab.probe.table import render
from initlab.probe.verdicts import Thresholds, diagnose

__all__ = [
    "Capture", "DEFAULT_SCHEMES", "Prediction", "load_calibration", "predict_training", "KINDS", "LAYER_TYPES", "LayerProbe", "MeanField", "ProbeResult", "SchemeProbe", "Thresholds",
    "Verdict", "c_map", "c_star", "chi_1", "chi_q", "critical_sigma_w2", "diagnose", "load_factory",
    "mean_field", "predict_depth_profile", "probe", "probe_figures", "q_map", "q_star", "render",
    "save_probe_figures",
]


class _CallableModule(_types.ModuleType):
    """Lets ``initlab.probe(...)`` work even where the attribute ``initlab.probe`` is this
    package (importing a submodule rebinds it to the package) instead of the function."""

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return probe(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
