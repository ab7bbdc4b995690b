#!/usr/bin/env bash
# alloc.sh - every allocation of cmig-bundle build, cmig-bundle verify,
# cmig-run verify and cmig-run up (SQLite and PostgreSQL) made to fail in
# turn: each failure must end in the out-of-memory error (cmig-bundle exit
# 6, cmig-run exit 8, "out of memory" on stderr) or, where the program
# can do without that block, in the same result as a run without
# failures; never a crash, a sanitizer report or a leak.
#
# tests/attack/fault.so (LD_PRELOAD) counts allocations from its
# constructor on and fails the Nth. A first run without a failure counts
# them; then N goes from 1 to that count. Meant for an ASan+UBSan build
# (make attack): LeakSanitizer then reports any block an error path
# forgets, and a report fails the run (exit 86). Also checked:
#   build  the output path keeps the previous bundle and its signature
#          byte for byte, and nothing else is left next to them; or, on
#          success, both are exactly what a run without failures writes
#   up     the database is either untouched or holds whole migrations, and
#          a run without failures then brings it to the good state (on
#          PostgreSQL after every failed run, an empty database included)
# Two lanes run side by side (odd and even N).
SUITE_NAME=alloc
. "$(dirname "$0")/../lib.sh"
. "$CMIG_TOP/tests/integration/lib-pg.sh"
. "$CMIG_TOP/tests/integration/lib-run.sh"

FAULT_SO=$B/tests/attack/fault.so
if [ ! -f "$FAULT_SO" ]; then
    not_ok "setup" "$FAULT_SO is not built"
    exit 1
fi
lr_setup sqlite
SAN=$T/san
mkdir -p "$SAN"
# verify_asan_link_order=0: fault.so is preloaded ahead of the sanitizer
# runtime on purpose (see fault.c).
ASAN_BASE="verify_asan_link_order=0:detect_leaks=1:exitcode=86"
UBSAN_BASE="exitcode=86:print_stacktrace=1"
mkdir -p "$SAN/known"
LANES=2
SHOW=6 # failing cases named per program
CASE_TIMEOUT=${ALLOC_CASE_TIMEOUT:-120} # seconds; a case takes well under one
t_start=$(date +%s)

# The migrations: a canary that inserts a row, and a second one.
M=$T/migrations
mig "$M" 1 canary 'CREATE TABLE canary (x int);
INSERT INTO canary VALUES (42);' 'DROP TABLE canary;'
mig "$M" 2 canary_index 'CREATE INDEX canary_x ON canary (x);' 'DROP INDEX canary_x;'
GOOD=$T/good.cmig
bundle_build "$M" canary 1.0.0 "$GOOD" || exit 1
# What sits at the output path before each faulted build.
bundle_build "$M" canary 0.9.0 "$T/old.cmig" || exit 1

# A PostgreSQL server for the last program (skipped, with a failure, if
# there is none).
have_pg=1
pg_start || have_pg=0

# fingerprint_sqlite FILE: what the database holds, minus times.
fingerprint_sqlite() {
    local tables
    [ -f "$1" ] || { echo absent; return; }
    tables=$(sqlite3 -batch -noheader "$1" "SELECT group_concat(name, ',') FROM
        (SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name)" 2>&1)
    echo "tables:$tables"
    case ,$tables, in *,canary,*)
        sqlite3 -batch -noheader "$1" "SELECT 'canary:' || coalesce(group_concat(x), '')
            FROM canary" 2>&1 ;;
    esac
    case ,$tables, in *,cmig_history,*)
        sqlite3 -batch -noheader "$1" "SELECT 'history:' || coalesce(group_concat(bundle ||
            ' ' || version || ' ' || sha256 || ' ' || dirty, ';'), '') FROM
            (SELECT * FROM cmig_history ORDER BY version)" 2>&1 ;;
    esac
}

# The same for PostgreSQL in one round trip: a function (not a table, so
# not in its own fingerprint) that reads only the tables that exist.
PG_FINGERPRINT_FN="CREATE FUNCTION fingerprint() RETURNS text LANGUAGE plpgsql AS \$f\$
DECLARE r text; t text;
BEGIN
    SELECT 'tables:' || coalesce(string_agg(relname, ',' ORDER BY relname), '') INTO r
        FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace;
    IF to_regclass('public.canary') IS NOT NULL THEN
        EXECUTE 'SELECT coalesce(string_agg(x::text, '',''), '''') FROM canary' INTO t;
        r := r || E'\ncanary:' || t;
    END IF;
    IF to_regclass('public.cmig_history') IS NOT NULL THEN
        EXECUTE 'SELECT coalesce(string_agg(bundle || '' '' || version || '' '' || sha256
            || '' '' || dirty::text, '';'' ORDER BY version), '''') FROM cmig_history' INTO t;
        r := r || E'\nhistory:' || t;
    END IF;
    RETURN r;
