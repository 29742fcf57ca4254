#!/usr/bin/env bash
# Memory under a download storm: CLIENTS clients, each on its own
# connection, download one SIZE_MB MiB update file from `serve` at once,
# over internal HTTP and then over HTTPS. Samples the server's RSS every
# 0.2 s and reports it at idle, at its peak during each storm and after,
# with the downloads completed, 503s and MiB/s.
# Usage: scripts/download-rss.sh [CLIENTS] [SIZE_MB]   (default 1000 50)
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-1000}; size=${2:-50}
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT
. scripts/lib.sh
build_deviceupdate
start_server
import_update 4.0.7577.1 "$((size * 1024 * 1024))"
sleep 1
idle=$(rss_kib "$server_pid")
printf "%d clients, one %d MiB file; server RSS at idle: %d MiB\n" "$clients" "$size" "$((idle / 1024))"
for url in "http://$http" "https://$addr"; do
  ( while kill -0 "$server_pid" 2>/dev/null; do rss_kib "$server_pid"; sleep 0.2; done ) >"$work/rss" 2>/dev/null &
  sampler=$!
  r=$("$du" phone download --clients "$clients" --max-retry-wait 1s --json "$url/DeviceUpdateFiles_Int/$rel" || true)
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
  sleep 1
  python3 - "$r" "$(sort -n "$work/rss" | tail -1)" "$(rss_kib "$server_pid")" "${url%%:*}" <<'PY'
import json, sys
r, peak, after, scheme = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
print(f"  {scheme}: {r['completed']}/{r['clients']} downloads complete, {r['busy']} busy (503), {r['failed']} failed, "
      f"{r['mibPerSecond']:.0f} MiB/s in {r['seconds']:.1f}s; RSS peak {peak/1024:.0f} MiB, after {after/1024:.0f} MiB")
if r.get('error'):
    print("    first failure:", r['error'])
PY
done
