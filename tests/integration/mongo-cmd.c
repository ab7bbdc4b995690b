/*
 * mongo-cmd.c - runs database commands for the MongoDB integration tests,
 * which have no mongo shell to lean on.
 *
 *   mongo-cmd URL DB COMMAND_JSON...
 *
 * Each command (MongoDB extended JSON) runs on database DB of the server
 * at URL; its reply is printed as one line of relaxed extended JSON, so
 * that jq can take it apart. A find's documents are all in the reply's
 * firstBatch (the batch size is raised for that). Exit 0 when every
 * command succeeded (ok: 1 and no writeErrors), 1 when one failed (the
 * rest still run), 2 on a usage or connection error. Test code only: the
 * URL is printed nowhere.
 */
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    int status = 0;
    bson_error_t be;
    if (argc < 4) {
        fprintf(stderr, "usage: mongo-cmd URL DB COMMAND_JSON...\n");
        return 2;
    }
    /* No MONGOC_DISABLE_SHM here: libmongoc initialised itself before
     * main. mongo_cmd (lib-mongo.sh) sets it in the environment. */
    mongoc_init();
    mongoc_log_set_handler(NULL, NULL);
    mongoc_uri_t *uri = mongoc_uri_new_with_error(argv[1], &be);
    if (!uri) {
        fprintf(stderr, "mongo-cmd: invalid URL\n");
        mongoc_cleanup();
        return 2;
    }
    mongoc_client_t *cl = mongoc_client_new_from_uri(uri);
    if (!cl) {
        fprintf(stderr, "mongo-cmd: cannot create a client\n");
        mongoc_uri_destroy(uri);
        mongoc_cleanup();
        return 2;
    }
    mongoc_client_set_error_api(cl, MONGOC_ERROR_API_VERSION_2);
    for (int i = 3; i < argc; i++) {
        bson_t cmd, reply;
        if (!bson_init_from_json(&cmd, argv[i], -1, &be)) {
            fprintf(stderr, "mongo-cmd: command %d: %s\n", i - 2, be.message);
            status = 2;
            break;
        }
        bson_iter_t it;
        if (bson_iter_init(&it, &cmd) && bson_iter_next(&it) &&
            strcmp(bson_iter_key(&it), "find") == 0 && !bson_has_field(&cmd, "batchSize"))
            BSON_APPEND_INT32(&cmd, "batchSize", 100000);
        int ok = mongoc_client_command_with_opts(cl, argv[2], &cmd, NULL, NULL, &reply, &be);
        if (ok && bson_has_field(&reply, "writeErrors"))
            ok = 0;
        if (!ok && bson_empty(&reply)) {
            fprintf(stderr, "mongo-cmd: %s\n", be.message);
            status = 2;
        } else if (!ok && status == 0) {
            status = 1;
        }
        char *j = bson_as_relaxed_extended_json(&reply, NULL);
        printf("%s\n", j ? j : "{}");
        bson_free(j);
        bson_destroy(&reply);
        bson_destroy(&cmd);
    }
    mongoc_client_destroy(cl);
    mongoc_uri_destroy(uri);
    mongoc_cleanup();
    return status;
}
