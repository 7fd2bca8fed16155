"""The experiment log: what the raylet tells the driver reaches the terminal only where a user can act on it."""

from __future__ import annotations

from ray._private import worker as ray_worker

from raysweep.runner import logs

STARTUP_NOTICE = ("WARNING: 8 PYTHON worker processes have been started on node: 79e0 with address: 192.0.2.2, "
                  "which is 4x the maximum expected startup concurrency (2).")


def raylet_says(line: str) -> None:
    """What Ray's error listener does with a message the raylet published to the driver."""
    ray_worker.print_to_stdstream({"lines": [line], "pid": "raylet", "is_err": False}, ignore_prefix=False)


def test_the_raylets_startup_notice_goes_to_the_log_file_and_its_other_messages_to_the_terminal(tmp_path, capsys):
    with logs.to_experiment_log(tmp_path):
        raylet_says(STARTUP_NOTICE)
        raylet_says("The node with node id: 42 has been marked dead because the detector has missed too many heartbeats")
    out = capsys.readouterr().out
    assert "worker processes have been started" not in out
    assert "has been marked dead" in out
    assert "(raylet) " + STARTUP_NOTICE in (tmp_path / logs.LOG_FILE).read_text()
    raylet_says(STARTUP_NOTICE)   # outside a sweep Ray prints as it always did
    assert "worker processes have been started" in capsys.readouterr().out
