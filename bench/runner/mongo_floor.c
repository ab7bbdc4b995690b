/*
 * mongo_floor.c - the least a no-op migration start against a MongoDB-wire
 * server can cost: connect with the URL the runner gets (libmongoc's
 * handshake), run one find that reads the version and dirty flag of the
 * bundle's history documents (what the runner's no-op reads of them; every
 * document fetched and looked at), disconnect. No verification, no
 * lock, no planning: the runner's MongoDB no-op is judged against this.
 *
 *   mongo_floor URL BUNDLE_NAME [record]
 *
 * With "record" the one find reads the bundle's record document instead
 * (one small document): the least any start can ask a server, for servers
 * that ignore find's projection (jongodb does, and then sends every whole
 * history document).
 *
 * The URL names the database (mongodb://host:port/DB?...). Exits 0 and
 * prints nothing on success (1 with libmongoc's message if not), so that
 * its wall time is the floor's and nothing else's.
 */
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    int record = argc == 4 && strcmp(argv[3], "record") == 0;
    if (argc != 3 && !record) {
        fprintf(stderr, "usage: mongo_floor URL BUNDLE_NAME [record]\n");
        return 2;
    }
    int rc = 1;
    bson_error_t be;
    /* No MONGOC_DISABLE_SHM here: libmongoc initialised itself before
     * main. bench/lib.sh exports it, so that the floor, like cmig-run,
     * makes no counter file in /dev/shm. */
    mongoc_init();
    /* libmongoc logs a warning at exit on servers without endSessions; the
     * floor stays silent, as its callers expect (the attempt is still made). */
    mongoc_log_set_handler(NULL, NULL);
    mongoc_uri_t *uri = mongoc_uri_new_with_error(argv[1], &be);
    mongoc_client_t *cl = uri ? mongoc_client_new_from_uri_with_error(uri, &be) : NULL;
    if (!cl) {
        fprintf(stderr, "mongo_floor: %s\n", be.message);
        goto out;
    }
    mongoc_client_set_error_api(cl, MONGOC_ERROR_API_VERSION_2);
    const char *db = mongoc_uri_get_database(uri);
    mongoc_collection_t *coll = mongoc_client_get_collection(
        cl, db ? db : "test", record ? "cmig_bundles" : "cmig_history");
    bson_t *filter = BCON_NEW("bundle", BCON_UTF8(argv[2]));
    bson_t *opts = BCON_NEW("batchSize", BCON_INT32(100000), "projection", "{", "_id",
                            BCON_INT32(0), "version", BCON_INT32(1), "dirty", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    const bson_t *doc;
    size_t n = 0, sum = 0;
    /* Touch every document, as a reader of the history would. */
    while (mongoc_cursor_next(cur, &doc)) {
        n++;
        sum += doc->len + bson_get_data(doc)[4];
    }
    if (mongoc_cursor_error(cur, &be))
        fprintf(stderr, "mongo_floor: %s\n", be.message);
    else if (n == 0)
        fprintf(stderr, "mongo_floor: no history documents for '%s'\n", argv[2]);
    else
        rc = sum > 0 ? 0 : 1;
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);
out:
    mongoc_client_destroy(cl);
    mongoc_uri_destroy(uri);
    mongoc_cleanup();
    return rc;
}
