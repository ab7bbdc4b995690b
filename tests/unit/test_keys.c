/*
 * test_keys.c - unit tests for minisign key files (format/keys.c).
 *
 * The fixed vectors were written by minisign 0.11 itself (`minisign -G -W`),
 * so these tests pin the byte format to minisign's, not to our own reading
 * of it. Encrypted keys are mostly built here with scrypt's minimum limits
 * to keep the suite fast; one test pays for minisign's real limits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cmig/err.h"
#include "cmig/keys.h"
#include "harness.h"

/* `minisign -G -W`: unencrypted, salt, limits and checksum all zero. */
static const char W_PUB[] = "untrusted comment: minisign public key 404535573F091AAC\n"
                            "RWSsGgk/VzVFQEApgPHTQbybiRHdz7N0xLQOeQKN7ZWz3ogyfjW+yquX\n";
static const char W_PUB_B64[] = "RWSsGgk/VzVFQEApgPHTQbybiRHdz7N0xLQOeQKN7ZWz3ogyfjW+yquX";
static const char W_KEY[] =
    "untrusted comment: minisign encrypted secret key\n"
    "RWQAAEIyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAArBoJP1c1RUDFLwr/"
    "LU4Jyo4z8BjmJd4eMQkwic6HQexbdum5DyWnCUApgPHTQbybiRHdz7N0xLQOeQKN7ZWz3ogyfjW+"
    "yquXAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
static const uint8_t W_ID[8] = {0xac, 0x1a, 0x09, 0x3f, 0x57, 0x35, 0x45, 0x40};

/* Secret key blob layout (see cmig/keys.h). */
enum {
    O_KDF = 2,
    O_CHKALG = 4,
    O_SALT = 6,
    O_OPS = 38,
    O_MEM = 46,
    O_KEYNUM = 54,
    O_SK = 62,
    O_CHK = 126,
    BLOB = 158
};

static char tmpdir[256];

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p[i] = (uint8_t)v;
}

static void checksum(uint8_t *blob)
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, blob, 2);
    crypto_generichash_update(&st, blob + O_KEYNUM, 8);
    crypto_generichash_update(&st, blob + O_SK, 64);
    crypto_generichash_final(&st, blob + O_CHK, 32);
}

/* A fresh unencrypted blob with a real checksum. */
static void make_blob(uint8_t blob[BLOB])
{
    uint8_t pk[32];
    memset(blob, 0, BLOB);
    memcpy(blob, "Ed", 2);
    memcpy(blob + O_CHKALG, "B2", 2);
    randombytes_buf(blob + O_KEYNUM, 8);
    crypto_sign_keypair(pk, blob + O_SK);
    checksum(blob);
}

/* Encrypts blob the way minisign does, with the given limits. */
static void encrypt_blob(uint8_t blob[BLOB], const char *pw, uint64_t ops, uint64_t mem)
{
    uint8_t stream[BLOB - O_KEYNUM];
    memcpy(blob + O_KDF, "Sc", 2);
    randombytes_buf(blob + O_SALT, 32);
    put_le64(blob + O_OPS, ops);
    put_le64(blob + O_MEM, mem);
    checksum(blob);
    if (crypto_pwhash_scryptsalsa208sha256(stream, sizeof stream, pw, strlen(pw), blob + O_SALT,
                                           ops, mem) != 0)
        abort();
    for (size_t i = 0; i < sizeof stream; i++)
        blob[O_KEYNUM + i] ^= stream[i];
}

static char *key_text(const uint8_t blob[BLOB])
{
    static char text[512];
    char b64[256];
    sodium_bin2base64(b64, sizeof b64, blob, BLOB, sodium_base64_VARIANT_ORIGINAL);
    snprintf(text, sizeof text, "untrusted comment: test key\n%s\n", b64);
    return text;
}

static int key_blob(uint8_t blob[BLOB], const char *text)
{
    const char *nl = strchr(text, '\n');
    size_t got = 0;
    if (!nl)
        return -1;
    return sodium_base642bin(blob, BLOB, nl + 1, strcspn(nl + 1, "\n"), NULL, &got, NULL,
                             sodium_base64_VARIANT_ORIGINAL) == 0 &&
                   got == BLOB
               ? 0
               : -1;
}

