/*
 * Unit tests of common/config.c: defaults, file, environment, pass-through
 * and every kind of error, each asserted on values and on errstr.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

/* Unsets REDIS_URL and every CHATMEM_* variable but CHATMEM_SRC, so that
 * neither the caller's environment nor an earlier test leaks into a test. */
static void env_clear(void)
{
        char name[256];
        const char *eq;
        size_t i, n;
        int found = 1;

        unsetenv("REDIS_URL");
        while (found) {
                found = 0;
                for (i = 0; environ[i] && !found; i++) {
                        if (strncmp(environ[i], "CHATMEM_", 8) ||
                            !strncmp(environ[i], "CHATMEM_SRC=", 12))
                                continue;
                        eq = strchr(environ[i], '=');
                        n = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
                        assert_true(n < sizeof(name));
                        memcpy(name, environ[i], n);
                        name[n] = '\0';
                        assert_int_equal(unsetenv(name), 0);
                        found = 1;
                }
        }
}

static int setup(void **state)
{
        (void)state;
        env_clear();
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        env_clear();
        return 0;
}

/* A temporary file holding text; unlink with file_remove(). */
typedef struct tmpconf {
        char path[64];
} tmpconf_t;

static void file_write(tmpconf_t *tf, const char *text)
{
        size_t len = strlen(text);
        int fd;

        snprintf(tf->path, sizeof(tf->path), "/tmp/test_config.XXXXXX");
        fd = mkstemp(tf->path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, len), (ssize_t)len);
        assert_int_equal(close(fd), 0);
}

static void file_remove(tmpconf_t *tf)
{
        unlink(tf->path);
}

static const char *prop(const cm_config_t *cfg, const char *name)
{
        size_t i;

        for (i = 0; i < cfg->kafka_prop_cnt; i++) {
                if (!strcmp(cfg->kafka_props[i].name, name))
                        return cfg->kafka_props[i].value;
        }
        return NULL;
}

/* Loads text as a file into a fresh config; returns cm_config_load's
 * result, errstr filled. */
static int load_text(cm_config_t *cfg, const char *text, char *errstr,
                     size_t errstr_size, tmpconf_t *tf)
{
        int rc;

        file_write(tf, text);
        cm_config_init(cfg);
        errstr[0] = '\0';
        rc = cm_config_load(cfg, tf->path, errstr, errstr_size);
        file_remove(tf);
        return rc;
}

/* Expects text to fail with every needle in errstr. */
static void expect_error(const char *text, const char *needle1,
                         const char *needle2)
{
        cm_config_t cfg;
        tmpconf_t tf;
        char errstr[512];

        assert_int_equal(load_text(&cfg, text, errstr, sizeof(errstr), &tf),
                         -1);
        print_message("      errstr: %s\n", errstr);
        assert_non_null(strstr(errstr, needle1));
        if (needle2)
                assert_non_null(strstr(errstr, needle2));
        cm_config_release(&cfg);
}

static void test_defaults(void **state)
{
        cm_config_t cfg;
        char errstr[256];

        (void)state;
        cm_config_init(&cfg);
        assert_string_equal(cfg.kafka_brokers, "127.0.0.1:9092");
        assert_string_equal(cfg.redis_url, "redis://127.0.0.1:6379/0");
        assert_string_equal(cfg.key_prefix, "chatmem:");
        assert_string_equal(cfg.log_level, "info");
        assert_int_equal(cfg.session_ttl, 3600);
        assert_int_equal(cfg.profile_ttl, 2592000);
        assert_string_equal(cfg.topic_events, "chat.events");
        assert_string_equal(cfg.topic_compaction, "chat.compaction");
        assert_string_equal(cfg.topic_dlq, "chat.dlq");
        assert_string_equal(cfg.topic_requests, "context.requests");
        assert_string_equal(cfg.topic_replies, "context.replies");
        assert_string_equal(cfg.topic_prebuilt, "context.prebuilt");
        assert_int_equal(cfg.max_content_bytes, 65536);
        assert_string_equal(cfg.ingest_group, "chatmem-ingest");
        assert_int_equal(cfg.ingest_batch_size, 1000);
        assert_int_equal(cfg.dedupe_window, 1000);
        assert_string_equal(cfg.context_group, "chatmem-context");
        assert_int_equal(cfg.recent_verbatim, 3);
        assert_int_equal(cfg.summarize_after, 5);
        assert_int_equal(cfg.max_tokens, 2000);
        assert_int_equal(cfg.cache_sessions, 10000);
        assert_int_equal(cfg.deadline_ms, 200);
        assert_string_equal(cfg.tokenizer, "cl100k_base");
        assert_null(cfg.kafka_props);
        assert_int_equal(cfg.kafka_prop_cnt, 0);

        /* No file, no environment: still the defaults. */
        assert_int_equal(cm_config_load(&cfg, NULL, errstr, sizeof(errstr)), 0);
        assert_int_equal(cfg.max_tokens, 2000);
        assert_string_equal(cfg.redis_url, "redis://127.0.0.1:6379/0");
        cm_config_release(&cfg);
        assert_null(cfg.redis_url);
        cm_config_release(&cfg); /* released twice is harmless */
        cm_config_release(NULL);
}

