#!/usr/bin/env bash
# hostile.sh - correctly signed but hostile bundles must each be refused by
# `cmig-bundle verify` (exit 1) with their own message.
#
# The bundles come from tests/tools/mkbundle, which signs what it writes
# with a real key: the signature holds, so each refusal proves one of the
# checks that come after it. `inspect` without a key skips the signature
# but not the structure, so it must refuse every structural case the same
# way; the cases about the signed trusted comment are only visible with a
# key. Every scenario mkbundle knows must be listed here.
SUITE_NAME=hostile
. "$(dirname "$0")/../lib.sh"

MK=$TOOLS/mkbundle
for bin in "$BUNDLE" "$MK"; do
    if [ ! -x "$bin" ]; then
        not_ok "setup" "$bin is not built"
        exit 1
    fi
done

expect_exit 0 "keygen" "$BUNDLE" keygen --output "$T/k" --no-password --quiet
expect_exit 0 "second keygen" "$BUNDLE" keygen --output "$T/other" --no-password --quiet
KEY=$T/k.key
PUB=$T/k.pub

# scenario | scope | message
#   scope "all": refused by verify, by inspect with and without a key;
#   scope "signed": only what the signature vouches for is wrong, so
#   inspect without a key shows the bundle as not verified.
CASES=$(cat <<'EOF'
traversal|all|path traversal '../x' in archive
traversal-nested|all|path traversal 'migrations/../../x' in archive
traversal-pax|all|/../../../x' in archive
absolute|all|absolute path '/etc/x' in archive
unsafe-entry|all|unsafe path 'migrations/1 evil.sql' in archive
symlink|all|symlink 'migrations/1_create_users.up.sql' in archive
hardlink|all|hardlink 'migrations/1_create_users.down.sql' in archive
device|all|device node 'migrations/1_create_users.up.sql' in archive
block-device|all|device node 'migrations/1_create_users.up.sql' in archive
fifo|all|FIFO 'migrations/1_create_users.up.sql' in archive
directory|all|directory 'migrations/1_create_users.up.sql/' where a file belongs
sparse|all|sparse entry 'migrations/1_create_users.up.sql' in archive
duplicate|all|duplicate entry 'migrations/1_create_users.up.sql' in archive
duplicate-last|all|duplicate entry 'migrations/3_add_email.up.sql' in archive
duplicate-manifest|all|duplicate entry 'manifest.db' in archive
undeclared|all|undeclared file 'migrations/9_evil.up.sql' in archive
undeclared-middle|all|undeclared file 'migrations/9_evil.up.sql' in archive
missing|all|missing file 'migrations/3_add_email.up.sql'
missing-middle|all|missing file 'migrations/1_create_users.down.sql' (found 'migrations/2_index_names.up.sql' in its place)
reordered|all|missing file 'migrations/1_create_users.up.sql' (found 'migrations/1_create_users.down.sql' in its place)
hash|all|hash mismatch for 'migrations/1_create_users.up.sql'
size|all|size mismatch for 'migrations/1_create_users.up.sql': archive has 82 bytes, manifest 65
oversize|all|entry 'migrations/1_create_users.up.sql' is 314572800 bytes, over the cap of 268435456 bytes
oversize-listed|all|manifest lists 'migrations/3_add_email.up.sql' at 314572800 bytes, over the cap of 268435456
total-over|all|manifest lists 4563402966 bytes in all, over the cap of 4294967296
too-many|all|too many entries: 100006, over the cap of 100001
gzip-bomb|all|compression ratio over the cap of 200:1
pax-header-bomb|all|compression ratio over the cap of 200:1
pax-header-bomb-end|all|compression ratio over the cap of 200:1
gzip-twice|all|more than one compression layer (2)
plain-tar|all|not gzip-compressed
xz|all|not a gzip-compressed tar archive
gzip-not-tar|all|not a gzip-compressed tar archive
zero-bytes|all|not a gzip-compressed tar archive
empty|all|empty archive: no 'manifest.db'
manifest-not-first|all|first entry is 'migrations/1_create_users.up.sql', not 'manifest.db'
truncated|all|migrations/2_index_names.up.sql: Truncated tar archive
manifest-truncated|all|manifest.db: Truncated
tc-hash|signed|manifest SHA-256 does not match the signed trusted comment
tc-name|signed|signed as 'other 1.0.0' but the manifest says 'app 1.0.0'
tc-version|signed|signed as 'app 9.9.9' but the manifest says 'app 1.0.0'
tc-format|signed|signed for format version 2; this cmig reads 1
tc-garbage|signed|trusted comment does not describe a cmig bundle
manifest-oversize|all|entry 'manifest.db' is 68157440 bytes, over the cap of 67108864 bytes
manifest-not-sqlite|all|manifest: not a SQLite database
manifest-empty|all|manifest: not a SQLite database
manifest-app-id|all|manifest: not a cmig manifest (application_id 0x00000001)
manifest-future|all|manifest: format version 2 is not supported (this cmig reads 1)
manifest-extra-table|all|manifest: unexpected schema object 'extra'
manifest-altered|all|manifest: unexpected schema object 'migration'
manifest-trigger|all|manifest: unexpected schema object 't'
manifest-index|all|manifest: unexpected schema object 'by_name'
manifest-unsafe-path|all|manifest: migration 3: unsafe path '../x'
manifest-bad-hex|all|manifest: migration 1: up_sha256 is not 64 lower-case hex digits
manifest-duplicate-path|all|manifest: path 'migrations/1_create_users.up.sql' is listed twice
EOF
)

