# tests/integration/run-scenarios.bash - what cmig-run does to a real
# database, scenario by scenario, for the driver in $DRIVER (sourced by
# run_sqlite.sh and run_postgres.sh after lr_setup; not a suite itself).
#
# Each scenario gets a database of its own. Expected values come from the
# migrations the scenario writes, never from the program's output.

SCN=$T/scn

# SQL that differs between the two databases (set once $DRIVER is known).
scn_init() {
    if [ "$DRIVER" = postgres ]; then
        NO_TX_STMT='CREATE INDEX CONCURRENTLY t1_x_idx ON t1 (x);'
        FALSE=f
    else
        NO_TX_STMT='VACUUM;'
        FALSE=0
    fi
}

# The application every scenario starts from: three migrations, each with
# a down file.
base_dir() {
    local d=$1
    mig "$d" 1 create_t1 'CREATE TABLE t1 (x int);
INSERT INTO t1 VALUES (1);' 'DROP TABLE t1;'
    mig "$d" 2 create_t2 'CREATE TABLE t2 (y int);' 'DROP TABLE t2;'
    mig "$d" 3 create_t3 '-- the third table
CREATE TABLE t3 (z int);' 'DROP TABLE t3;'
}

json_events() { # FILE: the event names of a JSON-lines log, one per line
    jq -r .event "$1" 2>/dev/null
}

# ---------------------------------------------------------------------------
scn_fresh_apply() {
    base_dir "$SCN/base"
    bundle_build "$SCN/base" app 1.0.0 "$T/bundles/app-1.0.0.cmig" || return
    BASE_BUN=$T/bundles/app-1.0.0.cmig
    BUN=$BASE_BUN
    db_new fresh
    x 0 "fresh apply" up
    expect_contains "fresh apply: names each migration applied" "$OUT" "applied migration 3 'create_t3'"
    is "fresh apply: the tables exist" "$(db_has t1)$(db_has t2)$(db_has t3)" 111
    is "fresh apply: migration 1's data is there" "$(db_sql 'SELECT x FROM t1')" 1
    is "fresh apply: status says all applied" "$(states)" "1:applied 2:applied 3:applied"
    is "fresh apply: three history rows" "$(db_hist_count)" 3
    local j
    j=$(cmr status --json 2>>"$ALL_OUT")
    is "status --json: bundle name" "$(jq -r .bundle <<<"$j")" app
    is "status --json: bundle version" "$(jq -r .version <<<"$j")" 1.0.0
    is "status --json: database version recorded" "$(jq -r .database_version <<<"$j")" 1.0.0
    is "status --json: no problem" "$(jq -r .problem <<<"$j")" null
    is "status --json: migration names" "$(jq -r '[.migrations[].name] | join(",")' <<<"$j")" \
        create_t1,create_t2,create_t3

    local before
    before=$(db_hist)
    x 0 "second run" up
    expect_contains "second run: says there is nothing to do" "$OUT" "nothing to do"
    expect_not_contains "second run: applies nothing" "$OUT" "applied migration"
    is "second run: history unchanged" "$(db_hist)" "$before"
    x 0 "plan after everything is applied" plan --exit-code
    x 0 "verify never needs the database" verify --database sqlite:///nonexistent/dir/x.db
}

# ---------------------------------------------------------------------------
scn_to() {
    BUN=$BASE_BUN
    db_new to
    x 0 "up --to 2" up --to 2
    is "up --to 2: tables 1 and 2 only" "$(db_has t1)$(db_has t2)$(db_has t3)" 110
    is "up --to 2: status" "$(states)" "1:applied 2:applied 3:pending"
    x 0 "up --to 2 again is a no-op" up --to 2
    expect_not_contains "up --to 2 again: applies nothing" "$OUT" "applied migration"
    x 0 "up after --to" up
    is "up after --to: the third table" "$(db_has t3)" 1
    is "up after --to: status" "$(states)" "1:applied 2:applied 3:applied"
}

# ---------------------------------------------------------------------------
scn_failing() {
    local d=$SCN/fail
    base_dir "$d"
    mig "$d" 4 broken 'CREATE TABLE f (x int);
INSERT INTO f VALUES (1);
SELECT nosuch_col FROM f;'
    bundle_build "$d" app 1.1.0 "$T/bundles/fail.cmig" || return
    db_new failing
    BUN=$BASE_BUN x 0 "failing: apply 1.0.0 first" up
    local before
    before=$(db_hist)
    BUN=$T/bundles/fail.cmig
    x 1 "a failing migration exits 1" up
    expect_contains "the error names the source file, line and column" "$OUT" "4_broken.up.sql:3:8"
    expect_contains "the error names the migration" "$OUT" "migration 4 'broken'"
    expect_contains "the error carries the database's message" "$OUT" "nosuch_col"
    is "a failing migration prints one error line" "$(grep -c 'error:' <<<"$OUT")" 1
    is "the failed migration was rolled back: no table f" "$(db_has f)" 0
    is "the failed migration left the history unchanged" "$(db_hist)" "$before"
    is "status: the failed migration is pending" "$(states)" \
        "1:applied 2:applied 3:applied 4:pending"
}

