#!/usr/bin/env bash
# tests/integration/drv_postgres.sh - the PostgreSQL driver (drivers/postgres.so)
# against a private PostgreSQL server, through tests/tools/drvtool: history
# round trip, schema creation under concurrency, atomic transactional steps,
# dirty non-transactional steps, CREATE INDEX CONCURRENTLY, the advisory
# lock, error positions (with multi-byte text), connection retries, signals,
# and a password that must never show up in any output.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib-pg.sh"

DRV=$B/drivers/postgres.so
X=$TOOLS/drvtool
CANARY=Canary-pw-7f3a9
for f in "$DRV" "$X"; do
    if [ ! -e "$f" ]; then
        not_ok "built: $f" "missing (make B=... $f)"
        exit 1
    fi
done
if ! pg_start; then
    not_ok "the PostgreSQL test server starts"
    exit 1
fi
ok "the PostgreSQL test server starts on port $PG_PORT"

# dt [-w MS] [-s MS] [-l MS] URL OP...: stdout in $SOUT, stderr in $SERR, exit in $RC.
dt() {
    local opts=()
    while [ $# -gt 1 ] && [[ $1 == -? ]]; do
        opts+=("$1" "$2")
        shift 2
    done
    "$X" "${opts[@]}" "$DRV" "$@" >"$T/out" 2>"$T/err"
    RC=$?
    SOUT=$(cat "$T/out")
    SERR=$(cat "$T/err")
}

has_line() {
    local desc=$1 line=$2
    if grep -qxF -- "$line" <<<"$SOUT"; then ok "$desc"; else not_ok "$desc" "no line '$line' in: $SOUT $SERR"; fi
}

has_match() {
    local desc=$1 re=$2
    if grep -qE -- "$re" <<<"$SOUT"; then ok "$desc"; else not_ok "$desc" "no match for '$re' in: $SOUT $SERR"; fi
}

same() {
    local desc=$1 got=$2 want=$3
    if [ "$got" = "$want" ]; then ok "$desc"; else not_ok "$desc" "got '$got', want '$want'"; fi
}

no_canary() {
    local desc=$1
    case "$SOUT$SERR" in
        *"$CANARY"*) not_ok "$desc" "password in output: $SOUT $SERR" ;;
        *) ok "$desc" ;;
    esac
}

ms_now() { date +%s%3N; }

mkdir -p "$T/sql"
S=$T/sql
printf 'CREATE TABLE users (id int PRIMARY KEY, name text);\n' >"$S/init.sql"
printf 'ALTER TABLE users ADD COLUMN email text;\n-- a trailing comment without newline' >"$S/email.sql"
printf 'CREATE TABLE posts (id int);\n' >"$S/posts.sql"
printf 'SELECT pg_sleep(0.25);\nCREATE TABLE slow (id int);\n' >"$S/slow.sql"

# ---------------------------------------------------------------- history
pg_createdb hist
U=$(pg_url hist)
dt "$U" history app
has_line "a fresh database has no schema, which is not an error" \
    "history schema=0 rows=0 record=- legacy=absent"
same "reading history of a fresh database exits 0" "$RC" 0

dt "$U" lock app 1000 ensure up app 10 posts "$S/posts.sql" tx up app 2 init "$S/init.sql" tx \
    up app 3 email "$S/email.sql" tx up app 4 slow "$S/slow.sql" tx record app 1.2.3 \
    history app history other unlock
same "four steps, a record and two history reads succeed" "$RC" 0
has_line "history rows and the bundle record are read back" \
    "history schema=1 rows=4 record=1.2.3 legacy=absent"
sha=$(sha256sum "$S/init.sql" | cut -d' ' -f1)
has_match "a row carries name, sha256, clean state and versions" \
    "^row 2 name=init sha256=$sha dirty=0 exec_ms=[0-9]+ applied_at=set bundle_version=1.0.0 runner_version=cmig-run test$"
same "rows come back ascending by version" \
    "$(grep '^row' <<<"$SOUT" | cut -d' ' -f2 | tr '\n' ' ')" "2 3 4 10 "
