"""What the losses need besides the embeddings: which passage is whose positive, and groups.

``labels[i]`` is the passage index of query i's positive; ``groups[i]`` the passage indices of
its positive and hard negatives (-1 padded); ``teacher[i]`` the teacher's scores for the same
passages (NaN when unknown). ``valid`` marks real passages when gathering across processes
padded the passage list (None: all real).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass
class Targets:
    labels: torch.Tensor  # (batch,) long
    groups: torch.Tensor  # (batch, group) long, -1 = none
    teacher: torch.Tensor  # (batch, group) float, NaN = unknown
    valid: torch.Tensor | None = None  # (passages,) bool

    @classmethod
    def from_batch(cls, batch, device) -> Targets:
        """Tensors from a ``kalm_data.train.batch.Batch``."""
        return cls(
            labels=torch.tensor(batch.labels, dtype=torch.long, device=device),
            groups=torch.tensor(batch.groups, dtype=torch.long, device=device),
            teacher=torch.tensor(batch.teacher, dtype=torch.float32, device=device),
        )

    def shifted(self, offset: int, valid: torch.Tensor | None) -> Targets:
        """The targets after this process's passages moved to ``offset`` in a gathered list."""
        groups = torch.where(self.groups >= 0, self.groups + offset, self.groups)
        return replace(self, labels=self.labels + offset, groups=groups, valid=valid)
