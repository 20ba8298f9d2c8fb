"""Checkpoints for exact resume, and the model soup.

Contract: ``save(folder, ...)`` writes ``OUTPUT/checkpoints/step-NNNNNNNN/`` with the model's
state dict, the optimizer's, every process's RNG states, and ``state.json`` (step, sampler
state, config) written last through a temporary name, so a folder without ``state.json`` is
an interrupted save that ``latest`` ignores. Restoring all of these and re-planning the
sampler's epoch from its state gives the same batches, dropout masks and updates as a run that
never stopped (tests/train/test_train_loop.py checks bit-identical weights).

Every ``.pt`` file is read with ``torch.load(..., weights_only=True)``: a checkpoint file can
never run code on resume. The RNG states are therefore stored as tensors and plain numbers
(``rng_state``), not as pickled library objects; a file that needs more than that to load
raises ``UnsafeCheckpointError`` without executing anything.

``soup(folders)`` averages the model weights of several checkpoints (KaLM V2's model soup;
Wortsman et al. 2022, uniform soup).
"""

from __future__ import annotations

import json
import logging
import pickle
import random
import shutil
from pathlib import Path

import torch

from kalm_data.errors import UsageError

log = logging.getLogger(__name__)

STATE = "state.json"


def folder_for(output: str, step: int) -> Path:
    return Path(output) / "checkpoints" / f"step-{step:08d}"


#: Layout version of ``rng-RANK.pt``; 1 = tensors and plain numbers only (weights_only).
RNG_FORMAT = 1


class UnsafeCheckpointError(UsageError, ValueError):
    """A checkpoint file that does not load with ``weights_only=True`` (or has the wrong layout);
    the command line prints it as one line."""


def rng_state() -> dict:
    """This process's RNG states as tensors and plain numbers (loads with weights_only=True).

    python: ``random.getstate()`` = (version, 625 ints, gauss_next) -> version, an int64
    tensor, gauss; numpy: ``get_state()`` = ('MT19937', 624 uint32 keys, pos, has_gauss,
    cached_gaussian) -> the keys as an int64 tensor and the rest as plain numbers; torch and
    CUDA states are uint8 tensors already.
    """
    import numpy as np

    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state = {
        "format": RNG_FORMAT,
        "torch": torch.get_rng_state(),
        "python": {
            "version": int(version),
            "state": torch.tensor(internal, dtype=torch.int64),
            "gauss": gauss,
        },
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore the states ``rng_state`` returned (raises UnsafeCheckpointError on another
    layout, before changing any generator)."""
    import numpy as np

    if not isinstance(state, dict) or state.get("format") != RNG_FORMAT:
        raise UnsafeCheckpointError(
            f"RNG state of an unknown layout (want format {RNG_FORMAT}); "
            "delete the checkpoint or train with --no-resume"
        )
    py, npy = state["python"], state["numpy"]
    python_state = (py["version"], tuple(int(x) for x in py["state"].tolist()), py["gauss"])
    numpy_state = (
        npy["kind"],
        npy["keys"].numpy().astype(np.uint32),
        npy["pos"],
        npy["has_gauss"],
        npy["cached_gaussian"],
    )
    torch.set_rng_state(state["torch"])
    random.setstate(python_state)
    np.random.set_state(numpy_state)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def safe_load(path: Path):
    """``torch.load(path, weights_only=True)`` on the CPU: tensors and plain containers only.

    A file that would need arbitrary unpickling (code execution) raises
    ``UnsafeCheckpointError`` naming the file and the refused object; nothing in it is executed.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f"{path}: refusing to unpickle {_refused(err)}: a checkpoint file may hold only "
            "tensors and plain values (anything else could run code); delete the checkpoint or "
            "train with --no-resume"
        ) from err


def _refused(err: Exception) -> str:
    """What torch's weights-only unpickler refused ('GLOBAL io.open'), or 'an unsafe object'."""
    for line in str(err).splitlines():
        if "Unsupported global:" in line:
            return line.split("Unsupported global:")[1].split(" was not")[0].strip()
    return "an unsafe object"


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
    """model / optimizer state dicts, the saved ``state.json`` and this process's RNG states.

    Every file loads with ``weights_only=True`` (``safe_load``): a crafted file raises
    ``UnsafeCheckpointError`` and runs nothing.
    """
    return {
        "model": safe_load(folder / "model.pt"),
        "optimizer": safe_load(folder / "optimizer.pt"),
        "state": json.loads((folder / STATE).read_text(encoding="utf-8")),
        "rng": safe_load(folder / f"rng-{rank}.pt"),
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
        state = safe_load(folder / "model.pt")
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
