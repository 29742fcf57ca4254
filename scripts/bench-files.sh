#!/usr/bin/env bash
# Compares download MiB/s of an update file from `deviceupdate serve`
# keeping its update files under --data (the default) with one keeping them
# in a file store (--files DIR, read through its local cache, checked as
# read), in the same run: COUNT downloads, PAR at a time, with curl, for
# each server alternately; medians of RUNS. The first download of the
# --files server fills its cache and is not timed.
# Usage: scripts/bench-files.sh [SIZE_MB] [COUNT] [PAR] [RUNS]   (default 50 40 4 3)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-50}; count=${2:-40}; par=${3:-4}; runs=${4:-3}
base=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$base"' EXIT
. scripts/lib.sh
work=$base; build_deviceupdate

work=$base/local; mkdir -p "$work"
start_server
import_update 4.0.7577.1 "$((size * 1024 * 1024))"
local_http=$http

work=$base/shared; mkdir -p "$work"
start_server --files "$base/files"
import_update 4.0.7577.1 "$((size * 1024 * 1024))"
shared_http=$http
curl -sf -o /dev/null "http://$shared_http/DeviceUpdateFiles_Int/$rel" # fills the cache

fetch() { # URL -> seconds for COUNT downloads, PAR at a time
  local t0 t1; t0=$(date +%s.%N)
  seq "$count" | xargs -P "$par" -I{} curl -sf -o /dev/null "$1"
  t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l
}
: >"$base/local.t"; : >"$base/shared.t"
for i in $(seq "$runs"); do
  fetch "http://$local_http/DeviceUpdateFiles_Int/$rel" >>"$base/local.t"
  fetch "http://$shared_http/DeviceUpdateFiles_Int/$rel" >>"$base/shared.t"
done
l=$(median <"$base/local.t"); s=$(median <"$base/shared.t")
mb=$((size * count))
printf "%d downloads of %d MiB, %d at a time, %d runs, medians:\n" "$count" "$size" "$par" "$runs"
printf "under --data: %.0f MiB/s\n" "$(echo "$mb / $l" | bc -l)"
printf -- "--files DIR (local cache): %.0f MiB/s\n" "$(echo "$mb / $s" | bc -l)"
printf -- "ratio --files/--data MiB/s: %.2f\n" "$(echo "$l / $s" | bc -l)"