has_line "another bundle's history is separate" "history schema=1 rows=0 record=- legacy=absent"
slow_ms=$(sed -n 's/^row 4 .* exec_ms=\([0-9]*\) .*/\1/p' <<<"$SOUT")
if [ "${slow_ms:-0}" -ge 240 ]; then ok "execution_ms is measured for a transactional step ($slow_ms ms)"
else not_ok "execution_ms is measured for a transactional step" "exec_ms=$slow_ms"; fi
same "sha256 is stored as 64 lower-case hex digits" \
    "$(pg_psql hist -c "SELECT sha256 FROM cmig_history WHERE bundle = 'app' AND version = 2")" "$sha"
same "a migration ending in a comment without newline still records its row" \
    "$(pg_psql hist -c "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'email'"):$(pg_psql hist -c "SELECT count(*) FROM cmig_history WHERE version = 3")" "1:1"

printf 'CREATE TABLE posts2 (id int);\n' >"$S/posts2.sql"
dt "$U" up app 2 again "$S/posts2.sql" tx
has_match "a duplicate history row fails the step, in the history statements" \
    "^error up code=migration native=23505 .*\(in the history statements run after the migration\)$"
same "...and the migration of that step is rolled back with it" \
    "$(pg_psql hist -c "SELECT to_regclass('posts2') IS NULL")" t

# ---------------------------------------------------------------- schema
pg_createdb schema
U=$(pg_url schema)
pids=()
for i in 1 2 3 4 5 6 7 8; do
    "$X" "$DRV" "$U" lock "b$i" 5000 ensure history "b$i" unlock >"$T/ens.$i" 2>&1 &
    pids+=($!)
done
fails=0
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || fails=$((fails + 1))
done
same "eight replicas of different bundles create the schema at once without failing" "$fails" 0
if [ "$fails" -ne 0 ]; then cat "$T"/ens.* | sed 's/^/#   /'; fi
same "the history tables exist once" \
    "$(pg_psql schema -c "SELECT count(*) FROM pg_class WHERE relname IN ('cmig_history', 'cmig_bundles') AND relkind = 'r'")" 2
mark=$(pg_log_mark)
dt "$U" ensure ensure
same "ensure_schema on an existing schema succeeds" "$RC" 0
if pg_log_since "$mark" | grep -q "CREATE TABLE"; then
    not_ok "an existing schema is not created again" "$(pg_log_since "$mark" | grep CREATE)"
else
    ok "an existing schema is not created again"
fi
# A role without CREATE on the schema can use tables someone else made.
pg_psql schema -c "CREATE ROLE app_rw LOGIN; GRANT SELECT, INSERT, UPDATE, DELETE ON cmig_history, cmig_bundles TO app_rw; REVOKE CREATE ON SCHEMA public FROM PUBLIC" >/dev/null
printf 'SELECT 1;\n' >"$S/select.sql"
dt "postgres://app_rw@127.0.0.1:$PG_PORT/schema" ensure up app 1 x "$S/select.sql" tx
same "ensure_schema does not need the CREATE privilege when the tables exist" "$RC" 0
[ "$RC" -eq 0 ] || printf '#   %s\n' "$SOUT"

# ---------------------------------------------------------------- transactional failure
pg_createdb txfail
U=$(pg_url txfail)
printf 'CREATE TABLE t_a (id int);\nINSERT INTO t_a VALUES (1);\nINSERT INTO nope VALUES (1);\n' >"$S/txfail.sql"
printf 'CREATE TABLE t_b (id int);\nSELECT 1/0;\n' >"$S/div0.sql"
dt "$U" ensure up app 1 txfail "$S/txfail.sql" tx up app 2 div0 "$S/div0.sql" tx \
    up app 3 init "$S/init.sql" tx history app
has_line "a failing transactional step reports SQLSTATE, statement, line and column" \
    'error up code=migration native=42P01 statement=3 line=3 col=13: relation "nope" does not exist'
has_match "a failure without a position still reports its SQLSTATE" \
    '^error up code=migration native=22012 statement=0 line=0 col=0: division by zero$'
has_line "the session stays usable after a failed step" "ok up 3"
has_line "failed transactional steps leave no history row" \
    "history schema=1 rows=1 record=- legacy=absent"
same "failed transactional steps leave no trace in the schema" \
    "$(pg_psql txfail -c "SELECT count(*) FROM pg_class WHERE relname IN ('t_a', 't_b')")" 0

printf 'CREATE TABLE ok1 (a int);\n\nSELEC 2;\n' >"$S/syntax.sql"
dt "$U" up app 4 syntax "$S/syntax.sql" tx
has_match "a syntax error is placed at its line and column" \
    '^error up code=migration native=42601 statement=2 line=3 col=1: syntax error at or near "SELEC"$'
