/*
 * pq_floor.c - the least a no-op migration start against PostgreSQL can
 * cost: connect with the URL the runner gets, run one SELECT that reads
 * the bundle's history (every row fetched and looked at: the query the
 * runner's full path reads the history with), disconnect. No
 * verification, no lock, no planning: the runner's no-op is judged
 * against this.
 *
 *   pq_floor [--hash FILE] URL BUNDLE_NAME [record]
 *
 * With --hash it first reads FILE once and hashes it with BLAKE2b-512
 * (libsodium's crypto_generichash, the prehash a minisign signature
 * covers): the least any start that verifies a signature over the whole
 * bundle must do before it may trust the bundle, so the no-op against a
 * large bundle is judged against this.
 *
 * With "record" the one SELECT reads the bundle's row in cmig_bundles
 * instead: the least any start can ask the server, whatever the history's
 * length (the runner's no-op reads that row and a count of the history,
 * so with many migrations this is the stricter floor).
 *
 * Exits 0 and prints nothing on success (1 with libpq's message if not),
 * so that its wall time is the floor's and nothing else's.
 */
#include <fcntl.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char Q_HISTORY[] =
    "SELECT version, name, sha256, dirty, floor(extract(epoch FROM applied_at))::bigint, "
    "execution_ms, bundle_version, runner_version FROM cmig_history WHERE bundle = $1 "
    "ORDER BY version";
static const char Q_RECORD[] =
    "SELECT version, manifest_sha256 FROM cmig_bundles WHERE bundle = $1";

/* Reads path once, in large blocks, into a BLAKE2b-512 hash. */
static int hash_file(const char *path)
{
    static unsigned char buf[256 * 1024];
    unsigned char out[crypto_generichash_BYTES_MAX];
    crypto_generichash_state st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        perror(path);
        return -1;
    }
    crypto_generichash_init(&st, NULL, 0, sizeof out);
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        crypto_generichash_update(&st, buf, (size_t)n);
    if (n < 0)
        perror(path);
    close(fd);
    crypto_generichash_final(&st, out, sizeof out);
    return n < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    const char *hash = NULL;
    if (argc > 2 && strcmp(argv[1], "--hash") == 0) {
        hash = argv[2];
        argv += 2;
        argc -= 2;
    }
    int record = argc == 4 && strcmp(argv[3], "record") == 0;
    if (argc != 3 && !record) {
        fprintf(stderr, "usage: pq_floor [--hash FILE] URL BUNDLE_NAME [record]\n");
        return 2;
    }
    if (hash && (sodium_init() < 0 || hash_file(hash)))
        return 1;
    int rc = 1;
    PGconn *c = PQconnectdb(argv[1]);
    PGresult *res = NULL;
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pq_floor: %s", PQerrorMessage(c));
        goto out;
    }
    const char *params[1] = {argv[2]};
    res = PQexecParams(c, record ? Q_RECORD : Q_HISTORY, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "pq_floor: %s", PQerrorMessage(c));
        goto out;
    }
    /* Touch every value, as a reader of the history would. */
    size_t sum = 0;
    int rows = PQntuples(res), cols = PQnfields(res);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            sum += (size_t)PQgetlength(res, i, j) + (unsigned char)PQgetvalue(res, i, j)[0];
    rc = rows > 0 && sum > 0 ? 0 : 1;
    if (rc)
        fprintf(stderr, "pq_floor: no history rows for '%s'\n", argv[2]);
out:
    PQclear(res);
    PQfinish(c);
    return rc;
}
