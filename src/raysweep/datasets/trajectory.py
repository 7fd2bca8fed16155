"""Synthetic trajectory-error data: how far a two-axis servo lags its toolpath, 3-D-printer style.

Modelled on the trajectory-error seed (an LSTM learns the tracking error of a printer from the
recent reference motion, to correct it in real time). Deterministic for a seed, vectorised over
layers.

Toolpaths
---------
Four part shapes, several layers each (`layers_per_part`): `benchy` (a rounded hull with a
zig-zag infill), `bearing` (concentric rings), `nautilus` (a logarithmic spiral) and `boat` (a
pointed hull with a transom). Each layer draws its shape at its own scale, rotation and feed
rate (30-120 mm/s), repeating it inwards until `seconds_per_layer` are filled. The motion
planner is a moving average over 50 ms applied twice, which limits jerk as a real planner does,
so corners become short accelerations rather than jumps.

Servo (per axis, simulated at 1 kHz with semi-implicit Euler)
-------------------------------------------------------------
::

    a = kff_a a_ref + 2 zeta wn (kff_v v_ref - v) + wn^2 (ref - x) - f_c sign(v)   carriage
    r'' = -wr^2 r - 2 zeta_r wr r' - g a                                         frame resonance
    position = x + r;   error = ref - position (um) + N(0, 1 um)

Feed-forward that is not quite 1 leaves a lag proportional to velocity and acceleration;
Coulomb friction `f_c` adds glitches where an axis reverses; the lightly damped frame mode
rings after every corner. So the error depends on the last few hundred milliseconds of motion,
which is what the LSTM has to learn. The y axis carries more mass: lower bandwidth, a lower
resonance.

Samples
-------
Every 10th step (100 Hz). A window of `sequence_length` samples of [x_ref, y_ref, vx_ref,
vy_ref] (mm, mm/s) predicts [error_x, error_y] (um) at its last sample; windows start every
`stride` samples. Splits are by layer, 0.8/0.1/0.1 within each part, so no window crosses a
split; the scalers are fitted on the training windows only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from raysweep.datasets import shards

PARTS = ("benchy", "bearing", "nautilus", "boat")
SIM_HZ = 1000
SAMPLE_EVERY = 10               # 100 Hz samples, as the seed's 0.5 s = 50 samples
FEATURES = ("x_ref_mm", "y_ref_mm", "vx_ref_mm_s", "vy_ref_mm_s")
TARGETS = ("error_x_um", "error_y_um")
SPLIT_FRACTIONS = {"val": 0.1, "test": 0.1}


@dataclass(frozen=True)
class Axis:
    bandwidth_hz: float
    damping: float
    velocity_feedforward: float
    acceleration_feedforward: float
    friction_mm_s2: float
    resonance_hz: float
    resonance_damping: float
    resonance_gain: float


AXES = (Axis(25.0, 0.8, 0.97, 0.6, 250.0, 60.0, 0.03, 1.0),   # x: the light carriage
        Axis(18.0, 0.7, 0.96, 0.5, 350.0, 45.0, 0.04, 1.2))   # y: the bed, heavier


# --- toolpaths -------------------------------------------------------------------------------------

def _ring(radius: float, n: int = 180, start: float = 0.0) -> np.ndarray:
    theta = start + np.linspace(0, 2 * np.pi, n)
    return np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1)


def _rounded_hull(length: float, beam: float, n: int = 160) -> np.ndarray:
    """A benchy-like outline: an elliptic bow and stern, smooth all round."""
    return _ring(1.0, n) * [length / 2, beam / 2]


def _pointed_hull(length: float, beam: float) -> np.ndarray:
    """A boat outline with sharp corners: flat transom, straight sides, a pointed bow."""
    corners = np.array([(-length / 2, -beam / 2), (0.2 * length, -beam / 2), (length / 2, 0.0),
                        (0.2 * length, beam / 2), (-length / 2, beam / 2), (-length / 2, -beam / 2)])
    return np.concatenate([np.linspace(a, b, 20, endpoint=False) for a, b in zip(corners[:-1], corners[1:])]
                          + [corners[-1:]])


def _zigzag(width: float, height: float, spacing: float) -> np.ndarray:
    rows = np.arange(-height / 2, height / 2, spacing)
    points = []
    for i, y in enumerate(rows):
        xs = (-width / 2, width / 2) if i % 2 == 0 else (width / 2, -width / 2)
        points += [(xs[0], y), (xs[1], y)]
    return np.asarray(points)


def _part_outline(part: str, rng: np.random.Generator) -> np.ndarray:
    scale = rng.uniform(15, 40)
    if part == "benchy":
        return np.concatenate([_rounded_hull(2 * scale, scale), _zigzag(1.4 * scale, 0.7 * scale, 2.5)])
    if part == "bearing":
        return np.concatenate([_ring(scale), _ring(0.8 * scale), _ring(0.45 * scale), _ring(0.3 * scale)])
    if part == "nautilus":
        theta = np.linspace(0, 5 * np.pi, 600)
        radius = 0.08 * scale * np.exp(0.17 * theta)
        return np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1)
    if part == "boat":
        return _pointed_hull(2.2 * scale, 0.8 * scale)
    raise ValueError(f"unknown part {part!r}")


def _resample(path: np.ndarray, feed: float, n_steps: int) -> np.ndarray:
    """Positions along `path` at constant speed `feed` (mm/s), sampled at SIM_HZ, looping inwards."""
    segments = np.linalg.norm(np.diff(path, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(segments)])
    s = feed * np.arange(n_steps) / SIM_HZ
    loop_index, within = np.divmod(s, arc[-1])
    x = np.interp(within, arc, path[:, 0])
    y = np.interp(within, arc, path[:, 1])
    shrink = 0.97 ** loop_index  # each repeat a little further in, like successive perimeters
    return np.stack([x * shrink, y * shrink], axis=1)


def _plan(positions: np.ndarray) -> np.ndarray:
    """Jerk-limited motion: a 50 ms moving average applied twice (edges held)."""
    width = SIM_HZ // 20
    kernel = np.ones(width) / width
    out = positions
    for _ in range(2):
        padded = np.concatenate([np.repeat(out[:1], width, 0), out, np.repeat(out[-1:], width, 0)])
        out = np.stack([np.convolve(padded[:, k], kernel, mode="same")[width:-width] for k in range(2)], axis=1)
    return out


def toolpaths(layers_per_part: int, seconds_per_layer: float, seed: int) -> tuple[np.ndarray, list[dict]]:
    """Reference positions (layers, steps, 2) at SIM_HZ and one info dict per layer."""
    rng = np.random.default_rng(seed)
    n_steps = int(seconds_per_layer * SIM_HZ)
    refs, info = [], []
    for part in PARTS:
        for layer in range(layers_per_part):
            outline = _part_outline(part, rng)
            angle = rng.uniform(0, 2 * np.pi)
            rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            feed = float(rng.uniform(30, 120))
            centre = rng.uniform(60, 140, 2)
            refs.append(_plan(_resample(outline @ rotation.T, feed, n_steps)) + centre)
            info.append({"part": part, "layer_in_part": layer, "feed_mm_s": round(feed, 2)})
    return np.stack(refs), info


# --- servo -------------------------------------------------------------------------------------------

def simulate_servo(reference: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Tracking error (um) of every layer and axis; `reference` is (layers, steps, 2) in mm."""
    dt = 1.0 / SIM_HZ
    velocity_ref = np.gradient(reference, dt, axis=1)
    acceleration_ref = np.gradient(velocity_ref, dt, axis=1)
    p = {name: np.array([getattr(a, name) for a in AXES]) for name in Axis.__dataclass_fields__}
    wn = 2 * np.pi * p["bandwidth_hz"]
    wr = 2 * np.pi * p["resonance_hz"]
    n_layers, n_steps, _ = reference.shape
    x = reference[:, 0].copy()
    v = np.zeros((n_layers, 2))
    r = np.zeros((n_layers, 2))
    rv = np.zeros((n_layers, 2))
    position = np.empty_like(reference)
    for t in range(n_steps):
        position[:, t] = x + r
        a = (p["acceleration_feedforward"] * acceleration_ref[:, t]
             + 2 * p["damping"] * wn * (p["velocity_feedforward"] * velocity_ref[:, t] - v)
             + wn ** 2 * (reference[:, t] - x)
             - p["friction_mm_s2"] * np.tanh(v / 0.5))   # smooth sign: no chatter at rest
        ra = -wr ** 2 * r - 2 * p["resonance_damping"] * wr * rv - p["resonance_gain"] * a
        v += a * dt
        x += v * dt
        rv += ra * dt
        r += rv * dt
    error_um = (reference - position) * 1000.0
    return error_um + rng.normal(0.0, 1.0, error_um.shape)


