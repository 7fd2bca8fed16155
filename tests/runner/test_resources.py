"""Resource sizing: trials, workers and Ray Data fit together on a 2-CPU machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from raysweep.runner.resources import DRIVER_RESOURCE, SizingError, allocate, autoscaling_ceiling
from raysweep.spec import Resources


def test_in_trial_uses_all_cpus_when_data_is_materialised():
    a = allocate(Resources(), "in_trial", cluster_cpus=2, cluster_gpus=0, has_driver_slots=True, streaming=False)
    assert a.trial == {"cpu": 1} and a.max_concurrent == 2


def test_streaming_keeps_a_cpu_for_ray_data():
    a = allocate(Resources(), "in_trial", cluster_cpus=2, cluster_gpus=0, has_driver_slots=True, streaming=True)
    assert a.max_concurrent == 1 and a.data_cpus == 1


def test_trainer_driver_takes_no_cpu_but_a_slot():
    res = Resources(workers_per_trial=2)
    a = allocate(res, "torch_trainer", cluster_cpus=2, cluster_gpus=0, has_driver_slots=True, streaming=False)
    assert a.trial == {"cpu": 0, DRIVER_RESOURCE: 1} and a.max_concurrent == 1
    b = allocate(Resources(), "torch_trainer", cluster_cpus=4, cluster_gpus=0, has_driver_slots=False,
                 streaming=False)
    assert b.trial == {"cpu": 1} and b.max_concurrent == 2


def test_fractional_gpus_bound_concurrency():
    res = Resources(gpus_per_worker=0.25, cpus_per_worker=1, max_concurrent_trials=16)
    a = allocate(res, "in_trial", cluster_cpus=16, cluster_gpus=1, has_driver_slots=True, streaming=False)
    assert a.max_concurrent == 4 and a.trial == {"cpu": 1, "gpu": 0.25}


def test_user_limit_is_respected():
    a = allocate(Resources(max_concurrent_trials=1), "in_trial", cluster_cpus=8, cluster_gpus=0,
                 has_driver_slots=True, streaming=False)
    assert a.max_concurrent == 1


def test_too_big_a_trial_says_what_to_lower():
    with pytest.raises(SizingError, match="one trial needs 4 CPUs \\+ 1 for Ray Data, but the cluster has 2 CPUs"):
        allocate(Resources(workers_per_trial=2, cpus_per_worker=2), "torch_trainer", cluster_cpus=2,
                 cluster_gpus=0, has_driver_slots=True, streaming=True)


def test_the_ceiling_is_what_the_node_types_can_grow_to(tmp_path):
    assert autoscaling_ceiling(tmp_path / "absent.yaml") is None
    ceiling = autoscaling_ceiling(Path(__file__).with_name("fake_autoscaling.yaml"))
    assert ceiling["GPU"] == 2 and ceiling["CPU"] == 3 and ceiling["raysweep_trial_driver"] == 100
    aws = autoscaling_ceiling(Path(__file__).resolve().parents[2] / "cluster.yaml")
    assert aws["GPU"] == 4 and aws["raysweep_trial_driver"] >= 1, "cluster.yaml: four GPU workers at most"
