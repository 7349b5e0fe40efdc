"""Bad calls, each made to torch and to torchconv_impl: ours raises an ArgumentError that is
also an instance of the class torch raises (TypeError, IndexError, NotImplementedError,
ValueError, RuntimeError), so that an ``except`` clause written for torch catches it, and its
message names the op and the argument. Then the dtypes: conv and conv_transpose accept
exactly the dtypes torch's CPU kernels compute, and compute them as torch does.

The tensors are on the CPU: the classes below are those of torch's CPU kernels, and our
checks do not depend on the device.
"""
from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as TF

import torchconv_impl
import torchconv_impl.functional as F
from support import TOLERANCES
from torchconv_impl import nn as ours_nn
from torchconv_impl.errors import (
    ArgumentError, ArgumentIndexError, ArgumentNotImplementedError, ArgumentTypeError, argument_error_like, check,
)


def t(*shape, dtype=torch.float32):
    return torch.zeros(shape, dtype=dtype)


def idx(*shape, value=0):
    return torch.full(shape, value, dtype=torch.int64)


def call(id, op, args, names, **kwargs):
    """``op(*args, **kwargs)``, a function of torch.nn.functional; ``names``: a regex our
    message must match after ``op: `` (the argument it names)."""
    return pytest.param(op, args, kwargs, names, id=id)


