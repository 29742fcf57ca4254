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
# Its --data is $node_data and its log $node_log when set (the front ends
# of a pool each have their own), else $work/data and $work/err.
start_server() {
  local data=${node_data:-$work/data} log=${node_log:-$work/err}
  "$du" serve --data "$data" --certs "$work/certs" --https 127.0.0.1:0 --http 127.0.0.1:0 --domain bench.example "$@" \
    >/dev/null 2>"$log" &
  server_pid=$!
  pids+=("$server_pid")
  addr=""; http=""
  until [ -n "$http" ] && [ -n "$addr" ]; do
    kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; return 1; }
    addr=$(grep -o '"listener":"https","addr":"[^"]*"' "$log" 2>/dev/null | sed 's/.*"addr":"\(.*\)"/\1/' || true)
    http=$(grep -o '"listener":"http","addr":"[^"]*"' "$log" 2>/dev/null | sed 's/.*"addr":"\(.*\)"/\1/' || true)
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

# phone_load RESULT ARGS...: runs `phone load ARGS... --json` into RESULT
# and sets $lgcpu, the load generator's CPU seconds: it shares the machine
# with what it measures.
phone_load() {
  local out=$1 TIMEFORMAT='%U %S'
  shift
  { time "$du" phone load "$@" --json >"$out" 2>"$work/loaderr" || true; } 2>"$work/loadtime"
  lgcpu=$(awk '{print $1 + $2}' "$work/loadtime")
}

# start_postgres: initdb into $work/pg and start a throwaway PostgreSQL on
# a free loopback port (and a socket there), as internal/pgtest does: as
# root, initdb and pg_ctl run as the postgres user. Durable settings
# (fsync on), unlike pgtest's. Sets $pg_bin, $pg_dir, $pg_port; stop it
# with stop_postgres (in the script's EXIT trap).
start_postgres() {
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -x "$pg_bin/initdb" ] || { echo "PostgreSQL is not installed (Debian: apt-get install postgresql)" >&2; return 1; }
  pg_run=()
  pg_dir="$work/pg"
  mkdir -p "$pg_dir"
  if [ "$(id -u)" = 0 ]; then
    pg_run=(runuser -u postgres --)
    chmod 711 "$work"
    chown postgres: "$pg_dir"
  fi
  "${pg_run[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null
  pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "${pg_run[@]}" "$pg_bin/pg_ctl" start -D "$pg_dir/data" -w -l "$pg_dir/log" \
    -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c max_connections=200" >/dev/null
}

stop_postgres() {
  if [ -n "${pg_dir:-}" ] && [ -f "$pg_dir/data/postmaster.pid" ]; then
    "${pg_run[@]}" "$pg_bin/pg_ctl" stop -D "$pg_dir/data" -m immediate -w >/dev/null 2>&1 || true
  fi
}

# pg_dsn DATABASE: the URL of a database on the throwaway server.
pg_dsn() { echo "postgres://postgres@127.0.0.1:$pg_port/$1?sslmode=disable"; }

# pg_sql DATABASE SQL: runs SQL, printing the rows unaligned.
pg_sql() { "$pg_bin/psql" -qAtX -d "$(pg_dsn "$1")" -c "$2"; }

# pg_cpu_ticks: the CPU time of the PostgreSQL server's processes (the
# postmaster and its backends), in clock ticks.
pg_cpu_ticks() {
  local pm t=0 p
  pm=$(head -1 "$pg_dir/data/postmaster.pid")
  for p in "$pm" $(ps -o pid= --ppid "$pm"); do
    t=$(( t + $(cpu_ticks "$p" 2>/dev/null || echo 0) ))
  done
  echo "$t"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
