"""The base of every layer's autograd Function: reverse mode, forward mode, vmap, compile.

A layer's Function states (all static, in ``setup_context`` form, which torch.func needs):

    forward(*inputs)                        the layer
    setup_context(ctx, inputs, output)      what backward keeps
    backward(ctx, *output_grads)            the hand-derived input gradients (reverse mode)
    tangent(inputs, output, *input_tangents) the hand-derived output tangent (forward mode)

``tangent`` is torch's ``jvp`` given the forward's inputs and output instead of a ctx. Dynamo
(torch.compile) cannot trace a Function that defines ``jvp``, so ``jvp`` lives on a twin
subclass, ``forward_mode``, made here for each Function; ``apply`` runs the twin when
forward-mode AD is on (``torch.autograd.forward_ad`` or a torch.func transform such as jvp),
outside torch.compile, and the plain Function otherwise (keeping tangents costs time). Forward
mode (torch.func.jvp, jacfwd) therefore works in eager mode; compiled graphs take reverse mode.
With autograd off and no tangent to carry (inference, a backward pass that is not itself
differentiated), ``apply`` runs ``forward`` alone: there is no graph node to build.

Every Function also sets ``generate_vmap_rule``: under torch.func.vmap its forward, backward and
tangent run on batched tensors, which the operators (``torchconv_impl.ops``) batch with rules of
their own.
"""
from __future__ import annotations

import inspect

import torch
from torch.autograd import forward_ad


class Function(torch.autograd.Function):
    generate_vmap_rule = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "forward" not in vars(cls):  # the forward_mode twin below
            return
        # In setup_context form every apply binds its arguments to forward's signature, and
        # inspect rebuilds that signature on each call unless the function carries it.
        cls.forward.__signature__ = inspect.signature(cls.forward)
        cls.forward_mode = type(cls.__name__, (cls,), {
            "__module__": cls.__module__,
            "__qualname__": f"{cls.__qualname__}.forward_mode",
            "apply": torch.autograd.Function.__dict__["apply"],
            "setup_context": staticmethod(_setup_context_with_tangent(cls.setup_context)),
            "jvp": staticmethod(_jvp(cls)),
        })  # fmt: skip

    @classmethod
    def apply(cls, *args):
        if torch.compiler.is_compiling():
            return super().apply(*args)
        if _forward_mode_on():
            return cls.forward_mode.apply(*args)
        if not torch.is_grad_enabled():
            # Nothing to record (inference, or a backward pass not itself differentiated): the
            # Function is its forward, without the cost of a graph node.
            return cls.forward(*args)
        return super().apply(*args)

    @staticmethod
    def tangent(inputs, output, *input_tangents):
        raise NotImplementedError("this Function states no forward-mode derivative")


def _forward_mode_on() -> bool:
    """Whether a tangent may be asked for: a forward-AD dual level or a torch.func transform is active."""
    return forward_ad._current_level >= 0 or torch._C._functorch.peek_interpreter_stack() is not None


def _setup_context_with_tangent(setup_context):
    """``setup_context``, then the forward's inputs and outputs kept for ``tangent``."""

    def setup_context_with_tangent(ctx, inputs, output):
        setup_context(ctx, inputs, output)
        values = (*inputs, *(output if isinstance(output, tuple) else (output,)))
        ctx.is_tensor = [isinstance(value, torch.Tensor) for value in values]
        ctx.constants = [None if is_tensor else value for value, is_tensor in zip(values, ctx.is_tensor)]
        ctx.save_for_forward(*(value for value in values if isinstance(value, torch.Tensor)))
        ctx.input_count = len(inputs)
        ctx.output_is_tuple = isinstance(output, tuple)

    return setup_context_with_tangent


def _jvp(function):
    """torch's ``jvp(ctx, *input_tangents)`` from ``function.tangent(inputs, output, *input_tangents)``."""

    def jvp(ctx, *input_tangents):
        saved = iter(ctx.saved_tensors)
        values = [next(saved) if is_tensor else value for value, is_tensor in zip(ctx.constants, ctx.is_tensor)]
        inputs, outputs = tuple(values[: ctx.input_count]), tuple(values[ctx.input_count:])
        return function.tangent(inputs, outputs if ctx.output_is_tuple else outputs[0], *input_tangents)

    return jvp


def add_tangents(*terms):
    """The sum of the terms that are not None (None if all are: no tangent flows)."""
    present = [term for term in terms if term is not None]
    return sum(present[1:], present[0]) if present else None


def product_rule(product, left, right, left_tangent, right_tangent):
    """d product(l, r) = product(l̇, r) + product(l, ṙ) for a bilinear ``product``."""
    return add_tangents(
        None if left_tangent is None else product(left_tangent, right),
        None if right_tangent is None else product(left, right_tangent),
    )