FUNCTIONAL = [
    # conv
    call("conv-input-list", "conv2d", ([[1.0]], t(2, 2, 3, 3)), r"input to be a Tensor"),
    call("conv-weight-list", "conv2d", (t(1, 2, 4, 5), [[1.0]]), r"weight to be a Tensor"),
    call("conv-bias-list", "conv1d", (t(1, 2, 4), t(2, 2, 3), [0.0, 0.0]), r"bias to be a Tensor or None"),
    call("conv-stride-float", "conv2d", (t(1, 2, 4, 5), t(2, 2, 3, 3)), r"stride to be an int or a tuple", stride=1.5),
    call("conv-stride-tuple-float", "conv2d", (t(1, 2, 4, 5), t(2, 2, 3, 3)), r"stride", stride=(1, 1.5)),
    call("conv-stride-none", "conv2d", (t(1, 2, 4, 5), t(2, 2, 3, 3)), r"stride", stride=None),
    call("conv-stride-bool", "conv2d", (t(1, 2, 4, 5), t(2, 2, 3, 3)), r"stride", stride=True),
    call("conv-stride-wrong-length", "conv2d", (t(1, 2, 4, 5), t(2, 2, 3, 3)), r"stride to be an int or a tuple of 2",
         stride=(1, 1, 1)),
    call("conv-stride-zero", "conv2d", (t(1, 2, 4, 5), t(2, 2, 3, 3)), r"stride to be positive", stride=0),
    call("conv-padding-float", "conv2d", (t(1, 2, 4, 5), t(2, 2, 3, 3)), r"padding", padding=1.0),
    call("conv-padding-bad-string", "conv2d", (t(1, 2, 4, 5), t(2, 2, 3, 3)), r"padding to be 'same', 'valid'", padding="full"),
    call("conv-dilation-wrong-length", "conv3d", (t(1, 2, 4, 4, 4), t(2, 2, 2, 2, 2)), r"dilation", dilation=(1, 1)),
    call("conv-groups-float", "conv2d", (t(1, 2, 4, 5), t(2, 2, 3, 3)), r"groups to be a positive int", groups=1.0),
    call("conv-groups-bool", "conv1d", (t(1, 2, 4), t(2, 2, 3)), r"groups to be a positive int", groups=True),
    call("conv-groups-zero", "conv2d", (t(1, 2, 4, 5), t(2, 2, 3, 3)), r"groups to be a positive int", groups=0),
    call("conv-input-ndim", "conv2d", (t(1, 1, 4, 5, 6), t(2, 1, 3, 3)), r"input to be 3-D \(unbatched\) or 4-D"),
    call("conv-input-0d", "conv1d", (t(), t(2, 2, 3)), r"input to be 2-D"),
    call("conv-weight-ndim", "conv2d", (t(1, 2, 4, 5), t(2, 2)), r"weight to be 4-D"),
    call("conv-kernel-zero", "conv3d", (t(1, 2, 4, 4, 4), t(2, 2, 0, 2, 2)), r"kernel size"),
    call("conv-channels", "conv2d", (t(1, 3, 4, 5), t(2, 2, 3, 3)), r"input with 2 channels"),
    call("conv-kernel-too-large", "conv2d", (t(1, 2, 4, 5), t(2, 2, 5, 3)), r"padded input size"),
    call("conv-bias-size", "conv2d", (t(1, 2, 4, 5), t(2, 2, 3, 3), t(3)), r"bias to be 1-D with 2 elements"),
    call("conv-bool", "conv2d", (t(1, 2, 4, 5, dtype=torch.bool), t(2, 2, 3, 3, dtype=torch.bool)),
         r"input to have a floating-point, complex or integer dtype, got torch.bool"),
    call("conv-uint16", "conv1d", (t(1, 2, 4, dtype=torch.uint16), t(2, 2, 3, dtype=torch.uint16)), r"input to have"),
    call("conv-float8", "conv1d", (t(1, 2, 4, dtype=torch.float8_e4m3fn), t(2, 2, 3, dtype=torch.float8_e4m3fn)),
         r"input to have"),
    call("conv-weight-dtype", "conv2d", (t(1, 2, 4, 5), t(2, 2, 3, 3, dtype=torch.float64)), r"weight to have the same dtype"),
    call("conv-int-input-float-weight", "conv2d", (t(1, 2, 4, 5, dtype=torch.int64), t(2, 2, 3, 3)),
         r"weight to have the same dtype"),
    call("conv-complex-weight-dtype", "conv1d", (t(1, 2, 4, dtype=torch.complex64), t(2, 2, 3, dtype=torch.complex128)),
         r"weight to have the same dtype"),
    call("conv-bias-dtype", "conv3d", (t(1, 2, 3, 3, 3), t(2, 2, 2, 2, 2), t(2, dtype=torch.int64)), r"bias to have the same dtype"),
    # conv_transpose
    call("transpose-input-list", "conv_transpose1d", ([[1.0]], t(2, 2, 3)), r"input to be a Tensor"),
    call("transpose-bias-list", "conv_transpose2d", (t(1, 2, 4, 4), t(2, 2, 3, 3), [0.0, 0.0]), r"bias to be a Tensor"),
    call("transpose-padding-string", "conv_transpose1d", (t(1, 2, 4), t(2, 2, 3)), r"padding to be an int or a tuple",
         padding="same"),
    call("transpose-output-padding-float", "conv_transpose1d", (t(1, 2, 4), t(2, 2, 3)), r"output_padding", output_padding=0.5),
    call("transpose-output-padding-length", "conv_transpose2d", (t(1, 2, 4, 4), t(2, 2, 2, 2)), r"output_padding",
         output_padding=(1, 1, 1)),
    call("transpose-stride-float", "conv_transpose1d", (t(1, 2, 4), t(2, 2, 3)), r"stride", stride=1.5),
    call("transpose-groups-bool", "conv_transpose1d", (t(1, 2, 4), t(2, 2, 3)), r"groups", groups=True),
    call("transpose-groups-zero", "conv_transpose1d", (t(1, 2, 4), t(2, 2, 3)), r"groups", groups=0),
    call("transpose-input-ndim", "conv_transpose3d", (t(4, 4, 4), t(2, 2, 2, 2, 2)), r"input to be 4-D"),
    call("transpose-channels", "conv_transpose2d", (t(1, 3, 4, 5), t(2, 2, 3, 3)), r"input with 2 channels"),
    call("transpose-bool", "conv_transpose1d", (t(1, 2, 4, dtype=torch.bool), t(2, 2, 3, dtype=torch.bool)),
         r"input to have a floating-point or complex dtype or int64, got torch.bool"),
    call("transpose-int32", "conv_transpose2d", (t(1, 2, 4, 4, dtype=torch.int32), t(2, 2, 3, 3, dtype=torch.int32)),
         r"input to have .* got torch.int32"),
    call("transpose-int8", "conv_transpose3d", (t(1, 2, 3, 3, 3, dtype=torch.int8), t(2, 2, 2, 2, 2, dtype=torch.int8)),
         r"input to have .* got torch.int8"),
    # max pooling
    call("max-pool-input-list", "max_pool2d", ([[1.0]], 2), r"input to be a Tensor"),
    call("max-pool-kernel-float", "max_pool2d", (t(1, 2, 4, 4), 2.0), r"kernel_size to be an int or a tuple"),
    call("max-pool-kernel-string", "max_pool2d", (t(1, 2, 4, 4), "a"), r"kernel_size"),
    call("max-pool-kernel-bool", "max_pool2d", (t(1, 2, 4, 4), True), r"kernel_size"),
    call("max-pool-kernel-length", "max_pool2d", (t(1, 2, 4, 4), (2, 2, 2)), r"kernel_size to be an int or a tuple of 2"),
    call("max-pool-stride-float", "max_pool2d", (t(1, 2, 4, 4), 2), r"stride", stride=1.5),
    call("max-pool-padding-float", "max_pool2d", (t(1, 2, 4, 4), 2), r"padding", padding=0.5),
    call("max-pool-kernel-zero", "max_pool1d", (t(1, 2, 4), 0), r"kernel_size to be positive"),
    call("max-pool-stride-negative", "max_pool2d", (t(1, 2, 4, 4), 2, -1), r"stride to be positive"),
    call("max-pool-padding-negative", "max_pool2d", (t(1, 2, 4, 4), 2), r"padding to be non-negative", padding=-1),
    call("max-pool-padding-too-large", "max_pool2d", (t(1, 2, 4, 4), 2), r"padding to be at most half", padding=2),
    call("max-pool-dilation-zero", "max_pool3d", (t(1, 2, 4, 4, 4), 2), r"dilation to be positive", dilation=0),
    call("max-pool-input-ndim", "max_pool2d", (t(4, 4), 2), r"input to be 3-D"),
    call("max-pool1d-input-ndim", "max_pool1d", (t(1, 2, 4, 4), 2), r"input to be 2-D"),
    call("max-pool-empty-channels", "max_pool2d", (t(1, 0, 4, 4), 2), r"input with non-zero channel"),
    call("max-pool-too-small", "max_pool2d", (t(1, 2, 1, 1), 2), r"input of spatial size \(1, 1\) is too small"),
    call("max-pool-bool", "max_pool2d", (t(1, 2, 4, 4, dtype=torch.bool), 2), r"input to have a floating-point or integer"),
    call("max-pool-complex", "max_pool3d", (t(1, 2, 4, 4, 4, dtype=torch.complex64), 2), r"input to have"),
    # average pooling
    call("avg-pool-input-list", "avg_pool2d", ([[1.0]], 2), r"input to be a Tensor"),
    call("avg-pool-kernel-float", "avg_pool1d", (t(1, 2, 4), 2.0), r"kernel_size"),
    call("avg-pool-kernel-length", "avg_pool2d", (t(1, 2, 4, 4), (2, 2, 2)), r"kernel_size to be an int or a tuple of 2"),
    call("avg-pool-kernel-zero", "avg_pool2d", (t(1, 2, 4, 4), 0), r"kernel_size to be positive"),
    call("avg-pool-padding-too-large", "avg_pool2d", (t(1, 2, 4, 4), 2), r"padding to be at most half", padding=2),
    call("avg-pool-divisor-float", "avg_pool2d", (t(1, 2, 4, 4), 2), r"divisor_override", divisor_override=1.5),
    call("avg-pool-divisor-zero", "avg_pool3d", (t(1, 2, 4, 4, 4), 2), r"divisor_override", divisor_override=0),
    # torch's avg_pool2d indexes a dim a 2-D input has not: IndexError; with a 5-D one, RuntimeError.
    call("avg-pool2d-input-2d", "avg_pool2d", (t(4, 4), 2), r"input to be 3-D"),
    call("avg-pool2d-input-0d", "avg_pool2d", (t(), 2), r"input to be 3-D"),
    call("avg-pool2d-input-5d", "avg_pool2d", (t(1, 2, 4, 4, 4), 2), r"input to be 3-D"),
    call("avg-pool1d-input-1d", "avg_pool1d", (t(4), 2), r"input to be 2-D"),
    call("avg-pool3d-input-3d", "avg_pool3d", (t(4, 4, 4), 2), r"input to be 4-D"),
    call("avg-pool-int32", "avg_pool2d", (t(1, 2, 4, 4, dtype=torch.int32), 2), r"input to have a floating-point dtype or int64"),
    call("avg-pool-bool", "avg_pool1d", (t(1, 2, 4, dtype=torch.bool), 2), r"input to have"),
    call("avg-pool-complex", "avg_pool3d", (t(1, 2, 4, 4, 4, dtype=torch.complex64), 2), r"input to have"),
    # max unpooling
    call("unpool-indices-list", "max_unpool2d", (t(1, 2, 2, 2), [[0]], 2), r"indices to be a Tensor"),
    call("unpool-indices-int32", "max_unpool2d", (t(1, 2, 2, 2), idx(1, 2, 2, 2).int(), 2), r"indices to be an int64"),
    call("unpool-indices-shape", "max_unpool2d", (t(1, 2, 2, 2), idx(1, 2, 2, 1), 2), r"indices of the input's size"),
    call("unpool-indices-too-large", "max_unpool2d", (t(1, 2, 2, 2), idx(1, 2, 2, 2, value=99), 2), r"indices in \[0, 16\)"),
    call("unpool-indices-negative", "max_unpool1d", (t(1, 2, 2), idx(1, 2, 2, value=-1), 2), r"indices in \[0, 4\)"),
    call("unpool3d-indices-too-large", "max_unpool3d", (t(1, 2, 2, 2, 2), idx(1, 2, 2, 2, 2, value=99), 2), r"indices in"),
    call("unpool-output-size-float", "max_unpool2d", (t(1, 2, 2, 2), idx(1, 2, 2, 2), 2), r"output_size",
         output_size=(4.0, 4.0)),
    call("unpool-output-size-length", "max_unpool2d", (t(1, 2, 2, 2), idx(1, 2, 2, 2), 2), r"output_size",
         output_size=(4, 4, 4)),
    call("unpool-output-size-range", "max_unpool2d", (t(1, 2, 2, 2), idx(1, 2, 2, 2), 2), r"output_size",
         output_size=(10, 10)),
    call("unpool-kernel-float", "max_unpool2d", (t(1, 2, 2, 2), idx(1, 2, 2, 2), 2.0), r"kernel_size"),
    call("unpool-input-ndim", "max_unpool2d", (t(2, 2), idx(2, 2), 2), r"input to be 3-D"),
    call("unpool-bool", "max_unpool2d", (t(1, 2, 2, 2, dtype=torch.bool), idx(1, 2, 2, 2), 2), r"input to have"),
    call("unpool-complex", "max_unpool2d", (t(1, 2, 2, 2, dtype=torch.complex64), idx(1, 2, 2, 2), 2), r"input to have"),
    # adaptive pooling
    call("adaptive-output-size-string", "adaptive_avg_pool2d", (t(1, 2, 4, 4), "ab"), r"output_size to be an int or a tuple"),
    call("adaptive-output-size-floats", "adaptive_max_pool2d", (t(1, 2, 4, 4), (2.0, 2.0)), r"output_size"),
    call("adaptive-output-size-length", "adaptive_avg_pool2d", (t(1, 2, 4, 4), (2, 2, 2)), r"output_size .* tuple of 2"),
    call("adaptive-max-output-size-length", "adaptive_max_pool3d", (t(1, 2, 4, 4, 4), (2, 2)), r"output_size"),
    call("adaptive-output-size-negative", "adaptive_avg_pool2d", (t(1, 2, 4, 4), -1), r"output_size to be non-negative"),
    call("adaptive-max-output-size-negative", "adaptive_max_pool1d", (t(1, 2, 4), -1), r"output_size to be non-negative"),
    call("adaptive-max-input-list", "adaptive_max_pool1d", ([[1.0]], 2), r"input to be a Tensor"),
    call("adaptive-input-ndim", "adaptive_avg_pool2d", (t(4, 4), 2), r"input to be 3-D"),
    call("adaptive-max-input-ndim", "adaptive_max_pool1d", (t(4), 2), r"input to be 2-D"),
    call("adaptive-max-empty-channels", "adaptive_max_pool2d", (t(1, 0, 4, 4), 2), r"input with non-zero"),
    call("adaptive-empty-spatial", "adaptive_avg_pool2d", (t(1, 2, 0, 4), 2), r"input with non-zero"),
    call("adaptive-int64", "adaptive_avg_pool3d", (t(1, 2, 4, 4, 4, dtype=torch.int64), 2), r"input to have a floating-point"),
    call("adaptive-max-int64", "adaptive_max_pool2d", (t(1, 2, 4, 4, dtype=torch.int64), 2), r"input to have"),
    call("adaptive-complex", "adaptive_avg_pool1d", (t(1, 2, 4, dtype=torch.complex64), 2), r"input to have"),
    # linear
    call("linear-input-list", "linear", ([1.0], t(2, 1)), r"input to be a Tensor"),
    call("linear-weight-list", "linear", (t(1), [[1.0]]), r"weight to be a Tensor"),
    call("linear-bias-list", "linear", (t(1), t(2, 1), [1.0, 1.0]), r"bias to be a Tensor"),
    call("linear-input-0d", "linear", (torch.tensor(1.0), t(2, 1)), r"input to be at least 1-D"),
    call("linear-weight-3d", "linear", (t(2, 3), t(2, 3, 1)), r"weight to be 2-D"),
    call("linear-in-features", "linear", (t(2, 3), t(2, 4)), r"in_features=4"),
    call("linear-weight-dtype", "linear", (t(2, 3), t(2, 3, dtype=torch.float64)), r"weight to have the same dtype"),
    call("linear-bias-size", "linear", (t(2, 3), t(2, 3), t(3)), r"bias to broadcast"),
    call("linear-bool", "linear", (t(2, 3, dtype=torch.bool), t(2, 3, dtype=torch.bool)), r"input to have"),
    call("linear-complex32", "linear", (t(2, 3, dtype=torch.complex32), t(2, 3, dtype=torch.complex32)), r"input to have"),
    # activations
    call("relu-list", "relu", ([1.0],), r"input to be a Tensor"),
    call("relu_-list", "relu_", ([1.0],), r"input to be a Tensor"),
    call("relu-bool", "relu", (t(2, dtype=torch.bool),), r"input to have a real, non-bool dtype"),
    call("relu-complex", "relu", (t(2, dtype=torch.complex64),), r"input to have a real, non-bool dtype"),
    # dropout
    call("dropout-input-list", "dropout", ([1.0], 0.5), r"input to be a Tensor"),
    call("dropout-p-string", "dropout", (t(2), "a"), r"p to be a number"),
    call("dropout-p-none", "dropout2d", (t(1, 2, 3, 4), None), r"p to be a number"),
    call("dropout-p-above-one", "dropout", (t(2), 2.0), r"probability p has to be between 0 and 1"),
    call("dropout-p-negative", "dropout3d", (t(1, 2, 3, 4, 5), -1.0), r"probability p has to be between 0 and 1"),
    call("dropout-int64", "dropout", (t(2, dtype=torch.int64), 0.5), r"input to have a floating-point dtype"),
    call("dropout-bool", "dropout2d", (t(1, 2, 3, 4, dtype=torch.bool), 0.5), r"input to have a floating-point dtype"),
    call("dropout-complex", "dropout1d", (t(1, 2, 3, dtype=torch.complex64), 0.5), r"input to have a floating-point dtype"),
    call("dropout1d-input-4d", "dropout1d", (t(2, 3, 4, 5), 0.5), r"2-D \(C, L\) or 3-D"),
    call("dropout2d-input-1d", "dropout2d", (t(2), 0.5), r"at least 2 dimensions"),
    # cross_entropy
    call("ce-input-list", "cross_entropy", ([[1.0]], idx(1)), r"input to be a Tensor"),
    call("ce-target-list", "cross_entropy", (t(2, 3), [0, 1]), r"target to be a Tensor"),
    call("ce-weight-list", "cross_entropy", (t(2, 3), idx(2)), r"weight to be a Tensor", weight=[1.0, 1.0, 1.0]),
    call("ce-label-smoothing-string", "cross_entropy", (t(2, 3), idx(2)), r"label_smoothing to be a number", label_smoothing="a"),
    call("ce-label-smoothing-above-one", "cross_entropy", (t(2, 3), idx(2)), r"label_smoothing", label_smoothing=2.0),
    call("ce-target-too-large", "cross_entropy", (t(2, 3), torch.tensor([0, 3])), r"target class indices in \[0, 3\)"),
    call("ce-target-negative", "cross_entropy", (t(2, 3), torch.tensor([0, -2])), r"target class indices"),
    call("ce-target-too-large-spatial", "cross_entropy", (t(2, 3, 4), idx(2, 4, value=5)), r"target class indices"),
    call("ce-target-too-large-weighted", "cross_entropy", (t(2, 3), torch.tensor([0, 3])), r"target class indices",
         weight=torch.ones(3)),
    call("ce-target-too-large-smoothed", "cross_entropy", (t(2, 3), torch.tensor([0, 3])), r"target class indices",
         label_smoothing=0.1),
    call("ce-target-too-large-unbatched", "cross_entropy", (t(3), torch.tensor(3)), r"target class indices"),
    call("ce-input-int64", "cross_entropy", (t(2, 3, dtype=torch.int64), idx(2)), r"input to have a floating-point dtype"),
    call("ce-input-complex", "cross_entropy", (t(2, 3, dtype=torch.complex64), idx(2)), r"input to have a floating-point"),
    call("ce-target-int32", "cross_entropy", (t(2, 3), idx(2).int()), r"target of dtype torch.int64 or torch.uint8"),
    call("ce-target-bool", "cross_entropy", (t(2, 3), torch.tensor([True, False])), r"target of dtype"),
    call("ce-target-shape", "cross_entropy", (t(2, 3), idx(3)), r"target of size \[2\]"),
    call("ce-probabilities-int", "cross_entropy", (t(2, 3), idx(2, 3)), r"floating-point target"),
    call("ce-probabilities-ignore-index", "cross_entropy", (t(2, 3), t(2, 3)), r"ignore_index", ignore_index=1),
    call("ce-reduction", "cross_entropy", (t(2, 3), idx(2)), r"reduction to be one of", reduction="avg"),
    call("ce-weight-size", "cross_entropy", (t(2, 3), idx(2)), r"weight to be a 1-D tensor with 3", weight=torch.ones(4)),
    call("ce-weight-dtype", "cross_entropy", (t(2, 3), idx(2)), r"weight to have the same dtype",
         weight=torch.ones(3, dtype=torch.float64)),
    # mse_loss
    call("mse-broadcast", "mse_loss", (t(2, 3), t(4)), r"target to broadcast"),
    call("mse-reduction", "mse_loss", (t(2), t(2)), r"reduction to be one of", reduction="avg"),
    call("mse-int64", "mse_loss", (t(2, dtype=torch.int64), t(2, dtype=torch.int64)), r"input to have a floating-point dtype"),
    call("mse-bool", "mse_loss", (t(2, dtype=torch.bool), t(2, dtype=torch.bool)), r"input to have a floating-point dtype"),
    call("mse-complex", "mse_loss", (t(2, dtype=torch.complex64), t(2)), r"input to have a floating-point dtype"),
    call("mse-weight-size", "mse_loss", (t(2), t(2)), r"weight of the input's size", weight=t(3)),
]


