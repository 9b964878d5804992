#!/usr/bin/env bash
# Fails the build on banned calls (STYLE H3) and on I/O headers in the pure core (STYLE B2).
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
if grep -nE '\b(sprintf|strcpy|strcat|strncpy|strtok|atoi|atol|gets)\s*\(' src/*.c src/*/*.c | grep -v 'snprintf\|vsnprintf'; then
    echo "lint: banned function (STYLE H3)"; bad=1
fi
if grep -nE '#include\s*[<"](uv|h2o|curl/|sys/socket|unistd|stdio)' src/core/*.[ch] | grep -v 'stdio.h.*snprintf'; then
    echo "lint: src/core must not include I/O headers (STYLE B2)"; bad=1
fi
exit $bad
