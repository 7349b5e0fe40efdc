"""torch.func over our layers: grad, vjp, jacrev, and vmap with the operators' batching rules
(per-sample gradients without a loop over samples), checked against torch and against loops."""
import pytest
import torch
import torch.nn.functional as TF
from torch.func import functional_call, grad, jacrev, vjp, vmap

import torchconv_impl
from torchconv_impl import functional as F
from support import DEVICE, assert_close


def _random(*shape):
    return torch.randn(*shape, dtype=torch.float64, device=DEVICE)


def _network(functional):
    """conv → ReLU → max pool → conv (stride 2, groups 2) → avg pool → adaptive avg pool → linear, as a function of its weights."""

    def forward(params, x):
        x = functional.max_pool2d(functional.relu(functional.conv2d(x, params["c1"], params["b1"], padding=1)), 2)
        x = functional.avg_pool2d(functional.conv2d(x, params["c2"], None, stride=2, groups=2), 2, ceil_mode=True)
        x = functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return functional.linear(x, params["f"], params["fb"])

    return forward


PARAMS = {"c1": (4, 3, 3, 3), "b1": (4,), "c2": (6, 2, 3, 3), "f": (5, 6), "fb": (5,)}


def _loss(functional):
    network = _network(functional)
    return lambda params, x, t: functional.cross_entropy(network(params, x.unsqueeze(0)), t.unsqueeze(0))


def test_grad_and_vjp_match_torch():
    """torch.func.grad of a loss through conv, pools, ReLU, linear and cross-entropy, and vjp of
    the network's output, equal torch.nn.functional's in float64."""
    params = {name: _random(*shape) for name, shape in PARAMS.items()}
    x, t = _random(3, 12, 12), torch.tensor(2, device=DEVICE)
    ours, theirs = grad(_loss(F))(params, x, t), grad(_loss(TF))(params, x, t)
    for name in PARAMS:
        assert_close(ours[name], theirs[name], msg=name)
    delta = _random(1, 5)
    (ours_x,) = vjp(lambda x: _network(F)(params, x), x.unsqueeze(0))[1](delta)
    (theirs_x,) = vjp(lambda x: _network(TF)(params, x), x.unsqueeze(0))[1](delta)
    assert_close(ours_x, theirs_x)


def test_per_sample_gradients_without_a_loop(monkeypatch):
    """vmap(grad(loss)) gives each sample's gradient of every weight, equal to a loop over the
    samples, and the operators see the whole batch at once (each conv operator is called with
    all 5 samples — as a batch, or as 5 groups for the weight gradient), not once per sample."""
    params = {name: _random(*shape) for name, shape in PARAMS.items()}
    x, t = _random(5, 3, 12, 12), torch.randint(5, (5,), device=DEVICE)
    seen = []
    engine = torchconv_impl.backends.load(torchconv_impl.backends.resolve(x))
    for name in ("conv_forward", "conv_input_grad", "conv_weight_grad"):
        original = getattr(engine, name)
        monkeypatch.setattr(engine, name, lambda *args, _name=name, _original=original: seen.append((_name, args)) or _original(*args))
    per_sample = vmap(grad(_loss(F)), in_dims=(None, 0, 0))(params, x, t)
    assert {name for name, _ in seen} == {"conv_forward", "conv_input_grad", "conv_weight_grad"}
    for name, args in seen:
        batch_or_groups = args[0].shape[0] if name != "conv_weight_grad" else args[-1].groups
        assert batch_or_groups % 5 == 0, f"{name} saw one sample at a time"
    seen.clear()
    loop = [grad(_loss(TF))(params, x[i], t[i]) for i in range(5)]
    for name in PARAMS:
        assert_close(per_sample[name], torch.stack([g[name] for g in loop]), msg=name)


