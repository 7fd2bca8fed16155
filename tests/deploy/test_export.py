"""Export the champion of a real small sweep (conftest's `experiment`), and predict with it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from raysweep import cli
from raysweep.analysis import store

pytestmark = pytest.mark.slow


def test_export_writes_the_champion_and_predict_reproduces_its_metric(experiment, tiny_data, tmp_path, capsys):
    to = tmp_path / "champion"
    assert cli.main(["export", str(experiment), "--to", str(to)]) == 0
    assert {"model.pt", "state_dict.pt", "meta.json", "model_card.json"} <= {p.name for p in to.iterdir()}
    card = json.loads((to / "model_card.json").read_text())
    best = store.load(experiment).trials.sort_values("best_val_loss").iloc[0]
    assert card["champion"]["trial"] == best["trial"]
    assert card["champion"]["value"] == pytest.approx(best["best_val_loss"])
    assert card["config"]["learning_rate"] == pytest.approx(best["learning_rate"])
    assert card["inference"]["latency_ms_one_row"] > 0 and card["versions"]["torch"] == torch.__version__
    assert [i["name"] for i in card["inputs"]] == ["site_id", "features"]
    state = torch.load(to / "state_dict.pt", weights_only=True)
    assert "head.weight" in state

    # The exported weights are the champion's best epoch: predicting val reproduces its best val_loss.
    assert cli.main(["predict", str(to), "--data", str(tiny_data), "--out", str(tmp_path / "p.parquet")]) == 0
    out = capsys.readouterr().out
    reported = float(out.split("\n  val_loss ")[1].split()[0])
    assert reported == pytest.approx(best["best_val_loss"], rel=1e-3)
    # The README's three lines, in a fresh interpreter that never imports raysweep.
    snippet = ("import torch\nmodel = torch.jit.load(%r)\n"
               "print(model(torch.zeros(2, dtype=torch.int32), torch.zeros(2, 45)).shape)") % str(to / "model.pt")
    result = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "torch.Size([2, 11])"


def test_export_refuses_a_champion_below_the_threshold(experiment, tmp_path, capsys):
    to = tmp_path / "refused"
    assert cli.main(["export", str(experiment), "--to", str(to), "--metric", "val_auc", "--mode", "max",
                     "--min-metric", "0.999"]) == 1
    err = capsys.readouterr().err
    assert "threshold asks for at least 0.999" in err and "Nothing exported" in err and "Traceback" not in err
    assert not to.exists()
    assert cli.main(["predict", str(tmp_path), "--data", str(tmp_path)]) == 2
    assert "is not an exported model" in capsys.readouterr().err


def test_a_model_familys_data_must_hold_its_columns_in_its_order():
    from raysweep.deploy import model_card

    card = {"inputs": [{"name": "X", "columns": ["a", "b", "c"]}]}

    def meta(*names):
        return {"columns": {"features": "features"}, "feature_names": list(names)}

    assert model_card.family_input_problems(card, meta("a", "b", "c")) == []
    assert model_card.family_input_problems(card, meta("a", "b")) == ["it lacks the column(s) c"]
    assert model_card.family_input_problems(card, meta("a", "b", "c", "d")) == [
        "it has column(s) the model was not trained on: d"]
    assert model_card.family_input_problems(card, meta("b", "a", "c")) == [
        "its columns come in another order than the model's (a, b, c)"]
