#!/usr/bin/env bash
# A boot storm: PHONES distinct phones poll the internal HTTP endpoint once
# each, arriving evenly over SECONDS, every poll on its own connection (as
# separate phones), whatever the server's speed (an open loop). Reports
# how many were answered 200 or 503 with Retry-After (none may be
# dropped or fail), the latency from each poll's scheduled start (p50,
# p99, max), the server's peak RSS, the CPU of the server and of the load
# generator, and that the inventory holds every phone. The phones run an
# old version, so every answer is an offer.
# Usage: scripts/boot-storm.sh [PHONES] [SECONDS] [MAX_IN_FLIGHT]   (default 100000 60 4096)
set -euo pipefail
cd "$(dirname "$0")/.."
phones=${1:-100000}; secs=${2:-60}; inflight=${3:-4096}
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT
. scripts/lib.sh
build_deviceupdate
start_server
import_update 4.0.7577.4366 100000
"$du" rule approve UCPhone/Polycom/CX600/A/ENU/CPE >/dev/null

peak=0
( while kill -0 "$server_pid" 2>/dev/null; do rss_kib "$server_pid"; sleep 0.2; done ) >"$work/rss" 2>/dev/null &
pids+=($!)
rate=$(echo "$phones / $secs" | bc -l)
cpu0=$(cpu_ticks "$server_pid")
phone_load "$work/result" --server "http://$http" --phones "$phones" --requests "$phones" --rate "$rate" \
  --new-connections --concurrency "$inflight" --version 4.0.7577.4100
peak=$(sort -n "$work/rss" | tail -1)
cpu=$(( $(cpu_ticks "$server_pid") - cpu0 ))
python3 - "$work/result" "$phones" "$secs" "$peak" "$cpu" "$(getconf CLK_TCK)" "$lgcpu" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); phones, secs, peak = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
cpu = int(sys.argv[5]) / int(sys.argv[6])
ms = lambda s: s * 1e3
print(f"{phones} phones over {secs}s, a connection each (internal HTTP):")
print(f"  answered 200: {r['ok']}, 503 with Retry-After: {r['busy']}, failed: {r['failed']}, dropped: {r['dropped']}")
print(f"  took {r['seconds']:.1f}s; latency p50 {ms(r['p50Seconds']):.1f} ms, p99 {ms(r['p99Seconds']):.1f} ms, max {ms(r['maxSeconds']):.1f} ms")
print(f"  server peak RSS: {peak/1024:.0f} MiB; server CPU {cpu:.1f}s, {cpu/max(1, r['ok']+r['busy'])*1e6:.0f} us per answered poll")
print(f"  load generator CPU {float(sys.argv[7]):.1f}s, {float(sys.argv[7])/max(1, r['ok']+r['busy'])*1e6:.0f} us per answered poll")
ok = r['failed'] == 0 and r['dropped'] == 0 and r['ok'] + r['busy'] == phones
print("  goal (all answered, p99 < 50 ms):", "met" if ok and r['p99Seconds'] < 0.050 else "MISSED")
PY
"$du" device list --json | python3 -c 'import json,sys; print("  inventory records:", len(json.load(sys.stdin)))'
