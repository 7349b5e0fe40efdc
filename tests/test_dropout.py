"""dropout, dropout1d/2d/3d and their modules. Dropout cannot match torch's random draws, so it
is checked through its mask: every output and gradient must be the same mask, dropped at rate p
(per element or per channel), with torch's identities, warnings and argument errors."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as TF
from torch.autograd import gradcheck, gradgradcheck

import torchconv_impl
import torchconv_impl.functional as F
import torchconv_impl.nn as ours
from support import DEVICE, DTYPES, TORCH_REJECTS, assert_close, grads, no_native_ops



# (functional, module class, input shape, number of leading dims with one mask value each)
DROPOUTS = [
    pytest.param(F.dropout, ours.Dropout, (6, 7, 3), 3, id="dropout"),
    pytest.param(F.dropout1d, ours.Dropout1d, (5, 6, 4), 2, id="dropout1d"),
    pytest.param(F.dropout1d, ours.Dropout1d, (6, 4), 1, id="dropout1d-unbatched"),
    pytest.param(F.dropout2d, ours.Dropout2d, (5, 6, 3, 2), 2, id="dropout2d"),
    pytest.param(F.dropout3d, ours.Dropout3d, (3, 6, 2, 3, 2), 2, id="dropout3d"),
    pytest.param(F.dropout3d, ours.Dropout3d, (6, 2, 3, 2), 1, id="dropout3d-unbatched"),
]


def nonzero_input(shape, dtype=torch.float64):
    return (torch.rand(shape, dtype=dtype, device=DEVICE) + 0.5).requires_grad_()


def assert_one_mask(input, output, grad_output, input_grad, p, leading_dims):
    """output = x ⊙ m and dX = δ ⊙ m for a single m ∈ {0, 1/(1−p)}, constant past the leading dims."""
    kept = output != 0
    scale = 1 / (1 - p)
    assert_close(output, input.detach() * kept * scale)
    assert_close(input_grad, grad_output * kept * scale)
    if leading_dims < kept.dim():
        assert_channels_dropped_whole(kept, leading_dims)


def assert_channels_dropped_whole(kept, leading_dims):
    per_mask_value = kept.flatten(leading_dims)
    assert (per_mask_value == per_mask_value[..., :1]).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.2, 0.5])
@pytest.mark.parametrize("fn, cls, shape, leading_dims", DROPOUTS)
def test_dropout_applies_one_mask(fn, cls, shape, leading_dims, p, dtype):
    for apply in (lambda x: fn(x, p), cls(p)):
        input = nonzero_input(shape, dtype)
        with no_native_ops():
            output = apply(input)
            grad_output = torch.randn_like(output)
            (input_grad,) = grads(output, [input], grad_output)
        assert_one_mask(input, output, grad_output, input_grad, p, leading_dims)


@pytest.mark.parametrize("fn, cls, shape, leading_dims", DROPOUTS)
def test_dropout_inplace(fn, cls, shape, leading_dims):
    for apply in (lambda x: fn(x, 0.5, inplace=True), cls(0.5, inplace=True)):
        input = nonzero_input(shape)
        target = input * 1
        output = apply(target)
        assert output is target
        grad_output = torch.randn_like(output)
        assert_one_mask(input, output, grad_output, grads(output, [input], grad_output)[0], 0.5, leading_dims)


@pytest.mark.parametrize("fn, cls, shape, leading_dims", DROPOUTS)
def test_dropout_identity_when_nothing_drops(fn, cls, shape, leading_dims):
    """training=False (or eval mode) and p=0 return the input itself, as torch does."""
    input = nonzero_input(shape)
    assert fn(input, 0.5, training=False) is input
    assert fn(input, 0.0) is input
    assert cls(0.5).eval()(input) is input


@pytest.mark.parametrize("fn, cls, shape, leading_dims", DROPOUTS)
def test_dropout_p_one_zeroes_everything(fn, cls, shape, leading_dims):
    input = nonzero_input(shape)
    output = fn(input, 1.0)
    assert torch.equal(output, torch.zeros_like(output))
    assert torch.equal(grads(output, [input], torch.ones_like(output))[0], torch.zeros_like(input))


@pytest.mark.parametrize(
    "fn, shape, units",
    [(F.dropout, (400, 250), 100_000), (F.dropout2d, (400, 50, 2, 2), 20_000), (F.dropout1d, (20_000, 3), 20_000)],
    ids=["dropout", "dropout2d", "dropout1d-unbatched"],
)
def test_dropout_drop_rate(fn, shape, units):
    """Each unit (element or channel) is dropped with probability p: within 5σ of a binomial."""
    p = 0.3
    dropped = (fn(torch.ones(shape, device=DEVICE), p) == 0).float().mean().item()
    assert abs(dropped - p) < 5 * math.sqrt(p * (1 - p) / units)


def test_dropout_gradcheck():
    """With the generator reseeded before each call the mask is fixed, so dropout is a function of x."""
    input = nonzero_input((3, 4, 2))

    def seeded(fn):
        def call(x):
            torch.manual_seed(1)
            return fn(x, 0.4)

        return call

    for fn in (F.dropout, F.dropout1d):
        assert gradcheck(seeded(fn), (input,))
        assert gradgradcheck(seeded(fn), (input,))


def test_dropout2d_follows_torch_on_other_ranks():
    """A 3-D input is (N, C, L) and other ranks are deprecated; both with a warning, as torch."""
    with pytest.warns(UserWarning, match="3-D input"):
        output = F.dropout2d(nonzero_input((5, 6, 4)), 0.5)
    assert_channels_dropped_whole(output != 0, 2)
    with pytest.warns(UserWarning, match="deprecates"):
        F.dropout2d(nonzero_input((5, 6)), 0.5)
    with pytest.warns(UserWarning, match="deprecates"):
        F.dropout3d(nonzero_input((5, 6, 4)), 0.5)


@pytest.mark.parametrize("p", [-0.1, 1.5])
@pytest.mark.parametrize("fn", [F.dropout, F.dropout1d, F.dropout2d, F.dropout3d])
def test_dropout_rejects_p_outside_unit_interval(fn, p):
    with pytest.raises(ValueError, match=rf"between 0 and 1, but got {p}"):
        fn(torch.ones(2, 3, 4, 5, device=DEVICE)[0], p)
    with pytest.raises(ValueError, match="between 0 and 1"):
        ours.Dropout(p)


def test_dropout_errors():
    with pytest.raises(TORCH_REJECTS):
        TF.dropout1d(torch.ones(2, 3, 4, 5), 0.5)
    with pytest.raises(torchconv_impl.ArgumentError, match=r"dropout1d: expected a 2-D \(C, L\) or 3-D"):
        F.dropout1d(torch.ones(2, 3, 4, 5, device=DEVICE), 0.5)
    with pytest.raises(TORCH_REJECTS):
        TF.dropout(torch.ones(5, dtype=torch.long), 0.5)
    with pytest.raises(torchconv_impl.ArgumentError, match="floating-point"):
        F.dropout(torch.ones(5, dtype=torch.long, device=DEVICE), 0.5)
