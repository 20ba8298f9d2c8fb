"""Hugging Face transformers: the fallback ``Backend``, with JSON Schema enforced by xgrammar.

Contract (see ``kalm_data.generate.llm``):
- ``TransformersBackend(model, ...)`` stores the settings only; ``setup()`` loads
  ``AutoTokenizer`` + ``AutoModelForCausalLM`` (hub id or local folder) and, unless
  ``constrain="none"``, an xgrammar ``GrammarCompiler`` for the tokenizer. Nothing heavy is
  imported before ``setup()``.
- ``name`` is the model id, or only the folder's name for a local path.
- ``constrains`` is True with ``constrain="xgrammar"``: a request's ``json_schema`` is compiled
  (once per distinct schema) and applied as a token mask at every step, so an answer that ends
  with ``stop`` parses and validates. With ``constrain="none"`` it is False and the schema is
  ignored while decoding.
- ``generate(requests)`` renders each chat with the tokenizer's chat template
  (``add_generation_prompt``), groups requests by ``max_tokens``, left-pads batches of at most
  ``batch_size`` and runs ``model.generate``. ``finish_reason`` is ``length`` when
  ``max_tokens`` tokens came without an end-of-sequence token, else ``stop``;
  ``prompt_tokens`` counts the prompt (no padding), ``completion_tokens`` the sampled tokens
  (the end-of-sequence token included, as vLLM counts). A request that fails (bad schema,
  template error, a batch that raises and then fails again alone) is answered with
  ``finish_reason="error"``: one bad request never fails the batch.

Sampling and seeds: each request's answer depends on its own seed, never on the other requests
of its batch (the same request alone or in any batch gives the same text). ``model.generate``
runs in greedy mode and the last logits processor (``_SeededSampler``) samples: per row,
temperature, top-p (the smallest prefix of tokens whose mass reaches ``top_p``) and the step's
uniform from a ``torch.Generator`` seeded with the request's seed, then it leaves only the drawn
token finite, so greedy takes it. HF's own sampling draws from one global generator for the
whole batch, so a row's tokens would change with its neighbours. Left padding can move logits
by float rounding; a draw changes only if that moves a token boundary across its uniform.
``temperature=0`` is greedy decoding. The model's own ``generation_config`` sampling defaults
(repetition penalty, top-k) are not applied: the request's ``Sampling`` is the whole recipe,
as the response cache key says.

xgrammar 0.2.8 lowers a string with ``maxLength``/``minLength`` to a bounded repetition of a
character class that excludes only quote, backslash, CR and LF: it admits raw control
characters U+0000-U+001F (invalid JSON; a tiny model writes them often) and no escapes
(mlc-ai/xgrammar#800, open). ``json_schema_grammar`` compiles the converted EBNF with control
characters taken out of that class. Escapes stay impossible in length-bounded strings (no
quote, backslash or newline inside them): adding the escape branch to the repetition
makes every mask ~200x slower (the bounded repetition is only fast over a plain character class).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from kalm_data.generate.llm import LLMRequest, LLMResponse, Sampling, model_name

log = logging.getLogger(__name__)

CONSTRAINTS = ("xgrammar", "none")

#: The bounded string character of xgrammar's converter, and what it should be (see docstring).
_BOUNDED_CHAR = r"(([^\"\\\r\n]))"
_JSON_CHAR = r"(([^\0-\x1f\"\\]))"


def json_schema_grammar(compiler: Any, schema: dict[str, Any]) -> Any:
    """``schema`` compiled by the xgrammar ``compiler``: compact JSON, properties in order."""
    import xgrammar as xgr

    grammar = xgr.Grammar.from_json_schema(json.dumps(schema), any_whitespace=False)
    ebnf = str(grammar)
    if _BOUNDED_CHAR in ebnf:
        grammar = xgr.Grammar.from_ebnf(ebnf.replace(_BOUNDED_CHAR, _JSON_CHAR))
    return compiler.compile_grammar(grammar)


@dataclass
class _Prepared:
    """One request ready to batch: its place in the call, prompt tokens and grammar."""

    index: int
    request: LLMRequest
    prompt_ids: list[int]
    grammar: Any  # xgrammar.CompiledGrammar | None


class TransformersBackend:
    """A chat model run by ``transformers`` in this process (see module docstring)."""

    constrains: ClassVar[bool] = True

    def __init__(
        self,
        model: str,
        *,
        device: str = "cpu",
        dtype: str = "auto",
        constrain: str = "xgrammar",
        batch_size: int = 8,
    ) -> None:
        if constrain not in CONSTRAINTS:
            raise ValueError(f"unknown constrain {constrain!r}; known: {', '.join(CONSTRAINTS)}")
        self.model = model
        self.name = model_name(model)
        self.device = device
        self.dtype = dtype
        self.constrain = constrain
        self.constrains = constrain != "none"  # per instance: shadows the class default
        self.batch_size = batch_size
        self._model: Any = None
        self._tokenizer: Any = None
        self._compiler: Any = None
        self._grammars: dict[str, Any] = {}
        self._eos_ids: list[int] = []
        self._pad_id = 0

    def setup(self) -> None:
        """Load tokenizer, model and grammar compiler once (idempotent)."""
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dtype = self.dtype if self.dtype == "auto" else getattr(torch, self.dtype)
        self._tokenizer = AutoTokenizer.from_pretrained(self.model)
        model = AutoModelForCausalLM.from_pretrained(self.model, dtype=dtype)
        self._model = model.to(self.device).eval()
        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = self._tokenizer.eos_token_id
        self._eos_ids = [eos] if isinstance(eos, int) else list(eos)
        pad = self._tokenizer.pad_token_id
        self._pad_id = self._eos_ids[0] if pad is None else pad
        if self.constrains:
            import xgrammar as xgr

            info = xgr.TokenizerInfo.from_huggingface(
                self._tokenizer,
                vocab_size=model.config.get_text_config().vocab_size,
                stop_token_ids=self._eos_ids,
            )
            self._compiler = xgr.GrammarCompiler(info)
        log.info("loaded %s on %s (constrain=%s)", self.name, self.device, self.constrain)

    def generate(self, requests: list[LLMRequest]) -> list[LLMResponse]:
        """One response per request, in order (see module docstring)."""
        self.setup()
        responses: dict[int, LLMResponse] = {}
        prepared = []
        for index, request in enumerate(requests):
            try:
                prepared.append(self._prepare(index, request))
            except Exception as exc:  # one bad request must not fail the batch
                log.warning("request %s rejected before generation: %s", request.id, exc)
                responses[index] = _error(request, exc)
        for batch in _batches(prepared, self.batch_size):
            for item, response in zip(batch, self._run_isolated(batch), strict=True):
                responses[item.index] = response
        return [responses[i] for i in range(len(requests))]

    def _prepare(self, index: int, request: LLMRequest) -> _Prepared:
        text = self._tokenizer.apply_chat_template(
            request.messages(), add_generation_prompt=True, tokenize=False
        )
        # The template already wrote the special tokens (BOS, role markers): add none.
        ids = self._tokenizer(text, add_special_tokens=False)["input_ids"]
        grammar = None
        if self.constrains and request.json_schema is not None:
            key = json.dumps(request.json_schema, sort_keys=True)
            if key not in self._grammars:
                self._grammars[key] = json_schema_grammar(self._compiler, request.json_schema)
            grammar = self._grammars[key]
        return _Prepared(index, request, ids, grammar)

    def _run_isolated(self, batch: list[_Prepared]) -> list[LLMResponse]:
        """``_run``; if the batch raises, each request alone, and errors for those that fail."""
        try:
            return self._run(batch)
        except Exception as exc:
            if len(batch) == 1:
                log.warning("request %s failed: %s", batch[0].request.id, exc)
                return [_error(batch[0].request, exc)]
            log.warning("batch of %d failed (%s); retrying one by one", len(batch), exc)
            return [response for item in batch for response in self._run_isolated([item])]

    def _run(self, batch: list[_Prepared]) -> list[LLMResponse]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        width = max(len(item.prompt_ids) for item in batch)
        pads = [width - len(item.prompt_ids) for item in batch]
        input_ids = torch.tensor(
            [[self._pad_id] * p + item.prompt_ids for p, item in zip(pads, batch, strict=True)]
        )  # (batch, width), left-padded
        attention_mask = torch.tensor([[0] * p + [1] * (width - p) for p in pads])
        processors = LogitsProcessorList()
        grammars = [item.grammar for item in batch]
        if any(g is not None for g in grammars):
            processors.append(_GrammarMask(grammars))
        steps = batch[0].request.sampling.max_tokens
        samplings = [item.request.sampling for item in batch]
        processors.append(_SeededSampler(samplings, steps, self.device))
        config = GenerationConfig(
            do_sample=False,  # _SeededSampler samples; greedy takes its one finite token
            max_new_tokens=steps,
            eos_token_id=self._eos_ids,
            pad_token_id=self._pad_id,
            repetition_penalty=1.0,
        )
        with torch.inference_mode():
            out = self._model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention_mask.to(self.device),
                generation_config=config,
                logits_processor=processors,
            )
        rows = out[:, width:].tolist()
        return [self._response(item, row) for item, row in zip(batch, rows, strict=True)]

    def _response(self, item: _Prepared, row: list[int]) -> LLMResponse:
        eos = set(self._eos_ids)
        end = next((i for i, token in enumerate(row) if token in eos), None)
        tokens = row if end is None else row[:end]
        return LLMResponse(
            id=item.request.id,
            text=self._tokenizer.decode(tokens, skip_special_tokens=True),
            finish_reason="length" if end is None else "stop",
            prompt_tokens=len(item.prompt_ids),
            completion_tokens=len(row) if end is None else end + 1,
        )


def _batches(prepared: list[_Prepared], size: int) -> Iterator[list[_Prepared]]:
    """Batches of equal ``max_tokens``, prompts of similar length together (less padding)."""
    groups: dict[int, list[_Prepared]] = {}
    for item in prepared:
        groups.setdefault(item.request.sampling.max_tokens, []).append(item)
    for group in groups.values():
        group.sort(key=lambda item: len(item.prompt_ids))
        for start in range(0, len(group), size):
            yield group[start : start + size]


def _error(request: LLMRequest, exc: Exception) -> LLMResponse:
    return LLMResponse(
        id=request.id, finish_reason="error", error=f"{type(exc).__name__}: {exc}".strip()
    )


class _GrammarMask:
    """Logits processor: masks each constrained row to the tokens its grammar allows next.

    ``grammars[i]`` is the compiled grammar of row ``i`` (``None``: free text). Use once per
    ``generate`` call: the matchers follow the rows' tokens step by step.
    """

    def __init__(self, grammars: list[Any]) -> None:
        import xgrammar as xgr

        self._apply = xgr.apply_token_bitmask_inplace
        self.matchers = [
            (i, xgr.GrammarMatcher(g)) for i, g in enumerate(grammars) if g is not None
        ]
        vocab = next(g for g in grammars if g is not None).tokenizer_info.vocab_size
        self.bitmask = xgr.allocate_token_bitmask(len(grammars), vocab)  # (batch, vocab/32)
        self.started = False

    def __call__(self, input_ids, scores):  # (batch, seq), (batch, vocab)
        # From the second step on, input_ids ends with the token each row just took.
        last = input_ids[:, -1].tolist() if self.started else None
        self.started = True
        live = []
        for i, matcher in self.matchers:
            if matcher.is_terminated():  # its stop token is in: the row only pads now
                continue
            if last is not None and not matcher.accept_token(last[i]):
                raise RuntimeError(f"grammar rejected token {last[i]} in row {i}")
            if not matcher.is_terminated():
                matcher.fill_next_token_bitmask(self.bitmask, i)
                live.append(i)
        if not live:
            return scores
        if scores.device.type in ("cpu", "cuda"):  # xgrammar's kernels: in place
            self._apply(scores, self.bitmask.to(scores.device), indices=live)
            return scores
        masked = scores.cpu()
        self._apply(masked, self.bitmask, indices=live)
        return masked.to(scores.device)


class _SeededSampler:
    """Logits processor: samples one token per row from its own seeded uniforms.

    Row ``i`` draws ``steps`` uniforms from ``torch.Generator().manual_seed(seed_i)`` up front
    and uses the ``t``-th at step ``t``, so its tokens depend only on its seed and its own
    logits. Returns scores that are ``-inf`` except at the drawn token: greedy takes it.
    """

    def __init__(self, samplings: list[Sampling], steps: int, device: Any) -> None:
        import torch

        self._torch = torch
        self.uniforms = torch.stack(
            [torch.rand(steps, generator=torch.Generator().manual_seed(s.seed)) for s in samplings]
        ).to(device)  # (batch, steps)
        self.step = 0
        temperature = [s.temperature if s.temperature > 0 else 1.0 for s in samplings]
        self.temperature = torch.tensor(temperature, device=device)[:, None]  # (batch, 1)
        self.top_p = torch.tensor([s.top_p for s in samplings], device=device)[:, None]
        greedy = [s.temperature <= 0 for s in samplings]
        self.greedy = torch.tensor(greedy, device=device)[:, None] if any(greedy) else None

    def __call__(self, input_ids, scores):  # (batch, seq), (batch, vocab)
        torch = self._torch
        u = self.uniforms[:, self.step : self.step + 1]  # (batch, 1)
        self.step += 1
        probs = torch.softmax(scores / self.temperature, dim=-1)
        sorted_p, order = probs.sort(dim=-1, descending=True, stable=True)  # (batch, vocab)
        cum = sorted_p.cumsum(dim=-1)
        # Nucleus: tokens 0..last, last the first whose cumulative mass reaches top_p.
        last = torch.searchsorted(cum, self.top_p).clamp(max=cum.shape[-1] - 1)  # (batch, 1)
        # Inverse CDF over the nucleus; searching left lands on a token of positive mass.
        pos = torch.searchsorted(cum, u * cum.gather(1, last))  # (batch, 1)
        token = order.gather(1, torch.minimum(pos, last))  # (batch, 1)
        if self.greedy is not None:
            token = torch.where(self.greedy, scores.argmax(dim=-1, keepdim=True), token)
        return torch.full_like(scores, float("-inf")).scatter_(1, token, 0.0)
