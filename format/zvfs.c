/*
 * zvfs.c - a read-only SQLite VFS over one zimage (see zimage.h).
 *
 * Each open registers a VFS of its own, named after its address, whose one
 * file is the image: SQLite can open nothing else through it (no journal,
 * no temp file, no path on disk), and the image is opened immutable, so
 * SQLite neither locks it nor looks for a hot journal.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zimage.h"

struct cmig_zvfs {
    sqlite3_vfs vfs;
    sqlite3_vfs *base; /* the default VFS: time, sleep and randomness */
    struct cmig_zimage *z;
    char name[48];
};

struct zfile {
    sqlite3_file base;
    struct cmig_zimage *z;
};

static int zf_close(sqlite3_file *f)
{
    (void)f;
    return SQLITE_OK;
}

static int zf_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
    struct cmig_zimage *z = ((struct zfile *)f)->z;
    uint64_t size = cmig_zimage_size(z);
    if (amt < 0 || off < 0)
        return SQLITE_IOERR_READ;
    size_t want = (size_t)amt, have = 0;
    if ((uint64_t)off < size)
        have = size - (uint64_t)off < want ? (size_t)(size - (uint64_t)off) : want;
    if (have) {
        int rc = cmig_zimage_read(z, buf, have, (uint64_t)off);
        if (rc)
            return rc == CMIG_E_NOMEM ? SQLITE_IOERR_NOMEM : SQLITE_IOERR_READ;
    }
    if (have < want) {
        /* SQLite's contract: the rest zeroed, and say so. */
        memset((char *)buf + have, 0, want - have);
        return SQLITE_IOERR_SHORT_READ;
    }
    return SQLITE_OK;
}

static int zf_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
    (void)f;
    (void)buf;
    (void)amt;
    (void)off;
    return SQLITE_READONLY;
}

static int zf_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    (void)f;
    (void)size;
    return SQLITE_READONLY;
}

static int zf_sync(sqlite3_file *f, int flags)
{
    (void)f;
    (void)flags;
    return SQLITE_OK;
}

static int zf_size(sqlite3_file *f, sqlite3_int64 *size)
{
    *size = (sqlite3_int64)cmig_zimage_size(((struct zfile *)f)->z);
    return SQLITE_OK;
}

static int zf_lock(sqlite3_file *f, int level)
{
    (void)f;
    (void)level;
    return SQLITE_OK;
}

static int zf_reserved(sqlite3_file *f, int *out)
{
    (void)f;
    *out = 0;
    return SQLITE_OK;
}

static int zf_control(sqlite3_file *f, int op, void *arg)
{
    (void)f;
    (void)op;
    (void)arg;
    return SQLITE_NOTFOUND;
}

static int zf_sector(sqlite3_file *f)
{
    (void)f;
    return 512;
}

static int zf_device(sqlite3_file *f)
{
    (void)f;
    return SQLITE_IOCAP_IMMUTABLE;
}

static const sqlite3_io_methods ZFILE_METHODS = {
    .iVersion = 1,
    .xClose = zf_close,
    .xRead = zf_read,
    .xWrite = zf_write,
    .xTruncate = zf_truncate,
    .xSync = zf_sync,
    .xFileSize = zf_size,
    .xLock = zf_lock,
    .xUnlock = zf_lock,
    .xCheckReservedLock = zf_reserved,
    .xFileControl = zf_control,
    .xSectorSize = zf_sector,
    .xDeviceCharacteristics = zf_device,
};

static int zv_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *f, int flags,
                   int *out_flags)
{
    (void)name;
    f->pMethods = NULL;
    if (!(flags & SQLITE_OPEN_MAIN_DB) || (flags & SQLITE_OPEN_READWRITE))
        return SQLITE_CANTOPEN;
    struct zfile *zf = (struct zfile *)f;
    zf->z = ((struct cmig_zvfs *)v->pAppData)->z;
    zf->base.pMethods = &ZFILE_METHODS;
    if (out_flags)
        *out_flags = SQLITE_OPEN_READONLY;
    return SQLITE_OK;
}

