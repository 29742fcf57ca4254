#!/usr/bin/env bash
# Compares polls/s of `deviceupdate serve` (deciding, recording inventory
# and the request-log line) with a do-nothing echo handler on the same TLS
# stack (cmd/nopserver), over HTTPS keep-alive, in the same
# run: alternating runs of `deviceupdate phone load`, medians.
# Usage: scripts/bench-poll.sh [SECONDS] [RUNS] [PHONES] [CONCURRENCY]   (default 8 3 20000 32)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}; runs=${2:-3}; phones=${3:-20000}; conc=${4:-32}
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT
. scripts/lib.sh
build_deviceupdate
go build -o "$work/nopserver" ./cmd/nopserver

# A server with one approved rule, which the phones already run, so each
# answer is "nothing to offer", as the reference's.
start_server
import_update 4.0.7577.4100 100000
"$du" rule approve UCPhone/Polycom/CX600/A/ENU/CPE >/dev/null

"$work/nopserver" -certs "$work/certs" >"$work/nop.addr" 2>/dev/null &
pids+=($!)
until [ -s "$work/nop.addr" ]; do sleep 0.05; done
nop=$(head -1 "$work/nop.addr")

load() { "$du" phone load --server "https://$1" --certs "$work/certs" --phones "$phones" --concurrency "$conc" --duration "${secs}s" --json; }
field() { sed 's/.*"'"$1"'":\([0-9.e+-]*\).*/\1/'; }
: >"$work/ours"; : >"$work/ref"; : >"$work/p99"
for i in $(seq "$runs"); do
  r=$(load "$addr"); echo "$r" | field perSecond >>"$work/ours"; echo "$r" | field p99Seconds >>"$work/p99"
  load "$nop" | field perSecond >>"$work/ref"
done
ours=$(median <"$work/ours"); ref=$(median <"$work/ref")
echo "polls over HTTPS keep-alive, ${phones} phones, ${conc} in flight, ${secs}s x ${runs}, medians:"
printf "deviceupdate: %.0f polls/s (p99 %.1f ms)\n" "$ours" "$(echo "$(median <"$work/p99") * 1000" | bc -l)"
printf "do-nothing echo handler: %.0f polls/s\n" "$ref"
printf "ratio: %.2f\n" "$(echo "$ours / $ref" | bc -l)"
"$du" device list --json | python3 -c 'import json,sys; print("inventory records:", len(json.load(sys.stdin)))'
