#!/usr/bin/env bash
# tests/integration/crash.sh - a runner that dies or is stopped in the
# middle of a migration, on PostgreSQL and on SQLite:
#   kill -9 during a transactional migration: no trace of it, and the next
#   run applies it;
#   kill -9 during a non-transactional one: the history says dirty, the next
#   up refuses (exit 6) until force;
#   SIGTERM during a long statement: exit 7 promptly, the statement is
#   cancelled, nothing is applied, and the lock is free for the next runner
#   at once; SIGTERM while waiting for the lock: exit 7 promptly; and a
#   runner that cannot get the lock in --lock-timeout exits 5.
#
# The slow statement reads its duration from a table (knob), so that the
# run after a crash is fast: PostgreSQL sleeps with pg_sleep, SQLite counts
# with a recursive query (cancellable by sqlite3_interrupt).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib-pg.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib-run.sh"

lr_setup sqlite
cd "$T" || exit 1

# Runners started in the background are killed at exit, whatever happened.
BG_PIDS=()
reap_bg() {
    local p
    for p in "${BG_PIDS[@]}"; do
        kill -9 "$p" 2>/dev/null
    done
}
_prev_trap=$(trap -p EXIT)
eval "set -- $_prev_trap"
trap "reap_bg; ${3:-}" EXIT

slow_sql() {
    if [ "$DRIVER" = postgres ]; then
        echo 'SELECT pg_sleep((SELECT s FROM knob));'
    else
        echo 'WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c
    WHERE i < (SELECT s FROM knob) * 10000000) SELECT count(*) FROM c;'
    fi
}

# in_slow_statement OUTFILE: waits until the runner whose -v log goes to
# OUTFILE is inside the slow statement.
in_slow_statement() {
    local i
    if [ "$DRIVER" = postgres ]; then
        pg_wait_query "$DB_NAME" '%pg_sleep%' 15
        return
    fi
    for i in $(seq 1 300); do
        grep -q "applying migration 2" "$1" 2>/dev/null && { sleep 0.3; return 0; }
        sleep 0.05
    done
    return 1
}

# start_bg OUTFILE ARGS...: cmr -v ARGS... in the background; $BG is the
# pid of cmig-run itself (not of a subshell), so signals reach it.
start_bg() {
    local out=$1
    shift
    "$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --database "$DB" -v "$@" >"$out" 2>&1 &
    BG=$!
    BG_PIDS+=("$BG")
}

# The orphaned PostgreSQL backend of a killed runner finishes its statement
# before it notices; the checks below wait for it.
settle() {
    [ "$DRIVER" = postgres ] || return 0
    pg_wait_gone "$DB_NAME" 20 || not_ok "$DRIVER: the killed runner's session ended" "still there after 20 s"
}

crash_tx() {
    local d=$T/crash-tx-$DRIVER rc t0
    mig "$d" 1 knob 'CREATE TABLE knob (s float);
INSERT INTO knob VALUES (0);'
    mig "$d" 2 slow "CREATE TABLE k2 (x int);
INSERT INTO k2 VALUES (1);
$(slow_sql)"
    BUN=$T/bundles/crash-tx-$DRIVER.cmig
    bundle_build "$d" crashtx 1.0.0 "$BUN" || return
    db_new crash_tx
    x 0 "$DRIVER kill -9 (transactional): apply migration 1" up --to 1
    # pg_sleep(5); SQLite's count would take minutes (the process dies, so
    # nothing of it survives the kill).
    if [ "$DRIVER" = postgres ]; then db_sql 'UPDATE knob SET s = 5'; else db_sql 'UPDATE knob SET s = 1000'; fi
    start_bg "$T/ctx.out" up
    if ! in_slow_statement "$T/ctx.out"; then
        not_ok "$DRIVER kill -9 (transactional): the runner reached the slow statement" "$(cat "$T/ctx.out")"
        kill -9 "$BG"; { wait "$BG"; } 2>/dev/null
        return
    fi
    kill -9 "$BG"
    { wait "$BG"; } 2>/dev/null
    rc=$?
    cat "$T/ctx.out" >>"$ALL_OUT"
    is "$DRIVER kill -9 (transactional): the runner died" "$rc" 137
    settle
    local state
    state="table k2: $(db_has k2), history rows: $(db_hist_count)"
    case $state in
        "table k2: 0, history rows: 1" | "table k2: 1, history rows: 2")
            ok "$DRIVER kill -9 (transactional): all or nothing ($state)" ;;
        *) not_ok "$DRIVER kill -9 (transactional): all or nothing" "$state" ;;
    esac
    # The runner is gone: its migration must not commit behind its back
    # (a new runner may be starting with a different release).
    is "$DRIVER kill -9 (transactional): rolled back, not committed after the runner died" \
        "$state" "table k2: 0, history rows: 1"
    db_sql 'UPDATE knob SET s = 0'
    t0=$(now_ms)
    x 0 "$DRIVER kill -9 (transactional): the next run applies it" up --lock-timeout 30s
    echo "# $DRIVER: the run after kill -9 took $(elapsed_ms "$t0") ms"
    is "$DRIVER kill -9 (transactional): status" "$(states)" "1:applied 2:applied"
    is "$DRIVER kill -9 (transactional): its effect, once" "$(db_sql 'SELECT count(*) FROM k2')" 1
}