static int parse_pub(const char *text, struct cmig_err *err)
{
    struct cmig_pubkey k;
    cmig_err_clear(err);
    return cmig_pubkey_parse(&k, text, strlen(text), "k.pub", err);
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

TEST(keyid_hex_is_minisign_spelling)
{
    char hex[17];
    cmig_keyid_hex(W_ID, hex);
    CHECK_STR(hex, "404535573F091AAC");
    const uint8_t one[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    cmig_keyid_hex(one, hex);
    CHECK_STR(hex, "0000000000000001");
}

TEST(pubkey_parse_minisign_file)
{
    struct cmig_pubkey k;
    struct cmig_err err;
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_pubkey_parse(&k, W_PUB, strlen(W_PUB), "w.pub", &err), 0);
    CHECK(memcmp(k.id, W_ID, 8) == 0);
}

TEST(pubkey_parse_bare_string)
{
    struct cmig_pubkey a, b;
    struct cmig_err err;
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_pubkey_parse(&a, W_PUB, strlen(W_PUB), "w.pub", &err), 0);
    CHECK_EQ_INT(cmig_pubkey_parse(&b, W_PUB_B64, strlen(W_PUB_B64), "key string", &err), 0);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    char with_nl[128];
    snprintf(with_nl, sizeof with_nl, "%s\n", W_PUB_B64);
    CHECK_EQ_INT(cmig_pubkey_parse(&b, with_nl, strlen(with_nl), "key string", &err), 0);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
}

TEST(pubkey_parse_crlf_and_missing_final_newline)
{
    struct cmig_err err;
    char crlf[256];
    snprintf(crlf, sizeof crlf, "untrusted comment: x\r\n%s\r\n", W_PUB_B64);
    CHECK_EQ_INT(parse_pub(crlf, &err), 0);
    snprintf(crlf, sizeof crlf, "untrusted comment: x\n%s", W_PUB_B64);
    CHECK_EQ_INT(parse_pub(crlf, &err), 0);
}

TEST(pubkey_format_matches_minisign)
{
    struct cmig_pubkey k;
    struct cmig_err err;
    char buf[256];
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_pubkey_parse(&k, W_PUB, strlen(W_PUB), "w.pub", &err), 0);
    CHECK_EQ_INT(cmig_pubkey_format(&k, buf, sizeof buf), strlen(W_PUB));
    CHECK_STR(buf, W_PUB);
    CHECK_EQ_INT(cmig_pubkey_format(&k, buf, strlen(W_PUB)), 0); /* no room for the NUL */
    CHECK_EQ_INT(cmig_pubkey_format(&k, buf, 10), 0);
    /* A key id with leading zero digits: minisign's comment drops them
     * (its "%" PRIX64), and the key line still holds the whole id. */
    memset(k.id, 0, sizeof k.id);
    k.id[0] = 0xAB;
    k.id[6] = 0x01; /* little-endian: 0x00010000000000AB */
    CHECK(cmig_pubkey_format(&k, buf, sizeof buf) > 0);
    CHECK(strncmp(buf, "untrusted comment: minisign public key 10000000000AB\n", 53) == 0);
    struct cmig_pubkey back;
    CHECK_EQ_INT(cmig_pubkey_parse(&back, buf, strlen(buf), "z.pub", &err), 0);
    CHECK(memcmp(back.id, k.id, sizeof k.id) == 0);
}

