"""Search spaces: conditional branches, roles, given points, and the searchers built from them.

The searchers are Ray Tune's own objects, asked for suggestions directly (no Ray start).
"""

from __future__ import annotations

import copy

import pytest

from raysweep import spec
from raysweep.runner import tuning
from raysweep.search import space

CONDITIONAL = {
    "architecture": {"type": "choice", "values": ["dcn", "deep"], "role": "scientific",
                     "when": {"dcn": {"cross_layers": {"type": "randint", "low": 1, "high": 3}}}},
    "deep_hidden_units": {"type": "choice", "values": [[16, 8], [32, 16]]},
    "learning_rate": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
}


@pytest.fixture
def conditional(raw_spec):
    raw = copy.deepcopy(raw_spec)
    raw["params"] = copy.deepcopy(CONDITIONAL)
    raw["fixed"].pop("deep_hidden_units")
    return raw


def problems(raw) -> list[str]:
    with pytest.raises(spec.SpecError) as info:
        spec.validate(raw, source="s.yaml")
    return info.value.problems


def suggestions(s: spec.Spec, n: int) -> list[dict]:
    searcher = tuning.searcher(s, max_concurrent=n, points=list(s.search.points_to_evaluate)).searcher
    return [space.decode(searcher.suggest(f"t{i}"), s.params) for i in range(n)]


def test_branches_parse_with_roles(conditional):
    s = spec.validate(conditional)
    (arch, _, _) = s.params
    assert arch.role == "scientific" and s.scientific == ["architecture"]
    assert [sub.name for sub in arch.branch("dcn")] == ["cross_layers"] and arch.branch("deep") == ()
    assert s.tuned == ["architecture", "cross_layers", "deep_hidden_units", "learning_rate"]


@pytest.mark.parametrize("algorithm", ["random", "optuna", "hyperopt"])
def test_conditional_space_reaches_both_branches_and_only_their_parameters(conditional, algorithm):
    conditional["search"] = {"algorithm": algorithm, "num_samples": 24, "seed": 0}
    configs = suggestions(spec.validate(conditional), 24)
    dcn = [c for c in configs if c["architecture"] == "dcn"]
    deep = [c for c in configs if c["architecture"] == "deep"]
    assert dcn and deep, "both branches are sampled"
    assert all(c["cross_layers"] in (1, 2, 3) for c in dcn)
    assert all("cross_layers" not in c for c in deep), "a sub-parameter exists only on its branch"
    assert {tuple(c["deep_hidden_units"]) for c in configs} == {(16, 8), (32, 16)}, "JSON choices decode"


@pytest.mark.parametrize("algorithm", ["random", "optuna", "hyperopt"])
def test_searcher_suggests_the_same_sequence_for_a_seed(conditional, algorithm):
    conditional["search"] = {"algorithm": algorithm, "num_samples": 8, "seed": 3}
    s = spec.validate(conditional)
    assert suggestions(s, 8) == suggestions(s, 8)
    other = spec.validate({**conditional, "search": {**conditional["search"], "seed": 4}})
    assert suggestions(other, 8) != suggestions(s, 8)


@pytest.mark.parametrize("algorithm", ["random", "optuna", "hyperopt"])
def test_given_points_come_first(conditional, algorithm):
    points = [{"architecture": "deep", "deep_hidden_units": [32, 16], "learning_rate": 5e-3},
              {"architecture": "dcn", "cross_layers": 3, "deep_hidden_units": [16, 8], "learning_rate": 2e-4}]
    conditional["search"] = {"algorithm": algorithm, "num_samples": 4, "seed": 0, "points_to_evaluate": points}
    first = suggestions(spec.validate(conditional), 3)[:2]
    for got, want in zip(first, points):
        assert {k: got[k] for k in want if k != "learning_rate"} == {k: v for k, v in want.items() if k != "learning_rate"}
        assert got["learning_rate"] == pytest.approx(want["learning_rate"])
    assert "cross_layers" not in first[0]


def test_points_outside_the_space_are_reported(conditional):
    conditional["search"]["points_to_evaluate"] = [
        {"architecture": "deep", "cross_layers": 2, "learning_rate": 1.0},
        {"learnig_rate": 1e-3},
    ]
    found = problems(conditional)
    assert any("points_to_evaluate[0].learning_rate: 1.0 lies outside its search space [0.0001, 0.01]" in p
               for p in found)
    assert any("points_to_evaluate[0].cross_layers: exists only on another branch of architecture" in p
               for p in found)
    assert any("points_to_evaluate[1].learnig_rate: not a tuned parameter" in p for p in found)


def test_bad_branches_and_roles(conditional):
    conditional["params"]["learning_rate"]["when"] = {1e-3: {}}
    conditional["params"]["architecture"]["when"]["dnc"] = {}
    conditional["params"]["architecture"]["when"]["dcn"]["cross_layers"]["role"] = "scientific"
    conditional["params"]["deep_hidden_units"]["role"] = "main"
    found = problems(conditional)
    assert any("params.learning_rate.when: only a `type: choice` parameter can have branches" in p for p in found)
    assert any("params.architecture.when.dnc: 'dnc' is not one of the values ['dcn', 'deep']" in p for p in found)
    assert any("when.dcn.cross_layers.role: a branch's sub-parameter cannot be scientific" in p for p in found)
    assert any("params.deep_hidden_units.role: unknown role 'main'" in p for p in found)


def test_workload_choices_are_checked(raw_spec):
    raw_spec["fixed"]["architecture"] = "dnc"
    found = problems(raw_spec)
    assert any("fixed.architecture: unknown value 'dnc'. Did you mean 'dcn'? Known: dcn, deep." in p for p in found)


def test_grid_search_cannot_enumerate_branches(conditional):
    conditional["search"] = {"algorithm": "grid"}
    conditional["params"]["learning_rate"] = {"type": "grid", "values": [1e-3]}
    found = problems(conditional)
    assert any("params.architecture.when: search.algorithm 'grid' takes no conditional branches" in p for p in found)


def test_decode_lifts_hyperopt_branches_and_drops_inactive_ones(conditional):
    params = spec.validate(conditional).params
    nested = {"architecture__branch": {"architecture": "dcn", "cross_layers": 2}, "deep_hidden_units": "[16, 8]"}
    assert space.decode(nested, params) == {"architecture": "dcn", "cross_layers": 2, "deep_hidden_units": [16, 8]}
    assert space.decode({"architecture": "deep", "cross_layers": 2}, params) == {"architecture": "deep"}


def test_baseline_is_the_middle_of_the_space(conditional):
    params = spec.validate(conditional).params
    values = space.baseline(params, skip=["deep_hidden_units"])
    assert values == {"architecture": "dcn", "cross_layers": 2, "learning_rate": pytest.approx(1e-3)}