# Every scenario the tool knows is either a "good" control or listed above.
known=$("$MK" --list | grep -v '^good' | sort)
listed=$(printf '%s\n' "$CASES" | cut -d'|' -f1 | sort)
if [ "$known" = "$listed" ]; then
    ok "every mkbundle scenario has an expected message"
else
    not_ok "every mkbundle scenario has an expected message" \
        "$(diff <(printf '%s\n' "$known") <(printf '%s\n' "$listed"))"
fi

# The controls: mkbundle's own valid bundles verify, so a refusal below can
# only come from what the scenario changed.
for s in $("$MK" --list | grep '^good'); do
    if ! "$MK" "$KEY" "$T/$s.cmig" "$s" 2>"$T/mk.err"; then
        not_ok "$s: mkbundle" "$(cat "$T/mk.err")"
        continue
    fi
    expect_exit 0 "$s: verifies" "$BUNDLE" verify "$T/$s.cmig" --pubkey "$PUB"
    expect_contains "$s: verify names the bundle" "$OUT" "is app 1.0.0 (3 migrations)"
    expect_exit 0 "$s: inspect without a key" "$BUNDLE" inspect "$T/$s.cmig"
    expect_exit 0 "$s: tar lists it" tar tzf "$T/$s.cmig"
done

while IFS='|' read -r s scope msg; do
    [ -n "$s" ] || continue
    f=$T/$s.cmig
    if ! "$MK" "$KEY" "$f" "$s" 2>"$T/mk.err"; then
        not_ok "$s: mkbundle" "$(cat "$T/mk.err")"
        continue
    fi
    expect_exit 1 "$s: verify refuses" "$BUNDLE" verify "$f" --pubkey "$PUB"
    expect_contains "$s: verify says why" "$OUT" "cmig-bundle: error: bundle '$f': "
    expect_contains "$s: verify message" "$OUT" "$msg"
    expect_exit 1 "$s: inspect with a key refuses" "$BUNDLE" inspect "$f" --pubkey "$PUB"
    expect_contains "$s: inspect with a key message" "$OUT" "$msg"
    if [ "$scope" = all ]; then
        expect_exit 1 "$s: inspect without a key refuses" "$BUNDLE" inspect "$f"
        expect_contains "$s: inspect without a key message" "$OUT" "$msg"
        expect_exit 1 "$s: inspect --json without a key refuses" "$BUNDLE" inspect --json "$f"
        expect_not_contains "$s: inspect --json prints nothing on stdout" \
            "$("$BUNDLE" inspect --json "$f" 2>/dev/null)" "{"
    else
        expect_exit 0 "$s: inspect without a key shows it" "$BUNDLE" inspect "$f"
        expect_contains "$s: inspect without a key says so" "$OUT" "NOT VERIFIED"
    fi
done <<<"$CASES"

# The signature checks in front of all of the above.
"$MK" "$KEY" "$T/sig.cmig" good 2>/dev/null
expect_exit 1 "wrong key: refused" "$BUNDLE" verify "$T/sig.cmig" --pubkey "$T/other.pub"
expect_contains "wrong key: message" "$OUT" "which is not among the 1 trusted key(s)"
expect_exit 0 "both keys: verifies" "$BUNDLE" verify "$T/sig.cmig" --pubkey "$T/other.pub" \
    --pubkey "$PUB"
cp "$T/sig.cmig" "$T/nosig.cmig"
expect_exit 1 "unsigned: refused" "$BUNDLE" verify "$T/nosig.cmig" --pubkey "$PUB"
expect_contains "unsigned: message" "$OUT" "unsigned bundle refused: no signature file '$T/nosig.cmig.minisig'"
"$MK" "$KEY" "$T/hash.cmig" hash 2>/dev/null
expect_exit 1 "signature of another bundle: refused" "$BUNDLE" verify "$T/hash.cmig" \
    --pubkey "$PUB" --signature "$T/sig.cmig.minisig"
expect_contains "signature of another bundle: message" "$OUT" "signature verification failed"
OUT=$("$BUNDLE" verify --quiet "$T/hash.cmig" --pubkey "$PUB" 2>&1); RC=$?
if [ "$RC" -eq 1 ] && [ -z "$OUT" ]; then
    ok "quiet refusal: exit 1, no output"
else
    not_ok "quiet refusal: exit 1, no output" "exit $RC: $OUT"
fi
exit 0
