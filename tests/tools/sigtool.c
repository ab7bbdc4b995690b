/*
 * sigtool.c - a test program over the key and signature code of the format
 * library, so that shell suites can exchange keys and signatures with the
 * real minisign program in both directions.
 *
 *   sigtool genkey PREFIX [PASSWORD]
 *   sigtool sign KEYFILE FILE SIGOUT [PASSWORD] [TRUSTED_COMMENT]
 *   sigtool verify PUBFILE FILE SIGFILE
 *
 * Exit status: 0 success, 1 did not verify (or signing refused the key),
 * 2 usage or I/O error. It exists for tests only and takes passwords on the
 * command line, which a real tool must never do.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmig/err.h"
#include "cmig/keys.h"
#include "cmig/sig.h"

#define FILE_MAX (UINT64_C(1) << 40)

static int fail(const struct cmig_err *err, int status)
{
    fprintf(stderr, "sigtool: error: %s\n", err->msg);
    return status;
}

static int write_file(const char *path, const char *data, size_t len, int mode,
                      struct cmig_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    size_t done = 0;
    int rc = 0;

    if (fd < 0)
        return cmig_err_errno(err, CMIG_E_IO, errno, "'%s': cannot create", path);
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = cmig_err_errno(err, CMIG_E_IO, errno, "'%s': cannot write", path);
            break;
        }
        done += (size_t)w;
    }
    if (close(fd) != 0 && rc == 0)
        rc = cmig_err_errno(err, CMIG_E_IO, errno, "'%s': cannot close", path);
    return rc;
}

static int cmd_genkey(int argc, char **argv)
{
    struct cmig_err err;
    struct cmig_seckey *k = NULL;
    struct cmig_pubkey pub;
    char pubtext[512], path[4096];
    char *sktext = NULL;
    size_t sklen = 0, publen;
    int status = 2;

    cmig_err_clear(&err);
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: sigtool genkey PREFIX [PASSWORD]\n");
        return 2;
    }
    if (cmig_seckey_generate(&k, &err) ||
        cmig_seckey_format(k, argc == 4 ? argv[3] : NULL, &sktext, &sklen, &err))
        goto out;
    cmig_seckey_pubkey(k, &pub);
    publen = cmig_pubkey_format(&pub, pubtext, sizeof pubtext);
    if (publen == 0) {
        cmig_err_set(&err, CMIG_E_INTERNAL, "public key does not fit");
        goto out;
    }
    snprintf(path, sizeof path, "%s.key", argv[2]);
    if (write_file(path, sktext, sklen, 0600, &err))
        goto out;
    snprintf(path, sizeof path, "%s.pub", argv[2]);
    if (write_file(path, pubtext, publen, 0644, &err))
        goto out;
    status = 0;
out:
    cmig_secret_free(sktext);
    cmig_seckey_free(k);
    return status ? fail(&err, status) : 0;
}

static int prehash_path(const char *path, uint8_t hash[CMIG_PREHASH_BYTES], struct cmig_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return cmig_err_errno(err, CMIG_E_IO, errno, "'%s': cannot open", path);
    rc = cmig_prehash_fd(fd, FILE_MAX, hash, NULL, path, err);
    close(fd);
    return rc;
}

static int cmd_sign(int argc, char **argv)
{
    struct cmig_err err;
    struct cmig_seckey *k = NULL;
    uint8_t hash[CMIG_PREHASH_BYTES];
    char *sktext = NULL, *sigtext = NULL, *tc = NULL;
    const char *base;
    size_t sklen = 0, siglen = 0;
    int status = 2;

    cmig_err_clear(&err);
    if (argc < 5 || argc > 7) {
        fprintf(stderr, "usage: sigtool sign KEYFILE FILE SIGOUT [PASSWORD] [TRUSTED_COMMENT]\n");
        return 2;
    }
    if (cmig_secret_read_file(&sktext, &sklen, argv[2], &err))
        goto out;
    if (cmig_seckey_parse(&k, sktext, sklen, argc >= 6 ? argv[5] : NULL, argv[2], &err)) {
        status = 1;
        goto out;
    }
    if (prehash_path(argv[3], hash, &err))
        goto out;
    if (argc == 7) {
        tc = strdup(argv[6]);
    } else {
        /* minisign's default: when, which file, and that it was prehashed */
        base = strrchr(argv[3], '/');
        base = base ? base + 1 : argv[3];
        size_t cap = strlen(base) + 64;
        tc = malloc(cap);
        if (tc)
            snprintf(tc, cap, "timestamp:%" PRIdMAX "\tfile:%s\thashed", (intmax_t)time(NULL),
                     base);
    }
    if (!tc) {
        cmig_err_nomem(&err);
        goto out;
    }
    if (cmig_sig_create(k, hash, NULL, tc, &sigtext, &siglen, &err) ||
        write_file(argv[4], sigtext, siglen, 0644, &err))
        goto out;
    status = 0;
out:
    free(tc);
    free(sigtext);
    cmig_seckey_free(k);
    cmig_secret_free(sktext);
    return status ? fail(&err, status) : 0;
}

static int cmd_verify(int argc, char **argv)
{
    struct cmig_err err;
    struct cmig_pubkey pub;
    struct cmig_sig sig;
    uint8_t hash[CMIG_PREHASH_BYTES];
    char sig_id[17], key_id[17];

    cmig_err_clear(&err);
    if (argc != 5) {
        fprintf(stderr, "usage: sigtool verify PUBFILE FILE SIGFILE\n");
        return 2;
    }
    if (cmig_pubkey_load(&pub, argv[2], &err) || cmig_sig_load(&sig, argv[4], &err))
        return fail(&err, err.code == CMIG_E_IO ? 2 : 1);
    if (memcmp(sig.keyid, pub.id, CMIG_KEYID_BYTES) != 0) {
        cmig_keyid_hex(sig.keyid, sig_id);
        cmig_keyid_hex(pub.id, key_id);
        fprintf(stderr, "sigtool: error: '%s': signed by key id %s, but the public key is %s\n",
                argv[4], sig_id, key_id);
        return 1;
    }
    if (prehash_path(argv[3], hash, &err))
        return fail(&err, err.code == CMIG_E_IO ? 2 : 1);
    if (cmig_sig_verify(&sig, &pub, hash, &err))
        return fail(&err, 1);
    printf("signature verified\ntrusted comment: %s\n", sig.trusted_comment);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "genkey") == 0)
        return cmd_genkey(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "sign") == 0)
        return cmd_sign(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "verify") == 0)
        return cmd_verify(argc, argv);
    fprintf(stderr, "usage: sigtool genkey|sign|verify ...\n");
    return 2;
}
