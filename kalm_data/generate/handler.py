"""The Beam ``ModelHandler`` of every LLM backend, so ``RunInference`` batches requests.

Contract: ``LLMHandler(spec, cache_dir)`` builds the backend on each worker in ``load_model``
(``kalm_data.generate.backends.make_backend``, then ``setup()``); ``run_inference`` answers a
batch of ``LLMRequest``s through the response cache (``kalm_data.generate.cache.answer``):
one ``PredictionResult(request, LLMResponse)`` per request, in order. Wrap it in
``KeyedModelHandler`` to carry each request's context through ``RunInference``. Batches hold
up to ``spec.batch_size`` requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from kalm_data.generate.backends import BackendSpec, make_backend
from kalm_data.generate.cache import ResponseCache, answer
from kalm_data.generate.llm import Backend, LLMRequest


class LLMHandler(ModelHandler[LLMRequest, PredictionResult, Backend]):
    """See module docstring."""

    def __init__(self, spec: BackendSpec, cache_dir: str | None):
        super().__init__()
        self.spec = spec
        self.cache_dir = cache_dir

    def load_model(self) -> Backend:
        backend = make_backend(self.spec)
        backend.setup()
        return backend

    def run_inference(
        self,
        batch: Sequence[LLMRequest],
        model: Backend,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[PredictionResult]:
        cache = ResponseCache(self.cache_dir) if self.cache_dir else None
        batch = list(batch)
        return [
            PredictionResult(r, a) for r, a in zip(batch, answer(batch, model, cache), strict=True)
        ]

    def batch_elements_kwargs(self) -> dict[str, Any]:
        return {"min_batch_size": 1, "max_batch_size": self.spec.batch_size}

    def get_metrics_namespace(self) -> str:
        return "kalm_data.llm"
