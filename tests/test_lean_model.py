"""``kalm_data.embed.lean_model``: the real MiniLM run with transformers alone gives the bits
sentence-transformers gives, without importing it; any other module stack is left to
sentence-transformers (a real model with a Dense layer, saved and reloaded)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kalm_data.embed.lean_model import LeanModel, StackSpec, stack_spec
from kalm_data.embed.teacher import Teacher, default_teacher

from realdata import load_pairs


@pytest.fixture(scope="module")
def texts() -> list[str]:
    rows = load_pairs(80)
    return [t for r in rows for t in (r["query"], r["positive"])] + ["dose " * 600, ""]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_lean_teacher_gives_sentence_transformers_bits(texts, precision):
    lean = Teacher(default_teacher(), precision=precision)
    full = Teacher(default_teacher(), precision=precision, lean=False)
    assert isinstance(lean.model, LeanModel) and not isinstance(full.model, LeanModel)
    assert (lean.dim, lean.max_tokens) == (full.dim, full.max_tokens) == (384, 256)
    (a, cut_a), (b, cut_b) = lean.encode_counting(texts), full.encode_counting(texts)
    assert np.array_equal(a, b) and cut_a == cut_b >= 1


def test_the_lean_teacher_never_imports_sentence_transformers():
    code = (
        "import sys\n"
        "from kalm_data.embed.teacher import Teacher, default_teacher\n"
        "t = Teacher(default_teacher()); t.encode(['a question', 'an answer'])\n"
        "print(type(t.model).__name__, 'sentence_transformers' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.split() == ["LeanModel", "False"]


def _folder(tmp_path, modules=None, pooling=None, st_config=None):
    """A copy of MiniLM's configs (no weights: ``stack_spec`` reads JSON only), edited."""
    src = default_teacher()
    dst = tmp_path / "model"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    for rel, value in (
        ("modules.json", modules),
        ("1_Pooling/config.json", pooling),
        ("sentence_bert_config.json", st_config),
    ):
        if value is not None:
            (dst / rel).write_text(json.dumps(value))
    return str(dst)


def test_stack_spec_reads_minilm_and_refuses_what_it_cannot_run_exactly(tmp_path):
    assert stack_spec(default_teacher()) == StackSpec("", 256, "mean", True)
    modules = json.loads((Path(default_teacher()) / "modules.json").read_text())
    dense = {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
    cases = {
        "dense": {"modules": [*modules[:2], dense, modules[2]]},
        "weightedmean": {
            "pooling": {"word_embedding_dimension": 384, "pooling_mode": "weightedmean"}
        },
        "two modes": {
            "pooling": {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True}
        },
        "lower case": {"st_config": {"max_seq_length": 256, "do_lower_case": True}},
        "model args": {
            "st_config": {"max_seq_length": 256, "model_args": {"trust_remote_code": True}}
        },
        "no pooling": {"modules": modules[:1]},
    }
    for i, (label, edits) in enumerate(cases.items()):
        assert stack_spec(_folder(tmp_path / str(i), **edits)) is None, label
    newer = _folder(tmp_path / "new", modules=[*modules[:2]], pooling={"pooling_mode": "cls"})
    assert stack_spec(newer) == StackSpec("", 256, "cls", False)


def test_a_model_with_a_dense_layer_is_run_by_sentence_transformers(tmp_path, texts):
    from sentence_transformers import SentenceTransformer, models

    base = SentenceTransformer(default_teacher(), device="cpu")
    dense = models.Dense(base.get_embedding_dimension(), 32)
    model = SentenceTransformer(modules=[base[0], base[1], dense, models.Normalize()], device="cpu")
    model.save(str(tmp_path / "dense"))
    teacher = Teacher(str(tmp_path / "dense"))
    assert not isinstance(teacher.model, LeanModel) and teacher.dim == 32
    expected = model.encode(texts[:30], normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(teacher.encode(texts[:30]), expected, rtol=0, atol=2e-6)


def test_a_model_saved_by_this_sentence_transformers_runs_lean_with_the_same_bits(tmp_path, texts):
    from sentence_transformers import SentenceTransformer

    SentenceTransformer(default_teacher(), device="cpu").save(str(tmp_path / "saved"))
    assert stack_spec(str(tmp_path / "saved")) == StackSpec("", None, "mean", True)
    lean = Teacher(str(tmp_path / "saved"))
    assert isinstance(lean.model, LeanModel) and lean.max_tokens == 256
    full = Teacher(default_teacher(), lean=False)
    assert np.array_equal(lean.encode(texts), full.encode(texts))
