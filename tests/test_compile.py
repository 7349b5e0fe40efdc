"""torch.compile over torchconv_impl: LeNet-5 and converted torchvision models trace into one
graph without breaks, compiled losses and gradients (aot_eager, Inductor) equal eager ones, a
repeated shape compiles once, AOTAutograd's forward and backward graphs hold our operators and
no native conv/pool op, and the backend selection stays per thread, compiled or not.

Kept small for CI (2 CPU cores): batch 2, 32×32 inputs (64×64 for ResNet-18, see SIZES);
Inductor runs on LeNet-5 and on ResNet-18 only (the cheapest of the three torchvision models with conv, pooling and BatchNorm).
"""
from __future__ import annotations

import contextlib
import copy
import threading

import pytest
import torch
import torch._dynamo
import torchvision
from torch._dynamo.backends.common import aot_autograd
from torch._dynamo.testing import CompileCounterWithBackend
from torch._functorch.aot_autograd import make_boxed_func

import torchconv_impl
import torchconv_impl.functional as F
from torchconv_impl import backends
from torchconv_impl.models.lenet import LeNet5
from support import DEVICE, FORBIDDEN_OPS, assert_close  # assert_close: support.TOLERANCES

BATCH, CLASSES = 2, 10
LENETS = {
    "lenet_relu_max": dict(activation="relu", pooling="max"),
    "lenet_tanh_avg": dict(activation="tanh", pooling="avg"),
}
TORCHVISION = ("resnet18", "vgg11", "mobilenet_v2")
MODELS = (*LENETS, *TORCHVISION)
# Inductor compiles slowly on CPU: LeNet-5 and one torchvision model (resnet18: conv, max and
# adaptive-average pooling, BatchNorm; about half of mobilenet_v2's compile time).
INDUCTOR_MODELS = (*LENETS, "resnet18")
TRAINING = [("aot_eager", name) for name in MODELS] + [("inductor", name) for name in INDUCTOR_MODELS]
# Eval forwards: Inductor on LeNet-5 only (Inductor's resnet18 forward is in the training test).
EVAL = [("aot_eager", name) for name in MODELS] + [("inductor", name) for name in LENETS]


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    """Every test starts and ends with empty compile caches, so compile counts are its own."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def make_model(name: str) -> torch.nn.Module:
    """A model in train mode on DEVICE: LeNet-5 (ours) or a torchvision model converted."""
    if name in LENETS:
        model = LeNet5(**LENETS[name])
    else:
        model = torchconv_impl.convert(getattr(torchvision.models, name)(num_classes=CLASSES))
    return model.to(DEVICE).train()


# ResNet-18 at 32×32 ends in 1×1 maps, where train-mode BatchNorm normalises 2 values per
# channel: an ill-conditioned step whose float32 rounding differences (torch.nn's own resnet18
# under Inductor vs eager) reach 2 % of the gradient. At 64×64 it sees 8 values, as in test_convert.
SIZES = {"resnet18": 64}


def make_batch(name: str):
    """(input, class targets): 1×32×32 for LeNet-5, 3×32×32 for the torchvision models (64×64 for resnet18)."""
    channels, size = (1 if name in LENETS else 3), SIZES.get(name, 32)
    return torch.randn(BATCH, channels, size, size, device=DEVICE), torch.randint(0, CLASSES, (BATCH,), device=DEVICE)


def loss_of(model):
    def loss_fn(input, target):
        return F.cross_entropy(model(input), target)

    return loss_fn


def assert_same_state(compiled_model, eager_model):
    """Every parameter's gradient and every buffer (BatchNorm's running statistics) agree."""
    eager_params = dict(eager_model.named_parameters())
    for name, p in compiled_model.named_parameters():
        expected = eager_params[name].grad
        assert expected is not None and p.grad is not None, f"{name}: no gradient"
        assert_close(p.grad, expected, msg=f"gradient of {name} differs")
    eager_buffers = dict(eager_model.named_buffers())
    for name, b in compiled_model.named_buffers():
        if b.is_floating_point():
            assert_close(b, eager_buffers[name], msg=f"buffer {name} differs")
        else:
            assert torch.equal(b, eager_buffers[name]), f"buffer {name} differs"


# 1. One graph, no graph breaks ----------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_explain_one_graph_no_breaks(name):
    """torch._dynamo.explain of the forward and of the cross-entropy loss each find exactly one
    graph and no graph break (the break reasons are shown if one appears)."""
    model = make_model(name)
    input, target = make_batch(name)
    for what, fn, args in (("forward", model, (input,)), ("loss", loss_of(model), (input, target))):
        torch._dynamo.reset()
        explained = torch._dynamo.explain(fn)(*args)
        reasons = [str(reason) for reason in explained.break_reasons]
        assert explained.graph_break_count == 0, f"{name} {what}: graph breaks: {reasons}"
        assert explained.graph_count == 1, f"{name} {what}: {explained.graph_count} graphs: {reasons}"


# 2. Compiled = eager ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend, name", TRAINING)
def test_compiled_training_step_matches_eager(backend, name):
    """A train-mode model and its deep copy: the loss from torch.compile(loss, fullgraph=True)
    and, after .backward() outside the compiled function, every parameter's gradient and every
    buffer (BatchNorm's running statistics) equal the eager twin's within float32 tolerance.
    Dropout (vgg11, mobilenet_v2) stays on: both draw its mask from the same seed."""
    eager_model = make_model(name)
    compiled_model = copy.deepcopy(eager_model)
    input, target = make_batch(name)

    torch.manual_seed(1)
    expected = loss_of(eager_model)(input, target)
    expected.backward()

    compiled = torch.compile(loss_of(compiled_model), fullgraph=True, backend=backend)
    torch.manual_seed(1)
    loss = compiled(input, target)
    loss.backward()

    assert_close(loss, expected, msg="loss differs")
    assert_same_state(compiled_model, eager_model)


@pytest.mark.parametrize("backend, name", EVAL)
def test_compiled_eval_forward_matches_eager(backend, name):
    """In eval mode (running statistics, no dropout) the compiled forward's logits equal eager's."""
    model = make_model(name).eval()
    input, _ = make_batch(name)
    with torch.no_grad():
        expected = model(input)
        actual = torch.compile(model, fullgraph=True, backend=backend)(input)
    assert actual.shape == (BATCH, CLASSES)
    assert_close(actual, expected)


# 3. No recompilation; the backend selection under compile --------------------------------------


def test_repeated_shape_compiles_once():
    """Three calls of a compiled loss with fresh inputs of one shape: one Dynamo compile
    (CompileCounterWithBackend over aot_eager counts frames and graphs), and each loss and
    gradient still equals eager."""
    name = "lenet_relu_max"
    eager_model = make_model(name)
    compiled_model = copy.deepcopy(eager_model)
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(loss_of(compiled_model), fullgraph=True, backend=counter)
    for step in range(3):
        input, target = make_batch(name)
        eager_model.zero_grad()
        compiled_model.zero_grad()
        expected = loss_of(eager_model)(input, target)
        expected.backward()
        loss = compiled(input, target)
        loss.backward()
        assert_close(loss, expected, msg=f"call {step}: loss differs")
        assert_same_state(compiled_model, eager_model)
    assert counter.frame_count == 1, f"compiled {counter.frame_count} times for one input shape"
    assert counter.op_count > 0  # the counter did see the graph


def test_backend_selection_change_keeps_compiled_results_correct():
    """A compiled loss called with the default selection ('auto'), then inside
    use_backend('reference'), then with the default again: every loss and gradient equals
    eager under the same selection (on CPU 'auto' is the CPU engine: the selection changes the code that runs)."""
    name = "lenet_tanh_avg"
    eager_model = make_model(name)
    compiled_model = copy.deepcopy(eager_model)
    compiled = torch.compile(loss_of(compiled_model), fullgraph=True, backend="aot_eager")
    for selection in (None, "reference", None):
        input, target = make_batch(name)
        eager_model.zero_grad()
        compiled_model.zero_grad()
        with torchconv_impl.use_backend(selection) if selection else contextlib.nullcontext():
            expected = loss_of(eager_model)(input, target)
            expected.backward()
            loss = compiled(input, target)
            loss.backward()
        assert_close(loss, expected, msg=f"selection {selection}: loss differs")
        assert_same_state(compiled_model, eager_model)


# 4. No native conv/pool op in the compiled graphs ------------------------------------------------


class GraphRecorder:
    """An AOTAutograd backend that runs the graphs as they are and records, per forward and
    backward graph, the name of every call_function node's target ("aten.mm.default", …)."""

    def __init__(self):
        self.targets = {"forward": [], "backward": []}
        self.backend = aot_autograd(fw_compiler=self._recorder("forward"), bw_compiler=self._recorder("backward"))

    def _recorder(self, kind):
        def compiler(gm, example_inputs):
            self.targets[kind].append({_launched(node) for node in gm.graph.nodes if node.op == "call_function"})
            return make_boxed_func(gm.forward)

        return compiler

    def names(self, kind) -> set[str]:
        return {str(target) for graph in self.targets[kind] for target in graph}

    def forbidden(self, kind) -> set[str]:
        return {
            str(target)
            for graph in self.targets[kind]
            for target in graph
            if getattr(target, "namespace", None) != "torchconv" and not str(target).startswith("triton.")
            and FORBIDDEN_OPS.search(str(target))
        }


def _launched(node):
    """A node's target; for a Triton kernel launch (the Triton backend's operators are traced
    down to them), "triton.<kernel>" instead."""
    if node.target is torch.ops.higher_order.triton_kernel_wrapper_functional:
        from torch._higher_order_ops.triton_kernel_wrap import kernel_side_table

        return f"triton.{kernel_side_table.get_kernel(node.kwargs['kernel_idx']).fn.__name__}"
    return node.target


# Our pooling operators each model's graphs must hold (mobilenet_v2's pooling is torchvision's
# functional adaptive_avg_pool2d, which convert cannot reach; AOTAutograd decomposes it to a mean).
POOLING = {
    "lenet_relu_max": ("max_pool",),
    "lenet_tanh_avg": ("avg_pool",),
    "resnet18": ("max_pool", "adaptive_avg_pool"),
    "vgg11": ("max_pool", "adaptive_avg_pool"),
    "mobilenet_v2": (),
}


@pytest.mark.parametrize("name", MODELS)
def test_compiled_graphs_dispatch_no_native_conv_or_pool(name):
    """The forward and backward graphs AOTAutograd produces for the training loss hold our
    operators (torchconv.conv_forward; conv_input_grad and conv_weight_grad; the model's pooling
    forward and backward), or with the Triton backend their kernels' launches, and no node whose target matches support.FORBIDDEN_OPS outside the
    torchconv namespace (no aten convolution, pooling, im2col or col2im)."""
    model = make_model(name)
    input, target = make_batch(name)
    recorder = GraphRecorder()
    torch.compile(loss_of(model), fullgraph=True, backend=recorder.backend)(input, target).backward()

    assert len(recorder.targets["forward"]) == 1 and len(recorder.targets["backward"]) == 1
    expected = {
        "forward": {"conv_forward", *(f"{p}_forward" for p in POOLING[name])},
        "backward": {"conv_input_grad", "conv_weight_grad", *(f"{p}_backward" for p in POOLING[name])},
    }
    if backends.resolve(input) == "triton":  # kernel launches: adaptive pooling shares its kernels
        expected = {kind: {f"{op.removeprefix('adaptive_')}_kernel" for op in ops} for kind, ops in expected.items()}
    for kind in ("forward", "backward"):
        ours = {n.split(".")[1] for n in recorder.names(kind) if n.startswith(("torchconv.", "triton."))}
        assert expected[kind] <= ours, f"{kind} graph lacks {sorted(expected[kind] - ours)}; has {sorted(ours)}"
        assert not recorder.forbidden(kind), f"native conv/pool ops in the {kind} graph: {sorted(recorder.forbidden(kind))}"


@pytest.mark.skipif(DEVICE.type != "cuda" or not backends.TRITON_INSTALLED, reason="Inductor compiles Triton kernels for CUDA")
def test_inductor_compiles_the_triton_kernels_into_its_code():
    """With the Triton backend, Inductor's generated code launches our kernels itself (the
    twins are torch.library.triton_ops), and its loss equals eager's."""
    from torch._inductor.utils import run_and_get_code

    model = make_model("lenet_relu_max")
    input, target = make_batch("lenet_relu_max")
    with torchconv_impl.use_backend("triton"):
        expected = loss_of(model)(input, target)
        loss, codes = run_and_get_code(torch.compile(loss_of(model), fullgraph=True, backend="inductor"), input, target)
    code = "\n".join(codes)
    for kernel in ("conv_forward_kernel", "max_pool_forward_kernel"):
        assert kernel in code, f"{kernel} is not in Inductor's code"
    assert "torchconv.triton_" not in code and "torchconv.conv_forward" not in code
    assert_close(loss, expected)


# 5. The backend selection is per thread --------------------------------------------------------


def _run_in_threads(timeout=120, in_main_thread=None, **targets):
    """Runs each target in a thread of that name (and ``in_main_thread``, if given, in this
    thread meanwhile); re-raises the first exception one raised."""
    errors = []

    def guarded(target):
        try:
            target()
        except BaseException as error:  # noqa: BLE001 (reported in the main thread)
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(t,), name=name) for name, t in targets.items()]
    for thread in threads:
        thread.start()
    if in_main_thread is not None:
        guarded(in_main_thread)
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    if errors:  # the cause, rather than a barrier it broke for the others
        raise next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0])


