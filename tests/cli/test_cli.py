"""The `raysweep` command: exit codes, messages, no tracebacks on user mistakes."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from raysweep import cli
from raysweep.cli import before_run, champion, commands, drawing, plan, playbook
from raysweep.cli.parser import build_parser
from raysweep.spec import SNAPSHOT_FILE

from conftest import write_spec

ROOT = Path(__file__).resolve().parents[2]


def raysweep(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raysweep.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_validate_ok(tmp_path, raw_spec, capsys):
    assert cli.main(["validate", str(write_spec(tmp_path, raw_spec))]) == 0
    assert "OK. glideator: random search over learning_rate (loguniform)" in capsys.readouterr().out


def test_validate_reports_every_problem_without_traceback(tmp_path, raw_spec):
    raw_spec["workload"] = "glideatr"
    raw_spec["params"]["learning_rate"]["low"] = 0
    path = write_spec(tmp_path, raw_spec)
    result = raysweep("validate", path, "--set", "search.algorithm=optuna", "--set", "search.sed=1")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert f"error: {path}: workload: unknown workload 'glideatr'." in lines[0]
    assert any("search.sed: unknown key. Did you mean 'seed'?" in line for line in lines)
    assert any("params.learning_rate: `low > 0` must hold for loguniform" in line for line in lines)


def test_run_with_missing_data_exits_2_with_the_command(tmp_path, raw_spec, capsys):
    raw_spec["data"]["path"] = str(tmp_path / "absent")
    code = cli.main(["run", str(write_spec(tmp_path, raw_spec))])
    err = capsys.readouterr().err
    assert code == 2
    assert f"Create it with: raysweep data glideator --out {tmp_path / 'absent'}" in err


def test_run_with_corrupt_shard_exits_2(tmp_path, raw_spec, capsys):
    data = tmp_path / "data"
    assert cli.main(["data", "glideator", "--out", str(data), "--sites", "3", "--days", "20"]) == 0
    (data / "train" / "part-00000.parquet").write_bytes(b"not parquet")
    raw_spec["data"]["path"] = str(data)
    code = cli.main(["run", str(write_spec(tmp_path, raw_spec))])
    assert code == 2
    err = capsys.readouterr().err
    assert "data.path: shard" in err and "part-00000.parquet is unreadable" in err
    assert not (tmp_path / "results").exists(), "nothing is started for a spec that fails validation"


def test_data_command_writes_both_formats(tmp_path, capsys):
    for fmt in ("parquet", "webdataset"):
        out = tmp_path / fmt
        assert cli.main(["data", "glideator", "--out", str(out), "--sites", "2", "--days", "10",
                         "--format", fmt]) == 0
        assert (out / "meta.json").is_file()
        assert list((out / "train").iterdir()) and list((out / "val").iterdir())
    assert "rows: train 14, val 4, test 2" in capsys.readouterr().out


def test_rank_on_a_directory_that_is_no_experiment(tmp_path, capsys):
    assert cli.main(["rank", str(tmp_path)]) == 2
    assert "not a raysweep experiment directory" in capsys.readouterr().err


def test_usage_errors_exit_2():
    result = raysweep("rank")
    assert result.returncode == 2 and "the following arguments are required" in result.stderr


@pytest.mark.slow
def test_run_then_rank(ray_session, tmp_path, raw_spec, capsys):
    raw_spec["fixed"]["epochs"] = 2
    assert cli.main(["run", str(write_spec(tmp_path, raw_spec))]) == 0
    out = capsys.readouterr().out
    assert "best_val_loss" in out and "leaderboard:" in out
    (experiment,) = (tmp_path / "results").iterdir()
    assert cli.main(["rank", str(experiment), "--metric", "val_auc", "--mode", "max", "--top", "1"]) == 0
    ranked = capsys.readouterr().out.splitlines()
    assert "best_val_auc" in ranked[0] and ranked[1].split()[0] == "1"
    assert (experiment / "leaderboard.csv").is_file() and (experiment / "leaderboard.parquet").is_file()


def test_the_program_ends_with_the_commands_code_after_every_exit_handler(tmp_path):
    """`raysweep` (cli.console) skips Python's teardown, not what a normal exit does: threads a
    pool left running are told to stop, exit handlers run, the command's code is the exit code."""
    done = tmp_path / "handler_ran"
    script = f"""
import atexit, concurrent.futures, pathlib, time
from raysweep import cli
def main():
    pool = concurrent.futures.ThreadPoolExecutor(1)   # never shut down, as a library might leave it
    pool.submit(time.sleep, 0.2)
    atexit.register(lambda: pathlib.Path({str(done)!r}).write_text("yes"))
    print("worked", flush=False)
    return 3
cli.main = main
cli.console()
"""
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert finished.returncode == 3 and finished.stdout == "worked\n" and done.read_text() == "yes"


def test_the_help_lists_every_command_with_a_line_of_help(capsys):
    """`raysweep --help` lists each command the parser takes with its summary, its description and
    this package's docstring name them all (they once left out ensemble and evaluate), and each has
    its handler where `HANDLERS` looks for it: a command added without any of these fails here."""
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    names = list(subparsers.choices)
    handlers = {**before_run.COMMANDS, **drawing.COMMANDS, **commands.COMMANDS, **champion.COMMANDS, **playbook.COMMANDS,
                **plan.COMMANDS}
    assert sorted(names) == sorted(handlers)
    for name in names:
        assert handlers[name].__module__ == cli.HANDLERS.get(name, cli.DEFAULT_HANDLERS), name
    summaries = {a.dest: a.help for a in subparsers._choices_actions}
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    for name in names:
        assert summaries.get(name), f"{name}: no help= summary"
        assert re.search(rf"^ {{4}}{re.escape(name)} +{re.escape(summaries[name].split()[0])}", shown, re.M), name
        named = re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")
        assert named.search(parser.description) and named.search(" ".join(cli.__doc__.split())), name


@pytest.mark.slow
def test_a_one_epoch_smoke_run_of_a_shipped_asha_spec(ray_session, tiny_data, tmp_path, capsys, caplog):
    """`raysweep run SHIPPED_SPEC --set fixed.epochs=1` runs: the grace period beyond the one
    epoch is lowered with one line saying so (it was refused), and the experiment keeps what ran."""
    shipped = ROOT / "search_spaces" / "glideator_asha_random.yaml"
    assert yaml.safe_load(shipped.read_text())["scheduler"]["grace_period"] > 1
    code = cli.main(["run", str(shipped), "--set", "fixed.epochs=1", "--set", f"data.path={tiny_data}",
                     "--set", "search.num_samples=2", "--set", f"storage_path={tmp_path / 'results'}"])
    out = capsys.readouterr()
    assert code == 0, out.err[-3000:]
    # the line the command prints (`raysweep: ...` on stderr), once
    lowered = [r.getMessage() for r in caplog.records if "lowered to" in r.getMessage()]
    assert lowered == [f"{shipped} (with --set fixed.epochs=1): scheduler.grace_period: 2 is more than fixed.epochs 1: "
                       "lowered to 1"]
    assert "2 trials; statuses: 2 finished; trained 2 of 2 epochs" in out.out
    (experiment,) = (tmp_path / "results").iterdir()
    kept = yaml.safe_load((experiment / SNAPSHOT_FILE).read_text())
    assert kept["fixed"]["epochs"] == 1 and kept["scheduler"]["grace_period"] == 1
