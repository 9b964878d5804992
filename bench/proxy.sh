#!/usr/bin/env bash
# bench/proxy.sh (`make bench-proxy`; also part 0 of `make bench`) - what a proxy costs per
# request, measured against an upstream that costs next to nothing: nginx answering a canned
# chat.completion (bench/canned.conf, one worker). Side by side in one run, alternating RUNS
# rounds of SECONDS, wrk -t2 -c50 (and -c1 for latency):
#   direct      wrk straight at the canned upstream (its own cost and the machine's ceiling)
#   nginx       nginx as a plain reverse proxy (bench/nginx.conf, one worker, keepalive)
#   keel        keel's pass-through path (stream_upstream: false), no audit log
#   keel-audit  the same with the audit log on, as keel runs in production (seed 000's
#               percentiles come from it)
# Prints a markdown table (medians: req/s, p50, p99, CPU µs per request from /proc) and the
# ratios to nginx; RAW=FILE keeps the raw runs.
#   bench/proxy.sh [SECONDS=5] [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}; runs=${2:-3}
BUILD=${BUILD:-build}
for t in wrk nginx node; do command -v $t >/dev/null || { echo "bench: needs $t (apt-get install $t)" >&2; exit 1; }; done
if [ -z "${KEEL:-}" ]; then make -s "$BUILD/keel"; KEEL=$BUILD/keel; fi # KEEL=BINARY: another build
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
. bench/lib.sh

start_canned "$dir"
nginx_port=$(free_port)
sed -e "s#@DIR@#$dir/proxy#g" -e "s#@SIM_PORT@#$canned#g" -e "s#@NGINX_PORT@#$nginx_port#g" bench/nginx.conf >"$dir/nginx.conf"
mkdir "$dir/proxy"
nginx -c "$dir/nginx.conf" -p "$dir/proxy" &
for _ in $(seq 100); do [ -s "$dir/canned.pid" ] && [ -s "$dir/proxy/nginx.pid" ] && break; sleep 0.05; done
sleep 0.2
nginx_pid=$(pgrep -P "$(cat "$dir/proxy/nginx.pid")" -f "nginx: worker")

keel_config() { # $1: extra top-level lines
    cat <<YAML
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
workers: 1 # one loop, as nginx runs one worker here (bench/workers.sh measures more)
max_inflight: 20000
$1
upstreams:
  - { name: canned, base_url: "http://127.0.0.1:$canned/v1" }
models:
  - { name: one, targets: [ { upstream: canned, model: canned, stream_upstream: false } ] }
YAML
}
keel_config "" >"$dir/keel.yaml"
keel_config "audit_log: $dir/audit.jsonl" >"$dir/keel-audit.yaml"
"$KEEL" serve -c "$dir/keel.yaml" 2>"$dir/keel.log" &
keel_pid=$!
"$KEEL" serve -c "$dir/keel-audit.yaml" 2>"$dir/keel-audit.log" &
audit_pid=$!
keel=$(port_of "$dir/keel.log" "listening api=")
keel_audit=$(port_of "$dir/keel-audit.log" "listening api=")

declare -A pid_of=([nginx]=$nginx_pid [keel]=$keel_pid [keel-audit]=$audit_pid)
declare -A port_of=([direct]=$canned [nginx]=$nginx_port [keel]=$keel [keel-audit]=$keel_audit)
run() { # name conns -> "name rps p50_ms p99_ms cpu_us_per_req"
    local pid=${pid_of[$1]:-} before=0 out
    [ -n "$pid" ] && before=$(cpu_ticks "$pid")
    out=$(KEEL_BENCH_MODEL=one wrk -t"$(( $2 < 2 ? 1 : 2 ))" -c"$2" -d"${secs}s" --latency -s bench/chat.lua \
          "http://127.0.0.1:${port_of[$1]}/v1/chat/completions")
    local after=$before; [ -n "$pid" ] && after=$(cpu_ticks "$pid")
    grep -q "Non-2xx" <<<"$out" && { echo "bench: $1 answered errors:" >&2; echo "$out" >&2; exit 1; }
    awk -v n="$1" -v t=$((after - before)) -v hz="$tick_hz" -v haspid="${pid:+1}" '
        function ms(v) { if (v ~ /us$/) { sub(/us/,"",v); return v/1000 } if (v ~ /ms$/) { sub(/ms/,"",v); return v+0 } sub(/s/,"",v); return v*1000 }
        /requests in/ {reqs=$1} /Requests\/sec/ {rps=$2} $1=="50%" {p50=ms($2)} $1=="99%" {p99=ms($2)}
        END {printf "%s %.0f %.3f %.3f %s\n", n, rps, p50, p99, haspid ? sprintf("%.1f", t * 1e6 / hz / reqs) : "-"}' <<<"$out"
}
paths="direct nginx keel keel-audit"
for p in $paths; do run "$p" 50 >/dev/null; done # warm-up: connections, caches
: >"$dir/r50"; : >"$dir/r1"
for i in $(seq "$runs"); do
    echo "bench: canned upstream, round $i of $runs" >&2
    for p in $paths; do run "$p" 50 >>"$dir/r50"; done
    for p in $paths; do run "$p" 1 >>"$dir/r1"; done
done
stat() { { grep "^$2 " "$1" || true; } | awk -v c="$3" '{print $c}' | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
echo "| path | req/s @50 | p50 ms @50 | p99 ms @50 | CPU µs/req @50 | CPU µs/req @1 | p50 ms @1 |"
echo "|---|---|---|---|---|---|---|"
for p in $paths; do
    printf "| %s | %s | %s | %s | %s | %s | %s |\n" "$p" "$(stat "$dir/r50" "$p" 2)" "$(stat "$dir/r50" "$p" 3)" \
        "$(stat "$dir/r50" "$p" 4)" "$(stat "$dir/r50" "$p" 5)" "$(stat "$dir/r1" "$p" 5)" "$(stat "$dir/r1" "$p" 3)"
done
echo
n_rps=$(stat "$dir/r50" nginx 2); n_cpu=$(stat "$dir/r50" nginx 5)
echo "- keel/nginx CPU per request: **$(ratio "$(stat "$dir/r50" keel 5)" "$n_cpu")** without the audit log," \
     "**$(ratio "$(stat "$dir/r50" keel-audit 5)" "$n_cpu")** with it (target: ≤ 1.2 with it)"
echo "- keel/nginx req/s: **$(ratio "$(stat "$dir/r50" keel 2)" "$n_rps")** without the audit log," \
     "**$(ratio "$(stat "$dir/r50" keel-audit 2)" "$n_rps")** with it (target: ≥ 0.8)"
if [ -n "${RAW:-}" ]; then { echo "50 connections:"; cat "$dir/r50"; echo "1 connection:"; cat "$dir/r1"; } >"$RAW"; fi
