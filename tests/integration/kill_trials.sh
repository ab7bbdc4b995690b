#!/usr/bin/env bash
# tests/integration/kill_trials.sh - cmig-run killed (SIGKILL) at random
# points of an `up`, trial after trial, on PostgreSQL, SQLite and the
# MongoDB-wire test server (jongodb).
#
# Each trial applies a bundle (seven SQL migrations, five transactional and
# two not; five MongoDB ones) to a new database (on PostgreSQL a new
# schema, see trial_db) and kills the runner after a delay drawn from a
# seeded generator: the delays of the trials cover the whole length of a
# run (measured first), from before the first migration to after the
# last. After each kill:
#   - every transactional migration is all or nothing: its schema change,
#     its rows and its history row are all there or none is;
#   - the history holds migrations 1..k and nothing else; only the last of
#     them may be dirty, and only if it is a non-transactional one; the
#     effects of a dirty one are a prefix of its statements;
#   - what the runner logged agrees with the history: every migration it
#     logged as applied has its row, none past the one it was applying;
#   - SQLite: PRAGMA integrity_check says ok (on a copy taken right after
#     the kill, hot journal included, so that cmig-run itself meets the
#     journal next);
#   - the next `up` converges: at once, or, when it refuses a dirty
#     migration D (exit 6), after `force D-1` (every non-transactional
#     migration here can run again) and another `up`; then the database is
#     the full state, checked value by value.
# A summary per driver says where the kills landed, how many left a dirty
# migration (and, on SQLite, a hot journal), and how many trials converged.
#
# KILL_SEED (default 20240611) seeds the delays; KILL_TRIALS_PG (100),
# KILL_TRIALS_SQLITE (100) and KILL_TRIALS_MONGO (50) set the trials.
SEED=${KILL_SEED:-20240611}
N_PG=${KILL_TRIALS_PG:-100}
N_SQLITE=${KILL_TRIALS_SQLITE:-100}
N_MONGO=${KILL_TRIALS_MONGO:-50}
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib-pg.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib-run.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib-mongo.sh"

# lr_setup clears CMIG_* from the environment: keep a real server's URL.
_real_url=${CMIG_TEST_MONGO_URL:-}
lr_setup sqlite
[ -n "$_real_url" ] && CMIG_TEST_MONGO_URL=$_real_url
cd "$T" || exit 1
t_suite=$(now_ms)

BG=
_prev_trap=$(trap -p EXIT)
eval "set -- $_prev_trap"
trap '[ -n "$BG" ] && kill -9 "$BG" 2>/dev/null; '"${3:-}" EXIT

# ---------------------------------------------------------------------------
# A linear congruential generator: the same seed gives the same delays on
# every machine (bash's $RANDOM is shared with the helpers).
RNG=$SEED
rng_next() {
    RNG=$(((RNG * 1103515245 + 12345) % 2147483648))
}

# ---------------------------------------------------------------------------
# The migrations. A `ledger` table (collection), made before the run, gets
# one row per migration part: the row of a transactional migration says
# what that migration saw of its own work (a count or a sum), so that its
# presence and its value tell whether the whole migration committed.
#
# SPEC: one line per migration: VERSION KIND EFFECT...; each EFFECT is
# obj:NAME (a table, index or view), col:TABLE.COLUMN or led:M.P=N (ledger
# row (M, P) with value N), in the order the migration makes them. Full
# state: every effect, and the DATA line's values.
write_sql_migrations() {
    local d=$1
    mig "$d" 1 items 'CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL);
INSERT INTO items (id, name)
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 500)
    SELECT i, '"'item '"' || i FROM c;
INSERT INTO ledger SELECT 1, 0, count(*) FROM items;'
    mig "$d" 2 price 'ALTER TABLE items ADD COLUMN price integer NOT NULL DEFAULT 0;
