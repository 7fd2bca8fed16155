"""Shared fixtures: one local Ray per test session and tiny generated datasets."""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
import ray
import yaml
from sklearn import datasets as sk_datasets

from raysweep import cli, spec
from raysweep.datasets import glideator, shards
from raysweep.phases import sweep
from raysweep.runner import ray_fixes
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
    ray_fixes.shutdown_ray()   # as `raysweep` ends: without the second Ray's own shutdown waits for nothing


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


def read_split(data_dir: Path, split: str):
    """A split of a Parquet dataset as one Arrow table."""
    return pq.read_table(shards.shard_paths(data_dir, split, "parquet"))


def assert_same_seed_same_data(write, written: Path, tmp_path: Path, seed: int, **options) -> None:
    """A generator writes the same shards and meta.json again for `seed`, other data for another."""
    write(tmp_path / "again", seed=seed, **options)
    write(tmp_path / "other", seed=seed + 1, **options)
    for split in ("train", "val", "test"):
        assert read_split(tmp_path / "again", split).equals(read_split(written, split))
    assert json.loads((tmp_path / "again/meta.json").read_text()) == json.loads((written / "meta.json").read_text())
    assert not read_split(tmp_path / "other", "train").equals(read_split(written, "train"))


def write_spec(tmp_path: Path, raw: dict) -> Path:
    """A raw spec written as the YAML file a user would give the CLI."""
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run_cluster_script(script: Path, raw: dict, tmp_path: Path, *args: str, timeout_s: int = 600) -> dict:
    """Run a helper that starts a Ray cluster of its own, in its own process group with a private
    RAY_TMPDIR (a short path: Ray's sockets live there), and return the JSON it wrote.

    On a timeout the whole group is killed, the cluster's raylets with it.
    """
    (tmp_path / "spec.json").write_text(json.dumps(raw))
    with tempfile.TemporaryDirectory(prefix="rs-", dir="/tmp") as ray_tmp:
        command = [sys.executable, str(script), str(tmp_path / "spec.json"), str(tmp_path / "out.json"), *args]
        proc = subprocess.Popen(command, env={**os.environ, "RAY_TMPDIR": ray_tmp}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
        assert proc.returncode == 0, output[-4000:]
    return json.loads((tmp_path / "out.json").read_text())


MOTO_SERVER = Path(sys.executable).with_name("moto_server")
BUCKET = "raysweep-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3(tiny_data, tmp_path_factory):
    """A moto S3 server on 127.0.0.1 holding the tiny dataset at s3://raysweep-test/tiny."""
    port = free_port()
    server = subprocess.Popen([str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not listening(port):
            assert time.monotonic() < deadline and server.poll() is None, "moto_server did not start"
            time.sleep(0.1)
        yield from _serve_bucket(endpoint, tiny_data, tmp_path_factory)
    finally:
        server.terminate()
        server.wait(timeout=30)


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _serve_bucket(endpoint: str, tiny_data, tmp_path_factory):
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        # Working copies of experiments stored in the bucket go here, not to ~/.cache.
        patch.setenv("RAYSWEEP_CACHE", str(tmp_path_factory.mktemp("cache")))
        bucket = pafs.S3FileSystem(endpoint_override=endpoint, allow_bucket_creation=True)
        bucket.create_dir(BUCKET)
        pafs.copy_files(str(tiny_data), f"{BUCKET}/tiny", destination_filesystem=bucket)
        yield env


# --- tables scikit-learn ships, imported as a user imports a CSV (the model-family tests) ---

def import_bundled(name: str, task: str, out: Path) -> Path:
    """One of scikit-learn's bundled tables, imported as a user would import a CSV."""
    frame = getattr(sk_datasets, f"load_{name}")(as_frame=True).frame
    frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
    csv = out.parent / f"{name}.csv"
    frame.to_csv(csv, index=False)
    assert cli.main(["data", "import", str(csv), "--target", "target", "--task", task, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def cancer(tmp_path_factory):
    """The breast-cancer table: 569 rows, 30 features, binary."""
    return import_bundled("breast_cancer", "binary", tmp_path_factory.mktemp("tables") / "cancer")
