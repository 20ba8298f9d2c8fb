"""The training objective: gather passages across processes, then (Matryoshka) InfoNCE.

Contract: ``Objective(base)(q, p, targets)`` scores this process's queries against the passages
of *every* process (KaLM: in-batch negatives gathered across devices), shifting the targets to
this process's place in the gathered list. Each process's loss is the mean over its own
queries; DDP's gradient averaging then yields the mean over the global batch (the gather's
backward sends every process its passages' gradients).

``build_objective(cfg, width)`` assembles the configured loss: ``InfoNCELoss`` (focal and
distillation terms included) wrapped in ``MatryoshkaLoss`` when ``matryoshka_dims`` is set.
"""

from __future__ import annotations

import logging

import torch

from kalm_data.train.distributed import gather_with_grad
from kalm_data.train.losses.infonce import InfoNCELoss
from kalm_data.train.losses.matryoshka import MatryoshkaLoss, clip_dims
from kalm_data.train.losses.targets import Targets

log = logging.getLogger(__name__)


class Objective(torch.nn.Module):
    def __init__(self, base: torch.nn.Module):
        super().__init__()
        self.base = base

    def forward(self, q: torch.Tensor, p: torch.Tensor, targets: Targets) -> torch.Tensor:
        p_all, offset, valid = gather_with_grad(p)  # (all passages, dim)
        if offset or valid is not None:
            targets = targets.shifted(offset, valid)
        return self.base(q, p_all, targets)


def build_objective(cfg, width: int) -> Objective:
    """The loss of ``cfg`` (a ``TrainConfig``) for a model of embedding size ``width``."""
    base = InfoNCELoss(
        temperature=cfg.temperature,
        focal_gamma=cfg.focal_gamma,
        distill_weight=cfg.distill_weight,
        distill_temperature=cfg.distill_temperature,
    )
    if not cfg.matryoshka_dims:
        return Objective(base)
    pairs = clip_dims(cfg.matryoshka_dims, cfg.matryoshka_weights, width)
    log.info("Matryoshka dims/weights on %d-d: %s", width, pairs)
    dims, weights = zip(*pairs, strict=True)
    return Objective(MatryoshkaLoss(base, list(dims), list(weights)))