# A goose file: the error's line is the line in the original file, not
# in the extracted up section.
scn_goose_position() {
    local d=$SCN/goose
    mkdir -p "$d"
    printf '%s\n' '-- +goose Up' '-- a comment' 'CREATE TABLE g1 (x int);' \
        'SELECT nosuch FROM g1;' '' '-- +goose Down' 'DROP TABLE g1;' >"$d/00001_g.sql"
    bundle_build "$d" goose 1.0.0 "$T/bundles/goose.cmig" --dir-format goose || return
    BUN=$T/bundles/goose.cmig
    db_new goose
    x 1 "a failing goose migration exits 1" up
    expect_contains "the goose error names the line in the original file" "$OUT" "00001_g.sql:4:8"
    is "the failing goose migration was rolled back" "$(db_has g1)" 0
}

# ---------------------------------------------------------------------------
scn_no_transaction() {
    local d=$SCN/notx j
    base_dir "$d"
    mig "$d" 4 no_tx "$NO_TX_STMT"
    bundle_build "$d" app 1.1.0 "$T/bundles/notx.cmig" || return
    j=$("$BUNDLE" inspect --json "$T/bundles/notx.cmig" 2>&1)
    is "the bundle records migration 4 as not transactional" \
        "$(jq -r '.migrations[] | select(.version == 4) | .up.transaction' <<<"$j")" none
    BUN=$T/bundles/notx.cmig
    db_new notx
    local mark
    [ "$DRIVER" = postgres ] && mark=$(pg_log_mark)
    x 0 "an unannotated non-transactional migration applies" up
    if [ "$DRIVER" = postgres ]; then
        # Each request is one log line: the index's must hold no BEGIN.
        local req
        req=$(pg_log_since "$mark" | grep -i 'statement:.*CREATE INDEX CONCURRENTLY')
        if [ -n "$req" ] && ! grep -qiw begin <<<"$req"; then
            ok "CREATE INDEX CONCURRENTLY was sent outside a transaction block"
        else
            not_ok "CREATE INDEX CONCURRENTLY was sent outside a transaction block" "${req:-not in the server log}"
        fi
    fi
    is "status after the non-transactional migration" "$(states)" \
        "1:applied 2:applied 3:applied 4:applied"
    if [ "$DRIVER" = postgres ]; then
        is "the concurrently built index exists and is valid" \
            "$(db_sql "SELECT indisvalid FROM pg_index WHERE indexrelid = 't1_x_idx'::regclass")" t
    fi
    x 0 "no-op after the non-transactional migration" up
    db_new notx_single
    x 2 "--single-transaction refuses a non-transactional migration" up --single-transaction
    expect_contains "the refusal names the migration and why" "$OUT" "4 'no_tx'"
    is "the refused --single-transaction applied nothing" "$(db_hist_count)" 0
}

# ---------------------------------------------------------------------------
scn_comment_only() {
    local d=$SCN/comment
    base_dir "$d"
    mig "$d" 4 nothing '-- intentionally empty: kept for numbering
/* a block comment */'
    bundle_build "$d" app 1.1.0 "$T/bundles/comment.cmig" || return
    BUN=$T/bundles/comment.cmig
    db_new comment
    x 0 "a comment-only migration applies" up
    is "the comment-only migration is recorded" "$(states)" \
        "1:applied 2:applied 3:applied 4:applied"
    x 0 "a comment-only migration: second run" up
    expect_contains "a comment-only migration: second run is a no-op" "$OUT" "nothing to do"
}

# ---------------------------------------------------------------------------
scn_down() {
    BUN=$BASE_BUN
    db_new down
    x 0 "down: apply first" up
    x 2 "down without --to is a usage error" down
    x 0 "down --to 1" down --to 1
    expect_contains "down --to 1: names the reverted migrations" "$OUT" "reverted migration 3 'create_t3'"
    is "down --to 1: tables 2 and 3 dropped" "$(db_has t1)$(db_has t2)$(db_has t3)" 100
    is "down --to 1: their history rows are gone" "$(db_hist_count)" 1
    is "down --to 1: status" "$(states)" "1:applied 2:pending 3:pending"
    x 0 "down --to 1 again: nothing to revert" down --to 1
    x 0 "up after down" up
    is "up after down: status" "$(states)" "1:applied 2:applied 3:applied"
    x 0 "down --to 0 reverts everything" down --to 0
    is "down --to 0: no table left" "$(db_has t1)$(db_has t2)$(db_has t3)" 000
    is "down --to 0: no history row left" "$(db_hist_count)" 0

    local d=$SCN/nodown before
    base_dir "$d"
    rm "$d/3_create_t3.down.sql"
    bundle_build "$d" app2 1.0.0 "$T/bundles/nodown.cmig" || return
    BUN=$T/bundles/nodown.cmig
    db_new nodown
    x 0 "down refusal: apply first" up
    before=$(db_hist)
    x 6 "down refuses when a migration lacks a down file" down --to 1
    expect_contains "the refusal names the migration without a down file" "$OUT" "3 'create_t3'"
    is "the refused down reverted nothing" "$(db_has t2)$(db_has t3)" 11
    is "the refused down left the history unchanged" "$(db_hist)" "$before"
    x 0 "down above the migration without a down file is fine" down --to 3
}

