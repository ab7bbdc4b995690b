/*
 * test_semver.c - SemVer 2.0.0 parsing and precedence.
 *
 * The valid and invalid strings follow the grammar of semver.org 2.0.0
 * (including the examples its FAQ regular expression is tested with); the
 * precedence chain is the one from section 11 of the specification.
 */
#include "cmig/semver.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static int parse(struct cmig_semver *v, const char *s, struct cmig_err *err)
{
    cmig_err_clear(err);
    return cmig_semver_parse(v, s, strlen(s), err);
}

/* -1, 0 or 1 for a pair of strings that must both parse. */
static int cmp_str(const char *a, const char *b)
{
    struct cmig_semver va, vb;
    struct cmig_err err;
    if (parse(&va, a, &err) || parse(&vb, b, &err)) {
        printf("#   unexpected parse failure: %s\n", err.msg);
        return 99;
    }
    int c = cmig_semver_cmp(&va, &vb);
    return (c > 0) - (c < 0);
}

TEST(parses_core)
{
    struct cmig_semver v;
    struct cmig_err err;
    CHECK_EQ_INT(parse(&v, "1.2.3", &err), 0);
    CHECK(v.major == 1 && v.minor == 2 && v.patch == 3);
    CHECK_STR(v.text, "1.2.3");
    CHECK_EQ_INT(v.pre_len, 0);
    CHECK_EQ_INT(v.build_len, 0);

    CHECK_EQ_INT(parse(&v, "0.0.0", &err), 0);
    CHECK(v.major == 0 && v.minor == 0 && v.patch == 0);
    CHECK_EQ_INT(parse(&v, "10.20.30", &err), 0);
    CHECK(v.major == 10 && v.minor == 20 && v.patch == 30);
}

TEST(parses_prerelease_and_build)
{
    struct cmig_semver v;
    struct cmig_err err;
    CHECK_EQ_INT(parse(&v, "1.1.2-prerelease+meta", &err), 0);
    CHECK_EQ_INT(v.pre_off, 6);
    CHECK_EQ_INT(v.pre_len, 10);
    CHECK_EQ_INT(v.build_off, 17);
    CHECK_EQ_INT(v.build_len, 4);
    CHECK(memcmp(v.text + v.pre_off, "prerelease", 10) == 0);
    CHECK(memcmp(v.text + v.build_off, "meta", 4) == 0);

    CHECK_EQ_INT(parse(&v, "1.0.0+0.build.1-rc.10000aaa-kk-0.1", &err), 0);
    CHECK_EQ_INT(v.pre_len, 0);
    CHECK_EQ_INT(v.build_len, 28);

    CHECK_EQ_INT(parse(&v, "1.0.0-alpha", &err), 0);
    CHECK_EQ_INT(v.pre_len, 5);
    CHECK_EQ_INT(v.build_len, 0);
}

TEST(parses_valid_corpus)
{
    static const char *const ok[] = {
        "0.0.4",
        "1.2.3",
        "10.20.30",
        "1.1.2-prerelease+meta",
        "1.1.2+meta",
        "1.1.2+meta-valid",
        "1.0.0-alpha",
        "1.0.0-beta",
        "1.0.0-alpha.beta",
        "1.0.0-alpha.beta.1",
        "1.0.0-alpha.1",
        "1.0.0-alpha0.valid",
        "1.0.0-alpha.0valid",
        "1.0.0-alpha-a.b-c-somethinglong+build.1-aef.1-its-okay",
        "1.0.0-rc.1+build.1",
        "2.0.0-rc.1+build.123",
        "1.2.3-beta",
        "10.2.3-DEV-SNAPSHOT",
        "1.2.3-SNAPSHOT-123",
        "1.0.0",
        "2.0.0",
        "1.1.7",
        "2.0.0+build.1848",
        "2.0.1-alpha.1227",
        "1.0.0-alpha+beta",
        "1.2.3----RC-SNAPSHOT.12.9.1--.12+788",
        "1.2.3----R-S.12.9.1--.12+meta",
        "1.2.3----RC-SNAPSHOT.12.9.1--.12",
        "1.0.0+0.build.1-rc.10000aaa-kk-0.1",
        "1.0.0-0A.is.legal",
        "1.0.0+0001", /* leading zeros are fine in build metadata */
        "1.0.0-0",    /* a lone zero is a valid numeric identifier */
        "1.0.0--",    /* "-" alone is an alphanumeric identifier */
        "1.0.0-a.0.b",
        "18446744073709551615.18446744073709551615.18446744073709551615",
        "1.0.0-99999999999999999999999999999", /* pre-release numbers are not capped */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct cmig_semver v;
        struct cmig_err err;
        if (parse(&v, ok[i], &err) != 0) {
            printf("#   '%s' rejected: %s\n", ok[i], err.msg);
            CHECK(0);
        }
        CHECK_STR(v.text, ok[i]);
    }
}

