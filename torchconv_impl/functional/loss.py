"""cross_entropy and mse_loss with torch.nn.functional's signatures.

Arguments are checked and the targets put in the Functions' form here; the Functions return
a loss per row or element, and the reduction divides by exactly what torch divides by:
cross_entropy's 'mean' over class indices by the summed weight of the non-ignored targets,
over class probabilities by the number of rows; mse_loss's by the element count, or by the
summed weight when weighted.
"""
from __future__ import annotations

import functools
import warnings

import torch
from torch.nn import _reduction

from ..autograd.loss import ClassCrossEntropy, ClassRows, SoftmaxCrossEntropy, SquaredError
from ..errors import ArgumentIndexError, ArgumentNotImplementedError, check
from ._autocast import float32_for
from ._checks import FLOAT, check_float, check_number, check_same_dtype_device, check_tensor, values_readable

__all__ = ["cross_entropy", "mse_loss"]

_REDUCTIONS = ("none", "mean", "sum")


def _resolve_reduction(size_average, reduce_, reduction, op: str) -> str:
    if size_average is not None or reduce_ is not None:
        reduction = _reduction.legacy_get_string(size_average, reduce_)  # torch's deprecated flags
    check(reduction in _REDUCTIONS, lambda: f"{op}: expected reduction to be one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


def _check_same_device(op: str, input, **tensors) -> None:
    for name, tensor in tensors.items():
        if tensor is not None:
            check(tensor.device == input.device, lambda: f"{op}: expected {name} on input's device ({input.device}), got {tensor.device}")


def _reduce(loss, reduction: str, count):
    """'none': as is; 'sum': Σ; 'mean': Σ / count (NaN when count is 0, as torch)."""
    if reduction == "none":
        return loss
    total = loss.sum()
    return total if reduction == "sum" else total / count


def cross_entropy(
    input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean", label_smoothing=0.0
):
    """Softmax cross-entropy between logits and targets; see ``torch.nn.functional.cross_entropy``.

    ``input`` is (N, C, d1, …, dK) (K ≥ 0) or unbatched (C,). ``target`` holds class indices,
    (N, d1, …, dK) or () (int64 or uint8; ``ignore_index`` entries are skipped), or class
    probabilities of ``input``'s shape. ``weight`` (C,) weighs each class; ``label_smoothing``
    ε mixes the target with the uniform distribution: (1 − ε)·target + ε/C.
    """
    op = "cross_entropy"
    input, target, weight = float32_for(op, input, target, weight)
    reduction = _resolve_reduction(size_average, reduce, reduction, op)
    check_tensor(input, "input", op)
    check_tensor(target, "target", op)
    check_tensor(weight, "weight", op, optional=True)
    check_number(label_smoothing, "label_smoothing", op)
    check(input.dim() >= 1, lambda: f"{op}: expected input of size (C,) or (N, C, d1, ..., dK), got a 0-D tensor")
    check_float(input, "input", op)
    check(label_smoothing <= 1.0, lambda: f"{op}: expected label_smoothing to be between 0.0 and 1.0, got {label_smoothing}")
    label_smoothing = max(label_smoothing, 0.0)  # torch smooths only when ε > 0 and takes a negative ε as 0
    class_dim = 0 if input.dim() == 1 else 1
    classes = input.shape[class_dim]
    if weight is not None:
        check(
            weight.shape == (classes,),
            lambda: f"{op}: expected weight to be a 1-D tensor with {classes} elements (one per class), got {list(weight.shape)}",
        )
    _check_same_device(op, input, target=target, weight=weight)
    logits = ClassRows.apply(input, class_dim) if input.dim() > 2 else input.movedim(class_dim, -1).reshape(-1, classes)
    if target.shape == input.shape:
        check(
            target.is_floating_point(),
            lambda: f"{op}: expected a floating-point target for class probabilities (target.shape == input.shape), got {target.dtype}",
        )
        check(ignore_index < 0, lambda: f"{op}: ignore_index={ignore_index} is not supported with class-probability targets")
        # As torch, computed in the promoted dtype of input, target and weight.
        dtype = functools.reduce(torch.promote_types, [t.dtype for t in (input, target, weight) if t is not None])
        logits = logits.to(dtype)
        target_weights, active, count = _probability_targets(target, weight, class_dim, label_smoothing, dtype)
    else:
        rows_shape = input.shape[:1] + input.shape[2:] if class_dim == 1 else ()
        check(
            target.shape == rows_shape or (class_dim == 0 and target.shape == (1,)),
            lambda: f"{op}: expected target of size {list(rows_shape)} (class indices) or {list(input.shape)} "
            f"(class probabilities), got {list(target.shape)}",
        )
        check(
            target.dtype in (torch.int64, torch.uint8),
            lambda: f"{op}: expected class-index target of dtype torch.int64 or torch.uint8, got {target.dtype}",
        )
        check_same_dtype_device(op, input=input, weight=weight)
        given = target.reshape(-1).long()
        if values_readable(given):
            _check_class_indices(given, classes, ignore_index)
        active = given != ignore_index
        indices = given.where(active, 0)
        if weight is None and label_smoothing == 0:
            # Plain class indices: ℓ = lse − z_t, without building one-hot rows.
            loss = ClassCrossEntropy.apply(logits, indices, active).reshape(rows_shape)
            return _reduce(loss, reduction, active.sum())
        target_weights, count = _class_targets(indices, active, weight, logits, label_smoothing)
    loss = SoftmaxCrossEntropy.apply(logits, target_weights, active)
    if reduction == "none":
        return loss.reshape(input.shape[:class_dim] + input.shape[class_dim + 1:])
    return _reduce(loss, reduction, count)


def _check_class_indices(given, classes: int, ignore_index: int) -> None:
    """Every class index is in [0, C) or is ignore_index (one read of the range, more only if it fails)."""
    if given.numel() == 0:
        return
    lowest, highest = (t.item() for t in given.aminmax())
    if not (0 <= lowest and highest < classes):  # some index is outside, or is ignore_index
        outside = given[(given != ignore_index) & ((given < 0) | (given >= classes))]
        check(
            outside.numel() == 0,
            lambda: f"cross_entropy: expected target class indices in [0, {classes}) or ignore_index={ignore_index}, got {outside[:5].tolist()}",
            ArgumentIndexError,
        )


def _class_targets(indices, active, weight, logits, label_smoothing: float):
    """Rows of q from class indices ``indices`` (M,), ``active`` where not ignored: w[t]·(1 − ε)
    at the target class, plus ε/C·w on every class; zero when ignored. Returns (q, count).

    The 'mean' count is Σ w[t] over the non-ignored rows — for both parts, as torch normalises
    its label-smoothing term by the same weight sum as its NLL term.
    """
    classes = logits.shape[1]
    target_class_weight = active.to(logits.dtype) if weight is None else weight[indices] * active
    mass = target_class_weight if label_smoothing == 0 else target_class_weight * (1 - label_smoothing)
    target_weights = torch.zeros_like(logits).scatter_(1, indices.unsqueeze(1), mass.unsqueeze(1))
    if label_smoothing > 0:
        class_weight = weight if weight is not None else logits.new_ones(classes)
        target_weights = target_weights + (label_smoothing / classes) * class_weight * active.unsqueeze(1)
    return target_weights, target_class_weight.sum()


def _probability_targets(target, weight, class_dim: int, label_smoothing: float, dtype):
    """Rows of q: ((1 − ε)·p + ε/C)·w. The 'mean' count is the number of rows (weights do not enter)."""
    classes = target.shape[class_dim]
    probabilities = target.movedim(class_dim, -1).reshape(-1, classes)
    if label_smoothing > 0:
        probabilities = probabilities * (1 - label_smoothing) + label_smoothing / classes
    target_weights = (probabilities if weight is None else probabilities * weight).to(dtype)
    active = torch.ones(probabilities.shape[0], dtype=torch.bool, device=target.device)
    return target_weights, active, probabilities.shape[0]


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean (or summed, or per-element) squared error (x − t)²; see ``torch.nn.functional.mse_loss``.

    ``target`` broadcasts with ``input`` (with torch's warning when their sizes differ);
    ``weight``, of ``input``'s size, weighs each element and makes 'mean' divide by Σ weight.
    """
    op = "mse_loss"
    input, target, weight = float32_for(op, input, target, weight)
    reduction = _resolve_reduction(size_average, reduce, reduction, op)
    check_tensor(input, "input", op)
    check_tensor(target, "target", op)
    check_tensor(weight, "weight", op, optional=True)
    # torch computes in input's and target's promoted dtype, which must be floating-point: an
    # integer or bool operand beside a float one is promoted to it.
    dtype = torch.promote_types(input.dtype, target.dtype)
    check(
        dtype in FLOAT,
        lambda: f"{op}: expected input to have a floating-point dtype, or target one it promotes to, "
        f"got input {input.dtype} and target {target.dtype}",
        ArgumentNotImplementedError,
    )
    input, target = (t if t.is_floating_point() else t.to(dtype) for t in (input, target))
    _check_same_device(op, input, target=target, weight=weight)
    if target.shape != input.shape:
        try:
            torch.broadcast_shapes(input.shape, target.shape)
        except RuntimeError:
            check(False, lambda: f"{op}: expected target to broadcast with input of size {list(input.shape)}, got {list(target.shape)}")
        warnings.warn(
            f"mse_loss: target size {list(target.shape)} differs from input size {list(input.shape)}; "
            "they are broadcast, which is likely not what you want.",
            stacklevel=2,
        )
    if weight is not None:
        check(
            weight.shape == input.shape,
            lambda: f"{op}: expected weight of the input's size {list(input.shape)}, got {list(weight.shape)}",
        )
    errors = SquaredError.apply(*torch.broadcast_tensors(input, target))
    if weight is None:
        return _reduce(errors, reduction, errors.numel())
    return _reduce(errors * weight, reduction, weight.sum())
