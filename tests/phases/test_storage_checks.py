"""Storage problems are found before any trial: an unwritable storage_path, too little room for
the checkpoints, and an experiment that a live driver holds."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import namedtuple

import pytest

from raysweep import cli, spec
from raysweep.datasets import shards
from raysweep.errors import UserError
from raysweep.experiment import held
from raysweep.runner import storage
from raysweep.workloads import WORKLOADS, config_from_trial

from conftest import write_spec


def test_a_storage_path_that_cannot_be_written_is_refused(tmp_path, tiny_data, raw_spec, capsys):
    (tmp_path / "a_file").write_text("not a folder")
    raw_spec.update(data={"path": str(tiny_data)}, storage_path=str(tmp_path / "a_file" / "results"))
    assert cli.main(["run", str(write_spec(tmp_path, raw_spec))]) == 2
    err = capsys.readouterr().err
    assert f"storage_path {tmp_path / 'a_file' / 'results'}: cannot write the experiment" in err
    assert "NotADirectoryError" in err and "Traceback" not in err


def test_the_checkpoints_must_fit_the_free_space(tmp_path, tiny_data, raw_spec, capsys, monkeypatch):
    raw_spec.update(data={"path": str(tiny_data)}, storage_path=str(tmp_path / "results"))
    s = spec.validate(raw_spec)
    found = storage.estimate(s, shards.read_meta(tiny_data))
    cfg = config_from_trial(WORKLOADS["glideator"], {**s.fixed, "learning_rate": 1e-3}, s.params)
    model = WORKLOADS["glideator"].build_model(cfg, shards.read_meta(tiny_data))
    assert found.parameters == sum(p.numel() for p in model.parameters())
    assert found.bytes_needed > found.trials * 2 * 4 * 4 * found.parameters

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    assert cli.main(["run", str(write_spec(tmp_path, raw_spec))]) == 2
    err = capsys.readouterr().err
    assert f"storage_path {tmp_path / 'results'}: 1000 B free, but the sweep's checkpoints need about" in err
    assert not (tmp_path / "results").exists(), "refused before anything was written"


def test_an_experiment_is_run_by_one_process_at_a_time(tmp_path):
    experiment_dir = tmp_path / "exp"
    experiment_dir.mkdir()
    with held(experiment_dir, "run"):
        with pytest.raises(UserError, match=r"exp is being run by raysweep run \(pid \d+ on "):
            with held(experiment_dir, "resume"):
                pass
    with held(experiment_dir, "resume"):   # released when the holder ends
        pass
    # A holder killed with SIGKILL leaves no lock behind: the operating system releases it.
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom pathlib import Path\n"
                               "from raysweep import experiment\n"
                               f"with experiment.held(Path({str(experiment_dir)!r}), 'run'):\n"
                               "    print('held', flush=True)\n    time.sleep(60)\n"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(UserError):
        with held(experiment_dir, "resume"):
            pass
    holder.kill()
    holder.wait(timeout=10)
    time.sleep(0.1)
    with held(experiment_dir, "resume"):
        pass


@pytest.mark.slow
def test_resume_refuses_an_experiment_a_live_driver_holds(experiment, capsys):
    with held(experiment, "run"):
        assert cli.main(["resume", str(experiment)]) == 2
    assert "is being run by raysweep run" in capsys.readouterr().err


def test_a_model_that_does_not_build_skips_the_room_check(tmp_path, tiny_data, raw_spec, monkeypatch, caplog):
    raw_spec.update(data={"path": str(tiny_data)}, storage_path=str(tmp_path / "results"))
    s = spec.validate(raw_spec)

    def broken(spec, meta):
        raise KeyError("telemetry_scaler")   # a user's build_model reading what meta.json lacks

    monkeypatch.setattr(storage, "estimate", broken)
    assert storage.check_room(s) is None, "its trials report the error, one line each; run goes on"
    assert "no room check, the baseline model did not build (KeyError: 'telemetry_scaler'" in caplog.text


def test_the_shapes_only_build_counts_the_real_parameters_and_leaves_torch_as_it_was(raw_spec):
    import torch

    from raysweep.workloads import glideator

    checked = spec.validate(raw_spec)
    initialisers = {name: getattr(torch.nn.init, name) for name in dir(torch.nn.init)}
    found = storage.estimate(checked, shards.read_meta(checked.data.path))
    assert {name: getattr(torch.nn.init, name) for name in dir(torch.nn.init)} == initialisers
    baseline = {**checked.fixed, "learning_rate": 1e-3}   # the tuned rate does not change shapes
    real = glideator.build_model(config_from_trial(glideator, baseline, checked.params),
                                 shards.read_meta(checked.data.path))
    assert found.parameters == sum(p.numel() for p in real.parameters()) > 0
