#!/bin/bash
# Run inside cluster/isolate.sh by test_autoscaling.py: a fake autoscaling cluster whose head
# has no GPU, a sweep whose trials each want one, and the scale-down after it.
#   autoscaling_sweep.sh WORK_DIR SPEC.json OUT.json
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$1 SPEC=$2 OUT=$3
BIN=$(dirname "$(command -v python)")
export HOME=$WORK/home   # the head's ~/ray_bootstrap_config.yaml, as `ray up` leaves it
mkdir -p "$HOME/.ray"
cp "$HERE/fake_autoscaling.yaml" "$HOME/ray_bootstrap_config.yaml"
# This cluster's own token, whatever the calling environment says about authentication.
python -c "import secrets; print(secrets.token_hex(32))" > "$HOME/.ray/auth_token"
export RAY_AUTH_MODE=token
unset RAY_AUTH_TOKEN RAY_AUTH_TOKEN_PATH
# The fake provider, polled every second, on the v1 autoscaler (v2's monitor crashes with it in 2.60).
export RAY_FAKE_CLUSTER=1 AUTOSCALER_UPDATE_INTERVAL_S=1 RAY_enable_autoscaler_v2=0
"$BIN/ray" start --head --port=6379 --num-cpus=1 --resources='{"raysweep_trial_driver": 100}' \
  --autoscaling-config="$HOME/ray_bootstrap_config.yaml" --include-dashboard=false >"$WORK/ray_start.log" 2>&1 \
  || { tail -5 "$WORK/ray_start.log" >&2; exit 1; }
python "$HERE/autoscaling_sweep.py" "$SPEC" "$OUT" 127.0.0.1:6379
"$BIN/ray" stop --force >/dev/null 2>&1 || true