TEST(pubkey_parse_rejects_malformed)
{
    struct cmig_err err;
    char buf[8192];
    const char *bad[] = {
        "",
        "untrusted comment: only a comment\n",
        "not a comment\nRWSsGgk/VzVFQEApgPHTQbybiRHdz7N0xLQOeQKN7ZWz3ogyfjW+yquX\n",
        "untrusted comment: x\nRWSsGgk/VzVFQEApgPHTQbybiRHdz7N0xLQOeQKN7ZWz3ogyfjW+yqu\n",
        "untrusted comment: x\nRWSsGgk/VzVFQEApgPHTQbybiRHdz7N0xLQOeQKN7ZWz3ogyfjW+yquX=\n",
        "untrusted comment: x\nRWSsGgk/VzVFQEApgPHTQbybiRHdz7N0xLQOeQKN7ZWz3ogyfjW+yq!X\n",
        "untrusted comment: x\nRWSsGgk/VzVFQEApgPHTQbybiRHdz7N0xLQOeQKN7ZWz3ogyfjW+yquX\nextra\n",
        "untrusted comment: x\nRWSsGgk/VzVFQEApgPHTQbybiRHdz7N0xLQOeQKN7ZWz3ogyfjW+yquX\n\n",
        "untrusted comment: x\nRWSsGgk/VzVFQEApgPHTQbybiRHdz7N0xLQOeQKN7ZWz3ogyfjW+yquX\r",
        "untrusted comment: x\rx\nRWSsGgk/VzVFQEApgPHTQbybiRHdz7N0xLQOeQKN7ZWz3ogyfjW+yquX\n",
        /* "ED" is a signature algorithm, not a public key one */
        "untrusted comment: x\nRUSsGgk/VzVFQEApgPHTQbybiRHdz7N0xLQOeQKN7ZWz3ogyfjW+yquX\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parse_pub(bad[i], &err) != CMIG_E_KEY)
            printf("#   case %zu accepted\n", i);
        CHECK_EQ_INT(err.code, CMIG_E_KEY);
        CHECK_CONTAINS(err.msg, "'k.pub': not a minisign public key: ");
    }
    CHECK_EQ_INT(parse_pub(bad[10], &err), CMIG_E_KEY);
    CHECK_CONTAINS(err.msg, "unsupported signature algorithm");

    /* a NUL byte inside the text */
    struct cmig_pubkey k;
    memcpy(buf, W_PUB, sizeof W_PUB);
    buf[5] = '\0';
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_pubkey_parse(&k, buf, strlen(W_PUB), "k.pub", &err), CMIG_E_KEY);
    CHECK_CONTAINS(err.msg, "NUL");

    /* a comment line over the cap, and a file over the cap */
    memset(buf, 'a', sizeof buf);
    memcpy(buf, "untrusted comment: ", 19);
    snprintf(buf + 2000, sizeof buf - 2000, "\n%s\n", W_PUB_B64);
    CHECK_EQ_INT(parse_pub(buf, &err), CMIG_E_KEY);
    CHECK_CONTAINS(err.msg, "line too long");
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_pubkey_parse(&k, buf, CMIG_KEY_FILE_MAX + 1, "k.pub", &err), CMIG_E_KEY);
    CHECK_CONTAINS(err.msg, "larger than 4096 bytes");
}

TEST(pubkey_load_file)
{
    struct cmig_pubkey k;
    struct cmig_err err;
    char path[512];
    snprintf(path, sizeof path, "%s/w.pub", tmpdir);
    CHECK_EQ_INT(write_file(path, W_PUB, strlen(W_PUB)), 0);
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_pubkey_load(&k, path, &err), 0);
    CHECK(memcmp(k.id, W_ID, 8) == 0);
    snprintf(path, sizeof path, "%s/missing.pub", tmpdir);
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_pubkey_load(&k, path, &err), CMIG_E_IO);
    CHECK_CONTAINS(err.msg, "missing.pub': cannot open public key");
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_pubkey_load(&k, tmpdir, &err), CMIG_E_KEY);
    CHECK_CONTAINS(err.msg, "not a regular file");
}

