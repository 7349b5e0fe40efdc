"""DistributedDataParallel over our layers: two gloo processes on CPU train a converted small CNN
exactly as one process trains it on the whole batch."""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import torchconv_impl
from torchconv_impl import functional as F

STEPS, BATCH = 3, 8


def _model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 6, 3, stride=2), torch.nn.Tanh(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(6, 3),
    )
    return torchconv_impl.convert(model).double()


def _data():
    generator = torch.Generator().manual_seed(1)
    return [(torch.randn(BATCH, 1, 10, 10, generator=generator, dtype=torch.float64), torch.randint(3, (BATCH,), generator=generator))
            for _ in range(STEPS)]


def _train(model, batches):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for x, t in batches:
        optimizer.zero_grad()
        F.cross_entropy(model(x), t).backward()
        optimizer.step()
    return model


def _worker(rank, world_size, port, result_path):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        torch.set_num_threads(1)
        model = torch.nn.parallel.DistributedDataParallel(_model())
        share = BATCH // world_size
        _train(model, [(x[rank * share:(rank + 1) * share], t[rank * share:(rank + 1) * share]) for x, t in _data()])
        if rank == 0:
            torch.save(model.module.state_dict(), result_path)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo")
def test_ddp_two_processes_match_one(tmp_path):
    """Each of 2 processes takes half of every batch; DDP averages their gradients, which for a
    mean loss is the whole batch's gradient: after 3 SGD steps with momentum every parameter
    equals single-process training's (float64)."""
    result_path = tmp_path / "ddp.pt"
    mp.spawn(_worker, args=(2, _free_port(), str(result_path)), nprocs=2, join=True)
    distributed = torch.load(result_path, weights_only=True)
    single = _train(_model(), _data()).state_dict()
    assert distributed.keys() == single.keys()
    for name in single:
        torch.testing.assert_close(distributed[name], single[name], rtol=1e-10, atol=1e-12, msg=name)
    # The training moved the weights, so agreement is not the initial weights agreeing.
    assert not torch.equal(single["0.weight"], _model().state_dict()["0.weight"])