END \$f\$"

# fingerprint_pg DB [reset]: and with "reset", empties it for the next
# case in the same round trip.
fingerprint_pg() {
    local drop=
    [ "${2:-}" = reset ] && drop="DROP TABLE IF EXISTS canary, cmig_history, cmig_bundles;"
    pg_psql "$1" -c "SELECT fingerprint()" -c "$drop" 2>&1
}

# A failed run may leave the database as it was, or with cmig's own tables
# and no history; never a migration's effect, nor a record of one.
untouched() { # FINGERPRINT
    case $1 in *canary:* | *"history:"?*) return 1 ;; esac
    case $1 in absent | tables:*) return 0 ;; esac
    return 1
}

# What a failed up may leave: nothing done, the first migration done and
# recorded (each migration is its own transaction; HALF_* is what
# `up --to 1` leaves), or everything done.
consistent() { # FINGERPRINT GOOD HALF
    [ "$1" = "$2" ] || [ "$1" = "$3" ] || untouched "$1"
}

# faulted DIR N PROGRAM ARGS...: one run with allocation N failing (0:
# none); sets RC, FIRED (how many allocations failed) and ERRTXT.
faulted() {
    local d=$1 n=$2
    shift 2
    rm -f "$d/report"
    # A hang is a failure too, not a sweep that never ends: killed after
    # CASE_TIMEOUT seconds, it reads as "killed by signal 9". env, not the
    # shell, sets the variables, so timeout itself is not preloaded.
    timeout -s KILL "$CASE_TIMEOUT" env ASAN_OPTIONS="$ASAN_BASE:log_path=$d/asan" \
        UBSAN_OPTIONS="$UBSAN_BASE:log_path=$d/ubsan" FAULT_ALLOC="$n" FAULT_REPORT="$d/report" \
        LD_PRELOAD="$FAULT_SO" "$@" >"$d/out" 2>"$d/err"
    RC=$?
    # Each report is kept. Kept apart, and counted as another library's:
    #   libarchive  a crash inside its own unchecked allocation
    #               (archive_write_add_filter_gzip, 3.6)
    #   gnutls      a leak report whose every frame is the allocator or has
    #               no symbol, in a run where GnuTLS said its initialisation
    #               failed: libgnutls (linked by libpq through libldap, not
    #               used by libpq itself) initialises itself when the driver
    #               is loaded and, failing, leaks what it had built; it is
    #               unloaded with the driver at exit, before the leak check,
    #               so the frames are bare addresses (which LeakSanitizer
    #               may even attribute to another file). A leak in cmig-run
    #               would have a symbol; one in the driver (unloaded too)
    #               would be there in the run without failures as well, the
    #               one failed allocation being GnuTLS's
    #   lsan        LeakSanitizer's own crash while it reads glibc's
    #               thread-local table at exit: any other error would have
    #               been reported (and the run ended) before; only the leak
    #               check could not run
    local f known=
    for f in "$d"/asan.* "$d"/ubsan.*; do
        [ -e "$f" ] || continue
        if grep -q "^    #0 0x[0-9a-f]* in archive_write_add_filter_gzip " "$f"; then
            known=libarchive
        elif grep -q "^==[0-9]*==LeakSanitizer has encountered a fatal error" "$f" &&
            grep -q "^Tracer caught signal 11" "$f"; then
            known=lsan
        elif grep -q "^Error in GnuTLS initialization: " "$d/err" &&
            grep -q "ERROR: LeakSanitizer: detected memory leaks" "$f" &&
            ! grep "^    #[0-9]* 0x" "$f" | grep -v -e "^    #[0-9]* 0x[0-9a-f]*  (.*)$" \
                -e " in __interceptor_[a-z_]* [^ ]*/asan_malloc_linux.cpp:[0-9]*$" | grep -q .; then
            known=gnutls
        else
            mv "$f" "$SAN/${d##*/}-$n-${f##*/}"
            continue
        fi
        mv "$f" "$SAN/known/$n-$known-${f##*/}"
    done
    FIRED=$(sed -n 's/.* fired \([0-9]*\)$/\1/p' "$d/report" 2>/dev/null)
    ERRTXT=$(head -c 300 "$d/err" | tr '\n' ' ')
    # What stderr says, read now: a later run in the same lane rewrites it.
    ERRCLASS=other
    if [ "$known" = libarchive ]; then
        ERRCLASS=libarchive-crash
    elif [ -n "$known" ]; then
        ERRCLASS=$known-report
    elif grep -q "^cannot allocate memory for thread-local data: ABORT$" "$d/err"; then
        ERRCLASS=tls-exit
    elif grep -q "error: .*\(out of memory\|Cannot allocate memory\|Memory allocation failure\)" \
        "$d/err"; then
        ERRCLASS=nomem
    elif grep -q "^Fatal Internal Error in libarchive: .*[Mm]emory" "$d/err"; then
        ERRCLASS=libarchive-exit
    elif grep -q "gzip decompression failed$" "$d/err"; then
        ERRCLASS=zlib-nomem
    elif grep -q "error: cannot load '.*/drivers/[a-z]*\.so': " "$d/err"; then
        ERRCLASS=dlopen
    fi
}

