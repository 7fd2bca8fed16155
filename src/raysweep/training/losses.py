"""The loss registry: every workload picks its loss by name from a spec, with its parameters.

    loss = losses.get("huber", delta=0.5)
    value = loss(predictions, targets)      # a scalar, averaged over the batch

Regression losses take predictions and targets of the same shape. `bce` and `focal` take
logits; `cross_entropy` takes logits and class indices. `physics_informed` adds the battery
seed's penalties (predictions along a sequence that must not rise, and must change smoothly)
to a base regression loss. An unknown name or parameter raises ValueError listing what is
known, so a spec error names the fix.
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from raysweep.checks import did_you_mean

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(pred, target)


def mae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(pred, target)


def huber(pred: torch.Tensor, target: torch.Tensor, *, delta: float = 1.0) -> torch.Tensor:
    """Quadratic within `delta` of the target, linear beyond: robust to outliers."""
    return F.huber_loss(pred, target, delta=delta)


def hybrid(pred: torch.Tensor, target: torch.Tensor, *, alpha: float = 0.7) -> torch.Tensor:
    """alpha * MAE + (1 - alpha) * MSE (the trajectory seed's default alpha is 0.7)."""
    return alpha * mae(pred, target) + (1 - alpha) * mse(pred, target)


def mape(pred: torch.Tensor, target: torch.Tensor, *, epsilon: float = 1e-8) -> torch.Tensor:
    """Mean absolute error relative to the target, as a fraction (0.05 = 5 %)."""
    return ((pred - target).abs() / target.abs().clamp_min(epsilon)).mean()


def bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, target)


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy; `target` holds class indices (multiclass tables)."""
    return F.cross_entropy(logits, target.long())


def _per_task(value: float | Sequence[float], like: torch.Tensor) -> torch.Tensor:
    """A scalar, or one value per task (the last dimension), as a tensor that broadcasts."""
    return torch.as_tensor(value, dtype=like.dtype, device=like.device)


def focal(logits: torch.Tensor, target: torch.Tensor, *, alpha: float | Sequence[float] = 0.25,
          gamma: float | Sequence[float] = 2.0, task_weights: Sequence[float] | None = None) -> torch.Tensor:
    """Focal loss (Lin et al. 2017) for rare positives, per task as in the brake/coast seed.

    Per element: -alpha_t (1 - p_t)^gamma log p_t, with alpha_t = alpha for positives and
    1 - alpha for negatives. `alpha` and `gamma` may give one value per task (the last
    dimension); `task_weights` weight each task's mean (normalised to sum to one).
    """
    alpha_t = _per_task(alpha, logits)
    gamma_t = _per_task(gamma, logits)
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    log_p_t = target * log_p + (1 - target) * log_not_p
    p_t = log_p_t.exp()
    weight = target * alpha_t + (1 - target) * (1 - alpha_t)
    per_element = -weight * (1 - p_t).pow(gamma_t) * log_p_t
    per_task = per_element.reshape(-1, per_element.shape[-1]).mean(dim=0)
    if task_weights is None:
        return per_task.mean()
    weights = _per_task(task_weights, per_task)
    return (per_task * weights).sum() / weights.sum()


def physics_informed(pred: torch.Tensor, target: torch.Tensor, *, base: str = "mse",
                     monotonicity_weight: float = 0.0, smoothness_weight: float = 0.0) -> torch.Tensor:
    """A base loss plus the battery seed's physics penalties along the sequence (dimension 1).

    Monotonicity: state of health never rises, so any increase between consecutive predictions
    is penalised (mean of relu(diff)). Smoothness: the mean squared second difference.
    """
    loss = get(base)(pred, target)
    steps = pred.reshape(pred.shape[0], -1)
    if monotonicity_weight and steps.shape[1] > 1:
        loss = loss + monotonicity_weight * F.relu(steps.diff(dim=1)).mean()
    if smoothness_weight and steps.shape[1] > 2:
        loss = loss + smoothness_weight * steps.diff(n=2, dim=1).pow(2).mean()
    return loss


LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "mse": mse, "mae": mae, "huber": huber, "hybrid": hybrid, "mape": mape,
    "bce": bce, "focal": focal, "cross_entropy": cross_entropy, "physics_informed": physics_informed,
}


def parameters(name: str) -> dict[str, object]:
    """The parameters a loss takes, with their defaults."""
    signature = inspect.signature(LOSSES[name])
    return {p.name: p.default for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY}


def get(name: str, **params) -> Loss:
    """The loss called `name` with `params` bound.

    Raises:
        ValueError: an unknown loss (listing the known ones) or parameter (listing its own).
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}.{did_you_mean(name, LOSSES)} Known: {', '.join(LOSSES)}.")
    accepted = parameters(name)
    for key in params:
        if key not in accepted:
            known = ", ".join(accepted) or "none"
            raise ValueError(f"loss {name!r} has no parameter {key!r}.{did_you_mean(key, accepted)} "
                             f"Its parameters: {known}.")
    if name == "physics_informed" and params.get("base", "mse") not in LOSSES:
        raise ValueError(f"physics_informed: unknown base loss {params['base']!r}. Known: {', '.join(LOSSES)}.")
    return functools.partial(LOSSES[name], **params)
