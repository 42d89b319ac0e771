#!/bin/bash
# CPU time per lifecycle on PostgreSQL: the server's and its database backends', for one run of
# the load generator (see loadgen.rs) against a server started here on a fresh database.
#
# Latency and throughput on a shared 2-core machine follow whatever else runs on it; the CPU
# seconds a lifecycle costs the server and PostgreSQL move far less with it, so they are what
# to compare between two builds, back to back:
#
#   server/examples/loadgen-cpu.sh target/release 10        # after `cargo build --release
#   server/examples/loadgen-cpu.sh /tmp/base 10             #   -p itsmflow --example loadgen`
#
# DIR holds `itsmflow` and `examples/loadgen` (a target profile directory, or a copy of one).
# The server figure includes a one-second healthz baseline; the backends' one does not.
# Needs Linux (/proc) and psql; POSTGRES names any database of the server (the run's own is
# created beside it, and dropped at the end).
set -euo pipefail

dir=${1:?usage: loadgen-cpu.sh DIR [SECONDS] [AGENTS]}
secs=${2:-10}
agents=${3:-32}
admin=${POSTGRES:-postgres:///postgres?host=/var/run/postgresql}
processes=$(cd "$(dirname "$0")/../../processes" && pwd)
db=itsmflow_cpu_$$
url=${admin/\/\/\/postgres/\/\/\/$db}
out=$(mktemp -d)

psql -q "$admin" -c "CREATE DATABASE $db"
cleanup() {
    [ -n "${server:-}" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    psql -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
    rm -rf "$out"
}
trap cleanup EXIT

ITSMFLOW_LOG=warn "$dir/itsmflow" serve --listen 127.0.0.1:0 --database-url "$url" \
    --processes "$processes" >"$out/server" 2>&1 &
server=$!
for _ in $(seq 1 120); do
    grep -q "keep it safe" "$out/server" && break
    sleep 0.5
done
addr=$(sed -n 's/^itsmflow listening on //p' "$out/server" | head -1)
token=$(sed -n 's/.*keep it safe): //p' "$out/server" | head -1)

# utime + stime, in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

before=$(ticks "$server")
"$dir/examples/loadgen" --url "$addr" --token "$token" --agents "$agents" --seconds "$secs" \
    --warmup-seconds 0 --baseline-seconds 1 | tee "$out/loadgen"
after=$(ticks "$server")
backends=0
for pid in $(psql -At "$admin" -c "SELECT pid FROM pg_stat_activity WHERE datname = '$db'"); do
    backends=$((backends + $(ticks "$pid")))
done
lifecycles=$(sed -n 's/^lifecycles\/s: .*(\([0-9]*\) completed.*/\1/p' "$out/loadgen")
awk -v s=$((after - before)) -v p="$backends" -v n="$lifecycles" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "CPU per lifecycle: server %.0f us, PostgreSQL backends %.0f us (%d lifecycles)\n",
             s / hz / n * 1e6, p / hz / n * 1e6, n }'
