#!/bin/bash
# `make cluster-smoke`: `ray up cluster.local.yaml` for real on this one machine, its nodes
# installing raysweep from the wheel (`make wheel`, dist/cluster/), then a sweep submitted with
# `ray job submit`, checked to have trained on both nodes with the wheel's raysweep and to have
# left its results in the shared storage, then `ray down`.
#
# The head (127.0.0.1) and the worker (127.0.0.2) are each an sshd in its own PID and mount
# namespace, inside cluster/isolate.sh's namespaces: `ray stop`, which kills every Ray process it
# can see, sees only the node's own, and the kernel ends everything when this script exits.
# root's home is a private directory too (keys, ~/.bashrc, ~/.ray), so nothing is left behind.
# Needs root, openssh-server and rsync (the Makefile installs them), `make install` and `make wheel`.
#
# The nodes' Python is a venv of their own, which sees the packages of raysweep's venv (torch,
# Ray, ...) but not raysweep: a node gets torch and Ray as from PyPI without the downloads (the
# namespaces have no network), and raysweep only as the setup commands install it, from the wheel.
# Trials run three at a time on a head of one CPU and a worker of two, and each lasts long enough
# (the demo dataset, 30 epochs) for the worker's trial processes to start while there is work
# left: Tune reuses a trial's process (reuse_actors), so the head's, once free, takes over trials
# whose process is still starting. With ten epochs, on a machine busy with other tests (a load of
# 12 on 2 cores), the worker's processes took 30 s to start and the head ran all six trials.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN=$REPO/.venv/bin

