/*
 * fuzz_json.c - libFuzzer target for MongoDB migrations (format/json_check.c):
 * the extended JSON that cmig-bundle checks at build time and the MongoDB
 * driver parses again before it runs a command.
 *
 * The input is the migration file. Properties beyond "no crash, no read
 * past the buffer" (the input is an exact-size copy without a NUL):
 *   - cmig_json_migration_check and _parse agree, and a message with a
 *     file name is the one without, behind "'NAME': " and the position;
 *   - a failure is CMIG_E_INPUT with a printable message, leaves nothing
 *     allocated in the result, and reports a position that exists in the
 *     file (or none);
 *   - a success is one BSON document that validates, keyed "0", "1", ...
 *     with exactly n non-empty documents, and every command offset (when
 *     known) points at the '{' that opens it, in increasing order;
 *   - blank space around the file changes nothing but the offsets;
 *   - cmig_json_line_col agrees with a plain count of lines and characters.
 */
#include <bson/bson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmig/jsoncheck.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PAD_HEAD " \n\t "
#define PAD_TAIL "\r\n "

static void ref_line_col(const char *p, size_t len, size_t off, unsigned *line, unsigned *col)
{
    *line = 1;
    *col = 1;
    if (off > len)
        off = len;
    for (size_t i = 0; i < off; i++) {
        if (p[i] == '\n') {
            ++*line;
            *col = 1;
        } else if (((unsigned char)p[i] & 0xC0) != 0x80) {
            ++*col; /* a UTF-8 continuation byte is no new character */
        }
    }
}

/* Whether (line, col) is a place in the file: its line exists, and the
 * column is at most one past that line's last character. */
static int position_exists(const char *p, size_t len, unsigned line, unsigned col)
{
    unsigned l = 1, c = 1;
    for (size_t i = 0; i <= len; i++) {
        if (l == line && c == col)
            return 1;
        if (i == len)
            break;
        if (p[i] == '\n')
            l++, c = 1;
        else if (((unsigned char)p[i] & 0xC0) != 0x80)
            c++;
    }
    return 0;
}

static void check_failure(const struct cmig_json_migration *m, const struct cmig_err *err,
                          const char *p, size_t len, unsigned line, unsigned col)
{
    REQUIRE(err->code == CMIG_E_INPUT || err->code == CMIG_E_NOMEM);
    REQUIRE(m->bson == NULL && m->offset == NULL && m->n == 0 && m->bson_len == 0);
    size_t ml = strnlen(err->msg, sizeof err->msg);
    REQUIRE(ml > 0 && ml < sizeof err->msg);
    for (size_t i = 0; i < ml; i++)
        REQUIRE((unsigned char)err->msg[i] >= 0x20 && (unsigned char)err->msg[i] < 0x7f);
    REQUIRE((line == 0) == (col == 0));
    if (line)
        REQUIRE(position_exists(p, len, line, col));
}

static void check_success(const struct cmig_json_migration *m, const char *p, size_t len)
{
    bson_t doc;
    bson_iter_t it;
    size_t err_off = 0;
    REQUIRE(m->n <= CMIG_JSON_COMMANDS_MAX && m->offset != NULL && m->bson != NULL);
    REQUIRE(bson_init_static(&doc, m->bson, m->bson_len));
    REQUIRE(bson_validate(&doc, BSON_VALIDATE_NONE, &err_off));
    REQUIRE(bson_iter_init(&it, &doc));
    size_t i = 0;
    while (bson_iter_next(&it)) {
        char key[24];
        snprintf(key, sizeof key, "%zu", i);
        REQUIRE(strcmp(bson_iter_key(&it), key) == 0);
        REQUIRE(bson_iter_type(&it) == BSON_TYPE_DOCUMENT);
        uint32_t dlen;
        const uint8_t *d;
        bson_iter_document(&it, &dlen, &d);
        REQUIRE(dlen > 5);
        i++;
    }
    REQUIRE(i == m->n);
    /* Offsets are all known or all unknown (0). */
    if (m->n && m->offset[0] == 0) {
        for (i = 0; i < m->n; i++)
            REQUIRE(m->offset[i] == 0);
        return;
    }
    for (i = 0; i < m->n; i++) {
        REQUIRE(m->offset[i] < len && p[m->offset[i]] == '{');
        REQUIRE(i == 0 || m->offset[i] > m->offset[i - 1]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cmig_err e1, e2, e3; /* 1 KiB messages: keep them off the stack */
    char *p = malloc(size ? size : 1);
    if (!p)
        return 0;
    memcpy(p, data, size);

    struct cmig_json_migration m, bare, padded;
    unsigned line = 7, col = 7, bline = 7, bcol = 7;
    cmig_err_clear(&e1);
    int rc = cmig_json_migration_parse(&m, p, size, "m.json", &line, &col, &e1);
    cmig_err_clear(&e2);
    REQUIRE(cmig_json_migration_check(p, size, "m.json", &e2) == rc);
    REQUIRE(e2.code == e1.code && strcmp(e2.msg, e1.msg) == 0);

    /* Without a name the caller shows the position: the same error. */
    cmig_err_clear(&e3);
    REQUIRE(cmig_json_migration_parse(&bare, p, size, NULL, &bline, &bcol, &e3) == rc);
    REQUIRE(bline == line && bcol == col);
    if (rc) {
        char want[sizeof e1.msg + 64];
        if (line)
            snprintf(want, sizeof want, "'m.json': line %u, column %u: %s", line, col, e3.msg);
        else
            snprintf(want, sizeof want, "'m.json': %s", e3.msg);
        if (e1.code == CMIG_E_INPUT)
            REQUIRE(strcmp(want, e1.msg) == 0);
        check_failure(&m, &e1, p, size, line, col);
        check_failure(&bare, &e3, p, size, bline, bcol);
    } else {
        REQUIRE(line == 0 && col == 0);
        check_success(&m, p, size);
        REQUIRE(bare.n == m.n && bare.bson_len == m.bson_len &&
                memcmp(bare.bson, m.bson, m.bson_len) == 0);
    }

    /* Blank space around the file. */
    size_t head = sizeof PAD_HEAD - 1, tail = sizeof PAD_TAIL - 1;
    char *q = malloc(head + size + tail);
    if (q) {
        memcpy(q, PAD_HEAD, head);
        memcpy(q + head, p, size);
        memcpy(q + head + size, PAD_TAIL, tail);
        cmig_err_clear(&e3);
        int prc = cmig_json_migration_parse(&padded, q, head + size + tail, NULL, NULL, NULL, &e3);
        REQUIRE((prc == 0) == (rc == 0));
        if (rc == 0) {
            REQUIRE(padded.n == m.n && padded.bson_len == m.bson_len &&
                    memcmp(padded.bson, m.bson, m.bson_len) == 0);
            for (size_t i = 0; i < m.n; i++)
                REQUIRE(padded.offset[i] == (m.offset[0] ? m.offset[i] + head : 0));
        }
        cmig_json_migration_free(&padded);
        free(q);
    }

    /* Positions at a few offsets the input picks, and past its end. */
    size_t offs[3] = {size, size / 2, size ? data[0] : 0};
    for (int k = 0; k < 3; k++) {
        unsigned l, c, rl, rcol;
        cmig_json_line_col(p, size, offs[k], &l, &c);
        ref_line_col(p, size, offs[k], &rl, &rcol);
        REQUIRE(l == rl && c == rcol);
    }

    cmig_json_migration_free(&m);
    cmig_json_migration_free(&bare);
    free(p);
    return 0;
}
