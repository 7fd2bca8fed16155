"""Datasets at a URI: shards in an S3 bucket, served by moto's S3-compatible server on 127.0.0.1.

Validation reads the bucket's meta.json and shards, a sweep's trials read them through Ray Data,
and export and predict read them too. Credentials and the endpoint come from the environment,
as on a cluster they come from the instance profile.
"""

from __future__ import annotations

import copy
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.fs as pafs
import pytest
import yaml

from raysweep import cli, spec
from raysweep.analysis import store
from raysweep.datasets import location, shards

from conftest import BASE_SPEC

MOTO_SERVER = Path(sys.executable).with_name("moto_server")
BUCKET = "raysweep-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tiny_data):
    """A moto S3 server on 127.0.0.1 holding the tiny dataset at s3://raysweep-test/tiny."""
    port = free_port()
    server = subprocess.Popen([str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
        assert time.monotonic() < deadline and server.poll() is None, "moto_server did not start"
        time.sleep(0.1)
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        bucket = pafs.S3FileSystem(endpoint_override=endpoint, allow_bucket_creation=True)
        bucket.create_dir(BUCKET)
        pafs.copy_files(str(tiny_data), f"{BUCKET}/tiny", destination_filesystem=bucket)
        yield env
    server.terminate()
    server.wait(timeout=30)


def raw_spec_on_s3(tmp_path, data: str) -> dict:
    raw = copy.deepcopy(BASE_SPEC)
    raw.update(data={"path": data}, storage_path=str(tmp_path / "results"),
               search={"algorithm": "random", "num_samples": 2, "seed": 0})
    raw["fixed"]["epochs"] = 2
    return raw


def test_a_dataset_in_a_bucket_validates_and_a_missing_one_says_how_to_make_it(s3, tmp_path):
    uri = f"s3://{BUCKET}/tiny"
    assert shards.shard_paths(uri, "train", "parquet")[0].startswith(f"{uri}/train/part-")
    s = spec.validate(raw_spec_on_s3(tmp_path, uri))
    assert s.data.path == uri and location.absolute(uri) == uri
    with pytest.raises(spec.SpecError) as info:
        spec.validate(raw_spec_on_s3(tmp_path, f"s3://{BUCKET}/absent"))
    assert (f"data.path: data directory 's3://{BUCKET}/absent' does not exist. Create it with: "
            f"raysweep data glideator --out s3://{BUCKET}/absent") in info.value.problems[0]


@pytest.mark.slow
def test_a_sweep_trains_on_shards_in_a_bucket_and_predict_reads_them(s3, tmp_path, capsys):
    uri = f"s3://{BUCKET}/tiny"
    spec_file = tmp_path / "s3.yaml"
    spec_file.write_text(yaml.safe_dump(raw_spec_on_s3(tmp_path, uri)))
    # Its own process and its own local Ray, whose workers inherit the endpoint and credentials.
    result = subprocess.run([sys.executable, "-m", "raysweep.cli", "run", str(spec_file)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    experiment_dir = next((tmp_path / "results").glob("tiny-*"))
    trials = store.load(experiment_dir).trials
    assert len(trials) == 2 and (trials["status"] == "finished").all()
    assert yaml.safe_load((experiment_dir / "raysweep_spec.yaml").read_text())["data"]["path"] == uri

    assert cli.main(["export", str(experiment_dir), "--to", str(tmp_path / "model")]) == 0
    assert cli.main(["predict", str(tmp_path / "model"), "--data", uri]) == 0
    out = capsys.readouterr().out
    best = trials["best_val_loss"].min()
    assert float(out.split("\n  val_loss ")[1].split()[0]) == pytest.approx(best, rel=1e-3)
