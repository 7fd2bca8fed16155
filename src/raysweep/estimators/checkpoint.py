"""A fitted model's checkpoint: its family's native file plus `state.json` (family, epoch, rounds,
and the metrics of the report it came with).

A resumed trial continues a boosted model from here; export picks the kept checkpoint with the
best metric and copies its file as it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from raysweep.estimators.registry import FAMILIES

STATE_FILE = "state.json"


def save(directory: str | Path, family: str, model: Any, *, epoch: int, rounds: int | None,
         metrics: dict[str, float]) -> None:
    directory = Path(directory)
    FAMILIES[family].save(model, directory / FAMILIES[family].FILE)
    state = {"family": family, "epoch": epoch, "rounds": rounds, "metrics": metrics}
    (directory / STATE_FILE).write_text(json.dumps(state))


def state(directory: str | Path) -> dict:
    return json.loads((Path(directory) / STATE_FILE).read_text())


def holds_model(directory: str | Path) -> bool:
    return (Path(directory) / STATE_FILE).is_file()


def load(directory: str | Path) -> tuple[str, Any, dict]:
    """(family, model, state) of a checkpoint directory."""
    saved = state(directory)
    family = FAMILIES[saved["family"]]
    return saved["family"], family.load(Path(directory) / family.FILE), saved
