#!/usr/bin/env bash
# The one command that runs every test of Quipu (README: "Run the tests").
# It builds the `quipu` binary the CLI tests drive, then runs unit tests,
# integration tests (tests/it) and the sqllogictest files (tests/slt).
#
# A target directory outside the clone is reused when present
# (QUIPU_TARGET_DIR, default ~/.cache/quipu/target) so repeated runs skip
# the heavy DataFusion/Ballista build; a cold run builds it from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${QUIPU_TARGET_DIR:-$HOME/.cache/quipu/target}}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Parallel rustc jobs beyond the core count only add memory pressure.
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-$(nproc)}"

if ! command -v cargo >/dev/null 2>&1; then
    echo "tests/run.sh: cargo is not installed (Rust toolchain required)" >&2
    exit 1
fi

. deploy/lib/prereqs.sh

# The shell test drives `quipu sql` in a real terminal through tmux.
command -v tmux >/dev/null 2>&1 || apt_install tmux
# PostgreSQL server binaries and the PyPI servers for the live-source
# harness (tests/it/servers.rs).
ensure_postgres
ensure_venv
ensure_jdbc
ensure_node_pg

echo "== building (target dir: $CARGO_TARGET_DIR)"
# One build of every target (the `quipu` binary the CLI tests drive, the
# test binaries, helpers): building them in one go unifies dependency
# features once, so `cargo test` below reuses everything.
cargo build --locked --workspace --all-targets

echo "== running tests"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --locked --workspace --lib --bins --tests -- --test-threads "${QUIPU_TEST_THREADS:-4}" 2>&1 \
    | tee "$log" || status=$?
# One closing line over all test binaries (cargo prints one per binary).
read -r passed failed < <(awk '/^test result:/ {
        for (i = 1; i < NF; i++) {
            if ($(i + 1) ~ /^passed/) p += $i
            if ($(i + 1) ~ /^failed/) f += $i
        }
    } END { print p + 0, f + 0 }' "$log")
echo
echo "${passed:-0} passed, ${failed:-0} failed"
if [ "${passed:-0}" -eq 0 ]; then
    echo "tests/run.sh: no test ran" >&2
    exit 1
fi
exit "$status"
