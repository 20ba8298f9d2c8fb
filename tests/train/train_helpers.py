"""Helpers of the training tests: task shards of real pairs.

``shard_rows`` + ``write_shards`` give ``DIR/data/<task>/part-00000-of-00001.parquet`` from real
qa_pairs_en rows (task = the row's ``source``) through ``to_table(TrainingExample, ...)``.
Negatives are other rows' positives of the same task; their "teacher" scores are word-overlap
(Jaccard) scores, a cheap stand-in with the right shape (curate writes the MiniLM teacher's).

``assert_close`` compares float tensors the scale-aware way: float32 summation order moves
elements near zero by more than any element-wise ``atol`` that still means something.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import torch

from kalm_data.arrow_schema import to_table
from kalm_data.records import TrainingExample
from kalm_data.writers.names import folder_name

#: (source, rows): unequal task sizes, so "drawn in proportion to size" is visible.
SOURCES = (("medquad/1_CancerGov_QA", 60), ("disfl-qa/dev", 40), ("medquad/2_GARD_QA", 20))
NEGATIVES = 3
#: Relative tolerance of ``assert_close``: float32 reordering gives ~1e-6 on these models; a
#: gradient scaled by 1.01 or missing a mini-batch's share is off by 1e-2 or more.
RTOL = 1e-4
#: Absolute floor of ``assert_close``, for reference tensors that are (near) all zero.
TINY = 1e-12


def _words(text: str) -> set[str]:
    return set(text.lower().split())


def jaccard(a: str, b: str) -> float:
    wa, wb = _words(a), _words(b)
    return len(wa & wb) / max(1, len(wa | wb))


def shard_rows(pairs: list[dict], negatives: int = NEGATIVES) -> list[dict]:
    """TrainingExample dicts: each pair's negatives are the next rows' positives (same task)."""
    out = []
    for i, pair in enumerate(pairs):
        others = [pairs[(i + k) % len(pairs)]["positive"] for k in range(1, len(pairs))]
        negs = [t for t in others if t != pair["positive"]][:negatives]
        out.append(
            TrainingExample(
                id=pair["id"],
                task=pair["source"],
                task_type="retrieval",
                query=pair["query"],
                positives=[pair["positive"]],
                negatives=negs,
                positive_scores=[jaccard(pair["query"], pair["positive"])],
                negative_scores=[jaccard(pair["query"], t) for t in negs],
                negative_ranks=list(range(len(negs))),
                positive_rank=0,
                teacher="jaccard",
                source_file="pairs.jsonl.gz",
                source_rows=[i],
                source_ids=[pair["id"]],
            ).model_dump()
        )
    return out


def write_shards(root, rows_by_task: dict[str, list[dict]]):
    """Write each task's rows as one TrainingExample part; returns ``root``."""
    for task, rows in rows_by_task.items():
        folder = root / "data" / folder_name(task)
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(to_table(TrainingExample, rows), folder / "part-00000-of-00001.parquet")
    return root


def _norms(got: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    """(||got - ref||, ||ref||): Frobenius norms in float64, outside autograd."""
    got, ref = got.detach().double(), ref.detach().double()
    return float((got - ref).norm()), float(ref.norm())


def relative_error(got: torch.Tensor, ref: torch.Tensor) -> float:
    """``||got - ref|| / ||ref||`` (Frobenius norms in float64); inf if only ``ref`` is zero."""
    diff, scale = _norms(got, ref)
    return diff / scale if scale else (0.0 if diff == 0 else float("inf"))


def assert_close(
    got: torch.Tensor, ref: torch.Tensor, rtol: float = RTOL, atol: float = TINY, name: str = ""
) -> None:
    """Assert equal shapes and ``||got - ref|| <= rtol * ||ref|| + atol`` for the whole tensor.

    Scale-aware, unlike ``torch.allclose``: the error budget is the tensor's norm, so summation
    order noise on near-zero elements passes while a scaled or incomplete tensor fails.
    """
    assert got.shape == ref.shape, f"{name}: shape {tuple(got.shape)} != {tuple(ref.shape)}"
    diff, scale = _norms(got, ref)
    assert diff <= rtol * scale + atol, (
        f"{name}: ||got - ref|| = {diff:.3g} > {rtol:g} * ||ref|| ({scale:.3g}) + {atol:g}"
        f" (relative error {relative_error(got, ref):.3g})"
    )
