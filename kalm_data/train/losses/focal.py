"""Focal reweighting of a contrastive loss (KaLM-Embedding V2).

Contract: ``focal_weights(logits, labels, gamma)`` returns ``w_i = (1 - p_i) ** gamma`` with
``p_i`` the softmax probability of query i's positive among its candidates. Multiplying the
per-query cross-entropy by ``w_i`` gives the focal loss ``-(1 - p)^gamma log p`` (Lin et al.
2017): easy pairs (p near 1) fade and hard ones dominate.

Requirements: logits of one query against all its candidates (positive included).
Inputs: ``logits`` (batch, candidates), ``labels`` (batch,) the positives' columns.
Recommendations: gamma = 0.5 (KaLM V2); gamma = 0 is plain InfoNCE.
Relations: the weight is not detached, as in the focal loss paper, so the gradient is the true
gradient of the focal objective. ``InfoNCELoss(focal_gamma=...)`` applies it.
Example::

    ce = F.cross_entropy(logits, labels, reduction="none")
    loss = (focal_weights(logits, labels, 0.5) * ce).mean()
"""

from __future__ import annotations

import torch


def focal_weights(logits: torch.Tensor, labels: torch.Tensor, gamma: float) -> torch.Tensor:
    """(batch,) weights ``(1 - p_positive) ** gamma``."""
    log_p = torch.log_softmax(logits, dim=-1)  # (batch, candidates)
    p_pos = log_p.gather(1, labels[:, None]).squeeze(1).exp()  # (batch,)
    return (1.0 - p_pos).clamp(min=0.0) ** gamma
