#!/usr/bin/env bash
# tests/cli/repro.sh - reproducible builds: the same migrations, name,
# version and SOURCE_DATE_EPOCH give the same bundle bytes, whatever the
# source files' times, owners, modes, location or creation order and
# whatever the builder's working directory, umask, time zone or locale; and
# anything that is part of the release (a byte of a migration, the version,
# SOURCE_DATE_EPOCH) gives different bytes. Ed25519 signatures are
# deterministic, so identical bundles get identical signatures.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

for v in $(compgen -e); do
    case $v in CMIG_TOP) ;; CMIG_*) unset "$v" ;; esac
done
unset SOURCE_DATE_EPOCH
# Under sanitizers a report must never pass for an exit code a test expects.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=86:print_stacktrace=1"

DIRS=$CMIG_TOP/tests/data/dirs
EPOCH=1712345678

if [ ! -x "$BUNDLE" ]; then
    not_ok "cmig-bundle is built" "$BUNDLE missing (make B=... $BUNDLE)"
    exit 1
fi
cd "$T" || exit 1

same() {
    if cmp -s "$2" "$3"; then ok "$1"; else not_ok "$1" "$(cmp "$2" "$3" 2>&1)"; fi
}
differ() {
    if [ ! -f "$2" ] || [ ! -f "$3" ]; then
        not_ok "$1" "$2 or $3 was not built"
    elif cmp -s "$2" "$3"; then
        not_ok "$1" "$2 and $3 are identical"
    else
        ok "$1"
    fi
}

# b OUT DIR [ARGS...]: a signed build of DIR as app 1.0.0 at $EPOCH (or at
# $E when E is set, even to nothing).
b() {
    local out=$1 dir=$2; shift 2
    OUT=$(SOURCE_DATE_EPOCH=${E-$EPOCH} "$BUNDLE" build "$dir" -n app -V 1.0.0 -k "$T/k.key" -r abc -q -o "$out" "$@" 2>&1)
    RC=$?
    [ "$RC" -eq 0 ] || not_ok "build $dir into $out" "exit $RC: $OUT"
}

expect_exit 0 "keygen" "$BUNDLE" keygen -W -q -o k

for d in golang-migrate goose dbmate flyway golang-migrate-json; do
    cp -r "$DIRS/$d" "src-$d"
    b "$d.1.cmig" "src-$d"
    b "$d.2.cmig" "src-$d"
    same "$d: two builds are byte-identical" "$d.1.cmig" "$d.2.cmig"
    same "$d: and so are their signatures" "$d.1.cmig.minisig" "$d.2.cmig.minisig"
done

# --- what must not matter ---------------------------------------------------------------

S=src-golang-migrate
REF=golang-migrate.1.cmig

find "$S" -type f -exec touch -d '2001-02-03 04:05:06' {} +
touch -d '1999-12-31 23:59:59' "$S"/1_create_users.up.sql
b mtime.cmig "$S"
same "source mtimes do not matter" mtime.cmig "$REF"

chmod 600 "$S"/1_create_users.up.sql
chmod 755 "$S"/2_create_posts.up.sql
chmod 444 "$S"/2_create_posts.down.sql
chmod 700 "$S"
b mode.cmig "$S"
same "source modes do not matter" mode.cmig "$REF"
chmod 755 "$S"

if [ "$(id -u)" -eq 0 ]; then
    chown -R 65534:65534 "$S"
    chown 12345:54321 "$S"/1_create_users.up.sql
    b owner.cmig "$S"
    same "source owners do not matter" owner.cmig "$REF"
    chown -R 0:0 "$S"
else
    ok "source owners do not matter # SKIP not root"
fi

mkdir -p elsewhere/deeper/path
cp -r "$S" elsewhere/deeper/path/other-name
(cd elsewhere && b "$T/copy.cmig" deeper/path/other-name)
same "a copy in another directory, built from another working directory" copy.cmig "$REF"
same "...gets the same signature" copy.cmig.minisig "$REF.minisig"

mkdir -p outdir/sub
b outdir/sub/renamed-output.cmig "$S"
same "the output path does not matter" outdir/sub/renamed-output.cmig "$REF"
same "...not even to the signature" outdir/sub/renamed-output.cmig.minisig "$REF.minisig"

ln -s "$T/$S" link-to-src
b link.cmig link-to-src
same "a symlink to the directory gives the same bundle" link.cmig "$REF"

# The same files created in the opposite order (directory order may differ).
mkdir reversed
for f in $(ls "$S" | sort -r); do cp "$S/$f" reversed/; done
b reversed.cmig reversed
same "the order files were created in does not matter" reversed.cmig "$REF"

(umask 077 && TZ=Pacific/Kiritimati LC_ALL=C.UTF-8 LANG=tr_TR.UTF-8 b env.cmig "$S")
same "umask, time zone and locale do not matter" env.cmig "$REF"