static void test_file_overrides(void **state)
{
        cm_config_t cfg;
        tmpconf_t tf;
        char errstr[256];

        (void)state;
        assert_int_equal(load_text(&cfg,
                                   "kafka_brokers = \"k1:9092,k2:9092\";\n"
                                   "redis_url = \"redis://r:6380/2\";\n"
                                   "key_prefix = \"\";\n"
                                   "log_level = \"debug\";\n"
                                   "session_ttl = 0;\n"
                                   "topics = { events = \"ev\"; dlq = \"d\"; "
                                   "};\n"
                                   "limits: { max_content_bytes = 1024; };\n"
                                   "ingest = { batch_size = 50; };\n"
                                   "context = {\n"
                                   "  recent_verbatim = 0;\n"
                                   "  max_tokens = 4096;\n"
                                   "  tokenizer = \"o200k_base\";\n"
                                   "};\n",
                                   errstr, sizeof(errstr), &tf),
                         0);
        assert_string_equal(cfg.kafka_brokers, "k1:9092,k2:9092");
        assert_string_equal(cfg.redis_url, "redis://r:6380/2");
        assert_string_equal(cfg.key_prefix, "");
        assert_string_equal(cfg.log_level, "debug");
        assert_int_equal(cfg.session_ttl, 0);
        assert_string_equal(cfg.topic_events, "ev");
        assert_string_equal(cfg.topic_dlq, "d");
        assert_int_equal(cfg.max_content_bytes, 1024);
        assert_int_equal(cfg.ingest_batch_size, 50);
        assert_int_equal(cfg.recent_verbatim, 0);
        assert_int_equal(cfg.max_tokens, 4096);
        assert_string_equal(cfg.tokenizer, "o200k_base");
        /* Untouched settings keep their defaults. */
        assert_string_equal(cfg.topic_compaction, "chat.compaction");
        assert_int_equal(cfg.summarize_after, 5);
        assert_int_equal(cfg.profile_ttl, 2592000);
        cm_config_release(&cfg);
}

static void test_config_env_names_file(void **state)
{
        cm_config_t cfg;
        tmpconf_t tf;
        char errstr[256];

        (void)state;
        file_write(&tf, "context = { max_tokens = 77; };\n");
        setenv("CHATMEM_CONFIG", tf.path, 1);
        cm_config_init(&cfg);
        assert_int_equal(cm_config_load(&cfg, NULL, errstr, sizeof(errstr)), 0);
        assert_int_equal(cfg.max_tokens, 77);
        cm_config_release(&cfg);

        /* An explicit path wins over CHATMEM_CONFIG. */
        setenv("CHATMEM_CONFIG", "/nonexistent/chatmem.conf", 1);
        cm_config_init(&cfg);
        assert_int_equal(cm_config_load(&cfg, tf.path, errstr, sizeof(errstr)),
                         0);
        assert_int_equal(cfg.max_tokens, 77);
        cm_config_release(&cfg);

        /* A CHATMEM_CONFIG that cannot be opened is an error. */
        cm_config_init(&cfg);
        assert_int_equal(cm_config_load(&cfg, NULL, errstr, sizeof(errstr)),
                         -1);
        assert_non_null(strstr(errstr, "/nonexistent/chatmem.conf"));
        assert_non_null(strstr(errstr, "CHATMEM_CONFIG"));
        cm_config_release(&cfg);
        file_remove(&tf);
}

