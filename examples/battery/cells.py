"""Synthetic battery cycling data: capacity fade with a knee, cell by cell.

The battery seed trains on laboratory cycling of lithium-ion cells. Every cycle logs the
discharge capacity, the internal resistance, the mean voltage, the temperature and the charge
time; a cell reaches its end of life when its capacity falls to 80 % of the rated capacity.
Fade is slow and nearly linear at first, then accelerates past a *knee*, and how hard a cell
is used decides where the knee falls. This generator simulates such a fleet so the example
runs anywhere; it is vectorised over cells and cycles (40 cells in well under a second).

Cells
-----
Each cell draws its capacity when new (1 % scatter around the rated 1.1 Ah, like the LFP
cells of public fast-charging data), its initial resistance and its operating conditions:
ambient temperature (20-40 C), C-rate (0.5-2 C) and depth of discharge (60-100 %). The
conditions set a stress factor (doubling every 15 C, square root of the C-rate, linear in
depth) that speeds up ageing. The state of health, capacity as a fraction of the rated one, is

    soh(k) = new / rated x (1 - a k - b (w softplus((k - knee) / w))^2)

a linear early fade `a` proportional to stress, a knee at cycle `knee` proportional to
1 / stress, then a quadratic acceleration `b` that takes the cell from its knee to 80 % in
about a third of the knee's age; `w` rounds the knee. Each of a, knee and b scatters from
cell to cell (log-normal), so the conditions set a cell's life only roughly, as in real fleets.

Per cycle
---------
``cycle`` (count), ``capacity_ah`` (rated x soh, plus measurement noise and the short-lived
capacity *regeneration* real cells show after a rest: a noisy, sometimes rising signal),
``resistance_mohm`` (grows as the cell fades, and turns upward at 70 % of the knee's age: the
resistance *elbow* measured cells show before their capacity knee, a precursor a model can
learn the knee from), ``mean_voltage_v`` (lower by the IR drop and
with age), ``max_temperature_c`` (ambient plus Joule heating) and ``charge_time_min``
(constant current for the depth charged, plus a constant-voltage tail that grows with
resistance).

Samples
-------
A window of the last `window` cycles' features ([window, 6]) ending at cycle k, every `stride`
cycles, predicts a sequence of `horizon` values, `cycles_per_step` cycles apart starting at k:
the state of health (noise-free) or the remaining useful life (cycles until soh first falls to
80 %). Windows stop where the last forecast would reach end of life, so every RUL label is at
least 1. Cells are split whole (train 70 %, val and test 15 % each), so no cell's windows are
in two splits; the scalers are fitted on the training windows only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from raysweep.workloads import DataError, write_dataset

FEATURES = ("cycle", "capacity_ah", "resistance_mohm", "mean_voltage_v", "max_temperature_c", "charge_time_min")
RATED_CAPACITY_AH = 1.1
TARGETS = {"soh": "state of health (capacity as a fraction of the rated capacity)", "rul": "remaining useful life (cycles)"}
END_OF_LIFE_SOH = 0.8
MAPE_FLOOR = {"soh": 0.01, "rul": 10.0}   # |true| below this counts as this in MAPE: RUL nears 0 at end of life
SPLIT_FRACTIONS = {"val": 0.15, "test": 0.15}

KNEE_AT_UNIT_STRESS = 400.0     # cycles
EARLY_FADE_PER_STRESS = 1e-4    # soh lost per cycle before the knee, at unit stress
REGENERATION = 0.006            # capacity regained after a rest (fraction of rated), decaying...
REGENERATION_CYCLES = 4.0       # ...with this time constant (cycles)
REST_PROBABILITY = 0.02         # per cycle
ELBOW_AT = 0.7                  # resistance turns upward at this share of the knee's cycle...
ELBOW_GROWTH = 0.3              # ...growing by this share of its initial value per knee-length of cycles


@dataclass(frozen=True)
class Fleet:
    """Every cell's conditions and its log on one grid of cycles (cycle k at index k - 1).

    The grid runs past every cell's end of life; what lies beyond a cell's end is never sampled.
    """

    conditions: dict[str, np.ndarray]   # per cell: temperature_c, c_rate, depth_of_discharge, ...
    knee_cycle: np.ndarray              # (cells,) the knee parameter of each fade curve
    end_of_life: np.ndarray             # (cells,) index of the first cycle with soh <= 0.8
    soh: np.ndarray                     # (cells, cycles) noise-free state of health
    features: np.ndarray                # (cells, cycles, len(FEATURES)) what the cycler logs


def draw_conditions(n_cells: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Each cell's make (capacity, resistance) and use (temperature, C-rate, depth of discharge)."""
    return {
        "new_capacity_ah": RATED_CAPACITY_AH * rng.normal(1.0, 0.01, n_cells),
        "initial_resistance_mohm": rng.uniform(18.0, 22.0, n_cells),
        "temperature_c": rng.uniform(20.0, 40.0, n_cells),
        "c_rate": rng.uniform(0.5, 2.0, n_cells),
        "depth_of_discharge": rng.uniform(0.6, 1.0, n_cells),
    }