@pytest.mark.parametrize("op,args,kwargs,names", FUNCTIONAL)
def test_functional_raises_torch_class(op, args, kwargs, names):
    with pytest.raises(Exception) as theirs:
        getattr(TF, op)(*args, **kwargs)
    with pytest.raises(ArgumentError, match=rf"^{op}: .*{names}") as ours:
        getattr(F, op)(*args, **kwargs)
    assert isinstance(ours.value, theirs.type), f"torch raises {theirs.type.__name__}, ours is a {type(ours.value).__mro__}"


# Where torch fails by accident (an AttributeError from calling .size() or .dim() on a list),
# ours raises the TypeError torch's argument parser raises for the same mistake elsewhere.
TORCH_ATTRIBUTE_ERRORS = [
    call("unpool-input-list", "max_unpool2d", ([[0.0]], idx(1, 2, 2, 2), 2), r"input to be a Tensor"),
    call("adaptive-avg-input-list", "adaptive_avg_pool2d", ([[1.0]], 2), r"input to be a Tensor"),
    call("sigmoid-list", "sigmoid", ([1.0],), r"input to be a Tensor"),
    call("tanh-list", "tanh", ([1.0],), r"input to be a Tensor"),
    call("dropout1d-list", "dropout1d", ([1.0], 0.5), r"input to be a Tensor"),
    call("mse-input-list", "mse_loss", ([1.0], t(1)), r"input to be a Tensor"),
    call("mse-target-list", "mse_loss", (t(1), [1.0]), r"target to be a Tensor"),
    call("mse-weight-list", "mse_loss", (t(2), t(2)), r"weight to be a Tensor", weight=[1.0, 1.0]),
]


