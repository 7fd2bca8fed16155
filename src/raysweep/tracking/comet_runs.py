"""Comet: an experiment per trial in a Comet project (default: the spec's name).

`mode: offline` writes each as a zip under `dir` (default: `comet/` beside the results) for
`comet upload` to send later; online needs COMET_API_KEY (or Comet's config file), never a key
in the spec. The experiment key comes from the trial and the experiment (`Where.run_key`), so a
resumed sweep and the crowning step reopen the trial's own (`comet_ml.start(mode="get")`, which
offline writes as a second zip that Comet merges on upload). Comet's automatic logging (code,
git, environment, console) is off: the record is the trial's. The end status is the other
`raysweep.status`; the champion gets the `champion` tag, `raysweep.champion`, and its
checkpoint's files as assets under `champion/`.
"""

from __future__ import annotations

import os
from pathlib import Path

from raysweep.errors import UserError
from raysweep.tracking.runs import CHAMPION, Where

OFFLINE_DIR = "comet"


class CometRuns:
    def __init__(self, settings: dict, where: Where):
        os.environ.setdefault("COMET_LOGGING_CONSOLE", "ERROR")   # Comet's INFO lines are not raysweep's to print
        import comet_ml

        self.comet, self.sweep = comet_ml, where
        self.project, self.workspace = settings.get("project") or where.name, settings.get("workspace")
        self.online = settings.get("mode") != "offline"
        results = where.local_results()
        self.dir = Path(settings.get("dir") or (results / OFFLINE_DIR if results else Path.cwd() / OFFLINE_DIR)).resolve()
        self.runs: dict = {}   # trial id -> its open experiment
        self.logged = 0
        if self.online and not comet_ml.get_config().get_string(None, "comet.api_key"):
            raise UserError("tracking.comet: no Comet API key to log online with: set COMET_API_KEY where the sweep "
                            "runs (or Comet's config file), or log offline (tracking.comet.mode: offline)")

    def _start(self, trial_id: str, mode: str):
        if not self.online:
            self.dir.mkdir(parents=True, exist_ok=True)
        config = self.comet.ExperimentConfig(
            name=trial_id, offline_directory=None if self.online else str(self.dir), display_summary_level=0,
            log_code=False, log_graph=False, parse_args=False, log_git_metadata=False, log_git_patch=False,
            log_env_details=False, log_env_gpu=False, log_env_host=False, log_env_cpu=False, log_env_network=False,
            log_env_disk=False, auto_output_logging=None, auto_param_logging=False, auto_metric_logging=False,
            auto_log_co2=False)
        run = self.comet.start(workspace=self.workspace, project=self.project, online=self.online, mode=mode,
                               experiment_key=self.sweep.run_key(trial_id)[:40], experiment_config=config)
        # Comet's `start` ends the experiment it holds as running when asked for another: trials
        # run side by side, so none is left as the running one (as Ray's own Comet callback does)
        from comet_ml.config import set_global_experiment
        set_global_experiment(None)
        return run

    def _run(self, trial_id: str, params: dict | None = None):
        if trial_id not in self.runs:
            run = self._start(trial_id, "get_or_create")
            run.log_others({"raysweep.trial": trial_id, "raysweep.experiment": self.sweep.experiment})
            if params:
                run.log_parameters(params)
            self.runs[trial_id] = run
            self.logged += 1
        return self.runs[trial_id]

    def start(self, trial_id: str, params: dict) -> None:
        self._run(trial_id, params)

    def log(self, trial_id: str, metrics: dict[str, float], epoch: int) -> None:
        self._run(trial_id).log_metrics(metrics, step=epoch, epoch=epoch)

    def end(self, trial_id: str, failed: bool) -> None:
        run = self._run(trial_id)
        run.log_other("raysweep.status", "FAILED" if failed else "FINISHED")
        run.end()
        del self.runs[trial_id]

    def crown(self, trial_id: str, checkpoint_dir: Path, record: dict) -> None:
        run = self._start(trial_id, "get")
        try:
            run.add_tag(CHAMPION)
            run.log_others({f"raysweep.{CHAMPION}": True, **{f"raysweep.{CHAMPION}.{k}": v for k, v in record.items()}})
            for path in sorted(p for p in Path(checkpoint_dir).rglob("*") if p.is_file()):
                run.log_asset(str(path), file_name=f"{CHAMPION}/{path.relative_to(checkpoint_dir)}")
        finally:
            run.end()

    def close(self) -> None:
        for run in self.runs.values():
            run.end()
        self.runs.clear()

    def where(self) -> str:
        place = f"{self.dir} (offline; `comet upload` sends them)" if not self.online else "Comet"
        return f"Comet: {self.logged} experiments of project {self.project!r} in {place}"
