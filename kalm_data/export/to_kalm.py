"""Export target ``kalm``: the JSONL the KaLM-Embedding training code reads (its
FlagEmbedding-1.1 fork: ``train/data.py`` and ``data/example.jsonl`` of HITsz-TMG/KaLM-Embedding).

Layout: ``OUT/data/<task-folder>.jsonl``; pass ``--train_data OUT/data``: KaLM's loader makes
one task of each entry of that folder (the task its in-task batch sampler groups by), so the
folder holds the task files and nothing else.

Each line is ``{"query": str, "pos": list[str], "neg": list[str]}``, as in KaLM's example file.

Decisions (the contract):

- **Instruction in the query.** KaLM puts the instruction on the query only, in the text itself:
  ``Instruct: {instruction} \\n Query: {query}`` (KALM.md section 5; the exact spacing of their
  example file), and trains with ``--query_instruction_for_retrieval ""``. An example without
  an instruction keeps its plain query (none is invented from the task name).
- **One line per example**; a multi-positive example keeps every positive in ``pos`` (KaLM
  picks one at random per step).
- **Negatives.** ``--num-negatives N`` keeps the first N (given ones first, then mined ones
  nearest first); shorter lists stay as they are (KaLM's loader repeats the row's own
  negatives to fill a group, it never adds other texts). An example without any negative is
  dropped (``no_negatives``): KaLM's loader divides by ``len(neg)`` (and its public code raised
  KeyError on a record without negatives). ``--num-negatives 0`` writes ``neg: []`` everywhere
  (train with ``--train_group_size 1``).
- Teacher scores are not written: KaLM's loader does not read them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kalm_data.export.target import (
    Drop,
    JsonlListTarget,
    TaskPlan,
    cap_negatives,
)

if TYPE_CHECKING:
    from kalm_data.train.data import TrainRow

#: KaLM's query text with an instruction (their data/example.jsonl).
QUERY_TEMPLATE = "Instruct: {instruction} \n Query: {query}"
FIELDS = ("query", "pos", "neg")


def kalm_query(query: str, instruction: str | None) -> str:
    """The query as KaLM's data holds it: with its instruction when it has one."""
    return QUERY_TEMPLATE.format(instruction=instruction, query=query) if instruction else query


class KalmTarget(JsonlListTarget):
    """``--to kalm`` (see the module docstring)."""

    name = "kalm"

    def convert(self, row: TrainRow, plan: TaskPlan) -> list[dict[str, Any]] | Drop:
        n = plan.settings["negatives"]
        if (drop := self.unusable(row, n)) is not None:
            return drop
        negatives, _ = cap_negatives(row, n)
        line = {
            "query": kalm_query(row.query, row.instruction),
            "pos": list(row.positives),
            "neg": negatives,
        }
        return [line]

    def load_hint(self, output: str) -> str:
        return (
            f"torchrun -m train.run --train_data {output}/data "
            "--query_instruction_for_retrieval '' --train_group_size 8 ... (KaLM-Embedding)"
        )