UPDATE items SET price = id * 3;
CREATE INDEX items_price ON items (price);
INSERT INTO ledger SELECT 2, 0, sum(price) FROM items;'
    # Statements that can run again: after a kill in the middle, force 2
    # and up run the whole file once more.
    mig "$d" 3 tags '-- cmig:no-transaction
CREATE TABLE IF NOT EXISTS tags (id integer PRIMARY KEY, label text NOT NULL);
INSERT INTO ledger VALUES (3, 1, 1) ON CONFLICT DO NOTHING;
INSERT INTO tags VALUES (1, '"'new'"') ON CONFLICT DO NOTHING;
UPDATE items SET name = upper(name);
INSERT INTO ledger VALUES (3, 2, 1) ON CONFLICT DO NOTHING;
INSERT INTO tags VALUES (2, '"'old'"') ON CONFLICT DO NOTHING;
INSERT INTO ledger VALUES (3, 3, 1) ON CONFLICT DO NOTHING;'
    mig "$d" 4 orders 'CREATE TABLE orders (id integer PRIMARY KEY,
    item_id integer NOT NULL REFERENCES items (id), qty integer NOT NULL);
INSERT INTO orders (id, item_id, qty)
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000)
    SELECT i, 1 + i % 500, i % 7 FROM c;
CREATE VIEW order_totals AS SELECT item_id, sum(qty) AS qty FROM orders GROUP BY item_id;
INSERT INTO ledger SELECT 4, 0, count(*) FROM orders;'
    mig "$d" 5 notes 'ALTER TABLE orders ADD COLUMN note text;
UPDATE orders SET note = '"'n'"' || id;
CREATE INDEX orders_item ON orders (item_id);
INSERT INTO ledger SELECT 5, 0, count(note) FROM orders;'
    mig "$d" 6 shout '-- cmig:no-transaction
CREATE INDEX IF NOT EXISTS items_name ON items (name);
INSERT INTO ledger VALUES (6, 1, 1) ON CONFLICT DO NOTHING;
UPDATE orders SET note = upper(note);
INSERT INTO ledger VALUES (6, 2, 1) ON CONFLICT DO NOTHING;'
    mig "$d" 7 done 'CREATE TABLE done (x integer);
INSERT INTO done VALUES (1);
INSERT INTO ledger SELECT 7, 0, count(*) FROM done;'
}

SQL_SPEC='1 tx obj:items led:1.0=500
2 tx col:items.price obj:items_price led:2.0=375750
3 notx obj:tags led:3.1=1 led:3.2=1 led:3.3=1
4 tx obj:orders obj:order_totals led:4.0=3000
5 tx col:orders.note obj:orders_item led:5.0=3000
6 notx obj:items_name led:6.1=1 led:6.2=1
7 tx obj:done led:7.0=1'
# items, the sum of prices, upper-cased names, tags, orders, upper-cased
# notes, done rows.
SQL_DATA='500 375750 500 2 3000 3000 1'

# MongoDB: every migration runs command by command (never in a
# transaction), so each is dirty while it runs; upserts keep them
# repeatable. Migration V sets field mV on every item, a quarter at a
# time, with a ledger document after each quarter. 100 items make each
# command long enough against the run's start that about half the kills
# land inside a migration (with 40, a fifth did, some runs under ten).
M_ITEMS=100
# mongo_set V FIRST LAST: one update command over items FIRST..LAST.
mongo_set() {
    local k sep=
    printf '{"update": "items", "updates": ['
    for k in $(seq "$2" "$3"); do
        printf '%s{"q": {"_id": %d}, "u": {"$set": {"m%d": %d}}, "upsert": true}' "$sep" "$k" "$1" "$k"
        sep=,
    done
    printf ']}'
}