static int zv_delete(sqlite3_vfs *v, const char *name, int sync)
{
    (void)v;
    (void)name;
    (void)sync;
    return SQLITE_IOERR_DELETE;
}

static int zv_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    (void)name;
    (void)flags;
    *out = 0; /* no journal, no WAL: nothing else exists here */
    return SQLITE_OK;
}

static int zv_full(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    if (snprintf(out, (size_t)n, "%s", name) >= n)
        return SQLITE_CANTOPEN;
    return SQLITE_OK;
}

static int zv_random(sqlite3_vfs *v, int n, char *out)
{
    sqlite3_vfs *b = ((struct cmig_zvfs *)v->pAppData)->base;
    return b->xRandomness(b, n, out);
}

static int zv_sleep(sqlite3_vfs *v, int us)
{
    sqlite3_vfs *b = ((struct cmig_zvfs *)v->pAppData)->base;
    return b->xSleep(b, us);
}

static int zv_time(sqlite3_vfs *v, double *out)
{
    sqlite3_vfs *b = ((struct cmig_zvfs *)v->pAppData)->base;
    return b->xCurrentTime(b, out);
}

/* Extensions are never loaded on a manifest's handle; these only keep
 * SQLite from finding a NULL where the default VFS has a function. */
static void *zv_dlopen(sqlite3_vfs *v, const char *name)
{
    (void)v;
    (void)name;
    return NULL;
}

static void zv_dlerror(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    if (n > 0)
        snprintf(out, (size_t)n, "no extensions here");
}

static void (*zv_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    (void)v;
    (void)h;
    (void)sym;
    return NULL;
}

static void zv_dlclose(sqlite3_vfs *v, void *h)
{
    (void)v;
    (void)h;
}

static int zv_last_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    if (n > 0)
        out[0] = '\0';
    return 0;
}

int cmig_zvfs_open(struct cmig_zimage *z, int flags, sqlite3 **db, struct cmig_zvfs **vfs)
{
    *db = NULL;
    *vfs = NULL;
    /* sqlite3_vfs_find says NULL for a failed initialisation too, which is
     * an allocation that failed, not a damaged manifest. */
    int rc = sqlite3_initialize();
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_vfs *base = sqlite3_vfs_find(NULL);
    if (!base)
        return SQLITE_ERROR;
    struct cmig_zvfs *v = calloc(1, sizeof *v);
    if (!v)
        return SQLITE_NOMEM;
    snprintf(v->name, sizeof v->name, "cmig-manifest-%p", (void *)v);
    v->base = base;
    v->z = z;
    v->vfs.iVersion = 1;
    v->vfs.szOsFile = (int)sizeof(struct zfile);
    v->vfs.mxPathname = 64;
    v->vfs.zName = v->name;
    v->vfs.pAppData = v;
    v->vfs.xOpen = zv_open;
    v->vfs.xDelete = zv_delete;
    v->vfs.xAccess = zv_access;
    v->vfs.xFullPathname = zv_full;
    v->vfs.xRandomness = zv_random;
    v->vfs.xSleep = zv_sleep;
    v->vfs.xCurrentTime = zv_time;
    v->vfs.xGetLastError = zv_last_error;
    v->vfs.xDlOpen = zv_dlopen;
    v->vfs.xDlError = zv_dlerror;
    v->vfs.xDlSym = zv_dlsym;
    v->vfs.xDlClose = zv_dlclose;
    rc = sqlite3_vfs_register(&v->vfs, 0);
    if (rc != SQLITE_OK) {
        free(v);
        return rc;
    }
    *vfs = v;
    return sqlite3_open_v2("file:manifest.db?immutable=1", db,
                           SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | flags, v->name);
}

void cmig_zvfs_close(sqlite3 *db, struct cmig_zvfs *vfs)
{
    sqlite3_close(db);
    if (vfs) {
        sqlite3_vfs_unregister(&vfs->vfs);
        free(vfs);
    }
}
