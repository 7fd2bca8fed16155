"""The results store's writer keeps a large sweep's driver free: rebuilds are spaced by their cost."""

from __future__ import annotations

from raysweep.analysis import store


def test_a_slow_rebuild_spaces_the_next_one_so_the_store_takes_at_most_a_twentieth(monkeypatch):
    now = [0.0]
    rebuilt = []

    def build(experiment_dir):
        now[0] += 2.0            # a rebuild of a large sweep: 2 s
        rebuilt.append(now[0])
        return None

    monkeypatch.setattr(store, "build", build)
    monkeypatch.setattr(store, "write", lambda experiment_dir, results: None)
    writer = store.StoreWriter("unused", min_interval_s=10.0, clock=lambda: now[0])

    for at in (0.0, 11.0, 39.0, 41.0):   # trials end at these times
        now[0] = max(now[0], at)
        writer.on_trial_complete(0, [], None)
    assert rebuilt == [2.0, 43.0]        # 11 s and 39 s fall within 20 x 2 s of the first
    writer.on_experiment_end([])
    assert len(rebuilt) == 3             # the end always writes


def test_a_quick_rebuild_waits_the_minimum_interval(monkeypatch):
    now = [0.0]
    rebuilt = []
    monkeypatch.setattr(store, "build", lambda experiment_dir: rebuilt.append(now[0]))
    monkeypatch.setattr(store, "write", lambda experiment_dir, results: None)
    writer = store.StoreWriter("unused", min_interval_s=10.0, clock=lambda: now[0])
    for at in (0.0, 5.0, 10.0):
        now[0] = at
        writer.on_trial_error(0, [], None)
    assert rebuilt == [0.0, 10.0]
