"""The core computations as registered operators: ``torch.ops.torchconv.*``.

Each computation a backend implements is one operator defined with ``torch.library``:

* its **real implementation** runs on real tensors and calls the chosen backend's function
  (the ``backend`` argument, resolved by the caller; see ``torchconv_impl.backends``). Only
  here may a backend keep scratch buffers and caches or read values back to the host;
* its **fake implementation** computes only the output's shape, dtype and strides. Fake
  tensors, meta tensors, ``torch.compile``, ``torch.export`` and functionalization all see
  this one, so tracing never enters a backend and no buffer of a backend meets a tensor of
  theirs;
* its **batching rule** (``torch.func.vmap``) folds the vmapped dimension into the batch, or
  for convolutions with per-sample weights into the groups, so that ``vmap(grad(...))``
  computes per-sample gradients in one call;
* where the Triton backend implements it, its **Triton twin** ``torchconv::triton_<name>``, a
  ``torch.library.triton_op`` that torch.compile traces down to the kernel launches, for
  Inductor to compile with the rest of the graph (see ``_Operator``).

Every result is laid out as its fake promises: the ``memory_format`` argument's canonical
strides (the autograd Function that calls the operator chooses it, following torch's layouts),
in storage of its own.

The Python functions below take the geometry as one ``ConvGeometry`` or ``PoolGeometry`` and
call the operators; the autograd Functions in ``torchconv_impl.autograd`` use them.
"""
from __future__ import annotations

import inspect
import typing

import torch

from . import backends
from ._geometry import ConvGeometry, PoolGeometry

_LIBRARY = torch.library.Library("torchconv", "DEF")
_GEOMETRY = "int[] stride, int[] padding, int[] dilation, int groups"


def _strides(shape, memory_format: torch.memory_format) -> tuple[int, ...]:
    """The strides torch.empty gives ``shape`` in ``memory_format``: row-major over the dims in
    memory order, NCHW's or (channels_last, channels_last_3d) N·spatial·C; a size 0 counts as 1
    in the contiguous format, not in the channels-last ones (as torch's own rules)."""
    if memory_format == torch.contiguous_format:
        order, least = list(range(len(shape))), 1  # dims from the outermost in memory
    else:
        order, least = [0, *range(2, len(shape)), 1], 0
    strides, step = [0] * len(shape), 1
    for dim in reversed(order):
        strides[dim] = step
        step *= max(shape[dim], least)
    return tuple(strides)


def _empty(shape, like: torch.Tensor, memory_format: torch.memory_format, dtype=None) -> torch.Tensor:
    """What a fake implementation returns: an uninitialised tensor of ``shape`` in ``memory_format``."""
    return torch.empty(shape, dtype=dtype or like.dtype, device=like.device, memory_format=memory_format)


def _laid_out(result: torch.Tensor, memory_format: torch.memory_format) -> torch.Tensor:
    """``result`` with the strides ``_empty`` gives, copied only if it has others; detached, so
    that it is a tensor of its own and not a view of a backend's temporary (autograd forbids
    in-place ops on views created inside a Function)."""
    if result.stride() != _strides(result.shape, memory_format) or result.storage_offset() != 0:
        result = torch.empty(result.shape, dtype=result.dtype, device=result.device, memory_format=memory_format).copy_(result)
    return result.detach()


