#!/usr/bin/env bash
# tamper.sh - every small change to a signed bundle or to its signature is
# refused; changes to the untrusted comment are not.
#
# The exhaustive part (each byte with several values, every truncation,
# appended tails, each byte of the .minisig by region) runs in-process in
# tests/tools/tamper, which prints its own counts. A sample of the same
# changes then goes through the real `cmig-bundle verify`, to tie the
# library's refusals to the program's exit code 1.
SUITE_NAME=tamper
. "$(dirname "$0")/../lib.sh"

TAMPER=$TOOLS/tamper
for bin in "$BUNDLE" "$TAMPER"; do
    if [ ! -x "$bin" ]; then
        not_ok "setup" "$bin is not built"
        exit 1
    fi
done

expect_exit 0 "keygen" "$BUNDLE" keygen --output "$T/k" --no-password --quiet
# A signature whose base64 holds a '/', so that the non-ASCII check below
# always has something to bite on (a few tries at most: each of its ~190
# characters is '/' one time in 64).
A=$T/app.cmig
for epoch in $(seq 1700000000 1700000019); do
    SOURCE_DATE_EPOCH=$epoch "$BUNDLE" build "$CMIG_TOP/examples/migrations" --name app \
        --version 1.4.0 --key "$T/k.key" --output "$A" --quiet || break
    sed -n '2p;4p' "$A.minisig" | grep -q / && break
done
expect_exit 0 "build a small signed bundle with a '/' in its signature" \
    sh -c "sed -n '2p;4p' '$A.minisig' | grep -q /"
expect_exit 0 "it verifies" "$BUNDLE" verify "$A" --pubkey "$T/k.pub"
size=$(stat -c %s "$A")

# The exhaustive run; its lines are this suite's lines.
report=$("$TAMPER" "$A" "$T/k.pub")
rc=$?
printf '%s\n' "$report"
if [ "$rc" -eq 2 ]; then
    not_ok "tamper tool" "setup error (exit 2)"
fi
tried=$(printf '%s\n' "$report" |
    sed -n 's/^ok - tamper: \([0-9]*\) single-byte changes of the bundle.*/\1/p')
if [ -n "$tried" ] && [ "$tried" -ge $((size * 3)) ]; then
    ok "$tried single-byte changes tried for a $size-byte bundle"
else
    not_ok "single-byte changes tried for a $size-byte bundle" "tool reported '$tried'"
fi

# flip FILE OFFSET: xor one byte with 0x01, in place.
flip() {
    local b
    b=$(od -An -tu1 -j"$2" -N1 "$1" | tr -d ' ')
    printf "$(printf '\\%03o' $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# A sample through the program: exit 1 each time, and the file still
# refused for the reason the signature gives.
n=0
for off in 0 1 2 3 9 10 100 $((size / 4)) $((size / 2)) $((3 * size / 4)) $((size - 9)) \
    $((size - 5)) $((size - 1)); do
    cp "$A" "$T/x.cmig"
    cp "$A.minisig" "$T/x.cmig.minisig"
    flip "$T/x.cmig" "$off"
    expect_exit 1 "verify refuses byte $off changed" "$BUNDLE" verify "$T/x.cmig" --pubkey "$T/k.pub"
    expect_contains "byte $off: the signature says so" "$OUT" "signature verification failed"
    n=$((n + 1))
done
for len in 0 1 $((size / 2)) $((size - 8)) $((size - 1)); do
    head -c "$len" "$A" >"$T/x.cmig"
    expect_exit 1 "verify refuses the bundle cut to $len bytes" "$BUNDLE" verify "$T/x.cmig" \
        --pubkey "$T/k.pub"
    n=$((n + 1))
done
{ cat "$A"; printf 'x'; } >"$T/x.cmig"
expect_exit 1 "verify refuses one appended byte" "$BUNDLE" verify "$T/x.cmig" --pubkey "$T/k.pub"
{ cat "$A"; cat "$A"; } >"$T/x.cmig"
expect_exit 1 "verify refuses the bundle twice over" "$BUNDLE" verify "$T/x.cmig" --pubkey "$T/k.pub"
ok "$((n + 2)) changed bundles refused by cmig-bundle verify"

# The signature file, edited as a person would.
cp "$A" "$T/x.cmig"
sig_try() { # DESCRIPTION EXPECTED_EXIT: verify x.cmig with the edited signature
    if cmp -s "$A.minisig" "$T/x.cmig.minisig"; then
        not_ok "$1" "the edit changed nothing"
        return
    fi
    expect_exit "$2" "$1" "$BUNDLE" verify "$T/x.cmig" --pubkey "$T/k.pub"
}
sig_sed() { # DESCRIPTION EXPECTED_EXIT SED_SCRIPT
    sed "$3" "$A.minisig" >"$T/x.cmig.minisig"
    sig_try "$1" "$2"
}
sig_char() { # DESCRIPTION EXPECTED_EXIT LINE POSITION: one character replaced
    awk -v L="$3" -v P="$4" 'NR == L {
        c = substr($0, P, 1); r = (c == "A") ? "B" : "A"
        $0 = substr($0, 1, P - 1) r substr($0, P + 1)
    } 1' "$A.minisig" >"$T/x.cmig.minisig"
    sig_try "$1" "$2"
}
tc_at() { # position of the first character after TEXT on the trusted comment line
    awk -v S="$1" 'NR == 3 { print index($0, S) + length(S) }' "$A.minisig"
}
sig_sed "untrusted comment edited: still verifies" 0 '1s/.*/untrusted comment: edited by hand/'
sig_sed "untrusted comment emptied: still verifies" 0 '1s/.*/untrusted comment: /'
sig_char "untrusted comment, one character: still verifies" 0 1 25
sig_sed "trusted comment version edited: refused" 1 '3s/version=1\.4\.0/version=1.4.1/'
expect_contains "trusted comment version edited: message" "$OUT" \
    "trusted comment signature verification failed"
sig_sed "trusted comment name edited: refused" 1 '3s/name=app/name=apq/'
sig_char "trusted comment manifest hash edited: refused" 1 3 "$(tc_at manifest-sha256=)"
expect_contains "trusted comment manifest hash edited: message" "$OUT" \
    "trusted comment signature verification failed"
sig_sed "trusted comment prefix edited: refused" 1 '3s/^trusted/Trusted/'
sig_char "key id edited: refused" 1 2 4
expect_contains "key id edited: message" "$OUT" "which is not among the 1 trusted key(s)"
sig_char "signature bytes edited: refused" 1 2 41
expect_contains "signature bytes edited: message" "$OUT" "signature verification failed"
sig_char "global signature edited: refused" 1 4 11
expect_contains "global signature edited: message" "$OUT" \
    "trusted comment signature verification failed"
sig_sed "signature line dropped: refused" 1 '2d'
# libsodium 1.0.18 decodes any byte >= 0x80 as '/': the same signature,
# spelled with a byte that is not base64, must still be refused.
LC_ALL=C sed '2s|/|\xc3|;t;4s|/|\xc3|' "$A.minisig" >"$T/x.cmig.minisig"
sig_try "a '/' of the signature spelled as a non-ASCII byte: refused" 1
sig_sed "a fifth line: refused" 1 '4a\
extra'
exit 0