static void test_env_beats_file(void **state)
{
        cm_config_t cfg;
        tmpconf_t tf;
        char errstr[256];

        (void)state;
        setenv("CHATMEM_CONTEXT_MAX_TOKENS", "512", 1);
        setenv("CHATMEM_TOPICS_EVENTS", "env.events", 1);
        setenv("CHATMEM_KAFKA_BROKERS", "envbroker:9092", 1);
        setenv("CHATMEM_LOG_LEVEL", "warn", 1);
        setenv("CHATMEM_KEY_PREFIX", "", 1); /* empty allowed here */
        setenv("CHATMEM_CONTEXT_DEADLINE_MS", "50", 1);
        assert_int_equal(load_text(&cfg,
                                   "kafka_brokers = \"filebroker:9092\";\n"
                                   "session_ttl = 60;\n"
                                   "topics = { events = \"file.events\"; };\n"
                                   "context = { max_tokens = 100; "
                                   "deadline_ms = 300; };\n",
                                   errstr, sizeof(errstr), &tf),
                         0);
        assert_int_equal(cfg.max_tokens, 512);
        assert_int_equal(cfg.deadline_ms, 50);
        assert_string_equal(cfg.topic_events, "env.events");
        assert_string_equal(cfg.kafka_brokers, "envbroker:9092");
        assert_string_equal(cfg.log_level, "warn");
        assert_string_equal(cfg.key_prefix, "");
        assert_int_equal(cfg.session_ttl, 60); /* from the file */
        cm_config_release(&cfg);
}

static void test_redis_url_precedence(void **state)
{
        cm_config_t cfg;
        char errstr[256];

        (void)state;
        setenv("REDIS_URL", "redis://plain:1/0", 1);
        cm_config_init(&cfg);
        assert_int_equal(cm_config_load(&cfg, NULL, errstr, sizeof(errstr)), 0);
        assert_string_equal(cfg.redis_url, "redis://plain:1/0");
        cm_config_release(&cfg);

        setenv("CHATMEM_REDIS_URL", "redis://chatmem:2/0", 1);
        cm_config_init(&cfg);
        assert_int_equal(cm_config_load(&cfg, NULL, errstr, sizeof(errstr)), 0);
        assert_string_equal(cfg.redis_url, "redis://chatmem:2/0");
        cm_config_release(&cfg);

        /* An empty URL is rejected, without echoing the value. */
        setenv("CHATMEM_REDIS_URL", "", 1);
        cm_config_init(&cfg);
        assert_int_equal(cm_config_load(&cfg, NULL, errstr, sizeof(errstr)),
                         -1);
        assert_non_null(strstr(errstr, "CHATMEM_REDIS_URL"));
        cm_config_release(&cfg);
}

static void test_kafka_passthrough(void **state)
{
        cm_config_t cfg;
        tmpconf_t tf;
        char errstr[256];

        (void)state;
        setenv("CHATMEM_KAFKA_PROP_SASL_PASSWORD", "s3cret", 1);
        setenv("CHATMEM_KAFKA_PROP_LINGER_MS", "20", 1);
        assert_int_equal(load_text(&cfg,
                                   "kafka = {\n"
                                   "  security_protocol = \"SASL_SSL\";\n"
                                   "  sasl_mechanisms = \"PLAIN\";\n"
                                   "  sasl_password = \"from-file\";\n"
                                   "  linger_ms = 5;\n"
                                   "  enable_idempotence = true;\n"
                                   "  socket_keepalive_enable = false;\n"
                                   "  queue_buffering_max_ms = 0.5;\n"
                                   "  message_max_bytes = 3000000000L;\n"
                                   "};\n",
                                   errstr, sizeof(errstr), &tf),
                         0);
        assert_int_equal(cfg.kafka_prop_cnt, 8);
        /* File order; the environment replaces values in place. */
        assert_string_equal(cfg.kafka_props[0].name, "security.protocol");
        assert_string_equal(cfg.kafka_props[0].value, "SASL_SSL");
        assert_string_equal(cfg.kafka_props[1].name, "sasl.mechanisms");
        assert_string_equal(cfg.kafka_props[2].name, "sasl.password");
        assert_string_equal(cfg.kafka_props[2].value, "s3cret");
        assert_string_equal(cfg.kafka_props[3].name, "linger.ms");
        assert_string_equal(cfg.kafka_props[3].value, "20");
        assert_string_equal(prop(&cfg, "enable.idempotence"), "true");
        assert_string_equal(prop(&cfg, "socket.keepalive.enable"), "false");
        assert_string_equal(prop(&cfg, "queue.buffering.max.ms"), "0.5");
        assert_string_equal(prop(&cfg, "message.max.bytes"), "3000000000");

        /* cm_config_set() goes to the pass-through too. */
        assert_int_equal(
            cm_config_set(&cfg, "kafka.linger_ms", "7", errstr, sizeof(errstr)),
            0);
        assert_string_equal(prop(&cfg, "linger.ms"), "7");
        assert_int_equal(cm_config_set(&cfg, "kafka.client_id", "me", errstr,
                                       sizeof(errstr)),
                         0);
        assert_int_equal(cfg.kafka_prop_cnt, 9);
        assert_string_equal(cfg.kafka_props[8].name, "client.id");
        assert_int_equal(
            cm_config_set(&cfg, "kafka.", "x", errstr, sizeof(errstr)), -1);
        cm_config_release(&cfg);
}