# verdict N NOMEM_EXIT [EXTRA_PROBLEM [ALSO_EXIT]]: prints the case's line:
#   N RC FIRED ok|bad WHY
# A run is clean when it exits 0, or with the program's out-of-memory exit
# (or ALSO_EXIT) and message, and nothing else is wrong.
verdict() {
    local n=$1 nomem=$2 extra=${3:-} also=${4:-} why=
    if [ "$RC" -eq 1 ] && [ "$ERRCLASS" = libarchive-exit ] && [ -z "$extra" ]; then
        # libarchive 3.6 (Debian 12) ends the process itself when some of
        # its string buffers cannot grow: nothing in cmig can answer that.
        echo "$n $RC ${FIRED:-?} libarchive exit(1)"
        return
    elif [ "$RC" -eq 8 ] && [ "$ERRCLASS" = dlopen ] && [ -z "$extra" ]; then
        # glibc's dynamic loader says "cannot create shared object
        # descriptor" (or even "No such file or directory") when it runs
        # out of memory: cmig-run passes that on, with exit 8.
        echo "$n $RC ${FIRED:-?} dlopen"
        return
    elif [ "$RC" -eq 127 ] && [ "$ERRCLASS" = tls-exit ] && [ -z "$extra" ]; then
        # glibc ends the process (exit 127) when it cannot allocate a
        # dlopen'ed library's thread-local block on first use; libgnutls
        # (linked by libpq through libldap) first uses its own in its
        # destructor, at exit, after the run's work is done.
        echo "$n $RC ${FIRED:-?} tls exit(127)"
        return
    elif [ "$RC" -eq 86 ] && [ "$ERRCLASS" = libarchive-crash ]; then
        echo "$n $RC ${FIRED:-?} libarchive crash"
        return
    elif [ "$RC" -eq 86 ] && [ "$ERRCLASS" = gnutls-report ] && [ -z "$extra" ]; then
        echo "$n $RC ${FIRED:-?} gnutls leak"
        return
    elif [ "$RC" -eq 86 ] && [ "$ERRCLASS" = lsan-report ] && [ -z "$extra" ]; then
        echo "$n $RC ${FIRED:-?} lsan crash"
        return
    elif [ "$RC" -ne 0 ] && [ "$ERRCLASS" = zlib-nomem ] && [ -z "$extra" ]; then
        # It also reports zlib's Z_MEM_ERROR as a corrupt stream.
        echo "$n $RC ${FIRED:-?} libarchive zlib-nomem"
        return
    elif [ "$RC" -eq 86 ]; then
        why="sanitizer report"
    elif [ "$RC" -ge 128 ]; then
        why="killed by signal $((RC - 128))"
    elif [ "$RC" -ne 0 ] && [ "$RC" -ne "$nomem" ] && [ "$RC" != "$also" ]; then
        why="exit $RC, not $nomem${also:+ or $also}"
    elif [ "$RC" -ne 0 ] && [ "$ERRCLASS" != nomem ]; then
        why="exit $RC without an out-of-memory message"
    fi
    [ -z "$why" ] && why=$(printf '%s' "$extra" | tr '\n' ' ')
    if [ -z "$why" ]; then
        echo "$n $RC ${FIRED:-?} ok -"
    else
        echo "$n $RC ${FIRED:-?} bad $why: $ERRTXT"
    fi
}

# ---- the programs ----------------------------------------------------------

