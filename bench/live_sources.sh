#!/usr/bin/env bash
# Live-source benchmark (docs/benchmarks.md): starts two throwaway
# PostgreSQL clusters, loads crm and pos with `quipu gen --scale SF`
# (default 1), and runs bench/src/live_sources.rs against them, which
# measures Quipu and its direct-PostgreSQL baselines side by side.
#
#   bench/live_sources.sh [SF] [RUNS]
#
# MONGO_SF=X also starts SecantusDB (the test venv's MongoDB-wire server),
# loads the inventory at scale X (SF 1 takes ~10 min to load) and adds the
# MongoDB measurements (pushed $group and top-k, _id ranges, the
# three-source join).
#
# QUIPU_BIN / BENCH_BIN skip the builds (defaults: debug `quipu` for the
# generator, whose crates are optimised even in debug; `bench-fast` bench).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
scale="${1:-1}"; runs="${2:-7}"
. "$root/deploy/lib/prereqs.sh"
ensure_postgres
bindir="$(pg_bindir)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/quipu/target}"
if [ -z "${QUIPU_BIN:-}" ]; then
    (cd "$root" && cargo build --locked -q -p quipu-cli --bin quipu)
    QUIPU_BIN="$CARGO_TARGET_DIR/debug/quipu"
fi
if [ -z "${BENCH_BIN:-}" ]; then
    (cd "$root" && cargo build --locked -q --profile bench-fast -p quipu-bench --bin live_sources)
    BENCH_BIN="$CARGO_TARGET_DIR/bench-fast/live_sources"
fi

servers="$(mktemp -d /tmp/quipu-bench-servers.XXXXXX)"
chmod 755 "$servers"
[ "$(id -u)" = 0 ] && chown postgres "$servers"
stop() {
    for d in "$servers"/*/data; do
        [ -d "$d" ] && as_pg "$bindir/pg_ctl" -D "$d" -m fast stop >/dev/null 2>&1 || true
    done
    rm -rf "$servers"
}
trap stop EXIT
start() {
    local name="$1" port="$2" dir="$servers/$1"
    as_pg mkdir -p "$dir"
    as_pg "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
    as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c shared_buffers=512MB" start >/dev/null
    wait_port "$port" "PostgreSQL ($name)" "$dir/postgres.log"
    "$bindir/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "CREATE DATABASE $name" >/dev/null
}
crm_port="$(free_port)"; pos_port="$(free_port)"
start crm "$crm_port"
start pos "$pos_port"
echo "== generating crm and pos at scale $scale"
"$QUIPU_BIN" gen --scale "$scale" --seed 42 \
    --crm-url "postgresql://postgres@127.0.0.1:$crm_port/crm?sslmode=disable" \
    --pos-url "postgresql://postgres@127.0.0.1:$pos_port/pos?sslmode=disable"
mongo_port=""
if [ -n "${MONGO_SF:-}" ]; then
    ensure_venv
    mongo_port="$(free_port)"
    "$QUIPU_VENV/bin/secantusd-py" --host 127.0.0.1 --port "$mongo_port" --storage-path :memory: \
        >"$servers/secantusd.log" 2>&1 &
    mongo_pid=$!
    trap 'kill $mongo_pid 2>/dev/null || true; stop' EXIT
    wait_port "$mongo_port" "SecantusDB" "$servers/secantusd.log"
    echo "== generating inventory at scale $MONGO_SF"
    "$QUIPU_BIN" gen --scale "$MONGO_SF" --seed 42 \
        --mongodb-url "mongodb://127.0.0.1:$mongo_port/inventory?directConnection=true"
fi
echo "== benchmark ($runs runs each)"
"$BENCH_BIN" "$crm_port" "$pos_port" "$runs" $mongo_port