# ---------------------------------------------------------------------------
scn_baseline() {
    BUN=$BASE_BUN
    db_new baseline
    db_sql 'CREATE TABLE t1 (x int); CREATE TABLE t2 (y int);'
    x 0 "baseline 2" baseline 2
    is "baseline: 1 and 2 recorded, 3 pending" "$(states)" "1:applied 2:applied 3:pending"
    is "baseline ran no SQL" "$(db_sql 'SELECT count(*) FROM t1')" 0
    x 0 "up after baseline" up
    expect_not_contains "up after baseline runs only migration 3" "$OUT" "migration 1"
    is "up after baseline: status" "$(states)" "1:applied 2:applied 3:applied"
    x 6 "baseline refuses a database that has history" baseline 3
    x 2 "baseline needs a version" baseline
    db_new baseline2
    x 2 "baseline below the first migration is refused" baseline 0
}

# ---------------------------------------------------------------------------
scn_dirty() {
    local d=$SCN/dirty
    base_dir "$d"
    mig "$d" 4 half '-- cmig:no-transaction
CREATE TABLE d1 (x int);
INSERT INTO missing_table VALUES (1);
CREATE TABLE d2 (x int);'
    mig "$d" 5 after 'CREATE TABLE t5 (x int);'
    bundle_build "$d" app 1.1.0 "$T/bundles/dirty.cmig" || return
    BUN=$T/bundles/dirty.cmig

    db_new dirty
    x 1 "a non-transactional migration failing midway exits 1" up
    expect_contains "the dirty failure names the file, line and statement" "$OUT" \
        "4_half.up.sql:3:"
    is "the statements before the failure stayed" "$(db_has d1)$(db_has d2)" 10
    is "nothing after the failing migration ran" "$(db_has t5)" 0
    x 6 "status of a dirty database exits 6" status
    expect_contains "status says dirty" "$OUT" "dirty"
    is "status --json shows migration 4 dirty" "$(states)" \
        "1:applied 2:applied 3:applied 4:dirty 5:pending"
    x 6 "up refuses a dirty database" up
    expect_contains "the refusal names the dirty migration" "$OUT" "4 'half'"
    expect_contains "the refusal says how to repair" "$OUT" "force"
    x 6 "plan refuses a dirty database too" plan
    x 2 "force above the dirty migration is refused" force 5
    db_sql 'CREATE TABLE d2 (x int);' # the operator completes it by hand
    x 0 "force 4 (completed by hand)" force 4
    is "after force 4: migration 4 applied" "$(states)" \
        "1:applied 2:applied 3:applied 4:applied 5:pending"
    x 0 "up after force recovers" up
    is "up after force: status" "$(states)" "1:applied 2:applied 3:applied 4:applied 5:applied"
    x 2 "force with nothing dirty is refused" force 4

    db_new dirty_undo
    x 1 "dirty again (to undo by hand)" up
    # The operator undoes the migration and fixes its cause.
    db_sql 'DROP TABLE d1; CREATE TABLE missing_table (x int);'
    x 0 "force 3 (undone by hand): the migration is to run again" force 3
    is "after force 3: migration 4 pending" "$(states)" \
        "1:applied 2:applied 3:applied 4:pending 5:pending"
    x 0 "up after force 3 runs migration 4 again" up
    is "migration 4 ran in full" "$(db_has d1)$(db_has d2)$(db_has t5)" 111
}

# ---------------------------------------------------------------------------
scn_golang_migrate() {
    BUN=$BASE_BUN
    db_new gm
    db_sql "CREATE TABLE t1 (x int); CREATE TABLE t2 (y int);
        CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
        INSERT INTO schema_migrations VALUES (2, false);"
    "$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --database "$DB" --log-format json up \
        >"$T/gm.out" 2>"$T/gm.err"
    local rc=$?
    cat "$T/gm.out" "$T/gm.err" >>"$ALL_OUT"
    is "golang-migrate adoption: exit 0" "$rc" 0
    is "golang-migrate adoption logs history.adopted" \
        "$(jq -r 'select(.event == "history.adopted") | .version' "$T/gm.err" 2>&1)" 2
    is "golang-migrate adoption: only migration 3 ran" \
        "$(jq -r 'select(.event == "migration.applied") | .version' "$T/gm.err" 2>&1)" 3
    is "golang-migrate adoption: status" "$(states)" "1:applied 2:applied 3:applied"
    is "golang-migrate adoption: migration 1 did not run again" "$(db_sql 'SELECT count(*) FROM t1')" 0
    is "golang-migrate adoption leaves schema_migrations as it was" \
        "$(db_sql 'SELECT version, dirty FROM schema_migrations')" "2|$FALSE"
    x 0 "golang-migrate adoption: second run is a no-op" up
    expect_contains "golang-migrate adoption: nothing to do" "$OUT" "nothing to do"

    # golang-migrate's table belongs to the first bundle that moved in: a
    # second bundle in the same database must run all of its migrations.
    local d2=$T/gm-second
    mig "$d2" 1 other_one "CREATE TABLE other1 (x int);"
    mig "$d2" 2 other_two "CREATE TABLE other2 (x int);"
    bundle_build "$d2" other 1.0.0 "$T/bundles/other-1.0.0.cmig" || return
    BUN=$T/bundles/other-1.0.0.cmig
    x 0 "a second bundle next to an adopted golang-migrate history" up
    expect_not_contains "the second bundle adopts nothing" "$OUT" "adopted"
    is "the second bundle ran its migrations" "$(db_has other1)$(db_has other2)" 11
    BUN=$BASE_BUN

    db_new gm_dirty
    db_sql "CREATE TABLE t1 (x int); CREATE TABLE t2 (y int);
        CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
        INSERT INTO schema_migrations VALUES (2, true);"
    x 6 "a dirty golang-migrate schema_migrations is refused" up
    expect_contains "the refusal says golang-migrate is dirty" "$OUT" "dirty"
    is "the refused adoption recorded nothing" "$(db_hist_count)" 0
    is "the refused adoption ran nothing" "$(db_has t3)" 0

    db_new gm_keep
    db_sql "CREATE TABLE t1 (x int);
        CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
        INSERT INTO schema_migrations VALUES (1, false);"
    x 0 "--keep-golang-migrate" up --keep-golang-migrate
    is "--keep-golang-migrate: schema_migrations follows" \
        "$(db_sql 'SELECT version, dirty FROM schema_migrations')" "3|$FALSE"
    is "--keep-golang-migrate: status" "$(states)" "1:applied 2:applied 3:applied"
    x 0 "down --to 1 --keep-golang-migrate" down --to 1 --keep-golang-migrate
    is "down --keep-golang-migrate: schema_migrations follows" \
        "$(db_sql 'SELECT version, dirty FROM schema_migrations')" "1|$FALSE"
}

