/*
 * chatmem send: produce chat events to the events topic.
 *
 * One event from the options (--content, or a --type other than message),
 * or one per JSON line on stdin. Every event is checked with the same
 * strict decoder as chatmem-ingest (unless --raw) and keyed by its session
 * "<user_id>:<conversation_id>". A missing event_id is filled with a fresh
 * UUID, and the event is then sent re-encoded; an event that needs no
 * change is sent byte for byte as given.
 *
 * Producing never waits per message: the producer batches, a full local
 * queue is drained by polling, and delivery reports are counted; at the
 * end one flush (at most FLUSH_MS) settles the rest.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "codec.h"
#include "config.h"
#include "daemon.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

#define FLUSH_MS 30000

typedef struct sender {
        const cm_config_t *cfg;
        rd_kafka_t *rk;
        rd_kafka_topic_t *rkt;
        int raw;
        const char *key;      /* --key: the message key of every event */
        const char *def_user; /* stdin mode: fills a missing user_id… */
        const char *def_conv; /* …conversation_id… */
        const char *def_role; /* …and role (message events) */
        unsigned long long produced;  /* accepted by the producer */
        unsigned long long delivered; /* acknowledged by the broker */
        unsigned long long dr_failed; /* delivery reports with an error */
        unsigned long long failed;    /* every event not delivered */
        unsigned long long bad;       /* lines that failed validation */
        char first_error[256];
} sender_t;

void usage_send(FILE *fp)
{
        fprintf(
            fp,
            "usage: chatmem [-c FILE] send [OPTIONS]\n"
            "\n"
            "Produces chat events to the events topic (topics.events), "
            "keyed by session\n\"<user_id>:<conversation_id>\". With "
            "--content, or a --type other than message,\nsends one event "
            "built from the options; otherwise reads one JSON event per\n"
            "line on stdin (blank lines are skipped). A missing event_id "
            "gets a fresh UUID.\n"
            "\n"
            "  -u, --user U         user_id (required for one event; "
            "default for stdin lines)\n"
            "  -C, --conv C         conversation_id (default: "
            "\"default\")\n"
            "  -r, --role R         user | assistant | system (default: "
            "user)\n"
            "  -m, --content TEXT   message content: send one message "
            "event\n"
            "  -e, --event-id ID    event_id of the one event (default: "
            "a fresh UUID)\n"
            "  -t, --type T         message | profile.set | "
            "session.delete | user.delete\n"
            "  -p, --profile JSON   profile of a profile.set event, e.g.\n"
            "                       '{\"name\":\"Sumit\",\"interests\":"
            "[\"React\"]}'\n"
            "  -k, --key KEY        message key of every event (default: "
            "the session key)\n"
            "      --raw            send lines as they are, without "
            "validation (tests);\n"
            "                       the key is read from the JSON when "
            "possible\n"
            "  -c, --config FILE    chatmem.conf to read\n"
            "  -h, --help           this text\n"
            "\n"
            "A bad line is reported as \"line N: <reason>\" and skipped. "
            "Prints \"sent N events\"\nto stderr; exits 1 if a line was bad "
            "or an event was not delivered.\n");
}

/* Delivery reports, served by rd_kafka_poll() and rd_kafka_flush(). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque)
{
        sender_t *s = opaque;

        (void)rk;
        if (!m->err) {
                s->delivered++;
                return;
        }
        s->dr_failed++;
        if (s->failed++ == 0)
                snprintf(s->first_error, sizeof(s->first_error), "%s",
                         rd_kafka_err2str(m->err));
}

/*
 * Produces one message. flags is RD_KAFKA_MSG_F_COPY or _F_FREE; with
 * _F_FREE the payload is owned by the producer from here on, whatever
 * happens. A full local queue is drained by polling. Returns 0, or -1 (the
 * event is counted as failed).
 */
static int produce(sender_t *s, const char *key, size_t key_len, char *payload,
                   size_t len, int flags)
{
        rd_kafka_resp_err_t err;

        for (;;) {
                err = rd_kafka_producev(s->rk, RD_KAFKA_V_RKT(s->rkt),
                                        RD_KAFKA_V_KEY(key, key ? key_len : 0),
                                        RD_KAFKA_V_VALUE(payload, len),
                                        RD_KAFKA_V_MSGFLAGS(flags),
                                        RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || cm_stop)
                        break;
                rd_kafka_poll(s->rk, 100);
        }
        rd_kafka_poll(s->rk, 0);
        if (err) {
                if (flags == RD_KAFKA_MSG_F_FREE)
                        free(payload);
                if (s->failed++ == 0)
                        snprintf(s->first_error, sizeof(s->first_error), "%s",
                                 rd_kafka_err2str(err));
                return -1;
        }
        s->produced++;
        return 0;
}

