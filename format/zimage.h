/*
 * zimage.h - a manifest's SQLite image held in memory, compressed when it is
 * large, and read back at any offset.
 *
 * A 10,000-migration manifest is a 3.4 MB database, and while it is read
 * the parsed manifest (about as large) is being built next to it: at that
 * moment the runner holds the manifest twice, which is its peak. SQLite
 * needs random access to the image, so a large image is cut into 64 KiB
 * chunks, each deflated on its own as the archive entry streams in (about
 * 3:1), and a chunk is inflated again when SQLite reads a page in it. A
 * small image (most bundles, and every no-op start) stays flat: nothing to
 * gain, and compressing it would cost time on the hottest path.
 *
 * zvfs opens a zimage as a read-only, immutable SQLite database through a
 * VFS of its own, so SQLite never sees anything but these bytes.
 */
#ifndef CMIG_ZIMAGE_H
#define CMIG_ZIMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "cmig/err.h"
#include "cmig/manifest.h"

/* Images up to this size are held flat. */
#define CMIG_ZIMAGE_FLAT_MAX (1u << 20)

struct cmig_zimage;

/* An empty image that will hold size bytes, written in order; held flat
 * when size is at most flat_max (CMIG_ZIMAGE_FLAT_MAX; tests pass 0 to
 * have a small image chunked). */
int cmig_zimage_open(struct cmig_zimage **out, uint64_t size, uint64_t flat_max,
                     struct cmig_err *err);

/* An image over len bytes the caller keeps alive (never compressed). */
int cmig_zimage_wrap(struct cmig_zimage **out, const uint8_t *data, size_t len,
                     struct cmig_err *err);

/* Appends data; at most the size given to cmig_zimage_open in all. */
int cmig_zimage_write(struct cmig_zimage *z, const uint8_t *data, size_t len, struct cmig_err *err);

/* Ends writing: every byte of the declared size must have been written. */
int cmig_zimage_seal(struct cmig_zimage *z, struct cmig_err *err);

uint64_t cmig_zimage_size(const struct cmig_zimage *z);

/* Bytes held for the image (compressed chunks, or the flat copy). */
uint64_t cmig_zimage_held(const struct cmig_zimage *z);

/* Copies len bytes at off (off + len within the size) of a sealed image.
 * 0, CMIG_E_NOMEM, or CMIG_E_INTERNAL when a chunk does not inflate to
 * what was deflated (it never should: the chunks are private memory). */
int cmig_zimage_read(struct cmig_zimage *z, void *buf, size_t len, uint64_t off);

void cmig_zimage_free(struct cmig_zimage *z);

/* Loads a manifest from a sealed image, as cmig_manifest_load does from a
 * flat one. */
int cmig_manifest_load_zimage(struct cmig_manifest **out, struct cmig_zimage *z,
                              struct cmig_err *err);

/* ---- zvfs: the image as a SQLite database ------------------------------ */

typedef struct sqlite3 sqlite3;
struct cmig_zvfs;

/* Opens z (sealed; it must outlive the handle) read-only with flags
 * (SQLITE_OPEN_* beyond READONLY and URI, e.g. NOMUTEX). On failure *db may
 * still be set, for its error message; close it with cmig_zvfs_close. */
int cmig_zvfs_open(struct cmig_zimage *z, int flags, sqlite3 **db, struct cmig_zvfs **vfs);

/* Closes db (may be NULL) and then the VFS it ran on (may be NULL). */
void cmig_zvfs_close(sqlite3 *db, struct cmig_zvfs *vfs);

#endif
