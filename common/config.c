#include "config.h"

#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "text.h"
#include "util.h"

/* Environment prefix of the librdkafka pass-through. */
#define CM_KAFKA_ENV_PREFIX "CHATMEM_KAFKA_PROP_"

typedef enum cm_setting_kind {
        CM_SETTING_STR,        /* string; min is the minimum length (0 or 1) */
        CM_SETTING_INT,        /* int in [min, max] */
        CM_SETTING_LEVEL,      /* log level name, see cm_log_level_parse() */
        CM_SETTING_LOG_FORMAT, /* "text" or "json", cm_log_format_parse() */
} cm_setting_kind_t;

typedef struct cm_setting {
        const char *path; /* "context.max_tokens" */
        cm_setting_kind_t kind;
        size_t offset; /* of the char * or int in cm_config_t */
        long long min;
        long long max;
        const char *def_str;
        int def_int;
        const char *env;     /* CHATMEM_... */
        const char *env_alt; /* read only when env is unset, or NULL */
} cm_setting_t;

#define CM_STR(path, field, minlen, def, env, env_alt)                         \
        {                                                                      \
                (path), CM_SETTING_STR, offsetof(cm_config_t, field),          \
                    (minlen), 0, (def), 0, (env), (env_alt)                    \
        }
#define CM_INT(path, field, lo, hi, def, env)                                  \
        {                                                                      \
                (path), CM_SETTING_INT, offsetof(cm_config_t, field), (lo),    \
                    (hi), NULL, (def), (env), NULL                             \
        }

/* Every setting, in the order of config.h. A section ("topics") is the part
 * of a path before its '.'; "kafka" is the pass-through, not listed here. */
