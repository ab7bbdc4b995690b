/*
 * log.h - cmig-run's log: one event per line on stderr, as text for people
 * or JSON for log pipelines, each with a stable event name
 * ("migration.applied", "run.finished", ...), and the short failure summary
 * Kubernetes shows from /dev/termination-log.
 */
#ifndef CMIG_RUNNER_LOG_H
#define CMIG_RUNNER_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

struct log_field {
    const char *key; /* NULL ends a field list */
    const char *str; /* a string value, or NULL for an integer */
    long long num;
};

static inline const char *log_nz(const char *s)
{
    return s ? s : "";
}

#define FS(k, v)                                                                                   \
    {                                                                                              \
        (k), log_nz(v), 0                                                                          \
    }
#define FI(k, v)                                                                                   \
    {                                                                                              \
        (k), NULL, (long long)(v)                                                                  \
    }

/* log_event(level, event, fields, fmt, ...): fields is a {NULL}-terminated
 * array (or NULL); the formatted text is the human message. */
void log_event(enum log_level level, const char *event, const struct log_field *fields,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define LOGF(level, event, fmt, ...) log_event(level, event, NULL, fmt, ##__VA_ARGS__)

/* LOGV(level, event, (FS(..), FI(..), ...), fmt, ...): the fields come as one
 * parenthesised macro argument, unwrapped by LOG_FIELDS_ into a local array
 * that ends with the {NULL} terminator. A statement, not an expression. */
#define LOG_FIELDS_(...) __VA_ARGS__
#define LOGV(level, event, fields, fmt, ...)                                                       \
    do {                                                                                           \
        const struct log_field log_fields_[] = {LOG_FIELDS_ fields, {NULL, NULL, 0}};              \
        log_event(level, event, log_fields_, fmt, ##__VA_ARGS__);                                  \
    } while (0)

/* json: JSON lines; min_level: LOG_WARN for -q, LOG_DEBUG for -v. */
void log_setup(int json, enum log_level min_level);
int log_json(void);

/* Writes "msg" to the termination-log file when it exists and is
 * writable (never creates it). path NULL: /dev/termination-log. */
void log_termination(const char *path, const char *msg);

/* Writes url into out with any password replaced by "***". */
void redact_url(const char *url, char *out, unsigned long cap);

#endif
