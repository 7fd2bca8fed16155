"""`raysweep playbook`: io-search -> lr-find -> the search on the narrowed spec -> report -> export,
each decision recorded with its evidence, stopped where a phase finds nothing, resumed after
`--stop-after`, a stop and a SIGKILL without running a finished phase (or trial) again.

One playbook over tiny data is shared by the first tests (module fixture `played`): started with
`--stop-after lr`, resumed with a threshold nobody meets (stops at export), resumed again with
one the champion meets. The SIGKILL test runs the real command in a process of its own.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from raysweep import cli, spec
from raysweep.analysis import leaderboard
from raysweep.cli import exit_codes, parser
from raysweep.deploy import export
from raysweep.experiment import playbook as record
from raysweep.phases import io_search, lr_find

from conftest import BASE_SPEC

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "search_spaces" / "glideator_playbook.yaml"
RAYSWEEP = str(Path(sys.executable).with_name("raysweep"))
TINY = ["--set", "io_search={steps: 20, warmup_steps: 2, grid: {batch_size: [32, 128], prefetch_batches: [1]}}",
        "--set", "lr_find={subset_rows: 512, num_steps: 60, fit_max_steps: 300}",
        "--set", "fixed.epochs=3", "--set", "search.num_samples=4"]


def main(*argv: str) -> tuple[int, str, str]:
    """`raysweep ARGV` in this process (the session's Ray): exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def read(directory: Path) -> dict:
    return json.loads((directory / record.RECORD_FILE).read_text())


@pytest.fixture(scope="module")
def played(ray_session, tiny_data, tmp_path_factory):
    """The shipped playbook spec over tiny data: to lr-find, to a refused export, to the end."""
    results = tmp_path_factory.mktemp("playbook") / "results"
    sets = ["--set", f"data.path={tiny_data}", "--set", f"storage_path={results}", *TINY]
    runs = {"lr": main("playbook", str(SHIPPED), *sets, "--stop-after", "lr")}
    (directory,) = results.glob("*-playbook-*")
    records = {"lr": read(directory)}
    runs["refused"] = main("playbook", "--resume", str(directory), "--min-metric", "1e-9")
    records["refused"] = read(directory)
    exported_when_refused = (directory / record.CHAMPION_DIR).exists()
    runs["done"] = main("playbook", "--resume", str(directory), "--min-metric", "100")
    return {"dir": directory, "results": results, "runs": runs, "records": records, "final": read(directory),
            "exported_when_refused": exported_when_refused}


@pytest.mark.slow
def test_the_playbook_goes_from_data_to_an_exported_champion(played):
    assert played["runs"]["done"][0] == exit_codes.OK, played["runs"]["done"]
    phases = played["final"]["phases"]
    assert {p: e["status"] for p, e in phases.items()} == dict.fromkeys(record.PHASES, record.DONE)

    # io-search: the fastest setting, its samples/s, and the table's top rows as evidence
    io = phases["io"]
    top = io["evidence"]["top"]
    assert io["decision"]["settings"] == {k: top[0][k] for k in ("batch_size", "prefetch_batches")}
    assert io["decision"]["samples_per_s"] == pytest.approx(top[0]["samples_per_s"])
    assert [r["samples_per_s"] for r in top] == sorted((r["samples_per_s"] for r in top), reverse=True)
    assert len(top) == 2 and Path(io["evidence"]["table"]).is_file()

    # lr-find: the range, the curve it came from, each test's suggestion
    lr = phases["lr"]
    low, high = lr["decision"]["low"], lr["decision"]["high"]
    assert 0 < low < high
    assert Path(lr["evidence"]["curves"]).is_file() and Path(lr["evidence"]["plot"]).is_file()
    (test,) = lr["evidence"]["tests"]
    assert (test["low"], test["high"]) == (low, high) and test["steepest_lr"] and test["min_loss_lr"]

    # the search ran on the spec narrowed by both
    search_dir = Path(phases["search"]["experiment_dir"])
    ran = spec.load(search_dir / spec.SNAPSHOT_FILE, check_data=False)
    assert ran.fixed["batch_size"] == io["decision"]["settings"]["batch_size"]
    assert ran.fixed["prefetch_batches"] == 1 and "learning_rate" not in ran.fixed
    (rate,) = [p for p in ran.params if p.name == "learning_rate"]
    assert (rate.type, rate.low, rate.high) == ("loguniform", low, high)
    table = leaderboard.leaderboard(search_dir)
    assert len(table) == 4 and table["learning_rate"].between(low, high).all()
    assert spec.load(played["dir"] / record.SEARCH_SPEC_FILE, check_data=False).params == ran.params

    # the champion and its rank; exported, the card's metric the search's champion's
    champion = phases["search"]["decision"]
    assert champion["trial"] == table.iloc[0]["trial"] and (champion["rank"], champion["trials"]) == (1, 4)
    assert champion["value"] == pytest.approx(table.iloc[0]["best_val_loss"])
    card = json.loads((played["dir"] / record.CHAMPION_DIR / export.CARD_FILE).read_text())
    assert card["champion"]["trial"] == champion["trial"]
    assert card["champion"]["value"] == pytest.approx(champion["value"])
    assert (played["dir"] / record.CHAMPION_DIR / export.MODEL_FILE).is_file()
    assert phases["export"]["decision"] == {
        "model_dir": str(played["dir"] / record.CHAMPION_DIR), "trial": champion["trial"], "metric": "val_loss",
        "mode": "min", "value": pytest.approx(champion["value"]), "threshold": 100.0, "passed": True}

    # the search's report shows the playbook's decisions, export included
    page = (search_dir / "report.html").read_text()
    section = page[page.index('<h2 id="playbook">Playbook</h2>'):page.index("<h2>Plots</h2>")]
    for words in ("io-search", "samples/s", f"learning_rate {low:.2g} .. {high:.2g}",
                  f"champion: trial {champion['trial']}", "rank 1 of 4", str(played["dir"] / record.CHAMPION_DIR)):
        assert words in section, words
    assert section.count("<td>done</td>") == 5
    assert record.find(search_dir) == record.linked(search_dir) == played["dir"], "--resume takes the search too"

    # the console: a line as each phase starts, its decision as it ends, then where things are
    out = played["runs"]["done"][1]
    assert "[5/5] export: the champion to" in out and "meets --min-metric (at most 100)" in out
    assert f"champion: {played['dir'] / record.CHAMPION_DIR}" in out


@pytest.mark.slow
def test_stop_after_lr_then_resume_runs_neither_io_nor_lr_again(played):
    code, out, _ = played["runs"]["lr"]
    assert code == exit_codes.OK
    assert "[1/5] io-search: timing" in out and "[2/5] lr-find: steps to fit" in out
    assert f"stopped after lr-find, as asked; go on with: raysweep playbook --resume {played['dir']}" in out
    assert "[3/5]" not in out
    first = played["records"]["lr"]["phases"]
    assert [first[p]["status"] for p in record.PHASES] == ["done", "done", "pending", "pending", "pending"]
    for later in (played["records"]["refused"], played["final"]):
        for phase in ("io", "lr"):
            assert later["phases"][phase] == first[phase], f"{phase} ran again"
    assert "[1/5] io-search: done before: batch_size=" in played["runs"]["refused"][1]
    assert len(list(played["results"].glob("*-io_search-*"))) == 1
    assert len(list(played["results"].glob("*-lr_find-*"))) == 1
    assert len(list(played["results"].glob("glideator_playbook-2*"))) == 1, "one search"


@pytest.mark.slow
def test_a_champion_below_the_threshold_stops_at_export_with_the_command_to_go_on(played):
    code, out, err = played["runs"]["refused"]
    assert code == exit_codes.NOTHING_FOUND
    entry = played["records"]["refused"]["phases"]["export"]
    search_dir = played["records"]["refused"]["phases"]["search"]["experiment_dir"]
    command = f"raysweep export {search_dir} --to {played['dir'] / record.CHAMPION_DIR}"
    assert entry["status"] == record.STOPPED and entry["command"] == command
    assert "the threshold asks for at most 1e-09. Nothing exported." in entry["reason"]
    assert f"stopped: the champion, trial {played['final']['phases']['search']['decision']['trial']}" in err
    assert f"go on by hand: {command}" in err
    assert f"raysweep playbook --resume {played['dir']} --min-metric X" in err
    assert not played["exported_when_refused"]
    assert played["records"]["refused"]["phases"]["report"]["status"] == record.DONE


@pytest.mark.slow
def test_no_lr_range_stops_with_the_narrowed_spec_to_run_by_hand(ray_session, tiny_data, tmp_path):
    raw = copy.deepcopy(BASE_SPEC)
    raw.update(data={"path": str(tiny_data)}, storage_path=str(tmp_path / "results"),
               lr_find={"num_steps": 4, "subset_rows": 256, "fit_max_steps": 20})   # too short a curve to read
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    code, out, err = main("playbook", str(path))
    assert code == exit_codes.NOTHING_FOUND, err
    (directory,) = (tmp_path / "results").glob("*-playbook-*")
    phases = read(directory)["phases"]
    assert [phases[p]["status"] for p in record.PHASES] == ["skipped", "stopped", "pending", "pending", "pending"]
    assert "[1/5] io-search: skipped (the spec has no io_search section)" in out
    assert "lr-find read no learning-rate range from the curves (the range test ran only" in err
    written = directory / record.SEARCH_SPEC_FILE
    assert (f"go on by hand: set params.learning_rate in {written} (moved from fixed, where the spec fixes it), "
            f"then: raysweep run {written}") in err
    assert spec.load(written).params == spec.validate(raw).params
    assert not list((tmp_path / "results").glob("tiny-2*")), "no search ran"


@pytest.mark.slow
def test_sigkill_in_the_search_then_resume_runs_no_finished_phase_or_trial_again(tiny_data, tmp_path):
    epochs = 6
    sets = ["--set", f"data.path={tiny_data}", "--set", f"storage_path={tmp_path / 'results'}",
            "--set", "io_search={steps: 10, warmup_steps: 2, grid: {batch_size: [64], prefetch_batches: [1]}}",
            "--set", "lr_find={subset_rows: 512, num_steps: 40, fit_max_steps: 200}", "--set", f"fixed.epochs={epochs}",
            "--set", "search.num_samples=6", "--set", "scheduler={type: fifo}"]
    env = {**os.environ, "RAY_ADDRESS": ""}
    driver = subprocess.Popen([RAYSWEEP, "playbook", str(SHIPPED), *sets], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ended: dict[str, list] = {}
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not ended:
            ended = {d.name: epochs_of(d) for d in trial_dirs(tmp_path) if epochs_of(d)[-1:] == [epochs]}
            time.sleep(0.05)
        assert ended, "no trial of the search ended within the time allowed"
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
        at_kill = {d.name: epochs_of(d) for d in trial_dirs(tmp_path)}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)   # the Ray it started
    assert sum(len(e) < epochs for e in at_kill.values()) + 6 - len(at_kill) >= 1, "the kill left work to resume"
    (directory,) = (tmp_path / "results").glob("*-playbook-*")
    killed = read(directory)
    assert [killed["phases"][p]["status"] for p in record.PHASES] == ["done", "done", "running", "pending", "pending"]

    resumed = subprocess.run([RAYSWEEP, "playbook", "--resume", str(directory)], env=env, capture_output=True,
                             text=True, timeout=300, start_new_session=True)
    assert resumed.returncode == exit_codes.OK, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "[1/5] io-search: done before" in resumed.stdout and "[2/5] lr-find: done before" in resumed.stdout
    final = read(directory)
    for phase in ("io", "lr"):
        assert final["phases"][phase] == killed["phases"][phase], f"{phase} ran again"
    assert len(list((tmp_path / "results").glob("*-io_search-*"))) == 1
    assert len(list((tmp_path / "results").glob("*-lr_find-*"))) == 1
    search_dir = Path(final["phases"]["search"]["experiment_dir"])
    assert str(search_dir) == killed["phases"]["search"]["experiment_dir"], "the search resumed, not restarted"
    for name, epochs_then in ended.items():   # not run again: each epoch reported once, as before the kill
        assert epochs_of(search_dir / name) == epochs_then == list(range(1, epochs + 1)), name
    table = leaderboard.leaderboard(search_dir)
    assert len(table) == 6 and set(table["status"]) == {"finished"}
    card = json.loads((directory / record.CHAMPION_DIR / export.CARD_FILE).read_text())
    assert card["champion"]["trial"] == final["phases"]["search"]["decision"]["trial"] == table.iloc[0]["trial"]


def trial_dirs(tmp_path: Path) -> list[Path]:
    """The search's trial folders, once the playbook has recorded where the search runs."""
    for path in (tmp_path / "results").glob("*-playbook-*/" + record.RECORD_FILE):
        with contextlib.suppress(ValueError, OSError):
            search = json.loads(path.read_text())["phases"]["search"].get("experiment_dir")
            if search:
                return list(Path(search).glob("run_in_trial_*"))
    return []


def epochs_of(trial_dir: Path) -> list:
    path = trial_dir / "result.json"
    found = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        with contextlib.suppress(json.JSONDecodeError):   # a line still being written
            found.append(json.loads(line).get("epoch"))
    return found


# --- without Ray ----------------------------------------------------------------------------------

def test_the_parser_offers_the_phases_the_playbook_has():
    assert parser.PLAYBOOK_PHASES == record.PHASES


def test_narrowing_is_what_write_spec_writes(raw_spec, tmp_path):
    s = spec.validate(raw_spec)
    settings = {"batch_size": 32, "prefetch_batches": 2}
    assert spec.load(io_search.write_spec(s, settings, tmp_path / "a.yaml")).raw == \
        spec.validate(io_search.narrowed(s, settings)).raw
    assert spec.load(lr_find.write_spec(s, 1e-4, 1e-2, tmp_path / "b.yaml")).raw == \
        spec.validate(lr_find.narrowed(s, 1e-4, 1e-2)).raw


def test_phases_the_spec_does_not_configure_are_skipped(raw_spec, tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw_spec))
    code, out, err = main("playbook", str(path), "--stop-after", "lr")
    assert code == exit_codes.OK, err
    (directory,) = (tmp_path / "results").glob("*-playbook-*")
    phases = read(directory)["phases"]
    assert [phases[p]["status"] for p in record.PHASES] == ["skipped", "skipped", "pending", "pending", "pending"]
    assert phases["lr"]["reason"] == "the spec has no lr_find section"
    assert "[2/5] lr-find: skipped (the spec has no lr_find section)" in out