static void test_kafka_env_only(void **state)
{
        cm_config_t cfg;
        char errstr[256];

        (void)state;
        setenv("CHATMEM_KAFKA_PROP_SASL_PASSWORD", "pw", 1);
        cm_config_init(&cfg);
        assert_int_equal(cm_config_load(&cfg, NULL, errstr, sizeof(errstr)), 0);
        assert_int_equal(cfg.kafka_prop_cnt, 1);
        assert_string_equal(cfg.kafka_props[0].name, "sasl.password");
        assert_string_equal(cfg.kafka_props[0].value, "pw");
        cm_config_release(&cfg);

        setenv("CHATMEM_KAFKA_PROP_", "x", 1);
        cm_config_init(&cfg);
        assert_int_equal(cm_config_load(&cfg, NULL, errstr, sizeof(errstr)),
                         -1);
        assert_non_null(strstr(errstr, "CHATMEM_KAFKA_PROP_"));
        cm_config_release(&cfg);
}

static void test_set(void **state)
{
        cm_config_t cfg;
        char errstr[256];

        (void)state;
        cm_config_init(&cfg);
        assert_int_equal(cm_config_set(&cfg, "context.max_tokens", "300",
                                       errstr, sizeof(errstr)),
                         0);
        assert_int_equal(cfg.max_tokens, 300);
        assert_int_equal(cm_config_set(&cfg, "redis_url", "redis://x:1/0",
                                       errstr, sizeof(errstr)),
                         0);
        assert_string_equal(cfg.redis_url, "redis://x:1/0");

        assert_int_equal(cm_config_set(&cfg, "context.max_tokenz", "3", errstr,
                                       sizeof(errstr)),
                         -1);
        assert_non_null(strstr(errstr, "context.max_tokenz"));
        assert_int_equal(cm_config_set(&cfg, "context.max_tokens", "0", errstr,
                                       sizeof(errstr)),
                         -1);
        assert_non_null(strstr(errstr, "context.max_tokens"));
        assert_non_null(strstr(errstr, "[1, 1000000]"));
        assert_int_equal(cfg.max_tokens, 300); /* unchanged */
        assert_int_equal(
            cm_config_set(&cfg, "log_level", "verbose", errstr, sizeof(errstr)),
            -1);
        assert_non_null(strstr(errstr, "log_level"));
        assert_non_null(strstr(errstr, "verbose"));
        assert_int_equal(
            cm_config_set(&cfg, "log_format", "xml", errstr, sizeof(errstr)),
            -1);
        assert_non_null(strstr(errstr, "log_format"));
        assert_non_null(strstr(errstr, "text, json"));
        assert_int_equal(
            cm_config_set(&cfg, "log_format", "json", errstr, sizeof(errstr)),
            0);
        assert_string_equal(cfg.log_format, "json");
        assert_int_equal(cm_config_set(&cfg, "context.tokenizer", "", errstr,
                                       sizeof(errstr)),
                         -1);
        assert_non_null(strstr(errstr, "context.tokenizer"));
        cm_config_release(&cfg);
}

static void test_unknown_key(void **state)
{
        (void)state;
        expect_error("session_ttl = 5;\nmax_tokens = 5;\n", "'max_tokens'",
                     ":2:");
        expect_error("bogus = { a = 1; };\n", "unknown setting 'bogus'", ":1:");
}

static void test_unknown_nested_key(void **state)
{
        (void)state;
        expect_error("context = {\n  recent_verbatim = 2;\n"
                     "  max_tokenz = 5;\n};\n",
                     "unknown setting 'context.max_tokenz'", ":3:");
        expect_error("topics = { events = \"e\"; deep = { x = 1; }; };\n",
                     "'topics.deep'", ":1:");
}

