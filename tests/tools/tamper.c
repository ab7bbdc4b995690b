/*
 * tamper.c - every small change to a signed bundle or its signature must
 * be refused; the one part minisign leaves unsigned must not matter.
 *
 *   tamper BUNDLE PUBKEY
 *
 * Thousands of variants are opened in-process with cmig_bundle_open (the
 * path both programs use), which is far faster than one process each:
 * each byte of the bundle changed with several values, every truncation,
 * appended tails; the same byte changes again with the signature skipped
 * (the structural checks alone must never crash and never hand out a file
 * whose hash differs from the manifest's); and each byte of BUNDLE.minisig
 * changed, by region: the untrusted comment may change freely, anything
 * else must be refused. Prints "ok - tamper: ..." / "not ok - tamper: ..."
 * lines with the counts. Exit 0 when all pass, 1 when one fails, 2 on a
 * setup error. Meant for small bundles (a few KB).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cmig/bundle.h"
#include "cmig/err.h"
#include "cmig/keys.h"
#include "cmig/manifest.h"
#include "cmig/sig.h"

#define BUNDLE_MAX (4u << 20)
#define SHOW_MAX 8 /* failing cases named per check */
#define SHOW_ONE 64

static const uint8_t BYTE_XORS[] = {0x01, 0x80, 0xff};
static const uint8_t SIG_XORS[] = {0x01, 0x20, 0x80};

static struct cmig_keyring ring;
static char dir[256], work[320], work_sig[340];
static int failures;

static void report(int pass, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(int pass, const char *fmt, ...)
{
    va_list ap;
    printf("%s - tamper: ", pass ? "ok" : "not ok");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    if (!pass)
        failures++;
}

static int read_file(const char *path, uint8_t **out, size_t *len, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    *out = malloc(cap + 1);
    *len = *out ? fread(*out, 1, cap + 1, f) : 0;
    int bad = !*out || ferror(f) || *len > cap;
    fclose(f);
    if (!bad)
        (*out)[*len] = 0; /* the signature text is read as a string too */
    return bad ? -1 : 0;
}

static int write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    const uint8_t *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)w;
    }
    return close(fd);
}

/* Every file each_file hands out must match the manifest exactly. */
static int check_file(void *ctx, const struct cmig_migration *m, int is_down, const uint8_t *data,
                      size_t len, struct cmig_err *err)
{
    const struct cmig_file *f = is_down ? &m->down : &m->up;
    uint8_t digest[32];
    (void)err;
    crypto_hash_sha256(digest, data, len);
    if (len != f->size || memcmp(digest, f->sha256, 32) != 0)
        ++*(int *)ctx;
    return 0;
}

/* Opens work (with the signature at sig_path unless flags skip it) and,
 * when that succeeds, walks every file. Returns the code; *bad_files counts
 * files that reached the callback without matching the manifest. */
static int attempt(const char *sig_path, unsigned flags, int *bad_files, struct cmig_err *err)
{
    struct cmig_open_opts o = {.keys = &ring, .sig_path = sig_path, .flags = flags};
    struct cmig_bundle *b = NULL;
    cmig_err_clear(err);
    int rc = cmig_bundle_open(&b, work, &o, err);
    if (rc == 0) {
        rc = cmig_bundle_each_file(b, NULL, check_file, bad_files, err);
        cmig_bundle_close(b);
    } else if (b) {
        cmig_bundle_close(b);
        rc = -1; /* a refusal must not hand out a bundle */
    }
    return rc;
}

struct tally {
    unsigned tried, refused, accepted, other;
    char shown[SHOW_MAX * SHOW_ONE];
    size_t shown_len;
    unsigned n_shown;
};

static void note(struct tally *t, int rc, const char *what)
{
    t->tried++;
    if (rc == CMIG_E_VERIFY)
        t->refused++;
    else if (rc == 0)
        t->accepted++;
    else
        t->other++;
    if (what && t->n_shown < SHOW_MAX && t->shown_len < sizeof t->shown - SHOW_ONE) {
        int w = snprintf(t->shown + t->shown_len, sizeof t->shown - t->shown_len, "%s%.*s",
                         t->n_shown ? ", " : "", SHOW_ONE - 3, what);
        if (w > 0)
            t->shown_len += (size_t)w;
        t->n_shown++;
    }
}

/* ---- the bundle --------------------------------------------------------- */

