#!/usr/bin/env bash
# tests/integration/faults_pg.sh - the PostgreSQL server fails under a
# running cmig-run, with a real server:
#   the server crashes (immediate shutdown: every backend killed, no
#   checkpoint) in the middle of a transactional and of a non-transactional
#   migration;
#   the runner's connection is terminated by another session
#   (pg_terminate_backend) in the middle of both kinds, and while the
#   runner waits for the migration lock;
#   the server is restarted while a runner waits for the lock that another
#   runner holds in a long migration;
#   the server is down and comes back (or does not) while a runner waits
#   for it with --wait;
#   the runners' backends stop answering while the history is read.
# Each time the runner must end with the documented exit code (4 when the
# connection is lost: docs/EXIT-CODES.md) and one error line saying so,
# nothing may be half-applied (a transactional migration: neither its
# effect nor its history row; a non-transactional one: its row dirty), and
# once the server is back a later run must complete (after force where a
# migration was left dirty).
#
# The server runs with synchronous_commit on: with it off (the other
# suites' setting, for speed) a crash loses the last commits, and what is
# asserted here is what a committed migration looks like after a crash.
PG_SYNCHRONOUS_COMMIT=on
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib-pg.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib-run.sh"

lr_setup postgres
if ! pg_start; then
    not_ok "start a PostgreSQL server" "see the messages above"
    exit 1
fi
cd "$T" || exit 1
is "the server commits synchronously" "$(pg_psql postgres -c 'SHOW synchronous_commit')" on

# Runners and sessions started in the background are killed at exit,
# whatever happened.
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

# The slow statement sleeps as long as the knob says, so that the run after
# the fault is quick.
SLOW='SELECT pg_sleep((SELECT s FROM knob));'

# bundles: one with a slow transactional migration 2, one with a slow
# non-transactional migration 2; both have a migration 3 after it.
mig "$T/tx" 1 knob 'CREATE TABLE knob (s float);
INSERT INTO knob VALUES (0);'
mig "$T/tx" 2 slow "CREATE TABLE k2 (x int);
INSERT INTO k2 VALUES (1);
$SLOW"
mig "$T/tx" 3 after 'CREATE TABLE k3 (x int);'
BUN_TX=$T/bundles/tx.cmig
bundle_build "$T/tx" app 1.0.0 "$BUN_TX" || exit 1
mig "$T/notx" 1 knob 'CREATE TABLE knob (s float);
INSERT INTO knob VALUES (0);'
mig "$T/notx" 2 slow_notx "-- cmig:no-transaction
CREATE TABLE a (x int);
$SLOW
CREATE TABLE b (x int);"
mig "$T/notx" 3 after 'CREATE TABLE k3 (x int);'
BUN_NOTX=$T/bundles/notx.cmig
bundle_build "$T/notx" app 1.0.0 "$BUN_NOTX" || exit 1

# start_bg OUTFILE ARGS...: cmig-run -v ARGS... in the background; $BG is
# cmig-run's own pid. Its termination log is OUTFILE.term.
start_bg() {
    local out=$1
    shift
    : >"$out.term"
    "$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --database "$DB" -v \
        --termination-log "$out.term" "$@" >"$out" 2>&1 &
    BG=$!
    BG_PIDS+=("$BG")
}

# finish PID OUTFILE: waits for the runner; its status in $RC, its output
# in $OUT.
finish() {
    { wait "$1"; } 2>/dev/null
    RC=$?
    OUT=$(cat "$2")
    printf '%s\n' "$OUT" >>"$ALL_OUT"
}

# stuck_in_migration DESC OUTFILE: the runner reached the slow statement;
# else reports it and kills the runner.
stuck_in_migration() {
    if pg_wait_query "$DB_NAME" '%pg_sleep%' 15; then
        return 0
    fi
    not_ok "$1: the runner reached the slow statement" "$(cat "$2")"
    kill -9 "$BG" 2>/dev/null
    { wait "$BG"; } 2>/dev/null
    return 1
}

