"""Bad input gets one line, the documented exit code and no traceback, through the real command.

Spec files that are not a spec, after-sweep commands given names that are not there, a model
given another workload's data, resume of a finished sweep, and storage at a URI out of reach.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from raysweep import cli, spec
from raysweep.cli import exit_codes
from raysweep.datasets import location
from raysweep.errors import UserError

from conftest import BUCKET, free_port, write_spec

ROOT = Path(__file__).resolve().parents[2]


def raysweep(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raysweep.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300, env=env)


def one_error(result: subprocess.CompletedProcess, code: int = exit_codes.USAGE) -> str:
    """The command failed with `code` and said so in one `error:` line, no traceback."""
    assert result.returncode == code, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def in_process(capsys, *args) -> subprocess.CompletedProcess:
    """`raysweep ARGS` through the command's own main, in this process (no interpreter start)."""
    code = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


# --- spec files that are not a spec ---------------------------------------------------------

@pytest.mark.parametrize("content, expected", [
    (b"", "spec.yaml: the file is empty; a spec is a YAML mapping"),
    (b"   \n# only a comment\n", "spec.yaml: the file is empty"),
    (b"name: x\n\xff\xfeworkload: glideator\n", "spec.yaml: not UTF-8 text (byte 0xff at offset 8)"),
    (b"- name\n- workload\n", "spec.yaml: the spec must be a YAML mapping of keys such as name, workload, params, "
                              "but the file holds a list"),
    (b"just a sentence\n", "but the file holds a string"),
    (b"name: x\nparams:\n  lr: {type: uniform, low: 1\n", "spec.yaml:4:1: not valid YAML: while parsing a flow mapping"),
    (b"name: x\n  workload: glideator\n", "spec.yaml:2:11: not valid YAML: mapping values are not allowed here"),
    (b"name: x\nworkload: glideator\nname: y\n", "spec.yaml:3:1: not valid YAML: the key 'name' appears twice "
                                                 "(first on line 1); keep one"),
    (b"params:\n  lr: {type: uniform}\n  lr: {type: loguniform}\n", "spec.yaml:3:3: not valid YAML: the key 'lr' appears twice"),
])
def test_a_file_that_is_not_a_spec_is_one_line(tmp_path, content, expected, capsys, monkeypatch):
    (tmp_path / "spec.yaml").write_bytes(content)
    monkeypatch.chdir(tmp_path)
    for command in ("validate", "run", "lr-find", "io-search"):
        line = one_error(in_process(capsys, command, "spec.yaml"))
        assert expected in line, line


@pytest.mark.slow   # an interpreter of its own: a few seconds
def test_the_real_command_says_it_without_a_traceback(tmp_path):
    (tmp_path / "spec.yaml").write_bytes(b"name: x\nname: y\n")
    line = one_error(raysweep("run", "spec.yaml", cwd=tmp_path))
    assert line == "error: spec.yaml:2:1: not valid YAML: the key 'name' appears twice (first on line 1); keep one"


# --- after-sweep commands given names that are not there ------------------------------------

@pytest.mark.slow
def test_unknown_metrics_and_trials_name_the_known_ones(experiment, tmp_path):
    line = one_error(raysweep("rank", experiment, "--metric", "val_los"))
    assert "--metric val_los: not a metric of this experiment. Did you mean 'val_loss'? Known: val_loss" in line
    line = one_error(raysweep("export", experiment, "--to", tmp_path / "m", "--metric", "val_acu", "--mode", "max"))
    assert "Did you mean 'val_auc'?" in line
    trial = Path(next(experiment.glob("run_in_trial_*"))).name.split("_")[3] + "_" + \
        Path(next(experiment.glob("run_in_trial_*"))).name.split("_")[4]
    line = one_error(raysweep("export", experiment, "--to", tmp_path / "m", "--trial", trial[:-1]))
    assert f"--trial {trial[:-1]}: " in line and "Did you mean" in line and "Its trials: " in line
    result = raysweep("rank", experiment, "--mode", "maxx")
    assert result.returncode == exit_codes.USAGE and "invalid choice: 'maxx' (choose from 'min', 'max')" in result.stderr
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_a_model_given_another_workloads_data_names_what_does_not_fit(experiment, tmp_path):
    assert raysweep("export", experiment, "--to", tmp_path / "champion").returncode == 0
    linear = tmp_path / "linear"
    assert raysweep("data", ROOT / "examples" / "linear" / "linear.py", "--out", linear).returncode == 0
    line = one_error(raysweep("predict", tmp_path / "champion", "--data", linear))
    assert f"error: {linear} does not fit the model in {tmp_path / 'champion'}: it has no column 'site_id'" in line
    assert "predict on data written the same way" in line


