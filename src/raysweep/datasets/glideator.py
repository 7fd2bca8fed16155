"""Synthetic Glideator data: will a pilot fly further than t km from this site on this day?

Modelled on the Glideator seed (paragliding cross-country forecast from GFS weather). Each row
is one (launch site, date). The generator is deterministic for a seed and vectorised in numpy.

What is simulated
-----------------
Sites: elevation (m), aspect (the compass direction the launch faces, deg), latitude and
longitude, plus a hidden per-site quality that no feature shows (the site embedding can learn it).

Dates: consecutive days from 2022-01-01; day of year and a weekend flag.

Weather per site and day at 9, 12 and 15 h, GFS-like: wind speed (km/h) and direction (deg,
where the wind blows from) at 850, 700 and 500 hPa, 2 m temperature (C), lapse rate (C/km),
relative humidity (%), cloud cover (%), boundary-layer height (m), CAPE (J/kg) and surface
pressure (hPa). Day-to-day weather is an AR(1) synoptic state shared by all sites, a seasonal
cycle ``season = sin(2 pi (doy - 80) / 365)`` and per-site noise.

Flyability (the documented latent formula)
------------------------------------------
::

    z = 1.2 tanh((blh_15h - 1200) / 600)          thermals reach high enough
      + 0.6 (lapse_12h - 6.5)                     unstable air
      + 0.5 season
      - (cloud_12h - 40) / 60                     sun on the ground
      - 0.8 relu(wind850_12h - 20) / 10           too windy to launch or climb
      - 0.5 relu(cape_15h - 1200) / 600           overdevelopment, storms
      + 0.4 cos(dir850_12h - aspect) min(wind850_12h, 20) / 20   wind blows up the slope
      + quality_site + 0.3 (elevation - 1000) / 1000
      + 0.25 weekend                              more pilots in the air
      + N(0, 0.5)

The day's best cross-country distance is 0 km when ``z <= 0`` (nobody flew far enough to
register) and ``130 (1 - exp(-z / 1.2)) exp(N(0, 0.25))`` km otherwise. The targets are the 11
labels ``distance > t`` for ``t = 0, 10, ..., 100`` km, monotone by construction.

The split is by date: the last `test_fraction` of the days are a held-out test split, the
`val_fraction` before them validation, so no date is in two splits.
The feature scaler (mean/std) is fitted on the training split only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from raysweep.datasets import shards

THRESHOLDS_KM = tuple(range(0, 101, 10))
HOURS = (9, 12, 15)
LEVELS_HPA = (850, 700, 500)
SITE_FEATURES = ("elevation_m", "aspect_deg", "latitude", "longitude")
DATE_FEATURES = ("day_of_year", "weekend")
SURFACE_VARIABLES = ("temperature_2m_c", "lapse_rate_c_per_km", "humidity_pct",
                     "cloud_cover_pct", "boundary_layer_height_m", "cape_j_per_kg",
                     "pressure_hpa")
START_DATE = np.datetime64("2022-01-01")


def weather_feature_names() -> list[str]:
    names = []
    for hour in HOURS:
        for level in LEVELS_HPA:
            names += [f"wind_speed_{level}hpa_{hour}h", f"wind_dir_{level}hpa_{hour}h"]
        names += [f"{var}_{hour}h" for var in SURFACE_VARIABLES]
    return names


@dataclass(frozen=True)
class Simulation:
    columns: dict[str, np.ndarray]   # site_id, day, features, labels, distance_km
    feature_names: list[str]


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    noise = rng.normal(0.0, sd * np.sqrt(1 - phi**2), n)
    out = np.empty(n)
    out[0] = rng.normal(0.0, sd)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + noise[i]
    return out


def simulate(n_sites: int = 60, n_days: int = 730, seed: int = 0) -> Simulation:
    """Simulate every (site, day) pair, rows ordered by day then site."""
    rng = np.random.default_rng(seed)
    elevation = rng.uniform(300, 2500, n_sites)
    aspect = rng.uniform(0, 360, n_sites)
    latitude = rng.uniform(44.0, 48.0, n_sites)
    longitude = rng.uniform(6.0, 16.0, n_sites)
    quality = rng.normal(0.0, 0.6, n_sites)

    day = np.arange(n_days)
    doy = ((START_DATE + day).astype("datetime64[D]") - (START_DATE + day).astype("datetime64[Y]")
           ).astype(int) + 1
    weekend = (((START_DATE + day).astype("datetime64[D]").view("int64") - 4) % 7 >= 5)
    season = np.sin(2 * np.pi * (doy - 80) / 365.0)
    pressure_anom = _ar1(rng, n_days, 0.7, 6.0)
    humid_anom = _ar1(rng, n_days, 0.6, 1.0)
    wind_anom = _ar1(rng, n_days, 0.5, 1.0)
    wind_dir_day = (270 + np.cumsum(rng.normal(0, 25, n_days))) % 360

    # Broadcast to (day, site): rows are ordered day-major.
    shape = (n_days, n_sites)
    d = lambda v: np.broadcast_to(v[:, None], shape)  # noqa: E731 - per-day value
    s = lambda v: np.broadcast_to(v[None, :], shape)  # noqa: E731 - per-site value
    noise = lambda sd: rng.normal(0.0, sd, shape)    # noqa: E731

    weather: dict[str, np.ndarray] = {}
    for hour, hour_frac in zip(HOURS, (0.4, 0.9, 1.0)):
        for i, level in enumerate(LEVELS_HPA):
            speed = 10 + 8 * d(wind_anom) + 5 * i + 2 * hour_frac + noise(3)
            weather[f"wind_speed_{level}hpa_{hour}h"] = np.clip(speed * (1 + 0.4 * i), 0, None)
            weather[f"wind_dir_{level}hpa_{hour}h"] = (d(wind_dir_day) + 10 * i + noise(15)) % 360
        lapse = 5.5 + 1.5 * d(season) * hour_frac + 0.4 * d(humid_anom) + noise(0.6)
        humidity = np.clip(60 + 15 * d(humid_anom) - 10 * d(season) - 8 * hour_frac + noise(6), 10, 100)
        blh = 400 + 1200 * (0.5 + 0.5 * d(season)) * hour_frac + 150 * (lapse - 6) \
            - 120 * d(humid_anom) + noise(150)
        weather[f"temperature_2m_c_{hour}h"] = (8 + 12 * d(season) - 6.5 * s(elevation) / 1000
                                                + 4 * hour_frac + noise(1.5))
        weather[f"lapse_rate_c_per_km_{hour}h"] = lapse
        weather[f"humidity_pct_{hour}h"] = humidity
        weather[f"cloud_cover_pct_{hour}h"] = np.clip(
            30 + 25 * d(humid_anom) - 1.5 * d(pressure_anom) + noise(12), 0, 100)
        weather[f"boundary_layer_height_m_{hour}h"] = np.clip(blh, 100, 3500)
        weather[f"cape_j_per_kg_{hour}h"] = np.clip(
            300 * d(season) * hour_frac + 250 * d(humid_anom) + 150 * (lapse - 6) + noise(200), 0, None)
        weather[f"pressure_hpa_{hour}h"] = 1013 + d(pressure_anom) - 0.12 * s(elevation) + noise(1)

    relu = lambda x: np.maximum(x, 0.0)  # noqa: E731
    wind12 = weather["wind_speed_850hpa_12h"]
    upslope = np.cos(np.deg2rad(weather["wind_dir_850hpa_12h"] - s(aspect)))
    z = (1.2 * np.tanh((weather["boundary_layer_height_m_15h"] - 1200) / 600)
         + 0.6 * (weather["lapse_rate_c_per_km_12h"] - 6.5)
         + 0.5 * d(season)
         - (weather["cloud_cover_pct_12h"] - 40) / 60
         - 0.8 * relu(wind12 - 20) / 10
         - 0.5 * relu(weather["cape_j_per_kg_15h"] - 1200) / 600
         + 0.4 * upslope * np.minimum(wind12, 20) / 20
         + s(quality) + 0.3 * (s(elevation) - 1000) / 1000
         + 0.25 * d(weekend.astype(float))
         + noise(0.5))
    distance = np.where(z > 0, 130 * (1 - np.exp(-np.maximum(z, 0) / 1.2)) * np.exp(noise(0.25)), 0.0)

    site_cols = [s(v) for v in (elevation, aspect, latitude, longitude)]
    date_cols = [d(doy.astype(float)), d(weekend.astype(float))]
    names = list(SITE_FEATURES) + list(DATE_FEATURES) + weather_feature_names()
    stacked = np.stack(site_cols + date_cols + [weather[n] for n in weather_feature_names()], axis=-1)
    labels = distance[..., None] > np.asarray(THRESHOLDS_KM, dtype=float)
    columns = {
        "site_id": s(np.arange(n_sites, dtype=np.int32)).reshape(-1),
        "day": d(day.astype(np.int32)).reshape(-1),
        "features": stacked.reshape(-1, len(names)).astype(np.float32),
        "labels": labels.reshape(-1, len(THRESHOLDS_KM)).astype(np.float32),
        "distance_km": distance.reshape(-1).astype(np.float32),
    }
    return Simulation(columns=columns, feature_names=names)


def write(out_dir: str | Path, *, n_sites: int = 60, n_days: int = 730, seed: int = 0,
          fmt: str = "parquet", val_fraction: float = 0.2, test_fraction: float = 0.1,
          rows_per_shard: int = 8192) -> dict:
    """Simulate, split by date, write shards and `meta.json`; returns the meta dict.

    The last `test_fraction` of the days are a test split no sweep reads (`raysweep evaluate`
    scores the final model on it), the `val_fraction` before them validation, the rest train.
    """
    if n_sites < 1 or n_days < 5:
        raise shards.DataError("need at least 1 site and 5 days (--sites, --days)")
    if not 0 < val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise shards.DataError(f"val_fraction must lie in (0, 1) and test_fraction in [0, 1), leaving days to "
                               f"train on; got {val_fraction} and {test_fraction}")
    sim = simulate(n_sites=n_sites, n_days=n_days, seed=seed)
    first_test_day = int(round(n_days * (1 - test_fraction)))
    first_val_day = first_test_day - int(round(n_days * val_fraction))
    day = sim.columns["day"]
    is_train = day < first_val_day
    out_dir = Path(out_dir)
    rows = {}
    for split, mask in (("train", is_train), ("val", (day >= first_val_day) & (day < first_test_day)),
                        ("test", day >= first_test_day)):
        if split == "test" and not mask.any():
            continue
        part = {k: v[mask] for k, v in sim.columns.items()}
        shards.write_split(part, out_dir, split, fmt=fmt, rows_per_shard=rows_per_shard)
        rows[split] = int(mask.sum())
    mean, std = shards.standardisation(sim.columns["features"][is_train])
    n_site_f, n_date_f = len(SITE_FEATURES), len(DATE_FEATURES)
    meta = {
        "workload": "glideator",
        "format": fmt,
        "generator": {"name": "glideator", "seed": seed, "sites": n_sites, "days": n_days},
        "columns": {"id": "site_id", "features": "features", "labels": "labels"},
        "feature_names": sim.feature_names,
        "feature_groups": {
            "site": sim.feature_names[:n_site_f],
            "date": sim.feature_names[n_site_f:n_site_f + n_date_f],
            "weather": sim.feature_names[n_site_f + n_date_f:],
        },
        "target_names": [f"distance_gt_{t}km" for t in THRESHOLDS_KM],
        "thresholds_km": list(THRESHOLDS_KM),
        "n_sites": n_sites,
        "rows": rows,
        "split": {"by": "day", "first_val_day": first_val_day,
                  "train_dates": [str(START_DATE), str(START_DATE + first_val_day - 1)],
                  "val_dates": [str(START_DATE + first_val_day), str(START_DATE + first_test_day - 1)],
                  **({"first_test_day": first_test_day,
                      "test_dates": [str(START_DATE + first_test_day), str(START_DATE + n_days - 1)]}
                     if first_test_day < n_days else {})},
        "scaler": {"fitted_on": "train", "mean": mean, "std": std},
        "positive_rate": [round(float(x), 4) for x in sim.columns["labels"][is_train].mean(axis=0)],
    }
    shards.write_meta(out_dir, meta)
    return meta
