/*
 * chatmem context: ask chatmem-context for the context of a session and
 * print the reply.
 *
 * Not missing the reply. The reply may come back within milliseconds, so
 * the reply topic is read from offsets taken before the request is sent:
 * a consumer is assigned (not subscribed) to every partition of the reply
 * topic at its high watermark, and only then is the request produced. The
 * reply is the first message keyed by our request_id whose body carries
 * that request_id too.
 *
 * librdkafka's consumer needs a group.id even for assign(), so the consumer
 * uses a throw-away group "chatmem-cli-<uuid>" that never joins and never
 * commits (enable.auto.commit=false, no offset is ever stored).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codec.h"
#include "config.h"
#include "daemon.h"
#include "kafka.h"
#include "produce.h"
#include "log.h"
#include "topic.h"
#include "util.h"

#define DEFAULT_TIMEOUT_MS 10000

typedef struct asker {
        cm_config_t cfg;
        rd_kafka_t *consumer;
        rd_kafka_t *producer;
        const char *reply_topic;
        int64_t deadline_us; /* cm_mono_us() after which we give up */
        int delivered;       /* 1 once the request's delivery report came */
        rd_kafka_resp_err_t dr_err;
} asker_t;

void usage_context(FILE *fp)
{
        fprintf(fp,
                "usage: chatmem [-c FILE] context USER [CONV] [OPTIONS]\n"
                "\n"
                "Sends a context request for the session USER:CONV (CONV "
                "defaults to\n\"default\") to topics.requests and prints the "
                "reply of chatmem-context:\nthe context text, a blank line, "
                "then a metadata line.\n"
                "\n"
                "  -q, --query Q          the message about to be answered\n"
                "  -s, --scope SCOPE      where recall searches: session "
                "(default) or user\n"
                "  -n, --max-tokens N     token budget (default: the "
                "server's context.max_tokens)\n"
                "  -r, --recent N         recent messages kept verbatim "
                "(default: the server's)\n"
                "  -H, --history-file F   inline history instead of the "
                "stored messages: a JSON\n"
                "                         array of {\"role\", \"content\"} "
                "('-' reads stdin)\n"
                "  -p, --profile JSON     what the application knows of the "
                "user, e.g.\n"
                "                         '{\"name\":\"Ann\"}': its fields "
                "win in this reply\n"
                "      --no-stored        build from the request alone "
                "(read nothing stored)\n"
                "      --reply-to TOPIC   reply topic (default: "
                "topics.replies)\n"
                "  -t, --timeout MS       wait at most MS for the reply "
                "(default %d)\n"
                "  -j, --json             print the reply JSON on one line\n"
                "  -c, --config FILE      chatmem.conf to read\n"
                "  -h, --help             this text\n"
                "\n"
                "Exit status: 0 ok, 1 failure or error reply, 2 usage, 3 no "
                "reply in time.\n",
                DEFAULT_TIMEOUT_MS);
}

static int remaining_ms(const asker_t *a)
{
        int64_t left = (a->deadline_us - cm_mono_us()) / 1000;

        if (left <= 0)
                return 0;
        return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque)
{
        asker_t *a = opaque;

        (void)rk;
        a->delivered = 1;
        a->dr_err = m->err;
}

/* Reads --history-file into req->history with the codec's checks, those
 * a worker applies to the history of a request. Returns 0, or -1 after
 * printing why. */
static int load_history(const char *path, size_t max_content_bytes,
                        cm_request_t *req)
{
        cm_buf_t b;
        char errstr[512];
        int ret = -1;

        cm_buf_init(&b);
        if (cli_read_file(path, &b, errstr, sizeof(errstr)) == -1) {
                cli_error("--history-file: %s", errstr);
                goto out;
        }
        if (cm_history_decode(b.buf, b.len, max_content_bytes, &req->history,
                              &req->history_cnt, errstr,
                              sizeof(errstr)) == -1) {
                cli_error("--history-file '%s': %s", path, errstr);
                goto out;
        }
        req->has_history = 1;
        ret = 0;
out:
        cm_buf_release(&b);
        return ret;
}

