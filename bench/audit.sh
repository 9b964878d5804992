#!/usr/bin/env bash
# bench/audit.sh - times `keel audit` over N audit lines (default a million) shaped like keel's
# own: three models, exponential latencies. Prints the median of RUNS runs.
#   bench/audit.sh [LINES=1000000] [RUNS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}; runs=${2:-3}
make -s build/keel
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
node -e '
const fs = require("fs");
const out = fs.openSync(process.argv[1], "w");
let seed = 1;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const models = ["desk", "chat", "code"];
let buf = "";
for (let i = 0; i < Number(process.argv[2]); i++) {
  const ms = Math.floor(-Math.log(1 - rnd()) * 3000);
  const rec = { ts: "2026-11-23T12:25:26.704Z", id: i.toString(16).padStart(16, "0"), model: models[i % 3],
    stream: true, status: 200, ms, ttft_ms: ms >> 2, upstream: "a", target_model: "x",
    attempts: [{ upstream: "a", model: "x", class: "ok", status: 200, ms, ttft_ms: ms >> 2 }],
    prompt_bytes: 900, usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 }, client_gone: false, class: "ok" };
  buf += JSON.stringify(rec) + "\n";
  if (buf.length > 1 << 20) { fs.writeSync(out, buf); buf = ""; }
}
fs.writeSync(out, buf);
' "$dir/audit.jsonl" "$lines"
echo "$(wc -l < "$dir/audit.jsonl") lines, $(du -m "$dir/audit.jsonl" | cut -f1) MB"
TIMEFORMAT=%R
for i in $(seq "$runs"); do
    { time build/keel audit "$dir/audit.jsonl" >/dev/null; } 2>&1
done | sort -n | awk '{a[NR]=$1} END {print "keel audit: median " a[int((NR+1)/2)] " s of " NR " runs"}'
