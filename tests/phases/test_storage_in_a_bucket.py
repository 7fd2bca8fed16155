"""An experiment stored in a bucket (moto's S3 server on 127.0.0.1): run, interrupted, resumed
from the bucket, then ranked and exported from it, with nothing on the local disk but a cache."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.fs as pafs
import pytest
import yaml

from raysweep import cli, experiment
from raysweep.analysis import store

from conftest import BASE_SPEC, BUCKET

pytestmark = pytest.mark.slow


def bucket_listing(s3, prefix: str) -> set[str]:
    filesystem = pafs.S3FileSystem(endpoint_override=s3["AWS_ENDPOINT_URL"])
    found = filesystem.get_file_info(pafs.FileSelector(f"{BUCKET}/{prefix}", recursive=False))
    return {info.base_name for info in found}


def test_an_experiment_in_a_bucket_runs_resumes_ranks_and_exports(s3, tmp_path, capsys):
    raw = copy.deepcopy(BASE_SPEC)
    raw.update(data={"path": f"s3://{BUCKET}/tiny"}, storage_path=f"s3://{BUCKET}/results",
               search={"algorithm": "random", "num_samples": 3, "seed": 0}, resources={"max_concurrent_trials": 1})
    raw["fixed"]["epochs"] = 4
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(raw))
    log = tmp_path / "run.log"
    with open(log, "w") as out:   # its own local Ray: the workers inherit the endpoint and keys
        proc = subprocess.Popen([sys.executable, "-m", "raysweep.cli", "run", str(spec_file)], cwd=tmp_path,
                                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and "finished 4 epochs" not in log.read_text():
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130, log.read_text()[-3000:]

    (name,) = bucket_listing(s3, "results")
    uri = f"s3://{BUCKET}/results/{name}"
    stored = bucket_listing(s3, f"results/{name}")
    assert {"raysweep_spec.yaml", "provenance.json", "data_fingerprint.json"} <= stored
    assert any(n.startswith("experiment_state-") for n in stored), "Tune wrote its state to the bucket"
    assert not (tmp_path / "results").exists() and not (tmp_path / "s3:").exists()

    resumed = subprocess.run([sys.executable, "-m", "raysweep.cli", "resume", uri], cwd=tmp_path,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert {"trials.parquet", "curves.parquet", "leaderboard.csv", "tensorboard"} <= bucket_listing(
        s3, f"results/{name}"), "the store, leaderboard and logs were uploaded"

    assert cli.main(["rank", uri]) == 0
    assert "3 trials; statuses: 3 finished" in capsys.readouterr().out
    results = store.load(experiment.local_dir(uri))
    epochs = results.curves.groupby("trial")["epoch"].apply(sorted)
    assert all(e == [1, 2, 3, 4] for e in epochs), f"every epoch once, across the interruption: {epochs}"
    assert cli.main(["export", uri, "--to", str(tmp_path / "model")]) == 0
    assert (tmp_path / "model" / "model.pt").is_file()

    # The champion across experiments takes a URI too: scored on the bucket's test split, registered
    # in a folder, its test record and the decision uploaded to the experiment.
    assert cli.main(["champion", uri, "--registry", str(tmp_path / "registry")]) == 0
    assert "registered: glideator-tiny version 1" in capsys.readouterr().out
    kept = json.loads((tmp_path / "registry" / "registry.json").read_text())["models"]["glideator-tiny"]
    assert kept["versions"][0]["record"]["experiment"] == uri and kept["versions"][0]["record"]["test_metric"] == "loss"
    assert {"test_evaluation.json", "champion_decision.json"} <= bucket_listing(s3, f"results/{name}")