@pytest.mark.slow
def test_resume_of_a_finished_sweep_has_nothing_to_do(experiment):
    started = time.monotonic()
    result = raysweep("resume", experiment)
    assert result.returncode == exit_codes.OK and "Traceback" not in result.stderr
    assert f"nothing to resume: all 6 trials of {experiment} have ended" in result.stdout
    assert time.monotonic() - started < 60, "it started no Ray"


# --- storage at a URI out of reach ----------------------------------------------------------

@pytest.mark.slow   # pyarrow's client retries a refused connection for about 6 s, three times here
def test_storage_out_of_reach_is_one_line_before_ray_starts(tmp_path, raw_spec, capsys, monkeypatch):
    closed = free_port()   # nothing listens there
    for key, value in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed}", "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    raw_spec["storage_path"] = "s3://somewhere/results"
    spec = write_spec(tmp_path, raw_spec)
    started = time.monotonic()
    line = one_error(in_process(capsys, "run", spec))
    assert time.monotonic() - started < 30
    assert line.startswith("error: storage_path s3://somewhere/results: cannot write there (NETWORK_CONNECTION")
    assert f"AWS_ENDPOINT_URL=http://127.0.0.1:{closed}" in line
    line = one_error(in_process(capsys, "rank", "s3://somewhere/results/x"))
    assert line.startswith("error: experiment s3://somewhere/results/x: cannot read there (NETWORK_CONNECTION")
    raw_spec["storage_path"] = str(tmp_path / "results")
    raw_spec["data"]["path"] = "s3://somewhere/data"
    line = one_error(in_process(capsys, "validate", write_spec(tmp_path, raw_spec)))
    assert "data.path s3://somewhere/data: cannot read there (NETWORK_CONNECTION" in line


def test_a_storage_that_never_answers_is_given_up_on(monkeypatch):
    """A server that takes the connection and never answers keeps pyarrow's client waiting (it
    retries): the probe gives up after its timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)   # connections complete in the backlog; nothing ever reads them
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            monkeypatch.setenv(key, "testing")
        started = time.monotonic()
        with pytest.raises(UserError) as err:
            location.reach("s3://silent/results", "storage_path", write=True, timeout_s=2)
        assert time.monotonic() - started < 5
    assert str(err.value).startswith("storage_path s3://silent/results: cannot write there (TimeoutError: no answer "
                                     "within 2 s)")


@pytest.mark.slow
def test_a_bucket_that_does_not_exist_is_one_line(s3, tmp_path, raw_spec):
    env = {**__import__("os").environ, **s3}
    raw_spec["storage_path"] = f"s3://no-{BUCKET}/results"
    line = one_error(raysweep("run", write_spec(tmp_path, raw_spec), env=env))
    assert line.startswith(f"error: storage_path s3://no-{BUCKET}/results: cannot write there (NO_SUCH_BUCKET")


def test_yaml_merge_keys_still_work_and_a_bad_set_is_one_line(tmp_path, raw_spec, capsys):
    text = yaml.safe_dump(raw_spec).replace("fixed:\n", "fixed:\n  <<: {epochs: 2, seed: 7}\n", 1)
    (tmp_path / "spec.yaml").write_text(text)
    assert in_process(capsys, "validate", tmp_path / "spec.yaml").returncode == 0, "YAML's merge key is no repeat"
    assert spec.load(tmp_path / "spec.yaml").fixed["seed"] == 7
    line = one_error(in_process(capsys, "validate", write_spec(tmp_path, raw_spec), "--set", "fixed.epochs={a: 1"))
    assert line.endswith("--set fixed.epochs={a: 1: not valid YAML: while parsing a flow mapping expected ',' or '}', "
                         "but got '<stream end>'")
