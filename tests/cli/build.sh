#!/usr/bin/env bash
# tests/cli/build.sh - cmig-bundle keygen, build, sign, verify, inspect and
# diff as a user drives them: every directory layout, every environment
# variable, the append-only rule of --previous, encrypted keys, and the
# promises about failure (an existing bundle survives, no temp files stay
# behind, the exit code says what went wrong, secrets never reach output).
#
# Expected values are derived from the test directories' own file names and
# contents, not copied from the program's output.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

for v in $(compgen -e); do
    case $v in CMIG_TOP) ;; CMIG_*) unset "$v" ;; esac
done
unset SOURCE_DATE_EPOCH
# Under sanitizers a report must never pass for an exit code a test expects.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=86:print_stacktrace=1"

DIRS=$CMIG_TOP/tests/data/dirs
VERSION=$(sed -n 's/^VERSION *:= *//p' "$CMIG_TOP/Makefile")
EPOCH=1700000000
PW="pw-CANARY-$$-correct horse"
WRONG_PW="pw-CANARY-$$-wrong"
LOG=$T/all-output.log # every byte any command printed, searched for secrets at the end

for tool in jq setsid; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        not_ok "$tool is installed" "$tool not found in PATH"
        exit 1
    fi
done
if [ ! -x "$BUNDLE" ]; then
    not_ok "cmig-bundle is built" "$BUNDLE missing (make B=... $BUNDLE)"
    exit 1
fi
cd "$T" || exit 1
: >"$LOG"

# x CODE DESC CMD...: expect_exit, keeping the output for the secret check.
x() {
    expect_exit "$@"
    printf '%s\n' "$OUT" >>"$LOG"
}

# json BUNDLE [ARGS...]: inspect --json's stdout (stderr goes to the log).
json() {
    local j
    j=$("$BUNDLE" inspect --json "$@" 2>>"$LOG")
    printf '%s\n' "$j" >>"$LOG"
    printf '%s' "$j"
}

# jq_is DESC JSON FILTER EXPECTED: jq -r FILTER on JSON must print EXPECTED.
jq_is() {
    local got
    got=$(jq -r "$3" <<<"$2" 2>&1)
    if [ "$got" = "$4" ]; then ok "$1"; else not_ok "$1" "$3: got '$got', expected '$4'"; fi
}

same_bytes() {
    if cmp -s "$2" "$3"; then ok "$1"; else not_ok "$1" "$2 and $3 differ"; fi
}

# no_temp DESC DIR: nothing named like the build's temp files is left in DIR.
no_temp() {
    local left
    left=$(find "$2" -maxdepth 1 -name '.*.tmp-*' | head -5)
    if [ -z "$left" ]; then ok "$1"; else not_ok "$1" "left behind: $left"; fi
}

absent() {
    if [ -e "$2" ]; then not_ok "$1" "'$2' exists"; else ok "$1"; fi
}

# section FILE FORMAT up|down: the bytes between the marker lines of a goose
# or dbmate file, marker lines excluded.
section() {
    local up down
    case $2 in
        goose) up='-- +goose up' down='-- +goose down' ;;
        dbmate) up='-- migrate:up' down='-- migrate:down' ;;
    esac
    awk -v want="$3" -v up="$up" -v down="$down" '
        { l = tolower($0) }
        substr(l, 1, length(up)) == up { s = "up"; next }
        substr(l, 1, length(down)) == down { s = "down"; next }
        s == want { print }' "$1"
}

# Whether SQL text holds a statement PostgreSQL refuses in a transaction
# block (comment lines do not count).
needs_no_tx() {
    grep -v '^[[:space:]]*--' | grep -qiE '(create|drop)[[:space:]]+(unique[[:space:]]+)?index[[:space:]]+concurrently'
}

