"""Checkpoints for exact resume, and the model soup.

Contract: ``save(folder, ...)`` writes ``OUTPUT/checkpoints/step-NNNNNNNN/`` with the model's
state dict, the optimizer's, every process's RNG states, and ``state.json`` (step, sampler
state, config) written last through a temporary name, so a folder without ``state.json`` is
an interrupted save that ``latest`` ignores. Restoring all of these and re-planning the
sampler's epoch from its state gives the same batches, dropout masks and updates as a run that
never stopped (tests/train/test_loop.py checks bit-identical weights).

``soup(folders)`` averages the model weights of several checkpoints (KaLM V2's model soup;
Wortsman et al. 2022, uniform soup).
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from pathlib import Path

import torch

log = logging.getLogger(__name__)

STATE = "state.json"


def folder_for(output: str, step: int) -> Path:
    return Path(output) / "checkpoints" / f"step-{step:08d}"


def rng_state() -> dict:
    import numpy as np

    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    state["numpy"] = np.random.get_state()
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    import numpy as np

    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(
    folder: Path, model_state: dict | None, optimizer, state: dict, rank: int, is_main: bool
) -> None:
    """Write one checkpoint (every process writes its RNG; the main one the rest)."""
    from kalm_data.train.distributed import is_distributed

    folder.mkdir(parents=True, exist_ok=True)
    torch.save(rng_state(), folder / f"rng-{rank}.pt")
    if is_distributed():
        torch.distributed.barrier()  # every RNG file exists before state.json marks it complete
    if not is_main:
        return
    torch.save(model_state, folder / "model.pt")
    torch.save(optimizer.state_dict(), folder / "optimizer.pt")
    tmp = folder / f".{STATE}.tmp"
    tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
    tmp.rename(folder / STATE)
    log.info("checkpoint %s", folder)


def latest(output: str) -> Path | None:
    """The newest complete checkpoint under ``output``, or None."""
    done = [p.parent for p in (Path(output) / "checkpoints").glob(f"step-*/{STATE}")]
    return max(done, key=lambda p: p.name) if done else None


def load(folder: Path, rank: int) -> dict:
    """model / optimizer state dicts, the saved ``state.json`` and this process's RNG states."""
    return {
        "model": torch.load(folder / "model.pt", map_location="cpu", weights_only=True),
        "optimizer": torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True),
        "state": json.loads((folder / STATE).read_text(encoding="utf-8")),
        "rng": torch.load(folder / f"rng-{rank}.pt", weights_only=False),
    }


def prune(output: str, keep: int, protect: set[int]) -> None:
    """Delete all but the newest ``keep`` checkpoints, sparing the steps in ``protect``."""
    folders = sorted((Path(output) / "checkpoints").glob("step-*"), key=lambda p: p.name)
    for folder in folders[:-keep] if keep else folders:
        if int(folder.name.split("-")[1]) not in protect:
            shutil.rmtree(folder, ignore_errors=True)


def soup(folders: list[Path]) -> dict:
    """The uniform average of the checkpoints' model weights (float tensors; others copied)."""
    if not folders:
        raise ValueError("soup needs at least one checkpoint")
    avg: dict = {}
    for folder in folders:
        state = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
        for name, tensor in state.items():
            if not tensor.is_floating_point():
                avg.setdefault(name, tensor)
            elif name in avg:
                avg[name] += tensor.float()
            else:
                avg[name] = tensor.float().clone()
    for name, tensor in avg.items():
        if tensor.is_floating_point():
            avg[name] = tensor / len(folders)
    log.info("model soup of %d checkpoints: %s", len(folders), [f.name for f in folders])
    return avg
