#!/usr/bin/env bash
# Cluster benchmark (docs/benchmarks.md): prepares Yachay-Shop at scale SF
# with `deploy/demo.sh --setup-only` (two PostgreSQL servers, SecantusDB,
# the lake, a catalog with the business views), then runs
# bench/src/cluster.rs, which starts `quipu scheduler` and `quipu executor`
# processes over that catalog and measures them against one process.
#
#   bench/cluster.sh [SF=1] [RUNS=5]
#
# SF 1 takes about 10 minutes to generate (SecantusDB loads about 3,000
# documents/s). To keep the data between runs, run
# `QUIPU_DEMO_DIR=DIR deploy/demo.sh --scale SF --setup-only` yourself and
# point QUIPU_BENCH_DIR at DIR: setup is skipped when DIR/ready exists.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
scale="${1:-1}"; runs="${2:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/quipu/target}"
(cd "$root" && cargo build --locked -q --profile bench-fast -p quipu-bench -p quipu-cli)
bin="$CARGO_TARGET_DIR/bench-fast"
dir="${QUIPU_BENCH_DIR:-$(mktemp -d /tmp/quipu-bench-cluster.XXXXXX)}"
mkdir -p "$dir"
setup_pid=""
stop() { [ -n "$setup_pid" ] && kill -TERM "$setup_pid" 2>/dev/null && wait "$setup_pid" 2>/dev/null || true; }
trap stop EXIT
if [ ! -f "$dir/ready" ]; then
    echo "== preparing SF $scale under $dir (log: $dir/setup.log)"
    QUIPU_BIN="$bin/quipu" QUIPU_DEMO_DIR="$dir" \
        bash "$root/deploy/demo.sh" --scale "$scale" --setup-only > "$dir/setup.log" 2>&1 &
    setup_pid=$!
    while [ ! -f "$dir/ready" ]; do
        if ! kill -0 "$setup_pid" 2>/dev/null; then
            echo "setup failed:"; tail -30 "$dir/setup.log"; exit 1
        fi
        sleep 5
    done
fi
echo "== benchmark"
"$bin/cluster" "$dir/data" "$runs"
