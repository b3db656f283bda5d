"""``initlab.check.identify`` and ``CheckReport.looks_like``: what do the weights look like?

Also the text layout of :class:`CheckReport` and the point-mass CDF of a zero-std law."""

from __future__ import annotations

import importlib
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import initlab
from initlab.check import NO_MATCH, REPORT_WIDTH, CheckRow, identify, row_lines
from initlab.engine.models import MLPSpec, build_mlp
from initlab.errors import InitlabError, UnknownNameError
from initlab.layers import walk
from initlab.schemes import get_scheme, laws, scheme_names

HEADER = ["layer                        expected std realized std    z(var)      KS p  verdict"]


def _mlp(scheme: str | None = None, seed: int = 0) -> nn.Module:
    """The article's MLP (784-256-128-10), initialized with *scheme*."""
    model = build_mlp(MLPSpec())
    if scheme is not None:
        initlab.apply(model, scheme, seed=seed)
    return model


def _names(labels: list[str]) -> list[list[str]]:
    """``["a (= b, c)", "d"]`` -> ``[["a", "b", "c"], ["d"]]``."""
    out = []
    for label in labels:
        first, _, rest = label.partition(" (= ")
        out.append([first, *(n for n in rest.rstrip(")").split(", ") if n)])
    return out


def _flat(labels: list[str]) -> set[str]:
    return {n for group in _names(labels) for n in group}


def _same_law_twins(model: nn.Module, name: str) -> set[str]:
    """Registered data-free schemes whose law equals *name*'s on every weight of *model*
    (computed here from the laws, independently of identify's grouping)."""
    shapes = [tuple(s.param.shape) for s in walk(model)[0]]

    def signature(spec: str) -> tuple[str, ...] | None:
        try:
            return tuple(get_scheme(spec).law(shape).describe() for shape in shapes)
        except InitlabError:
            return None

    mine = signature(name)
    return {n for n in scheme_names() if not get_scheme(n).requires_data and signature(n) == mine}


# ---- the article's mistake, identified ---------------------------------------------------

@pytest.mark.parametrize("recipe", ["uniform_recipe", "normal_recipe"])
def test_the_articles_weights_look_like_glorot_uniform(recipe: str) -> None:
    report = initlab.check(_mlp("keras_default"), recipe)
    assert not report.ok and report.looks_like is not None
    assert _names(report.looks_like)[0] == ["glorot_uniform", "keras_default"]
    assert recipe not in _flat(report.looks_like)
    assert str(report).splitlines()[-1] == "weights look like: glorot_uniform (= keras_default)"


def test_he_normal_weights_are_named_he_normal_and_its_twins_only() -> None:
    model = _mlp("he_normal", seed=3)
    labels = identify(model)
    assert _flat(labels) == _same_law_twins(model, "he_normal") and "he_normal" in _flat(labels)
    assert initlab.check(model, "glorot_normal").looks_like == labels


def test_weights_no_scheme_draws_match_none() -> None:
    std = 0.3
    model = _mlp()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for slot in walk(model)[0]:
            slot.param.normal_(0.0, std, generator=gen)
    # precondition: no registered law is N(0, 0.3) on every layer (within 10% in std)
    for name in scheme_names():
        s = get_scheme(name)
        if s.requires_data:
            continue
        try:
            fits = [s.law(tuple(sl.param.shape)) for sl in walk(model)[0]]
        except InitlabError:
            continue
        assert not all(law.family == "normal" and abs(law.std / std - 1) < 0.1 for law in fits), name
    assert identify(model) == []
    report = initlab.check(model, "he_normal")
    assert report.looks_like == [] and str(report).endswith(f"weights look like: {NO_MATCH}")


@pytest.mark.parametrize("scheme", ["he_normal", "uniform_recipe", "glorot_truncated_normal", "orthogonal",
                                    "zeros", "sparse(sparsity=0.2, std=0.05)", "normal(mean=0.1, std=0.02)"])
def test_a_conforming_model_is_identified_as_its_own_scheme(scheme: str) -> None:
    model = _mlp(scheme, seed=1)
    assert initlab.check(model, scheme).ok
    candidates = None if scheme in scheme_names() else [scheme, "he_normal", "normal"]
    assert get_scheme(scheme).spec in _flat(identify(model, candidates))


def test_conv_and_recurrent_layers() -> None:
    """Fans per layer type (conv receptive field, LSTM gate blocks) as in check; dirac and
    identity do not apply to every layer here and are skipped, not errors."""
    model = nn.Sequential(nn.Conv2d(3, 32, 3), nn.Flatten(), nn.Linear(32 * 6 * 6, 64))
    initlab.apply(model, "he_uniform", seed=0)
    assert _flat(identify(model)) == _same_law_twins(model, "he_uniform")
    lstm = nn.LSTM(64, 128)
    initlab.apply(lstm, "glorot_normal", seed=0)
    assert "glorot_normal" in _flat(identify(lstm))


def test_torch_default_and_uniform_recipe_are_one_law_for_linear_layers() -> None:
    """Their bias rules differ, but check looks at weights: one label, twins collapsed."""
    torch.manual_seed(0)
    model = build_mlp(MLPSpec())  # PyTorch's own default init
    assert identify(model) == ["torch_default (= uniform_recipe)"]
    assert identify(model, ["uniform_recipe", "torch_default", "pytorch_default"]) == [
        "torch_default (= uniform_recipe)"]


