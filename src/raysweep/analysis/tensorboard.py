"""TensorBoard logs per trial: every epoch's metrics as scalars, the config in the HParams plugin.

    tensorboard --logdir results/<experiment>/tensorboard --host 127.0.0.1

Written by the driver (a Tune callback), so trials ship nothing and a cluster's logs land in the
experiment directory like the rest. It takes the place of Tune's own TensorBoard logger (Tune
adds its logger only where none of that class is given), which drops
list-valued parameters (layer widths) from HParams and writes nothing there for trials that a
searcher (Optuna, HyperOpt) suggested. Here a trial's hyperparameters are its decoded config
(lists as text, only its branch's parameters), and its HParams metrics are the best and last
value of each metric the workload reports, so the HParams table compares trials directly.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from ray.tune.logger import TBXLoggerCallback
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from raysweep.search import space

TENSORBOARD_DIR = "tensorboard"
log = logging.getLogger("raysweep")


def _hparam(value):
    if isinstance(value, bool) or isinstance(value, (int, float, str)):
        return value
    return json.dumps(value)


class TensorBoardWriter(TBXLoggerCallback):
    def __init__(self, experiment_dir: str, params: tuple[space.Param, ...], metrics: dict[str, str]):
        super().__init__()
        self.logdir = str(Path(experiment_dir) / TENSORBOARD_DIR)
        self.params, self.metrics = params, metrics   # metrics: name -> "min" | "max"
        self.best: dict[str, dict[str, float]] = {}
        self.last: dict[str, dict[str, float]] = {}
        self._writers: dict = {}

    def __getstate__(self):   # Tune pickles callbacks with its state; open files do not pickle
        return {**self.__dict__, "_writers": {}}

    def _writer(self, trial_id: str):
        if trial_id not in self._writers:
            self._writers[trial_id] = SummaryWriter(log_dir=str(Path(self.logdir) / trial_id))
        return self._writers[trial_id]

    def log_trial_start(self, trial) -> None:
        pass

    def log_trial_result(self, iteration, trial, result) -> None:
        step = int(result.get("epoch", result.get("training_iteration", 0)))
        writer = self._writer(trial.trial_id)
        best = self.best.setdefault(trial.trial_id, {})
        last = self.last.setdefault(trial.trial_id, {})
        for name, mode in self.metrics.items():
            value = result.get(name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
                continue
            writer.add_scalar(name, value, global_step=step)
            last[name] = float(value)
            if name not in best or (value < best[name] if mode == "min" else value > best[name]):
                best[name] = float(value)
        if "lr" in result:
            writer.add_scalar("lr", float(result["lr"]), global_step=step)
        writer.flush()

    def log_trial_end(self, trial, failed: bool = False) -> None:
        try:
            writer = self._writer(trial.trial_id)
            config = space.decode(trial.config, self.params)
            metric_dict = {f"best/{k}": v for k, v in self.best.get(trial.trial_id, {}).items()}
            metric_dict.update({f"last/{k}": v for k, v in self.last.get(trial.trial_id, {}).items()})
            for summary in hparams({k: _hparam(v) for k, v in config.items()}, metric_dict):
                writer.file_writer.add_summary(summary)
            for name, value in metric_dict.items():   # HParams reads its metrics from scalars
                writer.add_scalar(name, value)
            writer.close()
        except Exception as exc:  # noqa: BLE001 - logs must never take a sweep down
            log.warning("TensorBoard: could not write hparams of %s (%s)", trial.trial_id, exc)
        finally:   # what an ended trial holds is let go: a sweep's memory must not grow with its trials
            self._writers.pop(trial.trial_id, None)
            self.best.pop(trial.trial_id, None)
            self.last.pop(trial.trial_id, None)