class _Operator:
    """A registered operator, called as a function. ``overload`` is torch's handle on it (what
    tracing records); ``real`` its real implementation.

    On plain tensors in plain eager mode — autograd off (the Functions call operators from their
    forward and backward), no tracing, no fake or functorch tensors, no dispatch mode — the call
    goes to ``real`` directly, which is where the dispatcher would send it: its Python layers
    (the autograd formula's wrapper, the guard against Dynamo) cost about as much as a small
    layer's arithmetic on CPU, or a kernel launch on a GPU. Every other call goes through the
    dispatcher.

    An operation the Triton backend implements also gets a **Triton twin** (``define_triton_operators``),
    ``torchconv::triton_<name>``: a ``torch.library.triton_op`` whose body torch.compile traces
    down to the kernel launches, so that Inductor compiles the kernels into its own code instead
    of calling an opaque operator. Calls for the Triton backend on CUDA floating-point tensors go
    to the twin, except under torch.export, whose programs keep the plain operator (portable, and
    loadable where Triton is not installed). The twin takes the same arguments, but the memory
    format by name (a schema inferred from Python types has no MemoryFormat), and has the same
    autograd formula and batching rule.
    """

    def __init__(self, overload, real, laid_out, triton_when=None):
        self.overload, self.real, self._laid_out, self._triton_when = overload, real, laid_out, triton_when
        self.name = overload._schema.name.split("::", 1)[1]
        self.triton = None  # the Triton twin's overload, once defined
        self._rules = []  # (torch.library register function, its arguments): the twin's too

    def __call__(self, *args):
        if _plain_eager(args):  # the twin's body too: nothing is traced
            return self.real(*args)
        if self.triton is not None and _for_triton_kernels(args) and (self._triton_when is None or self._triton_when(*args)):
            return self.triton(*args[:-2], _MEMORY_FORMAT_NAMES[args[-2]], args[-1])
        return self.overload(*args)

    def register(self, register, *args, **kwargs) -> None:
        """``register(overload, *args, **kwargs)``: ``torch.library.register_autograd(overload,
        backward, setup_context=…)`` or ``register_vmap(overload, rule)``, for this operator and
        its Triton twin (now or once defined)."""
        register(self.overload, *args, lib=_LIBRARY, **kwargs)
        self._rules.append((register, args, kwargs))
        if self.triton is not None:
            self._register_on_twin(register, args, kwargs)

    def _register_on_twin(self, register, args, kwargs) -> None:
        """A rule of the operator, given the twin's arguments with the memory format as itself."""
        if register is torch.library.register_vmap:
            (rule,) = args
            register(self.triton, lambda info, in_dims, *twin_args: rule(info, in_dims, *_operator_args(twin_args)), lib=_LIBRARY)
        else:
            setup_context = kwargs["setup_context"]
            register(self.triton, *args, setup_context=lambda ctx, inputs, output: setup_context(ctx, _operator_args(inputs), output),
                     lib=_LIBRARY)

    def define_triton_twin(self, kernels) -> None:
        """Defines ``torchconv::triton_<name>``; ``kernels``: the Triton kernels its body launches."""
        name = f"torchconv::triton_{self.name}"
        laid_out = self._laid_out

        def body(*twin_args):
            return laid_out(*_operator_args(twin_args))

        body.__signature__ = _python_signature(self.overload._schema)
        self._twin = torch.library.triton_op(name, body, mutates_args=())  # owns the registration: kept alive
        # triton_op finds the kernels a body launches by reading its source, which cannot follow
        # the call through a backend; compiled graphs are cached under their source code, so a
        # changed kernel must be known to invalidate them.
        torch._library.triton.triton_ops_to_kernels[name] = list(kernels)
        self.triton = getattr(torch.ops.torchconv, f"triton_{self.name}").default
        for register, args, kwargs in self._rules:
            self._register_on_twin(register, args, kwargs)


_MEMORY_FORMAT_NAMES = {
    torch.contiguous_format: "contiguous_format", torch.channels_last: "channels_last", torch.channels_last_3d: "channels_last_3d",
}


def _operator_args(twin_args) -> tuple:
    """A twin's arguments as its operator's: the memory format (second to last) by value."""
    return (*twin_args[:-2], getattr(torch, twin_args[-2]), twin_args[-1])


# Schema types → the Python annotations torch.library infers them from (the memory format as a str).
_PYTHON_TYPES = {
    "Tensor": torch.Tensor, "Optional[Tensor]": typing.Optional[torch.Tensor], "List[int]": list[int], "int": int,
    "Optional[int]": typing.Optional[int], "bool": bool, "str": str, "Optional[str]": typing.Optional[str], "MemoryFormat": str,
}  # fmt: skip


def _python_signature(schema) -> inspect.Signature:
    """A Python signature whose inferred schema is ``schema``'s (the memory format as a str)."""
    parameters = [
        inspect.Parameter(argument.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=_PYTHON_TYPES[str(argument.real_type)])
        for argument in schema.arguments
    ]
    returns = [torch.Tensor for _ in schema.returns]
    return inspect.Signature(parameters, return_annotation=returns[0] if len(returns) == 1 else tuple[tuple(returns)])


