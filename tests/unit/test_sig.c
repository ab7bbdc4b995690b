/*
 * test_sig.c - unit tests for minisign signature files and the prehash
 * (format/sig.c).
 *
 * The vectors were written by minisign 0.11: a -W key pair, a prehashed
 * signature of "hello\n" and a legacy (-l) one. Ed25519 is deterministic, so
 * signing the same prehash with the same key and comments must give the
 * same file byte for byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cmig/err.h"
#include "cmig/keys.h"
#include "cmig/sig.h"
#include "harness.h"

static const char W_PUB[] = "untrusted comment: minisign public key 404535573F091AAC\n"
                            "RWSsGgk/VzVFQEApgPHTQbybiRHdz7N0xLQOeQKN7ZWz3ogyfjW+yquX\n";
static const char W_KEY[] =
    "untrusted comment: minisign encrypted secret key\n"
    "RWQAAEIyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAArBoJP1c1RUDFLwr/"
    "LU4Jyo4z8BjmJd4eMQkwic6HQexbdum5DyWnCUApgPHTQbybiRHdz7N0xLQOeQKN7ZWz3ogyfjW+"
    "yquXAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
static const char MESSAGE[] = "hello\n";
/* minisign -S -s w.key -m f -c "cmig test vector" -t "cmig trusted vector" */
static const char SIG[] =
    "untrusted comment: cmig test vector\n"
    "RUSsGgk/VzVFQOyeCw1pf0Zwt+eKrQe+ZluCSi66Rck5979iIb8jCPPT8ihIZTIxbwUYxBUJsR7"
    "vPVZ/Uzt2AFZqxu6fBRIc/wc=\n"
    "trusted comment: cmig trusted vector\n"
    "QZaE6acPBC4NIN+PePiNQG+TT7fenhVxKwSuMTc1ZFUEhZwYsyZhVg30CJcPLVysAhVxz0QZVZt"
    "91Ghp7EXnCw==\n";
/* minisign -S -l (legacy, not prehashed) */
static const char LEGACY[] =
    "untrusted comment: signature from minisign secret key\n"
    "RWSsGgk/VzVFQH/2yl/sWu2a+mwMdMF6NuN6xiJTvnJA6hXaD/"
    "t5SXVgQuxB5+Jw0LgqtqhGg6NNY5b4iJ/5qokf/RrA1cqa8gI=\n"
    "trusted comment: timestamp:1795546381\tfile:f\n"
    "WXZIXQz/8wSXqLzJ0sNJWUakLUfExPL6BZni0upnZGPfTFVfBRql4BdsZKC1dB4cR5dkI+"
    "up5DhA5GxyQRISCw==\n";
static const uint8_t W_ID[8] = {0xac, 0x1a, 0x09, 0x3f, 0x57, 0x35, 0x45, 0x40};

static char tmpdir[256];
static uint8_t msg_hash[CMIG_PREHASH_BYTES];
static struct cmig_pubkey w_pub;

static int parse(struct cmig_sig *s, const char *text, struct cmig_err *err)
{
    cmig_err_clear(err);
    return cmig_sig_parse(s, text, strlen(text), "x.minisig", err);
}

static int verify_text(const char *text, struct cmig_err *err)
{
    struct cmig_sig s;
    int rc = parse(&s, text, err);
    if (rc)
        return rc;
    return cmig_sig_verify(&s, &w_pub, msg_hash, err);
}

/* Replaces the first occurrence of from with to in src, into dst. */
static void replace(char *dst, size_t cap, const char *src, const char *from, const char *to)
{
    const char *at = strstr(src, from);
    if (!at) {
        snprintf(dst, cap, "%s", src);
        return;
    }
    snprintf(dst, cap, "%.*s%s%s", (int)(at - src), src, to, at + strlen(from));
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

TEST(parse_minisign_vector)
{
    struct cmig_sig s;
    struct cmig_err err;
    CHECK_EQ_INT(parse(&s, SIG, &err), 0);
    CHECK_STR(s.untrusted_comment, "cmig test vector");
    CHECK_STR(s.trusted_comment, "cmig trusted vector");
    CHECK(memcmp(s.keyid, W_ID, 8) == 0);
}

TEST(verify_minisign_vector)
{
    struct cmig_err err;
    CHECK_EQ_INT(verify_text(SIG, &err), 0);
    CHECK_STR(err.msg, "");
}

TEST(create_matches_minisign_byte_for_byte)
{
    struct cmig_seckey *k = NULL;
    struct cmig_err err;
    char *text = NULL;
    size_t len = 0;
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_seckey_parse(&k, W_KEY, strlen(W_KEY), NULL, "w.key", &err), 0);
    if (!k)
        return;
    CHECK_EQ_INT(
        cmig_sig_create(k, msg_hash, "cmig test vector", "cmig trusted vector", &text, &len, &err),
        0);
    CHECK_STR(text, SIG);
    CHECK_EQ_INT(len, strlen(SIG));
    free(text);
    cmig_seckey_free(k);
}

