"""A placement group whose creating actor died (a TrainController the stall watchdog ended) is released."""

from __future__ import annotations

import time

import pytest
import ray
from ray.util.placement_group import placement_group, placement_group_table

from raysweep.runner import placement

pytestmark = pytest.mark.slow


@ray.remote(num_cpus=0)
class Creator:
    """Stands in for Train V2's controller: it creates a group and dies before anyone removes it."""

    def make(self) -> str:
        group = placement_group([{"CPU": 1}])
        ray.get(group.ready(), timeout=60)
        return group.id.hex()


def state(group_id: str) -> str:
    return placement_group_table()[group_id]["state"]


def idle_cpus() -> float:
    """The CPUs free once what earlier tests started has let go of them (Ray frees them asynchronously)."""
    total = ray.cluster_resources().get("CPU", 0)
    deadline = time.monotonic() + 60
    while ray.available_resources().get("CPU", 0) < total and time.monotonic() < deadline:
        time.sleep(0.2)
    return ray.available_resources().get("CPU", 0)


def test_an_orphaned_group_is_released_and_its_cpu_comes_back(ray_session):
    cpus = idle_cpus()
    creator = Creator.remote()
    group_id = ray.get(creator.make.remote())
    ray.kill(creator, no_restart=True)
    time.sleep(2)
    assert state(group_id) == "CREATED", "Ray itself leaves it while the job lives"
    assert ray.available_resources().get("CPU", 0) == cpus - 1
    assert placement.release_orphans() >= 1
    deadline = time.monotonic() + 30
    while state(group_id) != "REMOVED" or ray.available_resources().get("CPU", 0) < cpus:
        assert time.monotonic() < deadline, "the group was not released"
        time.sleep(0.2)


def test_a_group_whose_creator_lives_is_kept(ray_session):
    creator = Creator.remote()
    group_id = ray.get(creator.make.remote())
    try:
        placement.release_orphans()
        assert state(group_id) == "CREATED"
    finally:
        ray.kill(creator, no_restart=True)
        time.sleep(1)
        placement.release_orphans()
