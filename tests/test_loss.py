"""cross_entropy and mse_loss (functional and modules) against torch: outputs and every
gradient over targets, weights, reductions and label smoothing, extreme logits, float64
gradcheck/gradgradcheck, and argument errors."""
from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as TF
from torch.autograd import gradcheck, gradgradcheck

import torchconv_impl
import torchconv_impl.functional as F
import torchconv_impl.nn as ours
from support import DEVICE, DTYPES, TORCH_REJECTS, assert_close, check_against_torch, grads, leaf, module_pair


def class_targets(shape, classes, ignore_index):
    """Class indices for input ``shape``; the first one of a batch is ignore_index."""
    if len(shape) == 1:
        return torch.tensor(3, device=DEVICE)
    target = torch.randint(classes, (shape[0], *shape[2:]), device=DEVICE)
    target.view(-1)[0] = ignore_index
    return target


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.25])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(
    "target_kind, ignore_index", [("indices", -100), ("indices", 2), ("probabilities", -100)], ids=["indices", "indices-ignore2", "probs"]
)
@pytest.mark.parametrize("shape", [(5,), (4, 5), (2, 5, 3, 2)], ids=str)
def test_cross_entropy_matches_torch(shape, target_kind, ignore_index, weighted, reduction, label_smoothing, dtype):
    classes = shape[0] if len(shape) == 1 else shape[1]
    input = leaf(*shape, dtype=dtype)
    weight = torch.rand(classes, dtype=dtype, device=DEVICE) + 0.1 if weighted else None
    if target_kind == "indices":
        target = class_targets(shape, classes, ignore_index)
    else:
        target = torch.randn(shape, dtype=dtype, device=DEVICE).softmax(0 if len(shape) == 1 else 1).requires_grad_()
    options = dict(weight=weight, ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing)
    check_against_torch(F.cross_entropy, TF.cross_entropy, input, target, **options)
    check_against_torch(*module_pair(ours.CrossEntropyLoss, torch.nn.CrossEntropyLoss, **options), input, target)


@pytest.mark.parametrize(
    "shape, target_kind",
    [((4, 5), "indices"), ((2, 5, 3), "indices"), ((5,), "indices"), ((3, 5), "probabilities"), ((2, 5, 3), "probabilities")],
    ids=str,
)
def test_cross_entropy_gradcheck(shape, target_kind):
    classes = shape[0] if len(shape) == 1 else shape[1]
    weight = torch.rand(classes, dtype=torch.float64, device=DEVICE) + 0.1
    inputs = [leaf(*shape)]
    if target_kind == "indices":
        target = class_targets(shape, classes, ignore_index=1)
    else:
        inputs.append(torch.rand(shape, dtype=torch.float64, device=DEVICE, requires_grad=True))

    def loss(x, t=None):
        return F.cross_entropy(x, target if t is None else t, weight, ignore_index=1 if t is None else -100, label_smoothing=0.1)

    assert gradcheck(loss, inputs)
    assert gradgradcheck(loss, inputs)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("shape", [(6, 5), (2, 5, 3), (5,)], ids=str)
def test_cross_entropy_plain_class_indices(shape, reduction, monkeypatch):
    """Class indices with no weight or smoothing take ``ClassCrossEntropy`` (ℓ = lse − z_t, no
    one-hot rows), ignored targets included: outputs, gradients and double backward as torch's."""
    classes = shape[0] if len(shape) == 1 else shape[1]
    target = torch.tensor(2, device=DEVICE) if len(shape) == 1 else torch.randint(classes, (shape[0], *shape[2:]), device=DEVICE)
    calls = []
    apply = torchconv_impl.autograd.ClassCrossEntropy.apply
    monkeypatch.setattr(torchconv_impl.autograd.ClassCrossEntropy, "apply", lambda *args: calls.append(1) or apply(*args))
    input = leaf(*shape)
    check_against_torch(F.cross_entropy, TF.cross_entropy, input, target, reduction=reduction)
    assert calls, "the plain class-index path was not taken"
    assert gradcheck(lambda x: F.cross_entropy(x, target, reduction=reduction), (input,))
    assert gradgradcheck(lambda x: F.cross_entropy(x, target, reduction=reduction), (input,))
    # An ignore_index among the targets drops their rows, as torch does.
    calls.clear()
    options = dict(ignore_index=target.view(-1)[0].item(), reduction="sum")  # "sum": all ignored is 0, not NaN
    check_against_torch(F.cross_entropy, TF.cross_entropy, input, target, **options)
    assert gradgradcheck(lambda x: F.cross_entropy(x, target, **options), (input,))
    assert calls