TEST(create_parse_verify_roundtrip)
{
    struct cmig_seckey *k = NULL;
    struct cmig_pubkey pub;
    struct cmig_sig s;
    struct cmig_err err;
    char *text = NULL;
    size_t len = 0;
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_seckey_generate(&k, &err), 0);
    if (!k)
        return;
    cmig_seckey_pubkey(k, &pub);
    CHECK_EQ_INT(cmig_sig_create(k, msg_hash, NULL, "name:app\tversion:1.4.0", &text, &len, &err),
                 0);
    CHECK(text && strlen(text) == len);
    CHECK_EQ_INT(cmig_sig_parse(&s, text, len, "t.minisig", &err), 0);
    CHECK_STR(s.trusted_comment, "name:app\tversion:1.4.0");
    CHECK(memcmp(s.keyid, pub.id, 8) == 0);
    CHECK_EQ_INT(cmig_sig_verify(&s, &pub, msg_hash, &err), 0);
    free(text);
    /* an empty trusted comment is signed too */
    CHECK_EQ_INT(cmig_sig_create(k, msg_hash, "", "", &text, &len, &err), 0);
    CHECK_EQ_INT(cmig_sig_parse(&s, text, len, "t.minisig", &err), 0);
    CHECK_STR(s.trusted_comment, "");
    CHECK_STR(s.untrusted_comment, "");
    CHECK_EQ_INT(cmig_sig_verify(&s, &pub, msg_hash, &err), 0);
    free(text);
    cmig_seckey_free(k);
}

