/*
 * sqlite_floor.c - the least a no-op migration start against SQLite can
 * cost: open the database file (read-write, as the runner does), read one
 * row (the bundle's record in cmig_bundles), close.
 *
 *   sqlite_floor PATH BUNDLE_NAME
 *
 * Exits 0 and prints nothing on success, 1 with SQLite's message if not.
 */
#include <sqlite3.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: sqlite_floor PATH BUNDLE_NAME\n");
        return 2;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = 1;
    if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_prepare_v2(db,
                           "SELECT version, manifest_sha256 FROM cmig_bundles WHERE bundle = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, argv[2], -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) &&
        sqlite3_column_bytes(st, 1) == 64)
        rc = 0;
out:
    if (rc)
        fprintf(stderr, "sqlite_floor: %s\n", db ? sqlite3_errmsg(db) : "cannot open");
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
