"""The stage contract: a stage written only against ``kalm_data.stage`` plugs into ``curate``;
its rejections, counters and manifest entries appear with no other change."""

from __future__ import annotations

import json
from enum import Enum

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from kalm_data.beam.stage import ApplyStage
from kalm_data.curate.config import CurateConfig
from kalm_data.inputs import InputSpec
from kalm_data.records import InputPair, RawRow
from kalm_data.stage import Stage

from realdata import load_pairs, write_jsonl


class Reason(str, Enum):
    TOO_SHORT = "too_short"


class ShortPositiveFilter(Stage):
    """Toy stage: rejects pairs whose first positive has fewer than ``min_chars`` characters."""

    name = "short_positive"
    Reason = Reason

    def __init__(self, min_chars: int):
        self.min_chars = min_chars

    def process(self, pair: InputPair):
        if len(pair.positives[0]) < self.min_chars:
            yield self.reject(pair, Reason.TOO_SHORT, f"positive under {self.min_chars} chars")
        else:
            yield pair


def test_a_new_stage_plugs_into_curate_with_its_rejections_counters_and_manifest(tmp_path):
    from kalm_data.curate.pipeline import run
    from kalm_data.curate.stages import pair_stages
    from kalm_data.embed.teacher import default_teacher

    rows = load_pairs(80, source="disfl")
    src = write_jsonl(tmp_path / "pairs.jsonl", rows)
    cfg = CurateConfig(
        inputs=[InputSpec(path=str(src))],
        output=str(tmp_path / "out"),
        cache_dir=str(tmp_path / "cache"),
        window_start=2,
        window_end=12,
        num_negatives=3,
        filter_rule="none",
    )
    min_chars = 60
    short = sum(len(r["positive"]) < min_chars for r in rows)
    assert 0 < short < len(rows)
    stages = pair_stages(cfg, default_teacher())
    stages.insert(2, ShortPositiveFilter(min_chars))  # after validate, before dedup

    manifest = run(cfg, ["--direct_num_workers", "1"], stages=stages)

    counts = manifest["counts"]
    assert counts["balanced"] and counts["rows_read"] == len(rows)
    assert counts["rejected"]["short_positive"] == {"too_short": short}
    assert manifest["stages"]["short_positive"] == {
        "in": len(rows),
        "out": len(rows) - short,
        "rejected": {"too_short": short},
    }
    assert manifest["timings"]["short_positive"] >= 0
    rejected = pq.read_table(next((tmp_path / "out" / "rejected" / "short_positive").glob("*")))
    got = rejected.to_pylist()
    assert len(got) == short and all(r["stage"] == "short_positive" for r in got)
    assert all(r["detail"].startswith(f"{src.name}:") for r in got)
    assert all(len(json.loads(r["record"])["positives"][0]) < min_chars for r in got)


class Drops(Stage):
    """A broken stage: drops every other record without a rejection."""

    name = "drops"
    Reason = Reason

    def process(self, row: RawRow):
        if row.source_row % 2:
            yield row


def test_the_shell_fails_a_stage_that_lets_a_record_vanish():
    rows = [RawRow(source_file="f", source_row=i, task="t", payload={"q": i}) for i in (1, 2)]
    p = TestPipeline()
    _ = p | beam.Create(rows) | ApplyStage(Drops())
    with pytest.raises(Exception, match="stage 'drops' was given 1 row"):  # noqa: B017
        p.run()


def test_a_stage_rejects_only_with_its_own_reasons():
    class Other(str, Enum):
        ELSEWHERE = "elsewhere"

    row = RawRow(source_file="f", source_row=1, task="t", payload={})
    with pytest.raises(ValueError, match="not a reason of stage 'short_positive'"):
        ShortPositiveFilter(1).reject(row, Other.ELSEWHERE, "x")
