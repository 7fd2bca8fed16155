"""A spec's workload by reference: a file beside the spec or a module path, checked against the
contract with one clear line per problem, and trained by a real sweep."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from raysweep import cli, spec
from raysweep.analysis import leaderboard
from raysweep.phases import sweep
from raysweep.runner import session
from raysweep.workloads import load_workload, references

ROOT = Path(__file__).resolve().parents[2]


def readme_workload_source() -> str:
    """The README's minimal workload (examples/linear/linear.py), as a user would save it."""
    return (ROOT / "examples" / "linear" / "linear.py").read_text()


def linear_spec(folder: Path, data: Path, workload: str = "./linear.py") -> Path:
    raw = {"name": "lin", "workload": workload, "data": {"path": str(data)}, "metric": "val_loss", "mode": "min",
           "fixed": {"epochs": 3, "batch_size": 64, "learning_rate": 0.01},
           "params": {"hidden_units": {"type": "choice", "values": [8, 16]}},
           "search": {"algorithm": "grid"}, "storage_path": str(folder / "results")}
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture
def project(tmp_path):
    """A user's folder: the README's workload in linear.py, its data, and a spec naming ./linear.py."""
    (tmp_path / "linear.py").write_text(readme_workload_source())
    workload = load_workload(str(tmp_path / "linear.py"))
    workload.DATA.write(tmp_path / "data")
    return tmp_path


def test_a_file_beside_the_spec_is_the_workload(project):
    s = spec.load(linear_spec(project, project / "data"))
    assert s.workload == str(project / "linear.py"), "made absolute, so trials load the same file"
    assert s.epochs == 3 and s.tuned == ["hidden_units"]


def problems_of(project, source: str, capsys) -> list[str]:
    (project / "linear.py").write_text(source)
    assert cli.main(["validate", str(linear_spec(project, project / "data"))]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.splitlines()


def test_a_workload_off_the_contract_gets_one_line_per_problem(project, capsys):
    source = readme_workload_source()
    source = source.replace("def compute_loss(model, batch, cfg):", "def compute_loss(outputs, labels):")
    source = re.sub(r"\nMETRICS = .*", "", source)
    lines = problems_of(project, source, capsys)
    assert any(line.endswith("workload: linear.py: compute_loss takes (model, batch, cfg), found (outputs, labels)")
               for line in lines), lines
    assert any("linear.py: METRICS must map each reported metric to 'min' or 'max'" in line for line in lines)


def test_a_workload_that_fails_to_import_shows_its_own_error(project, capsys):
    source = readme_workload_source().replace("TASK = ", "oops\nTASK = ")
    (line,) = [x for x in problems_of(project, source, capsys) if "workload:" in x]
    number = source.splitlines().index("oops") + 1
    assert line.endswith(f"linear.py: could not be imported: NameError: name 'oops' is not defined (line {number})")


def test_a_module_path_is_a_workload_and_a_missing_one_is_named(project, monkeypatch, capsys):
    package = project / "my_project"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(readme_workload_source())
    monkeypatch.syspath_prepend(str(project))
    assert spec.load(linear_spec(project, project / "data", "my_project.models")).workload == "my_project.models"
    assert cli.main(["validate", str(linear_spec(project, project / "data", "my_project.modles"))]) == 2
    assert "workload: my_project.modles: no such module" in capsys.readouterr().err


@pytest.mark.slow
def test_a_sweep_trains_the_users_workload(ray_session, project):
    experiment_dir = sweep.run(spec.load(linear_spec(project, project / "data")))
    table = leaderboard.leaderboard(experiment_dir)
    assert len(table) == 2 and set(table["status"]) == {"finished"}
    assert table["best_val_loss"].min() < 0.5, "trials in Ray workers loaded linear.py and trained it"
    assert copy.deepcopy(table)["hidden_units"].tolist() != []


def test_data_of_a_users_workload_is_written_by_its_file(project, monkeypatch, capsys):
    monkeypatch.chdir(project)
    assert cli.main(["data", "./linear.py", "--out", "fresh", "--seed", "3"]) == 0
    assert "wrote linear data to fresh (parquet; rows: train 4000, val 1000; 4 features)" in capsys.readouterr().out
    # A spec whose data is missing names the command that writes it, with the file as typed here.
    assert cli.main(["validate", str(linear_spec(project, project / "absent"))]) == 2
    assert f"Create it with: raysweep data ./linear.py --out {project / 'absent'}" in capsys.readouterr().err
    assert cli.main(["data", "./lineer.py", "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert "lineer.py: no such file" in err and "Traceback" not in err


def test_what_travels_to_a_cluster(project):
    assert references.shipment("glideator") is None, "raysweep's own workloads are installed on the nodes"
    assert references.shipment("raysweep.workloads.glideator") is None
    assert references.shipment("numpy.linalg") is None, "an installed package is the cluster setup's job"
    s = spec.load(linear_spec(project, project / "data"))   # the data (and results) lie in the folder
    env, override = session.cluster_runtime_env(s, job_env={})
    assert env["py_modules"] == [str(project)] and not override
    assert {"__pycache__/", ".venv/", "/data/", "/results/"} <= set(env["excludes"])
    assert json.loads(env["env_vars"][references.SHIPPED_ENV])["file"] == "linear.py"
    assert set(session.RAY_ENV) <= set(env["env_vars"])
    # A submitted job's own py_modules, excludes and variables are kept beside ours; ours win.
    job = {"working_dir": "gcs://wd.zip", "py_modules": ["gcs://x.zip"], "excludes": ["big/"],
           "env_vars": {"MINE": "1", "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "9"}}
    env, override = session.cluster_runtime_env(s, job_env=job)
    assert override and env["py_modules"] == ["gcs://x.zip", str(project)] and "big/" in env["excludes"]
    assert env["env_vars"]["MINE"] == "1" and env["env_vars"]["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] == "0.2"
    assert "working_dir" not in env, "keys only the job sets are Ray's to merge"
    # Without a workload of the user's, only raysweep's variables.
    assert session.cluster_runtime_env(None, job_env={}) == ({"env_vars": dict(session.RAY_ENV)}, False)


def test_a_data_option_may_not_take_a_common_name(project, capsys):
    source = readme_workload_source().replace(
        'DATA = DataCommand("linear", "a noisy linear target", write)',
        'from raysweep.workloads import Option\n'
        'DATA = DataCommand("linear", "a noisy linear target", write, (Option("--seed", "seed", "", int, 0),))')
    lines = problems_of(project, source, capsys)
    assert any("DATA option --seed uses '--seed', which every data command has already" in line for line in lines)


def test_the_data_must_be_the_workloads_and_hold_its_columns(project, capsys):
    # brake_coast's spec on linear data: the data command's name says whose data it is.
    assert cli.main(["validate", str(ROOT / "examples/brake_coast/spec.yaml"), "--set", f"data.path={project / 'data'}"]) == 2
    assert "holds linear data, but the spec's workload is" in capsys.readouterr().err
    # data without the labels column
    meta_path = project / "data" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["columns"] = {"features": "features"}
    meta_path.write_text(json.dumps(meta))
    assert cli.main(["validate", str(linear_spec(project, project / "data"))]) == 2
    assert "has no column 'labels' (meta.json columns: features)" in capsys.readouterr().err
