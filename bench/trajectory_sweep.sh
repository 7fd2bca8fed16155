#!/usr/bin/env bash
# The shipped trajectory LSTM sweep on the demo data, timed end to end, and the cost per epoch
# of the seed's model sizes. Run from the project root; about 25 minutes on 2 CPUs.
#   bash bench/trajectory_sweep.sh     # logs and results in bench/out/trajectory/
set -euo pipefail
BIN=.venv/bin
OUT=bench/out/trajectory
mkdir -p "$OUT"
[ -f data/trajectory/meta.json ] || $BIN/raysweep data trajectory --out data/trajectory
start=$(date +%s.%N)
$BIN/raysweep run search_spaces/trajectory_lstm_asha.yaml --set storage_path=$OUT/results > "$OUT/sweep.log" 2>&1
end=$(date +%s.%N)
printf 'trajectory_lstm_asha: %.1f s\n' "$(echo "$end - $start" | bc)" | tee "$OUT/times.txt"
experiment=$(ls -d $OUT/results/trajectory_lstm_asha-2* | tail -n 1)
$BIN/raysweep rank "$experiment" --top 0 > "$OUT/rank.txt"
$BIN/raysweep rank "$experiment" --top 0 --metric val_r2 --mode max > "$OUT/rank_r2.txt"
$BIN/python - "$experiment" > "$OUT/epochs.txt" <<'PY'
import json, pathlib, sys
# Per trial: seconds per epoch (Tune's time_this_iter_s) and the last latency measured.
for result in sorted(pathlib.Path(sys.argv[1]).glob("*/result.json")):
    rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
    cfg = rows[0]["config"]
    per_epoch = sum(r["time_this_iter_s"] for r in rows) / len(rows)
    print(f"hidden {cfg['hidden_size']:>3} x {cfg['num_layers']}  batch {cfg['batch_size']:>3}  "
          f"epochs {rows[-1]['epoch']:>2}  s/epoch {per_epoch:6.1f}  latency_ms {rows[-1]['latency_ms']:.2f}  "
          f"val_mae {min(r['val_mae'] for r in rows):.2f}  restored {rows[-1].get('restored_best_epoch', '-')}")
PY
cat "$OUT/rank.txt" "$OUT/epochs.txt"