@pytest.mark.parametrize("op,args,kwargs,names", TORCH_ATTRIBUTE_ERRORS)
def test_functional_raises_type_error_where_torch_fails_by_accident(op, args, kwargs, names):
    with pytest.raises(AttributeError):
        getattr(TF, op)(*args, **kwargs)
    with pytest.raises(ArgumentTypeError, match=rf"^{op}: .*{names}"):
        getattr(F, op)(*args, **kwargs)


def module(id, build, names):
    """``build(nn)`` with nn torch.nn or torchconv_impl.nn: a bad construction or forward call."""
    return pytest.param(build, names, id=id)


MODULES = [
    module("conv-groups-not-dividing", lambda nn: nn.Conv2d(3, 4, 3, groups=2), r"^Conv2d: in_channels must be divisible by groups"),
    module("conv-groups-zero", lambda nn: nn.Conv1d(3, 4, 3, groups=0), r"^Conv1d: groups must be a positive integer"),
    module("conv-kernel-float", lambda nn: nn.Conv2d(3, 4, 3.0), r"^Conv2d: .*size"),
    module("conv-padding-string", lambda nn: nn.Conv3d(3, 4, 3, padding="full"), r"^Conv3d: Invalid padding string 'full'"),
    module("conv-same-strided", lambda nn: nn.Conv2d(3, 4, 3, padding="same", stride=2), r"^Conv2d: padding='same'"),
    module("conv-padding-mode", lambda nn: nn.Conv2d(3, 4, 3, padding_mode="foo"), r"^Conv2d: padding_mode must be one of"),
    module("transpose-padding-mode", lambda nn: nn.ConvTranspose2d(3, 4, 3, padding_mode="reflect"),
           r"^ConvTranspose2d: Only \"zeros\" padding mode"),
    module("transpose-output-size-range", lambda nn: nn.ConvTranspose2d(2, 3, 3, stride=2)(t(1, 2, 4, 4), output_size=[20, 20]),
           r"^ConvTranspose2d: requested an output size of \[20, 20\]"),
    module("transpose-output-size-length", lambda nn: nn.ConvTranspose1d(2, 3, 3, stride=2)(t(1, 2, 4), output_size=[9, 9]),
           r"^ConvTranspose1d: .*output_size must have 1 or 3 elements"),
    module("linear-negative-features", lambda nn: nn.Linear(-1, 2), r"^Linear: .*negative dimension"),
    module("linear-float-features", lambda nn: nn.Linear(2.5, 2), r"^Linear: .*size"),
    module("dropout-p-above-one", lambda nn: nn.Dropout(2.0), r"^Dropout: dropout probability has to be between 0 and 1"),
    module("dropout2d-p-negative", lambda nn: nn.Dropout2d(-0.5), r"^Dropout2d: dropout probability"),
    module("dropout-p-string", lambda nn: nn.Dropout("a"), r"^Dropout: "),
    # forward: the functional op's checks, named by the op
    module("conv-forward-channels", lambda nn: nn.Conv2d(3, 4, 2)(t(1, 2, 5, 5)), r"^conv2d: expected input with 3 channels"),
    module("max-pool-forward-bool", lambda nn: nn.MaxPool2d(2)(t(1, 2, 4, 4, dtype=torch.bool)), r"^max_pool2d: expected input"),
    module("adaptive-forward-length", lambda nn: nn.AdaptiveAvgPool2d((2, 2, 2))(t(1, 2, 4, 4)), r"^adaptive_avg_pool2d: .*output_size"),
    module("ce-forward-target", lambda nn: nn.CrossEntropyLoss()(t(2, 3), torch.tensor([0, 3])), r"^cross_entropy: .*class indices"),
    module("mse-forward-reduction", lambda nn: nn.MSELoss(reduction="avg")(t(2), t(2)), r"^mse_loss: expected reduction"),
    module("relu-forward-bool", lambda nn: nn.ReLU()(t(2, dtype=torch.bool)), r"^relu: expected input"),
]