def _record_backend_per_thread(monkeypatch) -> list:
    """Records (thread name, backend name) for each operator that runs (every operator's real
    implementation asks backends.implementation for its backend's function)."""
    calls, original = [], backends.implementation

    def recorded(backend, operation):
        calls.append((threading.current_thread().name, backend))
        return original(backend, operation)

    monkeypatch.setattr(backends, "implementation", recorded)
    return calls


def _small_loss(functional):
    """A conv, ReLU, max-pool loss written against ``functional`` (ours, or torch's as the
    oracle); small, so that it is cheap in Triton's interpreter too."""

    def loss_fn(input, weight, bias):
        return functional.max_pool2d(functional.relu(functional.conv2d(input, weight, bias, padding=1)), 2).square().mean()

    return loss_fn


def _compiled_in_two_threads(monkeypatch, override: str) -> list:
    """One compiled loss (aot_eager) called concurrently by thread "override", inside
    use_backend(override), and thread "default", with no selection of its own, each on inputs of
    its own: each thread's loss and gradients equal torch.nn.functional's. Returns the
    (thread name, backend) of every operator call."""
    weight = torch.randn(4, 3, 3, 3, device=DEVICE, requires_grad=True)
    bias = torch.randn(4, device=DEVICE, requires_grad=True)
    inputs = {thread: torch.randn(2, 3, 8, 8, device=DEVICE, requires_grad=True) for thread in ("override", "default")}
    compiled = torch.compile(_small_loss(F), fullgraph=True, backend="aot_eager")
    oracle = _small_loss(torch.nn.functional)

    calls = _record_backend_per_thread(monkeypatch)
    results, barrier = {}, threading.Barrier(2, timeout=120)

    def run(thread):
        arguments = (inputs[thread], weight, bias)
        barrier.wait()  # both threads call the compiled function at about the same time
        try:
            loss = compiled(*arguments)
            results[thread] = (loss, torch.autograd.grad(loss, arguments))
        except BaseException:
            barrier.abort()
            raise

    def override_thread():
        with torchconv_impl.use_backend(override):
            run("override")

    _run_in_threads(override=override_thread, default=lambda: run("default"))
    for thread in ("override", "default"):
        arguments = (inputs[thread], weight, bias)
        expected = oracle(*arguments)
        loss, gradients = results[thread]
        assert_close(loss, expected, msg=f"thread {thread}: loss differs")
        for what, got, want in zip(("input", "weight", "bias"), gradients, torch.autograd.grad(expected, arguments)):
            assert_close(got, want, msg=f"thread {thread}: gradient of {what} differs")
    return calls