write_mongo_migrations() {
    local d=$1 v part quarter=$((M_ITEMS / 4))
    mkdir -p "$d"
    for v in 1 2 3 4 5; do
        {
            printf '[\n'
            for part in 1 2 3 4; do
                [ "$part" -gt 1 ] && printf ',\n'
                mongo_set "$v" $(((part - 1) * quarter + 1)) $((part * quarter))
                printf ',\n{"update": "ledger", "updates": [{"q": {"_id": "%d.%d"}, ' "$v" "$part"
                printf '"u": {"$set": {"n": 1}}, "upsert": true}]}'
            done
            printf '\n]\n'
        } >"$d/${v}_step$v.up.json"
    done
}
MONGO_SPEC='1 notx led:1.1=1 led:1.2=1 led:1.3=1 led:1.4=1
2 notx led:2.1=1 led:2.2=1 led:2.3=1 led:2.4=1
3 notx led:3.1=1 led:3.2=1 led:3.3=1 led:3.4=1
4 notx led:4.1=1 led:4.2=1 led:4.3=1 led:4.4=1
5 notx led:5.1=1 led:5.2=1 led:5.3=1 led:5.4=1'
# Items, and how many have each migration's field, then the ones that
# have all five.
MONGO_DATA="$M_ITEMS $M_ITEMS $M_ITEMS $M_ITEMS $M_ITEMS $M_ITEMS"

# ---------------------------------------------------------------------------
# Per driver: trial_db N (a new, empty database with the ledger; sets DB,
# DB_NAME, DB_FILE), probe (prints "obj:X", "col:T.C", "led:M.P=N", "hist:V:D"
# lines), data (the DATA line), settle (waits for what the kill left
# running on the server).
trial_db() {
    case $DRIVER in
        postgres)
            # A schema of its own in one database, first in the session's
            # search_path (the URL's options): CREATE DATABASE takes 0.4 s
            # here, CREATE SCHEMA a few ms. cmig-run's tables and the
            # migrations' objects are all unqualified, so they land there.
            # The previous trial's schema goes in the same psql.
            local drop=
            [ -n "${DB_SCHEMA:-}" ] && drop="DROP SCHEMA IF EXISTS $DB_SCHEMA CASCADE;"
            DB_NAME=kt
            DB_SCHEMA=kt_$1
            DB="$(pg_url kt)?options=-csearch_path%3D$DB_SCHEMA"
            pg_psql kt -c "SET client_min_messages = warning; $drop CREATE SCHEMA $DB_SCHEMA;
                SET search_path = $DB_SCHEMA;
                CREATE TABLE ledger (m integer, part integer, n bigint, PRIMARY KEY (m, part))"
            ;;
        sqlite)
            db_new "kt_$1"
            db_sql 'CREATE TABLE ledger (m integer, part integer, n integer, PRIMARY KEY (m, part))'
            ;;
        mongodb)
            DB_NAME=kt$$_$1
            DB=$(mongo_url "$CMIG_TEST_MONGO_URL" "$DB_NAME")
            ;;
    esac
}

# pg_in SQL...: psql in the trial's schema.
pg_in() {
    PGOPTIONS="-c search_path=$DB_SCHEMA" pg_psql kt "$@"
}

q() {
    mongo_cmd "$DB" "$DB_NAME" "$@"
}

probe() {
    local f=${1:-$DB_FILE}
    case $DRIVER in
        postgres)
            # One psql: the history is read only when its table exists.
            pg_in <<EOF
SELECT 'obj:' || relname FROM pg_class
    WHERE relnamespace = '$DB_SCHEMA'::regnamespace AND relkind IN ('r', 'i', 'v')
UNION ALL SELECT 'col:' || table_name || '.' || column_name FROM information_schema.columns
    WHERE table_schema = '$DB_SCHEMA' AND table_name IN ('items', 'orders')