static const cm_setting_t settings[] = {
    CM_STR("kafka_brokers", kafka_brokers, 1, "127.0.0.1:9092",
           "CHATMEM_KAFKA_BROKERS", NULL),
    CM_STR("redis_url", redis_url, 1, "redis://127.0.0.1:6379/0",
           "CHATMEM_REDIS_URL", "REDIS_URL"),
    CM_STR("key_prefix", key_prefix, 0, "chatmem:", "CHATMEM_KEY_PREFIX", NULL),
    {"log_level", CM_SETTING_LEVEL, offsetof(cm_config_t, log_level), 1, 0,
     "info", 0, "CHATMEM_LOG_LEVEL", NULL},
    {"log_format", CM_SETTING_LOG_FORMAT, offsetof(cm_config_t, log_format), 1,
     0, "text", 0, "CHATMEM_LOG_FORMAT", NULL},
    CM_STR("metrics.listen", metrics_listen, 0, "", "CHATMEM_METRICS_LISTEN",
           NULL),
    CM_INT("session_ttl", session_ttl, 0, INT_MAX, 3600, "CHATMEM_SESSION_TTL"),
    CM_INT("profile_ttl", profile_ttl, 0, INT_MAX, 2592000,
           "CHATMEM_PROFILE_TTL"),
    CM_STR("topics.events", topic_events, 1, "chat.events",
           "CHATMEM_TOPICS_EVENTS", NULL),
    CM_STR("topics.compaction", topic_compaction, 1, "chat.compaction",
           "CHATMEM_TOPICS_COMPACTION", NULL),
    CM_STR("topics.dlq", topic_dlq, 1, "chat.dlq", "CHATMEM_TOPICS_DLQ", NULL),
    CM_STR("topics.requests", topic_requests, 1, "context.requests",
           "CHATMEM_TOPICS_REQUESTS", NULL),
    CM_STR("topics.replies", topic_replies, 1, "context.replies",
           "CHATMEM_TOPICS_REPLIES", NULL),
    CM_STR("topics.prebuilt", topic_prebuilt, 1, "context.prebuilt",
           "CHATMEM_TOPICS_PREBUILT", NULL),
    CM_INT("limits.max_content_bytes", max_content_bytes, 1, 16 * 1024 * 1024,
           65536, "CHATMEM_LIMITS_MAX_CONTENT_BYTES"),
    CM_STR("ingest.group", ingest_group, 1, "chatmem-ingest",
           "CHATMEM_INGEST_GROUP", NULL),
    CM_INT("ingest.batch_size", ingest_batch_size, 1, 100000, 1000,
           "CHATMEM_INGEST_BATCH_SIZE"),
    CM_INT("ingest.dedupe_window", dedupe_window, 1, 1000000, 1000,
           "CHATMEM_INGEST_DEDUPE_WINDOW"),
    CM_STR("ingest.topic_reset", ingest_topic_reset, 1, "stop",
           "CHATMEM_INGEST_TOPIC_RESET", NULL),
    CM_STR("context.group", context_group, 1, "chatmem-context",
           "CHATMEM_CONTEXT_GROUP", NULL),
    CM_INT("context.recent_verbatim", recent_verbatim, 0, 1000, 3,
           "CHATMEM_CONTEXT_RECENT_VERBATIM"),
    CM_INT("context.summarize_after", summarize_after, 1, 100000, 5,
           "CHATMEM_CONTEXT_SUMMARIZE_AFTER"),
    CM_INT("context.max_tokens", max_tokens, 1, 1000000, 2000,
           "CHATMEM_CONTEXT_MAX_TOKENS"),
    CM_INT("context.cache_sessions", cache_sessions, 0, 10000000, 10000,
           "CHATMEM_CONTEXT_CACHE_SESSIONS"),
    CM_STR("context.tokenizer", tokenizer, 1, "cl100k_base",
           "CHATMEM_CONTEXT_TOKENIZER", NULL),
    CM_INT("context.prebuilt", prebuilt, 0, 1, 1, "CHATMEM_CONTEXT_PREBUILT"),
    CM_INT("context.prebuilt_interval_ms", prebuilt_interval_ms, 0, 3600000,
           1000, "CHATMEM_CONTEXT_PREBUILT_INTERVAL_MS"),
    CM_STR("context.reply_topics", reply_topics, 1, "context.replies*",
           "CHATMEM_CONTEXT_REPLY_TOPICS", NULL),
    CM_INT("context.deadline_ms", deadline_ms, 1, 600000, 200,
           "CHATMEM_CONTEXT_DEADLINE_MS"),
    CM_STR("summarizer.group", summarizer_group, 1, "chatmem-summarizer",
           "CHATMEM_SUMMARIZER_GROUP", NULL),
    CM_STR("summarizer.kind", summarizer_kind, 1, "extractive",
           "CHATMEM_SUMMARIZER_KIND", NULL),
    CM_INT("summarizer.summary_max_tokens", summary_max_tokens, 1, 100000, 300,
           "CHATMEM_SUMMARIZER_SUMMARY_MAX_TOKENS"),
    CM_INT("archive.max_messages", archive_max_messages, 0, 100000000, 10000,
           "CHATMEM_ARCHIVE_MAX_MESSAGES"),
    CM_INT("archive.ttl", archive_ttl, -1, INT_MAX, -1, "CHATMEM_ARCHIVE_TTL"),
    CM_INT("recall.implicit", recall_implicit, 0, 1, 1,
           "CHATMEM_RECALL_IMPLICIT"),
    CM_INT("recall.summary_share", recall_summary_share, 0, 100, 25,
           "CHATMEM_RECALL_SUMMARY_SHARE"),
    CM_INT("recall.min_score_share", recall_min_score_share, 0, 100, 20,
           "CHATMEM_RECALL_MIN_SCORE_SHARE"),
    CM_INT("recall.cache_sessions", recall_cache_sessions, 0, 10000000, 4096,
           "CHATMEM_RECALL_CACHE_SESSIONS"),
    CM_STR("llm.base_url", llm_base_url, 1, "http://127.0.0.1:8080",
           "CHATMEM_LLM_BASE_URL", NULL),
    CM_STR("llm.model", llm_model, 1, "llama-3.1-8b-instant",
           "CHATMEM_LLM_MODEL", NULL),
    CM_STR("llm.api_key_env", llm_api_key_env, 1, "CHATMEM_LLM_API_KEY",
           "CHATMEM_LLM_API_KEY_ENV", NULL),
    CM_STR("llm.temperature", llm_temperature, 1, "0.2",
           "CHATMEM_LLM_TEMPERATURE", NULL),
    CM_INT("llm.timeout_ms", llm_timeout_ms, 1, 600000, 15000,
           "CHATMEM_LLM_TIMEOUT_MS"),
    CM_INT("llm.max_retries", llm_max_retries, 0, 100, 3,
           "CHATMEM_LLM_MAX_RETRIES"),
    CM_INT("llm.breaker_failures", llm_breaker_failures, 1, 1000, 5,
           "CHATMEM_LLM_BREAKER_FAILURES"),
    CM_INT("llm.breaker_cooldown_ms", llm_breaker_cooldown_ms, 0, 3600000,
           30000, "CHATMEM_LLM_BREAKER_COOLDOWN_MS"),
};

