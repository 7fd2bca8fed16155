"""Weights & Biases: a run per trial in a W&B project (default: the spec's name), grouped by experiment.

`mode: offline` writes each run under `<dir>/wandb/offline-run-*` (`dir` defaults to beside the
results) for `wandb sync` to upload later; online needs `wandb login` or WANDB_API_KEY, never a
key in the spec. Run ids come from the trial and the experiment (`Where.run_key`), so a resumed
sweep and the crowning step reopen the trial's own run (`resume="allow"`). Metrics are logged
against `epoch` (W&B's `define_metric`), not W&B's own step, which must only grow: a retried
trial logs its re-run epochs again. The champion's run gets the `champion` tag, `raysweep.champion`
in its summary, and its checkpoint as a model artifact whose `champion` alias W&B moves to the
newest champion.
"""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from urllib.parse import urlparse

from raysweep.errors import UserError
from raysweep.tracking.runs import CHAMPION, Where


def _has_key() -> bool:
    """W&B's key where its client looks for it: WANDB_API_KEY, or the netrc entry `wandb login` writes."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


class WandbRuns:
    def __init__(self, settings: dict, where: Where):
        os.environ.setdefault("WANDB_SILENT", "true")   # W&B's banners and sync hints are not raysweep's to print
        import wandb

        self.wandb, self.sweep = wandb, where
        self.project = settings.get("project") or where.name
        self.entity, self.mode = settings.get("entity"), settings.get("mode")
        self.dir = Path(settings.get("dir") or where.local_results() or Path.cwd()).resolve()
        self.runs: dict = {}   # trial id -> its open run
        self.logged = 0
        if (self.mode or os.environ.get("WANDB_MODE", "online")) == "online" and not _has_key():
            raise UserError("tracking.wandb: no W&B API key to log online with: run `wandb login` or set "
                            "WANDB_API_KEY where the sweep runs, or log offline (tracking.wandb.mode: offline)")

    def _init(self, trial_id: str, **kwargs):
        self.dir.mkdir(parents=True, exist_ok=True)
        return self.wandb.init(
            project=self.project, entity=self.entity, mode=self.mode, dir=str(self.dir), id=self.run_id(trial_id),
            name=trial_id, group=Path(self.sweep.experiment).name, job_type="trial", resume="allow", reinit="create_new",
            settings=self.wandb.Settings(silent=True, console="off", x_disable_stats=True, x_disable_meta=True),
            **kwargs)

    def run_id(self, trial_id: str) -> str:
        return f"{trial_id}-{self.sweep.run_key(trial_id)[:12]}"

    def _run(self, trial_id: str, params: dict | None = None):
        if trial_id not in self.runs:
            run = self._init(trial_id, config={**(params or {}), "raysweep.trial": trial_id,
                                               "raysweep.experiment": self.sweep.experiment})
            run.define_metric("*", step_metric="epoch")
            self.runs[trial_id] = run
            self.logged += 1
        return self.runs[trial_id]

    def start(self, trial_id: str, params: dict) -> None:
        self._run(trial_id, params)

    def log(self, trial_id: str, metrics: dict[str, float], epoch: int) -> None:
        self._run(trial_id).log({"epoch": epoch, **metrics})

    def end(self, trial_id: str, failed: bool) -> None:
        self._run(trial_id).finish(exit_code=1 if failed else 0)
        del self.runs[trial_id]

    def crown(self, trial_id: str, checkpoint_dir: Path, record: dict) -> None:
        run = self._init(trial_id)
        try:
            run.tags = (*run.tags, CHAMPION)
            run.summary[f"raysweep.{CHAMPION}"] = True
            model = self.wandb.Artifact(f"{self.project}-{CHAMPION}", type="model",
                                        metadata={"trial": trial_id, "experiment": self.sweep.experiment, **record})
            model.add_dir(str(checkpoint_dir))
            run.log_artifact(model, aliases=[CHAMPION])
        finally:
            run.finish()

    def close(self) -> None:
        for run in self.runs.values():
            run.finish()
        self.runs.clear()

    def where(self) -> str:
        place = f"{self.dir / 'wandb'} (offline; `wandb sync` uploads them)" if self.mode == "offline" else "W&B"
        return f"W&B: {self.logged} runs of project {self.project!r} in {place}"
