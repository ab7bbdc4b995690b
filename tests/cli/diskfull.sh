#!/usr/bin/env bash
# diskfull.sh - `cmig-bundle build` into a full disk, and with its file
# system calls failing one at a time: the output path must hold either the
# previous bundle and signature, byte for byte, or the new ones, complete;
# nothing is left half-written or lying next to them.
#
# 1. A tmpfs mounted at every size from "the previous release only" to
#    "room for both" (page by page), and with exactly as many inodes as
#    the previous release uses (and one more): the build runs out of
#    space at a different point of its writing each time. Skipped (with
#    the interposer doing ENOSPC instead) when tmpfs cannot be mounted.
# 2. tests/attack/fault.so (LD_PRELOAD) fails the Nth write, fsync, close,
#    rename, mkostemp or fchmod on a regular file with EIO, for every N a
#    build makes, and the Nth write with ENOSPC.
# The one state between the two renames (the new bundle beside the old
# signature) is allowed only where the second rename itself fails, and
# must then be refused by `cmig-bundle verify`.
SUITE_NAME=diskfull
. "$(dirname "$0")/../lib.sh"

FAULT_SO=$B/tests/attack/fault.so
for bin in "$BUNDLE" "$FAULT_SO"; do
    if [ ! -e "$bin" ]; then
        not_ok "setup" "$bin is not built"
        exit 1
    fi
done
# fault.so goes ahead of a sanitizer runtime on purpose (tests/attack/fault.c).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0:exitcode=86"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}exitcode=86"
export SOURCE_DATE_EPOCH=1700000000
expect_exit 0 "keygen" "$BUNDLE" keygen --output "$T/k" --no-password --quiet

# About 120 KB of bundle that gzip cannot shrink much: text from a fixed
# pseudo-random sequence, so the sizes are the same every run.
M=$T/migrations
mkdir -p "$M"
printf 'CREATE TABLE small (x int);\n' >"$M/1_small.up.sql"
awk 'BEGIN { srand(7); printf "CREATE TABLE big (t text);\nINSERT INTO big VALUES (\x27";
    for (i = 0; i < 160000; i++) printf "%c", 97 + int(rand() * 26);
    printf "\x27);\n" }' >"$M/2_big.up.sql"
build() { # OUTPUT [ENV...]: the build under test
    local out=$1
    shift
    env "$@" "$BUNDLE" build "$M" --name app --version 2.0.0 --key "$T/k.key" --output "$out" -q
}
mkdir -p "$T/new" "$T/old"
expect_exit 0 "the new release builds" build "$T/new/app.cmig"
# The previous release: another version of the same directory.
expect_exit 0 "the previous release builds" "$BUNDLE" build "$M" --name app --version 1.0.0 \
    --key "$T/k.key" --output "$T/old/app.cmig" -q
NEW=$T/new/app.cmig
OLD=$T/old/app.cmig

# check_state DIR RC DESC [ALLOW_MIXED]: after a build into DIR/app.cmig
# that exited RC: exit 0 means the new pair; any other exit means exit 6
# with the old pair or (the renames done, a later step failed) the new
# pair; never anything else beside them.
check_state() {
    local d=$1 rc=$2 desc=$3 mixed=${4:-0} extra state=other
    extra=$(ls -A "$d" | grep -v -x -e app.cmig -e app.cmig.minisig | tr '\n' ' ')
    if cmp -s "$d/app.cmig" "$OLD" && cmp -s "$d/app.cmig.minisig" "$OLD.minisig"; then
        state=old
    elif cmp -s "$d/app.cmig" "$NEW" && cmp -s "$d/app.cmig.minisig" "$NEW.minisig"; then
        state=new
    elif cmp -s "$d/app.cmig" "$NEW" && cmp -s "$d/app.cmig.minisig" "$OLD.minisig"; then
        state=mixed
    fi
    STATE=$state
    if [ -n "$extra" ]; then
        not_ok "$desc" "left beside the bundle: $extra"
    elif [ "$rc" -eq 0 ] && [ "$state" = new ]; then
        return 0
    elif [ "$rc" -eq 6 ] && { [ "$state" = old ] || [ "$state" = new ]; }; then
        return 0
    elif [ "$rc" -eq 6 ] && [ "$state" = mixed ] && [ "$mixed" -eq 1 ]; then
        if "$BUNDLE" verify "$d/app.cmig" --pubkey "$T/k.pub" >/dev/null 2>&1; then
            not_ok "$desc" "the new bundle beside the old signature verified"
        else
            return 0
        fi
    else
        not_ok "$desc" "exit $rc, output is '$state': $(head -c 300 "$T/err")"
    fi
    return 1
}