#define CM_SETTING_CNT (sizeof(settings) / sizeof(settings[0]))

static char **str_slot(cm_config_t *cfg, const cm_setting_t *s)
{
        return (char **)(void *)((char *)cfg + s->offset);
}

static int *int_slot(cm_config_t *cfg, const cm_setting_t *s)
{
        return (int *)(void *)((char *)cfg + s->offset);
}

static void str_replace(char **slot, const char *value)
{
        free(*slot);
        *slot = cm_strdup(value);
}

/* The setting whose whole path is path, or NULL. */
static const cm_setting_t *setting_find(const char *path)
{
        size_t i;

        for (i = 0; i < CM_SETTING_CNT; i++) {
                if (!strcmp(settings[i].path, path))
                        return &settings[i];
        }
        return NULL;
}

/* The setting named name in section (NULL: at the top level), or NULL. */
static const cm_setting_t *setting_find_in(const char *section,
                                           const char *name)
{
        size_t i, n;

        for (i = 0; i < CM_SETTING_CNT; i++) {
                const char *p = settings[i].path;

                if (section) {
                        n = strlen(section);
                        if (strncmp(p, section, n) || p[n] != '.')
                                continue;
                        p += n + 1;
                } else if (strchr(p, '.')) {
                        continue;
                }
                if (!strcmp(p, name))
                        return &settings[i];
        }
        return NULL;
}

/* 1 if name is the section of some setting ("topics"), else 0. */
static int is_section(const char *name)
{
        size_t i, n = strlen(name);

        for (i = 0; i < CM_SETTING_CNT; i++) {
                if (!strncmp(settings[i].path, name, n) &&
                    settings[i].path[n] == '.')
                        return 1;
        }
        return 0;
}

static const char *kind_expected(cm_setting_kind_t kind)
{
        return kind == CM_SETTING_INT ? "an integer" : "a string";
}

/* Checks and stores a string or level value. who starts the error message
 * ("file:3: 'log_level'", "CHATMEM_LOG_LEVEL"). */
static int apply_str(cm_config_t *cfg, const cm_setting_t *s, const char *value,
                     const char *who, char *errstr, size_t errstr_size)
{
        cm_log_level_t level;
        cm_log_format_t format;

        if (s->kind == CM_SETTING_LOG_FORMAT &&
            cm_log_format_parse(value, &format) == -1) {
                cm_errf(errstr, errstr_size,
                        "%s: expected one of text, json, got '%.40s'", who,
                        value);
                return -1;
        }
        if (s->kind == CM_SETTING_LEVEL &&
            cm_log_level_parse(value, &level) == -1) {
                /* Not a secret: echo it, shortened. */
                cm_errf(errstr, errstr_size,
                        "%s: expected one of error, warn, info, debug, got "
                        "'%.40s'",
                        who, value);
                return -1;
        }
        if (strlen(value) < (size_t)s->min) {
                /* The value is not echoed: it may be a URL with a
                 * password. */
                cm_errf(errstr, errstr_size, "%s: expected a non-empty string",
                        who);
                return -1;
        }
        str_replace(str_slot(cfg, s), value);
        return 0;
}

static int apply_int(cm_config_t *cfg, const cm_setting_t *s, long long v,
                     const char *who, char *errstr, size_t errstr_size)
{
        if (v < s->min || v > s->max) {
                cm_errf(errstr, errstr_size,
                        "%s: expected an integer in [%lld, %lld], got %lld",
                        who, s->min, s->max, v);
                return -1;
        }
        *int_slot(cfg, s) = (int)v;
        return 0;
}