crash_notx() {
    local d=$T/crash-notx-$DRIVER rc t0 ms
    mig "$d" 1 knob 'CREATE TABLE knob (s float);
INSERT INTO knob VALUES (0);'
    mig "$d" 2 slow_notx "-- cmig:no-transaction
CREATE TABLE a (x int);
$(slow_sql)
CREATE TABLE b (x int);"
    mig "$d" 3 after 'CREATE TABLE after3 (x int);'
    BUN=$T/bundles/crash-notx-$DRIVER.cmig
    bundle_build "$d" crashnotx 1.0.0 "$BUN" || return
    db_new crash_notx
    x 0 "$DRIVER kill -9 (no transaction): apply migration 1" up --to 1
    if [ "$DRIVER" = postgres ]; then db_sql 'UPDATE knob SET s = 5'; else db_sql 'UPDATE knob SET s = 1000'; fi
    start_bg "$T/cnt.out" up
    if ! in_slow_statement "$T/cnt.out"; then
        not_ok "$DRIVER kill -9 (no transaction): the runner reached the slow statement" "$(cat "$T/cnt.out")"
        kill -9 "$BG"; { wait "$BG"; } 2>/dev/null
        return
    fi
    kill -9 "$BG"
    { wait "$BG"; } 2>/dev/null
    rc=$?
    cat "$T/cnt.out" >>"$ALL_OUT"
    is "$DRIVER kill -9 (no transaction): the runner died" "$rc" 137
    t0=$(now_ms)
    x 6 "$DRIVER kill -9 (no transaction): the next up refuses the dirty database" up
    ms=$(elapsed_ms "$t0")
    [ "$ms" -lt 3000 ] && ok "$DRIVER: the dirty refusal does not wait for the lock" ||
        not_ok "$DRIVER: the dirty refusal does not wait for the lock" "took $ms ms"
    expect_contains "$DRIVER kill -9 (no transaction): the refusal names it" "$OUT" "2 'slow_notx'"
    is "$DRIVER kill -9 (no transaction): status shows it dirty" "$(states)" \
        "1:applied 2:dirty 3:pending"
    settle
    is "$DRIVER kill -9 (no transaction): the first statement stayed, the last never ran" \
        "$(db_has a)$(db_has b)" 10
    db_sql 'CREATE TABLE b (x int)' # the operator completes the migration by hand
    x 0 "$DRIVER kill -9 (no transaction): force 2" force 2 --lock-timeout 30s
    x 0 "$DRIVER kill -9 (no transaction): up after force" up
    is "$DRIVER kill -9 (no transaction): recovered" "$(states)" "1:applied 2:applied 3:applied"
}

