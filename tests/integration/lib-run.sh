# tests/integration/lib-run.sh - helpers for the cmig-run suites (sourced,
# after tests/lib.sh, and after lib-pg.sh when PostgreSQL is used).
#
#   lr_setup DRIVER          checks the programs, clears CMIG_* from the
#                            environment, makes a signing key ($KEY_SEC,
#                            $KEY_PUB) and a second, untrusted one ($OTHER_PUB)
#   mig DIR V NAME UP [DOWN] writes DIR/V_NAME.up.sql (and .down.sql)
#   bundle_build DIR NAME VERSION OUT [ARGS...]
#                            a signed bundle for $DRIVER (reproducible)
#   db_new NAME              a fresh database: sets DB (its URL), DB_NAME and,
#                            for SQLite, DB_FILE
#   db_sql SQL               runs SQL on it; rows as a|b|c lines
#   db_has TABLE             prints 1 when the table exists, else 0
#   db_hist                  the whole cmig history (both tables), for
#                            before/after comparisons
#   db_hist_count            rows of cmig_history (0 when it does not exist)
#   cmr ARGS...              cmig-run --bundle $BUN --trusted-key $TRUST
#                            (default $KEY_PUB) --database $DB ARGS...
#   x CODE DESC ARGS...      cmr ARGS... must exit CODE (expect_exit); $OUT
#   states                   "1:applied 2:pending ..." from status --json
#   is DESC GOT WANT         passes when GOT = WANT
#   elapsed_ms START         milliseconds since START (from now_ms)
#   pg_wait_query DB LIKE S  waits until a backend runs a matching query
#   pg_wait_gone DB S        waits until no cmig-run session is connected
#   no_secret DESC TEXT      TEXT is nowhere in $ALL_OUT
#
# Every command's output is also appended to $ALL_OUT, so a suite can check
# at the end that no secret was ever printed.

RUN=$(cmig_program cmig-run)
EPOCH=1700000000
DRIVER=${DRIVER:-sqlite}
ALL_OUT=$T/all-output.log
BUN=
DB=
DB_NAME=
DB_FILE=

# Under sanitizers a report must never pass for an exit code a test expects.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=86:print_stacktrace=1"

lr_setup() {
    local v tool
    DRIVER=$1
    for v in $(compgen -e); do
        case $v in CMIG_TOP) ;; CMIG_*) unset "$v" ;; esac
    done
    unset SOURCE_DATE_EPOCH
    for tool in jq sqlite3 setsid; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            not_ok "$tool is installed" "$tool not found in PATH"
            exit 1
        fi
    done
    if [ ! -x "$BUNDLE" ] || [ ! -x "$RUN" ]; then
        not_ok "cmig-bundle and cmig-run are built" "missing in $B (make B=... all)"
        exit 1
    fi
    if [ "$DRIVER" = postgres ] && [ ! -f "$B/drivers/postgres.so" ]; then
        not_ok "the PostgreSQL driver is built" "$B/drivers/postgres.so missing"
        exit 1
    fi
    : >"$ALL_OUT"
    mkdir -p "$T/keys" "$T/bundles"
    "$BUNDLE" keygen --no-password -q -o "$T/keys/k" >>"$ALL_OUT" 2>&1 &&
        "$BUNDLE" keygen --no-password -q -o "$T/keys/other" >>"$ALL_OUT" 2>&1 || {
        not_ok "keygen" "$(tail -5 "$ALL_OUT")"
        exit 1
    }
    KEY_SEC=$T/keys/k.key
    KEY_PUB=$T/keys/k.pub
    OTHER_PUB=$T/keys/other.pub
}