static void bundle_byte_changes(const uint8_t *orig, size_t n, const char *sig_path)
{
    struct tally t = {0};
    struct cmig_err err;
    int fd = open(work, O_RDWR | O_CLOEXEC);
    if (fd < 0 || write_file(work, orig, n)) {
        report(0, "cannot write '%s'", work);
        if (fd >= 0)
            close(fd);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t x = 0; x < sizeof BYTE_XORS; x++) {
            uint8_t v = orig[i] ^ BYTE_XORS[x];
            int bad = 0;
            if (pwrite(fd, &v, 1, (off_t)i) != 1)
                break;
            int rc = attempt(sig_path, 0, &bad, &err);
            char what[SHOW_ONE];
            snprintf(what, sizeof what, "byte %zu ^ 0x%02x (%d)", i, BYTE_XORS[x], rc);
            note(&t, rc, rc == CMIG_E_VERIFY ? NULL : what);
        }
        if (pwrite(fd, &orig[i], 1, (off_t)i) != 1)
            break;
    }
    close(fd);
    report(t.refused == t.tried && t.tried == n * sizeof BYTE_XORS,
           "%u single-byte changes of the bundle (%zu bytes x %zu values) refused: %u of %u%s%s",
           t.tried, n, sizeof BYTE_XORS, t.refused, t.tried, t.n_shown ? "; not refused: " : "",
           t.shown);
}

static void bundle_truncations(const uint8_t *orig, size_t n, const char *sig_path)
{
    struct tally t = {0};
    struct cmig_err err;
    if (write_file(work, orig, n)) {
        report(0, "cannot write '%s'", work);
        return;
    }
    /* Shortest last: each step only cuts more off the same file. */
    for (size_t len = n; len-- > 0;) {
        int bad = 0;
        if (truncate(work, (off_t)len) != 0)
            break;
        int rc = attempt(sig_path, 0, &bad, &err);
        char what[SHOW_ONE];
        snprintf(what, sizeof what, "length %zu (%d)", len, rc);
        note(&t, rc, rc == CMIG_E_VERIFY ? NULL : what);
    }
    report(t.refused == t.tried && t.tried == n,
           "%u truncations of the bundle (every length from 0 to %zu) refused: %u of %u%s%s",
           t.tried, n - 1, t.refused, t.tried, t.n_shown ? "; not refused: " : "", t.shown);
}

static void bundle_tails(const uint8_t *orig, size_t n, const char *sig_path)
{
    /* An empty gzip member: what a second `gzip -n` of nothing adds. */
    static const uint8_t empty_gzip[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3,
                                         3,    0,    0, 0, 0, 0, 0, 0, 0, 0};
    static uint8_t zeros[10240], noise[997];
    struct {
        const char *name;
        const uint8_t *data;
        size_t len;
    } tails[] = {
        {"one zero byte", zeros, 1},
        {"a newline", (const uint8_t *)"\n", 1},
        {"512 zero bytes", zeros, 512},
        {"a 10240-byte zero record", zeros, sizeof zeros},
        {"997 random bytes", noise, sizeof noise},
        {"an empty gzip member", empty_gzip, sizeof empty_gzip},
        {"the bundle again", orig, n},
    };
    struct tally t = {0};
    struct cmig_err err;
    uint8_t *buf = malloc(2 * n + sizeof zeros);
    randombytes_buf(noise, sizeof noise);
    for (size_t i = 0; buf && i < sizeof tails / sizeof tails[0]; i++) {
        int bad = 0;
        memcpy(buf, orig, n);
        memcpy(buf + n, tails[i].data, tails[i].len);
        if (write_file(work, buf, n + tails[i].len))
            break;
        int rc = attempt(sig_path, 0, &bad, &err);
        note(&t, rc, rc == CMIG_E_VERIFY ? NULL : tails[i].name);
    }
    free(buf);
    report(t.refused == t.tried && t.tried == sizeof tails / sizeof tails[0],
           "%u appended tails refused: %u of %u%s%s", t.tried, t.refused, t.tried,
           t.n_shown ? "; not refused: " : "", t.shown);
}

/* Without the signature nothing vouches for the bytes, so some changes
 * (in gzip or tar header fields nobody reads) are accepted. What must hold:
 * no crash, no code other than a refusal, and no file handed out that
 * differs from the manifest. */
