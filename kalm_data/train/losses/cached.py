"""GradCache: the same gradients as the plain loss, with memory bounded by a mini-batch.

Contract: ``CachedLoss(objective, mini_batch_size).backward(model, queries, passages, targets,
q_len, p_len)`` accumulates into the model's ``.grad`` what ``objective(model(queries),
model(passages), targets).backward()`` would, and returns (loss, tokens). Three passes (Gao et
al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup"):

1. embed every mini-batch without a graph, remembering each one's RNG state;
2. compute the loss on those embeddings as leaves and backpropagate to them only;
3. re-embed each mini-batch with a graph, under its remembered RNG state (so dropout masks
   match), and backpropagate the cached embedding gradients through it.

Under DDP, gradient synchronisation is deferred to the last mini-batch's backward.

Requirements: a deterministic forward given the RNG state (true for transformers models).
Inputs: texts (tokenised per mini-batch with the side's max length) and ``Targets``.
Recommendations: use it when ``batch_size x (1 + negatives)`` texts do not fit in memory;
``mini_batch_size`` as large as memory allows (smaller is slower, never less exact).
Relations: sentence-transformers' ``CachedMultipleNegativesRankingLoss``; the equivalence test
(tests/train/test_cached.py) checks gradients against the plain loss.
Example::

    cached = CachedLoss(build_objective(cfg, encoder.dim), mini_batch_size=16)
    loss, tokens = cached.backward(model, batch.queries, batch.passages, targets, 512, 512)
    optimizer.step()
"""

from __future__ import annotations

import contextlib

import torch

from kalm_data.train.encoder import autocast
from kalm_data.train.losses.targets import Targets


class _RngState:
    """The CPU (and current CUDA device's) RNG state at creation; ``restored()`` replays it."""

    def __init__(self, device: torch.device):
        self.devices = [device] if device.type == "cuda" else []
        self.cpu = torch.get_rng_state()
        self.cuda = [torch.cuda.get_rng_state(d) for d in self.devices]

    @contextlib.contextmanager
    def restored(self):
        with torch.random.fork_rng(devices=self.devices):
            torch.set_rng_state(self.cpu)
            for d, state in zip(self.devices, self.cuda, strict=True):
                torch.cuda.set_rng_state(state, d)
            yield


class CachedLoss:
    def __init__(self, objective: torch.nn.Module, mini_batch_size: int, bf16: bool = False):
        self.objective = objective
        self.mini_batch_size = mini_batch_size
        self.bf16 = bf16

    def _chunks(self, encoder, texts: list[str], max_len: int) -> list[dict]:
        n = self.mini_batch_size
        return [encoder.tokenize(texts[i : i + n], max_len) for i in range(0, len(texts), n)]

    def backward(
        self,
        model,
        queries: list[str],
        passages: list[str],
        targets: Targets,
        q_len: int,
        p_len: int,
    ) -> tuple[torch.Tensor, int]:
        encoder = getattr(model, "module", model)  # under DDP the wrapper holds the encoder
        chunks = self._chunks(encoder, queries, q_len) + self._chunks(encoder, passages, p_len)
        n_query_chunks = -(-len(queries) // self.mini_batch_size)
        # 1. Embed without a graph; remember each chunk's RNG state.
        states, reps = [], []
        with torch.no_grad():
            for feats in chunks:
                states.append(_RngState(encoder.device))
                with autocast(encoder.device, self.bf16):
                    reps.append(model(**feats))  # (chunk, dim)
        # 2. Loss on the cached embeddings; gradients stop at them.
        reps = [r.detach().requires_grad_() for r in reps]
        q = torch.cat(reps[:n_query_chunks])  # (batch, dim)
        p = torch.cat(reps[n_query_chunks:])  # (passages, dim)
        loss = self.objective(q, p, targets)
        loss.backward()
        # 3. Re-embed with a graph under the same RNG state; push the cached gradients through.
        last = len(chunks) - 1
        for i, (feats, state, rep) in enumerate(zip(chunks, states, reps, strict=True)):
            with _no_sync(model, i < last):
                with state.restored(), autocast(encoder.device, self.bf16):
                    out = model(**feats)  # (chunk, dim)
                out.backward(rep.grad.to(out.dtype))
        tokens = sum(int(f["attention_mask"].sum()) for f in chunks)
        return loss.detach(), tokens


def _no_sync(model, skip_sync: bool):
    """DDP's ``no_sync()`` for all but the last backward; a no-op otherwise."""
    if skip_sync and hasattr(model, "no_sync"):
        return model.no_sync()
    return contextlib.nullcontext()
