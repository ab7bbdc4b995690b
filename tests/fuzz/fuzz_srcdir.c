/*
 * fuzz_srcdir.c - libFuzzer target for splitting migration files into
 * sections (cmig_srcdir_sections) and for cmig_utf8_valid.
 *
 * The first input byte chooses the layout (low two bits: golang-migrate,
 * goose, dbmate, flyway) and the direction (bit 2); the rest is the file.
 * Beyond "no crash, no read past the buffer", the target checks what the
 * header promises: sections inside the data, up before down, the down
 * section running to the end, line numbers that match the bytes, marker
 * lines excluded, printable error messages; and it compares
 * cmig_utf8_valid with an independent decoder.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmig/srcdir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c)                                                                                 \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

/* A plain decoder: sequence length from the lead byte's bit pattern, then
 * the code point, then the range rules. */
static int ref_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

static unsigned line_at(const char *p, size_t off)
{
    unsigned line = 1;
    for (size_t i = 0; i < off; i++)
        line += p[i] == '\n';
    return line;
}

static void check_section(const char *p, size_t n, const struct cmig_section *s, int marker)
{
    REQUIRE(s->present == 1);
    REQUIRE(s->offset <= n && s->len <= n - s->offset);
    REQUIRE(s->tx_override >= -1 && s->tx_override <= 1);
    if (!marker) {
        REQUIRE(s->offset == 0 && s->line == 1 && s->tx_override == -1);
        return;
    }
    /* A marker line precedes the section and is not part of it. */
    REQUIRE(s->line >= 2);
    REQUIRE(s->offset == n || (s->offset > 0 && p[s->offset - 1] == '\n'));
    if (s->offset > 0 && p[s->offset - 1] == '\n')
        REQUIRE(line_at(p, s->offset) == s->line);
    /* The section ends where a line starts (or at the end). */
    size_t end = s->offset + s->len;
    REQUIRE(end == n || (end > 0 && p[end - 1] == '\n') || end == s->offset);
}

static void check_absent(const struct cmig_section *s)
{
    REQUIRE(s->present == 0 && s->len == 0 && s->offset == 0 && s->tx_override == -1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    enum cmig_dir_format f = (enum cmig_dir_format)((data[0] & 3) + 1);
    int is_down = (data[0] >> 2) & 1;
    size_t n = size - 1;
    /* An exact-size copy with no terminator: any read past it is caught. */
    char *p = malloc(n ? n : 1);
    if (!p)
        return 0;
    memcpy(p, data + 1, n);

    REQUIRE(cmig_utf8_valid(p, n) == ref_utf8_valid((const uint8_t *)p, n));

    struct cmig_section up, down;
    struct cmig_err err;
    cmig_err_clear(&err);
    memset(&up, 0x5A, sizeof up);
    memset(&down, 0x5A, sizeof down);
    int rc = cmig_srcdir_sections(f, "fuzz.sql", p, n, is_down, &up, &down, &err);
    if (rc != 0) {
        REQUIRE(err.code == rc);
        size_t ml = strnlen(err.msg, sizeof err.msg);
        REQUIRE(ml > 0 && ml < sizeof err.msg);
        for (size_t i = 0; i < ml; i++)
            REQUIRE((unsigned char)err.msg[i] >= 0x20 && err.msg[i] != 0x7F);
        REQUIRE(cmig_utf8_valid(err.msg, ml));
        check_absent(&up);
        check_absent(&down);
    } else if (f == CMIG_DIR_GOLANG_MIGRATE || f == CMIG_DIR_FLYWAY) {
        const struct cmig_section *one = is_down ? &down : &up;
        check_section(p, n, one, 0);
        REQUIRE(one->len == n);
        check_absent(is_down ? &up : &down);
    } else {
        check_section(p, n, &up, 1);
        if (down.present) {
            check_section(p, n, &down, 1);
            REQUIRE(up.offset + up.len < down.offset);
            REQUIRE(down.offset + down.len == n);
            if (f == CMIG_DIR_GOOSE)
                REQUIRE(up.tx_override == down.tx_override);
        } else {
            check_absent(&down);
            REQUIRE(up.offset + up.len == n);
        }
        if (f == CMIG_DIR_GOOSE)
            REQUIRE(up.tx_override == -1 || up.tx_override == 1);
    }
    free(p);
    return 0;
}