# ---------------------------------------------------------------------------
scn_rollback() {
    local d=$SCN/rb11 before
    base_dir "$d"
    mig "$d" 4 more 'CREATE TABLE t4 (x int);'
    bundle_build "$d" app 1.1.0 "$T/bundles/rb-1.1.0.cmig" || return
    db_new rollback
    BUN=$T/bundles/rb-1.1.0.cmig x 0 "rollback: apply 1.1.0" up
    before=$(db_hist)
    BUN=$BASE_BUN
    "$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --database "$DB" --log-format json up \
        >"$T/rb.out" 2>"$T/rb.err"
    local rc=$?
    cat "$T/rb.out" "$T/rb.err" >>"$ALL_OUT"
    is "an older bundle on a newer database exits 0" "$rc" 0
    is "the older bundle logs run.rollback as a warning" \
        "$(jq -r 'select(.event == "run.rollback") | .level' "$T/rb.err" 2>&1)" warning
    is "the older bundle changes nothing" "$(db_hist)" "$before"
    is "the older bundle dropped nothing" "$(db_has t4)" 1
    x 0 "the older bundle in text form" up
    expect_contains "the older bundle: a warning in text form" "$OUT" "warning:"
    x 6 "the older bundle with --strict exits 6" up --strict
    is "--strict changed nothing" "$(db_hist)" "$before"
    x 0 "plan with the older bundle" plan --exit-code
    x 0 "status with the older bundle" status

    # A newer release with no new migration: nothing runs, its version is
    # recorded, and the previous release is then the older one.
    bundle_build "$d" app 1.2.0 "$T/bundles/rb-1.2.0.cmig" || return
    BUN=$T/bundles/rb-1.2.0.cmig x 0 "a newer release without new migrations" up
    expect_not_contains "a newer release without new migrations: applies nothing" "$OUT" \
        "applied migration"
    is "a newer release without new migrations: its version is recorded" \
        "$(BUN=$T/bundles/rb-1.2.0.cmig cmr status --json 2>/dev/null | jq -r .database_version)" 1.2.0
    BUN=$T/bundles/rb-1.1.0.cmig x 0 "1.1.0 after 1.2.0 is a rollback no-op" up
    expect_contains "1.1.0 after 1.2.0: a warning" "$OUT" "warning:"
}

# ---------------------------------------------------------------------------
scn_drift() {
    local d=$SCN/drift before
    base_dir "$d"
    printf '%s\n' 'CREATE TABLE t2 (y int, edited int);' >"$d/2_create_t2.up.sql"
    mig "$d" 4 more 'CREATE TABLE t4 (x int);'
    bundle_build "$d" app 1.1.0 "$T/bundles/drift.cmig" || return
    db_new drift
    BUN=$BASE_BUN x 0 "drift: apply 1.0.0" up
    before=$(db_hist)
    BUN=$T/bundles/drift.cmig
    x 6 "a bundle whose applied migration changed is refused" up
    expect_contains "the drift refusal lists the version" "$OUT" "2 'create_t2'"
    local h_db h_b
    h_db=$(sha256sum <"$SCN/base/2_create_t2.up.sql" | cut -c1-12)
    h_b=$(sha256sum <"$d/2_create_t2.up.sql" | cut -c1-12)
    expect_contains "the drift refusal shows the applied file's hash" "$OUT" "$h_db"
    expect_contains "the drift refusal shows the bundle's hash" "$OUT" "$h_b"
    expect_contains "the drift refusal says it changed" "$OUT" "changed"
    is "drift: nothing applied" "$(db_has t4)" 0
    is "drift: history unchanged" "$(db_hist)" "$before"
    x 6 "status shows drift with exit 6" status
    is "status --json: the changed migration" "$(states)" \
        "1:applied 2:changed 3:applied 4:pending"
}

