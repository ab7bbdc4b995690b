#!/usr/bin/env bash
# tests/interop/tools.sh - cmig bundles and keys against the real programs
# people will use on them: stock minisign verifies bundles and signs with
# cmig-bundle's keys (and cmig-bundle uses minisign's), GNU tar lists and
# extracts the archive, the sqlite3 shell reads the manifest, and
# sha256sum agrees with the hashes the manifest records.
#
# minisign reads a password from stdin when stdin is not a terminal, and
# does not ask for one at all for an unencrypted key; encrypted-key steps
# cost about 1 GiB and a few seconds of scrypt each, so there are four.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

for v in $(compgen -e); do
    case $v in CMIG_TOP) ;; CMIG_*) unset "$v" ;; esac
done
unset SOURCE_DATE_EPOCH
# Under sanitizers a report must never pass for an exit code a test expects.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=86:print_stacktrace=1"

DIRS=$CMIG_TOP/tests/data/dirs
EPOCH=1700000000
PW="interop-pass-$$"

for tool in minisign tar sqlite3 sha256sum; do
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

same() {
    if cmp -s "$2" "$3"; then ok "$1"; else not_ok "$1" "$(diff "$2" "$3" 2>&1 | head -10)"; fi
}
is() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "got '$2', expected '$3'"; fi
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