same "...and nothing before it ran" "$(pg_psql txfail -c "SELECT to_regclass('ok1') IS NULL")" t

printf "SELECT 'abc;\n" >"$S/unterminated.sql"
mark=$(pg_log_mark)
dt "$U" up app 5 unterminated "$S/unterminated.sql" tx
has_match "a migration ending inside a string is refused" \
    "^error up code=migration .*unterminated string"
if pg_log_since "$mark" | grep -q "SELECT 'abc"; then
    not_ok "...before anything is sent"
else
    ok "...before anything is sent"
fi
printf 'CREATE TABLE c (a int);\nCOPY c FROM STDIN;\n' >"$S/copy.sql"
dt "$U" up app 6 copy "$S/copy.sql" tx up app 7 posts "$S/posts.sql" tx
has_match "COPY FROM STDIN is refused" "^error up code=migration native=57014 .*COPY FROM STDIN is not supported"
has_line "...and the session stays usable" "ok up 7"

# ---------------------------------------------------------------- non-transactional
pg_createdb nontx
U=$(pg_url nontx)
printf 'CREATE TABLE t_n (id int);\n\nINSERT INTO t_n\n  VALUES (1), (2);\nINSERT INTO t_n\n  SELECT nope FROM t_n;\nCREATE TABLE never (id int);\n' >"$S/nontx.sql"
dt "$U" ensure up app 1 nontx "$S/nontx.sql" none history app
has_line "a failing non-transactional step reports the statement, line and column" \
    'error up code=migration native=42703 statement=3 line=6 col=10: column "nope" does not exist'
has_match "...and leaves its row dirty" "^row 1 name=nontx .* dirty=1 "
same "statements before the failure stay applied, later ones never ran" \
    "$(pg_psql nontx -c "SELECT (SELECT count(*) FROM t_n), to_regclass('never') IS NULL")" "2|t"
dt "$U" force-clean app 1 history app force-remove app 1 history app force-clean app 1 force-remove app 9
has_match "force-clean marks the row clean" "^row 1 name=nontx .* dirty=0 "
has_line "force-remove deletes it" "history schema=1 rows=0 record=- legacy=absent"
has_match "forcing a version without a row fails" \
    "^error force-clean code=conflict native=- .*migration 1 has no history row"
has_match "...for force-remove too" "^error force-remove code=conflict .*migration 9 has no history row"

pg_psql nontx -c "CREATE TABLE big AS SELECT g AS id FROM generate_series(1, 1000) g" >/dev/null
printf -- '-- cmig:no-transaction\nCREATE INDEX CONCURRENTLY big_id ON big (id);\n' >"$S/cic.sql"
dt "$U" up app 2 cic "$S/cic.sql" tx
has_match "CREATE INDEX CONCURRENTLY fails in a transaction" "^error up code=migration native=25001 "
dt "$U" up app 2 cic "$S/cic.sql" none history app
has_line "CREATE INDEX CONCURRENTLY runs in non-transactional mode" "ok up 2"
has_match "...and its row is clean" "^row 2 name=cic .* dirty=0 "
same "...and the index is valid" \
    "$(pg_psql nontx -c "SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_id'::regclass")" t
printf 'DROP INDEX CONCURRENTLY big_id;\n' >"$S/cic_down.sql"
dt "$U" down app 2 "$S/cic_down.sql" none history app down app 2 "$S/cic_down.sql" none
has_line "a non-transactional down removes the row" "history schema=1 rows=0 record=- legacy=absent"
has_match "a down of a version without a row fails" "^error down code=conflict .*not recorded as applied"
printf 'BEGIN;\nCREATE TABLE open_tx (a int);\n' >"$S/opentx.sql"
dt "$U" up app 3 opentx "$S/opentx.sql" none history app
has_match "a migration leaving a transaction open fails" "^error up code=migration .*left a transaction block open"
same "...and what it did is rolled back" "$(pg_psql nontx -c "SELECT to_regclass('open_tx') IS NULL")" t

