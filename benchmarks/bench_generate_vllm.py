"""Pipeline overhead of VLLMBackend: the same prompts through raw ``vllm.LLM.chat`` and ours.

    python benchmarks/bench_generate_vllm.py                  # 256 prompts, tiny Qwen2, CPU
    python benchmarks/bench_generate_vllm.py --n 64 --max-tokens 64
    python benchmarks/bench_generate_vllm.py --model Qwen/Qwen2.5-0.5B-Instruct  # a real model

Prompts are real queries (../shared/data/qa_pairs_en), each asking for a JSON answer under a
small schema. Both sides use one engine and identical ``SamplingParams`` (built by the
backend's own ``sampling_params``), so they decode the same tokens: (a) one ``LLM.chat`` call
over all prompts; (b) ``VLLMBackend.generate`` in batches of ``--batch-size``, responses
mapped to ``LLMResponse``. Each side runs ``--repeats`` times (alternating, after a warm-up);
the best run counts. Prints generated tokens/s of both and ``ours / raw`` (goal >= 0.9).
Without ``--model`` a tiny random Qwen2 (tokenizer trained on the same data) is built.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "qa_pairs_en" / "pairs.jsonl.gz"
SCHEMA = {
    "type": "object",
    "properties": {
        "user_query": {"type": "string", "maxLength": 200},
        "positive_document": {"type": "string", "maxLength": 400},
    },
    "required": ["user_query", "positive_document"],
}


def load(path: str, limit: int) -> list[dict]:
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            rows.append(json.loads(line))
            if len(rows) >= limit:
                break
    return rows


def requests_of(rows: list[dict], max_tokens: int) -> list:
    from kalm_data.generate.llm import LLMRequest, Sampling

    return [
        LLMRequest(
            id=f"q{i}",
            system="Write a search query and a passage that answers it, as JSON.",
            user=row["query"],
            json_schema=SCHEMA,
            sampling=Sampling(max_tokens=max_tokens, seed=i),
        )
        for i, row in enumerate(rows)
    ]


def raw(llm, requests: list) -> tuple[float, int]:
    """(seconds, generated tokens) of one ``LLM.chat`` call over every request."""
    from kalm_data.generate.backends.vllm_local import sampling_params

    start = time.perf_counter()
    params = [sampling_params(r) for r in requests]
    outputs = llm.chat([r.messages() for r in requests], params, use_tqdm=False)
    seconds = time.perf_counter() - start
    return seconds, sum(len(o.outputs[0].token_ids) for o in outputs)


def ours(backend, requests: list, batch_size: int) -> tuple[float, int]:
    """(seconds, generated tokens) of ``VLLMBackend.generate`` in batches."""
    start = time.perf_counter()
    responses = []
    for i in range(0, len(requests), batch_size):
        responses += backend.generate(requests[i : i + batch_size])
    seconds = time.perf_counter() - start
    errors = [r.error for r in responses if r.finish_reason == "error"]
    if errors:
        sys.exit(f"{len(errors)} requests failed, first: {errors[0]}")
    return seconds, sum(r.completion_tokens for r in responses)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DEFAULT))
    parser.add_argument("--model", help="a hub id or folder; default: the tiny random Qwen2")
    parser.add_argument("--n", type=int, default=256, help="prompts")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64, help="VLLMBackend batch size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.1)
    args = parser.parse_args(argv)

    from kalm_data.generate.backends.vllm_local import VLLMBackend

    rows = load(args.data, args.n)
    requests = requests_of(rows, args.max_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            from kalm_data.train.tiny import build_tiny_chat_qwen

            texts = [t for row in rows for t in (row["query"], row["positive"])]
            model = build_tiny_chat_qwen(os.path.join(tmp, "tiny-chat-qwen"), texts)
        backend = VLLMBackend(
            model,
            gpu_memory_utilization=args.gpu_memory_utilization,
            max_model_len=1024,
            engine_options={"enforce_eager": True},
        )
        backend.setup()
        ours(backend, requests[: args.batch_size], args.batch_size)  # warm-up
        runs: dict[str, list[tuple[float, int]]] = {"raw": [], "ours": []}
        for _ in range(args.repeats):
            runs["raw"].append(raw(backend.engine, requests))
            runs["ours"].append(ours(backend, requests, args.batch_size))
        backend.close()

    print(
        f"model {backend.name}, {len(requests)} prompts, max_tokens {args.max_tokens}, "
        f"batch {args.batch_size}, best of {args.repeats}"
    )
    rates = {}
    for side, results in runs.items():
        seconds, tokens = min(results)
        rates[side] = tokens / seconds
        print(f"{side:5s} {tokens:7d} tokens  {seconds:7.2f} s  {rates[side]:8.1f} tokens/s")
    print(f"ours/raw {rates['ours'] / rates['raw']:.3f}  (goal >= 0.9)")


if __name__ == "__main__":
    main()
