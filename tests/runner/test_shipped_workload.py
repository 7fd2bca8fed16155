"""A user's workload reaches a cluster's nodes through Ray's runtime environment.

The workload lives in a folder of the user's (with a module beside it that it imports); the
cluster's worker node was started without that folder on its path, and the driver runs from
elsewhere. Each process that imports the workload appends where it found its files to a log,
so the test sees that the trials loaded the copies Ray shipped, not the originals.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raysweep.analysis import store
from raysweep.workloads import references

from conftest import run_cluster_script

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("shipped_workload_sweep.py")
LINEAR = (ROOT / "examples" / "linear" / "linear.py").read_text()
RECORD = """
import json as _json, os as _os
with open(_os.environ["SHIPPED_LOG"], "a") as _log:
    _log.write(_json.dumps({{"workload": __file__, "helper": {helper}.__file__, "pid": _os.getpid()}}) + "\\n")
"""


def user_files(tmp_path: Path) -> tuple[Path, Path]:
    """A project folder with the workload in a file (its code in the module beside it), and a
    package `user_pkg` whose `models` module is the same workload."""
    project = tmp_path / "user_project"
    project.mkdir()
    (project / "linear_parts.py").write_text(LINEAR)
    (project / "shipped.py").write_text("import linear_parts\nfrom linear_parts import *  # noqa: F403\n"
                                        + RECORD.format(helper="linear_parts"))
    (project / "data").mkdir()   # what a user keeps beside the code; shipped too unless ignored
    package = tmp_path / "modules" / "user_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "linear_parts.py").write_text(LINEAR)
    (package / "models.py").write_text("from user_pkg import linear_parts\nfrom user_pkg.linear_parts import *  # noqa: F403\n"
                                       + RECORD.format(helper="linear_parts"))
    return project / "shipped.py", tmp_path / "modules"


def test_a_file_and_a_module_of_the_user_travel_to_the_nodes(tmp_path, monkeypatch):
    workload, module_root = user_files(tmp_path)
    log = tmp_path / "imports.jsonl"
    monkeypatch.setenv("SHIPPED_LOG", str(log))
    spec_linear = references.load_workload(str(workload))   # the driver's view, here
    data = tmp_path / "data"
    spec_linear.DATA.write(out_dir=data)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)   # the driver runs from neither folder
    raw = {"name": "shipped", "workload": str(workload), "data": {"path": str(data)},
           "metric": "val_loss", "mode": "min", "fixed": {"epochs": 2, "batch_size": 256},
           "params": {"learning_rate": {"type": "loguniform", "low": 1e-3, "high": 1e-2}},
           "search": {"algorithm": "random", "num_samples": 2, "seed": 0},
           "resources": {"max_concurrent_trials": 2}, "storage_path": str(tmp_path / "results")}
    out = run_cluster_script(SCRIPT, raw, tmp_path, str(module_root))

    for key in ("file_experiment", "module_experiment"):
        trials = store.load(out[key]).trials
        assert (trials["status"] == "finished").all(), trials[["status", "error"]]
        assert set(trials["node_id"]) == {out["worker"]}, "the head has no CPU: trials ran on the worker node"

    imports = [json.loads(line) for line in log.read_text().splitlines()]
    shipped = [i for i in imports if "runtime_resources" in i["workload"]]
    by_file = [i for i in shipped if i["workload"].endswith("/user_project/shipped.py")]
    by_module = [i for i in shipped if i["workload"].endswith("/user_pkg/models.py")]
    assert by_file and by_module, imports
    for record in shipped:   # the module beside it came from the same shipped folder
        assert Path(record["helper"]).parent == Path(record["workload"]).parent
        assert not record["workload"].startswith(str(tmp_path))