@pytest.mark.parametrize("build,names", MODULES)
def test_module_raises_torch_class(build, names):
    with pytest.raises(Exception) as theirs:
        build(torch.nn)
    with pytest.raises(ArgumentError, match=names) as ours:
        build(ours_nn)
    assert isinstance(ours.value, theirs.type), f"torch raises {theirs.type.__name__}, ours is a {type(ours.value).__mro__}"


def test_module_checks_of_its_own():
    """Options torch.nn has not: ArgumentErrors (ValueErrors), naming the option."""
    with pytest.raises(ArgumentError, match=r"^Conv2d: expected connection_table of shape \(4, 3\)") as raised:
        ours_nn.Conv2d(3, 4, 3, connection_table=torch.ones(2, 2))
    assert isinstance(raised.value, ValueError)
    with pytest.raises(ArgumentError, match=r"^Conv1d: expected activation to be None or 'relu'"):
        ours_nn.Conv1d(3, 4, 3, activation="tanh")


def test_module_construction_unchanged():
    """The constructor wrapper passes arguments through and keeps torch's signature."""
    layer = ours_nn.Linear(3, 2, bias=False, dtype=torch.float64)
    assert layer.weight.shape == (2, 3) and layer.weight.dtype == torch.float64 and layer.bias is None
    assert inspect.signature(ours_nn.Linear) == inspect.signature(torch.nn.Linear)
    assert inspect.signature(ours_nn.Dropout2d) == inspect.signature(torch.nn.Dropout2d)
    assert ours_nn.Dropout(0.25).p == 0.25


