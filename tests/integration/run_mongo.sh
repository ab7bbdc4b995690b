#!/usr/bin/env bash
# tests/integration/run_mongo.sh - cmig-run's MongoDB driver against real
# MongoDB-wire servers that this suite installs and starts itself (see
# lib-mongo.sh): jongodb for history, locking, concurrency and data
# migrations, CongoDB for migrations that do DDL. With CMIG_TEST_MONGO_URL
# set to a real MongoDB (a replica set for the transaction-free scenarios
# here is not needed), every scenario runs against it instead.
#
# Each scenario uses a database of its own. Expected values come from the
# migrations written here, never from the program's output. Neither test
# server's gaps are asserted (no validators, no pipeline updates).
#
# MONGO_ROUNDS sets the concurrency rounds (20), MONGO_RUNNERS the
# runners per round (16).
ROUNDS=${MONGO_ROUNDS:-20}
RUNNERS=${MONGO_RUNNERS:-16}
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib-run.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib-mongo.sh"

# lr_setup clears CMIG_* from the environment: keep a real server's URL.
_real_url=${CMIG_TEST_MONGO_URL:-}
lr_setup mongodb
[ -n "$_real_url" ] && CMIG_TEST_MONGO_URL=$_real_url
for f in "$B/drivers/mongodb.so" "$MONGO_CMD_BIN"; do
    if [ ! -f "$f" ]; then
        not_ok "the MongoDB driver and test client are built" "$f missing (make test-bins)"
        exit 1
    fi
done
t_start=$(now_ms)
if ! mongo_start; then
    not_ok "install and start the MongoDB-wire test servers" "see the messages above"
    exit 1
fi
echo "# servers ready in $(elapsed_ms "$t_start") ms"
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

# Database names are unique per run: a real server keeps them.
DBP=cmig$$_
SRV=

# jmig DIR V NAME UP [DOWN]: golang-migrate's MongoDB files.
jmig() {
    local dir=$1 v=$2 name=$3
    mkdir -p "$dir"
    printf '%s\n' "$4" >"$dir/${v}_$name.up.json"
    if [ $# -ge 5 ]; then
        printf '%s\n' "$5" >"$dir/${v}_$name.down.json"
    fi
}

# use SERVER NAME: DB (and DB_NAME) for a fresh database on jongodb (J),
# CongoDB (C), or a jongodb of its own started for it (N: jongodb slows
# down as it accumulates data, so heavy scenarios get a fresh one).
use() {
    case $1 in
        C) SRV=$CMIG_TEST_CONGO_URL ;;
        N)
            SRV=$CMIG_TEST_MONGO_URL
            if ! mongo_real; then
                local port
                port=$(mongo_free_port) && jongodb_start "$port" &&
                    SRV="mongodb://127.0.0.1:$port/test?replicaSet=rs0"
            fi
            ;;
        *) SRV=$CMIG_TEST_MONGO_URL ;;
    esac
    DB_NAME=$DBP$2
    DB=$(mongo_url "$SRV" "$DB_NAME")
}

