#!/usr/bin/env bash
# A boot storm on a pool: NODES `serve --store postgres://... --files DIR`
# front ends on one throwaway PostgreSQL; PHONES distinct phones poll the
# internal HTTP endpoints once each, spread over the nodes in turn (as a
# load balancer would), arriving evenly over SECONDS, every poll on its
# own connection, whatever the servers' speed (an open loop). Reports how
# many were answered 200 or 503 with Retry-After (none may fail or be
# dropped), the latency from each poll's scheduled start (p50, p99, max),
# the CPU of the nodes, of the database and of the load generator, the
# nodes' peak RSS, that the one inventory holds every phone (counted in
# the database and listed by a node), and the database's size. The phones
# run an old version, so every answer is an offer. The machine's load
# average is printed before and after: on a shared machine, read the
# figures with it.
# Usage: scripts/pool-storm.sh [PHONES] [SECONDS] [NODES] [MAX_IN_FLIGHT]   (default 100000 60 3 4096)
# NODE_GOMAXPROCS=N runs each node with GOMAXPROCS=N (the nodes of a real pool
# each have a machine of their own; here they share this one's CPUs).
set -euo pipefail
cd "$(dirname "$0")/.."
phones=${1:-100000}; secs=${2:-60}; nodes=${3:-3}; inflight=${4:-4096}
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null; stop_postgres; rm -rf "$work"' EXIT
. scripts/lib.sh
build_deviceupdate
start_postgres
pg_sql postgres "CREATE DATABASE pool"
dsn=$(pg_dsn pool)
urls=(); node_pids=()
for i in $(seq "$nodes"); do
  # The first node creates the certificates, which the others share.
  GOMAXPROCS=${NODE_GOMAXPROCS:-} node_data="$work/data$i" node_log="$work/err$i" start_server --store "$dsn" --files "$work/files"
  urls+=(--server "http://$http"); node_pids+=("$server_pid")
done
import_update 4.0.7577.4366 100000
"$du" rule approve UCPhone/Polycom/CX600/A/ENU/CPE >/dev/null
echo "$nodes nodes on one PostgreSQL ($(nproc) CPUs); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

( while sleep 0.2; do for p in "${node_pids[@]}"; do echo "$p $(rss_kib "$p" 2>/dev/null || echo 0)"; done; done ) >"$work/rss" 2>/dev/null &
pids+=($!)
node_cpu() { local t=0 p; for p in "${node_pids[@]}"; do t=$(( t + $(cpu_ticks "$p") )); done; echo "$t"; }
cpu0=$(node_cpu); pg0=$(pg_cpu_ticks)
rate=$(echo "$phones / $secs" | bc -l)
phone_load "$work/result" "${urls[@]}" --phones "$phones" --requests "$phones" --rate "$rate" \
  --new-connections --concurrency "$inflight" --version 4.0.7577.4100
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
sleep 2.5 # the nodes' inventory flush, every second
cpu=$(( $(node_cpu) - cpu0 )); pgcpu=$(( $(pg_cpu_ticks) - pg0 ))
peak=$(awk '{if ($2 > m[$1]) m[$1] = $2} END {for (p in m) printf "%d ", m[p] / 1024}' "$work/rss")
python3 - "$work/result" "$phones" "$secs" "$cpu" "$pgcpu" "$(getconf CLK_TCK)" "$peak" "$load_after" "$lgcpu" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); phones, secs = int(sys.argv[2]), sys.argv[3]
hz = int(sys.argv[6]); cpu, pgcpu = int(sys.argv[4]) / hz, int(sys.argv[5]) / hz
ms = lambda s: s * 1e3
answered = max(1, r['ok'] + r['busy'])
print(f"{phones} phones over {secs}s, a connection each (internal HTTP), spread over the nodes:")
print(f"  answered 200: {r['ok']}, 503 with Retry-After: {r['busy']}, failed: {r['failed']}, dropped: {r['dropped']}")
print(f"  took {r['seconds']:.1f}s; latency p50 {ms(r['p50Seconds']):.1f} ms, p99 {ms(r['p99Seconds']):.1f} ms, max {ms(r['maxSeconds']):.1f} ms")
print(f"  CPU: nodes {cpu:.1f}s ({cpu/answered*1e6:.0f} us a poll), PostgreSQL {pgcpu:.1f}s ({pgcpu/answered*1e6:.0f} us a poll); peak RSS of the nodes (MiB): {sys.argv[7]}")
print(f"  CPU of the load generator: {float(sys.argv[9]):.1f}s ({float(sys.argv[9])/answered*1e6:.0f} us a poll)")
print(f"  load average after the storm: {sys.argv[8]}")
ok = r['failed'] == 0 and r['dropped'] == 0 and r['ok'] + r['busy'] == phones
print("  goal (all answered, p99 < 50 ms):", "met" if ok and r['p99Seconds'] < 0.050 else "MISSED")
PY
echo "  inventory: $(pg_sql pool "SELECT count(*) FROM devices") devices in the database; node 1 lists $("$du" device list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
echo "  database size: devices $(pg_sql pool "SELECT pg_size_pretty(pg_total_relation_size('devices'))") (with its indexes and TOAST), the whole database $(pg_sql pool "SELECT pg_size_pretty(pg_database_size('pool'))")"