# ------------------------------------------------------------------------- the error classes


@pytest.mark.parametrize(
    "ours,builtin",
    [(ArgumentTypeError, TypeError), (ArgumentIndexError, IndexError), (ArgumentNotImplementedError, NotImplementedError)],
)
def test_error_classes(ours, builtin):
    """Each is an ArgumentError (so a ValueError and a RuntimeError) and its builtin class, and
    only that one of TypeError, IndexError and NotImplementedError."""
    error = ours("message")
    assert isinstance(error, ArgumentError) and isinstance(error, ValueError) and isinstance(error, RuntimeError)
    assert isinstance(error, builtin)
    others = {TypeError, IndexError, NotImplementedError} - {builtin}
    assert not any(isinstance(error, other) for other in others)
    assert not isinstance(ArgumentError("message"), (TypeError, IndexError, NotImplementedError))
    assert getattr(torchconv_impl, ours.__name__) is ours and torchconv_impl.ArgumentError is ArgumentError


def test_check():
    check(True, lambda: pytest.fail("the message is built only on failure"), ArgumentIndexError)
    with pytest.raises(ArgumentIndexError, match="^lazy 3$"):
        check(False, lambda: f"lazy {1 + 2}", ArgumentIndexError)
    with pytest.raises(ArgumentError, match="^plain$") as raised:
        check(False, "plain")
    assert type(raised.value) is ArgumentError