static void structural_byte_changes(const uint8_t *orig, size_t n)
{
    struct tally t = {0};
    struct cmig_err err;
    int bad_files = 0;
    int fd = open(work, O_RDWR | O_CLOEXEC);
    if (fd < 0 || write_file(work, orig, n)) {
        report(0, "cannot write '%s'", work);
        if (fd >= 0)
            close(fd);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t x = 0; x < sizeof BYTE_XORS; x++) {
            uint8_t v = orig[i] ^ BYTE_XORS[x];
            if (pwrite(fd, &v, 1, (off_t)i) != 1)
                break;
            int rc = attempt(NULL, CMIG_OPEN_SKIP_SIGNATURE, &bad_files, &err);
            char what[SHOW_ONE];
            snprintf(what, sizeof what, "byte %zu ^ 0x%02x (%d)", i, BYTE_XORS[x], rc);
            note(&t, rc, rc == 0 || rc == CMIG_E_VERIFY ? NULL : what);
        }
        if (pwrite(fd, &orig[i], 1, (off_t)i) != 1)
            break;
    }
    close(fd);
    report(t.other == 0 && bad_files == 0 && t.tried == n * sizeof BYTE_XORS && t.refused > 0,
           "without the signature, %u single-byte changes: %u refused, %u accepted with every "
           "file matching the manifest, %u other results, %d mismatching files handed out%s%s",
           t.tried, t.refused, t.accepted, t.other, bad_files, t.n_shown ? "; other: " : "",
           t.shown);
}

/* ---- the signature file ------------------------------------------------- */

enum region {
    R_UNTRUSTED_TEXT,
    R_PREFIX,
    R_ALGORITHM,
    R_KEYID,
    R_SIGNATURE,
    R_TRUSTED_TEXT,
    R_GLOBAL,
    R_NEWLINE,
    R_COUNT
};

static const char *const REGION_NAME[R_COUNT] = {
    "untrusted comment", "comment prefixes", "algorithm",        "key id",
    "signature",         "trusted comment",  "global signature", "line ends"};

/* Which part of the signature file byte i belongs to. line_start[k] is
 * where line k begins (k = 0..3), line_start[4] is the file's length. */
static enum region region_of(const char *text, const size_t line_start[5], size_t i)
{
    static const size_t ulen = sizeof "untrusted comment: " - 1,
                        tlen = sizeof "trusted comment: " - 1;
    if (text[i] == '\n')
        return R_NEWLINE;
    if (i < line_start[1])
        return i < ulen ? R_PREFIX : R_UNTRUSTED_TEXT;
    if (i < line_start[2]) {
        /* base64: character c carries bits 6c..6c+5 of the 74-byte blob
         * "ED" || key id[8] || signature[64]. */
        size_t c = i - line_start[1];
        size_t first = 6 * c / 8, last = (6 * c + 5) / 8;
        if (first < 2)
            return R_ALGORITHM;
        if (first < 10 || last < 10)
            return R_KEYID;
        return R_SIGNATURE;
    }
    if (i < line_start[3])
        return i - line_start[2] < tlen ? R_PREFIX : R_TRUSTED_TEXT;
    return R_GLOBAL;
}

static int sig_attempt(const char *text, size_t len, struct cmig_err *err)
{
    int bad = 0;
    if (write_file(work_sig, text, len))
        return -1;
    int rc = attempt(work_sig, 0, &bad, err);
    return bad ? -1 : rc;
}

