/*
 * srcdir_sections.c - splitting one migration file into its up and down
 * sections, the way goose and dbmate read their own files.
 *
 * Invariants: one pass over the bytes, linear time, no allocation, no read
 * past data+len (data need not be NUL-terminated); on success every
 * present section lies inside the data, the up section comes first, and
 * the marker lines themselves (with their line terminators) are in
 * neither. Anything the tool itself would refuse, or would run
 * differently from how cmig would run it, is an error that names the file
 * and the line, never a silent guess.
 *
 * goose (internal/sqlparser): a line is an annotation when, without its
 * leading blanks, it starts with "--" and holds "+goose". It must start
 * at column 1; with every "--" and the first "+goose" removed and blanks
 * trimmed, what is left must be one of Up, Down, StatementBegin,
 * StatementEnd, NO TRANSACTION, ENVSUB ON, ENVSUB OFF, in any letter case.
 * Before "-- +goose Up" only blank and comment lines may appear. "NO
 * TRANSACTION" anywhere makes both directions non-transactional.
 * StatementBegin/StatementEnd must pair up inside a section; they stay in
 * the section text, where the SQL lexer honours them. ENVSUB ON is refused:
 * cmig does not substitute environment variables, so the file would run
 * differently. Only ASCII blanks are trimmed (goose also trims Unicode
 * spaces), and an annotation line longer than ANN_MAX once its dashes are
 * removed is refused rather than parsed: both cases only ever turn a
 * strange file into an error.
 *
 * dbmate (pkg/dbmate/migration.go): a marker is "--", optional blanks,
 * "migrate:up" or "migrate:down" at the start of a line, then blanks and
 * options ("transaction:false"). dbmate ignores options it does not know;
 * cmig refuses them so that a typo cannot silently keep a transaction.
 * Before "-- migrate:up" only blank and comment lines may appear. dbmate 2
 * requires a down marker (which may be empty); cmig treats a missing one
 * as "no down migration", as older dbmate did. dbmate 2 also allows
 * several up/down pairs in one file; cmig reads exactly one pair.
 */
#include <limits.h>
#include <string.h>

#include "cmig/srcdir.h"
#include "srcdir_int.h"

/* Longest goose annotation line (after removing its "--") that is parsed. */
#define ANN_MAX 256

static int blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Go's regexp \s: no vertical tab. */
static int re_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f';
}

