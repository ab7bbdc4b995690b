/*
 * log.c - one event per line, text or JSON, on stderr.
 *
 * Messages reach this file already free of secrets: URLs pass through
 * redact_url before anything prints them, and drivers never echo a
 * connection string. JSON output escapes every string, so a migration name
 * cannot break a log line.
 */
#include "log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int use_json;
static enum log_level min_level = LOG_INFO;

void log_setup(int json, enum log_level level)
{
    use_json = json;
    min_level = level;
}

int log_json(void)
{
    return use_json;
}

static void json_escape(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static const char *level_name(enum log_level l)
{
    static const char *const names[] = {"debug", "info", "warning", "error"};
    return names[l];
}

/* The line when there is no memory to build it in: from the stack, with
 * the level, the event and the message (JSON keeps that shape), so that
 * an out-of-memory error is still said. */
static void log_fallback(enum log_level level, const char *event, const char *msg)
{
    char line[4096];
    size_t n;
    if (use_json) {
        int k = snprintf(line, sizeof line, "{\"level\":\"%s\",\"event\":\"%.64s\",\"msg\":\"",
                         level_name(level), event);
        n = k > 0 ? (size_t)k : 0;
        for (const unsigned char *p = (const unsigned char *)msg; *p && n + 10 < sizeof line; p++) {
            if (*p == '"' || *p == '\\') {
                line[n++] = '\\';
                line[n++] = (char)*p;
            } else if (*p < 0x20 || *p == 0x7f) {
                n += (size_t)snprintf(line + n, sizeof line - n, "\\u%04x", *p);
            } else {
                line[n++] = (char)*p;
            }
        }
        memcpy(line + n, "\"}\n", 3);
        n += 3;
    } else {
        int k = snprintf(line, sizeof line, "cmig-run: %s%s%s\n",
                         level >= LOG_WARN ? level_name(level) : "", level >= LOG_WARN ? ": " : "",
                         msg);
        n = k < 0 ? 0 : (size_t)k < sizeof line ? (size_t)k : sizeof line - 1;
    }
    ssize_t w = write(2, line, n);
    (void)w;
}

void log_event(enum log_level level, const char *event, const struct log_field *fields,
               const char *fmt, ...)
{
    if (level < min_level)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Build the line in memory so concurrent runners' lines never interleave
     * mid-line on a shared stderr. */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        log_fallback(level, event, msg);
        return;
    }
    if (use_json) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        char ts[40];
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(f, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"event\":", ts,
                (long)(tv.tv_usec / 1000), level_name(level));
        json_escape(f, event);
        for (const struct log_field *fl = fields; fl && fl->key; fl++) {
            fputc(',', f);
            json_escape(f, fl->key);
            fputc(':', f);
            if (fl->str)
                json_escape(f, fl->str);
            else
                fprintf(f, "%lld", fl->num);
        }
        fputs(",\"msg\":", f);
        json_escape(f, msg);
        fputs("}\n", f);
    } else {
        fprintf(f, "cmig-run: %s%s%s\n", level >= LOG_WARN ? level_name(level) : "",
                level >= LOG_WARN ? ": " : "", msg);
    }
    /* A stream that could not grow holds part of the line, or none. */
    if (fclose(f) != 0 || !buf) {
        free(buf);
        log_fallback(level, event, msg);
        return;
    }
    ssize_t w = write(2, buf, len);
    (void)w;
    free(buf);
}

