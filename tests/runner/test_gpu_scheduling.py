"""GPU scheduling without a GPU: Ray's logical GPUs prove the packing and what each trial sees."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from raysweep.analysis import store

from conftest import run_cluster_script

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).with_name("gpu_sweep.py")


def gpu_sweep(raw_spec, tmp_path, resources: dict, num_samples: int, n_gpus: int) -> tuple[dict, store.Results]:
    raw = copy.deepcopy(raw_spec)
    raw.update(resources=resources, search={"algorithm": "random", "num_samples": num_samples, "seed": 0})
    raw["fixed"]["epochs"] = 3
    out = run_cluster_script(SCRIPT, raw, tmp_path, str(n_gpus))
    return out, store.load(out["experiment_dir"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="proves the CPU fallback of a logical GPU")
def test_a_quarter_gpu_packs_four_trials_per_gpu(raw_spec, tmp_path):
    out, results = gpu_sweep(raw_spec, tmp_path, {"gpus_per_worker": 0.25}, num_samples=8, n_gpus=2)
    assert out["max_concurrent"] == 8, "10 CPUs would allow 10; two GPUs in quarters allow 8"
    assert out["trial"] == {"cpu": 1, "gpu": 0.25}
    assert out["min_free_gpu"] == 0.0, "eight trials held both GPUs at once: nothing else took any"
    trials = results.trials
    assert (trials["status"] == "finished").all() and (trials["gpus"] == 0.25).all()
    assert trials["cuda_visible_devices"].value_counts().to_dict() == {"0": 4, "1": 4}, \
        "each trial sees the one GPU Ray gave it, four to a GPU"


@pytest.mark.skipif(torch.cuda.is_available(), reason="proves the CPU fallback of a logical GPU")
def test_torch_trainer_workers_share_a_gpu_and_the_driver_takes_none(raw_spec, tmp_path):
    out, results = gpu_sweep(raw_spec, tmp_path, {"gpus_per_worker": 0.5, "workers_per_trial": 2,
                                                  "executor": "torch_trainer"}, num_samples=2, n_gpus=2)
    assert out["trial"] == {"cpu": 0, "raysweep_trial_driver": 1}, "the trial's driver holds no GPU"
    assert out["max_concurrent"] == 2, "two workers x half a GPU each: two trials fill both GPUs"
    assert out["min_free_gpu"] == 0.0
    trials = results.trials
    assert (trials["status"] == "finished").all()
    assert set(trials["cuda_visible_devices"]) <= {"0", "1"}, "rank 0 trained with a GPU Ray gave it"
