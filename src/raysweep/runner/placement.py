"""Release the placement groups a killed TorchTrainer trial leaves behind.

Ray removes a placement group when the actor that created it *and* its job have died. A
TorchTrainer's workers live in a group its TrainController creates; when the controller dies
with the job still running (the stall watchdog ends a trial, its controller with it), Train V2
relies on a detached PlacementGroupCleaner to remove the group. The controller registers the
group with its cleaner only after creating it, so a controller killed in between leaves a group
nobody removes: its CPUs stay taken for the rest of the sweep (seen with a stall timeout that
ends trials while their workers start: every later TorchTrainer trial waited for CPUs that never
came, tests/phases/test_failures.py).

`release_orphans` removes the groups of this job whose creating actor is dead. Such a group
holds nothing anyone can use: its creator, and the workers it owned, are gone.

Ray 2.60: the creator of a group is read from the GCS tables through `ray._private.state`
(the public placement_group_table leaves it out).
"""

from __future__ import annotations

import logging

import ray
from ray._private import state as ray_state
from ray.core.generated import gcs_pb2
from ray.util.placement_group import PlacementGroup, remove_placement_group

log = logging.getLogger("raysweep")
HELD = (gcs_pb2.PlacementGroupTableData.PENDING, gcs_pb2.PlacementGroupTableData.PREPARED,
        gcs_pb2.PlacementGroupTableData.CREATED, gcs_pb2.PlacementGroupTableData.RESCHEDULING)
NO_ACTOR = bytes.fromhex("ff" * 16)   # a group the driver itself created (Tune's own, per trial)


def _dead(actor_id: bytes) -> bool:
    info = ray_state.state.actor_table(actor_id.hex())
    return bool(info) and info.get("State") == "DEAD"


def release_orphans() -> int:
    """Remove this job's placement groups whose creating actor has died; returns how many."""
    job = ray.get_runtime_context().get_job_id()
    released = 0
    for raw in ray_state.state._connect_and_get_accessor().get_placement_group_table():  # noqa: SLF001
        group = gcs_pb2.PlacementGroupTableData.FromString(raw)
        if (group.state not in HELD or group.is_detached or group.creator_job_id.hex() != job
                or not group.creator_actor_id or group.creator_actor_id == NO_ACTOR):
            continue
        if group.creator_actor_dead or _dead(group.creator_actor_id):
            remove_placement_group(PlacementGroup(ray.PlacementGroupID(group.placement_group_id)))
            released += 1
    if released:
        log.info("released %d placement group(s) of TorchTrainer trials that ended before Ray Train could", released)
    return released
