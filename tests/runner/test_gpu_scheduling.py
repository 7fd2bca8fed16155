"""GPU scheduling without a GPU: Ray's logical GPUs prove the packing and what each trial sees."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from raysweep.analysis import store

from conftest import BASE_SPEC

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).with_name("gpu_sweep.py")


def gpu_sweep(tiny_data, tmp_path, resources: dict, num_samples: int) -> tuple[dict, store.Results]:
    raw = copy.deepcopy(BASE_SPEC)
    raw.update(data={"path": str(tiny_data)}, storage_path=str(tmp_path / "results"), resources=resources,
               search={"algorithm": "random", "num_samples": num_samples, "seed": 0})
    raw["fixed"]["epochs"] = 4
    (tmp_path / "spec.json").write_text(json.dumps(raw))
    with tempfile.TemporaryDirectory(prefix="rs-", dir="/tmp") as ray_tmp:
        result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "spec.json"), str(tmp_path / "out.json")],
                                env={**os.environ, "RAY_TMPDIR": ray_tmp}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    return out, store.load(out["experiment_dir"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="proves the CPU fallback of a logical GPU")
def test_a_quarter_gpu_packs_four_trials_per_gpu(tiny_data, tmp_path):
    out, results = gpu_sweep(tiny_data, tmp_path, {"gpus_per_worker": 0.25}, num_samples=4)
    assert out["max_concurrent"] == 4, "8 CPUs would allow 8; one GPU in quarters allows 4"
    assert out["trial"] == {"cpu": 1, "gpu": 0.25}
    assert out["min_free_gpu"] == 0.0, "four trials held the whole GPU at once: nothing else took any"
    trials = results.trials
    assert (trials["status"] == "finished").all() and (trials["gpus"] == 0.25).all()
    assert (trials["cuda_visible_devices"] == "0").all(), "each trial sees the GPU Ray gave it"


@pytest.mark.skipif(torch.cuda.is_available(), reason="proves the CPU fallback of a logical GPU")
def test_torch_trainer_workers_share_a_gpu_and_the_driver_takes_none(tiny_data, tmp_path):
    out, results = gpu_sweep(tiny_data, tmp_path, {"gpus_per_worker": 0.25, "workers_per_trial": 2,
                                                   "executor": "torch_trainer"}, num_samples=2)
    assert out["trial"] == {"cpu": 0, "raysweep_trial_driver": 1}, "the trial's driver holds no GPU"
    assert out["max_concurrent"] == 2, "two workers x a quarter each: two trials fill the GPU"
    assert out["min_free_gpu"] == 0.0
    trials = results.trials
    assert (trials["status"] == "finished").all()
    assert (trials["cuda_visible_devices"] == "0").all(), "rank 0 trained with the GPU Ray gave it"