mig() {
    local dir=$1 v=$2 name=$3
    mkdir -p "$dir"
    printf '%s\n' "$4" >"$dir/${v}_$name.up.sql"
    if [ $# -ge 5 ]; then
        printf '%s\n' "$5" >"$dir/${v}_$name.down.sql"
    fi
}

bundle_build() {
    local dir=$1 name=$2 version=$3 out=$4 o
    shift 4
    o=$(SOURCE_DATE_EPOCH=$EPOCH "$BUNDLE" build "$dir" --name "$name" --version "$version" \
        --key "$KEY_SEC" --driver "$DRIVER" --output "$out" -q "$@" 2>&1)
    local rc=$?
    if [ $rc -ne 0 ]; then
        not_ok "build bundle $name $version" "exit $rc: $o"
        return 1
    fi
    return 0
}

db_new() {
    DB_NAME=$1
    case $DRIVER in
        sqlite)
            DB_FILE=$T/db/$1.db
            mkdir -p "$T/db"
            rm -f "$DB_FILE"
            DB=sqlite://$DB_FILE
            ;;
        postgres)
            DB_FILE=
            pg_createdb "$1" || not_ok "create database $1"
            DB=$(pg_url "$1")
            ;;
    esac
}

db_sql() {
    case $DRIVER in
        sqlite) sqlite3 -batch -noheader "$DB_FILE" "$1" ;;
        postgres) pg_psql "$DB_NAME" -c "$1" ;;
    esac
}

db_has() {
    case $DRIVER in
        sqlite)
            [ -f "$DB_FILE" ] || { echo 0; return; }
            db_sql "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='$1'" ;;
        postgres)
            db_sql "SELECT count(*) FROM pg_class WHERE relname='$1' AND relkind IN ('r','p')" ;;
    esac
}

db_hist() {
    if [ "$(db_has cmig_history)" = 1 ]; then
        db_sql "SELECT * FROM cmig_history ORDER BY 1, 2"
        echo "--"
    fi
    if [ "$(db_has cmig_bundles)" = 1 ]; then
        db_sql "SELECT * FROM cmig_bundles ORDER BY 1"
    fi
}

db_hist_count() {
    if [ "$(db_has cmig_history)" = 1 ]; then
        db_sql "SELECT count(*) FROM cmig_history"
    else
        echo 0
    fi
}

cmr() {
    "$RUN" --bundle "$BUN" --trusted-key "${TRUST:-$KEY_PUB}" --database "$DB" "$@"
}

# x CODE DESC ARGS...: cmr ARGS... must exit CODE; output in $OUT.
x() {
    local want=$1 desc=$2
    shift 2
    expect_exit "$want" "$desc" cmr "$@"
    printf '%s\n' "$OUT" >>"$ALL_OUT"
}

states() {
    local j
    j=$(cmr status --json 2>>"$ALL_OUT")
    printf '%s\n' "$j" >>"$ALL_OUT"
    jq -r '[.migrations[] | "\(.version):\(.state)"] | join(" ")' <<<"$j" 2>&1
}

is() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "got '$2', expected '$3'"; fi
}

now_ms() {
    date +%s%3N
}

elapsed_ms() {
    echo $(($(now_ms) - $1))
}

# ---------------------------------------------------------------------------
# PostgreSQL helpers for the process-level suites.

# pg_wait_query DB PATTERN TIMEOUT_S: waits until a backend runs a query
# matching PATTERN (SQL LIKE); returns 1 on timeout.
pg_wait_query() {
    local n
    for _ in $(seq 1 $(($3 * 20))); do
        n=$(pg_psql "$1" -c "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'
            AND pid <> pg_backend_pid() AND query LIKE '$2'" 2>/dev/null)
        [ "${n:-0}" -gt 0 ] && return 0
        sleep 0.05
    done
    return 1
}

# pg_wait_gone DB TIMEOUT_S: waits until no cmig-run backend is connected.
pg_wait_gone() {
    local n
    for _ in $(seq 1 $(($2 * 20))); do
        n=$(pg_psql "$1" -c "SELECT count(*) FROM pg_stat_activity
            WHERE application_name = 'cmig-run'" 2>/dev/null)
        [ "${n:-1}" -eq 0 ] && return 0
        sleep 0.05
    done
    return 1
}

# no_secret DESC CANARY: the canary is nowhere in anything printed so far.
no_secret() {
    if grep -q -- "$2" "$ALL_OUT"; then
        not_ok "$1" "$(grep -m3 -- "$2" "$ALL_OUT")"
    else
        ok "$1"
    fi
}
