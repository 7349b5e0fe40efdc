"""Linear, ReLU/Sigmoid/Tanh, dropout and the losses against torch.nn.functional and torch.nn:
outputs and every gradient over the option space, float64 gradcheck/gradgradcheck, in-place
forms, argument errors, and the no-native-ops rule. Dropout cannot match torch's random
draws, so it is checked through its mask: every output and gradient must be the same mask."""
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
from support import DEVICE, assert_close, grads, no_native_ops

DTYPES = [torch.float32, torch.float64]
TORCH_REJECTS = (RuntimeError, ValueError, IndexError, NotImplementedError)


def leaf(*shape, dtype=torch.float64):
    return torch.randn(shape, dtype=dtype, device=DEVICE, requires_grad=True)


def compare(ours_fn, torch_fn, inputs, ours_params=(), torch_params=()):
    """Same output (shape, dtype, values), and the same gradient w.r.t. every input that requires
    grad and each parameter (ours_params[i] pairs with torch_params[i])."""
    with no_native_ops():
        output = ours_fn(*inputs)
        grad_output = torch.randn_like(output)
        our_grads = grads(output, [*inputs, *ours_params], grad_output)
    expected = torch_fn(*inputs)
    assert output.shape == expected.shape and output.dtype == expected.dtype
    assert_close(output, expected)
    for ours_grad, torch_grad in zip(our_grads, grads(expected, [*inputs, *torch_params], grad_output)):
        if torch_grad is not None:
            assert_close(ours_grad, torch_grad)


def compare_modules(mine, theirs, inputs):
    compare(mine, theirs, inputs, list(mine.parameters()), list(theirs.parameters()))


def same_module(ours_cls, torch_cls, *args, **kwargs):
    """Our module and torch's built with the same arguments and the same random init."""
    torch.manual_seed(0)
    mine = ours_cls(*args, **kwargs).to(DEVICE)
    torch.manual_seed(0)
    theirs = torch_cls(*args, **kwargs).to(DEVICE)
    assert isinstance(mine, torch_cls) and repr(mine) == repr(theirs)
    for (name, ours_tensor), (_, torch_tensor) in zip(mine.state_dict().items(), theirs.state_dict().items()):
        assert torch.equal(ours_tensor, torch_tensor), name
    return mine, theirs


# ---------------------------------------------------------------------------------------- linear


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias_shape", [None, (4,), (1,), ()], ids=["nobias", "bias", "bias1", "bias0d"])
@pytest.mark.parametrize("input_shape", [(5,), (3, 5), (2, 3, 5), (0, 5)], ids=str)
def test_linear_matches_torch(input_shape, bias_shape, dtype):
    input, weight = leaf(*input_shape, dtype=dtype), leaf(4, 5, dtype=dtype)
    bias = None if bias_shape is None else leaf(*bias_shape, dtype=dtype)
    compare(F.linear, TF.linear, (input, weight, bias))


@pytest.mark.parametrize("in_features, out_features", [(0, 4), (5, 0), (0, 0)])
@pytest.mark.parametrize("leading", [(), (3,), (2, 3)], ids=str)
def test_linear_zero_features(leading, in_features, out_features):
    """No input or no output features, as torch allows: every gradient (they were a reshape error)."""
    compare(F.linear, TF.linear, (leaf(*leading, in_features), leaf(out_features, in_features), leaf(out_features)))


@pytest.mark.parametrize("input_shape", [(5,), (3, 5)], ids=str)
def test_linear_vector_weight_matches_torch(input_shape):
    """A 1-D weight (in_features,) gives one output that is not kept as a dimension."""
    compare(F.linear, TF.linear, (leaf(*input_shape), leaf(5)))
    # torch rejects a bias with a 1-D weight and a 2-D input; ours adds it to the output.
    bias = leaf(*input_shape[:-1])
    compare(F.linear, lambda x, w, b: TF.linear(x, w) + b, (leaf(*input_shape), leaf(5), bias))


@pytest.mark.parametrize("input_shape", [(5,), (2, 3, 5)], ids=str)
def test_linear_gradcheck(input_shape):
    inputs = (leaf(*input_shape), leaf(4, 5), leaf(4))
    assert gradcheck(F.linear, inputs)
    assert gradgradcheck(F.linear, inputs)


def test_linear_module_matches_torch():
    compare_modules(*same_module(ours.Linear, torch.nn.Linear, 5, 4), (leaf(2, 3, 5, dtype=torch.float32),))