# terminate_runner: pg_terminate_backend of every cmig-run session of the
# current database, from another session; prints how many.
terminate_runner() {
    pg_psql "$DB_NAME" -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
        WHERE application_name = 'cmig-run' AND datname = current_database()"
}

# lost_connection DESC: the checks every lost connection shares: exit 4,
# one error line that says the connection was lost, the same in the
# termination log.
lost_connection() {
    is "$1: exit 4 (connection lost)" "$RC" 4
    is "$1: one error line" "$(grep -c 'error' <<<"$OUT")" 1
    expect_contains "$1: the error says the connection was lost" "$OUT" "connection to PostgreSQL was lost"
    expect_contains "$1: the termination log says so" "$(cat "$2.term")" "cmig-run: connect: "
}

# Prints "k2=<0|1> rows=<history rows> dirty=<dirty versions>".
tx_state() {
    local rows dirty
    rows=$(db_sql "SELECT string_agg(version::text, ',' ORDER BY version) FROM cmig_history")
    dirty=$(db_sql "SELECT coalesce(string_agg(version::text, ',' ORDER BY version), '') FROM cmig_history WHERE dirty")
    echo "k2=$(db_has k2) rows=$rows dirty=$dirty"
}

# ---------------------------------------------------------------------------
# A fault while a transactional migration runs: FAULT is crash or
# terminate.
fault_tx() {
    local fault=$1 desc t0 ms
    desc="$fault during a transactional migration"
    BUN=$BUN_TX
    db_new "tx_$fault"
    x 0 "$desc: apply migration 1" up --to 1
    db_sql 'UPDATE knob SET s = 60'
    start_bg "$T/$fault-tx.out" up
    stuck_in_migration "$desc" "$T/$fault-tx.out" || return
    t0=$(now_ms)
    case $fault in
        crash) pg_crash || not_ok "$desc: crash the server" ;;
        terminate) is "$desc: one session terminated" "$(terminate_runner)" 1 ;;
    esac
    finish "$BG" "$T/$fault-tx.out"
    ms=$(elapsed_ms "$t0")
    lost_connection "$desc" "$T/$fault-tx.out"
    expect_contains "$desc: the error names the migration" "$OUT" "migration 2 'slow'"
    expect_contains "$desc: the error says what may have happened to it" "$OUT" \
        "migration 2 'slow' (2_slow.up.sql): the connection to PostgreSQL was lost during the step (its transaction committed whole or not at all; the next run sees which)"
    # The sleep had a minute to go: the runner noticed the loss, it did not
    # sit out the statement.
    [ "$ms" -lt 20000 ] && ok "$desc: the runner stopped at once ($ms ms)" ||
        not_ok "$desc: the runner stopped at once" "$ms ms"
    if [ "$fault" = crash ]; then
        t0=$(now_ms)
        pg_resume || { not_ok "$desc: the server starts again"; return; }
        echo "# crash recovery and restart took $(elapsed_ms "$t0") ms"
    fi
    is "$desc: no effect and no history row (only migration 1, clean)" "$(tx_state)" \
        "k2=0 rows=1 dirty="
    db_sql 'UPDATE knob SET s = 0'
    x 0 "$desc: a later run completes" up
    is "$desc: everything applied" "$(states)" "1:applied 2:applied 3:applied"
    is "$desc: migration 2's effect, once" "$(db_sql 'SELECT count(*) FROM k2')" 1
}

