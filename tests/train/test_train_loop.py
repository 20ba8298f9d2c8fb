"""The training loop on a tiny random Qwen2 and real pairs: learning, exact resume, soup."""

from __future__ import annotations

import json
import math

import pytest
import torch
from train_helpers import assert_close

from kalm_data.train import checkpoint, loop
from kalm_data.train.config import TrainConfig

from realdata import DATA

SCIFACT = str(DATA / "scifact")


def config(tiny_qwen, shards, output, **overrides) -> TrainConfig:
    settings = dict(
        data=[str(shards)],
        model=tiny_qwen,
        output=str(output),
        batch_size=8,
        num_negatives=2,
        query_max_len=32,
        passage_max_len=64,
        temperature=0.05,
        lr=2e-3,
        warmup_ratio=0.1,
        max_steps=6,
        homogeneous_ratio=0.5,
        log_every=2,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


def losses(output) -> list[float]:
    lines = (output / "train_log.jsonl").read_text().splitlines()
    return [json.loads(x)["loss"] for x in lines]


def weights(output, step) -> dict:
    return torch.load(checkpoint.folder_for(str(output), step) / "model.pt", weights_only=True)


def test_get_lr_warms_up_then_decays():
    cfg = TrainConfig(lr=1.0, warmup_ratio=0.1, min_lr_ratio=0.1)
    lrs = [loop.get_lr(s, 100, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))
    assert lrs[-1] == pytest.approx(0.1 + 0.9 / 90)
    cosine = TrainConfig(lr=1.0, warmup_ratio=0.0, decay="cosine")
    assert loop.get_lr(50, 100, cosine) == pytest.approx(0.5)


def test_loss_falls_below_chance(tiny_qwen, shards, tmp_path):
    cfg = config(tiny_qwen, shards, tmp_path, max_steps=30, homogeneous_ratio=0.0, resume=False)
    summary = loop.train(cfg)
    seen = losses(tmp_path)
    assert len(seen) == 30 and summary["loss"] == pytest.approx(seen[-1])
    # 8 queries x 3 passages: a model that cannot tell passages apart scores log(24)
    assert sum(seen[-5:]) / 5 < min(math.log(24), sum(seen[:5]) / 5) - 0.2


def test_resumed_run_matches_an_uninterrupted_one(tiny_qwen, shards, tmp_path, monkeypatch):
    settings = dict(max_steps=6, save_every=2, keep_checkpoints=5)
    straight = tmp_path / "straight"
    loop.train(config(tiny_qwen, shards, straight, **settings))

    resumed = tmp_path / "resumed"
    real_make_batch, calls = loop.make_batch, []

    def crash_on_fifth_batch(*args):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt  # killed during step 5: checkpoints 2 and 4 exist
        return real_make_batch(*args)

    monkeypatch.setattr(loop, "make_batch", crash_on_fifth_batch)
    with pytest.raises(KeyboardInterrupt):
        loop.train(config(tiny_qwen, shards, resumed, **settings))
    assert checkpoint.latest(str(resumed)).name == "step-00000004"
    monkeypatch.setattr(loop, "make_batch", real_make_batch)
    loop.train(config(tiny_qwen, shards, resumed, **settings))

    assert losses(resumed) == losses(straight)  # bit-identical, steps 1..6
    a, b = weights(straight, 6), weights(resumed, 6)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_soup_averages_the_chosen_checkpoints(tiny_qwen, shards, tmp_path):
    cfg = config(tiny_qwen, shards, tmp_path, save_every=2, keep_checkpoints=1, soup_steps=[2, 4])
    loop.train(cfg)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "step-00000002",
        "step-00000004",
        "step-00000006",
    ]  # the soup's checkpoints survive pruning
    from safetensors.torch import load_file

    exported = load_file(tmp_path / "model.safetensors")
    w2, w4 = weights(tmp_path, 2), weights(tmp_path, 4)
    name = "model.layers.0.mlp.up_proj.weight"  # the Encoder's name for the Qwen2 weight
    soup = exported[name.removeprefix("model.")]
    assert_close(soup, (w2[name] + w4[name]) / 2, name=name)
    assert not torch.allclose(soup, weights(tmp_path, 6)[name])


def test_cached_gradient_checkpointed_bidirectional_run_with_evaluation(
    tiny_qwen, shards, tmp_path
):
    cfg = config(
        tiny_qwen,
        shards,
        tmp_path,
        max_steps=4,
        cached=True,
        mini_batch_size=5,
        gradient_checkpointing=True,
        bidirectional=True,
        pooling="lasttoken",
        focal_gamma=0.5,
        distill_weight=0.2,
        eval_beir=SCIFACT,
        eval_every=2,
        eval_corpus_size=200,
        eval_batch_size=32,
    )
    summary = loop.train(cfg)
    evals = [json.loads(x) for x in (tmp_path / "eval.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [2, 4]
    assert 0.0 <= summary["metrics"]["ndcg@10"] <= 1.0
    assert summary["metrics"] == {k: v for k, v in evals[-1].items() if k != "step"}
    assert all(math.isfinite(x) for x in losses(tmp_path))
    assert json.loads((tmp_path / "config.json").read_text())["is_causal"] is False


@pytest.mark.slow
def test_two_ddp_processes_match_one_process(real_pairs, shards, tmp_path):
    """torchrun, 2 CPU processes (gloo) x 4 queries == 1 process x 8 queries, step for step.

    Needs a model without dropout (each process draws its own masks); passages are gathered
    across processes and the GradCache path defers DDP's all-reduce to its last mini-batch.
    """
    import os
    import subprocess
    import sys

    from kalm_data.train.tiny import build_tiny_qwen

    texts = [t for rows in real_pairs.values() for r in rows for t in (r["query"], r["positive"])]
    model = build_tiny_qwen(tmp_path / "model", texts, attention_dropout=0.0)
    common = ["train", "--data", str(shards), "--model", model, "--num-negatives", "2",
              "--query-max-len", "32", "--passage-max-len", "64", "--max-steps", "3",
              "--temperature", "0.05", "--lr", "1e-3", "--threads", "1",
              "--homogeneous-ratio", "0.5", "--cached", "--mini-batch-size", "5",
              "--distill-weight", "0.3"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    subprocess.run(
        [*launcher, "-m", "kalm_data.cli", *common, "--output", str(tmp_path / "ddp"),
         "--batch-size", "4"],
        env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "kalm_data.cli", *common, "--output", str(tmp_path / "one"),
         "--batch-size", "8"],
        env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    assert losses(tmp_path / "ddp") == pytest.approx(losses(tmp_path / "one"), rel=1e-5)


def test_lora_run_exports_merged_weights(tiny_qwen, shards, tmp_path):
    pytest.importorskip("peft")
    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer

    loop.train(config(tiny_qwen, shards, tmp_path, max_steps=3, lora_rank=4))
    exported = load_file(tmp_path / "model.safetensors")
    original = load_file(f"{tiny_qwen}/model.safetensors")
    assert exported.keys() == original.keys()  # adapters folded in, no lora_ tensors left
    name = "layers.0.self_attn.q_proj.weight"
    assert not torch.allclose(exported[name], original[name])  # the update reached the weights
    assert torch.equal(exported["embed_tokens.weight"], original["embed_tokens.weight"])
    assert SentenceTransformer(str(tmp_path), device="cpu").encode(["a query"]).shape == (1, 64)