def _for_triton_kernels(args) -> bool:
    """Whether the Triton backend's kernels serve this call: its CUDA floating-point tensors
    (integer pooling falls back to the CPU engine, whose code must never be traced), and not
    inside torch.export."""
    first = args[0]
    return args[-1] == "triton" and first.is_cuda and first.is_floating_point() and not torch.compiler.is_exporting()


def _plain_eager(args) -> bool:
    if (
        torch.is_grad_enabled() or torch.compiler.is_compiling() or torch._C._len_torch_dispatch_stack()
        or torch._C._functorch.peek_interpreter_stack() is not None
    ):
        return False
    return all(type(arg) in _PLAIN_TENSORS and not arg.is_meta for arg in args if isinstance(arg, torch.Tensor))


_PLAIN_TENSORS = (torch.Tensor, torch.nn.Parameter)
_OPERATORS: list[_Operator] = []


def _define(schema: str, triton_when=None):
    """Defines ``torchconv::<schema>``; the decorated function is the real implementation
    (its results laid out in the ``memory_format`` argument's strides). Returns the operator.
    ``triton_when(*args)``: whether the Triton twin serves a call (default: every call its
    kernels take)."""

    def decorate(real):
        name = schema.split("(", 1)[0]
        _LIBRARY.define(schema)

        def laid_out(*args):
            memory_format, result = args[-2], real(*args)
            if isinstance(result, tuple):
                return tuple(_laid_out(t, memory_format) for t in result)
            return _laid_out(result, memory_format)

        def laid_out_real(*args):
            device = args[0].device.type
            if torch.is_autocast_enabled(device):
                with torch.autocast(device, enabled=False):  # the caller applied autocast's policy
                    return laid_out(*args)
            return laid_out(*args)

        # A backend's real code is never traced, even when eager code calls it from a compiled region.
        _LIBRARY.impl(name, torch.compiler.disable(laid_out_real), "CompositeExplicitAutograd")
        operator = _Operator(getattr(torch.ops.torchconv, name).default, laid_out_real, laid_out, triton_when)
        _OPERATORS.append(operator)
        return operator

    return decorate


def define_triton_operators() -> None:
    """Gives every operation the Triton backend implements its Triton twin (see ``_Operator``).
    Done on import where CUDA and Triton are both present; idempotent."""
    kernels = backends.load("triton").KERNELS
    for operator in _OPERATORS:
        if operator.triton is None and operator.name in kernels:
            operator.define_triton_twin(kernels[operator.name])


def _fake(operator: _Operator):
    """Decorates ``operator``'s fake implementation: shapes, dtypes and strides only."""
    return torch.library.register_fake(operator.overload, lib=_LIBRARY)


def unflatten_geometry(stride, padding, dilation, groups) -> ConvGeometry:
    """The ConvGeometry of an operator's geometry arguments (``flatten_geometry``'s inverse)."""
    return ConvGeometry(tuple(stride), tuple(zip(padding[::2], padding[1::2])), tuple(dilation), groups)


def flatten_geometry(geometry: ConvGeometry):
    """A geometry as the operators' int-list arguments: stride, padding as (lo₀, hi₀, lo₁, hi₁, …),
    dilation, groups."""
    return list(geometry.stride), [p for pair in geometry.padding for p in pair], list(geometry.dilation), geometry.groups


# Convolution ---------------------------------------------------------------------------------


@_define(f"conv_forward(Tensor input, Tensor weight, Tensor? bias, {_GEOMETRY}, str? activation, "
         "MemoryFormat memory_format, str backend) -> Tensor")
def conv_forward_operator(input, weight, bias, stride, padding, dilation, groups, activation, memory_format, backend):
    geometry = unflatten_geometry(stride, padding, dilation, groups)
    return backends.implementation(backend, "conv_forward")(input, weight, bias, geometry, activation)


