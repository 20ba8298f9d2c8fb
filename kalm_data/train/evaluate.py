"""Retrieval evaluation on a BEIR-format folder: nDCG@10 and Recall@100.

Contract:
- ``load_beir(path, split)`` reads ``corpus.jsonl`` (``_id``, ``title``, ``text``; a document is
  ``title + " " + text``), ``queries.jsonl`` and ``qrels/<split>.tsv`` (header, then
  query-id, corpus-id, score; score > 0 = relevant). Only judged queries are kept.
  ``corpus_size > 0`` keeps every judged document plus random others up to that size (a
  cheaper, easier proxy for evaluation during training).
- ``retrieval_metrics`` ranks the corpus for each query by cosine score, ties broken by corpus
  id, with binary relevance, exactly as sentence-transformers' ``InformationRetrievalEvaluator``
  does (tests/train/test_export_eval.py checks the two agree).
- ``evaluate_sentence_transformer(model_dir, beir)`` is ``kalm-data eval``: the model's
  ``encode_query`` (which applies its stored ``query`` prompt) and ``encode_document``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass

log = logging.getLogger(__name__)

NDCG_K = 10
RECALL_K = 100


@dataclass
class BeirSet:
    queries: dict[str, str]
    corpus: dict[str, str]
    qrels: dict[str, set[str]]


def _read_jsonl(url: str) -> list[dict]:
    import fsspec

    with fsspec.open(url, "rt", encoding="utf-8", compression="infer") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_qrels(url: str) -> dict[str, set[str]]:
    """query id -> relevant corpus ids (score > 0)."""
    import fsspec

    qrels: dict[str, set[str]] = {}
    with fsspec.open(url, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            parts = line.rstrip("\n").split("\t")
            if i == 0 and not parts[-1].lstrip("-").isdigit():
                continue  # header
            if len(parts) >= 3 and int(parts[2]) > 0:
                qrels.setdefault(parts[0], set()).add(parts[1])
    return qrels


def load_beir(path: str, split: str = "test", corpus_size: int = 0, seed: int = 0) -> BeirSet:
    """The judged queries, the corpus (optionally subsampled) and the qrels of ``split``."""
    import random

    root = path.rstrip("/")
    qrels = read_qrels(f"{root}/qrels/{split}.tsv")
    corpus = {
        str(d["_id"]): f"{d.get('title') or ''} {d.get('text') or ''}".strip()
        for d in _read_jsonl(f"{root}/corpus.jsonl")
    }
    queries = {
        str(q["_id"]): q["text"] for q in _read_jsonl(f"{root}/queries.jsonl") if q["_id"] in qrels
    }
    qrels = {q: {d for d in docs if d in corpus} for q, docs in qrels.items() if q in queries}
    qrels = {q: docs for q, docs in qrels.items() if docs}
    queries = {q: t for q, t in queries.items() if q in qrels}
    if corpus_size and corpus_size < len(corpus):
        judged = set().union(*qrels.values())
        others = sorted(set(corpus) - judged)
        random.Random(seed).shuffle(others)
        keep = judged | set(others[: max(0, corpus_size - len(judged))])
        corpus = {d: t for d, t in corpus.items() if d in keep}
    log.info("%s (%s): %d queries, %d documents", path, split, len(queries), len(corpus))
    return BeirSet(queries, corpus, qrels)


def _ranking(scores, k: int, corpus_ids: list[str]) -> list[list[str]]:
    """Top ``k`` corpus ids per query, by (-score, corpus id) like the ST evaluator."""
    import torch

    k = min(k, scores.shape[1])
    cut = torch.topk(scores, k, dim=1).values[:, -1:]  # (queries, 1) k-th best score
    out = []
    for row, threshold in zip(scores, cut, strict=True):
        idx = torch.nonzero(row >= threshold).squeeze(1).tolist()  # ties at the cut included
        idx.sort(key=lambda j: (-float(row[j]), corpus_ids[j]))
        out.append([corpus_ids[j] for j in idx[:k]])
    return out


def retrieval_metrics(q_emb, c_emb, query_ids, corpus_ids, qrels) -> dict[str, float]:
    """Mean nDCG@10 and Recall@100 (binary relevance) from L2-normalised embeddings."""
    import torch

    q = torch.nn.functional.normalize(torch.as_tensor(q_emb).float(), dim=-1)
    c = torch.nn.functional.normalize(torch.as_tensor(c_emb).float(), dim=-1)
    ndcg, recall = [], []
    for start in range(0, len(query_ids), 256):
        scores = q[start : start + 256] @ c.T  # (queries, corpus)
        for qid, ranked in zip(
            query_ids[start : start + 256], _ranking(scores, RECALL_K, corpus_ids), strict=True
        ):
            relevant = qrels[qid]
            gains = [1.0 if d in relevant else 0.0 for d in ranked[:NDCG_K]]
            dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
            ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), NDCG_K)))
            ndcg.append(dcg / ideal)
            recall.append(len(relevant.intersection(ranked)) / len(relevant))
    return {
        f"ndcg@{NDCG_K}": sum(ndcg) / len(ndcg),
        f"recall@{RECALL_K}": sum(recall) / len(recall),
    }


def evaluate(encode_queries, encode_documents, beir: BeirSet) -> dict[str, float]:
    """Metrics with the given encoders (each: list of texts -> (n, dim) embeddings)."""
    query_ids, corpus_ids = list(beir.queries), list(beir.corpus)
    q = encode_queries([beir.queries[i] for i in query_ids])
    c = encode_documents([beir.corpus[i] for i in corpus_ids])
    return retrieval_metrics(q, c, query_ids, corpus_ids, beir.qrels)


def evaluate_sentence_transformer(
    model_dir: str,
    beir: BeirSet,
    batch_size: int = 64,
    device: str | None = None,
    query_prompt: str | None = None,
) -> dict[str, float]:
    """``kalm-data eval``: load with ``SentenceTransformer`` and score ``beir``.

    Queries get the model's stored ``query`` prompt, or ``query_prompt`` when given.
    """
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir, device=device)
    kwargs = {"batch_size": batch_size, "convert_to_tensor": True, "show_progress_bar": False}
    return evaluate(
        lambda texts: model.encode_query(texts, prompt=query_prompt, **kwargs).cpu(),
        lambda texts: model.encode_document(texts, **kwargs).cpu(),
        beir,
    )
