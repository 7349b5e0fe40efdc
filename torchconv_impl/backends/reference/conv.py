"""Convolution as the seeds write it: im2col, one matrix product, col2im. x (N, C, *S) input,
W (O, C/G, *k) kernel, y (N, O, *P) output, G groups. The im2col matrix cols (N, G, ∏P, C/G·∏k)
holds one window x_pad[p·s + j·d] per output position p as a row; per group y_g = cols_g · W_gᵀ."""
import itertools

import torch

from ..._geometry import ConvGeometry, prod


def pad(x: torch.Tensor, padding, value=0) -> torch.Tensor:
    """``x`` padded with ``value`` by a (low, high) pair per spatial dim; negative pairs crop."""
    return torch.nn.functional.pad(x, [p for pair in reversed(padding) for p in pair], value=value)


def windows(x: torch.Tensor, kernel_size, stride, dilation) -> torch.Tensor:
    """im2col as a view: (N, C, *S) → (N, C, *P, *k), [n, c, p, j] = x[n, c, p·s + j·d]."""
    for dim, (k, s, d) in enumerate(zip(kernel_size, stride, dilation)):
        x = x.unfold(2 + dim, d * (k - 1) + 1, s)[..., ::d]
    return x


def col2im(values: torch.Tensor, size, stride, dilation) -> torch.Tensor:
    """The transpose of ``windows``: (N, C, *P, *k) values added onto the (N, C, *size) elements they view."""
    nd = len(size)
    output_size, kernel_size = values.shape[2:2 + nd], values.shape[2 + nd:]
    result = values.new_zeros(*values.shape[:2], *size)
    for offset in itertools.product(*map(range, kernel_size)):
        reached = [slice(j * d, j * d + (p - 1) * s + 1, s) for j, d, p, s in zip(offset, dilation, output_size, stride)]
        result[(..., *reached)] += values[(..., *offset)]
    return result


def im2col(x: torch.Tensor, kernel_size, output_size, geometry: ConvGeometry) -> torch.Tensor:
    """cols (N, G, ∏P, C/G·∏k); windows past ``output_size`` (output_padding's) take no part."""
    n, channels, nd, groups = x.shape[0], x.shape[1], x.dim() - 2, geometry.groups
    view = windows(pad(x, geometry.padding), kernel_size, geometry.stride, geometry.dilation)
    view = view[(slice(None), slice(None), *map(slice, output_size))]
    view = view.reshape(n, groups, channels // groups, *output_size, *kernel_size).movedim(2, 2 + nd)
    return view.reshape(n, groups, prod(output_size), channels // groups * prod(kernel_size))


def conv_forward(input, weight, bias, geometry: ConvGeometry, activation=None):
    """y[n, o, p] = Σ_{c, j} W[o, c, j] · x_pad[n, c, p·s + j·d] + b[o], the correlation:
    y_g = cols_g · W_gᵀ + b_g, then clamped at 0 if ``activation="relu"``."""
    n, out_channels, groups = input.shape[0], weight.shape[0], geometry.groups
    output_size = geometry.output_size(input.shape[2:], weight.shape[2:])
    cols = im2col(input, weight.shape[2:], output_size, geometry)
    rows = cols @ weight.reshape(groups, out_channels // groups, cols.shape[3]).transpose(1, 2)  # (N, G, ∏P, O/G)
    output = rows.movedim(-1, 2).reshape(n, out_channels, *output_size)
    if bias is not None:
        output = output + bias.view(-1, *(1,) * len(output_size))
    return output.clamp(min=0) if activation == "relu" else output


def conv_input_grad(grad_output, weight, input_size, bias, geometry: ConvGeometry):
    """dX = δ ⋆ᵀ W, the forward's matrix form transposed: ∂L/∂cols_g = δ_g · W_g, then col2im adds
    each entry back where it came from in x_pad, and the padding is cut away (+ ConvTranspose's bias).
    The notes' "full" convolution of zero-inserted δ with W rotated 180°, channels swapped, is the
    same sum (``explain.input_grad_by_rotation``, tested equal) but multiplies zeros: 0·inf = NaN."""
    n, out_channels, output_size = grad_output.shape[0], grad_output.shape[1], grad_output.shape[2:]
    groups, kernel_size, in_channels = geometry.groups, weight.shape[2:], weight.shape[1] * geometry.groups
    delta = grad_output.reshape(n, groups, out_channels // groups, prod(output_size)).transpose(2, 3)
    cols_grad = delta @ weight.reshape(groups, out_channels // groups, weight.shape[1] * prod(kernel_size))
    values = cols_grad.reshape(n, groups, *output_size, in_channels // groups, *kernel_size).movedim(2 + len(input_size), 2)
    padded_size = [i + low + high for i, (low, high) in zip(input_size, geometry.padding)]
    padded = col2im(values.reshape(n, in_channels, *output_size, *kernel_size), padded_size, geometry.stride, geometry.dilation)
    grad = pad(padded, [(-low, -high) for low, high in geometry.padding])
    return grad if bias is None else grad + bias.view(-1, *(1,) * len(input_size))


def conv_weight_grad(input, grad_output, kernel_size, geometry: ConvGeometry):
    """dW[o, c, j] = Σ_{n, p} δ[n, o, p] · x_pad[n, c, p·s + j·d], the input correlated with δ:
    dW_g = Σ_n δ_gᵀ · cols_g."""
    n, out_channels, groups = grad_output.shape[0], grad_output.shape[1], geometry.groups
    cols = im2col(input, kernel_size, grad_output.shape[2:], geometry)
    delta = grad_output.reshape(n, groups, out_channels // groups, cols.shape[2])  # (N, G, O/G, ∏P)
    return torch.einsum("ngop,ngpk->gok", delta, cols).reshape(out_channels, input.shape[1] // groups, *kernel_size)


def relu_input_grad(grad_output, output):
    """The ReLU epilogue's (and ReLU's) dX = where(y ≤ 0, 0, δ) for y = max(x, 0)."""
    return torch.where(output <= 0, 0, grad_output)