def assert_same_with_nan(ours_value, torch_value):
    torch.testing.assert_close(ours_value, torch_value, equal_nan=True)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_no_target_left(label_smoothing):
    """A mean over no targets is NaN; the gradient stays zero, as torch's (training goes on)."""
    input = leaf(3, 4)
    target = torch.full((3,), -100, device=DEVICE)
    for fn in (F.cross_entropy, TF.cross_entropy):
        loss = fn(input, target, label_smoothing=label_smoothing)
        assert loss.isnan()
        assert torch.equal(grads(loss, [input], torch.ones_like(loss))[0], torch.zeros_like(input))
    # Targets whose weights sum to zero: NaN for the rows that count, zero for the ignored ones.
    target = torch.tensor([1, -100, -100], device=DEVICE)
    weight = torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.float64, device=DEVICE)
    ours_loss, torch_loss = (fn(input, target, weight) for fn in (F.cross_entropy, TF.cross_entropy))
    assert_same_with_nan(ours_loss, torch_loss)
    assert_same_with_nan(grads(ours_loss, [input], None)[0], grads(torch_loss, [input], None)[0])


def test_cross_entropy_extreme_logits():
    """log-sum-exp is stabilised (logits of ±1000), and a −∞ logit on a non-target class stays finite."""
    input = (torch.randn(4, 5, dtype=torch.float64, device=DEVICE) * 1000).requires_grad_()
    target = torch.tensor([0, 1, 2, 3], device=DEVICE)
    check_against_torch(F.cross_entropy, TF.cross_entropy, input, target)
    masked = torch.randn(4, 5, dtype=torch.float64, device=DEVICE)
    masked[:, 4] = -math.inf
    masked.requires_grad_()
    check_against_torch(F.cross_entropy, TF.cross_entropy, masked, target)
    assert F.cross_entropy(masked, target, label_smoothing=0.1).isinf()  # smoothing puts mass on the −∞ class, as torch


@pytest.mark.parametrize("dtype, scale", [(torch.float32, 1e8), (torch.float64, 1e30), (torch.bfloat16, 100), (torch.float16, 30)], ids=str)
def test_cross_entropy_large_logits_keep_their_differences(dtype, scale):
    """Logits far from 0 but close to each other: log softmax rounded as (z − m) − log Σ, not
    as z − (m + log Σ), whose sum rounds the small part away (z = [1e8, 1e8] in float32 would
    give a loss of 0). Class indices, class probabilities and label smoothing, against torch."""
    logits = (scale + torch.randn(6, 4, device=DEVICE) * 4).to(dtype)
    logits[0] = scale  # a row of equal logits: ℓ = log 4 exactly
    target = torch.tensor([0, 1, 2, 3, 0, 1], device=DEVICE)
    probabilities = torch.softmax(torch.randn(6, 4, device=DEVICE), 1).to(dtype)
    for target_, kwargs in ((target, {}), (target, dict(label_smoothing=0.2)), (probabilities, {})):
        ours, theirs = (logits.clone().requires_grad_() for _ in range(2))
        actual, expected = F.cross_entropy(ours, target_, **kwargs), TF.cross_entropy(theirs, target_, **kwargs)
        assert_close(actual, expected, msg=str(kwargs))
        assert_close(grads(actual, [ours], None)[0], grads(expected, [theirs], None)[0], msg=str(kwargs))
    assert_close(F.cross_entropy(logits[:1].float(), target[:1]), torch.tensor(math.log(4), device=DEVICE))


def test_cross_entropy_target_forms_torch_accepts():
    """uint8 indices, a (1,) target for an unbatched input, and a float64 probability target with float32 logits."""
    input = leaf(4, 5, dtype=torch.float32)
    check_against_torch(F.cross_entropy, TF.cross_entropy, input, torch.tensor([0, 4, 2, 2], dtype=torch.uint8, device=DEVICE))
    # torch's forward accepts a (1,) target for an unbatched input, its backward does not; ours
    # treats it as the 0-D target.
    unbatched = leaf(5)
    scalar_target, vector_target = (F.cross_entropy(unbatched, torch.tensor(t, device=DEVICE)) for t in (2, [2]))
    assert_close(vector_target, TF.cross_entropy(unbatched, torch.tensor([2], device=DEVICE)))
    assert_close(grads(vector_target, [unbatched], None)[0], grads(scalar_target, [unbatched], None)[0])
    probabilities = torch.rand(4, 5, dtype=torch.float64, device=DEVICE)
    check_against_torch(F.cross_entropy, TF.cross_entropy, input, probabilities)


