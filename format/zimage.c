/*
 * zimage.c - a manifest image in memory: flat when small, else 64 KiB
 * chunks deflated one by one and inflated on demand (see zimage.h).
 */
#include "zimage.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define CHUNK (64u * 1024)
#define SLOTS                                                                                      \
    2 /* a scan reads chunks in order; a second slot keeps the                                     \
         b-tree page a scan returns to from being inflated again */

struct chunk {
    uint8_t *data; /* raw deflate */
    uint32_t len;
};

struct slot {
    size_t chunk; /* which chunk buf holds; SIZE_MAX: none */
    unsigned used;
    uint8_t *buf;
};

struct cmig_zimage {
    uint64_t size;    /* declared */
    uint64_t written; /* so far */
    int sealed;
    /* flat */
    const uint8_t *flat;
    uint8_t *own; /* flat bytes we allocated */
    /* chunked */
    struct chunk *chunks;
    size_t n_chunks;
    uint8_t *stage; /* the chunk being written */
    uint8_t *out;   /* deflate's output for one chunk */
    size_t out_cap;
    z_stream z;
    int z_live; /* 0, 1: deflating, 2: inflating */
    struct slot slot[SLOTS];
    unsigned clock;
    uint64_t held;
};

static int zerr(struct cmig_err *err, int zrc)
{
    if (zrc == Z_MEM_ERROR)
        return cmig_err_nomem(err);
    return cmig_err_set(err, CMIG_E_INTERNAL, "manifest image: zlib failed (%d)", zrc);
}

