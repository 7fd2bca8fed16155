"""What lr-find and io-search write back: a spec that validates and says what changed."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest

from raysweep import spec
from raysweep.phases import io_search, lr_find

ROOT = Path(__file__).resolve().parents[2]


def test_lr_find_writes_a_spec_with_narrowed_bounds(raw_spec, tmp_path):
    raw = copy.deepcopy(raw_spec)
    raw["params"]["learning_rate"]["role"] = "scientific"
    out = lr_find.write_spec(spec.validate(raw, source="s.yaml"), 2e-3, 2e-2, tmp_path / "narrow.yaml")
    written = spec.load(out)
    (lr,) = [p for p in written.params if p.name == "learning_rate"]
    assert (lr.type, lr.low, lr.high, lr.role) == ("loguniform", 2e-3, 2e-2, "scientific")
    assert out.read_text().startswith("# s.yaml with the learning-rate range suggested by `raysweep lr-find`")


def test_lr_find_respaces_an_lr_sweep_grid(tmp_path):
    sweep_spec = spec.load(ROOT / "search_spaces" / "glideator_lr_sweep.yaml", check_data=False)
    written = spec.load(lr_find.write_spec(sweep_spec, 1e-3, 1e-1, tmp_path / "s.yaml"), check_data=False)
    (lr,) = [p for p in written.params if p.name == "learning_rate"]
    assert lr.type == "grid" and lr.role == "scientific"
    assert lr.values[0] == 1e-3 and lr.values[-1] == 1e-1 and len(lr.values) == 8
    ratios = [b / a for a, b in zip(lr.values, lr.values[1:])]
    assert max(ratios) / min(ratios) < 1.3, "log-spaced (up to rounding to two digits)"


def test_lr_find_moves_a_fixed_learning_rate_into_params(raw_spec, tmp_path):
    raw = copy.deepcopy(raw_spec)
    raw["params"] = {"cross_layers": {"type": "randint", "low": 1, "high": 3}}
    raw["fixed"]["learning_rate"] = 1e-3
    written = spec.load(lr_find.write_spec(spec.validate(raw), 1e-4, 1e-3, tmp_path / "s.yaml"))
    assert "learning_rate" not in written.fixed
    assert [p.name for p in written.params] == ["cross_layers", "learning_rate"]


def test_io_search_writes_the_fastest_settings_where_they_belong(raw_spec, tmp_path, tiny_data):
    raw = copy.deepcopy(raw_spec)
    raw["params"]["batch_size"] = {"type": "choice", "values": [64, 128]}
    raw["fixed"].pop("batch_size")
    table = io_search.rank(pd.DataFrame([
        {"batch_size": 64, "data_path": str(tiny_data), "materialize": False, "cpus_per_worker": 1,
         "samples_per_s": 10.0, "error": ""},
        {"batch_size": 256, "data_path": str(tiny_data), "materialize": True, "cpus_per_worker": 1,
         "samples_per_s": 50.0, "error": ""},
        {"batch_size": 512, "data_path": str(tiny_data), "materialize": True, "cpus_per_worker": 1,
         "samples_per_s": None, "error": "boom"},
    ]).assign(**{m: None for m in io_search.MEASURES if m != io_search.OBJECTIVE}))
    assert table["batch_size"].tolist() == [256, 64, 512], "fastest first, failures last"
    best = io_search.best_settings(table)
    assert best == {"batch_size": 256, "data_path": str(tiny_data), "materialize": True, "cpus_per_worker": 1}
    written = spec.load(io_search.write_spec(spec.validate(raw), best, tmp_path / "fast.yaml"))
    assert written.fixed["batch_size"] == 256 and "batch_size" not in written.tuned
    assert written.data.materialize is True and written.resources.cpus_per_worker == 1


def test_io_search_needs_its_section(raw_spec):
    with pytest.raises(spec.SpecError, match="io_search: missing"):
        io_search.run(spec.validate(raw_spec))


def test_io_search_without_its_section_is_a_clean_cli_error(raw_spec, tmp_path, capsys):
    import yaml

    from raysweep import cli

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw_spec))
    assert cli.main(["io-search", str(path)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "io_search: missing" in err and "Traceback" not in err
    assert not (tmp_path / "results").exists(), "nothing is started or written for a bad spec"
