#!/usr/bin/env bash
# bench/bench.sh (`make bench`) - keel side by side with nginx and with no proxy, in one run on
# one machine, against the same upstream (`keel sim`) and the same load generators; medians
# and the raw runs into bench/RESULTS.md. Speed is measured here, never asserted in a test.
#   0. the proxy's own cost: bench/proxy.sh, nginx vs keel (audit log off and on) in front of
#      an upstream that costs next to nothing (nginx answering a canned completion)
#   1. non-stream: (a) direct (b) nginx, plain reverse proxy, 1 worker (c) keel, one-target model
#      (d) keel, two-target chain whose first breaker is open. wrk at 50 and at 1 connection,
#      alternating a/b/c/d for RUNS rounds; CPU time each proxy spent per request. Also nginx
#      with 2 workers at 50 connections: whether a second loop would pay on this machine.
#   2. streams: 1k and 10k (or what the fd limit allows) concurrent SSE streams held open
#      through each path (bench/streams): RSS, fds, each chunk's one-way delay.
#   3. failure paths: a hung primary (what it costs beyond first_byte), a 503 failover (its
#      round trip), an open breaker; deadline accuracy.
#   4. keel audit over a million lines (bench/audit.sh).
#   bench/bench.sh [SECONDS=5] [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}; runs=${2:-3}
ulimit -n "$(ulimit -Hn)" # every process here holds thousands of streams
for t in wrk nginx curl node; do command -v $t >/dev/null || { echo "bench: needs $t (apt-get install $t)" >&2; exit 1; }; done
make -s build/keel build/streams
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
. bench/lib.sh

# ---------------------------------------------------------------- 0. the proxy's own cost
echo "bench: canned upstream (bench/proxy.sh)" >&2
RAW="$dir/proxy-raw" bench/proxy.sh "$secs" "$runs" >"$dir/proxy.md"

build/keel sim --listen 127.0.0.1:0 2>"$dir/sim.log" &
sim_pid=$!
sim=$(port_of "$dir/sim.log" "sim listening on ")
cat >"$dir/keel.yaml" <<YAML
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
workers: 1 # one loop, as nginx runs one worker here (bench/workers.sh measures more)
max_inflight: 20000
defaults: { breaker: { failures: 1, cooldown: 1h, max_cooldown: 1h } }
upstreams:
  - { name: sim, base_url: "http://127.0.0.1:$sim/v1" }
  - { name: simant, kind: anthropic, base_url: "http://127.0.0.1:$sim/v1" }
models:
  # the pass-through path: a non-stream client, a non-stream upstream, the bytes as they come
  - { name: one, targets: [ { upstream: sim, model: healthy, stream_upstream: false } ] }
  - { name: two, targets: [ { upstream: sim, model: "503#open", stream_upstream: false },
                           { upstream: sim, model: healthy, stream_upstream: false } ] }
  # the default for a non-stream client: keel asks for a stream and assembles the answer
  - { name: assembled, targets: [ { upstream: sim, model: healthy } ] }
  # an OpenAI client, an Anthropic target: the request translated, the Messages stream decoded
  # and assembled into one chat.completion
  - { name: translated, targets: [ { upstream: simant, model: healthy } ] }
  # Anthropic Messages clients (POST /v1/messages): an Anthropic target, its stream rebuilt into
  # one Message from the frames as sent; an OpenAI target, the request translated and its chunks
  # assembled into one Message
  - { name: messages, targets: [ { upstream: simant, model: healthy } ] }
  - { name: messages-translated, targets: [ { upstream: sim, model: healthy } ] }
  # a Responses API client (POST /v1/responses) of a chat target: translated, its chunks
  # assembled into one Response; an embeddings client (POST /v1/embeddings), passed through
  - { name: responses, targets: [ { upstream: sim, model: healthy } ] }
  - { name: embed, api: embeddings, targets: [ { upstream: sim, model: healthy } ] }
  - { name: ticks, targets: [ { upstream: sim, model: "ticks:1000" } ] }
  # failure paths: these breakers never open, so every request pays the failure
  - { name: hung, targets: [ { upstream: sim, model: hang, timeouts: { first_byte: 1s }, breaker: { failures: 1000000 } },
                             { upstream: sim, model: healthy } ] }
  - { name: failover, targets: [ { upstream: sim, model: "503", breaker: { failures: 1000000 } }, { upstream: sim, model: healthy } ] }
  - { name: deadline, targets: [ { upstream: sim, model: "hang#d", timeouts: { first_byte: 200ms }, breaker: { failures: 1000000 } } ] }