case_build() { # N
    local d=$T/lane$LANE o=$T/lane$LANE/out.d extra=
    rm -rf "$o"
    mkdir -p "$o"
    cp "$T/old.cmig" "$o/app.cmig"
    cp "$T/old.cmig.minisig" "$o/app.cmig.minisig"
    SOURCE_DATE_EPOCH=$EPOCH faulted "$d" "$1" "$BUNDLE" build "$M" --name canary \
        --version 1.0.0 --key "$KEY_SEC" --driver sqlite --output "$o/app.cmig" -q
    if [ "$RC" -eq 0 ]; then
        cmp -s "$o/app.cmig" "$GOOD" && cmp -s "$o/app.cmig.minisig" "$GOOD.minisig" ||
            extra="exit 0 but the bundle or signature differs from a good build"
    else
        cmp -s "$o/app.cmig" "$T/old.cmig" && cmp -s "$o/app.cmig.minisig" "$T/old.cmig.minisig" ||
            extra="the previous bundle or its signature did not survive"
    fi
    local left
    left=$(ls -A "$o" | grep -v -x -e app.cmig -e app.cmig.minisig | tr '\n' ' ')
    # A process that libarchive ends (or that crashes in it) cannot clean
    # up its temporary file; the previous bundle must still be intact.
    case $ERRCLASS in libarchive-*) left= ;; esac
    [ -n "$left" ] && extra="${extra:+$extra; }left behind: $left"
    verdict "$1" 6 "$extra"
}

case_bundle_verify() {
    local d=$T/lane$LANE extra=
    faulted "$d" "$1" "$BUNDLE" verify "$GOOD" --pubkey "$KEY_PUB"
    [ "$RC" -eq 0 ] && ! grep -q "^ok: " "$d/out" && extra="exit 0 without the ok line"
    verdict "$1" 6 "$extra"
}

case_run_verify() {
    local d=$T/lane$LANE extra=
    faulted "$d" "$1" "$RUN" --bundle "$GOOD" --trusted-key "$KEY_PUB" verify
    [ "$RC" -eq 0 ] && ! grep -q "verified" "$d/err" && extra="exit 0 without saying verified"
    verdict "$1" 8 "$extra"
}

case_up_sqlite() {
    local d=$T/lane$LANE db=$T/lane$LANE/db.sqlite extra= got
    rm -f "$db" "$db-journal" "$db-wal" "$db-shm"
    faulted "$d" "$1" "$RUN" --bundle "$GOOD" --trusted-key "$KEY_PUB" \
        --database "sqlite://$db" --termination-log "$d/term" up
    local rc=$RC fired=$FIRED errtxt=$ERRTXT errclass=$ERRCLASS
    got=$(fingerprint_sqlite "$db")
    if [ "$rc" -eq 0 ]; then
        [ "$got" = "$GOOD_SQLITE" ] || extra="exit 0 but the database is not the good one: $got"
    else
        if ! consistent "$got" "$GOOD_SQLITE" "$HALF_SQLITE"; then
            extra="left the database in between: $got"
        fi
        # A run without failures must finish the job (from no file at all,
        # the run that counted the allocations did).
        [ "$got" = absent ] && { RC=$rc FIRED=$fired ERRTXT=$errtxt ERRCLASS=$errclass \
            verdict "$1" 8 "$extra"; return; }
        faulted "$d" 0 "$RUN" --bundle "$GOOD" --trusted-key "$KEY_PUB" \
            --database "sqlite://$db" --termination-log "$d/term" up
        got=$(fingerprint_sqlite "$db")
        if [ "$RC" -ne 0 ] || [ "$got" != "$GOOD_SQLITE" ]; then
            extra="${extra:+$extra; }the next run (exit $RC) did not finish: $got"
        fi
    fi
    RC=$rc FIRED=$fired ERRTXT=$errtxt ERRCLASS=$errclass verdict "$1" 8 "$extra"
}

# The URL of a PostgreSQL database, without GSSAPI encryption: with libpq's
# default (gssencmode=prefer) every connection asks MIT Kerberos whether it
# holds credentials, and libgssapi_krb5 1.20 dereferences NULL when an
# allocation inside gss_indicate_mechs fails (a crash inside that library,
# not cmig's to fix).
pg_url_nogss() { echo "$(pg_url "$1")?gssencmode=disable"; }

