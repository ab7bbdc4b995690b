/*
 * spool.c - a checked archive entry kept deflated in memory, read back in
 * order (see spool.h). The copy is private memory: nothing outside this
 * process can change it between the hash check and the read-back.
 */
#include "spool.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define BLOCK_BYTES (128u * 1024)

struct block {
    struct block *next;
    size_t len;
    uint8_t data[BLOCK_BYTES];
};

enum spool_state { SPOOL_WRITING, SPOOL_READING, SPOOL_DONE };

struct cmig_spool {
    enum spool_state state;
    z_stream z;
    int z_live;
    struct block *head, *tail;
    struct block *rd; /* block being inflated */
    uint64_t plain;   /* bytes written */
    uint64_t held;    /* compressed bytes in blocks */
    uint64_t out;     /* bytes read back */
};

static int zfail(struct cmig_err *err, const char *what, int zrc)
{
    if (zrc == Z_MEM_ERROR)
        return cmig_err_nomem(err);
    return cmig_err_set(err, CMIG_E_INTERNAL, "zlib %s failed (%d)", what, zrc);
}

int cmig_spool_open(struct cmig_spool **out, struct cmig_err *err)
{
    struct cmig_spool *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s)
        return cmig_err_nomem(err);
    /* Raw deflate at zlib's default level: the spool of the largest file
     * is the runner's peak while it applies, and on seed data level 6
     * holds a quarter less than the fastest level (1.33 against 1.75 MB
     * for a 7 MB file) for about 0.15 s more per such file, next to the
     * seconds the database spends loading it. */
    int zrc = deflateInit2(&s->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    if (zrc != Z_OK) {
        free(s);
        return zfail(err, "deflateInit2", zrc);
    }
    s->z_live = 1;
    *out = s;
    return 0;
}

static int new_block(struct cmig_spool *s, struct cmig_err *err)
{
    struct block *b = malloc(sizeof *b);
    if (!b)
        return cmig_err_nomem(err);
    b->next = NULL;
    b->len = 0;
    if (s->tail)
        s->tail->next = b;
    else
        s->head = b;
    s->tail = b;
    return 0;
}

/* Deflates what is in z's input (flush: Z_NO_FLUSH or Z_FINISH). */
static int pump(struct cmig_spool *s, int flush, struct cmig_err *err)
{
    for (;;) {
        if (!s->tail || s->tail->len == BLOCK_BYTES) {
            int rc = new_block(s, err);
            if (rc)
                return rc;
        }
        struct block *b = s->tail;
        s->z.next_out = b->data + b->len;
        s->z.avail_out = (uInt)(BLOCK_BYTES - b->len);
        int zrc = deflate(&s->z, flush);
        size_t made = (size_t)(BLOCK_BYTES - b->len) - s->z.avail_out;
        b->len += made;
        s->held += made;
        if (zrc == Z_STREAM_END)
            return 0;
        if (zrc != Z_OK && zrc != Z_BUF_ERROR)
            return zfail(err, "deflate", zrc);
        if (flush == Z_NO_FLUSH && s->z.avail_in == 0 && s->z.avail_out != 0)
            return 0;
    }
}

int cmig_spool_write(struct cmig_spool *s, const uint8_t *data, size_t len, struct cmig_err *err)
{
    if (s->state != SPOOL_WRITING)
        return cmig_err_set(err, CMIG_E_INTERNAL, "spool written after it was sealed");
    while (len) {
        uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
        s->z.next_in = (Bytef *)(uintptr_t)data;
        s->z.avail_in = n;
        int rc = pump(s, Z_NO_FLUSH, err);
        if (rc)
            return rc;
        data += n;
        len -= n;
        s->plain += n;
    }
    return 0;
}

int cmig_spool_seal(struct cmig_spool *s, struct cmig_err *err)
{
    if (s->state != SPOOL_WRITING)
        return cmig_err_set(err, CMIG_E_INTERNAL, "spool sealed twice");
    s->z.next_in = NULL;
    s->z.avail_in = 0;
    int rc = pump(s, Z_FINISH, err);
    deflateEnd(&s->z);
    s->z_live = 0;
    if (rc)
        return rc;
    memset(&s->z, 0, sizeof s->z);
    int zrc = inflateInit2(&s->z, -15);
    if (zrc != Z_OK)
        return zfail(err, "inflateInit2", zrc);
    s->z_live = 2;
    s->rd = s->head;
    s->state = SPOOL_READING;
    return 0;
}

int cmig_spool_read(struct cmig_spool *s, uint8_t *buf, size_t cap, size_t *got,
                    struct cmig_err *err)
{
    *got = 0;
    if (s->state == SPOOL_DONE || cap == 0)
        return 0;
    if (s->state != SPOOL_READING)
        return cmig_err_set(err, CMIG_E_INTERNAL, "spool read before it was sealed");
    if (cap > (1u << 30))
        cap = 1u << 30;
    s->z.next_out = buf;
    s->z.avail_out = (uInt)cap;
    while (s->z.avail_out) {
        if (s->z.avail_in == 0) {
            if (!s->rd)
                return cmig_err_set(err, CMIG_E_INTERNAL, "spool ended early");
            s->z.next_in = s->rd->data;
            s->z.avail_in = (uInt)s->rd->len;
            s->rd = s->rd->next;
        }
        int zrc = inflate(&s->z, Z_NO_FLUSH);
        if (zrc == Z_STREAM_END) {
            s->state = SPOOL_DONE;
            break;
        }
        if (zrc != Z_OK && !(zrc == Z_BUF_ERROR && s->z.avail_in == 0))
            return zfail(err, "inflate", zrc);
    }
    *got = cap - s->z.avail_out;
    s->out += *got;
    if (s->out > s->plain || (s->state == SPOOL_DONE && s->out != s->plain))
        return cmig_err_set(err, CMIG_E_INTERNAL, "spool read back %llu of %llu bytes",
                            (unsigned long long)s->out, (unsigned long long)s->plain);
    return 0;
}

uint64_t cmig_spool_size(const struct cmig_spool *s)
{
    return s->plain;
}

uint64_t cmig_spool_held(const struct cmig_spool *s)
{
    return s->held;
}

void cmig_spool_free(struct cmig_spool *s)
{
    if (!s)
        return;
    if (s->z_live == 1)
        deflateEnd(&s->z);
    else if (s->z_live == 2)
        inflateEnd(&s->z);
    while (s->head) {
        struct block *n = s->head->next;
        free(s->head);
        s->head = n;
    }
    free(s);
}
