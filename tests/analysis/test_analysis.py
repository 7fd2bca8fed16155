"""The analysis of a real small sweep: results store, TensorBoard logs, plots, report, notebook, rank.

The sweep (conftest's `experiment`) has trials that finish, trials that ASHA stops and one that
diverges on purpose (learning rate 1e30), as users' sweeps do.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from raysweep import cli
from raysweep import experiment as experiments
from raysweep.analysis import store

pytestmark = pytest.mark.slow


def test_results_store_holds_every_trial_and_curve(experiment):
    assert (experiment / store.TRIALS_FILE).is_file() and (experiment / store.CURVES_FILE).is_file(), \
        "written during the sweep, before anyone asks"
    results = store.load(experiment)
    trials = results.trials.set_index("learning_rate")
    assert len(trials) == 6
    assert trials.loc[1e30, "status"] == "diverged" and "learning_rate" in trials.loc[1e30, "error"]
    assert {"finished", "stopped by ASHA"} <= set(trials["status"])
    for column in ("epochs", "batch_size", "deep_hidden_units", "site_embedding_dim", "epochs_run",
                   "best_val_loss", "last_val_loss", "best_val_auc", "last_val_auc", "wall_time_s", "cpus"):
        assert column in results.trials, column
    finished = results.trials[results.trials["status"] == "finished"]
    assert (finished["epochs_run"] == 4).all() and (finished["wall_time_s"] > 0).all()
    assert (finished["best_val_loss"] <= finished["last_val_loss"]).all()
    per_trial = results.curves.groupby("trial").size()
    for _, t in results.trials.iterrows():
        assert per_trial.get(t["trial"], 0) == t["epochs_run"]
    curve = results.curves[results.curves["trial"] == finished["trial"].iloc[0]]
    assert curve["val_loss"].min() == pytest.approx(finished["best_val_loss"].iloc[0])
    assert {"step", "epoch", "train_loss", "val_loss", "val_auc", "val_ece", "lr"} <= set(results.curves.columns)


def tensorboard_events(trial_dir: Path):
    """Scalars through TensorBoard's EventAccumulator; the HParams session through its plugin's protos."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import plugin_data_pb2

    accumulator = EventAccumulator(str(trial_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    scalars = {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}
    hparams = {}
    for path in sorted(trial_dir.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "hparams":
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    if data.HasField("session_start_info"):
                        hparams = {k: getattr(v, v.WhichOneof("kind"))
                                   for k, v in data.session_start_info.hparams.items()}
    return scalars, hparams


def test_tensorboard_has_every_epoch_and_the_hparams(experiment):
    results = store.load(experiment)
    best = results.trials[results.trials["status"] == "finished"].sort_values("best_val_loss").iloc[0]
    curve = results.curves[results.curves["trial"] == best["trial"]]
    scalars, hparams = tensorboard_events(experiment / "tensorboard" / best["trial"])
    assert [step for step, _ in scalars["val_loss"]] == [1, 2, 3, 4]
    assert [v for _, v in scalars["val_loss"]] == pytest.approx(curve["val_loss"].tolist(), rel=1e-6)
    assert hparams["learning_rate"] == pytest.approx(best["learning_rate"])
    assert hparams["deep_hidden_units"] == "[16, 8]", "list values kept, as text"
    assert scalars["best/val_loss"][0][1] == pytest.approx(best["best_val_loss"], rel=1e-6)
    diverged = results.trials[results.trials["status"] == "diverged"]["trial"].iloc[0]
    assert not (experiment / "tensorboard" / diverged).exists() or tensorboard_events(experiment / "tensorboard" / diverged)
    assert not list(experiment.glob("*/events.out.tfevents.*")), "Tune's own TensorBoard logger is replaced"


def test_every_plot_that_applies_is_drawn(experiment, tmp_path):
    import matplotlib.image

    from raysweep.analysis import plots

    drawn = plots.all_plots(experiment, tmp_path / "plots")
    assert set(drawn) == {"learning_curves", "metric_vs_lr", "parallel_coordinates", "importance", "classification"}
    for name, path in drawn.items():
        image = matplotlib.image.imread(path)
        assert image.shape[0] > 200 and image.shape[1] > 400, name
        assert image[..., :3].std() > 0.05, f"{name} is not blank"
    s = experiments.load_spec(experiment)
    scores = plots.importances(store.load(experiment), s.params, s.metric, s.mode)
    assert set(scores) == {"learning_rate"} and scores["learning_rate"] == pytest.approx(1.0)


def headless_chromium(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    import shutil

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (make test installs Debian's package where it can)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium-profile'}", "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=5000"]
    return subprocess.run([exe, *flags, *extra, url], capture_output=True, text=True, timeout=120)


def test_report_loads_in_a_browser_with_the_leaderboard_and_every_image(experiment, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert cli.main(["report", str(experiment), "--out", str(out)]) == 0
    page = out.read_text()
    assert "http://" not in page and "https://" not in page, "self-contained: nothing to fetch"
    n_images = page.count("<img ")
    assert n_images == 5, "learning curves, metric vs LR, parallel coordinates, importance, ROC + calibration"

    browser = headless_chromium(out.as_uri(), tmp_path, "--dump-dom")
    dom = browser.stdout
    assert f'data-images-loaded="{n_images}/{n_images}"' in dom, "every image decoded"
    console = [line for line in browser.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    leaderboard_html = dom.split('id="leaderboard"')[1]
    for trial in store.load(experiment).trials["trial"]:
        assert trial in leaderboard_html
    assert "diverged" in dom and "Provenance" in dom and "learning_rate" in dom
    assert "Compute: trained " in dom and "of 24 epochs" in dom and "with the asha scheduler" in dom
    shot = tmp_path / "report.png"
    headless_chromium(out.as_uri(), tmp_path, f"--screenshot={shot}", "--window-size=1280,2400")
    assert shot.stat().st_size > 20_000


def test_report_escapes_user_text():
    import pandas as pd

    from raysweep.analysis import report

    cell = report._table(pd.DataFrame({"name": ["<script>alert(1)</script>"]}))
    assert "<script>" not in cell and "&lt;script&gt;" in cell
    assert report._e('"><img src=x onerror=alert(1)>') == "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"


def test_the_notebook_runs_on_a_real_sweep(experiment, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("RAYSWEEP_EXPERIMENT", str(experiment))
    notebook = nbformat.read(Path(__file__).parents[2] / "notebooks" / "trial_analysis.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(Path(__file__).parents[2])}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 6, "the five plots and the comparison of the two best trials"
    text = "\n".join(o.get("text", "") + o.get("data", {}).get("text/html", "") for o in outputs)
    best = store.load(experiment).trials.sort_values("best_val_loss")["trial"].iloc[0]
    assert best in text and "diverged" in text


def test_rank_prints_the_interval_and_writes_the_store(experiment, capsys):
    assert cli.main(["rank", str(experiment), "--group-by", "learning_rate", "--top", "0"]) == 0
    out = capsys.readouterr().out
    assert "ci95_low" in out and "diverged" in out and "stopped by ASHA" in out
    trials = store.load(experiment).trials
    trained = trials["epochs_run"].sum()
    assert trained < 6 * 4, "ASHA and the divergence stopped some trials"
    assert f"; trained {trained} of 24 epochs ({trained / 24:.0%} of the epochs of a full run)" in out


def test_the_report_of_a_large_sweep_shows_the_top_and_says_how_many_more(experiment, tmp_path, monkeypatch, capsys):
    """The sweep's six trials and 300 worse ones: the leaderboard shows 20, rank 10, each says
    how many are left out; importance is fitted on a sample, the rest is drawn from all."""
    import shutil

    import numpy as np
    import optuna
    import pandas as pd

    from raysweep.analysis import plots, report

    copy = tmp_path / experiment.name
    shutil.copytree(experiment, copy)
    results = store.load(copy)
    rng = np.random.default_rng(0)
    extra = pd.DataFrame({"trial": [f"extra_{i:05d}" for i in range(300)], "status": "finished",
                          "learning_rate": rng.choice([1e-5, 3e-5, 1e-3, 3e-3, 1e-2], 300), "epochs_run": 1, "planned_epochs": 4,
                          "best_val_loss": rng.uniform(5, 6, 300), "error": ""})
    curves = pd.DataFrame({"trial": extra["trial"], "step": 1, "epoch": 1, "val_loss": extra["best_val_loss"]})
    store.write(copy, store.Results(pd.concat([results.trials, extra], ignore_index=True),
                                    pd.concat([results.curves, curves], ignore_index=True)))
    fitted = []
    get_importances = optuna.importance.get_param_importances
    monkeypatch.setattr(plots, "IMPORTANCE_TRIALS", 100)
    monkeypatch.setattr(optuna.importance, "get_param_importances",
                        lambda study, **kw: fitted.append(len(study.trials)) or get_importances(study, **kw))

    page = report.write(copy, tmp_path / "report.html").read_text()
    leaderboard_html = page.split('id="leaderboard"')[1].split("</table>")[0]
    assert leaderboard_html.count("</tr>") == 21, "a header and the top 20"
    assert "286 more not shown (all of them: raysweep rank" in page
    assert page.count("<img ") == 5 and fitted == [100]
    assert cli.main(["rank", str(copy)]) == 0
    assert "... and 296 more (--top 0 prints all)" in capsys.readouterr().out


def test_a_sweep_stopped_between_two_trials_says_it_was_interrupted(experiment, tmp_path, capsys):
    """Ctrl-C after one trial ended and before the next was created leaves no trial unfinished:
    the trials not started yet say it (exit 130, and how to resume)."""
    import shutil

    from raysweep.cli import commands, exit_codes

    copy = tmp_path / experiment.name
    shutil.copytree(experiment, copy)
    results = store.load(copy)
    first = results.trials["trial"].iloc[:4]   # of the grid's 6
    store.write(copy, store.Results(results.trials[results.trials["trial"].isin(first)],
                                    results.curves[results.curves["trial"].isin(first)]))
    assert commands._finish(copy) == exit_codes.INTERRUPTED
    err = capsys.readouterr().err
    assert "interrupted with 0 trials unfinished and 2 not started" in err and f"raysweep resume {copy}" in err
    assert commands._finish(experiment) == exit_codes.OK
