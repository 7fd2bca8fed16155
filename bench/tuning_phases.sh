#!/usr/bin/env bash
# The tuning phases on the demo data, timed: lr-find, the full LR grid it is compared with,
# and io-search. Run from the project root after `make data`; about 15 minutes on 2 CPUs.
#   bash bench/tuning_phases.sh        # logs and results in bench/out/phases/
set -euo pipefail
BIN=.venv/bin
OUT=bench/out/phases
RESULTS=$OUT/results
mkdir -p "$OUT"
[ -f data/glideator/meta.json ] || $BIN/raysweep data glideator --out data/glideator
[ -f data/glideator_wds/meta.json ] || $BIN/raysweep data glideator --out data/glideator_wds --format webdataset

timed() {  # timed NAME COMMAND...: run, keep the output, record the wall time
  local name=$1; shift
  local start end
  start=$(date +%s.%N)
  "$@" > "$OUT/$name.log" 2>&1
  end=$(date +%s.%N)
  printf '%s: %.1f s\n' "$name" "$(echo "$end - $start" | bc)" | tee -a "$OUT/times.txt"
}

: > "$OUT/times.txt"
timed lr_find $BIN/raysweep lr-find search_spaces/glideator_lr_sweep.yaml \
  --set storage_path=$RESULTS --write-spec $OUT/lr_sweep_narrowed.yaml
timed lr_grid $BIN/raysweep run search_spaces/glideator_lr_sweep.yaml --set storage_path=$RESULTS
grid_dir=$(ls -d $RESULTS/glideator_lr_sweep-2* | grep -v lr_find | tail -n 1)
$BIN/raysweep rank "$grid_dir" --group-by learning_rate --top 0 > "$OUT/lr_grid_rank.txt"
timed io_search $BIN/raysweep io-search search_spaces/glideator_io_search.yaml \
  --set storage_path=$RESULTS --write-spec $OUT/io_fastest.yaml
tail -n 40 "$OUT/lr_find.log" "$OUT/io_search.log" "$OUT/lr_grid_rank.txt"