def test_best_fit_first() -> None:
    """Neighbours within the tests' resolution all match; the nearest variance comes first
    (z(var) steps of ~5.7 between candidates, sampling noise ~1)."""
    model = nn.Linear(1000, 1000)
    initlab.apply(model, "normal(std=0.05)", seed=0)
    near = ["normal(std=0.0504)", "normal(std=0.05)", "normal(std=0.0502)"]
    assert identify(model, near, sigmas=20) == ["normal(std=0.05)", "normal(std=0.0502)", "normal(std=0.0504)"]
    assert identify(model, near) == ["normal(std=0.05)"]  # at 5 sigma the neighbours are rejected


def test_candidates_are_validated_and_data_dependent_ones_skipped() -> None:
    model = _mlp("he_normal")
    assert identify(model, "kaiming_normal") == ["he_normal"]
    assert identify(model, ["lsuv", "he_normal", "he_normal"]) == ["he_normal"]
    with pytest.raises(UnknownNameError, match="did you mean he_normal"):
        identify(model, ["he_nrmal"])
    with pytest.raises(InitlabError, match="no data-free scheme"):
        identify(model, ["lsuv"])
    with pytest.raises(InitlabError, match="no data-free scheme"):
        identify(model, [])
    with pytest.raises(InitlabError, match="candidates must be"):
        identify(model, 3)
    with pytest.raises(InitlabError, match="sigmas"):
        identify(model, sigmas=0)
    with pytest.raises(InitlabError, match="ks_alpha"):
        identify(model, ks_alpha=1.5)
    with pytest.raises(InitlabError, match="nn.Module"):
        identify("model")


def test_include_restricts_the_layers() -> None:
    """Only the first layer drawn from he_normal: identified once the others are excluded."""
    model = _mlp("glorot_uniform")
    initlab.apply(model, "he_normal", seed=0, include="1")
    assert "he_normal" not in _flat(identify(model))
    assert "he_normal" in _flat(identify(model, include="1"))


# ---- CheckReport: looks_like only on failure, to_dict, text layout -------------------------

def test_looks_like_is_only_computed_on_failure(monkeypatch) -> None:
    check_mod = importlib.import_module("initlab.check")  # the attribute initlab.check is the function

    def boom(*_a, **_k):
        raise AssertionError("identify ran on the happy path")

    model = _mlp("he_normal")
    with monkeypatch.context() as m:
        m.setattr(check_mod, "_identify", boom)
        report = initlab.check(model, "he_normal")
        assert report.ok and report.looks_like is None and report.to_dict()["looks_like"] is None
        assert "look like" not in str(report)
        off = initlab.check(model, "glorot_uniform", identify=False)
    assert not off.ok and off.looks_like is None and "look like" not in str(off)
    assert off.to_dict()["looks_like"] is None
    on = initlab.check(model, "glorot_uniform")
    assert on.to_dict()["looks_like"] == on.looks_like == ["he_normal"]
    assert [r.to_dict() for r in on.layers] == [r.to_dict() for r in off.layers]  # same verdicts


def test_data_dependent_failure_still_says_what_the_weights_look_like() -> None:
    """LSUV never run: the output variance is off and the weights are still glorot_uniform."""
    model = _mlp("glorot_uniform")
    batch = torch.rand(64, 784, generator=torch.Generator().manual_seed(0))
    report = initlab.check(model, "lsuv", data=batch)
    assert not report.ok and "glorot_uniform" in _flat(report.looks_like)


def test_report_text_keeps_its_head_and_fits_the_width() -> None:
    report = initlab.check(_mlp("keras_default"), "uniform_recipe")
    lines = str(report).splitlines()
    assert lines[0] == "initlab.check: scheme uniform_recipe: 3 of 3 layers do not conform"
    assert lines[1:2] == HEADER
    assert max(map(len, lines)) <= REPORT_WIDTH
    rows = [line for line in lines if line.split()[0] in {r.name for r in report.layers}]
    assert len(rows) == 3 and all(row.endswith("  MISMATCH:") for row in rows)
    # each reason is on its own indented line, in the order of CheckRow.reason
    for row, r in zip(rows, report.layers):
        i = lines.index(row)
        parts = r.reason.split("; ")
        assert lines[i + 1: i + 1 + len(parts)] == ["    " + p for p in parts]


def test_a_short_reason_stays_on_its_row() -> None:
    row = CheckRow("0.weight", (4, 4), "normal", 0.0, 0.0, 1.0, 3.0, 0.0, 50.0, 0.5, 0.0, False, "std 3 vs 1")
    (line,) = row_lines(row)
    assert line.endswith("  MISMATCH: std 3 vs 1") and len(line) <= REPORT_WIDTH
    ok = CheckRow("0.weight", (4, 4), "normal", 0.0, 0.0, 1.0, 1.0, 0.0, 0.1, 0.01, 0.9, True, "")
    assert row_lines(ok)[0].endswith("  ok")


# ---- a normal law with std 0 is a point mass ----------------------------------------------

def test_zero_std_normal_cdf_is_a_step_without_warnings() -> None:
    x = np.array([-1.0, -1e-300, 0.0, 0.25, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert laws.normal(0.0, 0.0).cdf(x).tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
        assert laws.normal(0.25, 0.0).cdf(x).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
        assert laws.uniform(0.25, 0.25).cdf(x).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    # the step is the limit of the normal CDF as std -> 0
    small = laws.normal(0.25, 1e-9).cdf(x[x != 0.25])
    assert small.tolist() == laws.normal(0.25, 0.0).cdf(x[x != 0.25]).tolist()


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_zero_std_scheme_checks_without_warnings() -> None:
    model = _mlp("zeros")
    assert initlab.check(model, "normal(std=0)").ok
    initlab.apply(model, "he_normal", seed=0)
    report = initlab.check(model, "normal(std=0)")
    assert not report.ok and all(math.isinf(r.z_var) and r.ks_p == 0 for r in report.layers)
    assert report.looks_like is not None and "he_normal" in _flat(report.looks_like)
