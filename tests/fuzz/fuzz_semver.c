/*
 * fuzz_semver.c - libFuzzer target for the SemVer parser and comparison.
 *
 * Every input is parsed whole, and also cut in two at its first newline to
 * compare two versions. What is accepted must be a plain SemVer string that
 * reparses to the same value and compares consistently; what is refused
 * must carry an input error whose message is printable text.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cmig/err.h"
#include "cmig/semver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sign(int x)
{
    return (x > 0) - (x < 0);
}

/* Parses s and checks the invariants of either outcome; 1 when it parsed. */
static int check_parse(struct cmig_semver *v, const char *s, size_t len)
{
    struct cmig_err err;
    cmig_err_clear(&err);
    if (cmig_semver_parse(v, s, len, &err) != 0) {
        if (err.code != CMIG_E_INPUT || strncmp(err.msg, "invalid version", 15) != 0)
            __builtin_trap();
        for (const char *p = err.msg; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                __builtin_trap();
        return 0;
    }
    if (len == 0 || len > CMIG_SEMVER_MAX || strlen(v->text) != len || memcmp(v->text, s, len))
        __builtin_trap();
    if (s[0] < '0' || s[0] > '9')
        __builtin_trap();
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '.' || c == '-' || c == '+'))
            __builtin_trap();
    }
    if ((size_t)v->pre_off + v->pre_len > len || (size_t)v->build_off + v->build_len > len)
        __builtin_trap();
    if (v->pre_len && v->text[v->pre_off - 1] != '-')
        __builtin_trap();
    if (v->build_len && v->text[v->build_off - 1] != '+')
        __builtin_trap();
    if (v->build_len && v->build_off + v->build_len != len)
        __builtin_trap();

    /* reparsing the stored text gives the same value */
    struct cmig_semver again;
    cmig_err_clear(&err);
    if (cmig_semver_parse(&again, v->text, strlen(v->text), &err) != 0 ||
        memcmp(v, &again, sizeof again) != 0)
        __builtin_trap();
    if (cmig_semver_cmp(v, v) != 0)
        __builtin_trap();
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const fixed[] = {"0.0.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-0.3.7",
                                        "1.0.0", "1.0.0+build", "2.0.0-rc.1"};
    const char *s = (const char *)data;
    struct cmig_semver a, b, f;
    struct cmig_err err;

    int a_ok = check_parse(&a, s, size);

    const char *nl = memchr(s, '\n', size);
    if (nl) {
        size_t n1 = (size_t)(nl - s);
        int l_ok = check_parse(&a, s, n1);
        int r_ok = check_parse(&b, nl + 1, size - n1 - 1);
        if (l_ok && r_ok) {
            int ab = sign(cmig_semver_cmp(&a, &b)), ba = sign(cmig_semver_cmp(&b, &a));
            if (ab != -ba)
                __builtin_trap();
            /* equal precedence: only build metadata may differ */
            if (ab == 0 && (a.major != b.major || a.minor != b.minor || a.patch != b.patch ||
                            a.pre_len != b.pre_len ||
                            memcmp(a.text + a.pre_off, b.text + b.pre_off, a.pre_len) != 0))
                __builtin_trap();
            /* transitivity through each fixed version */
            for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
                cmig_err_clear(&err);
                if (cmig_semver_parse(&f, fixed[i], strlen(fixed[i]), &err) != 0)
                    __builtin_trap();
                int af = sign(cmig_semver_cmp(&a, &f)), fb = sign(cmig_semver_cmp(&f, &b));
                if (af < 0 && fb < 0 && ab >= 0)
                    __builtin_trap();
                if (af > 0 && fb > 0 && ab <= 0)
                    __builtin_trap();
            }
        }
    } else if (a_ok) {
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
            cmig_err_clear(&err);
            if (cmig_semver_parse(&f, fixed[i], strlen(fixed[i]), &err) != 0)
                __builtin_trap();
            if (sign(cmig_semver_cmp(&a, &f)) != -sign(cmig_semver_cmp(&f, &a)))
                __builtin_trap();
        }
    }
    return 0;
}
