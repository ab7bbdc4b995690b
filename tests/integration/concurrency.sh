#!/usr/bin/env bash
# tests/integration/concurrency.sh - exactly once: 16 cmig-run processes
# started at the same instant against one database, round after round,
# each round with a new bundle release that appends migrations inserting a
# row each. After every round all 16 exit 0, every migration is recorded
# once, its row was inserted once, and exactly one runner logged applying
# it. Done for one SQLite file and one PostgreSQL database.
#
# CONC_ROUNDS_SQLITE and CONC_ROUNDS_PG set the number of rounds (20 and
# 20 by default); CONC_RUNNERS the processes per round (16).
ROUNDS_SQLITE=${CONC_ROUNDS_SQLITE:-20}
ROUNDS_PG=${CONC_ROUNDS_PG:-20}
RUNNERS=${CONC_RUNNERS:-16}
PER_ROUND=3
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib-pg.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib-run.sh"

lr_setup sqlite
cd "$T" || exit 1

# round N: starts $RUNNERS runners of bundle $BUN together, waits for all,
# and checks the database. Prints nothing but ok/not ok.
round() {
    local r=$1 i pids=() rcs="" want_hist want_rows got applied bad=""
    rm -rf "$T/out" && mkdir -p "$T/out"
    # The gate: every runner waits for a shared lock on a file this shell
    # holds exclusively, then all start when it is released.
    exec 8>"$T/gate"
    flock -x 8
    for i in $(seq 1 "$RUNNERS"); do
        (flock -s 9 && exec "$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --database "$DB" \
            --lock-timeout 60s up) 9<"$T/gate" 8>&- >"$T/out/$i" 2>&1 &
        pids+=($!)
    done
    sleep 0.1
    flock -u 8
    exec 8>&-
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}"
        rcs="$rcs$?"
    done
    cat "$T/out"/* >>"$ALL_OUT"
    want_hist=$((1 + PER_ROUND * r))
    want_rows=$((PER_ROUND * r))
    [ "$rcs" = "$(printf '0%.0s' $(seq 1 "$RUNNERS"))" ] ||
        bad="$bad exit statuses $rcs ($(grep -h 'error' "$T/out"/* | head -3));"
    got=$(db_hist_count)
    [ "$got" = "$want_hist" ] || bad="$bad history has $got rows, expected $want_hist;"
    got=$(db_sql "SELECT count(*) || ' ' || count(DISTINCT v) FROM side")
    [ "$got" = "$want_rows $want_rows" ] ||
        bad="$bad side rows (all, distinct) $got, expected $want_rows;"
    # Every migration of this round was applied by exactly one runner.
    applied=$(cat "$T/out"/* | grep -c "applied migration")
    if [ "$r" = 1 ]; then got=$((PER_ROUND + 1)); else got=$PER_ROUND; fi
    [ "$applied" = "$got" ] || bad="$bad $applied 'applied migration' lines, expected $got;"
    if [ -z "$bad" ]; then
        ok "$DRIVER round $r: $RUNNERS runners exit 0, each migration applied exactly once"
    else
        not_ok "$DRIVER round $r: $RUNNERS runners exit 0, each migration applied exactly once" "$bad"
    fi
}

conc() {
    local rounds=$1 r k v dir=$T/conc-$DRIVER t0
    db_new conc_$DRIVER
    mig "$dir" 1 side 'CREATE TABLE side (v int);'
    t0=$(now_ms)
    for r in $(seq 1 "$rounds"); do
        for k in $(seq 1 $PER_ROUND); do
            v=$((1 + PER_ROUND * (r - 1) + k))
            mig "$dir" "$v" "insert_$v" "INSERT INTO side VALUES ($v);"
        done
        BUN=$T/bundles/conc-$DRIVER-$r.cmig
        bundle_build "$dir" conc "1.$r.0" "$BUN" || return
        round "$r"
    done
    is "$DRIVER: status after $rounds rounds: nothing pending" \
        "$(cmr status --json 2>/dev/null | jq -r '[.migrations[] | select(.state != "applied")] | length')" 0
    echo "# $DRIVER: $rounds rounds of $RUNNERS runners in $(elapsed_ms "$t0") ms"
}

DRIVER=sqlite
conc "$ROUNDS_SQLITE"

if [ -f "$B/drivers/postgres.so" ] && pg_start; then
    DRIVER=postgres
    conc "$ROUNDS_PG"
else
    not_ok "start a PostgreSQL server (and the driver is built)" "see the messages above"
fi
