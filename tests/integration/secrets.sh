#!/usr/bin/env bash
# tests/integration/secrets.sh - the database password never appears in
# anything cmig-run prints: not for a bad host, a bad password, a
# malformed URL (libpq's own parse errors quote the URL), the key=value
# form, a password in a query parameter, JSON logs, the environment
# variables, or the termination log. Every byte of output of every run is
# searched for a canary.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib-pg.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib-run.sh"

lr_setup postgres
if ! pg_start; then
    not_ok "start a PostgreSQL server" "see the messages above"
    exit 1
fi
cd "$T" || exit 1

CANARY="Cx$$q7CANARYz"
GOOD_PW="good-pw-$$"

# A role that must authenticate with a password (the test server trusts
# everyone else).
pg_psql postgres -c "CREATE ROLE canary LOGIN PASSWORD '$GOOD_PW'" >/dev/null
hba=$PG_DATA/pg_hba.conf
{
    echo "host all canary 127.0.0.1/32 scram-sha-256"
    echo "host all canary ::1/128 scram-sha-256"
    cat "$hba"
} >"$T/hba.new" && cat "$T/hba.new" >"$hba" # keeps the file's owner
pg_psql postgres -c "SELECT pg_reload_conf()" >/dev/null

mig "$T/m" 1 one 'CREATE TABLE s1 (x int);'
mig "$T/m" 2 bad 'SELECT nosuch FROM nowhere;'
BUN=$T/bundles/s.cmig
bundle_build "$T/m" sec 1.0.0 "$BUN" || exit 1
db_new secdb
pg_psql secdb -c "GRANT ALL ON SCHEMA public TO canary" >/dev/null

# sx DESC CODES URL ARGS...: cmig-run with the URL; the exit status must be
# one of CODES (e.g. "4" or "2|4|8"); the canary must not be in its output.
sx() {
    local desc=$1 codes=$2 url=$3
    shift 3
    OUT=$("$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --database "$url" "$@" 2>&1)
    RC=$?
    printf '%s\n' "$OUT" >>"$ALL_OUT"
    case "|$codes|" in
        *"|$RC|"*) ok "$desc: exit $RC" ;;
        *) not_ok "$desc: exit $codes" "exit $RC: $OUT" ;;
    esac
    expect_not_contains "$desc: no password in the output" "$OUT" "$CANARY"
}

P=$PG_PORT
sx "bad host (nothing listening)" 4 "postgres://canary:$CANARY@127.0.0.1:1/secdb" up
sx "bad host name" 4 "postgres://canary:$CANARY@no-such-host.invalid:5432/secdb" up
sx "bad password" 4 "postgres://canary:$CANARY@127.0.0.1:$P/secdb" up
expect_contains "bad password: the error says authentication failed" "$OUT" "authentication"
sx "bad password, with --wait" 4 "postgres://canary:$CANARY@127.0.0.1:$P/secdb" up --wait 1s
sx "bad password, postgresql:// scheme" 4 "postgresql://canary:$CANARY@127.0.0.1:$P/secdb" status
sx "bad password in a query parameter" 4 \
    "postgres://canary@127.0.0.1:$P/secdb?password=$CANARY&sslmode=disable" up
sx "malformed URL (unclosed IPv6 bracket)" "2|4|8" "postgres://u:$CANARY@[bad" up
sx "malformed URL (bad percent-encoding)" "2|4|8" "postgres://u:$CANARY%zz@127.0.0.1:$P/secdb" up
sx "malformed URL (bad port)" "2|4|8" "postgres://u:$CANARY@127.0.0.1:notaport/secdb" up
sx "malformed URL (unknown parameter)" "2|4|8" \
    "postgres://u:$CANARY@127.0.0.1:$P/secdb?bogus_option=1" up
sx "key=value form, bad password" 4 \
    "host=127.0.0.1 port=$P user=canary password=$CANARY dbname=secdb" up
sx "key=value form, quoted password" 4 \
    "host=127.0.0.1 port=$P user=canary password='$CANARY with space' dbname=secdb" up
sx "key=value form, malformed" "2|4|8" "host=127.0.0.1 password=$CANARY dbname" up
sx "key=value form, unterminated quote" "2|4|8" "host=127.0.0.1 password='$CANARY dbname=x" up
sx "unsupported scheme" 2 "mysql://u:$CANARY@127.0.0.1/secdb" up
sx "a usage error with a password URL" 2 "postgres://u:$CANARY@127.0.0.1:$P/secdb" up --bogus
sx "sqlite URL with a query string" "2|4|8" "sqlite:$T/x.db?_auth_pass=$CANARY" up

