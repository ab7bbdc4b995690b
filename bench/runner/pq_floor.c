/*
 * pq_floor.c - the least a no-op migration start against PostgreSQL can
 * cost: connect with the URL the runner gets, run one SELECT that reads
 * the bundle's history (the runner's own query, every row fetched and
 * looked at), disconnect. No verification, no lock, no planning: the
 * runner's no-op is judged against this.
 *
 *   pq_floor URL BUNDLE_NAME
 *
 * Exits 0 and prints nothing on success (1 with libpq's message if not),
 * so that its wall time is the floor's and nothing else's.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

static const char Q_HISTORY[] =
    "SELECT version, name, sha256, dirty, floor(extract(epoch FROM applied_at))::bigint, "
    "execution_ms, bundle_version, runner_version FROM cmig_history WHERE bundle = $1 "
    "ORDER BY version";

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: pq_floor URL BUNDLE_NAME\n");
        return 2;
    }
    int rc = 1;
    PGconn *c = PQconnectdb(argv[1]);
    PGresult *res = NULL;
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pq_floor: %s", PQerrorMessage(c));
        goto out;
    }
    const char *params[1] = {argv[2]};
    res = PQexecParams(c, Q_HISTORY, 1, NULL, params, NULL, NULL, 0);
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
