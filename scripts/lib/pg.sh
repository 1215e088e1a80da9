# shellcheck shell=bash
# A private, throwaway PostgreSQL cluster for the tests.
#
#   pg_start   initdb into a fresh temp dir, start postgres on 127.0.0.1:<free
#              port>, create the superuser role `maocloud`, and export
#              MAOCLOUD_TEST_PG_URL=postgres://maocloud@127.0.0.1:PORT/postgres
#   pg_stop    stop that cluster and delete its directory (idempotent; safe to
#              call from a trap, before or after pg_start)
#
# Never touches the system's PostgreSQL service. Uses Debian's binaries from
# /usr/lib/postgresql/<version>/bin (package `postgresql`), not whatever
# `postgres`/`pg_ctl`/`initdb` happen to be on PATH. As root, postgres runs as
# the `postgres` system user (root is not allowed to run it).
# Sourced after scripts/lib/common.sh.

PG_BIN=""
PG_DIR=""
PG_PORT=""

# Newest /usr/lib/postgresql/<version>/bin that has a server.
pg_find_bin() {
    local found="" f
    for f in /usr/lib/postgresql/*/bin/postgres; do
        [ -x "$f" ] && found="$found${f%/postgres}"$'\n'
    done
    found="$(printf '%s' "$found" | sort -V | tail -n 1)"
    [ -n "$found" ] || die "no PostgreSQL server under /usr/lib/postgresql (install the 'postgresql' package)"
    printf '%s\n' "$found"
}

# Run a command as the cluster owner, from inside the cluster dir (the
# postgres user may not be able to read the caller's working directory).
_pg_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd "$PG_DIR" && runuser -u postgres -- "$@")
    else
        (cd "$PG_DIR" && "$@")
    fi
}

pg_start() {
    PG_BIN="$(pg_find_bin)" || exit 1
    PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/maocloud-pg.XXXXXX")"
    PG_PORT="${MAOCLOUD_TEST_PG_PORT:-$(free_port)}"
    if [ "$(id -u)" -eq 0 ]; then
        getent passwd postgres >/dev/null ||
            die "system user 'postgres' missing (install the 'postgresql' package)"
        chown postgres: "$PG_DIR"
    fi

    _pg_as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust \
        --encoding=UTF8 --no-locale --no-sync >"$PG_DIR/initdb.log" 2>&1 || {
        cat "$PG_DIR/initdb.log" >&2
        die "initdb failed"
    }

    # Appending keeps the file owned by postgres.
    cat >>"$PG_DIR/data/postgresql.conf" <<CONF

# --- maocloud test cluster (scripts/lib/pg.sh) ---
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
max_connections = 200
fsync = off
full_page_writes = off
synchronous_commit = off
CONF

    _pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" \
        -w -t 60 start >/dev/null || {
        cat "$PG_DIR/postgres.log" >&2 2>/dev/null
        die "postgres did not start (port $PG_PORT)"
    }

    local i
    for i in $(seq 1 100); do
        "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
        [ "$i" -eq 100 ] && die "postgres on port $PG_PORT not ready"
        sleep 0.1
    done

    "$PG_BIN/psql" -q -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" \
        -U postgres -d postgres \
        -c 'CREATE ROLE maocloud WITH SUPERUSER LOGIN' >/dev/null ||
        die "could not create role maocloud"

    MAOCLOUD_TEST_PG_URL="postgres://maocloud@127.0.0.1:$PG_PORT/postgres"
    export MAOCLOUD_TEST_PG_URL
    log "postgres $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT ($PG_DIR)"
}

pg_stop() {
    [ -n "$PG_DIR" ] || return 0
    if [ -n "$PG_BIN" ] && [ -f "$PG_DIR/data/postmaster.pid" ]; then
        _pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w -t 30 \
            stop >/dev/null 2>&1 || log "warning: pg_ctl stop failed"
    fi
    rm -rf "$PG_DIR"
    PG_DIR=""
}
