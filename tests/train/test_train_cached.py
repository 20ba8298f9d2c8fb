"""GradCache equivalence: the cached loss gives the plain loss's value and gradients.

The sentence-transformers idea (its CachedMultipleNegativesRankingLoss test), on a tiny Qwen2.
With dropout off the cached and plain losses must agree. With dropout on (attention dropout
0.1) they draw different masks, so the cached loss is compared with the plain loss computed on
the same mini-batches under the same seed: equal gradients prove the re-forward replays the
first pass's masks.
"""

from __future__ import annotations

import pytest
import torch
from train_helpers import assert_close

from kalm_data.train.batch import make_batch
from kalm_data.train.config import TrainConfig
from kalm_data.train.data import load_rows
from kalm_data.train.encoder import load_encoder
from kalm_data.train.loop import plain_backward
from kalm_data.train.losses import CachedLoss, Targets, build_objective
from kalm_data.train.sampler import SemiHomogeneousBatchSampler


def grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"focal_gamma": 0.5, "distill_weight": 0.5, "matryoshka_dims": [64, 32, 16]},
    ],
    ids=["infonce", "focal+distill+matryoshka"],
)
def test_cached_loss_gradients_equal_plain_loss_gradients(tiny_qwen, shards, settings):
    cfg = TrainConfig(
        model=tiny_qwen,
        temperature=0.05,
        num_negatives=2,
        query_max_len=32,
        passage_max_len=48,
        matryoshka_weights=[1.0, 0.3, 0.2][: len(settings.get("matryoshka_dims", []))]
        if "matryoshka_dims" in settings
        else [1.0, 0.3, 0.2, 0.1, 0.1],
        **settings,
    )
    rows = load_rows([str(shards)])
    picks = SemiHomogeneousBatchSampler(rows, 6, 2, 0.5, seed=0).next_batch()
    batch = make_batch(rows, picks, cfg)
    encoder = load_encoder(tiny_qwen)
    encoder.eval()  # dropout off: one forward and four mini-batch forwards draw alike
    targets = Targets.from_batch(batch, encoder.device)
    objective = build_objective(cfg, encoder.dim)

    torch.manual_seed(7)
    plain_loss, _ = plain_backward(encoder, objective, batch, targets, cfg, encoder.device)
    plain = grads(encoder)
    encoder.zero_grad(set_to_none=True)

    torch.manual_seed(7)
    cached = CachedLoss(objective, mini_batch_size=4)
    cached_loss, _ = cached.backward(encoder, batch.queries, batch.passages, targets, 32, 48)
    got = grads(encoder)

    assert float(cached_loss) == pytest.approx(float(plain_loss), rel=1e-4)
    assert plain.keys() == got.keys() and len(plain) > 10
    for name in plain:
        assert_close(got[name], plain[name], name=name)  # scale-aware: float32 order is noise
        with pytest.raises(AssertionError):
            assert_close(got[name] * 1.01, plain[name], name=name)  # yet 1% off is caught


def test_cached_loss_replays_dropout_masks(tiny_qwen, shards):
    cfg = TrainConfig(model=tiny_qwen, temperature=0.05, num_negatives=2)
    rows = load_rows([str(shards)])
    batch = make_batch(rows, SemiHomogeneousBatchSampler(rows, 4, 2, 0.0, 0).next_batch(), cfg)
    encoder = load_encoder(tiny_qwen)
    encoder.train()  # dropout on
    targets = Targets.from_batch(batch, encoder.device)
    objective = build_objective(cfg, encoder.dim)

    def chunked_plain(seed):
        """The plain loss with the texts embedded 4 at a time, in the cached loss's order."""
        torch.manual_seed(seed)
        q = [encoder(**encoder.tokenize(batch.queries[i : i + 4], 32)) for i in range(0, 4, 4)]
        p = [
            encoder(**encoder.tokenize(batch.passages[i : i + 4], 48))
            for i in range(0, len(batch.passages), 4)
        ]
        objective(torch.cat(q), torch.cat(p), targets).backward()
        out = grads(encoder)
        encoder.zero_grad(set_to_none=True)
        return out

    def cached(seed):
        torch.manual_seed(seed)
        CachedLoss(objective, 4).backward(encoder, batch.queries, batch.passages, targets, 32, 48)
        out = grads(encoder)
        encoder.zero_grad(set_to_none=True)
        return out

    reference, got = chunked_plain(1), cached(1)
    for name in reference:
        assert_close(got[name], reference[name], name=name)
    # another seed draws other masks: the gradients move, so dropout really is on
    other = cached(2)
    assert any(not torch.allclose(other[n], got[n]) for n in got)
