"""Mixed precision: autocast for the forward pass, loss scaling for fp16.

bf16 keeps fp32's exponent range, so it needs no loss scaling; fp16 does, or small gradients
underflow to zero, hence its `GradScaler`. Both are CUDA features here: on a CPU (a laptop, CI)
a spec that asks for them still runs, in fp32, and says so once in the log, so one spec serves
the laptop and the GPU cluster.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import torch

PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

log = logging.getLogger("raysweep")
_warned: set[str] = set()


@dataclass
class Precision:
    """How the loop runs forward passes and scales losses; `fp32` does neither."""

    name: str = "fp32"
    device_type: str = "cpu"
    scaler: torch.amp.GradScaler | None = None   # fp16 only

    def autocast(self):
        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=_DTYPES[self.name])

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Gradients back in true units, so that clipping by norm clips what it says."""
        if self.scaler:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """Step, unless fp16 gradients overflowed (the scaler then skips and lowers its scale)."""
        if self.scaler:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler else {}

    def load_state_dict(self, state: dict) -> None:
        if self.scaler and state:
            self.scaler.load_state_dict(state)


def choose(name: str, device: torch.device) -> Precision:
    """The precision to train in: `name` on a CUDA device, fp32 elsewhere (logged once).

    Raises:
        ValueError: an unknown name, listing the known ones.
    """
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}. Known: {', '.join(PRECISIONS)}.")
    if name == "fp32":
        return Precision()
    if device.type != "cuda":
        if name not in _warned:
            _warned.add(name)
            log.info("precision %s needs a CUDA device; training in fp32 on %s", name, device.type)
        return Precision(device_type=device.type)
    if name == "bf16" and not torch.cuda.is_bf16_supported():
        if "bf16-unsupported" not in _warned:
            _warned.add("bf16-unsupported")
            log.info("precision bf16: this GPU has no bf16; training in fp16 with loss scaling")
        name = "fp16"
    scaler = torch.amp.GradScaler("cuda") if name == "fp16" else None
    return Precision(name=name, device_type="cuda", scaler=scaler)
