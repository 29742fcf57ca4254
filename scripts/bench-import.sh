#!/usr/bin/env bash
# Times `deviceupdate import` of a large package against the floor the
# issue names: hashing plus copying the same bytes (openssl dgst -sha256,
# and dd with fsync), in the same run on this machine, and reads the
# server's peak resident memory (VmHWM) around the import.
# Usage: scripts/bench-import.sh [SIZE_MB] [RUNS]   (default 500 3)
# Needs openssl and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${1:-500}
runs=${2:-3}
work=$(mktemp -d)
pid=""
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/deviceupdate" ./cmd/deviceupdate
du="$work/deviceupdate"

# A publisher, and a package of one image of random (incompressible,
# like most firmware) bytes.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/pub.key" -out "$work/pub.pem" -days 2 \
  -subj "/CN=Bench Publisher" -addext "extendedKeyUsage=codeSigning" 2>/dev/null
head -c "$((size_mb * 1024 * 1024))" /dev/urandom >"$work/CPE.nbt"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }

: >"$work/import"; : >"$work/floor"; : >"$work/hwm"
for i in $(seq "$runs"); do
  "$du" pack --brand Polycom --model CX600 --revision A --version "4.0.7577.$i" \
    --cert "$work/pub.pem" --key "$work/pub.key" -o "$work/pkg.cab" "$work/CPE.nbt" >/dev/null

  # The floor: copy the package (synced, as the import syncs) and hash it.
  t0=$(now)
  dd if="$work/pkg.cab" of="$work/copy.cab" bs=1M conv=fsync status=none
  openssl dgst -sha256 "$work/pkg.cab" >/dev/null
  t1=$(now)
  echo "$t1 - $t0" | bc >>"$work/floor"
  rm -f "$work/copy.cab"

  # A fresh server each run, so its peak memory is this import's.
  rm -rf "$work/data"
  mkdir -p "$work/certs/trusted"
  cp "$work/pub.pem" "$work/certs/trusted/"
  "$du" serve --data "$work/data" --certs "$work/certs" --https 127.0.0.1:0 --http "" \
    --domain bench.example >/dev/null 2>"$work/err" &
  pid=$!
  addr=""
  until [ -n "$addr" ]; do
    addr=$(grep -o '"listener":"https","addr":"[^"]*"' "$work/err" 2>/dev/null | sed 's/.*"addr":"\(.*\)"/\1/' || true)
    sleep 0.05
  done
  t0=$(now)
  "$du" import --server "https://$addr" --certs "$work/certs" "$work/pkg.cab" >/dev/null
  t1=$(now)
  echo "$t1 - $t0" | bc >>"$work/import"
  awk '/VmHWM/ {print $2}' "/proc/$pid/status" >>"$work/hwm"
  grep -h "package imported" "$work/err" | sed "s/.*\"bytes\"/  phases: \"bytes\"/" >&2
  kill -TERM "$pid"; wait "$pid" || true; pid=""
done

pkg_mb=$(( $(stat -c %s "$work/pkg.cab") / 1024 / 1024 ))
imp=$(median <"$work/import"); floor=$(median <"$work/floor")
echo "package: ${pkg_mb} MiB (one ${size_mb} MiB image, MSZIP), ${runs} runs, medians"
echo "import (upload over HTTPS, verify, stage, commit): ${imp} s = $(echo "$pkg_mb / $imp" | bc) MiB/s"
echo "floor (dd with fsync + openssl sha256 of the package): ${floor} s = $(echo "$pkg_mb / $floor" | bc) MiB/s"
echo "ratio import/floor: $(echo "scale=2; $imp / $floor" | bc)"
echo "server peak RSS during the import: $(( $(median <"$work/hwm") / 1024 )) MiB"
