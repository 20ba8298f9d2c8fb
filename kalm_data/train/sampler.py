"""Semi-homogeneous task batches (KaLM code, ../shared/KALM.md section 4), without duplicate texts.

Contract:
- A *global* batch has ``batch_size`` picks (per-device batch x world size). With ratio ``r``,
  ``h = round(r * batch_size)`` of them come from a single task (a *chunk*); the other
  ``batch_size - h`` come from a pool of every row not placed in a chunk, shuffled across tasks.
  ``r = 1`` gives task-homogeneous batches (GritLM style), ``r = 0`` fully random ones.
- Each task cuts ``floor(n_task * r / h)`` chunks, so the share of a task's rows that sits in
  chunks is about ``r`` and a batch's chunk task is drawn in proportion to the task's size. The
  ratio is strict: every batch holds at least ``h`` rows of one task. Rows left over (fewer than a
  chunk or a batch) wait for the next epoch, whose permutation differs.
- No text occurs twice in a batch: a row's query, all its positives and its chosen negatives must
  be new to the batch, otherwise the row is deferred to a later batch. (A text twice among the
  batch's passages, say row A's negative that is row B's positive, would make B's positive one
  of B's own negatives.)
- One positive per row per epoch, and at most ``num_negatives`` of its negatives, are chosen
  with the epoch's random generator.
- The plan of an epoch depends only on (seed, epoch, rows): ``state_dict()`` is the seed, the
  epoch and the position in it, so a resumed run sees exactly the batches it would have seen.

Relations: sentence-transformers' ``NoDuplicatesBatchSampler`` is the ``r = 0`` case;
its ``GroupByLabelBatchSampler`` is a fully homogeneous one.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from kalm_data.train.data import TrainRow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pick:
    """One row in a batch: which positive, and which negatives (indices into the row's lists)."""

    row: int
    positive: int
    negatives: tuple[int, ...]


class SemiHomogeneousBatchSampler:
    """Plans global batches epoch by epoch; ``next_batch()`` returns the next one."""

    def __init__(
        self,
        rows: list[TrainRow],
        batch_size: int,
        num_negatives: int,
        ratio: float = 0.0,
        seed: int = 0,
    ):
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"ratio must be in [0, 1], got {ratio}")
        self.rows = rows
        self.batch_size = batch_size
        self.num_negatives = num_negatives
        self.ratio = ratio
        self.chunk = round(ratio * batch_size)
        self.seed = seed
        self.epoch = 0
        self.position = 0
        self._plan: list[list[Pick]] | None = None
        self.tasks: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            self.tasks.setdefault(row.task, []).append(i)
        if len(rows) < batch_size:
            raise ValueError(f"{len(rows)} rows cannot fill one batch of {batch_size}")

    # -- planning -------------------------------------------------------------------------

    def _pick(self, rng, i: int) -> Pick:
        row = self.rows[i]
        positive = int(rng.integers(len(row.positives)))
        n = len(row.negatives)
        if n > self.num_negatives:
            negatives = tuple(sorted(int(j) for j in rng.choice(n, self.num_negatives, False)))
        else:
            negatives = tuple(range(n))
        return Pick(i, positive, negatives)

    def _texts(self, pick: Pick) -> set[str]:
        row = self.rows[pick.row]
        return {row.query, *row.positives, *(row.negatives[j] for j in pick.negatives)}

    def _fill(self, batch: list[Pick], seen: set[str], queue: deque, deferred: list, size: int):
        """Move picks into ``batch`` (deferred ones first, then ``queue``) until it has ``size``.

        A pick sharing a text with the batch goes (back) to ``deferred``. False when the
        picks ran out first.
        """
        pending = deque(deferred)
        deferred.clear()
        while len(batch) < size and (pending or queue):
            pick = pending.popleft() if pending else queue.popleft()
            texts = self._texts(pick)
            if texts & seen:
                deferred.append(pick)
            else:
                batch.append(pick)
                seen |= texts
        deferred.extend(pending)
        return len(batch) >= size

    def _chunks(self, rng) -> tuple[list[list[Pick]], list[Pick]]:
        """Single-task chunks of ``self.chunk`` picks, and the pool of every other pick."""
        chunks: list[list[Pick]] = []
        pool: list[Pick] = []
        for task in sorted(self.tasks):
            picks = [self._pick(rng, int(i)) for i in rng.permutation(self.tasks[task])]
            wanted = int(len(picks) * self.ratio) // self.chunk if self.chunk else 0
            queue, deferred = deque(picks), []
            for _ in range(wanted):
                chunk: list[Pick] = []
                if not self._fill(chunk, set(), queue, deferred, self.chunk):
                    deferred.extend(chunk)
                    break
                chunks.append(chunk)
            pool.extend(deferred)
            pool.extend(queue)
        return chunks, pool

    def plan(self, epoch: int) -> list[list[Pick]]:
        """The global batches of ``epoch`` (deterministic in seed, epoch and rows)."""
        import numpy as np

        rng = np.random.default_rng([self.seed, epoch])
        chunks, pool = self._chunks(rng)
        chunks = deque(chunks[i] for i in rng.permutation(len(chunks)))
        queue = deque(pool[i] for i in rng.permutation(len(pool)))
        deferred: list[Pick] = []
        batches = []
        while chunks or not self.chunk:
            batch = list(chunks.popleft()) if self.chunk else []
            seen = set().union(*(self._texts(p) for p in batch))
            if not self._fill(batch, seen, queue, deferred, self.batch_size):
                break
            batches.append([batch[i] for i in rng.permutation(len(batch))])
        unused = len(self.rows) - sum(len(b) for b in batches)
        log.debug(
            "epoch %d: %d batches, %d rows wait for a later epoch", epoch, len(batches), unused
        )
        return batches

    # -- iteration and state ------------------------------------------------------------

    def _current_plan(self) -> list[list[Pick]]:
        if self._plan is None:
            self._plan = self.plan(self.epoch)
            if not self._plan:
                sizes = {t: len(ix) for t, ix in self.tasks.items()}
                raise ValueError(
                    f"no batch of {self.batch_size} could be planned ({self.chunk} rows of one "
                    f"task each, no text twice) from task sizes {sizes}: lower batch_size or "
                    "homogeneous_ratio"
                )
        return self._plan

    def batches_per_epoch(self) -> int:
        """Global batches in the current epoch."""
        return len(self._current_plan())

    def next_batch(self) -> list[Pick]:
        """The next global batch; moves to the next epoch when this one is used up."""
        plan = self._current_plan()
        if self.position >= len(plan):
            self.epoch, self.position, self._plan = self.epoch + 1, 0, None
            plan = self._current_plan()
        batch = plan[self.position]
        self.position += 1
        return batch

    def state_dict(self) -> dict:
        return {
            "seed": self.seed,
            "epoch": self.epoch,
            "position": self.position,
            "rows": len(self.rows),
            "ratio": self.ratio,
            "batch_size": self.batch_size,
        }

    def load_state_dict(self, state: dict) -> None:
        mine = self.state_dict()
        for key in ("rows", "ratio", "batch_size"):
            if state[key] != mine[key]:
                raise ValueError(
                    f"sampler state was saved with {key}={state[key]}, now {mine[key]}: "
                    "resume with the same data and batch settings"
                )
        self.seed, self.epoch, self.position = state["seed"], state["epoch"], state["position"]
        self._plan = None