TEST(max_values)
{
    struct cmig_semver v;
    struct cmig_err err;
    CHECK_EQ_INT(parse(&v, "18446744073709551615.0.1", &err), 0);
    CHECK(v.major == UINT64_MAX);
    CHECK(v.patch == 1);
    CHECK(parse(&v, "18446744073709551616.0.0", &err) != 0);
    CHECK_STR(err.msg, "invalid version '18446744073709551616.0.0': major version does not fit "
                       "in 64 bits");
    CHECK(parse(&v, "0.99999999999999999999.0", &err) != 0);
    CHECK_CONTAINS(err.msg, "minor version does not fit in 64 bits");
    CHECK(parse(&v, "0.0.18446744073709551620", &err) != 0);
    CHECK_CONTAINS(err.msg, "patch version does not fit in 64 bits");
}

TEST(exact_messages)
{
    struct cmig_semver v;
    struct cmig_err err;
    CHECK_EQ_INT(parse(&v, "01.2.3", &err), CMIG_E_INPUT);
    CHECK_STR(err.msg, "invalid version '01.2.3': leading zero in major version");
    CHECK_EQ_INT(err.code, CMIG_E_INPUT);
    parse(&v, "1.02.3", &err);
    CHECK_STR(err.msg, "invalid version '1.02.3': leading zero in minor version");
    parse(&v, "1.2.03", &err);
    CHECK_STR(err.msg, "invalid version '1.2.03': leading zero in patch version");
    parse(&v, "1.2.3-01", &err);
    CHECK_STR(err.msg, "invalid version '1.2.3-01': leading zero in pre-release identifier '01'");
    parse(&v, "v1.2.3", &err);
    CHECK_STR(err.msg, "invalid version 'v1.2.3': leading 'v' is not part of a semantic version");
    parse(&v, "", &err);
    CHECK_STR(err.msg, "invalid version '': empty string");
    parse(&v, "1.2", &err);
    CHECK_STR(err.msg, "invalid version '1.2': expected '.' after minor version");
    parse(&v, "1", &err);
    CHECK_STR(err.msg, "invalid version '1': expected '.' after major version");
    parse(&v, "1.2.", &err);
    CHECK_STR(err.msg, "invalid version '1.2.': patch version is missing or not a number");
    parse(&v, "1.2.3-", &err);
    CHECK_STR(err.msg, "invalid version '1.2.3-': empty pre-release identifier");
    parse(&v, "1.2.3-a..b", &err);
    CHECK_STR(err.msg, "invalid version '1.2.3-a..b': empty pre-release identifier");
    parse(&v, "1.2.3+", &err);
    CHECK_STR(err.msg, "invalid version '1.2.3+': empty build metadata identifier");
    parse(&v, "1.2.3-a_b", &err);
    CHECK_STR(err.msg, "invalid version '1.2.3-a_b': invalid character '_' in pre-release");
    parse(&v, "1.2.3+a+b", &err);
    CHECK_STR(err.msg, "invalid version '1.2.3+a+b': invalid character '+' in build metadata");
    parse(&v, "1.2.3 ", &err);
    CHECK_STR(err.msg, "invalid version '1.2.3 ': invalid character ' ' after patch version");
    parse(&v, "1.2.3.4", &err);
    CHECK_STR(err.msg, "invalid version '1.2.3.4': invalid character '.' after patch version");
}

