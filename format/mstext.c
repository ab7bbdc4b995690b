/*
 * mstext.c - the text grammar of minisign's key and signature files:
 * lines, and strict base64.
 *
 * libsodium 1.0.18's decoder maps some bytes outside the base64 alphabet
 * (e.g. 0xAF) onto alphabet characters, and any decoder ignores the unused
 * low bits of the last character. Either would let two different files
 * carry the same signature, so a tampered signature file could pass as
 * untouched. Invariant: a line decodes only if re-encoding the result gives
 * the line back byte for byte.
 */
#include "mstext.h"

#include <sodium.h>
#include <string.h>

#define B64_MAX 512

int cmig_b64_exact(uint8_t *bin, size_t binlen, const char *b64, size_t b64len)
{
    char again[B64_MAX];
    size_t got = 0;
    size_t want = sodium_base64_encoded_len(binlen, sodium_base64_VARIANT_ORIGINAL);
    if (want > sizeof again || b64len + 1 != want)
        return -1;
    for (size_t i = 0; i < b64len; i++) {
        unsigned char c = (unsigned char)b64[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || c == '='))
            return -1;
    }
    if (sodium_base642bin(bin, binlen, b64, b64len, NULL, &got, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        got != binlen)
        return -1;
    sodium_bin2base64(again, sizeof again, bin, binlen, sodium_base64_VARIANT_ORIGINAL);
    return memcmp(again, b64, b64len) == 0 ? 0 : -1;
}

const char *cmig_mstext_line(const char *text, size_t len, size_t *pos, size_t cap,
                             const char **line, size_t *line_len)
{
    size_t start = *pos;
    const char *nl = memchr(text + start, '\n', len - start);
    size_t end = nl ? (size_t)(nl - text) : len;
    size_t next = nl ? end + 1 : len;

    if (nl && end > start && text[end - 1] == '\r')
        end--;
    if (memchr(text + start, '\0', end - start))
        return "line contains a NUL byte";
    if (memchr(text + start, '\r', end - start))
        return "line contains a carriage return";
    if (end - start > cap)
        return "line too long";
    *line = text + start;
    *line_len = end - start;
    *pos = next;
    return NULL;
}
