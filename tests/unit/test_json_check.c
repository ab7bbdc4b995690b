/*
 * test_json_check.c - parsing MongoDB migrations (JSON arrays of commands)
 * with libbson: what is accepted, what is refused and with which position,
 * and where each command starts in the file.
 */
#include "cmig/jsoncheck.h"

#include <stdlib.h>
#include <string.h>

#include "harness.h"

static int parse(struct cmig_json_migration *m, const char *s, const char *what, unsigned *line,
                 unsigned *col, struct cmig_err *err)
{
    cmig_err_clear(err);
    return cmig_json_migration_parse(m, s, strlen(s), what, line, col, err);
}

static int check(const char *s, struct cmig_err *err)
{
    cmig_err_clear(err);
    return cmig_json_migration_check(s, strlen(s), "m.up.json", err);
}

TEST(accepts_commands_in_extended_json)
{
    struct cmig_json_migration m;
    struct cmig_err err;
    const char *s = "[\n"
                    "  {\"insert\": \"t\", \"documents\": [{\"_id\": {\"$oid\": "
                    "\"65a1b2c3d4e5f60718293a4b\"}, \"n\": {\"$numberLong\": \"5\"}}]},\n"
                    "  {\"update\": \"t\", \"updates\": [{\"q\": {}, \"u\": {\"$set\": {\"at\": "
                    "{\"$date\": \"2024-01-02T03:04:05Z\"}}}}]}\n"
                    "]\n";
    CHECK_EQ_INT(parse(&m, s, "a.json", NULL, NULL, &err), 0);
    CHECK_EQ_INT(m.n, 2);
    CHECK(m.bson != NULL && m.bson_len > 5);
    CHECK_EQ_INT(m.offset[0], 4);
    CHECK(m.offset[1] > m.offset[0] && s[m.offset[1]] == '{');
    unsigned line = 0, col = 0;
    cmig_json_line_col(s, strlen(s), m.offset[1], &line, &col);
    CHECK_EQ_INT(line, 3);
    CHECK_EQ_INT(col, 3);
    cmig_json_migration_free(&m);
    CHECK(m.bson == NULL && m.offset == NULL);
}

TEST(empty_array_and_whitespace)
{
    struct cmig_json_migration m;
    struct cmig_err err;
    CHECK_EQ_INT(parse(&m, " \n[ ]\n\n", NULL, NULL, NULL, &err), 0);
    CHECK_EQ_INT(m.n, 0);
    cmig_json_migration_free(&m);
}

TEST(brackets_inside_strings_do_not_move_offsets)
{
    struct cmig_json_migration m;
    struct cmig_err err;
    const char *s = "[{\"a\": \"],[{\\\"\"}, {\"b\": [1, {\"c\": \"}\"}]}]";
    CHECK_EQ_INT(parse(&m, s, NULL, NULL, NULL, &err), 0);
    CHECK_EQ_INT(m.n, 2);
    CHECK_EQ_INT(m.offset[0], 1);
    CHECK_STR(s + m.offset[1], "{\"b\": [1, {\"c\": \"}\"}]}]");
    cmig_json_migration_free(&m);
}

TEST(syntax_error_has_file_line_and_column)
{
    struct cmig_json_migration m;
    struct cmig_err err;
    unsigned line = 0, col = 0;
    const char *s = "[\n  {\"ping\": 1},\n  {\"b\": }\n]";
    CHECK_EQ_INT(parse(&m, s, "2_x.up.json", &line, &col, &err), CMIG_E_INPUT);
    CHECK_EQ_INT(line, 3);
    CHECK_EQ_INT(col, 9);
    CHECK_CONTAINS(err.msg, "'2_x.up.json': line 3, column 9: invalid MongoDB extended JSON: ");
    CHECK_CONTAINS(err.msg, "Got parse error at");
    CHECK_STR(err.native, "bson:1.1");
    CHECK(m.bson == NULL);
    /* Without a file name the position is left to the caller. */
    CHECK_EQ_INT(parse(&m, s, NULL, &line, &col, &err), CMIG_E_INPUT);
    CHECK(strncmp(err.msg, "invalid MongoDB extended JSON: ", 31) == 0);
    CHECK_EQ_INT(line, 3);
}

