"""`data.materialize`: what a sweep keeps in the object store, what it streams, and that it says so."""

from __future__ import annotations

import logging

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray.data

from raysweep import spec as spec_mod
from raysweep.datasets import ray_data, reading
from raysweep.runner import tuning


def test_auto_keeps_what_fills_at_most_half_the_object_store():
    assert tuning.keeps("auto", 50, 100) and not tuning.keeps("auto", 51, 100)
    assert tuning.keeps(True, 10**12, 100) and not tuning.keeps(False, 1, 100)


def test_materialize_takes_auto_true_or_false_only(raw_spec):
    assert spec_mod.validate(raw_spec).data.materialize == "auto"
    raw_spec["data"]["materialize"] = "sometimes"
    with pytest.raises(spec_mod.SpecError, match="data.materialize: must be auto, true or false"):
        spec_mod.validate(raw_spec)


def whole_split(data_dir: str, meta: dict) -> pa.Table:
    return pq.read_table(reading.shards.shard_paths(data_dir, "train", "parquet"), columns=reading.columns_of(meta))


def rows(split) -> pa.Table:
    if isinstance(split, ray.data.Dataset):
        return pa.concat_tables(list(split.iter_batches(batch_size=None, batch_format="pyarrow")))
    return pa.concat_tables(list(split.tables()))


@pytest.mark.slow
@pytest.mark.parametrize("materialize, executor, kind, kept", [
    ("auto", "in_trial", ray_data.StoredSplit, True),
    (False, "in_trial", reading.StreamedSplit, False),
    ("auto", "torch_trainer", ray.data.Dataset, True),
    (False, "torch_trainer", ray.data.Dataset, False),
])
def test_each_choice_gives_the_trials_the_same_rows(ray_session, raw_spec, caplog, materialize, executor, kind, kept):
    raw_spec["data"]["materialize"] = materialize
    spec = spec_mod.validate(raw_spec)
    with caplog.at_level(logging.INFO, logger="raysweep"):
        opened = tuning.open_datasets(spec, executor)
    assert opened.kept is kept and opened.ray_data_streams is (executor == "torch_trainer" and not kept)
    said = "kept in the object store" if kept else "streamed from the shards each epoch"
    assert any(said in r.getMessage() and "materialize" in r.getMessage() for r in caplog.records)
    reference = whole_split(spec.data.path, opened.meta)
    for split in ("train", "val"):
        assert isinstance(opened.datasets[split], kind)
    assert rows(opened.datasets["train"]).equals(reference)


@pytest.mark.slow
def test_auto_streams_a_dataset_larger_than_half_the_store(ray_session, raw_spec, monkeypatch, caplog):
    spec = spec_mod.validate(raw_spec)
    monkeypatch.setattr(ray_data, "object_store_bytes", lambda: 1000)   # the tiny data is ~100 KB
    with caplog.at_level(logging.INFO, logger="raysweep"):
        opened = tuning.open_datasets(spec, "in_trial")
    assert not opened.kept and isinstance(opened.datasets["train"], reading.StreamedSplit)
    assert any("more than 50% of the object store" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_an_lr_range_subset_is_the_first_rows_in_shard_order(ray_session, tiny_data):
    meta = reading.shards.read_meta(tiny_data)
    found = reading.split_shards(str(tiny_data), "train", meta)
    subset = ray_data.store_first_rows(found, "parquet", reading.columns_of(meta), 300)   # shards of 256 rows
    whole = whole_split(str(tiny_data), meta)
    assert subset.rows == 300 and rows(subset).equals(whole.slice(0, 300).combine_chunks())