@pytest.mark.parametrize("argv, expected", [
    ([], "playbook takes a spec to start (raysweep playbook SPEC) or --resume DIR to go on with one, and got neither"),
    (["<spec>", "--resume", "<dir>"], "or --resume DIR to go on with one, not both"),
    (["--resume", "<dir>"], "{dir}: not a playbook (playbook.json is missing); start one with raysweep playbook SPEC"),
    (["--resume", "<missing>"], "{missing}: no such directory; --resume takes the playbook's directory"),
    (["--resume", "<dir>", "--set", "fixed.epochs=1"], "--set changes the spec of a new playbook; --resume {dir} goes on"),
    (["<spec>", "--set", "storage_path=s3://bucket/results"],
     "storage_path s3://bucket/results: raysweep playbook keeps its record in a local folder"),
    (["--resume", "<broken>"], "{broken}/playbook.json: cannot be read as a playbook record (JSONDecodeError"),
], ids=["neither", "both", "no-playbook", "no-directory", "set-with-resume", "uri", "broken-record"])
def test_bad_input_is_one_line_and_exit_2(argv, expected, raw_spec, tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw_spec))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / record.RECORD_FILE).write_text("{")
    names = {"spec": str(path), "dir": str(tmp_path), "missing": str(tmp_path / "missing"),
             "broken": str(tmp_path / "broken")}
    code, out, err = main("playbook", *[names.get(a.strip("<>"), a) for a in argv])
    assert code == exit_codes.USAGE
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert expected.format(**names) in lines[0]
    assert not (tmp_path / "results").exists(), "nothing started"