TEST(refuses_what_is_not_one_array_of_objects)
{
    struct cmig_err err;
    CHECK_EQ_INT(check("", &err), CMIG_E_INPUT);
    CHECK_CONTAINS(err.msg, "empty file");
    CHECK_EQ_INT(check("  \n ", &err), CMIG_E_INPUT);
    CHECK_EQ_INT(check("{\"ping\": 1}", &err), CMIG_E_INPUT);
    CHECK_CONTAINS(err.msg, "must be a JSON array of database commands");
    CHECK_EQ_INT(check("[{\"ping\": 1}] [{\"ping\": 1}]", &err), CMIG_E_INPUT);
    CHECK_EQ_INT(check("[{\"ping\": 1}] x", &err), CMIG_E_INPUT);
    /* A last token cut short by the end of the file (found by fuzz_json). */
    CHECK_EQ_INT(check("[\n],n", &err), CMIG_E_INPUT);
    CHECK_EQ_INT(check("[{\"ping\": 1}],tru", &err), CMIG_E_INPUT);
    CHECK_EQ_INT(check("[{\"ping\": 1}", &err), CMIG_E_INPUT);
    CHECK_EQ_INT(check("[{\"ping\": 1}, 2]", &err), CMIG_E_INPUT);
    CHECK_CONTAINS(err.msg, "line 1, column 15: command at index 1 is a number, not a JSON object");
    CHECK_EQ_INT(check("[{\"ping\": 1}, [1]]", &err), CMIG_E_INPUT);
    CHECK_CONTAINS(err.msg, "command at index 1 is an array");
    CHECK_EQ_INT(check("[{}]", &err), CMIG_E_INPUT);
    CHECK_CONTAINS(err.msg, "command at index 0 is an empty object");
    CHECK_EQ_INT(check("[{\"a\": {\"$type\": \"date\"}}]", &err), CMIG_E_INPUT);
    CHECK_CONTAINS(err.msg, "\"$type\"");
    CHECK_EQ_INT(check("[{\"a\": {\"$oid\": \"zz\"}}]", &err), CMIG_E_INPUT);
}

TEST(nul_bytes_and_control_characters)
{
    struct cmig_json_migration m;
    struct cmig_err err;
    static const char with_nul[] = "[{\"ping\": 1}]\0[{\"drop\": \"x\"}]";
    cmig_err_clear(&err);
    CHECK_EQ_INT(
        cmig_json_migration_parse(&m, with_nul, sizeof with_nul - 1, "n.json", NULL, NULL, &err),
        CMIG_E_INPUT);
    CHECK_CONTAINS(err.msg, "NUL byte");
    /* libbson quotes the offending byte: it is shown as '?'. */
    CHECK_EQ_INT(check("[{\"a\": \x01}]", &err), CMIG_E_INPUT);
    for (const char *p = err.msg; *p; p++)
        CHECK((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
}

TEST(not_nul_terminated)
{
    struct cmig_json_migration m;
    struct cmig_err err;
    char *buf = malloc(13);
    CHECK(buf != NULL);
    if (!buf)
        return;
    memcpy(buf, "[{\"ping\": 1}]", 13);
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_json_migration_parse(&m, buf, 13, NULL, NULL, NULL, &err), 0);
    CHECK_EQ_INT(m.n, 1);
    cmig_json_migration_free(&m);
    cmig_err_clear(&err);
    CHECK_EQ_INT(cmig_json_migration_parse(&m, buf, 12, NULL, NULL, NULL, &err), CMIG_E_INPUT);
    free(buf);
}

TEST(line_col_counts_characters)
{
    const char *s = "ab\n\xc3\xa9x";
    unsigned line = 0, col = 0;
    cmig_json_line_col(s, strlen(s), 5, &line, &col);
    CHECK_EQ_INT(line, 2);
    CHECK_EQ_INT(col, 2);
    cmig_json_line_col(s, strlen(s), 999, &line, &col);
    CHECK_EQ_INT(line, 2);
    CHECK_EQ_INT(col, 3);
}

int main(void)
{
    SUITE("json_check");
    RUN(accepts_commands_in_extended_json);
    RUN(empty_array_and_whitespace);
    RUN(brackets_inside_strings_do_not_move_offsets);
    RUN(syntax_error_has_file_line_and_column);
    RUN(refuses_what_is_not_one_array_of_objects);
    RUN(nul_bytes_and_control_characters);
    RUN(not_nul_terminated);
    RUN(line_col_counts_characters);
    return harness_done();
}