/* Sets s from the text value, as the environment and cm_config_set() do. */
static int apply_text(cm_config_t *cfg, const cm_setting_t *s,
                      const char *value, const char *who, char *errstr,
                      size_t errstr_size)
{
        long long v;

        if (s->kind != CM_SETTING_INT)
                return apply_str(cfg, s, value, who, errstr, errstr_size);
        if (cm_parse_int(value, s->min, s->max, &v) == -1) {
                cm_errf(errstr, errstr_size,
                        "%s: expected an integer in [%lld, %lld], got '%.40s'",
                        who, s->min, s->max, value);
                return -1;
        }
        *int_slot(cfg, s) = (int)v;
        return 0;
}

/* Sets the pass-through property name (taken over) to value, replacing one
 * of the same name in place or appending. */
static void kafka_prop_put(cm_config_t *cfg, char *name, const char *value)
{
        cm_kafka_prop_t *p;
        size_t i;

        for (i = 0; i < cfg->kafka_prop_cnt; i++) {
                p = &cfg->kafka_props[i];
                if (!strcmp(p->name, name)) {
                        free(name);
                        str_replace(&p->value, value);
                        return;
                }
        }
        cfg->kafka_props =
            cm_realloc(cfg->kafka_props,
                       (cfg->kafka_prop_cnt + 1) * sizeof(*cfg->kafka_props));
        p = &cfg->kafka_props[cfg->kafka_prop_cnt++];
        p->name = name; /* now owned by cfg */
        p->value = cm_strdup(value);
}

/* Returns a heap copy of the first len bytes of s as a librdkafka name:
 * '_' becomes '.', and with lower, letters are lower-cased. */
static char *kafka_name(const char *s, size_t len, int lower)
{
        char *name = cm_strndup(s, len);
        char *c;

        for (c = name; *c; c++) {
                if (*c == '_')
                        *c = '.';
                else if (lower)
                        *c = (char)cm_tolower(*c);
        }
        return name;
}

void cm_config_init(cm_config_t *cfg)
{
        const cm_setting_t *s;
        size_t i;

        memset(cfg, 0, sizeof(*cfg));
        for (i = 0; i < CM_SETTING_CNT; i++) {
                s = &settings[i];
                if (s->kind == CM_SETTING_INT)
                        *int_slot(cfg, s) = s->def_int;
                else
                        *str_slot(cfg, s) = cm_strdup(s->def_str);
        }
}

int cm_config_reply_topic_allowed(const cm_config_t *cfg, const char *topic)
{
        const char *p = cfg->reply_topics;
        size_t tlen = strlen(topic);

        if (!strcmp(topic, cfg->topic_replies))
                return 1;
        while (p && *p) {
                const char *end = strchr(p, ',');
                size_t n = end ? (size_t)(end - p) : strlen(p);

                /* Entries may be padded with blanks: "a*, b". */
                while (n > 0 && (*p == ' ' || *p == '\t')) {
                        p++;
                        n--;
                }
                while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                        n--;
                if (n > 0 && p[n - 1] == '*') {
                        if (tlen >= n - 1 && !memcmp(topic, p, n - 1))
                                return 1;
                } else if (n > 0 && tlen == n && !memcmp(topic, p, n)) {
                        return 1;
                }
                p = end ? end + 1 : NULL;
        }
        return 0;
}

void cm_config_release(cm_config_t *cfg)
{
        size_t i;

        if (!cfg)
                return;
        for (i = 0; i < CM_SETTING_CNT; i++) {
                if (settings[i].kind != CM_SETTING_INT)
                        free(*str_slot(cfg, &settings[i]));
        }
        for (i = 0; i < cfg->kafka_prop_cnt; i++) {
                free(cfg->kafka_props[i].name);
                free(cfg->kafka_props[i].value);
        }
        free(cfg->kafka_props);
        memset(cfg, 0, sizeof(*cfg));
}