@pytest.mark.parametrize(
    "torch_error,expected",
    [
        (NotImplementedError("x"), ArgumentNotImplementedError),
        (TypeError("x"), ArgumentTypeError),
        (IndexError("x"), ArgumentIndexError),
        (ValueError("x"), ArgumentError),
        (RuntimeError("x"), ArgumentError),
    ],
)
def test_argument_error_like(torch_error, expected):
    assert argument_error_like(torch_error) is expected
    assert isinstance(expected("x"), type(torch_error))


# ------------------------------------------------------------------------- conv dtypes

CONV_OPS = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]
REAL_DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool, torch.uint16, torch.float8_e4m3fn]
COMPLEX_PARTS = {torch.complex32: torch.float16, torch.complex64: torch.float32, torch.complex128: torch.complex128}


def _conv_operands(op, dtype):
    """Small integers (exact in every dtype, no overflow in int8), or complex normals; a
    stride, padding and groups, so that every part of the geometry is exercised."""
    nd = int(op[-2])
    generator = torch.Generator().manual_seed(0)
    if dtype.is_complex:
        make = lambda *shape: torch.randn(shape, dtype=torch.complex128, generator=generator).to(dtype)  # noqa: E731
    else:
        make = lambda *shape: torch.randint(0, 3, shape, generator=generator).to(dtype)  # noqa: E731
    return (make(2, 4, *(5,) * nd), make(4, 2, *(3,) * nd), make(4)), dict(stride=2, padding=1, groups=2)


