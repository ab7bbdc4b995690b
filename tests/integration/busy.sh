#!/usr/bin/env bash
# tests/integration/busy.sh - a replica that starts while another one runs a
# long non-transactional migration sees that migration's row dirty. It must
# not take that for a failed migration: it waits for the lock and then finds
# nothing to do (exit 0), rather than refusing the database (exit 6).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib-pg.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib-run.sh"

lr_setup postgres
if ! pg_start; then
    not_ok "start a PostgreSQL server" "see the messages above"
    exit 1
fi
cd "$T" || exit 1
d=$T/busy
mig "$d" 1 base "CREATE TABLE base (x int);"
mig "$d" 2 slow "-- cmig:no-transaction
CREATE TABLE slow_a (x int);
SELECT pg_sleep(3);
CREATE TABLE slow_b (x int);"
bundle_build "$d" app 1.0.0 "$T/bundles/busy.cmig" || exit 1
BUN=$T/bundles/busy.cmig
db_new busy
cmr up >"$T/first.log" 2>&1 &
first=$!
# Wait until the slow migration is under way (its row is dirty).
for _ in $(seq 1 100); do
    [ "$(db_has cmig_history)" = 1 ] &&
        [ "$(db_sql "SELECT count(*) FROM cmig_history WHERE dirty")" = 1 ] && break
    sleep 0.05
done
is "the slow migration is running (dirty row)" \
    "$(db_sql "SELECT version FROM cmig_history WHERE dirty")" 2
x 0 "a second replica started meanwhile exits 0" up
expect_contains "it found nothing to do" "$OUT" "nothing to do"
wait "$first"
is "the first replica exits 0" "$?" 0
is "both statements ran once" "$(db_has slow_a)$(db_has slow_b)" 11
is "history: two clean rows" "$(db_sql "SELECT count(*) FROM cmig_history WHERE NOT dirty")" 2