def test_cross_entropy_legacy_reduction_flags():
    input, target = leaf(4, 5), torch.randint(5, (4,), device=DEVICE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for flags in (dict(size_average=False), dict(reduce=False)):
            assert_close(F.cross_entropy(input, target, **flags), TF.cross_entropy(input, target, **flags))


def _ce_case(id, input_shape, target, match, input_dtype=torch.float32, **kwargs):
    return pytest.param(input_shape, target, input_dtype, kwargs, match, id=id)


def test_cross_entropy_negative_label_smoothing_is_none_like_torch():
    input, target = torch.randn(4, 5, device=DEVICE), torch.randint(5, (4,), device=DEVICE)
    expected = TF.cross_entropy(input, target, label_smoothing=-0.2)
    torch.testing.assert_close(expected, TF.cross_entropy(input, target))
    torch.testing.assert_close(F.cross_entropy(input, target, label_smoothing=-0.2), expected)


@pytest.mark.parametrize(
    "input_shape, target, input_dtype, kwargs, match",
    [
        _ce_case("target-int32", (4, 5), torch.tensor([0, 1, 2, 3], dtype=torch.int32), r"dtype torch.int64 or torch.uint8, got torch.int32"),
        _ce_case("target-too-large", (4, 5), torch.tensor([0, 1, 2, 5]), r"class indices in \[0, 5\) or ignore_index=-100, got \[5\]"),
        _ce_case("target-negative", (4, 5), torch.tensor([0, -1, 2, 3]), r"class indices in \[0, 5\) .* got \[-1\]"),
        _ce_case("target-batch", (4, 5), torch.tensor([0, 1, 2]), r"target of size \[4\] \(class indices\) or \[4, 5\]"),
        _ce_case("target-spatial", (2, 5, 3, 4), torch.zeros(2, 3, dtype=torch.long), r"target of size \[2, 3, 4\]"),
        _ce_case("probabilities-long", (4, 5), torch.zeros(4, 5, dtype=torch.long), r"floating-point target for class probabilities"),
        _ce_case("probabilities-ignore_index", (4, 5), torch.rand(4, 5), r"ignore_index=1 is not supported", ignore_index=1),
        _ce_case("weight-size", (4, 5), torch.zeros(4, dtype=torch.long), r"weight to be a 1-D tensor with 5 elements", weight=torch.ones(4)),
        _ce_case("weight-dtype", (4, 5), torch.zeros(4, dtype=torch.long), r"weight to have the same dtype", weight=torch.ones(5, dtype=torch.float64)),
        _ce_case("label_smoothing", (4, 5), torch.zeros(4, dtype=torch.long), r"label_smoothing to be between 0.0 and 1.0, got 1.5", label_smoothing=1.5),
        _ce_case("reduction", (4, 5), torch.zeros(4, dtype=torch.long), r"reduction to be one of .*got 'avg'", reduction="avg"),
        _ce_case("input-long", (4, 5), torch.zeros(4, dtype=torch.long), r"input to have a floating-point dtype", input_dtype=torch.long),
        _ce_case("input-0d", (), torch.tensor(0), r"0-D"),
    ],
)
def test_cross_entropy_errors(input_shape, target, input_dtype, kwargs, match):
    input = torch.zeros(input_shape, dtype=input_dtype, device=DEVICE)
    target = target.to(DEVICE)
    kwargs = {k: v.to(DEVICE) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
    with pytest.raises(TORCH_REJECTS):
        TF.cross_entropy(input, target, **kwargs)
    with pytest.raises(torchconv_impl.ArgumentError, match=match):
        F.cross_entropy(input, target, **kwargs)


# ------------------------------------------------------------------------------------- mse_loss


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_mse_loss_matches_torch(weighted, reduction, dtype):
    input, target = leaf(3, 4, dtype=dtype), leaf(3, 4, dtype=dtype)
    weight = (torch.rand(3, 4, dtype=dtype, device=DEVICE) + 0.1).requires_grad_() if weighted else None
    options = dict(reduction=reduction, weight=weight)
    check_against_torch(
        lambda x, t, w: F.mse_loss(x, t, reduction=reduction, weight=w),
        lambda x, t, w: TF.mse_loss(x, t, reduction=reduction, weight=w),
        input, target, weight,
    )
    if not weighted:
        options.pop("weight")
        check_against_torch(*module_pair(ours.MSELoss, torch.nn.MSELoss, **options), input, target)


def test_mse_loss_broadcasts_and_promotes_like_torch():
    input, target = leaf(3, 4, dtype=torch.float32), leaf(4)
    with pytest.warns(UserWarning, match="differs from input size"):
        F.mse_loss(input, target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's own warning
        # torch computes in the promoted dtype; its own backward of mixed dtypes fails in torch
        # 2.11 ("Found dtype Double but expected Float"), so the promotion is spelled out.
        promoted = lambda x, t: TF.mse_loss(x.to(torch.promote_types(x.dtype, t.dtype)), t)  # noqa: E731
        check_against_torch(F.mse_loss, promoted, input, target)
    empty = (leaf(0), leaf(0))
    assert_same_with_nan(F.mse_loss(*empty), TF.mse_loss(*empty))  # a mean over nothing is NaN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for flags in (dict(size_average=False), dict(reduce=False)):
            assert_close(F.mse_loss(input, target.float(), **flags), TF.mse_loss(input, target.float(), **flags))


def test_mse_loss_gradcheck():
    inputs = (leaf(3, 4), leaf(3, 4), (torch.rand(3, 4, dtype=torch.float64, device=DEVICE) + 0.1).requires_grad_())
    for fn in (lambda x, t, w: F.mse_loss(x, t), lambda x, t, w: F.mse_loss(x, t, weight=w, reduction="sum")):
        assert gradcheck(fn, inputs)
        assert gradgradcheck(fn, inputs)


@pytest.mark.parametrize(
    "input, target, kwargs, match",
    [
        (torch.zeros(3), torch.zeros(4), {}, r"target to broadcast with input of size \[3\], got \[4\]"),
        (torch.zeros(3), torch.zeros(3), dict(weight=torch.ones(1)), r"weight of the input's size \[3\], got \[1\]"),
        (torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long), {}, r"input to have a floating-point dtype"),
        (torch.zeros(3), torch.zeros(3), dict(reduction="avg"), r"reduction to be one of"),
    ],
    ids=["broadcast", "weight", "dtype", "reduction"],
)
def test_mse_loss_errors(input, target, kwargs, match):
    input, target = input.to(DEVICE), target.to(DEVICE)
    kwargs = {k: v.to(DEVICE) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(TORCH_REJECTS):
            TF.mse_loss(input, target, **kwargs)
        with pytest.raises(torchconv_impl.ArgumentError, match=match):
            F.mse_loss(input, target, **kwargs)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last], ids=["contiguous", "channels_last"])
@pytest.mark.parametrize("target_kind", ["indices", "probabilities"])
def test_cross_entropy_input_gradient_laid_out_like_torch(target_kind, memory_format):
    """With spatial dims, dz comes back contiguous as torch's does (not class-last, the strides
    of the rows the loss computes on), equal to torch's; also to second order and forward mode."""
    x = torch.randn(2, 5, 3, 4, dtype=torch.float64).contiguous(memory_format=memory_format)
    target = torch.randint(5, (2, 3, 4)) if target_kind == "indices" else torch.softmax(torch.randn(2, 5, 3, 4, dtype=torch.float64), 1)
    ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    (got,) = torch.autograd.grad(F.cross_entropy(ours, target), ours)
    (expected,) = torch.autograd.grad(TF.cross_entropy(theirs, target), theirs)
    assert got.stride() == expected.stride()
    assert_close(got, expected)
    small = torch.randn(1, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    small_target = target[:1, :2, :2] if target_kind == "indices" else torch.softmax(torch.randn(1, 3, 2, 2, dtype=torch.float64), 1)
    small_target = small_target.clamp(max=2) if target_kind == "indices" else small_target
    assert torch.autograd.gradgradcheck(lambda z: F.cross_entropy(z, small_target), (small,))
    tangent = torch.randn_like(small)
    _, jvp = torch.func.jvp(lambda z: F.cross_entropy(z, small_target), (small.detach(),), (tangent,))
    _, expected_jvp = torch.func.jvp(lambda z: TF.cross_entropy(z, small_target), (small.detach(),), (tangent,))
    assert_close(jvp, expected_jvp)
