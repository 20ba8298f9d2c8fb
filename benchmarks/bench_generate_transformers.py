"""TransformersBackend.generate vs raw ``model.generate``: generated tokens per second.

    python benchmarks/bench_generate_transformers.py                 # tiny chat Qwen2, 32 prompts
    python benchmarks/bench_generate_transformers.py --model PATH    # any local chat model

The same N prompts (PersonaHub personas from ../shared/data asking for a query/passage pair as
JSON), the same JSON Schema compiled to the same xgrammar grammar, the same sampling
(temperature 0.8, top-p 0.95, max_new_tokens) and the same batches (the backend's own grouping:
batch_size prompts of similar length, left-padded). Raw is what a user writes by hand:
``model.generate(do_sample=True, ...)`` with ``xgrammar.contrib.hf.LogitsProcessor``; ours is
``TransformersBackend.generate(requests)`` (chat template, per-request seeded sampling, grammar
mask, decoding, token counting). Without ``--model`` the tiny random chat Qwen2 is built from real
texts; its forward pass is so cheap that the per-step overhead of both paths is what is measured.
A third contender, ``pipeline``, sends the same requests through generate's own Beam step
(``AskLLM``: RunInference, the ModelHandler, batching, usage counting) on Beam's local runner,
loading the model inside as a real run does (its load and the pipeline start-up are counted
against it: use a larger ``-n`` to see them amortised). Each contender runs ``--repeats`` times
after a warm-up, the two interleaved (the load of a
shared machine drifts alike); the best run counts. Prints generated tokens/s of each and the
ratios ours/raw and pipeline/raw (goal: >= 0.9).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel, Field

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SYSTEM = "You write training data for a search engine. Answer with JSON only."


class Pair(BaseModel):
    """The answer shape: a query and a passage that answers it."""

    user_query: str = Field(max_length=100)
    positive_document: str = Field(max_length=300)


def personas(n: int) -> list[str]:
    with (DATA / "personas" / "personas.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line)["persona"] for _, line in zip(range(n), f, strict=False)]


def tiny_model(folder: Path) -> str:
    """The tiny chat Qwen2, tokenizer trained on real personas and QA pairs."""
    from kalm_data.train.tiny import build_tiny_chat_qwen

    with gzip.open(DATA / "qa_pairs_en" / "pairs.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for _, line in zip(range(300), f, strict=False)]
    texts = personas(300) + [t for r in rows for t in (r["query"], r["positive"])]
    return build_tiny_chat_qwen(folder, texts)


def make_requests(n: int, max_tokens: int):
    from kalm_data.generate.llm import LLMRequest, Sampling

    return [
        LLMRequest(
            id=f"p{i}",
            system=SYSTEM,
            user=f"Persona: {persona}\nWrite a query this persona would search for "
            "and a passage that answers it.",
            json_schema=Pair.model_json_schema(),
            sampling=Sampling(temperature=0.8, top_p=0.95, max_tokens=max_tokens, seed=i),
        )
        for i, persona in enumerate(personas(n))
    ]


def run_raw(backend, requests, batch_size: int) -> int:
    """Raw ``model.generate`` with xgrammar's HF processor; returns generated tokens."""
    import torch
    from xgrammar.contrib.hf import LogitsProcessor

    from kalm_data.generate.backends.hf import _batches, json_schema_grammar

    tokenizer, model = backend._tokenizer, backend._model
    grammar = json_schema_grammar(backend._compiler, requests[0].json_schema)
    eos = set(backend._eos_ids)
    prepared = [backend._prepare(i, r) for i, r in enumerate(requests)]  # only to batch alike
    total = 0
    for batch in _batches(prepared, batch_size):
        texts = [
            tokenizer.apply_chat_template(
                item.request.messages(), add_generation_prompt=True, tokenize=False
            )
            for item in batch
        ]
        tokenizer.padding_side = "left"
        enc = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
        s = batch[0].request.sampling
        with torch.inference_mode():
            out = model.generate(
                **enc,
                do_sample=True,
                temperature=s.temperature,
                top_p=s.top_p,
                top_k=0,
                max_new_tokens=s.max_tokens,
                pad_token_id=backend._pad_id,
                logits_processor=[LogitsProcessor(grammar)],
            )
        for row in out[:, enc["input_ids"].shape[1] :].tolist():
            end = next((i for i, t in enumerate(row) if t in eos), None)
            total += len(row) if end is None else end + 1
    return total


