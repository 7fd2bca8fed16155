"""The typed spec: what a validated YAML sweep spec becomes.

Every section is a frozen dataclass whose defaults are what a spec without that section gets.
`validate.py` builds them; nothing else constructs a `Spec` from YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from raysweep.datasets import shards
from raysweep.search import space
from raysweep.search.objectives import Constraint, Objective
from raysweep.search.schedulers import SCHEDULERS
from raysweep.search.space import Param
from raysweep.tracking import TRACKERS
from raysweep.workloads import load_workload

# The spec as run, in every experiment directory (raysweep.experiment writes and reads it;
# a warm start's experiment is checked for it here).
SNAPSHOT_FILE = "raysweep_spec.yaml"
EXECUTORS = ("auto", "in_trial", "torch_trainer")
DATA_FORMATS = ("auto",) + shards.FORMATS

LR_FIND_KEYS = ("start_lr", "end_lr", "num_steps", "stop_factor", "smoothing", "subset_rows",
                "over", "fit_learning_rate", "fit_loss_fraction", "fit_max_steps")
IO_SEARCH_KEYS = ("steps", "warmup_steps", "grid")
# What an I/O search may vary: the loop's data knobs (Config fields) and the data path itself.
IO_CONFIG_KNOBS = ("batch_size", "prefetch_batches", "shuffle_buffer")
IO_KNOBS = IO_CONFIG_KNOBS + ("data_path", "read_parallelism", "materialize", "cpus_per_worker")

TOP_KEYS = ("name", "workload", "data", "metric", "mode", "constraints", "fixed", "params", "search",
            "scheduler", "resources", "failure", "checkpoints", "tracking", "storage_path", "lr_find", "io_search",
            "cost")
# The keys each section may hold; `scheduler:` holds its type and that type's options, which
# sections.scheduler reads against the entry (raysweep.search.SCHEDULERS[type].Options).
SECTION_KEYS = {
    "data": ("path", "format", "materialize", "read_parallelism"),
    "search": ("algorithm", "num_samples", "seed", "points_to_evaluate", "warm_start", "sampler"),
    "resources": ("workers_per_trial", "cpus_per_worker", "gpus_per_worker",
                  "max_concurrent_trials", "executor"),
    "failure": ("max_retries", "stall_timeout_s"),
    "checkpoints": ("keep_top",),
    "tracking": tuple(TRACKERS),
    "lr_find": LR_FIND_KEYS,
    "io_search": IO_SEARCH_KEYS,
}


@dataclass(frozen=True)
class Data:
    path: str
    format: str = "auto"         # auto: whatever meta.json records
    # true: read the shards once per sweep into the object store; false: every epoch from the
    # shards; auto: keep what fits in half the object store (runner/tuning.py), stream the rest
    materialize: bool | str = "auto"
    # shards a streamed split reads at once: a trial's threads (None: 2), or a TorchTrainer's
    # Ray Data read tasks (override_num_blocks; None: Ray's choice); a kept split ignores it
    read_parallelism: int | None = None
    # False: the workload (a loop of its own) reads data.path itself; raysweep reads no shards,
    # and there is no meta.json (decided by validation: an own loop's data.path without one)
    read: bool = True


@dataclass(frozen=True)
class WarmStart:
    """Start from the best trials of an earlier experiment: they are evaluated first."""

    experiment: str
    top: int = 3


@dataclass(frozen=True)
class Search:
    algorithm: str = "random"    # a key of raysweep.search.SEARCHERS
    num_samples: int = 8
    seed: int | None = 0
    points_to_evaluate: tuple[dict, ...] = ()   # evaluated first, in this order
    warm_start: WarmStart | None = None
    sampler: str | None = None   # algorithm optuna: one of raysweep.search.SAMPLERS (None: tpe)
    sampler_options: Any = None  # that sampler's Options (`sampler: {name: ..., key: value}`), as validated


@dataclass(frozen=True)
class Scheduler:
    """`scheduler:`: its type and that type's options, `SCHEDULERS[type].Options` as validated
    (lowered to the epochs); the sweep hands them to the type's builder as they are.

    An option reads as an attribute (`spec.scheduler.grace_period`). A key the type does not
    read stays as given in `unread` (fifo ignores the others' keys) and reads the same way.
    """

    type: str = "fifo"
    options: Any = None          # None: the type's defaults (an unknown type has none)
    unread: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.options is None and self.type in SCHEDULERS:
            object.__setattr__(self, "options", SCHEDULERS[self.type].Options())

    def __getattr__(self, key: str):
        if key.startswith("__"):   # copy and pickle look for hooks on an object not yet filled in
            raise AttributeError(key)
        found = self.__dict__
        if hasattr(found.get("options"), key):
            return getattr(found["options"], key)
        if key in found.get("unread", {}):
            return found["unread"][key]
        raise AttributeError(f"the {found.get('type')} scheduler has no option {key!r}")


@dataclass(frozen=True)
class Resources:
    workers_per_trial: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    max_concurrent_trials: int | None = None
    executor: str = "auto"       # auto: in_trial for one worker, torch_trainer for several


@dataclass(frozen=True)
class Failure:
    """What happens when a trial fails: it is retried from its last checkpoint this many times.

    A trial fails when its node is lost (a spot instance taken back, a machine down) or its
    process dies; Tune then starts it again elsewhere from its last epoch's checkpoint. A
    trial that raises (a bug, a diverged loss) is retried too, so keep this small.

    A trial that reports nothing for `stall_timeout_s` seconds (since it started or last
    reported an epoch) is stopped and marked "stalled": a deadlock, a hung collective, a read
    that never returns. Set it well above the slowest epoch; None never stops one.
    """

    max_retries: int = 0
    stall_timeout_s: float | None = None


@dataclass(frozen=True)
class Checkpoints:
    """Which ended trials keep their checkpoints (runner/pruning.py).

    Running, pending and paused trials always keep theirs (they continue from them). Of the
    ended ones, the best `keep_top` that did not fail keep theirs, for export and the report's
    best-trial plots, and so does the best of each value of a scientific parameter; the others'
    are deleted as they end. None keeps every checkpoint.
    """

    keep_top: int | None = 5


@dataclass(frozen=True)
class Tracking:
    """Where the sweep's trials are logged besides the experiment directory: each tracker the
    spec names (raysweep.tracking.TRACKERS) with its settings, e.g. `{"mlflow": {}}` for a local
    MLflow store beside the results."""

    trackers: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True)
class LRFind:
    """`raysweep lr-find`: steps to fit a subset, then one LR range test (Smith 2017)."""

    start_lr: float = 1e-7
    end_lr: float = 10.0
    num_steps: int = 100          # the LR rises exponentially from start_lr to end_lr over these
    stop_factor: float = 4.0      # stop once the smoothed loss exceeds this times its best
    smoothing: float = 0.98       # EMA weight of the loss curve (fastai's beta)
    subset_rows: int = 4096       # the fixed training subset both phases draw from
    over: tuple[str, ...] = ()    # tuned choice/grid params: one range test per combination
    fit_learning_rate: float | None = None   # steps-to-fit LR; default: the baseline's
    fit_loss_fraction: float = 0.1           # "fitted" = training loss below this x its first value
    fit_max_steps: int = 2000


@dataclass(frozen=True)
class IOSearch:
    """`raysweep io-search`: one timed trial per combination of `grid`, one trial at a time."""

    steps: int = 200
    warmup_steps: int = 20
    grid: tuple[tuple[str, tuple], ...] = ()


@dataclass(frozen=True)
class Spec:
    name: str
    workload: str
    data: Data
    metric: str        # the first objective: what schedulers stop on and early stopping watches
    mode: str
    fixed: dict[str, Any]
    params: tuple[Param, ...]
    search: Search = Search()
    scheduler: Scheduler = Scheduler()
    resources: Resources = Resources()
    failure: Failure = Failure()
    checkpoints: Checkpoints = Checkpoints()
    tracking: Tracking = Tracking()
    storage_path: str = "results"
    lr_find: LRFind = LRFind()
    io_search: IOSearch | None = None
    source: str = "<spec>"
    # Every objective, the first being (metric, mode); several: the Pareto front (search.objectives).
    objectives: tuple[Objective, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    cost: dict[str, float] = field(default_factory=dict)   # USD per hour by node type (`raysweep plan`)
    raw: dict = field(default_factory=dict, compare=False, repr=False)
    # The mapping as given (overrides applied), before validation lowered a scheduler's bounds
    # to the epochs (`raw`, the spec as run): the Python API applies further overrides to it.
    given: dict = field(default_factory=dict, compare=False, repr=False)
    # What validation found that does not stop the sweep (datasets.teachability), and the
    # metrics the data leaves NaN in every trial, with why.
    warnings: tuple[str, ...] = field(default=(), compare=False, repr=False)
    undefined_metrics: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        if not self.objectives:   # a Spec made with one metric, as before several could be given
            object.__setattr__(self, "objectives", (Objective(self.metric, self.mode),))

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def executor(self) -> str:
        if self.resources.executor != "auto":
            return self.resources.executor
        # Measured in bench/trial_overhead.py: in-trial is the faster path for one worker.
        return "in_trial" if self.resources.workers_per_trial == 1 else "torch_trainer"

    @property
    def epochs(self) -> int:
        return int(self.fixed.get("epochs", load_workload(self.workload).Config().epochs))

    @property
    def scheduler_max_t(self) -> int:
        """The epochs a trial may run under the scheduler: its max_t, else the trials' epochs."""
        return getattr(self.scheduler.options, "max_t", None) or self.epochs

    @property
    def scientific(self) -> list[str]:
        return [p.name for p in self.params if p.role == "scientific"]

    @property
    def tuned(self) -> list[str]:
        """Every tuned name, branch sub-parameters included, in spec order."""
        return [p.name for p in space.all_params(self.params)]