int cm_config_set(cm_config_t *cfg, const char *path, const char *value,
                  char *errstr, size_t errstr_size)
{
        const cm_setting_t *s;
        char who[160];

        if (!path || !value) {
                cm_errf(errstr, errstr_size, "no setting or no value given");
                return -1;
        }
        if (!strncmp(path, "kafka.", 6)) {
                if (!path[6]) {
                        cm_errf(errstr, errstr_size,
                                "'%s': empty librdkafka property name", path);
                        return -1;
                }
                kafka_prop_put(cfg, kafka_name(path + 6, strlen(path + 6), 0),
                               value);
                return 0;
        }
        s = setting_find(path);
        if (!s) {
                cm_errf(errstr, errstr_size, "unknown setting '%.100s'", path);
                return -1;
        }
        snprintf(who, sizeof(who), "'%s'", s->path);
        return apply_text(cfg, s, value, who, errstr, errstr_size);
}

/*
 * The file.
 */

/* Where a setting comes from, "FILE:LINE", for error messages. */
static void setting_where(const config_setting_t *cs, const char *path,
                          char *buf, size_t size)
{
        const char *file = config_setting_source_file(cs);

        snprintf(buf, size, "%s:%u", file ? file : path,
                 config_setting_source_line(cs));
}

/* The librdkafka text of a scalar; buf holds numbers. NULL if cs is not a
 * scalar. */
static const char *kafka_value(const config_setting_t *cs, char *buf,
                               size_t size)
{
        double d;

        switch (config_setting_type(cs)) {
        case CONFIG_TYPE_STRING:
                return config_setting_get_string(cs);
        case CONFIG_TYPE_BOOL:
                return config_setting_get_bool(cs) ? "true" : "false";
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64:
                snprintf(buf, size, "%lld", config_setting_get_int64(cs));
                return buf;
        case CONFIG_TYPE_FLOAT:
                /* Shortest text that reads back as the same double. */
                d = config_setting_get_float(cs);
                snprintf(buf, size, "%.15g", d);
                if (strtod(buf, NULL) != d)
                        snprintf(buf, size, "%.17g", d);
                return buf;
        default:
                return NULL;
        }
}

static int load_kafka(cm_config_t *cfg, const config_setting_t *group,
                      const char *path, char *errstr, size_t errstr_size)
{
        const config_setting_t *cs;
        const char *name, *value;
        char where[PATH_MAX + 32], num[64];
        int i, n = config_setting_length(group);

        for (i = 0; i < n; i++) {
                cs = config_setting_get_elem(group, (unsigned int)i);
                name = config_setting_name(cs);
                value = kafka_value(cs, num, sizeof(num));
                if (!value) {
                        setting_where(cs, path, where, sizeof(where));
                        cm_errf(errstr, errstr_size,
                                "%s: 'kafka.%s': expected a string, number or "
                                "boolean",
                                where, name);
                        return -1;
                }
                kafka_prop_put(cfg, kafka_name(name, strlen(name), 0), value);
        }
        return 0;
}

/* Loads one member of the root group or of a section. */
static int load_setting(cm_config_t *cfg, const config_setting_t *cs,
                        const char *section, const char *path, char *errstr,
                        size_t errstr_size)
{
        const cm_setting_t *s;
        const char *name = config_setting_name(cs);
        const char *dot = section ? "." : "";
        char where[PATH_MAX + 32], who[PATH_MAX + 160];
        int type = config_setting_type(cs), ok_type;

        setting_where(cs, path, where, sizeof(where));
        s = setting_find_in(section, name);
        if (!s) {
                cm_errf(errstr, errstr_size, "%s: unknown setting '%s%s%s'",
                        where, section ? section : "", dot, name);
                return -1;
        }
        snprintf(who, sizeof(who), "%s: '%s'", where, s->path);
        if (s->kind == CM_SETTING_INT)
                ok_type = type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64;
        else
                ok_type = type == CONFIG_TYPE_STRING;
        if (!ok_type) {
                cm_errf(errstr, errstr_size, "%s: expected %s", who,
                        kind_expected(s->kind));
                return -1;
        }
        /* libconfig 1.5 wraps a literal beyond int silently unless it has
         * the L suffix (3000000000L is an INT64); that cannot be seen here. */
        if (s->kind == CM_SETTING_INT)
                return apply_int(cfg, s, config_setting_get_int64(cs), who,
                                 errstr, errstr_size);
        return apply_str(cfg, s, config_setting_get_string(cs), who, errstr,
                         errstr_size);
}