def test_compiled_function_in_two_threads(monkeypatch):
    """A compiled loss called concurrently from a thread inside use_backend('reference') and a
    thread with the default selection: both losses and gradients equal torch.nn.functional's,
    and each thread's operators ran on the backend its own selection resolves to."""
    calls = _compiled_in_two_threads(monkeypatch, "reference")
    default = backends.resolve(torch.empty(0, device=DEVICE))  # what the main thread's selection gives
    assert {thread for thread, _ in calls} == {"override", "default"}
    assert {b for thread, b in calls if thread == "override"} == {"reference"}
    assert {b for thread, b in calls if thread == "default"} == {default}


@pytest.mark.skipif(not backends.TRITON_INSTALLED, reason="needs Triton (its interpreter on CPU)")
def test_compiled_function_in_two_threads_different_backends(monkeypatch):
    """As above with selections that resolve to different backends (Triton in one thread, the
    reference in the other): each thread's operators received its own thread's backend, never
    the other's, although both run one compiled function."""
    default = backends.resolve(torch.empty(0, device=DEVICE))
    override = "reference" if default == "triton" else "triton"
    calls = _compiled_in_two_threads(monkeypatch, override)
    assert {b for thread, b in calls if thread == "override"} == {override}
    assert {b for thread, b in calls if thread == "default"} == {default}