UNION ALL SELECT 'led:' || m || '.' || part || '=' || n FROM ledger;
SELECT to_regclass('cmig_history') IS NOT NULL AS has_history \\gset
\\if :has_history
SELECT 'hist:' || version || ':' || dirty::int FROM cmig_history ORDER BY version;
\\endif
EOF
            ;;
        sqlite)
            # The history query comes last: it fails when the table is not
            # there yet, and nothing is lost.
            sqlite3 -batch -noheader "$f" "SELECT 'obj:' || name FROM sqlite_master
                    WHERE type IN ('table', 'index', 'view');
                SELECT 'col:' || m.name || '.' || p.name FROM sqlite_master AS m,
                    pragma_table_info(m.name) AS p
                    WHERE m.type = 'table' AND m.name IN ('items', 'orders');
                SELECT 'led:' || m || '.' || part || '=' || n FROM ledger;
                SELECT 'hist:' || version || ':' || dirty FROM cmig_history ORDER BY version;" \
                2>/dev/null
            ;;
        mongodb)
            q '{"find": "ledger", "filter": {}}' \
                '{"find": "cmig_history", "filter": {"bundle": "kt"}}' |
                jq -r 'if (.cursor.ns // "") | endswith(".ledger")
                    then .cursor.firstBatch[] | "led:\(._id)=\(.n)"
                    else .cursor.firstBatch[] | "hist:\(.version):\(if .dirty then 1 else 0 end)"
                    end'
            ;;
    esac
}

data() {
    case $DRIVER in
        postgres | sqlite)
            sql_in "SELECT (SELECT count(*) FROM items) || ' ' || (SELECT sum(price) FROM items)
                || ' ' || (SELECT count(*) FROM items WHERE name = upper(name))
                || ' ' || (SELECT count(*) FROM tags) || ' ' || (SELECT count(*) FROM orders)
                || ' ' || (SELECT count(*) FROM orders WHERE note = 'N' || id)
                || ' ' || (SELECT count(*) FROM done)"
            ;;
        mongodb)
            local f cmds=()
            for f in '{}' '{"m1": {"$exists": true}}' '{"m2": {"$exists": true}}' \
                '{"m3": {"$exists": true}}' '{"m4": {"$exists": true}}' \
                '{"m1": {"$exists": true}, "m2": {"$exists": true}, "m3": {"$exists": true},
                  "m4": {"$exists": true}, "m5": {"$exists": true}}'; do
                cmds+=("{\"find\": \"items\", \"filter\": $f}")
            done
            q "${cmds[@]}" | jq -r '.cursor.firstBatch | length' | paste -sd ' '
            ;;
    esac
}

# sql_in SQL: db_sql, in the trial's schema on PostgreSQL.
sql_in() {
    if [ "$DRIVER" = postgres ]; then pg_in -c "$1"; else db_sql "$1"; fi
}

# trial_drop: the trial's database goes, so that a hundred of them do not
# pile up on the server (on PostgreSQL the next trial_db drops it).
trial_drop() {
    case $DRIVER in
        sqlite) rm -f "$DB_FILE" "$DB_FILE-journal" ;;
        mongodb)
            # jongodb has no dropDatabase: the documents go.
            local c cmds=()
            for c in items ledger cmig_history cmig_bundles cmig_locks; do
                cmds+=("{\"delete\": \"$c\", \"deletes\": [{\"q\": {}, \"limit\": 0}]}")
            done
            q "${cmds[@]}" >/dev/null
            ;;
    esac
}

settle() {
    case $DRIVER in
        postgres) pg_wait_gone kt 20 ;;
        *) return 0 ;;
    esac
}