/* JSON whitespace. */
static int is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Parses buf[0..len) as one JSON object with json-c, reporting nothing:
 * when this fails the strict decoder gives the reason. Returns the object
 * (caller puts it) or NULL. */
static json_object *parse_json_object(const char *buf, size_t len)
{
        json_tokener *tok;
        json_object *root;
        size_t end;

        if (len == 0 || len > 0x7fffffff)
                return NULL;
        tok = json_tokener_new();
        if (!tok) {
                fprintf(stderr, "chatmem: out of memory\n");
                abort();
        }
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
                                        JSON_TOKENER_VALIDATE_UTF8);
        root = json_tokener_parse_ex(tok, buf, (int)len);
        end = json_tokener_get_parse_end(tok);
        if (json_tokener_get_error(tok) != json_tokener_success)
                end = 0;
        while (end && end < len && is_space(buf[end]))
                end++;
        json_tokener_free(tok);
        if (end != len || !json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                return NULL;
        }
        return root;
}

static const char *json_str_member(json_object *obj, const char *name)
{
        json_object *v;

        if (!json_object_object_get_ex(obj, name, &v) ||
            !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

/* Adds name = value to obj when obj has no member name. Returns 1 if it
 * did, else 0. */
static int fill_member(json_object *obj, const char *name, const char *value)
{
        if (!value || json_object_object_get_ex(obj, name, NULL))
                return 0;
        json_object_object_add(obj, name, json_object_new_string(value));
        return 1;
}

/* --raw: sends the line as it is, keyed by its ids when they are
 * readable. */
static int send_raw(sender_t *s, const char *line, size_t len)
{
        json_object *root = parse_json_object(line, len);
        cm_buf_t key;
        const char *user = NULL, *conv = NULL;
        int ret;

        cm_buf_init(&key);
        if (root) {
                user = json_str_member(root, "user_id");
                conv = json_str_member(root, "conversation_id");
        }
        if (s->key)
                cm_buf_adds(&key, s->key);
        else if (user)
                cm_buf_addf(&key, "%s:%s", user, conv ? conv : "default");
        ret = produce(s, s->key || user ? key.buf : NULL, key.len, (char *)line,
                      len, RD_KAFKA_MSG_F_COPY);
        cm_buf_release(&key);
        json_object_put(root);
        return ret;
}

/*
 * Checks one event, fills what is missing and produces it. Returns 0, -1
 * for a bad event (reason in errstr), or -2 when it could not be produced.
 */
static int send_event(sender_t *s, const char *line, size_t len, char *errstr,
                      size_t errstr_size)
{
        json_object *root;
        cm_event_t ev;
        char *fixed = NULL, *payload;
        char session_key[2 * CM_ID_MAX + 2];
        const char *key;
        size_t payload_len, key_len;
        int changed = 0, flags, ret = -1;

        memset(&ev, 0, sizeof(ev));
        /* The decoder requires event_id, so a missing one (or a default
         * from the options) is added before decoding. */
        root = parse_json_object(line, len);
        if (root) {
                char uuid[37];
                const char *type = json_str_member(root, "type");

                if (!json_object_object_get_ex(root, "event_id", NULL)) {
                        cm_uuid(uuid);
                        changed |= fill_member(root, "event_id", uuid);
                }
                changed |= fill_member(root, "user_id", s->def_user);
                changed |= fill_member(root, "conversation_id", s->def_conv);
                if (!type || !strcmp(type, "message"))
                        changed |= fill_member(root, "role", s->def_role);
                if (changed)
                        fixed = cm_strdup(json_object_to_json_string_ext(
                            root, JSON_C_TO_STRING_PLAIN |
                                      JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(root);
        }
        if (cm_event_decode(fixed ? fixed : line, fixed ? strlen(fixed) : len,
                            (size_t)s->cfg->max_content_bytes, &ev, errstr,
                            errstr_size) == -1)
                goto out;
        if (fixed) {
                payload = cm_event_encode(&ev);
                payload_len = strlen(payload);
                flags = RD_KAFKA_MSG_F_FREE;
        } else {
                payload = (char *)line;
                payload_len = len;
                flags = RD_KAFKA_MSG_F_COPY;
        }
        if (s->key) {
                key = s->key;
                key_len = strlen(s->key);
        } else {
                snprintf(session_key, sizeof(session_key), "%s:%s", ev.user_id,
                         ev.conversation_id);
                key = session_key;
                key_len = strlen(session_key);
        }
        if (produce(s, key, key_len, payload, payload_len, flags) == -1)
                ret = -2;
        else
                ret = 0;
out:
        cm_event_release(&ev);
        free(fixed);
        return ret;
}

/* One line of input, or the event built from the options (lineno 0). */
static void send_one(sender_t *s, const char *line, size_t len,
                     unsigned long long lineno)
{
        char why[512];
        int r;

        if (s->raw) {
                send_raw(s, line, len);
                return;
        }
        r = send_event(s, line, len, why, sizeof(why));
        if (r != -1)
                return;
        s->bad++;
        if (lineno)
                fprintf(stderr, "line %llu: %s\n", lineno, why);
        else
                cli_error("invalid event: %s", why);
}

static int blank(const char *s, size_t len)
{
        size_t i;

        for (i = 0; i < len; i++)
                if (!is_space(s[i]))
                        return 0;
        return 1;
}

static void send_stdin(sender_t *s)
{
        char *line = NULL;
        size_t cap = 0;
        unsigned long long lineno = 0;
        ssize_t n;

        while (!cm_stop) {
                errno = 0;
                n = getline(&line, &cap, stdin);
                if (n < 0) {
                        if (errno && errno != EINTR)
                                cli_error("cannot read stdin: %s",
                                          strerror(errno));
                        break;
                }
                lineno++;
                while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                        line[--n] = '\0';
                if (blank(line, (size_t)n))
                        continue;
                send_one(s, line, (size_t)n, lineno);
        }
        free(line);
}

/* Builds the one event of the options as a JSON line (heap string). On
 * error returns NULL after printing the reason. */
static char *event_from_options(const char *type, const char *event_id,
                                const char *user, const char *conv,
                                const char *role, const char *content,
                                const char *profile)
{
        json_object *obj = json_object_new_object();
        char uuid[37];
        char *out = NULL;

        if (strcmp(type, "message"))
                json_object_object_add(obj, "type",
                                       json_object_new_string(type));
        if (!event_id) {
                cm_uuid(uuid);
                event_id = uuid;
        }
        json_object_object_add(obj, "event_id",
                               json_object_new_string(event_id));
        json_object_object_add(obj, "user_id", json_object_new_string(user));
        if (conv)
                json_object_object_add(obj, "conversation_id",
                                       json_object_new_string(conv));
        if (!strcmp(type, "message")) {
                json_object_object_add(obj, "role",
                                       json_object_new_string(role));
                json_object_object_add(obj, "content",
                                       json_object_new_string(content));
                json_object_object_add(obj, "ts",
                                       json_object_new_int64(cm_now_ms()));
        }
        if (profile) {
                json_object *p = json_tokener_parse(profile);

                if (!p) {
                        cli_error("--profile: not valid JSON");
                        goto out;
                }
                json_object_object_add(obj, "profile", p);
        }
        out = cm_strdup(json_object_to_json_string_ext(
            obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
out:
        json_object_put(obj);
        return out;
}

/* Flushes, then counts whatever is still unacknowledged as failed. */
static void finish(sender_t *s)
{
        unsigned long long pending;

        rd_kafka_flush(s->rk, FLUSH_MS);
        if (rd_kafka_outq_len(s->rk) > 0) {
                /* Purged messages get a delivery report with an error. */
                rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE |
                                          RD_KAFKA_PURGE_F_INFLIGHT);
                rd_kafka_poll(s->rk, 100);
        }
        pending = s->produced - s->delivered - s->dr_failed;
        if (pending == 0)
                return;
        if (s->failed == 0)
                snprintf(s->first_error, sizeof(s->first_error),
                         "not acknowledged within %d ms", FLUSH_MS);
        s->failed += pending;
}

int cmd_send(int argc, char **argv, const char *conf_path)
{
        static const struct option longopts[] = {
            {"user", required_argument, NULL, 'u'},
            {"conv", required_argument, NULL, 'C'},
            {"role", required_argument, NULL, 'r'},
            {"content", required_argument, NULL, 'm'},
            {"event-id", required_argument, NULL, 'e'},
            {"type", required_argument, NULL, 't'},
            {"profile", required_argument, NULL, 'p'},
            {"key", required_argument, NULL, 'k'},
            {"raw", no_argument, NULL, 'R'},
            {"config", required_argument, NULL, 'c'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        cm_config_t cfg;
        sender_t s;
        const char *user = NULL, *conv = NULL, *role = NULL, *content = NULL;
        const char *event_id = NULL, *type = "message", *profile = NULL;
        char *one = NULL;
        char errstr[512];
        cm_role_t role_v;
        int opt, single, ret = CLI_FAIL;

        memset(&s, 0, sizeof(s));
        memset(&cfg, 0, sizeof(cfg));
        while ((opt = getopt_long(argc, argv, "u:C:r:m:e:t:p:k:c:h", longopts,
                                  NULL)) != -1) {
                switch (opt) {
                case 'u':
                        user = optarg;
                        break;
                case 'C':
                        conv = optarg;
                        break;
                case 'r':
                        role = optarg;
                        break;
                case 'm':
                        content = optarg;
                        break;
                case 'e':
                        event_id = optarg;
                        break;
                case 't':
                        type = optarg;
                        break;
                case 'p':
                        profile = optarg;
                        break;
                case 'k':
                        s.key = optarg;
                        break;
                case 'R':
                        s.raw = 1;
                        break;
                case 'c':
                        conf_path = optarg;
                        break;
                case 'h':
                        usage_send(stdout);
                        return CLI_OK;
                default:
                        usage_send(stderr);
                        return CLI_USAGE;
                }
        }
        if (optind < argc) {
                cli_error("send: unexpected argument '%s'", argv[optind]);
                usage_send(stderr);
                return CLI_USAGE;
        }
        if (strcmp(type, "message") && strcmp(type, "profile.set") &&
            strcmp(type, "session.delete") && strcmp(type, "user.delete")) {
                cli_error("send: --type must be message, profile.set, "
                          "session.delete or user.delete");
                return CLI_USAGE;
        }
        if (role && cm_role_parse(role, &role_v) == -1) {
                cli_error("send: --role must be user, assistant or system");
                return CLI_USAGE;
        }
        single = content || strcmp(type, "message");
        if (single && !user) {
                cli_error("send: --user is required with --content or "
                          "--type");
                return CLI_USAGE;
        }
        if (!strcmp(type, "profile.set") && !profile) {
                cli_error("send: --type profile.set needs --profile JSON");
                return CLI_USAGE;
        }
        if (!s.raw && ((user && cli_check_id("user id", user) == -1) ||
                       (conv && cli_check_id("conversation id", conv) == -1)))
                return CLI_USAGE;
        if (single) {
                one =
                    event_from_options(type, event_id, user, conv,
                                       role ? role : "user", content, profile);
                if (!one)
                        return CLI_USAGE;
        } else {
                s.def_user = user;
                s.def_conv = conv;
                s.def_role = role;
        }

        if (cli_config_load(&cfg, conf_path) == -1)
                goto out;
        s.cfg = &cfg;
        cm_daemon_signals();
        s.rk = cm_kafka_producer_new(&cfg, on_delivery, &s, errstr,
                                     sizeof(errstr));
        if (!s.rk) {
                cli_error("%s", errstr);
                goto out;
        }
        s.rkt = rd_kafka_topic_new(s.rk, cfg.topic_events, NULL);
        if (!s.rkt) {
                cli_error("cannot use topic '%s': %s", cfg.topic_events,
                          rd_kafka_err2str(rd_kafka_last_error()));
                goto out;
        }

        if (one)
                send_one(&s, one, strlen(one), 0);
        else
                send_stdin(&s);
        finish(&s);

        fprintf(stderr, "sent %llu events\n", s.delivered);
        if (s.bad)
                fprintf(stderr, "skipped %llu bad event%s\n", s.bad,
                        s.bad == 1 ? "" : "s");
        if (s.failed)
                cli_error("%llu event%s not delivered to '%s' at '%s': %s",
                          s.failed, s.failed == 1 ? "" : "s", cfg.topic_events,
                          cfg.kafka_brokers, s.first_error);
        if (cm_stop)
                cli_error("interrupted");
        ret = s.bad || s.failed || cm_stop ? CLI_FAIL : CLI_OK;
out:
        if (s.rkt)
                rd_kafka_topic_destroy(s.rkt);
        if (s.rk)
                rd_kafka_destroy(s.rk);
        free(one);
        cm_config_release(&cfg);
        return ret;
}