TEST(keyring_add_find_dedupe)
{
    struct cmig_keyring ring = {0, NULL};
    struct cmig_pubkey a, b;
    struct cmig_err err;
    cmig_err_clear(&err);
    memset(&a, 1, sizeof a);
    memset(&b, 2, sizeof b);
    CHECK(cmig_keyring_find(&ring, a.id) == NULL);
    CHECK_EQ_INT(cmig_keyring_add(&ring, &a, &err), 0);
    CHECK_EQ_INT(cmig_keyring_add(&ring, &b, &err), 0);
    CHECK_EQ_INT(cmig_keyring_add(&ring, &a, &err), 0);
    CHECK_EQ_INT(ring.n, 2);
    const struct cmig_pubkey *f = cmig_keyring_find(&ring, b.id);
    CHECK(f && memcmp(f, &b, sizeof b) == 0);
    uint8_t none[8] = {3, 3, 3, 3, 3, 3, 3, 3};
    CHECK(cmig_keyring_find(&ring, none) == NULL);
    cmig_keyring_free(&ring);
    CHECK_EQ_INT(ring.n, 0);
    CHECK(ring.keys == NULL);
    cmig_keyring_free(&ring);
}

TEST(seckey_minisign_unencrypted_zero_checksum)
{
    struct cmig_seckey *k = NULL;
    struct cmig_pubkey from_sk, from_pub;
    struct cmig_err err;
    uint8_t sig[64];
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_seckey_text_encrypted(W_KEY, strlen(W_KEY)), 0);
    CHECK_EQ_INT(cmig_seckey_parse(&k, W_KEY, strlen(W_KEY), NULL, "w.key", &err), 0);
    CHECK(k != NULL);
    if (!k)
        return;
    cmig_seckey_pubkey(k, &from_sk);
    CHECK_EQ_INT(cmig_pubkey_parse(&from_pub, W_PUB, strlen(W_PUB), "w.pub", &err), 0);
    CHECK(memcmp(&from_sk, &from_pub, sizeof from_sk) == 0);
    CHECK_EQ_INT(cmig_seckey_sign(k, (const uint8_t *)"abc", 3, sig, &err), 0);
    CHECK_EQ_INT(crypto_sign_verify_detached(sig, (const uint8_t *)"abc", 3, from_pub.pk), 0);
    cmig_seckey_free(k);
    /* a password given for an unencrypted key is not needed, not an error */
    CHECK_EQ_INT(cmig_seckey_parse(&k, W_KEY, strlen(W_KEY), "pw", "w.key", &err), 0);
    cmig_seckey_free(k);
}

TEST(seckey_unencrypted_roundtrip)
{
    struct cmig_seckey *k = NULL, *k2 = NULL;
    struct cmig_pubkey p1, p2;
    struct cmig_err err;
    char *text = NULL;
    size_t len = 0;
    uint8_t blob[BLOB], s1[64], s2[64];
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_seckey_generate(&k, &err), 0);
    CHECK_EQ_INT(cmig_seckey_format(k, NULL, &text, &len, &err), 0);
    CHECK(text && strlen(text) == len);
    CHECK(strncmp(text, "untrusted comment: ", 19) == 0);
    CHECK_EQ_INT(cmig_seckey_text_encrypted(text, len), 0);
    CHECK_EQ_INT(key_blob(blob, text), 0);
    CHECK(memcmp(blob + O_KDF, "\0\0", 2) == 0);
    CHECK(!sodium_is_zero(blob + O_CHK, 32)); /* a real checksum, unlike minisign -W */
    CHECK_EQ_INT(cmig_seckey_parse(&k2, text, len, NULL, "k.key", &err), 0);
    if (k && k2) {
        cmig_seckey_pubkey(k, &p1);
        cmig_seckey_pubkey(k2, &p2);
        CHECK(memcmp(&p1, &p2, sizeof p1) == 0);
        cmig_seckey_sign(k, (const uint8_t *)"m", 1, s1, &err);
        cmig_seckey_sign(k2, (const uint8_t *)"m", 1, s2, &err);
        CHECK(memcmp(s1, s2, 64) == 0);
    }
    /* "" means no password, as NULL does */
    cmig_secret_free(text);
    text = NULL;
    CHECK_EQ_INT(cmig_seckey_format(k, "", &text, &len, &err), 0);
    CHECK_EQ_INT(cmig_seckey_text_encrypted(text, len), 0);
    cmig_secret_free(text);
    cmig_seckey_free(k);
    cmig_seckey_free(k2);
}

