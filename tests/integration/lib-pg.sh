# tests/integration/lib-pg.sh - a private PostgreSQL server for one test
# suite (sourced, after tests/lib.sh).
#
#   pg_start            initdb (or copy a cached template) into a temp dir and
#                       start a server on 127.0.0.1:<free port> and a unix
#                       socket in that dir; exports PGHOST PGPORT PGUSER
#                       PGDATABASE, CMIG_TEST_PG_URL, PG_PORT, PG_SOCKDIR,
#                       PG_LOG (every connection and statement is logged
#                       there, so a test can prove what was or was not sent)
#   pg_url DB           postgres://postgres@127.0.0.1:PORT/DB
#   pg_free_port        prints a loopback port nothing listens on
#   pg_createdb NAME    a fresh database (one per scenario)
#   pg_psql DB ARGS...  psql -X -At -v ON_ERROR_STOP=1 against DB
#   pg_log_mark         prints the log's current size; pg_log_since MARK
#                       prints what was logged after it
#   pg_halt / pg_resume stop the server (data kept) / start it again on the
#                       same port
#   pg_restart          restart (fast shutdown)
#   pg_crash            immediate shutdown (a crash: no checkpoint, every
#                       backend killed at once; data kept, pg_resume starts
#                       it again through crash recovery)
#   pg_stop             immediate shutdown and removal; runs at exit
#
# The server is throw-away: fsync off, trust authentication.
# synchronous_commit is off too, which makes a crash lose the last commits;
# a suite that crashes the server on purpose and then looks at what was
# committed sets PG_SYNCHRONOUS_COMMIT=on before pg_start. initdb and
# postgres refuse to run as root, so as root they run as the `postgres`
# system user (the postgresql package creates it) with the directory
# chowned to it; as anyone else they run as that user.

PG_BINDIR=${PG_BINDIR:-}
if [ -z "$PG_BINDIR" ]; then
    PG_BINDIR=/usr/lib/postgresql/15/bin
    if [ ! -x "$PG_BINDIR/postgres" ]; then
        for _d in /usr/lib/postgresql/*/bin; do
            [ -x "$_d/postgres" ] && PG_BINDIR=$_d
        done
    fi
fi
PG_ROOT=
PG_PORT=
PG_SOCKDIR=
PG_LOG=
PG_DATA=

# Runs a server-side command as the user that owns the cluster.
_pg_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        setpriv --reuid=postgres --regid=postgres --init-groups --reset-env -- \
            env PATH=/usr/bin:/bin LC_ALL=C "$@"
    else
        "$@"
    fi
}

_pg_port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pg_free_port() {
    local p i
    for i in $(seq 1 50); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        _pg_port_busy "$p" || { echo "$p"; return 0; }
    done
    return 1
}

# A cluster made by initdb is the same every time: keep one next to the
# build and copy it (0.1 s) instead of running initdb again (about 1 s).
_pg_init_data() {
    local version tpl tmp
    version=$("$PG_BINDIR/postgres" --version 2>/dev/null | sed 's/[^0-9]*\([0-9][0-9]*\).*/\1/')
    tpl=${PG_TEMPLATE_DIR:-${B:-build}/tests/pg-template-$version}
    if [ -f "$tpl/PG_VERSION" ]; then
        cp -a "$tpl" "$PG_DATA" || return 1
    else
        _pg_as_owner "$PG_BINDIR/initdb" -D "$PG_DATA" -U postgres --auth=trust --no-sync \
            --no-instructions -E UTF8 --locale=C >"$PG_ROOT/initdb.log" 2>&1 || {
            cat "$PG_ROOT/initdb.log" >&2
            return 1
        }
        # Publish atomically: suites may start at the same time.
        if mkdir -p "$(dirname "$tpl")" 2>/dev/null; then
            tmp=$tpl.tmp.$$
            if cp -a "$PG_DATA" "$tmp" 2>/dev/null; then
                mv -T "$tmp" "$tpl" 2>/dev/null || rm -rf "$tmp"
            fi
        fi
    fi
    [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$PG_DATA"
    chmod 700 "$PG_DATA"
}

_pg_configure() {
    cat >>"$PG_DATA/postgresql.conf" <<EOF
# cmig test server
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCKDIR'
fsync = off
synchronous_commit = ${PG_SYNCHRONOUS_COMMIT:-off}
full_page_writes = off
max_connections = 60
shared_buffers = 16MB
log_connections = on
log_statement = 'all'
log_line_prefix = '%m [%p] %u@%d '
logging_collector = off
EOF
}

_pg_ctl_start() {
    _pg_as_owner "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 30 start >/dev/null 2>&1
}

pg_start() {
    [ -n "$PG_ROOT" ] && return 0
    if [ ! -x "$PG_BINDIR/postgres" ]; then
        echo "lib-pg: no PostgreSQL server binaries (install postgresql)" >&2
        return 1
    fi
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        echo "lib-pg: running as root needs the 'postgres' system user" >&2
        return 1
    fi
    PG_ROOT=$(mktemp -d /tmp/cmig-pg.XXXXXX) || return 1
    PG_DATA=$PG_ROOT/data
    PG_SOCKDIR=$PG_ROOT
    PG_LOG=$PG_ROOT/postgres.log
    chmod 755 "$PG_ROOT"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$PG_ROOT"
    fi
    _pg_install_trap
    _pg_init_data || { pg_stop; return 1; }
    cp "$PG_DATA/postgresql.conf" "$PG_ROOT/postgresql.conf.orig" || { pg_stop; return 1; }
    local attempt
    for attempt in 1 2 3 4 5; do
        PG_PORT=$(pg_free_port) || break
        cp "$PG_ROOT/postgresql.conf.orig" "$PG_DATA/postgresql.conf"
        _pg_configure
        : >"$PG_LOG"
        [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$PG_LOG"
        if _pg_ctl_start; then
            export PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=postgres PGDATABASE=postgres
            export CMIG_TEST_PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
            export PG_PORT PG_SOCKDIR PG_LOG
            return 0
        fi
        # Most likely someone took the port between the check and the bind.
    done
    echo "lib-pg: the server did not start:" >&2
    tail -20 "$PG_LOG" >&2
    pg_stop
    return 1
}

pg_url() {
    echo "postgres://postgres@127.0.0.1:$PG_PORT/$1"
}

pg_psql() {
    local db=$1; shift
    "$PG_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres \
        -d "$db" "$@"
}

pg_createdb() {
    pg_psql postgres -c "CREATE DATABASE \"$1\"" >/dev/null
}

pg_log_mark() {
    wc -c <"$PG_LOG"
}

pg_log_since() {
    tail -c +"$(($1 + 1))" "$PG_LOG"
}

pg_halt() {
    _pg_as_owner "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1
}

pg_resume() {
    _pg_ctl_start
}

pg_restart() {
    _pg_as_owner "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 restart >/dev/null 2>&1
}

pg_crash() {
    _pg_as_owner "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null 2>&1
}

pg_stop() {
    [ -n "$PG_ROOT" ] || return 0
    if [ -f "$PG_DATA/postmaster.pid" ]; then
        _pg_as_owner "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null 2>&1
    fi
    rm -rf "$PG_ROOT"
    PG_ROOT=
}

# Chains pg_stop in front of whatever EXIT trap is set (tests/lib.sh
# removes its temp dir there).
_pg_install_trap() {
    local prev
    prev=$(trap -p EXIT)
    if [ -n "$prev" ]; then
        eval "set -- $prev"
        trap "pg_stop; $3" EXIT
    else
        trap pg_stop EXIT
    fi
    trap 'exit 130' INT
    trap 'exit 143' TERM
}
