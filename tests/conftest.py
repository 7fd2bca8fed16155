"""Shared fixtures: one local Ray per test session and tiny generated datasets."""

from __future__ import annotations

import copy

import pytest
import ray

from raysweep import spec
from raysweep.datasets import glideator
from raysweep.phases import sweep
from raysweep.runner.session import start_ray

TINY = dict(n_sites=6, n_days=150, seed=3, rows_per_shard=256)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A small Parquet Glideator dataset: 6 sites x 150 days, several shards per split."""
    out = tmp_path_factory.mktemp("glideator")
    glideator.write(out, **TINY)
    return out


@pytest.fixture(scope="session")
def ray_session():
    """Start Ray once for every test that needs it (as `raysweep run` would start it)."""
    start_ray()
    yield ray
    ray.shutdown()


BASE_SPEC = {
    "name": "tiny",
    "workload": "glideator",
    "data": {"path": None},
    "metric": "val_loss",
    "mode": "min",
    "fixed": {"epochs": 3, "batch_size": 64, "deep_hidden_units": [16, 8], "site_embedding_dim": 4},
    "params": {"learning_rate": {"type": "loguniform", "low": 1e-3, "high": 1e-2}},
    "search": {"algorithm": "random", "num_samples": 2, "seed": 0},
    "scheduler": {"type": "fifo"},
    "resources": {"max_concurrent_trials": 2},
}


@pytest.fixture
def raw_spec(tiny_data, tmp_path):
    """A valid spec dict over the tiny data, storing results under the test's tmp_path."""
    raw = copy.deepcopy(BASE_SPEC)
    raw["data"]["path"] = str(tiny_data)
    raw["storage_path"] = str(tmp_path / "results")
    return raw


@pytest.fixture(scope="session")
def experiment(ray_session, tiny_data, tmp_path_factory):
    """A finished sweep for the analysis and export tests: finished, ASHA-stopped and diverged trials."""

    raw = copy.deepcopy(BASE_SPEC)
    raw["data"]["path"] = str(tiny_data)
    raw["storage_path"] = str(tmp_path_factory.mktemp("analysis") / "results")
    raw["params"]["learning_rate"] = {"type": "grid", "values": [1e30, 1e-5, 3e-5, 1e-3, 3e-3, 1e-2]}
    raw["fixed"]["epochs"] = 4
    raw["scheduler"] = {"type": "asha", "grace_period": 1, "reduction_factor": 2}
    return sweep.run(spec.validate(raw, overrides=["search.num_samples=1"]))
