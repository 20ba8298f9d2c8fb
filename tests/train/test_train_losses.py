"""The loss math against hand computations (plain Python floats, no torch in the reference)."""

from __future__ import annotations

import math

import pytest
import torch

from kalm_data.train.config import TrainConfig
from kalm_data.train.losses import (
    InfoNCELoss,
    MatryoshkaLoss,
    Targets,
    build_objective,
    clip_dims,
    distill_kl,
    focal_weights,
)

Q = [[1.0, 2.0, 0.5], [-1.0, 0.3, 2.0]]
P = [[0.9, 2.1, 0.0], [0.2, -1.0, 1.0], [-1.2, 0.1, 1.5], [1.0, 1.0, 1.0]]
LABELS = [0, 2]
GROUPS = [[0, 1], [2, 3]]
TEACHER = [[0.8, 0.3], [0.6, 0.5]]


def cos(a, b):
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def softmax(xs):
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [v / sum(e) for v in e]


def hand_logits(q, p, tau):
    return [[cos(qi, pj) / tau for pj in p] for qi in q]


def hand_infonce(q, p, labels, tau, gamma=0.0):
    losses = []
    for row, label in zip(hand_logits(q, p, tau), labels, strict=True):
        prob = softmax(row)[label]
        losses.append((1 - prob) ** gamma * -math.log(prob))
    return sum(losses) / len(losses)


def targets(teacher=TEACHER) -> Targets:
    return Targets(
        labels=torch.tensor(LABELS),
        groups=torch.tensor(GROUPS),
        teacher=torch.tensor(teacher, dtype=torch.float32),
    )


def t(x):
    return torch.tensor(x, dtype=torch.float32)


@pytest.mark.parametrize("tau", [0.05, 1.0])
def test_infonce_matches_hand_computation(tau):
    loss = InfoNCELoss(temperature=tau)(t(Q), t(P), targets())
    assert float(loss) == pytest.approx(hand_infonce(Q, P, LABELS, tau), rel=1e-5)


def test_focal_weights_and_loss_match_hand_computation():
    tau, gamma = 0.5, 0.5
    logits = t(hand_logits(Q, P, tau))
    expected_w = [
        (1 - softmax(row)[lab]) ** gamma
        for row, lab in zip(hand_logits(Q, P, tau), LABELS, strict=True)
    ]
    assert focal_weights(logits, torch.tensor(LABELS), gamma).tolist() == pytest.approx(
        expected_w, rel=1e-5
    )
    loss = InfoNCELoss(temperature=tau, focal_gamma=gamma)(t(Q), t(P), targets())
    assert float(loss) == pytest.approx(hand_infonce(Q, P, LABELS, tau, gamma), rel=1e-5)
    # gamma = 0 is plain InfoNCE; a larger gamma only ever shrinks each term
    assert float(InfoNCELoss(tau, focal_gamma=0.0)(t(Q), t(P), targets())) > float(loss)


def test_matryoshka_renormalises_prefixes_and_weights_them():
    tau = 0.1
    loss = MatryoshkaLoss(InfoNCELoss(tau), dims=[3, 2, 1], weights=[1.0, 0.3, 0.2])
    value = float(loss(t(Q), t(P), targets()))
    expected = sum(
        w * hand_infonce([q[:d] for q in Q], [p[:d] for p in P], LABELS, tau)
        for d, w in ((3, 1.0), (2, 0.3), (1, 0.2))
    )
    assert value == pytest.approx(expected, rel=1e-5)


def test_matryoshka_dims_are_clipped_to_the_model_width():
    kalm = ([896, 512, 256, 128, 64], [1, 0.3, 0.2, 0.1, 0.1])
    assert clip_dims(*kalm, 896) == list(zip(*kalm, strict=True))
    assert clip_dims(*kalm, 384) == [(384, 1.0), (256, 0.2), (128, 0.1), (64, 0.1)]
    assert clip_dims(*kalm, 64) == [(64, 1.0)]
    objective = build_objective(TrainConfig(temperature=0.1), width=3)
    plain = InfoNCELoss(0.1)(t(Q), t(P), targets())
    assert float(objective(t(Q), t(P), targets())) == pytest.approx(float(plain))


def test_distillation_is_the_kl_between_teacher_and_student_groups():
    tau, t_tau = 0.1, 0.05
    logits = hand_logits(Q, P, tau)
    expected = []
    for row, group, scores in zip(logits, GROUPS, TEACHER, strict=True):
        ps = softmax([row[j] for j in group])
        pt = softmax([s / t_tau for s in scores])
        expected.append(sum(a * math.log(a / b) for a, b in zip(pt, ps, strict=True)))
    kl = distill_kl(t(logits), torch.tensor(GROUPS), t(TEACHER), t_tau)
    assert float(kl) == pytest.approx(sum(expected) / 2, rel=1e-5)
    loss = InfoNCELoss(tau, distill_weight=0.5, distill_temperature=t_tau)(t(Q), t(P), targets())
    assert float(loss) == pytest.approx(hand_infonce(Q, P, LABELS, tau) + 0.5 * float(kl), rel=1e-5)


def test_distillation_skips_unknown_scores_and_padding():
    logits = t(hand_logits(Q, P, 0.1))
    groups = torch.tensor([[0, -1], [2, 3]])
    teacher = t([[0.8, float("nan")], [0.6, float("nan")]])
    assert float(distill_kl(logits, groups, teacher, 0.05)) == 0.0  # no query has two scores
    teacher = t([[0.8, 0.1], [0.6, 0.5]])
    only_second = distill_kl(logits[1:], groups[1:], teacher[1:], 0.05)
    both = distill_kl(logits, groups, teacher, 0.05)
    assert float(both) == pytest.approx(float(only_second))
    logits.requires_grad_()
    distill_kl(logits, groups, teacher, 0.05).backward()
    assert torch.isfinite(logits.grad).all()


def test_padding_from_a_cross_process_gather_changes_nothing():
    q, p = t(Q), t(P)
    padded = torch.cat([p[:2], torch.zeros(2, 3), p[2:], torch.zeros(1, 3)])
    valid = torch.tensor([True, True, False, False, True, True, False])
    shifted = Targets(torch.tensor([0, 4]), torch.tensor([[0, 1], [4, 5]]), t(TEACHER), valid)
    loss = InfoNCELoss(0.1, distill_weight=1.0)
    assert float(loss(q, padded, shifted)) == pytest.approx(float(loss(q, p, targets())), rel=1e-6)
