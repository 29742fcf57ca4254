#!/usr/bin/env bash
# Measures how long `deviceupdate serve` takes from exec to its first
# /healthz answer over HTTPS (a first start, which generates the CA,
# server key and token, and a start on existing certs), and its resident
# memory after idling. Prints medians over RUNS runs.
# Usage: scripts/measure-start.sh [RUNS]   (default 5; needs curl)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/deviceupdate" ./cmd/deviceupdate

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# start DIR -> prints milliseconds to the first healthy answer; leaves the server running as $pid
start() {
  local dir=$1 t0 addr
  t0=$(date +%s%N)
  "$work/deviceupdate" serve --data "$dir/data" --certs "$dir/certs" --https 127.0.0.1:0 --http "" \
    --domain contoso.com >"$dir/out" 2>"$dir/err" &
  pid=$!
  addr=""
  until [ -n "$addr" ]; do
    addr=$(grep -o '"listener":"https","addr":"[^"]*"' "$dir/err" 2>/dev/null | sed 's/.*"addr":"\(.*\)"/\1/' || true)
  done
  until curl -sf --cacert "$dir/certs/ca.crt" --resolve "ucupdates-r2.contoso.com:${addr##*:}:127.0.0.1" \
      "https://ucupdates-r2.contoso.com:${addr##*:}/healthz" >/dev/null 2>&1; do :; done
  echo $(( ($(date +%s%N) - t0) / 1000000 ))
}

: >"$work/first"; : >"$work/warm"; : >"$work/rss"
for i in $(seq "$runs"); do
  d="$work/run$i"; mkdir -p "$d"
  start "$d" >>"$work/first"; kill -TERM "$pid"; wait "$pid"
  start "$d" >>"$work/warm"
  sleep 3
  awk '/VmRSS/ {print $2}' "/proc/$pid/status" >>"$work/rss"
  kill -TERM "$pid"; wait "$pid"
done
echo "first start (creates CA, server certificate, token, store): $(median <"$work/first") ms to a healthy HTTPS answer"
echo "start on existing certs and store: $(median <"$work/warm") ms"
echo "resident memory idle after start: $(( $(median <"$work/rss") / 1024 )) MiB"