TEST(rejects_invalid_corpus)
{
    static const char *const bad[] = {
        "1",
        "1.2",
        "1.2.3-0123",
        "1.2.3-0123.0123",
        "1.1.2+.123",
        "+invalid",
        "-invalid",
        "-invalid+invalid",
        "-invalid.01",
        "alpha",
        "alpha.beta",
        "alpha.beta.1",
        "alpha.1",
        "alpha+beta",
        "alpha_beta",
        "alpha.",
        "alpha..",
        "beta",
        "1.0.0-alpha_beta",
        "-alpha.",
        "1.0.0-alpha..",
        "1.0.0-alpha..1",
        "1.0.0-alpha...1",
        "1.0.0-alpha....1",
        "1.0.0-alpha.....1",
        "1.0.0-alpha......1",
        "1.0.0-alpha.......1",
        "01.1.1",
        "1.01.1",
        "1.1.01",
        "1.2.3.DEV",
        "1.2-SNAPSHOT",
        "1.2.31.2.3----RC-SNAPSHOT.12.09.1--..12+788",
        "1.2-RC-SNAPSHOT",
        "-1.0.3-gamma+b7718",
        "+justmeta",
        "9.8.7+meta+meta",
        "9.8.7-whatever+meta+meta",
        "99999999999999999999999.999999999999999999.99999999999999999",
        "v1.2.3",
        "V1.2.3",
        "v1",
        " 1.2.3",
        "1.2.3 ",
        "1.2.3\n",
        "1.2.3-",
        "1.2.3+",
        "1.2.3-+b",
        "1.2.3-a+",
        "1.2.3-a.",
        "1.2.3+a.",
        "1.2.3+a..b",
        "1.2.3-.a",
        "1..3",
        "..",
        "1.2.3-\xc3\xa9",
        "1.2.3+\xff",
        "1.-2.3",
        "1.+2.3",
        "0x1.2.3",
        "1.2.3-00",
        "1.2.3-a.00",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cmig_semver v;
        struct cmig_err err;
        memset(&v, 0x5a, sizeof v);
        int rc = parse(&v, bad[i], &err);
        if (rc == 0) {
            printf("#   '%s' accepted\n", bad[i]);
            CHECK(0);
            continue;
        }
        CHECK_EQ_INT(rc, CMIG_E_INPUT);
        CHECK(strncmp(err.msg, "invalid version '", 17) == 0);
        CHECK(((unsigned char *)&v)[0] == 0x5a); /* out untouched on failure */
    }
}

TEST(rejects_embedded_nul)
{
    struct cmig_semver v;
    struct cmig_err err;
    cmig_err_clear(&err);
    CHECK(cmig_semver_parse(&v, "1.2.3\0-x", 8, &err) != 0);
    CHECK_STR(err.msg, "invalid version '1.2.3\\x00-x': contains a NUL byte");
    cmig_err_clear(&err);
    CHECK(cmig_semver_parse(&v, "\0", 1, &err) != 0);
    CHECK_CONTAINS(err.msg, "NUL");
}

TEST(unprintable_bytes_escaped)
{
    struct cmig_semver v;
    struct cmig_err err;
    parse(&v, "1.2.3-\x01", &err);
    CHECK_STR(err.msg, "invalid version '1.2.3-\\x01': invalid character '\\x01' in pre-release");
    parse(&v, "1.2.3\\", &err);
    CHECK_STR(err.msg,
              "invalid version '1.2.3\\x5c': invalid character '\\x5c' after patch version");
}

