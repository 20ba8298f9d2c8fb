"""Process setup for one CPU/GPU process or ``torchrun`` (DDP), and cross-process gathering.

Contract: ``setup(device)`` initialises ``torch.distributed`` when ``WORLD_SIZE > 1`` (as set by
``torchrun``) and returns a ``Runtime`` (rank, world size, device); a single process needs no
launcher. ``gather_with_grad(x)`` concatenates every process's rows of ``x`` so that gradients
flow back to their owners (an all-gather whose backward all-reduces); processes may hold
different numbers of rows, so rows are padded to the largest count and ``valid`` says which
are real. Without an initialised process group it returns ``x`` itself.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str = "auto") -> Runtime:
    """Initialise the process group under torchrun; choose the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if use_cuda else "gloo")
        log.info("process %d of %d on %s", rank, world, dev)
    return Runtime(rank, world, local, dev)


def is_distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def teardown() -> None:
    if is_distributed():
        torch.distributed.destroy_process_group()


def gather_with_grad(x: torch.Tensor) -> tuple[torch.Tensor, int, torch.Tensor | None]:
    """(all rows (world * max_rows, dim), this process's offset, valid (world * max_rows,))."""
    if not is_distributed() or torch.distributed.get_world_size() == 1:
        return x, 0, None
    world, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
    counts = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(world)]
    torch.distributed.all_gather(counts, torch.tensor([x.shape[0]], device=x.device))
    counts = [int(c) for c in counts]
    width = max(counts)
    padded = torch.cat([x, x.new_zeros(width - x.shape[0], *x.shape[1:])])  # (width, dim)
    rows = _AllGather.apply(padded)  # (world * width, dim)
    valid = torch.zeros(world * width, dtype=torch.bool, device=x.device)
    for r, n in enumerate(counts):
        valid[r * width : r * width + n] = True
    return rows, rank * width, valid


class _AllGather(torch.autograd.Function):
    """Concatenate every process's equal-shaped ``x``; the backward returns each process the
    summed gradient of its own rows (every process's loss may depend on them)."""

    @staticmethod
    def forward(ctx, x):
        parts = [torch.empty_like(x) for _ in range(torch.distributed.get_world_size())]
        torch.distributed.all_gather(parts, x.contiguous())
        ctx.rows = x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()
        torch.distributed.all_reduce(grad)  # sum over processes
        start = torch.distributed.get_rank() * ctx.rows
        return grad[start : start + ctx.rows]