# ---------------------------------------------------------------- positions in UTF-8
pg_createdb utf8
U=$(pg_url utf8)
printf -- '-- ünïcödé ✓ comment, multi-byte\nSELECT 1;\nSELECT * FROM missing_täble;\n' >"$S/utf8.sql"
printf "SELECT 'ääää', nope;\n" >"$S/utf8col.sql"
dt "$U" ensure up app 1 u "$S/utf8.sql" tx up app 2 u "$S/utf8.sql" none up app 3 c "$S/utf8col.sql" tx
has_line "after a multi-byte line, the transactional error is on the right line and column" \
    'error up code=migration native=42P01 statement=2 line=3 col=15: relation "missing_täble" does not exist'
has_line "...and the non-transactional one too" \
    'error up code=migration native=42P01 statement=2 line=3 col=15: relation "missing_täble" does not exist'
has_line "columns count characters, not bytes" \
    'error up code=migration native=42703 statement=1 line=1 col=16: column "nope" does not exist'
printf 'DO $$ BEGIN RAISE WARNING %s; END $$;\n' "'careful: ümlaut'" >"$S/warn.sql"
dt "$U" up app 4 warn "$S/warn.sql" tx
expect_contains "server warnings reach the log callback" "$SERR" "event=db.notice: WARNING: careful: ümlaut"

# ---------------------------------------------------------------- lock
pg_createdb lock
U=$(pg_url lock)
"$X" "$DRV" "$U" lock app 1000 echo locked sleep 3000 unlock >"$T/holder" 2>&1 &
holder=$!
for _ in $(seq 1 100); do grep -qs locked "$T/holder" && break; sleep 0.05; done
t0=$(ms_now)
dt "$U" lock app 500
t1=$(ms_now)
has_match "a second runner times out on the lock" \
    "^error lock code=lock native=- .*timed out after 500 ms waiting for the migration lock of bundle 'app' \(held by pid [0-9]+\)$"
if [ $((t1 - t0)) -lt 2500 ]; then ok "...after about the timeout ($((t1 - t0)) ms)"
else not_ok "...after about the timeout" "$((t1 - t0)) ms"; fi
dt "$U" lock other 0 unlock
same "another bundle's lock is independent" "$RC" 0
t0=$(ms_now)
dt "$U" lock app 10000 unlock
t1=$(ms_now)
same "a waiting runner gets the lock once it is released" "$RC" 0
wait "$holder"
same "the holder released the lock cleanly" "$(tail -1 "$T/holder")" "ok unlock"
# The holder keeps the lock far longer than the test needs (a loaded machine
# must not let the waiter win it), and is stopped once the waiter is done.
"$X" "$DRV" "$U" lock app 1000 echo locked sleep 30000 >"$T/holder2" 2>&1 &
holder=$!
for _ in $(seq 1 100); do grep -qs locked "$T/holder2" && break; sleep 0.05; done
"$X" "$DRV" "$U" lock app 20000 >"$T/waiter" 2>&1 &
waiter=$!
for _ in $(seq 1 100); do grep -qs "ok open" "$T/waiter" && break; sleep 0.05; done
sleep 0.3
kill -TERM "$waiter"
wait "$waiter"
has_interrupt=$(grep -c "^error lock code=interrupted" "$T/waiter")
same "a signal ends the lock wait" "$has_interrupt" 1
[ "$has_interrupt" = 1 ] || sed 's/^/#   waiter: /' "$T/waiter"
kill -TERM "$holder"
wait "$holder"
dt "$U" lock app 0
same "closing the connection releases the lock" "$RC" 0

# ---------------------------------------------------------------- single transaction
pg_createdb single
U=$(pg_url single)
dt "$U" ensure begin up app 1 init "$S/init.sql" tx up app 2 posts "$S/posts.sql" tx commit history app
has_line "steps between begin and commit are committed" "history schema=1 rows=2 record=- legacy=absent"
printf 'CREATE TABLE s3 (a int);\n' >"$S/s3.sql"
dt "$U" begin up app 3 s3 "$S/s3.sql" tx up app 4 f "$S/txfail.sql" tx rollback history app
has_line "a failing step inside the transaction rolls back" "history schema=1 rows=2 record=- legacy=absent"
same "...everything of the transaction" "$(pg_psql single -c "SELECT to_regclass('s3') IS NULL")" t
dt "$U" begin up app 3 cic "$S/cic.sql" none rollback
has_match "a non-transactional step cannot join the transaction" "^error up code=usage "
dt "$U" begin up app 4 f "$S/txfail.sql" tx commit
has_match "committing a failed transaction reports it" "^error commit code=db "

