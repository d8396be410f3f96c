#include "log.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "text.h"

cm_log_level_t cm_log_level = CM_LOG_INFO;
cm_log_format_t cm_log_format = CM_LOG_TEXT;
static const char *log_prog = "chatmem";

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void cm_log_init(const char *progname)
{
        const char *slash;

        if (!progname)
                return;
        slash = strrchr(progname, '/');
        log_prog = slash ? slash + 1 : progname;
}

int cm_log_level_parse(const char *s, cm_log_level_t *out)
{
        size_t i;

        for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
                if (s && !strcmp(s, level_names[i])) {
                        *out = (cm_log_level_t)i;
                        return 0;
                }
        }
        return -1;
}

int cm_log_format_parse(const char *s, cm_log_format_t *out)
{
        if (s && !strcmp(s, "text"))
                *out = CM_LOG_TEXT;
        else if (s && !strcmp(s, "json"))
                *out = CM_LOG_JSON;
        else
                return -1;
        return 0;
}

/* Appends msg as the body of a JSON string to out[*n..size): quotes,
 * backslashes and control characters escaped, bytes of invalid UTF-8 as
 * U+FFFD. Stops before overflowing. */
static void json_chars(char *out, size_t size, size_t *n, const char *msg)
{
        size_t len = strlen(msg), i = 0;

        while (i < len && *n + 8 < size) {
                unsigned char c = (unsigned char)msg[i];
                uint32_t cp;
                size_t k;

                if (c == '"' || c == '\\') {
                        out[(*n)++] = '\\';
                        out[(*n)++] = (char)c;
                        i++;
                } else if (c < 0x20) {
                        *n +=
                            (size_t)snprintf(out + *n, size - *n, "\\u%04x", c);
                        i++;
                } else if (c < 0x80) {
                        out[(*n)++] = (char)c;
                        i++;
                } else {
                        k = cm_utf8_decode(msg + i, len - i, &cp);
                        if (cp == CM_UTF8_BAD) {
                                memcpy(out + *n, CM_UTF8_REPLACEMENT,
                                       CM_UTF8_REPLACEMENT_LEN);
                                *n += CM_UTF8_REPLACEMENT_LEN;
                        } else {
                                memcpy(out + *n, msg + i, k);
                                *n += k;
                        }
                        i += k;
                }
        }
}

void cm_log_write(cm_log_level_t level, const char *fmt, ...)
{
        char line[2048];
        struct timeval tv;
        struct tm tm;
        va_list ap;
        int n;

        gettimeofday(&tv, NULL);
        gmtime_r(&tv.tv_sec, &tm);
        if (cm_log_format == CM_LOG_JSON) {
                char msg[2048], json[4096];
                size_t at;

                va_start(ap, fmt);
                vsnprintf(msg, sizeof(msg), fmt, ap);
                va_end(ap);
                n = snprintf(json, sizeof(json),
                             "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\","
                             "\"level\":\"%s\",\"prog\":\"",
                             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                             tm.tm_hour, tm.tm_min, tm.tm_sec,
                             (int)(tv.tv_usec / 1000), level_names[level]);
                at = (size_t)n;
                json_chars(json, sizeof(json), &at, log_prog);
                at +=
                    (size_t)snprintf(json + at, sizeof(json) - at,
                                     "\",\"pid\":%d,\"msg\":\"", (int)getpid());
                json_chars(json, sizeof(json), &at, msg);
                fprintf(stderr, "%.*s\"}\n", (int)at, json);
                return;
        }
        n = snprintf(line, sizeof(line),
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s[%d] %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000), log_prog,
                     (int)getpid(), level_names[level]);
        if (n < 0 || (size_t)n >= sizeof(line))
                n = 0;
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        va_end(ap);
        /* One write per line so that lines of concurrent processes sharing
         * a log file do not interleave. */
        fprintf(stderr, "%s\n", line);
}
