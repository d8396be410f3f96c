#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

cm_log_level_t cm_log_level = CM_LOG_INFO;
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

void cm_log_write(cm_log_level_t level, const char *fmt, ...)
{
        char line[2048];
        struct timeval tv;
        struct tm tm;
        va_list ap;
        int n;

        gettimeofday(&tv, NULL);
        gmtime_r(&tv.tv_sec, &tm);
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
