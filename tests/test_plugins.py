"""Users' own schemes: initlab.register_scheme, plugin files (--plugin, [study] plugins,
initlab.load_plugin) and the initlab.schemes entry-point group."""

from __future__ import annotations

import math
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import initlab
from initlab import plugins
from initlab.cli import main
from initlab.errors import InitlabError
from initlab.schemes import laws, registry
from initlab.study import load_spec

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch):
    """Each test registers into a copy of the registry and a fresh plugin list."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))
    monkeypatch.setattr(plugins, "_LOADED", {})


def _register_scaled(name: str = "scaled", **kw) -> None:
    initlab.register_scheme(
        name,
        sample=lambda w, fan_in, fan_out, generator, scale: w.normal_(0.0, scale / math.sqrt(fan_in),
                                                                      generator=generator),
        law=lambda shape, fan_in, fan_out, scale: laws.normal(0.0, scale / math.sqrt(fan_in)),
        defaults={"scale": math.sqrt(2.0)}, domains={"scale": initlab.schemes.Range(0, lo_open=True)},
        formula="N(0, scale^2/fan_in)", source="test", **kw)


def test_a_registered_scheme_is_a_scheme_like_any_other():
    _register_scaled(aliases=("my_he",))
    s = initlab.get_scheme("scaled(scale=1)")
    assert s.spec == "scaled(scale=1.0)" and initlab.get_scheme("my_he").name == "scaled"
    assert s.law((256, 784)).std == pytest.approx(1 / 28)
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    initlab.apply(model, "scaled", seed=3)
    assert initlab.check(model, "scaled").ok and initlab.check(model, "he_normal").ok
    he = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    initlab.apply(he, "he_normal", seed=3)  # the same draws from the same generator
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), he.parameters()))
    assert initlab.identify(model) == ["he_normal (= scaled)"]  # identify knows plugin schemes
    with pytest.raises(InitlabError, match="scale must be > 0"):
        initlab.get_scheme("scaled(scale=-1)")


@pytest.mark.parametrize("name", ["he_normal", "Scaled", "my-scheme", "2x"])
def test_a_name_that_is_taken_or_not_an_identifier_is_refused(name):
    with pytest.raises(InitlabError) as info:
        _register_scaled(name)
    assert "\n" not in str(info.value)


def test_a_law_that_is_not_a_law_is_one_line():
    initlab.register_scheme("bad_law", sample=lambda w, fi, fo, g: w.zero_(), law=lambda shape, fi, fo: 0.5,
                            formula="0", source="test")
    with pytest.raises(InitlabError, match="not an initlab.schemes.laws.Law"):
        initlab.get_scheme("bad_law").law((4, 4))


def _plugin(tmp_path: Path, body: str, name: str = "plug.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def test_a_plugin_file_is_loaded_once_from_python_and_the_cli(tmp_path, capsys):
    src = EXAMPLES / "plugins" / "scaled_normal.py"
    assert initlab.load_plugin(src) == src.resolve()
    assert initlab.load_plugin(src) == src.resolve()  # once per process: no collision
    assert plugins.loaded_plugins() == [src.resolve()]
    assert main(["schemes", "scaled_normal", "--plugin", str(src)]) == 0
    assert "same law as: he_normal" in capsys.readouterr().out
    assert main(["check", "--scheme", "scaled_normal", "--init", "he_normal", "--plugin", str(src),
                 "--no-identify"]) == 0


def test_the_example_plugin_study_reads_its_plugin_relative_to_the_spec(tmp_path):
    spec = tmp_path / "study.toml"
    shutil.copytree(EXAMPLES / "plugins", tmp_path / "plugins")
    spec.write_text((EXAMPLES / "plugin-study.toml").read_text())
    study = load_spec(spec).expand()
    assert {c.scheme for c in study.cells} == {"he_normal", "scaled_normal", "scaled_normal(scale=1.0)"}


@pytest.mark.parametrize("body,match", [
    ("raise RuntimeError('broken on purpose')\n", "failed while it was imported: RuntimeError: broken on purpose"),
    ("import initlab\ninitlab.register_scheme('he_normal', sample=print, law=print, formula='', source='')\n",
     "already registered"),
    ("def f(:\n", "SyntaxError"),
])
def test_a_bad_plugin_is_one_line_and_exit_2(tmp_path, capsys, body, match):
    path = _plugin(tmp_path, body)
    with pytest.raises(InitlabError, match=match):
        initlab.load_plugin(path)
    assert main(["schemes", "--plugin", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and str(path) in err
    assert plugins.loaded_plugins() == []  # a failed plugin is not counted as loaded


def test_a_missing_plugin_path_in_a_spec_is_located(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('[study]\nplugins = ["nope.py"]\n')
    with pytest.raises(InitlabError, match=r"s.toml:2: \[study\] plugins: plugin .*nope.py' does not exist"):
        load_spec(spec)


def test_an_installed_package_registers_through_its_entry_point(tmp_path, monkeypatch):
    """A package on sys.path whose dist-info declares an ``initlab.schemes`` entry point
    is loaded by load_entry_points; a broken one warns in one line and is skipped."""
    pkg = tmp_path / "site"
    (pkg / "ep_schemes.py").parent.mkdir()
    (pkg / "ep_schemes.py").write_text(textwrap.dedent('''
        import initlab
        from initlab.schemes import laws
        def register():
            initlab.register_scheme("ep_zero", sample=lambda w, fi, fo, g: w.zero_(),
                                    law=lambda shape, fi, fo: laws.constant(0.0), formula="0", source="ep")
    '''))
    (pkg / "ep_broken.py").write_text("raise ImportError('missing dependency')\n")
    info = pkg / "ep_schemes-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-schemes\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[initlab.schemes]\nzero = ep_schemes:register\nbroken = ep_broken\n")
    monkeypatch.syspath_prepend(str(pkg))
    monkeypatch.setattr(plugins, "_ENTRY_POINTS_LOADED", False)
    with pytest.warns(RuntimeWarning, match="'broken' .* failed and is skipped"):
        assert plugins.load_entry_points() == ["zero"]
    assert initlab.get_scheme("ep_zero").law((3, 3)).std == 0
    assert plugins.load_entry_points() == []  # once
    sys.modules.pop("ep_schemes", None)