# ---- 1. a full tmpfs ---------------------------------------------------------
MNT=$T/mnt
mkdir -p "$MNT"
mounted=0
cleanup_mount() {
    [ "$mounted" -eq 1 ] && umount "$MNT" 2>/dev/null
    mounted=0
}
trap 'cleanup_mount; rm -rf "$T"' EXIT
pages() { echo $((($(stat -c %s "$1") + 4095) / 4096)); }
old_pages=$(($(pages "$OLD") + $(pages "$OLD.minisig")))
new_pages=$(($(pages "$NEW") + $(pages "$NEW.minisig")))
can_mount=1
if ! mount -t tmpfs -o size=64k tmpfs "$MNT" 2>"$T/mount.err"; then
    can_mount=0
    echo "# tmpfs cannot be mounted here ($(head -1 "$T/mount.err")): ENOSPC comes from the interposer only"
else
    umount "$MNT"
fi
if [ "$can_mount" -eq 1 ]; then
    # mount_full SIZE_PAGES [INODES]: a fresh tmpfs holding the previous release.
    mount_full() {
        local opt="size=$(($1 * 4))k,mode=755"
        [ -n "${2:-}" ] && opt="$opt,nr_inodes=$2"
        mount -t tmpfs -o "$opt" tmpfs "$MNT" || return 1
        mounted=1
        mkdir "$MNT/out" && cp "$OLD" "$OLD.minisig" "$MNT/out/"
    }
    failed=0 succeeded=0 bad=0 points=""
    for ((p = old_pages; p <= old_pages + new_pages + 2; p++)); do
        if ! mount_full "$p"; then
            not_ok "tmpfs of $p pages" "cannot mount or fill it"
            cleanup_mount
            continue
        fi
        build "$MNT/out/app.cmig" >"$T/out" 2>"$T/err"
        rc=$?
        if check_state "$MNT/out" "$rc" "tmpfs of $p pages"; then
            if [ "$rc" -eq 0 ]; then
                succeeded=$((succeeded + 1))
            elif grep -q "error: .*'$MNT/out[/'].*No space left on device" "$T/err"; then
                failed=$((failed + 1))
                points="$points $((p - old_pages))"
            else
                bad=$((bad + 1))
                not_ok "tmpfs of $p pages: the error names the file and says the disk is full" \
                    "$(cat "$T/err")"
            fi
        else
            bad=$((bad + 1))
        fi
        cleanup_mount
    done
    echo "# tmpfs: $failed sizes ran out of space (pages free besides the previous release:$points), $succeeded had room"
    if [ "$bad" -eq 0 ] && [ "$failed" -ge $((new_pages - 2)) ] && [ "$succeeded" -ge 1 ]; then
        ok "a full tmpfs at $failed sizes: exit 6, the file named and 'No space left on device', the previous bundle and signature intact; $succeeded sizes with room: the new ones"
    else
        not_ok "a full tmpfs at every size" "$bad bad, $failed failed, $succeeded succeeded"
    fi

    # Out of inodes: none left for the bundle's temporary file, then none
    # for the signature's.
    used_inodes=
    mount_full 64 && used_inodes=$(df --output=iused "$MNT" | tail -1 | tr -d ' ')
    cleanup_mount
    for extra in 0 1; do
        if mount_full 64 $((used_inodes + extra)); then
            build "$MNT/out/app.cmig" >"$T/out" 2>"$T/err"
            rc=$?
            if check_state "$MNT/out" "$rc" "tmpfs with $extra spare inodes" &&
                [ "$rc" -eq 6 ] && [ "$STATE" = old ]; then
                ok "tmpfs with $extra spare inodes: exit 6, previous release intact ($(head -c 120 "$T/err"))"
            elif [ "$rc" -ne 6 ] || [ "$STATE" != old ]; then
                not_ok "tmpfs with $extra spare inodes: exit 6, previous release intact" \
                    "exit $rc, output '$STATE': $(cat "$T/err")"
            fi
        else
            not_ok "tmpfs with $extra spare inodes" "cannot mount it"
        fi
        cleanup_mount
    done