def test_per_sample_weights_vmap():
    """vmap over the weights as well as the input (an ensemble of convolutions): conv2d,
    conv_transpose2d (with bias) and linear equal a loop."""
    x, w, b = _random(4, 2, 6, 6), _random(4, 3, 2, 3, 3), _random(4, 3)
    assert_close(vmap(lambda x, w, b: F.conv2d(x, w, b, padding=1))(x, w, b),
                 torch.stack([TF.conv2d(x[i], w[i], b[i], padding=1) for i in range(4)]))
    wt, bt = _random(4, 2, 3, 3, 3), _random(4, 3)
    assert_close(vmap(lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2))(x, wt, bt),
                 torch.stack([TF.conv_transpose2d(x[i], wt[i], bt[i], stride=2) for i in range(4)]))
    # Input shared, weights per sample: the input is broadcast to every kernel set.
    assert_close(vmap(lambda w: F.conv2d(x, w), in_dims=0)(w), torch.stack([TF.conv2d(x, w[i]) for i in range(4)]))


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_max_pool2d"])
def test_jacrev_matches_torch(op):
    """jacrev (vmap over the vector-Jacobian product) gives torch's Jacobian."""
    x, w = _random(1, 2, 5, 5), _random(2, 2, 3, 3)
    calls = {
        "conv2d": lambda f, x: f.conv2d(x, w, padding=1),
        "conv_transpose2d": lambda f, x: f.conv_transpose2d(x, w, stride=2),
        "max_pool2d": lambda f, x: f.max_pool2d(x, 3, stride=2, padding=1),
        "avg_pool2d": lambda f, x: f.avg_pool2d(x, 2, ceil_mode=True),
        "adaptive_max_pool2d": lambda f, x: f.adaptive_max_pool2d(x, 3),
    }[op]
    assert_close(jacrev(lambda x: calls(F, x))(x), jacrev(lambda x: calls(TF, x))(x))


def test_functional_call_on_modules():
    """torch.func.functional_call with a converted model's parameters: the gradient of every
    parameter equals the torch.nn twin's."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(36, 2))
    model = model.double().to(DEVICE)
    ours = torchconv_impl.convert(model)  # a converted copy
    params = dict(model.named_parameters())
    x = _random(2, 3, 8, 8)
    theirs = grad(lambda p: functional_call(model, p, (x,)).square().sum())(params)
    mine = grad(lambda p: functional_call(ours, p, (x,)).square().sum())(params)
    for name in params:
        assert_close(mine[name], theirs[name], msg=name)


# Forward mode: each call's tangent against torch's forward-mode AD of the torch.nn twin. Each
# entry: (call(functional, *tensors), shapes of the tensors, all of which get tangents).
FORWARD_MODE = {
    "conv2d": (lambda f, x, w, b: f.conv2d(x, w, b, stride=2, padding=1, groups=2), [(2, 4, 7, 7), (6, 2, 3, 3), (6,)]),
    "conv_bias_relu": (lambda f, x, w, b: TF.relu(TF.conv2d(x, w, b, padding=1)) if f is TF else f.conv_bias_relu(x, w, b, padding=1),
                       [(2, 3, 5, 5), (4, 3, 3, 3), (4,)]),
    "conv_transpose2d": (lambda f, x, w, b: f.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
                         [(2, 3, 4, 4), (3, 2, 3, 3), (2,)]),
    "conv1d": (lambda f, x, w: f.conv1d(x, w, dilation=2), [(2, 3, 9), (2, 3, 3)]),
    "max_pool2d": (lambda f, x: f.max_pool2d(x, 3, stride=2, padding=1), [(2, 3, 7, 7)]),
    "adaptive_max_pool2d": (lambda f, x: f.adaptive_max_pool2d(x, (3, 2)), [(2, 3, 7, 5)]),
    "avg_pool2d": (lambda f, x: f.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), [(2, 3, 6, 6)]),
    "adaptive_avg_pool3d": (lambda f, x: f.adaptive_avg_pool3d(x, 2), [(1, 2, 5, 4, 3)]),
    "linear": (lambda f, x, w, b: f.linear(x, w, b), [(4, 3, 5), (2, 5), (2,)]),
    "relu": (lambda f, x: f.relu(x), [(3, 4)]),
    "sigmoid": (lambda f, x: f.sigmoid(x), [(3, 4)]),
    "tanh": (lambda f, x: f.tanh(x), [(3, 4)]),
    "cross_entropy": (lambda f, x: f.cross_entropy(x, torch.tensor([0, 2, 1], device=DEVICE)), [(3, 4)]),
    "cross_entropy_weighted": (lambda f, x: f.cross_entropy(x, torch.tensor([0, 2, 1], device=DEVICE), label_smoothing=0.2,
                                                            weight=torch.tensor([1.0, 2.0, 0.5, 1.0], dtype=torch.float64, device=DEVICE)),
                               [(3, 4)]),
    "cross_entropy_probabilities": (lambda f, x, p: f.cross_entropy(x, p), [(3, 4), (3, 4)]),
    "mse_loss": (lambda f, x, t: f.mse_loss(x, t), [(3, 4), (3, 4)]),
}


@pytest.mark.parametrize("name", list(FORWARD_MODE))
def test_jvp_matches_torch_forward_mode(name):
    """torch.func.jvp through our layer — its hand-derived tangent — equals torch's forward-mode
    AD of the torch.nn twin, with a tangent on every tensor argument (float64)."""
    call, shapes = FORWARD_MODE[name]
    primals = tuple(_random(*shape) for shape in shapes)
    tangents = tuple(_random(*shape) for shape in shapes)
    ours = torch.func.jvp(lambda *args: call(F, *args), primals, tangents)
    theirs = torch.func.jvp(lambda *args: call(TF, *args), primals, tangents)
    assert_close(ours[0], theirs[0])
    assert_close(ours[1], theirs[1])


def test_max_unpool_and_dropout_tangents():
    """max_unpool2d's tangent is the tangent unpooled at the same indices; dropout's is the
    tangent times the very mask of the forward (the same seed draws the same mask)."""
    x, dx = _random(2, 3, 4, 4), _random(2, 3, 4, 4)
    indices = TF.max_pool2d(_random(2, 3, 8, 8), 2, return_indices=True)[1]
    ours = torch.func.jvp(lambda x: F.max_unpool2d(x, indices, 2), (x,), (dx,))
    theirs = torch.func.jvp(lambda x: TF.max_unpool2d(x, indices, 2), (x,), (dx,))
    assert_close(ours[1], theirs[1])
    torch.manual_seed(3)
    output, tangent = torch.func.jvp(lambda x: F.dropout(x, 0.4), (x,), (dx,))
    scaled_mask = output / x
    assert ((scaled_mask - 0).abs() < 1e-12).any() and ((scaled_mask - 1 / 0.6).abs() < 1e-12).any()
    assert_close(tangent, dx * scaled_mask)


def test_jacfwd_and_forward_over_reverse():
    """jacfwd (vmap over jvp) of a small network equals jacrev; and the Hessian of a loss in the
    first conv's weights by forward-over-reverse (jacfwd of grad: tangents through the backward's
    own Functions — transposed conv, weight gradient, max pooling's scatter, ReLU's mask)
    equals torch's."""
    params = {name: _random(*shape) for name, shape in PARAMS.items()}
    x = _random(1, 3, 8, 8)
    network = _network(F)
    forward = torch.func.jacfwd(lambda x: network(params, x))(x)
    reverse = torch.func.jacrev(lambda x: network(params, x))(x)
    assert_close(forward, reverse)
    t = torch.tensor([1], device=DEVICE)

    def loss(functional):
        return lambda c1: functional.cross_entropy(_network(functional)({**params, "c1": c1}, x), t)

    ours = torch.func.jacfwd(torch.func.grad(loss(F)))(params["c1"])
    theirs = torch.func.jacfwd(torch.func.grad(loss(TF)))(params["c1"])
    assert_close(ours, theirs)


