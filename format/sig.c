/*
 * sig.c - minisign signature files: parse, verify, create, and the
 * BLAKE2b-512 prehash they sign.
 *
 * Invariants: only the prehashed "ED" form is accepted or written (the
 * legacy "Ed" form signs the raw file, which cannot be checked in one capped
 * streaming pass); the trusted comment is exactly the bytes the global
 * signature covers, so nothing is trimmed or rewritten inside it; every line
 * and the whole file are capped before they are decoded.
 *
 * Line endings: a line ends with "\n" or "\r\n" and the last line may lack
 * its terminator, as minisign reads them. A NUL byte or a '\r' inside a line
 * is refused rather than cut off (minisign would silently truncate the
 * trusted comment at a '\r', so the signed text and the shown text could
 * differ), and so is any text after the fourth line.
 */
#include "cmig/sig.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "mstext.h"

#define UNTRUSTED_PREFIX "untrusted comment: "
#define TRUSTED_PREFIX "trusted comment: "
#define UNTRUSTED_PREFIX_LEN (sizeof UNTRUSTED_PREFIX - 1)
#define TRUSTED_PREFIX_LEN (sizeof TRUSTED_PREFIX - 1)

/* minisign reads each comment line with fgets(buffer of 1024 or 8192
 * bytes) and wants its '\n' inside that buffer; what we write must fit. */
#define MINISIGN_COMMENT_TEXT_MAX (CMIG_COMMENT_MAX - UNTRUSTED_PREFIX_LEN - 2)
#define MINISIGN_TRUSTED_TEXT_MAX (CMIG_TRUSTED_COMMENT_MAX - TRUSTED_PREFIX_LEN - 2)

#define SIG_BLOB_BYTES (2 + CMIG_KEYID_BYTES + crypto_sign_BYTES)
#define SIG_B64_LEN (sodium_base64_ENCODED_LEN(SIG_BLOB_BYTES, sodium_base64_VARIANT_ORIGINAL) - 1)
#define GSIG_B64_LEN                                                                               \
    (sodium_base64_ENCODED_LEN(crypto_sign_BYTES, sodium_base64_VARIANT_ORIGINAL) - 1)

#define PREHASH_CHUNK 65536

_Static_assert(SIG_BLOB_BYTES == 74, "minisign signature blob is 74 bytes");
_Static_assert(crypto_generichash_BYTES_MAX == CMIG_PREHASH_BYTES, "prehash is BLAKE2b-512");

static const char *name_of(const char *what)
{
    return what && *what ? what : "signature";
}

static int sodium_ready(struct cmig_err *err)
{
    if (sodium_init() < 0)
        return cmig_err_set(err, CMIG_E_INTERNAL, "cannot initialise libsodium");
    return 0;
}

/* Takes one line that must start with prefix (else returns bad_prefix);
 * copies the text after the prefix (at most cap bytes) into dst as a C
 * string. The caller checks *pos < len first. */
static const char *take_comment(const char *text, size_t len, size_t *pos, const char *prefix,
                                const char *bad_prefix, size_t cap, char *dst)
{
    const size_t plen = strlen(prefix);
    const char *line, *why;
    size_t n;

    if ((why = cmig_mstext_line(text, len, pos, plen + cap, &line, &n)) != NULL)
        return why;
    if (n < plen || memcmp(line, prefix, plen) != 0)
        return bad_prefix;
    memcpy(dst, line + plen, n - plen);
    dst[n - plen] = '\0';
    return NULL;
}

static const char *sig_decode(struct cmig_sig *out, const char *text, size_t len)
{
    uint8_t blob[SIG_BLOB_BYTES];
    const char *line, *why;
    size_t n, pos = 0;

    if (!text || len == 0)
        return "empty";
    if ((why = take_comment(text, len, &pos, UNTRUSTED_PREFIX,
                            "first line does not start with \"" UNTRUSTED_PREFIX "\"",
                            CMIG_COMMENT_MAX, out->untrusted_comment)) != NULL)
        return why;
    if (pos >= len)
        return "missing signature line";
    if ((why = cmig_mstext_line(text, len, &pos, SIG_B64_LEN, &line, &n)) != NULL)
        return why;
    if (cmig_b64_exact(blob, sizeof blob, line, n) != 0)
        return "second line is not base64 of a 74-byte signature";
    if (memcmp(blob, "Ed", 2) == 0)
        return "legacy non-prehashed signature (\"Ed\") refused: sign without -l "
               "(prehashed \"ED\" signatures are the default since minisign 0.11)";
    if (memcmp(blob, "ED", 2) != 0)
        return "unsupported signature algorithm (expected \"ED\")";
    memcpy(out->keyid, blob + 2, CMIG_KEYID_BYTES);
    memcpy(out->sig, blob + 2 + CMIG_KEYID_BYTES, crypto_sign_BYTES);
    if (pos >= len)
        return "missing trusted comment line";
    if ((why = take_comment(text, len, &pos, TRUSTED_PREFIX,
                            "third line does not start with \"" TRUSTED_PREFIX "\"",
                            CMIG_TRUSTED_COMMENT_MAX, out->trusted_comment)) != NULL)
        return why;
    if (pos >= len)
        return "missing global signature line";
    if ((why = cmig_mstext_line(text, len, &pos, GSIG_B64_LEN, &line, &n)) != NULL)
        return why;
    if (cmig_b64_exact(out->global_sig, sizeof out->global_sig, line, n) != 0)
        return "fourth line is not base64 of a 64-byte signature";
    if (pos != len)
        return "unexpected text after the fourth line";
    return NULL;
}

