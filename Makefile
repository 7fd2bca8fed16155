# The two commands a new user types: `make demo` and `make test`.
# Both create .venv when it is missing and install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build on this machine's disk. Installed first, so that torch's range in
# pyproject.toml is already satisfied and pip downloads no multi-GB CUDA build.
TORCH  ?= torch==2.13.0
DEMO_DATA ?= data/glideator

.PHONY: demo example example-loop test test-fast test-kill lint bench wheel cluster-smoke install data clean browser

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev,tracking,lightning,wandb,comet,onnx]"
	touch $@

data: $(DEMO_DATA)/meta.json

$(DEMO_DATA)/meta.json: $(VENV)/.installed
	$(BIN)/raysweep data glideator --out $(DEMO_DATA)

demo: $(VENV)/.installed $(DEMO_DATA)/meta.json
	$(BIN)/raysweep run search_spaces/glideator_asha_random.yaml --set data.path=$(DEMO_DATA)
	$(BIN)/raysweep report $$(ls -td results/glideator_asha_random-* | head -n 1)

# The README's "Bring your own model": a workload in a file of its own, its data, a sweep.
example: $(VENV)/.installed
	$(BIN)/raysweep data ./examples/linear/linear.py --out data/linear
	$(BIN)/raysweep run examples/linear/spec.yaml

# The README's "Bring your own training loop": a loop of your own (train(cfg, data, session)), its data, a sweep.
example-loop: $(VENV)/.installed
	$(BIN)/raysweep data ./examples/own_loop/own_loop.py --out data/own_loop
	$(BIN)/raysweep run examples/own_loop/spec.yaml

# The report test opens the HTML report in headless Chromium (Debian's package). It is
# installed here when missing, where apt-get and root are at hand; elsewhere that test skips.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; }; }; } || \
	  echo "chromium is not installed: the report's browser test will be skipped"

test: $(VENV)/.installed browser
	$(BIN)/python -m pytest tests

# The suite without the tests that start Ray and run real sweeps (marked slow): seconds, not minutes.
test-fast: $(VENV)/.installed
	$(BIN)/python -m pytest tests -m "not slow"

# `kill -9` of the driver at every event of a sweep (each report, each trial's end), before and
# after the driver's own handling of it, then `resume`: on local storage with random search and
# Optuna, and in a bucket of moto's S3 server (tests/phases/test_kill_points.py; about 40 minutes).
# `make test` kills at a sample of these points.
test-kill: $(VENV)/.installed
	RAYSWEEP_KILL_POINTS=all $(BIN)/python -m pytest tests/phases/test_kill_points.py

# ruff (pyproject.toml [tool.ruff]) and the layer contracts (pyproject.toml [tool.importlinter],
# drawn in docs/architecture.md): a module that imports a layer above its own fails here.
lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench examples
	$(BIN)/lint-imports --no-logo

# The performance tables of BENCHMARKS.md, each measured side by side in one run (about 12
# minutes; JSON in bench/out/): start-up against a plain Optuna study, streaming a dataset twice
# the object store, WebDataset against Parquet, the per-trial overhead of both executors, and the
# four model families on two tables, and the Pareto fronts NSGA-II and TPE find against an exhaustive grid
# (about 8 minutes more).
# Run it on a quiet machine: other work on the CPUs skews the times.
bench: $(VENV)/.installed $(DEMO_DATA)/meta.json
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/streaming.py
	$(BIN)/python bench/webdataset_read.py
	$(BIN)/python bench/trial_overhead.py
	$(BIN)/python bench/model_families.py
	$(BIN)/python bench/multi_objective.py
	$(BIN)/python bench/plan_accuracy.py

# The wheel the cluster files install on every node (cluster.yaml, cluster.local.yaml: `ray up`
# copies dist/cluster/ to each node's ~/raysweep-dist). Built afresh, so the folder holds this
# checkout's wheel only: `python -m build` makes the sdist, then the wheel from it (no build/ left
# in the checkout), with this venv's setuptools (-x: build-system's `wheel` is not needed by it).
wheel: $(VENV)/.installed
	rm -rf dist/cluster
	$(BIN)/python -m build --quiet --no-isolation -x --outdir dist/cluster .
	rm dist/cluster/*.tar.gz
	@ls dist/cluster/*.whl

# `ray up cluster.local.yaml` for real on this machine: two nodes, each an sshd of its own in
# private namespaces that installs the wheel (`make wheel`) into a venv of its own, a sweep
# through `ray job submit`, `ray down` (cluster/smoke.sh; about 2.5 minutes).
# Needs root; installs Debian's openssh-server and rsync when missing.
cluster-smoke: $(VENV)/.installed wheel
	@[ "$$(id -u)" = 0 ] || { echo "make cluster-smoke needs root (sshd, namespaces)" >&2; exit 2; }
	@test -x /usr/sbin/sshd && command -v rsync >/dev/null 2>&1 || \
	  apt-get install -y -qq --no-install-recommends openssh-server rsync >/dev/null 2>&1 || \
	  { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends openssh-server rsync >/dev/null; }
	cluster/smoke.sh

clean:
	rm -rf $(VENV) data results
