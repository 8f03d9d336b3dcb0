#!/usr/bin/env bash
# A Ray cluster as an operator starts one (`ray start --head`, then `ray start --address` on each worker),
# inside a network and PID namespace of its own (tests/test_ray_start.py runs this under `unshare`): its
# servers listen on the namespace's loopback, nothing leaves it, and every process it started dies with it.
# Runs `evolve run --ray-address`, kills one worker node mid-run, and leaves the run in $OUT/run.
# Usage: [KILL_AFTER=N] [BUDGET=N] [CLIENT_AUTH=unset] ray_cluster.sh OUT AUTH   (AUTH: disabled | token;
# KILL_AFTER: kill a worker node once N evaluations finished; CLIENT_AUTH=unset: evolve runs without RAY_AUTH_MODE;
# CLIENT_TOKEN=none: evolve runs where the cluster's token is not)
set -euo pipefail
OUT=$1 AUTH=$2 REPO=$(cd "$(dirname "$0")/../.." && pwd)
ip link set lo up
export HOME=$OUT/home RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=$AUTH PATH=$REPO/.venv/bin:$PATH \
  RAY_raylet_start_wait_time_s=120
mkdir -p "$HOME"
RAYTMP=$(mktemp -d /tmp/ray.XXXXXX)  # short: Ray's socket paths must fit in 107 bytes
trap 'rm -rf "$RAYTMP"' EXIT
if [ "$AUTH" = token ]; then ray get-auth-token --generate >/dev/null; fi  # what Ray's guide has an operator do
started() { for _ in $(seq 120); do grep -q "Ray runtime started" "$1" && return 0; sleep 0.5; done; cat "$1"; exit 3; }
ray start --head --port=6399 --num-cpus=0 --include-dashboard=false --temp-dir="$RAYTMP" --block >"$OUT/head.log" 2>&1 &
started "$OUT/head.log"
ray start --address=127.0.0.1:6399 --num-cpus=1 --temp-dir="$RAYTMP" --block >"$OUT/worker1.log" 2>&1 &
DOOMED=$!
started "$OUT/worker1.log"  # one node at a time: two raylets registering at once time out on 2 cores
ray start --address=127.0.0.1:6399 --num-cpus=1 --temp-dir="$RAYTMP" --block >"$OUT/worker2.log" 2>&1 &
started "$OUT/worker2.log"
if [ "${CLIENT_AUTH:-}" = unset ]; then unset RAY_AUTH_MODE; fi  # a user who did not export it
if [ "${CLIENT_TOKEN:-}" = none ]; then export HOME=$OUT/client-home; mkdir -p "$HOME"; fi  # ...nor has the token
set +e
evolve run --problem "$REPO/tests/data/slow_guess" --run-dir "$OUT/run" --max-evaluations "${BUDGET:-24}" \
  --ray-address 127.0.0.1:6399 --set evaluator.retries_on_worker_lost=0 --set evaluator.warm_start=false \
  --set controller.max_in_flight=2 >"$OUT/run.out" 2>"$OUT/run.err" &
RUN=$!
if [ -n "${KILL_AFTER:-}" ]; then
  for _ in $(seq 600); do
    n=$(python -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT COUNT(*) FROM programs WHERE status IN ('evaluated','failed')\").fetchone()[0])" "$OUT/run/archive.sqlite" 2>/dev/null || echo 0)
    [ "$n" -ge "$KILL_AFTER" ] && break
    kill -0 $RUN 2>/dev/null || break
    sleep 0.2
  done
  pkill -KILL -P $DOOMED  # the worker node's raylet and agents: the node is gone, its jobs with it
  kill -KILL $DOOMED
fi
wait $RUN
echo "evolve run exited $?" >>"$OUT/run.err"
