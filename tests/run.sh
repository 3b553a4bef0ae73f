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

# Installs Debian packages when running as root; otherwise says what is missing.
apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing $*"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@") >/dev/null
    else
        echo "tests/run.sh: missing $*; install it (apt-get install $*)" >&2
        exit 1
    fi
}

# The shell test drives `quipu sql` in a real terminal through tmux.
command -v tmux >/dev/null 2>&1 || apt_install tmux

# PostgreSQL server binaries for the live-source harness (tests/it/servers.rs).
have_pg() {
    local bindir
    bindir="$(pg_config --bindir 2>/dev/null || true)"
    [ -n "$bindir" ] && [ -x "$bindir/initdb" ] && [ -x "$bindir/pg_ctl" ]
}
if ! have_pg && [ -z "${QUIPU_PG_BINDIR:-}" ]; then
    apt_install postgresql
fi

# Test-time servers that come from PyPI live in one venv outside the clone:
# SecantusDB (a MongoDB-wire server) with pymongo, and moto's standalone
# S3-API server. Pinned so every machine runs the same servers.
export QUIPU_VENV="${QUIPU_VENV:-$HOME/.cache/quipu/venv}"
venv_packages=('moto[server]==5.2.5' 'SecantusDB==0.7.0b3' 'pymongo==4.20.1')
if [ ! -x "$QUIPU_VENV/bin/moto_server" ] || [ ! -x "$QUIPU_VENV/bin/secantusd-py" ] \
    || ! "$QUIPU_VENV/bin/python" -c 'import pymongo' 2>/dev/null; then
    echo "== installing test servers into $QUIPU_VENV"
    if ! python3 -m venv "$QUIPU_VENV" 2>/dev/null; then
        apt_install python3-venv
        python3 -m venv "$QUIPU_VENV"
    fi
    "$QUIPU_VENV/bin/pip" install -q --disable-pip-version-check "${venv_packages[@]}"
fi

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
