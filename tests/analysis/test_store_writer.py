"""The results store's writer: a trial's row is made once, from its own files, as it ends, and
the writes are spaced by their cost, so a large sweep's driver stays free."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pandas as pd
import pytest

from raysweep import experiment, spec
from raysweep.analysis import store, store_writer
from raysweep.experiment import journal
from raysweep.phases import sweep


def trial(name: str, status: str = "RUNNING") -> SimpleNamespace:
    return SimpleNamespace(trial_id=name, status=status, local_path=f"/nowhere/{name}")


def writer_with_rows(monkeypatch, now: list[float], write_s: float):
    """A writer whose rows are made without files and whose writes take `write_s` seconds."""
    written = []

    def write(experiment_dir, results):
        now[0] += write_s
        written.append((now[0], list(results.trials["trial"])))

    monkeypatch.setattr(store, "write", write)
    writer = store_writer.StoreWriter("unused", min_interval_s=10.0, clock=lambda: now[0])
    monkeypatch.setattr(writer, "_row", lambda t, status: ({"trial": t.trial_id, "status": status}, None))
    return writer, written


def test_a_slow_write_spaces_the_next_one_so_the_store_takes_at_most_a_twentieth(monkeypatch):
    now = [0.0]
    writer, written = writer_with_rows(monkeypatch, now, write_s=2.0)   # the tables of a large sweep: 2 s
    for i, at in enumerate((0.0, 11.0, 39.0, 41.0)):   # trials end at these times
        now[0] = max(now[0], at)
        writer.on_trial_complete(0, [], trial(f"t{i}"))
    assert [at for at, _ in written] == [2.0, 43.0]   # 11 s and 39 s fall within 20 x 2 s of the first
    assert written[-1][1] == ["t0", "t1", "t2", "t3"]   # no trial that ended in between is lost
    writer.on_experiment_end([trial(f"t{i}") for i in range(4)])
    assert len(written) == 3                             # the end always writes


def test_a_quick_write_waits_the_minimum_interval(monkeypatch):
    now = [0.0]
    writer, written = writer_with_rows(monkeypatch, now, write_s=0.0)
    for i, at in enumerate((0.0, 5.0, 10.0)):
        now[0] = at
        writer.on_trial_error(0, [], trial(f"t{i}"))
    assert [at for at, _ in written] == [0.0, 10.0]


def test_the_end_marks_trials_that_never_ended_unfinished_in_tunes_order(monkeypatch):
    now = [0.0]
    writer, written = writer_with_rows(monkeypatch, now, write_s=0.0)
    writer.on_step_begin(0, [trial("a"), trial("b")])
    writer.on_trial_complete(0, [], trial("b"))
    writer.on_experiment_end([trial("a"), trial("b")])   # "a" was running when the sweep was stopped
    assert written[-1][1] == ["a", "b"]
    assert writer.rows["b"]["status"] == "TERMINATED" and writer.rows["a"]["status"] == "RUNNING"


def test_a_resumed_sweep_goes_by_what_tune_saved(monkeypatch):
    """The first run's store had "a" and "b" ended; Tune's state, saved a moment earlier (the
    driver was killed in between), has "b" still running and "c" ended, which the store lacks."""
    now = [0.0]
    writer, written = writer_with_rows(monkeypatch, now, write_s=0.0)
    first_run = [{"trial": "a", "status": "finished"}, {"trial": "b", "status": "finished"}]
    monkeypatch.setattr(store, "read", lambda d: store.Results(pd.DataFrame(first_run), pd.DataFrame()))
    writer.setup()
    restored = [trial(name, status) for name, status in [("a", "TERMINATED"), ("b", "RUNNING"), ("c", "ERROR"), ("d", "PENDING")]]
    writer.on_step_begin(0, restored)
    writer.on_trial_complete(0, [], restored[1])           # b runs on and finishes
    writer.on_experiment_end(restored)                    # d was still pending when stopped again
    assert [writer.rows[n]["status"] for n in "abcd"] == ["finished", "TERMINATED", "ERROR", "RUNNING"]
    assert written[-1][1] == ["a", "b", "c", "d"]


def test_a_row_that_cannot_be_made_leaves_the_store_to_be_rebuilt(monkeypatch, tmp_path):
    now = [0.0]
    writer, written = writer_with_rows(monkeypatch, now, write_s=0.0)
    writer.experiment_dir = str(tmp_path)
    for name in (store.TRIALS_FILE, store.CURVES_FILE):
        (tmp_path / name).write_text("an earlier store")

    def row(t, status):
        if t.trial_id == "b":
            raise OSError("result.json unreadable")
        return {"trial": t.trial_id, "status": status}, None

    monkeypatch.setattr(writer, "_row", row)
    writer.on_trial_complete(0, [], trial("a"))
    writer.on_trial_complete(0, [], trial("b"))
    writer.on_experiment_end([trial("a"), trial("b")])
    assert not (tmp_path / store.TRIALS_FILE).exists(), "store.load rebuilds it from Tune's files"


@pytest.mark.slow
def test_the_rows_written_as_trials_end_are_those_a_rebuild_from_tunes_files_makes(raw_spec, tmp_path, monkeypatch):
    """A sweep's store, written a trial at a time (before anything loads it), against one built
    from scratch out of Tune's files (the trials journal, which holds each ended trial's reports,
    taken away); a rebuild reads the reports of no trial the store or the journal holds as ended."""
    raw_spec["params"]["learning_rate"] = {"type": "grid", "values": [1e30, 1e-3, 1e-2, 3e-3]}
    raw_spec["scheduler"] = {"type": "asha", "grace_period": 1, "reduction_factor": 2}
    experiment_dir = sweep.run(spec.validate(raw_spec, overrides=["search.num_samples=1"]))
    state = max(p.stat().st_mtime for p in experiment_dir.glob(experiment.TUNE_STATE_GLOB))
    assert (experiment_dir / store.TRIALS_FILE).stat().st_mtime >= state, "written by the sweep itself"
    written = store.read(experiment_dir)
    assert {"finished", "diverged"} <= set(written.trials["status"])

    copy = tmp_path / experiment_dir.name
    shutil.copytree(experiment_dir, copy)
    store.remove(copy)
    shutil.rmtree(copy / journal.DIRS[journal.ENDED])
    read = []
    reports = experiment.trial_reports
    monkeypatch.setattr(experiment, "trial_reports", lambda d: read.append(d) or reports(d))
    rebuilt = store.build(copy)
    assert len(read) == len(rebuilt.trials) == len(written.trials) == 4
    columns = [c for c in written.trials.columns if c != "path"]
    assert set(columns) == set(rebuilt.trials.columns) - {"path"}
    pd.testing.assert_frame_equal(written.trials[columns].set_index("trial").sort_index(),
                                  rebuilt.trials[columns].set_index("trial").sort_index(), check_like=True)
    pd.testing.assert_frame_equal(written.curves.sort_values(["trial", "step"]).reset_index(drop=True),
                                  rebuilt.curves.sort_values(["trial", "step"]).reset_index(drop=True), check_like=True)

    read.clear()
    store.write(copy, rebuilt)
    assert len(store.build(copy).trials) == 4 and read == []
    store.remove(experiment_dir)   # the journal alone: its ended trials' reports, none read from their folders
    assert len(store.build(experiment_dir).trials) == 4 and read == []
