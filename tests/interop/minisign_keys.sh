#!/usr/bin/env bash
# tests/interop/minisign_keys.sh - cmig's keys and signatures against the
# real minisign program, in both directions: minisign verifies what cmig
# signs with keys cmig wrote, cmig signs with keys minisign wrote and
# verifies what minisign signs, and both refuse the same tampering.
#
# minisign's scrypt limits cost about 1 GiB and a few seconds per use, so
# the encrypted-key steps are few and each one proves something different.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

SIGTOOL=$TOOLS/sigtool
PW=cmig-interop-pass

if ! command -v minisign >/dev/null 2>&1; then
    not_ok "minisign is installed" "minisign not found in PATH (apt-get install minisign)"
    exit 1
fi
if [ ! -x "$SIGTOOL" ]; then
    not_ok "sigtool is built" "$SIGTOOL missing (make B=... $SIGTOOL)"
    exit 1
fi
cd "$T" || exit 1

printf 'CREATE TABLE users (id integer primary key);\n' >data
head -c 300000 /dev/urandom >big # more than one 64 KiB read

# key_id PUBFILE: the key id a public key file's comment names, as cmig
# prints it (16 hex digits; minisign drops leading zeros in its comments).
key_id() {
    printf '%16s' "$(head -1 "$1" | awk '{print $NF}')" | tr ' ' 0
}

# flip_char FILE LINE COL: FILE with one base64 character changed.
flip_char() {
    awk -v L="$2" -v C="$3" 'NR == L {
        c = substr($0, C, 1); r = (c == "A") ? "B" : "A"
        $0 = substr($0, 1, C - 1) r substr($0, C + 1)
    } { print }' "$1"
}

# Both tools must refuse a tampered signature: sigtool with exit 1 and the
# given message, minisign with exit 1.
both_refuse() {
    local desc=$1 sig=$2 pub=$3 file=$4 msg=$5
    expect_exit 1 "$desc: sigtool refuses" "$SIGTOOL" verify "$pub" "$file" "$sig"
    expect_contains "$desc: sigtool says why" "$OUT" "$msg"
    expect_exit 1 "$desc: minisign refuses" minisign -Vm "$file" -p "$pub" -x "$sig"
}

# --- keys written by sigtool, used by minisign --------------------------------

expect_exit 0 "sigtool genkey (unencrypted)" "$SIGTOOL" genkey plain
expect_exit 0 "minisign -R reads sigtool's unencrypted secret key" \
    minisign -R -s plain.key -p plain-again.pub
if cmp -s plain.pub plain-again.pub; then
    ok "minisign rebuilds sigtool's public key file byte for byte"
else
    not_ok "minisign rebuilds sigtool's public key file byte for byte" \
        "$(diff plain.pub plain-again.pub)"
fi

expect_exit 0 "sigtool signs a multi-chunk file" "$SIGTOOL" sign plain.key big big.minisig
expect_exit 0 "minisign -V -H verifies it (prehashed)" minisign -V -H -m big -p plain.pub
expect_contains "minisign checked both signatures" "$OUT" "Signature and comment signature verified"

expect_exit 0 "minisign -S signs with sigtool's unencrypted key" \
    minisign -S -s plain.key -m data -x data.from-minisign -t "signed by minisign"
expect_exit 0 "sigtool verifies it" "$SIGTOOL" verify plain.pub data data.from-minisign
expect_contains "sigtool shows the trusted comment" "$OUT" "trusted comment: signed by minisign"

expect_exit 0 "sigtool genkey (encrypted)" "$SIGTOOL" genkey enc "$PW"
expect_contains "sigtool's encrypted key is marked as such" "$(head -1 enc.key)" "encrypted"
expect_exit 0 "sigtool signs with its encrypted key" \
    "$SIGTOOL" sign enc.key data data.enc.minisig "$PW" "app 1.4.0"
expect_exit 0 "minisign verifies it" minisign -Vm data -p enc.pub -x data.enc.minisig
expect_contains "minisign shows the trusted comment" "$OUT" "Trusted comment: app 1.4.0"
OUT=$(printf '%s\n' "$PW" | minisign -S -s enc.key -m data -x data.enc2.minisig 2>&1)
if [ $? -eq 0 ]; then
    ok "minisign decrypts sigtool's encrypted key and signs"
else
    not_ok "minisign decrypts sigtool's encrypted key and signs" "$OUT"
fi
expect_exit 0 "sigtool verifies it" "$SIGTOOL" verify enc.pub data data.enc2.minisig