TEST(tampered_trusted_comment_fails)
{
    struct cmig_err err;
    char buf[1024];
    replace(buf, sizeof buf, SIG, "cmig trusted vector", "cmig trusted vectoR");
    CHECK_EQ_INT(verify_text(buf, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "trusted comment signature verification failed");
    replace(buf, sizeof buf, SIG, "cmig trusted vector", "cmig trusted vector ");
    CHECK_EQ_INT(verify_text(buf, &err), CMIG_E_VERIFY);
}

TEST(tampered_signatures_fail)
{
    struct cmig_err err;
    char buf[1024];
    /* a byte of the file signature */
    replace(buf, sizeof buf, SIG, "OyeCw1pf", "OyeCw1pg");
    CHECK_EQ_INT(verify_text(buf, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "signature verification failed: the file does not match");
    /* a byte of the global signature */
    replace(buf, sizeof buf, SIG, "QZaE6acP", "QZaE6acQ");
    CHECK_EQ_INT(verify_text(buf, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "trusted comment signature verification failed");
    /* another file */
    struct cmig_sig s;
    uint8_t other[CMIG_PREHASH_BYTES];
    crypto_generichash(other, sizeof other, (const uint8_t *)"hello!\n", 7, NULL, 0);
    CHECK_EQ_INT(parse(&s, SIG, &err), 0);
    CHECK_EQ_INT(cmig_sig_verify(&s, &w_pub, other, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "does not match");
}

TEST(wrong_key_fails)
{
    struct cmig_sig s;
    struct cmig_pubkey k = w_pub;
    struct cmig_err err;
    CHECK_EQ_INT(parse(&s, SIG, &err), 0);
    k.id[0] ^= 1;
    CHECK_EQ_INT(cmig_sig_verify(&s, &k, msg_hash, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "signature was made by key 404535573F091AAC, not by the public key "
                            "404535573F091AAD");
    k = w_pub;
    k.pk[5] ^= 1;
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_sig_verify(&s, &k, msg_hash, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "signature verification failed");
}

TEST(untrusted_comment_edit_still_verifies)
{
    struct cmig_err err;
    char buf[1024];
    replace(buf, sizeof buf, SIG, "cmig test vector", "anything at all, it is not signed");
    CHECK_EQ_INT(verify_text(buf, &err), 0);
}

TEST(legacy_signature_refused)
{
    struct cmig_sig s;
    struct cmig_err err;
    CHECK_EQ_INT(parse(&s, LEGACY, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "'x.minisig': not a minisign signature: legacy non-prehashed");
}

TEST(crlf_and_missing_final_newline_accepted)
{
    struct cmig_sig s;
    struct cmig_err err;
    char buf[1024], tmp[1024];
    size_t j = 0;
    for (size_t i = 0; SIG[i] && j + 2 < sizeof buf; i++) {
        if (SIG[i] == '\n')
            buf[j++] = '\r';
        buf[j++] = SIG[i];
    }
    buf[j] = '\0';
    CHECK_EQ_INT(verify_text(buf, &err), 0);
    CHECK_EQ_INT(parse(&s, buf, &err), 0);
    CHECK_STR(s.trusted_comment, "cmig trusted vector");
    snprintf(tmp, sizeof tmp, "%.*s", (int)strlen(SIG) - 1, SIG);
    CHECK_EQ_INT(verify_text(tmp, &err), 0);
    snprintf(tmp, sizeof tmp, "%.*s", (int)strlen(buf) - 2, buf);
    CHECK_EQ_INT(verify_text(tmp, &err), 0);
}

TEST(parse_rejects_malformed)
{
    struct cmig_sig s;
    struct cmig_err err;
    char buf[1024];
    struct {
        const char *from, *to, *msg;
    } edits[] = {
        {"untrusted comment: ", "untrusted comment ", "first line does not start with"},
        {"\ntrusted comment: ", "\nTrusted comment: ", "third line does not start with"},
        {"RUSsGgk/", "RUSsGgk", "second line is not base64"},
        {"RUSsGgk/", "RUSsGgk!", "second line is not base64"},
        {"RUSsGgk/", "RVSsGgk/", "unsupported signature algorithm"},
        {"91Ghp7EXnCw==", "91Ghp7EXnCw=", "fourth line is not base64"},
        {"91Ghp7EXnCw==", "91Ghp7EXnCx==", "fourth line is not base64"}, /* non-canonical */
        {"91Ghp7EXnCw==\n", "91Ghp7EXnCw==\nmore\n", "unexpected text after the fourth line"},
        {"91Ghp7EXnCw==\n", "91Ghp7EXnCw==\n\n", "unexpected text after the fourth line"},
        {"cmig trusted vector", "cmig\rtrusted", "carriage return"},
        {"cmig test vector", "cmig\rtest", "carriage return"},
        {"\nQZaE6acP", "\n", "fourth line is not base64"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        replace(buf, sizeof buf, SIG, edits[i].from, edits[i].to);
        if (parse(&s, buf, &err) != CMIG_E_VERIFY)
            printf("#   edit %zu accepted\n", i);
        CHECK_EQ_INT(err.code, CMIG_E_VERIFY);
        CHECK_CONTAINS(err.msg, "'x.minisig': not a minisign signature: ");
        CHECK_CONTAINS(err.msg, edits[i].msg);
    }
    const char *truncated[] = {
        "", "untrusted comment: x\n",
        "untrusted comment: cmig test vector\n"
        "RUSsGgk/VzVFQOyeCw1pf0Zwt+eKrQe+ZluCSi66Rck5979iIb8jCPPT8ihIZTIxbwUYxB"
        "UJsR7vPVZ/Uzt2AFZqxu6fBRIc/wc=\n"};
    for (size_t i = 0; i < 3; i++) {
        CHECK_EQ_INT(parse(&s, truncated[i], &err), CMIG_E_VERIFY);
        CHECK_CONTAINS(err.msg, i ? "missing" : "empty");
    }
    /* a NUL byte inside the trusted comment */
    memcpy(buf, SIG, sizeof SIG);
    buf[strstr(SIG, "trusted vector") - SIG] = '\0';
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_sig_parse(&s, buf, strlen(SIG), "x.minisig", &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "NUL");
    CHECK_STR(s.trusted_comment, ""); /* nothing half-parsed is left behind */
}

TEST(comment_caps)
{
    static char big[CMIG_SIG_FILE_MAX + 2];
    static char tc[CMIG_TRUSTED_COMMENT_MAX + 2];
    struct cmig_sig s;
    struct cmig_err err;
    const char *sig_line = strchr(SIG, '\n') + 1;
    const char *tc_line = strstr(SIG, "\ntrusted comment: ") + 1;
    const char *gsig_line = strchr(tc_line, '\n') + 1;
    int sig_len = (int)(tc_line - sig_line);

    memset(tc, 'u', CMIG_COMMENT_MAX);
    tc[CMIG_COMMENT_MAX] = '\0';
    snprintf(big, sizeof big, "untrusted comment: %s\n%.*strusted comment: t\n%s", tc, sig_len,
             sig_line, gsig_line);
    CHECK_EQ_INT(parse(&s, big, &err), 0);
    CHECK_EQ_INT(strlen(s.untrusted_comment), CMIG_COMMENT_MAX);
    tc[CMIG_COMMENT_MAX] = 'u';
    tc[CMIG_COMMENT_MAX + 1] = '\0';
    snprintf(big, sizeof big, "untrusted comment: %s\n%.*strusted comment: t\n%s", tc, sig_len,
             sig_line, gsig_line);
    CHECK_EQ_INT(parse(&s, big, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "line too long");

    memset(tc, 't', CMIG_TRUSTED_COMMENT_MAX);
    tc[CMIG_TRUSTED_COMMENT_MAX] = '\0';
    snprintf(big, sizeof big, "untrusted comment: u\n%.*strusted comment: %s\n%s", sig_len,
             sig_line, tc, gsig_line);
    CHECK_EQ_INT(parse(&s, big, &err), 0);
    CHECK_EQ_INT(strlen(s.trusted_comment), CMIG_TRUSTED_COMMENT_MAX);
    tc[CMIG_TRUSTED_COMMENT_MAX] = 't';
    tc[CMIG_TRUSTED_COMMENT_MAX + 1] = '\0';
    snprintf(big, sizeof big, "untrusted comment: u\n%.*strusted comment: %s\n%s", sig_len,
             sig_line, tc, gsig_line);
    CHECK_EQ_INT(parse(&s, big, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "line too long");

    memset(big, 'x', sizeof big);
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_sig_parse(&s, big, CMIG_SIG_FILE_MAX + 1, "x.minisig", &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "larger than 16384 bytes");
}

TEST(create_refuses_bad_comments)
{
    static char longc[CMIG_TRUSTED_COMMENT_MAX + 1];
    struct cmig_seckey *k = NULL;
    struct cmig_sig s;
    struct cmig_err err;
    char *text = NULL;
    size_t len = 0;
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_seckey_generate(&k, &err), 0);
    if (!k)
        return;
    CHECK_EQ_INT(cmig_sig_create(k, msg_hash, "a\nb", "t", &text, &len, &err), CMIG_E_USAGE);
    CHECK_CONTAINS(err.msg, "untrusted comment contains a line break");
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_sig_create(k, msg_hash, "u", "a\rb", &text, &len, &err), CMIG_E_USAGE);
    CHECK_CONTAINS(err.msg, "trusted comment contains a line break");
    CHECK(text == NULL);

    /* the longest comments minisign itself can read back */
    memset(longc, 'c', 1003);
    longc[1003] = '\0';
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_sig_create(k, msg_hash, longc, "t", &text, &len, &err), 0);
    CHECK_EQ_INT(cmig_sig_parse(&s, text, len, "t.minisig", &err), 0);
    free(text);
    longc[1003] = 'c';
    longc[1004] = '\0';
    CHECK_EQ_INT(cmig_sig_create(k, msg_hash, longc, "t", &text, &len, &err), CMIG_E_USAGE);
    CHECK_CONTAINS(err.msg, "untrusted comment too long");

    memset(longc, 'c', 8173);
    longc[8173] = '\0';
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_sig_create(k, msg_hash, "u", longc, &text, &len, &err), 0);
    CHECK_EQ_INT(cmig_sig_parse(&s, text, len, "t.minisig", &err), 0);
    CHECK_EQ_INT(strlen(s.trusted_comment), 8173);
    free(text);
    longc[8173] = 'c';
    longc[8174] = '\0';
    CHECK_EQ_INT(cmig_sig_create(k, msg_hash, "u", longc, &text, &len, &err), CMIG_E_USAGE);
    CHECK_CONTAINS(err.msg, "trusted comment too long");
    cmig_seckey_free(k);
}

TEST(sig_load_file)
{
    struct cmig_sig s;
    struct cmig_err err;
    char path[512];
    static char big[CMIG_SIG_FILE_MAX + 1];
    snprintf(path, sizeof path, "%s/f.minisig", tmpdir);
    CHECK_EQ_INT(write_file(path, SIG, strlen(SIG)), 0);
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_sig_load(&s, path, &err), 0);
    CHECK_STR(s.trusted_comment, "cmig trusted vector");

    memset(big, '\n', sizeof big);
    CHECK_EQ_INT(write_file(path, big, sizeof big), 0);
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_sig_load(&s, path, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "larger than 16384 bytes");
    CHECK_CONTAINS(err.msg, "f.minisig'");
    unlink(path);

    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_sig_load(&s, path, &err), CMIG_E_IO);
    CHECK_CONTAINS(err.msg, "cannot open signature");
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_sig_load(&s, tmpdir, &err), CMIG_E_VERIFY);
    CHECK_CONTAINS(err.msg, "not a regular file");
}

TEST(prehash_fd_streams_and_caps)
{
    enum { N = 200000 }; /* several 64 KiB reads and a partial one */
    static uint8_t data[N];
    uint8_t want[CMIG_PREHASH_BYTES], got[CMIG_PREHASH_BYTES];
    struct cmig_err err;
    uint64_t size = 0;
    char path[512];
    for (size_t i = 0; i < N; i++)
        data[i] = (uint8_t)(i * 7 + (i >> 9));
    snprintf(path, sizeof path, "%s/data", tmpdir);
    CHECK_EQ_INT(write_file(path, data, N), 0);
    crypto_generichash(want, sizeof want, data, N, NULL, 0);

    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_prehash_fd(fd, N, got, &size, "data", &err), 0);
    CHECK(memcmp(want, got, sizeof want) == 0);
    CHECK_EQ_INT(size, N);

    /* from the current offset on */
    lseek(fd, 1000, SEEK_SET);
    crypto_generichash(want, sizeof want, data + 1000, N - 1000, NULL, 0);
    CHECK_EQ_INT(cmig_prehash_fd(fd, N, got, NULL, "data", &err), 0);
    CHECK(memcmp(want, got, sizeof want) == 0);

    lseek(fd, 0, SEEK_SET);
    CHECK_EQ_INT(cmig_prehash_fd(fd, N - 1, got, &size, "data", &err), CMIG_E_VERIFY);
    CHECK_STR(err.msg, "'data': larger than 199999 bytes");
    close(fd);

    /* an empty file hashes to BLAKE2b-512("") */
    CHECK_EQ_INT(write_file(path, "", 0), 0);
    fd = open(path, O_RDONLY);
    crypto_generichash(want, sizeof want, NULL, 0, NULL, 0);
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_prehash_fd(fd, 0, got, &size, "empty", &err), 0);
    CHECK(memcmp(want, got, sizeof want) == 0);
    CHECK_EQ_INT(size, 0);
    close(fd);
    unlink(path);

    /* a pipe gives short reads */
    int p[2];
    CHECK_EQ_INT(pipe(p), 0);
    CHECK_EQ_INT(write(p[1], MESSAGE, strlen(MESSAGE)), (long long)strlen(MESSAGE));
    close(p[1]);
    CHECK_EQ_INT(cmig_prehash_fd(p[0], 100, got, &size, "pipe", &err), 0);
    CHECK(memcmp(msg_hash, got, sizeof got) == 0);
    close(p[0]);

    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_prehash_fd(-1, 100, got, &size, "bad", &err), CMIG_E_IO);
    CHECK_CONTAINS(err.msg, "'bad': cannot read");
}

