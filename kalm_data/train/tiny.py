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


#: ChatML, as Qwen2 instruct models use it.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_chat_qwen(folder, texts: list[str], seed: int = 0, vocab_size: int = 2000) -> str:
    """A tiny random ``Qwen2ForCausalLM`` with a ChatML template, for the generate backends.

    head_dim is 64 (hidden 128, 2 heads): vLLM's CPU attention kernel rejects smaller heads.
    Saved with its tokenizer and generation config in ``folder``; returns it as a string.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    specials = [EOS, "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token=EOS,
        additional_special_tokens=["<|im_start|>"],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids(EOS),
        bos_token_id=tokenizer.convert_tokens_to_ids(EOS),
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)