# ---------------------------------------------------------------------------
scn_out_of_order() {
    local a=$SCN/ooo-a b=$SCN/ooo-b before
    mig "$a" 1 one 'CREATE TABLE o1 (x int);'
    mig "$a" 3 three 'CREATE TABLE o3 (x int);'
    cp -r "$a" "$b"
    mig "$b" 2 two 'CREATE TABLE o2 (x int);'
    mig "$b" 4 four 'CREATE TABLE o4 (x int);'
    bundle_build "$a" ooo 1.0.0 "$T/bundles/ooo-1.0.0.cmig" &&
        bundle_build "$b" ooo 1.1.0 "$T/bundles/ooo-1.1.0.cmig" || return
    db_new ooo
    BUN=$T/bundles/ooo-1.0.0.cmig x 0 "out of order: apply 1 and 3" up
    before=$(db_hist)
    BUN=$T/bundles/ooo-1.1.0.cmig
    x 6 "a pending migration below the highest applied one is refused" up
    expect_contains "the out-of-order refusal lists the version" "$OUT" "2 'two'"
    expect_contains "the out-of-order refusal says so" "$OUT" "out of order"
    is "out of order: nothing applied" "$(db_has o2)$(db_has o4)" 00
    is "out of order: history unchanged" "$(db_hist)" "$before"

    # A newer release that lost an applied migration.
    local c=$SCN/ooo-c
    mig "$c" 1 one 'CREATE TABLE o1 (x int);'
    bundle_build "$c" ooo 1.2.0 "$T/bundles/ooo-1.2.0.cmig" || return
    BUN=$T/bundles/ooo-1.2.0.cmig
    x 6 "a bundle missing an applied migration is refused" up
    expect_contains "the refusal lists the unknown migration" "$OUT" "3 'three'"
    x 6 "status shows the unknown migration with exit 6" status
    expect_contains "status lists the unknown migration" "$OUT" "unknown"
    is "unknown migration: history unchanged" "$(db_hist)" "$before"
}

# ---------------------------------------------------------------------------
scn_same_version() {
    local before
    bundle_build "$SCN/base" app 1.0.0 "$T/bundles/app-1.0.0-rebuilt.cmig" \
        --source-revision rebuilt || return
    db_new samever
    BUN=$BASE_BUN x 0 "same version: apply 1.0.0" up
    before=$(db_hist)
    BUN=$T/bundles/app-1.0.0-rebuilt.cmig
    x 6 "the same version from a different manifest is refused" up
    expect_contains "the refusal names the version" "$OUT" "1.0.0"
    expect_contains "the refusal says the manifest differs" "$OUT" "different manifest"
    is "same version: history unchanged" "$(db_hist)" "$before"
}

# ---------------------------------------------------------------------------
# Refused bundles: exit 3, and the database is never contacted.
refused_no_contact() { # DESC ARGS...: exit 3, no connection attempt
    local desc=$1 mark
    shift
    if [ "$DRIVER" = sqlite ]; then
        DB=sqlite://$T/db/never-created.db
        x 3 "$desc: exit 3" "$@"
        if [ -e "$T/db/never-created.db" ]; then
            not_ok "$desc: the database file was not created" "it exists"
        else
            ok "$desc: the database file was not created"
        fi
    else
        mark=$(pg_log_mark)
        DB=$(pg_url refused)
        x 3 "$desc: exit 3" "$@"
        if pg_log_since "$mark" | grep -q "connection received"; then
            not_ok "$desc: no connection reached the server" "$(pg_log_since "$mark" | head -5)"
        else
            ok "$desc: no connection reached the server"
        fi
        DB=$(pg_url no_such_database)
        x 3 "$desc: exit 3 with a database that does not exist" "$@"
        expect_not_contains "$desc: the error is the bundle's, not the database's" "$OUT" \
            "no_such_database"
    fi
}

scn_refused() {
    [ "$DRIVER" = postgres ] && db_new refused
    cp "$BASE_BUN" "$T/bundles/tampered.cmig"
    cp "$BASE_BUN.minisig" "$T/bundles/tampered.cmig.minisig"
    local size
    size=$(stat -c %s "$T/bundles/tampered.cmig")
    printf 'X' | dd of="$T/bundles/tampered.cmig" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
    BUN=$T/bundles/tampered.cmig refused_no_contact "a tampered bundle"
    expect_contains "a tampered bundle: the error is a verification error" "$OUT" "error"

    BUN=$BASE_BUN TRUST=$OTHER_PUB refused_no_contact "a bundle signed by an untrusted key"

    bundle_build "$SCN/base" app 1.0.0 "$T/bundles/unsigned.cmig" --unsigned || return
    BUN=$T/bundles/unsigned.cmig refused_no_contact "an unsigned bundle"
    BUN=$T/bundles/unsigned.cmig refused_no_contact "an unsigned bundle (status)" status
    BUN=$T/bundles/tampered.cmig refused_no_contact "a tampered bundle (plan)" plan
    BUN=$T/bundles/tampered.cmig refused_no_contact "a tampered bundle (down)" down --to 0
    BUN=$T/bundles/tampered.cmig refused_no_contact "a tampered bundle (force)" force 1
    BUN=$T/bundles/tampered.cmig refused_no_contact "a tampered bundle (baseline)" baseline 1
    DB=sqlite://$T/db/never-created.db BUN=$BASE_BUN \
        x 2 "--insecure-skip-verify once is refused" up --insecure-skip-verify
    BUN=$T/bundles/tampered.cmig x 3 "verify refuses the tampered bundle" verify
}