/* 1 if m is the reply to request_id, judged by its key. */
static int is_ours(const rd_kafka_message_t *m, const char *request_id)
{
        size_t n = strlen(request_id);

        return m->key && m->key_len == n && !memcmp(m->key, request_id, n);
}

/*
 * Waits for the reply to request_id. Returns it (destroy with
 * rd_kafka_message_destroy) with its decoded form in doc, or NULL with
 * *status set (CLI_TIMEOUT or CLI_FAIL) after printing why.
 */
static rd_kafka_message_t *wait_reply(asker_t *a, const char *request_id,
                                      cm_reply_doc_t *doc, int timeout_ms,
                                      int *status)
{
        rd_kafka_message_t *m;
        char why[512];

        *status = CLI_FAIL;
        while (!cm_stop) {
                int left = remaining_ms(a);

                if (left == 0) {
                        *status = CLI_TIMEOUT;
                        if (!a->delivered)
                                cli_error("request '%s' not delivered to "
                                          "'%s' within %d ms; is kafka at "
                                          "'%s' reachable?",
                                          request_id, a->cfg.topic_requests,
                                          timeout_ms, a->cfg.kafka_brokers);
                        else
                                cli_error("no reply for request '%s' within "
                                          "%d ms; is chatmem-context "
                                          "running?",
                                          request_id, timeout_ms);
                        return NULL;
                }
                m = rd_kafka_consumer_poll(a->consumer,
                                           left < 100 ? left : 100);
                rd_kafka_poll(a->producer, 0);
                if (a->delivered && a->dr_err) {
                        cli_error("request '%s' not delivered to '%s': %s",
                                  request_id, a->cfg.topic_requests,
                                  rd_kafka_err2str(a->dr_err));
                        if (m)
                                rd_kafka_message_destroy(m);
                        return NULL;
                }
                if (!m)
                        continue;
                if (m->err) {
                        if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
                                cli_error("consumer: %s",
                                          rd_kafka_message_errstr(m));
                                rd_kafka_message_destroy(m);
                                return NULL;
                        }
                        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                                cm_debug("consumer: %s",
                                         rd_kafka_message_errstr(m));
                        rd_kafka_message_destroy(m);
                        continue;
                }
                if (!is_ours(m, request_id)) {
                        rd_kafka_message_destroy(m);
                        continue;
                }
                if (cm_reply_decode(m->payload, m->len, doc, why,
                                    sizeof(why)) == -1) {
                        cm_warn("ignoring a reply keyed '%s' at '%s' [%d] "
                                "@%lld that does not decode: %s",
                                request_id, a->reply_topic, (int)m->partition,
                                (long long)m->offset, why);
                        rd_kafka_message_destroy(m);
                        continue;
                }
                if (!doc->request_id || strcmp(doc->request_id, request_id)) {
                        cm_warn("ignoring a reply keyed '%s' that carries "
                                "request_id '%s'",
                                request_id,
                                doc->request_id ? doc->request_id : "");
                        cm_reply_doc_release(doc);
                        rd_kafka_message_destroy(m);
                        continue;
                }
                *status = CLI_OK;
                return m;
        }
        cli_error("interrupted");
        return NULL;
}

static const char *yes_no(int b)
{
        return b ? "yes" : "no";
}

/* Prints the reply as it came, on one line: it decoded, and the codec
 * refuses raw control characters inside strings, so every line break in it
 * is white space between tokens. */
static void print_json(const rd_kafka_message_t *m)
{
        const char *p = m->payload;
        size_t i;

        for (i = 0; i < m->len; i++)
                putchar(p[i] == '\n' || p[i] == '\r' ? ' ' : p[i]);
        putchar('\n');
}

static void print_reply(const cm_reply_doc_t *doc)
{
        const cm_reply_meta_t *meta = &doc->meta;

        printf("%s\n\n", doc->context ? doc->context : "");
        printf("tokens: %d (full history: %d), total messages: %lld, "
               "summarized: %s, cached: %s, degraded: %s, build: %lld us, "
               "recalled: %d (%lld us)\n",
               meta->tokens, meta->full_history_tokens,
               (long long)meta->total_messages, yes_no(meta->summarized),
               yes_no(meta->cached), yes_no(meta->degraded),
               (long long)meta->build_us, meta->recalled,
               (long long)meta->recall_us);
}