# sources DIR FORMAT OUT: writes into OUT/ what each archive entry must
# hold, named as the archive names it (VERSION_NAME.up/down.EXT), from the
# source files alone.
sources() {
    local dir=$1 fmt=$2 out=$3 f base v name ext
    mkdir -p "$out"
    for f in "$dir"/*; do
        f=${f##*/}
        case $fmt:$f in
            golang-migrate:[0-9]*_*.up.sql | golang-migrate:[0-9]*_*.down.sql | \
                golang-migrate:[0-9]*_*.up.json | golang-migrate:[0-9]*_*.down.json)
                v=${f%%_*}
                cp "$dir/$f" "$out/$((10#$v))_${f#*_}" ;;
            goose:[0-9]*_*.sql | dbmate:[0-9]*_*.sql)
                base=${f%.sql} v=$((10#${f%%_*}))
                name=${base#*_}
                section "$dir/$f" "$fmt" up >"$out/${v}_$name.up.sql"
                if grep -qiE -- "^-- (\\+goose down|migrate:down)" "$dir/$f"; then
                    section "$dir/$f" "$fmt" down >"$out/${v}_$name.down.sql"
                fi ;;
            flyway:V*__*.sql | flyway:U*__*.sql)
                base=${f%.sql} v=${base%%__*}
                name=${base#*__}
                ext=up; [ "${v:0:1}" = U ] && ext=down
                cp "$dir/$f" "$out/$((10#${v:1}))_$name.$ext.sql" ;;
        esac
    done
    # flyway's U file carries its own description; the archive uses the V one's.
    if [ "$fmt" = flyway ]; then
        for f in "$out"/*.down.sql; do
            [ -e "$f" ] || continue
            v=${f##*/}; v=${v%%_*}
            for u in "$out/${v}"_*.up.sql; do
                [ -e "$u" ] && [ "${u%.up.sql}.down.sql" != "$f" ] && mv "$f" "${u%.up.sql}.down.sql"
            done
        done
    fi
}

# q SQL: one query against $db with the sqlite3 shell.
q() { sqlite3 -batch -readonly -noheader -separator '|' "$db" "$1" 2>&1; }

expect_exit 0 "cmig-bundle keygen (unencrypted)" "$BUNDLE" keygen -W -q -o k

for fmt_dir in golang-migrate:golang-migrate goose:goose dbmate:dbmate flyway:flyway \
    golang-migrate-json:golang-migrate; do
    d=${fmt_dir%%:*} fmt=${fmt_dir#*:}
    B=app-$d-1.0.0.cmig
    OUT=$(SOURCE_DATE_EPOCH=$EPOCH "$BUNDLE" build "$DIRS/$d" -n "app-$d" -V 1.0.0 -k k.key -q 2>&1)
    if [ $? -ne 0 ]; then not_ok "$d: build" "$OUT"; continue; fi

    # --- minisign verifies the bundle as shipped --------------------------------------
    expect_exit 0 "$d: minisign -Vm verifies the bundle" minisign -Vm "$B" -p k.pub
    expect_contains "$d: minisign checked the trusted comment too" "$OUT" "Signature and comment signature verified"
    tc=$(sed -n 's/^Trusted comment: //p' <<<"$OUT")
    expect_contains "$d: the trusted comment names the bundle" "$tc" "name=app-$d version=1.0.0"

    # --- tar lists manifest.db first, then the migrations in version order -------------
    list=$(tar tzf "$B" 2>&1)
    [ $? -eq 0 ] && ok "$d: tar tzf lists the bundle" || not_ok "$d: tar tzf lists the bundle" "$list"
    is "$d: manifest.db is the first entry" "$(head -1 <<<"$list")" manifest.db
    rest=$(tail -n +2 <<<"$list")
    if sed -E 's#^migrations/([0-9]+)_.*#\1#' <<<"$rest" | sort -n -c 2>/dev/null; then
        ok "$d: the migrations follow in version order"
    else
        not_ok "$d: the migrations follow in version order" "$rest"
    fi
    rm -rf "want-$d" "ex-$d"
    sources "$DIRS/$d" "$fmt" "want-$d"
    is "$d: the archive holds exactly the migration files" \
        "$(sed 's#^migrations/##' <<<"$rest" | sort)" "$(ls "want-$d" | sort)"

    # --- tar extracts the files as they were written -------------------------------------
    mkdir "ex-$d"
    OUT=$(tar xzf "$B" -C "ex-$d" 2>&1)
    [ $? -eq 0 ] && ok "$d: tar xzf extracts the bundle" || not_ok "$d: tar xzf extracts the bundle" "$OUT"
    bad=
    for f in "want-$d"/*; do
        cmp -s "$f" "ex-$d/migrations/${f##*/}" || bad="$bad ${f##*/}"
    done
    if [ -z "$bad" ]; then
        ok "$d: every extracted file equals its source ($fmt)"
    else
        not_ok "$d: every extracted file equals its source ($fmt)" "differ:$bad"
    fi

    # --- sqlite3 reads the manifest -----------------------------------------------------------
    db=ex-$d/manifest.db
    is "$d: sqlite3: the bundle row" "$(q 'SELECT name, version, created_at FROM bundle')" "app-$d|1.0.0|$EPOCH"
    is "$d: sqlite3: one migration row per migration" "$(q 'SELECT count(*) FROM migration')" \
        "$(ls "want-$d" | grep -c '\.up\.')"
    is "$d: sqlite3: PRAGMA application_id" "$(q 'PRAGMA application_id')" 1129138503
    is "$d: sqlite3: PRAGMA user_version" "$(q 'PRAGMA user_version')" 1
    is "$d: sqlite3: PRAGMA integrity_check" "$(q 'PRAGMA integrity_check')" ok
    rows=$(q "SELECT up_path, up_size, up_sha256 FROM migration
              UNION ALL SELECT down_path, down_size, down_sha256 FROM migration WHERE down_path IS NOT NULL")
    bad='' n=0
    while IFS='|' read -r path size sha; do
        n=$((n + 1))
        got=$(sha256sum "ex-$d/$path" 2>/dev/null | awk '{print $1}')
        [ "$got" = "$sha" ] || bad="$bad $path(sha256 $got != $sha)"
        [ "$(stat -c %s "ex-$d/$path" 2>/dev/null)" = "$size" ] || bad="$bad $path(size)"
    done <<<"$rows"
    if [ -z "$bad" ] && [ "$n" -eq "$(ls "want-$d" | wc -l)" ]; then
        ok "$d: sha256sum and size of every extracted file equal the manifest's ($n files)"
    else
        not_ok "$d: sha256sum and size of every extracted file equal the manifest's" "$n rows:$bad"
    fi
    msha=$(sha256sum "$db" | awk '{print $1}')
    expect_contains "$d: the signed trusted comment carries sha256sum of manifest.db" "$tc" "manifest-sha256=$msha"
done

# --- a bundle minisign cannot be fooled about -------------------------------------------------

B=app-golang-migrate-1.0.0.cmig
cp "$B" t.cmig; cp "$B.minisig" t.cmig.minisig
printf '\0' >>t.cmig
expect_exit 1 "minisign refuses a bundle with a byte appended" minisign -Vm t.cmig -p k.pub
expect_exit 0 "another cmig key" "$BUNDLE" keygen -W -q -o k2
expect_exit 1 "minisign refuses a bundle against another cmig key" minisign -Vm "$B" -p k2.pub

# --- minisign signs bundles with cmig-bundle's unencrypted key ------------------------------------

tc=$(sed -n 's/^trusted comment: //p' "$B.minisig")
OUT=$(minisign -S -s k.key -m "$B" -x ms.minisig -t "$tc" </dev/null 2>&1)
[ $? -eq 0 ] && ok "minisign -S signs with cmig-bundle's unencrypted key" || not_ok "minisign -S signs with cmig-bundle's unencrypted key" "$OUT"
expect_not_contains "...without asking for a password" "$OUT" "assword"
if [ "$(tail -n +2 ms.minisig)" = "$(tail -n +2 "$B.minisig")" ]; then
    ok "minisign's signature with the same trusted comment equals cmig-bundle's (deterministic Ed25519, same prehash)"
else
    not_ok "minisign's signature with the same trusted comment equals cmig-bundle's" "$(diff ms.minisig "$B.minisig")"
fi
expect_exit 0 "cmig-bundle verify accepts minisign's signature" "$BUNDLE" verify "$B" -P k.pub --signature ms.minisig
OUT=$(minisign -S -s k.key -m "$B" -x other-tc.minisig -t "something else" </dev/null 2>&1)
expect_exit 1 "cmig-bundle refuses a valid signature whose trusted comment does not name the bundle" \
    "$BUNDLE" verify "$B" -P k.pub --signature other-tc.minisig
expect_contains "...saying why" "$OUT" "trusted comment"
OUT=$(minisign -R -s k.key -p k-again.pub </dev/null 2>&1)
[ $? -eq 0 ] && ok "minisign -R reads cmig-bundle's secret key" || not_ok "minisign -R reads cmig-bundle's secret key" "$OUT"
same "minisign rebuilds cmig-bundle's public key file byte for byte" k-again.pub k.pub
printf 'hello\n' >file
OUT=$(minisign -S -s k.key -m file </dev/null 2>&1)
[ $? -eq 0 ] && ok "minisign -S -s k.key -m file (cmig key, any file)" || not_ok "minisign -S -s k.key -m file" "$OUT"
expect_exit 0 "minisign -V verifies it" minisign -Vm file -p k.pub

# --- cmig-bundle uses keys minisign made ---------------------------------------------------------

OUT=$(minisign -G -W -p mw.pub -s mw.key </dev/null 2>&1)
[ $? -eq 0 ] && ok "minisign -G -W" || not_ok "minisign -G -W" "$OUT"
MWID=$(head -1 mw.pub | awk '{print $NF}')
expect_exit 0 "cmig-bundle build --key with minisign's unencrypted key" \
    "$BUNDLE" build "$DIRS/golang-migrate" -n mw -V 1.0.0 -k mw.key -q
expect_exit 0 "cmig-bundle verify --pubkey with minisign's public key file" "$BUNDLE" verify mw-1.0.0.cmig --pubkey mw.pub
expect_contains "...naming minisign's key id" "$OUT" "$MWID"
# A bare base64 key string is a trusted key spec too. Base64 has '/' in its
# alphabet, so keys with and without one are both tried (minisign -G -W is
# cheap; a few tries find each kind).
for kind in slash noslash; do
    found=
    for _ in $(seq 1 60); do
        rm -f ks.pub ks.key
        minisign -G -W -p ks.pub -s ks.key </dev/null >/dev/null 2>&1 || break
        case $(sed -n 2p ks.pub) in */*) has=slash ;; *) has=noslash ;; esac
        [ "$has" = "$kind" ] && found=1 && break
    done
    if [ -z "$found" ]; then
        not_ok "a minisign key string ($kind) for the next test" "none found"
        continue
    fi
    OUT=$("$BUNDLE" build "$DIRS/golang-migrate" -n ks-$kind -V 1.0.0 -k ks.key -q 2>&1) || not_ok "build with key ($kind)" "$OUT"
    expect_exit 0 "cmig-bundle verify --pubkey with minisign's base64 key string ($kind)" \
        "$BUNDLE" verify ks-$kind-1.0.0.cmig --pubkey "$(sed -n 2p ks.pub)"
    CMIG_TRUSTED_KEYS="$T/k.pub,$(sed -n 2p ks.pub)" expect_exit 0 \
        "...and as an entry of CMIG_TRUSTED_KEYS ($kind)" "$BUNDLE" verify ks-$kind-1.0.0.cmig
done
expect_exit 0 "minisign verifies that bundle too" minisign -Vm mw-1.0.0.cmig -p mw.pub
expect_exit 1 "cmig-bundle verify refuses it with another key" "$BUNDLE" verify mw-1.0.0.cmig --pubkey k.pub

OUT=$(printf '%s\n%s\n' "$PW" "$PW" | minisign -G -p me.pub -s me.key 2>&1)
[ $? -eq 0 ] && ok "minisign -G (encrypted, password twice on stdin)" || not_ok "minisign -G (encrypted)" "$OUT"
CMIG_KEY_PASSWORD=$PW expect_exit 0 "cmig-bundle build with minisign's encrypted key and CMIG_KEY_PASSWORD" \
    "$BUNDLE" build "$DIRS/goose" -n me -V 1.0.0 -k me.key -q
expect_exit 0 "cmig-bundle verify --pubkey me.pub" "$BUNDLE" verify me-1.0.0.cmig --pubkey me.pub
expect_exit 0 "minisign verifies it" minisign -Vm me-1.0.0.cmig -p me.pub

# --- minisign uses cmig-bundle's encrypted key ---------------------------------------------------

CMIG_KEY_PASSWORD=$PW expect_exit 0 "cmig-bundle keygen (encrypted)" "$BUNDLE" keygen -q -o ek
OUT=$(printf '%s\n' "$PW" | minisign -S -s ek.key -m file -x file.ek.minisig 2>&1)
[ $? -eq 0 ] && ok "minisign -S decrypts cmig-bundle's encrypted key (password on stdin)" \
    || not_ok "minisign -S decrypts cmig-bundle's encrypted key" "$OUT"
expect_exit 0 "minisign verifies with cmig-bundle's public key" minisign -Vm file -p ek.pub -x file.ek.minisig

exit 0
