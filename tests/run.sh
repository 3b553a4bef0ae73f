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

# The shell test drives `quipu sql` in a real terminal through tmux.
if ! command -v tmux >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing tmux"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux) >/dev/null
    else
        echo "tests/run.sh: tmux is missing; install it (apt-get install tmux)" >&2
        exit 1
    fi
fi

echo "== building (target dir: $CARGO_TARGET_DIR)"
# One build of every target (the `quipu` binary the CLI tests drive, the
# test binaries, helpers): building them in one go unifies dependency
# features once, so `cargo test` below reuses everything.
cargo build --locked --workspace --all-targets

echo "== running tests"
cargo test --locked --workspace -- --test-threads "${QUIPU_TEST_THREADS:-4}"
