"""Contrastive losses, one per file: InfoNCE, focal weights, distillation, Matryoshka, GradCache.

``build_objective(cfg, width)`` assembles the configured objective (see ``objective.py``).
"""

from kalm_data.train.losses.cached import CachedLoss
from kalm_data.train.losses.distill import distill_kl
from kalm_data.train.losses.focal import focal_weights
from kalm_data.train.losses.infonce import InfoNCELoss
from kalm_data.train.losses.matryoshka import MatryoshkaLoss, clip_dims
from kalm_data.train.losses.objective import Objective, build_objective
from kalm_data.train.losses.targets import Targets

__all__ = [
    "CachedLoss",
    "InfoNCELoss",
    "MatryoshkaLoss",
    "Objective",
    "Targets",
    "build_objective",
    "clip_dims",
    "distill_kl",
    "focal_weights",
]