# ---------------------------------------------------------------------------
# Two bundles side by side in one database, with the same version numbers.
scn_two_bundles() {
    local d=$SCN/other
    mig "$d" 1 other1 'CREATE TABLE other1 (x int);' 'DROP TABLE other1;'
    mig "$d" 2 other2 'CREATE TABLE other2 (x int);' 'DROP TABLE other2;'
    bundle_build "$d" other 3.0.0 "$T/bundles/other.cmig" || return
    db_new two
    BUN=$BASE_BUN x 0 "two bundles: apply the first" up
    BUN=$T/bundles/other.cmig x 0 "two bundles: the second is not refused for the first's rows" up
    is "two bundles: the second applied its own" "$(db_has other1)$(db_has other2)" 11
    is "two bundles: the first's status" "$(BUN=$BASE_BUN states)" "1:applied 2:applied 3:applied"
    is "two bundles: the second's status" "$(BUN=$T/bundles/other.cmig states)" "1:applied 2:applied"
    BUN=$BASE_BUN x 0 "two bundles: the first is a no-op" up
    expect_contains "two bundles: the first has nothing to do" "$OUT" "nothing to do"
    BUN=$T/bundles/other.cmig x 0 "two bundles: down --to 0 of the second" down --to 0
    is "two bundles: the second's tables are gone" "$(db_has other1)$(db_has other2)" 00
    is "two bundles: the first is untouched" "$(BUN=$BASE_BUN states)" "1:applied 2:applied 3:applied"
}

# ---------------------------------------------------------------------------
scn_single_tx() {
    local d=$SCN/single
    mig "$d" 1 s1 'CREATE TABLE s1 (x int);'
    mig "$d" 2 s2 'CREATE TABLE s2 (x int);'
    mig "$d" 3 s3 'CREATE TABLE s3 (x int);
INSERT INTO no_such_table VALUES (1);'
    bundle_build "$d" single 1.0.0 "$T/bundles/single.cmig" || return
    BUN=$T/bundles/single.cmig
    db_new single
    x 1 "--single-transaction with a failing third migration exits 1" up --single-transaction
    expect_contains "--single-transaction: the error names the third migration" "$OUT" \
        "3_s3.up.sql:2:"
    expect_not_contains "--single-transaction: no migration is logged as applied" "$OUT" \
        "applied migration"
    is "--single-transaction: no table was created" "$(db_has s1)$(db_has s2)$(db_has s3)" 000
    is "--single-transaction: no history row" "$(db_hist_count)" 0
    is "--single-transaction: all pending" "$(states)" "1:pending 2:pending 3:pending"
    x 1 "without --single-transaction the first two apply" up
    is "without --single-transaction: status" "$(states)" "1:applied 2:applied 3:pending"

    BUN=$BASE_BUN
    db_new single_ok
    CMIG_SINGLE_TRANSACTION=1 x 0 "CMIG_SINGLE_TRANSACTION=1 applies all" up
    is "--single-transaction: each migration logged as applied after the commit" \
        "$(grep -c "applied migration" <<<"$OUT")" 3
    is "--single-transaction success: status" "$(states)" "1:applied 2:applied 3:applied"
}

# ---------------------------------------------------------------------------
scn_plan_status() {
    BUN=$BASE_BUN
    db_new plan
    x 10 "plan --exit-code with pending migrations exits 10" plan --exit-code
    x 0 "plan without --exit-code exits 0" plan
    expect_contains "plan lists the pending migrations" "$OUT" "create_t2"
    local j
    j=$(cmr plan --json 2>>"$ALL_OUT")
    printf '%s\n' "$j" >>"$ALL_OUT"
    is "plan --json: pending versions" "$(jq -r '[.pending[].version] | join(",")' <<<"$j" 2>&1)" 1,2,3
    is "plan --json: bundle" "$(jq -r '.bundle + " " + .version' <<<"$j" 2>&1)" "app 1.0.0"
    is "plan --json: transaction mode" "$(jq -r '.pending[0].transaction' <<<"$j" 2>&1)" transaction
    is "plan changed nothing" "$(db_has cmig_history)$(db_has t1)" 00
    j=$(cmr status --json 2>>"$ALL_OUT")
    is "status --json before anything: all pending" \
        "$(jq -r '[.migrations[].state] | join(",")' <<<"$j" 2>&1)" pending,pending,pending
    is "status --json before anything: no database version" \
        "$(jq -r .database_version <<<"$j" 2>&1)" null
    x 0 "plan --to 1 --exit-code" plan --to 1 --json
    is "plan --to 1: one pending" "$(jq -r '.pending | length' <<<"$OUT" 2>&1)" 1
    x 0 "apply after plan" up
    x 0 "plan --exit-code with nothing pending exits 0" plan --exit-code
    j=$(cmr plan --json 2>>"$ALL_OUT")
    is "plan --json with nothing pending" "$(jq -r '.pending | length' <<<"$j" 2>&1)" 0
    x 0 "status in text" status
    expect_contains "status text lists the migrations" "$OUT" "create_t3"
}