int cmig_zimage_open(struct cmig_zimage **out, uint64_t size, uint64_t flat_max,
                     struct cmig_err *err)
{
    *out = NULL;
    struct cmig_zimage *z = calloc(1, sizeof *z);
    if (!z)
        return cmig_err_nomem(err);
    z->size = size;
    for (int i = 0; i < SLOTS; i++)
        z->slot[i].chunk = SIZE_MAX;
    if (size <= flat_max) {
        z->own = malloc(size ? (size_t)size : 1);
        if (!z->own) {
            free(z);
            return cmig_err_nomem(err);
        }
        z->flat = z->own;
        z->held = size;
        *out = z;
        return 0;
    }
    size_t n = (size_t)((size + CHUNK - 1) / CHUNK);
    z->chunks = calloc(n, sizeof *z->chunks);
    z->stage = malloc(CHUNK);
    if (!z->chunks || !z->stage) {
        cmig_zimage_free(z);
        return cmig_err_nomem(err);
    }
    /* The fastest level: manifest pages (hex digests, paths) still shrink
     * about 3:1, and this runs at every start that reads a large manifest. */
    int zrc = deflateInit2(&z->z, Z_BEST_SPEED, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    if (zrc != Z_OK) {
        cmig_zimage_free(z);
        return zerr(err, zrc);
    }
    z->z_live = 1;
    z->out_cap = deflateBound(&z->z, CHUNK);
    if (!(z->out = malloc(z->out_cap))) {
        cmig_zimage_free(z);
        return cmig_err_nomem(err);
    }
    *out = z;
    return 0;
}

int cmig_zimage_wrap(struct cmig_zimage **out, const uint8_t *data, size_t len,
                     struct cmig_err *err)
{
    *out = NULL;
    struct cmig_zimage *z = calloc(1, sizeof *z);
    if (!z)
        return cmig_err_nomem(err);
    z->size = z->written = len;
    z->flat = data;
    z->sealed = 1;
    *out = z;
    return 0;
}

/* Deflates the staged chunk (len bytes) into a block of its own size. */
static int flush_chunk(struct cmig_zimage *z, size_t len, struct cmig_err *err)
{
    size_t i = z->n_chunks;
    int zrc = deflateReset(&z->z);
    if (zrc != Z_OK)
        return zerr(err, zrc);
    z->z.next_in = z->stage;
    z->z.avail_in = (uInt)len;
    z->z.next_out = z->out;
    z->z.avail_out = (uInt)z->out_cap;
    zrc = deflate(&z->z, Z_FINISH);
    if (zrc != Z_STREAM_END)
        return zerr(err, zrc == Z_OK ? Z_BUF_ERROR : zrc);
    size_t made = z->out_cap - z->z.avail_out;
    z->chunks[i].data = malloc(made ? made : 1);
    if (!z->chunks[i].data)
        return cmig_err_nomem(err);
    memcpy(z->chunks[i].data, z->out, made);
    z->chunks[i].len = (uint32_t)made;
    z->held += made;
    z->n_chunks++;
    return 0;
}

int cmig_zimage_write(struct cmig_zimage *z, const uint8_t *data, size_t len, struct cmig_err *err)
{
    if (z->sealed || len > z->size - z->written)
        return cmig_err_set(err, CMIG_E_INTERNAL, "manifest image: written past its size");
    if (z->own) {
        memcpy(z->own + z->written, data, len);
        z->written += len;
        return 0;
    }
    while (len) {
        size_t at = (size_t)(z->written % CHUNK);
        size_t n = CHUNK - at < len ? CHUNK - at : len;
        memcpy(z->stage + at, data, n);
        z->written += n;
        data += n;
        len -= n;
        if (at + n == CHUNK) {
            int rc = flush_chunk(z, CHUNK, err);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int cmig_zimage_seal(struct cmig_zimage *z, struct cmig_err *err)
{
    if (z->sealed || z->written != z->size)
        return cmig_err_set(err, CMIG_E_INTERNAL, "manifest image: sealed at %llu of %llu bytes",
                            (unsigned long long)z->written, (unsigned long long)z->size);
    if (!z->own) {
        size_t tail = (size_t)(z->size % CHUNK);
        int rc = tail ? flush_chunk(z, tail, err) : 0;
        if (rc)
            return rc;
        /* Writing is over: its buffers go before reading needs its own. */
        deflateEnd(&z->z);
        z->z_live = 0;
        free(z->stage);
        free(z->out);
        z->stage = z->out = NULL;
        memset(&z->z, 0, sizeof z->z);
        int zrc = inflateInit2(&z->z, -15);
        if (zrc != Z_OK)
            return zerr(err, zrc);
        z->z_live = 2;
    }
    z->sealed = 1;
    return 0;
}

uint64_t cmig_zimage_size(const struct cmig_zimage *z)
{
    return z->size;
}

uint64_t cmig_zimage_held(const struct cmig_zimage *z)
{
    return z->held;
}

/* The slot holding chunk i, inflating it into the least recently used
 * slot when no slot does. */
static int slot_for(struct cmig_zimage *z, size_t i, struct slot **out)
{
    struct slot *lru = &z->slot[0];
    for (int k = 0; k < SLOTS; k++) {
        struct slot *s = &z->slot[k];
        if (s->chunk == i) {
            s->used = ++z->clock;
            *out = s;
            return 0;
        }
        if (s->used < lru->used)
            lru = s;
    }
    if (!lru->buf && !(lru->buf = malloc(CHUNK)))
        return CMIG_E_NOMEM;
    lru->chunk = SIZE_MAX;
    size_t want = i + 1 < z->n_chunks ? CHUNK : (size_t)(z->size - (uint64_t)i * CHUNK);
    if (inflateReset(&z->z) != Z_OK)
        return CMIG_E_INTERNAL;
    z->z.next_in = z->chunks[i].data;
    z->z.avail_in = z->chunks[i].len;
    z->z.next_out = lru->buf;
    z->z.avail_out = (uInt)want;
    int zrc = inflate(&z->z, Z_FINISH);
    if (zrc == Z_MEM_ERROR)
        return CMIG_E_NOMEM;
    if (zrc != Z_STREAM_END || z->z.avail_out != 0)
        return CMIG_E_INTERNAL;
    lru->chunk = i;
    lru->used = ++z->clock;
    *out = lru;
    return 0;
}

int cmig_zimage_read(struct cmig_zimage *z, void *buf, size_t len, uint64_t off)
{
    if (!z->sealed || off > z->size || len > z->size - off)
        return CMIG_E_INTERNAL;
    if (z->flat) {
        memcpy(buf, z->flat + off, len);
        return 0;
    }
    uint8_t *to = buf;
    while (len) {
        size_t i = (size_t)(off / CHUNK), at = (size_t)(off % CHUNK);
        struct slot *s;
        int rc = slot_for(z, i, &s);
        if (rc)
            return rc;
        size_t n = CHUNK - at < len ? CHUNK - at : len;
        memcpy(to, s->buf + at, n);
        to += n;
        off += n;
        len -= n;
    }
    return 0;
}

void cmig_zimage_free(struct cmig_zimage *z)
{
    if (!z)
        return;
    if (z->z_live == 1)
        deflateEnd(&z->z);
    else if (z->z_live == 2)
        inflateEnd(&z->z);
    for (size_t i = 0; i < z->n_chunks; i++)
        free(z->chunks[i].data);
    for (int k = 0; k < SLOTS; k++)
        free(z->slot[k].buf);
    free(z->chunks);
    free(z->stage);
    free(z->out);
    free(z->own);
    free(z);
}
