"""The optimiser a trial trains with: one of torch's, named by `TrainingConfig.optimizer`, or the
workload's own (`configure_optimizer(model, cfg)`: parameter groups, another class).

The Tuning Playbook picks the optimiser right after the batch size, and tunes its parameters
with the learning rate: every field here can be fixed or searched like any other. Each entry
takes the fields it reads; the others are ignored (an `sgd` trial has no betas), so a search
over `optimizer` with its parameters beside it needs no branches. A checkpoint holds the
optimiser's state_dict, so a paused or resumed trial goes on with its moments or momentum as
they were (training/loop.py).
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch

# name -> builder of torch's optimiser from the parameters and the config (the fields it reads)
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": lambda params, cfg: torch.optim.Adam(params, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2),
                                                 eps=cfg.eps, weight_decay=cfg.weight_decay),
    "adamw": lambda params, cfg: torch.optim.AdamW(params, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2),
                                                   eps=cfg.eps, weight_decay=cfg.weight_decay),
    "sgd": lambda params, cfg: torch.optim.SGD(params, lr=cfg.learning_rate, momentum=cfg.momentum,
                                               nesterov=cfg.nesterov, weight_decay=cfg.weight_decay),
    "rmsprop": lambda params, cfg: torch.optim.RMSprop(params, lr=cfg.learning_rate, alpha=cfg.rmsprop_alpha,
                                                       eps=cfg.eps, momentum=cfg.momentum,
                                                       weight_decay=cfg.weight_decay),
}
# The config fields each optimiser reads beside learning_rate and weight_decay.
READS = {"adam": ("beta1", "beta2", "eps"), "adamw": ("beta1", "beta2", "eps"), "sgd": ("momentum", "nesterov"),
         "rmsprop": ("rmsprop_alpha", "eps", "momentum")}


def build(workload, model: torch.nn.Module, cfg) -> torch.optim.Optimizer:
    """The workload's own optimiser where it defines `configure_optimizer`, else `cfg.optimizer`."""
    own = getattr(workload, "configure_optimizer", None)
    if own is not None:
        optimizer = own(model, cfg)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"configure_optimizer returned a {type(optimizer).__name__}; it must return a "
                            "torch.optim.Optimizer over the model's parameters")
        return optimizer
    return OPTIMIZERS[cfg.optimizer](parameters(model), cfg)


def parameters(model: torch.nn.Module) -> Iterable[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def problems(optimizers: set, nesterov: set, momentum_low: float | None) -> list[tuple[str, str]]:
    """(key, message) for settings torch would refuse mid-trial, from every value the search may
    give: `optimizers` and `nesterov` the values they may take, `momentum_low` momentum's least."""
    if "sgd" in optimizers and True in nesterov and not (momentum_low or 0) > 0:
        return [("nesterov", "Nesterov momentum needs momentum > 0 whenever the optimizer is sgd; set fixed.momentum "
                             "(e.g. 0.9), or keep a tuned momentum's range above 0")]
    return []
