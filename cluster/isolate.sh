#!/bin/bash
# usage: isolate.sh <private-dir> <command> [args...]
# For the tests that start Ray clusters of their own (the fake autoscaler, `make cluster-smoke`):
# `ray stop` kills every Ray process it can see, so those run where it can see only theirs.
# Runs <command> (as root) in fresh PID + mount + network namespaces:
#  - own loopback only (127.0.0.0/8; 127.0.0.2 etc. usable), no route out, no port clashes;
#  - private /tmp/ray (ray_current_cluster, session dirs, local-provider state) and /dev/shm;
#  - `ray stop` / AutoscalingCluster.shutdown() inside can only see processes inside;
#  - every process started inside is SIGKILLed by the kernel when <command> exits.
set -e
P=$(realpath -m "$1"); shift
mkdir -p "$P/ray" /tmp/ray
exec unshare --mount --pid --net --fork --mount-proc --propagation private --kill-child \
  bash -c 'ip link set lo up && mount --bind "$0/ray" /tmp/ray && mount -t tmpfs -o size=8g tmpfs /dev/shm && exec "$@"' "$P" "$@"
