/*
 * utf8.c - UTF-8 validation and safe printing of untrusted names.
 *
 * File names end up in the manifest, in log lines and on terminals. The
 * invariant kept here: a name is accepted only when it is well-formed
 * UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF) with no
 * control characters, and a name that is refused is only ever printed
 * escaped, so that a hostile name cannot forge log lines or drive a
 * terminal.
 */
#include <stdio.h>

#include "cmig/srcdir.h"
#include "srcdir_int.h"

static int cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

size_t cmig_utf8_seq(const unsigned char *s, size_t len)
{
    if (len == 0)
        return 0;
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    /* The second byte's range is what rules out overlong forms (E0, F0),
     * surrogates (ED) and code points past U+10FFFF (F4). */
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (len < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (!cont(s[i]))
            return 0;
    return n;
}

int cmig_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) { /* fast path for ASCII runs */
            i++;
            continue;
        }
        size_t n = cmig_utf8_seq(p + i, len - i);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

/* C0 controls, DEL, and C1 controls (U+0080..U+009F, encoded C2 80..C2 9F). */
static int is_control(const unsigned char *p, size_t n)
{
    if (n == 1)
        return p[0] < 0x20 || p[0] == 0x7F;
    return n == 2 && p[0] == 0xC2 && p[1] < 0xA0;
}

int cmig_name_printable(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = cmig_utf8_seq(p + i, len - i);
        if (n == 0 || is_control(p + i, n))
            return 0;
        i += n;
    }
    return 1;
}

void cmig_escape_name(char *out, size_t cap, const char *s, size_t len)
{
    if (cap == 0)
        return;
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, i = 0;
    /* Room for the longest piece (4 bytes or "\xNN") plus "..." and NUL. */
    while (i < len) {
        size_t n = cmig_utf8_seq(p + i, len - i);
        size_t need = (n == 0 || is_control(p + i, n)) ? 4 : n;
        if (o + need + 4 > cap) {
            if (o + 4 <= cap) {
                out[o++] = '.';
                out[o++] = '.';
                out[o++] = '.';
            }
            break;
        }
        if (n == 0 || is_control(p + i, n)) {
            snprintf(out + o, cap - o, "\\x%02X", p[i]);
            o += 4;
            i += 1;
        } else {
            for (size_t k = 0; k < n; k++)
                out[o++] = (char)p[i + k];
            i += n;
        }
    }
    out[o < cap ? o : cap - 1] = '\0';
}