TEST(length_limit)
{
    char buf[CMIG_SEMVER_MAX + 2];
    struct cmig_semver v;
    struct cmig_err err;
    memcpy(buf, "1.0.0-", 6);
    memset(buf + 6, 'a', sizeof buf - 6);
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_semver_parse(&v, buf, CMIG_SEMVER_MAX, &err), 0);
    CHECK_EQ_INT(strlen(v.text), CMIG_SEMVER_MAX);
    CHECK_EQ_INT(v.pre_len, CMIG_SEMVER_MAX - 6);
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_semver_parse(&v, buf, CMIG_SEMVER_MAX + 1, &err), CMIG_E_INPUT);
    CHECK_CONTAINS(err.msg, "longer than 255 bytes");
    CHECK_CONTAINS(err.msg, "invalid version '1.0.0-aaaa");
    CHECK_CONTAINS(err.msg, "...'");
    CHECK(strlen(err.msg) < 150); /* the quoted copy is shortened */

    /* Build metadata right up to the limit. */
    memcpy(buf, "1.0.0+", 6);
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_semver_parse(&v, buf, CMIG_SEMVER_MAX, &err), 0);
    CHECK_EQ_INT(v.build_off, 6);
    CHECK_EQ_INT(v.build_len, CMIG_SEMVER_MAX - 6);
}

TEST(not_nul_terminated)
{
    struct cmig_semver v;
    struct cmig_err err;
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_semver_parse(&v, "1.2.3-rc.1xyz", 10, &err), 0);
    CHECK_STR(v.text, "1.2.3-rc.1");
    CHECK_EQ_INT(v.pre_len, 4);
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_semver_parse(&v, "1.2.34", 5, &err), 0);
    CHECK(v.patch == 3);
    cmig_err_clear(&err);
    CHECK(cmig_semver_parse(&v, NULL, 0, &err) != 0);
}

TEST(spec_precedence_chain)
{
    static const char *const chain[] = {
        "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
        "1.0.0-beta",  "1.0.0-beta.2",  "1.0.0-beta.11",
        "1.0.0-rc.1",  "1.0.0",         "2.0.0",
        "2.1.0",       "2.1.1",
    };
    size_t n = sizeof chain / sizeof chain[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            int want = (i > j) - (i < j);
            int got = cmp_str(chain[i], chain[j]);
            if (got != want) {
                printf("#   cmp('%s', '%s') = %d, expected %d\n", chain[i], chain[j], got, want);
                CHECK(0);
            }
        }
}

TEST(numeric_fields_compare_numerically)
{
    CHECK_EQ_INT(cmp_str("1.9.0", "1.10.0"), -1);
    CHECK_EQ_INT(cmp_str("1.10.0", "1.11.0"), -1);
    CHECK_EQ_INT(cmp_str("2.0.0", "10.0.0"), -1);
    CHECK_EQ_INT(cmp_str("0.0.9", "0.0.10"), -1);
    CHECK_EQ_INT(cmp_str("18446744073709551615.0.0", "18446744073709551614.99.99"), 1);
    CHECK_EQ_INT(cmp_str("1.0.0-2", "1.0.0-10"), -1);
    CHECK_EQ_INT(cmp_str("1.0.0-99999999999999999999999", "1.0.0-99999999999999999999998"), 1);
    CHECK_EQ_INT(cmp_str("1.0.0-99999999999999999999999", "1.0.0-9"), 1);
}

