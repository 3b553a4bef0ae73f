#!/usr/bin/env bash
# Materialized-view benchmark (docs/benchmarks.md, "cache"): the demo's
# servers and catalog at scale SF (default 1), a `quipu serve`, and
# bench/cache.py over the PostgreSQL wire: the customer 360 and one
# customer's row live (quipu.max_staleness = '0') and from a cache, side by
# side in the same run, and a refresh against the live query.
#
#   bench/cache.sh [SF] [QUIPU_BIN]
#   QUIPU_DEMO_DIR=DIR bench/cache.sh       # over a demo set up already
#
# QUIPU_BIN defaults to the debug build (cargo build -p quipu-cli); pass a
# `bench-fast` build for release-like figures.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
scale="${1:-1}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/quipu/target}"
quipu="${2:-${QUIPU_BIN:-}}"
if [ -z "$quipu" ]; then
    (cd "$root" && cargo build --locked -q -p quipu-cli --bin quipu)
    quipu="$CARGO_TARGET_DIR/debug/quipu"
fi
. "$root/deploy/lib/prereqs.sh"
ensure_venv
work="$(mktemp -d)"
pids=()
cleanup() {
    # Each was started in a session of its own: stop the whole group
    # (the demo's PostgreSQL and SecantusDB servers too).
    for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
if [ -n "${QUIPU_DEMO_DIR:-}" ] && [ -f "$QUIPU_DEMO_DIR/ready" ]; then
    # A demo set up already (`demo.sh --setup-only`, servers up): reused,
    # and left running (SF is then the demo's).
    demo="$QUIPU_DEMO_DIR"
else
    demo="$work/demo"
    QUIPU_BIN="$quipu" QUIPU_DEMO_DIR="$demo" setsid bash "$root/deploy/demo.sh" --scale "$scale" --setup-only \
        > "$work/demo.log" 2>&1 &
    pids+=($!)
    until [ -f "$demo/ready" ]; do
        kill -0 "${pids[0]}" 2>/dev/null || { cat "$work/demo.log"; exit 1; }
        sleep 1
    done
fi
export QUIPU_DATA_DIR="$demo/data"
# (Already there when a demo is reused.)
QUIPU_PASSWORD=bench-pw "$quipu" users add bench --admin > /dev/null 2>&1 || true
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
serve() {
    port=$(free_port)
    http=$(free_port)
    QUIPU_CLUSTER_TOKEN=bench setsid "$quipu" serve --pg-listen "127.0.0.1:$port" \
        --flight-listen "127.0.0.1:$(free_port)" --port "$(free_port)" --http-port "$http" \
        >> "$work/serve.log" 2>&1 &
    server=$!
    pids+=("$server")
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.5; done
}
serve
. "$demo/ready"
"$QUIPU_VENV/bin/python" "$root/bench/cache.py" "$port" bench bench-pw "$CRM_PORT" "$demo/lake"
# Memory of a cache held in memory: a fresh server, its resident memory
# before and after the first query that reads cache.c360 (which loads the
# generation whole), against the Arrow size it reports; and the same
# query's growth on a fresh server that holds no cache, side by side.
for held in 0 default; do
    kill -- "-$server"
    wait "$server" 2>/dev/null || true
    if [ "$held" = 0 ]; then export QUIPU_CACHE_MEMORY=0; else unset QUIPU_CACHE_MEMORY; fi
    serve
    "$QUIPU_VENV/bin/python" "$root/bench/cache.py" memory "$port" bench bench-pw "$server" "$http"
done
