/*
 * spool.h - a private, compressed copy of one archive entry, kept while the
 * entry is checked and read back once it is known to be what was signed.
 *
 * A migration file must not reach a database before its SHA-256 is checked,
 * and a large bundle is read from its file, which someone could change
 * between two reads. So the checked bytes are kept, but not as they are: a
 * multi-megabyte seed file is deflated (zlib's fastest level) into a chain
 * of blocks as it is hashed, and inflated again, in order, as the driver
 * sends it. SQL compresses about 4-10:1, so the runner's memory follows the
 * compressed size of its largest file instead of its size.
 */
#ifndef CMIG_SPOOL_H
#define CMIG_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "cmig/err.h"

struct cmig_spool;

int cmig_spool_open(struct cmig_spool **out, struct cmig_err *err);

/* Appends data (only before cmig_spool_seal). */
int cmig_spool_write(struct cmig_spool *s, const uint8_t *data, size_t len, struct cmig_err *err);

/* Ends writing; reading starts at the first byte. */
int cmig_spool_seal(struct cmig_spool *s, struct cmig_err *err);

/* The next bytes, in order: *got = 0 after the last. */
int cmig_spool_read(struct cmig_spool *s, uint8_t *buf, size_t cap, size_t *got,
                    struct cmig_err *err);

/* Bytes written, and bytes held (compressed). */
uint64_t cmig_spool_size(const struct cmig_spool *s);
uint64_t cmig_spool_held(const struct cmig_spool *s);

void cmig_spool_free(struct cmig_spool *s);

#endif