# url_with URL USERINFO OPTIONS: URL with user info (none when empty) and
# options appended.
url_with() {
    local u=$1 rest
    rest=${u#mongodb://}
    case ${rest%%/*} in *@*) rest=${rest#*@} ;; esac
    u="mongodb://${2:+$2@}$rest"
    if [ -n "$3" ]; then
        case $u in *\?*) u="$u&$3" ;; *) u="$u?$3" ;; esac
    fi
    echo "$u"
}

# q JSON...: runs commands on the current database; one reply per line.
q() {
    mongo_cmd "$DB" "$DB_NAME" "$@"
}

# docs COLL [FILTER]: the matching documents as a JSON array.
docs() {
    local f=${2:-}
    [ -n "$f" ] || f='{}'
    q "{\"find\": \"$1\", \"filter\": $f}" | jq -c '.cursor.firstBatch'
}

count() {
    docs "$1" "${2:-}" | jq length
}

hist() { # this database's history documents, by version
    docs cmig_history '{"bundle": "app"}' | jq -c 'sort_by(.version)'
}

collections() {
    q '{"listCollections": 1}' | jq -r '[.cursor.firstBatch[].name] | sort | join(",")'
}

# The lock document's _id: BLAKE2b-128 over "cmig_locks\0<bundle>\0" "0",
# first 12 bytes (docs/RUNNER.md).
lock_id() {
    printf 'cmig_locks\0%s\0%s' "$1" 0 | b2sum -l 128 | cut -c1-24
}

# ---------------------------------------------------------------------------
# Data migrations, as golang-migrate's MongoDB examples write them.
base_dir() {
    local d=$1
    jmig "$d" 1 users '[
  {"insert": "users", "documents": [
    {"_id": 1, "email": "a@example.com", "n": {"$numberLong": "5"}},
    {"_id": 2, "email": "b@example.com", "n": {"$numberLong": "7"}}
  ]},
  {"createIndexes": "users", "indexes": [
    {"key": {"email": 1}, "name": "users_email", "unique": true}
  ]}
]' '[
  {"delete": "users", "deletes": [{"q": {}, "limit": 0}]}
]'
    jmig "$d" 2 status '[
  {"update": "users", "updates": [
    {"q": {"status": {"$exists": false}}, "u": {"$set": {"status": "active"}}, "multi": true}
  ]}
]' '[
  {"update": "users", "updates": [{"q": {}, "u": {"$unset": {"status": ""}}, "multi": true}]}
]'
    jmig "$d" 3 counter '[
  {"findAndModify": "counters", "query": {"_id": "users"}, "update": {"$inc": {"seq": 2}},
   "upsert": true, "new": true},
  {"insert": "events", "documents": [
    {"_id": {"$oid": "65a1b2c3d4e5f60718293a4b"}, "kind": "seeded",
     "at": {"$date": "2024-01-02T03:04:05Z"}}
  ]}
]' '[
  {"delete": "events", "deletes": [{"q": {"kind": "seeded"}, "limit": 0}]},
  {"delete": "counters", "deletes": [{"q": {"_id": "users"}, "limit": 1}]}
]'
}

scn_fresh() {
    local d=$T/base before j
    base_dir "$d"
    bundle_build "$d" app 1.0.0 "$T/bundles/app-1.0.0.cmig" || return
    BASE_BUN=$T/bundles/app-1.0.0.cmig
    BUN=$BASE_BUN
    use J fresh
    x 0 "fresh apply" up
    expect_contains "fresh apply: names each migration" "$OUT" "applied migration 3 'counter'"
    is "fresh apply: status" "$(states)" "1:applied 2:applied 3:applied"
    is "insert: both users are there" "$(count users)" 2
    is "update: every user got the new field" "$(count users '{"status": "active"}')" 2
    is "findAndModify: the counter was upserted" "$(docs counters | jq -c '.[0].seq')" 2
    is "extended JSON: \$date and \$oid arrive typed" \
        "$(docs events '{"_id": {"$oid": "65a1b2c3d4e5f60718293a4b"}}' | jq -r '.[0].at["$date"]')" \
        "2024-01-02T03:04:05Z"
    j=$(hist)
    is "history: three documents" "$(jq length <<<"$j")" 3
    is "history: versions and names" "$(jq -r '[.[] | "\(.version):\(.name)"] | join(" ")' <<<"$j")" \
        "1:users 2:status 3:counter"
    is "history: none dirty" "$(jq '[.[] | select(.dirty != false)] | length' <<<"$j")" 0
    is "history: the SHA-256 of each up file" "$(jq -r '.[0].sha256' <<<"$j")" \
        "$(sha256sum "$d/1_users.up.json" | cut -c1-64)"
    is "history: bundle and runner versions" \
        "$(jq -r '.[2] | "\(.bundle_version) \(.runner_version)"' <<<"$j")" "1.0.0 cmig-run 0.1.0"
    is "history: applied_at is a date" "$(jq -r '.[1].applied_at | has("$date")' <<<"$j")" true
    is "history: _id derived from bundle and version" "$(jq -r '.[0]._id["$oid"]' <<<"$j")" \
        "$(printf 'cmig_history\0app\0%s' 1 | b2sum -l 128 | cut -c1-24)"
    is "bundle record: version and manifest hash" \
        "$(docs cmig_bundles | jq -r '.[0] | "\(.version) \(.manifest_sha256 | length)"')" "1.0.0 64"
    is "the lock document is gone after the run" "$(count cmig_locks)" 0

    before=$(hist)
    x 0 "second run" up
    expect_contains "second run: nothing to do" "$OUT" "nothing to do, 3 migrations applied"
    expect_not_contains "second run: applies nothing" "$OUT" "applied migration"
    is "second run: history unchanged" "$(hist)" "$before"
    x 0 "plan --exit-code: nothing pending" plan --exit-code
    x 0 "verify needs no database" verify --database mongodb://127.0.0.1:1/none
}

# ---------------------------------------------------------------------------
scn_failing() {
    local d=$T/failing
    base_dir "$d"
    # jongodb and MongoDB enforce the unique index made by migration 1.
    jmig "$d" 4 dup '[
  {"insert": "users", "documents": [{"_id": 3, "email": "c@example.com"}]},
  {"insert": "users", "documents": [{"_id": 4, "email": "a@example.com"}]},
  {"insert": "users", "documents": [{"_id": 5, "email": "e@example.com"}]}
]'
    bundle_build "$d" app 1.1.0 "$T/bundles/failing.cmig" || return
    use J failing
    BUN=$BASE_BUN x 0 "failing: 1.0.0 first" up
    BUN=$T/bundles/failing.cmig
    x 1 "a failing command exits 1" up
    expect_contains "it names the migration and the command's place in the file" "$OUT" \
        "migration 4 'dup' (4_dup.up.json:3:3)"
    expect_contains "it names the command's index in the array" "$OUT" \
        "command at index 1 ('insert') failed"
    expect_contains "it carries the server's code and codeName" "$OUT" "(code 11000, DuplicateKey)"
    expect_contains "it carries the server's errmsg" "$OUT" "E11000"
    is "one error line" "$(grep -c 'error:' <<<"$OUT")" 1
    is "the command before it ran" "$(count users '{"_id": 3}')" 1
    is "the command after it did not run" "$(count users '{"_id": 5}')" 0
    is "status: migration 4 is dirty" "$(states)" "1:applied 2:applied 3:applied 4:dirty"
    x 6 "the next up refuses a dirty database" up
    expect_contains "the refusal names the dirty migration" "$OUT" "migration 4 'dup' did not finish"
    OUT=$(cmr up --log-format json 2>&1)
    printf '%s\n' "$OUT" >>"$ALL_OUT"
    is "the JSON log says conflict" "$(jq -r 'select(.event == "run.refused") | .error' <<<"$OUT")" \
        conflict
    # The operator finishes the migration by hand, then records it.
    q '{"insert": "users", "documents": [{"_id": 5, "email": "e@example.com"}]}' >/dev/null
    x 0 "force 4 after the repair" force 4
    is "status after force" "$(states)" "1:applied 2:applied 3:applied 4:applied"
    x 0 "up after force" up
    expect_not_contains "up after force applies nothing" "$OUT" "applied migration"
}

# ---------------------------------------------------------------------------
# aggregate with $out and $merge, as golang-migrate users write data
# migrations that reshape a collection.
scn_aggregate_out() {
    local d=$T/agg
    base_dir "$d"
    jmig "$d" 4 emails '[
  {"aggregate": "users", "pipeline": [
    {"$match": {"status": "active"}},
    {"$project": {"email": 1}},
    {"$out": "user_emails"}
  ], "cursor": {}},
  {"aggregate": "users", "pipeline": [
    {"$project": {"email": 1}},
    {"$merge": {"into": "email_archive"}}
  ], "cursor": {}}
]'
    bundle_build "$d" app 1.1.0 "$T/bundles/agg.cmig" || return
    use J agg
    BUN=$T/bundles/agg.cmig
    x 0 "aggregate with \$out and \$merge" up
    is "\$out wrote the active users' emails" \
        "$(docs user_emails | jq -r '[.[].email] | sort | join(",")')" "a@example.com,b@example.com"
    is "\$merge wrote them too" "$(count email_archive)" 2
    is "status" "$(states)" "1:applied 2:applied 3:applied 4:applied"
}

# ---------------------------------------------------------------------------
# The no-op decides with one aggregate; whatever changed in the history
# since must send it down the full path, where every rule applies.
scn_quick_path() {
    BUN=$BASE_BUN
    use J quick
    x 0 "quick: apply" up
    x 0 "quick: the no-op" up
    expect_contains "quick: the no-op says so" "$OUT" "nothing to do, 3 migrations applied"
    OUT=$(cmr up -v 2>&1)
    printf '%s\n' "$OUT" >>"$ALL_OUT"
    expect_not_contains "quick: the no-op needs no lock" "$OUT" "lock of bundle"
    q '{"update": "cmig_history", "updates": [{"q": {"bundle": "app", "version": {"$numberLong": "2"}}, "u": {"$set": {"dirty": true}}}]}' >/dev/null
    x 6 "quick: a history document made dirty is seen" up
    expect_contains "quick: ...and named" "$OUT" "migration 2 'status' did not finish"
    q '{"update": "cmig_history", "updates": [{"q": {"bundle": "app", "version": {"$numberLong": "2"}}, "u": {"$set": {"dirty": false}}}]}' >/dev/null
    q '{"delete": "cmig_history", "deletes": [{"q": {"bundle": "app", "version": {"$numberLong": "3"}}, "limit": 1}]}' >/dev/null
    q '{"delete": "events", "deletes": [{"q": {"kind": "seeded"}, "limit": 0}]}' >/dev/null
    x 0 "quick: a removed history document is seen (the migration runs again)" up
    expect_contains "quick: ...and applied" "$OUT" "applied migration 3 'counter'"
    is "quick: the counter ran twice" "$(docs counters | jq -c '.[0].seq')" 4
    # (History versions are int64: jongodb matches an int32 2 to none of them.)
    q "{\"update\": \"cmig_bundles\", \"updates\": [{\"q\": {\"bundle\": \"app\"}, \"u\": {\"\$set\": {\"manifest_sha256\": \"$(printf '0%.0s' $(seq 64))\"}}}]}" >/dev/null
    x 6 "quick: a bundle record of another manifest is seen" up
    expect_contains "quick: ...and refused" "$OUT" "manifest"
}

# ---------------------------------------------------------------------------
# Migrations in multi-document transactions (jongodb poses as a one-node
# replica set): a failure leaves nothing, and nothing dirty.
scn_transactions() {
    local d=$T/tx
    base_dir "$d"
    jmig "$d" 4 dup '[
  {"insert": "users", "documents": [{"_id": 3, "email": "c@example.com"}]},
  {"insert": "users", "documents": [{"_id": 4, "email": "a@example.com"}]}
]'
    bundle_build "$d" app 1.1.0 "$T/bundles/tx.cmig" --mongodb-transactions || return
    is "tx: the bundle records them as transactional" \
        "$("$BUNDLE" inspect --json "$T/bundles/tx.cmig" | jq -r '[.migrations[].up.transaction] | unique | join(",")')" \
        transaction
    use J tx
    BUN=$T/bundles/tx.cmig
    x 1 "tx: a failing command in a transactional migration exits 1" up
    expect_contains "tx: the error says it was rolled back" "$OUT" \
        "migration 4 'dup' (4_dup.up.json:3:3): rolled back: command at index 1 ('insert') failed"
    expect_contains "tx: the earlier migrations were applied" "$OUT" "applied migration 3 'counter'"
    is "tx: the command before the failure left nothing" "$(count users '{"_id": 3}')" 0
    is "tx: nothing is dirty: 4 is pending" "$(states)" "1:applied 2:applied 3:applied 4:pending"
    is "tx: the committed migrations' data is there" "$(count users '{"status": "active"}')" 2
    x 1 "tx: the next run tries again (no force needed)" up
    is "tx: and leaves nothing again" "$(count users '{"_id": 3}')" 0

    # golang-migrate's URL option, with a bundle built without the flag.
    local plain=$T/tx-plain
    base_dir "$plain"
    jmig "$plain" 4 dup '[
  {"insert": "users", "documents": [{"_id": 3, "email": "c@example.com"}]},
  {"insert": "users", "documents": [{"_id": 4, "email": "a@example.com"}]}
]'
    bundle_build "$plain" app 1.1.0 "$T/bundles/tx-plain.cmig" || return
    use J txurl
    BUN=$T/bundles/tx-plain.cmig
    local db=$DB
    DB=$(url_with "$db" "" "x-transaction-mode=true")
    x 1 "tx: x-transaction-mode=true wraps every migration" up
    expect_contains "tx: ...the log says so" "$OUT" "applied migration 1 'users' in"
    expect_not_contains "tx: ...not '(no transaction)'" "$OUT" "(no transaction)"
    expect_contains "tx: ...and the failure is rolled back" "$OUT" "rolled back"
    DB=$db
    is "tx: x-transaction-mode: nothing of 4 stays" "$(count users '{"_id": 3}')" 0
    is "tx: x-transaction-mode: not dirty" "$(states)" "1:applied 2:applied 3:applied 4:pending"
    DB=$(url_with "$db" "" "x-transaction-mode=maybe")
    x 2 "tx: x-transaction-mode=maybe is a usage error" up
    expect_contains "tx: ...that names the option" "$OUT" "x-transaction-mode must be true or false"
    DB=$(url_with "$db" "" "x-transaction-mode=false")
    x 1 "tx: x-transaction-mode=false runs as the bundle says (no transaction)" up
    is "tx: ...so the failure leaves 4 dirty" "$(states)" "1:applied 2:applied 3:applied 4:dirty"
    DB=$db
}

# ---------------------------------------------------------------------------
scn_down_adopt_rollback() {
    local d=$T/more
    base_dir "$d"
    jmig "$d" 4 more '[{"insert": "more", "documents": [{"_id": "m"}]}]' \
        '[{"delete": "more", "deletes": [{"q": {"_id": "m"}, "limit": 1}]}]'
    bundle_build "$d" app 1.1.0 "$T/bundles/more.cmig" || return
    use J down
    BUN=$T/bundles/more.cmig
    x 0 "down: apply 1.1.0" up
    x 0 "down --to 1" down --to 1
    is "down: status" "$(states)" "1:applied 2:pending 3:pending 4:pending"
    is "down: migration 2's down file ran" "$(count users '{"status": "active"}')" 0
    is "down: migration 3's down file ran" "$(count events)" 0
    x 0 "up again after down" up
    is "up again: status" "$(states)" "1:applied 2:applied 3:applied 4:applied"

    # An image rollback: the older bundle finds everything applied.
    BUN=$BASE_BUN x 0 "an older bundle is a no-op" up
    expect_contains "the older bundle says so" "$OUT" "older than the database"
    BUN=$BASE_BUN x 6 "an older bundle with --strict is refused" up --strict
    # Drift: migration 2 edited after release.
    local e=$T/drift
    base_dir "$e"
    jmig "$e" 2 status '[{"update": "users", "updates": [{"q": {}, "u": {"$set": {"status": "x"}}, "multi": true}]}]'
    jmig "$e" 4 more '[{"insert": "more", "documents": [{"_id": "m"}]}]'
    bundle_build "$e" app 1.2.0 "$T/bundles/drift.cmig" || return
    BUN=$T/bundles/drift.cmig x 6 "an edited migration is refused" up
    expect_contains "drift names the migration" "$OUT" "migrations changed after they were applied: 2 'status'"

    # Adoption of golang-migrate's history.
    use J adopt
    q '{"insert": "schema_migrations", "documents": [{"_id": 1, "version": 2, "dirty": false}]}' >/dev/null
    BUN=$BASE_BUN
    x 0 "golang-migrate's schema_migrations is adopted" up
    expect_contains "adoption is logged" "$OUT" "adopted golang-migrate's schema_migrations at version 2"
    expect_contains "only migration 3 runs" "$OUT" "applied migration 3 'counter'"
    expect_not_contains "migration 1 does not run" "$OUT" "applied migration 1"
    is "adoption: status" "$(states)" "1:applied 2:applied 3:applied"
    is "adoption: migration 1's commands did not run" "$(count users)" 0
}

# ---------------------------------------------------------------------------
scn_tampered() {
    local tb=$T/bundles/tampered.cmig port size
    cp "$BASE_BUN" "$tb" && cp "$BASE_BUN.minisig" "$tb.minisig"
    size=$(stat -c %s "$tb")
    printf '\x00' | dd of="$tb" bs=1 seek=$((size / 2)) conv=notrunc status=none
    port=$(mongo_free_port)
    OUT=$("$RUN" --bundle "$tb" --trusted-key "$KEY_PUB" --wait 30s \
        --database "mongodb://127.0.0.1:$port/x?replicaSet=rs0" up 2>&1)
    RC=$?
    printf '%s\n' "$OUT" >>"$ALL_OUT"
    is "a tampered bundle is refused before any connection (exit 3, no wait)" "$RC" 3
}

# ---------------------------------------------------------------------------
scn_parse_errors() {
    local d o
    d=$T/bad1
    jmig "$d" 1 bad '[
  {"insert": "t", "documents": [{"_id": 1}]},
  {"insert": "t", "documents": }
]'
    o=$(SOURCE_DATE_EPOCH=$EPOCH "$BUNDLE" build "$d" --name app --version 1.0.0 --key "$KEY_SEC" \
        --output "$T/bundles/bad1.cmig" -q 2>&1)
    is "build: malformed JSON is refused (exit 3)" "$?" 3
    expect_contains "build: the error names the file and the position" "$o" \
        "'1_bad.up.json': line 3, column 32: invalid MongoDB extended JSON"
    expect_contains "build: the error carries libbson's message" "$o" "Got parse error at"
    is "build: no bundle is written" "$(ls "$T/bundles/bad1.cmig" 2>/dev/null)" ""

    d=$T/bad2
    jmig "$d" 1 bad '[{"insert": "t", "documents": [{"a": {"$type": "date"}}]}]'
    o=$(SOURCE_DATE_EPOCH=$EPOCH "$BUNDLE" build "$d" --name app --version 1.0.0 --key "$KEY_SEC" \
        --output "$T/bundles/bad2.cmig" -q 2>&1)
    is "build: \$type as the first key is refused (libbson)" "$?" 3
    expect_contains "build: libbson's message for \$type" "$o" 'Missing "$binary" after "$type"'

    d=$T/bad3
    jmig "$d" 1 obj '{"insert": "t", "documents": [{"_id": 1}]}'
    o=$(SOURCE_DATE_EPOCH=$EPOCH "$BUNDLE" build "$d" --name app --version 1.0.0 --key "$KEY_SEC" \
        --output "$T/bundles/bad3.cmig" -q 2>&1)
    is "build: a top-level object is refused" "$?" 3
    expect_contains "build: it says an array is needed" "$o" "must be a JSON array of database commands"

    d=$T/bad4
    jmig "$d" 1 two '[{"ping": 1}] [{"ping": 1}]'
    o=$(SOURCE_DATE_EPOCH=$EPOCH "$BUNDLE" build "$d" --name app --version 1.0.0 --key "$KEY_SEC" \
        --output "$T/bundles/bad4.cmig" -q 2>&1)
    is "build: text after the array is refused" "$?" 3

    d=$T/bad5
    jmig "$d" 1 num '[{"ping": 1},
 42]'
    o=$(SOURCE_DATE_EPOCH=$EPOCH "$BUNDLE" build "$d" --name app --version 1.0.0 --key "$KEY_SEC" \
        --output "$T/bundles/bad5.cmig" -q 2>&1)
    is "build: a command that is not an object is refused" "$?" 3
    expect_contains "build: it names the element" "$o" "line 2, column 2: command at index 1 is a number"

    d=$T/bad6
    jmig "$d" 1 down_bad '[{"ping": 1}]' '[{"ping": 1},]'
    o=$(SOURCE_DATE_EPOCH=$EPOCH "$BUNDLE" build "$d" --name app --version 1.0.0 --key "$KEY_SEC" \
        --output "$T/bundles/bad6.cmig" -q 2>&1)
    is "build: a malformed down file is refused too" "$?" 3
    expect_contains "build: it names the down file" "$o" "'1_down_bad.down.json'"

    # At run time: a bundle from elsewhere whose file does not parse (made
    # by hand here: built unsigned, the file swapped, the manifest updated,
    # then signed).
    d=$T/rt
    jmig "$d" 1 a '[{"insert": "t", "documents": [{"_id": 1}]}]'
    SOURCE_DATE_EPOCH=$EPOCH "$BUNDLE" build "$d" --name app --version 1.0.0 --unsigned \
        --output "$T/rt.cmig" -q >>"$ALL_OUT" 2>&1 || { not_ok "build the unsigned bundle"; return; }
    mkdir -p "$T/rtx"
    (
        cd "$T/rtx" && tar -xzf "$T/rt.cmig" &&
            printf '[\n  {"insert": "t", "documents": [{"_id": 1}]},\n  {"bad": }\n]\n' \
                >migrations/1_a.up.json &&
            sqlite3 manifest.db "UPDATE migration SET up_size = $(stat -c %s migrations/1_a.up.json),
                up_sha256 = '$(sha256sum migrations/1_a.up.json | cut -c1-64)'" &&
            tar --format=ustar --owner=0 --group=0 --numeric-owner --mtime=@$EPOCH -czf \
                "$T/bundles/rt-bad.cmig" manifest.db migrations/1_a.up.json
    ) && "$BUNDLE" sign "$T/bundles/rt-bad.cmig" --key "$KEY_SEC" >>"$ALL_OUT" 2>&1 ||
        { not_ok "make a signed bundle with malformed JSON"; return; }
    use J runtime_parse
    BUN=$T/bundles/rt-bad.cmig
    x 1 "run time: malformed JSON fails the migration" up
    expect_contains "run time: the file, line and column" "$OUT" "migration 1 'a' (1_a.up.json:3:11)"
    expect_contains "run time: libbson's message" "$OUT" "Got parse error at"
    is "run time: nothing ran" "$(count t)" 0
    is "run time: nothing is dirty (nothing was recorded)" "$(count cmig_history)" 0
    is "run time: status" "$(states)" "1:pending"
}

# ---------------------------------------------------------------------------
# DDL on CongoDB: what jongodb does not implement.
scn_ddl() {
    local d=$T/ddl
    use C ddl
    jmig "$d" 1 accounts '[
  {"create": "accounts"},
  {"createIndexes": "accounts", "indexes": [
    {"key": {"email": 1}, "name": "accounts_email", "unique": true}
  ]},
  {"insert": "accounts", "documents": [{"email": "x@example.com", "plan": "free"}]},
  {"collMod": "accounts", "validationLevel": "off"},
  {"aggregate": "accounts", "pipeline": [{"$match": {"plan": "free"}}], "cursor": {}}
]' '[{"drop": "accounts"}]'
    jmig "$d" 2 rename "[
  {\"create\": \"tmp_old\"},
  {\"insert\": \"tmp_old\", \"documents\": [{\"v\": 1}]},
  {\"renameCollection\": \"$DB_NAME.tmp_old\", \"to\": \"$DB_NAME.tmp_new\"}
]" '[{"drop": "tmp_new"}]'
    jmig "$d" 3 scratch '[
  {"create": "scratch"},
  {"dropIndexes": "accounts", "index": "accounts_email"},
  {"drop": "scratch"}
]' '[{"createIndexes": "accounts", "indexes": [{"key": {"email": 1}, "name": "accounts_email"}]}]'
    bundle_build "$d" app 1.0.0 "$T/bundles/ddl.cmig" || return
    BUN=$T/bundles/ddl.cmig
    x 0 "DDL: create, createIndexes, collMod, aggregate, renameCollection, dropIndexes, drop" up
    is "DDL: status" "$(states)" "1:applied 2:applied 3:applied"
    local cols
    cols=$(collections)
    expect_contains "DDL: accounts exists" ",$cols," ",accounts,"
    expect_contains "DDL: renameCollection (run on admin) made tmp_new" ",$cols," ",tmp_new,"
    expect_not_contains "DDL: tmp_old is gone" ",$cols," ",tmp_old,"
    expect_not_contains "DDL: scratch was dropped" ",$cols," ",scratch,"
    is "DDL: dropIndexes removed the index" \
        "$(q '{"listIndexes": "accounts"}' | jq -r '[.cursor.firstBatch[].name] | index("accounts_email")')" null
    is "DDL: the history is readable on this server too" "$(count cmig_history)" 3
    x 0 "DDL: second run is a no-op" up
    expect_contains "DDL: second run says nothing to do" "$OUT" "nothing to do"
    x 0 "DDL: down --to 0" down --to 0
    cols=$(collections)
    expect_not_contains "DDL down: accounts dropped" ",$cols," ",accounts,"
    expect_not_contains "DDL down: tmp_new dropped" ",$cols," ",tmp_new,"
    is "DDL down: status" "$(states)" "1:pending 2:pending 3:pending"
}

# ---------------------------------------------------------------------------
# Exactly once: $RUNNERS runners at the same instant, round after round.
round() {
    local r=$1 i pids=() rcs="" bad="" got applied
    rm -rf "$T/out" && mkdir -p "$T/out"
    exec 8>"$T/gate"
    flock -x 8
    for i in $(seq 1 "$RUNNERS"); do
        (flock -s 9 && exec "$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --database "$DB" \
            --lock-timeout 120s up) 9<"$T/gate" 8>&- >"$T/out/$i" 2>&1 &
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
    [ "$rcs" = "$(printf '0%.0s' $(seq 1 "$RUNNERS"))" ] ||
        bad="$bad exit statuses $rcs ($(grep -h 'error' "$T/out"/* | head -3));"
    got=$(count cmig_history)
    [ "$got" = "$((r + 1))" ] || bad="$bad history has $got documents, expected $((r + 1));"
    got=$(count side)
    [ "$got" = "$r" ] || bad="$bad side has $got documents, expected $r;"
    applied=$(cat "$T/out"/* | grep -c "applied migration")
    if [ "$r" = 1 ]; then got=2; else got=1; fi
    [ "$applied" = "$got" ] || bad="$bad $applied 'applied migration' lines, expected $got;"
    if [ -z "$bad" ]; then
        ok "round $r: $RUNNERS runners exit 0, each migration applied exactly once"
    else
        not_ok "round $r: $RUNNERS runners exit 0, each migration applied exactly once" "$bad"
    fi
}

scn_concurrency() {
    local dir=$T/conc r v t0
    use N conc
    # Each migration increments a counter too: a second application would
    # show there even if an insert's duplicate _id did not stop it.
    jmig "$dir" 1 start '[{"insert": "meta", "documents": [{"_id": "runs", "n": 0}]}]'
    t0=$(now_ms)
    for r in $(seq 1 "$ROUNDS"); do
        v=$((r + 1))
        jmig "$dir" "$v" "side_$v" "[
  {\"update\": \"meta\", \"updates\": [{\"q\": {\"_id\": \"runs\"}, \"u\": {\"\$inc\": {\"n\": 1}}}]},
  {\"insert\": \"side\", \"documents\": [{\"_id\": $v}]}
]"
        BUN=$T/bundles/conc-$r.cmig
        bundle_build "$dir" app "1.$r.0" "$BUN" || return
        round "$r"
    done
    is "concurrency: every migration's increment happened once" \
        "$(docs meta | jq -c '.[0].n')" "$ROUNDS"
    is "concurrency: no lock document is left" "$(count cmig_locks)" 0
    echo "# $ROUNDS rounds of $RUNNERS runners in $(elapsed_ms "$t0") ms"
}

# ---------------------------------------------------------------------------
scn_lock() {
    local d=$T/lockb id t0 ms
    use J lock
    id=$(lock_id app)
    BUN=$BASE_BUN
    # A holder that crashed: its lease (500 ms, by its own clock) expired.
    q "{\"insert\": \"cmig_locks\", \"documents\": [{\"_id\": {\"\$oid\": \"$id\"}, \"bundle\": \"app\",
        \"owner\": \"dead\", \"host\": \"ghost-host\", \"pid\": 4242, \"token\": \"t0\",
        \"lease_ms\": 500, \"clock\": \"runner\",
        \"expires_at\": {\"\$date\": \"2001-01-01T00:00:00Z\"}}]}" >/dev/null
    t0=$(now_ms)
    x 0 "a crashed holder's lock is taken over once its lease expired" up --lock-timeout 20s
    ms=$(elapsed_ms "$t0")
    expect_contains "the takeover is logged with the old holder" "$OUT" \
        "from host 'ghost-host', pid 4242, whose lease expired"
    if [ "$ms" -ge 500 ] && [ "$ms" -lt 10000 ]; then
        ok "the takeover waited for the lease ($ms ms)"
    else
        not_ok "the takeover waited for the lease" "$ms ms"
    fi
    is "after the takeover everything is applied" "$(states)" "1:applied 2:applied 3:applied"
    is "the lock document is released" "$(count cmig_locks)" 0

    # A live holder (its token keeps changing) is never taken over; a
    # holder that stopped renewing a long lease is waited for until
    # --lock-timeout.
    use J lock2
    q "{\"insert\": \"cmig_locks\", \"documents\": [{\"_id\": {\"\$oid\": \"$id\"}, \"bundle\": \"app\",
        \"owner\": \"alive\", \"host\": \"busy-host\", \"pid\": 7, \"token\": \"t1\",
        \"lease_ms\": 60000, \"clock\": \"runner\",
        \"expires_at\": {\"\$date\": \"2001-01-01T00:00:00Z\"}}]}" >/dev/null
    t0=$(now_ms)
    x 5 "a held lock times out with exit 5" up --lock-timeout 1s
    ms=$(elapsed_ms "$t0")
    expect_contains "the timeout names the holder" "$OUT" "held by host 'busy-host', pid 7"
    if [ "$ms" -lt 5000 ]; then ok "--lock-timeout 1s is honoured ($ms ms)"; else
        not_ok "--lock-timeout 1s is honoured" "$ms ms"; fi
    is "the waiter changed nothing" "$(count cmig_history)" 0
    is "the holder's document is untouched" "$(docs cmig_locks | jq -r '.[0].owner')" alive

    # By the server's clock (CongoDB and MongoDB report it in hello; jongodb
    # does not): an expiry in the past is taken over at once, without
    # waiting out the (hour-long) lease; one in the future is not.
    jmig "$T/lockc" 1 one '[{"insert": "c", "documents": [{"_id": {"$oid": "65a1b2c3d4e5f60718293a4c"}}]}]'
    bundle_build "$T/lockc" app 1.0.0 "$T/bundles/lockc.cmig" || return
    BUN=$T/bundles/lockc.cmig
    use C lock3
    q "{\"insert\": \"cmig_locks\", \"documents\": [{\"_id\": {\"\$oid\": \"$id\"}, \"bundle\": \"app\",
        \"owner\": \"dead\", \"host\": \"ghost-host\", \"pid\": 4243, \"token\": \"t2\",
        \"lease_ms\": 3600000, \"clock\": \"server\",
        \"expires_at\": {\"\$date\": \"2001-01-01T00:00:00Z\"}}]}" >/dev/null
    t0=$(now_ms)
    x 0 "server clock: an expired lease is taken over at once" up --lock-timeout 20s
    ms=$(elapsed_ms "$t0")
    expect_contains "server clock: the takeover is logged" "$OUT" "pid 4243, whose lease expired"
    if [ "$ms" -lt 5000 ]; then ok "server clock: no lease was waited out ($ms ms)"; else
        not_ok "server clock: no lease was waited out" "$ms ms"; fi
    use C lock4
    q "{\"insert\": \"cmig_locks\", \"documents\": [{\"_id\": {\"\$oid\": \"$id\"}, \"bundle\": \"app\",
        \"owner\": \"alive\", \"host\": \"busy-host\", \"pid\": 8, \"token\": \"t3\",
        \"lease_ms\": 3600000, \"clock\": \"server\",
        \"expires_at\": {\"\$date\": \"2100-01-01T00:00:00Z\"}}]}" >/dev/null
    x 5 "server clock: a lease that has not expired is not taken over" up --lock-timeout 1s

    # kill -9 of a real holder in the middle of a migration.
    use N killed
    local k=$T/killed i p
    # Many small commands on one document: long enough to be killed in
    # the middle, and a count that tells how many ran.
    jmig "$k" 1 slow "$(
        printf '['
        for i in $(seq 1 3000); do
            [ "$i" -gt 1 ] && printf ','
            printf '{"update": "slow", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}, "upsert": true}]}\n'
        done
        printf ']'
    )"
    bundle_build "$k" app 1.0.0 "$T/bundles/killed.cmig" || return
    BUN=$T/bundles/killed.cmig
    CMIG_MONGODB_LEASE_MS=1000 "$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --database "$DB" \
        -v up >"$T/holder.out" 2>&1 &
    p=$!
    BG_PIDS+=("$p")
    # Killed once the migration is recorded as started (dirty).
    for i in $(seq 1 1000); do
        [ "$(count cmig_history '{"dirty": true}')" = 1 ] && break
        kill -0 "$p" 2>/dev/null || break
        sleep 0.01
    done
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    cat "$T/holder.out" >>"$ALL_OUT"
    is "the holder's lock document has the documented _id" \
        "$(docs cmig_locks | jq -r '.[0]._id["$oid"]')" "$id"
    is "the holder was killed in the middle of the migration" \
        "$(docs cmig_history | jq -r '.[0].dirty')" true
    t0=$(now_ms)
    x 6 "the next runner takes the lock over, then refuses the dirty migration" up --lock-timeout 20s
    ms=$(elapsed_ms "$t0")
    expect_contains "it logged the takeover" "$OUT" "took over the migration lock of bundle 'app'"
    expect_contains "it names the dirty migration" "$OUT" "migration 1 'slow' did not finish"
    echo "# takeover after kill -9 (lease 1000 ms) in $ms ms"
    # SIGTERM in the middle: noticed before the next command, exit 7, the
    # lock released at once, the migration left dirty.
    local db_killed=$DB db_name_killed=$DB_NAME
    DB_NAME=${DBP}term
    DB=$(mongo_url "$DB" "$DB_NAME")
    "$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --database "$DB" up >"$T/term.out" 2>&1 &
    p=$!
    BG_PIDS+=("$p")
    for i in $(seq 1 1000); do
        [ "$(count cmig_history '{"dirty": true}')" = 1 ] && break
        kill -0 "$p" 2>/dev/null || break
        sleep 0.01
    done
    t0=$(now_ms)
    kill -TERM "$p" 2>/dev/null
    wait "$p"
    RC=$?
    ms=$(elapsed_ms "$t0")
    OUT=$(cat "$T/term.out")
    printf '%s\n' "$OUT" >>"$ALL_OUT"
    is "SIGTERM between commands: exit 7" "$RC" 7
    expect_contains "SIGTERM: it says where it stopped" "$OUT" "interrupted before command at index"
    if [ "$ms" -lt 3000 ]; then ok "SIGTERM: it stopped promptly ($ms ms)"; else
        not_ok "SIGTERM: it stopped promptly" "$ms ms"; fi
    is "SIGTERM: the lock was released" "$(count cmig_locks)" 0
    is "SIGTERM: the migration is left dirty" "$(docs cmig_history | jq -r '.[0].dirty')" true
    DB=$db_killed
    DB_NAME=$db_name_killed

    x 0 "force 0 after the crash" force 0
    q '{"delete": "slow", "deletes": [{"q": {}, "limit": 0}]}' >/dev/null
    x 0 "the migration runs again whole" up
    is "every command ran once" "$(docs slow | jq -c '.[0].n')" 3000
}

# ---------------------------------------------------------------------------
scn_wait() {
    local port t0 ms p
    if mongo_real; then
        ok "--wait: skipped against a real server # SKIP"
        return
    fi
    BUN=$BASE_BUN
    port=$(mongo_free_port)
    DB="mongodb://127.0.0.1:$port/${DBP}wait?replicaSet=rs0"
    DB_NAME=${DBP}wait
    t0=$(now_ms)
    "$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --database "$DB" --wait 20s up \
        >"$T/wait.out" 2>&1 &
    p=$!
    BG_PIDS+=("$p")
    sleep 1
    if ! jongodb_start "$port"; then
        not_ok "--wait: start a server late" "jongodb did not start on $port"
        return
    fi
    wait "$p"
    is "--wait: the run succeeds once the server is up" "$?" 0
    OUT=$(cat "$T/wait.out")
    printf '%s\n' "$OUT" >>"$ALL_OUT"
    expect_contains "--wait: it said it was waiting" "$OUT" "is not ready"
    is "--wait: everything applied" "$(states)" "1:applied 2:applied 3:applied"
    jongodb_stop "$JONGODB_PID"

    port=$(mongo_free_port)
    t0=$(now_ms)
    OUT=$("$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --wait 1s \
        --database "mongodb://127.0.0.1:$port/x?replicaSet=rs0" up 2>&1)
    RC=$?
    ms=$(elapsed_ms "$t0")
    printf '%s\n' "$OUT" >>"$ALL_OUT"
    is "--wait 1s with no server: exit 4" "$RC" 4
    if [ "$ms" -ge 900 ] && [ "$ms" -lt 6000 ]; then ok "--wait 1s gives up in time ($ms ms)"; else
        not_ok "--wait 1s gives up in time" "$ms ms"; fi
    expect_contains "the error names the server" "$OUT" "cannot connect to MongoDB at 127.0.0.1:$port/x"
}

# ---------------------------------------------------------------------------
scn_secrets() {
    local canary=Sup3rSecretCanary base
    BUN=$BASE_BUN
    base=$(mongo_url "$CMIG_TEST_MONGO_URL" "${DBP}sec")
    # A password the server refuses (these servers know no users).
    DB=$(url_with "$base" "cmiguser:$canary" "")
    if ! mongo_real; then
        x 4 "secrets: refused credentials exit 4" up --wait 1s -v
    else
        OUT=$(cmr up --wait 1s -v 2>&1)
        printf '%s\n' "$OUT" >>"$ALL_OUT"
    fi
    # URLs libmongoc cannot parse; its own message would quote them.
    DB=$(url_with "$base" "cmiguser:$canary" "connectTimeoutMS=x$canary")
    x 2 "secrets: a bad option value is a usage error" up
    DB="mongodb://cmiguser:$canary@[::1/${DBP}sec"
    x 2 "secrets: a malformed host is a usage error" up
    expect_contains "secrets: the parse error says what is wrong" "$OUT" "invalid MongoDB URL"
    DB=$(url_with "$base" "cmiguser:$canary" "cmigUnknown=$canary")
    OUT=$(cmr up --wait 1s -v 2>&1)
    printf '%s\n' "$OUT" >>"$ALL_OUT"
    expect_contains "secrets: an unknown option is named in a warning" "$OUT" "'cmigunknown'"
    DB=$(url_with "$base" "" "tls=true&tlsCertificateKeyFilePassword=$canary")
    OUT=$(cmr up --wait 1s -v 2>&1)
    printf '%s\n' "$OUT" >>"$ALL_OUT"
    DB=$base
    x 0 "secrets: a plain URL still works" up -v
    no_secret "secrets: the password and key password were never printed" "$canary"
}

scn_fresh
scn_failing
scn_aggregate_out
scn_quick_path
scn_transactions
scn_down_adopt_rollback
scn_tampered
scn_parse_errors
scn_ddl
scn_lock
scn_wait
scn_secrets
scn_concurrency
if mongo_real; then
    for n in fresh failing down adopt runtime_parse ddl lock lock2 lock3 lock4 killed term conc sec; do
        mongo_cmd "$CMIG_TEST_MONGO_URL" "$DBP$n" '{"dropDatabase": 1}' >/dev/null 2>&1
    done
fi
echo "# run_mongo: $(elapsed_ms "$t_start") ms in all"