# --- keys written by minisign, used by sigtool --------------------------------

OUT=$(printf '%s\n%s\n' "$PW" "$PW" | minisign -G -p menc.pub -s menc.key 2>&1)
if [ $? -eq 0 ]; then ok "minisign -G (encrypted)"; else not_ok "minisign -G (encrypted)" "$OUT"; fi
expect_exit 0 "sigtool signs with minisign's encrypted key" \
    "$SIGTOOL" sign menc.key data data.menc.minisig "$PW"
expect_exit 0 "minisign verifies it" minisign -Vm data -p menc.pub -x data.menc.minisig
expect_exit 1 "sigtool refuses a wrong password" \
    "$SIGTOOL" sign menc.key data wrong.minisig not-the-password
expect_contains "the wrong password message is clear" "$OUT" "wrong password for secret key 'menc.key'"
expect_not_contains "the message does not show the password" "$OUT" "not-the-password"
[ -e wrong.minisig ] && not_ok "no signature is written after a wrong password" \
    || ok "no signature is written after a wrong password"
expect_exit 1 "sigtool asks for a password for an encrypted key" \
    "$SIGTOOL" sign menc.key data wrong.minisig
expect_contains "the missing password message is clear" "$OUT" "encrypted and no password was given"

expect_exit 0 "minisign -G -W (unencrypted)" minisign -G -W -p mw.pub -s mw.key
expect_exit 0 "sigtool signs with minisign's all-zero-checksum key" \
    "$SIGTOOL" sign mw.key data data.mw.minisig
expect_exit 0 "minisign verifies it" minisign -Vm data -p mw.pub -x data.mw.minisig

expect_exit 0 "minisign -S (prehashed by default)" \
    minisign -S -s mw.key -m data -x ms.minisig -c "untrusted words" -t "trusted words"
expect_exit 0 "sigtool verifies minisign's signature" "$SIGTOOL" verify mw.pub data ms.minisig
expect_contains "sigtool shows minisign's trusted comment" "$OUT" "trusted comment: trusted words"
expect_exit 0 "minisign -S signs a multi-chunk file" \
    minisign -S -s mw.key -m big -x big.ms.minisig
expect_exit 0 "sigtool verifies it" "$SIGTOOL" verify mw.pub big big.ms.minisig

# --- refusals -------------------------------------------------------------------

expect_exit 1 "a signature by another key is refused" "$SIGTOOL" verify plain.pub data ms.minisig
expect_contains "the message names both key ids" "$OUT" \
    "key id $(key_id mw.pub), but the public key is $(key_id plain.pub)"

sed 's/^trusted comment: trusted words$/trusted comment: trusted wordz/' ms.minisig >tc.minisig
both_refuse "edited trusted comment" tc.minisig mw.pub data \
    "trusted comment signature verification failed"

flip_char ms.minisig 2 40 >sigbytes.minisig
both_refuse "edited signature bytes" sigbytes.minisig mw.pub data "signature verification failed"

flip_char ms.minisig 4 20 >gsig.minisig
both_refuse "edited global signature" gsig.minisig mw.pub data \
    "trusted comment signature verification failed"

flip_char ms.minisig 2 6 >keyid.minisig
both_refuse "edited key id" keyid.minisig mw.pub data "key id"

printf 'DROP TABLE users;\n' >other
both_refuse "another file" ms.minisig mw.pub other "the file does not match"

sed 's/^untrusted comment: .*/untrusted comment: rewritten by anyone/' ms.minisig >uc.minisig
expect_exit 0 "an edited untrusted comment still verifies (sigtool)" \
    "$SIGTOOL" verify mw.pub data uc.minisig
expect_exit 0 "an edited untrusted comment still verifies (minisign)" \
    minisign -Vm data -p mw.pub -x uc.minisig

sed 's/$/\r/' ms.minisig >crlf.minisig
expect_exit 0 "a signature with CRLF line endings verifies (sigtool)" \
    "$SIGTOOL" verify mw.pub data crlf.minisig
expect_exit 0 "a signature with CRLF line endings verifies (minisign)" \
    minisign -Vm data -p mw.pub -x crlf.minisig

expect_exit 0 "minisign -S -l (legacy)" minisign -S -l -s mw.key -m data -x legacy.minisig
expect_exit 1 "a legacy non-prehashed signature is refused" \
    "$SIGTOOL" verify mw.pub data legacy.minisig
expect_contains "the legacy refusal is clear" "$OUT" "legacy non-prehashed signature (\"Ed\") refused"

exit 0