int main(void)
{
    struct cmig_err err;
    SUITE("sig");
    if (sodium_init() < 0)
        return 1;
    crypto_generichash(msg_hash, sizeof msg_hash, (const uint8_t *)MESSAGE, strlen(MESSAGE), NULL,
                       0);
    cmig_err_clear(&err);
    if (cmig_pubkey_parse(&w_pub, W_PUB, strlen(W_PUB), "w.pub", &err) != 0) {
        printf("not ok - sig: setup: %s\n", err.msg);
        return 1;
    }
    snprintf(tmpdir, sizeof tmpdir, "%s/cmig-sig.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir))
        return 1;
    RUN(parse_minisign_vector);
    RUN(verify_minisign_vector);
    RUN(create_matches_minisign_byte_for_byte);
    RUN(create_parse_verify_roundtrip);
    RUN(tampered_trusted_comment_fails);
    RUN(tampered_signatures_fail);
    RUN(wrong_key_fails);
    RUN(untrusted_comment_edit_still_verifies);
    RUN(legacy_signature_refused);
    RUN(crlf_and_missing_final_newline_accepted);
    RUN(parse_rejects_malformed);
    RUN(comment_caps);
    RUN(create_refuses_bad_comments);
    RUN(sig_load_file);
    RUN(prehash_fd_streams_and_caps);
    rmdir(tmpdir);
    return harness_done();
}
