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

/* The connection keys whose value is a secret: libpq's password, and the
 * passphrase of the client's TLS key (MongoDB keeps its password in the
 * userinfo only). */
static const char *const secret_keys[] = {"password", "sslpassword", NULL};

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
    char k[16];
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
        if (strcmp(k, *s) == 0)
            return 1;
    return 0;
}

/* Masks the value of every secret parameter of a URL query: a parameter
 * starts after any '?' or '&' and its value runs to the next '&', as
 * libpq reads it. */
static void mask_query_params(char *p)
{
    for (; *p; p++) {
        if (p[0] != '?' && p[0] != '&')
            continue;
        char *key = p + 1;
        char *eq = key + strcspn(key, "=&?");
        if (*eq != '=' || !is_secret_key(key, (size_t)(eq - key)))
            continue;
        char *v = eq + 1;
        char *end = v + strcspn(v, "&");
        memmove(v + 3, end, strlen(end) + 1);
        memcpy(v, "***", 3);
        p = v + 2; /* the loop steps past the mask */
    }
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
    /* Masking can only grow the text by a few bytes per password: work in
     * a buffer with room to spare, then copy what fits. */
    size_t n = strlen(url);
    char *w = malloc(2 * n + 64);
    if (!w) {
        snprintf(out, cap, "(database URL)");
        return;
    }
    memcpy(w, url, n + 1);
    char *scheme = strstr(w, "://");
    if (scheme) {
        char *auth = scheme + 3;
        char *slash = strchr(auth, '/');
        char *at = NULL;
        /* The last '@' before the path ends the userinfo: libpq takes the
         * first, so this masks at least what it reads as the password. */
        for (char *q = auth; *q && (!slash || q < slash); q++)
            if (*q == '@')
                at = q;
        if (at) {
            char *colon = memchr(auth, ':', (size_t)(at - auth));
            if (colon) {
                memmove(colon + 4, at, strlen(at) + 1);
                memcpy(colon, ":***", 4);
            }
        }
        /* From the start of the authority, not past the '@': libpq reads
         * a '?' inside what this took for the userinfo as the query. */
        mask_query_params(auth);
    } else {
        mask_keyword_params(w);
    }
    snprintf(out, cap, "%s", w);
    explicit_bzero(w, 2 * n + 64);
    free(w);
}