TEST(seckey_damaged_checksum_refused)
{
    struct cmig_seckey *k = NULL;
    struct cmig_err err;
    uint8_t blob[BLOB];
    make_blob(blob);
    blob[O_CHK + 3] ^= 1;
    const char *t = key_text(blob);
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_seckey_parse(&k, t, strlen(t), NULL, "d.key", &err), CMIG_E_KEY);
    CHECK_CONTAINS(err.msg, "'d.key': secret key checksum does not match");
    CHECK(k == NULL);
}

TEST(seckey_inconsistent_public_half_refused)
{
    struct cmig_seckey *k = NULL;
    struct cmig_err err;
    uint8_t blob[BLOB];
    make_blob(blob);
    blob[O_SK + 40] ^= 0x80;     /* in the public half */
    memset(blob + O_CHK, 0, 32); /* as minisign -W: nothing else would notice */
    const char *t = key_text(blob);
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_seckey_parse(&k, t, strlen(t), NULL, "d.key", &err), CMIG_E_KEY);
    CHECK_CONTAINS(err.msg, "public half does not match");
}

TEST(seckey_encrypted_small_limits)
{
    struct cmig_seckey *k = NULL;
    struct cmig_pubkey pub;
    struct cmig_err err;
    uint8_t blob[BLOB], plain[BLOB];
    make_blob(blob);
    memcpy(plain, blob, BLOB);
    encrypt_blob(blob, "correct horse", crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_MIN,
                 crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_MIN);
    const char *t = key_text(blob);
    CHECK_EQ_INT(cmig_seckey_text_encrypted(t, strlen(t)), 1);

    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_seckey_parse(&k, t, strlen(t), "correct horse", "e.key", &err), 0);
    if (k) {
        cmig_seckey_pubkey(k, &pub);
        CHECK(memcmp(pub.id, plain + O_KEYNUM, 8) == 0);
        CHECK(memcmp(pub.pk, plain + O_SK + 32, 32) == 0);
        cmig_seckey_free(k);
        k = NULL;
    }

    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_seckey_parse(&k, t, strlen(t), "Tr0ub4dor&3", "e.key", &err), CMIG_E_KEY);
    CHECK_CONTAINS(err.msg, "wrong password for secret key 'e.key'");
    CHECK(strstr(err.msg, "Tr0ub4dor") == NULL);
    CHECK(k == NULL);

    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_seckey_parse(&k, t, strlen(t), NULL, "e.key", &err), CMIG_E_KEY);
    CHECK_CONTAINS(err.msg, "encrypted and no password was given");
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_seckey_parse(&k, t, strlen(t), "", "e.key", &err), CMIG_E_KEY);
    CHECK_CONTAINS(err.msg, "no password");
}

TEST(seckey_hostile_scrypt_limits_refused_before_scrypt)
{
    struct cmig_seckey *k = NULL;
    struct cmig_err err;
    uint8_t blob[BLOB];
    const uint64_t limits[][2] = {
        {UINT64_C(1) << 25, UINT64_C(1) << 40},
        {UINT64_C(1) << 40, UINT64_C(1) << 30},
        {UINT64_MAX, UINT64_MAX},
        {UINT64_C(1) << 25, (UINT64_C(1) << 31) + 1},
    };
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        make_blob(blob);
        memcpy(blob + O_KDF, "Sc", 2);
        put_le64(blob + O_OPS, limits[i][0]);
        put_le64(blob + O_MEM, limits[i][1]);
        const char *t = key_text(blob);
        cmig_err_clear(&err);
        CHECK_EQ_INT(cmig_seckey_parse(&k, t, strlen(t), "pw", "h.key", &err), CMIG_E_KEY);
        CHECK_CONTAINS(err.msg, "'h.key': secret key asks for scrypt opslimit");
        CHECK_CONTAINS(err.msg, "over the caps");
        cmig_err_clear(&err);
        CHECK_EQ_INT(cmig_seckey_parse(&k, t, strlen(t), NULL, "h.key", &err), CMIG_E_KEY);
        CHECK_CONTAINS(err.msg, "over the caps");
    }
}

