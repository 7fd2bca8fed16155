"""The tuning phases, one module per command: `sweep` (run, resume), `lr_find`, `io_search`.

Each opens an experiment directory (raysweep.experiment), starts or joins Ray
(raysweep.runner.session) and runs Tune trials built by the run machinery (raysweep.runner).
"""
