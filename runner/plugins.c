/*
 * plugins.c - loading a database driver by URL scheme.
 *
 * Loading every client library at start costs more than a whole no-op run
 * against PostgreSQL (libmongoc's dependency closure alone is ~7 ms), so
 * cmig-run links none of them: the PostgreSQL and MongoDB drivers are
 * shared objects, and only the one the URL names is ever loaded.
 */
#include "plugins.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* Which driver a URL asks for, by its scheme. */
static const char *driver_name(const char *url)
{
    if (has_prefix(url, "sqlite:") || has_prefix(url, "sqlite3:"))
        return "sqlite";
    if (has_prefix(url, "postgres://") || has_prefix(url, "postgresql://"))
        return "postgres";
    if (has_prefix(url, "mongodb://") || has_prefix(url, "mongodb+srv://"))
        return "mongodb";
    /* libpq's key=value form: "host=... dbname=..." */
    if (!strstr(url, "://") && strchr(url, '='))
        return "postgres";
    return NULL;
}

static int try_load(const char *dir, const char *name, const struct cmig_driver **out,
                    void **handle, char *why, size_t why_cap)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s.so", dir, name) >= (int)sizeof path)
        return -1;
    if (access(path, R_OK) != 0)
        return -1;
    /* libmongoc initialises itself as it is loaded (a constructor), and
     * then puts its performance counters in /dev/shm/mongoc-PID, which a
     * killed runner leaves behind: a later process with that pid (PID 1
     * again, in an initContainer restarted in the same pod) warns and falls
     * back to malloc. Nothing reads the counters, so they are switched off
     * before the load; the driver cannot do it itself, it runs too late.
     * A value already in the environment wins. */
    if (strcmp(name, "mongodb") == 0)
        setenv("MONGOC_DISABLE_SHM", "1", 0);
    void *h = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
    if (!h) {
        snprintf(why, why_cap, "cannot load '%s': %s", path, dlerror());
        return -2;
    }
    char sym[64];
    snprintf(sym, sizeof sym, "%s%s", CMIG_DRIVER_SYMBOL_PREFIX, name);
    const struct cmig_driver *d = dlsym(h, sym);
    if (!d || d->abi != CMIG_DRIVER_ABI) {
        snprintf(why, why_cap, "'%s' is not a cmig driver of ABI %d", path, CMIG_DRIVER_ABI);
        dlclose(h);
        return -2;
    }
    *out = d;
    *handle = h;
    return 0;
}

int driver_for_url(const char *url, const struct cmig_driver **out, void **handle,
                   struct cmig_err *err)
{
    *out = NULL;
    *handle = NULL;
    const char *name = driver_name(url);
    if (!name) {
        const char *sep = strstr(url, "://");
        const char *colon = strchr(url, ':');
        int n = sep ? (int)(sep - url) : colon ? (int)(colon - url) : 0;
        if (n > 32)
            n = 32;
        return cmig_err_set(err, CMIG_E_USAGE,
                            "unsupported database URL scheme '%.*s' (use postgres://, "
                            "postgresql://, sqlite:, or mongodb://)",
                            n, url);
    }
    if (strcmp(name, "sqlite") == 0) {
        *out = &cmig_driver_sqlite;
        return 0;
    }
    char why[PATH_MAX + 256] = "";
    const char *env_dir = getenv("CMIG_DRIVER_DIR");
    if (env_dir && *env_dir) {
        int r = try_load(env_dir, name, out, handle, why, sizeof why);
        if (r == 0)
            return 0;
        if (r == -2)
            return cmig_err_set(err, CMIG_E_INTERNAL, "%s", why);
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char dir[PATH_MAX];
            const char *const rel[] = {"drivers", "../lib/cmig/drivers"};
            for (size_t i = 0; i < 2; i++) {
                if (snprintf(dir, sizeof dir, "%s/%s", exe, rel[i]) >= (int)sizeof dir)
                    continue;
                int r = try_load(dir, name, out, handle, why, sizeof why);
                if (r == 0)
                    return 0;
                if (r == -2)
                    return cmig_err_set(err, CMIG_E_INTERNAL, "%s", why);
            }
        }
    }
    return cmig_err_set(err, CMIG_E_USAGE,
                        "the %s driver (%s.so) is not installed next to cmig-run; set "
                        "CMIG_DRIVER_DIR to the directory that holds it",
                        name, name);
}

void driver_unload(void *handle)
{
    if (handle)
        dlclose(handle);
}
