"""oneDNN packed Linear layers: the same function as torch's Linear (and GELU) to float rounding,
on random layers and on the real MiniLM teacher over real pairs from ../shared/data."""

import numpy as np
import pytest
import torch

from kalm_data.embed import onednn
from kalm_data.embed.buckets import encode_order
from kalm_data.embed.teacher import Teacher, default_teacher
from kalm_data.embed.teacher_process import TeacherProcess
from kalm_data.text import normalize, text_key

from realdata import load_pairs

pytestmark = pytest.mark.skipif(not onednn.available(), reason="this torch has no oneDNN")


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("gelu", [False, True])
def test_a_packed_linear_computes_the_linear_on_any_leading_shape(bias, gelu):
    torch.manual_seed(0)
    linear = torch.nn.Linear(48, 80, bias=bias)
    x = torch.randn(3, 17, 48)
    with torch.inference_mode():
        want = linear(x)
        if gelu:
            want = torch.nn.functional.gelu(want)
        got = onednn.PackedLinear(linear, gelu=gelu)(x)
    assert got.shape == (3, 17, 80)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # Not merely close to zero: the layer did its work.
    assert want.abs().mean() > 0.1


class _Intermediate(torch.nn.Module):
    """The shape of a BERT feed-forward layer's first half."""

    def __init__(self, act: torch.nn.Module):
        super().__init__()
        self.dense = torch.nn.Linear(16, 32)
        self.intermediate_act_fn = act

    def forward(self, x):
        return self.intermediate_act_fn(self.dense(x))


def test_an_exact_gelu_is_folded_and_any_other_activation_is_kept():
    torch.manual_seed(0)
    model = torch.nn.Sequential(_Intermediate(torch.nn.GELU()), torch.nn.Linear(32, 4))
    tanh = torch.nn.Sequential(_Intermediate(torch.nn.GELU(approximate="tanh")))
    x = torch.randn(5, 16)
    with torch.inference_mode():
        want, want_tanh = model(x), tanh(x)
    assert onednn.pack_linears(model) == 2 and onednn.pack_linears(tanh) == 1
    assert isinstance(model[0].intermediate_act_fn, torch.nn.Identity)
    assert model[0].dense.attr == "gelu" and model[1].attr == "none"
    assert isinstance(tanh[0].intermediate_act_fn, torch.nn.GELU)  # not erf: left as it is
    assert tanh[0].dense.attr == "none"
    with torch.inference_mode():
        torch.testing.assert_close(model(x), want, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(tanh(x), want_tanh, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Unique real texts, short queries and long passages (some over 256 tokens)."""
    rows = load_pairs(40)
    unique = {normalize(t) for r in rows for t in (r["query"], r["positive"])}
    return [t for _, t in encode_order([(text_key(t), t) for t in unique])]


def test_the_teacher_packs_its_linears_and_gives_the_same_vectors(texts):
    packed = Teacher(default_teacher())
    plain = Teacher(default_teacher(), kernels="torch")
    assert packed.kernels == "onednn" and plain.kernels == "torch"
    linears = [m for m in packed.model.model.modules() if isinstance(m, torch.nn.Linear)]
    folded = [m for m in packed.model.model.modules() if getattr(m, "attr", "") == "gelu"]
    assert linears == [] and len(folded) == 6  # MiniLM-L6: one feed-forward GELU per layer
    assert any(isinstance(m, torch.nn.Linear) for m in plain.model.model.modules())
    got, n_cut = packed.encode_counting(texts)
    want, n_cut_plain = plain.encode_counting(texts)
    assert n_cut == n_cut_plain > 0
    np.testing.assert_allclose(got, want, atol=2e-6)
    # Each text stays nearest to itself: the rankings mining sees are the same.
    assert ((got @ want.T).argmax(axis=1) == np.arange(len(texts))).all()


def test_bf16_and_unknown_kernels():
    assert Teacher(default_teacher(), precision="bf16").kernels == "torch"
    with pytest.raises(ValueError, match="kernels"):
        Teacher(default_teacher(), kernels="mkl")


def test_the_teacher_process_passes_the_kernels_to_its_child(texts):
    child = TeacherProcess(default_teacher(), kernels="torch")
    try:
        got, _ = child.encode_counting(texts[:8])
    finally:
        child.close()
    want, _ = Teacher(default_teacher(), kernels="torch").encode_counting(texts[:8])
    assert np.array_equal(got, want)  # bit-identical only when the child runs torch's kernels


def test_the_kernel_cache_is_capped_unless_the_user_chose():
    """oneDNN reads its cache capacity once per process: check it in fresh ones."""
    import os
    import subprocess
    import sys

    probe = "from kalm_data.embed import onednn; import os; onednn.available(); "
    probe += "print(os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY'])"
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
    run = [sys.executable, "-c", probe]
    capped = subprocess.run(run, env=env, capture_output=True, text=True, check=True)
    assert capped.stdout.strip() == str(onednn.PRIMITIVE_CACHE_CAPACITY)
    chosen = subprocess.run(
        run, env={**env, "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "64"}, capture_output=True, text=True
    )
    assert chosen.stdout.strip() == "64"
