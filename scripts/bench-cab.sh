#!/usr/bin/env bash
# bench-cab.sh: time cabinet extraction by our code against cabextract.
#
# Builds a multi-megabyte MSZIP cabinet with gcab from generated
# semi-compressible data, and an LZX cabinet (window 2^21) of the same data
# with the test encoder in internal/cab/internal/lzxenc (no packaged tool
# makes LZX cabinets; the test TestBenchCabinet of internal/cab writes both
# with -benchcab.dir), then extracts them and the small LZX fixture
# alternately with our extractor and with cabextract, REPS times each, from
# disk to a fresh directory every time. Prints the median wall time of
# each, the ratio ours/cabextract, and the peak resident memory of one
# extraction of the MSZIP and the big LZX cabinet by each tool.
#
# Environment:
#   EXTRACT_CMD  our extractor, with {cab} and {dir} placeholders. Default:
#                a build of the CLI, "deviceupdate cab extract {cab} -o {dir}".
#   REPS         repetitions per tool and cabinet (default 9)
#   SIZE_MIB     size of the generated data (default 24)
#   LZX_CAB      LZX cabinet (default ../shared/testdata/cab/lzx.cab)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
reps=${REPS:-9}
size_mib=${SIZE_MIB:-24}
lzx_cab=${LZX_CAB:-$root/../shared/testdata/cab/lzx.cab}

for tool in gcab cabextract go; do
	command -v "$tool" >/dev/null || { echo "bench-cab: $tool is not installed" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$root" && go build -o "$work/deviceupdate" ./cmd/deviceupdate)
ours_tmpl=${EXTRACT_CMD:-"$work/deviceupdate cab extract {cab} -o {dir}"}
theirs_tmpl="cabextract -q -d {dir} {cab}"

mkdir "$work/src"
(cd "$root" && go test -run '^TestBenchCabinet$' -count 1 ./internal/cab/ -args -benchcab.dir "$work/src" -benchcab.mib "$size_mib" >/dev/null)
mv "$work/src/lzx.cab" "$work/lzx.cab"
(cd "$work/src" && gcab -c -z "$work/mszip.cab" firmware.bin)

# expand TEMPLATE CAB DIR prints the command with placeholders filled in.
expand() {
	local cmd=${1//\{cab\}/$2}
	printf '%s' "${cmd//\{dir\}/$3}"
}

# time_us TEMPLATE CAB: extract into a fresh directory, print microseconds.
time_us() {
	local dir="$work/out"
	rm -rf "$dir"
	mkdir "$dir"
	local cmd
	cmd=$(expand "$1" "$2" "$dir")
	local start end
	start=$(date +%s%N)
	eval "$cmd" >/dev/null
	end=$(date +%s%N)
	echo $(((end - start) / 1000))
}

median() {
	sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# check CAB: both tools must produce identical trees.
check() {
	rm -rf "$work/a" "$work/b"
	mkdir "$work/a" "$work/b"
	eval "$(expand "$ours_tmpl" "$1" "$work/a")" >/dev/null
	eval "$(expand "$theirs_tmpl" "$1" "$work/b")" >/dev/null
	diff -r "$work/a" "$work/b" >/dev/null || { echo "bench-cab: outputs differ for $1" >&2; exit 1; }
}

bench() {
	local name=$1 cab=$2
	check "$cab"
	local ours=() theirs=()
	for _ in $(seq "$reps"); do
		ours+=("$(time_us "$ours_tmpl" "$cab")")
		theirs+=("$(time_us "$theirs_tmpl" "$cab")")
	done
	local mo mt bytes
	mo=$(printf '%s\n' "${ours[@]}" | median)
	mt=$(printf '%s\n' "${theirs[@]}" | median)
	bytes=$(du -sb "$work/a" | cut -f1)
	awk -v n="$name" -v o="$mo" -v t="$mt" -v b="$bytes" -v r="$reps" 'BEGIN {
		printf "%-6s %9.1f MB out  ours %8.1f ms (%6.1f MB/s)  cabextract %8.1f ms (%6.1f MB/s)  ours/cabextract %.2f  (median of %d)\n",
			n, b / 1e6, o / 1000, b / o, t / 1000, b / t, o / t, r
	}'
}

echo "ours:       $ours_tmpl"
echo "cabextract: $theirs_tmpl"
bench MSZIP "$work/mszip.cab"
bench LZX "$work/lzx.cab"
if [[ -f $lzx_cab ]]; then
	bench LZXfix "$lzx_cab"
else
	echo "LZXfix skipped: $lzx_cab not found"
fi

if [[ -x /usr/bin/time ]]; then
	for cab in mszip lzx; do
		for tmpl in "$ours_tmpl" "$theirs_tmpl"; do
			rm -rf "$work/out"
			mkdir "$work/out"
			rss=$( { /usr/bin/time -v bash -c "$(expand "$tmpl" "$work/$cab.cab" "$work/out")" >/dev/null; } 2>&1 |
				awk -F': ' '/Maximum resident set size/ { print $2 }')
			printf 'peak RSS extracting %s.cab: %6s KiB  (%s)\n' "$cab" "$rss" "$(expand "$tmpl" CAB DIR)"
		done
	done
fi
