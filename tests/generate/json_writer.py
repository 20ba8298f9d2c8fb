"""A tiny chat Qwen2 taught, in about a minute on CPU, to answer generate's own prompts with
short JSON built from real sentences, so that a real engine (vLLM on CPU) writes answers that
pass validation and the kept-row path is exercised end to end. A random model only ever hits
``max_tokens`` (its strings never close).

``train_json_writer(folder, steps)`` builds ``kalm_data.train.tiny.build_tiny_chat_qwen`` on
real texts, then trains it (AdamW, loss on the answer tokens only, seed 0) on prompts made by
``kalm_data.generate.plan`` for brainstorms, sts and short-short, answered with STS-B sentences.
"""

from __future__ import annotations

import csv
import json
import random

from kalm_data.generate import plan, prompts, tasks
from kalm_data.generate.config import GenerateConfig
from kalm_data.generate.records import TaskDef

from realdata import DATA, load_pairs

DEFINITIONS = [
    "Find a sentence that means the same as a given sentence.",
    "Match a question to a short answer.",
    "Retrieve a headline that paraphrases a news sentence.",
    "Find a consumer question similar to another one.",
]


def _sentences() -> list[tuple[str, str]]:
    with open(DATA / "stsb_multi_mt" / "stsb-en-train.csv", encoding="utf-8") as f:
        return [(a, b) for a, b, _ in csv.reader(f)][:400]


def _examples(tokenizer, n: int) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, answer ids) of ``n`` prompts as generate writes them, with real answers."""
    rng = random.Random(0)
    pairs = _sentences()
    cfg = GenerateConfig(output="o", task_types=["short-short", "sts"], languages=["en"])
    out = []
    for i in range(n):
        a, b = pairs[i % len(pairs)]
        if i % 3 == 0:
            system, user = prompts.brainstorm_messages("short-short", "A nurse who hikes.", 2)
            answer: dict = {"tasks": rng.sample(DEFINITIONS, 2)}
        else:
            task_type = "sts" if i % 3 == 1 else "short-short"
            definition = tasks.fixed_task("sts") if task_type == "sts" else rng.choice(DEFINITIONS)
            task = TaskDef(
                id=f"t{i}",
                task_type=task_type,
                definition=definition,
                source_file="x",
                source_row=1,
            )
            request = plan.example_request(plan.example_job(task, cfg), cfg)
            system, user = request.system, request.user
            third = pairs[(i + 7) % len(pairs)][1]
            answer = (
                {"S1": a, "S2": b, "S3": third}
                if task_type == "sts"
                else {"input": a, "positive_document": b}
            )
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": user}
        ]
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        text = json.dumps(answer, ensure_ascii=False) + "<|im_end|>"
        out.append(
            (
                tokenizer(prompt, add_special_tokens=False)["input_ids"],
                tokenizer(text, add_special_tokens=False)["input_ids"],
            )
        )
    return out


def train_json_writer(folder, steps: int = 150, batch: int = 8) -> str:
    """See module docstring; returns the model folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kalm_data.train.tiny import build_tiny_chat_qwen

    texts = [t for r in load_pairs(300) for t in (r["query"], r["positive"])]
    texts += [a for a, _ in _sentences()]
    path = build_tiny_chat_qwen(folder, texts)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    examples = _examples(tokenizer, 300)
    torch.manual_seed(0)
    rng = random.Random(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        chosen = rng.sample(examples, batch)
        width = max(len(p) + len(a) for p, a in chosen)
        ids = torch.full((batch, width), tokenizer.pad_token_id)
        labels = torch.full((batch, width), -100)
        mask = torch.zeros((batch, width), dtype=torch.long)
        for j, (p, a) in enumerate(chosen):
            ids[j, : len(p) + len(a)] = torch.tensor(p + a)
            mask[j, : len(p) + len(a)] = 1
            labels[j, len(p) : len(p) + len(a)] = torch.tensor(a)
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(path)
    return path