@pytest.mark.parametrize(
    "shapes, match",
    [
        (((3, 4), (2, 5), None), r"in_features=5"),
        (((), (2, 5), None), r"at least 1-D"),
        (((3, 5), (2, 5, 1), None), r"weight to be 2-D"),
        (((3, 5), (2, 5), (3,)), r"bias to broadcast to the output size \[3, 2\]"),
        (((5,), (2, 5), (2, 1, 2)), r"bias to broadcast"),
    ],
)
def test_linear_errors(shapes, match):
    args = [None if s is None else torch.randn(s, device=DEVICE) for s in shapes]
    with pytest.raises(TORCH_REJECTS):
        TF.linear(*args)
    with pytest.raises(torchconv_impl.ArgumentError, match=match):
        F.linear(*args)


def test_linear_dtype_mismatch():
    with pytest.raises(torchconv_impl.ArgumentError, match=r"weight to have the same dtype as input"):
        F.linear(torch.randn(3, 5, device=DEVICE), torch.randn(2, 5, device=DEVICE, dtype=torch.float64))


# ----------------------------------------------------------------------------------- activations

ACTIVATIONS = [
    pytest.param(F.relu, TF.relu, ours.ReLU, torch.nn.ReLU, id="relu"),
    pytest.param(F.sigmoid, torch.sigmoid, ours.Sigmoid, torch.nn.Sigmoid, id="sigmoid"),
    pytest.param(F.tanh, torch.tanh, ours.Tanh, torch.nn.Tanh, id="tanh"),
]


def activation_input(dtype):
    """Random values plus exact zeros (ReLU's gradient there is 0) and saturating ±30."""
    values = torch.randn(4, 6, dtype=dtype, device=DEVICE)
    values[0, :4] = torch.tensor([0.0, -0.0, 30.0, -30.0])
    return values.requires_grad_()


@pytest.mark.parametrize("ours_fn, torch_fn", [(F.sigmoid, torch.sigmoid), (F.tanh, torch.tanh)], ids=["sigmoid", "tanh"])
def test_complex_activation_gradients_like_torch(ours_fn, torch_fn):
    """torch accepts complex input; the gradient is the conjugate Wirtinger derivative
    δ·conj(f′), which gradcheck checks, and torch's."""
    z = torch.randn(3, 4, dtype=torch.complex128, device=DEVICE).requires_grad_()
    compare(ours_fn, torch_fn, (z,))
    assert gradcheck(ours_fn, (z,)) and gradgradcheck(ours_fn, (z,))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ours_fn, torch_fn, ours_cls, torch_cls", ACTIVATIONS)
def test_activation_matches_torch(ours_fn, torch_fn, ours_cls, torch_cls, dtype):
    compare(ours_fn, torch_fn, (activation_input(dtype),))
    mine, theirs = same_module(ours_cls, torch_cls)
    compare_modules(mine, theirs, (activation_input(dtype),))


@pytest.mark.parametrize("ours_fn, torch_fn, ours_cls, torch_cls", ACTIVATIONS)
def test_activation_gradcheck(ours_fn, torch_fn, ours_cls, torch_cls):
    input = torch.randn(3, 4, dtype=torch.float64, device=DEVICE)
    input = (input + 0.1 * input.sign()).requires_grad_()  # away from ReLU's kink
    assert gradcheck(ours_fn, (input,))
    assert gradgradcheck(ours_fn, (input,))


def test_relu_nan_passes_gradient_like_torch():
    input = torch.tensor([float("nan"), -1.0, 2.0], device=DEVICE, requires_grad=True)
    grad_output = torch.tensor([3.0, 4.0, 5.0], device=DEVICE)
    for fn in (F.relu, TF.relu):
        output = fn(input)
        torch.testing.assert_close(output, torch.tensor([float("nan"), 0.0, 2.0], device=DEVICE), equal_nan=True)
        assert torch.equal(grads(output, [input], grad_output)[0], torch.tensor([3.0, 0.0, 5.0], device=DEVICE))


def test_relu_blocks_non_finite_gradient_like_torch():
    """Where y ≤ 0 the input gradient is exactly 0, even for δ = ±inf or NaN, as torch's."""
    input = torch.tensor([[-1.0, 0.0, -0.0, 2.0, float("nan"), -3.0]], device=DEVICE, requires_grad=True)
    for special in (float("inf"), -float("inf"), float("nan")):
        grad_output = torch.tensor([[special, special, 1.0, special, -2.0, -1.0]], device=DEVICE)
        expected = grads(F.relu(input), [input], grad_output)[0]
        actual = grads(TF.relu(input), [input], grad_output)[0]
        torch.testing.assert_close(actual, expected, equal_nan=True, rtol=0, atol=0)