TEST(identifier_rules)
{
    /* numeric identifiers have lower precedence than alphanumeric ones */
    CHECK_EQ_INT(cmp_str("1.0.0-1", "1.0.0-a"), -1);
    CHECK_EQ_INT(cmp_str("1.0.0-999", "1.0.0-0a"), -1);
    CHECK_EQ_INT(cmp_str("1.0.0-a", "1.0.0-1"), 1);
    /* alphanumeric identifiers compare in ASCII order */
    CHECK_EQ_INT(cmp_str("1.0.0-Z", "1.0.0-a"), -1);
    CHECK_EQ_INT(cmp_str("1.0.0-a", "1.0.0-aa"), -1);
    CHECK_EQ_INT(cmp_str("1.0.0-a-", "1.0.0-a"), 1);
    CHECK_EQ_INT(cmp_str("1.0.0--", "1.0.0-0"), 1);
    /* more fields win when all before are equal */
    CHECK_EQ_INT(cmp_str("1.0.0-a.b", "1.0.0-a"), 1);
    CHECK_EQ_INT(cmp_str("1.0.0-a", "1.0.0-a.0"), -1);
    /* a pre-release is lower than its release */
    CHECK_EQ_INT(cmp_str("1.0.0-rc.1", "1.0.0"), -1);
    CHECK_EQ_INT(cmp_str("1.0.0", "1.0.0-0"), 1);
    CHECK_EQ_INT(cmp_str("0.9.9", "1.0.0-0"), -1);
    CHECK_EQ_INT(cmp_str("1.0.0-a.1", "1.0.0-a.1"), 0);
}

TEST(build_metadata_ignored)
{
    CHECK_EQ_INT(cmp_str("1.0.0+build.1", "1.0.0+build.2"), 0);
    CHECK_EQ_INT(cmp_str("1.0.0+zzz", "1.0.0"), 0);
    CHECK_EQ_INT(cmp_str("1.0.0-alpha+001", "1.0.0-alpha"), 0);
    CHECK_EQ_INT(cmp_str("1.0.0-alpha+999", "1.0.0-alpha.1+000"), -1);
    CHECK_EQ_INT(cmp_str("1.0.0+20130313144700", "1.0.0-beta+exp.sha.5114f85"), 1);
    CHECK_EQ_INT(cmp_str("1.0.0-rc.1+build.1", "1.0.0-rc.1"), 0);
}

TEST(cmp_is_consistent)
{
    /* Antisymmetry and transitivity over a mixed set, by brute force. */
    static const char *const set[] = {
        "0.0.0",     "0.0.1",   "1.0.0-0", "1.0.0-0.0", "1.0.0-1", "1.0.0-a", "1.0.0-a.1",
        "1.0.0-a.b", "1.0.0-b", "1.0.0",   "1.0.0+x",   "1.0.1-x", "1.1.0",   "2.0.0-rc.1",
    };
    size_t n = sizeof set / sizeof set[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            int ij = cmp_str(set[i], set[j]), ji = cmp_str(set[j], set[i]);
            CHECK_EQ_INT(ij, -ji);
            for (size_t k = 0; k < n; k++) {
                int jk = cmp_str(set[j], set[k]), ik = cmp_str(set[i], set[k]);
                if (ij < 0 && jk < 0)
                    CHECK_EQ_INT(ik, -1);
            }
        }
}

TEST(first_error_wins)
{
    struct cmig_semver v;
    struct cmig_err err;
    cmig_err_clear(&err);
    cmig_semver_parse(&v, "01.0.0", 6, &err);
    cmig_semver_parse(&v, "x", 1, &err);
    CHECK_CONTAINS(err.msg, "'01.0.0'");
}

int main(void)
{
    SUITE("semver");
    RUN(parses_core);
    RUN(parses_prerelease_and_build);
    RUN(parses_valid_corpus);
    RUN(max_values);
    RUN(exact_messages);
    RUN(rejects_invalid_corpus);
    RUN(rejects_embedded_nul);
    RUN(unprintable_bytes_escaped);
    RUN(length_limit);
    RUN(not_nul_terminated);
    RUN(spec_precedence_chain);
    RUN(numeric_fields_compare_numerically);
    RUN(identifier_rules);
    RUN(build_metadata_ignored);
    RUN(cmp_is_consistent);
    RUN(first_error_wins);
    return harness_done();
}
