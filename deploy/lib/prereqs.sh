# Shared by tests/run.sh and deploy/demo.sh: install what the live sources
# need when it is missing (as root through apt-get; otherwise say what to
# install). Source it, then call the functions.

# Installs Debian packages when running as root; otherwise says what is missing.
apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing $*"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@") >/dev/null
    else
        echo "missing $*; install it (apt-get install $*)" >&2
        exit 1
    fi
}

# The folder of PostgreSQL's server binaries (initdb, pg_ctl, postgres).
pg_bindir() {
    if [ -n "${QUIPU_PG_BINDIR:-}" ]; then echo "$QUIPU_PG_BINDIR"; return; fi
    pg_config --bindir 2>/dev/null || true
}

ensure_postgres() {
    local bindir
    bindir="$(pg_bindir)"
    if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ] || [ ! -x "$bindir/pg_ctl" ]; then
        apt_install postgresql
    fi
}

# Servers and clients that come from PyPI live in one venv outside the
# clone: SecantusDB (a MongoDB-wire server) with pymongo, moto's standalone
# S3-API server, and the clients the front-door tests drive (psycopg 3 and
# psycopg2, asyncpg, SQLAlchemy, pandas; pyarrow.flight and ADBC's Flight
# SQL driver). Pinned so every machine runs the same versions.
export QUIPU_VENV="${QUIPU_VENV:-$HOME/.cache/quipu/venv}"
ensure_venv() {
    # The clients are each one's latest release (issue 18: what analysts
    # install today), SQLAlchemy with both drivers, asyncpg, pandas.
    local packages=('moto[server]==5.2.5' 'SecantusDB==0.7.0b3' 'pymongo==4.20.1' 'PyYAML>=6.0'
        'psycopg[binary]==3.3.9' 'psycopg2-binary==2.9.13' 'asyncpg==0.32.0'
        'SQLAlchemy==2.1.9' 'pandas==3.1.1'
        'pyarrow==26.0.1' 'adbc-driver-flightsql==1.13.0' 'adbc-driver-manager==1.13.0'
        'duckdb==1.4.4' 'duckdb-ext-postgres==1.4.4.20260205')
    # A venv made from another list is brought up to this one.
    local stamp="$QUIPU_VENV/.quipu-packages"
    if [ ! -x "$QUIPU_VENV/bin/moto_server" ] || [ ! -x "$QUIPU_VENV/bin/secantusd-py" ] \
        || [ "$(cat "$stamp" 2>/dev/null)" != "${packages[*]}" ] \
        || ! "$QUIPU_VENV/bin/python" -c 'import pymongo, yaml, psycopg, psycopg2, asyncpg, sqlalchemy, pandas, pyarrow.flight, adbc_driver_flightsql, duckdb, duckdb_ext' 2>/dev/null; then
        echo "== installing servers and clients from PyPI into $QUIPU_VENV"
        if ! python3 -m venv "$QUIPU_VENV" 2>/dev/null; then
            apt_install python3-venv
            python3 -m venv "$QUIPU_VENV"
        fi
        "$QUIPU_VENV/bin/pip" install -q --disable-pip-version-check "${packages[@]}"
        echo "${packages[*]}" > "$stamp"
    fi
}

# The PostgreSQL JDBC driver and a JDK (what DBeaver and Metabase use), for
# the front-door tests. The test runs the probe as a single-file Java source.
export QUIPU_JDBC_JAR="${QUIPU_JDBC_JAR:-/usr/share/java/postgresql.jar}"
ensure_jdbc() {
    local packages=()
    [ -f "$QUIPU_JDBC_JAR" ] || packages+=(libpostgresql-jdbc-java)
    command -v java >/dev/null 2>&1 || packages+=(default-jdk-headless)
    if [ "${#packages[@]}" -gt 0 ]; then apt_install "${packages[@]}"; fi
}

# node-postgres (`pg`, what Node services use) for the client tests, from
# npm into a folder outside the clone; Node itself from Debian if missing.
export QUIPU_NODE="${QUIPU_NODE:-$HOME/.cache/quipu/node}"
ensure_node_pg() {
    local version=8.23.1
    command -v node >/dev/null 2>&1 || apt_install nodejs npm
    if ! grep -q "\"version\": \"$version\"" "$QUIPU_NODE/node_modules/pg/package.json" 2>/dev/null; then
        echo "== installing node-postgres $version from npm into $QUIPU_NODE"
        mkdir -p "$QUIPU_NODE"
        npm install --silent --no-audit --no-fund --prefix "$QUIPU_NODE" "pg@$version" >/dev/null
    fi
}

# Runs a command as the postgres user when root (PostgreSQL refuses root).
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# wait_port PORT NAME LOG: waits up to 30 s for a server to listen.
wait_port() {
    for _ in $(seq 1 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$2 did not start on port $1; see $3" >&2
    exit 1
}
