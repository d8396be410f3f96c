/*
 * log: one logging macro per level, checked before formatting.
 *
 * Lines go to stderr as
 *   2026-11-24T13:40:00.123Z chatmem-ingest[4242] info: message
 * or as JSON (cm_log_format).
 * Messages start lowercase, quote the subject and say what failed. Never log
 * message content or secrets above debug.
 */
#ifndef CM_LOG_H
#define CM_LOG_H

typedef enum cm_log_level {
        CM_LOG_ERROR = 0,
        CM_LOG_WARN,
        CM_LOG_INFO,
        CM_LOG_DEBUG,
} cm_log_level_t;

extern cm_log_level_t cm_log_level;

/* Line format: text (above), or one JSON object per line:
 *   {"ts":"2026-11-24T13:40:00.123Z","level":"info",
 *    "prog":"chatmem-ingest","pid":4242,"msg":"..."}
 * (log_format = "json", for log shippers). */
typedef enum cm_log_format {
        CM_LOG_TEXT = 0,
        CM_LOG_JSON,
} cm_log_format_t;

extern cm_log_format_t cm_log_format;

/* Parses "text" or "json". Returns 0, or -1 if unknown. */
int cm_log_format_parse(const char *s, cm_log_format_t *out);

/* Sets the program name shown in each line (not copied: pass a literal or
 * argv[0]). Cannot fail. */
void cm_log_init(const char *progname);

/* Parses "error", "warn", "info" or "debug". Returns 0, or -1 if unknown. */
int cm_log_level_parse(const char *s, cm_log_level_t *out);

void cm_log_write(cm_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define cm_log(level, ...)                                                     \
        do {                                                                   \
                if ((level) <= cm_log_level)                                   \
                        cm_log_write((level), __VA_ARGS__);                    \
        } while (0)

#define cm_error(...) cm_log(CM_LOG_ERROR, __VA_ARGS__)
#define cm_warn(...)  cm_log(CM_LOG_WARN, __VA_ARGS__)
#define cm_info(...)  cm_log(CM_LOG_INFO, __VA_ARGS__)
#define cm_debug(...) cm_log(CM_LOG_DEBUG, __VA_ARGS__)

#endif
