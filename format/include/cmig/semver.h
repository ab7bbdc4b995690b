/*
 * cmig/semver.h - Semantic Versioning 2.0.0: parsing and precedence.
 *
 * A bundle's version is a SemVer 2.0.0 string (no leading "v"). Parsing is
 * strict: numeric identifiers have no leading zeros, identifiers are
 * [0-9A-Za-z-]+, major/minor/patch fit in 64 bits, and the whole string is
 * at most CMIG_SEMVER_MAX bytes.
 */
#ifndef CMIG_SEMVER_H
#define CMIG_SEMVER_H

#include <stddef.h>
#include <stdint.h>

#include "cmig/err.h"

#define CMIG_SEMVER_MAX 255

struct cmig_semver {
    uint64_t major, minor, patch;
    char text[CMIG_SEMVER_MAX + 1];      /* the string as given, NUL-terminated */
    unsigned short pre_off, pre_len;     /* pre-release in text, 0 length if none */
    unsigned short build_off, build_len; /* build metadata in text, 0 length if none */
};

/* Parses s (len bytes, need not be NUL-terminated). On failure the message
 * names the string and what is wrong with it. */
int cmig_semver_parse(struct cmig_semver *out, const char *s, size_t len, struct cmig_err *err);

/* SemVer 2.0.0 precedence: <0, 0 or >0. Build metadata is ignored, so two
 * versions that differ only in build metadata compare equal. */
int cmig_semver_cmp(const struct cmig_semver *a, const struct cmig_semver *b);

#endif
