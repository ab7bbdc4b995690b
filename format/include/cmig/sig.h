/*
 * cmig/sig.h - minisign signature files (prehashed "ED" form only).
 *
 *   untrusted comment: <text>\n
 *   base64("ED" || keyid[8] || ed25519(BLAKE2b-512(file)))\n
 *   trusted comment: <text>\n
 *   base64(ed25519(signature[64] || trusted comment text))\n
 *
 * The legacy "Ed" form (signature over the raw file) is refused: cmig only
 * writes and accepts the prehashed form, which can be checked in one
 * streaming pass. The untrusted comment is not covered by any signature.
 */
#ifndef CMIG_SIG_H
#define CMIG_SIG_H

#include <stddef.h>
#include <stdint.h>

#include "cmig/err.h"
#include "cmig/keys.h"

#define CMIG_PREHASH_BYTES 64         /* BLAKE2b-512 */
#define CMIG_SIG_FILE_MAX 16384       /* cap on a signature file's size */
#define CMIG_COMMENT_MAX 1024         /* untrusted comment, as minisign */
#define CMIG_TRUSTED_COMMENT_MAX 8192 /* trusted comment, as minisign */

struct cmig_sig {
    uint8_t keyid[CMIG_KEYID_BYTES];
    uint8_t sig[64];
    uint8_t global_sig[64];
    char untrusted_comment[CMIG_COMMENT_MAX + 1];
    char trusted_comment[CMIG_TRUSTED_COMMENT_MAX + 1];
};

/* Parses signature file text. what names the file in messages. Errors are
 * CMIG_E_VERIFY ("'x.minisig': not a minisign signature: ..."). */
int cmig_sig_parse(struct cmig_sig *out, const char *text, size_t len, const char *what,
                   struct cmig_err *err);

/* Reads (at most CMIG_SIG_FILE_MAX bytes) and parses a signature file. */
int cmig_sig_load(struct cmig_sig *out, const char *path, struct cmig_err *err);

/* Checks both signatures of s against key k and the file's prehash. The
 * caller has already matched s->keyid to k. CMIG_E_VERIFY on failure, with
 * distinct messages for the file signature and the trusted comment. */
int cmig_sig_verify(const struct cmig_sig *s, const struct cmig_pubkey *k,
                    const uint8_t prehash[CMIG_PREHASH_BYTES], struct cmig_err *err);

/* Signs a prehash and formats the signature file text into a malloc'd,
 * NUL-terminated buffer. Comments must not contain '\n' or '\r'. */
int cmig_sig_create(const struct cmig_seckey *k, const uint8_t prehash[CMIG_PREHASH_BYTES],
                    const char *untrusted_comment, const char *trusted_comment, char **text,
                    size_t *len, struct cmig_err *err);

/* BLAKE2b-512 of a whole file, streamed from fd (from its current offset to
 * EOF), refusing more than max_bytes. *size receives the byte count. */
int cmig_prehash_fd(int fd, uint64_t max_bytes, uint8_t out[CMIG_PREHASH_BYTES], uint64_t *size,
                    const char *what, struct cmig_err *err);

#endif