/* Walks the parsed tree: every key must be known. */
static int load_tree(cm_config_t *cfg, const config_setting_t *root,
                     const char *path, char *errstr, size_t errstr_size)
{
        const config_setting_t *cs, *member;
        const char *name;
        char where[PATH_MAX + 32];
        int i, j, n = config_setting_length(root), m;

        for (i = 0; i < n; i++) {
                cs = config_setting_get_elem(root, (unsigned int)i);
                name = config_setting_name(cs);
                if (strcmp(name, "kafka") && !is_section(name)) {
                        if (load_setting(cfg, cs, NULL, path, errstr,
                                         errstr_size) == -1)
                                return -1;
                        continue;
                }
                if (!config_setting_is_group(cs)) {
                        setting_where(cs, path, where, sizeof(where));
                        cm_errf(errstr, errstr_size,
                                "%s: '%s': expected a group { ... }", where,
                                name);
                        return -1;
                }
                if (!strcmp(name, "kafka")) {
                        if (load_kafka(cfg, cs, path, errstr, errstr_size) ==
                            -1)
                                return -1;
                        continue;
                }
                m = config_setting_length(cs);
                for (j = 0; j < m; j++) {
                        member = config_setting_get_elem(cs, (unsigned int)j);
                        if (load_setting(cfg, member, name, path, errstr,
                                         errstr_size) == -1)
                                return -1;
                }
        }
        return 0;
}

static int load_file(cm_config_t *cfg, const char *path, const char *origin,
                     char *errstr, size_t errstr_size)
{
        config_t lc;
        FILE *fp = NULL;
        struct stat st;
        const char *efile;
        int ret = -1;

        config_init(&lc);
        fp = fopen(path, "r");
        if (!fp) {
                cm_errf(errstr, errstr_size,
                        "cannot open config file '%s'%s: %s", path, origin,
                        strerror(errno));
                goto out;
        }
        /* Reading a directory would make libconfig's scanner exit. */
        if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
                cm_errf(errstr, errstr_size,
                        "cannot read config file '%s'%s: %s", path, origin,
                        strerror(EISDIR));
                goto out;
        }
        if (config_read(&lc, fp) != CONFIG_TRUE) {
                efile = config_error_file(&lc);
                cm_errf(errstr, errstr_size, "%s:%d: %s", efile ? efile : path,
                        config_error_line(&lc), config_error_text(&lc));
                goto out;
        }
        ret =
            load_tree(cfg, config_root_setting(&lc), path, errstr, errstr_size);

out:
        if (fp)
                fclose(fp);
        config_destroy(&lc);
        return ret;
}

/*
 * The environment.
 */

static int load_env(cm_config_t *cfg, char *errstr, size_t errstr_size)
{
        const cm_setting_t *s;
        const char *value, *var, *eq;
        const size_t plen = strlen(CM_KAFKA_ENV_PREFIX);
        char who[160];
        size_t i;

        for (i = 0; i < CM_SETTING_CNT; i++) {
                s = &settings[i];
                var = s->env;
                value = getenv(var);
                if (!value && s->env_alt) {
                        var = s->env_alt;
                        value = getenv(var);
                }
                if (!value)
                        continue;
                snprintf(who, sizeof(who), "environment variable %s", var);
                if (apply_text(cfg, s, value, who, errstr, errstr_size) == -1)
                        return -1;
        }
        for (i = 0; environ[i]; i++) {
                var = environ[i];
                if (strncmp(var, CM_KAFKA_ENV_PREFIX, plen))
                        continue;
                eq = strchr(var, '=');
                if (!eq)
                        continue;
                if (eq == var + plen) {
                        cm_errf(errstr, errstr_size,
                                "environment variable " CM_KAFKA_ENV_PREFIX
                                ": empty librdkafka property name");
                        return -1;
                }
                kafka_prop_put(
                    cfg, kafka_name(var + plen, (size_t)(eq - var) - plen, 1),
                    eq + 1);
        }
        return 0;
}

int cm_config_load(cm_config_t *cfg, const char *path, char *errstr,
                   size_t errstr_size)
{
        const char *origin = "";

        if (!path) {
                path = getenv("CHATMEM_CONFIG");
                origin = " (from CHATMEM_CONFIG)";
        }
        if (path && load_file(cfg, path, origin, errstr, errstr_size) == -1)
                return -1;
        return load_env(cfg, errstr, errstr_size);
}
