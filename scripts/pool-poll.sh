#!/usr/bin/env bash
# Polls/s of one node on a pool's PostgreSQL against the same node on the
# embedded bbolt store (SPEC §11 asks 0.8x at least): RUNS runs of each,
# alternately, on the same machine, each a fresh store with an approved
# update. A run polls the internal HTTP endpoint as fast as CONCURRENCY
# keep-alive connections allow for SECONDS (after a 3 s warm-up), as
# PHONES distinct phones that run an old version (every answer an
# offer), and measures the polls/s, and the CPU per poll of the node and,
# on PostgreSQL, of the node and the database together. Prints each run
# and the medians, with the load average.
# Usage: scripts/pool-poll.sh [RUNS] [SECONDS] [PHONES] [CONCURRENCY]   (default 3 10 20000 32)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}; secs=${2:-10}; phones=${3:-20000}; conc=${4:-32}
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null; stop_postgres; rm -rf "$work"' EXIT
. scripts/lib.sh
build_deviceupdate
start_postgres
hz=$(getconf CLK_TCK)

# run STORE N: one run on bbolt or postgres; prints "polls/s node-µs all-µs".
run() {
  local flags=() node_data="$work/data-$1-$2" node_log="$work/err-$1-$2"
  if [ "$1" = postgres ]; then
    pg_sql postgres "CREATE DATABASE run$2"
    flags=(--store "$(pg_dsn "run$2")" --files "$work/files-$2")
  fi
  start_server "${flags[@]}"
  import_update 4.0.7577.4366 100000
  "$du" rule approve UCPhone/Polycom/CX600/A/ENU/CPE >/dev/null
  load() { "$du" phone load --server "http://$http" --phones "$phones" --concurrency "$conc" --duration "$1" --json || true; }
  load 3s >/dev/null
  local n0 p0=0 p1=0 r n
  n0=$(cpu_ticks "$server_pid")
  [ "$1" = postgres ] && p0=$(pg_cpu_ticks)
  r=$(load "${secs}s")
  local n1; n1=$(cpu_ticks "$server_pid")
  [ "$1" = postgres ] && p1=$(pg_cpu_ticks)
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
  n=$(echo "$r" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["ok"], round(r["perSecond"]))')
  set -- $n
  echo "$2 $(( (n1 - n0) * 1000000 / hz / $1 )) $(( (n1 - n0 + p1 - p0) * 1000000 / hz / $1 ))"
}

echo "one node, $phones phones, $conc connections, ${secs}s a run; $(nproc) CPUs"
for i in $(seq "$runs"); do
  for s in bbolt postgres; do
    read -r ps node all < <(run "$s" "$i")
    echo "$ps $node $all" >>"$work/$s"
    echo "  run $i $s: $ps polls/s, node CPU $node µs a poll, node+database $all µs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  done
done
col() { cut -d' ' -f"$1" "$work/$2" | median; }
b=$(col 1 bbolt); p=$(col 1 postgres)
echo "median polls/s: bbolt $b, postgres $p: $(echo "scale=2; $p / $b" | bc)x (goal 0.8x)"
echo "median CPU a poll: bbolt $(col 2 bbolt) µs; postgres node $(col 2 postgres) µs, node+database $(col 3 postgres) µs"