@pytest.mark.parametrize("op", CONV_OPS)
@pytest.mark.parametrize(
    "dtype",
    [*REAL_DTYPES, torch.complex64, torch.complex128, torch.complex32],
    ids=lambda dtype: str(dtype).removeprefix("torch."),
)
def test_conv_dtypes_as_torch(op, dtype):
    """Accepted exactly where torch's CPU kernel computes the dtype, with torch's result
    (integers exactly); rejected elsewhere with torch's NotImplementedError."""
    args, kwargs = _conv_operands(op, dtype)
    try:
        expected = getattr(TF, op)(*args, **kwargs)
    except NotImplementedError:
        with pytest.raises(ArgumentNotImplementedError, match=rf"^{op}: expected input to have .*, got {dtype}"):
            getattr(F, op)(*args, **kwargs)
        return
    output = getattr(F, op)(*args, **kwargs)
    assert output.dtype == expected.dtype
    if dtype == torch.complex32:  # torch's own complex32 result rounds as it goes: compare with complex64's
        expected = getattr(TF, op)(*(t.to(torch.complex64) for t in args), **kwargs).to(dtype)
    if dtype.is_complex:
        torch.testing.assert_close(output, expected, **TOLERANCES[COMPLEX_PARTS[dtype]])
    else:
        assert torch.equal(output, expected)


@pytest.mark.parametrize("op", CONV_OPS)
def test_conv_dtypes_accepted(op):
    """The table above meets both verdicts: torch computes int64 and complex128 in every conv."""
    for dtype in (torch.int64, torch.complex128):
        args, kwargs = _conv_operands(op, dtype)
        assert getattr(F, op)(*args, **kwargs).dtype == dtype


@pytest.mark.parametrize("op", CONV_OPS)
def test_complex_conv_gradcheck(op, backend):
    """Complex gradients pair δ with the conjugate operand; checked to second order."""
    nd = int(op[-2])
    generator = torch.Generator().manual_seed(0)
    make = lambda *shape: torch.randn(shape, dtype=torch.complex128, generator=generator).requires_grad_()  # noqa: E731
    inputs = (make(1, 2, *(3,) * nd), make(2, 1, *(2,) * nd), make(2))
    conv = lambda x, w, b: getattr(F, op)(x, w, b, stride=2, padding=1, groups=2)  # noqa: E731
    assert torch.autograd.gradcheck(conv, inputs)
    assert torch.autograd.gradgradcheck(conv, inputs)


def test_complex_conv_bias_gradient():
    """The bias gradient Σδ needs no conjugate, and matches torch's already."""
    args, kwargs = _conv_operands("conv2d", torch.complex128)
    bias = args[2].requires_grad_()
    expected = torch.autograd.grad(TF.conv2d(args[0], args[1], bias, **kwargs).abs().sum(), bias)[0]
    actual = torch.autograd.grad(F.conv2d(args[0], args[1], bias, **kwargs).abs().sum(), bias)[0]
    torch.testing.assert_close(actual, expected, **TOLERANCES[torch.complex128])


@pytest.mark.parametrize("input_dtype,target_dtype", [(torch.int64, torch.float32), (torch.float64, torch.bool)])
def test_mse_loss_integer_operand_promoted_as_torch(input_dtype, target_dtype):
    """torch accepts an integer or bool operand beside a float one, computing in the promoted
    dtype; so do we, with torch's value and gradient."""
    generator = torch.Generator().manual_seed(0)
    input = torch.randint(0, 3, (3, 4), generator=generator).to(input_dtype)
    target = torch.randint(0, 3, (3, 4), generator=generator).to(target_dtype)
    float_operand = input if input.is_floating_point() else target
    float_operand.requires_grad_()
    expected = TF.mse_loss(input, target)
    actual = F.mse_loss(input, target)
    assert actual.dtype == expected.dtype
    torch.testing.assert_close(actual, expected, **TOLERANCES[expected.dtype])
    torch.testing.assert_close(
        torch.autograd.grad(actual, float_operand)[0], torch.autograd.grad(expected, float_operand)[0], **TOLERANCES[expected.dtype]
    )