# ---------------------------------------------------------------------------
scn_json_logs() {
    BUN=$BASE_BUN
    db_new jsonlog
    "$RUN" --bundle "$BUN" --trusted-key "$KEY_PUB" --database "$DB" --log-format json -v up \
        >"$T/jl.out" 2>"$T/jl.err"
    local rc=$? bad=0 line
    cat "$T/jl.out" "$T/jl.err" >>"$ALL_OUT"
    is "--log-format json: exit 0" "$rc" 0
    while IFS= read -r line; do
        jq -e 'type == "object" and has("ts") and has("level") and has("event") and has("msg")' \
            <<<"$line" >/dev/null 2>&1 || { bad=1; not_ok "a JSON log line parses" "$line"; }
    done <"$T/jl.err"
    [ $bad = 0 ] && [ -s "$T/jl.err" ] && ok "every JSON log line parses with jq"
    is "JSON logs: migration.applied per migration" \
        "$(jq -r 'select(.event == "migration.applied") | .version' "$T/jl.err" | tr '\n' ' ')" "1 2 3 "
    is "JSON logs: run.finished with the count" \
        "$(jq -r 'select(.event == "run.finished") | .applied' "$T/jl.err" 2>&1)" 3
    is "JSON logs: -v adds db.connected" \
        "$(jq -r 'select(.event == "db.connected") | .event' "$T/jl.err" 2>&1)" db.connected
    is "JSON logs: stdout stays empty" "$(cat "$T/jl.out")" ""

    # A failure, and a migration name a log line must not be broken by.
    local d=$SCN/jsonfail
    mig "$d" 1 'quote"back\slash' 'SELECT nosuch FROM nowhere;'
    bundle_build "$d" jf 1.0.0 "$T/bundles/jf.cmig" || return
    BUN=$T/bundles/jf.cmig
    CMIG_LOG_FORMAT=json cmr up >"$T/jf.out" 2>"$T/jf.err"
    rc=$?
    cat "$T/jf.out" "$T/jf.err" >>"$ALL_OUT"
    is "JSON logs of a failure: exit 1" "$rc" 1
    bad=0
    while IFS= read -r line; do
        jq -e . <<<"$line" >/dev/null 2>&1 || { bad=1; not_ok "a JSON failure line parses" "$line"; }
    done <"$T/jf.err"
    [ $bad = 0 ] && ok "every JSON failure line parses with jq"
    is "JSON logs: migration.failed names the migration" \
        "$(jq -r 'select(.event == "migration.failed") | .name' "$T/jf.err" 2>&1)" 'quote"back\slash'
    is "JSON logs: the error line has level error" \
        "$(jq -r 'select(.event == "run.failed") | .level' "$T/jf.err" 2>&1)" error
}

# ---------------------------------------------------------------------------
scn_env() {
    BUN=$BASE_BUN
    db_new envdb
    printf '%s\n' "$DB" >"$T/url-file"
    CMIG_DATABASE_URL_FILE=$T/url-file CMIG_BUNDLE=$BASE_BUN CMIG_TRUSTED_KEYS=$KEY_PUB \
        expect_exit 0 "CMIG_DATABASE_URL_FILE, CMIG_BUNDLE and CMIG_TRUSTED_KEYS" "$RUN" up
    printf '%s\n' "$OUT" >>"$ALL_OUT"
    is "CMIG_DATABASE_URL_FILE: applied" "$(states)" "1:applied 2:applied 3:applied"
    CMIG_DATABASE_URL_FILE=$T/no-such-file CMIG_BUNDLE=$BASE_BUN CMIG_TRUSTED_KEYS=$KEY_PUB \
        expect_exit 2 "a missing CMIG_DATABASE_URL_FILE is a usage error" "$RUN" up
    expect_exit 2 "no database at all is a usage error" "$RUN" --bundle "$BASE_BUN" \
        --trusted-key "$KEY_PUB" up
    if [ "$DRIVER" = sqlite ]; then
        (cd "$T/db" && "$RUN" --bundle "$BASE_BUN" --trusted-key "$KEY_PUB" \
            --database sqlite:relative.db up) >>"$ALL_OUT" 2>&1
        is "a relative sqlite: path is relative to the working directory" \
            "$(sqlite3 "$T/db/relative.db" 'SELECT count(*) FROM cmig_history')" 3
    fi
}