static void sig_byte_changes(const char *orig, size_t n)
{
    size_t line_start[5] = {0, 0, 0, 0, n};
    for (size_t i = 0, k = 1; i < n && k < 4; i++)
        if (orig[i] == '\n')
            line_start[k++] = i + 1;
    struct tally tr[R_COUNT];
    unsigned keyid_named = 0, keyid_valid = 0, skipped = 0;
    struct cmig_err err;
    char *buf = malloc(n + 1);
    memset(tr, 0, sizeof tr);
    if (!buf) {
        report(0, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        enum region r = region_of(orig, line_start, i);
        for (size_t x = 0; x < sizeof SIG_XORS; x++) {
            memcpy(buf, orig, n);
            buf[i] = (char)(orig[i] ^ SIG_XORS[x]);
            if (r == R_UNTRUSTED_TEXT && (buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\0')) {
                skipped++; /* that would be another line, not another comment */
                continue;
            }
            int rc = sig_attempt(buf, n, &err);
            char what[SHOW_ONE];
            /* libsodium 1.0.18 decodes any byte >= 0x80 as '/': say so when
             * that is why a change went unnoticed. */
            snprintf(what, sizeof what, "byte %zu ^ 0x%02x (%d)%s", i, SIG_XORS[x], rc,
                     orig[i] == '/' && (buf[i] & 0x80) ? " read as '/'" : "");
            int as_expected = r == R_UNTRUSTED_TEXT ? rc == 0 : rc == CMIG_E_VERIFY;
            note(&tr[r], rc, as_expected ? NULL : what);
            /* A character wholly inside the key id changes only the key
             * id: the refusal must say the key is unknown. */
            size_t c = i - line_start[1];
            if (r == R_KEYID && 6 * c / 8 >= 2 && (6 * c + 5) / 8 < 10 && rc == CMIG_E_VERIFY &&
                !strstr(err.msg, "not a minisign signature")) {
                keyid_valid++;
                keyid_named += strstr(err.msg, "which is not among the") != NULL;
            }
        }
    }
    free(buf);

    report(tr[R_UNTRUSTED_TEXT].accepted == tr[R_UNTRUSTED_TEXT].tried &&
               tr[R_UNTRUSTED_TEXT].tried > 0,
           "%u single-byte changes of the untrusted comment still verify: %u of %u "
           "(%u changes to a line break or NUL not tried)%s%s",
           tr[R_UNTRUSTED_TEXT].tried, tr[R_UNTRUSTED_TEXT].accepted, tr[R_UNTRUSTED_TEXT].tried,
           skipped, tr[R_UNTRUSTED_TEXT].n_shown ? "; refused: " : "", tr[R_UNTRUSTED_TEXT].shown);
    for (int r = R_PREFIX; r < R_COUNT; r++)
        report(tr[r].refused == tr[r].tried && tr[r].tried > 0,
               "%u single-byte changes of the signature file's %s refused: %u of %u%s%s",
               tr[r].tried, REGION_NAME[r], tr[r].refused, tr[r].tried,
               tr[r].n_shown ? "; not refused: " : "", tr[r].shown);
    report(keyid_valid > 0 && keyid_named == keyid_valid,
           "%u changes inside the key id that still decode name the unknown key: %u of %u",
           keyid_valid, keyid_named, keyid_valid);
}

/* Whole-field edits, made the way someone would make them. */
static void sig_edits(const char *orig, size_t n)
{
    struct cmig_err err;
    char *buf = malloc(n + 4096);
    const char *nl1 = memchr(orig, '\n', n);
    const char *l2 = nl1 ? nl1 + 1 : NULL;
    const char *nl2 = l2 ? memchr(l2, '\n', n - (size_t)(l2 - orig)) : NULL;
    const char *tc = nl2 ? nl2 + 1 : NULL;
    if (!buf || !nl2) {
        report(0, "signature file has no second line");
        free(buf);
        return;
    }
    size_t rest = n - (size_t)(l2 - orig);

    /* The untrusted comment, replaced wholesale, emptied or lengthened. */
    const char *comments[] = {
        "", "anything at all", "trusted comment: not really",
        "a long one xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"};
    for (size_t i = 0; i < sizeof comments / sizeof comments[0]; i++) {
        int len =
            snprintf(buf, n + 4096, "untrusted comment: %s\n%.*s", comments[i], (int)rest, l2);
        int rc = sig_attempt(buf, (size_t)len, &err);
        report(rc == 0, "untrusted comment replaced by '%.20s': still verifies (%s)", comments[i],
               rc ? err.msg : "ok");
    }

    /* The trusted comment, edited where it names the bundle. */
    const char *ver = strstr(tc, " version=");
    if (ver) {
        memcpy(buf, orig, n);
        char *v = buf + (ver - orig) + 9;
        *v = *v == '9' ? '8' : '9';
        int rc = sig_attempt(buf, n, &err);
        report(rc == CMIG_E_VERIFY && strstr(err.msg, "trusted comment signature verification"),
               "trusted comment naming another version: refused (%s)", err.msg);
    }
    const char *hash = strstr(tc, "manifest-sha256=");
    if (hash) {
        memcpy(buf, orig, n);
        char *h = buf + (hash - orig) + 16;
        *h = *h == '0' ? '1' : '0';
        int rc = sig_attempt(buf, n, &err);
        report(rc == CMIG_E_VERIFY && strstr(err.msg, "trusted comment signature verification"),
               "trusted comment naming another manifest: refused (%s)", err.msg);
    }

    /* The key id, decoded, changed and encoded again. */
    uint8_t blob[74];
    size_t got = 0;
    if (sodium_base642bin(blob, sizeof blob, l2, (size_t)(nl2 - l2), NULL, &got, NULL,
                          sodium_base64_VARIANT_ORIGINAL) == 0 &&
        got == sizeof blob) {
        char b64[sodium_base64_ENCODED_LEN(74, sodium_base64_VARIANT_ORIGINAL)];
        blob[2] ^= 0x01;
        sodium_bin2base64(b64, sizeof b64, blob, sizeof blob, sodium_base64_VARIANT_ORIGINAL);
        int len = snprintf(buf, n + 4096, "%.*s%s%s", (int)(l2 - orig), orig, b64, nl2);
        int rc = sig_attempt(buf, (size_t)len, &err);
        report(rc == CMIG_E_VERIFY && strstr(err.msg, "which is not among the"),
               "another key id: refused (%s)", err.msg);
        blob[2] ^= 0x01;
        blob[40] ^= 0x01;
        sodium_bin2base64(b64, sizeof b64, blob, sizeof blob, sodium_base64_VARIANT_ORIGINAL);
        len = snprintf(buf, n + 4096, "%.*s%s%s", (int)(l2 - orig), orig, b64, nl2);
        rc = sig_attempt(buf, (size_t)len, &err);
        report(rc == CMIG_E_VERIFY && strstr(err.msg, "signature verification failed"),
               "another signature bit: refused (%s)", err.msg);
        blob[40] ^= 0x01;
        memcpy(blob, "Ed", 2);
        sodium_bin2base64(b64, sizeof b64, blob, sizeof blob, sodium_base64_VARIANT_ORIGINAL);
        len = snprintf(buf, n + 4096, "%.*s%s%s", (int)(l2 - orig), orig, b64, nl2);
        rc = sig_attempt(buf, (size_t)len, &err);
        report(rc == CMIG_E_VERIFY && strstr(err.msg, "legacy"),
               "legacy algorithm \"Ed\": refused (%s)", err.msg);
    } else {
        report(0, "cannot decode the signature line");
    }

    /* Line endings: CRLF and a missing final newline read as minisign
     * reads them; text after the fourth line does not. */
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (orig[i] == '\n')
            buf[j++] = '\r';
        buf[j++] = orig[i];
    }
    int rc = sig_attempt(buf, j, &err);
    report(rc == 0, "CRLF line ends: still verifies (%s)", rc ? err.msg : "ok");
    rc = sig_attempt(orig, n - 1, &err);
    report(rc == 0, "no final newline: still verifies (%s)", rc ? err.msg : "ok");
    memcpy(buf, orig, n);
    buf[n] = '\n';
    rc = sig_attempt(buf, n + 1, &err);
    report(rc == CMIG_E_VERIFY, "an empty fifth line: refused (%s)", err.msg);
    rc = sig_attempt("", 0, &err);
    report(rc == CMIG_E_VERIFY, "an empty signature file: refused (%s)", err.msg);
    free(buf);
}

int main(int argc, char **argv)
{
    uint8_t *bundle = NULL, *sig = NULL;
    size_t n = 0, sig_len = 0;
    struct cmig_err err;
    struct cmig_pubkey pub;
    char sig_path[4096];

    if (argc != 3) {
        fprintf(stderr, "usage: tamper BUNDLE PUBKEY\n");
        return 2;
    }
    cmig_err_clear(&err);
    snprintf(sig_path, sizeof sig_path, "%s.minisig", argv[1]);
    if (sodium_init() < 0 || read_file(argv[1], &bundle, &n, BUNDLE_MAX) || n == 0 ||
        read_file(sig_path, &sig, &sig_len, CMIG_SIG_FILE_MAX) || sig_len == 0 ||
        cmig_pubkey_load(&pub, argv[2], &err) || cmig_keyring_add(&ring, &pub, &err)) {
        fprintf(stderr, "tamper: error: cannot read the bundle, its signature or the key %s\n",
                err.msg);
        return 2;
    }
    snprintf(dir, sizeof dir, "%s/cmig-tamper.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "tamper: error: mkdtemp: %s\n", strerror(errno));
        return 2;
    }
    snprintf(work, sizeof work, "%s/b.cmig", dir);
    snprintf(work_sig, sizeof work_sig, "%s/b.cmig.minisig", dir);

    int bad = 0;
    if (write_file(work, bundle, n) || write_file(work_sig, sig, sig_len)) {
        fprintf(stderr, "tamper: error: cannot write into '%s'\n", dir);
        return 2;
    }
    int rc = attempt(work_sig, 0, &bad, &err);
    report(rc == 0 && bad == 0, "the original bundle verifies (%s)", rc ? err.msg : "ok");
    if (rc == 0) {
        bundle_byte_changes(bundle, n, work_sig);
        bundle_truncations(bundle, n, work_sig);
        bundle_tails(bundle, n, work_sig);
        structural_byte_changes(bundle, n);
        if (write_file(work, bundle, n) == 0) {
            sig_byte_changes((const char *)sig, sig_len);
            sig_edits((const char *)sig, sig_len);
        }
    }
    unlink(work);
    unlink(work_sig);
    rmdir(dir);
    free(bundle);
    free(sig);
    cmig_keyring_free(&ring);
    return failures ? 1 : 0;
}
