"""A PyTorch model exported in the formats asked: TorchScript, ONNX or both, beside its state_dict.

The loop kind and an own loop with a model (`build_model`, `predict`, `model_inputs`) export
through `export`: each format is proven against the eager model before it is written
(torchscript.py, onnx_export.py), and the card's entries say how to load every file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from raysweep.trainables import onnx_export, torchscript
from raysweep.trainables.session import Columns

TORCHSCRIPT, ONNX = "torchscript", "onnx"
FORMATS = (TORCHSCRIPT, ONNX)
DEFAULT_FORMATS = (TORCHSCRIPT,)
FILES = {TORCHSCRIPT: torchscript.MODEL_FILE, ONNX: onnx_export.ONNX_FILE}
STATE_FILE = torchscript.STATE_FILE


def export(module: Any, model: torch.nn.Module, meta: dict, example: Columns, to: Path, *,
           formats: tuple[str, ...] | None = None, check: Columns | None = None) -> dict:
    """Write `model` into `to` in each of `formats` (default TorchScript) and as a state_dict;
    returns the card's entries: formats, files, inputs, inference (TorchScript's where it was
    exported, else onnxruntime's), onnx (its check on `check`, the val split), loading.

    Raises:
        ValueError: a format raysweep does not export.
        RuntimeError: an exported model predicts otherwise than the eager one (ONNX is checked first).
    """
    formats = tuple(formats or DEFAULT_FORMATS)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown export format {unknown[0]!r}; known: {', '.join(FORMATS)}")
    names = module.model_inputs(meta)
    entries: dict = {"formats": [f for f in FORMATS if f in formats]}
    if ONNX in formats:
        entries.update(onnx_export.export(module, model, meta, example, example if check is None else check, to))
    if TORCHSCRIPT in formats:
        traced = torchscript.export(module, model, meta, example, to)
        entries.update({**traced, "files": [*traced["files"], *entries.get("files", [])]})
    else:
        rows = torchscript.tensors(example)
        entries.update({"inputs": torchscript.inputs_of(names, [rows[n] for n in names]),
                        "inference": entries["onnx"]["inference"]})
    torch.save(model.state_dict(), to / STATE_FILE)
    entries["files"] = [*entries["files"], STATE_FILE]
    entries["loading"] = loading(names, formats)
    return entries


def loading(names: list[str], formats: tuple[str, ...]) -> dict[str, str]:
    """How to load each file of a PyTorch export, in one line each (inputs in the card's order)."""
    shown = ", ".join(names)
    how = {torchscript.MODEL_FILE: f"torch.jit.load({torchscript.MODEL_FILE!r})({shown})" if TORCHSCRIPT in formats else None,
           onnx_export.ONNX_FILE: onnx_export.how_to_load(names) if ONNX in formats else None,
           STATE_FILE: f"model = build_model(cfg, meta); model.load_state_dict(torch.load({STATE_FILE!r}, "
                       "weights_only=True)) (the workload's build_model, the card's config)"}
    return {file: line for file, line in how.items() if line is not None}