# Each case leaves its database empty for the next one in its lane. libpq
# reports its own allocation failures while connecting as a failed
# connection ("cannot connect ...: out of memory"), which cmig-run cannot
# tell from other connection failures: exit 4 with that message is clean
# too.
case_up_pg() {
    local d=$T/lane$LANE db=alloc$LANE extra= got
    faulted "$d" "$1" "$RUN" --bundle "$GOOD" --trusted-key "$KEY_PUB" \
        --database "$(pg_url_nogss "$db")" --termination-log "$d/term" up
    local rc=$RC fired=$FIRED errtxt=$ERRTXT errclass=$ERRCLASS
    if [ "$rc" -eq 0 ]; then
        got=$(fingerprint_pg "$db" reset)
        [ "$got" = "$GOOD_PG" ] || extra="exit 0 but the database is not the good one: $got"
    else
        got=$(fingerprint_pg "$db")
        if ! consistent "$got" "$GOOD_PG" "$HALF_PG"; then
            extra="left the database in between: $got"
        fi
        # Always, even from an empty database: what a failed run can leave
        # behind is not only in the tables (a backend still holding the
        # migration lock, say), and the next run must not wait for it.
        faulted "$d" 0 "$RUN" --bundle "$GOOD" --trusted-key "$KEY_PUB" \
            --database "$(pg_url_nogss "$db")" --termination-log "$d/term" up
        got=$(fingerprint_pg "$db" reset)
        if [ "$RC" -ne 0 ] || [ "$got" != "$GOOD_PG" ]; then
            extra="${extra:+$extra; }the next run (exit $RC) did not finish: $got"
        fi
    fi
    RC=$rc FIRED=$fired ERRTXT=$errtxt ERRCLASS=$errclass verdict "$1" 8 "$extra" 4
}

# ---- the sweep -------------------------------------------------------------

# count PROGRAM: a run without failures; prints its allocation count.
count_allocs() {
    LANE=0
    mkdir -p "$T/lane0"
    "case_$1" 0 >"$T/count.line"
    read -r _ rc _ v _ <"$T/count.line"
    if [ "$rc" -ne 0 ] || [ "$v" != ok ]; then
        echo "0"
        return
    fi
    sed -n 's/^allocs \([0-9]*\) .*/\1/p' "$T/lane0/report"
}

sweep() { # PROGRAM DESCRIPTION
    local prog=$1 desc=$2 total lane t0
    # ALLOC_ONLY="PROGRAM..." runs only those sweeps (build bundle_verify
    # run_verify up_sqlite up_pg).
    [ -n "${ALLOC_ONLY:-}" ] && [[ " $ALLOC_ONLY " != *" $prog "* ]] && return
    t0=$(date +%s)
    total=$(count_allocs "$prog")
    if [ -z "$total" ] || [ "$total" -eq 0 ]; then
        not_ok "$desc: a run without failures succeeds" "$(cat "$T/count.line")"
        return
    fi
    for lane in $(seq 0 $((LANES - 1))); do
        (
            LANE=$lane
            mkdir -p "$T/lane$lane"
            for ((n = 1 + lane; n <= total; n += LANES)); do "case_$prog" "$n"; done
        ) >"$T/$prog.lane$lane" &
    done
    wait
    cat "$T/$prog".lane* | sort -n >"$T/$prog.all"
    local tried bad fired0 hist third loader tls gnutls lsan
    tried=$(wc -l <"$T/$prog.all")
    bad=$(awk '$4 == "bad"' "$T/$prog.all" | wc -l)
    fired0=$(awk '$3 == "0"' "$T/$prog.all" | wc -l)
    hist=$(awk '{ h[$2]++ } END { for (c in h) printf "exit %s: %d, ", c, h[c] }' \
        "$T/$prog.all" | sed 's/, $//')
    third=$(awk '$4 == "libarchive"' "$T/$prog.all" | wc -l)
    loader=$(awk '$4 == "dlopen"' "$T/$prog.all" | wc -l)
    tls=$(awk '$4 == "tls"' "$T/$prog.all" | wc -l)
    gnutls=$(awk '$4 == "gnutls"' "$T/$prog.all" | wc -l)
    lsan=$(awk '$4 == "lsan"' "$T/$prog.all" | wc -l)
    echo "# $desc: $total allocations, $tried failed one at a time in $(($(date +%s) - t0)) s; $hist"
    if [ "$third" -gt 0 ]; then
        echo "# $desc: $third ended inside libarchive (its exit(1), a crash in its own unchecked" \
            "allocation, or zlib's out of memory read as a corrupt stream): $(awk '$4 == "libarchive" { printf "%s ", $1 }' "$T/$prog.all")"
    fi
    if [ "$loader" -gt 0 ]; then
        echo "# $desc: $loader failed in dlopen of the driver, exit 8 with the loader's message"
    fi
    if [ "$tls" -gt 0 ]; then
        echo "# $desc: $tls ended by glibc (exit 127) at exit, allocating a library's" \
            "thread-local block: $(awk '$4 == "tls" { printf "%s ", $1 }' "$T/$prog.all")"
    fi
    if [ "$gnutls" -gt 0 ]; then
        echo "# $desc: $gnutls with a leak report of GnuTLS's failed initialisation (when the" \
            "driver is loaded), the database checked as for any other failed run"
    fi
    if [ "$lsan" -gt 0 ]; then
        echo "# $desc: $lsan where LeakSanitizer itself crashed at exit (no leak check):" \
            "$(awk '$4 == "lsan" { printf "%s ", $1 }' "$T/$prog.all")"
    fi
    if [ "$tried" -eq "$total" ] && [ "$bad" -eq 0 ]; then
        ok "$desc: each of its $total allocations failing ends cleanly ($hist)"
    else
        not_ok "$desc: each of its $total allocations failing ends cleanly" \
            "$bad of $tried not clean; first: $(awk '$4 == "bad"' "$T/$prog.all" | head -"$SHOW")"
    fi
    # A failure the program never saw proves nothing: all but the last few
    # (freed at exit, or after the work is done) must have fired.
    if [ "$fired0" -le $((total / 10)) ]; then
        ok "$desc: the failure was injected in $((tried - fired0)) of $tried runs"
    else
        not_ok "$desc: the failure was injected" "$fired0 of $tried runs saw no failure"
    fi
}