# The same while a non-transactional migration runs: its row stays dirty,
# the next up refuses the database, force and up recover.
fault_notx() {
    local fault=$1 desc
    desc="$fault during a non-transactional migration"
    BUN=$BUN_NOTX
    db_new "notx_$fault"
    x 0 "$desc: apply migration 1" up --to 1
    db_sql 'UPDATE knob SET s = 60'
    start_bg "$T/$fault-notx.out" up
    stuck_in_migration "$desc" "$T/$fault-notx.out" || return
    case $fault in
        crash) pg_crash || not_ok "$desc: crash the server" ;;
        terminate) is "$desc: one session terminated" "$(terminate_runner)" 1 ;;
    esac
    finish "$BG" "$T/$fault-notx.out"
    lost_connection "$desc" "$T/$fault-notx.out"
    expect_contains "$desc: the error says the migration is left dirty" "$OUT" \
        "migration 2 'slow_notx' (2_slow_notx.up.sql:3:1, statement 2): the connection to PostgreSQL was lost during the step (the migration is left dirty)"
    if [ "$fault" = crash ]; then
        pg_resume || { not_ok "$desc: the server starts again"; return; }
    fi
    is "$desc: the row is dirty, the first statement stayed, the last never ran" \
        "$(db_sql "SELECT string_agg(version || ':' || dirty, ' ' ORDER BY version) FROM cmig_history") a=$(db_has a) b=$(db_has b)" \
        "1:false 2:true a=1 b=0"
    db_sql 'UPDATE knob SET s = 0'
    x 6 "$desc: a later up refuses the dirty database" up
    expect_contains "$desc: the refusal names the migration" "$OUT" "2 'slow_notx'"
    # The operator undoes the first statement and says the migration did
    # not run; up runs it again, whole.
    db_sql 'DROP TABLE a'
    x 0 "$desc: force 1" force 1
    x 0 "$desc: up after force completes" up
    is "$desc: everything applied" "$(states)" "1:applied 2:applied 3:applied"
    is "$desc: both statements' tables exist" "$(db_has a)$(db_has b)" 11
}