def test_use_backend_is_per_thread_and_set_backend_is_process_wide():
    """Eager, threads A and B and the main thread interleaved in phases by a barrier (each
    phase's actions finish in every thread before the next phase starts): use_backend in A never
    changes get_backend() in B or the main thread; set_backend changes the default that B and
    the main thread (no override) see while A's override still wins; leaving use_backend gives A
    the new process default. The process default is restored at the end."""
    original = torchconv_impl.get_backend()  # the main thread has no override here
    override, new_default = [n for n in backends.NAMES if n != original][:2]
    barrier = threading.Barrier(3, timeout=60)
    seen = {"A": [], "B": [], "main": []}
    a_selection = contextlib.ExitStack()
    actions = {  # phase → {thread: action}; every thread records get_backend() in the even phases
        1: {"A": lambda: a_selection.enter_context(torchconv_impl.use_backend(override))},
        3: {"main": lambda: torchconv_impl.set_backend(new_default)},
        5: {"A": a_selection.close},
    }

    def script(who):
        try:
            for phase in range(7):
                barrier.wait()
                actions.get(phase, {}).get(who, lambda: None)()
                if phase % 2 == 0:
                    seen[who].append(torchconv_impl.get_backend())
        except BaseException:
            barrier.abort()  # the other threads fail fast instead of waiting out the timeout
            raise

    try:
        _run_in_threads(A=lambda: script("A"), B=lambda: script("B"), in_main_thread=lambda: script("main"))
    finally:
        a_selection.close()
        torchconv_impl.set_backend(original)
    assert seen["A"] == [original, override, override, new_default]
    assert seen["B"] == [original, original, new_default, new_default]
    assert seen["main"] == seen["B"]
    assert torchconv_impl.get_backend() == original
