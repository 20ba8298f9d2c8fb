"""The stage checkpoints of ``curate``: what each one's key holds, and their clean-up.

Two checkpoints (``kalm_data.harness.checkpoint``): "pairs" (read, validate, dedup,
decontamination, near-duplicates, merge by query) and "mined" (corpus, embedding, search,
negatives, filter). Each is keyed by the inputs and by the settings its stage reads, listed here
by ``CurateConfig`` field; "mined"'s key holds "pairs"'s, so a change re-runs its stage and every
stage after it. ``kalm_data.curate.pipeline`` reads a finished checkpoint instead of running its
stage.
"""

from __future__ import annotations

import logging

from kalm_data.curate.config import CurateConfig
from kalm_data.harness.checkpoint import Checkpoint, checkpoint_root, files_signature, stage_key
from kalm_data.published import teacher_name

log = logging.getLogger(__name__)

#: What each checkpoint's key holds, besides the kalm-data, schema and format versions
#: (``stage_key``) and the input fingerprints: the settings its stage reads (by ``CurateConfig``
#: field, valued as the manifest records them: paths by their recorded names). A change to one
#: re-runs that stage and every stage after it: "mined"'s key holds "pairs"'s.
#: "pairs" (read, validate, dedup, decontamination, near-duplicates, merge by query) also holds
#: the evaluation sets' file sizes and times, and the teacher's fingerprint when
#: ``overlong="reject"`` (validation then measures texts with its tokenizer) or
#: ``decontam_embed_threshold`` is set (decontamination compares its vectors).
PAIRS_SETTINGS = (
    *("inputs", "max_chars", "overlong", "show_paths", "paths_root"),
    *("decontaminate", "decontam_ngram", "decontam_embed_threshold"),
    *("near_dup", "near_dup_threshold", "near_dup_shingle", "near_dup_num_perm", "near_dup_bands"),
)
#: "mined" (corpus, embedding, search, negatives, filter) also holds the corpus fingerprints and
#: the teacher's fingerprint (model and precision). A setting in none of these lists (a new one)
#: counts as a mining setting: a stage is re-run rather than wrongly reused.
MINED_SETTINGS = (
    *("corpus", "teacher", "precision", "seed"),
    *("index", "ivf_nlist", "ivf_nprobe", "ivf_pq_m", "pool_shard_size", "faiss_device"),
    *("num_negatives", "window_start", "window_end", "margin", "near_duplicate"),
    *("filter_rule", "filter_k", "filter_margin", "filter_query_k"),
)
#: Settings that change where or how fast the work is done, or how the output files are cut,
#: never the checkpointed records. (The embedding cache shares vectors across these too.)
NOT_CHECKPOINTED = (
    *("output", "cache_dir", "checkpoints", "rows_per_shard", "decontam_shards"),
    *("batch_size", "token_budget", "torch_threads", "teacher_process", "embed_ranges"),
    *("cpu_kernels", "mine_blocks", "low_memory"),
)
PAIRS_COLLECTIONS = ("examples", "reports", "read")
MINED_COLLECTIONS = ("kept", "reports")


def checkpoint_plan(
    cfg: CurateConfig, settings: dict, teacher: str, fingerprint: str, inputs: list[dict]
) -> dict[str, Checkpoint]:
    """The "pairs" and "mined" checkpoints of this run (keys: see ``PAIRS_SETTINGS``).
    ``settings`` are the settings as the manifest records them (``published_settings``);
    ``inputs`` are ``_preflight``'s entries (the inputs', then the corpus's)."""
    from kalm_data.readers.evalsets import eval_set_name

    settings = {**settings, "teacher": teacher_name(teacher, cfg.show_paths)}  # as rows record it
    n = len(cfg.inputs)
    pairs = stage_key(
        {
            "inputs_read": inputs[:n],
            "eval_sets": [[eval_set_name(x), files_signature(x)] for x in cfg.decontaminate],
            "validate_teacher": fingerprint if cfg.overlong == "reject" else None,
            "decontam_teacher": fingerprint if cfg.decontam_embed_threshold else None,
            **{k: settings[k] for k in PAIRS_SETTINGS},
        }
    )
    listed = (*PAIRS_SETTINGS, *MINED_SETTINGS, *NOT_CHECKPOINTED)
    unlisted = [k for k in settings if k not in listed]
    mined = stage_key(
        {
            "pairs": pairs,
            "corpus_read": inputs[n:],
            "teacher_fingerprint": fingerprint,
            **{k: settings.get(k) for k in (*MINED_SETTINGS, *unlisted)},
        }
    )
    root = checkpoint_root(cfg.output)
    return {"pairs": Checkpoint(root, "pairs", pairs), "mined": Checkpoint(root, "mined", mined)}


def _cached_note(plan: dict[str, Checkpoint], cache_dir: str, fingerprint: str, corpus) -> str:
    key = stage_key({"cache_dir": cache_dir, "teacher_fingerprint": fingerprint, "corpus": corpus})
    return f"{plan['pairs'].folder}/all-cached-{key}.json"


def all_cached(plan: dict[str, Checkpoint], cache_dir: str, fingerprint: str, corpus) -> bool:
    """True when "pairs" is done and a run with this cache, teacher and corpus (``corpus``: its
    input entries) noted that every text it embeds is cached, and the cache is still there. A
    wrong True (a cache emptied since) costs speed, never rows: missing vectors are encoded."""
    import fsspec

    if not plan["pairs"].done():
        return False
    fs, note = fsspec.core.url_to_fs(_cached_note(plan, cache_dir, fingerprint, corpus))
    cache_fs, teacher_cache = fsspec.core.url_to_fs(f"{cache_dir.rstrip('/')}/{fingerprint}")
    return fs.exists(note) and cache_fs.exists(teacher_cache)


def note_all_cached(plan: dict[str, Checkpoint], cache_dir: str, fingerprint: str, corpus):
    """Note in "pairs" that every text of its pairs and of ``corpus`` is in the cache (call
    after a committed run that embedded them)."""
    from kalm_data.writers.manifest import write_json

    write_json(
        {"cache_dir": cache_dir, "teacher_fingerprint": fingerprint},
        _cached_note(plan, cache_dir, fingerprint, corpus),
    )


def remove_unused_checkpoints(output: str, keep: list[str]) -> None:
    """After a commit: remove the checkpoints this run did not use, with the output locked (a
    run started since keeps its own)."""
    from kalm_data.errors import UsageError
    from kalm_data.harness.checkpoint import remove_unused
    from kalm_data.writers.lock import OutputLock

    try:
        with OutputLock(output):
            remove_unused(checkpoint_root(output), keep)
    except UsageError as e:  # another run holds the output: it cleans up after itself
        log.info("unused checkpoints kept: %s", e)
