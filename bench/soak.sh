#!/usr/bin/env bash
# bench/soak.sh (`make soak`, `make soak SAN=1`) - the soak: bench/soak.mjs drives BUILD's keel
# and keel sim (build/keel; build-san/keel with SAN=1) and checks every request; exit 1 on any
# violation, each printed. Environment:
#   SOAK_REQUESTS  requests after the warm-up (100000; 10000 with SAN=1)
#   SOAK_RATE      requests started per second (200; 100 with SAN=1)
#   SOAK_WARMUP    warm-up requests before the baseline (2000, or 5% of a smaller run)
#   SOAK_SEED      the driver's and the sim's seed (1): the same seed, the same plan and faults
#   SOAK_FAULT_RATE the sim's chaos rate (0.2)
#   SOAK_DIR       where the logs, the audit log, summary.md and violations.txt go (a new temp dir)
#   SOAK_RESULTS   a file (bench/RESULTS.md): its "## Soak" section (SAN=1: "## Soak, ASan+UBSan
#                  build") is replaced by this run's summary, or appended; violations included
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
export KEEL_BIN=${KEEL_BIN:-$PWD/$build/keel}
command -v node >/dev/null || { echo "soak: needs node (apt-get install nodejs)" >&2; exit 1; }
[ -x "$KEEL_BIN" ] || { echo "soak: no $KEEL_BIN (make BUILD=$build)" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"
if [ "${SOAK_SAN:-}" = 1 ]; then
    # leaks are reported at exit (keel and the sim are stopped with SIGTERM and drain)
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
fi
exec node bench/soak.mjs
