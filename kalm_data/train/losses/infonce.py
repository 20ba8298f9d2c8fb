"""InfoNCE over in-batch and hard negatives, on cosine scores with a temperature (KaLM V1).

Contract: for query i with embedding ``q_i`` and all passages ``p_j`` of the batch (every
query's positive and hard negatives, gathered across processes by ``Objective``),
``loss = mean_i -log softmax_j(cos(q_i, p_j) / tau)[label_i]``. Embeddings are L2-normalised
here, so a Matryoshka prefix is re-normalised before scoring. Optional terms: focal reweighting
(``focal_gamma``, see ``focal.py``) and distillation from the teacher's scores
(``distill_weight``, see ``distill.py``). Scores are computed in float32 (bf16 logits / 0.01
would lose the ranking).

Requirements: (query, positive) pairs, optionally with hard negatives; no duplicate texts in a
batch (the sampler guarantees it: a duplicate positive would be its own negative).
Inputs: ``q`` (batch, dim), ``p`` (passages, dim), ``Targets`` (labels, groups, teacher).
Recommendations: tau = 0.01 (KaLM); large batches (``cached=True`` for memory); hard negatives
mined with a false-negative guard.
Relations: equals sentence-transformers' ``MultipleNegativesRankingLoss`` with
``scale = 1 / tau`` when focal and distillation are off; ``CachedLoss`` gives the same gradients
with bounded memory.
Example::

    loss_fn = InfoNCELoss(temperature=0.01, focal_gamma=0.5)
    loss = loss_fn(encoder(**q_feats), encoder(**p_feats), targets)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kalm_data.train.losses.distill import distill_kl
from kalm_data.train.losses.focal import focal_weights
from kalm_data.train.losses.targets import Targets


class InfoNCELoss(torch.nn.Module):
    def __init__(
        self,
        temperature: float = 0.01,
        focal_gamma: float = 0.0,
        distill_weight: float = 0.0,
        distill_temperature: float = 0.02,
    ):
        super().__init__()
        self.temperature = temperature
        self.focal_gamma = focal_gamma
        self.distill_weight = distill_weight
        self.distill_temperature = distill_temperature

    def forward(self, q: torch.Tensor, p: torch.Tensor, targets: Targets) -> torch.Tensor:
        q = F.normalize(q.float(), dim=-1)  # (batch, dim)
        p = F.normalize(p.float(), dim=-1)  # (passages, dim)
        logits = q @ p.T / self.temperature  # (batch, passages)
        if targets.valid is not None:
            logits = logits.masked_fill(~targets.valid[None, :], float("-inf"))
        ce = F.cross_entropy(logits, targets.labels, reduction="none")  # (batch,)
        if self.focal_gamma:
            ce = focal_weights(logits, targets.labels, self.focal_gamma) * ce
        loss = ce.mean()
        if self.distill_weight:
            kl = distill_kl(logits, targets.groups, targets.teacher, self.distill_temperature)
            loss = loss + self.distill_weight * kl
        return loss
