"""The probe's verdict kinds (a leaf module: :mod:`~initlab.probe.result` re-exports it,
and :mod:`~initlab.probe.calibration` reads it without importing the results)."""

#: Verdict kinds, in the order they are checked.
KINDS = (
    "vanishing_signal", "exploding_signal", "vanishing_gradients", "exploding_gradients",
    "dead_units", "saturation", "unbroken_symmetry",
)
