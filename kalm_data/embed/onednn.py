"""The teacher's Linear layers on oneDNN, with weights packed once, for fp32 inference on CPU.

Why: an fp32 ``torch.nn.Linear`` on CPU runs MKL's sgemm, which on AMD CPUs does not reach
what the hardware can do. On this project's 2-core AMD EPYC runners, MiniLM's Linear shapes
(2,048 x 384 by 384 x 1,536 and the like) run at 118-150 GFLOP/s with MKL and at 172-195
GFLOP/s with oneDNN once the weight is reordered into oneDNN's blocked layout; fusing the
feed-forward layer's GELU into its Linear saves one more pass over the largest activation. Whole
encodes: ``benchmarks/bench_encode.py --kernels onednn torch``. oneDNN picks its kernels by the
CPU's instruction sets, not its vendor (only AMD EPYC has been measured; ``--cpu-kernels torch``
in ``curate`` keeps torch's own).

Contract: ``pack_linears(model)`` replaces, in place, every ``torch.nn.Linear`` of an fp32 CPU
model by a ``PackedLinear`` computing the same function (to float rounding: the products are
summed in another order), and folds into its ``dense`` Linear the exact (erf) GELU that a
BERT-family feed-forward layer (a ``...Intermediate`` module: ``intermediate_act_fn(dense(x))``)
applies to it; it returns how many Linears it packed. Inference only: packed weights are not
parameters and take no gradient. ``available()`` says whether this torch build can run them
(oneDNN compiled in, the packed-linear operator present and working); without it, or for
another dtype or device, the caller keeps the model as it is.

Memory: oneDNN keeps the kernel it builds for each input shape, up to 1,024 by default, and
token-budget batches come in hundreds of shapes: on all of qa_pairs_en that cache grew the
teacher process by ~250 MB. ``available()`` caps it at ``PRIMITIVE_CACHE_CAPACITY`` kernels
(``ONEDNN_PRIMITIVE_CACHE_CAPACITY``, unless already set; read by oneDNN on first use, so a
process that ran oneDNN before keeps its cache). Batches come in length order, so consecutive
batches share shapes: on 5,942 qa_pairs_en texts the cap of 16 ended 59 MB lower and took
no longer (57.4 s against 58.6 s).
"""

from __future__ import annotations

import functools
import logging
import os

import torch

log = logging.getLogger(__name__)

#: oneDNN kernels kept, one per input shape (module docstring; oneDNN's own default: 1,024).
PRIMITIVE_CACHE_CAPACITY = 16


@functools.cache
def available() -> bool:
    """True when this torch build runs ``PackedLinear`` (tried once on a tiny input). Caps
    oneDNN's kernel cache first (module docstring)."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(PRIMITIVE_CACHE_CAPACITY))
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        probe = PackedLinear(torch.nn.Linear(4, 3))
        with torch.inference_mode():
            probe(torch.ones(2, 4))
    except (AttributeError, RuntimeError, NotImplementedError) as e:
        log.info("oneDNN packed Linear layers unavailable (%s): torch's own are used", e)
        return False
    return True


class PackedLinear(torch.nn.Module):
    """``linear`` (and, with ``gelu``, the exact GELU of its output) with oneDNN, its weight
    reordered once into oneDNN's layout. Takes inputs of any leading shape, like ``Linear``."""

    def __init__(self, linear: torch.nn.Linear, gelu: bool = False):
        super().__init__()
        weight = linear.weight.detach().contiguous()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = torch.ops.mkldnn._reorder_linear_weight(weight)
        self.bias = None if linear.bias is None else linear.bias.detach()
        self.attr, self.algorithm = ("gelu", "none") if gelu else ("none", "")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        y = torch.ops.mkldnn._linear_pointwise(
            x.reshape(-1, self.in_features), self.weight, self.bias, self.attr, [], self.algorithm
        )
        return y.reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        gelu = ", gelu" if self.attr == "gelu" else ""
        return f"in_features={self.in_features}, out_features={self.out_features}{gelu}"


def _is_exact_gelu(module: object) -> bool:
    """An erf GELU: ``torch.nn.GELU()`` or transformers' ``GELUActivation`` (its ``act`` is
    ``torch.nn.functional.gelu``, approximate none)."""
    if isinstance(module, torch.nn.GELU):
        return module.approximate == "none"
    act = getattr(module, "act", None)
    return type(module).__name__ == "GELUActivation" and act is torch.nn.functional.gelu


def pack_linears(model: torch.nn.Module) -> int:
    """Replace every ``Linear`` of ``model`` by a ``PackedLinear``, the GELUs of BERT-family
    feed-forward layers folded in (module docstring); the number packed. A layer oneDNN refuses
    stays as it was (logged)."""
    packed = 0
    for module in list(model.modules()):
        dense = getattr(module, "dense", None)
        act = getattr(module, "intermediate_act_fn", None)
        foldable = type(module).__name__.endswith("Intermediate") and _is_exact_gelu(act)
        if foldable and type(dense) is torch.nn.Linear and (layer := _packed(dense, True)):
            module.dense, module.intermediate_act_fn = layer, torch.nn.Identity()
            packed += 1
        for name, child in list(module.named_children()):
            if type(child) is torch.nn.Linear and (layer := _packed(child)):
                setattr(module, name, layer)
                packed += 1
    return packed


def _packed(linear: torch.nn.Linear, gelu: bool = False) -> PackedLinear | None:
    try:
        return PackedLinear(linear, gelu)
    except RuntimeError as e:
        log.warning("a %s stays on torch's kernels: oneDNN cannot pack it (%s)", linear, e)
        return None
