"""The training loop: read it top to bottom.

    kalm-data train --data curated/ --model Qwen/Qwen2-0.5B --output model/
    torchrun --nproc_per_node 8 -m kalm_data.cli train --data curated/ --output model/ --bf16

Order (nanoGPT's, but data first so bad data fails fast): data -> runtime -> model -> loss ->
optimizer -> resume -> loop, where each step is: learning rate, evaluation, batch,
forward/backward, clip, optimizer step, log, checkpoint. After the loop: final evaluation,
optional model soup, export in sentence-transformers format.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import torch

from kalm_data.train import checkpoint
from kalm_data.train.batch import make_batch, query_prefix
from kalm_data.train.config import TrainConfig
from kalm_data.train.data import load_rows
from kalm_data.train.distributed import Runtime, is_distributed, setup, teardown
from kalm_data.train.encoder import autocast, load_encoder
from kalm_data.train.evaluate import evaluate, load_beir
from kalm_data.train.export import export
from kalm_data.train.losses import CachedLoss, Targets, build_objective
from kalm_data.train.sampler import SemiHomogeneousBatchSampler

log = logging.getLogger(__name__)


def get_lr(step: int, max_steps: int, cfg: TrainConfig) -> float:
    """Learning rate at ``step`` (0-based)."""
    warmup = int(cfg.warmup_ratio * max_steps)
    # 1) linear warmup to the peak lr
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    if cfg.decay == "constant":
        return cfg.lr
    # 2) then decay to min_lr over the remaining steps (linear, KaLM; or cosine)
    progress = (step - warmup) / max(1, max_steps - warmup)
    coeff = 1.0 - progress if cfg.decay == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
    min_lr = cfg.lr * cfg.min_lr_ratio
    return min_lr + coeff * (cfg.lr - min_lr)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device):
    """AdamW; no weight decay on biases and norms (1-D parameters), as nanoGPT."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=fused)


def plain_backward(model, objective, batch, targets, cfg: TrainConfig, device):
    """Forward every text with a graph, loss, backward; returns (loss, tokens)."""
    encoder = getattr(model, "module", model)
    q_feats = encoder.tokenize(batch.queries, cfg.query_max_len)
    p_feats = encoder.tokenize(batch.passages, cfg.passage_max_len)
    with autocast(device, cfg.bf16):
        q = model(**q_feats)  # (batch, dim)
        p = model(**p_feats)  # (passages, dim)
    loss = objective(q, p, targets)
    loss.backward()
    tokens = int(q_feats["attention_mask"].sum() + p_feats["attention_mask"].sum())
    return loss.detach(), tokens


def run_eval(encoder, beir, cfg: TrainConfig) -> dict[str, float]:
    """nDCG@10 / Recall@100 with the query prompt the exported model will use."""
    prefix = cfg.query_prompt(cfg.query_instruction)
    bs, bf16 = cfg.eval_batch_size, cfg.bf16
    return evaluate(
        lambda t: encoder.encode([prefix + x for x in t], cfg.query_max_len, bs, bf16),
        lambda t: encoder.encode(t, cfg.passage_max_len, bs, bf16),
        beir,
    )


def _append_jsonl(path: Path, record: dict) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _truncate_jsonl(path: Path, max_step: int) -> None:
    """Drop log lines past ``max_step`` (steps redone after a resume are logged again)."""
    if path.exists():
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [x for x in lines if json.loads(x).get("step", 0) <= max_step]
        path.write_text("".join(x + "\n" for x in kept), encoding="utf-8")


def _task_prompts(rows, cfg: TrainConfig) -> dict[str, str]:
    """task -> the query prefix its rows were trained with (first row of the task)."""
    prompts: dict[str, str] = {}
    for row in rows:
        if row.task not in prompts:
            prompts[row.task] = query_prefix(row, cfg)
    return prompts


def build_model(cfg: TrainConfig, rt: Runtime):
    """(encoder, model): the model is the encoder, or its DDP wrapper under torchrun."""
    torch.manual_seed(cfg.seed)  # same seed everywhere: any freshly initialised weights agree
    encoder = load_encoder(
        cfg.model,
        pooling=cfg.pooling,
        bidirectional=cfg.bidirectional,
        gradient_checkpointing=cfg.gradient_checkpointing,
        lora_rank=cfg.lora_rank,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        device=rt.device,
    )
    encoder.train()
    if rt.world_size == 1:
        return encoder, encoder
    ids = [rt.local_rank] if rt.device.type == "cuda" else None
    return encoder, torch.nn.parallel.DistributedDataParallel(encoder, device_ids=ids)


def resume(cfg: TrainConfig, rt: Runtime, encoder, optimizer, sampler) -> int:
    """Restore the newest checkpoint under ``cfg.output`` (if any); returns the next step."""
    folder = checkpoint.latest(cfg.output) if cfg.resume else None
    if folder is None:
        return 0
    saved = checkpoint.load(folder, rt.rank)
    encoder.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    sampler.load_state_dict(saved["state"]["sampler"])
    checkpoint.set_rng_state(saved["rng"])
    log.info("resumed from %s (step %d)", folder, saved["state"]["step"])
    return saved["state"]["step"]


