"""torchconv_impl.convert: which layers it swaps, what it carries over, what it reports, and
torchvision's AlexNet, VGG-11 and ResNet-18 converted: same outputs and parameter gradients
as the originals, no native conv/pool op dispatched, state_dict loadable by the original class."""
from __future__ import annotations

import pytest
import torch
import torchvision

import torchconv_impl
import torchconv_impl.nn as ours
from support import DEVICE, assert_close, grads, no_native_ops

nn = torch.nn


def small_net():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"),
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Dropout(0.5),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 5),
        nn.Sigmoid(),
    )


def test_convert_swaps_layers_of_a_copy():
    model = small_net().to(DEVICE, torch.float64).eval()
    converted, left = torchconv_impl.convert(model, report=True)
    expected_types = [ours.Conv2d, nn.BatchNorm2d, ours.ReLU, ours.MaxPool2d, ours.Dropout, nn.Flatten, ours.Linear, ours.Sigmoid]
    assert [type(m) for m in converted] == expected_types
    assert all(type(m).__module__.startswith("torch.nn") for m in model)  # the original is untouched
    assert left == ["1"]  # BatchNorm2d has no counterpart
    # Configuration, parameters, buffers, mode, device and dtype carried over, in new tensors.
    assert repr(converted) == repr(model)
    assert not any(m.training for m in converted.modules())
    assert converted.state_dict().keys() == model.state_dict().keys()
    for (name, mine), theirs in zip(converted.state_dict().items(), model.state_dict().values()):
        assert torch.equal(mine, theirs) and mine.data_ptr() != theirs.data_ptr(), name
    input = torch.randn(2, 3, 8, 8, dtype=torch.float64, device=DEVICE)
    with no_native_ops():
        output = converted(input)
    assert output.dtype == torch.float64 and output.device == input.device
    assert_close(output, model(input))


def test_convert_inplace_keeps_the_parameter_objects():
    model = small_net()
    parameters = list(model.parameters())
    assert torchconv_impl.convert(model, inplace=True) is model
    assert type(model[0]) is ours.Conv2d
    assert all(a is b for a, b in zip(model.parameters(), parameters))  # an optimizer on them keeps working


def test_convert_matches_exact_types_only():
    """Our layers are left as they are; a subclass of a torch layer is not swapped (its overrides
    could silently change) and is reported, as is every torch layer with no counterpart."""

    class ScaledConv(nn.Conv2d):
        def forward(self, input):
            return 2 * super().forward(input)

    model = nn.Sequential(ScaledConv(2, 2, 1), ours.Conv2d(2, 2, 1, connection_table=[[True, False], [True, True]]), nn.Linear(2, 2))
    converted, left = torchconv_impl.convert(model, report=True)
    assert [type(m) for m in converted] == [ScaledConv, ours.Conv2d, ours.Linear]
    assert converted[1].connection_table is not None
    assert left == ["0"]
    assert torchconv_impl.convert(converted, report=True)[1] == ["0"]  # converting twice changes nothing


def test_convert_gives_our_options_their_defaults():
    """A converted Conv2d has our keyword-only option connection_table, at its default (None)."""
    conv = nn.Conv2d(2, 3, 3).to(DEVICE)
    converted = torchconv_impl.convert(conv)
    assert type(converted) is ours.Conv2d and converted.connection_table is None
    assert "connection_table" not in converted.state_dict()
    input = torch.randn(1, 2, 5, 5, device=DEVICE)
    assert_close(converted(input), conv(input))


def test_convert_covers_every_layer_in_torchconv_impl_nn():
    """The table is read from torchconv_impl.nn: each class there that subclasses its torch.nn
    namesake is what convert() makes of that torch.nn class."""
    converted_names = set()
    for name, cls in vars(ours).items():
        twin = getattr(nn, name, None)
        if isinstance(cls, type) and isinstance(twin, type) and cls is not twin and issubclass(cls, twin):
            bare = twin.__new__(twin)
            nn.Module.__init__(bare)
            assert type(torchconv_impl.convert(bare, inplace=True)) is cls
            converted_names.add(name)
    for family in ["Conv2d", "ConvTranspose2d", "Linear", "ReLU", "Sigmoid", "Tanh", "Dropout", "Dropout2d",
                   "CrossEntropyLoss", "MSELoss", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"]:
        assert family in converted_names


def test_convert_reports_nothing_for_containers():
    model = nn.Sequential(nn.ModuleList([nn.Identity()]), nn.ModuleDict({"a": nn.Unflatten(1, (1, 1))}), nn.Flatten())
    assert torchconv_impl.convert(model, report=True)[1] == []


def test_convert_rejects_non_modules():
    with pytest.raises(torchconv_impl.ArgumentError, match="torch.nn.Module"):
        torchconv_impl.convert(lambda x: x)


# Each at batch 1 and its smallest input (random init, nothing downloaded):
MODELS = {
    "alexnet": (torchvision.models.alexnet, 64),  # three 3×3/2 max-pools after an 11×11/4 conv: 63 is the least
    "vgg11": (torchvision.models.vgg11, 32),  # five 2×2 max-pools
    "resnet18": (torchvision.models.resnet18, 64),  # layer4 is 2×2, so train-mode BatchNorm sees > 1 value
}


@pytest.mark.parametrize("name", MODELS)
def test_torchvision_model(name):
    build, size = MODELS[name]
    torch.manual_seed(0)
    model = build(weights=None).to(DEVICE)
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0  # dropout masks cannot match torch's draws (tests/test_dropout.py checks ours)
    converted, left = torchconv_impl.convert(model, report=True)
    assert left == [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(type(m) not in (nn.Conv2d, nn.Linear, nn.ReLU, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Dropout) for m in converted.modules())

    for mode in ("eval", "train"):
        # Train-mode BatchNorm on a batch of one normalises by statistics of a few values, which
        # amplifies float32 rounding past any fixed tolerance (torch's own float32 gradients differ
        # from its float64 ones by ~1e-2 relative there), so that case is compared in float64.
        dtype = torch.float64 if mode == "train" and left else torch.float32
        for net in (model, converted):
            net.to(dtype).train(mode == "train")
        input = torch.randn(1, 3, size, size, dtype=dtype, device=DEVICE)
        # BatchNorm stays torch's; with cuDNN off it runs torch's native kernel, not cudnn_batch_norm.
        with torch.backends.cudnn.flags(enabled=False), no_native_ops():
            output = converted(input)
            grad_output = torch.randn_like(output)
            our_grads = grads(output, list(converted.parameters()), grad_output)
        expected = model(input)
        assert_close(output, expected, msg=f"{mode} output")
        torch_grads = grads(expected, list(model.parameters()), grad_output)
        for (param_name, _), ours_grad, torch_grad in zip(model.named_parameters(), our_grads, torch_grads):
            assert_close(ours_grad, torch_grad, msg=f"{mode} gradient of {param_name}")

    model.load_state_dict(converted.state_dict())  # the original class takes it (strict: same keys and shapes)
