"""The Glideator generator and the shard layer."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from raysweep.datasets import glideator, inspection, shards

SMALL = dict(n_sites=4, n_days=30, rows_per_shard=50)


def digest(directory) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fmt", ["parquet", "webdataset"])
def test_same_seed_same_bytes(tmp_path, fmt):
    glideator.write(tmp_path / "a", seed=7, fmt=fmt, **SMALL)
    glideator.write(tmp_path / "b", seed=7, fmt=fmt, **SMALL)
    glideator.write(tmp_path / "c", seed=8, fmt=fmt, **SMALL)
    a, b, c = (digest(tmp_path / x) for x in "abc")
    assert len(a) > 3 and a == b
    assert a != c


def read_split(directory, split):
    table = pq.read_table(shards.shard_paths(directory, split, "parquet"))
    return {name: np.asarray(table[name].to_pylist()) for name in table.column_names}


def test_labels_monotone_and_match_distance(tiny_data):
    train = read_split(tiny_data, "train")
    labels = train["labels"]
    assert labels.shape[1] == 11
    assert np.all(labels[:, 1:] <= labels[:, :-1]), "P(d > t_k+1) can never exceed P(d > t_k)"
    thresholds = np.array(glideator.THRESHOLDS_KM)
    assert np.array_equal(labels, (train["distance_km"][:, None] > thresholds).astype(np.float32))
    assert 0.1 < labels[:, 0].mean() < 0.9, "both flyable and unflyable days occur"


def test_split_by_date_and_scaler_from_train_only(tiny_data):
    meta = json.loads((tiny_data / "meta.json").read_text())
    train, val, test = (read_split(tiny_data, split) for split in ("train", "val", "test"))
    assert set(train["day"]).isdisjoint(set(val["day"]))
    assert train["day"].max() < val["day"].min(), "validation days come after training days"
    assert val["day"].max() < test["day"].min(), "the held-out test days come last"
    assert meta["rows"] == {"train": len(train["day"]), "val": len(val["day"]), "test": len(test["day"])}
    assert len(set(test["day"])) == round(0.1 * 150) and len(set(val["day"])) == round(0.2 * 150)
    mean = np.array(meta["scaler"]["mean"])
    assert np.allclose(mean, train["features"].mean(axis=0), rtol=1e-4, atol=1e-3)
    both = np.concatenate([train["features"], val["features"]]).mean(axis=0)
    assert not np.allclose(mean, both, rtol=1e-4, atol=1e-3), "scaler must not see validation rows"
    groups = meta["feature_groups"]
    assert groups["site"] + groups["date"] + groups["weather"] == meta["feature_names"]
    assert "wind_speed_850hpa_12h" in groups["weather"] and "cape_j_per_kg_15h" in groups["weather"]


def test_read_meta_errors(tmp_path, tiny_data):
    with pytest.raises(shards.DataError, match="does not exist. Create it with: make it"):
        shards.read_meta(tmp_path / "none", make_hint="make it")
    (tmp_path / "empty").mkdir()
    with pytest.raises(shards.DataError, match="meta.json is missing"):
        shards.read_meta(tmp_path / "empty")


def test_corrupt_shard_is_named(tmp_path):
    glideator.write(tmp_path / "d", **SMALL)
    meta = shards.read_meta(tmp_path / "d")
    shard = shards.shard_paths(tmp_path / "d", "val", "parquet")[0]
    with open(shard, "r+b") as f:
        f.truncate(100)
    (problem,) = inspection.inspect(tmp_path / "d", meta).problems
    assert problem.startswith(f"shard {shard} is unreadable")