if [ -z "${RAYSWEEP_SMOKE_WORK:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "cluster-smoke needs root (sshd, namespaces)" >&2; exit 2; }
  [ "$(ls "$REPO"/dist/cluster/raysweep-*.whl 2>/dev/null | wc -l)" = 1 ] || \
    { echo "cluster-smoke installs dist/cluster/raysweep-*.whl on the nodes: run \`make wheel\` first" >&2; exit 2; }
  WORK=$(mktemp -d /tmp/rs-smoke-XXXX)
  trap 'rm -rf "$WORK"' EXIT
  RAYSWEEP_SMOKE_WORK=$WORK "$REPO/cluster/isolate.sh" "$WORK/ns" "$0"
  exit $?
fi

WORK=$RAYSWEEP_SMOKE_WORK
started=$(date +%s)
step() { echo "[$(( $(date +%s) - started ))s] $*"; }

# A private /run (sshd's privilege-separation directory), and root's home as an overlay whose
# writes (keys, ~/.bashrc, ~/.ray) land in WORK: the Python the venv links to stays readable.
mount -t tmpfs tmpfs /run && mkdir -p /run/sshd
mkdir -p "$WORK/home_upper" "$WORK/home_work"
mount -t overlay overlay -o "lowerdir=/root,upperdir=$WORK/home_upper,workdir=$WORK/home_work" /root
export HOME=/root
mkdir -p ~/.ssh ~/.ray && chmod 700 ~/.ssh

step "keys and one sshd per node"
ssh-keygen -q -t ed25519 -N '' -f ~/.ssh/raysweep_cluster_key
cp ~/.ssh/raysweep_cluster_key.pub ~/.ssh/authorized_keys
ssh-keygen -q -t ed25519 -N '' -f "$WORK/hostkey"
for node in head:127.0.0.1 worker:127.0.0.2; do
  name=${node%%:*} address=${node#*:}
  mkdir -p "$WORK/$name-ray"
  cat > "$WORK/sshd_$name.conf" <<CONF
ListenAddress $address
Port 22
HostKey $WORK/hostkey
PidFile $WORK/sshd_$name.pid
AuthorizedKeysFile /root/.ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 100
MaxSessions 100
CONF
  # Each node sees only its own processes. The worker has its own /tmp/ray too, as on a machine
  # of its own; the head shares this script's, as when `ray up` runs on the head machine, so that
  # the checks below can attach to the cluster there.
  [ "$name" = worker ] && private_tmp="mount --bind '$WORK/$name-ray' /tmp/ray &&" || private_tmp=""
  unshare --pid --mount --fork --mount-proc --propagation private \
    bash -c "$private_tmp exec /usr/sbin/sshd -D -e -f '$WORK/sshd_$name.conf'" > "$WORK/sshd_$name.log" 2>&1 &
done

step "the nodes' venv (raysweep's dependencies, no raysweep)"
NODE_VENV=$WORK/node-venv
"$BIN/python" -m venv --without-pip "$NODE_VENV"
mkdir "$WORK/node-deps"
for entry in "$("$BIN/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"/*; do
  case ${entry##*/} in raysweep*|__editable__*|*.pth) ;; *) ln -s "$entry" "$WORK/node-deps/";; esac
done
echo "$WORK/node-deps" > "$("$NODE_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/node-deps.pth"
# Ray's command, as pip would have written it: a node's Ray runs its workers with this Python.
sed "1s|.*|#!$NODE_VENV/bin/python|" "$BIN/ray" > "$NODE_VENV/bin/ray" && chmod +x "$NODE_VENV/bin/ray"
! "$NODE_VENV/bin/python" -c "import raysweep" 2>/dev/null || { echo "the nodes' venv sees a raysweep before the wheel" >&2; exit 1; }

# What every node's shell gets (ray up runs its commands through ~/.bashrc): the nodes' venv
# (python3, pip and ray), and one token for every node (cluster.local.yaml ships ~/.ray/auth_token).
echo "export PATH=$NODE_VENV/bin:\$PATH" >> ~/.bashrc
"$BIN/python" -c "import secrets; print(secrets.token_hex(32))" > ~/.ray/auth_token
export PATH=$BIN:$PATH RAY_AUTH_MODE=token
for address in 127.0.0.1 127.0.0.2; do
  for _ in $(seq 50); do ssh -q -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
      -i ~/.ssh/raysweep_cluster_key root@$address true && break; sleep 0.2; done
done

step "demo data in the shared storage"
raysweep data glideator --out "$WORK/shared/data" >/dev/null

cd "$REPO"
step "ray up"
ray up -y --no-config-cache cluster.local.yaml > "$WORK/ray_up.log" 2>&1 || { tail -40 "$WORK/ray_up.log"; exit 1; }
[[ "$("$NODE_VENV/bin/python" -m pip show raysweep 2>&1)" == *"Location: $NODE_VENV/"* ]] || \
  { echo "the head's setup commands did not install the wheel into the nodes' venv" >&2; tail -40 "$WORK/ray_up.log"; exit 1; }
step "waiting for the worker to join"
"$BIN/python" - "$NODE_VENV" 2>"$WORK/join.log" <<'PY' || { cat "$WORK/join.log"; exit 1; }
import sys, time
from pathlib import Path
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
ray.init(address="127.0.0.1:6379", log_to_driver=False)
deadline = time.monotonic() + 180
while sum(n["Alive"] for n in ray.nodes()) < 2:
    if time.monotonic() > deadline:
        raise SystemExit("the worker node did not join within 180 s")
    time.sleep(1)

@ray.remote(num_cpus=0)
def raysweep_here() -> str:
    import torch  # noqa: F401 - what a trial imports first: read once here, it loads faster for the sweep
    import raysweep
    return raysweep.__file__

# The Python each node's Ray runs its workers (and so the trials) with imports the wheel's raysweep.
found = {n["NodeManagerAddress"]: raysweep_here.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
         n["NodeID"], soft=False)).remote() for n in ray.nodes() if n["Alive"]}
found = {address: ray.get(ref) for address, ref in sorted(found.items())}
print("raysweep on the nodes:", found)
assert all(Path(f).is_relative_to(sys.argv[1]) for f in found.values()), f"not the wheel's raysweep: {found}"
PY

step "ray job submit"
ray job submit --address http://127.0.0.1:8265 --working-dir "$REPO" -- \
  raysweep run search_spaces/glideator_asha_random.yaml --set data.path="$WORK/shared/data" \
  --set storage_path="$WORK/shared/results" --set search.num_samples=6 --set fixed.epochs=30 \
  --set scheduler.type=fifo --set resources.max_concurrent_trials=3 > "$WORK/job.log" 2>&1 \
  || { tail -60 "$WORK/job.log"; exit 1; }
grep -E "^raysweep: sweep|^\[[0-9]+/|^results:" "$WORK/job.log" || true

step "checking the results"
"$BIN/python" - "$WORK/shared/results" 2>"$WORK/check.log" <<'PY' || { cat "$WORK/check.log"; exit 1; }
import sys
from pathlib import Path
import ray
from raysweep import analysis
experiments = list(Path(sys.argv[1]).glob("glideator_asha_random-*"))
assert len(experiments) == 1, f"one experiment in the shared storage, found {experiments}"
trials = analysis.load(experiments[0]).trials
ray.init(address="127.0.0.1:6379", log_to_driver=False)
ips = {n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes()}
used = sorted({ips[node] for node in trials["node_id"].dropna()})
print(f"{len(trials)} trials ({', '.join(sorted(set(trials['status'])))}) on nodes {used}")
assert len(trials) == 6 and (trials["status"] == "finished").all(), trials
assert used == ["127.0.0.1", "127.0.0.2"], f"trials ran on both nodes, found {used}"
assert (experiments[0] / "trials.parquet").is_file() and (experiments[0] / "raysweep_spec.yaml").is_file()
PY

step "ray down"
ray down -y cluster.local.yaml > "$WORK/ray_down.log" 2>&1 || { tail -20 "$WORK/ray_down.log"; exit 1; }
step "cluster-smoke passed"
