#!/usr/bin/env bash
# bench/workers.sh (`make bench-workers`; also part of `make bench`) - keel with one worker and
# with two (workers: N, README "Many cores"), beside nginx with one and two, each in front of
# the canned upstream (bench/canned.conf), audit log on, alternating RUNS rounds of SECONDS,
# wrk -t2 -c50. This machine's two cores are shared with wrk and the upstream, so two workers
# can only show that they cost nothing; what many cores would give is modelled from two
# measurements printed at the end: the CPU one request costs one loop, and the time a request
# holds the lock over what the workers share (KEEL_LOCK_TIMING=1, keel_worker_lock_*).
#   bench/workers.sh [SECONDS=5] [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}; runs=${2:-3}
BUILD=${BUILD:-build}
for t in wrk nginx node curl; do command -v $t >/dev/null || { echo "bench: needs $t (apt-get install $t)" >&2; exit 1; }; done
if [ -z "${KEEL:-}" ]; then make -s "$BUILD/keel"; KEEL=$BUILD/keel; fi
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
. bench/lib.sh

start_canned "$dir"
declare -A port_of pids_of
for n in 1 2; do
    port_of[nginx$n]=$(free_port)
    mkdir "$dir/nginx$n"
    sed -e "s#@DIR@#$dir/nginx$n#g" -e "s#@SIM_PORT@#$canned#g" -e "s#@NGINX_PORT@#${port_of[nginx$n]}#g" \
        -e "s#^worker_processes 1;#worker_processes $n;#" bench/nginx.conf >"$dir/nginx$n.conf"
    nginx -c "$dir/nginx$n.conf" -p "$dir/nginx$n" &
done
for _ in $(seq 100); do [ -s "$dir/nginx1/nginx.pid" ] && [ -s "$dir/nginx2/nginx.pid" ] && break; sleep 0.05; done
sleep 0.3
for n in 1 2; do pids_of[nginx$n]=$(pgrep -P "$(cat "$dir/nginx$n/nginx.pid")" -f "nginx: worker" | tr '\n' ' '); done

for n in 1 2; do
    cat >"$dir/keel$n.yaml" <<YAML
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
max_inflight: 20000
workers: $n
audit_log: $dir/audit$n.jsonl
upstreams:
  - { name: canned, base_url: "http://127.0.0.1:$canned/v1" }
models:
  - { name: one, targets: [ { upstream: canned, model: canned, stream_upstream: false } ] }
YAML
    "$KEEL" serve -c "$dir/keel$n.yaml" 2>"$dir/keel$n.log" &
    pids_of[keel$n]=$!
    port_of[keel$n]=$(port_of "$dir/keel$n.log" "listening api=")
done
# the same two-worker keel with its lock timed, for the model (not in the table: the timing
# itself costs two clock reads per lock)
KEEL_LOCK_TIMING=1 "$KEEL" serve -c "$dir/keel2.yaml" 2>"$dir/timed.log" &
timed_pid=$!
timed=$(port_of "$dir/timed.log" "listening api=")
timed_admin=$(sed -n 's/.*admin=127.0.0.1:\([0-9]*\).*/\1/p' "$dir/timed.log" | head -1)

ticks() { local t=0; for p in $1; do t=$((t + $(cpu_ticks "$p"))); done; echo $t; }
run() { # name port "pids" -> "name rps cpu_us_per_req"
    local before after out
    before=$(ticks "$3")
    out=$(KEEL_BENCH_MODEL=one wrk -t2 -c50 -d"${secs}s" -s bench/chat.lua "http://127.0.0.1:$2/v1/chat/completions")
    after=$(ticks "$3")
    grep -q "Non-2xx" <<<"$out" && { echo "bench: $1 answered errors:" >&2; echo "$out" >&2; exit 1; }
    awk -v n="$1" -v t=$((after - before)) -v hz="$tick_hz" '
        /requests in/ {reqs=$1} /Requests\/sec/ {rps=$2}
        END {printf "%s %.0f %.1f\n", n, rps, t * 1e6 / hz / reqs}' <<<"$out"
}
paths="nginx1 nginx2 keel1 keel2"
for p in $paths; do run "$p" "${port_of[$p]}" "${pids_of[$p]}" >/dev/null; done # warm-up
: >"$dir/r"
for i in $(seq "$runs"); do
    echo "bench: workers, round $i of $runs" >&2
    for p in $paths; do run "$p" "${port_of[$p]}" "${pids_of[$p]}" >>"$dir/r"; done
done
stat() { { grep "^$1 " "$dir/r" || true; } | awk -v c="$2" '{print $c}' | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
echo "| proxy | req/s @50 | CPU µs/req @50 |"
echo "|---|---|---|"
for p in $paths; do
    case $p in nginx*) name="nginx, ${p#nginx} worker(s)" ;; *) name="keel with audit log, workers: ${p#keel}" ;; esac
    printf "| %s | %s | %s |\n" "$name" "$(stat "$p" 2)" "$(stat "$p" 3)"
done
echo
echo "- keel 2 workers / 1 worker: req/s **$(ratio "$(stat keel2 2)" "$(stat keel1 2)")**," \
     "CPU per request **$(ratio "$(stat keel2 3)" "$(stat keel1 3)")** (nginx 2/1: $(ratio "$(stat nginx2 2)" "$(stat nginx1 2)"), $(ratio "$(stat nginx2 3)" "$(stat nginx1 3)"))"

# the model: one loop's CPU per request c (keel1 above), and per request the lock's hold time h
# and acquisitions, measured on the timed instance under the same load
metric() { curl -s "http://127.0.0.1:$timed_admin/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
taken0=$(( $(metric 'keel_worker_lock_total{waited="no"}') + $(metric 'keel_worker_lock_total{waited="yes"}') ))
waited0=$(metric 'keel_worker_lock_total{waited="yes"}'); held0=$(metric keel_worker_lock_held_seconds_total)
out=$(KEEL_BENCH_MODEL=one wrk -t2 -c50 -d"${secs}s" -s bench/chat.lua "http://127.0.0.1:$timed/v1/chat/completions")
reqs=$(awk '/requests in/ {print $1}' <<<"$out")
taken=$(( $(metric 'keel_worker_lock_total{waited="no"}') + $(metric 'keel_worker_lock_total{waited="yes"}') - taken0 ))
waited=$(( $(metric 'keel_worker_lock_total{waited="yes"}') - waited0 )); held=$(metric keel_worker_lock_held_seconds_total)
c=$(stat keel1 3)
awk -v reqs="$reqs" -v taken="$taken" -v waited="$waited" -v held="$held" -v held0="$held0" -v c="$c" 'BEGIN {
    h = (held - held0) * 1e6 / reqs
    printf "- the shared lock, 2 workers under load: %.1f acquisitions per request, %.1f%% of them waited, held %.2f µs per request\n", taken / reqs, 100 * waited / taken, h
    printf "- model: one loop spends %.1f µs of CPU per request, %.2f µs of it holding the lock (%.1f%%). ", c, h, 100 * h / c
    printf "N loops serve at most min(N / %.1f µs, 1 / %.2f µs) requests: ", c, h
    for (n = 4; n <= 64; n *= 2) printf "%d cores %.1fx one loop%s", n, (n < c / h ? n : c / h), n < 64 ? ", " : ""
    printf " (the lock bounds it at %.0fx)\n", c / h
}'