# ---------------------------------------------------------------------------
scn_termination_log() {
    BUN=$T/bundles/fail.cmig
    db_new term
    : >"$T/term.log"
    x 1 "--termination-log: a failing run" up --termination-log "$T/term.log"
    local t
    t=$(cat "$T/term.log")
    expect_contains "the termination log gets the summary" "$t" "cmig-run:"
    expect_contains "the termination log names the failed migration" "$t" "4_broken.up.sql"
    is "the termination log is one line" "$(wc -l <"$T/term.log")" 1
    : >"$T/term2.log"
    BUN=$BASE_BUN
    db_new term_ok
    CMIG_TERMINATION_LOG=$T/term2.log x 0 "CMIG_TERMINATION_LOG: a successful run" up
    is "a successful run leaves the termination log empty" "$(cat "$T/term2.log")" ""
    BUN=$T/bundles/tampered.cmig x 3 "--termination-log: a refused bundle" up \
        --termination-log "$T/term2.log"
    expect_contains "the termination log gets the refusal" "$(cat "$T/term2.log")" "cmig-run:"
    BUN=$T/bundles/fail.cmig
    db_new term_nofile
    x 1 "--termination-log naming a missing file" up --termination-log "$T/not-there.log"
    [ -e "$T/not-there.log" ] && not_ok "the termination log is never created" ||
        ok "the termination log is never created"
}

# ---------------------------------------------------------------------------
# Files larger than the runner holds whole (1 MiB): they reach the database
# as a stream of statements out of a compressed private copy. big_sql N
# TABLE [FAIL_AT]: N INSERT statements of five rows each of 400 hex digits
# (random, so that the bundle stays large when compressed), after a CREATE
# TABLE; with FAIL_AT, the statement on that line (>= 2) selects a column
# that does not exist.
big_sql() {
    awk -v n="$1" -v t="$2" -v fail="${3:-0}" 'BEGIN {
        srand(n + length(t)); line = 1
        printf "CREATE TABLE %s (id integer, v text);\n", t
        for (i = 0; i < n; i++) {
            line++
            if (line == fail) { print "SELECT nosuch_col FROM " t ";"; continue }
            printf "INSERT INTO %s VALUES ", t
            for (r = 0; r < 5; r++) {
                h = ""
                for (k = 0; k < 50; k++) h = h sprintf("%08x", int(rand() * 4294967296))
                printf "%s(%d, \047%s\047)", r ? ", " : "", i * 5 + r, h
            }
            print ";"
        }
    }'
}

scn_large_files() {
    local d=$SCN/large
    base_dir "$d"
    big_sql 4000 big >"$d/5_big_seed.up.sql"
    bundle_build "$d" app 1.1.0 "$T/bundles/large.cmig" || return
    local size
    size=$(stat -c %s "$T/bundles/large.cmig")
    if [ "$size" -gt $((1024 * 1024)) ]; then ok "large: the bundle is read from disk (over 1 MiB)"
    else not_ok "large: the bundle is read from disk (over 1 MiB)" "$size bytes"; fi
    BUN=$T/bundles/large.cmig
    db_new large
    x 0 "large: an 8 MB transactional migration applies" up
    is "large: every row of the seed is there" "$(db_sql 'SELECT count(*), sum(length(v)) FROM big')" \
        "20000|8000000"
    is "large: ...with the ids in order" "$(db_sql 'SELECT min(id), max(id) FROM big')" "0|19999"
    is "large: status" "$(states)" "1:applied 2:applied 3:applied 5:applied"
    x 0 "large: the no-op after it" up
    expect_contains "large: the no-op says so" "$OUT" "nothing to do"

    # A failure deep inside a large file: rolled back, and placed exactly.
    local f=$SCN/large-fail
    base_dir "$f"
    big_sql 3000 big6 2900 >"$f/6_big_fail.up.sql"
    bundle_build "$f" app 1.2.0 "$T/bundles/large-fail.cmig" || return
    BUN=$T/bundles/large-fail.cmig
    db_new large_fail
    x 1 "large: a failing statement near the end of a 6 MB migration" up
    expect_contains "large: the error names the file, line and column" "$OUT" \
        "6_big_fail.up.sql:2900:8"
    expect_contains "large: the error carries the database's message" "$OUT" "nosuch_col"
    is "large: the failed migration left nothing" "$(db_has big6)" 0
    is "large: status" "$(states)" "1:applied 2:applied 3:applied 6:pending"

    # Outside a transaction: statement by statement, left dirty at the one
    # that failed, with everything before it applied.
    local n=$SCN/large-notx
    base_dir "$n"
    { echo '-- cmig:no-transaction'; big_sql 2000 big7 1501; } >"$n/7_big_notx.up.sql"
    bundle_build "$n" app 1.3.0 "$T/bundles/large-notx.cmig" || return
    BUN=$T/bundles/large-notx.cmig
    db_new large_notx
    x 1 "large: a non-transactional 4 MB migration failing at statement 1,500" up
    expect_contains "large: the error names line and statement" "$OUT" \
        "7_big_notx.up.sql:1502:8, statement 1501"
    is "large: the statements before it were applied" "$(db_sql 'SELECT count(*) FROM big7')" 7495
    is "large: the migration is dirty" "$(states)" "1:applied 2:applied 3:applied 7:dirty"
}

run_all_scenarios() {
    local s t0
    scn_init
    for s in fresh_apply to failing goose_position no_transaction comment_only down baseline dirty \
        golang_migrate rollback drift out_of_order same_version refused two_bundles single_tx \
        plan_status json_logs env termination_log large_files; do
        t0=$(now_ms)
        "scn_$s"
        echo "# $DRIVER $s: $(elapsed_ms "$t0") ms"
    done
}