def test_forward_mode_twin_only_where_tangents_flow():
    """The Functions' jvp lives on a ``forward_mode`` twin, used in eager mode when forward-mode
    AD is on (a dual level or torch.func.jvp); plain eager calls and torch.compile (Dynamo cannot
    trace a jvp) use the Function itself, and the compiled conv is one graph without a break."""
    from torchconv_impl.autograd import Convolution

    assert "jvp" in vars(Convolution.forward_mode) and "jvp" not in vars(Convolution)
    x, w = _random(1, 2, 5, 5), _random(3, 2, 3, 3)
    traced = []
    compiled = torch.compile(lambda x, w: F.conv2d(x, w), backend=lambda gm, _: traced.append(gm) or gm.forward, fullgraph=True)
    assert_close(compiled(x, w), TF.conv2d(x, w))
    assert len(traced) == 1
    assert F.conv2d(x, w.requires_grad_()).grad_fn._forward_cls is Convolution
    with torch.autograd.forward_ad.dual_level():
        dual = torch.autograd.forward_ad.make_dual(x, torch.ones_like(x))
        output = F.conv2d(dual, w)
        assert output.grad_fn._forward_cls is Convolution.forward_mode
        assert_close(torch.autograd.forward_ad.unpack_dual(output).tangent, TF.conv2d(torch.ones_like(x), w))