YAML
build/keel check -c "$dir/keel.yaml" >/dev/null
build/keel serve -c "$dir/keel.yaml" 2>"$dir/keel.log" &
keel_pid=$!
keel=$(port_of "$dir/keel.log" "listening api=")
nginx_port=$(free_port)
sed -e "s#@DIR@#$dir#g" -e "s#@SIM_PORT@#$sim#g" -e "s#@NGINX_PORT@#$nginx_port#g" bench/nginx.conf >"$dir/nginx.conf"
nginx -c "$dir/nginx.conf" -p "$dir" &
for _ in $(seq 100); do [ -s "$dir/nginx.pid" ] && pgrep -f "nginx: worker" >/dev/null && break; sleep 0.05; done
nginx_pid=$(pgrep -P "$(cat "$dir/nginx.pid")" -f "nginx: worker")
# the same nginx with two workers: does a second worker (loop) add req/s on this machine?
mkdir "$dir/n2"; nginx2_port=$(free_port)
sed -e "s#@DIR@#$dir/n2#g" -e "s#@SIM_PORT@#$sim#g" -e "s#@NGINX_PORT@#$nginx2_port#g" \
    -e "s/^worker_processes 1;/worker_processes 2;/" bench/nginx.conf >"$dir/n2/nginx.conf"
nginx -c "$dir/n2/nginx.conf" -p "$dir/n2" &
for _ in $(seq 100); do [ -s "$dir/n2/nginx.pid" ] && [ "$(pgrep -c -P "$(cat "$dir/n2/nginx.pid")")" = 2 ] && break; sleep 0.05; done
# open the chain's first breaker: one failure does it (failures: 1, cooldown 1h)
curl -s "http://127.0.0.1:$keel/v1/chat/completions" -d '{"model":"two","messages":[]}' >/dev/null

# ---------------------------------------------------------------- 1. non-stream
declare -A pid_of=([nginx]=$nginx_pid [keel]=$keel_pid [keel-open]=$keel_pid [keel-assembled]=$keel_pid
                   [keel-translated]=$keel_pid [keel-messages]=$keel_pid [keel-messages-translated]=$keel_pid
                   [keel-responses]=$keel_pid [keel-embeddings]=$keel_pid)