# ---------------------------------------------------------------------------
# check_after_kill SPEC PROBE_FILE: the invariants; BAD is empty when
# they hold, else says what is wrong. Sets ROWS (history rows) and DIRTY
# (the dirty version, or empty).
declare -A HAVE LEDGER
check_after_kill() {
    local spec=$1 probe=$2 bad="" v kind effects e n_present i rows_list="" line key
    local -a effs
    HAVE=()
    LEDGER=()
    ROWS=0
    DIRTY=
    local last_version=0
    # Pure bash from here on: it runs twice per trial.
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        HAVE[$line]=1
        case $line in
            led:*) LEDGER[${line%%=*}]=${line#*=} ;;
            hist:*)
                # History: versions 1..k, at most one dirty, the last.
                line=${line#hist:}
                v=${line%%:*}
                rows_list="$rows_list $v"
                ROWS=$((ROWS + 1))
                [ "$v" = "$ROWS" ] || bad="$bad history versions are not 1..k:$rows_list;"
                if [ "${line#*:}" = 1 ]; then
                    [ -z "$DIRTY" ] || bad="$bad two dirty rows;"
                    DIRTY=$v
                fi
                last_version=$v
                ;;
        esac
    done <"$probe"
    [ -z "$DIRTY" ] || [ "$DIRTY" = "$last_version" ] || bad="$bad dirty row $DIRTY is not the last;"
    while read -r v kind effects; do
        read -ra effs <<<"$effects"
        n_present=0
        for e in "${effs[@]}"; do
            if [ -n "${HAVE[$e]:-}" ]; then
                n_present=$((n_present + 1))
            elif [ "${e%%:*}" = led ]; then
                # A ledger row with another value counts as absent; name it.
                key=${e%%=*}
                [ -z "${LEDGER[$key]:-}" ] || bad="$bad migration $v: $key=${LEDGER[$key]} (want ${e#*=});"
            fi
        done
        if [ "$v" -gt "$ROWS" ]; then
            [ "$n_present" = 0 ] || bad="$bad migration $v has no history row but $n_present of its effects;"
        elif [ "$v" = "$DIRTY" ]; then
            [ "$kind" = notx ] || bad="$bad transactional migration $v is dirty;"
            # A prefix of its effects, in the order it makes them.
            for ((i = 0; i < ${#effs[@]}; i++)); do
                if [ "$i" -lt "$n_present" ] && [ -z "${HAVE[${effs[$i]}]:-}" ]; then
                    bad="$bad dirty migration $v: its effects are not a prefix ($effects);"
                    break
                fi
            done
        else
            [ "$n_present" = "${#effs[@]}" ] ||
                bad="$bad migration $v is recorded but has $n_present of ${#effs[@]} effects;"
        fi
    done <<<"$spec"
    BAD=$bad
}

# check_full SPEC DATA: the converged state; BAD as above.
check_full() {
    local spec=$1 want=$2 bad n_all
    probe >"$T/probe-full"
    check_after_kill "$spec" "$T/probe-full"
    bad=$BAD
    n_all=$(wc -l <<<"$spec")
    [ "$ROWS" = "$n_all" ] && [ -z "$DIRTY" ] || bad="$bad $ROWS history rows (dirty: ${DIRTY:-none});"
    local got
    got=$(data 2>&1)
    [ "$got" = "$want" ] || bad="$bad data '$got', want '$want';"
    BAD=$bad
}

# ---------------------------------------------------------------------------
# start_up LOG [VAR=VALUE...]: cmig-run -v up in the background ($BG).
start_up() {
    local log=$1
    shift
    env "$@" "$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --database "$DB" -v \
        --lock-timeout 60s up >"$log" 2>&1 &
    BG=$!
}

# log_progress LOG: APPLYING and APPLIED, the last migration the runner
# logged it was applying and had applied (0: none).
log_progress() {
    local line
    APPLYING=0
    APPLIED=0
    while IFS= read -r line; do
        if [[ $line =~ applying\ migration\ ([0-9]+)\  ]]; then
            APPLYING=${BASH_REMATCH[1]}
        elif [[ $line =~ applied\ migration\ ([0-9]+)\  ]]; then
            APPLIED=${BASH_REMATCH[1]}
        fi
    done <"$1"
}

# landing RC: where the kill landed, from what the runner logged.
landing() {
    if [ "$1" != 137 ]; then
        WHERE="finished before the kill"
    elif [ "$APPLYING" = 0 ]; then
        WHERE="before migration 1"
    elif [ "$APPLYING" != "$APPLIED" ]; then
        WHERE="within migration $APPLYING"
    else
        WHERE="after migration $APPLIED"
    fi
}

# calibrate SPEC DATA NAME [VAR=VALUE...]: one whole run on a new
# database, which must reach the full state; its time is appended to CAL.
# It is started and waited for as a trial's runner is (start_up, the
# trial's variables) and timed without a fork (EPOCHREALTIME): timed with
# date(1) around a foreground run, a fast MongoDB run measured about twice
# its length, and most kills then landed after the run had finished.
calibrate() {
    local t0 t1 rc
    trial_db "$3"
    t0=${EPOCHREALTIME/./}
    start_up "$T/cal.log" "${@:4}"
    { wait "$BG"; } 2>/dev/null
    rc=$?
    t1=${EPOCHREALTIME/./}
    BG=
    CAL+=("$(((t1 - t0) / 1000))")
    check_full "$1" "$2"
    if [ "$rc" != 0 ] || [ -n "$BAD" ]; then
        not_ok "$DRIVER: an uninterrupted run reaches the full state" "exit $rc;$BAD $(tail -3 "$T/cal.log")"
        return 1
    fi
}

# trials N SPEC DATA [VAR=VALUE...]: calibration, N trials, summary; the
# variables are set for the runners that get killed.
trials() {
    local n=$1 spec=$2 want=$3 i d_ms span_us delay_us rc bad where dirty_count=0
    local converged=0 n_mig forced=0 t_driver hot=0 shm_left
    shift 3
    local -a env_kill=("$@")
    declare -A where_count=()
    n_mig=$(wc -l <<<"$spec")
    t_driver=$(now_ms)

    # Calibration: three whole runs, on fresh databases. Each must reach
    # the full state: the checker accepts a good database.
    # Two runs before them are not counted: the first runs against a new
    # server are slower (jongodb's JIT warming up: 76 ms falling to 40),
    # and a span taken from them sent most kills past the end of a run.
    for i in 1 2; do
        calibrate "$spec" "$want" "warm$i" "${env_kill[@]}" || return
    done
    CAL=()
    for i in 1 2 3; do
        calibrate "$spec" "$want" "cal$i" "${env_kill[@]}" || return
    done
    ok "$DRIVER: three uninterrupted runs reach the full state (${CAL[*]} ms)"

    # The checker refuses a half-applied migration: the last calibration
    # database with migration 7's history row removed (its effects stay),
    # or, on MongoDB, a ledger document of migration 2.
    case $DRIVER in
        postgres | sqlite)
            sql_in "DELETE FROM cmig_history WHERE version = 7"
            ;;
        mongodb)
            q '{"delete": "ledger", "deletes": [{"q": {"_id": "2.4"}, "limit": 1}]}' >/dev/null
            ;;
    esac
    probe >"$T/probe-neg"
    check_after_kill "$spec" "$T/probe-neg"
    bad=$BAD
    [ -n "$bad" ] && ok "$DRIVER: the checker catches a half-applied migration ($bad)" ||
        not_ok "$DRIVER: the checker catches a half-applied migration" "it found nothing wrong"

    # The delays: trial i draws within the i-th of n equal slices of
    # [0, 1.3 x the run time], the shortest of the last three whole runs
    # (runs against a server still warming up only get faster; a slow
    # outlier would push the kills past the end of the runs).
    # The machine's speed drifts (other work shares it): every tenth trial
    # first measures one more whole run.
    local fails=0 d_sum=0
    for ((i = 0; i < n; i++)); do
        if [ "$i" -gt 0 ] && [ $((i % 10)) = 0 ]; then
            calibrate "$spec" "$want" "cal_$i" "${env_kill[@]}" || return
            trial_drop
        fi
        d_ms=$(printf '%s\n' "${CAL[@]: -3}" | sort -n | sed -n 1p)
        d_sum=$((d_sum + d_ms))
        span_us=$((d_ms * 1300))
        rng_next
        delay_us=$(((i * 1000 + RNG % 1000) * span_us / (n * 1000)))
        trial_db "$i"
        touch "$T/trial.start"
        start_up "$T/trial.log" "${env_kill[@]}"
        sleep "$((delay_us / 1000000)).$(printf '%06d' $((delay_us % 1000000)))"
        kill -9 "$BG" 2>/dev/null
        { wait "$BG"; } 2>/dev/null
        rc=$?
        # libmongoc's counter file, which a killed process cannot remove:
        # cmig-run switches the counters off (runner/plugins.c).
        # (One older than the trial is another process's with this pid.)
        shm_left=
        [ -n "$(find "/dev/shm/mongoc-$BG" -newer "$T/trial.start" 2>/dev/null)" ] &&
            shm_left=/dev/shm/mongoc-$BG
        BG=
        cat "$T/trial.log" >>"$ALL_OUT"
        log_progress "$T/trial.log"
        landing "$rc"
        where=$WHERE
        where_count[$where]=$((${where_count[$where]:-0} + 1))
        bad=
        [ "$rc" = 137 ] || [ "$rc" = 0 ] || bad="$bad the runner exited $rc on its own;"
        [ -z "$shm_left" ] || bad="$bad the killed runner left $shm_left behind;"
        settle || bad="$bad the killed runner's session did not end;"
        if [ "$DRIVER" = sqlite ]; then
            # A copy with the hot journal, if any: the original is left
            # for cmig-run to recover. (The journal outlives its
            # transaction only when the process died in it.)
            [ -f "$DB_FILE-journal" ] && hot=$((hot + 1))
            rm -rf "$T/snap" && mkdir -p "$T/snap"
            cp "$DB_FILE"* "$T/snap/"
            probe "$T/snap/$(basename "$DB_FILE")" >"$T/probe-kill"
            local ic
            ic=$(sqlite3 -batch "$T/snap/$(basename "$DB_FILE")" 'PRAGMA integrity_check' 2>&1)
            [ "$ic" = ok ] || bad="$bad integrity_check after the kill: $ic;"
        else
            probe >"$T/probe-kill"
        fi
        check_after_kill "$spec" "$T/probe-kill"
        bad="$bad$BAD"
        # The log never runs ahead of the history, nor behind it.
        [ "$ROWS" -ge "$APPLIED" ] && [ "$ROWS" -le "$APPLYING" ] ||
            bad="$bad the log says applying $APPLYING, applied $APPLIED, but the history has $ROWS rows;"
        local dirty=$DIRTY
        [ -n "$dirty" ] && dirty_count=$((dirty_count + 1))

        # Converge.
        OUT=$(cmr --lock-timeout 60s up 2>&1)
        rc=$?
        printf '%s\n' "$OUT" >>"$ALL_OUT"
        if [ -n "$dirty" ]; then
            if [ "$rc" = 6 ]; then
                OUT=$(cmr --lock-timeout 60s force $((dirty - 1)) 2>&1 && cmr up 2>&1)
                rc=$?
                printf '%s\n' "$OUT" >>"$ALL_OUT"
                forced=$((forced + 1))
            else
                bad="$bad up after a kill that left $dirty dirty exited $rc, not 6;"
            fi
        fi
        [ "$rc" = 0 ] || bad="$bad the run after the kill exited $rc: $(tail -2 <<<"$OUT");"
        local full
        check_full "$spec" "$want"
        full=$BAD
        if [ "$DRIVER" = sqlite ]; then
            local ic2
            ic2=$(sqlite3 -batch "$DB_FILE" 'PRAGMA integrity_check' 2>&1)
            [ "$ic2" = ok ] || full="$full integrity_check after convergence: $ic2;"
        fi
        [ -z "$full" ] && [ "$rc" = 0 ] && converged=$((converged + 1))
        bad="$bad$full"
        trial_drop
        if [ -n "$bad" ]; then
            fails=$((fails + 1))
            not_ok "$DRIVER trial $i (kill at $((delay_us / 1000)) ms, $where)" "$bad"
        fi
    done
    [ "$fails" = 0 ] && ok "$DRIVER: $n trials, every invariant held after every kill"
    is "$DRIVER: every trial converged to the full state" "$converged" "$n"
    # Where the kills landed, in run order.
    local k summary="" w
    local -a order=("before migration 1")
    for ((k = 1; k <= n_mig; k++)); do
        order+=("within migration $k" "after migration $k")
    done
    order+=("finished before the kill")
    for w in "${order[@]}"; do
        [ -n "${where_count[$w]:-}" ] && summary="$summary, $w: ${where_count[$w]}"
    done
    echo "# $DRIVER: $n trials (seed $SEED; whole runs ${CAL[*]} ms; delays over 1.3 x the" \
        "shortest of the last three, $((n ? d_sum * 13 / (10 * n) : 0)) ms on average)"
    echo "# $DRIVER: kills landed: ${summary#, }"
    echo "# $DRIVER: $dirty_count left a dirty migration (recovered by force and up: $forced);" \
        "$([ "$DRIVER" = sqlite ] && echo "$hot left a hot journal; ")$converged of $n" \
        "converged; $(elapsed_ms "$t_driver") ms"
    # Every part of a run was hit: the delays are spread over all of it.
    # With fewer than 50 trials the first slice can outlast the start of a
    # run (before its first migration), so only then is it asked.
    if [ "$n" -lt 50 ]; then
        echo "# $DRIVER: $n trials: too few to check where the kills landed"
        return
    fi
    local within=0
    for w in "${!where_count[@]}"; do
        case $w in within*) within=$((within + 1)) ;; esac
    done
    if [ -n "${where_count["before migration 1"]:-}" ] && [ "$within" -ge 3 ] &&
        [ -n "${where_count["finished before the kill"]:-}" ]; then
        ok "$DRIVER: kills landed before the first migration, within $within of them, and after the run"
    else
        not_ok "$DRIVER: kills landed before the first migration, within several, and after the run" \
            "${summary#, }"
    fi
}