# The good states, from runs without failures.
mkdir -p "$T/ref"
"$RUN" --bundle "$GOOD" --trusted-key "$KEY_PUB" --database "sqlite://$T/ref/good.db" \
    -q up >/dev/null 2>&1
GOOD_SQLITE=$(fingerprint_sqlite "$T/ref/good.db")
"$RUN" --bundle "$GOOD" --trusted-key "$KEY_PUB" --database "sqlite://$T/ref/half.db" \
    -q up --to 1 >/dev/null 2>&1
HALF_SQLITE=$(fingerprint_sqlite "$T/ref/half.db")
is "up --to 1 applies only the first migration" \
    "$(printf '%s\n' "$HALF_SQLITE" | grep -c '^history:canary 1 [0-9a-f]* 0$')" 1
is "a good run fills the database" "$(printf '%s\n' "$GOOD_SQLITE" | grep -c '^canary:42$')" 1

sweep build "cmig-bundle build"
sweep bundle_verify "cmig-bundle verify"
sweep run_verify "cmig-run verify"
sweep up_sqlite "cmig-run up (SQLite)"
if [ "$have_pg" -eq 1 ]; then
    for db in $(seq -f alloc%g 0 $((LANES - 1))) allocref; do
        pg_createdb "$db"
        pg_psql "$db" -c "$PG_FINGERPRINT_FN" >/dev/null
    done
    "$RUN" --bundle "$GOOD" --trusted-key "$KEY_PUB" --database "$(pg_url_nogss allocref)" \
        -q up >/dev/null 2>&1
    GOOD_PG=$(fingerprint_pg allocref reset)
    "$RUN" --bundle "$GOOD" --trusted-key "$KEY_PUB" --database "$(pg_url_nogss allocref)" \
        -q up --to 1 >/dev/null 2>&1
    HALF_PG=$(fingerprint_pg allocref)
    is "a good run fills the PostgreSQL database" \
        "$(printf '%s\n' "$GOOD_PG" | grep -c '^canary:42$')" 1
    sweep up_pg "cmig-run up (PostgreSQL)"
else
    not_ok "cmig-run up (PostgreSQL)" "no PostgreSQL server could be started"
fi

reports=$(find "$SAN" -maxdepth 1 -type f | wc -l)
known_of() { find "$SAN/known" -type f -name "*-$1-*" | wc -l; }
if [ "$reports" -eq 0 ]; then
    ok "no sanitizer report in any run but those kept apart: $(known_of libarchive) crashes\
 inside libarchive, $(known_of gnutls) leaks of GnuTLS's failed initialisation,\
 $(known_of lsan) crashes of LeakSanitizer itself"
else
    not_ok "no sanitizer report in any run" \
        "$reports reports: $(head -20 "$(find "$SAN" -maxdepth 1 -type f | head -1)")"
fi
echo "# alloc: $(($(date +%s) - t_start)) s in all"
exit 0
