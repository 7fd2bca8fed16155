"""The Python API (raysweep.run, resume, load, load_spec) and the notebook that shows it."""

from __future__ import annotations

from pathlib import Path

import pytest

import raysweep
from raysweep import cli
from raysweep.runner import ray_fixes

SPEC = "search_spaces/tabular_asha.yaml"
REPO = Path(__file__).parents[1]
SMALL = {"search.num_samples": 2, "fixed.epochs": 1, "params.batch_size": {"type": "choice", "values": [32, 64]}}


def raysweeps_parts_in_ray() -> list[str]:
    """Each attribute a Ray fix replaces that holds raysweep's code now (none, between sweeps)."""
    found = []
    for fix in ray_fixes.FIXES:
        for patch in fix.patches:
            held = getattr(patch.resolve_owner(), patch.name)
            code = getattr(held, "__code__", None)
            if getattr(held, "__module__", "").startswith("raysweep") or (code and "/raysweep/" in code.co_filename):
                found.append(patch.where)
    return found


def test_a_mistake_raises_what_the_command_prints(cancer, capsys):
    with pytest.raises(raysweep.SpecError) as raised:
        raysweep.load_spec(SPEC, {"data.path": str(cancer), "search.num_samples": 0, "scheduler.type": "asah"})
    assert cli.main(["validate", SPEC, "--set", f"data.path={cancer}", "--set", "search.num_samples=0",
                     "--set", "scheduler.type=asah"]) == 2
    printed = [line.removeprefix("error: ") for line in capsys.readouterr().err.splitlines()]
    assert str(raised.value).splitlines() == printed and len(printed) == 3   # the batch of 512 too
    with pytest.raises(raysweep.UserError) as raised:
        raysweep.load(REPO / "no_such_experiment")
    assert cli.main(["rank", str(REPO / "no_such_experiment")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {raised.value}"


def test_overrides_mean_what_they_mean_on_the_command_line(cancer):
    given = raysweep.load_spec(SPEC, {"data.path": str(cancer), **SMALL, "params.dropout": {"type": "uniform", "low": 0.1,
                                                                                             "high": 0.2}})
    typed = raysweep.load_spec(SPEC, [f"data.path={cancer}", "search.num_samples=2", "fixed.epochs=1",
                                      "params.batch_size={type: choice, values: [32, 64]}",
                                      "params.dropout={type: uniform, low: 0.1, high: 0.2}"])
    assert given == typed and given.search.num_samples == 2


@pytest.mark.slow
def test_run_twice_in_one_process_and_nothing_of_raysweep_stays_in_ray(ray_session, cancer, tmp_path):
    spec = raysweep.load_spec(SPEC, {"data.path": str(cancer), "storage_path": str(tmp_path), **SMALL})
    first = raysweep.run(spec, quiet=True)
    assert raysweeps_parts_in_ray() == []
    second = raysweep.run(spec, {"search.seed": 1}, quiet=True)
    assert raysweeps_parts_in_ray() == []
    assert first.experiment_dir != second.experiment_dir
    for results in (first, second):
        assert results.status == "finished" and len(results.trials) == 2
        assert results.champion().trial == results.leaderboard()["trial"].iloc[0]
    assert second.spec.search.seed == 1
    again = raysweep.resume(first.experiment_dir)   # nothing to resume: its results as they are
    assert again.experiment_dir == first.experiment_dir and list(again.trials["trial"]) == list(first.trials["trial"])


@pytest.mark.slow
def test_the_notebook_launches_watches_and_plots_a_sweep(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("RAYSWEEP_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("RAYSWEEP_DATA", str(tmp_path / "data"))
    notebook = nbformat.read(REPO / "notebooks" / "tune_from_a_notebook.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert [o for o in outputs if "image/png" in o.get("data", {})], "the learning curves and the LR plot"
    text = "\n".join(o.get("text", "") for o in outputs)
    assert "finished: trials seen as the sweep ran [0" in text     # it was watched from the first
    assert "--set search.num_samples=0: search.num_samples: must be an integer >= 1, got 0" in text
    assert "finished 2 trials" in text
    # quiet=True: no per-trial lines, and no INFO lines though the data import set logging up to show them
    assert "wrote tabular data" in text and "starting a local Ray" not in text and "finished 4 epochs" not in text
    watched, again = sorted((tmp_path / "results").glob("tabular_asha-*"))   # by the time they started
    board = raysweep.load(watched).leaderboard()
    assert len(board) == 6 and f"champion {board['trial'].iloc[0]}" in text
    assert len(raysweep.load(again).trials) == 2


def test_overrides_of_a_loaded_spec_apply_to_it_as_given_not_as_lowered(cancer):
    """A smoke run's spec (epochs 1 lowers ASHA's grace period) run again for longer gets the
    file's grace period back, not the smoke run's."""
    smoke = raysweep.load_spec(SPEC, {"data.path": str(cancer), "fixed.epochs": 1, **{k: v for k, v in SMALL.items()
                                                                                       if k != "fixed.epochs"}})
    assert smoke.scheduler.grace_period == 1
    longer = raysweep.api._spec_of(smoke, {"fixed.epochs": 12})
    assert longer.fixed["epochs"] == 12 and longer.scheduler.grace_period == 3 and longer.warnings == ()


def test_a_notebooks_values_are_written_as_the_command_line_would(cancer):
    import numpy as np

    spec = raysweep.load_spec(SPEC, {"data.path": cancer, **SMALL, "params.dropout": {"type": "choice",
                                                                                      "values": np.array([0.0, 0.25])}})
    assert spec.data.path == str(cancer) and [p for p in spec.params if p.name == "dropout"][0].values == (0.0, 0.25)


def test_plan_gives_what_the_command_prints(cancer, capsys):
    planned = raysweep.plan(SPEC, {"data.path": str(cancer), **SMALL, "search.num_samples": 6},
                            cluster=REPO / "cluster.yaml", prices={"head": 0.19})
    assert planned.trials == 6 and planned.nodes == {"head": 1, "cpu_worker": 1} and planned.wall_s is None
    assert cli.main(["plan", SPEC, "--set", f"data.path={cancer}", "--set", "search.num_samples=6",
                     "--set", "fixed.epochs=1", "--set", "params.batch_size={type: choice, values: [32, 64]}",
                     "--cluster", str(REPO / "cluster.yaml")]) == 0
    printed = capsys.readouterr().out
    assert f"trials               6, {planned.slots} at a time" in printed
    assert f"epochs               {planned.epochs:.0f} expected" in printed
    with pytest.raises(raysweep.UserError, match="no available_node_types"):
        raysweep.plan(SPEC, {"data.path": str(cancer), **SMALL}, cluster=REPO / "search_spaces" / "tabular_asha.yaml")