fi

# ---- 2. failing calls ---------------------------------------------------------
W=$T/w
prepare() {
    rm -rf "$W"
    mkdir -p "$W"
    cp "$OLD" "$OLD.minisig" "$W/"
}
# count_calls CALL: how many of them a build makes.
count_calls() {
    prepare
    build "$W/app.cmig" FAULT_IO="$1:0:EIO" FAULT_REPORT="$T/report" LD_PRELOAD="$FAULT_SO" \
        >/dev/null 2>&1
    sed -n 's/.* io \([0-9]*\) .*/\1/p' "$T/report"
}
for spec in any:EIO write:ENOSPC mkostemp:ENOSPC; do
    call=${spec%%:*} errno_name=${spec#*:}
    total=$(count_calls "$call")
    if [ -z "$total" ] || [ "$total" -eq 0 ]; then
        not_ok "$call calls are counted" "the interposer saw none"
        continue
    fi
    bad=0 fired_all=1 hist=""
    for ((n = 1; n <= total; n++)); do
        prepare
        build "$W/app.cmig" FAULT_IO="$call:$n:$errno_name" FAULT_REPORT="$T/report" \
            FAULT_STACK=1 LD_PRELOAD="$FAULT_SO" >"$T/out" 2>"$T/err"
        rc=$?
        grep -q " fired 1$" "$T/report" || fired_all=0
        # Which call failed: the line fault.so printed.
        what=$(sed -n 's/^fault: \(.*\) fails here$/\1/p' "$T/err")
        # The new bundle beside the old signature is allowed only where the
        # signature's rename itself failed.
        mixed=0
        grep -q "cannot rename into '.*minisig'" "$T/err" && mixed=1
        if ! check_state "$W" "$rc" "$call #$n fails with $errno_name" "$mixed"; then
            bad=$((bad + 1))
        elif [ "$rc" -ne 0 ] && ! grep -q "error: .*\(Input/output error\|No space left\)" "$T/err"; then
            not_ok "$call #$n fails with $errno_name: the error names it" "$(cat "$T/err")"
            bad=$((bad + 1))
        elif [ "$rc" -ne 0 ] && ! grep -q "error: .*'$W[/']" "$T/err"; then
            # Which file could not be written is what the operator acts on.
            not_ok "$call #$n fails with $errno_name: the error names the file" "$(cat "$T/err")"
            bad=$((bad + 1))
        fi
        hist="$hist $what:$rc:$STATE"
    done
    summary=$(printf '%s\n' $hist | sort | uniq -c | awk '{ printf "%s %s x%d, ", $2, "", $1 }' |
        sed 's/  / /g; s/, $//')
    if [ "$bad" -eq 0 ] && [ "$fired_all" -eq 1 ]; then
        ok "each of the $total ${call/any/file-system} calls of a build failing with $errno_name: the previous release or the new one, whole ($summary)"
    else
        not_ok "each of the $total $call calls failing with $errno_name" "$bad bad, fired in all: $fired_all"
    fi
done
exit 0