# --- windows and shards ------------------------------------------------------------------------------

def windows(features: np.ndarray, targets: np.ndarray, sequence_length: int, stride: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """(steps, F) and (steps, T) of one layer -> (n, sequence_length, F) and the targets at each end."""
    starts = np.arange(0, len(features) - sequence_length + 1, stride)
    index = starts[:, None] + np.arange(sequence_length)
    return features[index], targets[starts + sequence_length - 1]


def split_layers(info: list[dict], seed: int) -> dict[str, list[int]]:
    """Layer indices per split: 10 % val and 10 % test of each part's layers (at least one)."""
    rng = np.random.default_rng(seed + 1)
    splits = {"train": [], "val": [], "test": []}
    for part in PARTS:
        layers = [i for i, d in enumerate(info) if d["part"] == part]
        layers = list(rng.permutation(layers))
        n_val = max(1, round(SPLIT_FRACTIONS["val"] * len(layers)))
        n_test = max(1, round(SPLIT_FRACTIONS["test"] * len(layers)))
        splits["val"] += layers[:n_val]
        splits["test"] += layers[n_val:n_val + n_test]
        splits["train"] += layers[n_val + n_test:]
    return {k: sorted(int(i) for i in v) for k, v in splits.items()}


def write(out_dir: str | Path, *, seed: int = 0, layers_per_part: int = 10, seconds_per_layer: float = 40.0,
          sequence_length: int = 20, stride: int = 4, fmt: str = "parquet", rows_per_shard: int = 8192) -> dict:
    """Simulate, cut windows, split by layer, write shards and `meta.json`; returns the meta dict."""
    if layers_per_part < 3:
        raise shards.DataError(f"need at least 3 layers per part (train, val, test), got {layers_per_part}")
    if sequence_length < 2 or stride < 1:
        raise shards.DataError(f"sequence_length must be >= 2 and stride >= 1, got {sequence_length}, {stride}")
    samples = int(seconds_per_layer * SIM_HZ) // SAMPLE_EVERY
    if samples < sequence_length:
        raise shards.DataError(f"{seconds_per_layer} s per layer gives {samples} samples, fewer than "
                               f"sequence_length {sequence_length}; raise --seconds-per-layer")
    reference, info = toolpaths(layers_per_part, seconds_per_layer, seed)
    error = simulate_servo(reference, np.random.default_rng(seed + 2))
    velocity = np.gradient(reference, 1.0 / SIM_HZ, axis=1)
    features = np.concatenate([reference, velocity], axis=2)[:, ::SAMPLE_EVERY].astype(np.float32)
    targets = error[:, ::SAMPLE_EVERY].astype(np.float32)

    out_dir = Path(out_dir)
    layer_splits = split_layers(info, seed)
    rows, scaler = {}, {}
    for split, layers in layer_splits.items():
        cut = [windows(features[i], targets[i], sequence_length, stride) for i in layers]
        x = np.concatenate([c[0] for c in cut])
        y = np.concatenate([c[1] for c in cut])
        layer_id = np.concatenate([np.full(len(c[0]), i, dtype=np.int32) for i, c in zip(layers, cut)])
        if split == "train":  # per channel over every time step of every training window
            scaler["feature_mean"], scaler["feature_std"] = shards.standardisation(x.reshape(-1, len(FEATURES)))
            scaler["target_mean"], scaler["target_std"] = shards.standardisation(y)
        columns = {"layer": layer_id, "features": x.reshape(len(x), -1), "labels": y}
        shards.write_split(columns, out_dir, split, fmt=fmt, rows_per_shard=rows_per_shard)
        rows[split] = int(len(x))
    meta = {
        "workload": "trajectory",
        "format": fmt,
        "generator": {"name": "trajectory", "seed": seed, "layers_per_part": layers_per_part,
                      "seconds_per_layer": seconds_per_layer, "sample_hz": SIM_HZ // SAMPLE_EVERY},
        "columns": {"id": "layer", "features": "features", "labels": "labels"},
        "sequence_length": sequence_length,
        "stride": stride,
        "feature_names": list(FEATURES),
        "target_names": list(TARGETS),
        "rows": rows,
        "split": {"by": "layer", **{f"{k}_layers": v for k, v in layer_splits.items()}},
        "layers": info,
        "scaler": {"fitted_on": "train", "mean": scaler["feature_mean"], "std": scaler["feature_std"]},
        "target_scaler": {"fitted_on": "train", "mean": scaler["target_mean"], "std": scaler["target_std"]},
    }
    shards.write_meta(out_dir, meta)
    return meta
