/*
 * keys.c - minisign public and secret key files, read and written byte for
 * byte as minisign does, so that either tool uses the other's keys.
 *
 * Invariants: secret material (the decoded key blob, the scrypt stream, the
 * checksum and the key itself) only ever lives in sodium_malloc memory or in
 * stack temporaries that are wiped before return; passwords never appear in
 * a message. Every input is capped before it is looked at: the file size,
 * each line, the exact base64 length, and the scrypt limits a key file asks
 * for, so a hostile key file cannot make a parse allocate gigabytes or spin.
 *
 * Line endings: a line ends with "\n" or "\r\n" and the last line may lack
 * its terminator (minisign itself strips '\r' and reads the last line
 * without one). Anything else is refused: a NUL byte, a stray '\r', a line
 * over its cap, or any text after the key line.
 */
#include "cmig/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "mstext.h"

#define COMMENT_PREFIX "untrusted comment: "
#define COMMENT_PREFIX_LEN (sizeof COMMENT_PREFIX - 1)
#define COMMENT_LINE_MAX 1024 /* minisign reads the comment line with fgets(1024) */

#define PK_BLOB_BYTES (2 + CMIG_KEYID_BYTES + CMIG_PK_BYTES)

/* Offsets into the decoded secret key blob (see cmig/keys.h). */
#define SK_ALG 0
#define SK_KDF 2
#define SK_CHKALG 4
#define SK_SALT 6
#define SK_OPS (SK_SALT + crypto_pwhash_scryptsalsa208sha256_SALTBYTES)
#define SK_MEM (SK_OPS + 8)
#define SK_KEYNUM (SK_MEM + 8)
#define SK_SK (SK_KEYNUM + CMIG_KEYID_BYTES)
#define SK_CHK (SK_SK + crypto_sign_SECRETKEYBYTES)
#define SK_BLOB_BYTES (SK_CHK + crypto_generichash_BYTES)
#define SK_SECRET_BYTES (SK_BLOB_BYTES - SK_KEYNUM) /* the part scrypt encrypts */

_Static_assert(SK_BLOB_BYTES == 158, "minisign secret key blob is 158 bytes");
_Static_assert(PK_BLOB_BYTES == 42, "minisign public key blob is 42 bytes");

/* minisign writes OPSLIMIT/MEMLIMIT_SENSITIVE (2^25, 1 GiB); twice that
 * memory and 128 times those operations is plenty for any real key and still
 * bounded for a hostile one. */
#define SCRYPT_OPSLIMIT_CAP (UINT64_C(1) << 32)
#define SCRYPT_MEMLIMIT_CAP (UINT64_C(1) << 31)

#define KEYRING_MAX 1024 /* trusted keys at once; rotation needs a handful */

struct cmig_seckey {
    uint8_t id[CMIG_KEYID_BYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES]; /* seed || public key */
};

static const char *name_of(const char *what, const char *fallback)
{
    return what && *what ? what : fallback;
}

static int sodium_ready(struct cmig_err *err)
{
    if (sodium_init() < 0)
        return cmig_err_set(err, CMIG_E_INTERNAL, "cannot initialise libsodium");
    return 0;
}

