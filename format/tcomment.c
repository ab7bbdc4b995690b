/*
 * tcomment.c - the signed trusted comment that names a bundle.
 *
 * The claim "this file is bundle NAME at VERSION with manifest M" must be
 * covered by the signature, not just implied by a file name. minisign signs
 * its trusted comment together with the file signature, so cmig puts the
 * claim there, in one strict grammar:
 *
 *   cmig-bundle name=NAME version=VERSION manifest-sha256=HEX64 format=N
 *
 * Parsing accepts exactly that (single spaces, fixed order) and nothing
 * else: a comment that merely resembles it is refused.
 */
#include <stdio.h>
#include <string.h>

#include "cmig/bundle.h"

int cmig_trusted_comment_format(char *buf, size_t cap, const char *name, const char *version,
                                const uint8_t manifest_sha256[32], int format_version)
{
    char hex[65];
    cmig_hex32(manifest_sha256, hex);
    int n = snprintf(buf, cap, "cmig-bundle name=%s version=%s manifest-sha256=%s format=%d",
                     name, version, hex, format_version);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Copies the value of "key=" at *p up to the next space (or end when last),
 * advancing *p past it. */
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

int cmig_trusted_comment_parse(const char *tc, char *name, size_t name_cap, char *version,
                               size_t version_cap, uint8_t manifest_sha256[32],
                               int *format_version, struct cmig_err *err)
{
    const char *p = tc;
    char hex[65], fmt[8];
    static const char prefix[] = "cmig-bundle ";
    if (strncmp(p, prefix, sizeof prefix - 1) != 0)
        goto bad;
    p += sizeof prefix - 1;
    if (take(&p, "name=", 0, name, name_cap) || take(&p, "version=", 0, version, version_cap) ||
        take(&p, "manifest-sha256=", 0, hex, sizeof hex) || take(&p, "format=", 1, fmt, sizeof fmt))
        goto bad;
    if (strlen(hex) != 64)
        goto bad;
    for (int i = 0; i < 64; i++) {
        char c = hex[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            goto bad;
        if (i % 2 == 0)
            manifest_sha256[i / 2] = (uint8_t)(v << 4);
        else
            manifest_sha256[i / 2] |= (uint8_t)v;
    }
    if (strlen(fmt) != 1 || fmt[0] < '1' || fmt[0] > '9')
        goto bad;
    *format_version = fmt[0] - '0';
    return 0;
bad:
    return cmig_err_set(err, CMIG_E_VERIFY,
                        "trusted comment does not describe a cmig bundle: '%.200s'", tc);
}