static void test_wrong_type(void **state)
{
        (void)state;
        expect_error("session_ttl = \"3600\";\n", "'session_ttl'",
                     "expected an integer");
        expect_error("context = { max_tokens = 20.0; };\n",
                     "'context.max_tokens'", "expected an integer");
        expect_error("\nredis_url = 6379;\n", "'redis_url'",
                     "expected a string");
        expect_error("topics = \"chat\";\n", "'topics'", "group");
        expect_error("kafka = { sasl_mechanisms = [\"A\", \"B\"]; };\n",
                     "'kafka.sasl_mechanisms'", ":1:");
        expect_error("log_level = true;\n", "'log_level'", "expected a string");
}

static void test_out_of_range(void **state)
{
        (void)state;
        expect_error("context = { max_tokens = 0; };\n", "'context.max_tokens'",
                     "[1, 1000000]");
        expect_error("ingest = { batch_size = 100001; };\n",
                     "'ingest.batch_size'", "100001");
        expect_error("session_ttl = -1;\n", "'session_ttl'", ":1:");
        expect_error("profile_ttl = 3000000000L;\n", "'profile_ttl'",
                     "3000000000");
        expect_error("limits = { max_content_bytes = 16777217; };\n",
                     "'limits.max_content_bytes'", "16777217");
        expect_error("log_level = \"verbose\";\n", "'log_level'", "verbose");
        expect_error("topics = { events = \"\"; };\n", "'topics.events'",
                     "non-empty");
}

static void test_parse_error(void **state)
{
        tmpconf_t tf;
        cm_config_t cfg;
        char errstr[512], needle[128];

        (void)state;
        file_write(&tf, "session_ttl = 5;\n\ncontext = {\n  max_tokens = ;\n"
                        "};\n");
        cm_config_init(&cfg);
        assert_int_equal(cm_config_load(&cfg, tf.path, errstr, sizeof(errstr)),
                         -1);
        print_message("      errstr: %s\n", errstr);
        snprintf(needle, sizeof(needle), "%s:4: ", tf.path);
        assert_non_null(strstr(errstr, needle));
        cm_config_release(&cfg);
        file_remove(&tf);
}

static void test_include_names_its_file(void **state)
{
        tmpconf_t inc, top;
        cm_config_t cfg;
        char errstr[512], text[256];

        (void)state;
        file_write(&inc, "context = { max_tokens = 9; };\n");
        snprintf(text, sizeof(text), "@include \"%s\"\n", inc.path);
        file_write(&top, text);
        cm_config_init(&cfg);
        assert_int_equal(cm_config_load(&cfg, top.path, errstr, sizeof(errstr)),
                         0);
        assert_int_equal(cfg.max_tokens, 9);
        cm_config_release(&cfg);
        file_remove(&inc);

        /* An unknown key in an included file names that file and line. */
        file_write(&inc, "\nbogus = 1;\n");
        file_remove(&top);
        snprintf(text, sizeof(text), "@include \"%s\"\n", inc.path);
        file_write(&top, text);
        cm_config_init(&cfg);
        assert_int_equal(cm_config_load(&cfg, top.path, errstr, sizeof(errstr)),
                         -1);
        print_message("      errstr: %s\n", errstr);
        snprintf(text, sizeof(text), "%s:2: unknown setting 'bogus'", inc.path);
        assert_non_null(strstr(errstr, text));
        cm_config_release(&cfg);
        file_remove(&inc);
        file_remove(&top);
}

static void test_bad_env_int(void **state)
{
        cm_config_t cfg;
        char errstr[256];

        (void)state;
        setenv("CHATMEM_CONTEXT_MAX_TOKENS", "12abc", 1);
        cm_config_init(&cfg);
        assert_int_equal(cm_config_load(&cfg, NULL, errstr, sizeof(errstr)),
                         -1);
        assert_non_null(strstr(errstr, "CHATMEM_CONTEXT_MAX_TOKENS"));
        assert_non_null(strstr(errstr, "12abc"));
        cm_config_release(&cfg);

        setenv("CHATMEM_CONTEXT_MAX_TOKENS", "", 1);
        cm_config_init(&cfg);
        assert_int_equal(cm_config_load(&cfg, NULL, errstr, sizeof(errstr)),
                         -1);
        assert_non_null(strstr(errstr, "CHATMEM_CONTEXT_MAX_TOKENS"));
        cm_config_release(&cfg);

        unsetenv("CHATMEM_CONTEXT_MAX_TOKENS");
        setenv("CHATMEM_SESSION_TTL", "-5", 1);
        cm_config_init(&cfg);
        assert_int_equal(cm_config_load(&cfg, NULL, errstr, sizeof(errstr)),
                         -1);
        assert_non_null(strstr(errstr, "CHATMEM_SESSION_TTL"));
        cm_config_release(&cfg);

        setenv("CHATMEM_SESSION_TTL", "99999999999999999999", 1);
        cm_config_init(&cfg);
        assert_int_equal(cm_config_load(&cfg, NULL, errstr, sizeof(errstr)),
                         -1);
        assert_non_null(strstr(errstr, "CHATMEM_SESSION_TTL"));
        cm_config_release(&cfg);
}