static int has_goose(const char *s, size_t n)
{
    static const char pat[] = "+goose";
    /* "+goose" has no border (no proper prefix that is also a suffix), so
     * restarting after a mismatch never misses a match: linear time. */
    for (size_t i = 0; i + 6 <= n; i++)
        if (s[i] == '+' && memcmp(s + i, pat, 6) == 0)
            return 1;
    return 0;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int equal_fold(const char *a, size_t n, const char *b)
{
    size_t m = strlen(b);
    if (n != m)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

enum cmig_goose_ann cmig_goose_annotation(const char *line, size_t n)
{
    size_t i = 0;
    while (i < n && blank((unsigned char)line[i]))
        i++;
    if (n - i < 2 || line[i] != '-' || line[i + 1] != '-' || !has_goose(line, n))
        return CMIG_GOOSE_NONE;
    if (line[0] == ' ' || line[0] == '\t')
        return CMIG_GOOSE_INDENTED;

    /* Remove every "--" (non-overlapping, left to right), as goose does. */
    char buf[ANN_MAX];
    size_t bl = 0;
    for (size_t k = 0; k < n;) {
        if (line[k] == '-' && k + 1 < n && line[k + 1] == '-') {
            k += 2;
            continue;
        }
        if (bl == sizeof buf)
            return CMIG_GOOSE_UNKNOWN;
        buf[bl++] = line[k++];
    }
    /* Remove the first "+goose". */
    for (size_t k = 0; k + 6 <= bl; k++) {
        if (memcmp(buf + k, "+goose", 6) == 0) {
            memmove(buf + k, buf + k + 6, bl - k - 6);
            bl -= 6;
            break;
        }
    }
    size_t a = 0, b = bl;
    while (a < b && blank((unsigned char)buf[a]))
        a++;
    while (b > a && blank((unsigned char)buf[b - 1]))
        b--;
    static const struct {
        const char *word;
        enum cmig_goose_ann ann;
    } words[] = {
        {"Up", CMIG_GOOSE_UP},
        {"Down", CMIG_GOOSE_DOWN},
        {"StatementBegin", CMIG_GOOSE_STMT_BEGIN},
        {"StatementEnd", CMIG_GOOSE_STMT_END},
        {"NO TRANSACTION", CMIG_GOOSE_NO_TX},
        {"ENVSUB ON", CMIG_GOOSE_ENVSUB_ON},
        {"ENVSUB OFF", CMIG_GOOSE_ENVSUB_OFF},
    };
    for (size_t w = 0; w < sizeof words / sizeof words[0]; w++)
        if (equal_fold(buf + a, b - a, words[w].word))
            return words[w].ann;
    return CMIG_GOOSE_UNKNOWN;
}

enum cmig_dbmate_marker cmig_dbmate_marker(const char *line, size_t n, size_t *opt)
{
    if (n < 2 || line[0] != '-' || line[1] != '-')
        return CMIG_DBMATE_NONE;
    size_t i = 2;
    while (i < n && re_space((unsigned char)line[i]))
        i++;
    if (n - i < 8 || memcmp(line + i, "migrate:", 8) != 0)
        return CMIG_DBMATE_NONE;
    i += 8;
    enum cmig_dbmate_marker m;
    if (n - i >= 4 && memcmp(line + i, "down", 4) == 0) {
        m = CMIG_DBMATE_DOWN;
        i += 4;
    } else if (n - i >= 2 && memcmp(line + i, "up", 2) == 0) {
        m = CMIG_DBMATE_UP;
        i += 2;
    } else {
        return CMIG_DBMATE_NONE;
    }
    /* "migrate:upx" or "migrate:up:slave" is not the up marker. */
    if (i < n && !re_space((unsigned char)line[i]))
        return CMIG_DBMATE_NONE;
    if (opt)
        *opt = i;
    return m;
}

/* The line being looked at: [start, end) without its terminator (a
 * trailing CR is dropped too), next is where the following line starts. */
struct line {
    size_t start, end, next;
    unsigned no;
};

static void next_line(const char *data, size_t len, size_t pos, struct line *l)
{
    const char *nl = memchr(data + pos, '\n', len - pos);
    size_t end = nl ? (size_t)(nl - data) : len;
    l->start = pos;
    l->next = nl ? end + 1 : len;
    if (end > pos && data[end - 1] == '\r')
        end--;
    l->end = end;
}

static void open_section(struct cmig_section *s, const struct line *l)
{
    s->present = 1;
    s->offset = l->next;
    s->len = 0;
    s->line = l->no < UINT_MAX ? l->no + 1 : l->no;
}

static void close_section(struct cmig_section *s, size_t end)
{
    if (s->present)
        s->len = end - s->offset;
}

/* Whether a line before the first marker is allowed there: blank, or a
 * "--" comment (both tools ignore those and refuse anything else). goose
 * trims with Go's TrimSpace, dbmate matches with regexp's \s: they differ
 * on vertical tab. */
static int preamble_ok(const char *p, size_t n, int (*space)(unsigned char))
{
    size_t i = 0;
    while (i < n && space((unsigned char)p[i]))
        i++;
    return i == n || (n - i >= 2 && p[i] == '-' && p[i + 1] == '-');
}

static int goose_sections(const char *file, const char *data, size_t len, struct cmig_section *up,
                          struct cmig_section *down, struct cmig_err *err)
{
    enum { START, UP, DOWN } state = START;
    int in_stmt = 0, no_tx = 0;
    unsigned stmt_line = 0;
    struct line l = {0, 0, 0, 0};
    for (size_t pos = 0; pos < len; pos = l.next) {
        next_line(data, len, pos, &l);
        l.no = l.no < UINT_MAX ? l.no + 1 : l.no;
        const char *p = data + l.start;
        size_t n = l.end - l.start;
        switch (cmig_goose_annotation(p, n)) {
        case CMIG_GOOSE_NONE:
            if (state == START && !preamble_ok(p, n, blank))
                return cmig_err_set(err, CMIG_E_INPUT,
                                    "'%s': line %u: statement before '-- +goose Up'", file, l.no);
            break;
        case CMIG_GOOSE_UP:
            if (state != START)
                return cmig_err_set(err, CMIG_E_INPUT,
                                    "'%s': line %u: duplicate '-- +goose Up' annotation", file,
                                    l.no);
            state = UP;
            open_section(up, &l);
            break;
        case CMIG_GOOSE_DOWN:
            if (state == START)
                return cmig_err_set(err, CMIG_E_INPUT,
                                    "'%s': line %u: '-- +goose Down' before '-- +goose Up'", file,
                                    l.no);
            if (state == DOWN)
                return cmig_err_set(err, CMIG_E_INPUT,
                                    "'%s': line %u: duplicate '-- +goose Down' annotation", file,
                                    l.no);
            if (in_stmt)
                return cmig_err_set(err, CMIG_E_INPUT,
                                    "'%s': line %u: '-- +goose Down' inside the "
                                    "'-- +goose StatementBegin' block of line %u",
                                    file, l.no, stmt_line);
            close_section(up, l.start);
            state = DOWN;
            open_section(down, &l);
            break;
        case CMIG_GOOSE_STMT_BEGIN:
            if (state == START)
                return cmig_err_set(err, CMIG_E_INPUT,
                                    "'%s': line %u: '-- +goose StatementBegin' before "
                                    "'-- +goose Up'",
                                    file, l.no);
            if (in_stmt)
                return cmig_err_set(err, CMIG_E_INPUT,
                                    "'%s': line %u: '-- +goose StatementBegin' inside the "
                                    "block of line %u",
                                    file, l.no, stmt_line);
            in_stmt = 1;
            stmt_line = l.no;
            break;
        case CMIG_GOOSE_STMT_END:
            if (!in_stmt)
                return cmig_err_set(err, CMIG_E_INPUT,
                                    "'%s': line %u: '-- +goose StatementEnd' without "
                                    "'-- +goose StatementBegin'",
                                    file, l.no);
            in_stmt = 0;
            break;
        case CMIG_GOOSE_NO_TX:
            no_tx = 1;
            break;
        case CMIG_GOOSE_ENVSUB_OFF:
            break;
        case CMIG_GOOSE_ENVSUB_ON:
            return cmig_err_set(err, CMIG_E_INPUT,
                                "'%s': line %u: '-- +goose ENVSUB ON' is not supported "
                                "(cmig does not substitute environment variables)",
                                file, l.no);
        case CMIG_GOOSE_INDENTED:
            return cmig_err_set(err, CMIG_E_INPUT,
                                "'%s': line %u: goose annotation must start at the beginning "
                                "of the line",
                                file, l.no);
        case CMIG_GOOSE_UNKNOWN: {
            char shown[64];
            cmig_escape_name(shown, sizeof shown, p, n);
            return cmig_err_set(err, CMIG_E_INPUT, "'%s': line %u: unknown goose annotation '%s'",
                                file, l.no, shown);
        }
        }
    }
    if (state == START)
        return cmig_err_set(err, CMIG_E_INPUT, "'%s': no '-- +goose Up' annotation", file);
    if (in_stmt)
        return cmig_err_set(err, CMIG_E_INPUT,
                            "'%s': line %u: '-- +goose StatementBegin' without "
                            "'-- +goose StatementEnd'",
                            file, stmt_line);
    if (state == UP)
        close_section(up, len);
    else
        close_section(down, len);
    int tx = no_tx ? (int)CMIG_TX_NONE : -1;
    up->tx_override = tx;
    if (down->present)
        down->tx_override = tx;
    return 0;
}

/* Reads the options after a dbmate marker into *tx (-1 when none). */
static int dbmate_options(const char *file, unsigned lineno, const char *p, size_t n, int *tx,
                          struct cmig_err *err)
{
    *tx = -1;
    size_t i = 0;
    while (i < n) {
        while (i < n && re_space((unsigned char)p[i]))
            i++;
        size_t s = i;
        while (i < n && !re_space((unsigned char)p[i]))
            i++;
        if (s == i)
            break;
        const char *tok = p + s;
        size_t tl = i - s;
        if (tl == 17 && memcmp(tok, "transaction:false", 17) == 0) {
            *tx = CMIG_TX_NONE;
        } else if (tl == 16 && memcmp(tok, "transaction:true", 16) == 0) {
            *tx = CMIG_TX_TRANSACTION;
        } else {
            char shown[64];
            cmig_escape_name(shown, sizeof shown, tok, tl);
            return cmig_err_set(err, CMIG_E_INPUT,
                                "'%s': line %u: unknown dbmate option '%s' (cmig knows "
                                "'transaction:false' and 'transaction:true')",
                                file, lineno, shown);
        }
    }
    return 0;
}

static int dbmate_sections(const char *file, const char *data, size_t len, struct cmig_section *up,
                           struct cmig_section *down, struct cmig_err *err)
{
    enum { START, UP, DOWN } state = START;
    unsigned up_line = 0;
    struct line l = {0, 0, 0, 0};
    for (size_t pos = 0; pos < len; pos = l.next) {
        next_line(data, len, pos, &l);
        l.no = l.no < UINT_MAX ? l.no + 1 : l.no;
        const char *p = data + l.start;
        size_t n = l.end - l.start;
        size_t opt = 0;
        enum cmig_dbmate_marker m = cmig_dbmate_marker(p, n, &opt);
        if (m == CMIG_DBMATE_NONE) {
            if (state == START && !preamble_ok(p, n, re_space))
                return cmig_err_set(err, CMIG_E_INPUT,
                                    "'%s': line %u: statement before '-- migrate:up'", file, l.no);
            continue;
        }
        int tx, rc;
        if ((rc = dbmate_options(file, l.no, p + opt, n - opt, &tx, err)))
            return rc;
        if (m == CMIG_DBMATE_UP) {
            if (state != START)
                return cmig_err_set(err, CMIG_E_INPUT,
                                    "'%s': line %u: second '-- migrate:up' block (the first is "
                                    "on line %u; cmig reads one up and one down block per file)",
                                    file, l.no, up_line);
            state = UP;
            up_line = l.no;
            open_section(up, &l);
            up->tx_override = tx;
        } else {
            if (state == START)
                return cmig_err_set(err, CMIG_E_INPUT,
                                    "'%s': line %u: '-- migrate:down' before '-- migrate:up'", file,
                                    l.no);
            if (state == DOWN)
                return cmig_err_set(err, CMIG_E_INPUT,
                                    "'%s': line %u: duplicate '-- migrate:down' block", file, l.no);
            close_section(up, l.start);
            state = DOWN;
            open_section(down, &l);
            down->tx_override = tx;
        }
    }
    if (state == START)
        return cmig_err_set(err, CMIG_E_INPUT, "'%s': no '-- migrate:up' block", file);
    if (state == UP)
        close_section(up, len);
    else
        close_section(down, len);
    return 0;
}

static void section_clear(struct cmig_section *s)
{
    s->present = 0;
    s->offset = 0;
    s->len = 0;
    s->line = 0;
    s->tx_override = -1;
}

int cmig_srcdir_sections(enum cmig_dir_format format, const char *file, const char *data,
                         size_t len, int is_down, struct cmig_section *up,
                         struct cmig_section *down, struct cmig_err *err)
{
    if (!up || !down)
        return cmig_err_set(err, CMIG_E_USAGE, "cmig_srcdir_sections: no output");
    section_clear(up);
    section_clear(down);
    if (!file)
        file = "(input)";
    if (!data && len != 0)
        return cmig_err_set(err, CMIG_E_USAGE, "'%s': no data", file);
    if (!data)
        data = "";
    switch (format) {
    case CMIG_DIR_GOLANG_MIGRATE:
    case CMIG_DIR_FLYWAY: {
        /* One file, one direction: the SQL lexer looks for annotations. */
        struct cmig_section *s = is_down ? down : up;
        s->present = 1;
        s->offset = 0;
        s->len = len;
        s->line = 1;
        return 0;
    }
    case CMIG_DIR_GOOSE:
    case CMIG_DIR_DBMATE: {
        int rc = format == CMIG_DIR_GOOSE ? goose_sections(file, data, len, up, down, err)
                                          : dbmate_sections(file, data, len, up, down, err);
        if (rc) {
            section_clear(up);
            section_clear(down);
        }
        return rc;
    }
    case CMIG_DIR_AUTO:
        break;
    }
    return cmig_err_set(err, CMIG_E_USAGE,
                        "'%s': the directory format must be known to split a file", file);
}
