/*
 * harness.h - the tiny unit-test harness: TAP-like lines that tests/run-all
 * counts ("ok - suite: test" / "not ok - suite: test: file:line: what").
 *
 *   TEST(name) { CHECK(cond); CHECK_EQ_INT(a, b); CHECK_STR(a, b); }
 *   int main(void) { RUN(name); ...; return harness_done(); }
 */
#ifndef CMIG_TEST_HARNESS_H
#define CMIG_TEST_HARNESS_H

#include <stdio.h>
#include <string.h>

static const char *harness_suite = "unit";
static int harness_failed_now;
static int harness_pass, harness_fail;

#define SUITE(name) (harness_suite = (name))

#define TEST(name) static void name(void)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (!harness_failed_now)                                                               \
                printf("#   %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                \
            harness_failed_now = 1;                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long ha_ = (long long)(a), hb_ = (long long)(b);                                      \
        if (ha_ != hb_) {                                                                          \
            if (!harness_failed_now)                                                               \
                printf("#   %s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, #a,     \
                       ha_, #b, hb_);                                                              \
            harness_failed_now = 1;                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *ha_ = (a), *hb_ = (b);                                                         \
        if (!ha_ || !hb_ || strcmp(ha_, hb_) != 0) {                                               \
            if (!harness_failed_now)                                                               \
                printf("#   %s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a,       \
                       ha_ ? ha_ : "(null)", hb_ ? hb_ : "(null)");                                \
            harness_failed_now = 1;                                                                \
        }                                                                                          \
    } while (0)

/* Checks that a message contains a substring. */
#define CHECK_CONTAINS(hay, needle)                                                                \
    do {                                                                                           \
        const char *ha_ = (hay), *hb_ = (needle);                                                  \
        if (!ha_ || !strstr(ha_, hb_)) {                                                           \
            if (!harness_failed_now)                                                               \
                printf("#   %s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,          \
                       ha_ ? ha_ : "(null)", hb_);                                                 \
            harness_failed_now = 1;                                                                \
        }                                                                                          \
    } while (0)

#define RUN(name)                                                                                  \
    do {                                                                                           \
        harness_failed_now = 0;                                                                    \
        name();                                                                                    \
        if (harness_failed_now) {                                                                  \
            harness_fail++;                                                                        \
            printf("not ok - %s: %s\n", harness_suite, #name);                                     \
        } else {                                                                                   \
            harness_pass++;                                                                        \
            printf("ok - %s: %s\n", harness_suite, #name);                                         \
        }                                                                                          \
        fflush(stdout);                                                                            \
    } while (0)

static inline int harness_done(void)
{
    printf("# %s: %d passed, %d failed\n", harness_suite, harness_pass, harness_fail);
    return harness_fail ? 1 : 0;
}

#endif
