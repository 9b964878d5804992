#!/usr/bin/env bash
# bench/overhead.sh - a first measurement (issue 8 builds the full bench): non-stream req/s and
# latency percentiles at N connections, direct to `keel sim` vs through keel with a one-target
# model, alternating A/B for RUNS rounds; prints each run and the medians.
#   bench/overhead.sh [CONNECTIONS=50] [SECONDS=5] [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${1:-50}; secs=${2:-5}; runs=${3:-3}
command -v wrk >/dev/null || { echo "bench: needs wrk (apt-get install wrk)" >&2; exit 1; }
make -s build/keel
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
build/keel sim --listen 127.0.0.1:0 2>"$dir/sim.log" &
for _ in $(seq 100); do grep -q "sim listening" "$dir/sim.log" && break; sleep 0.05; done
sim_port=$(sed -n 's/.*sim listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$dir/sim.log")
cat >"$dir/keel.yaml" <<YAML
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstreams: [ { name: sim, base_url: "http://127.0.0.1:$sim_port/v1" } ]
models: [ { name: healthy, targets: [ { upstream: sim, model: healthy } ] } ]
YAML
build/keel serve -c "$dir/keel.yaml" 2>"$dir/keel.log" &
for _ in $(seq 100); do grep -q "listening api=" "$dir/keel.log" && break; sleep 0.05; done
keel_port=$(sed -n 's/.*listening api=127.0.0.1:\([0-9]*\).*/\1/p' "$dir/keel.log")

run() { # name port -> "rps p50 p99"
    wrk -t2 -c"$conns" -d"${secs}s" --latency -s bench/chat.lua "http://127.0.0.1:$2/v1/chat/completions" |
        awk -v n="$1" '/Requests\/sec/ {rps=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2}
                       END {printf "%s %s %s %s\n", n, rps, p50, p99}'
}
: >"$dir/results"
wrk -t2 -c"$conns" -d1s -s bench/chat.lua "http://127.0.0.1:$keel_port/v1/chat/completions" >/dev/null # warm up
for i in $(seq "$runs"); do
    run direct "$sim_port" | tee -a "$dir/results"
    run keel "$keel_port" | tee -a "$dir/results"
done
echo "--- medians of $runs runs, $conns connections, ${secs}s each (rps p50 p99)"
for n in direct keel; do
    grep "^$n " "$dir/results" | sort -k2 -n | awk -v n="$n" '{a[NR]=$0} END {split(a[int((NR+1)/2)], f, " "); print n, f[2], "req/s"}'
    for col in 3 4; do
        grep "^$n " "$dir/results" | awk -v c="$col" '{v=$c; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' |
            sort -n | awk -v n="$n" -v c="$col" '{a[NR]=$1} END {printf "%s %s %.3f ms\n", n, (c==3?"p50":"p99"), a[int((NR+1)/2)]}'
    done
done