def train(cfg: TrainConfig) -> dict:
    """Train as ``cfg`` says; returns a summary (steps, last loss, metrics, output).

    The data is read first: folders without usable rows raise ``NoTrainingRowsError`` before
    the output folder, process group, thread settings or model are touched.
    """
    from tqdm.auto import tqdm

    if not cfg.data or not cfg.output:
        raise ValueError("train needs data (--data DIR) and output (--output DIR)")
    # -- data first: no rows is an error before any process group, thread pool or model -----
    rows = load_rows(cfg.data)
    # -- runtime ----------------------------------------------------------------------------
    rt: Runtime = setup(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    # -- batches: every process plans the same global batches and takes its slice -----------
    sampler = SemiHomogeneousBatchSampler(
        rows,
        cfg.batch_size * rt.world_size,
        cfg.num_negatives,
        cfg.homogeneous_ratio,
        cfg.seed,
    )
    max_steps = cfg.max_steps or cfg.epochs * sampler.batches_per_epoch()
    # -- model, loss, optimizer; then resume (weights, optimizer, sampler, RNG) -------------
    encoder, model = build_model(cfg, rt)
    objective = build_objective(cfg, encoder.dim)
    cached = CachedLoss(objective, cfg.mini_batch_size, cfg.bf16) if cfg.cached else None
    optimizer = make_optimizer(encoder, cfg, rt.device)
    torch.manual_seed(cfg.seed + rt.rank)  # each process its own dropout stream
    start = resume(cfg, rt, encoder, optimizer, sampler)
    log_path, eval_path = out / "train_log.jsonl", out / "eval.jsonl"
    if rt.is_main:
        (out / "train_config.json").write_text(cfg.model_dump_json(indent=1), encoding="utf-8")
        _truncate_jsonl(log_path, start)
        _truncate_jsonl(eval_path, start - 1)  # the eval at step `start` runs again
    beir = None
    if cfg.eval_beir and rt.is_main:
        beir = load_beir(cfg.eval_beir, cfg.eval_split, cfg.eval_corpus_size, cfg.seed)

    def evaluate_now(step: int) -> dict[str, float]:
        metrics = run_eval(encoder, beir, cfg)
        log.info("step %d eval: %s", step, {k: round(v, 4) for k, v in metrics.items()})
        _append_jsonl(eval_path, {"step": step, **metrics})
        return metrics

    # -- the loop ---------------------------------------------------------------------------
    b, loss = cfg.batch_size, None
    bar = tqdm(total=max_steps, initial=start, disable=not rt.is_main, desc="train")
    t0, tokens_seen = time.time(), 0
    for step in range(start, max_steps):
        # 1) learning rate for this step
        lr = get_lr(step, max_steps, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        # 2) evaluation at fixed steps (before the update, as nanoGPT)
        if beir is not None and cfg.eval_every and step and step % cfg.eval_every == 0:
            evaluate_now(step)
        # 3) this process's share of the next global batch
        picks = sampler.next_batch()[rt.rank * b : (rt.rank + 1) * b]
        batch = make_batch(rows, picks, cfg)
        targets = Targets.from_batch(batch, rt.device)
        # 4) forward and backward (GradCache when the batch is too big for memory)
        if cached is not None:
            loss, tokens = cached.backward(
                model,
                batch.queries,
                batch.passages,
                targets,
                cfg.query_max_len,
                cfg.passage_max_len,
            )
        else:
            loss, tokens = plain_backward(model, objective, batch, targets, cfg, rt.device)
        # 5) clip, step, clear
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(encoder.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        # 6) log: loss averaged over processes, tokens/s over all processes
        if is_distributed():
            torch.distributed.all_reduce(loss)  # sum (gloo has no AVG)
            loss /= rt.world_size
        tokens_seen += tokens * rt.world_size
        tok_s = tokens_seen / max(time.time() - t0, 1e-9)
        record = {
            "step": step + 1,
            "loss": float(loss),
            "lr": lr,
            "tokens_per_s": tok_s,
            "seconds": time.time() - t0,  # since this process's loop started
        }
        if rt.is_main:
            _append_jsonl(log_path, record)
            bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{lr:.2e}", tok_s=f"{tok_s:.0f}")
            if (step + 1) % cfg.log_every == 0:
                log.info(
                    "step %d loss %.4f lr %.2e tok/s %.0f", step + 1, record["loss"], lr, tok_s
                )
        bar.update(1)
        # 7) checkpoint after the update: step-N holds the state after N steps
        if cfg.save_every and (step + 1) % cfg.save_every == 0:
            state = {"step": step + 1, "sampler": sampler.state_dict(), "loss": record["loss"]}
            folder = checkpoint.folder_for(cfg.output, step + 1)
            checkpoint.save(folder, encoder.state_dict(), optimizer, state, rt.rank, rt.is_main)
            if rt.is_main:
                checkpoint.prune(cfg.output, cfg.keep_checkpoints, set(cfg.soup_steps))
    bar.close()
    # -- after training: soup, final evaluation, export -------------------------------------
    if is_distributed():
        torch.distributed.barrier()
    summary = {"steps": max_steps, "loss": float(loss) if loss is not None else None}
    if rt.is_main:
        if cfg.soup_steps:
            folders = [checkpoint.folder_for(cfg.output, s) for s in cfg.soup_steps]
            encoder.load_state_dict(checkpoint.soup(folders))
        if beir is not None:
            summary["metrics"] = evaluate_now(max_steps)
        summary["output"] = export(encoder, cfg, cfg.output, _task_prompts(rows, cfg))
    teardown()
    return summary
