"""Export target ``flagembedding``: one JSONL file per task for FlagEmbedding's embedder
fine-tuning (``FlagEmbedding.finetune.embedder.*``).

Layout: ``OUT/data/<task-folder>.jsonl``, so ``--train_data OUT/data`` loads every task (its
loader takes the ``.json``/``.jsonl`` files directly inside a folder, one dataset per file,
which is also the unit of ``--same_dataset_within_batch``).

Each line holds exactly the fields FlagEmbedding documents (examples/finetune/embedder/README):
``query`` (str), ``pos`` (list[str]), ``neg`` (list[str]), ``pos_scores`` (list[float]),
``neg_scores`` (list[float]), ``prompt`` (str) and ``type`` (str).

Decisions (the contract):

- **One line per example.** A multi-positive example stays one line (``pos`` is a list; the
  trainer picks one positive per step).
- **Scores** are the curation teacher's cosine similarities, aligned with ``pos`` and ``neg``
  (used with ``--knowledge_distillation True``). An example whose scores are not aligned with
  its texts is dropped (``no_scores``).
- **Negatives.** ``--num-negatives N`` keeps the first N (given ones first, then mined ones
  nearest first); shorter lists are kept as they are (the trainer samples from them). An
  example without any negative is dropped (``no_negatives``): FlagEmbedding divides by
  ``len(neg)`` when it fills a group (ZeroDivisionError). With ``--num-negatives 0`` every
  line has ``neg: []`` (train with ``--train_group_size 1``).
- **prompt** is the example's instruction as written ("" without one). FlagEmbedding puts it
  into ``--query_instruction_format`` in place of ``--query_instruction_for_retrieval``, and
  only when that flag is set: pass ``--query_instruction_for_retrieval ''`` to use the rows'
  prompts.
- **type** from the task type (``TYPE_OF``): retrieval and the asymmetric E5 types are
  ``normal``; long-short (classification: text -> label) is ``symmetric_class``; sts and
  bitext (both sides the same kind of text) are ``symmetric_sts``, for which FlagEmbedding
  gives the passages the prompt too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kalm_data.errors import UsageError
from kalm_data.export.target import (
    Drop,
    JsonlListTarget,
    TaskPlan,
    cap_negatives,
)

if TYPE_CHECKING:
    from kalm_data.train.data import TrainRow

NO_SCORES = "no_scores"
#: The documented fields, in this order.
FIELDS = ("query", "pos", "neg", "pos_scores", "neg_scores", "prompt", "type")
#: kalm-data task type -> FlagEmbedding ``type``.
TYPE_OF = {
    "retrieval": "normal",
    "short-long": "normal",
    "short-short": "normal",
    "long-long": "normal",
    "long-short": "symmetric_class",
    "sts": "symmetric_sts",
    "bitext": "symmetric_sts",
}


def flag_type(task_type: str) -> str:
    """FlagEmbedding's ``type`` for a kalm-data task type; ``UsageError`` for an unknown one."""
    try:
        return TYPE_OF[task_type]
    except KeyError:
        raise UsageError(
            f"task type {task_type!r} has no FlagEmbedding type (known: {sorted(TYPE_OF)})"
        ) from None


class FlagEmbeddingTarget(JsonlListTarget):
    """``--to flagembedding`` (see the module docstring)."""

    name = "flagembedding"

    def convert(self, row: TrainRow, plan: TaskPlan) -> list[dict[str, Any]] | Drop:
        n = plan.settings["negatives"]
        if (drop := self.unusable(row, n)) is not None:
            return drop
        negatives, neg_scores = cap_negatives(row, n)
        if row.positive_scores is None or neg_scores is None:
            return Drop(NO_SCORES)
        line = {
            "query": row.query,
            "pos": list(row.positives),
            "neg": negatives,
            "pos_scores": [float(s) for s in row.positive_scores],
            "neg_scores": [float(s) for s in neg_scores],
            "prompt": row.instruction or "",
            "type": flag_type(row.task_type),
        }
        return [line]

    def load_hint(self, output: str) -> str:
        return (
            f"torchrun -m FlagEmbedding.finetune.embedder.encoder_only.base --train_data "
            f"{output}/data --query_instruction_for_retrieval '' --query_instruction_format "
            "'Instruct: {}\\nQuery: {}' [--knowledge_distillation True] ..."
        )
