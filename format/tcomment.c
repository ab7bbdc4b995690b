/*
 * tcomment.c - the signed trusted comment that names a bundle.
 *
 * The claim "this file is bundle NAME at VERSION, with manifest M holding N
 * migrations up to version V" must be covered by the signature, not just
 * implied by a file name. minisign signs its trusted comment together with
 * the file signature, so cmig puts the claim there, in one strict grammar:
 *
 *   cmig-bundle name=NAME version=VERSION manifest-sha256=HEX64
 *               migrations=N last=V format=F
 *
 * (one line, single spaces, this order). Parsing accepts exactly that and
 * nothing else: a comment that merely resembles it is refused. The count
 * and the last version let a runner recognise a bundle it has fully applied
 * before without reading the archive at all.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmig/bundle.h"

void cmig_claim_of(struct cmig_claim *c, const struct cmig_manifest *m,
                   const uint8_t manifest_sha256[32])
{
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", m->name);
    snprintf(c->version, sizeof c->version, "%s", m->version.text);
    memcpy(c->manifest_sha256, manifest_sha256, 32);
    c->migrations = m->n;
    c->last = m->n ? m->migrations[m->n - 1].version : -1;
    c->format_version = m->format_version;
}

int cmig_trusted_comment_format(char *buf, size_t cap, const struct cmig_claim *c)
{
    char hex[65];
    cmig_hex32(c->manifest_sha256, hex);
    int n = snprintf(buf, cap,
                     "cmig-bundle name=%s version=%s manifest-sha256=%s migrations=%llu "
                     "last=%lld format=%d",
                     c->name, c->version, hex, (unsigned long long)c->migrations,
                     (long long)c->last, c->format_version);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Copies the value of "key=" at *p up to the next space (or the end when
 * last), advancing *p past it. */
static int take(const char **p, const char *key, int last, char *out, size_t cap)
{
    size_t klen = strlen(key);
    if (strncmp(*p, key, klen) != 0)
        return -1;
    const char *v = *p + klen;
    const char *end = last ? v + strlen(v) : strchr(v, ' ');
    if (!end || end == v || (size_t)(end - v) >= cap)
        return -1;
    memcpy(out, v, (size_t)(end - v));
    out[end - v] = '\0';
    *p = last ? end : end + 1;
    return 0;
}

/* A decimal integer, digits only (with '-' allowed when negative_ok),
 * no leading zeros and no "-0": each value has exactly one spelling, so
 * two different signed comments never make the same claim. */
static int parse_int(const char *s, int negative_ok, long long *out)
{
    const char *d = s;
    if (negative_ok && *d == '-')
        d++;
    if (!*d || (d[0] == '0' && (d[1] || d != s)) || strspn(d, "0123456789") != strlen(d))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int cmig_trusted_comment_parse(const char *tc, struct cmig_claim *out, struct cmig_err *err)
{
    const char *p = tc;
    char hex[65], count[24], last[24], fmt[8];
    long long n, l, f;
    static const char prefix[] = "cmig-bundle ";
    memset(out, 0, sizeof *out);
    if (strncmp(p, prefix, sizeof prefix - 1) != 0)
        goto bad;
    p += sizeof prefix - 1;
    if (take(&p, "name=", 0, out->name, sizeof out->name) ||
        take(&p, "version=", 0, out->version, sizeof out->version) ||
        take(&p, "manifest-sha256=", 0, hex, sizeof hex) ||
        take(&p, "migrations=", 0, count, sizeof count) ||
        take(&p, "last=", 0, last, sizeof last) || take(&p, "format=", 1, fmt, sizeof fmt))
        goto bad;
    if (strlen(hex) != 64)
        goto bad;
    for (int i = 0; i < 64; i++) {
        char c = hex[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            goto bad;
        if (i % 2 == 0)
            out->manifest_sha256[i / 2] = (uint8_t)(v << 4);
        else
            out->manifest_sha256[i / 2] |= (uint8_t)v;
    }
    if (parse_int(count, 0, &n) || parse_int(last, 1, &l) || l < -1 || parse_int(fmt, 0, &f) ||
        f < 1 || f > 999)
        goto bad;
    out->migrations = (uint64_t)n;
    out->last = l;
    out->format_version = (int)f;
    return 0;
bad:
    memset(out, 0, sizeof *out);
    return cmig_err_set(err, CMIG_E_VERIFY,
                        "trusted comment does not describe a cmig bundle: '%.200s'", tc);
}
