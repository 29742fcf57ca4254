# Shared by the benchmark scripts: source it after setting $work (a
# temporary folder) and the pids array. Needs openssl.

# build_deviceupdate: builds the binary into $work and sets $du.
build_deviceupdate() {
  go build -o "$work/deviceupdate" ./cmd/deviceupdate
  du="$work/deviceupdate"
}

# start_server [FLAGS...]: runs `serve` on free loopback ports (HTTPS and
# internal HTTP) with extra FLAGS, and sets $addr, $http and $server_pid;
# exports DEVICEUPDATE_SERVER and DEVICEUPDATE_CERTS for admin commands.
start_server() {
  "$du" serve --data "$work/data" --certs "$work/certs" --https 127.0.0.1:0 --http 127.0.0.1:0 --domain bench.example "$@" \
    >/dev/null 2>"$work/err" &
  server_pid=$!
  pids+=("$server_pid")
  addr=""; http=""
  until [ -n "$http" ] && [ -n "$addr" ]; do
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/err" >&2; return 1; }
    addr=$(grep -o '"listener":"https","addr":"[^"]*"' "$work/err" 2>/dev/null | sed 's/.*"addr":"\(.*\)"/\1/' || true)
    http=$(grep -o '"listener":"http","addr":"[^"]*"' "$work/err" 2>/dev/null | sed 's/.*"addr":"\(.*\)"/\1/' || true)
    sleep 0.05
  done
  export DEVICEUPDATE_SERVER="https://$addr" DEVICEUPDATE_CERTS="$work/certs"
}

# import_update VERSION SIZE_BYTES: packs a CX600 CPE update of a random
# image, signed by a publisher the server trusts, and imports it; sets
# $rel, the image's path under DeviceUpdateFiles_Int/.
import_update() {
  if [ ! -f "$work/pub.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/pub.key" -out "$work/pub.pem" -days 2 \
      -subj "/CN=Bench Publisher" -addext "extendedKeyUsage=codeSigning" 2>/dev/null
    cp "$work/pub.pem" "$work/certs/trusted/"
  fi
  head -c "$2" /dev/urandom >"$work/CPE.nbt"
  "$du" pack --brand Polycom --model CX600 --revision A --version "$1" --cert "$work/pub.pem" --key "$work/pub.key" \
    -o "$work/pkg.cab" "$work/CPE.nbt" >/dev/null
  "$du" import "$work/pkg.cab" >/dev/null
  rel="UCPhone/Polycom/CX600/A/ENU/$1/CPE/CPE.nbt"
}

# rss_kib PID: the process's resident set, in KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# cpu_ticks PID: the process's user+system CPU time, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