TEST(seckey_rejects_malformed)
{
    struct cmig_seckey *k = NULL;
    struct cmig_err err;
    uint8_t blob[BLOB];
    char text[1024];
    struct {
        int off;
        const char *bytes;
        const char *msg;
    } fields[] = {
        {0, "ED", "unsupported signature algorithm"},
        {O_KDF, "Xx", "unsupported key derivation function"},
        {O_CHKALG, "B3", "unsupported checksum algorithm"},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        make_blob(blob);
        memcpy(blob + fields[i].off, fields[i].bytes, 2);
        const char *t = key_text(blob);
        CHECK_EQ_INT(cmig_seckey_text_encrypted(t, strlen(t)), -1);
        cmig_err_clear(&err);
        CHECK_EQ_INT(cmig_seckey_parse(&k, t, strlen(t), NULL, "m.key", &err), CMIG_E_KEY);
        CHECK_CONTAINS(err.msg, "'m.key': not a minisign secret key: ");
        CHECK_CONTAINS(err.msg, fields[i].msg);
    }
    make_blob(blob);
    snprintf(text, sizeof text, "%s", key_text(blob));
    const size_t good_len = strlen(text);
    const char *variants[] = {"no comment", "extra", "short", "pubkey"};
    for (size_t i = 0; i < 4; i++) {
        char v[1100];
        if (i == 0)
            snprintf(v, sizeof v, "%s", strchr(text, '\n') + 1);
        else if (i == 1)
            snprintf(v, sizeof v, "%sextra\n", text);
        else if (i == 2)
            snprintf(v, sizeof v, "%.*s\n", (int)good_len - 6, text);
        else
            snprintf(v, sizeof v, "%s", W_PUB);
        CHECK_EQ_INT(cmig_seckey_text_encrypted(v, strlen(v)), -1);
        cmig_err_clear(&err);
        if (cmig_seckey_parse(&k, v, strlen(v), NULL, "m.key", &err) != CMIG_E_KEY)
            printf("#   variant '%s' accepted\n", variants[i]);
        CHECK_EQ_INT(err.code, CMIG_E_KEY);
        CHECK_CONTAINS(err.msg, "not a minisign secret key");
    }
    CHECK_EQ_INT(cmig_seckey_text_encrypted("", 0), -1);
    CHECK_EQ_INT(cmig_seckey_text_encrypted(text, CMIG_KEY_FILE_MAX + 1), -1);
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_seckey_parse(&k, text, CMIG_KEY_FILE_MAX + 1, NULL, "m.key", &err),
                 CMIG_E_KEY);
    CHECK_CONTAINS(err.msg, "larger than 4096 bytes");
}

/* The one test that pays for minisign's own scrypt limits (1 GiB). */
TEST(seckey_encrypted_roundtrip_minisign_limits)
{
    struct cmig_seckey *k = NULL, *k2 = NULL;
    struct cmig_pubkey p1, p2;
    struct cmig_err err;
    char *text = NULL;
    size_t len = 0;
    uint8_t blob[BLOB];
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_seckey_generate(&k, &err), 0);
    CHECK_EQ_INT(cmig_seckey_format(k, "s3cret pass", &text, &len, &err), 0);
    CHECK_EQ_INT(cmig_seckey_text_encrypted(text, len), 1);
    CHECK_EQ_INT(key_blob(blob, text), 0);
    CHECK(memcmp(blob, "EdScB2", 6) == 0);
    CHECK(!sodium_is_zero(blob + O_SALT, 32));
    uint64_t ops = 0, mem = 0;
    for (int i = 7; i >= 0; i--) {
        ops = ops << 8 | blob[O_OPS + i];
        mem = mem << 8 | blob[O_MEM + i];
    }
    CHECK_EQ_INT(ops, crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_SENSITIVE);
    CHECK_EQ_INT(mem, crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_SENSITIVE);
    CHECK_EQ_INT(cmig_seckey_parse(&k2, text, len, "s3cret pass", "k.key", &err), 0);
    if (k && k2) {
        cmig_seckey_pubkey(k, &p1);
        cmig_seckey_pubkey(k2, &p2);
        CHECK(memcmp(&p1, &p2, sizeof p1) == 0);
    }
    cmig_secret_free(text);
    cmig_seckey_free(k);
    cmig_seckey_free(k2);
}

