"""The ``generate`` settings: one validated pydantic model, from YAML and command-line flags.

Defaults follow the published recipe (../shared/KALM.md section 1): six E5 task types, about 20
task definitions per brainstorm, a persona as the brainstorm's system prompt only, English and
Chinese outputs. Sampling: E5's temperature 1.0 / top-p 1.0 for brainstorms (diverse tasks), and
0.7 / 0.95 for examples (between E5's 1.0 and PersonaHub's 0.6: well-formed JSON, varied text).
Precedence: defaults < ``--config FILE.yaml`` < flags.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

GEN_TASK_TYPES = ("short-long", "long-short", "short-short", "long-long", "sts", "bitext")

BackendName = Literal["vllm", "openai", "transformers"]


class GenerateConfig(BaseModel):
    """Settings of the ``generate`` pipeline (and the generate half of ``synthesize``)."""

    model_config = ConfigDict(extra="forbid")

    personas: list[str] = Field(
        default_factory=lambda: ["seed"],
        description="persona sources: JSONL/Parquet with a `persona` field, a datasets id, or "
        "`seed` (the 300 personas shipped in personas/)",
    )
    output: str = ""
    # What to generate.
    task_types: list[str] = Field(default_factory=lambda: list(GEN_TASK_TYPES))
    languages: list[str] = Field(
        default_factory=lambda: ["en", "zh"], description="output languages (ISO 639-1)"
    )
    personas_per_type: int = Field(
        default=25,
        gt=0,
        description="brainstorm requests per two-stage task type (one persona each)",
    )
    tasks_per_persona: int = Field(
        default=20, gt=0, le=40, description="task definitions asked of each brainstorm"
    )
    single_stage_examples: int = Field(
        default=0,
        ge=0,
        description="example requests per single-stage type (sts, bitext); "
        "0 = personas_per_type x tasks_per_persona",
    )
    seed: int = 0
    # The LLM.
    llm: BackendName = Field(default="vllm", description="backend")
    model: str = Field(default="Qwen/Qwen2.5-7B-Instruct", description="model id or folder")
    base_url: str | None = Field(default=None, description="openai: the server's /v1 URL")
    api_key_env: str = Field(
        default="OPENAI_API_KEY", description="openai: environment variable holding the key"
    )
    concurrency: int = Field(default=8, gt=0, description="openai: requests in flight")
    max_retries: int = Field(default=5, ge=0, description="openai: retries on 429/5xx/timeout")
    timeout: float = Field(default=120.0, gt=0, description="openai: seconds per request")
    gpu_memory_utilization: float = Field(
        default=0.9, gt=0, le=1, description="vllm: share of GPU memory (of RAM on CPU)"
    )
    max_model_len: int | None = Field(default=None, description="vllm: context length cap")
    tensor_parallel_size: int = Field(default=1, gt=0, description="vllm: GPUs per engine")
    enforce_eager: bool = Field(
        default=False, description="vllm: no graph capture or compilation (quicker start)"
    )
    dtype: str = Field(default="auto", description="vllm / transformers: weights dtype")
    device: str = Field(default="cpu", description="transformers: torch device (cpu, cuda)")
    constrain: Literal["xgrammar", "none"] = Field(
        default="xgrammar", description="transformers: schema-constrained decoding"
    )
    accelerator: str | None = Field(
        default=None,
        description="Dataflow GPU resource hint of the LLM steps, e.g. "
        "'type:nvidia-l4;count:1;install-nvidia-driver' (other steps stay on CPU workers)",
    )
    llm_batch_size: int = Field(default=64, gt=0, description="requests per backend call")
    brainstorm_temperature: float = Field(default=1.0, ge=0)
    brainstorm_top_p: float = Field(default=1.0, gt=0, le=1)
    temperature: float = Field(default=0.7, ge=0, description="example stage")
    top_p: float = Field(default=0.95, gt=0, le=1, description="example stage")
    max_tokens: int = Field(default=1024, gt=0, description="per response")
    # Output.
    llm_cache_dir: str | None = Field(
        default=None,
        description="LLM response cache; None = OUTPUT/.kalm-data/llm-cache (a rerun after a kill "
        "pays for no finished request)",
    )
    rows_per_shard: int = Field(default=100_000, gt=0)
    show_paths: bool = Field(default=False, description="record full local paths")

    @field_validator("task_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(GEN_TASK_TYPES))
        if unknown or not value:
            raise ValueError(f"unknown task type(s) {unknown}; known: {list(GEN_TASK_TYPES)}")
        return list(dict.fromkeys(value))

    @field_validator("languages")
    @classmethod
    def _some_language(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one language is needed")
        return list(dict.fromkeys(v.strip().lower() for v in value))
