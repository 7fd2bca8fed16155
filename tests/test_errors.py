"""A trial's traceback in one line, and what kind of failure it was."""

from __future__ import annotations

from raysweep.errors import describe_failure, failure_kind

RAY_OOM = '''Failure # 1 (occurred at 2026-12-01_01-12-30)
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/ray/_private/worker.py", line 1055, in get_objects
    raise value
ray.exceptions.OutOfMemoryError: 2 worker(s) were killed due to the node running low on memory.
Memory on the node (IP: 192.0.2.2) was 4.48GB used / 23.54GB limit (0.190327)
Refer to the documentation on how to address the out of memory issue: https://docs.ray.io/...
'''
USER_BUG = '''Failure # 2 (occurred at 2026-12-01_01-13-00)
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/ray/tune/trainable/util.py", line 134, in inner
    return trainable(config, **fn_kwargs)
  File "/repo/src/raysweep/runner/executors.py", line 148, in run_in_trial
    loop.run_epochs(workload, cfg, trainee, data, report, device=device)
  File "/repo/src/raysweep/training/loop.py", line 110, in forward_backward
    loss, _ = workload.compute_loss(trainee.model, batch, cfg)
  File "/home/me/brake.py", line 31, in compute_loss
    x = batch["features"]
KeyError: 'features'
'''


def test_the_exception_line_and_the_users_frame():
    assert describe_failure(USER_BUG) == "KeyError: 'features' (compute_loss, brake.py:31)"
    assert describe_failure(RAY_OOM).startswith("ray.exceptions.OutOfMemoryError: 2 worker(s) were killed")
    multi_line = 'Traceback (most recent call last):\n  File "/a.py", line 2, in f\nValueError: first\nsecond line\n'
    assert describe_failure(multi_line) == "ValueError: first (f, a.py:2)"
    assert describe_failure("") == "" and describe_failure("just text") == "just text"


def test_the_last_attempt_decides():
    assert failure_kind(RAY_OOM) == "out of memory"
    assert failure_kind(RAY_OOM + USER_BUG) == "errored", "retried after the kill, then a bug"
    assert describe_failure(RAY_OOM + USER_BUG).startswith("KeyError")
    assert failure_kind("raysweep.training.loop.DivergedError: train_loss became nan") == "diverged"
