"""Distillation from the teacher scores stored in the shards: KL over each query's group.

Contract: ``distill_kl(logits, groups, teacher, temperature)`` is the mean over queries of
``KL(p_teacher || p_student)``, both distributions taken over the query's own group (its
positive and hard negatives): ``p_teacher = softmax(teacher_scores / temperature)``,
``p_student = softmax(student_logits)`` on the same passages. Passages with an unknown teacher
score (NaN) or padding (-1) are left out; queries with fewer than two scored passages are
skipped; 0 when no query qualifies.

Requirements: the curation teacher's cosine scores (``positive_scores``/``negative_scores``).
Inputs: ``logits`` (batch, passages) student scores already divided by the student's
temperature; ``groups`` (batch, group) passage indices; ``teacher`` (batch, group) scores.
Recommendations: a teacher temperature near the student's (0.01-0.05 for cosine teachers):
cosine gaps of a few hundredths must become clear preferences.
Relations: like sentence-transformers' ``DistillKLDivLoss`` (which takes teacher logits as
labels), restricted to the hard-negative group since the teacher never scored in-batch pairs.
Example::

    loss = infonce + 0.5 * distill_kl(logits, targets.groups, targets.teacher, 0.02)
"""

from __future__ import annotations

import torch


def distill_kl(
    logits: torch.Tensor, groups: torch.Tensor, teacher: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Scalar mean KL(teacher || student) over queries with >= 2 scored passages."""
    valid = (groups >= 0) & ~torch.isnan(teacher)  # (batch, group)
    rows = valid.sum(dim=1) >= 2  # (batch,)
    if not bool(rows.any()):
        return logits.sum() * 0.0
    student = logits.gather(1, groups.clamp(min=0))  # (batch, group)
    student = student.masked_fill(~valid, float("-inf"))
    scaled = torch.nan_to_num(teacher, nan=0.0) / temperature
    scaled = scaled.masked_fill(~valid, float("-inf"))
    log_ps = torch.log_softmax(student[rows], dim=-1)  # (kept, group)
    log_pt = torch.log_softmax(scaled[rows], dim=-1)  # (kept, group)
    kl = torch.where(valid[rows], log_pt.exp() * (log_pt - log_ps), 0.0)  # (kept, group)
    return kl.sum(dim=1).mean()