void log_termination(const char *path, const char *msg)
{
    int fd = open(path ? path : "/dev/termination-log", O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return;
    size_t n = strlen(msg);
    if (n > 4000)
        n = 4000; /* Kubernetes keeps at most 4096 bytes */
    ssize_t w = write(fd, msg, n);
    if (w >= 0)
        w = write(fd, "\n", 1);
    (void)w;
    close(fd);
}

/* The keys whose value is a secret: libpq's password and the passphrase of
 * the client's TLS key; MongoDB's passphrase of that key (under its current
 * and its older name) and authMechanismProperties, whose value can carry
 * credentials (AWS_SESSION_TOKEN:...), masked whole. MongoDB reads option
 * names in any case, so they are compared without it; libpq refuses a
 * keyword it does not know, so masking one in another case hides nothing
 * it would use. */
static const char *const secret_keys[] = {"password",
                                          "sslpassword",
                                          "tlscertificatekeyfilepassword",
                                          "sslclientcertificatekeypassword",
                                          "authmechanismproperties",
                                          NULL};

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Whether the len bytes at key name a secret once percent escapes are
 * decoded, as libpq decodes the keys of a URL query ("pass%77ord" is
 * "password" to it). */
static int is_secret_key(const char *key, size_t len)
{
    char k[40];
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = key[i];
        if (ch == '%' && i + 2 < len && hex_value(key[i + 1]) >= 0 && hex_value(key[i + 2]) >= 0) {
            ch = (char)(hex_value(key[i + 1]) * 16 + hex_value(key[i + 2]));
            i += 2;
        }
        if (o + 1 >= sizeof k)
            return 0; /* longer than any secret key */
        k[o++] = ch;
    }
    k[o] = '\0';
    for (const char *const *s = secret_keys; *s; s++)
        if (strcasecmp(k, *s) == 0)
            return 1;
    return 0;
}

/* A stretch of a URL to print as "***": bytes [start, end), maybe none. */
struct span {
    size_t start, end;
};

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

/* The first of the characters in set at or after s, or the end of s.
 * With escapes, a backslash hides the character after it, as libmongoc's
 * URI parser reads it: "p\/w" holds no '/' to it, "a\&b" no '&'. */
static const char *scan_to(const char *s, const char *set, int escapes)
{
    for (; *s; s++) {
        if (escapes && *s == '\\' && s[1]) {
            s++;
            continue;
        }
        if (strchr(set, *s))
            return s;
    }
    return s;
}

/* The secrets of a URL ("scheme://..."): the password of the userinfo, and
 * the value of every secret parameter of the query. Each is found in the
 * URL as given, not in one already partly masked: the '@' that ends the
 * userinfo as taken here may lie inside the query (libpq reads a '?' after
 * the host as the query start whatever follows), and masking the userinfo
 * first would then swallow "?sslpassword=" and leave the rest of its value
 * in plain sight. Returns the number of spans written to sp (room for
 * strlen(url) + 1).
 *
 * Before the first '@' (ahead of any '/') is the userinfo for libpq and
 * libmongoc alike, whatever it holds: a '?' or '&' there starts no
 * parameter, and what follows it is the user name or the password, which
 * the userinfo's span covers. Taken for a parameter, its value would run
 * past that '@' and mask the end of the userinfo with it, and the URL
 * would read otherwise: some later text would become the password.
 *
 * libmongoc (mongodb:// and mongodb+srv://) lets a backslash escape the
 * next character wherever it looks for '/', '@', '&' or '=', so for those
 * schemes the scan skips what a backslash escapes: a userinfo holding
 * "\/" runs on to the '@' after it, and a value holding "\&" runs on
 * to the next '&' that is not escaped. libpq gives a backslash no such
 * meaning in a URL, and reading one there as an escape could move its
 * query start past a secret. */
static size_t url_secrets(const char *url, struct span *sp)
{
    size_t n = 0;
    int escapes = strncmp(url, "mongodb://", 10) == 0 || strncmp(url, "mongodb+srv://", 14) == 0;
    const char *auth = strstr(url, "://") + 3;
    const char *slash = scan_to(auth, "/", escapes);
    /* libpq and libmongoc end the userinfo at its first '@' (libmongoc at
     * the first one not escaped), and read the password from the first
     * ':' before it. */
    const char *first_at = scan_to(auth, "@", escapes);
    if (first_at >= slash)
        first_at = NULL;
    /* Another parser could take the last '@' before the path, as Go's
     * net/url does, and a password typed with a bare '@' in it is cut
     * there: everything from the password up to that last '@' is masked
     * too. The first '@' itself stays, so that the masked URL still reads
     * as the same user and "***" as its password; masked with the text
     * around it, the user name read back could run on into the query. */
    const char *last_at = first_at;
    for (const char *q = first_at ? first_at + 1 : slash; q < slash; q++)
        if (*q == '@')
            last_at = q;
    if (first_at) {
        const char *colon = scan_to(auth, ":", escapes);
        if (colon < first_at) {
            sp[n++] = (struct span){(size_t)(colon + 1 - url), (size_t)(first_at - url)};
            if (last_at > first_at + 1)
                sp[n++] = (struct span){(size_t)(first_at + 1 - url), (size_t)(last_at - url)};
        } else {
            /* No password for either parser, but a ':' between the
             * '@'s makes one for a last-'@' reader. */
            colon = memchr(first_at, ':', (size_t)(last_at - first_at));
            if (colon)
                sp[n++] = (struct span){(size_t)(colon + 1 - url), (size_t)(last_at - url)};
        }
    }
    /* A parameter starts after any '?' or '&' past the first '@' (libpq
     * reads a '?' inside what this takes for the userinfo as the query),
     * and its value runs to the next '&'. */
    const char *from = first_at ? first_at : auth;
    for (const char *p = scan_to(from, "?&", escapes); *p; p = scan_to(p + 1, "?&", escapes)) {
        const char *key = p + 1;
        const char *eq = scan_to(key, "=&?", escapes);
        if (*eq != '=' || !is_secret_key(key, (size_t)(eq - key)))
            continue;
        const char *v = eq + 1;
        sp[n++] = (struct span){(size_t)(v - url), (size_t)(scan_to(v, "&", escapes) - url)};
    }
    return n;
}