# ---------------------------------------------------------------------------
# hold_lock: another session (not cmig-run) takes bundle app's migration
# lock and keeps it; release_lock ends that session.
hold_lock() {
    PGAPPNAME=holder pg_psql "$DB_NAME" \
        -c "SELECT pg_advisory_lock(hashtextextended('cmig:app', 0))" \
        -c 'SELECT pg_sleep(600)' >/dev/null 2>&1 &
    HOLDER=$!
    BG_PIDS+=("$HOLDER")
    local n
    for _ in $(seq 1 200); do
        n=$(db_sql "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
            WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = 'holder'")
        [ "$n" = 1 ] && return 0
        sleep 0.05
    done
    not_ok "another session holds the migration lock"
    return 1
}

release_lock() {
    db_sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
        WHERE application_name = 'holder'" >/dev/null
    { wait "$HOLDER"; } 2>/dev/null
}

# waiting_for_lock OUTFILE: until the runner polls for the lock.
waiting_for_lock() {
    local n
    for _ in $(seq 1 300); do
        n=$(db_sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'cmig-run'
            AND query LIKE '%pg_try_advisory_lock%'")
        [ "$n" -ge 1 ] && return 0
        sleep 0.05
    done
    not_ok "the runner waits for the lock" "$(cat "$1")"
    return 1
}

fault_lock_terminate() {
    local desc="terminate while waiting for the lock" t0 ms
    BUN=$BUN_TX
    db_new lock_terminate
    hold_lock || return
    start_bg "$T/lockterm.out" up --lock-timeout 5m
    waiting_for_lock "$T/lockterm.out" || { release_lock; return; }
    t0=$(now_ms)
    is "$desc: one session terminated" "$(terminate_runner)" 1
    finish "$BG" "$T/lockterm.out"
    ms=$(elapsed_ms "$t0")
    lost_connection "$desc" "$T/lockterm.out"
    expect_contains "$desc: the error says what it was doing" "$OUT" \
        "cannot take the migration lock of bundle 'app'"
    [ "$ms" -lt 10000 ] && ok "$desc: it did not wait out --lock-timeout ($ms ms)" ||
        not_ok "$desc: it did not wait out --lock-timeout" "$ms ms"
    # Nothing happens before the lock: not even the history tables.
    is "$desc: the database is untouched" "$(db_has cmig_history)$(db_has knob)" 00
    release_lock
    x 0 "$desc: a later run completes" up
    is "$desc: everything applied" "$(states)" "1:applied 2:applied 3:applied"
}

# Two runners: one in a long transactional migration holding the lock, one
# waiting for it; the server restarts (fast shutdown: it terminates both
# sessions, then starts again).
fault_lock_restart() {
    local desc="server restart while one runner migrates and one waits for the lock"
    local holder waiter hrc hout t0
    BUN=$BUN_TX
    db_new lock_restart
    x 0 "$desc: apply migration 1" up --to 1
    db_sql 'UPDATE knob SET s = 60'
    start_bg "$T/rs-holder.out" up
    holder=$BG
    stuck_in_migration "$desc" "$T/rs-holder.out" || return
    start_bg "$T/rs-waiter.out" up --lock-timeout 5m
    waiter=$BG
    waiting_for_lock "$T/rs-waiter.out" || return
    t0=$(now_ms)
    pg_restart || not_ok "$desc: restart the server"
    echo "# fast restart took $(elapsed_ms "$t0") ms"
    finish "$holder" "$T/rs-holder.out"
    hrc=$RC hout=$OUT
    finish "$waiter" "$T/rs-waiter.out"
    lost_connection "$desc: the waiter" "$T/rs-waiter.out"
    expect_contains "$desc: the waiter says it was waiting for the lock" "$OUT" \
        "cannot take the migration lock"
    RC=$hrc OUT=$hout
    lost_connection "$desc: the holder" "$T/rs-holder.out"
    is "$desc: the holder's migration left nothing" "$(tx_state)" "k2=0 rows=1 dirty="
    db_sql 'UPDATE knob SET s = 0'
    x 0 "$desc: a later run completes" up
    is "$desc: everything applied" "$(states)" "1:applied 2:applied 3:applied"
}

# ---------------------------------------------------------------------------
# --wait across a restart: the server goes down, a runner starts and
# retries; the server comes back in time (exit 0) or not (exit 4).
fault_wait_restart() {
    local desc="server down and back while a runner waits for it (--wait)" t0 ms n
    BUN=$BUN_TX
    db_new wait_restart
    pg_halt || not_ok "$desc: stop the server"
    : >"$T/wr.term"
    "$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --database "$DB" --wait 60s \
        --log-format json --termination-log "$T/wr.term" up >"$T/wr.out" 2>&1 &
    BG=$!
    BG_PIDS+=("$BG")
    # Back once the runner has retried a few times.
    for _ in $(seq 1 200); do
        n=$(grep -c '"db.waiting"' "$T/wr.out")
        [ "$n" -ge 3 ] && break
        sleep 0.05
    done
    is "$desc: the runner retried while the server was down" "$([ "$n" -ge 3 ] && echo yes)" yes
    t0=$(now_ms)
    pg_resume || not_ok "$desc: start the server again"
    finish "$BG" "$T/wr.out"
    ms=$(elapsed_ms "$t0")
    is "$desc: exit 0 once the server is back" "$RC" 0
    [ "$ms" -lt 15000 ] && ok "$desc: it connected soon after ($ms ms)" ||
        not_ok "$desc: it connected soon after" "$ms ms"
    is "$desc: everything applied" "$(states)" "1:applied 2:applied 3:applied"
    is "$desc: no error logged" "$(jq -r 'select(.level == "error") | .msg' <"$T/wr.out" 2>&1)" ""

    desc="server down for longer than --wait"
    db_new wait_long
    pg_halt || not_ok "$desc: stop the server"
    t0=$(now_ms)
    x 4 "$desc: exit 4" up --wait 3s
    ms=$(elapsed_ms "$t0")
    expect_contains "$desc: the error says it gave up, and after how long" "$OUT" "gave up after"
    [ "$ms" -ge 2900 ] && [ "$ms" -lt 15000 ] && ok "$desc: it kept trying until --wait ran out ($ms ms)" ||
        not_ok "$desc: it kept trying until --wait ran out" "$ms ms"
    pg_resume || not_ok "$desc: start the server again"
    is "$desc: the database is untouched" "$(db_has cmig_history)" 0
    x 0 "$desc: a later run completes" up
    is "$desc: everything applied" "$(states)" "1:applied 2:applied 3:applied"
}

# reap_after SECONDS PID...: kills (-9) those of the processes still there
# after SECONDS.
reap_after() {
    local s=$1
    shift
    sleep "$s"
    kill -9 "$@" 2>/dev/null
}

# ---------------------------------------------------------------------------
# The server stops answering while the history is read: the runners'
# backends wait for a lock on cmig_history (another session holds it) and
# are then stopped (SIGSTOP), so that not even the server's statement
# timeout can end their statements. One runner is sent SIGTERM and must
# stop at once (exit 7); the other, with --statement-timeout 2s, must give
# up 10 s after that timeout (exit 4), not wait forever.
fault_history_frozen() {
    local desc="backend frozen while the history is read" term wait_bg pids t0 ms p
    BUN=$BUN_TX
    db_new history_frozen
    x 0 "$desc: apply migration 1" up --to 1
    PGAPPNAME=locker pg_psql "$DB_NAME" -c 'BEGIN' \
        -c 'LOCK TABLE cmig_history IN ACCESS EXCLUSIVE MODE' -c 'SELECT pg_sleep(600)' \
        >/dev/null 2>&1 &
    local locker=$!
    BG_PIDS+=("$locker")
    pg_wait_query "$DB_NAME" '%pg_sleep(600)%' 15 || not_ok "$desc: the lock is held"
    # --to: straight to the history read (the no-op check would wait first).
    start_bg "$T/frozen-term.out" up --to 3
    term=$BG
    start_bg "$T/frozen-wait.out" up --to 3 --statement-timeout 2s
    wait_bg=$BG
    for _ in $(seq 1 300); do
        pids=$(db_sql "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity
            WHERE application_name = 'cmig-run' AND wait_event_type = 'Lock'")
        [ "$(wc -w <<<"$pids")" -eq 2 ] && break
        sleep 0.05
    done
    is "$desc: both runners wait in the history read" "$(wc -w <<<"$pids")" 2
    for p in $pids; do kill -STOP "$p"; done
    sleep 0.5
    t0=$(now_ms)
    kill -TERM "$term"
    # A runner that does not stop would hang the suite: killed after 20 s.
    reap_after 20 "$term" "$wait_bg" &
    local reaper=$!
    finish "$term" "$T/frozen-term.out"
    ms=$(elapsed_ms "$t0")
    is "$desc, SIGTERM: exit 7" "$RC" 7
    expect_contains "$desc, SIGTERM: the error says what it was doing" "$OUT" \
        "cannot read the migration history: interrupted"
    [ "$ms" -lt 2000 ] && ok "$desc, SIGTERM: it stopped at once ($ms ms)" ||
        not_ok "$desc, SIGTERM: it stopped at once" "$ms ms"
    finish "$wait_bg" "$T/frozen-wait.out"
    ms=$(elapsed_ms "$t0")
    is "$desc, statement timeout: exit 4" "$RC" 4
    expect_contains "$desc, statement timeout: the error says how long it waited" "$OUT" \
        "cannot read the migration history: no answer from PostgreSQL in 12000 ms"
    [ "$ms" -lt 20000 ] && ok "$desc, statement timeout: it gave up in time ($ms ms)" ||
        not_ok "$desc, statement timeout: it gave up in time" "$ms ms"
    kill "$reaper" 2>/dev/null
    { wait "$reaper"; } 2>/dev/null
    for p in $pids; do kill -CONT "$p"; done
    db_sql "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
        WHERE application_name = 'locker'" >/dev/null
    { wait "$locker"; } 2>/dev/null
    pg_wait_gone "$DB_NAME" 15 || not_ok "$desc: the runners' sessions end"
    x 0 "$desc: a later run completes" up
    is "$desc: everything applied" "$(states)" "1:applied 2:applied 3:applied"
}

for s in "fault_tx crash" "fault_notx crash" "fault_tx terminate" "fault_notx terminate" \
    fault_lock_terminate fault_lock_restart fault_wait_restart fault_history_frozen; do
    t0=$(now_ms)
    $s
    echo "# $s: $(elapsed_ms "$t0") ms"
done