# expected DIR FORMAT: "version name has_down up_tx" per migration, in
# version order, from the directory's file names and contents alone.
expected() {
    local dir=$1 fmt=$2 f base v name down tx ext
    (
        cd "$dir" || exit 1
        case $fmt in
            golang-migrate)
                for f in *.up.sql *.up.json; do
                    [ -e "$f" ] || continue
                    ext=${f##*.} base=${f%.up.*}
                    v=$((10#${base%%_*})) name=${base#*_}
                    down=0; [ -e "$base.down.$ext" ] && down=1
                    tx=transaction
                    if [ "$ext" = json ]; then tx=json; elif needs_no_tx <"$f"; then tx=none; fi
                    echo "$v $name $down $tx"
                done ;;
            goose | dbmate)
                for f in [0-9]*_*.sql; do
                    [ -e "$f" ] || continue
                    base=${f%.sql}
                    v=$((10#${base%%_*})) name=${base#*_}
                    down=0; grep -qiE -- "^-- (\\+goose down|migrate:down)" "$f" && down=1
                    tx=transaction
                    section "$f" "$fmt" up | needs_no_tx && tx=none
                    echo "$v $name $down $tx"
                done ;;
            flyway)
                for f in V*__*.sql; do
                    [ -e "$f" ] || continue
                    base=${f%.sql} v=${base%%__*}
                    v=$((10#${v#V})) name=${base#*__}
                    down=0
                    for u in U*__*.sql; do
                        [ -e "$u" ] || continue
                        u=${u%%__*}; [ "$((10#${u#U}))" = "$v" ] && down=1
                    done
                    tx=transaction
                    needs_no_tx <"$f" && tx=none
                    echo "$v $name $down $tx"
                done ;;
        esac
    ) | sort -n
}

# The same four fields as the bundle's manifest has them.
actual() {
    jq -r '.migrations[] | "\(.version) \(.name) \(if .down then 1 else 0 end) \(.up.transaction)"' <<<"$1"
}

# --- keygen ---------------------------------------------------------------------

(umask 000 && "$BUNDLE" keygen --no-password --output k >"$T/o" 2>&1)
RC=$?; OUT=$(cat "$T/o"); printf '%s\n' "$OUT" >>"$LOG"
[ "$RC" -eq 0 ] && ok "keygen --no-password" || not_ok "keygen --no-password" "exit $RC: $OUT"
mode=$(stat -c %a k.key 2>/dev/null)
[ "$mode" = 600 ] && ok "the secret key is mode 0600 even with umask 000" || not_ok "the secret key is mode 0600 even with umask 000" "mode $mode"
mode=$(stat -c %a k.pub 2>/dev/null)
[ "$mode" = 644 ] && ok "the public key is mode 0644" || not_ok "the public key is mode 0644" "mode $mode"
KEYID=$(printf '%16s' "$(head -1 k.pub | awk '{print $NF}')" | tr ' ' 0) # as cmig prints ids: 16 digits
expect_contains "keygen names the key id" "$OUT" "$KEYID"
expect_contains "keygen says the key is not encrypted" "$(head -1 k.key)" "unencrypted"
SK_TEXT=$(sed -n 2p k.key)
cp k.key k.key.orig && cp k.pub k.pub.orig
x 2 "keygen refuses to overwrite an existing key" "$BUNDLE" keygen --no-password --output k
expect_contains "the refusal says how to overwrite" "$OUT" "--force"
same_bytes "the refused keygen left the secret key as it was" k.key k.key.orig
same_bytes "the refused keygen left the public key as it was" k.pub k.pub.orig
rm -f kp.key; cp k.pub kp.pub
x 2 "keygen refuses when only the public key exists" "$BUNDLE" keygen -W -o kp
absent "no secret key is written next to it" kp.key
x 0 "keygen --force overwrites" "$BUNDLE" keygen --no-password --force --output kf
cp kf.key kf.key.orig
x 0 "keygen --force overwrites" "$BUNDLE" keygen --no-password --force --output kf
cmp -s kf.key kf.key.orig && not_ok "--force writes a new key" || ok "--force writes a new key"
CMIG_NO_PASSWORD=1 CMIG_KEY_OUTPUT=envkey x 0 "keygen from CMIG_KEY_OUTPUT and CMIG_NO_PASSWORD=1" "$BUNDLE" keygen
[ -f envkey.key ] && [ -f envkey.pub ] && ok "keygen wrote the keys named by CMIG_KEY_OUTPUT" || not_ok "keygen wrote the keys named by CMIG_KEY_OUTPUT"
x 0 "a second key" "$BUNDLE" keygen -W -q -o other
[ -z "$OUT" ] && ok "keygen -q prints nothing" || not_ok "keygen -q prints nothing" "$OUT"

# --- every directory layout -------------------------------------------------------

for fmt_dir in golang-migrate:golang-migrate goose:goose dbmate:dbmate flyway:flyway \
    golang-migrate-json:golang-migrate; do
    d=${fmt_dir%%:*} fmt=${fmt_dir#*:}
    if [ ! -d "$DIRS/$d" ]; then
        not_ok "$d: test directory exists" "$DIRS/$d"
        continue
    fi
    driver=postgres
    [ "$d" = golang-migrate-json ] && driver=mongodb
    SOURCE_DATE_EPOCH=$EPOCH x 0 "$d: build" \
        "$BUNDLE" build "$DIRS/$d" --name "app-$d" --version 2.3.4-rc.1+build.7 --key k.key \
        --source-revision "rev-$d" --output "$d.cmig"
    j=$(json "$d.cmig" --pubkey k.pub)
    jq_is "$d: name" "$j" .name "app-$d"
    jq_is "$d: version" "$j" .version 2.3.4-rc.1+build.7
    jq_is "$d: driver" "$j" .driver "$driver"
    jq_is "$d: dir_format" "$j" .dir_format "$fmt"
    jq_is "$d: source revision" "$j" .source_revision "rev-$d"
    jq_is "$d: created_at is SOURCE_DATE_EPOCH" "$j" .created_at "$EPOCH"
    jq_is "$d: builder" "$j" .builder "cmig-bundle $VERSION"
    jq_is "$d: format version" "$j" .format_version 1
    jq_is "$d: signature verified by the right key" "$j" \
        '"\(.signature.verified) \(.signature.key_id)"' "true $KEYID"
    want=$(expected "$DIRS/$d" "$fmt")
    jq_is "$d: number of migrations" "$j" '.migrations | length' "$(grep -c . <<<"$want")"
    got=$(actual "$j")
    if [ "$d" = golang-migrate-json ]; then
        # MongoDB commands have no SQL transaction to infer; only the rest is compared.
        want=$(awk '{print $1, $2, $3}' <<<"$want") got=$(awk '{print $1, $2, $3}' <<<"$got")
        jq_is "$d: every transaction mode is a known one" "$j" \
            '[.migrations[] | .up.transaction | select(. != "none" and . != "transaction")] | length' 0
    fi
    if [ "$got" = "$want" ]; then
        ok "$d: versions, names, down migrations and transaction modes"
    else
        not_ok "$d: versions, names, down migrations and transaction modes" "$(diff <(echo "$want") <(echo "$got"))"
    fi
    jq_is "$d: files sit under migrations/ named VERSION_NAME.up/down" "$j" \
        '[.migrations[] | select(.up.path != "migrations/\(.version)_\(.name).up.\(.up.path | split(".") | last)")] | length' 0
done
j=$(json golang-migrate.cmig)
jq_is "without --pubkey, inspect --json says the signature is not verified" "$j" \
    '"\(.signature.verified) \(.signature.key_id)"' "false $KEYID"

# --mongodb-transactions: JSON migrations recorded transactional; SQL refused.
x 0 "build --mongodb-transactions" "$BUNDLE" build "$DIRS/golang-migrate-json" --name mtx \
    --version 1.0.0 --key k.key --output mtx.cmig --mongodb-transactions
j=$(json mtx.cmig --pubkey k.pub)
jq_is "--mongodb-transactions: every migration is transactional" "$j" \
    '[.migrations[] | .up.transaction] | unique | join(",")' transaction
jq_is "--mongodb-transactions: the reason says why" "$j" '.migrations[0].up.transaction_reason' \
    "built with --mongodb-transactions"
CMIG_MONGODB_TRANSACTIONS=1 x 0 "CMIG_MONGODB_TRANSACTIONS=1 does the same" "$BUNDLE" build \
    "$DIRS/golang-migrate-json" --name mtx --version 1.0.0 --key k.key --output mtx-env.cmig
cmp -s mtx.cmig mtx-env.cmig && ok "...byte for byte" || not_ok "...byte for byte"
x 2 "--mongodb-transactions refuses SQL migrations" "$BUNDLE" build "$DIRS/golang-migrate" \
    --name mtx --version 1.0.0 --key k.key --output mtx-sql.cmig --mongodb-transactions
expect_contains "...saying why" "$OUT" "--mongodb-transactions is for MongoDB (JSON) migrations"
[ -e mtx-sql.cmig ] && not_ok "...and writing nothing" || ok "...and writing nothing"

# A CONCURRENTLY statement makes a migration non-transactional; the word in
# a comment or a string does not.
mkdir cc
printf 'CREATE TABLE t (a int);\n' >cc/1_t.up.sql
printf 'CREATE INDEX CONCURRENTLY t_a ON t (a);\n' >cc/2_idx.up.sql
printf 'DROP INDEX CONCURRENTLY t_a;\n' >cc/2_idx.down.sql
printf -- '-- not CREATE INDEX CONCURRENTLY here\nCREATE INDEX t_b ON t (a);\n' >cc/3_comment.up.sql
printf "SELECT 'CREATE INDEX CONCURRENTLY';\n" >cc/4_string.up.sql
printf 'create unique index concurrently t_c on t (a);\n' >cc/5_lower.up.sql
x 0 "build a directory with CONCURRENTLY statements" "$BUNDLE" build cc -n cc -V 1.0.0 --unsigned -o cc.cmig
j=$(json cc.cmig)
jq_is "transaction modes follow CONCURRENTLY statements only" "$j" \
    '[.migrations[] | "\(.version):\(.up.transaction)"] | join(" ")' \
    "1:transaction 2:none 3:transaction 4:transaction 5:none"
jq_is "the down migration of a CONCURRENTLY index is non-transactional too" "$j" \
    '.migrations[1].down.transaction' none
jq_is "the reason names the line" "$j" '.migrations[1].up.transaction_reason | test("line 1")' true

# --dir-format and --driver given explicitly.
x 0 "--dir-format goose on a goose directory" "$BUNDLE" build "$DIRS/goose" -n g -V 1.0.0 --unsigned -F goose -o g.cmig
jq_is "--dir-format goose is recorded" "$(json g.cmig)" .dir_format goose
x 0 "--driver sqlite" "$BUNDLE" build "$DIRS/golang-migrate" -n s -V 1.0.0 --unsigned -d sqlite -o s.cmig
jq_is "--driver sqlite is recorded" "$(json s.cmig)" .driver sqlite
x 3 "--driver mongodb on SQL migrations is refused" "$BUNDLE" build "$DIRS/golang-migrate" -n s -V 1.0.0 --unsigned -d mongodb -o m.cmig
x 2 "an unknown --driver is refused" "$BUNDLE" build "$DIRS/golang-migrate" -n s -V 1.0.0 --unsigned -d oracle -o m.cmig
absent "refused builds write nothing" m.cmig

# --- bad directories: exit 3 naming the file -----------------------------------------

n_bad=0
for d in "$DIRS"/bad-*/; do
    [ -d "$d" ] || continue
    d=${d%/}; b=$(basename "$d"); n_bad=$((n_bad + 1))
    x 3 "$b: refused as invalid input" "$BUNDLE" build "$d" -n bad -V 1.0.0 -k k.key -o bad.cmig
    named=
    for f in "$d"/*; do
        [ -e "$f" ] || continue
        case $OUT in *"'$(basename "$f")'"*) named=$(basename "$f") ;; esac
    done
    # An empty directory has no file to name: the directory itself is named.
    [ -z "$named" ] && [ -z "$(ls "$d")" ] && case $OUT in *"$b'"*) named=$b ;; esac
    if [ -n "$named" ]; then ok "$b: the message names '$named'"; else not_ok "$b: the message names the file" "$OUT"; fi
    expect_contains "$b: the message is an error line" "$OUT" "cmig-bundle: error: "
done
[ "$n_bad" -ge 5 ] && ok "there are bad test directories ($n_bad)" || not_ok "there are bad test directories" "found $n_bad"
absent "no bundle is written for a bad directory" bad.cmig
absent "no signature is written for a bad directory" bad.cmig.minisig
no_temp "bad directories leave no temp files" .
x 6 "a missing directory is a system error" "$BUNDLE" build "$T/no-such-dir" -n a -V 1.0.0 --unsigned -o bad.cmig
expect_contains "the message names the directory" "$OUT" "no-such-dir"

# --- invalid names and versions: exit 2 ----------------------------------------------

for name in '' 'has space' '../escape' '.hidden' '-dash' 'a/b' "$(printf 'x%.0s' {1..129})"; do
    x 2 "bundle name '${name:0:20}' is refused" "$BUNDLE" build "$DIRS/golang-migrate" --name "$name" --version 1.0.0 --unsigned -o bad.cmig
done
for version in 1 1.0 1.0.0.0 01.0.0 1.0.0- 1.0.0+ v1.0.0 ' 1.0.0' 1.0.0-01 99999999999999999999.0.0; do
    x 2 "version '$version' is refused" "$BUNDLE" build "$DIRS/golang-migrate" --name app --version "$version" --unsigned -o bad.cmig
done
expect_contains "the message says why" "$OUT" "invalid version"
x 0 "a name with every allowed character" "$BUNDLE" build "$DIRS/golang-migrate" -n A-z_0.9 -V 0.0.0 --unsigned -o ok.cmig
for epoch in abc -1 1.5 ' 1' 99999999999999999999999; do
    SOURCE_DATE_EPOCH=$epoch x 2 "SOURCE_DATE_EPOCH='$epoch' is refused" "$BUNDLE" build "$DIRS/golang-migrate" -n app -V 1.0.0 --unsigned -o bad.cmig
done
absent "no bundle is written for invalid arguments" bad.cmig
no_temp "invalid arguments leave no temp files" .
x 0 "without SOURCE_DATE_EPOCH" "$BUNDLE" build "$DIRS/golang-migrate" -n app -V 1.0.0 --unsigned -o noepoch.cmig
jq_is "created_at defaults to 0" "$(json noepoch.cmig)" .created_at 0
OUT=$("$BUNDLE" inspect noepoch.cmig 2>&1)
expect_contains "the table says the creation time was not set" "$OUT" "SOURCE_DATE_EPOCH was not given"

# --- environment variables instead of flags ----------------------------------------------

mkdir envout
CMIG_MIGRATIONS_DIR=$DIRS/goose CMIG_BUNDLE_NAME=envapp CMIG_BUNDLE_VERSION=3.0.0 \
    CMIG_SECRET_KEY_FILE=k.key CMIG_OUTPUT=envout/e.cmig CMIG_SOURCE_REVISION=envrev \
    CMIG_DIR_FORMAT=goose CMIG_DRIVER=sqlite SOURCE_DATE_EPOCH=$EPOCH \
    x 0 "build from environment variables only" "$BUNDLE" build
j=$(json envout/e.cmig --pubkey k.pub)
jq_is "CMIG_BUNDLE_NAME, CMIG_BUNDLE_VERSION, CMIG_SOURCE_REVISION, CMIG_DRIVER are used" "$j" \
    '"\(.name) \(.version) \(.source_revision) \(.driver) \(.dir_format)"' "envapp 3.0.0 envrev sqlite goose"
jq_is "CMIG_SECRET_KEY_FILE signed it" "$j" .signature.verified true
jq_is "CMIG_MIGRATIONS_DIR was read" "$j" '.migrations | length' "$(expected "$DIRS/goose" goose | grep -c .)"
CMIG_BUNDLE_NAME=envapp CMIG_BUNDLE_VERSION=3.0.0 CMIG_SOURCE_REVISION=envrev CMIG_OUTPUT=envout/ignored.cmig \
    x 0 "flags win over environment variables" "$BUNDLE" build "$DIRS/golang-migrate" \
    -n flagapp -V 3.0.1 -r flagrev -k k.key -o flag.cmig
jq_is "the flag values are recorded" "$(json flag.cmig)" '"\(.name) \(.version) \(.source_revision)"' "flagapp 3.0.1 flagrev"
absent "the environment's output path is not used" envout/ignored.cmig
CMIG_DIR_FORMAT=liquibase x 2 "CMIG_DIR_FORMAT is read (an unknown one is refused)" "$BUNDLE" build "$DIRS/goose" -n a -V 1.0.0 --unsigned -o bad.cmig
expect_contains "the message names the value" "$OUT" "liquibase"
CMIG_DIR_FORMAT=flyway x 3 "CMIG_DIR_FORMAT=flyway on a goose directory finds nothing" "$BUNDLE" build "$DIRS/goose" -n a -V 1.0.0 --unsigned -o bad.cmig
CMIG_SECRET_KEY=$(cat k.key) x 0 "CMIG_SECRET_KEY holds the key text" "$BUNDLE" build "$DIRS/golang-migrate" -n sk -V 1.0.0 -o sk.cmig
x 0 "a bundle signed from CMIG_SECRET_KEY verifies" "$BUNDLE" verify sk.cmig --pubkey k.pub
CMIG_SECRET_KEY="not a key $SK_TEXT-CANARY" x 5 "CMIG_SECRET_KEY with junk is a key error" "$BUNDLE" build "$DIRS/golang-migrate" -n sk -V 1.0.1 -o sk2.cmig
expect_contains "the message names CMIG_SECRET_KEY, not its value" "$OUT" "'CMIG_SECRET_KEY'"
CMIG_SECRET_KEY_FILE=other.key CMIG_SECRET_KEY=$(cat k.key) x 0 "CMIG_SECRET_KEY_FILE comes before CMIG_SECRET_KEY" \
    "$BUNDLE" build "$DIRS/golang-migrate" -n sk -V 1.0.0 -o skf.cmig
x 0 "...so the bundle is signed by that file's key" "$BUNDLE" verify skf.cmig --pubkey other.pub
CMIG_UNSIGNED=1 x 0 "CMIG_UNSIGNED=1 builds without a key" "$BUNDLE" build "$DIRS/golang-migrate" -n un -V 1.0.0 -o un.cmig
absent "CMIG_UNSIGNED=1 writes no signature" un.cmig.minisig
CMIG_UNSIGNED=0 x 2 "CMIG_UNSIGNED=0 does not mean unsigned" "$BUNDLE" build "$DIRS/golang-migrate" -n un -V 1.0.1 -o un2.cmig
CMIG_TRUSTED_KEYS=$T/k.pub x 0 "verify takes CMIG_TRUSTED_KEYS" "$BUNDLE" verify sk.cmig
CMIG_TRUSTED_KEYS="$T/other.pub,$T/k.pub" x 0 "CMIG_TRUSTED_KEYS holds a comma-separated list" "$BUNDLE" verify sk.cmig

# --- --output ------------------------------------------------------------------------

mkdir outdir
x 0 "--output names an existing directory" "$BUNDLE" build "$DIRS/golang-migrate" -n app -V 1.2.3 -k k.key -o outdir
[ -f outdir/app-1.2.3.cmig ] && [ -f outdir/app-1.2.3.cmig.minisig ] \
    && ok "the bundle is NAME-VERSION.cmig inside it, with its signature" \
    || not_ok "the bundle is NAME-VERSION.cmig inside it, with its signature" "$(ls -A outdir)"
x 0 "...and verifies there" "$BUNDLE" verify outdir/app-1.2.3.cmig -P k.pub
mkdir cwd && (cd cwd && "$BUNDLE" build "$DIRS/golang-migrate" -n app -V 1.2.3 -k ../k.key -q)
[ -f cwd/app-1.2.3.cmig ] && [ -f cwd/app-1.2.3.cmig.minisig ] \
    && ok "without --output the bundle is NAME-VERSION.cmig in the current directory" \
    || not_ok "without --output the bundle is NAME-VERSION.cmig in the current directory" "$(ls -A cwd)"
same_bytes "both are the same bundle" cwd/app-1.2.3.cmig outdir/app-1.2.3.cmig
no_temp "a good build leaves no temp files" outdir

# --- a failed build changes nothing -----------------------------------------------------

mkdir keep
cp -r "$DIRS/golang-migrate" keep-src
x 0 "a bundle to keep" "$BUNDLE" build keep-src -n keep -V 1.0.0 -k k.key -o keep/keep.cmig
cp keep/keep.cmig keep.orig; cp keep/keep.cmig.minisig keep.sig.orig
check_kept() {
    same_bytes "$1: the existing bundle is byte-identical" keep/keep.cmig keep.orig
    same_bytes "$1: its signature is byte-identical" keep/keep.cmig.minisig keep.sig.orig
    no_temp "$1: no temp files are left" keep
}
x 3 "build a bad directory over it" "$BUNDLE" build "$DIRS/bad-down-without-up" -n keep -V 1.0.0 -k k.key -o keep/keep.cmig
check_kept "bad directory"
x 2 "build with a bad version over it" "$BUNDLE" build keep-src -n keep -V 1.x -k k.key -o keep/keep.cmig
check_kept "bad version"
x 6 "build with a missing key file over it" "$BUNDLE" build keep-src -n keep -V 1.0.1 -k no-such.key -o keep/keep.cmig
check_kept "missing key"
x 4 "build a non-append-only release over it" "$BUNDLE" build keep-src -n keep -V 1.0.0 -k k.key -p keep/keep.cmig -o keep/keep.cmig
check_kept "not append-only"
x 1 "build with an untrusted previous release over it" "$BUNDLE" build keep-src -n keep -V 1.0.1 -k other.key -p keep/keep.cmig -o keep/keep.cmig
check_kept "untrusted previous"
# The rename into place fails when the target is a directory: the temp
# file, already written by then, must go.
mkdir -p blocked/keep-1.0.0.cmig
x 6 "a build whose target is a directory fails" "$BUNDLE" build keep-src -n keep -V 1.0.0 -k k.key -o blocked
no_temp "the failed rename leaves no temp file" blocked
[ -d blocked/keep-1.0.0.cmig ] && [ -z "$(ls -A blocked/keep-1.0.0.cmig)" ] \
    && ok "the directory in the way is untouched" || not_ok "the directory in the way is untouched"
absent "no signature is written for a bundle that was not" blocked/keep-1.0.0.cmig.minisig
x 0 "an unsigned build over a signed bundle" "$BUNDLE" build keep-src -n keep -V 1.0.0 --unsigned -o keep/keep.cmig
absent "removes the old signature, which no longer matches" keep/keep.cmig.minisig

# --- --unsigned, then sign, then verify ----------------------------------------------------

SOURCE_DATE_EPOCH=$EPOCH x 0 "build --unsigned" "$BUNDLE" build "$DIRS/dbmate" -n late -V 1.0.0 --unsigned -o late.cmig
expect_contains "says it is unsigned" "$OUT" "unsigned"
absent "writes no signature" late.cmig.minisig
x 1 "verify refuses an unsigned bundle" "$BUNDLE" verify late.cmig -P k.pub
expect_contains "and says the signature is missing" "$OUT" "late.cmig.minisig"
OUT=$("$BUNDLE" inspect late.cmig 2>&1); printf '%s\n' "$OUT" >>"$LOG"
expect_contains "inspect says it is unsigned" "$OUT" "NONE (unsigned bundle)"
jq_is "inspect --json: no key id" "$(json late.cmig)" '"\(.signature.verified) \(.signature.key_id)"' "false null"
x 0 "sign" "$BUNDLE" sign late.cmig -k k.key
expect_contains "sign names the key" "$OUT" "$KEYID"
x 0 "verify after sign" "$BUNDLE" verify late.cmig -P k.pub
expect_contains "verify says what it verified" "$OUT" "is late 1.0.0"
x 1 "verify with another key refuses" "$BUNDLE" verify late.cmig -P other.pub
expect_contains "the refusal names the signing key" "$OUT" "$KEYID"
x 0 "verify with several --pubkey (key rotation)" "$BUNDLE" verify late.cmig -P other.pub -P k.pub
mkdir trusted && cp other.pub k.pub trusted/
x 0 "verify --pubkey with a directory of .pub files" "$BUNDLE" verify late.cmig -P trusted
x 1 "verify -q refuses too" "$BUNDLE" verify -q late.cmig -P other.pub
[ -z "$OUT" ] && ok "verify -q prints nothing" || not_ok "verify -q prints nothing" "$OUT"
SOURCE_DATE_EPOCH=$EPOCH x 0 "the same bundle built signed" "$BUNDLE" build "$DIRS/dbmate" -n late -V 1.0.0 -k k.key -o direct.cmig
same_bytes "build --unsigned then sign gives the same bundle as a signed build" late.cmig direct.cmig
same_bytes "...and the same signature" late.cmig.minisig direct.cmig.minisig
x 0 "sign --signature to another path" "$BUNDLE" sign late.cmig -k other.key --signature late.other.minisig
x 0 "verify --signature reads it" "$BUNDLE" verify late.cmig -P other.pub --signature late.other.minisig
CMIG_SIGNATURE=late.other.minisig x 0 "CMIG_SIGNATURE does the same" "$BUNDLE" verify late.cmig -P other.pub
x 1 "the default signature is still the first key's" "$BUNDLE" verify late.cmig -P other.pub
cp late.cmig tampered.cmig; cp late.cmig.minisig tampered.cmig.minisig
printf 'X' | dd of=tampered.cmig bs=1 seek=200 conv=notrunc status=none
x 1 "verify refuses a changed byte" "$BUNDLE" verify tampered.cmig -P k.pub
head -c 100 late.cmig >short.cmig
x 1 "sign refuses a truncated bundle" "$BUNDLE" sign short.cmig -k k.key
absent "and writes no signature for it" short.cmig.minisig
printf 'not a bundle\n' >junk.cmig
x 1 "sign refuses a file that is not a bundle" "$BUNDLE" sign junk.cmig -k k.key
absent "and writes no signature for it" junk.cmig.minisig

# --- inspect: verified or not -----------------------------------------------------------

OUT=$("$BUNDLE" inspect direct.cmig 2>&1); RC=$?; printf '%s\n' "$OUT" >>"$LOG"
[ "$RC" -eq 0 ] && ok "inspect without --pubkey: exit 0" || not_ok "inspect without --pubkey: exit 0" "exit $RC: $OUT"
expect_contains "inspect without --pubkey says NOT VERIFIED" "$OUT" "NOT VERIFIED"
expect_not_contains "...and never 'verified,'" "$OUT" "verified, key"
expect_contains "...and names the key the signature file claims" "$OUT" "$KEYID"
OUT=$("$BUNDLE" inspect direct.cmig --pubkey k.pub 2>&1); RC=$?; printf '%s\n' "$OUT" >>"$LOG"
[ "$RC" -eq 0 ] && ok "inspect --pubkey: exit 0" || not_ok "inspect --pubkey: exit 0" "exit $RC: $OUT"
expect_contains "inspect --pubkey says verified with the key" "$OUT" "signature  verified, key $KEYID"
expect_not_contains "...and not NOT VERIFIED" "$OUT" "NOT VERIFIED"
for field in "bundle     late 1.0.0" "driver     postgres" "layout     dbmate" "created    2023-11-14T22:13:20Z" "migrations $(expected "$DIRS/dbmate" dbmate | grep -c .)"; do
    expect_contains "the table shows '$field'" "$OUT" "$field"
done
expect_contains "the table shows why a migration is not transactional" "$OUT" "transaction:false"
x 1 "inspect with the wrong --pubkey refuses" "$BUNDLE" inspect direct.cmig --pubkey other.pub
CMIG_TRUSTED_KEYS=$T/k.pub x 0 "inspect takes CMIG_TRUSTED_KEYS" "$BUNDLE" inspect direct.cmig
expect_contains "...and then says verified" "$OUT" "signature  verified, key $KEYID"

# --- --previous: the append-only rule -----------------------------------------------------

mkdir -p hist/v1
cp "$DIRS/golang-migrate"/*.sql hist/v1/
x 0 "release 1.0.0" "$BUNDLE" build hist/v1 -n app -V 1.0.0 -k k.key -o hist/app-1.0.0.cmig
cp -r hist/v1 hist/ok
printf 'ALTER TABLE users ADD COLUMN nick TEXT;\n' >hist/ok/10_add_nick.up.sql
printf 'ALTER TABLE users DROP COLUMN nick;\n' >hist/ok/10_add_nick.down.sql
x 0 "an append-only release is accepted" "$BUNDLE" build hist/ok -n app -V 1.1.0 -k k.key -p hist/app-1.0.0.cmig -o hist/app-1.1.0.cmig
x 0 "...with the previous release verified by --pubkey only" "$BUNDLE" build hist/ok -n app -V 1.1.0 --unsigned -P k.pub -p hist/app-1.0.0.cmig -o hist/unsigned-1.1.0.cmig
CMIG_PREVIOUS=hist/app-1.0.0.cmig x 4 "CMIG_PREVIOUS is read" "$BUNDLE" build hist/ok -n app -V 0.9.0 -k k.key -o hist/bad.cmig
x 0 "the same migrations under a new version are accepted" "$BUNDLE" build hist/v1 -n app -V 1.0.1 -k k.key -p hist/app-1.0.0.cmig -o hist/app-1.0.1.cmig
x 0 "a pre-release of the next version is greater" "$BUNDLE" build hist/v1 -n app -V 1.0.1-rc.1 -k k.key -p hist/app-1.0.0.cmig -o hist/rc.cmig

# refused DESC DIR VERSION NEEDLE...: exit 4, each NEEDLE in the message, nothing written.
refused() {
    local desc=$1 dir=$2 version=$3; shift 3
    x 4 "$desc: refused" "$BUNDLE" build "$dir" -n app -V "$version" -k k.key -p hist/app-1.0.0.cmig -o hist/bad.cmig
    local needle
    for needle in "$@"; do expect_contains "$desc: the message says '$needle'" "$OUT" "$needle"; done
    absent "$desc: nothing is written" hist/bad.cmig
}
cp -r hist/v1 hist/changed
printf -- '-- reviewed\n' >>hist/changed/2_create_posts.up.sql
refused "a changed up file" hist/changed 1.1.0 "migration 2 'create_posts' changed (up)"
cp -r hist/v1 hist/changed-down
printf 'DROP TABLE IF EXISTS users;\n' >hist/changed-down/1_create_users.down.sql
refused "a changed down file" hist/changed-down 1.1.0 "migration 1 'create_users' changed (down)"
cp -r hist/v1 hist/renamed
mv hist/renamed/3_index_posts_user.up.sql hist/renamed/3_posts_by_user.up.sql
refused "a renamed migration" hist/renamed 1.1.0 "migration 3"
cp -r hist/v1 hist/removed
rm hist/removed/2_create_posts.*
refused "a removed migration" hist/removed 1.1.0 "migration 2 'create_posts' was removed"
cp -r hist/v1 hist/removed-down
rm hist/removed-down/1_create_users.down.sql
refused "a removed down file" hist/removed-down 1.1.0 "migration 1 'create_users'"
x 0 "a release with a gap" "$BUNDLE" build hist/ok -n gap -V 1.0.0 -k k.key -o hist/gap-1.0.0.cmig
cp -r hist/ok hist/late
printf 'SELECT 1;\n' >hist/late/5_forgotten.up.sql
x 4 "a new migration numbered below the previous highest: refused" \
    "$BUNDLE" build hist/late -n gap -V 1.1.0 -k k.key -p hist/gap-1.0.0.cmig -o hist/bad.cmig
expect_contains "...naming it" "$OUT" "new migration 5 'forgotten'"
expect_contains "...and the highest" "$OUT" "(10)"
absent "...and nothing is written" hist/bad.cmig
refused "the same version" hist/ok 1.0.0 "version 1.0.0 is not greater"
refused "a lower version" hist/ok 0.9.9 "version 0.9.9 is not greater"
refused "a pre-release of the same version" hist/ok 1.0.0-rc.1 "not greater"
refused "build metadata only" hist/ok 1.0.0+build.2 "not greater"
refused "two problems at once" hist/removed 1.0.0 "2 problems" "was removed" "not greater"
x 4 "a previous release of another bundle is refused" "$BUNDLE" build hist/ok -n other -V 2.0.0 -k k.key -p hist/app-1.0.0.cmig -o hist/bad.cmig
expect_contains "...naming both" "$OUT" "'app'"
x 1 "a previous release signed by an untrusted key is refused" "$BUNDLE" build hist/ok -n app -V 1.1.0 -k other.key -p hist/app-1.0.0.cmig -o hist/bad.cmig
x 0 "...unless --pubkey trusts it" "$BUNDLE" build hist/ok -n app -V 1.1.0 -k other.key -P k.pub -p hist/app-1.0.0.cmig -o hist/other-1.1.0.cmig
x 2 "--previous with --unsigned and no --pubkey cannot verify it" "$BUNDLE" build hist/ok -n app -V 1.1.0 --unsigned -p hist/app-1.0.0.cmig -o hist/bad.cmig
cp hist/app-1.0.0.cmig hist/nosig.cmig
x 1 "an unsigned previous release is refused" "$BUNDLE" build hist/ok -n app -V 1.1.0 -k k.key -p hist/nosig.cmig -o hist/bad.cmig
x 6 "a missing previous release is an I/O error" "$BUNDLE" build hist/ok -n app -V 1.1.0 -k k.key -p hist/none.cmig -o hist/bad.cmig
absent "none of these wrote a bundle" hist/bad.cmig
no_temp "none of these left temp files" hist

# --- diff --------------------------------------------------------------------------------

x 0 "diff of a release with itself: exit 0" "$BUNDLE" diff hist/app-1.0.0.cmig hist/app-1.0.0.cmig
expect_contains "...says nothing changed" "$OUT" "no migration changed"
x 0 "diff with only a version change: exit 0" "$BUNDLE" diff hist/app-1.0.0.cmig hist/app-1.0.1.cmig
expect_contains "...shows the version change" "$OUT" "version app 1.0.0 -> app 1.0.1"
expect_contains "...and that it is append-only" "$OUT" "append-only: yes"
expect_contains "...and that signatures were not checked" "$OUT" "not verified"
x 1 "diff with an added migration: exit 1" "$BUNDLE" diff hist/app-1.0.0.cmig hist/app-1.1.0.cmig
expect_contains "...shows it with +" "$OUT" "+ 10 add_nick"
expect_contains "...append-only" "$OUT" "append-only: yes"
x 0 "an unchecked release with a changed file, for diff" "$BUNDLE" build hist/changed -n app -V 1.2.0 -k k.key -o hist/changed.cmig
x 1 "diff with a changed migration: exit 1" "$BUNDLE" diff hist/app-1.0.0.cmig hist/changed.cmig
expect_contains "...shows it with ~ and what changed" "$OUT" "~ 2 create_posts (up changed)"
expect_contains "...and that it is not append-only" "$OUT" "append-only: no"
x 0 "an unchecked release with a removed migration, for diff" "$BUNDLE" build hist/removed -n app -V 1.2.0 -k k.key -o hist/removed.cmig
x 1 "diff with a removed migration: exit 1" "$BUNDLE" diff hist/app-1.0.0.cmig hist/removed.cmig
expect_contains "...shows it with -" "$OUT" "- 2 create_posts"
OUT=$("$BUNDLE" diff --json -P k.pub hist/app-1.0.0.cmig hist/app-1.1.0.cmig 2>>"$LOG"); RC=$?
[ "$RC" -eq 1 ] && ok "diff --json with differences: exit 1" || not_ok "diff --json with differences: exit 1" "exit $RC"
jq_is "diff --json: old and new" "$OUT" '"\(.old.name) \(.old.version) \(.new.name) \(.new.version)"' "app 1.0.0 app 1.1.0"
jq_is "diff --json: verified with --pubkey" "$OUT" .verified true
jq_is "diff --json: the added migration" "$OUT" '[.changes[] | "\(.change) \(.version) \(.name)"] | join(",")' "added 10 add_nick"
jq_is "diff --json: append-only" "$OUT" '"\(.append_only) \(.append_only_problems)"' "true null"
OUT=$("$BUNDLE" diff --json hist/app-1.0.0.cmig hist/changed.cmig 2>>"$LOG"); RC=$?
[ "$RC" -eq 1 ] && ok "diff --json with a change: exit 1" || not_ok "diff --json with a change: exit 1" "exit $RC"
jq_is "diff --json: not verified without --pubkey" "$OUT" .verified false
jq_is "diff --json: the changed migration and what changed" "$OUT" '[.changes[] | "\(.change) \(.version) \(.what)"] | join(",")' "changed 2 up"
jq_is "diff --json: not append-only, with the reason" "$OUT" '"\(.append_only) \(.append_only_problems | test("create_posts"))"' "false true"
OUT=$("$BUNDLE" diff --json hist/app-1.0.0.cmig hist/app-1.0.0.cmig 2>>"$LOG"); RC=$?
[ "$RC" -eq 0 ] && ok "diff --json without differences: exit 0" || not_ok "diff --json without differences: exit 0" "exit $RC"
jq_is "diff --json: no changes" "$OUT" '.changes | length' 0
x 1 "diff --pubkey with an untrusted key refuses" "$BUNDLE" diff -P other.pub hist/app-1.0.0.cmig hist/app-1.1.0.cmig
x 1 "diff of something that is not a bundle refuses" "$BUNDLE" diff hist/app-1.0.0.cmig junk.cmig

# --- encrypted keys (scrypt: about 1 GiB and a few seconds each, so few) ----------------------

CMIG_KEY_PASSWORD=$PW x 0 "keygen with CMIG_KEY_PASSWORD" "$BUNDLE" keygen -o enc
expect_contains "the secret key is encrypted" "$(head -1 enc.key)" "encrypted secret key"
expect_not_contains "...not the unencrypted kind" "$(head -1 enc.key)" "unencrypted"
mode=$(stat -c %a enc.key 2>/dev/null)
[ "$mode" = 600 ] && ok "the encrypted secret key is mode 0600" || not_ok "the encrypted secret key is mode 0600" "mode $mode"
ENC_TEXT=$(sed -n 2p enc.key)
CMIG_KEY_PASSWORD=$PW x 0 "build with the right password in CMIG_KEY_PASSWORD" \
    "$BUNDLE" build "$DIRS/golang-migrate" -n enc -V 1.0.0 -k enc.key -o enc1.cmig
x 0 "...verifies" "$BUNDLE" verify enc1.cmig -P enc.pub
printf '%s\n' "$PW" >pw.txt
CMIG_KEY_PASSWORD_FILE=pw.txt x 0 "build with the right password in CMIG_KEY_PASSWORD_FILE (newline-terminated)" \
    "$BUNDLE" build "$DIRS/golang-migrate" -n enc -V 1.0.0 -k enc.key -o enc2.cmig
same_bytes "both password sources sign the same bytes" enc1.cmig.minisig enc2.cmig.minisig
CMIG_KEY_PASSWORD=$WRONG_PW x 5 "a wrong password: exit 5" \
    "$BUNDLE" build "$DIRS/golang-migrate" -n enc -V 1.0.0 -k enc.key -o enc3.cmig
expect_contains "...saying so and naming the key" "$OUT" "wrong password for secret key 'enc.key'"
absent "...and writing nothing" enc3.cmig
# No password source and no terminal: setsid leaves no controlling tty.
setsid -w "$BUNDLE" build "$DIRS/golang-migrate" -n enc -V 1.0.0 -k enc.key -o enc4.cmig </dev/null >"$T/o" 2>&1
RC=$?; OUT=$(cat "$T/o"); printf '%s\n' "$OUT" >>"$LOG"
[ "$RC" -eq 5 ] && ok "no password and no terminal: exit 5" || not_ok "no password and no terminal: exit 5" "exit $RC: $OUT"
expect_contains "...naming CMIG_KEY_PASSWORD" "$OUT" "CMIG_KEY_PASSWORD"
expect_contains "...and CMIG_KEY_PASSWORD_FILE" "$OUT" "CMIG_KEY_PASSWORD_FILE"
absent "...and writing nothing" enc4.cmig
setsid -w "$BUNDLE" keygen -o enc-notty </dev/null >"$T/o" 2>&1
RC=$?; OUT=$(cat "$T/o"); printf '%s\n' "$OUT" >>"$LOG"
[ "$RC" -eq 5 ] && ok "keygen with no password and no terminal: exit 5" || not_ok "keygen with no password and no terminal: exit 5" "exit $RC: $OUT"
absent "...and no key is written" enc-notty.key
CMIG_KEY_PASSWORD_FILE=no-such-file x 6 "a missing password file: exit 6" \
    "$BUNDLE" build "$DIRS/golang-migrate" -n enc -V 1.0.0 -k enc.key -o enc5.cmig
CMIG_KEY_PASSWORD=$PW x 0 "an unencrypted key ignores CMIG_KEY_PASSWORD" \
    "$BUNDLE" build "$DIRS/golang-migrate" -n plain -V 1.0.0 -k k.key -o plain.cmig

# --- secrets never reach the output ---------------------------------------------------------

for secret in "$PW" "$WRONG_PW" "CANARY" "$SK_TEXT" "${SK_TEXT:20:40}" "$ENC_TEXT" "${ENC_TEXT:20:40}"; do
    if grep -qF -- "$secret" "$LOG"; then
        not_ok "no output shows a secret (${secret:0:12}...)" "$(grep -nF -- "$secret" "$LOG" | head -3)"
    else
        ok "no output shows a secret (${secret:0:12}...)"
    fi
done
if grep -qE 'Sanitizer|runtime error:' "$LOG"; then
    not_ok "no sanitizer reports" "$(grep -m3 -E 'Sanitizer|runtime error:' "$LOG")"
else
    ok "no sanitizer reports"
fi
[ "$(wc -l <"$LOG")" -gt 100 ] && ok "the secret check saw the output of every command" || not_ok "the secret check saw the output" "$(wc -l <"$LOG") lines"

exit 0