def stress(conditions: dict[str, np.ndarray]) -> np.ndarray:
    """How much faster than a 25 C, 1 C, 80 %-depth cell each cell ages."""
    return (2.0 ** ((conditions["temperature_c"] - 25.0) / 15.0) * np.sqrt(conditions["c_rate"])
            * conditions["depth_of_discharge"] / 0.8)


def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def fade_curves(conditions: dict[str, np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free soh (cells, cycles) and each cell's knee; the grid reaches every end of life."""
    n_cells = len(conditions["c_rate"])
    s = stress(conditions)
    knee = KNEE_AT_UNIT_STRESS / s * rng.lognormal(0.0, 0.15, n_cells)
    early = EARLY_FADE_PER_STRESS * s * rng.lognormal(0.0, 0.2, n_cells)
    late = 0.15 / (0.35 * knee) ** 2 * rng.lognormal(0.0, 0.2, n_cells)
    width = 0.1 * knee
    cycles = np.arange(1, int(2.5 * knee.max()) + 1, dtype=np.float64)
    past_knee = width[:, None] * softplus((cycles - knee[:, None]) / width[:, None])
    fade = 1.0 - early[:, None] * cycles - late[:, None] * past_knee ** 2
    return conditions["new_capacity_ah"][:, None] / RATED_CAPACITY_AH * fade, knee


def cycler_log(soh: np.ndarray, knee: np.ndarray, conditions: dict[str, np.ndarray],
               rng: np.random.Generator) -> np.ndarray:
    """What a cycler records each cycle, as (cells, cycles, len(FEATURES)); see the module docstring."""
    n_cells, n_cycles = soh.shape
    cycle = np.broadcast_to(np.arange(1.0, n_cycles + 1), soh.shape)
    c = {k: v[:, None] for k, v in conditions.items()}
    current_a = c["c_rate"] * RATED_CAPACITY_AH
    rests = rng.random(soh.shape) < REST_PROBABILITY
    regeneration = np.zeros(soh.shape)
    for lag in range(int(5 * REGENERATION_CYCLES)):   # a rest's gain, decaying exponentially
        regeneration[:, lag:] += rests[:, :n_cycles - lag] * REGENERATION * np.exp(-lag / REGENERATION_CYCLES)
    capacity = RATED_CAPACITY_AH * (soh + regeneration + rng.normal(0.0, 0.002, soh.shape))
    # Resistance rises as the cell loses capacity, and turns upward ahead of the knee (the elbow).
    width = 0.1 * knee[:, None]
    elbow = width * softplus((cycle - ELBOW_AT * knee[:, None]) / width) / knee[:, None]
    growth = 1.0 + 2.0 * (1.0 - soh) + ELBOW_GROWTH * elbow
    resistance = c["initial_resistance_mohm"] * (1.0 - 0.01 * (c["temperature_c"] - 25.0)) * growth
    resistance = resistance + rng.normal(0.0, 0.15, soh.shape)
    voltage = 3.30 - current_a * resistance / 1000.0 - 0.1 * (1.0 - soh) + rng.normal(0.0, 0.002, soh.shape)
    temperature = c["temperature_c"] + 20.0 * current_a ** 2 * resistance / 1000.0 + rng.normal(0.0, 0.3, soh.shape)
    charge_time = (60.0 * c["depth_of_discharge"] * soh / c["c_rate"] + 2.0 + 30.0 * (growth - 1.0)
                   + rng.normal(0.0, 0.2, soh.shape))
    return np.stack([cycle, capacity, resistance, voltage, temperature, charge_time], axis=-1)


def simulate(n_cells: int, seed: int) -> Fleet:
    """A fleet of `n_cells` cells cycled to end of life, deterministic for a seed."""
    rng = np.random.default_rng(seed)
    conditions = draw_conditions(n_cells, rng)
    soh, knee = fade_curves(conditions, rng)
    end_of_life = np.argmax(soh <= END_OF_LIFE_SOH, axis=1)
    return Fleet(conditions, knee, end_of_life, soh, cycler_log(soh, knee, conditions, rng))


def windows(features: np.ndarray, soh: np.ndarray, end_of_life: np.ndarray, cells: list[int], *, target: str,
            window: int, horizon: int, cycles_per_step: int, stride: int) -> dict[str, np.ndarray]:
    """The samples of `cells`: features [n, window, F], labels [n, horizon], the cell and last cycle.

    A window ends at index e (cycle e + 1) and holds indices e - window + 1 .. e; its labels are
    the target at e, e + cycles_per_step, ..., each before the cell's end of life.
    """
    reach = (horizon - 1) * cycles_per_step
    ends = [np.arange(window - 1, end_of_life[c] - reach, stride) for c in cells]
    cell = np.concatenate([np.full(len(e), c) for c, e in zip(cells, ends)]).astype(np.int64)
    end = np.concatenate(ends).astype(np.int64)
    steps = end[:, None] + cycles_per_step * np.arange(horizon)
    labels = soh[cell[:, None], steps] if target == "soh" else (end_of_life[cell][:, None] - steps).astype(np.float64)
    return {"cell": cell, "cycle": end + 1,
            "features": features[cell[:, None], end[:, None] - window + 1 + np.arange(window)],
            "labels": labels}


def split_cells(n_cells: int, seed: int) -> dict[str, list[int]]:
    """Cell indices per split, drawn at random: val and test 15 % each (at least one), train the rest."""
    order = np.random.default_rng(seed + 1).permutation(n_cells)
    n_val, n_test = (max(1, round(SPLIT_FRACTIONS[k] * n_cells)) for k in ("val", "test"))
    return {"train": sorted(order[n_val + n_test:].tolist()), "val": sorted(order[:n_val].tolist()),
            "test": sorted(order[n_val:n_val + n_test].tolist())}


def standardisation(values: np.ndarray) -> tuple[list[float], list[float]]:
    """Mean and std over every axis but the last (std floored, so a constant cannot divide by zero)."""
    flat = values.reshape(-1, values.shape[-1]).astype(np.float64)
    return flat.mean(axis=0).round(6).tolist(), np.maximum(flat.std(axis=0), 1e-6).round(6).tolist()


def write(out_dir: str | Path, *, seed: int = 0, fmt: str = "parquet", target: str = "soh", n_cells: int = 40,
          window: int = 20, horizon: int = 6, cycles_per_step: int = 10, stride: int = 5,
          rows_per_shard: int = 8192) -> dict:
    """Simulate a fleet, cut windows, split by cell, write shards and meta.json; returns the meta.

    Raises:
        DataError: an unknown target, too few cells for three splits, or a window or horizon
            that leaves some cell without a sample.
    """
    if target not in TARGETS:
        raise DataError(f"--target {target}: unknown target; known: {', '.join(TARGETS)}")
    if n_cells < 3 or window < 2 or horizon < 1 or cycles_per_step < 1 or stride < 1:
        raise DataError(f"need --cells >= 3, --window >= 2 and --horizon, --stride >= 1; got {n_cells} cells, "
                        f"window {window}, horizon {horizon}, stride {stride}, {cycles_per_step} cycles per step")
    fleet = simulate(n_cells, seed)
    shortest = int(fleet.end_of_life.min())
    if window + (horizon - 1) * cycles_per_step >= shortest:
        raise DataError(f"the shortest-lived cell reaches end of life at cycle {shortest + 1}: a window of {window} "
                        f"cycles and a horizon of {horizon} x {cycles_per_step} cycles leave it no sample; shorten them")
    cell_splits = split_cells(n_cells, seed)
    splits = {split: windows(fleet.features, fleet.soh, fleet.end_of_life, cells, target=target, window=window,
                             horizon=horizon, cycles_per_step=cycles_per_step, stride=stride)
              for split, cells in cell_splits.items()}
    feature_mean, feature_std = standardisation(splits["train"]["features"])
    (target_mean,), (target_std,) = standardisation(splits["train"]["labels"].reshape(-1, 1))
    return write_dataset(
        out_dir, splits, fmt=fmt, rows_per_shard=rows_per_shard, workload="battery", task="regression",
        generator={"name": "battery cells", "seed": seed, "n_cells": n_cells},
        target=target, target_description=TARGETS[target], mape_floor=MAPE_FLOOR[target],
        window=window, horizon=horizon, cycles_per_step=cycles_per_step, stride=stride,
        end_of_life_soh=END_OF_LIFE_SOH, feature_names=list(FEATURES),
        target_names=[f"{target}_in_{j * cycles_per_step}_cycles" for j in range(horizon)],
        split={"by": "cell", **{f"{k}_cells": v for k, v in cell_splits.items()}},
        cells=[{"cell": i, "knee_cycle": round(float(fleet.knee_cycle[i]), 1),
                "end_of_life_cycle": int(fleet.end_of_life[i]) + 1,
                **{k: round(float(v[i]), 4) for k, v in fleet.conditions.items()}} for i in range(n_cells)],
        # One scalar for the whole target sequence: a sequence that never rises in its own units
        # never rises standardised either, so the physics penalties mean the same in both.
        scaler={"fitted_on": "train", "mean": feature_mean, "std": feature_std},
        target_scaler={"fitted_on": "train", "mean": target_mean, "std": target_std})
