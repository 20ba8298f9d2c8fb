"""Model loading, pooling (mean / last token with EOS / CLS), bidirectional attention, LoRA."""

from __future__ import annotations

import pytest
import torch
from train_helpers import assert_close

from kalm_data.train.encoder import attends_causally, load_encoder
from kalm_data.train.pooling import cls_pool, ensure_eos, last_token_pool, mean_pool

TEXTS = [
    "What are the symptoms of glaucoma?",
    "Who wrote it?",
    "How is leukemia treated in adults?",
]


def test_poolers_with_right_and_left_padding():
    hidden = torch.arange(2 * 4 * 2, dtype=torch.float32).reshape(2, 4, 2)  # (batch, seq, dim)
    right = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    left = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1]])
    assert last_token_pool(hidden, right).tolist() == [hidden[0, 2].tolist(), hidden[1, 1].tolist()]
    assert last_token_pool(hidden, left).tolist() == [hidden[0, 3].tolist(), hidden[1, 3].tolist()]
    assert cls_pool(hidden, right).tolist() == [hidden[0, 0].tolist(), hidden[1, 0].tolist()]
    assert cls_pool(hidden, left).tolist() == [hidden[0, 1].tolist(), hidden[1, 2].tolist()]
    assert mean_pool(hidden, right)[1].tolist() == hidden[1, :2].mean(0).tolist()
    assert mean_pool(hidden, left)[1].tolist() == hidden[1, 2:].mean(0).tolist()


def test_last_token_pooling_reads_an_appended_eos(tiny_qwen):
    encoder = load_encoder(tiny_qwen, pooling="lasttoken")
    tok = encoder.tokenizer
    ids = tok(TEXTS[0])["input_ids"]
    assert ids[-1] == tok.eos_token_id
    truncated = tok(TEXTS[2], truncation=True, max_length=5)["input_ids"]
    assert len(truncated) == 5 and truncated[-1] == tok.eos_token_id  # EOS survives truncation
    assert not ensure_eos(tok)  # idempotent
    encoder.eval()
    feats = encoder.tokenize(TEXTS, 64)
    pooled = encoder(**feats)  # (3, 64)
    hidden = encoder.model(**feats).last_hidden_state
    for i in range(len(TEXTS)):
        last = int(feats["attention_mask"][i].sum()) - 1  # right padding
        assert feats["input_ids"][i, last] == tok.eos_token_id
        assert_close(pooled[i], hidden[i, last], name=TEXTS[i])


def test_ensure_eos_leaves_bert_alone(minilm):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(minilm)
    before = tok("hello")["input_ids"]
    assert not ensure_eos(tok)
    assert tok("hello")["input_ids"] == before


def test_bidirectional_attention_sees_later_tokens(tiny_qwen):
    causal = load_encoder(tiny_qwen)
    bidi = load_encoder(tiny_qwen, bidirectional=True)
    assert attends_causally(causal.model) and not attends_causally(bidi.model)
    assert bidi.model.config.is_causal is False
    a = causal.encode(TEXTS, 64)
    b = bidi.encode(TEXTS, 64)
    assert not torch.allclose(a, b, atol=1e-3)  # same weights, other mask
    # padding stays masked: a text alone equals the same text in a padded batch
    alone = bidi.encode(TEXTS[1:2], 64)
    assert_close(alone[0], b[1], name="alone vs padded")


def test_encoder_model_matches_sentence_transformers(minilm):
    from sentence_transformers import SentenceTransformer

    ours = load_encoder(minilm, pooling="mean").encode(TEXTS, 256)
    theirs = SentenceTransformer(minilm, device="cpu").encode(TEXTS, convert_to_tensor=True)
    assert_close(ours, theirs.cpu(), name="ours vs sentence-transformers")


def test_lora_trains_adapters_only_and_merges(tiny_qwen):
    pytest.importorskip("peft")
    encoder = load_encoder(tiny_qwen, lora_rank=4)
    trainable = [n for n, p in encoder.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    merged = encoder.merged()
    assert not any("lora_" in n for n, _ in merged.named_parameters())


def test_lora_without_peft_is_a_clear_error(tiny_qwen, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_peft(name, *args, **kwargs):
        if name == "peft":
            raise ImportError("no peft")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_peft)
    with pytest.raises(ImportError, match="pip install peft"):
        load_encoder(tiny_qwen, lora_rank=4)


def test_gradient_checkpointing_gives_the_same_gradients(tiny_qwen):
    def grads(encoder):
        encoder.train()  # checkpointing only acts in training mode (dropout on: same seed)
        torch.manual_seed(0)
        feats = encoder.tokenize(TEXTS, 64)
        encoder(**feats).pow(2).sum().backward()
        return {n: p.grad for n, p in encoder.named_parameters() if p.grad is not None}

    plain = grads(load_encoder(tiny_qwen))
    checkpointed_encoder = load_encoder(tiny_qwen, gradient_checkpointing=True)
    calls = []
    layer = checkpointed_encoder.model.layers[0].self_attn  # inside the checkpointed forward
    layer.register_forward_hook(lambda *_: calls.append(1))
    checkpointed = grads(checkpointed_encoder)
    assert len(calls) == 2  # the layer ran again during backward: activations were recomputed
    assert plain.keys() == checkpointed.keys()
    for name in plain:
        assert_close(checkpointed[name], plain[name], name=name)