/* Writes url to out (room for 3 * strlen(url) + 4 bytes) with each span,
 * once overlapping and touching ones are joined, replaced by "***". */
static void mask_spans(const char *url, struct span *sp, size_t n, char *out)
{
    qsort(sp, n, sizeof *sp, span_cmp);
    size_t i = 0, o = 0, len = strlen(url);
    for (size_t k = 0; k < n;) {
        size_t start = sp[k].start, end = sp[k].end;
        for (k++; k < n && sp[k].start <= end; k++)
            if (sp[k].end > end)
                end = sp[k].end;
        memcpy(out + o, url + i, start - i);
        o += start - i;
        memcpy(out + o, "***", 3);
        o += 3;
        i = end;
    }
    memcpy(out + o, url + i, len - i + 1);
}

static int blank(char ch)
{
    return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

/* Masks the value of every secret key of libpq's key=value form, read
 * the way libpq reads it: blanks between pairs and around '=', a value
 * quoted with '...' or bare up to a blank, a backslash escaping the next
 * character in either. A quoted value stays quoted ('***'), so that the
 * pair after it still starts where it did. Stops at the first thing
 * libpq would refuse, since such a string never connects. */
static void mask_keyword_params(char *s)
{
    char *p = s;
    for (;;) {
        while (blank(*p))
            p++;
        if (!*p)
            return;
        char *key = p;
        while (*p && *p != '=' && !blank(*p))
            p++;
        size_t klen = (size_t)(p - key);
        while (blank(*p))
            p++;
        if (*p != '=')
            return;
        p++;
        while (blank(*p))
            p++;
        char *v = p;
        int quoted = *p == '\'';
        if (quoted)
            p++;
        while (*p) {
            if (*p == '\\') {
                p++;
                if (*p)
                    p++;
            } else if (quoted ? *p == '\'' : blank(*p)) {
                break;
            } else {
                p++;
            }
        }
        if (quoted && *p == '\'')
            p++;
        int secret = 0;
        for (const char *const *k = secret_keys; *k; k++)
            secret |= strlen(*k) == klen && memcmp(key, *k, klen) == 0;
        if (secret) {
            const char *mask = quoted ? "'***'" : "***";
            size_t ml = strlen(mask);
            memmove(v + ml, p, strlen(p) + 1);
            memcpy(v, mask, ml);
            p = v + ml;
        }
    }
}

void redact_url(const char *url, char *out, unsigned long cap)
{
    if (cap == 0)
        return;
    /* Masking grows the text by at most three bytes per secret, and every
     * secret but the userinfo's follows a key of its own: a buffer of
     * three times the length holds the result with room to spare. */
    size_t n = strlen(url), room = 3 * n + 4;
    char *w = malloc(room);
    struct span *sp = strstr(url, "://") ? calloc(n + 1, sizeof *sp) : NULL;
    if (!w || (strstr(url, "://") && !sp)) {
        free(w);
        free(sp);
        snprintf(out, cap, "(database URL)");
        return;
    }
    if (sp) {
        mask_spans(url, sp, url_secrets(url, sp), w);
        free(sp);
    } else {
        memcpy(w, url, n + 1);
        mask_keyword_params(w);
    }
    snprintf(out, cap, "%s", w);
    explicit_bzero(w, room);
    free(w);
}
