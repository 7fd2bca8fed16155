"""Synthetic drives for the brake/coast predictor: telemetry, detections per frame, future labels.

The seed records highway drives at 2 Hz: the car's telemetry (speed, RPM, accelerator position,
engine load, gear) and a camera whose detector finds up to 12 vehicles per frame. It predicts
whether the driver will brake, or coast (accelerator released), within 1 to 5 seconds.

This generator simulates such drives so the example runs anywhere. Each drive follows a lead
vehicle that now and then slows down hard; the driver reacts a moment late, braking when the
gap closes fast and coasting when it closes slowly or the car runs above the speed it wants.
The lead vehicle is one of the detections (centred, growing as the gap closes), among other
vehicles that come and go and a detector that sometimes misses. So the future is partly
visible in the window: in the lead box's growth and the telemetry, never in one frame alone.

A sample is a window of 20 frames (10 s) ending at frame t, taken every 5 frames:

    telemetry       [20, 10]      speed km/h, rpm, accelerator %, engine load %, gear one-hot (0-5)
    detections      [20, 12, 6]   confidence, x1, y1, x2, y2, area (image-normalised, [0, 1])
    detection_mask  [20, 12]      which of the 12 slots hold a detection (bool)
    labels          [10]          brake within 1..5 s, then coast within 1..5 s, after frame t
    drive           ()            the recording it comes from

Drives are split between train and val whole, as the seed splits by recording, so no drive's
windows are in both. About 3% of frames are brake frames, as in the seed's data (1:35).
"""

from __future__ import annotations

import numpy as np

from raysweep.workloads import DataError, write_dataset

HZ = 2                      # frames per second
WINDOW, STRIDE = 20, 5      # frames per sample, frames between window ends
HORIZONS_S = (1, 2, 3, 4, 5)
MAX_DETECTIONS, BOX_FEATURES = 12, 6
GEARS = 6
TELEMETRY_NAMES = ["speed_kmh", "rpm", "accelerator_pos", "engine_load"] + [f"gear_{g}" for g in range(GEARS)]
BOX_NAMES = ["confidence", "x1", "y1", "x2", "y2", "area"]
TASKS = [f"brake_{h}s" for h in HORIZONS_S] + [f"coast_{h}s" for h in HORIZONS_S]
GEAR_TOP_SPEED = np.array([0.0, 4.0, 9.0, 15.0, 22.0, 99.0])   # m/s at which each gear hands over
GEAR_RATIO = np.array([0.0, 130.0, 80.0, 55.0, 40.0, 32.0])    # rpm per m/s