static uint64_t le64_load(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void le64_store(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

static int has_comment_prefix(const char *line, size_t n)
{
    return n >= COMMENT_PREFIX_LEN && memcmp(line, COMMENT_PREFIX, COMMENT_PREFIX_LEN) == 0;
}

void cmig_keyid_hex(const uint8_t id[CMIG_KEYID_BYTES], char out[17])
{
    snprintf(out, 17, "%016" PRIX64, le64_load(id));
}

/* ---- public keys ---- */

static const char *pubkey_decode(struct cmig_pubkey *out, const char *text, size_t len)
{
    uint8_t blob[PK_BLOB_BYTES];
    const char *line, *b64;
    size_t n, b64_len, pos = 0;
    const char *why;

    if (len == 0)
        return "empty";
    if ((why = cmig_mstext_line(text, len, &pos, COMMENT_LINE_MAX, &line, &n)) != NULL)
        return why;
    if (has_comment_prefix(line, n)) {
        if (pos >= len)
            return "missing key line after the comment";
        if ((why = cmig_mstext_line(text, len, &pos, COMMENT_LINE_MAX, &b64, &b64_len)) != NULL)
            return why;
    } else if (pos < len) {
        return "first line does not start with \"" COMMENT_PREFIX "\"";
    } else {
        b64 = line; /* the bare base64 string, as `minisign -P` takes it */
        b64_len = n;
    }
    if (pos != len)
        return "unexpected text after the key line";
    if (cmig_b64_exact(blob, sizeof blob, b64, b64_len) != 0)
        return "key line is not base64 of a 42-byte key";
    if (memcmp(blob, "Ed", 2) != 0)
        return "unsupported signature algorithm (expected \"Ed\")";
    memcpy(out->id, blob + 2, CMIG_KEYID_BYTES);
    memcpy(out->pk, blob + 2 + CMIG_KEYID_BYTES, CMIG_PK_BYTES);
    return NULL;
}

int cmig_pubkey_parse(struct cmig_pubkey *out, const char *text, size_t len, const char *what,
                      struct cmig_err *err)
{
    const char *why;

    if (len > CMIG_KEY_FILE_MAX)
        return cmig_err_set(err, CMIG_E_KEY,
                            "'%s': not a minisign public key: larger than %d bytes",
                            name_of(what, "public key"), CMIG_KEY_FILE_MAX);
    if (!text)
        len = 0;
    if ((why = pubkey_decode(out, text, len)) != NULL)
        return cmig_err_set(err, CMIG_E_KEY, "'%s': not a minisign public key: %s",
                            name_of(what, "public key"), why);
    return 0;
}

/* Reads a whole small file: regular files only, at most cap bytes. buf
 * must hold cap + 1 bytes (one more byte tells "too large" from "exactly
 * cap"). */
static int read_small_file(int fd, char *buf, size_t cap, size_t *len, const char *path,
                           const char *kind, struct cmig_err *err)
{
    struct stat st;
    size_t got = 0;

    if (fstat(fd, &st) != 0)
        return cmig_err_errno(err, CMIG_E_IO, errno, "'%s': cannot stat %s", path, kind);
    if (!S_ISREG(st.st_mode))
        return cmig_err_set(err, CMIG_E_KEY, "'%s': %s is not a regular file", path, kind);
    if (st.st_size < 0 || (uintmax_t)st.st_size > cap)
        return cmig_err_set(err, CMIG_E_KEY, "'%s': %s larger than %zu bytes", path, kind, cap);
    while (got <= cap) {
        ssize_t r = read(fd, buf + got, cap + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return cmig_err_errno(err, CMIG_E_IO, errno, "'%s': cannot read %s", path, kind);
        if (r == 0)
            break;
        got += (size_t)r;
    }
    if (got > cap) /* it grew since fstat */
        return cmig_err_set(err, CMIG_E_KEY, "'%s': %s larger than %zu bytes", path, kind, cap);
    *len = got;
    return 0;
}

int cmig_pubkey_load(struct cmig_pubkey *out, const char *path, struct cmig_err *err)
{
    char buf[CMIG_KEY_FILE_MAX + 1];
    size_t len = 0;
    int rc;
    /* No O_NOFOLLOW: public keys are often mounted through symlinks
     * (Kubernetes ConfigMaps), and they are not secret. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return cmig_err_errno(err, CMIG_E_IO, errno, "'%s': cannot open public key", path);
    rc = read_small_file(fd, buf, CMIG_KEY_FILE_MAX, &len, path, "public key", err);
    close(fd);
    if (rc == 0)
        rc = cmig_pubkey_parse(out, buf, len, path, err);
    return rc;
}

size_t cmig_pubkey_format(const struct cmig_pubkey *k, char *buf, size_t cap)
{
    uint8_t blob[PK_BLOB_BYTES];
    char b64[sodium_base64_ENCODED_LEN(PK_BLOB_BYTES, sodium_base64_VARIANT_ORIGINAL)];
    char hex[17];
    int n;

    memcpy(blob, "Ed", 2);
    memcpy(blob + 2, k->id, CMIG_KEYID_BYTES);
    memcpy(blob + 2 + CMIG_KEYID_BYTES, k->pk, CMIG_PK_BYTES);
    sodium_bin2base64(b64, sizeof b64, blob, sizeof blob, sodium_base64_VARIANT_ORIGINAL);
    /* minisign writes the key id without leading zeros in this comment;
     * so do we, so that both write the same file for the same key. */
    snprintf(hex, sizeof hex, "%" PRIX64, le64_load(k->id));
    if (!buf || cap == 0)
        return 0;
    n = snprintf(buf, cap, COMMENT_PREFIX "minisign public key %s\n%s\n", hex, b64);
    if (n < 0 || (size_t)n >= cap) {
        buf[0] = '\0';
        return 0;
    }
    return (size_t)n;
}

/* ---- keyrings ---- */

int cmig_keyring_add(struct cmig_keyring *ring, const struct cmig_pubkey *k, struct cmig_err *err)
{
    struct cmig_pubkey *grown;

    if (cmig_keyring_find(ring, k->id))
        return 0;
    if (ring->n >= KEYRING_MAX)
        return cmig_err_set(err, CMIG_E_KEY, "too many trusted keys (at most %d)", KEYRING_MAX);
    grown = realloc(ring->keys, (ring->n + 1) * sizeof *grown);
    if (!grown)
        return cmig_err_nomem(err);
    ring->keys = grown;
    ring->keys[ring->n++] = *k;
    return 0;
}

const struct cmig_pubkey *cmig_keyring_find(const struct cmig_keyring *ring,
                                            const uint8_t id[CMIG_KEYID_BYTES])
{
    if (!ring || !ring->keys)
        return NULL;
    for (size_t i = 0; i < ring->n; i++)
        if (memcmp(ring->keys[i].id, id, CMIG_KEYID_BYTES) == 0)
            return &ring->keys[i];
    return NULL;
}

void cmig_keyring_free(struct cmig_keyring *ring)
{
    if (!ring)
        return;
    free(ring->keys);
    ring->keys = NULL;
    ring->n = 0;
}

/* ---- secret keys ---- */

int cmig_seckey_generate(struct cmig_seckey **out, struct cmig_err *err)
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    struct cmig_seckey *k;
    int rc;

    *out = NULL;
    if ((rc = sodium_ready(err)) != 0)
        return rc;
    k = sodium_malloc(sizeof *k);
    if (!k)
        return cmig_err_nomem(err);
    randombytes_buf(k->id, sizeof k->id);
    if (crypto_sign_keypair(pk, k->sk) != 0) {
        sodium_free(k);
        return cmig_err_set(err, CMIG_E_INTERNAL, "cannot generate an ed25519 key pair");
    }
    *out = k;
    return 0;
}

/* Splits secret key file text and decodes its key line into blob (which
 * is SK_BLOB_BYTES of sodium_malloc memory). Returns NULL, or why the text
 * is not a minisign secret key. The algorithm fields are checked here; the
 * checksum and the scrypt limits are the caller's. */
static const char *seckey_decode(uint8_t *blob, const char *text, size_t len)
{
    const char *line;
    size_t n, pos = 0;
    const char *why;

    if (!text || len == 0)
        return "empty";
    if ((why = cmig_mstext_line(text, len, &pos, COMMENT_LINE_MAX, &line, &n)) != NULL)
        return why;
    if (!has_comment_prefix(line, n))
        return "first line does not start with \"" COMMENT_PREFIX "\"";
    if (pos >= len)
        return "missing key line after the comment";
    if ((why = cmig_mstext_line(text, len, &pos, COMMENT_LINE_MAX, &line, &n)) != NULL)
        return why;
    if (pos != len)
        return "unexpected text after the key line";
    if (cmig_b64_exact(blob, SK_BLOB_BYTES, line, n) != 0)
        return "key line is not base64 of a 158-byte key";
    if (memcmp(blob + SK_ALG, "Ed", 2) != 0)
        return "unsupported signature algorithm (expected \"Ed\")";
    if (memcmp(blob + SK_CHKALG, "B2", 2) != 0)
        return "unsupported checksum algorithm (expected \"B2\")";
    if (memcmp(blob + SK_KDF, "Sc", 2) != 0 && memcmp(blob + SK_KDF, "\0\0", 2) != 0)
        return "unsupported key derivation function (expected \"Sc\" or none)";
    return NULL;
}

int cmig_seckey_text_encrypted(const char *text, size_t len)
{
    uint8_t *blob;
    int rc = -1;

    if (len > CMIG_KEY_FILE_MAX || sodium_init() < 0)
        return -1;
    blob = sodium_malloc(SK_BLOB_BYTES);
    if (!blob)
        return -1;
    if (seckey_decode(blob, text, len) == NULL)
        rc = memcmp(blob + SK_KDF, "Sc", 2) == 0;
    sodium_free(blob);
    return rc;
}

/* BLAKE2b-256 over sig_alg || keynum || sk, as minisign checks it. */
static void seckey_checksum(uint8_t chk[crypto_generichash_BYTES], const uint8_t *blob)
{
    crypto_generichash_state st;

    crypto_generichash_init(&st, NULL, 0, crypto_generichash_BYTES);
    crypto_generichash_update(&st, blob + SK_ALG, 2);
    crypto_generichash_update(&st, blob + SK_KEYNUM, CMIG_KEYID_BYTES);
    crypto_generichash_update(&st, blob + SK_SK, crypto_sign_SECRETKEYBYTES);
    crypto_generichash_final(&st, chk, crypto_generichash_BYTES);
    sodium_memzero(&st, sizeof st);
}

/* XORs the keynum/sk/checksum part of blob with the scrypt stream. */
static int scrypt_xor(uint8_t *blob, const char *password, uint64_t ops, uint64_t mem)
{
    uint8_t *stream = sodium_malloc(SK_SECRET_BYTES);
    int rc = -1;

    if (!stream) {
        errno = ENOMEM;
        return -1;
    }
    if (crypto_pwhash_scryptsalsa208sha256(stream, SK_SECRET_BYTES, password, strlen(password),
                                           blob + SK_SALT, (unsigned long long)ops,
                                           (size_t)mem) == 0) {
        for (size_t i = 0; i < SK_SECRET_BYTES; i++)
            blob[SK_KEYNUM + i] ^= stream[i];
        rc = 0;
    }
    sodium_free(stream); /* wipes */
    return rc;
}

/* The public half stored in sk must be the one its seed derives: with no
 * checksum (minisign -W keys) this is the only integrity check there is. */
static int seckey_consistent(const uint8_t *sk)
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t *tmp = sodium_malloc(crypto_sign_SECRETKEYBYTES);
    int ok = 0;

    if (!tmp)
        return -1;
    if (crypto_sign_seed_keypair(pk, tmp, sk) == 0)
        ok = sodium_memcmp(pk, sk + crypto_sign_SEEDBYTES, sizeof pk) == 0;
    sodium_free(tmp);
    return ok ? 0 : 1;
}

int cmig_seckey_parse(struct cmig_seckey **out, const char *text, size_t len, const char *password,
                      const char *what, struct cmig_err *err)
{
    const char *name = name_of(what, "secret key");
    uint8_t chk[crypto_generichash_BYTES];
    uint8_t *blob = NULL;
    struct cmig_seckey *k = NULL;
    const char *why;
    int encrypted, rc = 0;

    *out = NULL;
    if ((rc = sodium_ready(err)) != 0)
        return rc;
    if (len > CMIG_KEY_FILE_MAX)
        return cmig_err_set(err, CMIG_E_KEY,
                            "'%s': not a minisign secret key: larger than %d bytes", name,
                            CMIG_KEY_FILE_MAX);
    blob = sodium_malloc(SK_BLOB_BYTES);
    if (!blob)
        return cmig_err_nomem(err);
    if ((why = seckey_decode(blob, text, len)) != NULL) {
        rc = cmig_err_set(err, CMIG_E_KEY, "'%s': not a minisign secret key: %s", name, why);
        goto out;
    }
    encrypted = memcmp(blob + SK_KDF, "Sc", 2) == 0;
    if (encrypted) {
        uint64_t ops = le64_load(blob + SK_OPS), mem = le64_load(blob + SK_MEM);
        /* Limits first, password second: a hostile file is refused before
         * anything expensive can happen. */
        if (ops > SCRYPT_OPSLIMIT_CAP || mem > SCRYPT_MEMLIMIT_CAP) {
            rc = cmig_err_set(err, CMIG_E_KEY,
                              "'%s': secret key asks for scrypt opslimit %" PRIu64
                              " and memlimit %" PRIu64 ", over the caps %" PRIu64 " and %" PRIu64,
                              name, ops, mem, SCRYPT_OPSLIMIT_CAP, SCRYPT_MEMLIMIT_CAP);
            goto out;
        }
        if (!password || !*password) {
            rc = cmig_err_set(err, CMIG_E_KEY,
                              "'%s': secret key is encrypted and no password was given", name);
            goto out;
        }
        if (scrypt_xor(blob, password, ops, mem) != 0) {
            rc = cmig_err_errno(err, CMIG_E_KEY, errno,
                                "'%s': cannot derive the key from the password (scrypt memlimit "
                                "%" PRIu64 " bytes)",
                                name, mem);
            goto out;
        }
    }
    seckey_checksum(chk, blob);
    if (sodium_memcmp(chk, blob + SK_CHK, sizeof chk) != 0) {
        if (encrypted)
            rc = cmig_err_set(err, CMIG_E_KEY, "wrong password for secret key '%s'", name);
        else if (!sodium_is_zero(blob + SK_CHK, crypto_generichash_BYTES))
            rc =
                cmig_err_set(err, CMIG_E_KEY,
                             "'%s': secret key checksum does not match: the file is damaged", name);
        /* else: an all-zero checksum, as `minisign -G -W` writes it */
        if (rc)
            goto out;
    }
    switch (seckey_consistent(blob + SK_SK)) {
    case 0:
        break;
    case 1:
        rc = cmig_err_set(err, CMIG_E_KEY,
                          "'%s': secret key is damaged: its public half does not match its seed",
                          name);
        goto out;
    default:
        rc = cmig_err_nomem(err);
        goto out;
    }
    k = sodium_malloc(sizeof *k);
    if (!k) {
        rc = cmig_err_nomem(err);
        goto out;
    }
    memcpy(k->id, blob + SK_KEYNUM, CMIG_KEYID_BYTES);
    memcpy(k->sk, blob + SK_SK, crypto_sign_SECRETKEYBYTES);
    *out = k;
out:
    sodium_memzero(chk, sizeof chk);
    sodium_free(blob);
    return rc;
}

int cmig_secret_read_file(char **text, size_t *len, const char *path, struct cmig_err *err)
{
    char *buf = NULL;
    size_t got = 0;
    int fd, rc;

    *text = NULL;
    *len = 0;
    if ((rc = sodium_ready(err)) != 0)
        return rc;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP)
            return cmig_err_set(err, CMIG_E_KEY,
                                "'%s': secret key file is a symbolic link: refused", path);
        return cmig_err_errno(err, CMIG_E_IO, errno, "'%s': cannot open secret key", path);
    }
    buf = sodium_malloc(CMIG_KEY_FILE_MAX + 2);
    if (!buf) {
        rc = cmig_err_nomem(err);
        goto out;
    }
    rc = read_small_file(fd, buf, CMIG_KEY_FILE_MAX, &got, path, "secret key", err);
    if (rc)
        goto out;
    buf[got] = '\0';
    *text = buf;
    *len = got;
    buf = NULL;
