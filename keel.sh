#!/usr/bin/env bash
# keel.sh - set-up in one command on Debian 12: installs whatever Debian packages are missing
# (nothing when all are present), then runs the make target.
#   ./keel.sh demo     build keel and run the demo on simulated providers
#   ./keel.sh test     build keel and run every test (unit + end to end)
#   ./keel.sh build    build build/keel only
set -euo pipefail
cd "$(dirname "$0")"

# what building needs; tests add node, npm and what npm needs to reach its registry
build_pkgs=(make gcc libc6-dev pkg-config libuv1-dev libssl-dev libcurl4-openssl-dev
            libyaml-dev libjansson-dev libhiredis-dev)
# chromium: the status page's browser test; redis-server: shared state across instances
test_pkgs=(libcmocka-dev ca-certificates chromium redis-server)

usage() {
    echo "usage: ./keel.sh demo|test|build" >&2
    exit 2
}

installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

ensure() {
    local missing=()
    for p in "$@"; do
        installed "$p" || missing+=("$p")
    done
    # node and npm may come from elsewhere (nodesource, nvm): a working command is enough
    if [ "${need_node:-0}" = 1 ]; then
        command -v node >/dev/null 2>&1 || missing+=(nodejs)
        command -v npm >/dev/null 2>&1 || missing+=(npm)
    fi
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "keel.sh: installing missing Debian packages: ${missing[*]}" >&2
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || { echo "keel.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}

[ $# -eq 1 ] || usage
case "$1" in
    build) ensure "${build_pkgs[@]}"; make -j"$(nproc)" ;;
    demo)  ensure "${build_pkgs[@]}"; make -j"$(nproc)" && make demo ;;
    test)  need_node=1 ensure "${build_pkgs[@]}" "${test_pkgs[@]}"; make -j"$(nproc)" && make test ;;
    *) usage ;;
esac