@_fake(conv_forward_operator)
def _(input, weight, bias, stride, padding, dilation, groups, activation, memory_format, backend):
    output_size = unflatten_geometry(stride, padding, dilation, groups).output_size(input.shape[2:], weight.shape[2:])
    return _empty((input.shape[0], weight.shape[0], *output_size), input, memory_format)


@_define(f"conv_input_grad(Tensor grad_output, Tensor weight, SymInt[] input_size, Tensor? bias, {_GEOMETRY}, "
         "MemoryFormat memory_format, str backend) -> Tensor")
def conv_input_grad_operator(grad_output, weight, input_size, bias, stride, padding, dilation, groups, memory_format, backend):
    geometry = unflatten_geometry(stride, padding, dilation, groups)
    return backends.implementation(backend, "conv_input_grad")(grad_output, weight, tuple(input_size), bias, geometry)


@_fake(conv_input_grad_operator)
def _(grad_output, weight, input_size, bias, stride, padding, dilation, groups, memory_format, backend):
    return _empty((grad_output.shape[0], weight.shape[1] * groups, *input_size), grad_output, memory_format)


@_define(f"conv_weight_grad(Tensor input, Tensor grad_output, SymInt[] kernel_size, {_GEOMETRY}, "
         "MemoryFormat memory_format, str backend) -> Tensor")
def conv_weight_grad_operator(input, grad_output, kernel_size, stride, padding, dilation, groups, memory_format, backend):
    geometry = unflatten_geometry(stride, padding, dilation, groups)
    return backends.implementation(backend, "conv_weight_grad")(input, grad_output, tuple(kernel_size), geometry)


