"""Work-arounds for Ray bugs that would take a whole sweep down, each with the test that shows it.

Ray 2.60, memory: when Ray's memory monitor kills the worker of a trial (or of a trial being
started), the trial's pending call fails with `ray.exceptions.OutOfMemoryError`. Tune's actor
manager handles a dead actor (`RayActorError`) and a failed task (`RayTaskError`), and raises
on anything else: `RuntimeError: Caught unexpected exception: ... killed due to the node running
low on memory`, out of `Tuner.fit`, and the sweep is over (seen with a trial that took 6 GiB on
a node whose monitor acted at 3 GiB more than it used; tests/phases/test_failures.py). A worker
killed for memory is a dead actor, so the error is handed on as one, keeping Ray's message: the
trial alone fails, is retried where `failure.max_retries` allows, and reads "out of memory".
"""

from __future__ import annotations

import functools

from ray.air.execution._internal import actor_manager
from ray.exceptions import ActorDiedError, OutOfMemoryError


class KilledForMemory(ActorDiedError):
    """A trial's worker that Ray's memory monitor killed, as the dead actor it is."""

    def __init__(self, cause: OutOfMemoryError):
        super().__init__()
        self.error_msg = f"OutOfMemoryError: {cause}"


def apply() -> None:
    """Install the work-arounds in this process (the driver); a second call changes nothing."""
    failed = actor_manager.RayActorManager._actor_task_failed
    if getattr(failed, "handles_memory_kills", False):
        return

    @functools.wraps(failed)
    def actor_task_failed(self, tracked_actor_task, exception):
        if isinstance(exception, OutOfMemoryError):
            exception = KilledForMemory(exception)
        return failed(self, tracked_actor_task, exception)

    actor_task_failed.handles_memory_kills = True
    actor_manager.RayActorManager._actor_task_failed = actor_task_failed
