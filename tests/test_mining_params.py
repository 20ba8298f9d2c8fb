import pickle
from dataclasses import FrozenInstanceError, fields

import pytest

from kalm_data.curate.config import CurateConfig
from kalm_data.mining.params import MiningParams


def test_from_config_copies_exactly_the_mining_fields():
    cfg = CurateConfig(index="ivf", ivf_nlist=7, window_start=3, window_end=9, seed=11)
    params = MiningParams.from_config(cfg)
    assert {f.name for f in fields(MiningParams)} == {
        "index", "ivf_nlist", "ivf_nprobe", "num_negatives", "window_start", "window_end",
        "margin", "near_duplicate", "filter_rule", "filter_k", "filter_margin", "filter_query_k",
        "seed", "ivf_pq_m", "pool_shard_size", "faiss_device",
    }  # fmt: skip
    assert all(getattr(params, f.name) == getattr(cfg, f.name) for f in fields(MiningParams))
    assert params.search_depth == cfg.search_depth == 50


def test_travels_as_a_plain_dict_and_pickles():
    params = MiningParams.from_config(CurateConfig(filter_rule="kalm", margin=0.9))
    as_dict = params.to_dict()
    assert all(isinstance(v, (str, int, float)) for v in as_dict.values())
    assert MiningParams.from_dict(as_dict) == params
    assert pickle.loads(pickle.dumps(params)) == params


def test_is_frozen_and_checks_the_window():
    params = MiningParams.from_config(CurateConfig())
    with pytest.raises(FrozenInstanceError):
        params.seed = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="window_end"):
        MiningParams.from_dict({**params.to_dict(), "window_start": 100, "window_end": 100})
