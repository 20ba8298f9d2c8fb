"""Matryoshka representation learning: train embedding prefixes as embeddings of their own.

Contract: ``loss = sum_k w_k * base(q[:, :d_k], p[:, :d_k], targets)``; the base loss
L2-normalises, so each prefix is re-normalised (KaLM V1: dims 896/512/256/128/64, weights
1/0.3/0.2/0.1/0.1). ``clip_dims`` fits the dims to the model's width: a dim above the width
becomes the width, and a dim that repeats an earlier one is dropped with its weight (on a
384-d model: 384/256/128/64 with 1/0.2/0.1/0.1).

Requirements: a base loss that normalises its inputs (``InfoNCELoss``).
Inputs: as the base loss.
Recommendations: keep the full width first with weight 1; the exported model can then be
loaded with ``SentenceTransformer(path, truncate_dim=256)``.
Relations: sentence-transformers' ``MatryoshkaLoss`` (which also re-uses one forward pass).
Example::

    loss_fn = MatryoshkaLoss(InfoNCELoss(0.01), *zip(*clip_dims([896, 512], [1, 0.3], 384)))
"""

from __future__ import annotations

import torch

from kalm_data.train.losses.targets import Targets


def clip_dims(dims: list[int], weights: list[float], width: int) -> list[tuple[int, float]]:
    """(dim, weight) pairs with dims clipped to ``width``, repeats dropped, order kept."""
    out: list[tuple[int, float]] = []
    for d, w in zip(dims, weights, strict=True):
        d = min(d, width)
        if all(d != seen for seen, _ in out):
            out.append((d, float(w)))
    return out


class MatryoshkaLoss(torch.nn.Module):
    def __init__(self, base: torch.nn.Module, dims: list[int], weights: list[float]):
        super().__init__()
        if not dims or len(dims) != len(weights):
            raise ValueError("MatryoshkaLoss needs as many weights as dims (at least one)")
        self.base = base
        self.dims = list(dims)
        self.weights = list(weights)

    def forward(self, q: torch.Tensor, p: torch.Tensor, targets: Targets) -> torch.Tensor:
        total = q.new_zeros((), dtype=torch.float32)
        for d, w in zip(self.dims, self.weights, strict=True):
            total = total + w * self.base(q[:, :d], p[:, :d], targets)  # prefixes (batch, d)
        return total