# The right password: logs (debug included) name the database, masked.
GOOD="postgres://canary:$GOOD_PW@127.0.0.1:$P/secdb"
OUT=$("$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --database "$GOOD" --to 1 -v \
    --log-format json up 2>&1)
RC=$?
printf '%s\n' "$OUT" >>"$ALL_OUT"
is "the right password: applied" "$RC" 0
expect_not_contains "the right password: no password in the JSON logs" "$OUT" "$GOOD_PW"
is "the right password: db.connected shows the URL masked" \
    "$(jq -r 'select(.event == "db.connected") | .database' <<<"$OUT" 2>&1)" \
    "postgres://canary:***@127.0.0.1:$P/secdb"
OUT=$("$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --database "$GOOD" -v up 2>&1)
printf '%s\n' "$OUT" >>"$ALL_OUT"
expect_not_contains "a failing migration: no password in the text logs" "$OUT" "$GOOD_PW"
expect_contains "a failing migration: the URL is shown masked" "$OUT" "canary:***@"
OUT=$("$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --database "$GOOD" --log-format json \
    -v up 2>&1)
printf '%s\n' "$OUT" >>"$ALL_OUT"
expect_not_contains "a failing migration: no password in the JSON logs" "$OUT" "$GOOD_PW"
for cmd in status plan "status --json" "plan --json"; do
    # shellcheck disable=SC2086
    OUT=$("$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --database "$GOOD" -v $cmd 2>&1)
    printf '%s\n' "$OUT" >>"$ALL_OUT"
    expect_not_contains "$cmd: no password in the output" "$OUT" "$GOOD_PW"
done
GOOD_KV="host=127.0.0.1 port=$P user=canary password=$GOOD_PW dbname=secdb"
OUT=$("$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --database "$GOOD_KV" -v \
    --log-format json status 2>&1)
printf '%s\n' "$OUT" >>"$ALL_OUT"
expect_not_contains "key=value form: no password in the logs" "$OUT" "$GOOD_PW"
expect_contains "key=value form: the password is masked" "$OUT" "password=***"
# Secrets libpq finds in a query under other spellings: a key in percent
# escapes, and the passphrase of a TLS client key (libpq ignores it here,
# with no client key, but it is still a secret).
QS="postgres://canary@127.0.0.1:$P/secdb?pass%77ord=$GOOD_PW&sslpassword=$CANARY"
OUT=$("$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --database "$QS" -v status 2>&1)
printf '%s\n' "$OUT" >>"$ALL_OUT"
expect_contains "escaped query key: connected, the URL shown masked" "$OUT" "pass%77ord=***"
expect_not_contains "escaped query key: no password in the output" "$OUT" "$GOOD_PW"
expect_contains "sslpassword: masked" "$OUT" "sslpassword=***"
expect_not_contains "sslpassword: not in the output" "$OUT" "$CANARY"
GOOD_KV_SPACED="host=127.0.0.1 port=$P user=canary password = $GOOD_PW dbname=secdb"
OUT=$("$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --database "$GOOD_KV_SPACED" -v status 2>&1)
printf '%s\n' "$OUT" >>"$ALL_OUT"
expect_contains "key = value form: the password is masked" "$OUT" "password = ***"
expect_not_contains "key = value form: no password in the output" "$OUT" "$GOOD_PW"

# The environment and the termination log.
: >"$T/term.log"
OUT=$(CMIG_DATABASE_URL="postgres://canary:$CANARY@127.0.0.1:$P/secdb" "$RUN" --bundle "$BUN" \
    --trusted-key "$KEY_PUB" --termination-log "$T/term.log" --log-format json up 2>&1)
RC=$?
printf '%s\n' "$OUT" >>"$ALL_OUT"
is "CMIG_DATABASE_URL, bad password: exit 4" "$RC" 4
expect_not_contains "CMIG_DATABASE_URL: no password in the JSON logs" "$OUT" "$CANARY"
t=$(cat "$T/term.log")
expect_contains "the termination log has the failure" "$t" "cmig-run:"
expect_not_contains "the termination log has no password" "$t" "$CANARY"
printf '%s\n' "postgres://canary:$CANARY@127.0.0.1:$P/secdb" >"$T/url"
: >"$T/term.log"
OUT=$(CMIG_DATABASE_URL_FILE=$T/url CMIG_TERMINATION_LOG=$T/term.log "$RUN" --bundle "$BUN" \
    --trusted-key "$KEY_PUB" up 2>&1)
RC=$?
printf '%s\n' "$OUT" >>"$ALL_OUT"
is "CMIG_DATABASE_URL_FILE, bad password: exit 4" "$RC" 4
expect_not_contains "CMIG_DATABASE_URL_FILE: no password in the output" "$OUT" "$CANARY"
expect_not_contains "CMIG_DATABASE_URL_FILE: no password in the termination log" \
    "$(cat "$T/term.log")" "$CANARY"
: >"$T/term.log"
OUT=$("$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --termination-log "$T/term.log" \
    --database "postgres://u:$CANARY@[bad" up 2>&1)
printf '%s\n' "$OUT" >>"$ALL_OUT"
expect_not_contains "malformed URL: no password in the termination log" "$(cat "$T/term.log")" "$CANARY"
: >"$T/term.log"
OUT=$("$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --termination-log "$T/term.log" \
    --database "$GOOD" up 2>&1)
printf '%s\n' "$OUT" >>"$ALL_OUT"
expect_contains "a failing migration: the termination log has the failure" "$(cat "$T/term.log")" "nowhere"
expect_not_contains "a failing migration: no password in the termination log" \
    "$(cat "$T/term.log")" "$GOOD_PW"

no_secret "the canary password is nowhere in any output" "$CANARY"
no_secret "the right password is nowhere in any output" "$GOOD_PW"
