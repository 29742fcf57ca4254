#!/usr/bin/env bash
# Staged rollouts against simulated fleets (ISSUE 17, "Measured"): for each
# fleet size, failure rate and failure mode, a fresh server approves an old
# version, the phones boot on it, a new one is rolled out in waves 10,50,100
# and `phone sim` keeps the fleet polling while some of it fails. Prints a
# markdown table: the outcome (completed, or paused in which wave), the
# exposure (phones ever offered the new version, from the sim's report) and
# the time from the rollout's start to its pause or completion (from the
# audit trail).
#
# Time is compressed: phones poll every $POLL seconds (2 by default: the
# inventory keeps a device's net change per ~1 s batch, so faster polling
# could hide a revert), each wave soaks $SOAK seconds, and the server
# judges rollouts every second (the hidden serve flag --rollout-every) by a
# poll interval a second longer than the phones' (--rollout-poll-interval):
# a poll reaches the rollout with the inventory's next flush, up to a
# second later, which at an hour's interval is nothing but at 2 s would
# take punctual phones for silent ones. Each rollout may
# offer to a quarter of the fleet an "hour" (--max-per-hour), an hour
# being $HOUR seconds (the hidden serve flag --rollout-hour), so the last
# wave completes only after about four of them, once every phone has
# been offered the version; it needs a twentieth of the fleet judged
# (--min-devices) before a wave moves on; failures above 10% pause it.
#
# Usage: scripts/rollout-table.sh [PHONES...]   (default 100 1000)
# Environment: RATES (default "0 5% 20% 50%"), MODES (default "revert
# stuck silent"; a rate of 0 runs once, mode "-"), POLL (2), SOAK (6),
# HOUR (5), DURATION (seconds of polling; default 8 soaks).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 1000)
read -r -a rates <<<"${RATES:-0 5% 20% 50%}"
read -r -a modes <<<"${MODES:-revert stuck silent}"
poll=${POLL:-2}; soak=${SOAK:-6}; hour=${HOUR:-5}; duration=${DURATION:-$((8 * soak))}
oldv=4.0.7577.4100; newv=4.0.7577.4366; rule=UCPhone/Polycom/CX600/A/ENU/CPE

top=$(mktemp -d)
pids=()
trap '[ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null; rm -rf "$top"' EXIT
. scripts/lib.sh
work=$top
build_deviceupdate

# secs_between T1 T2: seconds from one RFC 3339 time to another.
secs_between() { awk -v a="$(date -d "$1" +%s.%N)" -v b="$(date -d "$2" +%s.%N)" 'BEGIN {printf "%.1f", b - a}'; }

# one N RATE MODE: one rollout; prints its table row.
one() {
  local n=$1 rate=$2 mode=$3 fail=()
  work=$(mktemp -d -p "$top")
  start_server --rollout-every 1s --rollout-poll-interval "$((poll + 1))s" --rollout-hour "${hour}s"
  import_update "$oldv" 20000
  "$du" rule approve "$rule" >/dev/null
  local sim=("$du" phone sim --server "http://$http" --count "$n" --model CX600 --trust "$work/pub.pem" --peer-sharing off --timeout 2m)
  # The boot: every phone polls once on the old version, so the
  # inventory knows the fleet before the rollout.
  "${sim[@]}" --version "$oldv" >/dev/null 2>&1 || true
  # ... once the inventory has written them (it batches about a second):
  # --min-devices widens the first wave to that many known phones.
  for _ in $(seq 50); do
    [ "$("$du" device list --json --model CX600 | jq length)" -ge "$n" ] && break
    sleep 0.2
  done
  import_update "$newv" 20000
  "$du" rule approve "$rule" --waves 10,50,100 --soak "${soak}s" --max-failures 10% \
    --min-devices $((n / 20)) --max-per-hour $((n / 4)) >/dev/null
  [ "$rate" = 0 ] || fail=(--fail-rate "$rate" --fail-mode "$mode")
  "${sim[@]}" --version "$oldv" --duration "${duration}s" --poll-every "${poll}s" "${fail[@]}" --json \
    >"$work/sim.json" 2>"$work/sim.err" || true
  local st exposure start end outcome noticed
  st=$("$du" rule rollout "$rule" --json)
  exposure=$(jq --arg v "$newv" '[.versions[] | select(.version == $v) | .offered] | add // 0' "$work/sim.json")
  start=$(jq -r '[.entries[] | select(.action == "rule.rollout.start")][0].time' <("$du" audit list --action rule.rollout. --json))
  end=$(jq -r '[.entries[] | select(.action == "rule.rollout.pause" or .action == "rule.rollout.complete")][0].time // ""' \
    <("$du" audit list --action rule.rollout. --json))
  case $(jq -r .state <<<"$st") in
    completed) outcome=completed ;;
    paused) outcome="paused in wave $(jq -r .wave <<<"$st")" ;;
    *) outcome="$(jq -r .state <<<"$st") in wave $(jq -r .wave <<<"$st") after ${duration}s" ;;
  esac
  noticed=-
  [ -z "$end" ] || noticed="$(secs_between "$start" "$end") s"
  printf '| %s | %s | %s | %s | %s (%s%%) | %s | %s |\n' "$n" "$rate" "$mode" "$outcome" "$exposure" $((exposure * 100 / n)) "$noticed" \
    "$(jq -c '[.waves[] | [.offered, .updated, .failed, .silent]]' <<<"$st")"
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
  pids=()
}

echo "Waves 10,50,100; soak ${soak}s; --max-failures 10%; --min-devices N/20; --max-per-hour N/4 with an hour of ${hour}s; phones poll every ${poll}s for ${duration}s."
echo
echo "| phones | fail rate | mode | outcome | exposure | time to pause/complete | per wave [offered, updated, failed, silent] |"
echo "|---|---|---|---|---|---|---|"
for n in "${sizes[@]}"; do
  for rate in "${rates[@]}"; do
    if [ "$rate" = 0 ]; then
      one "$n" 0 -
      continue
    fi
    for mode in "${modes[@]}"; do one "$n" "$rate" "$mode"; done
  done
done