mkdir noreadme
cp "$S"/*.sql noreadme/
b noreadme.cmig noreadme
same "a file that is not a migration (README.md) does not matter" noreadme.cmig "$REF"

# --- what must matter ---------------------------------------------------------------------

E=$((EPOCH + 1)) b epoch.cmig "$S"
differ "a different SOURCE_DATE_EPOCH gives a different bundle" epoch.cmig "$REF"
differ "...and a different signature" epoch.cmig.minisig "$REF.minisig"
E='' b noepoch.cmig "$S"
OUT=$("$BUNDLE" build "$S" -n app -V 1.0.0 -k k.key -r abc -q -o noepoch2.cmig 2>&1)
same "an unset SOURCE_DATE_EPOCH is reproducible too (empty is the same as unset)" noepoch.cmig noepoch2.cmig
differ "...and differs from a set one" noepoch.cmig "$REF"

cp -r "$S" onebyte
f=onebyte/2_create_posts.up.sql
# Flip one byte in the middle of the file (same size, same name).
off=$(($(stat -c %s "$f") / 2))
c=$(dd if="$f" bs=1 skip="$off" count=1 status=none)
[ "$c" = X ] && r=Y || r=X
printf '%s' "$r" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
[ "$(stat -c %s "$f")" -eq "$(stat -c %s "$S/2_create_posts.up.sql")" ] && ok "setup: the changed file kept its size" || not_ok "setup: the changed file kept its size"
b onebyte.cmig onebyte
differ "a one-byte change in one migration gives a different bundle" onebyte.cmig "$REF"
differ "...and a different signature" onebyte.cmig.minisig "$REF.minisig"
printf '%s' "$c" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
b onebyte-back.cmig onebyte
same "changing the byte back gives the original bundle again" onebyte-back.cmig "$REF"

cp -r "$S" downbyte
printf ' ' >>downbyte/1_create_users.down.sql
b downbyte.cmig downbyte
differ "a byte appended to a down migration gives a different bundle" downbyte.cmig "$REF"

OUT=$(SOURCE_DATE_EPOCH=$EPOCH "$BUNDLE" build "$S" -n app -V 1.0.1 -k k.key -r abc -q -o version.cmig 2>&1)
differ "a different version gives a different bundle" version.cmig "$REF"
OUT=$(SOURCE_DATE_EPOCH=$EPOCH "$BUNDLE" build "$S" -n app -V 1.0.0 -k k.key -r abd -q -o rev.cmig 2>&1)
differ "a different source revision gives a different bundle" rev.cmig "$REF"

# --- signatures --------------------------------------------------------------------------

OUT=$(SOURCE_DATE_EPOCH=$EPOCH "$BUNDLE" build "$S" -n app -V 1.0.0 -r abc --unsigned -q -o late.cmig 2>&1)
same "an unsigned build has the same bytes as a signed one" late.cmig "$REF"
expect_exit 0 "sign it afterwards" "$BUNDLE" sign late.cmig -k k.key -q
same "signing later gives the same signature as signing at build time" late.cmig.minisig "$REF.minisig"
expect_exit 0 "sign it again" "$BUNDLE" sign late.cmig -k k.key -q --signature again.minisig
same "signing twice gives the same signature (Ed25519 is deterministic)" late.cmig.minisig again.minisig
expect_exit 0 "another key" "$BUNDLE" keygen -W -q -o k2
expect_exit 0 "sign with another key" "$BUNDLE" sign late.cmig -k k2.key -q --signature k2.minisig
differ "another key gives another signature" late.cmig.minisig k2.minisig

# --- what the archive itself carries ---------------------------------------------------------

# gzip header bytes 4-7 are the compression time: always zero here.
mtime=$(od -A n -t x1 -j 4 -N 4 "$REF" | tr -d ' \n')
[ "$mtime" = 00000000 ] && ok "the gzip header has no timestamp" || not_ok "the gzip header has no timestamp" "bytes 4-7: $mtime"
if command -v tar >/dev/null 2>&1; then
    listing=$(TZ=UTC tar tvzf "$REF" --numeric-owner --full-time 2>&1)
    want_time=$(TZ=UTC date -d "@$EPOCH" '+%Y-%m-%d %H:%M:%S')
    bad=$(awk -v t="$want_time" '$2 != "0/0" || $1 != "-rw-r--r--" || ($4 " " $5) != t' <<<"$listing")
    if [ -z "$bad" ] && [ -n "$listing" ]; then
        ok "every entry is owned by 0/0, mode 0644, dated SOURCE_DATE_EPOCH"
    else
        not_ok "every entry is owned by 0/0, mode 0644, dated SOURCE_DATE_EPOCH" "$bad"
    fi
fi

exit 0
