"""Checkpoint files load with ``weights_only=True``: RNG states round-trip; crafted files never run.

A pickle can name any callable to run while it loads; ``Payload`` is such an object (it opens a
marker file for writing). Every test first proves its payload is live with ``weights_only=False``
in a scratch file, so "the marker does not exist" means the load path refused it.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from kalm_data.train import checkpoint, loop
from kalm_data.train.checkpoint import UnsafeCheckpointError
from kalm_data.train.config import TrainConfig


class Payload:
    """Unpickling this creates ``marker`` (``open(marker, "w")``): code execution on load."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def write_payload(path: Path, marker: Path) -> None:
    """A ``.pt`` file whose unpickling creates ``marker``; checked live on a scratch copy."""
    scratch_marker = marker.with_name(marker.name + ".live")
    scratch = path.with_name(path.name + ".scratch")
    torch.save({"state": Payload(scratch_marker)}, scratch)
    torch.load(scratch, weights_only=False)  # the unsafe way runs it...
    assert scratch_marker.exists()  # ...so the payload would work if the loader allowed it
    scratch.unlink()
    torch.save({"state": Payload(marker)}, path)


def save_checkpoint(output: Path, step: int = 2) -> Path:
    """A complete checkpoint folder of a small linear model (weights, AdamW, RNG, state)."""
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    folder = checkpoint.folder_for(str(output), step)
    state = {"step": step, "sampler": {}, "loss": 1.0}
    checkpoint.save(folder, model.state_dict(), optimizer, state, rank=0, is_main=True)
    return folder


def draws() -> tuple:
    """One value from each generator a checkpoint restores (gauss caches included)."""
    return (
        random.random(),
        random.gauss(0, 1),
        np.random.rand(),
        np.random.standard_normal(),
        torch.rand(3).tolist(),
    )


def test_rng_state_round_trips_through_a_weights_only_file(tmp_path):
    random.gauss(0, 1)  # leaves python's gauss_next cached
    np.random.standard_normal()  # leaves numpy's cached gaussian
    torch.save(checkpoint.rng_state(), tmp_path / "rng-0.pt")
    expected = draws()
    saved = torch.load(tmp_path / "rng-0.pt", weights_only=True)  # tensors and plain values
    checkpoint.set_rng_state(saved)
    assert draws() == expected


def test_checkpoint_files_hold_only_tensors_and_plain_values(tmp_path):
    folder = save_checkpoint(tmp_path)
    loaded = checkpoint.load(folder, rank=0)
    assert loaded["state"]["step"] == 2 and loaded["rng"]["format"] == checkpoint.RNG_FORMAT
    for name in ("model.pt", "optimizer.pt", "rng-0.pt"):
        torch.load(folder / name, weights_only=True)


def test_an_rng_state_of_another_layout_is_refused(tmp_path):
    legacy = {"torch": torch.get_rng_state(), "python": random.getstate()}  # no format
    with pytest.raises(UnsafeCheckpointError, match="unknown layout"):
        checkpoint.set_rng_state(legacy)


@pytest.mark.parametrize("name", ["rng-0.pt", "model.pt", "optimizer.pt"])
def test_a_crafted_checkpoint_file_is_refused_without_running_it(tmp_path, name):
    folder = save_checkpoint(tmp_path / "out")
    marker = tmp_path / "pwned"
    write_payload(folder / name, marker)
    with pytest.raises(UnsafeCheckpointError, match=rf"{name}: refusing to unpickle .*open"):
        checkpoint.load(folder, rank=0)
    assert not marker.exists()


def test_soup_refuses_a_crafted_model_file(tmp_path):
    folders = [save_checkpoint(tmp_path / "out", step) for step in (2, 4)]
    marker = tmp_path / "pwned"
    write_payload(folders[1] / "model.pt", marker)
    with pytest.raises(UnsafeCheckpointError, match="model.pt"):
        checkpoint.soup(folders)
    assert not marker.exists()


def test_resume_from_a_crafted_rng_file_fails_before_running_it(tiny_qwen, shards, tmp_path):
    """The default path: ``train`` resumes from the newest checkpoint in its output folder."""
    output = tmp_path / "out"
    cfg = TrainConfig(
        data=[str(shards)],
        model=tiny_qwen,
        output=str(output),
        batch_size=4,
        num_negatives=2,
        query_max_len=16,
        passage_max_len=16,
        max_steps=2,
        save_every=1,
        keep_checkpoints=1,
    )
    loop.train(cfg)
    folder = checkpoint.latest(str(output))
    marker = tmp_path / "pwned"
    write_payload(folder / "rng-0.pt", marker)
    with pytest.raises(UnsafeCheckpointError, match="rng-0.pt"):
        loop.train(cfg.model_copy(update={"max_steps": 3}))
    assert not marker.exists()
