/*
 * keyring_load.c - turning what an operator writes into trusted keys.
 *
 * A trusted key may be given as a .pub file, a directory of .pub files (a
 * mounted ConfigMap holding several keys during a rotation), or the bare
 * base64 key string minisign prints. Every source is parsed by the same
 * key parser; nothing here decides trust beyond "this key was named".
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmig/keys.h"

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcmp(s + n - k, suffix) == 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_dir(struct cmig_keyring *ring, const char *dir, struct cmig_err *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return cmig_err_errno(err, CMIG_E_IO, errno, "cannot open key directory '%s'", dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        /* Kubernetes mounts ConfigMap keys through "..data" links; only the
         * visible names are keys. */
        if (de->d_name[0] == '.' || !ends_with(de->d_name, ".pub"))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) {
                rc = cmig_err_nomem(err);
                goto out;
            }
            names = nn;
        }
        if (asprintf(&names[n], "%s/%s", dir, de->d_name) < 0) {
            rc = cmig_err_nomem(err);
            goto out;
        }
        n++;
    }
    if (n == 0) {
        rc = cmig_err_set(err, CMIG_E_USAGE, "key directory '%s' holds no .pub file", dir);
        goto out;
    }
    qsort(names, n, sizeof *names, name_cmp);
    for (size_t i = 0; i < n && !rc; i++) {
        struct cmig_pubkey k;
        rc = cmig_pubkey_load(&k, names[i], err);
        if (!rc)
            rc = cmig_keyring_add(ring, &k, err);
    }
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

int cmig_keyring_add_spec(struct cmig_keyring *ring, const char *spec, struct cmig_err *err)
{
    struct stat st;
    struct cmig_pubkey k;
    int rc;
    if (!spec[0])
        return cmig_err_set(err, CMIG_E_USAGE, "empty trusted key");
    if (stat(spec, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return add_dir(ring, spec, err);
        rc = cmig_pubkey_load(&k, spec, err);
    } else {
        /* Base64 keys may contain '/': a spec that is no file is tried as a
         * key string first, and only reported as a missing file when it is
         * not one. */
        int e = errno;
        struct cmig_err as_key;
        cmig_err_clear(&as_key);
        rc = cmig_pubkey_parse(&k, spec, strlen(spec), "key string", &as_key);
        if (rc && (strchr(spec, '/') || ends_with(spec, ".pub")))
            return cmig_err_errno(err, CMIG_E_IO, e, "cannot read public key '%s'", spec);
        if (rc) {
            *err = as_key;
            return rc;
        }
    }
    return rc ? rc : cmig_keyring_add(ring, &k, err);
}

int cmig_keyring_add_list(struct cmig_keyring *ring, const char *list, struct cmig_err *err)
{
    char *copy = strdup(list);
    if (!copy)
        return cmig_err_nomem(err);
    int rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t n = strlen(tok);
        while (n > 0 && tok[n - 1] == ' ')
            tok[--n] = '\0';
        if (n)
            rc = cmig_keyring_add_spec(ring, tok, err);
    }
    free(copy);
    return rc;
}
