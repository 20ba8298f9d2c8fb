"""A content-addressed cache of LLM responses, on any filesystem fsspec reaches.

Contract: ``ResponseCache(root).get(key)`` returns the ``LLMResponse`` stored under ``key``
(``LLMRequest.key(model)``: model, messages, schema, sampling and seed) or None; ``put`` stores one
atomically (written to a temporary name, then renamed), so a kill never leaves a half-written
entry. Only finished answers are stored (``stop`` or ``length``): an ``error`` is asked again on the
next run. ``answer(requests, backend, cache)`` answers a batch from the cache first and asks the
backend only for the rest, storing each answer as soon as the backend reports it
(``on_answer``): a rerun after a kill pays for no finished request.

Layout: ``<root>/<key[:2]>/<key>.json``.
"""

from __future__ import annotations

import logging
import os
import uuid

from kalm_data.generate.llm import Backend, LLMRequest, LLMResponse

log = logging.getLogger(__name__)


class ResponseCache:
    """See module docstring."""

    def __init__(self, root: str):
        import fsspec

        self.root = root.rstrip("/")
        self.fs, self._base = fsspec.core.url_to_fs(self.root)
        self._base = self._base.rstrip("/")

    def _path(self, key: str) -> str:
        return f"{self._base}/{key[:2]}/{key}.json"

    def get(self, key: str) -> LLMResponse | None:
        try:
            with self.fs.open(self._path(key), "r", encoding="utf-8") as f:
                return LLMResponse.model_validate_json(f.read())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:  # a damaged entry is asked again, not trusted
            log.warning("ignoring damaged cache entry %s: %s", self._path(key), e)
            return None

    def put(self, key: str, response: LLMResponse) -> None:
        if response.finish_reason == "error":
            return
        path = self._path(key)
        folder = os.path.dirname(path)
        self.fs.makedirs(folder, exist_ok=True)
        temporary = f"{folder}/.{key}.{uuid.uuid4().hex}.tmp"
        body = response.model_copy(update={"cached": False}).model_dump_json()
        with self.fs.open(temporary, "w", encoding="utf-8") as f:
            f.write(body)
        self.fs.mv(temporary, path)


def answer(
    requests: list[LLMRequest], backend: Backend, cache: ResponseCache | None
) -> list[LLMResponse]:
    """One response per request, in order: cached ones first, the rest from ``backend``
    (each stored as soon as the backend returns it)."""
    if cache is None:
        return _checked(requests, backend.generate(requests))
    keys = [r.key(backend.name) for r in requests]
    found: list[LLMResponse | None] = []
    for key, request in zip(keys, requests, strict=True):
        hit = cache.get(key)
        found.append(hit.model_copy(update={"id": request.id, "cached": True}) if hit else None)
    missing = [i for i, hit in enumerate(found) if hit is None]
    if missing:
        asked = [requests[i] for i in missing]
        key_of = {requests[i].id: keys[i] for i in missing}
        stored: set[str] = set()

        def store(response: LLMResponse) -> None:
            if response.id in key_of and response.id not in stored:
                cache.put(key_of[response.id], response)
                stored.add(response.id)

        fresh = _checked(asked, _generate(backend, asked, store))
        for i, response in zip(missing, fresh, strict=True):
            store(response)
            found[i] = response
    return [r for r in found if r is not None]


def _generate(backend: Backend, requests: list[LLMRequest], on_answer) -> list[LLMResponse]:
    """``backend.generate`` with ``on_answer`` where the backend takes it."""
    import inspect

    if "on_answer" in inspect.signature(backend.generate).parameters:
        return backend.generate(requests, on_answer=on_answer)
    return backend.generate(requests)


def _checked(requests: list[LLMRequest], responses: list[LLMResponse]) -> list[LLMResponse]:
    if len(responses) != len(requests):
        raise RuntimeError(f"the LLM backend answered {len(responses)} of {len(requests)} requests")
    return responses