run() { # name port model conns [path] -> "name rps p50_ms p99_ms cpu_us_per_req"
    local pid=${pid_of[$1]:-} before=0 out path=${5:-/v1/chat/completions}
    [ -n "$pid" ] && before=$(cpu_ticks "$pid")
    out=$(KEEL_BENCH_MODEL=$3 KEEL_BENCH_PATH=$path wrk -t"$(( $4 < 2 ? 1 : 2 ))" -c"$4" -d"${secs}s" --latency \
          -s bench/chat.lua "http://127.0.0.1:$2$path")
    local after=$before; [ -n "$pid" ] && after=$(cpu_ticks "$pid")
    grep -q "Non-2xx" <<<"$out" && { echo "bench: $1 answered errors:" >&2; echo "$out" >&2; exit 1; }
    awk -v n="$1" -v t=$((after - before)) -v hz="$tick_hz" -v haspid="${pid:+1}" '
        function ms(v) { if (v ~ /us$/) { sub(/us/,"",v); return v/1000 } if (v ~ /ms$/) { sub(/ms/,"",v); return v+0 } sub(/s/,"",v); return v*1000 }
        /requests in/ {reqs=$1} /Requests\/sec/ {rps=$2} $1=="50%" {p50=ms($2)} $1=="99%" {p99=ms($2)}
        END {printf "%s %.0f %.3f %.3f %s\n", n, rps, p50, p99, haspid ? sprintf("%.1f", t * 1e6 / hz / reqs) : "-"}' <<<"$out"
}
: >"$dir/r50"; : >"$dir/r1"
echo "bench: non-stream, $runs rounds of ${secs}s per path and connection count" >&2
KEEL_BENCH_MODEL=one wrk -t2 -c50 -d1s -s bench/chat.lua "http://127.0.0.1:$keel/v1/chat/completions" >/dev/null
KEEL_BENCH_MODEL=healthy wrk -t2 -c50 -d1s -s bench/chat.lua "http://127.0.0.1:$nginx_port/v1/chat/completions" >/dev/null
KEEL_BENCH_MODEL=healthy wrk -t2 -c50 -d1s -s bench/chat.lua "http://127.0.0.1:$nginx2_port/v1/chat/completions" >/dev/null
for i in $(seq "$runs"); do
    run direct "$sim" healthy 50 >>"$dir/r50"; run nginx "$nginx_port" healthy 50 >>"$dir/r50"
    run nginx-2w "$nginx2_port" healthy 50 >>"$dir/r50"
    run keel "$keel" one 50 >>"$dir/r50"; run keel-open "$keel" two 50 >>"$dir/r50"
    run keel-assembled "$keel" assembled 50 >>"$dir/r50"; run keel-translated "$keel" translated 50 >>"$dir/r50"
    run keel-messages "$keel" messages 50 /v1/messages >>"$dir/r50"
    run keel-messages-translated "$keel" messages-translated 50 /v1/messages >>"$dir/r50"
    run keel-responses "$keel" responses 50 /v1/responses >>"$dir/r50"
    run keel-embeddings "$keel" embed 50 /v1/embeddings >>"$dir/r50"
    run direct "$sim" healthy 1 >>"$dir/r1"; run nginx "$nginx_port" healthy 1 >>"$dir/r1"
    run keel "$keel" one 1 >>"$dir/r1"; run keel-open "$keel" two 1 >>"$dir/r1"
    run keel-assembled "$keel" assembled 1 >>"$dir/r1"; run keel-translated "$keel" translated 1 >>"$dir/r1"
    run keel-messages "$keel" messages 1 /v1/messages >>"$dir/r1"
    run keel-messages-translated "$keel" messages-translated 1 /v1/messages >>"$dir/r1"
    run keel-responses "$keel" responses 1 /v1/responses >>"$dir/r1"
    run keel-embeddings "$keel" embed 1 /v1/embeddings >>"$dir/r1"
done
stat() { { grep "^$2 " "$1" || true; } | awk -v c="$3" '{print $c}' | median; }

# ---------------------------------------------------------------- 2. streams
# bench/streams holds N streams open on model ticks (a chunk a second, stamped with the sim's
# send time) and reports each chunk's one-way delay, plus RSS and fds of the proxy at the plateau.
# Two descriptors per stream in the proxy: N is capped by the hard open-file limit.
limit=$(ulimit -Hn); [ "$limit" = unlimited ] && limit=1000000
big=$(( (limit - 200) / 2 )); [ "$big" -gt 10000 ] && big=10000
: >"$dir/streams"
for n in 1000 "$big"; do
    echo "bench: $n concurrent streams" >&2
    for path in "direct $sim ticks:1000 $sim_pid" "nginx $nginx_port ticks:1000 $nginx_pid" "keel $keel ticks $keel_pid"; do
        set -- $path
        echo "$1 $n rss_before_kb=$(awk '/VmRSS/ {print $2}' "/proc/$4/status") $(build/streams "$2" "$3" "$n" 5 "$4")" >>"$dir/streams"
    done
    sleep 1 # the closed streams' sockets leave TIME_WAIT behind, not descriptors
done
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<" $(cat)"; }