@pytest.mark.parametrize("inplace_fn", [lambda x: F.relu(x, inplace=True), F.relu_, ours.ReLU(inplace=True)], ids=["relu", "relu_", "ReLU"])
def test_relu_inplace_matches_torch(inplace_fn):
    input = activation_input(torch.float64)
    target = input * 2  # a non-leaf to overwrite
    output = inplace_fn(target)
    assert output is target
    expected = TF.relu(input * 2, inplace=True)
    assert torch.equal(output, expected)
    grad_output = torch.randn_like(expected)
    assert torch.equal(grads(output, [input], grad_output)[0], grads(expected, [input], grad_output)[0])


def test_relu_inplace_errors_like_torch():
    """An in-place ReLU of a leaf that requires grad is refused; a saved output changed later is detected."""
    input = leaf(3)
    for fn in (F.relu_, torch.relu_):
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
            fn(input)
    for fn in (F.relu, TF.relu):
        output = fn(input * 1)
        output.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            output.sum().backward()


def test_relu_rejects_bool():
    with pytest.raises(TORCH_REJECTS):
        TF.relu(torch.ones(2, dtype=torch.bool))
    with pytest.raises(torchconv_impl.ArgumentError, match="bool"):
        F.relu(torch.ones(2, dtype=torch.bool))


# --------------------------------------------------------------------------------------- dropout

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


# ---------------------------------------------------------------------------------- cross_entropy


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
    compare(lambda x, t: F.cross_entropy(x, t, **options), lambda x, t: TF.cross_entropy(x, t, **options), (input, target))
    mine, theirs = same_module(ours.CrossEntropyLoss, torch.nn.CrossEntropyLoss, **options)
    compare_modules(mine, theirs, (input, target))


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
    compare(
        lambda x: F.cross_entropy(x, target, reduction=reduction), lambda x: TF.cross_entropy(x, target, reduction=reduction), (input,)
    )
    assert calls, "the plain class-index path was not taken"
    assert gradcheck(lambda x: F.cross_entropy(x, target, reduction=reduction), (input,))
    assert gradgradcheck(lambda x: F.cross_entropy(x, target, reduction=reduction), (input,))
    # An ignore_index among the targets drops their rows, as torch does.
    calls.clear()
    options = dict(ignore_index=target.view(-1)[0].item(), reduction="sum")  # "sum": all ignored is 0, not NaN
    compare(lambda x: F.cross_entropy(x, target, **options), lambda x: TF.cross_entropy(x, target, **options), (input,))
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
    compare(F.cross_entropy, TF.cross_entropy, (input, target))
    masked = torch.randn(4, 5, dtype=torch.float64, device=DEVICE)
    masked[:, 4] = -math.inf
    masked.requires_grad_()
    compare(F.cross_entropy, TF.cross_entropy, (masked, target))
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
    compare(F.cross_entropy, TF.cross_entropy, (input, torch.tensor([0, 4, 2, 2], dtype=torch.uint8, device=DEVICE)))
    # torch's forward accepts a (1,) target for an unbatched input, its backward does not; ours
    # treats it as the 0-D target.
    unbatched = leaf(5)
    scalar_target, vector_target = (F.cross_entropy(unbatched, torch.tensor(t, device=DEVICE)) for t in (2, [2]))
    assert_close(vector_target, TF.cross_entropy(unbatched, torch.tensor([2], device=DEVICE)))
    assert_close(grads(vector_target, [unbatched], None)[0], grads(scalar_target, [unbatched], None)[0])
    probabilities = torch.rand(4, 5, dtype=torch.float64, device=DEVICE)
    compare(F.cross_entropy, TF.cross_entropy, (input, probabilities))


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
    compare(
        lambda x, t, w: F.mse_loss(x, t, reduction=reduction, weight=w),
        lambda x, t, w: TF.mse_loss(x, t, reduction=reduction, weight=w),
        (input, target, weight),
    )
    if not weighted:
        options.pop("weight")
        mine, theirs = same_module(ours.MSELoss, torch.nn.MSELoss, **options)
        compare_modules(mine, theirs, (input, target))


def test_mse_loss_broadcasts_and_promotes_like_torch():
    input, target = leaf(3, 4, dtype=torch.float32), leaf(4)
    with pytest.warns(UserWarning, match="differs from input size"):
        F.mse_loss(input, target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's own warning
        # torch computes in the promoted dtype; its own backward of mixed dtypes fails in torch
        # 2.11 ("Found dtype Double but expected Float"), so the promotion is spelled out.
        promoted = lambda x, t: TF.mse_loss(x.to(torch.promote_types(x.dtype, t.dtype)), t)  # noqa: E731
        compare(F.mse_loss, promoted, (input, target))
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
