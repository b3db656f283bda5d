"""initlab: study, check and choose neural-network weight initialization.

>>> import initlab, torch
>>> model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
>>> report = initlab.apply(model, "he_normal", seed=0)
>>> initlab.check(model, "he_normal").ok
True
"""

__version__ = "0.1.0"

from initlab.apply import InitReport, LayerRecord, apply  # noqa: E402
from initlab.check import CheckReport, check, identify  # noqa: E402
from initlab.errors import InitlabError  # noqa: E402
from initlab.probe import probe  # noqa: E402  (signal propagation at init)
from initlab.schemes import Scheme, get_scheme, register_scheme, scheme_names  # noqa: E402
from initlab.plugins import load_entry_points, load_plugin  # noqa: E402

load_entry_points()  # installed packages' schemes (entry-point group initlab.schemes)


__all__ = ["CheckReport", "InitReport", "InitlabError", "LayerRecord", "Results", "Scheme", "__version__",
           "apply", "check", "get_scheme", "identify", "load", "load_plugin", "probe", "recommend",
           "register_scheme", "run", "scheme_names"]


def __getattr__(name: str):  # studies from Python (initlab.api), imported on first use
    if name in ("run", "load", "Results"):
        import importlib  # (not an import statement: lower layers import initlab itself)

        return getattr(importlib.import_module("initlab.api"), name)
    if name == "recommend":  # initlab.recommend(model, data): ranked schemes (initlab.recommender.core)
        import importlib

        return importlib.import_module("initlab.recommender.core").recommend
    raise AttributeError(f"module 'initlab' has no attribute {name!r}")
