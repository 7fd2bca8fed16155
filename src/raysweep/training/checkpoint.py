"""What a trial's checkpoint holds, and the one place its file names are spelled.

A checkpoint directory holds `last.pt` (the state after the epoch just trained: what a resumed
trial loads) and, once early stopping has seen an epoch, `best.pt` (the best epoch's weights
and metrics: what export and the best-trial plots use). Experiments from before that split
hold `state.pt`, read as `last.pt`. Every file is read with `weights_only=True`: a checkpoint
never runs code when loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

LAST_FILE = "last.pt"
BEST_FILE = "best.pt"
LEGACY_FILE = "state.pt"


def save(directory: str | Path, files: dict[str, dict]) -> None:
    """Write each `{file name: payload}` with torch.save into `directory`."""
    for name, payload in files.items():
        torch.save(payload, os.path.join(directory, name))


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
