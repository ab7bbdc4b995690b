#!/usr/bin/env bash
# tests/integration/wait.sh - --wait: a runner that starts before its
# PostgreSQL server (an initContainer next to a database pod) keeps
# retrying and succeeds once the server is up; against a server that never
# comes it gives up with exit 4 by the deadline; SIGTERM stops the waiting
# at once.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib-pg.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib-run.sh"

lr_setup postgres
if ! pg_start; then
    not_ok "start a PostgreSQL server" "see the messages above"
    exit 1
fi
cd "$T" || exit 1

mig "$T/m" 1 one 'CREATE TABLE w1 (x int);'
mig "$T/m" 2 two 'CREATE TABLE w2 (x int);'
BUN=$T/bundles/wait.cmig
bundle_build "$T/m" wait 1.0.0 "$BUN" || exit 1
db_new waitdb

# The server stops; a runner starts; the server comes back 2 s later.
pg_halt || not_ok "stop the server"
t0=$(now_ms)
"$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --database "$DB" --wait 30s \
    --log-format json up >"$T/w.out" 2>"$T/w.err" &
pid=$!
sleep 2
pg_resume || not_ok "start the server again"
{ wait "$pid"; } 2>/dev/null
rc=$?
ms=$(elapsed_ms "$t0")
cat "$T/w.out" "$T/w.err" >>"$ALL_OUT"
is "--wait: the runner started before the server succeeds" "$rc" 0
[ "$ms" -ge 1900 ] && [ "$ms" -lt 15000 ] && ok "--wait: it finished once the server was up ($ms ms)" ||
    not_ok "--wait: it finished once the server was up" "$ms ms"
n=$(jq -r 'select(.event == "db.waiting") | .event' "$T/w.err" 2>/dev/null | wc -l)
[ "$n" -ge 1 ] && ok "--wait: it logged db.waiting ($n times)" ||
    not_ok "--wait: it logged db.waiting" "$(cat "$T/w.err")"
is "--wait: it applied the migrations" "$(states)" "1:applied 2:applied"
bad=0
while IFS= read -r line; do
    jq -e . <<<"$line" >/dev/null 2>&1 || { bad=1; not_ok "--wait: a JSON log line parses" "$line"; }
done <"$T/w.err"
[ $bad = 0 ] && ok "--wait: every log line while waiting is JSON"

# A server that is not there.
pg_halt || not_ok "stop the server"
t0=$(now_ms)
x 4 "--wait 2s against a dead port exits 4" up --wait 2s
ms=$(elapsed_ms "$t0")
[ "$ms" -lt 4000 ] && ok "--wait 2s: gave up by the deadline ($ms ms)" ||
    not_ok "--wait 2s: gave up by the deadline" "took $ms ms"
expect_contains "--wait 2s: the error says the database is unreachable" "$OUT" "error"
t0=$(now_ms)
x 4 "no --wait: one attempt, exit 4" up
ms=$(elapsed_ms "$t0")
[ "$ms" -lt 1500 ] && ok "no --wait: gave up at once ($ms ms)" ||
    not_ok "no --wait: gave up at once" "took $ms ms"
CMIG_WAIT=1s x 4 "CMIG_WAIT=1s against a dead port exits 4" up
x 4 "plan against a dead port exits 4" plan --wait 500ms
x 4 "status against a dead port exits 4" status --wait 500ms

"$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --database "$DB" --wait 60s up \
    >"$T/t.out" 2>&1 &
pid=$!
sleep 1
t0=$(now_ms)
kill -TERM "$pid"
{ wait "$pid"; } 2>/dev/null
rc=$?
ms=$(elapsed_ms "$t0")
cat "$T/t.out" >>"$ALL_OUT"
is "SIGTERM while waiting for the database exits 7" "$rc" 7
[ "$ms" -lt 1500 ] && ok "SIGTERM while waiting: promptly ($ms ms)" ||
    not_ok "SIGTERM while waiting: promptly" "took $ms ms"
pg_resume
