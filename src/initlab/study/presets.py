"""Named study presets.

``seed``
    The article, "Effects of Weight Initialization on Neural Networks": its seven schemes
    (:data:`~initlab.study.config.ARTICLE_SCHEMES`) on the article's MLP (784-256-128-10,
    ReLU, dropout 0.2; ``MLPSpec()``), Fashion-MNIST with the official test set as
    validation data, Adam (lr 1e-3, Keras' epsilon 1e-7), batch 128, 10 epochs, seeds
    0, 1, 2 (the article reports one run; three seeds give a spread).

``deep``
    The same seven plus ``he_normal``, ``lecun_normal``, ``orthogonal`` and ``lsuv`` on a
    20-hidden-layer, width-256 ReLU MLP, everything else as in ``seed``. Dropout stays at
    the article's 0.2 so that depth is the only change. Caveat, visible in the results:
    inverted dropout with rate p multiplies the second moment of each layer's input by
    1/(1-p) in training mode, so with He-style variance preservation the pre-activation
    variance grows by 1.25 per layer while training (1.25**20 ~ 87x, ~9x in std at the
    output); evaluation (no dropout) is unaffected. Set ``dropout = 0`` in a spec file
    to remove this effect.

``smoke``
    Two schemes, one seed, one epoch on 2000/500 examples: a seconds-long end-to-end check.
"""

from __future__ import annotations

from collections.abc import Callable

from initlab.engine.models import MLPSpec
from initlab.errors import UnknownNameError, suggest
from initlab.study.config import ARTICLE_SCHEMES, StudyConfig

__all__ = ["PRESETS", "DEEP_EXTRA_SCHEMES", "get_preset", "preset_names"]

#: Schemes the ``deep`` preset adds to the article's seven.
DEEP_EXTRA_SCHEMES: tuple[str, ...] = ("he_normal", "lecun_normal", "orthogonal", "lsuv")

_ARTICLE_TRAIN = {"epochs": 10, "batch_size": 128, "lr": 1e-3, "eps": 1e-7}


def _seed() -> StudyConfig:
    return StudyConfig(
        name="seed",
        schemes=ARTICLE_SCHEMES,
        seeds=(0, 1, 2),
        models=(MLPSpec(),),
        datasets=("fashion-mnist",),
        validation="test",
        train=dict(_ARTICLE_TRAIN),
    )


def _deep() -> StudyConfig:
    return StudyConfig(
        name="deep",
        schemes=ARTICLE_SCHEMES + DEEP_EXTRA_SCHEMES,
        seeds=(0, 1, 2),
        models=(MLPSpec(hidden=(256,) * 20, activation="relu", dropout=0.2),),
        datasets=("fashion-mnist",),
        validation="test",
        train=dict(_ARTICLE_TRAIN),
    )


def _smoke() -> StudyConfig:
    return StudyConfig(
        name="smoke",
        schemes=("keras_default", "zeros"),
        seeds=(0,),
        models=(MLPSpec(),),
        datasets=("fashion-mnist",),
        validation="test",
        limit_train=2000,
        limit_val=500,
        train={**_ARTICLE_TRAIN, "epochs": 1},
    )


#: Preset name -> factory (a fresh, validated config per call).
PRESETS: dict[str, Callable[[], StudyConfig]] = {"seed": _seed, "deep": _deep, "smoke": _smoke}


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> StudyConfig:
    """The :class:`StudyConfig` of a preset; unknown names raise
    :class:`~initlab.errors.UnknownNameError` with the nearest names."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in PRESETS:
        raise UnknownNameError(
            f"unknown preset {name!r}{suggest(str(name), list(PRESETS))}; "
            f"choose one of {', '.join(PRESETS)}"
        )
    return PRESETS[key]()