/* Parses an option's integer in [min, max]. Returns 0, or -1 after
 * printing why. */
static int int_option(const char *name, const char *s, long long min,
                      long long max, long long *out)
{
        if (cm_parse_int(s, min, max, out) == -1) {
                cli_error("context: %s must be an integer in [%lld, %lld], "
                          "got '%s'",
                          name, min, max, s);
                return -1;
        }
        return 0;
}

int cmd_context(int argc, char **argv, const char *conf_path)
{
        static const struct option longopts[] = {
            {"query", required_argument, NULL, 'q'},
            {"scope", required_argument, NULL, 's'},
            {"max-tokens", required_argument, NULL, 'n'},
            {"recent", required_argument, NULL, 'r'},
            {"history-file", required_argument, NULL, 'H'},
            {"profile", required_argument, NULL, 'p'},
            {"no-stored", no_argument, NULL, 'S'},
            {"reply-to", required_argument, NULL, 'T'},
            {"timeout", required_argument, NULL, 't'},
            {"json", no_argument, NULL, 'j'},
            {"config", required_argument, NULL, 'c'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        asker_t a;
        cm_request_t req, check;
        cm_reply_doc_t doc;
        rd_kafka_message_t *reply = NULL;
        const char *query = NULL, *history_file = NULL, *reply_to = NULL;
        const char *profile = NULL;
        const char *user, *conv = "default";
        char *payload = NULL, *group = NULL;
        char errstr[512], key[CM_SESSION_KEY_MAX], uuid[37];
        long long max_tokens = 0, recent = -1, timeout_ms = DEFAULT_TIMEOUT_MS;
        int opt, rc, json = 0, scope_user = 0, stateless = 0, ret = CLI_FAIL;

        memset(&a, 0, sizeof(a));
        memset(&req, 0, sizeof(req));
        memset(&check, 0, sizeof(check));
        memset(&doc, 0, sizeof(doc));
        while ((opt = getopt_long(argc, argv, "q:s:n:r:H:p:t:jc:h", longopts,
                                  NULL)) != -1) {
                switch (opt) {
                case 'q':
                        query = optarg;
                        break;
                case 's':
                        if (strcmp(optarg, "user") &&
                            strcmp(optarg, "session")) {
                                fprintf(stderr,
                                        "chatmem: --scope: \"session\" or "
                                        "\"user\", not \"%s\"\n",
                                        optarg);
                                return CLI_USAGE;
                        }
                        scope_user = strcmp(optarg, "user") == 0;
                        break;
                case 'n':
                        if (int_option("--max-tokens", optarg, 1, 1000000,
                                       &max_tokens) == -1)
                                return CLI_USAGE;
                        break;
                case 'r':
                        if (int_option("--recent", optarg, 0, 1000, &recent) ==
                            -1)
                                return CLI_USAGE;
                        break;
                case 'H':
                        history_file = optarg;
                        break;
                case 'p':
                        profile = optarg;
                        break;
                case 'S':
                        stateless = 1;
                        break;
                case 'T':
                        reply_to = optarg;
                        break;
                case 't':
                        if (int_option("--timeout", optarg, 1, 3600000,
                                       &timeout_ms) == -1)
                                return CLI_USAGE;
                        break;
                case 'j':
                        json = 1;
                        break;
                case 'c':
                        conf_path = optarg;
                        break;
                case 'h':
                        usage_context(stdout);
                        return CLI_OK;
                default:
                        usage_context(stderr);
                        return CLI_USAGE;
                }
        }
        if (optind >= argc || argc - optind > 2) {
                usage_context(stderr);
                return CLI_USAGE;
        }
        user = argv[optind];
        if (argc - optind == 2)
                conv = argv[optind + 1];
        if (cli_check_id("user id", user) == -1 ||
            cli_check_id("conversation id", conv) == -1)
                return CLI_USAGE;

        if (cli_config_load(&a.cfg, conf_path) == -1)
                goto out;
        a.reply_topic = reply_to ? reply_to : a.cfg.topic_replies;
        a.deadline_us = cm_mono_us() + timeout_ms * 1000;

        /* The request, checked with the server's own decoder first. */
        cm_uuid(uuid);
        snprintf(req.request_id, sizeof(req.request_id), "%s", uuid);
        snprintf(req.user_id, sizeof(req.user_id), "%s", user);
        snprintf(req.conversation_id, sizeof(req.conversation_id), "%s", conv);
        /* Always explicit, so that the server's default cannot differ
         * from the topic we read. */
        req.reply_to = cm_strdup(a.reply_topic);
        req.max_tokens = (int)max_tokens;
        req.recent = (int)recent;
        req.query = cm_strdup(query);
        req.scope_user = scope_user;
        req.stateless = stateless;
        if (profile && cm_profile_decode(profile, strlen(profile), &req.profile,
                                         errstr, sizeof(errstr)) == -1) {
                cli_error("--profile: %s", errstr);
                goto out;
        }
        if (history_file &&
            load_history(history_file, (size_t)a.cfg.max_content_bytes, &req) ==
                -1)
                goto out;
        payload = cm_request_encode(&req);
        if (cm_request_decode(payload, strlen(payload),
                              (size_t)a.cfg.max_content_bytes, &check, errstr,
                              sizeof(errstr)) == -1) {
                cli_error("invalid request: %s", errstr);
                goto out;
        }
        cm_session_key(key, user, conv);

        cm_daemon_signals();
        a.producer = cm_kafka_rpc_producer_new(&a.cfg, on_delivery, &a, errstr,
                                               sizeof(errstr));
        if (!a.producer) {
                cli_error("%s", errstr);
                goto out;
        }
        /* Consumer-only property: set after the producer is made. */
        if (cm_config_set(&a.cfg, "kafka.enable_auto_commit", "false", errstr,
                          sizeof(errstr)) == -1) {
                cli_error("%s", errstr);
                goto out;
        }
        {
                cm_buf_t b;

                cm_buf_init(&b);
                cm_buf_addf(&b, "chatmem-cli-%s", uuid);
                group = cm_buf_detach(&b, NULL);
        }
        a.consumer = cm_kafka_consumer_new(&a.cfg, group, NULL, NULL, errstr,
                                           sizeof(errstr));
        if (!a.consumer) {
                cli_error("%s", errstr);
                goto out;
        }
        if (tool_topic_assign_at_end(a.consumer, a.reply_topic, a.deadline_us,
                                     errstr, sizeof(errstr)) == -1) {
                cli_error("%s (kafka at '%s')", errstr, a.cfg.kafka_brokers);
                goto out;
        }
        /* Best effort: the producer learns the request topic's partitions
         * now instead of at librdkafka's next periodic scan (up to a
         * second); if it cannot, the produce below waits for that scan. */
        if (tool_topic_partitions(a.producer, a.cfg.topic_requests,
                                  a.deadline_us, NULL, errstr,
                                  sizeof(errstr)) == -1)
                cm_debug("%s", errstr);
        rc = tool_produce(a.producer, a.cfg.topic_requests, key, payload);
        payload = NULL; /* now owned by the producer */
        if (rc == -1)
                goto out;
        cm_debug("request '%s' for '%s' sent to '%s', waiting on '%s'",
                 req.request_id, key, a.cfg.topic_requests, a.reply_topic);

        reply = wait_reply(&a, req.request_id, &doc, (int)timeout_ms, &ret);
        if (!reply)
                goto out;
        if (json)
                print_json(reply);
        if (doc.is_error) {
                fprintf(stderr, "error: %s: %s\n", doc.error_code,
                        doc.error_message);
                ret = CLI_FAIL;
                goto out;
        }
        if (!json)
                print_reply(&doc);
        ret = CLI_OK;
out:
        fflush(stdout);
        if (reply)
                rd_kafka_message_destroy(reply);
        if (a.consumer) {
                rd_kafka_consumer_close(a.consumer);
                rd_kafka_destroy(a.consumer);
        }
        if (a.producer) {
                rd_kafka_flush(a.producer, 1000);
                rd_kafka_destroy(a.producer);
        }
        cm_reply_doc_release(&doc);
        cm_request_release(&check);
        cm_request_release(&req);
        free(payload);
        free(group);
        cm_config_release(&a.cfg);
        return ret;
}
