"""Loss layers as autograd Functions: the fused softmax-cross-entropy and the squared error.

Each returns one loss per row (per element for the squared error); the reduction — a sum, and
for 'mean' a division by the count torch divides by — is left to ``functional.loss``.
"""
from __future__ import annotations

import torch

from ._function import Function, add_tangents

__all__ = ["ClassCrossEntropy", "ClassRows", "SoftmaxCrossEntropy", "SquaredError"]


def logsumexp_parts(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(m, log Σⱼ exp(zⱼ − m)) over the last dim (kept), with m = max z: lse(z) is their sum.

    Any shift m gives the same lse; the max keeps exp from overflowing. The two parts are kept
    apart because their sum, rounded in z's dtype, loses what tells large logits apart: for
    z = [1e8, 1e8] in float32, lse rounds to 1e8 and z − lse to [0, 0], while (z − m) − log 2
    is right. m is detached because lse does not depend on it, which keeps the gradient
    through this (in double backward) exact.
    """
    shift = logits.amax(-1, keepdim=True).detach()
    return shift, (logits - shift).exp().sum(-1, keepdim=True).log()


def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """log softmax(z)ₖ = zₖ − lse(z) = (zₖ − m) − log Σⱼ exp(zⱼ − m) over the last dim."""
    shift, log_sum = logsumexp_parts(logits)
    return (logits - shift) - log_sum


class ClassCrossEntropy(Function):
    """ℓᵢ = lse(zᵢ) − zᵢ,ₜᵢ for logits z (M, C) and class indices t (M,), and ℓᵢ = 0 where
    ``active`` is False (ignored targets): the common case of ``SoftmaxCrossEntropy`` — q
    one-hot, no class weights, no smoothing — without building q.

    Backward (seeds 004): dz = δ · (softmax(z) − onehot(t)), i.e. δ·softmax(z) everywhere,
    then −δ added at each row's target class; ignored rows get none (their δ is dropped, not
    multiplied by zero: a mean over no targets sends δ = ∞, and torch gives them zero).
    Forward mode: ℓ̇ = ⟨softmax(z), ż⟩ − ż_t, and 0 for ignored rows.
    """

    @staticmethod
    def forward(logits, target, active):
        shift, log_sum = logsumexp_parts(logits)
        loss = (log_sum - (logits.gather(1, target.unsqueeze(1)) - shift)).squeeze(1)
        return loss.where(active, 0)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, grad_loss):
        logits, target, active = ctx.saved_tensors
        delta = grad_loss.where(active, 0).unsqueeze(1)
        grad_logits = log_softmax(logits).exp() * delta
        return grad_logits.scatter_add(1, target.unsqueeze(1), -delta), None, None

    @staticmethod
    def tangent(inputs, output, logits_tangent, *_):
        logits, target, active = inputs
        expected = (log_softmax(logits).exp() * logits_tangent).sum(-1)
        return (expected - logits_tangent.gather(1, target.unsqueeze(1)).squeeze(1)).where(active, 0)


class SoftmaxCrossEntropy(Function):
    """ℓᵢ = −Σₖ qᵢₖ log softmax(zᵢ)ₖ for logits z (M, C) and target weights q (M, C).

    q is the target as a weighted distribution: the one-hot class scaled by its class weight
    (plus label smoothing), or class probabilities times the class weights. With sᵢ = Σₖ qᵢₖ
    and log softmax(zᵢ) = zᵢ − lseᵢ, ℓᵢ = sᵢ·lseᵢ − ⟨qᵢ, zᵢ⟩, so

        dz = δ · (s·softmax(z) − q)     (softmax − one-hot for an unweighted class: seeds 004)
        dq = −δ · log softmax(z)

    A class with no target mass adds nothing, even at z = −∞ (0·log 0 = 0): masking logits
    with −∞ keeps the loss finite. Rows with ``active`` False (targets equal to ignore_index)
    have q = 0 and get no gradient at all: their δ is dropped rather than multiplied by zero,
    because a mean over zero targets sends δ = ∞, and torch gives those rows a zero gradient.
    The backward is written in differentiable tensor ops on the saved inputs (double backward).
    Forward mode: ℓ̇ = s·⟨softmax(z), ż⟩ − ⟨q, ż⟩ − ⟨q̇, log softmax(z)⟩.
    """

    @staticmethod
    def forward(logits, target_weights, active):
        log_probs = log_softmax(logits)
        return -torch.where(target_weights != 0, target_weights * log_probs, 0).sum(-1)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, grad_loss):
        logits, target_weights, active = ctx.saved_tensors
        log_probs = log_softmax(logits)
        delta = grad_loss.where(active, 0).unsqueeze(-1)
        grad_logits = grad_target_weights = None
        if ctx.needs_input_grad[0]:
            target_mass = target_weights.sum(-1, keepdim=True)
            grad_logits = delta * (target_mass * log_probs.exp() - target_weights)
        if ctx.needs_input_grad[1]:
            grad_target_weights = -delta * log_probs
        return grad_logits, grad_target_weights, None

    @staticmethod
    def tangent(inputs, output, logits_tangent, target_weights_tangent, _):
        logits, target_weights, _ = inputs
        log_probs = log_softmax(logits)
        through_logits = through_targets = None
        if logits_tangent is not None:
            target_mass = target_weights.sum(-1)
            through_logits = target_mass * (log_probs.exp() * logits_tangent).sum(-1) - (target_weights * logits_tangent).sum(-1)
        if target_weights_tangent is not None:  # a class with no tangent adds nothing, even at log p = −∞
            through_targets = -torch.where(target_weights_tangent != 0, target_weights_tangent * log_probs, 0).sum(-1)
        return add_tangents(through_logits, through_targets)


class SquaredError(Function):
    """eᵢ = (xᵢ − tᵢ)² for x and t of one shape.

    Backward: dx = 2(x − t) ⊙ δ,  dt = −2(x − t) ⊙ δ  (the seeds' Euclidean loss ½‖y − t‖², δ = y − t,
    without the ½). Forward mode: ė = 2(x − t) ⊙ (ẋ − ṫ).
    """

    @staticmethod
    def forward(input, target):
        difference = input - target
        return difference * difference

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, grad_output):
        input, target = ctx.saved_tensors
        grad_difference = 2 * (input - target) * grad_output
        grad_input = grad_difference if ctx.needs_input_grad[0] else None
        grad_target = -grad_difference if ctx.needs_input_grad[1] else None
        return grad_input, grad_target

    @staticmethod
    def tangent(inputs, output, input_tangent, target_tangent):
        input, target = inputs
        difference_tangent = add_tangents(input_tangent, None if target_tangent is None else -target_tangent)
        return 2 * (input - target) * difference_tangent


class ClassRows(Function):
    """z (N, C, d1, …, dK) → (N·d1·…·dK, C): one row of class scores per position, which the
    loss Functions take. Backward: the rows' gradient put back in z's shape, contiguous, as
    torch's losses return dz (the view chain alone would leave it strided class-last).
    Forward mode: the same rearrangement of ż."""

    @staticmethod
    def forward(input, class_dim: int):
        rows = input.movedim(class_dim, -1).reshape(-1, input.shape[class_dim])
        return rows.clone() if rows._base is not None else rows  # a tensor of its own, never a view of z

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, ctx.class_dim = inputs
        ctx.moved_shape = input.movedim(ctx.class_dim, -1).shape

    @staticmethod
    def backward(ctx, grad_rows):
        return grad_rows.reshape(ctx.moved_shape).movedim(-1, ctx.class_dim).contiguous(), None

    @staticmethod
    def tangent(inputs, output, input_tangent, *_):
        return None if input_tangent is None else ClassRows.apply(input_tangent, inputs[1])