out:
    sodium_free(buf);
    close(fd);
    return rc;
}

char *cmig_secret_dup(const char *s, size_t len)
{
    char *p;

    if (len >= SIZE_MAX || sodium_init() < 0)
        return NULL;
    p = sodium_malloc(len + 1);
    if (!p)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void cmig_secret_free(char *p)
{
    sodium_free(p); /* wipes; NULL is fine */
}

int cmig_seckey_format(const struct cmig_seckey *k, const char *password, char **text, size_t *len,
                       struct cmig_err *err)
{
    static const char enc_comment[] = COMMENT_PREFIX "minisign encrypted secret key\n";
    static const char plain_comment[] = COMMENT_PREFIX "minisign unencrypted secret key\n";
    const size_t b64_cap = sodium_base64_ENCODED_LEN(SK_BLOB_BYTES, sodium_base64_VARIANT_ORIGINAL);
    const int encrypt = password && *password;
    const char *comment = encrypt ? enc_comment : plain_comment;
    const size_t comment_len = strlen(comment);
    uint8_t *blob = NULL;
    char *out = NULL;
    size_t b64_len;
    int rc = 0;

    *text = NULL;
    *len = 0;
    if ((rc = sodium_ready(err)) != 0)
        return rc;
    blob = sodium_malloc(SK_BLOB_BYTES);
    out = sodium_malloc(comment_len + b64_cap + 1);
    if (!blob || !out) {
        rc = cmig_err_nomem(err);
        goto out;
    }
    memset(blob, 0, SK_BLOB_BYTES);
    memcpy(blob + SK_ALG, "Ed", 2);
    memcpy(blob + SK_KDF, encrypt ? "Sc" : "\0\0", 2);
    memcpy(blob + SK_CHKALG, "B2", 2);
    memcpy(blob + SK_KEYNUM, k->id, CMIG_KEYID_BYTES);
    memcpy(blob + SK_SK, k->sk, crypto_sign_SECRETKEYBYTES);
    seckey_checksum(blob + SK_CHK, blob);
    if (encrypt) {
        uint64_t ops = crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_SENSITIVE;
        uint64_t mem = crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_SENSITIVE;
        randombytes_buf(blob + SK_SALT, crypto_pwhash_scryptsalsa208sha256_SALTBYTES);
        /* Like minisign: where 1 GiB cannot be had, halve both limits and
         * store what was used, down to scrypt's minimums. */
        while (scrypt_xor(blob, password, ops, mem) != 0) {
            ops /= 2;
            mem /= 2;
            if (ops < crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_MIN ||
                mem < crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_MIN) {
                rc = cmig_err_set(err, CMIG_E_NOMEM,
                                  "cannot encrypt the secret key: scrypt ran out of memory");
                goto out;
            }
        }
        le64_store(blob + SK_OPS, ops);
        le64_store(blob + SK_MEM, mem);
    }
    memcpy(out, comment, comment_len);
    sodium_bin2base64(out + comment_len, b64_cap, blob, SK_BLOB_BYTES,
                      sodium_base64_VARIANT_ORIGINAL);
    b64_len = strlen(out + comment_len);
    out[comment_len + b64_len] = '\n';
    out[comment_len + b64_len + 1] = '\0';
    *text = out;
    *len = comment_len + b64_len + 1;
    out = NULL;
out:
    sodium_free(blob);
    sodium_free(out);
    return rc;
}

void cmig_seckey_pubkey(const struct cmig_seckey *k, struct cmig_pubkey *out)
{
    memcpy(out->id, k->id, CMIG_KEYID_BYTES);
    memcpy(out->pk, k->sk + crypto_sign_SEEDBYTES, CMIG_PK_BYTES);
}

void cmig_seckey_free(struct cmig_seckey *k)
{
    sodium_free(k);
}

int cmig_seckey_sign(const struct cmig_seckey *k, const uint8_t *msg, size_t len, uint8_t sig[64],
                     struct cmig_err *err)
{
    int rc;

    if ((rc = sodium_ready(err)) != 0)
        return rc;
    if (crypto_sign_detached(sig, NULL, msg, len, k->sk) != 0)
        return cmig_err_set(err, CMIG_E_INTERNAL, "ed25519 signing failed");
    return 0;
}
