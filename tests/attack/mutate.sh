#!/usr/bin/env bash
# mutate.sh - the mutation campaign: more than 10,000 damaged copies of a
# signed bundle, and every damaged copy of its signature, each run through
# the real `cmig-run up` against a private PostgreSQL server (every
# statement logged) and a SQLite file. Every damaged bundle must be
# refused (exit 3) before any database is touched: no connection in the
# server's log, the SQLite file never created, no sanitizer report.
#
# tests/attack/mutate (C) makes the copies and fork/execs cmig-run two at a
# time; see its header for the damage and for how a signature changed only
# outside its signed part is judged. This script builds the bundle from a
# canary migration that inserts a row, starts the server, and checks what
# the driver cannot see: the sanitizer logs, and the database the accepted
# signatures ran against. Meant for the ASan+UBSan build (make attack).
#
#   MUTATE_PG_EVERY=K   PostgreSQL gets every Kth damaged copy, SQLite all
#                       of them (default 1: both get all; a larger K where
#                       the time is short)
#   MUTATE_JOBS=N       runs at a time (default 2)
SUITE_NAME=mutate
# Each run writes a bundle, a signature and two logs: on a disk, waiting
# for that is half the campaign's time, so the work goes to memory when
# the caller has not chosen a place.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    export TMPDIR=/dev/shm
fi
. "$(dirname "$0")/../lib.sh"
. "$CMIG_TOP/tests/integration/lib-pg.sh"
. "$CMIG_TOP/tests/integration/lib-run.sh"

MUTATE=$B/tests/attack/mutate
JOBS=${MUTATE_JOBS:-2}
PG_EVERY=${MUTATE_PG_EVERY:-1}
STRIDE=${MUTATE_STRIDE:-1} # >1: every Kth copy only, a quick look (not the campaign)
if [ ! -x "$MUTATE" ]; then
    not_ok "setup" "$MUTATE is not built (make attack-bins)"
    exit 1
fi
lr_setup postgres
t_start=$(date +%s)
if grep -q __asan_init "$RUN"; then
    ok "cmig-run is built with AddressSanitizer"
else
    not_ok "cmig-run is built with AddressSanitizer" "the campaign's sanitizer figure would mean nothing"
fi
SAN=$T/san
mkdir -p "$SAN" "$T/work"
export ASAN_OPTIONS="detect_leaks=1:exitcode=86:log_path=$SAN/asan"
export UBSAN_OPTIONS="exitcode=86:print_stacktrace=1:log_path=$SAN/ubsan"

M=$T/migrations
mig "$M" 1 canary 'CREATE TABLE canary (x int);
INSERT INTO canary VALUES (42);' 'DROP TABLE canary;'
mig "$M" 2 canary_note "CREATE TABLE canary_note (note text);
INSERT INTO canary_note VALUES ('this row exists only if the bundle ran');" 'DROP TABLE canary_note;'
GOOD=$T/canary.cmig
bundle_build "$M" canary 1.0.0 "$GOOD" || exit 1
expect_exit 0 "the canary bundle verifies" "$RUN" --bundle "$GOOD" --trusted-key "$KEY_PUB" verify

if ! pg_start; then
    not_ok "a private PostgreSQL server starts" "see above"
    exit 1
fi
for db in attack_good attack_refused attack_comment; do pg_createdb "$db"; done

report=$("$MUTATE" --run "$RUN" --bundle "$GOOD" --pubkey "$KEY_PUB" --dir "$T/work" \
    --jobs "$JOBS" --stride "$STRIDE" --pg-every "$PG_EVERY" --pg-good "$(pg_url attack_good)" --pg-refused "$(pg_url attack_refused)" \
    --pg-comment "$(pg_url attack_comment)" --pg-log "$PG_LOG")
rc=$?
printf '%s\n' "$report"
[ "$rc" -eq 2 ] && not_ok "mutation driver" "setup error (exit 2)"

bytes=$(printf '%s\n' "$report" |
    sed -n 's/^ok - mutate: bundle: \([0-9]*\) single-byte changes.*/\1/p')
if [ "$STRIDE" -gt 1 ]; then
    # A sample (CI): every STRIDE-th copy of a campaign of at least 10,000.
    if [ -n "$bytes" ] && [ "$bytes" -ge $((10000 / STRIDE)) ]; then
        ok "$bytes distinct single-byte changes of the bundle: every ${STRIDE}th of the campaign (MUTATE_STRIDE)"
    else
        not_ok "at least $((10000 / STRIDE)) single-byte changes in a 1-in-$STRIDE sample" "driver reported '$bytes'"
    fi
elif [ -n "$bytes" ] && [ "$bytes" -ge 10000 ]; then
    ok "$bytes distinct single-byte changes of the bundle, at least 10,000"
else
    not_ok "at least 10,000 distinct single-byte changes of the bundle" "driver reported '$bytes'"
fi

# The refused runs' database was never created by them; the good one was
# applied once; the accepted signatures applied it exactly once more.
is "attack_refused: no table" "$(pg_psql attack_refused -c \
    "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace")" 0
is "attack_good: the canary row" "$(pg_psql attack_good -c "SELECT string_agg(x::text, ',') FROM canary")" 42
accepted_pg=$(printf '%s\n' "$report" | sed -n 's/.*PostgreSQL connections \([0-9]*\) = runs accepted.*/\1/p')
if [ "${accepted_pg:-0}" -gt 0 ]; then
    is "attack_comment: the canary row once, after $accepted_pg accepted runs" \
        "$(pg_psql attack_comment -c "SELECT string_agg(x::text, ',') FROM canary")" 42
    is "attack_comment: one history row per migration, none dirty" \
        "$(pg_psql attack_comment -c "SELECT count(*) FROM cmig_history WHERE NOT dirty")" 2
else
    not_ok "attack_comment: some signature changed outside its signed part was accepted" \
        "none was: the untrusted comment is not signed and should not matter"
fi

reports=$(find "$SAN" -type f | wc -l)
if [ "$reports" -eq 0 ]; then
    ok "0 sanitizer reports"
else
    not_ok "0 sanitizer reports" "$reports: $(head -30 "$(find "$SAN" -type f | head -1)")"
fi
echo "# mutate: $(($(date +%s) - t_start)) s in all ($(date -u +%Y-%m-%d), $(nproc) CPUs, $JOBS at a time)"
exit 0
