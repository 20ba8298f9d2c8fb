"""Export target ``sentence-transformers``: one dataset folder per task for
``SentenceTransformerTrainer`` (sentence-transformers 6.2) and ``MultipleNegativesRankingLoss``.

Layout: ``OUT/data/<task-folder>/train.parquet`` (``train.jsonl`` with ``--format jsonl``) with
the string columns ``anchor``, ``positive``, ``negative_1`` .. ``negative_n`` in this order
(MNRL reads columns by position: anchor, positive, then hard negatives), and ``OUT/prompts.json``.

Decisions (the contract):

- **Negatives.** A task's columns are fixed, so every row has exactly n negatives: n is
  ``--num-negatives`` when given, else the fewest any example of the task has (nothing is
  dropped; n may then be 0 and the task is plain pairs). An example with fewer than n is
  dropped and counted as ``few_negatives``, never padded. One with more keeps its first n
  (curate's order: given negatives first, then mined ones nearest first).
- **Multi-positive examples** become one row per positive, with the same anchor and negatives:
  MNRL takes one positive per row. The rows added are counted. Train with
  ``batch_sampler=BatchSamplers.NO_DUPLICATES`` so two rows of one query never share a batch
  (each one's positive would be the other's in-batch false negative).
- **Prompts.** sentence-transformers 6.2 has no per-row prompt: its collator encodes every
  column that is not a label as an input text, so a ``prompt`` column would be trained on as a
  text. It has per-dataset, per-column prompts instead (``prompts=`` of
  ``SentenceTransformerTrainingArguments``: dataset name -> column -> prompt). So a task whose
  examples share one instruction gets ``prompts.json[task] = {"anchor": PROMPT}`` with PROMPT
  the instruction in kalm-data train's template (``Instruct: {instruction}\\nQuery: ``), and its
  anchors stay plain queries. A task whose examples carry different instructions (synthetic
  data has one per example) cannot be said that way: its anchors carry their own prompt
  inline, and export.json records ``"prompt": "inline"`` for it. Positives and negatives never
  get a prompt. A task without instructions gets none.

Load (all tasks; the task names are the dataset names the prompts are keyed by)::

    import json
    from datasets import DatasetDict, load_dataset

    record = json.load(open("OUT/export.json"))
    train = DatasetDict({task: load_dataset(f"OUT/{t['dir']}", split="train")
                         for task, t in record["tasks"].items()})
    args = SentenceTransformerTrainingArguments(
        output_dir="model", prompts=json.load(open("OUT/prompts.json")) or None,
        batch_sampler=BatchSamplers.NO_DUPLICATES)

One task alone: ``load_dataset("OUT/data/<task-folder>", split="train")`` with
``prompts=prompts_json.get(task)`` (a plain ``Dataset`` takes the column -> prompt mapping).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from kalm_data.export.target import (
    NO_QUERY_OR_POSITIVE,
    Drop,
    ExportOptions,
    RowSource,
    TaskPlan,
    cap_negatives,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from kalm_data.export.source import SourceTask
    from kalm_data.train.data import TrainRow

FEW_NEGATIVES = "few_negatives"
PROMPTS_FILE = "prompts.json"
#: The query prefix of ``kalm-data train`` (``TrainConfig.instruction_template``'s default).
PROMPT_TEMPLATE = "Instruct: {instruction}\nQuery: "
#: ``info["prompt"]`` of a task whose examples carry different instructions.
INLINE = "inline"


def columns(n: int) -> list[str]:
    """The column names of a task with ``n`` negatives, in MNRL's order."""
    return ["anchor", "positive", *(f"negative_{i}" for i in range(1, n + 1))]


def arrow_schema(n: int) -> pa.Schema:
    """The explicit Parquet schema: every column a non-null string."""
    import pyarrow as pa

    return pa.schema([pa.field(c, pa.string(), nullable=False) for c in columns(n)])


def prompt_for(instruction: str | None) -> str:
    """The anchor prompt of ``instruction`` ("" without one)."""
    return PROMPT_TEMPLATE.format(instruction=instruction) if instruction else ""


def _scan(rows: RowSource) -> tuple[dict[int, int], set[str | None]]:
    """(usable examples per number of negatives, the distinct instructions seen: at most two,
    as two already means "not shared")."""
    by_negatives: Counter[int] = Counter()
    instructions: set[str | None] = set()
    for row in rows():
        if row is None:
            continue
        by_negatives[len(row.negatives)] += 1
        if len(instructions) < 2:
            instructions.add(row.instruction)
    return dict(sorted(by_negatives.items())), instructions


class SentenceTransformersTarget:
    """``--to sentence-transformers`` (see the module docstring)."""

    name = "sentence-transformers"
    file_formats = ("parquet", "jsonl")
    extra_names: tuple[str, ...] = (PROMPTS_FILE,)

    def plan(self, task: SourceTask, rows: RowSource, options: ExportOptions) -> TaskPlan:
        by_negatives, instructions = _scan(rows)
        fewest = min(by_negatives, default=0)
        n = options.num_negatives if options.num_negatives is not None else fewest
        shared = next(iter(instructions)) if len(instructions) == 1 else None
        inline = len(instructions) > 1
        folder = f"data/{task.folder}"
        info: dict[str, Any] = {
            "dir": folder,
            "columns": columns(n),
            "negatives": n,
            "examples_by_negatives": {str(k): v for k, v in by_negatives.items()},
            "prompt": INLINE if inline else prompt_for(shared) or None,
        }
        return TaskPlan(
            path=f"{folder}/train.{options.file_format}",
            schema=arrow_schema(n),
            info=info,
            settings={"negatives": n, "inline": inline},
        )

    def convert(self, row: TrainRow, plan: TaskPlan) -> list[dict[str, Any]] | Drop:
        n = plan.settings["negatives"]
        if not row.positives:
            return Drop(NO_QUERY_OR_POSITIVE)
        if len(row.negatives) < n:
            return Drop(FEW_NEGATIVES)
        anchor = prompt_for(row.instruction) + row.query if plan.settings["inline"] else row.query
        negatives, _ = cap_negatives(row, n)
        tail = {f"negative_{i}": text for i, text in enumerate(negatives, start=1)}
        return [{"anchor": anchor, "positive": p, **tail} for p in row.positives]

    def extra_files(self, plans: dict[str, TaskPlan]) -> dict[str, Any]:
        prompts = {
            task: {"anchor": plan.info["prompt"]}
            for task, plan in sorted(plans.items())
            if plan.info["prompt"] not in (None, INLINE)
        }
        return {PROMPTS_FILE: prompts}

    def load_hint(self, output: str) -> str:
        return (
            f"train = DatasetDict({{task: load_dataset(f'{output}/{{t[\"dir\"]}}', "
            f"split='train') for task, t in json.load(open('{output}/export.json'))"
            f"['tasks'].items()}}); prompts=json.load(open('{output}/{PROMPTS_FILE}')) or None"
        )
