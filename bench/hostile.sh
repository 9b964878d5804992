#!/usr/bin/env bash
# bench/hostile.sh (`make hostile`) - slow and hostile clients against keel, measured: HOSTILE
# connections (a third each slowloris, slow-body, slow-read; bench/hostile.c says what each does)
# held against keel's client port for SECONDS while normal traffic (non-stream chat, model
# healthy, 10 keep-alive connections at RATE req/s) measures its latency. Baseline and attack
# alternate for ROUNDS rounds (the machine is noisy); medians, the p99 ratio, how fast keel
# dropped each kind, keel's fds and RSS. Prints a RESULTS.md section and keeps it in
# bench/hostile-results.md. Not part of `make test` (STYLE T5).
#   bench/hostile.sh [SECONDS=60] [ROUNDS=2] [HOSTILE=5000]
# Environment: BUILD (build dir, default build); DECOY (1: attack a second keel, see below); MIX ("SLOWLORIS SLOWBODY SLOWREAD" counts instead
# of thirds of HOSTILE); RATE (1000); TRICKLE_MS (300); RECONNECT_MS (100); SLOWREAD_MODEL
# (big-stream:100000); SLOWREAD_MSS (1460; 0 = loopback's); SIM_SNDBUF (65536; 0 = the feeding
# sim's sockets untouched). The keel limits, set when keel accepts them (an empty value leaves one
# unset, LIMITS=0 sets none): HEADER_TIMEOUT (5s), BODY_TIMEOUT (10s), SEND_TIMEOUT (30s),
# MAX_CONNECTIONS (unset: keel's own, from its open-file limit; /metrics says which).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}; rounds=${2:-2}; total=${3:-5000}
build=${BUILD:-build}; rate=${RATE:-1000}; slow_model=${SLOWREAD_MODEL:-big-stream:100000}; trickle=${TRICKLE_MS:-300}; reconnect=${RECONNECT_MS:-100}
mss=${SLOWREAD_MSS:-1460}; sim_sndbuf=${SIM_SNDBUF:-65536}
keel=$build/keel; hostile=$build/hostile; shim=$build/hostile-shim.so
[ -x "$keel" ] && [ -x "$hostile" ] && [ -f "$shim" ] || { echo "hostile: build $keel, $hostile and $shim first (make hostile)" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" # keel, the sim and the driver each hold thousands of sockets
limit=$(ulimit -n)
if [ "$limit" != unlimited ] && [ $((total * 4 / 3 + 500)) -gt "$limit" ]; then
    echo "hostile: the open-file limit ($limit) is too low for $total hostile connections" >&2; exit 1
fi
n1=$((total / 3)); n2=$((total / 3)); n3=$((total - n1 - n2))
[ -n "${MIX:-}" ] && read -r n1 n2 n3 <<<"$MIX" && total=$((n1 + n2 + n3)) # one kind alone: MIX="0 0 1668"

dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
. bench/lib.sh
# its own median: the mean of the middle two for an even count, "-" for none
median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print "-"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $(cat)"; }
fds_of() { ls "/proc/$1/fd" | wc -l; }
rss_of() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)
# "keel=% sim=% feed=% [attacker=%]": each process's CPU over the last window, in % of one core
cpu_since() { # secs "pid0 t0 pid1 t1 ..." names...
    local secs=$1 pairs=($2) names=(keel sim feed attacker) out="" i=0
    while [ $i -lt ${#pairs[@]} ]; do
        out+="${names[$((i / 2))]}_cpu=$(awk -v a="$(ticks "${pairs[$i]}")" -v b="${pairs[$((i + 1))]}" -v hz="$hz" -v s="$secs" 'BEGIN {printf "%.0f", (a - b) * 100 / hz / s}') "
        i=$((i + 2))
    done
    echo "$out"
}
orphans() { awk '/^TCP:/ {for (i = 1; i < NF; i++) if ($i == "orphan") print $(i + 1)}' /proc/net/sockstat; }
tcp_mb() { awk '/^TCP:/ {for (i = 1; i < NF; i++) if ($i == "mem") printf "%.0f", $(i + 1) * 4096 / 1048576}' /proc/net/sockstat; }

# Two sims, as two providers: one answers the normal traffic, the other feeds the slow readers'
# streams, so the stream feeder's work does not stall the normal traffic's upstream (the machine's
# two cores are still shared). The feeder stands for a provider across a network: its unsent
# bytes must not pile up on this machine (bench/hostile-shim.c); SIM_SNDBUF=0 leaves it alone.
"$keel" sim --listen 127.0.0.1:0 2>"$dir/sim.log" &
sim_pid=$!
if [ "$sim_sndbuf" -gt 0 ]; then
    HOSTILE_SNDBUF=$sim_sndbuf LD_PRELOAD=$(realpath "$shim") "$keel" sim --listen 127.0.0.1:0 2>"$dir/feed.log" &
else
    "$keel" sim --listen 127.0.0.1:0 2>"$dir/feed.log" &
fi
feed_pid=$!
sim=$(port_of "$dir/sim.log" "sim listening on ")
feed=$(port_of "$dir/feed.log" "sim listening on ")

# ---------------------------------------------------------------- keel's limits, if it has them
# each key is tried alone with `keel check`: a key keel does not know is an error, never a default
declare -A want=([header_timeout]=${HEADER_TIMEOUT-5s} [body_timeout]=${BODY_TIMEOUT-10s}
                 [send_timeout]=${SEND_TIMEOUT-30s} [max_connections]=${MAX_CONNECTIONS-})
limits="" in_force="" refused=""
for key in header_timeout body_timeout send_timeout max_connections; do
    [ "${LIMITS:-1}" = 0 ] && { refused+=" $key"; continue; }
    [ -n "${want[$key]}" ] || continue
    printf '%s: %s\nupstreams: [ { name: u, base_url: "http://127.0.0.1:1/v1" } ]\nmodels: [ { name: m, targets: [ { upstream: u, model: x } ] } ]\n' \
        "$key" "${want[$key]}" >"$dir/probe.yaml"
    if "$keel" check -c "$dir/probe.yaml" >/dev/null 2>&1; then
        limits+="$key: ${want[$key]}"$'\n'; in_force+="\`$key: ${want[$key]}\` "
    else
        refused+=" $key"
    fi
done
cat >"$dir/keel.yaml" <<YAML
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
workers: 1 # one loop, as nginx runs one worker here (bench/workers.sh measures more)
max_inflight: 20000
${limits}upstreams:
  - { name: sim, base_url: "http://127.0.0.1:$sim/v1" }
  - { name: feed, base_url: "http://127.0.0.1:$feed/v1" }
models:
  # the pass-through path, as in the figures recorded before stream_upstream existed
  - { name: one, targets: [ { upstream: sim, model: healthy, stream_upstream: false } ] }
  # the slow readers' stream: never ends while they hold it
  - { name: reader, targets: [ { upstream: feed, model: "$slow_model" } ] }
YAML
"$keel" check -c "$dir/keel.yaml" >/dev/null
"$keel" serve -c "$dir/keel.yaml" 2>"$dir/keel.log" &
keel_pid=$!
port=$(port_of "$dir/keel.log" "listening api=")
admin=$(sed -n 's/.*admin=127.0.0.1:\([0-9]*\).*/\1/p' "$dir/keel.log" | head -1)
# DECOY=1: the attack goes to a second keel with the same config and the same feeding sim, so the
# normal traffic's latency shows what the attack costs through the machine alone (two cores shared
# by the attacker, the feeder and a keel that does the attack's work) without touching its keel
attack_port=$port
if [ "${DECOY:-0}" = 1 ]; then
    "$keel" serve -c "$dir/keel.yaml" 2>"$dir/decoy.log" &
    attack_port=$(port_of "$dir/decoy.log" "listening api=")
fi
echo "hostile: keel limits in force: ${in_force:-none}; not accepted:${refused:- none}" >&2

load() { "$hostile" load "$port" one 10 "$rate" "$1"; }
load 3 >/dev/null 2>&1 # warm-up: connections, curl's pool, the allocator
fds0=$(fds_of "$keel_pid"); rss0=$(rss_of "$keel_pid"); tcp0=$(tcp_mb)
: >"$dir/base"; : >"$dir/under"; : >"$dir/attack"; : >"$dir/samples"; : >"$dir/after"; : >"$dir/sendq"
for r in $(seq "$rounds"); do
    echo "hostile: round $r/$rounds: ${secs}s baseline" >&2
    before="$keel_pid $(ticks $keel_pid) $sim_pid $(ticks $sim_pid) $feed_pid $(ticks $feed_pid)"
    line=$(load "$secs" 2>"$dir/timeline.base.$r")
    echo "round=$r $line $(cpu_since $((secs + 1)) "$before")" >>"$dir/base"
    echo "hostile: round $r/$rounds: ${secs}s under $total hostile connections" >&2
    "$hostile" attack "$attack_port" "$n1" "$n2" "$n3" reader "$trickle" "$reconnect" "$mss" >"$dir/attack.$r" 2>"$dir/attack.$r.err" &
    att=$!
    for _ in $(seq 300); do grep -q '^ready' "$dir/attack.$r.err" && break; sleep 0.1; done
    ( while sleep 1; do echo "round=$r fds=$(fds_of "$keel_pid") rss_kb=$(rss_of "$keel_pid") tcp_mb=$(tcp_mb) orphans=$(orphans)"; done >>"$dir/samples" ) &
    sampler=$!
    before="$keel_pid $(ticks $keel_pid) $sim_pid $(ticks $sim_pid) $feed_pid $(ticks $feed_pid) $att $(ticks $att)"
    line=$(load "$secs" 2>"$dir/timeline.under.$r")
    echo "round=$r $line $(cpu_since $((secs + 1)) "$before")" >>"$dir/under"
    kill "$sampler"; wait "$sampler" 2>/dev/null || true
    # what keel's client sockets hold in the kernel, unsent (Send-Q), at the end of the attack
    echo "round=$r $(ss -tn state established "( sport = :$port )" | awk 'NR > 1 {q += $2; n++} END {printf "sendq_conns=%d sendq_mb=%.0f", n, q / 1048576}')" >>"$dir/sendq"
    kill -TERM "$att"; wait "$att" || true
    sed "s/^/round=$r /" "$dir/attack.$r" >>"$dir/attack"
    # the attack's sockets close with a reset; keel's descriptors should come back to baseline
    for _ in $(seq 200); do [ "$(fds_of "$keel_pid")" -le $((fds0 + 10)) ] && break; sleep 0.1; done
    echo "round=$r fds=$(fds_of "$keel_pid") rss_kb=$(rss_of "$keel_pid") ready=\"$(head -1 "$dir/attack.$r.err")\"" >>"$dir/after"
done
curl -s "http://127.0.0.1:$admin/metrics" 2>/dev/null | grep -v '^#' |
    grep -iE 'conn|timeout|refus|busy|shed|slow|limit' | grep -v ' 0$' >"$dir/metrics" || true

# ---------------------------------------------------------------- the section
col() { field "$2" <"$1" | median; } # file key -> median over rounds
worst() { # timeline files -> "max X ms, fewest answers Y in a second"
    cat "$@" | tr ' ' '\n' | grep / | awk -F/ 'NR == 1 || $1 > m {m = $1} NR == 1 || $2 < n {n = $2} END {printf "%.1f ms, %d", m, n}'
}
ms() { awk -v v="$1" 'BEGIN {if (v == "-") print "-"; else printf "%.2f", v / 1000}'; }
b50=$(col "$dir/base" p50_us); b99=$(col "$dir/base" p99_us); b999=$(col "$dir/base" p999_us)
u50=$(col "$dir/under" p50_us); u99=$(col "$dir/under" p99_us); u999=$(col "$dir/under" p999_us)
ratio=$(awk -v a="$u99" -v b="$b99" 'BEGIN {printf "%.2f", a / b}')
per_round=$(paste -d' ' <(field p99_us <"$dir/base") <(field p99_us <"$dir/under") | awk '{printf "%s%.2f", (NR > 1 ? ", " : ""), $2 / $1}')
verdict=$(awk -v r="$ratio" 'BEGIN {print (r <= 2) ? "within" : "**over**"}')
{
    echo "## Hostile clients"
    echo
    echo "Generated by \`bench/hostile.sh $secs $rounds $total\` (\`make hostile\`) on $(date -u +%Y-%m-%d): $(nproc) cores,"
    echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Linux $(uname -r); open-file limit $limit."
    echo "keel limits in force: ${in_force:-none (keel accepted none of the keys: its defaults)}."
    [ -n "$refused" ] && echo "Not set (keel did not accept them, or LIMITS=0):$refused."
    echo
    echo "Attack: $total connections to keel's client port, $n1 slowloris (request line and headers, a"
    echo "byte every $trickle ms, never finished), $n2 slow-body (whole headers, \`Content-Length: 102400\`,"
    echo "then a byte every $trickle ms), $n3 slow-read (a streaming request for sim model"
    echo "\`$slow_model\`, then its status line and a byte a second through a 4 KB receive buffer)."
    if [ "$mss" -gt 0 ]; then
        echo "Slow readers advertise an MSS of $mss bytes, as a client across a network would: with loopback's"
        echo "64 KB segments keel's socket autotunes its send buffer to about 3 MB per slow reader."
    fi
    echo "Each connection keel drops is opened again $reconnect ms later, so the pressure holds for the"
    echo "whole run. The slow readers' streams come from a second sim whose sockets have a $sim_sndbuf-byte"
    echo "send buffer (0: untouched), as their bytes would wait on a provider's machine, not keel's."
    echo "Normal traffic: non-stream chat completions (sim model \`healthy\` through keel) at $rate req/s"
    echo "over 10 keep-alive connections, latency from send to last byte, ${secs}s per run after a 1 s"
    echo "warm-up. Baseline and attack alternate, $rounds rounds of each; medians."
    echo
    echo "| normal traffic | p50 ms | p99 ms | p99.9 ms | req/s | errors |"
    echo "|---|---|---|---|---|---|"
    echo "| baseline | $(ms "$b50") | $(ms "$b99") | $(ms "$b999") | $(col "$dir/base" rps) | $(col "$dir/base" errors) |"
    echo "| under attack | $(ms "$u50") | $(ms "$u99") | $(ms "$u999") | $(col "$dir/under" rps) | $(col "$dir/under" errors) |"
    echo
    echo "CPU, % of one core (medians): baseline keel $(col "$dir/base" keel_cpu), sim $(col "$dir/base" sim_cpu);"\
         "under attack keel $(col "$dir/under" keel_cpu), sim $(col "$dir/under" sim_cpu), the slow readers' feeder"\
         "$(col "$dir/under" feed_cpu), the attacking driver $(col "$dir/under" attacker_cpu)."
    echo
    echo "- p99 under attack / baseline: **$ratio** ($verdict the 2x target; per round: $per_round)"
    echo "- latency is timed from each request's send; a connection that falls behind skips its missed"
    echo "  slots (\`late\` in the raw runs), so a stall shows in req/s and in the worst seconds:"
    echo "  worst second's latency and fewest answers in a second: baseline $(worst "$dir"/timeline.base.*);"
    echo "  under attack $(worst "$dir"/timeline.under.*)"
    echo
    echo "| kind | held at once (min / avg) | dropped by keel (FIN unseen) | time to drop p50 | p99 | max | keel's answer before the drop | held at the end (youngest age) |"
    echo "|---|---|---|---|---|---|---|---|"
    for k in slowloris slow-body slow-read; do
        grep " kind=$k " "$dir/attack" | while read -r line; do
            f() { field "$1" <<<"$line"; }
            printf "| %s (round %s) | %s / %s of %s | %s | %s | %s | %s | %s | %s (%s) |\n" "$k" "$(f round)" \
                "$(f open_min)" "$(f open_avg)" "$(f conns)" "$(f dropped) ($(f dropped_unseen))" \
                "$( [ "$(f dropped)" = 0 ] && echo - || echo "$(ms "$(f ttd_ms_p50)") s")" \
                "$( [ "$(f dropped)" = 0 ] && echo - || echo "$(ms "$(f ttd_ms_p99)") s")" \
                "$( [ "$(f dropped)" = 0 ] && echo - || echo "$(ms "$(f ttd_ms_max)") s")" \
                "$( [ "$(f statuses)" = - ] && echo "none: closed" || echo "$(f statuses) ($(f answered_4xx) 4xx, $(f answered_5xx) 5xx, $(f answered_none) none)")" \
                "$(f held_at_end)" "$( [ "$(f held_at_end)" = 0 ] && echo - || echo "$(ms "$(f held_age_ms_min)") s")"
        done
    done
    echo
    echo "keel: $fds0 fds and $((rss0 / 1024)) MB RSS before; during the attacks at most"
    echo "$(field fds <"$dir/samples" | sort -n | tail -1) fds and $(( $(field rss_kb <"$dir/samples" | sort -n | tail -1) / 1024 )) MB RSS"
    echo "(median $(field fds <"$dir/samples" | median) fds, $(( $(field rss_kb <"$dir/samples" | median | cut -d. -f1) / 1024 )) MB);"
    echo "after each round: $(awk '{printf "%s%s fds, %d MB", (NR > 1 ? "; " : ""), substr($2, 5), substr($3, 8) / 1024}' "$dir/after")."
    echo "Kernel TCP memory (all sockets on the machine, /proc/net/sockstat): $tcp0 MB before, at most"
    echo "$(field tcp_mb <"$dir/samples" | sort -n | tail -1) MB during the attacks (pressure starts at $(awk '{printf "%.0f", $2 * 4096 / 1048576}' /proc/sys/net/ipv4/tcp_mem) MB); orphaned sockets"
    echo "(closed by their process, still in the kernel) at most $(field orphans <"$dir/samples" | sort -n | tail -1);"
    echo "unsent bytes queued in keel's client sockets at the end of each attack: $(awk '{printf "%s%s MB over %s client connections", (NR > 1 ? "; " : ""), substr($3, 10), substr($2, 13)}' "$dir/sendq")."
    if [ -s "$dir/metrics" ]; then
        echo
        echo "keel's /metrics at the end (connection, timeout and busy counters, non-zero):"
        echo '```'; cat "$dir/metrics"; echo '```'
    fi
    echo
    echo "Raw runs:"
    echo '```'
    cat "$dir/base" | sed 's/^/baseline /'; cat "$dir/under" | sed 's/^/attack   /'; cat "$dir/attack"; cat "$dir/after" "$dir/sendq"
    echo '```'
    echo "Normal traffic, each second's worst latency (ms) / answers:"
    echo '```'
    for r in $(seq "$rounds"); do
        echo "baseline round=$r $(cat "$dir/timeline.base.$r")"; echo "attack   round=$r $(cat "$dir/timeline.under.$r")"
    done
    echo '```'
} >"$dir/section.md"
cp "$dir/section.md" bench/hostile-results.md
cat "$dir/section.md"