def run_ours(backend, requests) -> int:
    responses = backend.generate(requests)
    assert all(r.finish_reason != "error" for r in responses), responses
    return sum(r.completion_tokens for r in responses)


def run_pipeline(model: str, requests, batch_size: int, staging: str) -> int:
    """The requests through generate's own Beam step (``AskLLM``: ``RunInference`` with the
    backend's ``ModelHandler``, batching, usage counting) on Beam's local runner, one worker,
    no cache; the model is loaded inside, as a real run does. Returns generated tokens."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from kalm_data.generate.backends import BackendSpec
    from kalm_data.generate.pipeline import LLM_COUNTS, AskLLM
    from kalm_data.harness.run import LOCAL_RUNNER

    spec = BackendSpec(kind="transformers", model=model, batch_size=batch_size)
    options = PipelineOptions([f"--runner={LOCAL_RUNNER}", "--direct_num_workers=1"])
    with beam.Pipeline(options=options) as p:
        _ = p | beam.Create([(r.id, r) for r in requests]) | AskLLM(spec, None, staging, "bench")
    with open(f"{staging}/{LLM_COUNTS.format(stage='bench')}") as f:
        usage = json.load(f)
    assert usage["errors"] == 0, usage
    return usage["completion_tokens"]


def rates(contenders: dict, repeats: int) -> dict[str, tuple[float, int]]:
    """Best (tokens/s, tokens) of each contender, runs interleaved (load drifts alike)."""
    runs: dict[str, list[tuple[float, int]]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            start = time.perf_counter()
            tokens = fn()
            runs[name].append((tokens / (time.perf_counter() - start), tokens))
    return {name: max(found) for name, found in runs.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="local chat model folder (default: tiny chat Qwen2)")
    parser.add_argument("-n", type=int, default=32, help="prompts")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="torch threads (default: all cores; the Beam step runs in a thread of its own, "
        "which torch's thread setting does not reach, so fewer makes the comparison unfair)",
    )
    args = parser.parse_args(argv)

    import torch

    from kalm_data.generate.backends.hf import TransformersBackend

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or tiny_model(Path(tmp) / "tiny-chat-qwen")
        backend = TransformersBackend(model, batch_size=args.batch_size)
        backend.setup()
        requests = make_requests(args.n, args.max_tokens)
        warm = requests[: args.batch_size]
        run_raw(backend, warm, args.batch_size)
        run_ours(backend, warm)
        staging = str(Path(tmp) / "staging")
        found = rates(
            {
                "raw": lambda: run_raw(backend, requests, args.batch_size),
                "ours": lambda: run_ours(backend, requests),
                "pipeline": lambda: run_pipeline(model, requests, args.batch_size, staging),
            },
            args.repeats,
        )
    (raw_tps, raw_tokens), (ours_tps, ours_tokens) = found["raw"], found["ours"]
    print(
        f"model {backend.name}, {args.n} prompts, batch {args.batch_size}, "
        f"max_tokens {args.max_tokens}, torch threads {args.threads}, best of {args.repeats}"
    )
    print(
        f"raw model.generate + xgrammar : {raw_tps:8.1f} generated tokens/s ({raw_tokens} tokens)"
    )
    print(
        f"TransformersBackend.generate  : {ours_tps:8.1f} generated tokens/s ({ours_tokens} tokens)"
    )
    print(f"ratio ours/raw                : {ours_tps / raw_tps:8.3f}  (goal >= 0.9)")
    pipe_tps, pipe_tokens = found["pipeline"]
    print(
        f"generate's Beam step (AskLLM) : {pipe_tps:8.1f} generated tokens/s ({pipe_tokens} "
        "tokens; model load and pipeline start-up included)"
    )
    print(f"ratio pipeline/raw            : {pipe_tps / raw_tps:8.3f}  (goal >= 0.9)")


if __name__ == "__main__":
    main()