int cmig_sig_parse(struct cmig_sig *out, const char *text, size_t len, const char *what,
                   struct cmig_err *err)
{
    const char *why;

    memset(out, 0, sizeof *out);
    if (len > CMIG_SIG_FILE_MAX)
        return cmig_err_set(err, CMIG_E_VERIFY,
                            "'%s': not a minisign signature: larger than %d bytes", name_of(what),
                            CMIG_SIG_FILE_MAX);
    if ((why = sig_decode(out, text, len)) != NULL) {
        memset(out, 0, sizeof *out);
        return cmig_err_set(err, CMIG_E_VERIFY, "'%s': not a minisign signature: %s", name_of(what),
                            why);
    }
    return 0;
}

int cmig_sig_load(struct cmig_sig *out, const char *path, struct cmig_err *err)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    memset(out, 0, sizeof *out);
    if (fd < 0)
        return cmig_err_errno(err, CMIG_E_IO, errno, "'%s': cannot open signature", path);
    if (fstat(fd, &st) != 0) {
        rc = cmig_err_errno(err, CMIG_E_IO, errno, "'%s': cannot stat signature", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = cmig_err_set(err, CMIG_E_VERIFY, "'%s': signature is not a regular file", path);
        goto out;
    }
    buf = malloc(CMIG_SIG_FILE_MAX + 1);
    if (!buf) {
        rc = cmig_err_nomem(err);
        goto out;
    }
    /* Read one byte past the cap so that "too large" is seen, not cut. */
    while (got <= CMIG_SIG_FILE_MAX) {
        ssize_t r = read(fd, buf + got, CMIG_SIG_FILE_MAX + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = cmig_err_errno(err, CMIG_E_IO, errno, "'%s': cannot read signature", path);
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    rc = cmig_sig_parse(out, buf, got, path, err);
out:
    free(buf);
    close(fd);
    return rc;
}

int cmig_sig_verify(const struct cmig_sig *s, const struct cmig_pubkey *k,
                    const uint8_t prehash[CMIG_PREHASH_BYTES], struct cmig_err *err)
{
    uint8_t signed_comment[crypto_sign_BYTES + CMIG_TRUSTED_COMMENT_MAX];
    char sig_id[17], key_id[17];
    size_t tc_len;
    int rc;

    if ((rc = sodium_ready(err)) != 0)
        return rc;
    cmig_keyid_hex(s->keyid, sig_id);
    cmig_keyid_hex(k->id, key_id);
    /* The caller matched the ids already; checking again costs nothing and
     * keeps a mismatch from reading as a forged signature. */
    if (memcmp(s->keyid, k->id, CMIG_KEYID_BYTES) != 0)
        return cmig_err_set(err, CMIG_E_VERIFY,
                            "signature was made by key %s, not by the public key %s", sig_id,
                            key_id);
    if (crypto_sign_verify_detached(s->sig, prehash, CMIG_PREHASH_BYTES, k->pk) != 0)
        return cmig_err_set(err, CMIG_E_VERIFY,
                            "signature verification failed: the file does not match the "
                            "signature of key %s",
                            key_id);
    tc_len = strnlen(s->trusted_comment, sizeof s->trusted_comment);
    if (tc_len > CMIG_TRUSTED_COMMENT_MAX)
        return cmig_err_set(err, CMIG_E_VERIFY, "trusted comment is not terminated");
    memcpy(signed_comment, s->sig, crypto_sign_BYTES);
    memcpy(signed_comment + crypto_sign_BYTES, s->trusted_comment, tc_len);
    if (crypto_sign_verify_detached(s->global_sig, signed_comment, crypto_sign_BYTES + tc_len,
                                    k->pk) != 0)
        return cmig_err_set(err, CMIG_E_VERIFY,
                            "trusted comment signature verification failed: the trusted comment "
                            "or the global signature was altered");
    return 0;
}

static const char *comment_problem(const char *c, size_t max)
{
    size_t n = strnlen(c, max + 1);

    if (n > max)
        return "too long";
    if (memchr(c, '\n', n) || memchr(c, '\r', n))
        return "contains a line break";
    return NULL;
}

int cmig_sig_create(const struct cmig_seckey *k, const uint8_t prehash[CMIG_PREHASH_BYTES],
                    const char *untrusted_comment, const char *trusted_comment, char **text,
                    size_t *len, struct cmig_err *err)
{
    uint8_t blob[SIG_BLOB_BYTES];
    uint8_t global_sig[crypto_sign_BYTES];
    uint8_t *signed_comment = NULL;
    char sig_b64[SIG_B64_LEN + 1], gsig_b64[GSIG_B64_LEN + 1];
    struct cmig_pubkey pub;
    const char *why;
    char *out = NULL;
    size_t uc_len, tc_len, cap;
    int n, rc;

    *text = NULL;
    *len = 0;
    if ((rc = sodium_ready(err)) != 0)
        return rc;
    if (!untrusted_comment)
        untrusted_comment = "signature from minisign secret key";
    if (!trusted_comment)
        trusted_comment = "";
    if ((why = comment_problem(untrusted_comment, MINISIGN_COMMENT_TEXT_MAX)) != NULL)
        return cmig_err_set(err, CMIG_E_USAGE, "untrusted comment %s (at most %zu bytes, one line)",
                            why, (size_t)MINISIGN_COMMENT_TEXT_MAX);
    if ((why = comment_problem(trusted_comment, MINISIGN_TRUSTED_TEXT_MAX)) != NULL)
        return cmig_err_set(err, CMIG_E_USAGE, "trusted comment %s (at most %zu bytes, one line)",
                            why, (size_t)MINISIGN_TRUSTED_TEXT_MAX);
    uc_len = strlen(untrusted_comment);
    tc_len = strlen(trusted_comment);

    cmig_seckey_pubkey(k, &pub);
    memcpy(blob, "ED", 2);
    memcpy(blob + 2, pub.id, CMIG_KEYID_BYTES);
    if ((rc = cmig_seckey_sign(k, prehash, CMIG_PREHASH_BYTES, blob + 2 + CMIG_KEYID_BYTES, err)) !=
        0)
        goto out;
    signed_comment = malloc(crypto_sign_BYTES + tc_len);
    if (!signed_comment) {
        rc = cmig_err_nomem(err);
        goto out;
    }
    memcpy(signed_comment, blob + 2 + CMIG_KEYID_BYTES, crypto_sign_BYTES);
    memcpy(signed_comment + crypto_sign_BYTES, trusted_comment, tc_len);
    if ((rc = cmig_seckey_sign(k, signed_comment, crypto_sign_BYTES + tc_len, global_sig, err)) !=
        0)
        goto out;
    sodium_bin2base64(sig_b64, sizeof sig_b64, blob, sizeof blob, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(gsig_b64, sizeof gsig_b64, global_sig, sizeof global_sig,
                      sodium_base64_VARIANT_ORIGINAL);

    cap = UNTRUSTED_PREFIX_LEN + uc_len + 1 + SIG_B64_LEN + 1 + TRUSTED_PREFIX_LEN + tc_len + 1 +
          GSIG_B64_LEN + 1 + 1;
    out = malloc(cap);
    if (!out) {
        rc = cmig_err_nomem(err);
        goto out;
    }
    n = snprintf(out, cap, UNTRUSTED_PREFIX "%s\n%s\n" TRUSTED_PREFIX "%s\n%s\n", untrusted_comment,
                 sig_b64, trusted_comment, gsig_b64);
    if (n < 0 || (size_t)n >= cap) {
        rc = cmig_err_set(err, CMIG_E_INTERNAL, "signature text does not fit its buffer");
        goto out;
    }
    *text = out;
    *len = (size_t)n;
    out = NULL;
out:
    free(out);
    free(signed_comment);
    return rc;
}

int cmig_prehash_fd(int fd, uint64_t max_bytes, uint8_t out[CMIG_PREHASH_BYTES], uint64_t *size,
                    const char *what, struct cmig_err *err)
{
    crypto_generichash_state st;
    uint8_t *buf;
    uint64_t total = 0;
    int rc;

    if (size)
        *size = 0;
    if ((rc = sodium_ready(err)) != 0)
        return rc;
    buf = malloc(PREHASH_CHUNK);
    if (!buf)
        return cmig_err_nomem(err);
    crypto_generichash_init(&st, NULL, 0, CMIG_PREHASH_BYTES);
    for (;;) {
        ssize_t r = read(fd, buf, PREHASH_CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = cmig_err_errno(err, CMIG_E_IO, errno, "'%s': cannot read", name_of(what));
            goto out;
        }
        if (r == 0)
            break;
        if ((uint64_t)r > max_bytes - total) {
            rc = cmig_err_set(err, CMIG_E_VERIFY, "'%s': larger than %" PRIu64 " bytes",
                              name_of(what), max_bytes);
            goto out;
        }
        total += (uint64_t)r;
        crypto_generichash_update(&st, buf, (unsigned long long)r);
    }
    crypto_generichash_final(&st, out, CMIG_PREHASH_BYTES);
    if (size)
        *size = total;
out:
    free(buf);
    return rc;
}
