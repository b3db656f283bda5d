"""A scheme of your own, in a plugin file: N(0, scale^2 / fan_in).

Load it with ``--plugin examples/plugins/scaled_normal.py`` on any ``initlab`` command, with
``[study] plugins = ["plugins/scaled_normal.py"]`` in a spec (see ``../plugin-study.toml``),
or with ``initlab.load_plugin(path)`` in Python. Then ``scaled_normal`` (or
``scaled_normal(scale=2)``) is a scheme like any built-in: ``initlab schemes scaled_normal``,
``initlab run --schemes ...``, ``initlab check --scheme scaled_normal``, ``initlab probe``.
"""

import math

import initlab
from initlab.schemes import Range, laws

initlab.register_scheme(
    "scaled_normal",
    # draw in place from the generator initlab passes, so that seeds reproduce
    sample=lambda w, fan_in, fan_out, generator, scale: w.normal_(
        0.0, scale / math.sqrt(fan_in), generator=generator),
    # the law of one entry: what `initlab check` tests realized weights against
    law=lambda shape, fan_in, fan_out, scale: laws.normal(0.0, scale / math.sqrt(fan_in)),
    defaults={"scale": math.sqrt(2.0)},
    domains={"scale": Range(0, lo_open=True)},
    formula="N(0, scale^2 / fan_in), scale = sqrt(2) by default (= he_normal)",
    source="examples/plugins/scaled_normal.py",
)
