# shellcheck shell=bash
# bench/lib.sh - what the benchmark scripts share (sourced by bench/run,
# bench/run-runner and bench/run-rss): the knobs and the quick mode, the
# small C tools they measure with, the measuring loop (warm-up, sides taking
# turns, state reset outside the timed region), the statistics, and the one
# row format every comparison is written in, which bench/report turns into
# bench/results/summary.md and the charts. Nothing here asserts on time.
#
# A script sets BENCH_NAME, sources this file, then calls bench_init.

BENCH_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$BENCH_LIB_DIR/.." && pwd)
B=${B:-build}
case $B in /*) BDIR=$B ;; *) BDIR=$TOP/$B ;; esac
BT=$BDIR/bench
RESULTS_DIR=${BENCH_RESULTS:-$TOP/bench/results}
QUICK=${BENCH_QUICK:-0}
# One id for every part of one `make bench`, so that bench/report can tell
# figures of different runs apart (it refuses to mix them silently).
BENCH_RUN_ID=${BENCH_RUN_ID:-$(date -u +%Y%m%dT%H%M%SZ)-$$}
export BENCH_RUN_ID
# libmongoc makes a counter file in /dev/shm unless this is set before it
# loads; cmig-run sets it itself, the MongoDB floor cannot (it is linked
# with libmongoc), so both sides get it from here alike.
export MONGOC_DISABLE_SHM=1

die() { echo "bench: $*" >&2; exit 2; }
note() { echo "bench: $*" >&2; }

# knob VAR DEFAULT QUICK_DEFAULT: VAR from the environment, else the default
# of the mode (BENCH_QUICK=1 takes the second).
knob() {
    local v=$1
    if [ -n "${!v+set}" ]; then
        printf '%s' "${!v}"
    elif [ "$QUICK" = 1 ]; then
        printf '%s' "$3"
    else
        printf '%s' "$2"
    fi
}

# number NAME VALUE: a whole number of at least 1, or the run stops.
number() {
    case $2 in '' | *[!0-9]*) die "$1 must be a whole number, not '$2'" ;; esac
    [ "$2" -ge 1 ] || die "$1 must be at least 1"
}

# A benchmark of a sanitizer build would measure the sanitizer.
not_sanitized() {
    local f
    for f in "$@"; do
        [ -f "$f" ] || die "$f is missing"
        if grep -aqE '__asan_init|__ubsan_handle|__tsan_init|__msan_init' "$f"; then
            die "$f is a sanitizer build; benchmark the normal build (B=build)"
        fi
    done
}

# bench_tools: the generators, the floors and the timer, compiled with the
# same flags as ever (C11, warnings on) into $B/bench. mongo_floor only when
# libmongoc is there (bench/run-runner needs it for its MongoDB part).
bench_tools() {
    local f="-std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes"
    f="$f -Wmissing-prototypes -Wvla -Wformat=2"
    mkdir -p "$BT" || die "cannot create $BT"
    # shellcheck disable=SC2086,SC2046 # flag lists, split on purpose
    {
        cc $f -o "$BT/timeit" "$TOP/bench/runner/timeit.c" &&
            cc $f -o "$BT/gen-migrations" "$TOP/bench/gen-migrations.c" &&
            cc $f -o "$BT/gen-runner" "$TOP/bench/runner/gen-runner.c" \
                $(pkg-config --cflags --libs libsodium) &&
            cc $f -o "$BT/pq_floor" "$TOP/bench/runner/pq_floor.c" \
                $(pkg-config --cflags --libs libpq libsodium) &&
            cc $f -o "$BT/sqlite_floor" "$TOP/bench/runner/sqlite_floor.c" \
                $(pkg-config --cflags --libs sqlite3)
    } || die "cannot compile the benchmark tools (bench/*.c, bench/runner/*.c)"
    if pkg-config --exists libmongoc-1.0 2>/dev/null; then
        # shellcheck disable=SC2086,SC2046
        cc $f -o "$BT/mongo_floor" "$TOP/bench/runner/mongo_floor.c" \
            $(pkg-config --cflags --libs libmongoc-1.0) || die "cannot compile mongo_floor.c"
    fi
}

# prepend_exit_trap CMD: CMD runs at exit before whatever ran there already
# (tests/lib.sh, lib-pg.sh and lib-mongo.sh each chain theirs the same way).
prepend_exit_trap() {
    local cmd=$1 prev
    prev=$(trap -p EXIT)
    if [ -n "$prev" ]; then
        # "trap -- 'CMD' EXIT": the old command is the third word.
        eval "set -- $prev"
        # shellcheck disable=SC2064 # expanded now, on purpose
        trap "$cmd; $3" EXIT
    else
        # shellcheck disable=SC2064
        trap "$1" EXIT
    fi
}

# bench_init: work dir $W (removed at exit), results files, the run's facts.
bench_init() {
    [ -n "${BENCH_NAME:-}" ] || die "BENCH_NAME is not set"
    [ "$(date +%N)" != "%N" ] || die "date does not know %N (GNU coreutils date needed)"
    W=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/cmig-bench-$BENCH_NAME.XXXXXX") ||
        die "mktemp failed"
    # The PostgreSQL server runs as its own user and reads files from here.
    chmod 755 "$W"
    prepend_exit_trap "rm -rf '$W'"
    trap 'exit 130' INT
    trap 'exit 143' TERM
    mkdir -p "$RESULTS_DIR" || die "cannot create $RESULTS_DIR"
    RESULTS=$RESULTS_DIR/$BENCH_NAME.tsv
    ENVF=$RESULTS_DIR/$BENCH_NAME.env
    printf 'id\twork\tn\tbytes\tours\tours_runs\tours_median_ms\tours_min_ms\tours_max_ms\tours_cpu_ms\tours_rss_mib\tother\tother_runs\tother_median_ms\tother_min_ms\tother_max_ms\tother_cpu_ms\tother_rss_mib\tratio\tgoal\tverdict\tnote\n' \
        >"$RESULTS.tmp" || die "cannot write $RESULTS.tmp"
    : >"$ENVF.tmp" || die "cannot write $ENVF.tmp"
    BENCH_T0=$(date +%s)
    fact run_id "$BENCH_RUN_ID"
    fact part "$BENCH_NAME"
    fact quick "$QUICK"
    fact date_start "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    fact load_start "$(cut -d' ' -f1-3 /proc/loadavg)"
    fact cpu "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
    fact cores "$(nproc)"
    fact ram "$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    fact debian "$(cat /etc/debian_version 2>/dev/null || echo unknown)"
    fact kernel "$(uname -r)"
    fact workdir_fs "$(stat -f -c %T "$W")"
    echo "$BENCH_NAME benchmark: $(nproc) CPU(s), $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "  load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine makes wall times noisy)"
    [ "$QUICK" = 1 ] && echo "  BENCH_QUICK=1: small sizes and few runs, a smoke test, not figures to quote"
    return 0
}

# fact KEY VALUE: one line of the run's facts (machine, versions, knobs).
fact() {
    printf '%s\t%s\n' "$1" "$2" >>"$ENVF.tmp"
}

# bench_finish: the results replace the previous ones only now, whole.
bench_finish() {
    fact date_end "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    fact load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
    fact seconds "$(($(date +%s) - BENCH_T0))"
    { mv "$RESULTS.tmp" "$RESULTS" && mv "$ENVF.tmp" "$ENVF"; } || die "cannot write $RESULTS"
    echo
    echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); $BENCH_NAME took $(($(date +%s) - BENCH_T0)) s"
    echo "results: ${RESULTS#"$TOP"/}"
}

# ---- measuring ----------------------------------------------------------------
# A side is a function side_NAME that sets CMD (the command array); reset_NAME,
# when defined, runs before every run of it, check_NAME after it (both outside
# the measurement: a reset puts the database or the output back where every
# run starts, a check proves the run did its work).

# measure TAG RUNS SIDE... : one warm-up round that is not counted, then RUNS
# rounds; in each round every side runs once, the sides rotating who goes
# first, so that drift in the machine's load falls on all of them alike.
# Lines "wall_ms rss_kib cpu_ms" in $W/m.TAG.SIDE.
measure() {
    local tag=$1 runs=$2 i k n out side
    shift 2
    local sides=("$@")
    n=${#sides[@]}
    for side in "${sides[@]}"; do : >"$W/m.$tag.$side"; done
    for ((i = 0; i <= runs; i++)); do
        for ((k = 0; k < n; k++)); do
            side=${sides[$(((i + k) % n))]}
            if declare -F "reset_$side" >/dev/null; then "reset_$side" || die "reset for $side failed"; fi
            "side_$side"
            if ! out=$("$BT/timeit" "$W/cmd.log" -- "${CMD[@]}"); then
                tail -n 20 "$W/cmd.log" >&2
                die "$tag: $side failed: ${CMD[*]}"
            fi
            if declare -F "check_$side" >/dev/null; then
                "check_$side" || die "$tag: $side did not do its work"
            fi
            ((i == 0)) && continue
            awk '{ printf "%.3f %d %.3f\n", $1 / 1000, $2, $3 / 1000 }' <<<"$out" >>"$W/m.$tag.$side"
        done
    done
}

# stats TAG SIDE : "median min max rss_max_kib n cpu_median" (ms, KiB)
stats() {
    sort -n -k1,1 "$W/m.$1.$2" | awk '
        { w[NR] = $1; c[NR] = $3; if ($2 > rss) rss = $2 }
        END {
            n = NR
            if (n == 0) { print "0 0 0 0 0 0"; exit }
            med = n % 2 ? w[(n + 1) / 2] : (w[n / 2] + w[n / 2 + 1]) / 2
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
                if (c[j] < c[i]) { t = c[i]; c[i] = c[j]; c[j] = t }
            cmed = n % 2 ? c[(n + 1) / 2] : (c[n / 2] + c[n / 2 + 1]) / 2
            printf "%.3f %.3f %.3f %d %d %.3f\n", med, w[1], w[n], rss, n, cmed
        }'
}

median_of() { stats "$1" "$2" | cut -d' ' -f1; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# ms_h MS: a duration for people (ms below 1 s, s above).
ms_h() {
    awk -v m="$1" 'BEGIN {
        if (m < 10) printf "%.2f ms", m; else if (m < 1000) printf "%.1f ms", m
        else if (m < 10000) printf "%.2f s", m / 1000; else printf "%.1f s", m / 1000 }'
}

# show TAG SIDE LABEL : one line of the console table.
show() {
    local med mn mx rss n cpu
    read -r med mn mx rss n cpu <<<"$(stats "$1" "$2")"
    printf '    %-40s %10s  (%s - %s)  cpu %s  %s MiB  n=%s\n' "$3" "$(ms_h "$med")" \
        "$(ms_h "$mn")" "$(ms_h "$mx")" "$(ms_h "$cpu")" "$(mib "$rss")" "$n"
}

# compare ID WORK N BYTES TAG OURS OURS_LABEL OTHER OTHER_LABEL GOAL [NOTE]
# One comparison row: ratio = our median / the other side's median, met when
# at most GOAL ("-": no goal, the row is for information).
compare() {
    local id=$1 work=$2 n=$3 bytes=$4 tag=$5 ours=$6 olab=$7 other=$8 xlab=$9 goal=${10} nt=${11:-}
    local om omn omx orss on ocpu xm xmn xmx xrss xn xcpu ratio verdict
    read -r om omn omx orss on ocpu <<<"$(stats "$tag" "$ours")"
    read -r xm xmn xmx xrss xn xcpu <<<"$(stats "$tag" "$other")"
    ratio=$(awk -v a="$om" -v b="$xm" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
    verdict=-
    if [ "$goal" != - ]; then
        verdict=$(awk -v r="$ratio" -v g="$goal" 'BEGIN { print (r <= g ? "met" : "MISSED") }')
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$id" "$work" "$n" "$bytes" "$olab" "$on" "$om" "$omn" "$omx" "$ocpu" "$(mib "$orss")" \
        "$xlab" "$xn" "$xm" "$xmn" "$xmx" "$xcpu" "$(mib "$xrss")" "$ratio" "$goal" "$verdict" \
        "$nt" >>"$RESULTS.tmp"
    # Both names: a part may compare two of ours with one floor.
    if [ "$goal" = - ]; then
        printf '    ratio %s / %s: %.2fx\n' "$olab" "$xlab" "$ratio"
    else
        printf '    ratio %s / %s: %.2fx  (goal <= %s: %s)\n' "$olab" "$xlab" "$ratio" "$goal" "$verdict"
    fi
}

# rss_row WORK N BYTES PROGRAM KIB [NOTE]: one peak-RSS row in the same
# format (the RSS in ours_rss_mib; no other side, no ratio: flat is the goal,
# which the rows of one program across sizes show, not any one row).
rss_row() {
    printf 'rss\t%s\t%s\t%s\t%s\t1\t\t\t\t\t%s\t-\t\t\t\t\t\t\t\t-\t-\t%s\n' \
        "$1" "$2" "$3" "$4" "$(mib "$5")" "${6:-}" >>"$RESULTS.tmp"
}

# ---- servers and peers ------------------------------------------------------

# bench_pg: a private PostgreSQL server (tests/integration/lib-pg.sh's: fsync
# and synchronous_commit off, on loopback), stopped at exit, with statement
# and connection logging off so that writing the log takes no part, and a
# lock table large enough for --single-transaction over 10,000 migrations
# (some 14,000 relations locked at once). url DB is the URL every side gets
# (sslmode=disable: dbmate's driver needs it; the others get the same).
bench_pg() {
    export B
    # shellcheck disable=SC1091 # found at run time
    source "$TOP/tests/lib.sh"
    # tests/lib.sh sets its own EXIT trap: the work dir's removal goes back on.
    prepend_exit_trap "rm -rf '$W'"
    # shellcheck disable=SC1091
    source "$TOP/tests/integration/lib-pg.sh"
    set +e
    pg_start || die "cannot start a PostgreSQL server"
    pg_psql postgres -c "ALTER SYSTEM SET log_statement = 'none'" \
        -c "ALTER SYSTEM SET log_connections = off" \
        -c "ALTER SYSTEM SET max_locks_per_transaction = 1024" >/dev/null ||
        die "cannot configure the server"
    pg_restart || die "cannot restart the server"
    pg_psql postgres -c "CREATE DATABASE bench_tpl TEMPLATE template0" >/dev/null ||
        die "cannot create the template database"
    fact postgresql "$("$PG_BINDIR/postgres" --version | awk '{ print $3 }')"
}
url() { echo "postgres://postgres@127.0.0.1:$PG_PORT/$1?sslmode=disable"; }

# bench_jongodb: the MongoDB-wire server the MongoDB integration tests use
# (jongodb from npm, pinned and hash-checked by lib-mongo.sh, cached next to
# the build), as a one-node replica set; sets MONGO_BASE. Returns 1 when it
# cannot be had (no npm, no network): the MongoDB rows are then skipped.
bench_jongodb() {
    local port _
    # shellcheck disable=SC1091
    source "$TOP/tests/integration/lib-mongo.sh"
    MONGO_LOGDIR=$W/mongo-log
    mkdir -p "$MONGO_LOGDIR" || return 1
    command -v npm >/dev/null 2>&1 || [ -x "$MONGO_CACHE/jongodb-$JONGODB_VERSION/jongodb" ] ||
        return 1
    _mongo_install_jongodb || return 1
    prepend_exit_trap mongo_stop
    for _ in 1 2 3 4 5; do
        port=$(mongo_free_port) || return 1
        if jongodb_start "$port"; then
            # shellcheck disable=SC2034 # read by the scripts that source this
            MONGO_BASE="mongodb://127.0.0.1:$port/test?replicaSet=rs0"
            fact mongodb_server "jongodb $JONGODB_VERSION"
            return 0
        fi
    done
    return 1
}

# bench_dbmate: dbmate from npm (its platform package holds the Linux
# binary) into $B/bench/npm, once; or BENCH_DBMATE. Sets DBMATE, empty when
# it cannot be had: dbmate's rows are then skipped, said so on the console.
bench_dbmate() {
    local npmdir=$BT/npm d
    DBMATE=${BENCH_DBMATE:-}
    if [ -z "$DBMATE" ]; then
        for d in "$npmdir"/node_modules/@dbmate/*/bin/dbmate; do
            [ -x "$d" ] && "$d" --version >/dev/null 2>&1 && DBMATE=$d && break
        done
    fi
    if [ -z "$DBMATE" ] && command -v npm >/dev/null 2>&1; then
        note "installing dbmate with npm into ${npmdir#"$TOP"/}"
        mkdir -p "$npmdir"
        if npm install --silent --no-audit --no-fund --prefix "$npmdir" dbmate >"$W/npm.log" 2>&1; then
            for d in "$npmdir"/node_modules/@dbmate/*/bin/dbmate; do
                [ -x "$d" ] && "$d" --version >/dev/null 2>&1 && DBMATE=$d && break
            done
        else
            tail -n 5 "$W/npm.log" >&2
        fi
    fi
    if [ -n "$DBMATE" ] && "$DBMATE" --version >/dev/null 2>&1; then
        fact dbmate "$("$DBMATE" --version 2>&1 | head -n 1 | sed 's/^dbmate version //')"
    else
        note "no dbmate (npm install dbmate failed); its rows are skipped"
        DBMATE=
    fi
}