# ---------------------------------------------------------------- 3. failure paths, deadlines
echo "bench: failure paths and deadlines" >&2
timed() { # model count -> one total time in ms per line
    for _ in $(seq "$2"); do
        curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$keel/v1/chat/completions" \
            -d "{\"model\":\"$1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
    done | awk '{printf "%.2f\n", $1 * 1000}'
}
hung=$(timed hung 5 | median)
deadline_ms=$(timed deadline 20 | tee "$dir/deadline" | median)
deadline_max=$(sort -n "$dir/deadline" | tail -1)
fo_p50=$(KEEL_BENCH_MODEL=failover wrk -t1 -c1 -d"${secs}s" --latency -s bench/chat.lua "http://127.0.0.1:$keel/v1/chat/completions" |
         awk '$1=="50%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else sub(/ms/,"",v); print v}')

# ---------------------------------------------------------------- 4. keel audit
echo "bench: keel audit over a million lines" >&2
audit_line=$(bench/audit.sh 1000000 1 | tr '\n' ' ')

# ---------------------------------------------------------------- RESULTS.md
d50=$(stat "$dir/r50" direct 2); n50=$(stat "$dir/r50" nginx 2); k50=$(stat "$dir/r50" keel 2)
d1=$(stat "$dir/r1" direct 3)
{
    echo "# keel benchmark results"
    echo
    echo "Generated by \`bench/bench.sh $secs $runs\` (\`make bench\`) on $(date -u +%Y-%m-%d): $(nproc) cores,"
    echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo),"
    echo "Linux $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME"), $(nginx -v 2>&1 | sed 's/.*: //'), wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}')."
    echo "Upstream: \`keel sim\` on the same machine. wrk, the upstream and the proxy share the cores,"
    echo "so req/s is a share of one machine; CPU µs per request is each proxy's own cost."
    echo "nginx: 1 worker, upstream keepalive, proxy_buffering off (bench/nginx.conf); keel: one loop (workers: 1)."
    echo
    echo "## The proxy's own cost: a canned upstream (medians of $runs alternating runs of ${secs}s)"
    echo
    echo "The upstream is nginx answering one fixed chat.completion (\`return 200\`, bench/canned.conf):"
    echo "it costs next to nothing, so the proxies, not the upstream, set the pace. keel-audit is keel"
    echo "with its audit log on, as it runs in production. wrk -t2 -c50 and -c1; CPU from /proc."
    echo
    cat "$dir/proxy.md"
    echo
    echo "## Non-stream chat completions through \`keel sim\` (medians of $runs alternating runs of ${secs}s)"
    echo
    echo "| path | req/s @50 | p50 ms @50 | p99 ms @50 | CPU µs/req @50 | p50 ms @1 | added p50 @1 vs direct |"
    echo "|---|---|---|---|---|---|---|"
    for n in direct nginx nginx-2w keel keel-open keel-assembled keel-translated keel-messages keel-messages-translated \
             keel-responses keel-embeddings; do
        p1=$(stat "$dir/r1" $n 3) added=-
        [ -n "$p1" ] && added=$(awk -v a="$p1" -v b="$d1" 'BEGIN {printf "%+.3f ms", a-b}')
        printf "| %s | %s | %s | %s | %s | %s | %s |\n" "$n" "$(stat "$dir/r50" $n 2)" "$(stat "$dir/r50" $n 3)" \
            "$(stat "$dir/r50" $n 4)" "$(stat "$dir/r50" $n 5)" "${p1:--}" "$added"
    done
    echo
    echo "keel: the pass-through path (\`stream_upstream: false\`: the answer's bytes as the upstream sent"
    echo "them); keel-open: the same behind a chain whose first breaker is open; keel-assembled: the"
    echo "default for a non-stream client, where keel asks the upstream for a stream and assembles its"
    echo "chunks (here 8 events) into one JSON answer (the sim's CPU for the stream is in req/s, not in"
    echo "keel's CPU column); keel-translated: an OpenAI client served by an Anthropic target (the"
    echo "request translated, the Messages stream decoded and assembled into one chat.completion);"
    echo "keel-messages: an Anthropic Messages client (POST /v1/messages) and an Anthropic target (its"
    echo "stream rebuilt into one Message from the frames as sent); keel-messages-translated: the same"
    echo "client served by an OpenAI target (the request translated, its chunks assembled into one"
    echo "Message); keel-responses: a Responses API client (POST /v1/responses) of the same chat"
    echo "target (the request translated, its chunks assembled into one Response); keel-embeddings:"
    echo "POST /v1/embeddings, passed through (the sim's vectors: 8 floats)."
    echo
    echo "- keel/nginx req/s at 50 connections: **$(awk -v a="$k50" -v b="$n50" 'BEGIN {printf "%.2f", a/b}')**"
    echo "- a second worker here: nginx 2 workers/1 worker req/s at 50 connections: **$(awk -v a="$(stat "$dir/r50" nginx-2w 2)" -v b="$n50" 'BEGIN {printf "%.2f", a/b}')**"\
         "(nginx-2w, measured only at 50 connections; its CPU column is blank, as it has two workers)"
    echo "- CPU per request, keel/nginx: **$(awk -v a="$(stat "$dir/r50" keel 5)" -v b="$(stat "$dir/r50" nginx 5)" 'BEGIN {printf "%.2f", a/b}')**"
    echo "- added latency at 50 connections, keel vs direct: p50 $(awk -v a="$(stat "$dir/r50" keel 3)" -v b="$(stat "$dir/r50" direct 3)" 'BEGIN {printf "%+.0f µs", (a-b)*1000}'),"\
         "p99 $(awk -v a="$(stat "$dir/r50" keel 4)" -v b="$(stat "$dir/r50" direct 4)" 'BEGIN {printf "%+.0f µs", (a-b)*1000}');"\
         "nginx vs direct: p50 $(awk -v a="$(stat "$dir/r50" nginx 3)" -v b="$(stat "$dir/r50" direct 3)" 'BEGIN {printf "%+.0f µs", (a-b)*1000}'),"\
         "p99 $(awk -v a="$(stat "$dir/r50" nginx 4)" -v b="$(stat "$dir/r50" direct 4)" 'BEGIN {printf "%+.0f µs", (a-b)*1000}')"
    echo
    echo "## Concurrent SSE streams held open (one run each, 5 s at the plateau)"
    echo
    echo "Each stream gets a chunk a second stamped with the sim's send time; the delay is receipt"
    echo "minus send, over every chunk while all N were open. RSS and fds are the proxy's (the sim's for"
    echo "direct) at the plateau. The hard open-file limit here is $limit, and a proxied stream holds"
    echo "two descriptors, so the large run is $big streams."
    echo
    echo "| path | streams | RSS MB | KB per stream | fds | chunk delay p50 µs | p99 µs | max µs | errors |"
    echo "|---|---|---|---|---|---|---|---|---|"
    while read -r name n rest; do
        rss=$(field rss_kb <<<"$rest"); before=$(field rss_before_kb <<<"$rest")
        printf "| %s | %s | %.1f | %s | %s | %s | %s | %s | %s |\n" "$name" "$n" "$(awk -v r="$rss" 'BEGIN {print r/1024}')" \
            "$(awk -v r="$rss" -v b="$before" -v n="$n" 'BEGIN {printf "%.1f", (r-b)/n}')" "$(field fds <<<"$rest")" \
            "$(field delay_us_p50 <<<"$rest")" "$(field delay_us_p99 <<<"$rest")" "$(field delay_us_max <<<"$rest")" \
            "$(field errors <<<"$rest")"
    done <"$dir/streams"
    echo
    echo "KB per stream: RSS at the plateau minus RSS just before the run, over N."
    echo
    echo "## Failure paths and deadlines (keel)"
    echo
    echo "| case | measured | what it should cost |"
    echo "|---|---|---|"
    echo "| hung primary, first_byte 1s, then a healthy target | $hung ms (median of 5) | first_byte (1000 ms) + one healthy round trip |"
    echo "| 503 primary, then a healthy target (wrk -c1) | p50 $fo_p50 ms vs $(stat "$dir/r1" keel 3) ms one-target | one extra round trip |"
    echo "| first breaker open (keel-open above, @1) | p50 $(stat "$dir/r1" keel-open 3) ms vs $(stat "$dir/r1" keel 3) ms | nothing |"
    echo "| first_byte 200ms on a hung single target: 504 after | median $deadline_ms ms, max $deadline_max ms of 20 | 200 ms (target: within 20 ms) |"
    echo
    echo "## keel audit"
    echo
    echo "$audit_line"
    echo
    echo "## Raw runs"
    echo
    echo "Non-stream, 50 connections (name req/s p50_ms p99_ms cpu_us_per_req):"
    echo '```'; cat "$dir/r50"; echo '```'
    echo "1 connection:"
    echo '```'; cat "$dir/r1"; echo '```'
    echo "Streams (bench/streams output):"
    echo '```'; cat "$dir/streams"; echo '```'
    echo "Deadline runs (ms): $(tr '\n' ' ' <"$dir/deadline")"
    echo
    echo "Canned upstream (bench/proxy.sh; name req/s p50_ms p99_ms cpu_us_per_req):"
    echo '```'; cat "$dir/proxy-raw"; echo '```'
} >"$dir/results.md"
# the profile section is kept by hand below this marker (bench/README.md says how it was taken)
if grep -q '^<!-- profile -->' bench/RESULTS.md 2>/dev/null; then
    { echo; sed -n '/^<!-- profile -->/,$p' bench/RESULTS.md; } >>"$dir/results.md"
fi
cp "$dir/results.md" bench/RESULTS.md
cat bench/RESULTS.md