TEST(secret_read_file_caps_and_nofollow)
{
    struct cmig_err err;
    char path[512], link[512], *text = NULL;
    size_t len = 99;
    snprintf(path, sizeof path, "%s/s.key", tmpdir);
    CHECK_EQ_INT(write_file(path, W_KEY, strlen(W_KEY)), 0);
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_secret_read_file(&text, &len, path, &err), 0);
    CHECK_EQ_INT(len, strlen(W_KEY));
    CHECK_STR(text, W_KEY);
    cmig_secret_free(text);

    snprintf(link, sizeof link, "%s/link.key", tmpdir);
    CHECK_EQ_INT(symlink(path, link), 0);
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_secret_read_file(&text, &len, link, &err), CMIG_E_KEY);
    CHECK_CONTAINS(err.msg, "symbolic link");
    CHECK(text == NULL);

    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_secret_read_file(&text, &len, tmpdir, &err), CMIG_E_KEY);
    CHECK_CONTAINS(err.msg, "not a regular file");

    static char big[CMIG_KEY_FILE_MAX + 1];
    memset(big, 'x', sizeof big);
    snprintf(path, sizeof path, "%s/big.key", tmpdir);
    CHECK_EQ_INT(write_file(path, big, sizeof big), 0);
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_secret_read_file(&text, &len, path, &err), CMIG_E_KEY);
    CHECK_CONTAINS(err.msg, "larger than 4096 bytes");
    CHECK_EQ_INT(write_file(path, big, CMIG_KEY_FILE_MAX), 0); /* exactly the cap is fine */
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_secret_read_file(&text, &len, path, &err), 0);
    CHECK_EQ_INT(len, CMIG_KEY_FILE_MAX);
    cmig_secret_free(text);

    snprintf(path, sizeof path, "%s/none.key", tmpdir);
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_secret_read_file(&text, &len, path, &err), CMIG_E_IO);
    CHECK_EQ_INT(err.sys_errno, ENOENT);
}

TEST(secret_dup_and_free)
{
    char *p = cmig_secret_dup("pass\nword", 4);
    CHECK_STR(p, "pass");
    cmig_secret_free(p);
    p = cmig_secret_dup("", 0);
    CHECK_STR(p, "");
    cmig_secret_free(p);
    cmig_secret_free(NULL);
    cmig_seckey_free(NULL);
}

int main(void)
{
    SUITE("keys");
    if (sodium_init() < 0)
        return 1;
    snprintf(tmpdir, sizeof tmpdir, "%s/cmig-keys.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir))
        return 1;
    RUN(keyid_hex_is_minisign_spelling);
    RUN(pubkey_parse_minisign_file);
    RUN(pubkey_parse_bare_string);
    RUN(pubkey_parse_crlf_and_missing_final_newline);
    RUN(pubkey_format_matches_minisign);
    RUN(pubkey_parse_rejects_malformed);
    RUN(pubkey_load_file);
    RUN(keyring_add_find_dedupe);
    RUN(seckey_minisign_unencrypted_zero_checksum);
    RUN(seckey_unencrypted_roundtrip);
    RUN(seckey_damaged_checksum_refused);
    RUN(seckey_inconsistent_public_half_refused);
    RUN(seckey_encrypted_small_limits);
    RUN(seckey_hostile_scrypt_limits_refused_before_scrypt);
    RUN(seckey_rejects_malformed);
    RUN(seckey_encrypted_roundtrip_minisign_limits);
    RUN(secret_read_file_caps_and_nofollow);
    RUN(secret_dup_and_free);
    const char *made[] = {"w.pub", "s.key", "link.key", "big.key"};
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", tmpdir, made[i]);
        unlink(path);
    }
    rmdir(tmpdir);
    return harness_done();
}
