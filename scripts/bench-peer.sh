#!/usr/bin/env bash
# Measures peer firmware sharing with `deviceupdate phone sim`: N phones of
# one site boot at once behind one WAN link to the server and update to an
# approved SIZE MiB image, with sharing off (every phone downloads it), on
# (a tree; a parent forwards each chunk once verified) and on with
# store-and-forward (Cisco's way: a parent forwards the file once it has
# all of it). For each N and mode it prints the seconds until the last
# phone updated, that time in WAN transfers of one image (SIZE/RATE), the
# bytes read from the server in images, and whether every phone updated.
# Usage: scripts/bench-peer.sh [SIZE_MB] [RATE_MB_PER_S] [COUNTS] [MODES]
#   (default 8 4 "8 32 128" "off on store-and-forward")
# Needs openssl and python3; the phones use 127.0.1.1 onwards and TCP/UDP port 4051 on them.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-8}; rate=${2:-4}; counts=${3:-"8 32 128"}; modes=${4:-"off on store-and-forward"}
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null; rm -rf "$work"' EXIT
. scripts/lib.sh
build_deviceupdate
start_server
import_update 4.0.7577.2 "$((size * 1024 * 1024))"
"$du" rule approve UCPhone/Polycom/CX600/A/ENU/CPE >/dev/null
# The answers name each file's chunk list only when they turn sharing on;
# `off` below forces it off on the phones.
"$du" config set PeerFirmwareSharing=true >/dev/null

printf "%d MiB image, WAN %d MiB/s (one WAN transfer = %.1f s), %s\n" "$size" "$rate" "$(echo "$size / $rate" | bc -l)" "$(nproc) CPUs"
printf "%5s  %-18s  %8s  %10s  %12s  %s\n" N mode seconds "s / WAN-1" "server/file" "all updated"
for n in $counts; do
  for mode in $modes; do
    case $mode in
      off) flags=(--peer-sharing off) ;;
      on) flags=(--peer-sharing on) ;;
      store-and-forward) flags=(--peer-sharing on --store-and-forward) ;;
    esac
    code=0
    "$du" phone sim --server "http://$http" --count "$n" --model CX600 --version 4.0.7577.1 --trust "$work/pub.pem" \
      --wan-rate "$((rate * 1024 * 1024))" --json "${flags[@]}" >"$work/sim.json" 2>"$work/sim.err" || code=$?
    python3 - "$work/sim.json" "$n" "$mode" "$size" "$rate" "$code" "$work/sim.err" <<'PY'
import json, sys
path, n, mode, size, rate, code, err = sys.argv[1:]
try:
    r = json.load(open(path))
except ValueError:
    print(f"{n:>5}  {mode:<18}  failed: {open(err).read().strip()[:200]}")
    sys.exit(0)
image = int(size) * 1024 * 1024
wan = int(size) / int(rate)
ok = "yes" if r["updated"] == r["phones"] and code == "0" else f"no ({r['updated']}/{r['phones']})"
print(f"{n:>5}  {mode:<18}  {r['seconds']:8.1f}  {r['seconds'] / wan:10.2f}  {r['serverBytes'] / image:12.2f}  {ok}")
PY
  done
done
