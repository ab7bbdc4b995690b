/*
 * manifest_fixture.h - building and comparing manifests in unit tests
 * (test_manifest.c, test_zimage.c, test_history.c).
 *
 * A test that cannot even build its fixture has nothing to report: out of
 * memory or a bad fixture version ends the process with exit 2, which
 * tests/run-all counts as a failed suite.
 */
#ifndef CMIG_TEST_MANIFEST_FIXTURE_H
#define CMIG_TEST_MANIFEST_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmig/err.h"
#include "cmig/manifest.h"
#include "cmig/semver.h"

static inline char *fixture_strdup(const char *s)
{
    char *d = strdup(s);
    if (!d) {
        fprintf(stderr, "out of memory building a test fixture\n");
        exit(2);
    }
    return d;
}

/* A manifest of n zeroed migrations with every header field set: the name
 * and version given, the driver "postgres", the directory format given,
 * an empty source revision and the builder given. */
static inline struct cmig_manifest *fixture_manifest(const char *name, const char *version,
                                                     const char *dir_format, const char *builder,
                                                     size_t n)
{
    struct cmig_err err;
    cmig_err_clear(&err);
    struct cmig_manifest *m = calloc(1, sizeof *m);
    if (!m)
        exit(2);
    m->format_version = CMIG_FORMAT_VERSION;
    m->name = fixture_strdup(name);
    if (cmig_semver_parse(&m->version, version, strlen(version), &err)) {
        fprintf(stderr, "bad fixture version '%s': %s\n", version, err.msg);
        exit(2);
    }
    m->source_revision = fixture_strdup("");
    m->builder = fixture_strdup(builder);
    m->driver = fixture_strdup("postgres");
    m->dir_format = fixture_strdup(dir_format);
    m->migrations = calloc(n ? n : 1, sizeof *m->migrations);
    if (!m->migrations)
        exit(2);
    m->n = n;
    return m;
}

/* Every field of two file entries equal; two absent files (no down) are
 * equal too. */
static inline int fixture_same_file(const struct cmig_file *a, const struct cmig_file *b)
{
    if (!a->path || !b->path)
        return !a->path && !b->path;
    return strcmp(a->path, b->path) == 0 && a->size == b->size &&
           memcmp(a->sha256, b->sha256, 32) == 0 && a->tx == b->tx &&
           strcmp(a->tx_reason, b->tx_reason) == 0 && strcmp(a->source, b->source) == 0 &&
           a->source_line == b->source_line;
}

#endif
