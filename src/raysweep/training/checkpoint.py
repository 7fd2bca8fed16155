"""What a trial's checkpoint holds, and the one place its file names are spelled.

A checkpoint directory holds `last.pt` (the state after the epoch just trained: what a resumed
trial loads) and, once early stopping has seen an epoch, `best.pt` (the best epoch's weights
and metrics: what export and the best-trial plots use). Experiments from before that split
hold `state.pt`, read as `last.pt`. Every file is read with `weights_only=True`: a checkpoint
never runs code when loaded.

Beside them, every checkpoint carries the trial's reports so far (`reports.json`) and, written
last, `manifest.json`: each file's size. A driver killed before Tune saved its state leaves
checkpoints Tune does not know of, some perhaps half copied; `resume` continues a trial from
its newest checkpoint that the manifest shows whole, and puts back the reports it carries
(runner/recovery.py), so that an epoch the driver had seen is neither lost nor trained again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

LAST_FILE = "last.pt"
BEST_FILE = "best.pt"
LEGACY_FILE = "state.pt"
REPORTS_FILE = "reports.json"     # every report of the trial up to this checkpoint, in order
MANIFEST_FILE = "manifest.json"   # {file name: bytes} of the others, written last


def save(directory: str | Path, files: dict[str, dict], reports: list[dict] | None = None) -> None:
    """Write each `{file name: payload}` with torch.save into `directory`, then the reports
    and the manifest (`seal`)."""
    for name, payload in files.items():
        torch.save(payload, os.path.join(directory, name))
    seal(directory, reports)


def seal(directory: str | Path, reports: list[dict] | None) -> None:
    """Add the trial's reports so far and, last, the manifest of every file in `directory`."""
    directory = Path(directory)
    if reports is not None:
        (directory / REPORTS_FILE).write_text(json.dumps(reports, default=str))
    sizes = {p.name: p.stat().st_size for p in sorted(directory.iterdir()) if p.is_file() and p.name != MANIFEST_FILE}
    (directory / MANIFEST_FILE).write_text(json.dumps(sizes))


def reports(directory: str | Path) -> list[dict]:
    """The reports a checkpoint carries (none in one written before they were)."""
    path = Path(directory) / REPORTS_FILE
    return json.loads(path.read_text()) if path.is_file() else []


def load(directory: str | Path) -> dict[str, dict]:
    """A checkpoint directory's files as loaded dicts (a legacy `state.pt` as `last.pt`)."""
    directory = Path(directory)
    files = {name: torch.load(directory / name, weights_only=True)
             for name in (LAST_FILE, BEST_FILE) if (directory / name).is_file()}
    if not files and (directory / LEGACY_FILE).is_file():
        files[LAST_FILE] = torch.load(directory / LEGACY_FILE, weights_only=True)
    return files


def model_weights(directory: str | Path) -> dict | None:
    """The weights to deploy: the best epoch's, else the last epoch's; None if neither exists."""
    directory = Path(directory)
    for name in (BEST_FILE, LAST_FILE, LEGACY_FILE):
        if (directory / name).is_file():
            return torch.load(directory / name, weights_only=True)
    return None
