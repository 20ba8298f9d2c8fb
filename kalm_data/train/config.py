"""The ``train`` settings: one validated pydantic model, from YAML and command-line overrides.

Defaults are the published KaLM-Embedding V1 settings for Qwen2-0.5B (../shared/KALM.md section
5) unless a comment says otherwise. Precedence: defaults < ``--config FILE.yaml`` < flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: KaLM V1: Matryoshka prefixes of the 896-d Qwen2-0.5B embedding and their loss weights.
KALM_MATRYOSHKA_DIMS = [896, 512, 256, 128, 64]
KALM_MATRYOSHKA_WEIGHTS = [1.0, 0.3, 0.2, 0.1, 0.1]


class TrainConfig(BaseModel):
    """Settings of ``kalm-data train``. Every field is also a command-line flag."""

    model_config = ConfigDict(extra="forbid")

    # Data and output.
    data: list[str] = Field(
        default_factory=list,
        description="curated folders (DIR/data/<task>/part-*.parquet); local or any fsspec URL",
    )
    model: str = Field(default="Qwen/Qwen2-0.5B", description="HF model id or folder")
    output: str = Field(default="", description="output folder: the SentenceTransformer model")
    # Model.
    pooling: Literal["mean", "lasttoken", "cls"] = Field(
        default="mean", description="mean, lasttoken (appends EOS to every text) or cls"
    )
    bidirectional: bool = Field(
        default=False, description="decoder models: drop the causal mask (KaLM V2)"
    )
    bf16: bool = Field(default=False, description="bf16 autocast (fp32 master weights)")
    gradient_checkpointing: bool = Field(
        default=False, description="recompute activations in backward: less memory, ~30% slower"
    )
    lora_rank: int = Field(default=0, ge=0, description="0 = full fine-tuning; needs `peft`")
    lora_alpha: int = Field(default=32, gt=0, description="LoRA scaling numerator")
    lora_dropout: float = Field(default=0.05, ge=0, lt=1, description="LoRA input dropout")
    query_max_len: int = Field(default=512, gt=0, description="tokens, query side")
    passage_max_len: int = Field(default=512, gt=0, description="tokens, passage side")
    # Batches.
    batch_size: int = Field(default=48, gt=0, description="queries per device per step")
    num_negatives: int = Field(default=7, ge=0, description="hard negatives per query (at most)")
    homogeneous_ratio: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="share of each global batch from one task (1 = task-homogeneous, 0 = random)",
    )
    instructions: bool = Field(
        default=True, description="prefix queries with an instruction (KaLM); off: plain queries"
    )
    instruction_template: str = Field(
        default="Instruct: {instruction}\nQuery: ",
        description="query prefix; {instruction} = the row's instruction or its task name",
    )
    symmetric_task_types: list[str] = Field(
        default_factory=lambda: ["sts", "bitext"],
        description="task types whose queries get no instruction",
    )
    instruct_symmetric: bool = Field(
        default=False, description="give symmetric task types an instruction anyway"
    )
    # Loss.
    temperature: float = Field(default=0.01, gt=0, description="InfoNCE tau on cosine scores")
    matryoshka_dims: list[int] = Field(
        default_factory=lambda: list(KALM_MATRYOSHKA_DIMS),
        description="embedding prefixes trained (clipped to the model width); empty = off",
    )
    matryoshka_weights: list[float] = Field(
        default_factory=lambda: list(KALM_MATRYOSHKA_WEIGHTS),
        description="one loss weight per dim (ignored when matryoshka_dims is empty)",
    )
    focal_gamma: float = Field(
        default=0.0, ge=0, description="focal reweighting (1-p)^gamma; KaLM V2 uses 0.5"
    )
    distill_weight: float = Field(
        default=0.0, ge=0, description="weight of the KL to the shards' teacher scores; 0 = off"
    )
    distill_temperature: float = Field(
        default=0.02, gt=0, description="temperature of the teacher score distribution"
    )
    cached: bool = Field(default=False, description="GradCache: big batches in small memory")
    mini_batch_size: int = Field(default=16, gt=0, description="texts per forward when cached")
    # Optimisation.
    lr: float = Field(default=1e-5, gt=0, description="peak learning rate (AdamW)")
    min_lr_ratio: float = Field(default=0.0, ge=0, le=1, description="final lr / peak lr")
    warmup_ratio: float = Field(default=0.1, ge=0, le=1, description="linear warmup share")
    decay: Literal["linear", "cosine", "constant"] = Field(
        default="linear", description="schedule after warmup: linear, cosine or constant"
    )
    weight_decay: float = Field(default=0.01, ge=0, description="AdamW, matrices only")
    beta1: float = Field(default=0.9, ge=0, lt=1, description="AdamW")
    beta2: float = Field(default=0.999, ge=0, lt=1, description="AdamW")
    grad_clip: float = Field(default=1.0, ge=0, description="0 = no clipping")
    epochs: int = Field(default=1, gt=0, description="used when max_steps is 0")
    max_steps: int = Field(default=0, ge=0, description="0 = as many as `epochs` give")
    seed: int = Field(default=0, description="batches, dropout, evaluation subsample")
    # Logging, evaluation, checkpoints.
    log_every: int = Field(default=10, gt=0, description="steps between log lines")
    eval_beir: str | None = Field(default=None, description="BEIR folder evaluated during training")
    eval_split: str = Field(default="test", description="qrels/<split>.tsv")
    eval_every: int = Field(default=0, ge=0, description="0 = evaluate only at the end")
    eval_batch_size: int = Field(default=64, gt=0, description="texts per encoding batch")
    eval_corpus_size: int = Field(
        default=0, ge=0, description="0 = whole corpus; else the judged docs plus random others"
    )
    query_instruction: str | None = Field(
        default="Given a query, retrieve relevant passages that answer the query",
        description="stored as the exported model's `query` prompt; used by evaluation",
    )
    save_every: int = Field(default=1000, ge=0, description="checkpoint every N steps; 0 = never")
    keep_checkpoints: int = Field(default=2, gt=0, description="newest checkpoints kept")
    resume: bool = Field(default=True, description="continue from the newest checkpoint")
    soup_steps: list[int] = Field(
        default_factory=list,
        description="average these checkpoints' weights into the exported model (model soup)",
    )
    # Runtime.
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="auto = CUDA when available"
    )
    threads: int = Field(default=0, ge=0, description="torch CPU threads; 0 = torch's default")

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.matryoshka_dims and len(self.matryoshka_dims) != len(self.matryoshka_weights):
            raise ValueError(
                f"matryoshka_dims ({len(self.matryoshka_dims)}) and matryoshka_weights "
                f"({len(self.matryoshka_weights)}) must have the same length"
            )
        if any(d <= 0 for d in self.matryoshka_dims):
            raise ValueError("matryoshka_dims must be positive")
        if "{instruction}" not in self.instruction_template:
            raise ValueError("instruction_template must contain {instruction}")
        if self.save_every and any(s % self.save_every for s in self.soup_steps):
            raise ValueError(f"soup_steps {self.soup_steps} must be multiples of save_every")
        if self.soup_steps and not self.save_every:
            raise ValueError("soup_steps needs save_every > 0 (the soup averages checkpoints)")
        return self

    def query_prompt(self, instruction: str | None) -> str:
        """The text put before a query: the template filled in, or "" without an instruction."""
        if not (self.instructions and instruction):
            return ""
        return self.instruction_template.format(instruction=instruction)


def load_train_config(path: str | Path | None, overrides: dict) -> TrainConfig:
    """Defaults, then the YAML file at ``path`` (if any), then ``overrides`` (None skipped)."""
    from kalm_data.settings import read_yaml

    data = read_yaml(path)
    data.update({k: v for k, v in overrides.items() if v is not None})
    if isinstance(data.get("data"), str):
        data["data"] = [data["data"]]  # `data: DIR` in a YAML file
    return TrainConfig.model_validate(data)
