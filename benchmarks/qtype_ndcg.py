"""nDCG@10 of a model on the held-out MedQuAD set, per question type.

    python benchmarks/qtype_ndcg.py /tmp/cp/split [MODEL ...] [--max-len 128]

Contract: scores each model (default: the offline MiniLM) on ``SPLIT/medical`` (written by
``heldout_split.py``) and prints nDCG@10 per MedQuAD ``qtype`` of the query (taken from
``qa_pairs_en``), with the number of queries of each type. Shows which question types are hard,
to set against the types the filter rejects (``filter_rejections.py``).
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from heldout_split import SHARED, _key  # noqa: E402


def per_query_ndcg(model_dir: str, beir, max_len: int) -> dict[str, float]:
    """nDCG@10 of every query (binary relevance)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir, device="cpu")
    model.max_seq_length = max_len
    kw = {"batch_size": 32, "convert_to_tensor": True, "normalize_embeddings": True}
    qids, dids = list(beir.queries), list(beir.corpus)
    q = model.encode([beir.queries[i] for i in qids], show_progress_bar=False, **kw)
    d = model.encode([beir.corpus[i] for i in dids], show_progress_bar=False, **kw)
    top = (q @ d.T).topk(10, dim=1).indices.tolist()
    out = {}
    for qid, ranked in zip(qids, top, strict=True):
        rel = beir.qrels[qid]
        dcg = sum(1 / math.log2(r + 2) for r, j in enumerate(ranked) if dids[j] in rel)
        ideal = sum(1 / math.log2(r + 2) for r in range(min(10, len(rel))))
        out[qid] = dcg / ideal
    return out


def main(argv: list[str] | None = None) -> None:
    import torch

    from kalm_data.embed.teacher import default_teacher
    from kalm_data.train.evaluate import load_beir

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("split")
    p.add_argument("models", nargs="*")
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    beir = load_beir(str(Path(args.split) / "medical"), "test")
    with gzip.open(SHARED / "qa_pairs_en" / "pairs.jsonl.gz", "rt", encoding="utf-8") as f:
        qtype = {"q" + _key(r["query"]): r.get("qtype") or "-" for r in map(json.loads, f)}
    for model in args.models or [default_teacher()]:
        scores = per_query_ndcg(model, beir, args.max_len)
        by_type: dict[str, list[float]] = collections.defaultdict(list)
        for qid, s in scores.items():
            by_type[qtype[qid]].append(s)
        print(f"\n{model}: all {sum(scores.values()) / len(scores):.4f} ({len(scores)} queries)")
        for t, v in sorted(by_type.items(), key=lambda kv: -len(kv[1])):
            print(f"  {t:22s} {len(v):4d} {sum(v) / len(v):.4f}")


if __name__ == "__main__":
    main()
