"""Datasets at a URI: shards in an S3 bucket, served by moto's S3-compatible server on 127.0.0.1.

Validation reads the bucket's meta.json and shards, a sweep's trials read them through Ray Data,
and export and predict read them too. Credentials and the endpoint come from the environment,
as on a cluster they come from the instance profile.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from raysweep import cli, spec
from raysweep.analysis import store
from raysweep.datasets import location, shards

from conftest import BASE_SPEC, BUCKET


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
            f"raysweep data glideator --out DIR, then upload DIR to s3://{BUCKET}/absent") in info.value.problems[0]
    with pytest.raises(spec.SpecError, match="data.path nosuch://x/y: not a storage this machine can open .*s3://bucket/data"):
        spec.validate(raw_spec_on_s3(tmp_path, "nosuch://x/y"))


def test_data_commands_write_locally_and_say_how_to_upload(tmp_path, capsys):
    assert cli.main(["data", "glideator", "--out", f"s3://{BUCKET}/new"]) == 2
    assert "write it there, then upload it" in capsys.readouterr().err
    assert not Path("s3:").exists()


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
