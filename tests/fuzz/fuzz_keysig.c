/*
 * fuzz_keysig.c - libFuzzer target for the key and signature parsers.
 *
 * Every input goes through the public key, signature and secret key
 * parsers. The secret key parser runs without a password, so no scrypt
 * runs here; and a hostile file's scrypt limits must be refused before the
 * password is even looked at, so nothing it asks for is ever allocated.
 * The trusted comment of a signature that parses goes on to the claim
 * parser (tcomment.c), whose grammar has exactly one spelling for each
 * claim: what it accepts must format back to the same text.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cmig/bundle.h"
#include "cmig/err.h"
#include "cmig/keys.h"
#include "cmig/sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cmig_sig sig; /* ~9 KiB: keep it off the stack */
    const char *text = (const char *)data;
    struct cmig_pubkey pub;
    struct cmig_seckey *sk = NULL;
    struct cmig_err err;
    char out[512];

    cmig_err_clear(&err);
    if (cmig_pubkey_parse(&pub, text, size, "fuzz.pub", &err) == 0) {
        /* what parses must format and parse back to the same key */
        size_t n = cmig_pubkey_format(&pub, out, sizeof out);
        struct cmig_pubkey again;
        if (n == 0 || cmig_pubkey_parse(&again, out, n, "again", &err) != 0 ||
            memcmp(&pub, &again, sizeof pub) != 0)
            __builtin_trap();
    } else if (err.code != CMIG_E_KEY || err.msg[0] == '\0') {
        __builtin_trap();
    }

    cmig_err_clear(&err);
    if (cmig_sig_parse(&sig, text, size, "fuzz.minisig", &err) == 0) {
        if (strlen(sig.untrusted_comment) > CMIG_COMMENT_MAX ||
            strlen(sig.trusted_comment) > CMIG_TRUSTED_COMMENT_MAX)
            __builtin_trap();
        struct cmig_claim claim;
        static char again[CMIG_TRUSTED_COMMENT_MAX + 1];
        cmig_err_clear(&err);
        if (cmig_trusted_comment_parse(sig.trusted_comment, &claim, &err) == 0) {
            if (cmig_trusted_comment_format(again, sizeof again, &claim) != 0 ||
                strcmp(again, sig.trusted_comment) != 0)
                __builtin_trap();
        } else if (err.code != CMIG_E_VERIFY) {
            __builtin_trap();
        }
    } else if (err.code != CMIG_E_VERIFY) {
        __builtin_trap();
    }

    int enc = cmig_seckey_text_encrypted(text, size);
    cmig_err_clear(&err);
    int rc = cmig_seckey_parse(&sk, text, size, NULL, "fuzz.key", &err);
    if (rc == 0) {
        if (!sk || enc != 0) /* an encrypted key cannot parse without a password */
            __builtin_trap();
        cmig_seckey_pubkey(sk, &pub);
        cmig_seckey_free(sk);
    } else if (sk != NULL || (enc == -1 && err.code != CMIG_E_KEY)) {
        __builtin_trap();
    }
    return 0;
}
