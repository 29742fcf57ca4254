#!/usr/bin/env bash
# Server CPU time per poll at a fixed rate: steadier than polls/s on a
# shared machine, since the load generator's share of the CPUs does not
# move it. Compare two commits by running it in each, alternately.
# Usage: scripts/poll-cpu.sh [RATE] [SECONDS] [PHONES]   (default 3000 10 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-3000}; secs=${2:-10}; phones=${3:-20000}
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT
. scripts/lib.sh
build_deviceupdate
start_server
import_update 4.0.7577.4100 100000
"$du" rule approve UCPhone/Polycom/CX600/A/ENU/CPE >/dev/null
load() { "$du" phone load --server "https://$addr" --certs "$work/certs" --phones "$phones" --concurrency 32 --rate "$rate" --duration "$1" --json || true; }
load 3s >/dev/null # warm up: connections, the inventory's records
t0=$(cpu_ticks "$server_pid")
r=$(load "${secs}s")
t1=$(cpu_ticks "$server_pid")
n=$(echo "$r" | sed 's/.*"ok":\([0-9]*\).*/\1/')
hz=$(getconf CLK_TCK)
echo "server CPU per poll at ${rate} polls/s: $(( (t1 - t0) * 1000000 / hz / n )) µs ($n polls answered)"