crash_term() {
    local d=$T/crash-term-$DRIVER rc t0 ms n
    mig "$d" 1 knob 'CREATE TABLE knob (s float);
INSERT INTO knob VALUES (0);'
    mig "$d" 2 slow "CREATE TABLE s2 (x int);
$(slow_sql)"
    BUN=$T/bundles/crash-term-$DRIVER.cmig
    bundle_build "$d" crashterm 1.0.0 "$BUN" || return
    db_new crash_term
    x 0 "$DRIVER SIGTERM: apply migration 1" up --to 1
    if [ "$DRIVER" = postgres ]; then db_sql 'UPDATE knob SET s = 60'; else db_sql 'UPDATE knob SET s = 1000'; fi
    : >"$T/term.log"
    start_bg "$T/ct.out" up --termination-log "$T/term.log"
    local holder=$BG
    if ! in_slow_statement "$T/ct.out"; then
        not_ok "$DRIVER SIGTERM: the runner reached the slow statement" "$(cat "$T/ct.out")"
        kill -9 "$holder"; wait "$holder"
        return
    fi

    # While it holds the lock: a runner with a short --lock-timeout gives up
    # with exit 5, and one waiting for the lock stops at SIGTERM.
    t0=$(now_ms)
    x 5 "$DRIVER: a runner that cannot get the lock within --lock-timeout exits 5" up --lock-timeout 1s
    ms=$(elapsed_ms "$t0")
    [ "$ms" -lt 4000 ] && ok "$DRIVER: --lock-timeout 1s is kept ($ms ms)" ||
        not_ok "$DRIVER: --lock-timeout 1s is kept" "took $ms ms"
    start_bg "$T/cw.out" up --lock-timeout 10m
    local waiter=$BG
    sleep 0.5
    t0=$(now_ms)
    kill -TERM "$waiter"
    wait "$waiter"
    rc=$?
    ms=$(elapsed_ms "$t0")
    cat "$T/cw.out" >>"$ALL_OUT"
    is "$DRIVER: SIGTERM while waiting for the lock exits 7" "$rc" 7
    [ "$ms" -lt 2000 ] && ok "$DRIVER: ... promptly ($ms ms)" || not_ok "$DRIVER: ... promptly" "took $ms ms"

    t0=$(now_ms)
    kill -TERM "$holder"
    wait "$holder"
    rc=$?
    ms=$(elapsed_ms "$t0")
    cat "$T/ct.out" >>"$ALL_OUT"
    is "$DRIVER: SIGTERM during a long statement exits 7" "$rc" 7
    [ "$ms" -lt 2000 ] && ok "$DRIVER: ... promptly ($ms ms)" || not_ok "$DRIVER: ... promptly" "took $ms ms"
    expect_contains "$DRIVER SIGTERM: the termination log says interrupted" "$(cat "$T/term.log")" "interrupted"
    if [ "$DRIVER" = postgres ]; then
        for _ in $(seq 1 20); do
            n=$(db_sql "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep%'
                AND state = 'active' AND pid <> pg_backend_pid()")
            [ "$n" = 0 ] && break
            sleep 0.05
        done
        is "$DRIVER SIGTERM: the statement was cancelled on the server" "$n" 0
    fi
    is "$DRIVER SIGTERM: nothing applied (no table s2)" "$(db_has s2)" 0
    is "$DRIVER SIGTERM: no history row for it" "$(db_hist_count)" 1
    db_sql 'UPDATE knob SET s = 0'
    t0=$(now_ms)
    x 0 "$DRIVER SIGTERM: the lock is free for the next runner" up --lock-timeout 2s
    echo "# $DRIVER: the run after SIGTERM took $(elapsed_ms "$t0") ms"
    is "$DRIVER SIGTERM: the next runner applied it" "$(states)" "1:applied 2:applied"
}

# --statement-timeout bounds each statement of a migration.
crash_timeout() {
    local t0 ms
    BUN=$T/bundles/crash-term-$DRIVER.cmig
    db_new crash_timeout
    x 0 "$DRIVER --statement-timeout: apply migration 1" up --to 1
    if [ "$DRIVER" = postgres ]; then db_sql 'UPDATE knob SET s = 60'; else db_sql 'UPDATE knob SET s = 1000'; fi
    t0=$(now_ms)
    x 1 "$DRIVER --statement-timeout 500ms: the slow migration fails" up --statement-timeout 500ms
    ms=$(elapsed_ms "$t0")
    [ "$ms" -lt 3000 ] && ok "$DRIVER --statement-timeout 500ms: kept ($ms ms)" ||
        not_ok "$DRIVER --statement-timeout 500ms: kept" "took $ms ms"
    is "$DRIVER --statement-timeout: rolled back" "$(db_has s2)$(db_hist_count)" 01
}

for DRIVER in sqlite postgres; do
    if [ "$DRIVER" = postgres ]; then
        if [ ! -f "$B/drivers/postgres.so" ] || ! pg_start; then
            not_ok "start a PostgreSQL server (and the driver is built)" "see the messages above"
            break
        fi
    fi
    for s in crash_tx crash_notx crash_term crash_timeout; do
        t0=$(now_ms)
        $s
        echo "# $DRIVER $s: $(elapsed_ms "$t0") ms"
    done
done
