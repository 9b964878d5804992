#!/usr/bin/env bash
# bench/state.sh (`make bench-state`) - what `state: redis` costs and how fast it carries a trip:
#   1. the non-stream hot path (model `one`: pass-through, keel sim upstream) through keel alone
#      and through keel with state: redis, alternating RUNS rounds of SECONDS: req/s and keel's
#      CPU µs per request, medians;
#   2. 100 trips: a target opened on instance A (one failed request) and applied on instance B
#      through Redis; the delay from A's breaker event to B's "through redis" log line (both in
#      ms on the same clock), median and max.
#   bench/state.sh [SECONDS=5] [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}; runs=${2:-3}
for t in wrk redis-server curl node; do command -v $t >/dev/null || { echo "bench: needs $t" >&2; exit 1; }; done
make -s build/keel
dir=$(mktemp -d)
trap 'kill $(jobs -p) ${alone_pid:-} ${a_pid:-} ${b_pid:-} 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
. bench/lib.sh

build/keel sim --listen 127.0.0.1:0 2>"$dir/sim.log" &
sim=$(port_of "$dir/sim.log" "sim listening on ")
rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$dir/redis.log" 2>&1 &
for _ in $(seq 100); do grep -q "Ready to accept" "$dir/redis.log" && break; sleep 0.05; done

config() { # $1: extra top-level lines
    cat <<YAML
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
workers: 1 # one loop, as nginx runs one worker here (bench/workers.sh measures more)
max_inflight: 20000
$1
upstreams:
  - { name: sim, base_url: "http://127.0.0.1:$sim/v1" }
models:
  - { name: one, targets: [ { upstream: sim, model: healthy, stream_upstream: false } ] }
YAML
    for i in $(seq 0 99); do
        echo "  - { name: trip$i, targets: [ { upstream: sim, model: \"503#t$i\", breaker: { failures: 1, cooldown: 1h } }, { upstream: sim, model: healthy } ] }"
    done
}
config "" >"$dir/alone.yaml"
config "state: { redis: \"redis://127.0.0.1:$rport/0\", prefix: \"bench:\" }" >"$dir/shared.yaml"
start() { build/keel serve -c "$2" >/dev/null 2>"$dir/$1.log" & echo $!; }
alone_pid=$(start alone "$dir/alone.yaml"); alone=$(port_of "$dir/alone.log" "listening api=")
a_pid=$(start a "$dir/shared.yaml"); a=$(port_of "$dir/a.log" "listening api=")
b_pid=$(start b "$dir/shared.yaml"); b=$(port_of "$dir/b.log" "listening api=")
for _ in $(seq 100); do grep -q "redis .* up" "$dir/a.log" && grep -q "redis .* up" "$dir/b.log" && break; sleep 0.05; done

run() { # name pid port -> "rps cpu_us"
    local before after out
    before=$(cpu_ticks "$2")
    out=$(KEEL_BENCH_MODEL=one wrk -t2 -c50 -d"${secs}s" -s bench/chat.lua "http://127.0.0.1:$3/v1/chat/completions")
    after=$(cpu_ticks "$2")
    awk -v t=$((after - before)) -v hz="$tick_hz" '/requests in/ {reqs=$1} /Requests\/sec/ {rps=$2}
        END {printf "%.0f %.1f\n", rps, t * 1e6 / hz / reqs}' <<<"$out"
}
echo "bench-state: the hot path, $runs rounds of ${secs}s, alternating" >&2
KEEL_BENCH_MODEL=one wrk -t2 -c50 -d1s -s bench/chat.lua "http://127.0.0.1:$alone/v1/chat/completions" >/dev/null
KEEL_BENCH_MODEL=one wrk -t2 -c50 -d1s -s bench/chat.lua "http://127.0.0.1:$a/v1/chat/completions" >/dev/null
: >"$dir/alone.r"; : >"$dir/shared.r"
for _ in $(seq "$runs"); do
    run alone "$alone_pid" "$alone" >>"$dir/alone.r"
    run shared "$a_pid" "$a" >>"$dir/shared.r"
done

echo "bench-state: 100 trips from A to B" >&2
for i in $(seq 0 99); do
    curl -s "http://127.0.0.1:$a/v1/chat/completions" -d "{\"model\":\"trip$i\",\"messages\":[]}" >/dev/null
    sleep 0.02
done
sleep 0.5
# A's breaker event (ts in its JSON) and B's line applying it (the log line's own timestamp)
node -e '
const fs = require("fs");
const ms = (iso) => Date.parse(iso);
const opened = {}, applied = {};
for (const l of fs.readFileSync(process.argv[1], "utf8").split("\n")) {
  const m = /event (\{.*"type":"breaker".*\})/.exec(l);
  if (m) { const e = JSON.parse(m[1]); if (e.to === "open" && e.from === "closed") opened[e.model] = ms(e.ts); }
}
for (const l of fs.readFileSync(process.argv[2], "utf8").split("\n")) {
  const m = /^(\S+) info breaker \S+\/(503#t\d+): closed -> open, as instance/.exec(l);
  if (m) applied[m[2]] = ms(m[1]);
}
const d = Object.keys(opened).filter((k) => k in applied).map((k) => applied[k] - opened[k]).sort((x, y) => x - y);
console.log(`trips ${d.length} median_ms ${d[Math.floor((d.length - 1) / 2)]} max_ms ${d[d.length - 1]}`);
' "$dir/a.log" "$dir/b.log" >"$dir/trips"

printf '| path | req/s | keel CPU µs/request |\n|---|---|---|\n'
printf '| keel alone (no state:) | %s | %s |\n' "$(cut -d' ' -f1 "$dir/alone.r" | median)" "$(cut -d' ' -f2 "$dir/alone.r" | median)"
printf '| keel with state: redis | %s | %s |\n' "$(cut -d' ' -f1 "$dir/shared.r" | median)" "$(cut -d' ' -f2 "$dir/shared.r" | median)"
echo
echo "raw: alone $(tr '\n' ';' <"$dir/alone.r") shared $(tr '\n' ';' <"$dir/shared.r")"
echo "A trip to another instance through Redis: $(cat "$dir/trips")"