# ---------------------------------------------------------------- baseline, down
pg_createdb base
U=$(pg_url base)
dt "$U" ensure baseline app 1 init baseline app 2 users baseline app 2 users history app
has_match "baselining an existing row fails" "^error baseline code=db native=23505 "
has_match "a baseline row is clean with no execution time" "^row 1 name=init .* dirty=0 exec_ms=0 "
printf 'DROP TABLE IF EXISTS users;\n' >"$S/down.sql"
dt "$U" down app 2 "$S/down.sql" tx history app
has_line "a transactional down deletes the row" "history schema=1 rows=1 record=- legacy=absent"

# ---------------------------------------------------------------- golang-migrate
pg_createdb legacy
U=$(pg_url legacy)
pg_psql legacy -c "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL); INSERT INTO schema_migrations VALUES (3, false)" >/dev/null
dt "$U" history app
has_line "golang-migrate's schema_migrations is reported" "history schema=0 rows=0 record=- legacy=3"
dt "$U" ensure legacy 4 up app 4 posts "$S/posts.sql" tx history app
has_line "keep_legacy moves schema_migrations along in the same transaction" \
    "history schema=1 rows=1 record=- legacy=4"
dt "$U" legacy 5 up app 5 f "$S/nontx.sql" none history app
has_line "a failed non-transactional step leaves schema_migrations dirty, as golang-migrate does" \
    "history schema=1 rows=2 record=- legacy=5(dirty)"
dt "$U" legacy -1 down app 4 "$S/down.sql" tx history app
has_line "legacy version -1 empties schema_migrations" "history schema=1 rows=1 record=- legacy=empty"
pg_createdb rails
pg_psql rails -c "CREATE TABLE schema_migrations (version varchar PRIMARY KEY); INSERT INTO schema_migrations VALUES ('20240101')" >/dev/null
dt "$(pg_url rails)" history app
has_line "another tool's schema_migrations is not golang-migrate's" \
    "history schema=0 rows=0 record=- legacy=absent"

