"""A tiny random-initialised Qwen2 with a tokenizer trained on the fly, for tests and benchmarks.

Contract: ``build_tiny_qwen(folder, texts)`` trains a byte-level BPE tokenizer on ``texts``,
builds a ``Qwen2Model`` (hidden 64, 2 layers, 4 heads, 2 KV heads; ``config`` overrides any
setting) with seeded random weights, and saves both with ``save_pretrained``: ``folder`` then
loads by path like any hub checkpoint, offline.
"""

from __future__ import annotations

EOS = "<|endoftext|>"


def build_tiny_qwen(
    folder, texts: list[str], seed: int = 0, vocab_size: int = 2000, **config
) -> str:
    """Save the tiny model and its tokenizer in ``folder``; returns the folder as a string."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2Model

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS)
    settings = dict(
        vocab_size=tokenizer.vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
    )
    settings.update(config)
    torch.manual_seed(seed)
    Qwen2Model(Qwen2Config(**settings)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)