def simulate(n_drives: int, n_frames: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per frame of every drive ([drives, frames, ...]): telemetry, detections, mask, brake, coast."""
    dt = 1.0 / HZ
    desired = rng.uniform(24.0, 33.0, n_drives)          # the speed each driver wants, m/s
    speed = desired * rng.uniform(0.8, 1.0, n_drives)
    lead_speed = desired * rng.uniform(0.95, 1.1, n_drives)
    gap = rng.uniform(30.0, 60.0, n_drives)
    slowdown = np.zeros(n_drives)                         # seconds left of the lead's braking
    reaction = rng.integers(1, 3, n_drives)               # frames between seeing and acting
    history = np.zeros((n_drives, 3, 2))                  # (gap, closing speed) seen lately
    others = rng.integers(0, 8, n_drives)                 # other vehicles in view, per drive

    telemetry = np.zeros((n_drives, n_frames, len(TELEMETRY_NAMES)), np.float32)
    boxes = np.zeros((n_drives, n_frames, MAX_DETECTIONS, BOX_FEATURES), np.float32)
    mask = np.zeros((n_drives, n_frames, MAX_DETECTIONS), bool)
    brake = np.zeros((n_drives, n_frames), bool)
    coast = np.zeros((n_drives, n_frames), bool)
    drives = np.arange(n_drives)
    for t in range(n_frames):
        # The lead vehicle: cruises, and now and then brakes for a few seconds.
        starts = (slowdown <= 0) & (rng.random(n_drives) < 0.015)
        slowdown = np.where(starts, rng.uniform(2.0, 5.0, n_drives), slowdown - dt)
        lead_accel = np.where(slowdown > 0, -rng.uniform(2.5, 5.0, n_drives),
                              0.3 * (desired * 1.02 - lead_speed))
        lead_speed = np.clip(lead_speed + lead_accel * dt, 8.0, 40.0)
        # The driver acts on what was seen `reaction` frames ago.
        seen_gap, seen_closing = history[drives, reaction - 1].T
        ttc = np.where(seen_closing > 0.1, seen_gap / np.maximum(seen_closing, 0.1), 99.0)
        headway = seen_gap / np.maximum(speed, 1.0)
        brake[:, t] = (ttc < 3.5) | (headway < 0.7)
        coast[:, t] = ~brake[:, t] & ((ttc < 9.0) | (headway < 1.4) | (speed > desired + 1.5))
        pedal = np.where(brake[:, t] | coast[:, t], rng.uniform(0.0, 5.0, n_drives),
                         np.clip(18 + 9 * (desired - speed) + rng.normal(0, 3, n_drives), 8.0, 100.0))
        accel = np.where(brake[:, t], -rng.uniform(2.5, 4.5, n_drives),
                         np.where(coast[:, t], -0.35, 0.02 * (pedal - 18)))
        speed = np.clip(speed + accel * dt, 0.0, 40.0)
        gap = np.clip(gap + (lead_speed - speed) * dt, 4.0, 150.0)
        history = np.concatenate([np.stack([gap, speed - lead_speed], axis=1)[:, None], history[:, :-1]], axis=1)

        gear = np.searchsorted(GEAR_TOP_SPEED, speed)
        gear = np.where(speed < 0.5, 0, np.clip(gear, 1, GEARS - 1))
        rpm = np.where(gear == 0, 800.0, GEAR_RATIO[gear] * speed) + rng.normal(0, 40, n_drives)
        load = np.clip(0.8 * pedal + rng.normal(0, 4, n_drives), 0, 100)
        telemetry[:, t, :4] = np.stack([speed * 3.6, rpm, pedal, load], axis=1)
        telemetry[drives, t, 4 + gear] = 1.0

        # Detections: the lead (missed now and then), the other vehicles, in random slots.
        width = np.clip(9.0 / gap, 0.02, 0.6)
        centre = 0.5 + rng.normal(0, 0.01, n_drives)
        lead_box = np.stack([rng.uniform(0.6, 0.95, n_drives), centre - width / 2, 0.55 - 0.7 * width,
                             centre + width / 2, 0.55 + 0.3 * width, width * width], axis=1)
        n_other = np.clip(others + rng.integers(-1, 2, n_drives), 0, MAX_DETECTIONS - 1)
        other_w = rng.uniform(0.02, 0.15, (n_drives, MAX_DETECTIONS))
        other_x = rng.choice([0.2, 0.8], (n_drives, MAX_DETECTIONS)) + rng.normal(0, 0.08, (n_drives, MAX_DETECTIONS))
        other = np.stack([rng.uniform(0.4, 0.95, other_w.shape), other_x - other_w / 2, 0.55 - 0.7 * other_w,
                          other_x + other_w / 2, 0.55 + 0.3 * other_w, other_w * other_w], axis=-1)
        slot = np.argsort(rng.random((n_drives, MAX_DETECTIONS)), axis=1)   # a random order of slots
        seen = np.arange(MAX_DETECTIONS)[None, :] < n_other[:, None]
        frame = np.where(seen[..., None], other, 0.0)
        has_lead = (gap < 120.0) & (rng.random(n_drives) > 0.08)
        frame[drives, n_other] = np.where(has_lead[:, None], lead_box, 0.0)
        seen[drives, n_other] = has_lead
        boxes[:, t] = np.clip(np.take_along_axis(frame, slot[..., None], axis=1), 0.0, 1.0)
        mask[:, t] = np.take_along_axis(seen, slot, axis=1)
    return {"telemetry": telemetry, "detections": boxes, "detection_mask": mask, "brake": brake, "coast": coast}


def windows(frames: dict[str, np.ndarray], drive_ids: np.ndarray) -> dict[str, np.ndarray]:
    """Windows of WINDOW frames every STRIDE frames, labelled with what follows their last frame."""
    n_frames = frames["brake"].shape[1]
    horizon = max(HORIZONS_S) * HZ
    ends = np.arange(WINDOW - 1, n_frames - horizon, STRIDE)
    span = ends[:, None] - np.arange(WINDOW - 1, -1, -1)[None, :]        # [windows, WINDOW] frame indices
    out = {name: frames[name][:, span].reshape(-1, WINDOW, *frames[name].shape[2:])
           for name in ("telemetry", "detections", "detection_mask")}
    labels = []
    for event in ("brake", "coast"):
        # any event in frames t+1 .. t+h*HZ: a running count makes every horizon one subtraction
        count = np.concatenate([np.zeros((len(drive_ids), 1)), np.cumsum(frames[event], axis=1)], axis=1)
        for h in HORIZONS_S:
            labels.append((count[:, ends + 1 + h * HZ] - count[:, ends + 1]) > 0)
    out["labels"] = np.stack(labels, axis=-1).reshape(-1, len(TASKS)).astype(np.float32)
    out["drive"] = np.repeat(drive_ids, len(ends)).astype(np.int64)
    return out


def write(out_dir, *, n_drives: int = 80, seconds: int = 180, val_fraction: float = 0.25, seed: int = 0,
          fmt: str = "parquet") -> dict:
    """`raysweep data ./examples/brake_coast/brake_coast.py`: windows of whole drives, split by drive."""
    if not 0 < val_fraction < 1:
        raise DataError(f"--val-fraction must lie between 0 and 1 (the share of drives held out), got {val_fraction}")
    if n_drives < 4 or seconds * HZ < WINDOW + max(HORIZONS_S) * HZ + 1:
        raise DataError(f"need at least 4 drives of {(WINDOW + max(HORIZONS_S) * HZ + 1) / HZ:g} s "
                         f"(got {n_drives} drives of {seconds} s)")
    rng = np.random.default_rng(seed)
    frames = simulate(n_drives, seconds * HZ, rng)
    order = rng.permutation(n_drives)
    n_val = min(max(1, round(val_fraction * n_drives)), n_drives - 1)
    splits = {}
    for split, ids in (("train", np.sort(order[n_val:])), ("val", np.sort(order[:n_val]))):
        splits[split] = windows({k: v[ids] for k, v in frames.items()}, ids)
    train = splits["train"]["telemetry"].reshape(-1, len(TELEMETRY_NAMES))
    return write_dataset(
        out_dir, splits, fmt=fmt, workload="brake_coast", task="multilabel", generator="examples/brake_coast",
        feature_names=TELEMETRY_NAMES, box_feature_names=BOX_NAMES, target_names=TASKS,
        sequence_length=WINDOW, max_detections=MAX_DETECTIONS, hz=HZ,
        telemetry_scaler={"min": train.min(axis=0).round(4).tolist(), "max": train.max(axis=0).round(4).tolist()},
        positive_rate={task: round(float(rate), 4) for task, rate in zip(TASKS, splits["train"]["labels"].mean(axis=0))},
        brake_frame_rate=round(float(frames["brake"].mean()), 4), drives={"train": int(n_drives - n_val), "val": int(n_val)})
