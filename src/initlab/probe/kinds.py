"""The probe's verdict kinds (a leaf module: :mod:`~initlab.probe.result` re-exports it,
and :mod:`~initlab.probe.calibration` reads it without importing the results)."""

#: Verdict kinds, in the order they are checked. ``ill_conditioned`` (the input-output
#: Jacobian's singular values spread over decades) is only ever a calibrated verdict
#: (:mod:`~initlab.probe.calibration`); the raw thresholds do not judge the Jacobian.
KINDS = (
    "vanishing_signal", "exploding_signal", "vanishing_gradients", "exploding_gradients",
    "dead_units", "saturation", "unbroken_symmetry", "ill_conditioned",
)
