#!/usr/bin/env bash
# Compares download MB/s of an update file from `deviceupdate serve`'s
# internal HTTP listener with nginx serving the same file from the same
# disk, in the same run: COUNT downloads, PAR at a time, with curl, for each
# server alternately; medians of RUNS.
# Usage: scripts/bench-download.sh [SIZE_MB] [COUNT] [PAR] [RUNS]   (default 50 40 4 3)
# Needs nginx (Debian: nginx-light), curl and openssl.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-50}; count=${2:-40}; par=${3:-4}; runs=${4:-3}
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; [ ! -f "$work/nginx.pid" ] || kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; rm -rf "$work"' EXIT
. scripts/lib.sh
build_deviceupdate
start_server
import_update 4.0.7577.1 "$((size * 1024 * 1024))"

# nginx on the same store folder.
cat >"$work/nginx.conf" <<NGINX
user $(id -un) $(id -gn); daemon on; pid $work/nginx.pid; error_log $work/nginx.err; worker_processes 2;
events { worker_connections 1024; }
http { access_log off; sendfile on; tcp_nopush on;
  server { listen 127.0.0.1:18099; root $work/data/DeviceUpdateStore; location / { } } }
NGINX
nginx -c "$work/nginx.conf"
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:18099/$rel" && break; sleep 0.1; done
curl -sf -o /dev/null "http://127.0.0.1:18099/$rel" || { echo "nginx does not serve the file; see $work/nginx.err" >&2; cat "$work/nginx.err" >&2; exit 1; }

fetch() { # URL -> seconds for COUNT downloads, PAR at a time
  local t0 t1; t0=$(date +%s.%N)
  seq "$count" | xargs -P "$par" -I{} curl -sf -o /dev/null "$1"
  t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l
}
: >"$work/ours"; : >"$work/nginx"
for i in $(seq "$runs"); do
  fetch "http://$http/DeviceUpdateFiles_Int/$rel" >>"$work/ours"
  fetch "http://127.0.0.1:18099/$rel" >>"$work/nginx"
done
ours=$(median <"$work/ours"); ng=$(median <"$work/nginx")
mb=$((size * count))
printf "%d downloads of %d MiB, %d at a time, %d runs, medians:\n" "$count" "$size" "$par" "$runs"
printf "deviceupdate (internal HTTP): %.0f MiB/s\n" "$(echo "$mb / $ours" | bc -l)"
printf "nginx (sendfile): %.0f MiB/s\n" "$(echo "$mb / $ng" | bc -l)"
printf "ratio deviceupdate/nginx MiB/s: %.2f\n" "$(echo "$ng / $ours" | bc -l)"
