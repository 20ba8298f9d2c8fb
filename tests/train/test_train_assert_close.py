"""``assert_close`` (train_helpers): passes float32 summation-order noise, fails real mismatches.

The tensors imitate a gradient accumulated over mini-batches: ``parts`` are the mini-batches'
contributions (standard deviation 20, like the largest gradients of the GradCache test), the
reference sums them in one order, the "cached" result in another.
"""

from __future__ import annotations

import pytest
import torch
from train_helpers import RTOL, assert_close, relative_error


def mini_batch_parts(n: int = 4) -> list[torch.Tensor]:
    """``n`` float32 contributions (64, 64), seeded; in the first row they cancel out (sum ~0),
    as gradient contributions of opposite sign do."""
    gen = torch.Generator().manual_seed(0)
    parts = [20 * torch.randn(64, 64, generator=gen) for _ in range(n)]
    parts[-1][0] = -sum(parts[:-1])[0]
    return parts


def ordered_sum(parts: list[torch.Tensor]) -> torch.Tensor:
    total = torch.zeros_like(parts[0])
    for part in parts:
        total += part
    return total


def test_summation_order_noise_passes_where_elementwise_allclose_fails():
    parts = mini_batch_parts()
    ref, got = ordered_sum(parts), ordered_sum(parts[::-1])
    assert not torch.equal(got, ref)  # float32 reordering moved some elements
    # the old element-wise check rejects it: near-zero elements have no relative budget
    assert not torch.allclose(got, ref, rtol=1e-3, atol=1e-6)
    assert relative_error(got, ref) < RTOL / 100
    assert_close(got, ref, name="reordered")


def test_a_scaled_tensor_fails():
    ref = ordered_sum(mini_batch_parts())
    with pytest.raises(AssertionError, match="scaled"):
        assert_close(ref * 1.01, ref, name="scaled")


def test_a_missing_mini_batch_fails():
    parts = mini_batch_parts(8)
    with pytest.raises(AssertionError, match="missing"):
        assert_close(ordered_sum(parts[:-1]), ordered_sum(parts), name="missing")


def test_shapes_must_match_and_zeros_compare():
    with pytest.raises(AssertionError, match="shape"):
        assert_close(torch.zeros(3), torch.zeros(1, 3), name="shape")
    assert_close(torch.zeros(3), torch.zeros(3))  # an all-zero gradient equals itself
    with pytest.raises(AssertionError):
        assert_close(torch.full((3,), 1e-3), torch.zeros(3))
    assert relative_error(torch.ones(2), torch.zeros(2)) == float("inf")