# ---------------------------------------------------------------- timeouts, cancel
pg_createdb cancel
U=$(pg_url cancel)
printf 'CREATE TABLE sleepy (a int);\nSELECT pg_sleep(30);\n' >"$S/sleep30.sql"
dt -s 300 "$U" ensure up app 1 sleepy "$S/sleep30.sql" tx
has_match "statement_timeout is applied" "^error up code=migration native=57014 .*statement timeout"
"$X" "$DRV" "$U" ensure up app 1 sleepy "$S/sleep30.sql" tx history app >"$T/cancel" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
    n=$(pg_psql cancel -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()")
    [ "$n" -gt 0 ] && break
    sleep 0.05
done
t0=$(ms_now)
kill -TERM "$pid"
wait "$pid"
t1=$(ms_now)
SOUT=$(cat "$T/cancel")
has_match "a signal cancels the running statement" "^error up code=migration native=57014 .*canceling statement due to user request"
if [ $((t1 - t0)) -lt 3000 ]; then ok "...promptly ($((t1 - t0)) ms)"; else not_ok "...promptly" "$((t1 - t0)) ms"; fi
has_line "...and leaves no trace" "history schema=1 rows=0 record=- legacy=absent"

wait_sleeping() {
    local n
    for _ in $(seq 1 200); do
        n=$(pg_psql cancel -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()")
        [ "$n" -eq "$1" ] && return 0
        sleep 0.05
    done
    return 1
}
"$X" "$DRV" "$U" lock app 1000 up app 1 sleepy "$S/sleep30.sql" tx >"$T/killed" 2>&1 &
pid=$!
wait_sleeping 1
kill -KILL "$pid"
wait "$pid" 2>/dev/null
if wait_sleeping 0; then ok "the backend of a killed runner stops its migration"
else not_ok "the backend of a killed runner stops its migration" "still running after 10 s"; fi
dt "$U" lock app 0 history app
has_line "...releasing the lock" "ok lock"
has_line "...and committing nothing" "history schema=1 rows=0 record=- legacy=absent"

# ---------------------------------------------------------------- connecting
grep -q "application_name=drvtool" "$PG_LOG" && ok "application_name is set from the options" ||
    not_ok "application_name is set from the options"
pg_createdb conn
closed=$(pg_free_port)
dt "host=$PG_SOCKDIR port=$PG_PORT dbname=conn user=postgres" history app
has_line "a libpq key=value string over the unix socket works" "ok open"
dt "postgresql://postgres@127.0.0.1:$PG_PORT/conn?connect_timeout=5&application_name=mine" history app
has_line "a postgresql:// URL with options works" "ok open"
mark=$(pg_log_mark)
dt "postgres://postgres:$CANARY@127.0.0.1:$PG_PORT/conn?bogus=1" history app
has_line "a malformed URL names the unknown parameter" \
    "error open code=usage native=- statement=0 line=0 col=0: invalid PostgreSQL connection string: unknown URI query parameter 'bogus'"
no_canary "...without showing the password"
dt "host=127.0.0.1 port=$PG_PORT password=$CANARY sslmode" history app
has_match "a malformed key=value string is refused" "^error open code=usage .*invalid PostgreSQL connection string"
no_canary "...without showing the password"
dt "host=127.0.0.1 password='$CANARY" history app
no_canary "an unterminated quoted password is not shown"
dt "postgres://postgres:$CANARY@127.0.0.1:$PG_PORT/conn?sslmode=$CANARY" history app
no_canary "an invalid option value next to the password is not shown"
if pg_log_since "$mark" | grep -q "connection received"; then
    not_ok "no connection is made for a malformed connection string" "$(pg_log_since "$mark")"
else
    ok "no connection is made for a malformed connection string"
fi
dt "postgres://postgres:$CANARY@127.0.0.1:$closed/conn" history app
has_match "a refused connection says where" \
    "^error open code=connect native=- .*cannot connect to PostgreSQL at 127.0.0.1:$closed/conn: .*refused"
no_canary "...without the password"
dt "postgres://postgres:$CANARY@127.0.0.1:$PG_PORT/$CANARY" history app
has_match "a server error quoting the password is scrubbed" \
    '^error open code=connect .*database "\*\*\*" does not exist'
no_canary "...completely"
pg_psql conn -c "CREATE ROLE pwuser LOGIN PASSWORD 'right-password'" >/dev/null
sed -i "1i host all pwuser 127.0.0.1/32 scram-sha-256" "$PG_DATA/pg_hba.conf"
pg_psql conn -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.2
dt "postgres://pwuser:$CANARY@127.0.0.1:$PG_PORT/conn" history app
has_match "a wrong password fails authentication" '^error open code=connect .*password authentication failed for user "pwuser"'
no_canary "...without echoing it"
dt "postgres://pwuser:right-password@127.0.0.1:$PG_PORT/conn" history app
has_line "the right password from the URL is used" "ok open"
dt -w 1200 "postgres://postgres:$CANARY@127.0.0.1:$closed/conn" history app
n_wait=$(grep -c "event=db.waiting" <<<"$SERR")
if [ "$n_wait" -ge 3 ]; then ok "retries are logged as db.waiting ($n_wait)"; else not_ok "retries are logged as db.waiting" "$SERR"; fi
has_match "giving up says how long it tried" "^error open code=connect .*gave up after [0-9]+ attempts"
no_canary "retry logs do not show the password"

t0=$(ms_now)
"$X" -w 30000 "$DRV" "postgres://postgres@127.0.0.1:$closed/conn" history app >"$T/intr" 2>&1 &
pid=$!
sleep 0.5
kill -TERM "$pid"
wait "$pid"
t1=$(ms_now)
SOUT=$(cat "$T/intr")
has_match "a signal ends the connection wait" "^error open code=interrupted "
if [ $((t1 - t0)) -lt 2000 ]; then ok "...promptly ($((t1 - t0)) ms)"; else not_ok "...promptly" "$((t1 - t0)) ms"; fi

pg_halt
t0=$(ms_now)
"$X" -w 20000 "$DRV" "$(pg_url conn)" history app >"$T/wait" 2>"$T/wait.err" &
pid=$!
sleep 2
pg_resume
wait "$pid"
rc=$?
t1=$(ms_now)
same "wait_ms keeps retrying until the server comes up" "$rc" 0
SOUT=$(cat "$T/wait")
has_line "...and then works" "history schema=0 rows=0 record=- legacy=absent"
grep -q "event=db.waiting" "$T/wait.err" && ok "...logging each retry" || not_ok "...logging each retry" "$(cat "$T/wait.err")"
if [ $((t1 - t0)) -lt 8000 ]; then ok "...connecting soon after the server is up ($((t1 - t0)) ms)"
else not_ok "...connecting soon after the server is up" "$((t1 - t0)) ms"; fi
