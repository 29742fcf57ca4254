#!/usr/bin/env bash
# Times `deviceupdate backup` of a server holding N packages of SIZE_MB
# random (incompressible, like firmware) images against plain `tar` of the
# same two folders on this machine, compares the sizes, reads the
# server's peak resident memory (VmHWM) across the backups, and times the
# restore. Report only: nothing here passes or fails.
# Usage: scripts/bench-backup.sh [PACKAGES] [SIZE_MB] [RUNS]   (default 3 50 3)
# Needs openssl and GNU tar.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=${1:-3}
size_mb=${2:-50}
runs=${3:-3}
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
source scripts/lib.sh
build_deviceupdate
mkdir -p "$work/certs/trusted"
start_server
for i in $(seq "$packages"); do
  import_update "4.0.7577.$((4000 + i))" "$((size_mb * 1024 * 1024))"
done
now() { date +%s.%N; }

: >"$work/t_backup"; : >"$work/t_tar"; : >"$work/t_restore"
for i in $(seq "$runs"); do
  sync; t0=$(now)
  "$du" backup -o "$work/b$i.tar" >/dev/null
  t1=$(now); echo "$t1 - $t0" | bc >>"$work/t_backup"
  sync; t0=$(now)
  tar -C "$work" -cf "$work/plain$i.tar" data certs
  sync -f "$work/plain$i.tar"; t1=$(now); echo "$t1 - $t0" | bc >>"$work/t_tar"
  t0=$(now)
  "$du" restore "$work/b$i.tar" --data "$work/r$i/data" --certs "$work/r$i/certs" >/dev/null
  t1=$(now); echo "$t1 - $t0" | bc >>"$work/t_restore"
  rm -rf "$work/r$i" "$work/plain$i.tar"
  [ "$i" -lt "$runs" ] && rm -f "$work/b$i.tar"
done
tar -C "$work" -cf "$work/plain.tar" data certs
b=$(median <"$work/t_backup"); t=$(median <"$work/t_tar"); r=$(median <"$work/t_restore")
bs=$(stat -c %s "$work/b$runs.tar"); ts=$(stat -c %s "$work/plain.tar")
printf 'store: %d packages of %d MiB; median of %d runs\n' "$packages" "$size_mb" "$runs"
printf 'deviceupdate backup: %.2f s, %d bytes\n' "$b" "$bs"
printf 'tar of the folders:  %.2f s, %d bytes\n' "$t" "$ts"
printf 'ratio backup/tar:    time %.2f, size %.4f\n' "$(echo "$b / $t" | bc -l)" "$(echo "$bs / $ts" | bc -l)"
printf 'deviceupdate restore: %.2f s\n' "$r"
printf 'server VmHWM after the backups: %s KiB\n' "$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")"