# ---------------------------------------------------------------------------
DRIVER=postgres
if [ -f "$B/drivers/postgres.so" ] && pg_start && pg_createdb kt; then
    write_sql_migrations "$T/pg"
    BUN=$T/bundles/kt-pg.cmig
    bundle_build "$T/pg" kt 1.0.0 "$BUN" && trials "$N_PG" "$SQL_SPEC" "$SQL_DATA"
    pg_stop
else
    not_ok "start a PostgreSQL server (and the driver is built)" "see the messages above"
fi

DRIVER=sqlite
write_sql_migrations "$T/sq"
BUN=$T/bundles/kt-sqlite.cmig
bundle_build "$T/sq" kt 1.0.0 "$BUN" && trials "$N_SQLITE" "$SQL_SPEC" "$SQL_DATA"

DRIVER=mongodb
if [ -f "$B/drivers/mongodb.so" ] && [ -x "$MONGO_CMD_BIN" ] && mongo_start_jongodb; then
    write_mongo_migrations "$T/mg"
    BUN=$T/bundles/kt-mongo.cmig
    # A killed holder's lease expires in 500 ms, so that the next run does
    # not wait the default 30 s to take its lock over.
    bundle_build "$T/mg" kt 1.0.0 "$BUN" &&
        trials "$N_MONGO" "$MONGO_SPEC" "$MONGO_DATA" CMIG_MONGODB_LEASE_MS=500
else
    not_ok "start the MongoDB-wire test server (and the driver and mongo-cmd are built)" \
        "see the messages above"
fi
echo "# kill_trials: $(elapsed_ms "$t_suite") ms in all"