@_fake(conv_weight_grad_operator)
def _(input, grad_output, kernel_size, stride, padding, dilation, groups, memory_format, backend):
    return _empty((grad_output.shape[1], input.shape[1] // groups, *kernel_size), input, memory_format)


def conv_forward(input, weight, bias, geometry: ConvGeometry, activation, memory_format, backend: str):
    """y = x ⋆ W + b (then ReLU with ``activation="relu"``)."""
    return conv_forward_operator(input, weight, bias, *flatten_geometry(geometry), activation, memory_format, backend)


def conv_input_grad(grad_output, weight, input_size, bias, geometry: ConvGeometry, memory_format, backend: str):
    """dX = δ ⋆ᵀ W (+ b): the transposed convolution onto an input of spatial ``input_size``."""
    return conv_input_grad_operator(grad_output, weight, list(input_size), bias, *flatten_geometry(geometry), memory_format, backend)


def conv_weight_grad(input, grad_output, kernel_size, geometry: ConvGeometry, backend: str):
    """dW = x ⋆ δ, a kernel of spatial ``kernel_size``."""
    return conv_weight_grad_operator(input, grad_output, list(kernel_size), *flatten_geometry(geometry), torch.contiguous_format, backend)


# Pooling -------------------------------------------------------------------------------------

_WINDOW = "int[] kernel_size, int[] stride, int[] padding"


def pool_geometry(kernel_size, stride, padding, dilation=None, *, ceil_mode) -> PoolGeometry:
    """The PoolGeometry of an operator's window arguments (average pooling's have no dilation)."""
    dilation = (1,) * len(kernel_size) if dilation is None else dilation
    return PoolGeometry(tuple(kernel_size), tuple(stride), tuple(padding), tuple(dilation), ceil_mode)


@_define(f"max_pool_forward(Tensor input, {_WINDOW}, int[] dilation, bool ceil_mode, "
         "MemoryFormat memory_format, str backend) -> (Tensor, Tensor)")
def max_pool_forward_operator(input, kernel_size, stride, padding, dilation, ceil_mode, memory_format, backend):
    return backends.implementation(backend, "max_pool_forward")(input, pool_geometry(kernel_size, stride, padding, dilation, ceil_mode=ceil_mode))


@_fake(max_pool_forward_operator)
def _(input, kernel_size, stride, padding, dilation, ceil_mode, memory_format, backend):
    shape = (*input.shape[:2], *pool_geometry(kernel_size, stride, padding, dilation, ceil_mode=ceil_mode).output_size(input.shape[2:]))
    return _empty(shape, input, memory_format), _empty(shape, input, memory_format, torch.int64)


def max_pool_forward(input, geometry: PoolGeometry, memory_format, backend: str):
    """(y, argmax indices) of max pooling."""
    return max_pool_forward_operator(
        input, list(geometry.kernel_size), list(geometry.stride), list(geometry.padding), list(geometry.dilation), geometry.ceil_mode,
        memory_format, backend,
    )


@_define("adaptive_max_pool_forward(Tensor input, SymInt[] output_size, MemoryFormat memory_format, str backend) -> (Tensor, Tensor)")
def adaptive_max_pool_forward(input, output_size, memory_format, backend):
    """(y, argmax indices) of max pooling over torch's adaptive windows."""
    return backends.implementation(backend, "adaptive_max_pool_forward")(input, tuple(output_size))


@_fake(adaptive_max_pool_forward)
def _(input, output_size, memory_format, backend):
    shape = (*input.shape[:2], *output_size)
    return _empty(shape, input, memory_format), _empty(shape, input, memory_format, torch.int64)


def _windows_known(grad_output, indices, input_size, kernel_size, stride, padding, dilation, ceil_mode, adaptive, *_):
    """Whether max_pool_backward's indices come from known windows: the Triton kernel gathers
    from those; any other indices (max unpooling's adjoint) are the CPU engine's scatter."""
    return adaptive or len(kernel_size) > 0


@_define(f"max_pool_backward(Tensor grad_output, Tensor indices, SymInt[] input_size, {_WINDOW}, int[] dilation, bool ceil_mode, "
         "bool adaptive, MemoryFormat memory_format, str backend) -> Tensor", triton_when=_windows_known)
def max_pool_backward_operator(
    grad_output, indices, input_size, kernel_size, stride, padding, dilation, ceil_mode, adaptive, memory_format, backend
):
    windows = unflatten_windows(kernel_size, stride, padding, dilation, ceil_mode, adaptive)
    return backends.implementation(backend, "max_pool_backward")(grad_output, indices, tuple(input_size), windows)


@_fake(max_pool_backward_operator)
def _(grad_output, indices, input_size, kernel_size, stride, padding, dilation, ceil_mode, adaptive, memory_format, backend):
    return _empty((*grad_output.shape[:2], *input_size), grad_output, memory_format)


def flatten_windows(windows: PoolGeometry | str | None):
    """The windows max pooling's indices came from — a PoolGeometry, "adaptive" (torch's adaptive
    windows) or None (unknown) — as the operator's kernel_size, stride, padding, dilation,
    ceil_mode and adaptive arguments (empty lists unless a PoolGeometry)."""
    if isinstance(windows, PoolGeometry):
        return list(windows.kernel_size), list(windows.stride), list(windows.padding), list(windows.dilation), windows.ceil_mode, False
    return [], [], [], [], False, windows == "adaptive"


def unflatten_windows(kernel_size, stride, padding, dilation, ceil_mode, adaptive) -> PoolGeometry | str | None:
    """``flatten_windows``'s inverse."""
    if adaptive:
        return "adaptive"
    return pool_geometry(kernel_size, stride, padding, dilation, ceil_mode=ceil_mode) if kernel_size else None


def max_pool_backward(grad_output, indices, input_size, windows, memory_format, backend: str):
    """dX: δ scatter-added at the argmax indices into planes of ``input_size``; ``windows``: the
    PoolGeometry the indices came from, "adaptive", or None (see ``flatten_windows``)."""
    return max_pool_backward_operator(grad_output, indices, list(input_size), *flatten_windows(windows), memory_format, backend)


@_define("max_unpool_forward(Tensor input, Tensor indices, SymInt[] output_size, MemoryFormat memory_format, str backend) -> Tensor")
def max_unpool_forward(input, indices, output_size, memory_format, backend):
    """z[indices[p]] = x[p] in zero planes of ``output_size``."""
    return backends.implementation(backend, "max_unpool_forward")(input, indices, tuple(output_size))


@_fake(max_unpool_forward)
def _(input, indices, output_size, memory_format, backend):
    return _empty((*input.shape[:2], *output_size), input, memory_format)


@_define("max_unpool_backward(Tensor grad_output, Tensor indices, MemoryFormat memory_format, str backend) -> Tensor")
def max_unpool_backward(grad_output, indices, memory_format, backend):
    """dX[p] = δ[indices[p]] (gather)."""
    return backends.implementation(backend, "max_unpool_backward")(grad_output, indices)


@_fake(max_unpool_backward)
def _(grad_output, indices, memory_format, backend):
    return _empty(indices.shape, grad_output, memory_format)


@_define(f"avg_pool_forward(Tensor input, {_WINDOW}, bool ceil_mode, bool count_include_pad, int? divisor_override, "
         "MemoryFormat memory_format, str backend) -> Tensor")
def avg_pool_forward_operator(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, memory_format, backend):
    geometry = pool_geometry(kernel_size, stride, padding, ceil_mode=ceil_mode)
    return backends.implementation(backend, "avg_pool_forward")(input, geometry, count_include_pad, divisor_override)


@_fake(avg_pool_forward_operator)
def _(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, memory_format, backend):
    shape = (*input.shape[:2], *pool_geometry(kernel_size, stride, padding, ceil_mode=ceil_mode).output_size(input.shape[2:]))
    return _empty(shape, input, memory_format)


def avg_pool_forward(input, geometry: PoolGeometry, count_include_pad, divisor_override, memory_format, backend: str):
    """y = window sums / divisor."""
    return avg_pool_forward_operator(
        input, list(geometry.kernel_size), list(geometry.stride), list(geometry.padding), geometry.ceil_mode, count_include_pad, divisor_override, memory_format, backend
    )


@_define(f"avg_pool_backward(Tensor grad_output, SymInt[] input_size, {_WINDOW}, bool ceil_mode, bool count_include_pad, "
         "int? divisor_override, MemoryFormat memory_format, str backend) -> Tensor")
def avg_pool_backward_operator(
    grad_output, input_size, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, memory_format, backend
):
    geometry = pool_geometry(kernel_size, stride, padding, ceil_mode=ceil_mode)
    return backends.implementation(backend, "avg_pool_backward")(grad_output, tuple(input_size), geometry, count_include_pad, divisor_override)


@_fake(avg_pool_backward_operator)
def _(grad_output, input_size, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, memory_format, backend):
    return _empty((*grad_output.shape[:2], *input_size), grad_output, memory_format)


def avg_pool_backward(grad_output, input_size, geometry: PoolGeometry, count_include_pad, divisor_override, memory_format, backend: str):
    """dX: δ/divisor spread over each window."""
    return avg_pool_backward_operator(
        grad_output, list(input_size), list(geometry.kernel_size), list(geometry.stride), list(geometry.padding), geometry.ceil_mode,
        count_include_pad, divisor_override, memory_format, backend,
    )


@_define("adaptive_avg_pool_forward(Tensor input, SymInt[] output_size, MemoryFormat memory_format, str backend) -> Tensor")
def adaptive_avg_pool_forward(input, output_size, memory_format, backend):
    """y = x ×_d A_d."""
    return backends.implementation(backend, "adaptive_avg_pool_forward")(input, tuple(output_size))


@_fake(adaptive_avg_pool_forward)
def _(input, output_size, memory_format, backend):
    return _empty((*input.shape[:2], *output_size), input, memory_format)


@_define("adaptive_avg_pool_backward(Tensor grad_output, SymInt[] input_size, MemoryFormat memory_format, str backend) -> Tensor")
def adaptive_avg_pool_backward(grad_output, input_size, memory_format, backend):
    """dX = δ ×_d A_dᵀ."""
    return backends.implementation(backend, "adaptive_avg_pool_backward")(grad_output, tuple(input_size))


@_fake(adaptive_avg_pool_backward)
def _(grad_output, input_size, memory_format, backend):
    return _empty((*grad_output.shape[:2], *input_size), grad_output, memory_format)


# Activations ---------------------------------------------------------------------------------


@_define("relu_input_grad(Tensor grad_output, Tensor output, MemoryFormat memory_format, str backend) -> Tensor")
def relu_input_grad(grad_output, output, memory_format, backend):
    """dX = where(y ≤ 0, 0, δ) for y = max(x, 0)."""
    return backends.implementation(backend, "relu_input_grad")(grad_output, output)


@_fake(relu_input_grad)
def _(grad_output, output, memory_format, backend):
    return _empty(grad_output.shape, grad_output, memory_format)


# Autograd ------------------------------------------------------------------------------------


def differentiate_with(operator, function, function_inputs) -> None:
    """Gives ``operator`` the derivative of the autograd ``function`` that calls it.

    The Functions call their operators with autograd off, so in eager mode this is never used;
    it serves graphs that hold the bare operator, such as those of ``torch.export``, which
    inlines Functions: running or training ``ep.module()`` then takes the same hand-derived
    backward. ``function_inputs(*operator_inputs)`` turns the operator's arguments into the
    Function's; a Function's tensor argument is matched to the operator argument it is.
    """

    def setup_context(ctx, inputs, output):
        arguments = function_inputs(*inputs)
        unused = [i for i, value in enumerate(inputs) if isinstance(value, torch.Tensor)]
        ctx.positions = []  # per Function argument: the operator argument it is (None for non-tensors)
        for value in arguments:
            found = next((i for i in unused if inputs[i] is value), None)
            if found is not None:
                unused.remove(found)
            ctx.positions.append(found)
        function.setup_context(ctx, arguments, output)

    def backward(ctx, *grads):
        needs = ctx.needs_input_grad
        ctx.needs_input_grad = tuple(i is not None and needs[i] for i in ctx.positions)
        function_grads = function.backward(ctx, *grads)
        operator_grads = [None] * len(needs)
        for i, grad in zip(ctx.positions, function_grads):
            if i is not None:
                operator_grads[i] = grad
        return tuple(operator_grads)

    operator.register(torch.library.register_autograd, backward, setup_context=setup_context)


# Batching rules (torch.func.vmap) -------------------------------------------------------------


def _batch_first(tensor, dim, batch_size):
    """``tensor`` with its vmapped dimension first (an unbatched one expanded to ``batch_size``)."""
    if tensor is None:
        return None
    return tensor.unsqueeze(0).expand(batch_size, *tensor.shape) if dim is None else tensor.movedim(dim, 0)


def _fold_into_batch(operator, tensor_positions):
    """The batching rule of an operator that treats each sample of dim 0 alike (pooling, ReLU's
    gradient): the vmapped dimension B joins the batch, (B, N, …) → (B·N, …), and is split off
    the results again. ``tensor_positions``: which arguments are tensors."""

    def rule(info, in_dims, *args):
        args = list(args)
        for i in tensor_positions:
            t = _batch_first(args[i], in_dims[i], info.batch_size)
            args[i] = t.reshape(t.shape[0] * t.shape[1], *t.shape[2:])
        result = operator(*args)
        unfold = lambda t: t.reshape(info.batch_size, -1, *t.shape[1:])  # noqa: E731
        if isinstance(result, tuple):
            return tuple(map(unfold, result)), (0,) * len(result)
        return unfold(result), 0

    operator.register(torch.library.register_vmap, rule)


def _channels_per_sample(tensor, dim, batch_size):
    """(B, N, C, …) → (N, B·C, …): each vmapped sample's channels become a group of their own."""
    t = _batch_first(tensor, dim, batch_size).movedim(0, 1)
    return t.reshape(t.shape[0], t.shape[1] * t.shape[2], *t.shape[3:])


def _stacked(tensor, dim, batch_size):
    """(B, O, …) → (B·O, …): per-sample kernels (or biases) stacked along their first dim."""
    if tensor is None:
        return None
    t = _batch_first(tensor, dim, batch_size)
    return t.reshape(t.shape[0] * t.shape[1], *t.shape[2:])


def _conv_forward_rule(info, in_dims, input, weight, bias, stride, padding, dilation, groups, activation, memory_format, backend):
    """Only the input vmapped: B joins the batch. Per-sample kernels: B·G groups, sample b's
    channels and kernels forming groups b·G … b·G + G − 1."""
    batch_size, (input_dim, weight_dim, bias_dim) = info.batch_size, in_dims[:3]
    if weight_dim is None and bias_dim is None:
        x = _batch_first(input, input_dim, batch_size)
        output = conv_forward_operator(x.flatten(0, 1), weight, bias, stride, padding, dilation, groups, activation, memory_format, backend)
        return output.unflatten(0, (batch_size, -1)), 0
    if bias is not None and bias_dim is None:
        bias_dim, bias = 0, bias.expand(batch_size, *bias.shape)
    output = conv_forward_operator(
        _channels_per_sample(input, input_dim, batch_size), _stacked(weight, weight_dim, batch_size), _stacked(bias, bias_dim, batch_size),
        stride, padding, dilation, groups * batch_size, activation, memory_format, backend,
    )
    return output.unflatten(1, (batch_size, -1)), 1


def _conv_input_grad_rule(info, in_dims, grad_output, weight, input_size, bias, stride, padding, dilation, groups, memory_format, backend):
    """As the forward's rule: B joins the batch, or with per-sample kernels, the groups."""
    batch_size, (grad_dim, weight_dim), bias_dim = info.batch_size, in_dims[:2], in_dims[3]
    if weight_dim is None and bias_dim is None:
        delta = _batch_first(grad_output, grad_dim, batch_size)
        grad = conv_input_grad_operator(delta.flatten(0, 1), weight, input_size, bias, stride, padding, dilation, groups, memory_format, backend)
        return grad.unflatten(0, (batch_size, -1)), 0
    if bias is not None and bias_dim is None:
        bias_dim, bias = 0, bias.expand(batch_size, *bias.shape)
    grad = conv_input_grad_operator(
        _channels_per_sample(grad_output, grad_dim, batch_size), _stacked(weight, weight_dim, batch_size), input_size,
        _stacked(bias, bias_dim, batch_size), stride, padding, dilation, groups * batch_size, memory_format, backend,
    )
    return grad.unflatten(1, (batch_size, -1)), 1


def _conv_weight_grad_rule(info, in_dims, input, grad_output, kernel_size, stride, padding, dilation, groups, memory_format, backend):
    """dW_b = x_b ⋆ δ_b for each vmapped b: one grouped weight gradient over B·G groups, whose
    (B·O, C/G, *k) result is the B kernels stacked — per-sample gradients in one call."""
    batch_size = info.batch_size
    grad = conv_weight_grad_operator(
        _channels_per_sample(input, in_dims[0], batch_size), _channels_per_sample(grad_output, in_dims[1], batch_size),
        kernel_size, stride, padding, dilation, groups * batch_size, memory_format, backend,
    )
    return grad.unflatten(0, (batch_size, -1)), 0


conv_forward_operator.register(torch.library.register_vmap, _conv_forward_rule)
conv_input_grad_operator.register(torch.library.register_vmap, _conv_input_grad_rule)
conv_weight_grad_operator.register(torch.library.register_vmap, _conv_weight_grad_rule)
_fold_into_batch(max_pool_forward_operator, [0])
_fold_into_batch(adaptive_max_pool_forward, [0])
_fold_into_batch(max_pool_backward_operator, [0, 1])
_fold_into_batch(max_unpool_forward, [0, 1])
_fold_into_batch(max_unpool_backward, [0, 1])
_fold_into_batch(avg_pool_forward_operator, [0])
_fold_into_batch(avg_pool_backward_operator, [0])
_fold_into_batch(adaptive_avg_pool_forward, [0])
_fold_into_batch(adaptive_avg_pool_backward, [0])


def _relu_input_grad_rule(info, in_dims, grad_output, output, memory_format, backend):
    """Element-wise: the vmapped dimension is one more dimension of the tensors."""
    grad_output, output = (_batch_first(t, dim, info.batch_size) for t, dim in zip((grad_output, output), in_dims))
    return relu_input_grad(grad_output, output, memory_format, backend), 0


relu_input_grad.register(torch.library.register_vmap, _relu_input_grad_rule)


# Where the Triton backend is the default ("auto" on CUDA), its operators are defined up front:
# created inside a compiled region, they would break its graph.
if backends.TRITON_INSTALLED and torch.cuda.is_available():
    define_triton_operators()
