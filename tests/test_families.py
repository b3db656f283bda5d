"""Model families: specs by kind, their builders, labels, input shapes and one-line errors."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from torch import nn

from initlab.engine.convnets import BasicBlock, CNNSpec, ResNetSpec
from initlab.engine.custom_model import CustomSpec
from initlab.engine.families import (
    ModelSpec, build_model, family, family_keys, family_kinds, register_family, spec_from_dict,
)
from initlab.engine.models import LinearSpec, MLPSpec, build_mlp
from initlab.engine.stack import infer_spec
from initlab.errors import InitlabError, UnknownNameError

GOOD_MODEL = """
from torch import nn

def build():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 7))

def conv():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))

def boom():
    raise RuntimeError("no GPU here\\nsecond line")

def not_a_module():
    return 42

def flat_output():
    return nn.Sequential(nn.Flatten(0))
"""


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "mynet.py"
    path.write_text(GOOD_MODEL)
    return path


def _specs(model_file: Path) -> list[ModelSpec]:
    return [
        MLPSpec(), MLPSpec(hidden=(64,) * 3, activation="tanh", dropout=0.0), MLPSpec(bias=False),
        LinearSpec(), LinearSpec(depth=1, width=8), LinearSpec(depth=3, width=16, out_features=5),
        CNNSpec(), CNNSpec(depth=4, channels=(8, 8, 16, 16), downsample=(2, 4), pool="max", norm="layer"),
        CNNSpec(depth=3, channels=4, downsample=(1, 2, 3), norm="batch", bias=False),
        CNNSpec(depth=2, channels=4, pool="avg", downsample=(2,), activation="gelu"),
        ResNetSpec(), ResNetSpec(depth=3, width=8, norm="batch", downsample=(2, 3)),
        ResNetSpec(depth=2, width=4, norm="layer", activation="tanh"),
        CustomSpec(builder=f"{model_file}:build", input_shape=(784,)),
        CustomSpec(builder=f"{model_file}:conv", input_shape=(1, 28, 28)),
    ]


# --- registry and dicts -----------------------------------------------------------------------


def test_kinds_and_keys() -> None:
    assert family_kinds()[:5] == ("mlp", "linear", "cnn", "resnet", "custom")
    for kind in family_kinds():
        keys = family_keys(kind)
        assert keys[0] == "kind" and "name" in keys and family(kind).kind == kind
    assert family_keys("mlp") == ("kind", "in_features", "hidden", "out_features", "activation", "dropout",
                                  "name", "bias")
    assert family_keys("custom") == ("kind", "builder", "input_shape", "name")


def test_round_trip_every_kind(model_file: Path) -> None:
    specs = _specs(model_file)
    assert {s.kind for s in specs} == set(family_kinds()[:5])
    for spec in specs:
        d = spec.to_dict()
        assert json.loads(json.dumps(d)) == d
        assert ("kind" in d) == (spec.kind != "mlp")
        back = spec_from_dict(d)
        assert type(back) is type(spec) and back == spec and back.to_dict() == d
        assert type(spec).from_dict(d) == spec and back.label == spec.label
        assert set(d) <= set(family_keys(spec.kind))


def test_mlp_dict_is_unchanged_and_kind_defaults_to_mlp() -> None:
    assert MLPSpec().to_dict() == {"in_features": 784, "hidden": [256, 128], "out_features": 10,
                                   "activation": "relu", "dropout": 0.2, "name": ""}
    assert MLPSpec(bias=False).to_dict()["bias"] is False
    assert spec_from_dict({}) == MLPSpec() and type(spec_from_dict({"hidden": [64]})) is MLPSpec
    assert spec_from_dict({"kind": "mlp", "hidden": [64]}) == MLPSpec(hidden=(64,))
    assert MLPSpec.from_dict({"bias": True, **MLPSpec().to_dict()}) == MLPSpec()
    assert MLPSpec(784, (256,) * 20, 10, "relu", 0.0).hidden == (256,) * 20  # positional, as before


def test_channels_list_of_one_width_is_that_width() -> None:
    a, b = CNNSpec(depth=3, channels=[16, 16, 16]), CNNSpec(depth=3, channels=16)
    assert a == b and a.to_dict() == b.to_dict() and a.to_dict()["channels"] == 16
    assert CNNSpec(depth=2, channels=[8, 16]).to_dict()["channels"] == [8, 16]


# --- builders --------------------------------------------------------------------------------


def test_every_builder_outputs_logits(model_file: Path) -> None:
    for spec in _specs(model_file):
        model = spec.build()
        assert isinstance(model, nn.Module)
        with torch.no_grad():
            out = model.eval()(torch.randn(3, *spec.input_shape))
        assert out.shape == (3, spec.out_features), spec.label
        if spec.kind != "custom":  # the built-in families take dataset batches [N, 28, 28] as they come
            assert model(torch.randn(3, 28, 28)).shape == (3, spec.out_features)
    assert build_model({"kind": "linear", "depth": 2}).__class__ is nn.Sequential


def test_as_input_reshapes_dataset_batches() -> None:
    x = torch.randn(4, 28, 28)
    assert CNNSpec().as_input(x).shape == (4, 1, 28, 28) and MLPSpec().as_input(x).shape == (4, 784)
    torch.testing.assert_close(CNNSpec().as_input(x)[:, 0], x)
    with pytest.raises(InitlabError, match="cannot feed model cnn-8x32-relu"):
        CNNSpec().as_input(torch.randn(4, 32, 32))


def test_build_is_seeded_and_leaves_the_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    a, b, c = CNNSpec(depth=2, channels=4).build(), CNNSpec(depth=2, channels=4).build(), CNNSpec(
        depth=2, channels=4).build(seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a.conv1.weight, b.conv1.weight) and not torch.equal(a.conv1.weight, c.conv1.weight)


def test_mlp_builder_and_fast_path() -> None:
    spec = MLPSpec(in_features=16, hidden=(8, 4), dropout=0.1)
    assert spec.fast_path and infer_spec(spec.build()) == spec
    assert str(spec.build()) == str(build_mlp(spec))
    nobias = MLPSpec(in_features=16, hidden=(8,), bias=False)
    model = nobias.build()
    assert not nobias.fast_path and all(m.bias is None for m in model if isinstance(m, nn.Linear))
    with pytest.raises(InitlabError):
        infer_spec(model)  # the hand-tuned engine does not take it
    assert not any(s.fast_path for s in (LinearSpec(), CNNSpec(), ResNetSpec()))


def test_linear_network_has_no_bias_and_no_activation() -> None:
    model = LinearSpec(depth=4, width=32).build()
    kinds = [type(m) for m in model]
    assert kinds == [nn.Flatten] + [nn.Linear] * 4
    assert [(m.in_features, m.out_features) for m in model[1:]] == [(784, 32), (32, 32), (32, 32), (32, 10)]
    assert all(m.bias is None for m in model[1:])
    x = torch.randn(5, 784)  # a linear map: f(2x + y) = 2 f(x) + f(y)
    torch.testing.assert_close(model(2 * x + x.flip(0)), 2 * model(x) + model(x.flip(0)), rtol=1e-4, atol=1e-5)


def _count(model: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


@pytest.mark.parametrize("norm,norm_type", [("none", None), ("batch", nn.BatchNorm2d), ("layer", nn.GroupNorm)])
def test_cnn_layers_and_parameter_count(norm: str, norm_type: type | None) -> None:
    spec = CNNSpec(depth=8, channels=32, norm=norm)
    model = spec.build()
    assert _count(model, nn.Conv2d) == 8 and _count(model, nn.Linear) == 1 and _count(model, nn.ReLU) == 8
    norms = sum(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)) for m in model.modules())
    assert norms == (0 if norm_type is None else 8)
    if norm_type is not None:
        assert _count(model, norm_type) == 8
    convs = (9 * 1 * 32 + 32) + 7 * (9 * 32 * 32 + 32)
    assert sum(p.numel() for p in model.parameters()) == convs + (32 * 10 + 10) + (0 if norm_type is None else 8 * 64)
    names = [n for n, _ in model.named_children()]
    assert names[:4] == ["input", "conv1", "act1", "conv2"] if norm == "none" else ["input", "conv1", "norm1", "act1"]
    assert names[-3:] == ["gap", "flatten", "head"] and model.output_layer() is model.head


def test_cnn_downsampling_schedule() -> None:
    def sizes(spec: CNNSpec) -> list[int]:
        seen: list[int] = []
        model = spec.build()
        hooks = [m.register_forward_hook(lambda _m, _i, o: seen.append(o.shape[-1]))
                 for n, m in model.named_children() if n.startswith("act") or n.startswith("pool")]
        model(torch.zeros(2, 1, 28, 28))
        for h in hooks:
            h.remove()
        return seen

    stride = CNNSpec(depth=6, channels=4, downsample=(2, 4, 5, 6))
    assert [m.stride for m in stride.build().conv_layers()] == [(1, 1), (2, 2), (1, 1), (2, 2), (2, 2), (2, 2)]
    assert sizes(stride) == [28, 14, 14, 7, 4, 2]
    pooled = CNNSpec(depth=3, channels=4, downsample=(1, 3), pool="max")
    model = pooled.build()
    assert all(m.stride == (1, 1) for m in model.conv_layers()) and _count(model, nn.MaxPool2d) == 2
    assert sizes(pooled) == [28, 14, 14, 14, 7]  # act1, pool1, act2, act3, pool3
    assert _count(CNNSpec(depth=2, channels=4, downsample=(2,), pool="avg").build(), nn.AvgPool2d) == 1


@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
def test_resnet_structure_protocol(norm: str) -> None:
    spec = ResNetSpec(depth=4, width=8, norm=norm, downsample=(3,))
    model = spec.build()
    branches = model.residual_branches()
    assert len(branches) == 4 and all(isinstance(b, nn.Sequential) for b in branches)
    assert isinstance(model.blocks, nn.ModuleList) and all(isinstance(b, BasicBlock) for b in model.blocks)
    assert [b is blk.branch for b, blk in zip(branches, model.blocks)] == [True] * 4
    last_type = {"none": nn.Conv2d, "batch": nn.BatchNorm2d, "layer": nn.GroupNorm}[norm]
    for b in branches:
        parameterized = [m for m in b if any(True for _ in m.parameters(recurse=False))]
        assert isinstance(b[0], nn.Conv2d) and isinstance(parameterized[-1], last_type)
        assert _count(b, nn.Conv2d) == 2
    assert model.output_layer() is model.head and isinstance(model.head, nn.Linear)
    assert isinstance(model.stem[0], nn.Conv2d)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) + 1 == spec.n_layers == 2 * 4 + 2
    assert [c.out_channels for c in convs] == [8, 8, 8, 8, 8, 16, 16, 16, 16] and model.head.in_features == 16
    assert all(not list(blk.shortcut.parameters()) for blk in model.blocks)  # parameter-free skips
    names = {n for n, _ in model.named_modules()}
    assert {"stem.0", "blocks.3.branch.0", "blocks.2.shortcut", "head"} <= names


def test_resnet_identity_skip_when_branches_are_zero() -> None:
    """A zeroed branch leaves ``act(x + 0) = act(x)``: the block is the identity on ReLU output."""
    model = ResNetSpec(depth=3, width=4).build()
    with torch.no_grad():
        for b in model.residual_branches():
            for p in b.parameters():
                p.zero_()
        x = model.stem(torch.randn(2, 1, 28, 28))
        y = x
        for blk in model.blocks:
            y = blk(y)
    torch.testing.assert_close(y, x)


# --- labels ----------------------------------------------------------------------------------


def test_labels(model_file: Path) -> None:
    assert CNNSpec(depth=8, channels=32).label == "cnn-8x32-relu"
    assert ResNetSpec(depth=24, width=16).label == "resnet-24x16-none"
    assert LinearSpec(depth=10, width=256).label == "linear-10x256"
    assert MLPSpec().label == "mlp-256x128-relu-d0.2" and MLPSpec(bias=False).label == "mlp-256x128-relu-d0.2-nobias"
    assert CNNSpec(depth=4, channels=[8, 8, 16, 16], downsample=[2, 4], pool="max", norm="batch").label == \
        "cnn-4x8.8.16.16-relu-batchnorm-ds2.4max"
    assert ResNetSpec(depth=2, width=8, downsample=[2], norm="layer", input_shape=[3, 32, 32]).label == \
        "resnet-2x8-layer-ds2-3x32x32"
    assert CustomSpec(builder=f"{model_file}:conv", input_shape=[1, 28, 28]).label == "custom-mynet.conv-1x28x28"
    specs = _specs(model_file) + [
        CNNSpec(bias=False), CNNSpec(out_features=100), CNNSpec(input_shape=(3, 28, 28)), CNNSpec(norm="batch"),
        ResNetSpec(bias=False), ResNetSpec(downsample=(4,)), ResNetSpec(activation="selu"),
        LinearSpec(in_features=100), CNNSpec(downsample=(2,)), CNNSpec(downsample=(2,), pool="avg"),
    ]
    assert len({json.dumps(s.to_dict(), sort_keys=True) for s in specs}) == len(specs)  # distinct specs
    labels = [s.label for s in specs]
    assert len(set(labels)) == len(labels), labels
    assert all("/" not in x and " " not in x for x in labels)
    for spec in specs:
        named = type(spec).from_dict({**spec.to_dict(), "name": "mine"})
        assert named.label == "mine" and named == spec


# --- fit to a dataset --------------------------------------------------------------------------


def test_check_fits(model_file: Path) -> None:
    for spec in (MLPSpec(), LinearSpec(), CNNSpec(), ResNetSpec(),
                 CustomSpec(builder=f"{model_file}:conv", input_shape=[1, 28, 28])):
        spec.check_fits((28, 28), 10)
        spec.check_fits((1, 28, 28), 10)
        spec.check_fits((784,), 2)  # fewer classes than outputs is fine
    cases = [
        (CNNSpec(), (32, 32), 10, "set input_shape = [1, 32, 32]"),
        (CNNSpec(), (3, 28, 28), 10, "set input_shape = [3, 28, 28]"),
        (ResNetSpec(), (32, 32), 10, "set input_shape = [1, 32, 32]"),
        (MLPSpec(), (32, 32), 10, "set in_features = 1024"),
        (LinearSpec(), (32, 32), 10, "set in_features = 1024"),
        (MLPSpec(), (28, 28), 100, "set out_features = 100"),
        (CNNSpec(), (28, 28), 11, "set out_features = 11"),
        (CustomSpec(builder=f"{model_file}:build", input_shape=[784]), (28, 28), 10, "return 10 logits"),
        (CustomSpec(builder=f"{model_file}:build", input_shape=[784]), (32, 32), 7, "set input_shape = [32, 32]"),
    ]
    for spec, shape, n, fix in cases:
        with pytest.raises(InitlabError) as e:
            spec.check_fits(shape, n)
        assert fix in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_custom_out_features_is_found_and_cached(model_file: Path) -> None:
    spec = CustomSpec(builder=f"{model_file}:build", input_shape=[784])
    assert spec.out_features == 7 and spec._cache["out"] == 7
    assert spec.to_dict() == {"kind": "custom", "builder": f"{model_file}:build", "input_shape": [784], "name": ""}
    assert spec_from_dict({"kind": "custom", "builder": f"{model_file}:conv", "input_shape": [1, 28, 28]}).out_features == 10
    fresh = CustomSpec(builder=f"{model_file}:build", input_shape=[784])
    assert fresh == spec and hash(fresh) == hash(spec)  # the cache is not part of the spec


def test_specs_pickle(model_file: Path) -> None:
    import pickle

    for spec in _specs(model_file):
        spec.build()
        back = pickle.loads(pickle.dumps(spec))
        assert back == spec and back.label == spec.label and back.out_features == spec.out_features


# --- bad input -------------------------------------------------------------------------------

BAD = [
    ({"kind": "cnnn"}, "unknown model kind 'cnnn' (did you mean cnn?); choose one of mlp, linear, cnn"),
    ({"kind": 3}, "unknown model kind 3"),
    ({"kind": "cnn", "widht": 3}, "unknown key 'widht' for model kind 'cnn'; valid keys: kind, depth"),
    ({"kind": "resnet", "channels": 3}, "unknown key 'channels' for model kind 'resnet'"),
    ({"kind": "linear", "hidden": [3]}, "unknown key 'hidden' for model kind 'linear'"),
    ({"hiden": [3]}, "unknown key 'hiden' for model kind 'mlp' (did you mean hidden?)"),
    ({"kind": "cnn", "depth": 3, "channels": [8, 8]}, "cnn channels lists 2 widths but depth is 3"),
    ({"kind": "cnn", "channels": [8, 0] * 4}, "cnn channels must be a list of integers >= 1"),
    ({"kind": "cnn", "channels": "32"}, "cnn channels must be an integer >= 1"),
    ({"kind": "cnn", "depth": 0}, "cnn depth must be an integer >= 1 (the number of conv layers), got 0"),
    ({"kind": "cnn", "depth": 2.0}, "cnn depth must be an integer"),
    ({"kind": "resnet", "depth": 0}, "resnet depth must be an integer >= 1"),
    ({"kind": "resnet", "width": True}, "resnet width must be an integer >= 1"),
    ({"kind": "linear", "depth": -1}, "linear depth must be an integer >= 1"),
    ({"kind": "cnn", "norm": "group"}, "unknown cnn norm 'group'; choose one of 'none', 'batch', 'layer'"),
    ({"kind": "resnet", "norm": "batchnorm"}, "unknown resnet norm 'batchnorm' (did you mean batch?)"),
    ({"kind": "cnn", "pool": "mean"}, "unknown cnn pool 'mean'"),
    ({"kind": "cnn", "activation": "relux"}, "unknown activation 'relux' (did you mean relu,"),
    ({"kind": "resnet", "activation": "swish"}, "unknown activation 'swish'"),
    ({"activation": "swish"}, "unknown activation 'swish'"),
    ({"kind": "cnn", "depth": 4, "downsample": [5]}, "cnn downsample must list distinct layer numbers in 1..4"),
    ({"kind": "cnn", "downsample": [3, 2]}, "in increasing order"),
    ({"kind": "resnet", "depth": 2, "downsample": [0]}, "resnet downsample must be a list of integers >= 1"),
    ({"kind": "cnn", "bias": "yes"}, "cnn bias must be true or false"),
    ({"bias": 1}, "mlp bias must be true or false"),
    ({"kind": "cnn", "input_shape": [28, 28]}, "cnn input_shape must be [channels, height, width]"),
    ({"kind": "resnet", "input_shape": [1, 0, 28]}, "resnet input_shape must be a list of integers >= 1"),
    ({"kind": "cnn", "out_features": 0}, "cnn out_features must be an integer >= 1"),
    ({"kind": "cnn", "name": 3}, "cnn name must be a string"),
    ({"hidden": [0]}, "model widths must be positive integers"),
    ({"hidden": "256"}, "hidden must be a list of layer widths"),
    ({"dropout": 1.0}, "dropout must be a number in [0, 1)"),
    ({"dropout": True}, "dropout must be a number in [0, 1)"),
    ({"kind": "custom", "input_shape": [784]}, "custom model needs builder = \"FILE.py:FUNCTION\""),
    ({"kind": "custom", "builder": "net.py", "input_shape": [784]}, "model must be given as FILE.py:FUNCTION"),
    ({"kind": "custom", "builder": "net.py:build"}, "custom model needs input_shape"),
    ({"kind": "custom", "builder": "net.py:build", "input_shape": []}, "custom input_shape must be"),
    ({"kind": "custom", "builder": "net.py:build", "input_shape": [784], "depth": 3},
     "unknown key 'depth' for model kind 'custom'; valid keys: kind, builder, input_shape, name"),
]


@pytest.mark.parametrize("d,message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_specs_are_one_line(d: dict, message: str) -> None:
    with pytest.raises(InitlabError) as e:
        spec_from_dict(d)
    text = str(e.value)
    assert message in text and "\n" not in text, text


def test_unknown_kind_is_an_unknown_name() -> None:
    with pytest.raises(UnknownNameError):
        family_keys("resnett")
    with pytest.raises(InitlabError, match="model kind 'cnn' given to the 'mlp' family"):
        MLPSpec.from_dict({"kind": "cnn"})
    with pytest.raises(InitlabError, match="must be a table"):
        spec_from_dict([("kind", "cnn")])  # type: ignore[arg-type]


@pytest.mark.parametrize("target,message", [
    ("{dir}/missing.py:build", "does not exist"),
    ("{file}:nothing", "has no function 'nothing'; functions there: boom, build, conv, flat_output, not_a_module"),
    ("{file}:boom", "boom() in"),
    ("{file}:not_a_module", "returned int, not a torch nn.Module"),
])
def test_custom_builder_failures_are_one_line(model_file: Path, target: str, message: str) -> None:
    spec = CustomSpec(builder=target.format(dir=model_file.parent, file=model_file), input_shape=(784,))
    for attempt in (spec.build, lambda: spec.out_features, lambda: spec.check_fits((28, 28), 10)):
        with pytest.raises(InitlabError) as e:
            attempt()
        assert message in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_custom_builder_import_failure(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import not_a_module_anywhere_xyz\n")
    with pytest.raises(InitlabError, match="importing model file .* failed: ModuleNotFoundError"):
        CustomSpec(builder=f"{broken}:build", input_shape=[784]).build()


@pytest.mark.parametrize("func,shape,message", [
    ("build", [1, 32, 32], "fails on a zero batch of shape [2, 1, 32, 32]: RuntimeError"),
    ("flat_output", [784], "returns [1568] for a batch of shape [2, 784]; it must return logits of shape"),
])
def test_custom_model_that_does_not_fit_its_input_shape(model_file: Path, func: str, shape: list, message: str) -> None:
    spec = CustomSpec(builder=f"{model_file}:{func}", input_shape=shape)
    with pytest.raises(InitlabError) as e:
        spec.out_features
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_register_family() -> None:
    @dataclass(frozen=True)
    class Tiny(ModelSpec):
        kind: ClassVar[str] = "tiny_test_family"
        width: int = 4
        name: str = ""

        @property
        def label(self) -> str:
            return self.name or f"tiny-{self.width}"

        @property
        def input_shape(self) -> tuple[int, ...]:  # type: ignore[override]
            return (784,)

        @property
        def out_features(self) -> int:  # type: ignore[override]
            return 10

        def _build(self) -> nn.Module:
            return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))

        def to_dict(self) -> dict:
            return {"kind": self.kind, "width": self.width, "name": self.name}

    from initlab.engine import families

    try:
        assert register_family(Tiny) is Tiny and "tiny_test_family" in family_kinds()
        assert spec_from_dict({"kind": "tiny_test_family", "width": 3}) == Tiny(3)
        assert family_keys("tiny_test_family") == ("kind", "width", "name")
        with pytest.raises(InitlabError, match="registered already"):
            register_family(type("Other", (Tiny,), {}))
        with pytest.raises(InitlabError, match="must be a ModelSpec subclass"):
            register_family(int)  # type: ignore[arg-type]
    finally:
        families._FAMILIES.pop("tiny_test_family", None)
    assert math.prod(Tiny().input_shape) == 784


@pytest.mark.parametrize("spec", [
    LinearSpec(depth=3, width=8), CNNSpec(depth=3, channels=4, downsample=(2,), pool="max", norm="layer"),
    ResNetSpec(depth=2, width=4, downsample=(2,)), MLPSpec(in_features=784, hidden=(8,), bias=False),
], ids=lambda s: s.label)
def test_families_without_batch_norm_run_under_vmap(spec: ModelSpec) -> None:
    """K models of one spec, stacked and run by ``torch.func`` (as the generic trainer does),
    give each model's own output and gradients."""
    from torch.func import functional_call, grad, stack_module_state, vmap

    models = [spec.build(seed=k) for k in range(3)]
    for m in models:
        m.eval()  # dropout off: the same function as the loop below
    params, buffers = stack_module_state(models)
    base = spec.build().to("meta").eval()
    x, y = torch.randn(3, 5, 28, 28), torch.randint(0, 10, (3, 5))

    def loss(p: dict, b: dict, xk: torch.Tensor, yk: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(functional_call(base, (p, b), (xk,)), yk)

    grads = vmap(grad(loss), randomness="different")(params, buffers, x, y)
    for k, m in enumerate(models):
        m.zero_grad()
        nn.functional.cross_entropy(m(x[k]), y[k]).backward()
        for name, p in m.named_parameters():
            torch.testing.assert_close(grads[name][k], p.grad, rtol=1e-4, atol=1e-6)