static void test_missing_file(void **state)
{
        cm_config_t cfg;
        char errstr[256];

        (void)state;
        cm_config_init(&cfg);
        assert_int_equal(cm_config_load(&cfg, "/nonexistent/dir/x.conf", errstr,
                                        sizeof(errstr)),
                         -1);
        assert_non_null(strstr(errstr, "/nonexistent/dir/x.conf"));
        assert_non_null(strstr(errstr, "No such file or directory"));
        cm_config_release(&cfg);

        cm_config_init(&cfg);
        assert_int_equal(cm_config_load(&cfg, "/tmp", errstr, sizeof(errstr)),
                         -1);
        assert_non_null(strstr(errstr, "'/tmp'"));
        assert_non_null(strstr(errstr, "Is a directory"));
        cm_config_release(&cfg);
}

static void test_loads_over_existing(void **state)
{
        cm_config_t cfg;
        tmpconf_t tf;
        char errstr[256];

        (void)state;
        cm_config_init(&cfg);
        assert_int_equal(
            cm_config_set(&cfg, "kafka.linger_ms", "1", errstr, sizeof(errstr)),
            0);
        assert_int_equal(
            cm_config_set(&cfg, "ingest.group", "g", errstr, sizeof(errstr)),
            0);
        file_write(&tf, "kafka = { linger_ms = 2; acks = \"all\"; };\n");
        assert_int_equal(cm_config_load(&cfg, tf.path, errstr, sizeof(errstr)),
                         0);
        assert_string_equal(cfg.ingest_group, "g");
        assert_int_equal(cfg.kafka_prop_cnt, 2);
        assert_string_equal(prop(&cfg, "linger.ms"), "2");
        assert_string_equal(prop(&cfg, "acks"), "all");
        cm_config_release(&cfg);
        file_remove(&tf);
}

static void test_example_file_loads(void **state)
{
        const char *src = getenv("CHATMEM_SRC");
        char path[PATH_MAX], errstr[512];
        cm_config_t cfg;

        (void)state;
        if (src)
                snprintf(path, sizeof(path), "%s/chatmem.conf", src);
        else
                snprintf(path, sizeof(path), "chatmem.conf");
        cm_config_init(&cfg);
        errstr[0] = '\0';
        if (cm_config_load(&cfg, path, errstr, sizeof(errstr)) == -1)
                fail_msg("%s", errstr);
        /* The example repeats the defaults. */
        assert_int_equal(cfg.recent_verbatim, 3);
        assert_int_equal(cfg.summarize_after, 5);
        assert_int_equal(cfg.max_tokens, 2000);
        assert_int_equal(cfg.deadline_ms, 200);
        assert_int_equal(cfg.session_ttl, 3600);
        assert_string_equal(cfg.redis_url, "redis://127.0.0.1:6379/0");
        assert_string_equal(cfg.tokenizer, "cl100k_base");
        cm_config_release(&cfg);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
            cmocka_unit_test_setup_teardown(test_file_overrides, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_config_env_names_file, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_env_beats_file, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_redis_url_precedence, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_kafka_passthrough, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_kafka_env_only, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_set, setup, teardown),
            cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
            cmocka_unit_test_setup_teardown(test_unknown_nested_key, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_wrong_type, setup, teardown),
            cmocka_unit_test_setup_teardown(test_out_of_range, setup, teardown),
            cmocka_unit_test_setup_teardown(test_parse_error, setup, teardown),
            cmocka_unit_test_setup_teardown(test_include_names_its_file, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_bad_env_int, setup, teardown),
            cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
            cmocka_unit_test_setup_teardown(test_loads_over_existing, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_example_file_loads, setup,
                                            teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
